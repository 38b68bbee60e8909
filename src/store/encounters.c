/* encounters.c — SQL for encounters and form entries (see store/encounters.h). */
#include <stdlib.h>
#include <string.h>

#include "store/db_internal.h"
#include "store/encounters.h"

/* ---- encounters ---- */

#define ENCOUNTER_COLS "id, patient_id, site_id, type, status, provider, started_at, ended_at, notes, deleted," \
                       " created_at, updated_at"
static const char *const encounter_text[] = {
    "id", "patient_id", "site_id", "type", "status", "provider", "started_at", "ended_at", "notes",
};
#define ENCOUNTER_NTEXT (sizeof(encounter_text) / sizeof(encounter_text[0]))

int store_encounter_put(struct db *db, const json_t *enc, int64_t created_at, int64_t updated_at, struct err *e)
{
    const char *id = json_string_value(json_object_get(enc, "id"));

    return store_encounter_put_fields(db, id ? id : "", enc, created_at, updated_at, e);
}

int store_encounter_put_fields(struct db *db, const char *id, const json_t *enc, int64_t created_at,
                               int64_t updated_at, struct err *e)
{
    static const char sql[] =
        "INSERT INTO encounters (" ENCOUNTER_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        " ON CONFLICT (id) DO UPDATE SET patient_id = excluded.patient_id, site_id = excluded.site_id,"
        " type = excluded.type, status = excluded.status, provider = excluded.provider,"
        " started_at = excluded.started_at, ended_at = excluded.ended_at, notes = excluded.notes,"
        " deleted = excluded.deleted, updated_at = excluded.updated_at";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    const char *s;
    size_t i;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, id);
    for (i = 1; i < ENCOUNTER_NTEXT; i++) {
        s = json_string_value(json_object_get(enc, encounter_text[i]));
        if (s == NULL && i < 7)     /* NOT NULL columns */
            s = "";
        db_bind_text(st, (int)i + 1, s);
    }
    sqlite3_bind_int(st, 10, json_is_true(json_object_get(enc, "deleted")));
    sqlite3_bind_int64(st, 11, created_at);
    sqlite3_bind_int64(st, 12, updated_at);
    return db_step_done(db, st, "put encounter", e);
}

static json_t *encounter_read(sqlite3_stmt *st)
{
    json_t *o = json_object();
    const unsigned char *t;
    size_t i;

    for (i = 0; o && i < ENCOUNTER_NTEXT; i++) {
        t = sqlite3_column_text(st, (int)i);
        json_object_set_new(o, encounter_text[i], t ? json_string((const char *)t) : json_null());
    }
    if (o) {
        json_object_set_new(o, "deleted", json_boolean(sqlite3_column_int(st, 9)));
        json_object_set_new(o, "created_at", json_integer(sqlite3_column_int64(st, 10)));
        json_object_set_new(o, "updated_at", json_integer(sqlite3_column_int64(st, 11)));
    }
    return o;
}

int store_encounter_get(struct db *db, const char *id, json_t **out, struct err *e)
{
    static const char sql[] = "SELECT " ENCOUNTER_COLS " FROM encounters WHERE id = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    *out = NULL;
    if (st == NULL)
        return -1;
    db_bind_text(st, 1, id);
    return db_rows_json(db, st, encounter_read, NULL, NULL, out, "get encounter", e);
}

int store_encounter_list(struct db *db, const char *patient_id, const char *after, int64_t limit,
                         store_json_cb cb, void *ctx, struct err *e)
{
    static const char first[] =
        "SELECT " ENCOUNTER_COLS " FROM encounters WHERE patient_id = $1 AND deleted = 0"
        " ORDER BY started_at DESC, id DESC LIMIT $2";
    static const char next[] =
        "SELECT " ENCOUNTER_COLS " FROM encounters WHERE patient_id = $1 AND deleted = 0"
        " AND (started_at, id) < (SELECT started_at, id FROM encounters WHERE id = $3)"
        " ORDER BY started_at DESC, id DESC LIMIT $2";
    sqlite3_stmt *st = db_stmt(db, after ? next : first, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, patient_id);
    sqlite3_bind_int64(st, 2, limit);
    if (after)
        db_bind_text(st, 3, after);
    return db_rows_json(db, st, encounter_read, cb, ctx, NULL, "list encounters", e) < 0 ? -1 : 0;
}

