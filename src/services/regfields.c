/* regfields.c — validating and storing per-site registration configuration. */
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "services/audit.h"
#include "services/regfields.h"
#include "store/patients.h"
#include "store/sites.h"

static const char *const builtin_identifier_types[] = {
    "unhcr", "iom", "national_id", "passport", "site_record", "other",
};
#define NBUILTIN (sizeof(builtin_identifier_types) / sizeof(builtin_identifier_types[0]))

static const char *const field_types[] = { "text", "number", "date", "select", "boolean" };

/* [a-z][a-z0-9_]{0,31} */
static int key_valid(const char *s)
{
    size_t i, n = s ? strlen(s) : 0;

    if (n == 0 || n > 32 || s[0] < 'a' || s[0] > 'z')
        return 0;
    for (i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* A label object {"en":"..","ar":".."}: language codes to non-empty strings of at most 200 bytes. */
static int label_valid(const json_t *label)
{
    const char *lang;
    json_t *v;

    if (!json_is_object(label) || json_object_size(label) == 0 || json_object_size(label) > 32)
        return 0;
    json_object_foreach((json_t *)label, lang, v) {
        if (strlen(lang) < 2 || strlen(lang) > 8 || !json_is_string(v) || json_string_length(v) == 0
            || json_string_length(v) > 200)
            return 0;
    }
    return 1;
}

static int check_field_def(const json_t *f, size_t index, struct err *e)
{
    static const char *const allowed[] = { "key", "type", "label", "required", "searchable", "options", "min",
                                           "max", "max_length", "help" };
    const char *key = json_string_value(json_object_get(f, "key"));
    const char *type = json_string_value(json_object_get(f, "type"));
    const char *k;
    json_t *v, *opt;
    size_t i, j, ok;

    if (!json_is_object(f))
        return err_set(e, ERR_INVALID, "invalid_config", "fields[%zu] must be an object", index);
    json_object_foreach((json_t *)f, k, v) {
        for (ok = 0, i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
            ok |= strcmp(k, allowed[i]) == 0;
        if (!ok)
            return err_set(e, ERR_INVALID, "unknown_field", "fields[%zu] has an unknown property '%.40s'", index, k);
    }
    if (!key_valid(key))
        return err_set(e, ERR_INVALID, "invalid_config",
                       "fields[%zu].key must be 1-32 characters of a-z, 0-9 and _, starting with a letter", index);
    for (ok = 0, i = 0; type && i < sizeof(field_types) / sizeof(field_types[0]); i++)
        ok |= strcmp(type, field_types[i]) == 0;
    if (!ok)
        return err_set(e, ERR_INVALID, "invalid_config",
                       "field '%s': type must be one of text, number, date, select, boolean", key);
    if (!label_valid(json_object_get(f, "label")))
        return err_set(e, ERR_INVALID, "invalid_config",
                       "field '%s' needs a label object like {\"en\":\"Block\",\"ar\":\"...\"}", key);
    if ((v = json_object_get(f, "help")) && !label_valid(v))
        return err_set(e, ERR_INVALID, "invalid_config", "field '%s' help must be a label object", key);
    if (((v = json_object_get(f, "required")) && !json_is_boolean(v))
        || ((v = json_object_get(f, "searchable")) && !json_is_boolean(v)))
        return err_set(e, ERR_INVALID, "invalid_config", "field '%s': required and searchable are true or false", key);
    if (((v = json_object_get(f, "min")) && !json_is_number(v)) || ((v = json_object_get(f, "max")) && !json_is_number(v)))
        return err_set(e, ERR_INVALID, "invalid_config", "field '%s': min and max are numbers", key);
    if ((v = json_object_get(f, "max_length")) && (!json_is_integer(v) || json_integer_value(v) < 1
                                                   || json_integer_value(v) > 2000))
        return err_set(e, ERR_INVALID, "invalid_config", "field '%s': max_length is 1 to 2000", key);
    v = json_object_get(f, "options");
    if (strcmp(type, "select") == 0) {
        if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > 200)
            return err_set(e, ERR_INVALID, "invalid_config", "select field '%s' needs 1 to 200 options", key);
        json_array_foreach(v, i, opt) {
            k = json_string_value(json_object_get(opt, "code"));
            if (!json_is_object(opt) || !key_valid(k) || !label_valid(json_object_get(opt, "label"))
                || json_object_size(opt) != 2)
                return err_set(e, ERR_INVALID, "invalid_config",
                               "select field '%s' option %zu must be {\"code\":\"a_code\",\"label\":{..}}", key, i);
            for (j = 0; j < i; j++)
                if (strcmp(k, json_string_value(json_object_get(json_array_get(v, j), "code"))) == 0)
                    return err_set(e, ERR_INVALID, "invalid_config", "select field '%s' repeats option '%s'", key, k);
        }
    } else if (v) {
        return err_set(e, ERR_INVALID, "invalid_config", "only select fields have options ('%s')", key);
    }
    return 0;
}

json_t *regfields_get(struct db *db, const char *site_id, struct err *e)
{
    json_t *stored = NULL, *types, *out, *fields;
    char *text = NULL;
    size_t i;
    json_t *v;
    int found;

    found = store_registration_config_get(db, site_id, &text, e);
    if (found < 0)
        return NULL;
    if (found)
        stored = json_loads(text, 0, NULL);
    free(text);
    types = json_array();
    for (i = 0; i < NBUILTIN; i++)
        json_array_append_new(types, json_string(builtin_identifier_types[i]));
    json_array_foreach(json_object_get(stored, "identifier_types"), i, v)
        json_array_append(types, v);
    fields = stored ? json_object_get(stored, "fields") : NULL;
    out = json_pack("{s:s,s:o,s:o}", "site_id", site_id, "identifier_types", types, "fields",
                    fields ? json_incref(fields) : json_array());
    json_decref(stored);
    if (out == NULL)
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    return out;
}

json_t *regfields_put(struct db *db, const struct caller *who, const char *site_id, const json_t *config,
                      struct err *e)
{
    const json_t *types = json_object_get(config, "identifier_types"), *fields = json_object_get(config, "fields");
    struct site_row site;
    json_t *stored, *f, *t;
    size_t i, j;
    char *text;
    int found;

    if (types && !json_is_array(types))
        return err_set(e, ERR_INVALID, "invalid_config", "identifier_types must be an array"), NULL;
    if (fields && !json_is_array(fields))
        return err_set(e, ERR_INVALID, "invalid_config", "fields must be an array"), NULL;
    if (json_array_size(types) > 32 || json_array_size(fields) > REGFIELDS_MAX)
        return err_set(e, ERR_INVALID, "invalid_config", "at most 32 identifier types and %d fields", REGFIELDS_MAX), NULL;
    json_array_foreach(types, i, t) {
        if (!key_valid(json_string_value(t)) || regfields_identifier_known(NULL, json_string_value(t)))
            return err_set(e, ERR_INVALID, "invalid_config",
                           "identifier type %zu must be a new lower-case code like 'ration_card'", i), NULL;
        for (j = 0; j < i; j++)
            if (json_equal(t, json_array_get(types, j)))
                return err_set(e, ERR_INVALID, "invalid_config", "identifier type '%s' is repeated",
                               json_string_value(t)), NULL;
    }
    json_array_foreach(fields, i, f) {
        if (check_field_def(f, i, e) < 0)
            return NULL;
        for (j = 0; j < i; j++)
            if (json_equal(json_object_get(f, "key"), json_object_get(json_array_get(fields, j), "key")))
                return err_set(e, ERR_INVALID, "invalid_config", "field key '%s' is repeated",
                               json_string_value(json_object_get(f, "key"))), NULL;
    }
    stored = json_pack("{s:o,s:o}", "identifier_types", types ? json_incref((json_t *)types) : json_array(), "fields",
                       fields ? json_incref((json_t *)fields) : json_array());
    text = stored ? json_dumps(stored, JSON_COMPACT) : NULL;
    json_decref(stored);
    if (text == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    if (db_begin_write(db, e) < 0)
        goto fail_free;
    found = store_site_get(db, site_id, &site, e);
    if (found == 0)
        err_set(e, ERR_NOT_FOUND, "site_not_found", "no site with this id");
    if (found <= 0 || store_registration_config_put(db, site_id, text, now_ms(), e) < 0
        || audit_record(db, who, "registration_fields.update", "site", site_id, site_id, "ok", e) < 0
        || db_commit(db, e) < 0) {
        db_rollback(db);
        goto fail_free;
    }
    free(text);
    return regfields_get(db, site_id, e);
fail_free:
    free(text);
    return NULL;
}

int regfields_identifier_known(const json_t *config, const char *type)
{
    size_t i;
    json_t *t;

    for (i = 0; i < NBUILTIN; i++)
        if (type && strcmp(type, builtin_identifier_types[i]) == 0)
            return 1;
    json_array_foreach(json_object_get(config, "identifier_types"), i, t)
        if (type && json_is_string(t) && strcmp(type, json_string_value(t)) == 0)
            return 1;
    return 0;
}

const json_t *regfields_fields(const json_t *config)
{
    return json_object_get(config, "fields");
}

/* "YYYY-MM-DD" with a real calendar date. */
static int date_valid(const char *s)
{
    int y, m, d, n = 0;
    static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    if (s == NULL || strlen(s) != 10 || sscanf(s, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || n != 10)
        return 0;
    if (y < 1800 || y > 2200 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return 0;
    return !(m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

int regfields_check_value(const json_t *config, const char *key, const json_t *value, int *searchable,
                          struct err *e)
{
    const char *type, *code;
    json_t *f = NULL, *opt, *lim;
    size_t i;
    double x;

    *searchable = 0;
    json_array_foreach(json_object_get(config, "fields"), i, f)
        if (strcmp(json_string_value(json_object_get(f, "key")), key) == 0)
            break;
    if (f == NULL || i == json_array_size(json_object_get(config, "fields")))
        return err_set(e, ERR_INVALID, "unknown_field", "custom field '%.40s' is not defined for this site", key);
    if (json_is_null(value))
        return 0;
    *searchable = json_is_true(json_object_get(f, "searchable"));
    type = json_string_value(json_object_get(f, "type"));
    if (strcmp(type, "text") == 0) {
        lim = json_object_get(f, "max_length");
        if (!json_is_string(value))
            return err_set(e, ERR_INVALID, "wrong_type", "custom field '%s' must be text", key);
        if (json_string_length(value) > (lim ? (size_t)json_integer_value(lim) : 500))
            return err_set(e, ERR_INVALID, "field_too_long", "custom field '%s' is too long", key);
    } else if (strcmp(type, "number") == 0) {
        if (!json_is_number(value))
            return err_set(e, ERR_INVALID, "wrong_type", "custom field '%s' must be a number", key);
        x = json_number_value(value);
        if ((lim = json_object_get(f, "min")) && x < json_number_value(lim))
            return err_set(e, ERR_INVALID, "out_of_range", "custom field '%s' must be at least %g", key,
                           json_number_value(lim));
        if ((lim = json_object_get(f, "max")) && x > json_number_value(lim))
            return err_set(e, ERR_INVALID, "out_of_range", "custom field '%s' must be at most %g", key,
                           json_number_value(lim));
    } else if (strcmp(type, "date") == 0) {
        if (!date_valid(json_string_value(value)))
            return err_set(e, ERR_INVALID, "invalid_date", "custom field '%s' must be a date YYYY-MM-DD", key);
    } else if (strcmp(type, "boolean") == 0) {
        if (!json_is_boolean(value))
            return err_set(e, ERR_INVALID, "wrong_type", "custom field '%s' must be true or false", key);
    } else {
        code = json_string_value(value);
        json_array_foreach(json_object_get(f, "options"), i, opt)
            if (code && strcmp(code, json_string_value(json_object_get(opt, "code"))) == 0)
                return 0;
        return err_set(e, ERR_INVALID, "invalid_option", "custom field '%s' must be one of its option codes", key);
    }
    return 0;
}
