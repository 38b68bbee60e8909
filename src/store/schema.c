/* schema.c — SQL of every schema migration. Times are integer milliseconds since the Unix epoch (UTC);
 * ids are UUIDv7 text. */
#include <stddef.h>

#include "store/schema.h"

static const char *const migrations[] = {
    /* 1: node metadata, sites, users, sessions, login throttling, audit chain */
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY,"
    "  value TEXT NOT NULL"
    ");"
    "CREATE TABLE sites ("                  /* sites replicate, and two offline nodes may name theirs alike: */
    "  id TEXT PRIMARY KEY,"                /* a node refuses a name it already has (services/sites.c), */
    "  name TEXT NOT NULL,"                 /* the table does not */
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX sites_by_name ON sites(name);"
    "CREATE TABLE users ("
    "  id TEXT PRIMARY KEY,"
    "  username TEXT NOT NULL UNIQUE,"
    "  full_name TEXT NOT NULL DEFAULT '',"
    "  role TEXT NOT NULL CHECK (role IN ('admin','clinician','registrar','analyst','viewer')),"
    "  password_hash TEXT NOT NULL,"
    "  disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0,1)),"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  password_changed_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE user_sites ("
    "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  site_id TEXT NOT NULL REFERENCES sites(id),"
    "  PRIMARY KEY (user_id, site_id)"
    ");"
    "CREATE TABLE sessions ("
    "  token_hash TEXT PRIMARY KEY,"
    "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  csrf_token TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  last_seen_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL,"
    "  address TEXT NOT NULL"
    ");"
    "CREATE INDEX sessions_by_user ON sessions(user_id);"
    "CREATE TABLE login_throttle ("
    "  key TEXT PRIMARY KEY,"
    "  failures INTEGER NOT NULL,"
    "  last_failure_at INTEGER NOT NULL,"
    "  locked_until INTEGER NOT NULL"
    ");"
    "CREATE TABLE audit_log ("
    "  seq INTEGER PRIMARY KEY,"
    "  at INTEGER NOT NULL,"
    "  user_id TEXT,"
    "  username TEXT,"
    "  action TEXT NOT NULL,"
    "  entity_type TEXT,"
    "  entity_id TEXT,"
    "  site_id TEXT,"
    "  address TEXT,"
    "  request_id TEXT,"
    "  outcome TEXT NOT NULL,"
    "  prev_hash TEXT NOT NULL,"
    "  hash TEXT NOT NULL"
    ");"
    "CREATE INDEX audit_by_entity ON audit_log(entity_type, entity_id);",

    /* 2: the replicated change log, the patient registry and its search terms */
    "CREATE TABLE origins ("
    "  n INTEGER PRIMARY KEY,"             /* local short alias of a node id, to keep change rows small */
    "  node_id TEXT NOT NULL UNIQUE,"
    "  contiguous INTEGER NOT NULL DEFAULT 0"  /* highest seq held with no gap below it (the version vector) */
    ");"
    "CREATE TABLE changes ("
    "  origin INTEGER NOT NULL REFERENCES origins(n),"
    "  seq INTEGER NOT NULL,"              /* 1, 2, 3 ... per origin */
    "  tbl TEXT NOT NULL,"
    "  row_id TEXT NOT NULL,"
    "  hlc INTEGER NOT NULL,"
    "  fields TEXT NOT NULL,"              /* JSON object {field: new value} */
    "  base TEXT NOT NULL,"                /* JSON object {field: hlc of the value it replaced at the origin} */
    "  PRIMARY KEY (origin, seq)"
    ");"
    /* the per-field winner of a record is derived from its changes, found through this index */
    "CREATE INDEX changes_by_row ON changes(row_id, tbl);"
    "CREATE TABLE patients ("
    "  id TEXT PRIMARY KEY,"
    "  site_id TEXT NOT NULL,"
    "  given_name TEXT NOT NULL DEFAULT '',"
    "  family_name TEXT NOT NULL DEFAULT '',"
    "  middle_name TEXT NOT NULL DEFAULT '',"
    "  other_names TEXT NOT NULL DEFAULT '[]',"
    "  name_original TEXT NOT NULL DEFAULT '',"
    "  sex TEXT NOT NULL DEFAULT 'unknown',"
    "  birth_date TEXT,"
    "  birth_precision TEXT,"
    "  nationality TEXT,"
    "  languages TEXT NOT NULL DEFAULT '[]',"
    "  preferred_language TEXT,"
    "  phones TEXT NOT NULL DEFAULT '[]',"
    "  address TEXT,"
    "  camp TEXT,"
    "  shelter TEXT,"
    "  identifiers TEXT NOT NULL DEFAULT '{}',"
    "  custom TEXT NOT NULL DEFAULT '{}',"
    "  deleted INTEGER NOT NULL DEFAULT 0,"
    "  name_fold TEXT NOT NULL DEFAULT '',"  /* derived: every name folded to Latin, for ranking */
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX patients_by_site ON patients(site_id);"
    "CREATE TABLE patient_terms ("          /* derived search index: n:name token, k:phonetic key, i:identifier, p:phone */
    "  term TEXT NOT NULL,"
    "  patient_id TEXT NOT NULL,"
    "  PRIMARY KEY (term, patient_id)"
    ") WITHOUT ROWID;"
    "CREATE TABLE registration_config ("
    "  site_id TEXT PRIMARY KEY,"
    "  config TEXT NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ");",

    /* 3: replication between nodes: enrolled peers, sync cursors, conflicts for review, quarantine */
    "CREATE TABLE peers ("
    "  id TEXT PRIMARY KEY,"                /* the peer's node id */
    "  name TEXT NOT NULL UNIQUE,"
    "  public_key TEXT NOT NULL,"           /* Ed25519, base64url, pinned at enrolment */
    "  url TEXT,"                           /* where to reach it; NULL for a peer that only calls us */
    "  sites TEXT,"                         /* JSON array of site ids it may receive; NULL: every site */
    "  enrolled_at INTEGER NOT NULL,"
    "  last_attempt_at INTEGER,"
    "  last_success_at INTEGER,"
    "  last_error TEXT"
    ");"
    "CREATE TABLE peer_cursors ("           /* how far each direction of sync with a peer got, per origin */
    "  peer_id TEXT NOT NULL REFERENCES peers(id) ON DELETE CASCADE,"
    "  direction TEXT NOT NULL CHECK (direction IN ('pull','push')),"
    "  origin TEXT NOT NULL,"               /* origin node id */
    "  seq INTEGER NOT NULL,"
    "  PRIMARY KEY (peer_id, direction, origin)"
    ");"
    "CREATE TABLE peer_invites ("
    "  code_hash TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  sites TEXT,"
    "  expires_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE sync_nonces ("
    "  nonce TEXT PRIMARY KEY,"
    "  expires_at INTEGER NOT NULL"
    ");"
    "CREATE TABLE conflicts ("
    "  id TEXT PRIMARY KEY,"
    "  tbl TEXT NOT NULL,"
    "  row_id TEXT NOT NULL,"
    "  field TEXT NOT NULL,"
    "  value TEXT,"                         /* JSON of the losing value */
    "  hlc INTEGER NOT NULL,"
    "  origin TEXT NOT NULL,"
    "  winner_value TEXT,"
    "  winner_hlc INTEGER NOT NULL,"
    "  winner_origin TEXT NOT NULL,"
    "  detected_at INTEGER NOT NULL,"
    "  resolved_at INTEGER,"
    "  resolution TEXT,"
    "  UNIQUE (tbl, row_id, field, hlc, origin)"
    ");"
    "CREATE INDEX conflicts_by_row ON conflicts(row_id, field);"
    "CREATE TABLE quarantine ("
    "  origin TEXT NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  tbl TEXT NOT NULL,"
    "  row_id TEXT NOT NULL,"
    "  hlc INTEGER NOT NULL,"
    "  fields TEXT NOT NULL,"
    "  base TEXT NOT NULL,"
    "  received_at INTEGER NOT NULL,"
    "  received_from TEXT,"
    "  reason TEXT NOT NULL,"
    "  PRIMARY KEY (origin, seq)"
    ");",

    /* 4: form definitions (versioned, append-only), encounters (mutable, merged field by field) and form
     * entries (append-only: a correction supersedes, a withdrawal marks "entered in error") */
    "CREATE TABLE forms ("
    "  row_id TEXT PRIMARY KEY,"            /* the definition's record id: entries point at it */
    "  form_id TEXT NOT NULL,"
    "  version INTEGER NOT NULL,"
    "  definition TEXT NOT NULL,"           /* JSON, docs/forms.md */
    "  builtin INTEGER NOT NULL DEFAULT 0 CHECK (builtin IN (0,1)),"
    "  created_at INTEGER NOT NULL"
    ");"
    /* not unique: two offline nodes may each store a version 3; the highest row id wins the number and
     * both stay readable (services/forms.c) */
    "CREATE INDEX forms_by_version ON forms(form_id, version);"
    "CREATE TABLE encounters ("
    "  id TEXT PRIMARY KEY,"
    "  patient_id TEXT NOT NULL,"
    "  site_id TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  provider TEXT NOT NULL DEFAULT '',"
    "  started_at TEXT NOT NULL,"
    "  ended_at TEXT,"
    "  notes TEXT,"
    "  deleted INTEGER NOT NULL DEFAULT 0,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX encounters_by_patient ON encounters(patient_id, started_at, id);"
    "CREATE TABLE entries ("
    "  id TEXT PRIMARY KEY,"
    "  encounter_id TEXT NOT NULL,"
    "  patient_id TEXT NOT NULL,"
    "  site_id TEXT NOT NULL,"
    "  form_id TEXT,"                       /* NULL for a withdrawal */
    "  form_version INTEGER,"
    "  form_row TEXT,"
    "  vals TEXT,"                          /* JSON object of codes and numbers, never translated text */
    "  supersedes TEXT,"                    /* the entry this one corrects */
    "  withdraws TEXT,"                     /* the entry this one marks entered in error */
    "  reason TEXT,"
    "  author TEXT NOT NULL DEFAULT '',"
    "  recorded_at TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX entries_by_encounter ON entries(encounter_id, id);"
    "CREATE INDEX entries_by_patient ON entries(patient_id, id);"
    "CREATE INDEX entries_by_supersedes ON entries(supersedes) WHERE supersedes IS NOT NULL;"
    "CREATE INDEX entries_by_withdraws ON entries(withdraws) WHERE withdraws IS NOT NULL;",

    /* 5: the patient chart: problems, allergies, reported medications and immunizations (chart items,
     * merged field by field); appointments; documents (metadata here, content in DATA/documents/) */
    "CREATE TABLE chart_items ("
    "  id TEXT PRIMARY KEY,"
    "  kind TEXT NOT NULL,"                 /* problem, allergy, medication, immunization */
    "  patient_id TEXT NOT NULL,"
    "  site_id TEXT NOT NULL,"
    "  status TEXT NOT NULL,"
    "  data TEXT NOT NULL,"                 /* JSON object of the kind's other fields (codes, dates, text) */
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX chart_items_by_patient ON chart_items(patient_id, kind, id);"
    "CREATE TABLE appointments ("
    "  id TEXT PRIMARY KEY,"
    "  patient_id TEXT NOT NULL,"
    "  site_id TEXT NOT NULL,"
    "  starts_at TEXT NOT NULL,"            /* YYYY-MM-DDTHH:MM[:SS]Z */
    "  day TEXT NOT NULL,"                  /* YYYY-MM-DD of starts_at: the day's queue */
    "  service TEXT,"
    "  reason TEXT,"
    "  status TEXT NOT NULL,"               /* booked, arrived, fulfilled, cancelled (missed: see missed_day) */
    "  encounter_id TEXT,"                  /* the visit it was booked from, or that fulfilled it */
    "  booked_by TEXT NOT NULL DEFAULT '',"
    "  notes TEXT,"
    "  missed_day TEXT,"                    /* the day the missed sweep found it unattended (a field of its */
    "  created_at INTEGER NOT NULL,"        /* own, so a person's status change always beats the sweep) */
    "  updated_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX appointments_by_day ON appointments(site_id, day, starts_at);"
    "CREATE INDEX appointments_by_patient ON appointments(patient_id, starts_at);"
    "CREATE INDEX appointments_unattended ON appointments(day)"
    " WHERE status IN ('booked', 'arrived') AND (missed_day IS NULL OR missed_day <> day);"
    "CREATE TABLE documents ("
    "  id TEXT PRIMARY KEY,"
    "  patient_id TEXT NOT NULL,"
    "  site_id TEXT NOT NULL,"
    "  encounter_id TEXT,"
    "  sha256 TEXT NOT NULL,"               /* the content's name in DATA/documents/ */
    "  content_type TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  filename TEXT,"
    "  title TEXT,"
    "  status TEXT NOT NULL DEFAULT 'active',"  /* active, entered_in_error */
    "  author TEXT NOT NULL DEFAULT '',"
    "  error_reason TEXT,"                  /* entered in error: why, by whom, when (UTC) */
    "  error_by TEXT,"
    "  error_at TEXT,"
    "  created_at INTEGER NOT NULL"
    ");"
    "CREATE INDEX documents_by_patient ON documents(patient_id, id);",
};

int schema_count(void)
{
    return (int)(sizeof(migrations) / sizeof(migrations[0]));
}

const char *schema_migration(int version)
{
    if (version < 1 || version > schema_count())
        return NULL;
    return migrations[version - 1];
}
