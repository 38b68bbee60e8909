/* appointments.c — appointments, follow-ups, the day's queue and the missed sweep (see appointments.h). */
#include <stdio.h>
#include <string.h>

#include "core/date.h"
#include "core/util.h"
#include "services/appointments.h"
#include "services/audit.h"
#include "services/changelog.h"
#include "services/encounters.h"
#include "store/appointments.h"
#include "store/encounters.h"
#include "store/patients.h"

#define DAY_MS 86400000LL
#define BOOK_AHEAD_MS (5 * 366 * DAY_MS)    /* further ahead is a typing mistake, not a plan */
#define SERVICE_MAX 32
#define REASON_MAX 500
#define NOTES_MAX 2000

const struct json_field appointments_book_fields[] = {
    { "starts_at", JT_STRING, JF_REQUIRED, 32 },
    { "service", JT_STRING, JF_REQUIRED, SERVICE_MAX },
    { "reason", JT_STRING, JF_NULLABLE, REASON_MAX },
    { "site_id", JT_STRING, 0, 36 },
    { "notes", JT_STRING, JF_NULLABLE, NOTES_MAX },
    { NULL, 0, 0, 0 },
};

const struct json_field appointments_follow_up_fields[] = {
    { "starts_at", JT_STRING, JF_REQUIRED, 32 },
    { "service", JT_STRING, 0, SERVICE_MAX },
    { "reason", JT_STRING, JF_NULLABLE, REASON_MAX },
    { "site_id", JT_STRING, 0, 36 },
    { "notes", JT_STRING, JF_NULLABLE, NOTES_MAX },
    { NULL, 0, 0, 0 },
};

const struct json_field appointments_update_fields[] = {
    { "status", JT_STRING, 0, 32 },
    { "starts_at", JT_STRING, 0, 32 },
    { "notes", JT_STRING, JF_NULLABLE, NOTES_MAX },
    { "encounter_id", JT_STRING, 0, 36 },
    { NULL, 0, 0, 0 },
};

static const char *const statuses[] = { "booked", "arrived", "fulfilled", "missed", "cancelled", NULL };

/* What a person may do; "missed" is never chosen, only found by the sweep. */
static const struct {
    const char *from, *to;
} transitions[] = {
    { "booked", "arrived" },
    { "booked", "cancelled" },
    { "arrived", "fulfilled" },
};

static int transition_allowed(const char *from, const char *to)
{
    size_t i;

    for (i = 0; i < sizeof(transitions) / sizeof(transitions[0]); i++)
        if (strcmp(transitions[i].from, from) == 0 && strcmp(transitions[i].to, to) == 0)
            return 1;
    return 0;
}

/* The status as people see it: the stored one, or "missed" when the sweep found the appointment still
 * booked or arrived after its day (and it was not moved to another day since). */
static const char *status_of(const json_t *rec)
{
    const char *status = json_string_value(json_object_get(rec, "status"));
    const char *missed = json_string_value(json_object_get(rec, "missed_day"));
    const char *day = json_string_value(json_object_get(rec, "day"));

    if (status == NULL)
        return "";
    if (missed && day && strcmp(missed, day) == 0 && (strcmp(status, "booked") == 0 || strcmp(status, "arrived") == 0))
        return "missed";
    return status;
}

static json_t *appointment_view(const json_t *rec)
{
    json_t *v = json_deep_copy(rec);

    if (v == NULL)
        return NULL;
    json_object_set_new(v, "status", json_string(status_of(rec)));
    json_object_del(v, "missed_day");
    json_object_del(v, "patient_names");
    return v;
}

