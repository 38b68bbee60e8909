/* encounters.c — visits and their append-only form entries (see encounters.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/date.h"
#include "core/id.h"
#include "core/util.h"
#include "services/audit.h"
#include "services/changelog.h"
#include "services/encounters.h"
#include "services/forms.h"
#include "store/encounters.h"
#include "store/patients.h"

#define NOTES_MAX 10000
#define REASON_MAX 500

static const char *const encounter_types[] = {
    "consultation", "triage", "follow_up", "outreach", "health_assessment", NULL,
};
static const char *const encounter_statuses[] = { "planned", "in_progress", "finished", "cancelled", NULL };

const struct json_field encounters_input_fields[] = {
    { "type", JT_STRING, 0, 32 },
    { "status", JT_STRING, 0, 32 },
    { "site_id", JT_STRING, 0, 36 },
    { "provider", JT_STRING, JF_NULLABLE, 120 },
    { "started_at", JT_STRING, 0, 32 },
    { "ended_at", JT_STRING, JF_NULLABLE, 32 },
    { "notes", JT_STRING, JF_NULLABLE, NOTES_MAX },
    { NULL, 0, 0, 0 },
};

const struct json_field entries_input_fields[] = {
    { "form", JT_STRING, JF_REQUIRED, 64 },
    { "version", JT_INT, 0, 0 },
    { "values", JT_OBJECT, JF_REQUIRED, 0 },
    { "supersedes", JT_STRING, 0, 36 },
    { NULL, 0, 0, 0 },
};

const struct json_field entries_withdraw_fields[] = {
    { "reason", JT_STRING, JF_REQUIRED, REASON_MAX },
    { NULL, 0, 0, 0 },
};

/* ---- visibility ---- */

int clinical_patient_visible(struct db *db, const struct caller *who, const char *id, struct patient_brief *p,
                           struct err *e)
{
    int found;

    if (!id_valid(id))
        return err_set(e, ERR_NOT_FOUND, "patient_not_found", "no patient with this id");
    if ((found = store_patient_brief(db, id, p, e)) < 0)
        return -1;
    if (!found || p->deleted || !caller_has_site(who, p->site_id))
        return err_set(e, ERR_NOT_FOUND, "patient_not_found", "no patient with this id");
    return 0;
}

int clinical_record_visible(struct db *db, const struct caller *who, const json_t *rec)
{
    struct patient_brief p;
    struct err ignore;

    if (caller_has_site(who, json_string_value(json_object_get(rec, "site_id"))))
        return 1;
    err_clear(&ignore);
    return store_patient_brief(db, json_string_value(json_object_get(rec, "patient_id")), &p, &ignore) > 0
           && caller_has_site(who, p.site_id);
}

json_t *clinical_load(struct db *db, const struct caller *who, const char *id,
                      int (*get)(struct db *db, const char *id, json_t **out, struct err *e),
                      int (*live)(const json_t *rec, const void *arg), const void *arg, const char *code,
                      const char *what, struct err *e)
{
    json_t *rec = NULL;
    int found;

    if (id_valid(id)) {
        if ((found = get(db, id, &rec, e)) < 0)
            return NULL;
        if (found && (live == NULL || live(rec, arg)) && clinical_record_visible(db, who, rec))
            return rec;
        json_decref(rec);
    }
    err_set(e, ERR_NOT_FOUND, code, "no %s with this id", what);
    return NULL;
}

static int encounter_live(const json_t *enc, const void *arg)
{
    (void)arg;
    return !json_is_true(json_object_get(enc, "deleted"));
}

json_t *encounters_load(struct db *db, const struct caller *who, const char *id, struct err *e)
{
    return clinical_load(db, who, id, store_encounter_get, encounter_live, NULL, "encounter_not_found", "encounter",
                         e);
}

/* An entry of a form (a withdrawal, which has none, is not one to read or correct). */
static int entry_live(const json_t *entry, const void *arg)
{
    (void)arg;
    return !json_is_null(json_object_get(entry, "form_id"));
}

static json_t *entry_load(struct db *db, const struct caller *who, const char *id, struct err *e)
{
    return clinical_load(db, who, id, store_entry_get, entry_live, NULL, "entry_not_found", "entry", e);
}

/* ---- views ---- */

