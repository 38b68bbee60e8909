/* patients.c — SQL for patients, their search terms and registration configuration. */
#include <stdlib.h>
#include <string.h>

#include "store/db_internal.h"
#include "store/patients.h"

/* Text columns and JSON columns of the patients table, in the order of the upsert below. */
static const char *const text_cols[] = {
    "site_id", "given_name", "family_name", "middle_name", "name_original", "sex", "birth_date",
    "birth_precision", "nationality", "preferred_language", "address", "camp", "shelter",
};
static const char *const json_cols[] = { "other_names", "languages", "phones", "identifiers", "custom" };
#define NTEXT (sizeof(text_cols) / sizeof(text_cols[0]))
#define NJSON (sizeof(json_cols) / sizeof(json_cols[0]))
_Static_assert(NTEXT == STORE_PATIENT_TEXT_COLS && NJSON == STORE_PATIENT_JSON_COLS, "patient_row columns");

int store_patient_put_row(struct db *db, const struct patient_row *r, struct err *e)
{
    static const char sql[] =
        "INSERT INTO patients (id, site_id, given_name, family_name, middle_name, name_original, sex, birth_date,"
        " birth_precision, nationality, preferred_language, address, camp, shelter,"
        " other_names, languages, phones, identifiers, custom, deleted, name_fold, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,"
        " $22, $23)"
        " ON CONFLICT (id) DO UPDATE SET site_id = excluded.site_id, given_name = excluded.given_name,"
        " family_name = excluded.family_name, middle_name = excluded.middle_name,"
        " name_original = excluded.name_original, sex = excluded.sex, birth_date = excluded.birth_date,"
        " birth_precision = excluded.birth_precision, nationality = excluded.nationality,"
        " preferred_language = excluded.preferred_language, address = excluded.address, camp = excluded.camp,"
        " shelter = excluded.shelter, other_names = excluded.other_names, languages = excluded.languages,"
        " phones = excluded.phones, identifiers = excluded.identifiers, custom = excluded.custom,"
        " deleted = excluded.deleted, name_fold = excluded.name_fold, updated_at = excluded.updated_at";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    const char *s;
    size_t i;
    int rc, col = 1;

    if (st == NULL)
        return -1;
    db_bind_text(st, col++, r->id);
    for (i = 0; i < NTEXT; i++) {
        s = r->text[i];
        /* NOT NULL columns default to '' */
        if (s == NULL && i < 6)
            s = i == 5 ? "unknown" : "";
        db_bind_text(st, col++, s);
    }
    for (i = 0; i < NJSON; i++)
        db_bind_text(st, col++, r->json[i] ? r->json[i] : (i < 3 ? "[]" : "{}"));
    sqlite3_bind_int(st, col++, r->deleted);
    db_bind_text(st, col++, r->name_fold);
    sqlite3_bind_int64(st, col++, r->created_at);
    sqlite3_bind_int64(st, col++, r->updated_at);
    rc = sqlite3_step(st);
    db_stmt_done(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, "put patient", e);
}

int store_patient_row_of(const json_t *p, struct patient_row *r)
{
    size_t i;
    json_t *v;
    int rc = 0;

    memset(r, 0, sizeof(*r));
    r->id = json_string_value(json_object_get(p, "id"));
    for (i = 0; i < NTEXT; i++)
        r->text[i] = json_string_value(json_object_get(p, text_cols[i]));
    for (i = 0; i < NJSON; i++) {
        v = json_object_get(p, json_cols[i]);
        r->json[i] = r->owned[i] = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (v && r->json[i] == NULL)
            rc = -1;
    }
    r->deleted = json_is_true(json_object_get(p, "deleted"));
    return rc;
}

void store_patient_row_free(struct patient_row *r)
{
    size_t i;

    for (i = 0; i < NJSON; i++) {
        free(r->owned[i]);
        r->owned[i] = NULL;
    }
}

int store_patient_put(struct db *db, const json_t *p, const char *name_fold, int64_t created_at,
                      int64_t updated_at, struct err *e)
{
    struct patient_row r;
    int rc;

    if (store_patient_row_of(p, &r) < 0) {
        store_patient_row_free(&r);
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    }
    r.name_fold = name_fold;
    r.created_at = created_at;
    r.updated_at = updated_at;
    rc = store_patient_put_row(db, &r, e);
    store_patient_row_free(&r);
    return rc;
}

int store_patient_set_name_fold(struct db *db, const char *id, const char *name_fold, struct err *e)
{
    static const char sql[] = "UPDATE patients SET name_fold = $2 WHERE id = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, id);
    db_bind_text(st, 2, name_fold);
    return db_step_done(db, st, "set a patient's name_fold", e);
}

