/* forms.c — form definitions on a node: built-in seeding, the compiled-form cache, listing, new forms and
 * versions, and their replication (see forms.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/datafiles.h"
#include "core/id.h"
#include "core/log.h"
#include "core/util.h"
#include "services/audit.h"
#include "services/changelog.h"
#include "services/forms.h"
#include "services/xlsform.h"
#include "store/forms.h"

/* ---- the compiled-form cache: definitions never change, so an entry never goes stale ---- */

#define CACHE_MAX 256

static struct {
    pthread_mutex_t lock;
    int n;
    struct {
        char row_id[ID_LEN];
        struct form *form;
    } slot[CACHE_MAX];
} cache = { PTHREAD_MUTEX_INITIALIZER, 0, { { { 0 }, NULL } } };

static struct form *cache_get(const char *row_id)
{
    struct form *f = NULL;
    int i;

    pthread_mutex_lock(&cache.lock);
    for (i = 0; i < cache.n; i++) {
        if (strcmp(cache.slot[i].row_id, row_id) == 0) {
            f = cache.slot[i].form;
            form_retain(f);
            break;
        }
    }
    pthread_mutex_unlock(&cache.lock);
    return f;
}

static void cache_put(const char *row_id, struct form *f)
{
    int i;

    pthread_mutex_lock(&cache.lock);
    for (i = 0; i < cache.n; i++)
        if (strcmp(cache.slot[i].row_id, row_id) == 0)
            break;
    if (i == cache.n) {
        if (cache.n == CACHE_MAX) {     /* full: let the oldest go (its users hold their own references) */
            form_release(cache.slot[0].form);
            memmove(&cache.slot[0], &cache.slot[1], (CACHE_MAX - 1) * sizeof(cache.slot[0]));
            cache.n--;
            i = cache.n;
        }
        snprintf(cache.slot[i].row_id, ID_LEN, "%s", row_id);
        cache.slot[i].form = f;
        form_retain(f);
        cache.n++;
    }
    pthread_mutex_unlock(&cache.lock);
}

/* Compile a stored row (through the cache). */
static struct form *form_of_row(const struct form_row *r, struct err *e)
{
    struct form *f = cache_get(r->row_id);
    json_t *def, *problems = NULL;

    if (f)
        return f;
    if ((def = json_loads(r->definition, 0, NULL)) == NULL) {
        err_set(e, ERR_INTERNAL, "form_unreadable", "the stored form '%s' version %lld is not valid JSON",
                r->form_id, (long long)r->version);
        return NULL;
    }
    f = form_compile(def, &problems, e);
    json_decref(def);
    json_decref(problems);
    if (f == NULL) {
        if (e->kind == ERR_UNPROCESSABLE)
            err_set(e, ERR_INTERNAL, "form_unusable", "the stored form '%s' version %lld is not a valid definition "
                    "(made by a newer node?)", r->form_id, (long long)r->version);
        return NULL;
    }
    cache_put(r->row_id, f);
    return f;
}

struct form *forms_find(struct db *db, const char *form_id, int64_t version, char row_id[ID_LEN], struct err *e)
{
    struct form_row r;
    struct form *f;
    int found;

    if (form_id == NULL || strlen(form_id) > FORM_ID_MAX) {
        err_set(e, ERR_NOT_FOUND, "form_not_found", "no such form");
        return NULL;
    }
    found = store_form_resolve(db, form_id, version, &r, e);
    if (found <= 0) {
        if (found == 0)
            err_set(e, ERR_NOT_FOUND, "form_not_found", version ? "form '%s' has no version %lld" : "no form '%s'%.0lld",
                    form_id, (long long)version);
        return NULL;
    }
    if (row_id)
        snprintf(row_id, ID_LEN, "%s", r.row_id);
    f = form_of_row(&r, e);
    store_form_row_free(&r);
    return f;
}

struct form *forms_find_row(struct db *db, const char *row_id, struct err *e)
{
    struct form_row r;
    struct form *f;
    int found = store_form_get(db, row_id, &r, e);

    if (found <= 0) {
        if (found == 0)
            err_set(e, ERR_NOT_FOUND, "form_not_found", "no such form version");
        return NULL;
    }
    f = form_of_row(&r, e);
    store_form_row_free(&r);
    return f;
}