static json_t *encounter_view(const json_t *enc)
{
    json_t *v = json_deep_copy(enc);

    if (v)
        json_object_del(v, "deleted");
    return v;
}

/* The API view of a stored entry; withdrawal (its withdrawal record, or NULL) gives the reason. */
static json_t *entry_view(const json_t *row, const json_t *withdrawal)
{
    const char *status = "active";
    json_t *v;

    if (!json_is_null(json_object_get(row, "withdrawn_by")))
        status = "entered_in_error";
    else if (!json_is_null(json_object_get(row, "superseded_by")))
        status = "superseded";
    v = json_pack("{s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:s,s:O,s:O}",
                  "id", json_object_get(row, "id"), "encounter_id", json_object_get(row, "encounter_id"),
                  "patient_id", json_object_get(row, "patient_id"), "site_id", json_object_get(row, "site_id"),
                  "form", json_object_get(row, "form_id"), "version", json_object_get(row, "form_version"),
                  "form_row", json_object_get(row, "form_row"), "values", json_object_get(row, "values"),
                  "supersedes", json_object_get(row, "supersedes"), "author", json_object_get(row, "author"),
                  "recorded_at", json_object_get(row, "recorded_at"), "status", status,
                  "superseded_by", json_object_get(row, "superseded_by"),
                  "withdrawn_by", json_object_get(row, "withdrawn_by"));
    if (v && withdrawal)
        json_object_set(v, "withdrawn_reason", json_object_get(withdrawal, "reason"));
    return v;
}

/* Add "display" (the values as read in lang, with the labels of the entry's own form version) to an entry
 * view. A form the node cannot read leaves the view without it. */
static void add_display(struct db *db, json_t *view, const char *lang)
{
    const char *row = json_string_value(json_object_get(view, "form_row"));
    struct form *f;
    struct err ignore;

    if (lang == NULL || row == NULL)
        return;
    err_clear(&ignore);
    if ((f = forms_find_row(db, row, &ignore)) == NULL)
        return;
    json_object_set_new(view, "display", form_display(f, json_object_get(view, "values"), lang));
    form_release(f);
}

/* ---- context for form conditions ---- */

/* The patient's age in days on day `on`, from a birth date of any precision (mid-year or mid-month when
 * only the year or month is known); -1 when unknown. */
static int64_t age_days_on(const struct patient_brief *p, int64_t on)
{
    int64_t born;
    int y = 0, m = 7, d = 1;
    size_t n = strlen(p->birth_date);

    if (n == 4)
        n = sscanf(p->birth_date, "%4d", &y) == 1 ? n : 0;
    else if (n == 7)
        n = sscanf(p->birth_date, "%4d-%2d", &y, &m) == 2 ? n : 0, d = 15;
    else if (n == 10)
        n = sscanf(p->birth_date, "%4d-%2d-%2d", &y, &m, &d) == 3 ? n : 0;
    else
        n = 0;
    if (n == 0 || y < 1800 || m < 1 || m > 12 || d < 1 || d > date_days_in_month(y, m))
        return -1;
    born = date_days_from_civil(y, m, d);
    return on >= born ? on - born : -1;
}

/* ---- encounters ---- */

static int check_time(const json_t *input, const char *key, int64_t *ms, struct err *e)
{
    const char *s = json_string_value(json_object_get(input, key));

    if (s == NULL)
        return 0;
    if (datetime_parse(s, ms) < 0)
        return err_set_field(e, key, ERR_UNPROCESSABLE, "invalid_time", "%s must be a UTC time YYYY-MM-DDTHH:MM[:SS]Z",
                                 key);
    if (*ms > now_ms() + 86400000)
        return err_set_field(e, key, ERR_UNPROCESSABLE, "time_in_future", "%s is more than a day in the future", key);
    return 1;
}