int store_patient_get(struct db *db, const char *id, json_t **out, struct err *e)
{
    static const char sql[] =
        "SELECT id, site_id, given_name, family_name, middle_name, name_original, sex, birth_date,"
        " birth_precision, nationality, preferred_language, address, camp, shelter,"
        " other_names, languages, phones, identifiers, custom, deleted, created_at, updated_at"
        " FROM patients WHERE id = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    const unsigned char *t;
    json_t *p, *v;
    size_t i;
    int rc, col;

    *out = NULL;
    if (st == NULL)
        return -1;
    db_bind_text(st, 1, id);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        db_stmt_done(st);
        return rc == SQLITE_DONE ? 0 : db_fail(db, "get patient", e);
    }
    p = json_object();
    json_object_set_new(p, "id", json_string((const char *)sqlite3_column_text(st, 0)));
    col = 1;
    for (i = 0; i < NTEXT; i++, col++) {
        t = sqlite3_column_text(st, col);
        json_object_set_new(p, text_cols[i], t ? json_string((const char *)t) : json_null());
    }
    for (i = 0; i < NJSON; i++, col++) {
        t = sqlite3_column_text(st, col);
        v = t ? json_loads((const char *)t, JSON_DECODE_ANY, NULL) : NULL;
        json_object_set_new(p, json_cols[i], v ? v : (i < 3 ? json_array() : json_object()));
    }
    json_object_set_new(p, "deleted", json_boolean(sqlite3_column_int(st, col++)));
    json_object_set_new(p, "created_at", json_integer(sqlite3_column_int64(st, col++)));
    json_object_set_new(p, "updated_at", json_integer(sqlite3_column_int64(st, col++)));
    db_stmt_done(st);
    *out = p;
    return 1;
}

int store_patient_brief(struct db *db, const char *id, struct patient_brief *out, struct err *e)
{
    static const char sql[] = "SELECT id, site_id, sex, birth_date, birth_precision, deleted, name_fold"
                              " FROM patients WHERE id = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        db_column_copy(st, 0, out->id, sizeof(out->id));
        db_column_copy(st, 1, out->site_id, sizeof(out->site_id));
        db_column_copy(st, 2, out->sex, sizeof(out->sex));
        db_column_copy(st, 3, out->birth_date, sizeof(out->birth_date));
        db_column_copy(st, 4, out->birth_precision, sizeof(out->birth_precision));
        out->deleted = sqlite3_column_int(st, 5);
        db_column_copy(st, 6, out->name_fold, sizeof(out->name_fold));
    }
    db_stmt_done(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : db_fail(db, "get patient brief", e);
}

int store_patient_terms_set(struct db *db, const char *id, const char *const *old, size_t nold,
                            const char *const *terms, size_t n, struct err *e)
{
    static const char del[] = "DELETE FROM patient_terms WHERE term = $1 AND patient_id = $2";
    static const char ins[] = "INSERT INTO patient_terms (term, patient_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
    sqlite3_stmt *st;
    size_t i;
    int rc;

    if (nold && (st = db_stmt(db, del, e)) == NULL)
        return -1;
    for (i = 0; i < nold; i++) {
        db_bind_text(st, 1, old[i]);
        db_bind_text(st, 2, id);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            db_stmt_done(st);
            return db_fail(db, "remove patient term", e);
        }
    }
    if ((st = db_stmt(db, ins, e)) == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        db_bind_text(st, 1, terms[i]);
        db_bind_text(st, 2, id);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            db_stmt_done(st);
            return db_fail(db, "insert patient term", e);
        }
    }
    db_stmt_done(st);
    return 0;
}

static int scan_ids(struct db *db, sqlite3_stmt *st, store_id_cb cb, void *ctx, const char *what, struct err *e)
{
    int rc;

    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (cb((const char *)sqlite3_column_text(st, 0), ctx) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    db_stmt_done(st);
    return rc == SQLITE_DONE ? 0 : db_fail(db, what, e);
}

int store_patient_terms_insert(struct db *db, const char *const *terms, const char *const *ids, size_t n,
                               struct err *e)
{
    static const char ins[] = "INSERT INTO patient_terms (term, patient_id) VALUES ($1, $2) ON CONFLICT DO NOTHING";
    sqlite3_stmt *st;
    size_t i;
    int rc;

    if (n == 0)
        return 0;
    if ((st = db_stmt(db, ins, e)) == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        db_bind_text(st, 1, terms[i]);
        db_bind_text(st, 2, ids[i]);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            db_stmt_done(st);
            return db_fail(db, "insert patient term", e);
        }
    }
    db_stmt_done(st);
    return 0;
}

int store_patient_terms_clear(struct db *db, struct err *e)
{
    static const char sql[] = "DELETE FROM patient_terms";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    return st == NULL ? -1 : db_step_done(db, st, "clear patient terms", e);
}

