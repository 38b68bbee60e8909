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
    "CREATE TABLE sites ("
    "  id TEXT PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  created_at INTEGER NOT NULL"
    ");"
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