/* Validate encounter input into changes ({field: value}); current is the stored encounter or NULL. */
static int encounter_changes(const struct caller *who, const json_t *input, const json_t *current,
                             const struct patient_brief *p, json_t *changes, struct err *e)
{
    const char *type = json_string_value(json_object_get(input, "type"));
    const char *status = json_string_value(json_object_get(input, "status"));
    const char *site = json_string_value(json_object_get(input, "site_id"));
    const char *start_s, *end_s;
    int64_t start = 0, end = 0;
    char now[21];
    int has_start, has_end;
    const json_t *v;

    if (json_check_fields(input, encounters_input_fields, e) < 0)
        return -1;
    if (current == NULL && type == NULL)
        return err_set_field(e, "type", ERR_UNPROCESSABLE, "missing_field", "type is required");
    if (type && (current || !str_in_list(type, encounter_types))) {
        if (current)
            return err_set_field(e, "type", ERR_UNPROCESSABLE, "immutable_field", "the type of an encounter does not change; "
                                     "open a new one");
        return err_set_field(e, "type", ERR_UNPROCESSABLE, "invalid_type", "type must be consultation, triage, follow_up, "
                                 "outreach or health_assessment");
    }
    if (status && !str_in_list(status, encounter_statuses))
        return err_set_field(e, "status", ERR_UNPROCESSABLE, "invalid_status", "status must be planned, in_progress, "
                                 "finished or cancelled");
    if (site && current)
        return err_set_field(e, "site_id", ERR_UNPROCESSABLE, "immutable_field", "the site of an encounter does not change");
    if (site && !caller_has_site(who, site))
        return err_set_field(e, "site_id", ERR_FORBIDDEN, "site_not_allowed", "you do not belong to that site");
    if ((has_start = check_time(input, "started_at", &start, e)) < 0 || (has_end = check_time(input, "ended_at", &end, e)) < 0)
        return -1;
    if (current && has_start)
        return err_set_field(e, "started_at", ERR_UNPROCESSABLE, "immutable_field", "the start of an encounter does not change");
    if (has_end) {
        start_s = current ? json_string_value(json_object_get(current, "started_at")) : NULL;
        if (!has_start && start_s)
            datetime_parse(start_s, &start);
        if (!has_start && !start_s)
            start = now_ms();
        if (end < start)
            return err_set_field(e, "ended_at", ERR_UNPROCESSABLE, "invalid_time", "ended_at is before started_at");
    }
    if (current == NULL) {
        json_object_set_new(changes, "patient_id", json_string(p->id));
        json_object_set_new(changes, "site_id", json_string(site ? site
                                                            : caller_has_site(who, p->site_id) ? p->site_id
                                                            : who->sites[0]));
        json_object_set_new(changes, "type", json_string(type));
        json_object_set_new(changes, "status", json_string(status ? status : "in_progress"));
        v = json_object_get(input, "provider");
        json_object_set_new(changes, "provider", json_string(json_is_string(v) ? json_string_value(v) : who->username));
        datetime_format(has_start ? start : now_ms(), now);
        json_object_set_new(changes, "started_at", json_string(has_start ? json_string_value(json_object_get(input, "started_at")) : now));
        if (has_end)
            json_object_set(changes, "ended_at", json_object_get(input, "ended_at"));
        if (json_is_string(json_object_get(input, "notes")))
            json_object_set(changes, "notes", json_object_get(input, "notes"));
        return 0;
    }
    if (status && strcmp(status, json_string_value(json_object_get(current, "status"))) != 0)
        json_object_set_new(changes, "status", json_string(status));
    if (has_end) {
        end_s = json_string_value(json_object_get(input, "ended_at"));
        if (!json_equal(json_object_get(current, "ended_at"), json_object_get(input, "ended_at")))
            json_object_set_new(changes, "ended_at", json_string(end_s));
    } else if (json_is_null(json_object_get(input, "ended_at")) && !json_is_null(json_object_get(current, "ended_at"))) {
        json_object_set_new(changes, "ended_at", json_null());
    }
    if ((v = json_object_get(input, "provider")) && !json_equal(v, json_object_get(current, "provider")))
        json_object_set(changes, "provider", (json_t *)v);
    if ((v = json_object_get(input, "notes")) && !json_equal(v, json_object_get(current, "notes")))
        json_object_set(changes, "notes", (json_t *)v);
    return 0;
}

int clinical_store(struct db *db, const char *id, const json_t *base, const json_t *changes, int64_t at,
                   int (*put)(struct db *db, const json_t *rec, int64_t created_at, int64_t updated_at,
                              struct err *e),
                   struct err *e)
{
    json_t *rec = base ? json_deep_copy(base) : json_object();
    int64_t created = at;
    int rc;