int store_patients_without_encounters(struct db *db, const char *sites_json, int (*cb)(const char *id, void *ctx),
                                      void *ctx, struct err *e)
{
    static const char sql[] =
        "SELECT p.id FROM patients p WHERE p.deleted = 0 AND p.site_id IN (SELECT value FROM json_each($1))"
        " AND NOT EXISTS (SELECT 1 FROM encounters e WHERE e.patient_id = p.id) ORDER BY p.id";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    int rc, stop = 0;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, sites_json);
    while (!stop && (rc = sqlite3_step(st)) == SQLITE_ROW)
        stop = cb((const char *)sqlite3_column_text(st, 0), ctx);
    db_stmt_done(st);
    return stop || rc == SQLITE_DONE ? 0 : db_fail(db, "patients without encounters", e);
}

/* ---- entries ---- */

#define ENTRY_COLS "e.id, e.encounter_id, e.patient_id, e.site_id, e.form_id, e.form_row, e.supersedes, e.withdraws," \
                   " e.reason, e.author, e.recorded_at, e.form_version, e.vals, e.created_at," \
                   " (SELECT s.id FROM entries s WHERE s.supersedes = e.id ORDER BY s.id DESC LIMIT 1)," \
                   " (SELECT w.id FROM entries w WHERE w.withdraws = e.id ORDER BY w.id LIMIT 1)"
static const char *const entry_text[] = {
    "id", "encounter_id", "patient_id", "site_id", "form_id", "form_row", "supersedes", "withdraws", "reason",
    "author", "recorded_at",
};
#define ENTRY_NTEXT (sizeof(entry_text) / sizeof(entry_text[0]))

int store_entry_put_fields(struct db *db, const char *id, const json_t *entry, const char *vals_text,
                           size_t vals_len, int64_t created_at, struct err *e)
{
    static const char sql[] =
        "INSERT INTO entries (id, encounter_id, patient_id, site_id, form_id, form_row, supersedes, withdraws,"
        " reason, author, recorded_at, form_version, vals, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        " ON CONFLICT (id) DO UPDATE SET encounter_id = excluded.encounter_id, patient_id = excluded.patient_id,"
        " site_id = excluded.site_id, form_id = excluded.form_id, form_row = excluded.form_row,"
        " supersedes = excluded.supersedes, withdraws = excluded.withdraws, reason = excluded.reason,"
        " author = excluded.author, recorded_at = excluded.recorded_at, form_version = excluded.form_version,"
        " vals = excluded.vals";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    const json_t *v;
    char *vals = NULL;
    const char *s;
    size_t i;
    int rc;

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, id);
    for (i = 1; i < ENTRY_NTEXT; i++) {
        s = json_string_value(json_object_get(entry, entry_text[i]));
        if (s == NULL && (i < 4 || i >= 9))     /* NOT NULL columns */
            s = "";
        db_bind_text(st, (int)i + 1, s);
    }
    v = json_object_get(entry, "form_version");
    if (json_is_integer(v))
        sqlite3_bind_int64(st, 12, json_integer_value(v));
    else
        sqlite3_bind_null(st, 12);
    v = json_object_get(entry, "values");
    if (vals_text && json_is_object(v)) {
        sqlite3_bind_text(st, 13, vals_text, (int)vals_len, SQLITE_STATIC);
    } else {
        if (json_is_object(v) && (vals = json_dumps(v, JSON_COMPACT)) == NULL) {
            db_stmt_done(st);
            return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        }
        db_bind_text(st, 13, vals);
    }
    sqlite3_bind_int64(st, 14, created_at);
    rc = db_step_done(db, st, "put entry", e);
    free(vals);
    return rc;
}

