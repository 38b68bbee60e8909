/* chart.c — the patient chart: chart items (problems, allergies, reported medications, immunizations),
 * the summary and the timeline (see chart.h and docs/chart.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/datafiles.h"
#include "core/date.h"
#include "core/id.h"
#include "core/util.h"
#include "services/audit.h"
#include "services/catalogue.h"
#include "services/changelog.h"
#include "services/chart.h"
#include "services/encounters.h"
#include "services/schedule.h"
#include "store/chart.h"
#include "store/encounters.h"
#include "store/patients.h"
#include "store/sites.h"

/* ---- what each kind holds ---- */

enum ftype { F_TEXT, F_DATE, F_PARTIAL_DATE, F_ENUM, F_ICD10, F_MEDICINE, F_VACCINE, F_INT, F_BOOL, F_ID };

#define F_REQUIRED 1    /* on creation */
#define F_ONCE 2        /* written at creation, never changed */

struct field_spec {
    const char *name;
    enum ftype type;
    int flags;
    size_t max;                         /* text: bytes; int: largest value */
    const char *const *values;          /* F_ENUM */
};

struct kind_spec {
    const char *kind;
    const struct field_spec *fields;
    const char *const *statuses;        /* the first is the default */
    const char *either[2];              /* one of these two fields is required (or none) */
};

static const char *const problem_statuses[] = { "active", "resolved", "inactive", "entered_in_error", NULL };
static const char *const allergy_statuses[] = { "active", "inactive", "entered_in_error", NULL };
static const char *const medication_statuses[] = { "active", "stopped", "entered_in_error", NULL };
static const char *const immunization_statuses[] = { "active", "entered_in_error", NULL };
static const char *const severities[] = { "mild", "moderate", "severe", "unknown", NULL };
static const char *const verifications[] = { "verified", "reported", NULL };
static const char *const allergy_categories[] = { "drug", "food", "environment", "other", NULL };

static const struct field_spec problem_fields[] = {
    { "code", F_ICD10, 0, 0, NULL },
    { "title", F_TEXT, 0, 200, NULL },
    { "onset", F_PARTIAL_DATE, 0, 0, NULL },
    { "resolved_on", F_DATE, 0, 0, NULL },
    { "notes", F_TEXT, 0, 2000, NULL },
    { NULL, 0, 0, 0, NULL },
};
static const struct field_spec allergy_fields[] = {
    { "substance", F_TEXT, F_REQUIRED, 200, NULL },
    { "substance_code", F_MEDICINE, 0, 0, NULL },
    { "category", F_ENUM, 0, 0, allergy_categories },
    { "reaction", F_TEXT, 0, 200, NULL },
    { "severity", F_ENUM, 0, 0, severities },
    { "verification", F_ENUM, F_REQUIRED, 0, verifications },
    { "noted_on", F_PARTIAL_DATE, 0, 0, NULL },
    { "notes", F_TEXT, 0, 2000, NULL },
    { NULL, 0, 0, 0, NULL },
};
static const struct field_spec medication_fields[] = {
    { "medication", F_MEDICINE, 0, 0, NULL },
    { "name", F_TEXT, 0, 200, NULL },
    { "dose", F_TEXT, 0, 100, NULL },
    { "frequency", F_TEXT, 0, 100, NULL },
    { "started_on", F_PARTIAL_DATE, 0, 0, NULL },
    { "ended_on", F_DATE, 0, 0, NULL },
    { "notes", F_TEXT, 0, 2000, NULL },
    { NULL, 0, 0, 0, NULL },
};
static const struct field_spec immunization_fields[] = {
    { "vaccine", F_VACCINE, F_REQUIRED | F_ONCE, 0, NULL },
    { "dose", F_INT, F_ONCE, 10, NULL },
    { "given_on", F_DATE, F_REQUIRED | F_ONCE, 0, NULL },
    { "documented", F_BOOL, F_ONCE, 0, NULL },     /* false: reported without a card or record */
    { "lot", F_TEXT, F_ONCE, 64, NULL },
    { "body_site", F_TEXT, F_ONCE, 64, NULL },
    { "encounter_id", F_ID, F_ONCE, 0, NULL },
    { "notes", F_TEXT, 0, 2000, NULL },
    { NULL, 0, 0, 0, NULL },
};

static const struct kind_spec kinds[] = {
    { "problem", problem_fields, problem_statuses, { "code", "title" } },
    { "allergy", allergy_fields, allergy_statuses, { NULL, NULL } },
    { "medication", medication_fields, medication_statuses, { "medication", "name" } },
    { "immunization", immunization_fields, immunization_statuses, { NULL, NULL } },
};