    if (rec == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    if (base && json_is_integer(json_object_get(base, "created_at")))
        created = json_integer_value(json_object_get(base, "created_at"));
    json_object_update(rec, (json_t *)changes);
    json_object_set_new(rec, "id", json_string(id));
    rc = put(db, rec, created, at, e);
    json_decref(rec);
    return rc;
}

/* Open an encounter inside the batch's write transaction. */
static json_t *encounter_create_in(struct clinical_batch *b, const char *patient_id, const json_t *input, struct err *e)
{
    struct patient_brief p;
    json_t *changes = json_object(), *enc = NULL, *out = NULL;
    char id[ID_LEN];

    if (changes == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    if (b->who->nsites == 0) {
        err_set(e, ERR_FORBIDDEN, "no_site", "your account belongs to no site");
        goto done;
    }
    id_new(id);
    if (clinical_patient_visible(b->db, b->who, patient_id, &p, e) < 0 || encounter_changes(b->who, input, NULL, &p, changes, e) < 0
        || changelog_record(b->db, &b->tx, ENCOUNTER_TABLE, id, changes, CHANGELOG_NEW_ROW, NULL, e) < 0
        || clinical_store(b->db, id, NULL, changes, now_ms(), store_encounter_put, e) < 0
        || store_encounter_get(b->db, id, &enc, e) <= 0
        || audit_record_in(b->db, &b->audit, b->who, "encounter.create", "encounter", id,
                           json_string_value(json_object_get(changes, "site_id")), "ok", e) < 0)
        goto done;
    out = encounter_view(enc);
done:
    json_decref(changes);
    json_decref(enc);
    return out;
}

int clinical_batch_begin(struct clinical_batch *b, struct db *db, const struct caller *who, struct err *e)
{
    memset(b, 0, sizeof(*b));
    b->db = db;
    b->who = who;
    return db_begin_write(db, e);
}

int clinical_batch_finish(struct clinical_batch *b, int ok, struct err *e)
{
    if (ok && db_commit(b->db, e) == 0)
        return 0;
    db_rollback(b->db);
    return -1;
}

json_t *clinical_batch_encounter(struct clinical_batch *b, const char *patient_id, const json_t *input, struct err *e)
{
    return encounter_create_in(b, patient_id, input, e);
}

json_t *encounters_create(struct db *db, const struct caller *who, const char *patient_id, const json_t *input,
                          struct err *e)
{
    struct clinical_batch b;
    json_t *out;

    if (clinical_batch_begin(&b, db, who, e) < 0)
        return NULL;
    out = encounter_create_in(&b, patient_id, input, e);
    if (clinical_batch_finish(&b, out != NULL, e) < 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

json_t *encounters_update(struct db *db, const struct caller *who, const char *id, const json_t *input,
                          struct err *e)
{
    json_t *changes = json_object(), *cur = NULL, *enc = NULL, *out = NULL;

    if (changes == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    if (db_begin_write(db, e) < 0)
        goto done;
    if ((cur = encounters_load(db, who, id, e)) == NULL || encounter_changes(who, input, cur, NULL, changes, e) < 0)
        goto fail;
    if (json_object_size(changes) > 0
        && (changelog_record(db, NULL, ENCOUNTER_TABLE, id, changes, 0, NULL, e) < 0
            || clinical_store(db, id, cur, changes, now_ms(), store_encounter_put, e) < 0))
        goto fail;
    if (store_encounter_get(db, id, &enc, e) <= 0
        || audit_record(db, who, "encounter.update", "encounter", id, json_string_value(json_object_get(cur, "site_id")),
                        "ok", e) < 0
        || db_commit(db, e) < 0)
        goto fail;
    out = encounter_view(enc);
    goto done;
fail:
    db_rollback(db);
done:
    json_decref(changes);
    json_decref(cur);
    json_decref(enc);
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

/* The entries of an encounter as the API shows them: form entries only, withdrawals folded in. */
static json_t *encounter_entries(struct db *db, const char *encounter_id, const char *lang, struct err *e)
{
    struct rows all = { json_array() };
    json_t *out = json_array(), *row, *w, *withdrawals = json_object();
    size_t i;

    if (all.items == NULL || out == NULL || withdrawals == NULL
        || store_entry_list_encounter(db, encounter_id, rows_add, &all, e) < 0) {
        json_decref(out);
        out = NULL;
        goto done;
    }
    json_array_foreach(all.items, i, row)
        if (json_is_string(json_object_get(row, "withdraws")))
            json_object_set(withdrawals, json_string_value(json_object_get(row, "id")), row);
    json_array_foreach(all.items, i, row) {
        if (json_is_null(json_object_get(row, "form_id")))
            continue;
        w = json_object_get(withdrawals, json_string_value(json_object_get(row, "withdrawn_by")) ?: "");
        json_t *view = entry_view(row, w);

        add_display(db, view, lang);
        json_array_append_new(out, view);
    }
done:
    json_decref(all.items);
    json_decref(withdrawals);
    return out;
}

json_t *encounters_get(struct db *db, const struct caller *who, const char *id, const char *lang, struct err *e)
{
    json_t *enc, *out = NULL, *entries = NULL;

    if (db_begin_read(db, e) < 0)
        return NULL;
    if ((enc = encounters_load(db, who, id, e)) != NULL && (entries = encounter_entries(db, id, lang, e)) != NULL
        && (out = encounter_view(enc)) != NULL)
        json_object_set_new(out, "entries", entries), entries = NULL;
    db_commit(db, NULL);
    if (out && audit_record(db, who, "encounter.read", "encounter", id, json_string_value(json_object_get(enc, "site_id")),
                            "ok", e) < 0) {
        json_decref(out);
        out = NULL;
    }
    json_decref(enc);
    json_decref(entries);
    return out;
}

json_t *encounters_list(struct db *db, const struct caller *who, const char *patient_id, const char *cursor,
                        int64_t limit, struct err *e)
{
    struct patient_brief p;
    struct rows r = { json_array() };
    json_t *out = NULL, *last;

    if (limit <= 0)
        limit = 20;
    if (cursor && !id_valid(cursor))
        return err_set(e, ERR_INVALID, "invalid_cursor", "the cursor is not one this server gave"), NULL;
    if (r.items == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    if (clinical_patient_visible(db, who, patient_id, &p, e) < 0
        || store_encounter_list(db, patient_id, cursor, limit + 1, rows_add, &r, e) < 0
        || audit_record(db, who, "encounter.list", "patient", patient_id, p.site_id, "ok", e) < 0) {
        json_decref(r.items);
        return NULL;
    }
    if ((int64_t)json_array_size(r.items) > limit) {
        json_array_remove(r.items, (size_t)limit);
        last = json_array_get(r.items, (size_t)limit - 1);
        out = json_pack("{s:o,s:O}", "items", r.items, "next", json_object_get(last, "id"));
    } else {
        out = json_pack("{s:o,s:n}", "items", r.items, "next");
    }
    {
        size_t i;
        json_t *item;

        json_array_foreach(json_object_get(out, "items"), i, item)
            json_object_del(item, "deleted");
    }
    return out;
}

/* ---- entries ---- */

static json_t *entry_record_out(struct db *db, const char *id, struct err *e)
{
    json_t *row = NULL, *out;

    if (store_entry_get(db, id, &row, e) <= 0)
        return NULL;
    out = entry_view(row, NULL);
    json_decref(row);
    return out;
}

/* Record an entry inside the batch's write transaction. */
static json_t *entry_create_in(struct clinical_batch *b, const char *encounter_id, const json_t *input,
                               json_t **field_errors, struct err *e)
{
    struct db *db = b->db;
    const struct caller *who = b->who;
    struct entry_context ctx;
    struct patient_brief p;
    struct form *f = NULL;
    json_t *enc = NULL, *stored = NULL, *target = NULL, *changes = NULL, *out = NULL;
    const json_t *version = json_object_get(input, "version");
    const char *supersedes = json_string_value(json_object_get(input, "supersedes"));
    char row_id[ID_LEN], id[ID_LEN], now[21];
    int64_t start;

    *field_errors = NULL;
    if (json_check_fields(input, entries_input_fields, e) < 0)
        return NULL;
    if (version && json_integer_value(version) < 1)
        return err_set_field(e, "version", ERR_UNPROCESSABLE, "invalid_version", "version must be 1 or more"), NULL;
    if ((enc = encounters_load(db, who, encounter_id, e)) == NULL)
        goto fail;
    if (strcmp(json_string_value(json_object_get(enc, "status")), "cancelled") == 0) {
        err_set(e, ERR_CONFLICT, "encounter_cancelled", "the encounter was cancelled: record in another one");
        goto fail;
    }
    if (store_patient_brief(db, json_string_value(json_object_get(enc, "patient_id")), &p, e) <= 0) {
        if (e->kind == ERR_NONE)
            err_set(e, ERR_NOT_FOUND, "patient_not_found", "the encounter's patient is not on this node");
        goto fail;
    }
    if ((f = forms_find(db, json_string_value(json_object_get(input, "form")), version ? json_integer_value(version) : 0,
                        row_id, e)) == NULL) {
        if (e->kind == ERR_NOT_FOUND)
            err_set(e, ERR_UNPROCESSABLE, "unknown_form", "no form '%.64s'%s", json_string_value(json_object_get(input, "form")),
                    version ? " in that version" : "");
        err_field(e, "form");
        goto fail;
    }
    if (supersedes) {
        if ((target = entry_load(db, who, supersedes, e)) == NULL) {
            err_field(e, "supersedes");
            goto fail;
        }
        if (strcmp(json_string_value(json_object_get(target, "encounter_id")), encounter_id) != 0
            || strcmp(json_string_value(json_object_get(target, "form_id")), form_id(f)) != 0) {
            err_set_field(e, "supersedes", ERR_UNPROCESSABLE, "invalid_supersedes", "a correction replaces an entry of the same "
                              "form in the same encounter");
            goto fail;
        }
        if (!json_is_null(json_object_get(target, "withdrawn_by"))) {
            err_set_field(e, "supersedes", ERR_CONFLICT, "entry_withdrawn", "that entry was marked entered in error");
            goto fail;
        }
        if (!json_is_null(json_object_get(target, "superseded_by"))) {
            err_set_field(e, "supersedes", ERR_CONFLICT, "already_superseded", "that entry was already corrected by %s: correct "
                              "the newest one", json_string_value(json_object_get(target, "superseded_by")));
            goto fail;
        }
    }
    memset(&ctx, 0, sizeof(ctx));
    ctx.sex = p.sex[0] ? p.sex : NULL;
    ctx.encounter_type = json_string_value(json_object_get(enc, "type"));
    ctx.today = date_today();
    if (datetime_parse(json_string_value(json_object_get(enc, "started_at")), &start) < 0)
        start = now_ms();
    ctx.encounter_day = start / 86400000;
    ctx.age_days = age_days_on(&p, ctx.encounter_day);
    if ((stored = form_check_entry(f, json_object_get(input, "values"), &ctx, field_errors, e)) == NULL)
        goto fail;
    id_new(id);
    datetime_format(now_ms(), now);
    changes = json_pack("{s:O,s:O,s:O,s:s,s:I,s:s,s:O,s:s,s:s}", "encounter_id", json_object_get(enc, "id"),
                        "patient_id", json_object_get(enc, "patient_id"), "site_id", json_object_get(enc, "site_id"),
                        "form_id", form_id(f), "form_version", (json_int_t)form_version(f), "form_row", row_id,
                        "values", stored, "author", who->username, "recorded_at", now);
    if (changes == NULL) {
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        goto fail;
    }
    if (supersedes)
        json_object_set_new(changes, "supersedes", json_string(supersedes));
    json_object_set_new(changes, "id", json_string(id));
    if (store_entry_put(db, changes, now_ms(), e) < 0)
        goto fail;
    json_object_del(changes, "id");
    if (changelog_record(db, &b->tx, ENTRY_TABLE, id, changes, CHANGELOG_NEW_ROW, NULL, e) < 0
        || (out = entry_record_out(db, id, e)) == NULL
        || audit_record_in(db, &b->audit, who, supersedes ? "entry.correct" : "entry.create", "entry", id,
                           json_string_value(json_object_get(enc, "site_id")), "ok", e) < 0)
        goto fail;
    goto done;
fail:
    json_decref(out);
    out = NULL;
    if (e->kind == ERR_NONE)
        err_set(e, ERR_INTERNAL, "internal_error", "the entry could not be saved");
done:
    form_release(f);
    json_decref(enc);
    json_decref(stored);
    json_decref(target);
    json_decref(changes);
    return out;
}

json_t *clinical_batch_entry(struct clinical_batch *b, const char *encounter_id, const json_t *input,
                             json_t **field_errors, struct err *e)
{
    return entry_create_in(b, encounter_id, input, field_errors, e);
}

json_t *entries_create(struct db *db, const struct caller *who, const char *encounter_id, const json_t *input,
                       json_t **field_errors, struct err *e)
{
    struct clinical_batch b;
    json_t *out;

    *field_errors = NULL;
    if (clinical_batch_begin(&b, db, who, e) < 0)
        return NULL;
    out = entry_create_in(&b, encounter_id, input, field_errors, e);
    if (clinical_batch_finish(&b, out != NULL, e) < 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

json_t *entries_get(struct db *db, const struct caller *who, const char *id, const char *lang, struct err *e)
{
    json_t *row, *out, *w = NULL;
    int found = 0;

    if ((row = entry_load(db, who, id, e)) == NULL)
        return NULL;
    if (json_is_string(json_object_get(row, "withdrawn_by")))
        found = store_entry_get(db, json_string_value(json_object_get(row, "withdrawn_by")), &w, e);
    out = found < 0 ? NULL : entry_view(row, w);
    if (out)
        add_display(db, out, lang);
    if (out && audit_record(db, who, "entry.read", "entry", id, json_string_value(json_object_get(row, "site_id")), "ok",
                            e) < 0) {
        json_decref(out);
        out = NULL;
    }
    json_decref(row);
    json_decref(w);
    return out;
}

json_t *entries_withdraw(struct db *db, const struct caller *who, const char *id, const json_t *input, struct err *e)
{
    json_t *target = NULL, *changes = NULL, *out = NULL, *w = NULL;
    char wid[ID_LEN], now[21];

    if (json_check_fields(input, entries_withdraw_fields, e) < 0)
        return NULL;
    if (json_string_length(json_object_get(input, "reason")) == 0)
        return err_set_field(e, "reason", ERR_UNPROCESSABLE, "missing_reason", "say why the entry was entered in error"), NULL;
    if (db_begin_write(db, e) < 0)
        return NULL;
    if ((target = entry_load(db, who, id, e)) == NULL)
        goto fail;
    if (!json_is_null(json_object_get(target, "withdrawn_by"))) {
        err_set(e, ERR_CONFLICT, "already_withdrawn", "the entry is already marked entered in error");
        goto fail;
    }
    id_new(wid);
    datetime_format(now_ms(), now);
    changes = json_pack("{s:O,s:O,s:O,s:s,s:O,s:s,s:s}", "encounter_id", json_object_get(target, "encounter_id"),
                        "patient_id", json_object_get(target, "patient_id"), "site_id", json_object_get(target, "site_id"),
                        "withdraws", id, "reason", json_object_get(input, "reason"), "author", who->username,
                        "recorded_at", now);
    if (changes == NULL) {
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        goto fail;
    }
    json_object_set_new(changes, "id", json_string(wid));
    if (store_entry_put(db, changes, now_ms(), e) < 0)
        goto fail;
    json_object_del(changes, "id");
    if (changelog_record(db, NULL, ENTRY_TABLE, wid, changes, CHANGELOG_NEW_ROW, NULL, e) < 0
        || store_entry_get(db, id, &w, e) <= 0
        || audit_record(db, who, "entry.withdraw", "entry", id, json_string_value(json_object_get(target, "site_id")),
                        "ok", e) < 0
        || db_commit(db, e) < 0)
        goto fail;
    json_object_set_new(changes, "id", json_string(wid));
    out = entry_view(w, changes);
    goto done;
fail:
    db_rollback(db);
    if (e->kind == ERR_NONE)
        err_set(e, ERR_INTERNAL, "internal_error", "the entry could not be withdrawn");
done:
    json_decref(target);
    json_decref(changes);
    json_decref(w);
    return out;
}

struct export_page {
    struct db *db;
    const char *lang;
    int (*cb)(const json_t *entry, void *ctx);
    void *ctx;
    char last[ID_LEN];
    int64_t n;
    int stopped;
};

static int export_one(const json_t *row, void *ctx)
{
    struct export_page *p = ctx;
    json_t *view, *w = NULL;
    struct err ignore;

    snprintf(p->last, sizeof(p->last), "%s", json_string_value(json_object_get(row, "id")));
    p->n++;
    if (json_is_null(json_object_get(row, "form_id")))
        return 0;   /* a withdrawal: shown as the status of the entry it names */
    err_clear(&ignore);
    if (json_is_string(json_object_get(row, "withdrawn_by")))
        store_entry_get(p->db, json_string_value(json_object_get(row, "withdrawn_by")), &w, &ignore);
    view = entry_view(row, w);
    json_decref(w);
    if (view == NULL)
        return p->stopped = 1;
    add_display(p->db, view, p->lang);
    p->stopped = p->cb(view, p->ctx) != 0;
    json_decref(view);
    return p->stopped;
}

int entries_export(struct db *db, const struct caller *who, const char *lang,
                   int (*cb)(const json_t *entry, void *ctx), void *ctx, struct err *e)
{
    struct export_page p = { db, lang, cb, ctx, "", 0, 0 };
    json_t *sites = json_array();
    char *text;
    int k, rc = -1;

    for (k = 0; k < who->nsites; k++)
        json_array_append_new(sites, json_string(who->sites[k]));
    text = json_dumps(sites, JSON_COMPACT);
    json_decref(sites);
    if (text == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    if (db_begin_read(db, e) < 0)
        goto done;
    do {
        p.n = 0;
        if (store_entry_list_sites(db, text, p.last[0] ? p.last : NULL, 500, export_one, &p, e) < 0) {
            db_rollback(db);
            goto done;
        }
    } while (p.n == 500 && !p.stopped);
    db_commit(db, NULL);
    rc = audit_record(db, who, "entry.export", "entry", NULL, NULL, "ok", e);
done:
    free(text);
    return rc;
}

/* ---- replication ---- */

int encounters_apply(struct db *db, const char *id, const json_t *fields, int64_t at, struct err *e)
{
    /* the state given is whole, stored as it is; the row keeps the creation time it was first stored with */
    return store_encounter_put_fields(db, id, fields, at, at, e);
}

static const char *const encounter_fields[] = {
    "patient_id", "site_id", "type", "status", "provider", "started_at", "ended_at", "notes", NULL,
};

int encounters_check_fields(const json_t *fields, struct err *e)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)fields, key, v) {
        if (str_in_list(key, encounter_fields)
            && (json_is_string(v) || (json_is_null(v) && str_in_list(key, encounter_fields + 4)))
            && json_string_length(v) <= NOTES_MAX)
            continue;
        return err_set(e, ERR_INVALID, "invalid_change", "an encounter change has an unknown or malformed field '%.40s'",
                       key);
    }
    return 0;
}

int clinical_site_of(struct db *db, int (*get)(struct db *db, const char *id, json_t **out, struct err *e),
                     const char *id, char site[ID_LEN], struct err *e)
{
    json_t *rec = NULL;
    int found = get(db, id, &rec, e);

    if (found > 0)
        snprintf(site, ID_LEN, "%s", json_string_value(json_object_get(rec, "site_id")));
    json_decref(rec);
    return found;
}

int encounters_site_of(struct db *db, const char *id, char site[ID_LEN], struct err *e)
{
    return clinical_site_of(db, store_encounter_get, id, site, e);
}

int entries_apply(struct db *db, const char *id, const json_t *fields, int64_t at, struct err *e)
{
    /* the fields are the whole entry (it is append-only): stored as they are, with no copy */
    return store_entry_put_fields(db, id, fields, NULL, 0, at, e);
}

int entries_apply_first(struct db *db, const char *id, const json_t *fields, const char *values_text,
                        size_t values_len, int64_t at, struct err *e)
{
    return store_entry_put_fields(db, id, fields, values_text, values_len, at, e);
}

static const char *const entry_text_fields[] = {
    "encounter_id", "patient_id", "site_id", "form_id", "form_row", "supersedes", "withdraws", "reason", "author",
    "recorded_at", NULL,
};

int entries_check_fields(const json_t *fields, struct err *e)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)fields, key, v) {
        if (str_in_list(key, entry_text_fields) && json_is_string(v) && json_string_length(v) <= REASON_MAX)
            continue;
        if (strcmp(key, "form_version") == 0 && json_is_integer(v))
            continue;
        if (strcmp(key, "values") == 0 && json_is_object(v))
            continue;
        return err_set(e, ERR_INVALID, "invalid_change", "an entry change has an unknown or malformed field '%.40s'", key);
    }
    return 0;
}

int entries_site_of(struct db *db, const char *id, char site[ID_LEN], struct err *e)
{
    return clinical_site_of(db, store_entry_get, id, site, e);
}
