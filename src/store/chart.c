/* chart.c — SQL for chart items and the summary's and timeline's reads (see store/chart.h). */
#include <stdlib.h>
#include <string.h>

#include "store/chart.h"
#include "store/db_internal.h"

int store_chart_put(struct db *db, const json_t *item, int64_t created_at, int64_t updated_at, struct err *e)
{
    static const char sql[] =
        "INSERT INTO chart_items (id, kind, patient_id, site_id, status, data, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, patient_id = excluded.patient_id,"
        " site_id = excluded.site_id, status = excluded.status, data = excluded.data, updated_at = excluded.updated_at";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    char *data;
    int rc;

    if (st == NULL)
        return -1;
    if ((data = json_dumps(json_object_get(item, "data"), JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
        db_stmt_done(st);
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    }
    db_bind_text(st, 1, json_string_value(json_object_get(item, "id")));
    db_bind_text(st, 2, json_string_value(json_object_get(item, "kind")));
    db_bind_text(st, 3, json_string_value(json_object_get(item, "patient_id")));
    db_bind_text(st, 4, json_string_value(json_object_get(item, "site_id")));
    db_bind_text(st, 5, json_string_value(json_object_get(item, "status")));
    db_bind_text(st, 6, data);
    sqlite3_bind_int64(st, 7, created_at);
    sqlite3_bind_int64(st, 8, updated_at);
    rc = db_step_done(db, st, "put chart item", e);
    free(data);
    return rc;
}

static json_t *chart_read(sqlite3_stmt *st)
{
    const unsigned char *t = sqlite3_column_text(st, 5);
    json_t *data = t ? json_loads((const char *)t, 0, NULL) : NULL;

    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:I,s:I}", "id", sqlite3_column_text(st, 0), "kind",
                     sqlite3_column_text(st, 1), "patient_id", sqlite3_column_text(st, 2), "site_id",
                     sqlite3_column_text(st, 3), "status", sqlite3_column_text(st, 4), "data",
                     data ? data : json_object(), "created_at", (json_int_t)sqlite3_column_int64(st, 6), "updated_at",
                     (json_int_t)sqlite3_column_int64(st, 7));
}

#define CHART_COLS "id, kind, patient_id, site_id, status, data, created_at, updated_at"

int store_chart_get(struct db *db, const char *id, json_t **out, struct err *e)
{
    static const char sql[] = "SELECT " CHART_COLS " FROM chart_items WHERE id = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    *out = NULL;
    if (st == NULL)
        return -1;
    db_bind_text(st, 1, id);
    return db_rows_json(db, st, chart_read, NULL, NULL, out, "get chart item", e);
}

int store_chart_list(struct db *db, const char *patient_id, const char *kind, store_json_cb cb, void *ctx,
                     struct err *e)
{
    static const char all[] = "SELECT " CHART_COLS " FROM chart_items WHERE patient_id = $1 ORDER BY kind, id";
    static const char one[] = "SELECT " CHART_COLS " FROM chart_items WHERE patient_id = $1 AND kind = $2 ORDER BY id";
    sqlite3_stmt *st = db_stmt(db, kind ? one : all, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, patient_id);
    if (kind)
        db_bind_text(st, 2, kind);
    return db_rows_json(db, st, chart_read, cb, ctx, NULL, "list chart items", e) < 0 ? -1 : 0;
}

static json_t *entry_row(sqlite3_stmt *st)
{
    const unsigned char *t = sqlite3_column_text(st, 4);
    json_t *vals = t ? json_loads((const char *)t, 0, NULL) : NULL;

    return json_pack("{s:s,s:s,s:s,s:I,s:o,s:s,s:s}", "id", sqlite3_column_text(st, 0), "encounter_id",
                     sqlite3_column_text(st, 1), "form_id", sqlite3_column_text(st, 2), "form_version",
                     (json_int_t)sqlite3_column_int64(st, 3), "values", vals ? vals : json_object(), "recorded_at",
                     sqlite3_column_text(st, 5), "form_row", sqlite3_column_text(st, 6));
}

int store_entries_current(struct db *db, const char *patient_id, const char *form_id, int64_t limit,
                          store_json_cb cb, void *ctx, struct err *e)
{
    static const char sql[] =
        "SELECT e.id, e.encounter_id, e.form_id, e.form_version, e.vals, e.recorded_at, e.form_row FROM entries e"
        " WHERE e.patient_id = $1 AND e.form_id = $2"
        " AND NOT EXISTS (SELECT 1 FROM entries s WHERE s.supersedes = e.id)"
        " AND NOT EXISTS (SELECT 1 FROM entries w WHERE w.withdraws = e.id)"
        " ORDER BY e.id DESC LIMIT $3";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, patient_id);
    db_bind_text(st, 2, form_id);
    sqlite3_bind_int64(st, 3, limit);
    return db_rows_json(db, st, entry_row, cb, ctx, NULL, "current entries", e) < 0 ? -1 : 0;
}

static json_t *appointment_row(sqlite3_stmt *st)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "id", sqlite3_column_text(st, 0), "starts_at",
                          sqlite3_column_text(st, 1), "status", sqlite3_column_text(st, 4), "site_id",
                          sqlite3_column_text(st, 5));
    const unsigned char *t;

    if (o == NULL)
        return NULL;
    t = sqlite3_column_text(st, 2);
    json_object_set_new(o, "service", t ? json_string((const char *)t) : json_null());
    t = sqlite3_column_text(st, 3);
    json_object_set_new(o, "reason", t ? json_string((const char *)t) : json_null());
    return o;
}

int store_next_appointment(struct db *db, const char *patient_id, const char *from, json_t **out, struct err *e)
{
    static const char sql[] =
        "SELECT id, starts_at, service, reason, status, site_id FROM appointments WHERE patient_id = $1"
        " AND starts_at >= $2 AND status IN ('booked', 'arrived') ORDER BY starts_at LIMIT 1";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    *out = NULL;
    if (st == NULL)
        return -1;
    db_bind_text(st, 1, patient_id);
    db_bind_text(st, 2, from);
    return db_rows_json(db, st, appointment_row, NULL, NULL, out, "next appointment", e);
}

static json_t *timeline_row(sqlite3_stmt *st)
{
    return json_pack("{s:s,s:s,s:s}", "type", sqlite3_column_text(st, 0), "id", sqlite3_column_text(st, 1), "at",
                     sqlite3_column_text(st, 2));
}

int store_timeline(struct db *db, const char *patient_id, const char *after_time, const char *after_id,
                   int64_t limit, store_json_cb cb, void *ctx, struct err *e)
{
    static const char sql[] =
        "SELECT type, id, at FROM ("
        "  SELECT 'encounter' AS type, id, started_at AS at FROM encounters WHERE patient_id = $1 AND deleted = 0"
        "  UNION ALL"
        "  SELECT 'entry', id, recorded_at FROM entries WHERE patient_id = $1 AND form_id IS NOT NULL"
        ") WHERE $2 IS NULL OR (at, id) < ($2, $3) ORDER BY at DESC, id DESC LIMIT $4";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, patient_id);
    db_bind_text(st, 2, after_time);
    db_bind_text(st, 3, after_id);
    sqlite3_bind_int64(st, 4, limit);
    return db_rows_json(db, st, timeline_row, cb, ctx, NULL, "timeline", e) < 0 ? -1 : 0;
}