/* A service is a short code: a lowercase letter, then lowercase letters, digits or '_'. */
static int service_valid(const char *s)
{
    size_t i;

    if (s == NULL || s[0] < 'a' || s[0] > 'z')
        return 0;
    for (i = 1; s[i]; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return i <= SERVICE_MAX;
}

/* ---- visibility (the rule of every clinical record: services/encounters.h) ---- */

static json_t *appointment_load(struct db *db, const struct caller *who, const char *id, struct err *e)
{
    return clinical_load(db, who, id, store_appointment_get, NULL, NULL, "appointment_not_found", "appointment", e);
}

/* ---- input ---- */

/* starts_at of the input, checked and written as "YYYY-MM-DDTHH:MM:SSZ" into out (so that times order as
 * text and the day is its first ten bytes): 1 given, 0 absent, -1 invalid. */
static int check_starts_at(const json_t *input, char out[21], struct err *e)
{
    const char *s = json_string_value(json_object_get(input, "starts_at"));
    int64_t ms, now = now_ms();

    if (s == NULL)
        return 0;
    if (datetime_parse(s, &ms) < 0)
        return err_set_field(e, "starts_at", ERR_UNPROCESSABLE, "invalid_time",
                             "starts_at must be a UTC time YYYY-MM-DDTHH:MM[:SS]Z");
    if (ms < now - DAY_MS)
        return err_set_field(e, "starts_at", ERR_UNPROCESSABLE, "time_in_past",
                             "starts_at is more than a day in the past: book a time to come");
    if (ms > now + BOOK_AHEAD_MS)
        return err_set_field(e, "starts_at", ERR_UNPROCESSABLE, "time_too_far",
                             "starts_at is more than five years ahead");
    datetime_format(ms, out);
    return 1;
}

/* Book inside the caller's write transaction for patient p. The site is input's site_id, else
 * default_site or the patient's when the caller has it, else the caller's first; link (may be NULL) is
 * the visit it follows up; service_default (may be NULL) stands in for a missing service. */
static json_t *book_in(struct db *db, const struct caller *who, const struct patient_brief *p, const json_t *input,
                       const char *default_site, const char *link, const char *service_default, struct err *e)
{
    const char *site = json_string_value(json_object_get(input, "site_id"));
    const char *service = json_string_value(json_object_get(input, "service"));
    json_t *changes = NULL, *rec = NULL, *out = NULL, *v;
    char id[ID_LEN], starts[21];
    int64_t now = now_ms();
    int has;

    if (who->nsites == 0)
        return err_set(e, ERR_FORBIDDEN, "no_site", "your account belongs to no site"), NULL;
    if (site && !caller_has_site(who, site))
        return err_set_field(e, "site_id", ERR_FORBIDDEN, "site_not_allowed", "you do not belong to that site"), NULL;
    if (site == NULL)
        site = caller_has_site(who, default_site) ? default_site
               : caller_has_site(who, p->site_id) ? p->site_id : who->sites[0];
    if ((has = check_starts_at(input, starts, e)) < 0)
        return NULL;
    if (has == 0)
        return err_set_field(e, "starts_at", ERR_INVALID, "missing_field", "starts_at is required"), NULL;
    if (service == NULL)
        service = service_default;
    if (!service_valid(service))
        return err_set_field(e, "service", ERR_UNPROCESSABLE, "invalid_service", "service must be a short code "
                             "of lowercase letters, digits and '_' (e.g. antenatal, ncd, vaccination)"), NULL;
    changes = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "patient_id", p->id, "site_id", site, "starts_at", starts,
                        "service", service, "status", "booked", "booked_by", who->username);
    if (changes == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    if (json_is_string(v = json_object_get(input, "reason")))
        json_object_set(changes, "reason", v);
    if (json_is_string(v = json_object_get(input, "notes")))
        json_object_set(changes, "notes", v);
    if (link)
        json_object_set_new(changes, "encounter_id", json_string(link));
    id_new(id);
    if (changelog_record(db, NULL, APPOINTMENT_TABLE, id, changes, CHANGELOG_NEW_ROW, NULL, e) < 0
        || clinical_store(db, id, NULL, changes, now, store_appointment_put, e) < 0
        || store_appointment_get(db, id, &rec, e) <= 0
        || audit_record(db, who, "appointment.create", "appointment", id, site, "ok", e) < 0)
        goto done;
    out = appointment_view(rec);
done:
    json_decref(changes);
    json_decref(rec);
    return out;
}

/* Commit when out is set, else roll back; returns out (NULL when the commit failed). */
static json_t *finish(struct db *db, json_t *out, struct err *e)
{
    if (out && db_commit(db, e) == 0)
        return out;
    db_rollback(db);
    json_decref(out);
    if (e->kind == ERR_NONE)
        err_set(e, ERR_INTERNAL, "internal_error", "the appointment could not be saved");
    return NULL;
}

json_t *appointments_create(struct db *db, const struct caller *who, const char *patient_id, const json_t *input,
                            struct err *e)
{
    struct patient_brief p;
    json_t *out = NULL;

    if (json_check_fields(input, appointments_book_fields, e) < 0 || db_begin_write(db, e) < 0)
        return NULL;
    if (clinical_patient_visible(db, who, patient_id, &p, e) == 0)
        out = book_in(db, who, &p, input, NULL, NULL, NULL, e);
    return finish(db, out, e);
}

json_t *appointments_follow_up(struct db *db, const struct caller *who, const char *encounter_id,
                               const json_t *input, struct err *e)
{
    struct patient_brief p;
    json_t *enc = NULL, *out = NULL;
    int found;

    if (json_check_fields(input, appointments_follow_up_fields, e) < 0 || db_begin_write(db, e) < 0)
        return NULL;
    if ((enc = encounters_load(db, who, encounter_id, e)) == NULL)
        goto done;
    if (strcmp(json_string_value(json_object_get(enc, "status")), "cancelled") == 0) {
        err_set(e, ERR_CONFLICT, "encounter_cancelled", "the encounter was cancelled: book from another one");
        goto done;
    }
    if ((found = store_patient_brief(db, json_string_value(json_object_get(enc, "patient_id")), &p, e)) < 0)
        goto done;
    if (!found || p.deleted) {
        err_set(e, ERR_NOT_FOUND, "patient_not_found", "the encounter's patient is not on this node");
        goto done;
    }
    out = book_in(db, who, &p, input, json_string_value(json_object_get(enc, "site_id")), encounter_id, "follow_up", e);
done:
    json_decref(enc);
    return finish(db, out, e);
}

/* Validate a change of cur into changes ({field: value}). */
static int update_changes(struct db *db, const struct caller *who, const json_t *input, const json_t *cur,
                          json_t *changes, struct err *e)
{
    const char *from = status_of(cur), *to = json_string_value(json_object_get(input, "status"));
    const char *link = json_string_value(json_object_get(input, "encounter_id"));
    json_t *enc, *v;
    char starts[21];
    int has;

    if (to && !str_in_list(to, statuses))
        return err_set_field(e, "status", ERR_UNPROCESSABLE, "invalid_status", "status must be booked, arrived, "
                             "fulfilled, missed or cancelled");
    if (to && strcmp(to, from) != 0) {
        if (!transition_allowed(from, to)) {
            if (strcmp(to, "missed") == 0)
                return err_set_field(e, "status", ERR_CONFLICT, "invalid_transition", "an appointment cannot go from "
                                     "%s to missed by hand: it is marked missed when its day is more than a day past",
                                     from);
            return err_set_field(e, "status", ERR_CONFLICT, "invalid_transition",
                                 "an appointment cannot go from %s to %s", from, to);
        }
        json_object_set_new(changes, "status", json_string(to));
    }
    if (to == NULL)
        to = from;
    if ((has = check_starts_at(input, starts, e)) < 0)
        return -1;
    if (has) {
        if (strcmp(from, "booked") != 0 || strcmp(to, "booked") != 0)
            return err_set_field(e, "starts_at", ERR_CONFLICT, "not_booked", "only a booked appointment can be "
                                 "rescheduled (this one is %s)", strcmp(from, "booked") != 0 ? from : to);
        if (strcmp(starts, json_string_value(json_object_get(cur, "starts_at")) ?: "") != 0)
            json_object_set_new(changes, "starts_at", json_string(starts));
    }
    if (link) {
        if (strcmp(to, "fulfilled") != 0)
            return err_set_field(e, "encounter_id", ERR_UNPROCESSABLE, "invalid_encounter", "encounter_id names the "
                                 "visit that fulfilled the appointment: send it with status fulfilled");
        if ((enc = encounters_load(db, who, link, e)) == NULL)
            return err_field(e, "encounter_id");
        has = json_equal(json_object_get(enc, "patient_id"), json_object_get(cur, "patient_id"));
        json_decref(enc);
        if (!has)
            return err_set_field(e, "encounter_id", ERR_UNPROCESSABLE, "invalid_encounter",
                                 "that visit is another patient's");
        if (!json_equal(json_object_get(input, "encounter_id"), json_object_get(cur, "encounter_id")))
            json_object_set(changes, "encounter_id", json_object_get(input, "encounter_id"));
    }
    if ((v = json_object_get(input, "notes")) && !json_equal(v, json_object_get(cur, "notes")))
        json_object_set(changes, "notes", v);
    return 0;
}

json_t *appointments_update(struct db *db, const struct caller *who, const char *id, const json_t *input,
                            struct err *e)
{
    json_t *changes = json_object(), *cur = NULL, *rec = NULL, *out = NULL;

    if (changes == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    if (json_check_fields(input, appointments_update_fields, e) < 0 || db_begin_write(db, e) < 0) {
        json_decref(changes);
        return NULL;
    }
    if ((cur = appointment_load(db, who, id, e)) == NULL || update_changes(db, who, input, cur, changes, e) < 0)
        goto done;
    if (json_object_size(changes) > 0
        && (changelog_record(db, NULL, APPOINTMENT_TABLE, id, changes, 0, NULL, e) < 0
            || clinical_store(db, id, cur, changes, now_ms(), store_appointment_put, e) < 0))
        goto done;
    if (store_appointment_get(db, id, &rec, e) <= 0
        || audit_record(db, who, "appointment.update", "appointment", id,
                        json_string_value(json_object_get(cur, "site_id")), "ok", e) < 0)
        goto done;
    out = appointment_view(rec);
done:
    json_decref(changes);
    json_decref(cur);
    json_decref(rec);
    return finish(db, out, e);
}

json_t *appointments_get(struct db *db, const struct caller *who, const char *id, struct err *e)
{
    json_t *rec, *out;

    if ((rec = appointment_load(db, who, id, e)) == NULL)
        return NULL;
    out = appointment_view(rec);
    if (out == NULL)
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    else if (audit_record(db, who, "appointment.read", "appointment", id,
                          json_string_value(json_object_get(rec, "site_id")), "ok", e) < 0) {
        json_decref(out);
        out = NULL;
    }
    json_decref(rec);
    return out;
}

struct rows {
    json_t *items;
};

static int rows_add(const json_t *row, void *ctx)
{
    struct rows *r = ctx;

    return json_array_append(r->items, (json_t *)row) < 0;
}

json_t *appointments_list(struct db *db, const struct caller *who, const char *patient_id, const char *cursor,
                          int64_t limit, struct err *e)
{
    struct patient_brief p;
    struct rows r = { json_array() };
    json_t *items = NULL, *row, *out = NULL;
    size_t i;

    if (limit <= 0)
        limit = 20;
    if (r.items == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    if (cursor && !id_valid(cursor)) {
        err_set(e, ERR_INVALID, "invalid_cursor", "the cursor is not one this server gave");
        goto done;
    }
    if (clinical_patient_visible(db, who, patient_id, &p, e) < 0
        || store_appointment_list_patient(db, patient_id, cursor, limit + 1, rows_add, &r, e) < 0
        || (items = json_array()) == NULL)
        goto done;
    json_array_foreach(r.items, i, row)
        if ((int64_t)i < limit)
            json_array_append_new(items, appointment_view(row));
    out = json_pack("{s:O,s:O}", "items", items,
                    "next", (int64_t)json_array_size(r.items) > limit
                                ? json_object_get(json_array_get(items, (size_t)limit - 1), "id") : json_null());
    if (out == NULL)
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    else if (audit_record(db, who, "appointment.list", "patient", patient_id, p.site_id, "ok", e) < 0) {
        json_decref(out);
        out = NULL;
    }
done:
    json_decref(r.items);
    json_decref(items);
    return out;
}

/* "given middle family" from a queue row's patient_names (the name in original script when there is no
 * other), or null when the patient is not on this node. */
static json_t *patient_name(const json_t *names)
{
    static const char *const parts[] = { "given_name", "middle_name", "family_name" };
    char name[3 * 400 + 3];     /* each part is at most 400 bytes (services/patients.c) */
    const char *s;
    size_t i, n = 0;

    if (!json_is_object(names))
        return json_null();
    name[0] = '\0';
    for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        s = json_string_value(json_object_get(names, parts[i]));
        if (s && *s && n < sizeof(name))
            n += (size_t)snprintf(name + n, sizeof(name) - n, "%s%s", n ? " " : "", s);
    }
    if (n == 0)
        return json_string(json_string_value(json_object_get(names, "name_original")) ?: "");
    return json_string(name);
}

json_t *appointments_queue(struct db *db, const struct caller *who, const char *site, const char *date,
                           struct err *e)
{
    struct rows r = { json_array() };
    json_t *items = json_array(), *row, *v, *name, *out = NULL;
    int64_t day, today = date_today(), marked;
    char day_text[11];
    size_t i;

    if (r.items == NULL || items == NULL) {
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        goto done;
    }
    if (who->nsites == 0) {
        err_set(e, ERR_FORBIDDEN, "no_site", "your account belongs to no site");
        goto done;
    }
    if (site == NULL || *site == '\0')
        site = who->sites[0];
    else if (!caller_has_site(who, site)) {
        err_set(e, ERR_FORBIDDEN, "site_not_allowed", "you cannot see appointments of that site");
        goto done;
    }
    if (date == NULL || *date == '\0')
        day = today;
    else if (date_parse(date, &day) < 0) {
        err_set(e, ERR_INVALID, "invalid_date", "date must be a day YYYY-MM-DD");
        goto done;
    }
    date_format(day, day_text);
    /* a past day's queue shows what was missed */
    if (day < today && appointments_mark_missed(db, now_ms(), &marked, e) < 0)
        goto done;
    if (store_appointment_list_day(db, site, day_text, APPOINTMENTS_QUEUE_MAX + 1, rows_add, &r, e) < 0)
        goto done;
    json_array_foreach(r.items, i, row) {
        if (i == APPOINTMENTS_QUEUE_MAX)
            break;
        if ((v = appointment_view(row)) == NULL)
            continue;
        name = patient_name(json_object_get(row, "patient_names"));
        json_object_set_new(v, "patient_name", name ? name : json_string(""));
        json_array_append_new(items, v);
    }
    out = json_pack("{s:s,s:s,s:O,s:b}", "site_id", site, "date", day_text, "items", items, "truncated",
                    json_array_size(r.items) > APPOINTMENTS_QUEUE_MAX);
    if (out == NULL)
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    else if (audit_record(db, who, "appointment.queue", "site", site, site, "ok", e) < 0) {
        json_decref(out);
        out = NULL;
    }
done:
    json_decref(r.items);
    json_decref(items);
    return out;
}

/* ---- the missed sweep ---- */

int appointments_mark_missed(struct db *db, int64_t now, int64_t *marked, struct err *e)
{
    struct changelog_tx tx;
    struct audit_head head;
    struct caller sweep;
    struct rows due = { json_array() };
    json_t *row, *changes;
    char before[11];
    int64_t today = now >= 0 ? now / DAY_MS : (now - DAY_MS + 1) / DAY_MS;
    size_t i;
    int rc = -1;

    *marked = 0;
    if (due.items == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    /* "more than one day past": on day T, days up to T - 2 */
    date_format(today - 1, before);
    /* look before taking the write lock: most of the time there is nothing to do */
    if (store_appointment_list_unattended(db, before, rows_add, &due, e) < 0)
        goto done;
    if (json_array_size(due.items) == 0) {
        rc = 0;
        goto done;
    }
    json_array_clear(due.items);
    if (db_begin_write(db, e) < 0)
        goto done;
    if (store_appointment_list_unattended(db, before, rows_add, &due, e) < 0) {
        db_rollback(db);
        goto done;
    }
    memset(&tx, 0, sizeof(tx));
    memset(&head, 0, sizeof(head));
    memset(&sweep, 0, sizeof(sweep));
    sweep.role = ROLE_ADMIN;
    snprintf(sweep.username, sizeof(sweep.username), "system:missed-appointments");
    snprintf(sweep.address, sizeof(sweep.address), "local");
    json_array_foreach(due.items, i, row) {
        const char *id = json_string_value(json_object_get(row, "id"));

        /* the value is the day itself, so two nodes sweeping the same appointment write the same change */
        changes = json_pack("{s:O}", "missed_day", json_object_get(row, "day"));
        if (changes == NULL || changelog_record(db, &tx, APPOINTMENT_TABLE, id, changes, 0, NULL, e) < 0
            || clinical_store(db, id, row, changes, now_ms(), store_appointment_put, e) < 0
            || audit_record_in(db, &head, &sweep, "appointment.missed", "appointment", id,
                               json_string_value(json_object_get(row, "site_id")), "ok", e) < 0) {
            if (changes == NULL)
                err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
            json_decref(changes);
            db_rollback(db);
            goto done;
        }
        json_decref(changes);
    }
    if (db_commit(db, e) < 0) {
        db_rollback(db);
        goto done;
    }
    *marked = (int64_t)json_array_size(due.items);
    rc = 0;
done:
    json_decref(due.items);
    return rc;
}

/* ---- replication ---- */

int appointments_apply(struct db *db, const char *id, const json_t *fields, int64_t at, struct err *e)
{
    /* the state given is whole; the row keeps the creation time it was first stored with */
    return clinical_store(db, id, NULL, fields, at, store_appointment_put, e);
}

/* the first five must be strings; the others may also be null */
static const char *const appointment_fields[] = {
    "patient_id", "site_id", "starts_at", "status", "booked_by",
    "service", "reason", "encounter_id", "notes", "missed_day", NULL,
};

int appointments_check_fields(const json_t *fields, struct err *e)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)fields, key, v) {
        if (str_in_list(key, appointment_fields)
            && (json_is_string(v) || (json_is_null(v) && str_in_list(key, appointment_fields + 5)))
            && json_string_length(v) <= NOTES_MAX)
            continue;
        return err_set(e, ERR_INVALID, "invalid_change",
                       "an appointment change has an unknown or malformed field '%.40s'", key);
    }
    return 0;
}

int appointments_site_of(struct db *db, const char *id, char site[ID_LEN], struct err *e)
{
    return clinical_site_of(db, store_appointment_get, id, site, e);
}