/* ---- built-in forms ---- */

/* The record id of a built-in definition: a UUID made from a hash of its text, so every node that ships
 * the same text gives it the same id (version nibble 8: "custom"). */
static void builtin_row_id(const void *text, size_t n, char out[ID_LEN])
{
    struct crypto_hasher h;
    char hex[CRYPTO_HASH_HEX_LEN];

    crypto_hasher_init(&h);
    crypto_hasher_update(&h, "sanad builtin form", 19);
    crypto_hasher_update(&h, text, n);
    crypto_hasher_final_hex(&h, hex);
    snprintf(out, ID_LEN, "%.8s-%.4s-8%.3s-a%.3s-%.12s", hex, hex + 8, hex + 12, hex + 15, hex + 18);
}

int forms_seed_builtin(struct db *db, struct err *e)
{
    struct form_row r, have;
    struct form *f;
    json_t *def, *problems;
    size_t i, added = 0;
    int found;

    if (db_begin_write(db, e) < 0)
        return -1;
    for (i = 0; i < data_files_count; i++) {
        const struct asset *a = &data_files[i];

        if (strncmp(a->path, "/forms/", 7) != 0 || strlen(a->path) < 12
            || strcmp(a->path + strlen(a->path) - 5, ".json") != 0)
            continue;
        memset(&r, 0, sizeof(r));
        builtin_row_id(a->data, a->size, r.row_id);
        if ((found = store_form_get(db, r.row_id, &have, e)) < 0)
            goto fail;
        if (found) {
            store_form_row_free(&have);
            continue;
        }
        def = json_loadb((const char *)a->data, a->size, 0, NULL);
        problems = NULL;
        f = def ? form_compile(def, &problems, e) : NULL;
        if (f == NULL) {
            /* a shipped form that does not compile is a bug caught by the tests; never stop a node for it */
            log_msg(LOG_ERROR, "forms: the built-in form %s is not valid and was not loaded", a->path);
            json_decref(def);
            json_decref(problems);
            err_clear(e);
            continue;
        }
        snprintf(r.form_id, sizeof(r.form_id), "%s", form_id(f));
        r.version = form_version(f);
        r.builtin = 1;
        r.created_at = now_ms();
        r.definition = json_dumps(def, JSON_COMPACT);
        json_decref(def);
        form_release(f);
        if (r.definition == NULL) {
            err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
            goto fail;
        }
        found = store_form_put(db, &r, e);
        store_form_row_free(&r);
        if (found < 0)
            goto fail;
        added++;
    }
    if (db_commit(db, e) < 0)
        goto fail;
    if (added)
        log_msg(LOG_INFO, "forms: %zu built-in form definition%s stored", added, added == 1 ? "" : "s");
    return 0;
fail:
    db_rollback(db);
    return -1;
}

/* ---- reading ---- */

struct list_state {
    const char *lang;
    json_t *items;
    struct err *e;
};

static int list_one(const struct form_row *r, void *ctx)
{
    struct list_state *s = ctx;
    json_t *def = json_loads(r->definition, 0, NULL), *loc, *item;

    if (def == NULL)
        return 0;   /* unreadable rows are skipped in a listing; forms_get reports them */
    loc = form_localise(def, s->lang);
    json_decref(def);
    if (loc == NULL)
        return 1;
    item = json_pack("{s:s,s:I,s:O?,s:O?,s:O?,s:b,s:s}", "id", r->form_id, "version", (json_int_t)r->version,
                     "title", json_object_get(loc, "title"), "description", json_object_get(loc, "description"),
                     "encounter_types", json_object_get(loc, "encounter_types"), "builtin", r->builtin,
                     "row_id", r->row_id);
    json_decref(loc);
    if (item == NULL)
        return 1;
    json_array_append_new(s->items, item);
    return 0;
}

json_t *forms_list(struct db *db, const struct caller *who, const char *lang, struct err *e)
{
    struct list_state s = { lang, json_array(), e };

    (void)who;
    if (s.items == NULL || store_form_list_latest(db, list_one, &s, e) < 0) {
        json_decref(s.items);
        return NULL;
    }
    return json_pack("{s:o}", "items", s.items);
}

