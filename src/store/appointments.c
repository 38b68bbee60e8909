/* appointments.c — SQL for appointments and the day's queue (see store/appointments.h). */
#include <string.h>

#include "store/appointments.h"
#include "store/db_internal.h"

#define APPT_COLS "a.id, a.patient_id, a.site_id, a.starts_at, a.day, a.service, a.reason, a.status," \
                  " a.encounter_id, a.booked_by, a.notes, a.missed_day, a.created_at, a.updated_at"
static const char *const appt_text[] = {
    "id", "patient_id", "site_id", "starts_at", "day", "service", "reason", "status", "encounter_id", "booked_by",
    "notes", "missed_day",
};
#define APPT_NTEXT (sizeof(appt_text) / sizeof(appt_text[0]))
#define APPT_DAY 4      /* index of the derived day in appt_text */

/* 1 when column i of appt_text is NOT NULL in the table */
static int appt_required(size_t i)
{
    return i <= APPT_DAY || i == 7 || i == 9;
}

int store_appointment_put(struct db *db, const json_t *appt, int64_t created_at, int64_t updated_at, struct err *e)
{
    static const char sql[] =
        "INSERT INTO appointments (id, patient_id, site_id, starts_at, day, service, reason, status, encounter_id,"
        " booked_by, notes, missed_day, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        " ON CONFLICT (id) DO UPDATE SET patient_id = excluded.patient_id, site_id = excluded.site_id,"
        " starts_at = excluded.starts_at, day = excluded.day, service = excluded.service,"
        " reason = excluded.reason, status = excluded.status, encounter_id = excluded.encounter_id,"
        " booked_by = excluded.booked_by, notes = excluded.notes, missed_day = excluded.missed_day,"
        " updated_at = excluded.updated_at";
    sqlite3_stmt *st = db_stmt(db, sql, e);
    const char *s, *starts = json_string_value(json_object_get(appt, "starts_at"));
    char day[11] = "";
    size_t i;

    if (st == NULL)
        return -1;
    /* starts_at is "YYYY-MM-DDTHH:MM:SSZ" (checked where it was written): its first ten bytes are the UTC day */
    if (starts && strlen(starts) >= 10) {
        memcpy(day, starts, 10);
        day[10] = '\0';
    }
    for (i = 0; i < APPT_NTEXT; i++) {
        s = i == APPT_DAY ? day : json_string_value(json_object_get(appt, appt_text[i]));
        if (s == NULL && appt_required(i))
            s = "";
        db_bind_text(st, (int)i + 1, s);
    }
    sqlite3_bind_int64(st, 13, created_at);
    sqlite3_bind_int64(st, 14, updated_at);
    return db_step_done(db, st, "put appointment", e);
}

static json_t *appt_read(sqlite3_stmt *st)
{
    json_t *o = json_object();
    const unsigned char *t;
    size_t i;

    for (i = 0; o && i < APPT_NTEXT; i++) {
        t = sqlite3_column_text(st, (int)i);
        json_object_set_new(o, appt_text[i], t ? json_string((const char *)t) : json_null());
    }
    if (o) {
        json_object_set_new(o, "created_at", json_integer(sqlite3_column_int64(st, 12)));
        json_object_set_new(o, "updated_at", json_integer(sqlite3_column_int64(st, 13)));
    }
    return o;
}

/* A queue row: the appointment and the names of its patient (columns 14..18). */
static json_t *appt_read_named(sqlite3_stmt *st)
{
    static const char *const names[] = { "given_name", "middle_name", "family_name", "name_original" };
    json_t *o = appt_read(st), *n;
    const unsigned char *t;
    size_t i;

    if (o == NULL)
        return NULL;
    if (sqlite3_column_int(st, 18) == 0) {
        json_object_set_new(o, "patient_names", json_null());
        return o;
    }
    if ((n = json_object()) == NULL) {
        json_decref(o);
        return NULL;
    }
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        t = sqlite3_column_text(st, 14 + (int)i);
        json_object_set_new(n, names[i], json_string(t ? (const char *)t : ""));
    }
    json_object_set_new(o, "patient_names", n);
    return o;
}

int store_appointment_get(struct db *db, const char *id, json_t **out, struct err *e)
{
    static const char sql[] = "SELECT " APPT_COLS " FROM appointments a WHERE a.id = $1";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    *out = NULL;
    if (st == NULL)
        return -1;
    db_bind_text(st, 1, id);
    return db_rows_json(db, st, appt_read, NULL, NULL, out, "get appointment", e);
}

int store_appointment_list_patient(struct db *db, const char *patient_id, const char *after, int64_t limit,
                                   store_appointment_cb cb, void *ctx, struct err *e)
{
    static const char first[] =
        "SELECT " APPT_COLS " FROM appointments a WHERE a.patient_id = $1"
        " ORDER BY a.starts_at DESC, a.id DESC LIMIT $2";
    static const char next[] =
        "SELECT " APPT_COLS " FROM appointments a WHERE a.patient_id = $1"
        " AND (a.starts_at, a.id) < (SELECT b.starts_at, b.id FROM appointments b WHERE b.id = $3)"
        " ORDER BY a.starts_at DESC, a.id DESC LIMIT $2";
    sqlite3_stmt *st = db_stmt(db, after ? next : first, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, patient_id);
    sqlite3_bind_int64(st, 2, limit);
    if (after)
        db_bind_text(st, 3, after);
    return db_rows_json(db, st, appt_read, cb, ctx, NULL, "list appointments of a patient", e) < 0 ? -1 : 0;
}

int store_appointment_list_day(struct db *db, const char *site_id, const char *day, int64_t limit,
                               store_appointment_cb cb, void *ctx, struct err *e)
{
    static const char sql[] =
        "SELECT " APPT_COLS ", p.given_name, p.middle_name, p.family_name, p.name_original, p.id IS NOT NULL"
        " FROM appointments a LEFT JOIN patients p ON p.id = a.patient_id"
        " WHERE a.site_id = $1 AND a.day = $2 AND COALESCE(p.deleted, 0) = 0"
        " ORDER BY a.starts_at, a.id LIMIT $3";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, site_id);
    db_bind_text(st, 2, day);
    sqlite3_bind_int64(st, 3, limit);
    return db_rows_json(db, st, appt_read_named, cb, ctx, NULL, "list the day's appointments", e) < 0 ? -1 : 0;
}

int store_appointment_list_unattended(struct db *db, const char *before_day, store_appointment_cb cb, void *ctx,
                                      struct err *e)
{
    /* the WHERE repeats the partial index appointments_unattended's condition, so the index serves it */
    static const char sql[] =
        "SELECT " APPT_COLS " FROM appointments a"
        " WHERE a.status IN ('booked', 'arrived') AND (a.missed_day IS NULL OR a.missed_day <> a.day)"
        " AND a.day < $1 ORDER BY a.day, a.id";
    sqlite3_stmt *st = db_stmt(db, sql, e);

    if (st == NULL)
        return -1;
    db_bind_text(st, 1, before_day);
    return db_rows_json(db, st, appt_read, cb, ctx, NULL, "list unattended appointments", e) < 0 ? -1 : 0;
}