int store_entry_put(struct db *db, const json_t *entry, int64_t created_at, struct err *e)
{
    const char *id = json_string_value(json_object_get(entry, "id"));

    return store_entry_put_fields(db, id ? id : "", entry, NULL, 0, created_at, e);
}

static json_t *entry_read(sqlite3_stmt *st)
{
    json_t *o = json_object(), *v;
    const unsigned char *t;
    size_t i;

    if (o == NULL)
        return NULL;
    for (i = 0; i < ENTRY_NTEXT; i++) {
        t = sqlite3_column_text(st, (int)i);
        json_object_set_new(o, entry_text[i], t && (*t || i < 4) ? json_string((const char *)t) : json_null());
    }
    json_object_set_new(o, "form_version", sqlite3_column_type(st, 11) == SQLITE_NULL
                                               ? json_null() : json_integer(sqlite3_column_int64(st, 11)));
    t = sqlite3_column_text(st, 12);
    v = t ? json_loads((const char *)t, 0, NULL) : NULL;
    json_object_set_new(o, "values", v ? v : json_null());
    json_object_set_new(o, "created_at", json_integer(sqlite3_column_int64(st, 13)));
    t = sqlite3_column_text(st, 14);
    json_object_set_new(o, "superseded_by", t ? json_string((const char *)t) : json_null());
    t = sqlite3_column_text(st, 15);
    json_object_set_new(o, "withdrawn_by", t ? json_string((const char *)t) : json_null());
    return o;
}

int store_entry_get(struct db *db, const char *id, json_t **out, struct err *e)
{
    static const char sql[] = "SELECT " ENTRY_COLS " FROM entries e WHERE e.id = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    *out = NULL;
    if (st == NULL)
        return -1;
    db_bind_text(st, 1, id);
    return db_rows_json(db, st, entry_read, NULL, NULL, out, "get entry", e);
}

int store_entry_list_encounter(struct db *db, const char *encounter_id, store_json_cb cb, void *ctx, struct err *e)
{
    static const char sql[] = "SELECT " ENTRY_COLS " FROM entries e WHERE e.encounter_id = $1 ORDER BY e.id";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, encounter_id);
    return db_rows_json(db, st, entry_read, cb, ctx, NULL, "list entries", e) < 0 ? -1 : 0;
}

int store_entry_list_sites(struct db *db, const char *sites_json, const char *after, int64_t limit,
                           store_json_cb cb, void *ctx, struct err *e)
{
    static const char sql[] =
        "SELECT " ENTRY_COLS " FROM entries e WHERE e.site_id IN (SELECT value FROM json_each($1)) AND e.id > $2"
        " ORDER BY e.id LIMIT $3";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, sites_json);
    db_bind_text(st, 2, after ? after : "");
    sqlite3_bind_int64(st, 3, limit);
    return db_rows_json(db, st, entry_read, cb, ctx, NULL, "list entries of sites", e) < 0 ? -1 : 0;
}

int store_entry_list_patient(struct db *db, const char *patient_id, const char *after, int64_t limit,
                             store_json_cb cb, void *ctx, struct err *e)
{
    static const char first[] =
        "SELECT " ENTRY_COLS " FROM entries e WHERE e.patient_id = $1 ORDER BY e.id DESC LIMIT $2";
    static const char next[] =
        "SELECT " ENTRY_COLS " FROM entries e WHERE e.patient_id = $1 AND e.id < $3 ORDER BY e.id DESC LIMIT $2";
    sqlite3_stmt *st = db_stmt(db, after ? next : first, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, patient_id);
    sqlite3_bind_int64(st, 2, limit);
    if (after)
        db_bind_text(st, 3, after);
    return db_rows_json(db, st, entry_read, cb, ctx, NULL, "list patient entries", e) < 0 ? -1 : 0;
}