json_t *forms_get(struct db *db, const struct caller *who, const char *form_id, int64_t version, const char *lang,
                  struct err *e)
{
    char row_id[ID_LEN];
    struct form *f = forms_find(db, form_id, version, row_id, e);
    json_t *out;

    (void)who;
    if (f == NULL)
        return NULL;
    out = lang ? form_localise(form_definition(f), lang) : json_deep_copy(form_definition(f));
    form_release(f);
    if (out == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    json_object_set_new(out, "row_id", json_string(row_id));
    return out;
}

static int version_one(const struct form_row *r, void *ctx)
{
    struct list_state *s = ctx;

    json_array_append_new(s->items, json_pack("{s:I,s:s,s:b,s:I}", "version", (json_int_t)r->version, "row_id",
                                              r->row_id, "builtin", r->builtin, "created_at",
                                              (json_int_t)r->created_at));
    return 0;
}

json_t *forms_versions(struct db *db, const struct caller *who, const char *form_id, struct err *e)
{
    struct list_state s = { NULL, json_array(), e };

    (void)who;
    if (s.items == NULL || store_form_list_versions(db, form_id, version_one, &s, e) < 0) {
        json_decref(s.items);
        return NULL;
    }
    if (json_array_size(s.items) == 0) {
        json_decref(s.items);
        return err_set(e, ERR_NOT_FOUND, "form_not_found", "no such form"), NULL;
    }
    return json_pack("{s:o}", "items", s.items);
}

/* ---- writing ---- */

json_t *forms_save(struct db *db, const struct caller *who, const char *form_id_in, const json_t *definition,
                   json_t **problems, struct err *e)
{
    struct form_row latest, r;
    struct form *f = NULL;
    json_t *def = NULL, *changes = NULL, *out = NULL;
    const char *id;
    const json_t *given;
    int found;

    *problems = NULL;
    memset(&r, 0, sizeof(r));
    if (!json_is_object(definition))
        return err_set(e, ERR_INVALID, "invalid_form", "a form definition is a JSON object"), NULL;
    id = form_id_in ? form_id_in : json_string_value(json_object_get(definition, "id"));
    if (form_id_in && json_object_get(definition, "id")
        && (!json_is_string(json_object_get(definition, "id"))
            || strcmp(json_string_value(json_object_get(definition, "id")), form_id_in) != 0))
        return err_set(e, ERR_UNPROCESSABLE, "id_mismatch", "the definition's id is not the form's id in the path"),
               NULL;
    if (id == NULL || strlen(id) > FORM_ID_MAX)
        return err_set(e, ERR_UNPROCESSABLE, "invalid_form", "the form needs an id"), NULL;
    if (db_begin_write(db, e) < 0)
        return NULL;
    if ((found = store_form_resolve(db, id, 0, &latest, e)) < 0)
        goto fail;
    if (found)
        store_form_row_free(&latest);
    if (!form_id_in && found) {
        err_set(e, ERR_CONFLICT, "form_exists", "a form '%s' exists already: store a new version with PUT", id);
        goto fail;
    }
    if (form_id_in && !found) {
        err_set(e, ERR_NOT_FOUND, "form_not_found", "no form '%s': create it with POST", id);
        goto fail;
    }
    given = json_object_get(definition, "version");
    if (given && (!json_is_integer(given) || json_integer_value(given) != (found ? latest.version + 1 : 1))) {
        err_set(e, ERR_CONFLICT, "stale_version", "the next version of '%s' is %lld: send that number or none", id,
                (long long)(found ? latest.version + 1 : 1));
        goto fail;
    }
    if ((def = json_deep_copy(definition)) == NULL)
        goto oom;
    json_object_set_new(def, "id", json_string(id));
    json_object_set_new(def, "version", json_integer(found ? latest.version + 1 : 1));
    if ((f = form_compile(def, problems, e)) == NULL)
        goto fail;
    id_new(r.row_id);
    snprintf(r.form_id, sizeof(r.form_id), "%s", id);
    r.version = form_version(f);
    r.created_at = now_ms();
    if ((r.definition = json_dumps(def, JSON_COMPACT)) == NULL
        || (changes = json_pack("{s:s,s:I,s:O}", "form_id", id, "version", (json_int_t)r.version, "definition",
                                def)) == NULL)
        goto oom;
    if (changelog_record(db, NULL, FORM_TABLE, r.row_id, changes, CHANGELOG_NEW_ROW, NULL, e) < 0
        || store_form_put(db, &r, e) < 0
        || audit_record(db, who, found ? "form.version" : "form.create", "form", r.row_id, NULL, "ok", e) < 0
        || db_commit(db, e) < 0)
        goto fail;
    out = json_pack("{s:s,s:I,s:s}", "id", id, "version", (json_int_t)r.version, "row_id", r.row_id);
    cache_put(r.row_id, f);
    form_release(f);
    store_form_row_free(&r);
    json_decref(def);
    json_decref(changes);
    return out;
oom:
    err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
fail:
    db_rollback(db);
    form_release(f);
    store_form_row_free(&r);
    json_decref(def);
    json_decref(changes);
    return NULL;
}

json_t *forms_import_xlsform(struct db *db, const struct caller *who, const char *survey, size_t survey_len,
                             const char *choices, size_t choices_len, const char *settings, size_t settings_len,
                             const char *into, json_t **problems, struct err *e)
{
    json_t *def, *list = NULL, *out, *p;
    struct form_row latest;
    char key[96];
    size_t i;
    int found;

    *problems = NULL;
    def = xlsform_convert(survey, survey_len, choices, choices_len, settings, settings_len, &list, e);
    if (def == NULL) {
        /* the sheets' problems by "sheet:row:column", like the engine's by field path */
        *problems = json_object();
        json_array_foreach(list, i, p) {
            snprintf(key, sizeof(key), "%s:%lld:%s", json_string_value(json_object_get(p, "sheet")) ?: "?",
                     (long long)json_integer_value(json_object_get(p, "row")),
                     json_string_value(json_object_get(p, "column")) ?: "");
            json_object_set(*problems, key, json_object_get(p, "message"));
        }
        json_decref(list);
        return NULL;
    }
    /* an XLSForm's version is often a date: here versions are numbered by the node, so it is dropped */
    json_object_del(def, "version");
    if (into) {
        json_object_set_new(def, "id", json_string(into));
    } else {
        /* a form of that id exists: the import is its next version */
        found = store_form_resolve(db, json_string_value(json_object_get(def, "id")), 0, &latest, e);
        if (found < 0) {
            json_decref(def);
            return NULL;
        }
        if (found) {
            store_form_row_free(&latest);
            into = json_string_value(json_object_get(def, "id"));
        }
    }
    out = forms_save(db, who, into, def, problems, e);
    json_decref(def);
    return out;
}

/* ---- replication ---- */

int forms_apply(struct db *db, const char *row_id, const json_t *fields, int64_t at, struct err *e)
{
    struct form_row r;
    int rc;

    memset(&r, 0, sizeof(r));
    snprintf(r.row_id, sizeof(r.row_id), "%s", row_id);
    snprintf(r.form_id, sizeof(r.form_id), "%s", json_string_value(json_object_get(fields, "form_id")));
    r.version = json_integer_value(json_object_get(fields, "version"));
    r.created_at = at;
    if ((r.definition = json_dumps(json_object_get(fields, "definition"), JSON_COMPACT)) == NULL)
        return err_set(e, ERR_INVALID, "invalid_change", "a form change has no definition");
    rc = store_form_put(db, &r, e);
    store_form_row_free(&r);
    return rc;
}

int forms_check_fields(const json_t *fields, struct err *e)
{
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)fields, key, v) {
        if (strcmp(key, "form_id") == 0 && json_is_string(v) && json_string_length(v) > 0
            && json_string_length(v) <= FORM_ID_MAX)
            continue;
        if (strcmp(key, "version") == 0 && json_is_integer(v) && json_integer_value(v) >= 1)
            continue;
        if (strcmp(key, "definition") == 0 && json_is_object(v))
            continue;
        return err_set(e, ERR_INVALID, "invalid_change", "a form change has an unknown or malformed field '%.40s'", key);
    }
    return 0;
}