static const struct kind_spec *kind_find(const char *kind)
{
    size_t i;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (kind && strcmp(kinds[i].kind, kind) == 0)
            return &kinds[i];
    return NULL;
}

static const struct field_spec *field_find(const struct kind_spec *k, const char *name)
{
    const struct field_spec *f;

    for (f = k->fields; f->name; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

/* ---- input ---- */

/* "YYYY", "YYYY-MM" or "YYYY-MM-DD", a real date, not in the future: its first day into *days. */
static int partial_date(const char *s, int64_t *days)
{
    char full[11];
    size_t n = s ? strlen(s) : 0;

    if (n == 4)
        snprintf(full, sizeof(full), "%s-01-01", s);
    else if (n == 7)
        snprintf(full, sizeof(full), "%s-01", s);
    else if (n == 10)
        snprintf(full, sizeof(full), "%s", s);
    else
        return -1;
    if (n < 10 && ((n == 7 && s[4] != '-') || strspn(s, "0123456789-") != n))
        return -1;
    return date_parse(full, days);
}

/* Check one value of field f; on success the value to store (codes normalised) as a new reference. */
static json_t *check_value(const struct field_spec *f, const json_t *v, int64_t born, const struct schedule *sched,
                           struct err *e)
{
    char norm[80];
    const char *s = json_string_value(v);
    int64_t d;

    switch (f->type) {
    case F_TEXT:
        if (s == NULL || json_string_length(v) == 0 || json_string_length(v) > f->max)
            return err_set_field(e, f->name, ERR_UNPROCESSABLE, "invalid_text", "%s must be text of 1 to %zu bytes",
                                 f->name, f->max), NULL;
        break;
    case F_DATE:
    case F_PARTIAL_DATE:
        if ((f->type == F_DATE ? date_parse(s, &d) : partial_date(s, &d)) < 0)
            return err_set_field(e, f->name, ERR_UNPROCESSABLE, "invalid_date", "%s must be a date YYYY-MM-DD%s",
                                 f->name, f->type == F_PARTIAL_DATE ? " (or YYYY-MM, YYYY)" : ""), NULL;
        if (d > date_today() + 1)
            return err_set_field(e, f->name, ERR_UNPROCESSABLE, "date_in_future", "%s is in the future", f->name),
                   NULL;
        if (born >= 0 && d < born && (f->type == F_DATE || strlen(s) == 10))
            return err_set_field(e, f->name, ERR_UNPROCESSABLE, "before_birth", "%s is before the patient's birth",
                                 f->name), NULL;
        break;
    case F_ENUM:
        if (!str_in_list(s, f->values))
            return err_set_field(e, f->name, ERR_UNPROCESSABLE, "invalid_option", "%s is not one of the values it "
                                 "takes", f->name), NULL;
        break;
    case F_ICD10:
    case F_MEDICINE:
        if (s == NULL || strlen(s) > 64
            || catalogue_normalise(f->type == F_ICD10 ? CATALOGUE_ICD10 : CATALOGUE_MEDICINES, s, norm, sizeof(norm)) < 0)
            return err_set_field(e, f->name, ERR_UNPROCESSABLE, "unknown_code", "%s is not a %s of the catalogue",
                                 f->name, f->type == F_ICD10 ? "ICD-10 code" : "medicine"), NULL;
        return json_string(norm);
    case F_VACCINE:
        if (s == NULL || sched == NULL || !schedule_vaccine_known(sched, s))
            return err_set_field(e, f->name, ERR_UNPROCESSABLE, "unknown_vaccine", "%s is not a vaccine of the "
                                 "schedule", f->name), NULL;
        break;
    case F_INT:
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > (json_int_t)f->max)
            return err_set_field(e, f->name, ERR_UNPROCESSABLE, "out_of_range", "%s must be a whole number from 0 "
                                 "(a birth dose) to %zu", f->name, f->max), NULL;
        break;
    case F_BOOL:
        if (!json_is_boolean(v))
            return err_set_field(e, f->name, ERR_UNPROCESSABLE, "invalid_boolean", "%s must be true or false",
                                 f->name), NULL;
        break;
    case F_ID:
        if (!id_valid(s))
            return err_set_field(e, f->name, ERR_UNPROCESSABLE, "invalid_id", "%s must be a record id", f->name),
                   NULL;
        break;
    }
    return json_incref((json_t *)v);
}

/* The patient's birth day (-1 when unknown): the earliest day a birth date of its precision allows. */
static int64_t birth_day(const struct patient_brief *p)
{
    int64_t d;

    return partial_date(p->birth_date, &d) == 0 ? d : -1;
}

/* Validate input into changes ({field: value}) for a new item (current NULL) or a change of current. */
static int item_changes(const struct kind_spec *k, const json_t *input, const json_t *current, int64_t born,
                        const struct schedule *sched, json_t *changes, struct err *e)
{
    const struct field_spec *f;
    const json_t *v, *data = current ? json_object_get(current, "data") : NULL;
    const char *key, *status;
    json_t *ok;

    if (!json_is_object(input))
        return err_set(e, ERR_INVALID, "expected_object", "the body must be a JSON object");
    json_object_foreach((json_t *)input, key, v) {
        if (strcmp(key, "status") == 0) {
            if (!str_in_list(json_string_value(v), k->statuses))
                return err_set_field(e, "status", ERR_UNPROCESSABLE, "invalid_status", "status is not one a %s takes",
                                     k->kind);
            status = json_string_value(v);
            if (current == NULL || strcmp(status, json_string_value(json_object_get(current, "status"))) != 0)
                json_object_set(changes, "status", (json_t *)v);
            continue;
        }
        if ((f = field_find(k, key)) == NULL)
            return err_set_field(e, key, ERR_INVALID, "unknown_field", "'%.40s' is not a field of a %s", key, k->kind);
        if (current && (f->flags & F_ONCE)) {
            if (json_equal(v, json_object_get(data, key)))
                continue;
            return err_set_field(e, key, ERR_UNPROCESSABLE, "immutable_field", "%s of a recorded %s does not change; "
                                 "mark it entered in error and record it again", key, k->kind);
        }
        if (json_is_null(v)) {
            if (f->flags & F_REQUIRED)
                return err_set_field(e, key, ERR_UNPROCESSABLE, "missing_field", "%s is required", key);
            if (current && json_object_get(data, key))
                json_object_set_new(changes, key, json_null());
            continue;
        }
        if ((ok = check_value(f, v, born, sched, e)) == NULL)
            return -1;
        if (current && json_equal(ok, json_object_get(data, key)))
            json_decref(ok);
        else
            json_object_set_new(changes, key, ok);
    }
    if (current == NULL) {
        for (f = k->fields; f->name; f++)
            if ((f->flags & F_REQUIRED) && json_object_get(changes, f->name) == NULL)
                return err_set_field(e, f->name, ERR_UNPROCESSABLE, "missing_field", "%s is required", f->name);
        if (json_object_get(changes, "status") == NULL)
            json_object_set_new(changes, "status", json_string(k->statuses[0]));
    }
    if (k->either[0]) {
        const json_t *a = json_object_get(changes, k->either[0]), *b = json_object_get(changes, k->either[1]);

        if (current) {
            a = a ? a : json_object_get(data, k->either[0]);
            b = b ? b : json_object_get(data, k->either[1]);
        }
        if ((a == NULL || json_is_null(a)) && (b == NULL || json_is_null(b)))
            return err_set_field(e, k->either[0], ERR_UNPROCESSABLE, "missing_field", "a %s needs %s or %s", k->kind,
                                 k->either[0], k->either[1]);
    }
    return 0;
}

static struct schedule *site_schedule(struct db *db, const char *site, int *owned, struct err *e);

/* ---- storing ---- */

/* Apply flat changes to a stored item (or make a new one) and store it. */
static int item_store(struct db *db, const char *id, const json_t *current, const json_t *changes, int64_t at,
                      struct err *e)
{
    json_t *item = current ? json_deep_copy(current) : json_pack("{s:o}", "data", json_object());
    json_t *data;
    const char *key;
    json_t *v;
    int64_t created = at;
    int rc;

    if (item == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    if (current && json_is_integer(json_object_get(current, "created_at")))
        created = json_integer_value(json_object_get(current, "created_at"));
    data = json_object_get(item, "data");
    json_object_foreach((json_t *)changes, key, v) {
        if (strcmp(key, "kind") == 0 || strcmp(key, "patient_id") == 0 || strcmp(key, "site_id") == 0
            || strcmp(key, "status") == 0)
            json_object_set(item, key, v);
        else if (json_is_null(v))
            json_object_del(data, key);
        else
            json_object_set(data, key, v);
    }
    json_object_set_new(item, "id", json_string(id));
    rc = store_chart_put(db, item, created, at, e);
    json_decref(item);
    return rc;
}

/* The API view: {id, kind, patient_id, site_id, status, ...fields, created_at, updated_at}. */
static json_t *item_view(const json_t *item)
{
    json_t *v = json_pack("{s:O,s:O,s:O,s:O,s:O,s:O,s:O}", "id", json_object_get(item, "id"), "kind",
                          json_object_get(item, "kind"), "patient_id", json_object_get(item, "patient_id"), "site_id",
                          json_object_get(item, "site_id"), "status", json_object_get(item, "status"), "created_at",
                          json_object_get(item, "created_at"), "updated_at", json_object_get(item, "updated_at"));

    if (v)
        json_object_update(v, json_object_get(item, "data"));
    return v;
}

static int item_of_kind(const json_t *item, const void *kind)
{
    return strcmp(json_string_value(json_object_get(item, "kind")), kind) == 0;
}

static json_t *item_load(struct db *db, const struct caller *who, const char *kind, const char *id, struct err *e)
{
    return clinical_load(db, who, id, store_chart_get, item_of_kind, kind, "not_found", kind, e);
}

static void audit_action(char *out, size_t n, const char *kind, const char *verb)
{
    snprintf(out, n, "%s.%s", kind, verb);
}

json_t *chart_create(struct db *db, const struct caller *who, const char *kind, const char *patient_id,
                     const json_t *input, struct err *e)
{
    const struct kind_spec *k = kind_find(kind);
    struct patient_brief p;
    json_t *changes = json_object(), *item = NULL, *out = NULL;
    char id[ID_LEN], action[40];
    struct schedule *sched = NULL;
    const char *site;
    int owned = 0;

    if (k == NULL || changes == NULL)
        return json_decref(changes), err_set(e, ERR_INTERNAL, "internal_error", "no such chart kind"), NULL;
    if (who->nsites == 0) {
        err_set(e, ERR_FORBIDDEN, "no_site", "your account belongs to no site");
        goto done;
    }
    if (db_begin_write(db, e) < 0)
        goto done;
    if (clinical_patient_visible(db, who, patient_id, &p, e) < 0)
        goto fail;
    if (strcmp(kind, "immunization") == 0 && (sched = site_schedule(db, p.site_id, &owned, e)) == NULL)
        goto fail;
    if (item_changes(k, input, NULL, birth_day(&p), sched, changes, e) < 0)
        goto fail;
    site = caller_has_site(who, p.site_id) ? p.site_id : who->sites[0];
    json_object_set_new(changes, "kind", json_string(kind));
    json_object_set_new(changes, "patient_id", json_string(patient_id));
    json_object_set_new(changes, "site_id", json_string(site));
    id_new(id);
    audit_action(action, sizeof(action), kind, "create");
    if (changelog_record(db, NULL, CHART_TABLE, id, changes, CHANGELOG_NEW_ROW, NULL, e) < 0
        || item_store(db, id, NULL, changes, now_ms(), e) < 0 || store_chart_get(db, id, &item, e) <= 0
        || audit_record(db, who, action, kind, id, site, "ok", e) < 0 || db_commit(db, e) < 0)
        goto fail;
    out = item_view(item);
    goto done;
fail:
    db_rollback(db);
done:
    if (owned)
        schedule_free(sched);
    json_decref(changes);
    json_decref(item);
    return out;
}

json_t *chart_update(struct db *db, const struct caller *who, const char *kind, const char *id, const json_t *input,
                     struct err *e)
{
    const struct kind_spec *k = kind_find(kind);
    struct patient_brief p;
    json_t *changes = json_object(), *cur = NULL, *item = NULL, *out = NULL;
    char action[40];
    struct err ignore;

    if (k == NULL || changes == NULL)
        return json_decref(changes), err_set(e, ERR_INTERNAL, "internal_error", "no such chart kind"), NULL;
    if (db_begin_write(db, e) < 0)
        goto done;
    if ((cur = item_load(db, who, kind, id, e)) == NULL)
        goto fail;
    err_clear(&ignore);
    if (store_patient_brief(db, json_string_value(json_object_get(cur, "patient_id")), &p, &ignore) <= 0)
        p.birth_date[0] = '\0';
    if (item_changes(k, input, cur, birth_day(&p), NULL, changes, e) < 0)
        goto fail;
    audit_action(action, sizeof(action), kind, "update");
    if ((json_object_size(changes) > 0
         && (changelog_record(db, NULL, CHART_TABLE, id, changes, 0, NULL, e) < 0
             || item_store(db, id, cur, changes, now_ms(), e) < 0))
        || store_chart_get(db, id, &item, e) <= 0
        || audit_record(db, who, action, kind, id, json_string_value(json_object_get(cur, "site_id")), "ok", e) < 0
        || db_commit(db, e) < 0)
        goto fail;
    out = item_view(item);
    goto done;
fail:
    db_rollback(db);
done:
    json_decref(changes);
    json_decref(cur);
    json_decref(item);
    return out;
}

json_t *chart_get(struct db *db, const struct caller *who, const char *kind, const char *id, struct err *e)
{
    json_t *item = item_load(db, who, kind, id, e), *out;
    char action[40];

    if (item == NULL)
        return NULL;
    out = item_view(item);
    audit_action(action, sizeof(action), kind, "read");
    if (out && audit_record(db, who, action, kind, id, json_string_value(json_object_get(item, "site_id")), "ok", e) < 0) {
        json_decref(out);
        out = NULL;
    }
    json_decref(item);
    return out;
}

struct collect {
    json_t *items;
    int all;
};

static int collect_view(const json_t *item, void *ctx)
{
    struct collect *c = ctx;

    if (c->all || strcmp(json_string_value(json_object_get(item, "status")), "entered_in_error") != 0)
        json_array_append_new(c->items, item_view(item));
    return 0;
}

json_t *chart_list(struct db *db, const struct caller *who, const char *kind, const char *patient_id, int all,
                   struct err *e)
{
    struct collect c = { json_array(), all };
    struct patient_brief p;
    char action[40];

    if (c.items == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    audit_action(action, sizeof(action), kind, "list");
    if (clinical_patient_visible(db, who, patient_id, &p, e) < 0
        || store_chart_list(db, patient_id, kind, collect_view, &c, e) < 0
        || audit_record(db, who, action, "patient", patient_id, p.site_id, "ok", e) < 0) {
        json_decref(c.items);
        return NULL;
    }
    return json_pack("{s:o}", "items", c.items);
}

/* ---- immunizations due ---- */

/* The schedule a site follows: a national one the node loaded for it (meta "schedule:<site>"), else WHO's. */
static struct schedule *site_schedule(struct db *db, const char *site, int *owned, struct err *e)
{
    char key[64], *text;
    size_t cap = 1u << 20;
    json_t *def;
    struct schedule *s;
    int found;

    *owned = 0;
    snprintf(key, sizeof(key), "schedule:%s", site);
    if ((text = malloc(cap)) == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    found = store_meta_get(db, key, text, cap, e);
    if (found <= 0) {
        free(text);
        return found < 0 ? NULL : schedule_builtin(e);
    }
    def = json_loads(text, 0, NULL);
    free(text);
    s = def ? schedule_load(def, e) : NULL;
    json_decref(def);
    if (s == NULL)
        return schedule_builtin(e);   /* a stored schedule that no longer loads: fall back, never fail a chart */
    *owned = 1;
    return s;
}

struct history {
    json_t *given;      /* API views of the immunizations */
    json_t *doses;      /* {"vaccine","dose","date","documented"} for the schedule */
};

static int history_add(const json_t *item, void *ctx)
{
    struct history *h = ctx;
    const json_t *d = json_object_get(item, "data");
    json_t *dose;

    if (strcmp(json_string_value(json_object_get(item, "status")), "entered_in_error") == 0)
        return 0;
    json_array_append_new(h->given, item_view(item));
    /* only what the engine reads: it refuses other keys */
    dose = json_pack("{s:O,s:O,s:b}", "vaccine", json_object_get(d, "vaccine"), "date", json_object_get(d, "given_on"),
                     "documented", !json_is_false(json_object_get(d, "documented")));
    if (dose && json_is_integer(json_object_get(d, "dose")))
        json_object_set(dose, "dose", json_object_get(d, "dose"));
    json_array_append_new(h->doses, dose);
    return 0;
}

/* The due list of a visible patient (p filled), with the given doses into *given when not NULL. */
static json_t *immunizations_due(struct db *db, const struct patient_brief *p, json_t **given, struct err *e)
{
    struct history h = { json_array(), json_array() };
    struct schedule *s;
    json_t *out = NULL;
    int owned = 0;
    int64_t born = birth_day(p);

    if (h.given == NULL || h.doses == NULL || store_chart_list(db, p->id, "immunization", history_add, &h, e) < 0)
        goto done;
    if (born < 0) {
        out = json_pack("{s:[],s:[],s:[],s:s}", "due", "overdue", "next", "note",
                        "the birth date is unknown: record it (an estimate will do) to get a plan");
        goto done;
    }
    if ((s = site_schedule(db, p->site_id, &owned, e)) == NULL)
        goto done;
    out = schedule_due(s, h.doses, born, p->sex[0] ? p->sex : NULL, date_today(), e);
    if (owned)
        schedule_free(s);
done:
    if (out && given)
        *given = json_incref(h.given);
    json_decref(h.given);
    json_decref(h.doses);
    return out;
}

json_t *chart_immunizations_due(struct db *db, const struct caller *who, const char *patient_id, struct err *e)
{
    struct patient_brief p;
    json_t *out;

    if (clinical_patient_visible(db, who, patient_id, &p, e) < 0 || (out = immunizations_due(db, &p, NULL, e)) == NULL)
        return NULL;
    if (audit_record(db, who, "immunization.due", "patient", patient_id, p.site_id, "ok", e) < 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

json_t *chart_schedule_get(struct db *db, const struct caller *who, const char *site, struct err *e)
{
    char key[64], *text;
    size_t cap = 1u << 20;
    const struct asset *a;
    json_t *def = NULL;
    int found;

    (void)who;
    snprintf(key, sizeof(key), "schedule:%s", site);
    if ((text = malloc(cap)) == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    found = store_meta_get(db, key, text, cap, e);
    if (found > 0)
        def = json_loads(text, 0, NULL);
    free(text);
    if (found < 0)
        return NULL;
    if (def == NULL && (a = data_file_find("/schedules/who_epi.json")) != NULL)
        def = json_loadb((const char *)a->data, a->size, 0, NULL);
    if (def == NULL)
        return err_set(e, ERR_INTERNAL, "no_schedule", "this binary ships no immunization schedule"), NULL;
    return json_pack("{s:s,s:b,s:o}", "site_id", site, "national", found > 0, "schedule", def);
}

json_t *chart_schedule_put(struct db *db, const struct caller *who, const char *site, const json_t *def, struct err *e)
{
    struct schedule *s = schedule_load(def, e);
    char key[64], *text;

    if (s == NULL)
        return NULL;
    schedule_free(s);
    snprintf(key, sizeof(key), "schedule:%s", site);
    if ((text = json_dumps(def, JSON_COMPACT)) == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    if (strlen(text) >= (1u << 20)) {
        free(text);
        return err_set(e, ERR_TOO_LARGE, "schedule_too_large", "a schedule is at most 1 MiB of JSON"), NULL;
    }
    if (db_begin_write(db, e) < 0 || store_meta_set(db, key, text, e) < 0
        || audit_record(db, who, "schedule.load", "site", site, site, "ok", e) < 0 || db_commit(db, e) < 0) {
        db_rollback(db);
        free(text);
        return NULL;
    }
    free(text);
    return chart_schedule_get(db, who, site, e);
}

/* ---- the summary ---- */

struct summary {
    struct db *db;
    json_t *allergies, *problems, *meds, *alerts;
    int64_t today;
};

static int summary_item(const json_t *item, void *ctx)
{
    struct summary *s = ctx;
    const char *kind = json_string_value(json_object_get(item, "kind"));
    const char *status = json_string_value(json_object_get(item, "status"));
    const json_t *d = json_object_get(item, "data");
    int64_t end;

    if (strcmp(status, "active") != 0)
        return 0;
    if (strcmp(kind, "allergy") == 0) {
        json_array_append_new(s->allergies, item_view(item));
        if (str_in_list(json_string_value(json_object_get(d, "severity")), (const char *const[]){ "severe", NULL }))
            json_array_append_new(s->alerts, json_pack("{s:s,s:s,s:O}", "code", "severe_allergy", "level", "high",
                                                       "substance", json_object_get(d, "substance")));
    } else if (strcmp(kind, "problem") == 0) {
        json_array_append_new(s->problems, item_view(item));
    } else if (strcmp(kind, "medication") == 0) {
        if (json_is_string(json_object_get(d, "ended_on"))
            && date_parse(json_string_value(json_object_get(d, "ended_on")), &end) == 0 && end < s->today)
            return 0;
        json_array_append_new(s->meds, json_pack("{s:s,s:O,s:O?,s:O?,s:O?,s:O?,s:O?}", "source", "reported", "id",
                                                 json_object_get(item, "id"), "medication",
                                                 json_object_get(d, "medication"), "name", json_object_get(d, "name"),
                                                 "dose", json_object_get(d, "dose"), "frequency",
                                                 json_object_get(d, "frequency"), "ends_on",
                                                 json_object_get(d, "ended_on")));
    }
    return 0;
}

/* Prescription items still running today, from current prescription entries. */
static int summary_prescription(const json_t *entry, void *ctx)
{
    struct summary *s = ctx;
    const json_t *items = json_object_get(json_object_get(entry, "values"), "items"), *it;
    const char *recorded = json_string_value(json_object_get(entry, "recorded_at"));
    int64_t ms, start, days;
    char ends[11];
    size_t i;

    if (recorded == NULL || datetime_parse(recorded, &ms) < 0)
        return 0;
    start = ms / 86400000;
    json_array_foreach(items, i, it) {
        days = json_integer_value(json_object_get(it, "duration_days"));
        if (days <= 0 && json_is_real(json_object_get(it, "duration_days")))
            days = (int64_t)json_real_value(json_object_get(it, "duration_days"));
        if (days <= 0 || start + days - 1 < s->today)
            continue;
        date_format(start + days - 1, ends);
        json_array_append_new(s->meds, json_pack("{s:s,s:O,s:O?,s:O?,s:O?,s:O?,s:O?,s:s}", "source", "prescription",
                                                 "entry_id", json_object_get(entry, "id"), "medication",
                                                 json_object_get(it, "medication"), "dose", json_object_get(it, "dose"),
                                                 "dose_unit", json_object_get(it, "dose_unit"), "route",
                                                 json_object_get(it, "route"), "frequency",
                                                 json_object_get(it, "frequency"), "ends_on", ends));
    }
    return 0;
}

static int keep_first(const json_t *row, void *ctx)
{
    json_t **out = ctx;

    *out = json_incref((json_t *)row);
    return 1;
}

json_t *chart_summary(struct db *db, const struct caller *who, const char *patient_id, struct err *e)
{
    struct summary s = { db, json_array(), json_array(), json_array(), json_array(), date_today() };
    struct patient_brief p;
    json_t *out = NULL, *vitals = NULL, *phq = NULL, *next = NULL, *given = NULL, *due = NULL, *patient = NULL, *lv;
    char now[21];
    size_t n;

    if (db_begin_read(db, e) < 0)
        goto done;
    if (clinical_patient_visible(db, who, patient_id, &p, e) < 0
        || store_chart_list(db, patient_id, NULL, summary_item, &s, e) < 0
        || store_entries_current(db, patient_id, "prescription", 50, summary_prescription, &s, e) < 0
        || store_entries_current(db, patient_id, "vitals", 1, keep_first, &vitals, e) < 0
        || store_entries_current(db, patient_id, "phq9", 1, keep_first, &phq, e) < 0
        || store_patient_get(db, patient_id, &patient, e) <= 0)
        goto fail;
    datetime_format(now_ms(), now);
    if (store_next_appointment(db, patient_id, now, &next, e) < 0 || (due = immunizations_due(db, &p, &given, e)) == NULL)
        goto fail;
    db_commit(db, NULL);
    if (phq && json_is_true(json_object_get(json_object_get(phq, "values"), "suicide_risk_flag")))
        json_array_append_new(s.alerts, json_pack("{s:s,s:s,s:O}", "code", "suicide_risk", "level", "high", "entry_id",
                                                  json_object_get(phq, "id")));
    if ((n = json_array_size(json_object_get(due, "overdue"))) > 0)
        json_array_append_new(s.alerts, json_pack("{s:s,s:s,s:I}", "code", "immunizations_overdue", "level", "medium",
                                                  "count", (json_int_t)n));
    lv = vitals ? json_pack("{s:O,s:O,s:O}", "entry_id", json_object_get(vitals, "id"), "recorded_at",
                            json_object_get(vitals, "recorded_at"), "values", json_object_get(vitals, "values")) : NULL;
    out = json_pack("{s:{s:s,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?},s:o,s:o,s:o,s:o,s:o?,s:{s:o,s:O?,s:O?,s:O?},s:O?}",
                    "patient", "id", patient_id, "given_name", json_object_get(patient, "given_name"), "family_name",
                    json_object_get(patient, "family_name"), "name_original", json_object_get(patient, "name_original"),
                    "sex", json_object_get(patient, "sex"), "birth_date", json_object_get(patient, "birth_date"),
                    "birth_precision", json_object_get(patient, "birth_precision"), "site_id",
                    json_object_get(patient, "site_id"),
                    "alerts", s.alerts, "allergies", s.allergies, "problems", s.problems, "current_medications", s.meds,
                    "last_vitals", lv,
                    "immunizations", "given", given, "due", json_object_get(due, "due"), "overdue",
                    json_object_get(due, "overdue"), "next", json_object_get(due, "next"),
                    "next_appointment", next);
    s.alerts = s.allergies = s.problems = s.meds = given = NULL;     /* taken by out ("o") */
    if (out == NULL) {
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        goto done;
    }
    if (audit_record(db, who, "patient.summary", "patient", patient_id, p.site_id, "ok", e) < 0) {
        json_decref(out);
        out = NULL;
    }
    goto done;
fail:
    db_rollback(db);
done:
    json_decref(s.alerts);
    json_decref(s.allergies);
    json_decref(s.problems);
    json_decref(s.meds);
    json_decref(vitals);
    json_decref(phq);
    json_decref(next);
    json_decref(given);
    json_decref(due);
    json_decref(patient);
    return out;
}

/* ---- the timeline ---- */

struct page {
    struct db *db;
    json_t *items;
    char last_at[32], last_id[ID_LEN];
};

static int page_add(const json_t *row, void *ctx)
{
    struct page *pg = ctx;
    const char *type = json_string_value(json_object_get(row, "type")), *id = json_string_value(json_object_get(row, "id"));
    json_t *rec = NULL, *view = NULL;
    struct err e;

    err_clear(&e);
    snprintf(pg->last_at, sizeof(pg->last_at), "%s", json_string_value(json_object_get(row, "at")));
    snprintf(pg->last_id, sizeof(pg->last_id), "%s", id);
    if (strcmp(type, "encounter") == 0) {
        if (store_encounter_get(pg->db, id, &rec, &e) > 0 && (view = json_deep_copy(rec)) != NULL)
            json_object_del(view, "deleted");
    } else if (store_entry_get(pg->db, id, &rec, &e) > 0) {
        view = json_deep_copy(rec);
    }
    json_decref(rec);
    if (view == NULL)
        return 0;
    json_object_set_new(view, "type", json_string(type));
    json_array_append_new(pg->items, view);
    return 0;
}

json_t *chart_timeline(struct db *db, const struct caller *who, const char *patient_id, const char *cursor,
                       int64_t limit, struct err *e)
{
    struct page pg = { db, json_array(), "", "" };
    struct patient_brief p;
    char at[32] = "", after[ID_LEN] = "", next[80];
    const char *bar;
    json_t *out;

    if (pg.items == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    if (limit <= 0 || limit > TIMELINE_PAGE_MAX)
        limit = 20;
    if (cursor) {
        /* "<time>|<id>" of the last item of the previous page */
        bar = strchr(cursor, '|');
        if (bar == NULL || bar - cursor >= (long)sizeof(at) || bar - cursor < 10 || !id_valid(bar + 1)) {
            json_decref(pg.items);
            return err_set(e, ERR_INVALID, "invalid_cursor", "the cursor is not one this server gave"), NULL;
        }
        snprintf(at, sizeof(at), "%.*s", (int)(bar - cursor), cursor);
        snprintf(after, sizeof(after), "%s", bar + 1);
    }
    if (db_begin_read(db, e) < 0) {
        json_decref(pg.items);
        return NULL;
    }
    if (clinical_patient_visible(db, who, patient_id, &p, e) < 0
        || store_timeline(db, patient_id, cursor ? at : NULL, cursor ? after : NULL, limit, page_add, &pg, e) < 0) {
        db_rollback(db);
        json_decref(pg.items);
        return NULL;
    }
    db_commit(db, NULL);
    snprintf(next, sizeof(next), "%s|%s", pg.last_at, pg.last_id);
    out = json_pack("{s:o,s:s?}", "items", pg.items, "next", (int64_t)json_array_size(pg.items) == limit ? next : NULL);
    if (out && audit_record(db, who, "patient.timeline", "patient", patient_id, p.site_id, "ok", e) < 0) {
        json_decref(out);
        out = NULL;
    }
    return out;
}

/* ---- replication ---- */

int chart_apply(struct db *db, const char *id, const json_t *fields, int64_t at, struct err *e)
{
    json_t *cur = NULL;
    int rc;

    if (store_chart_get(db, id, &cur, e) < 0)
        return -1;
    /* the state given is whole: rebuild the item from it, keeping the local creation time */
    if (cur) {
        json_object_set_new(cur, "data", json_object());
        rc = item_store(db, id, cur, fields, at, e);
    } else {
        rc = item_store(db, id, NULL, fields, at, e);
    }
    json_decref(cur);
    return rc;
}

int chart_check_fields(const json_t *fields, struct err *e)
{
    const char *key;
    json_t *v;
    size_t i;

    json_object_foreach((json_t *)fields, key, v) {
        if (strcmp(key, "kind") == 0) {
            if (kind_find(json_string_value(v)) == NULL)
                goto bad;
            continue;
        }
        if (strcmp(key, "patient_id") == 0 || strcmp(key, "site_id") == 0 || strcmp(key, "status") == 0) {
            if (!json_is_string(v) || json_string_length(v) > 40)
                goto bad;
            continue;
        }
        /* a field of some kind, with a value of its type (validated where it was written) */
        for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
            const struct field_spec *f = field_find(&kinds[i], key);

            if (f && (json_is_null(v) || (f->type == F_INT ? json_is_integer(v)
                                          : f->type == F_BOOL ? json_is_boolean(v)
                                          : json_is_string(v) && json_string_length(v) <= 2000)))
                break;
        }
        if (i == sizeof(kinds) / sizeof(kinds[0]))
            goto bad;
    }
    return 0;
bad:
    return err_set(e, ERR_INVALID, "invalid_change", "a chart change has an unknown or malformed field '%.40s'", key);
}

int chart_site_of(struct db *db, const char *id, char site[ID_LEN], struct err *e)
{
    return clinical_site_of(db, store_chart_get, id, site, e);
}