int store_patient_ids_after(struct db *db, const char *after, int64_t limit, store_id_cb cb, void *ctx,
                            struct err *e)
{
    static const char sql[] = "SELECT id FROM patients WHERE id > $1 ORDER BY id LIMIT $2";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, after ? after : "");
    sqlite3_bind_int64(st, 2, limit);
    return scan_ids(db, st, cb, ctx, "list patient ids", e);
}

int store_patient_terms_scan(struct db *db, const char *lo, const char *hi, int64_t limit, store_id_cb cb,
                             void *ctx, struct err *e)
{
    /* one term: newest patients first, straight from the (term, patient_id) index; a prefix range: in
     * index order, so that a limit stops the scan instead of sorting every match */
    static const char exact[] = "SELECT patient_id FROM patient_terms WHERE term = $1"
                                " ORDER BY patient_id DESC LIMIT $2";
    static const char range[] = "SELECT patient_id FROM patient_terms WHERE term >= $1 AND term < $2 LIMIT $3";
    sqlite3_stmt *st;
    size_t n = strlen(lo);

    if (strlen(hi) == n + 1 && strncmp(lo, hi, n) == 0 && hi[n] == '\x01') {
        if ((st = db_stmt(db, exact, e)) == NULL)
            return -1;
        db_bind_text(st, 1, lo);
        sqlite3_bind_int64(st, 2, limit);
    } else {
        if ((st = db_stmt(db, range, e)) == NULL)
            return -1;
        db_bind_text(st, 1, lo);
        db_bind_text(st, 2, hi);
        sqlite3_bind_int64(st, 3, limit);
    }
    return scan_ids(db, st, cb, ctx, "scan patient terms", e);
}

int store_patient_term_first(struct db *db, const char *lo, const char *hi, char *out, size_t outlen, struct err *e)
{
    static const char sql[] = "SELECT term FROM patient_terms WHERE term >= $1 AND term < $2 LIMIT 1";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, lo);
    db_bind_text(st, 2, hi);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        db_column_copy(st, 0, out, outlen);
    db_stmt_done(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : db_fail(db, "read patient term", e);
}

int store_patient_term_has(struct db *db, const char *term, const char *id, struct err *e)
{
    static const char sql[] = "SELECT 1 FROM patient_terms WHERE term = $1 AND patient_id = $2";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, term);
    db_bind_text(st, 2, id);
    return db_step_exists(db, st, "find patient term", e);
}

int store_patient_terms_count(struct db *db, const char *lo, const char *hi, int64_t cap, int64_t *n, struct err *e)
{
    static const char sql[] = "SELECT count(*) FROM (SELECT 1 FROM patient_terms WHERE term >= $1 AND term < $2"
                              " LIMIT $3)";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    *n = 0;
    if (st == NULL)
        return -1;
    db_bind_text(st, 1, lo);
    db_bind_text(st, 2, hi);
    sqlite3_bind_int64(st, 3, cap);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    db_stmt_done(st);
    return rc == SQLITE_ROW ? 0 : db_fail(db, "count patient terms", e);
}

int store_patient_list(struct db *db, const char *sites_json, const char *before, int64_t limit, store_id_cb cb,
                       void *ctx, struct err *e)
{
    static const char sql[] = "SELECT id FROM patients WHERE deleted = 0 AND id < $2"
                              " AND site_id IN (SELECT value FROM json_each($1)) ORDER BY id DESC LIMIT $3";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, sites_json);
    db_bind_text(st, 2, before ? before : "~");
    sqlite3_bind_int64(st, 3, limit);
    return scan_ids(db, st, cb, ctx, "list patients", e);
}

int store_patient_count(struct db *db, int64_t *n, struct err *e)
{
    static const char sql[] = "SELECT count(*) FROM patients WHERE deleted = 0";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    if (st == NULL)
        return -1;
    rc = sqlite3_step(st);
    *n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    db_stmt_done(st);
    return rc == SQLITE_ROW ? 0 : db_fail(db, "count patients", e);
}

int store_registration_config_get(struct db *db, const char *site_id, char **json, struct err *e)
{
    static const char sql[] = "SELECT config FROM registration_config WHERE site_id = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc;

    *json = NULL;
    if (st == NULL)
        return -1;
    db_bind_text(st, 1, site_id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && (*json = strdup((const char *)sqlite3_column_text(st, 0))) == NULL) {
        db_stmt_done(st);
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    }
    db_stmt_done(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : db_fail(db, "get registration config", e);
}

int store_registration_config_put(struct db *db, const char *site_id, const char *json, int64_t at,
                                  struct err *e)
{
    static const char sql[] = "INSERT INTO registration_config (site_id, config, updated_at) VALUES ($1, $2, $3)"
                              " ON CONFLICT (site_id) DO UPDATE SET config = excluded.config,"
                              " updated_at = excluded.updated_at";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, site_id);
    db_bind_text(st, 2, json);
    sqlite3_bind_int64(st, 3, at);
    return db_step_done(db, st, "put registration config", e);
}
