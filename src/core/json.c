/* json.c — bounded, strict JSON parsing and field-table validation. */
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

/* Reject nesting deeper than JSON_MAX_DEPTH before Jansson recurses into it. Strings are skipped so
 * brackets inside them do not count. Malformed input is left for Jansson to report. */
static int json_depth_ok(const char *p, size_t len)
{
    size_t i;
    int depth = 0, in_string = 0;

    for (i = 0; i < len; i++) {
        char c = p[i];

        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > JSON_MAX_DEPTH)
                return 0;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return 1;
}

static int json_strings_ok(const json_t *v, struct err *e)
{
    const char *key;
    json_t *child;
    size_t i;

    switch (json_typeof(v)) {
    case JSON_STRING:
        if (json_string_length(v) > JSON_MAX_STRING)
            return err_set(e, ERR_INVALID, "string_too_long",
                           "a string in the request is longer than %d bytes", JSON_MAX_STRING);
        return 0;
    case JSON_OBJECT:
        json_object_foreach((json_t *)v, key, child) {
            if (strlen(key) > 256)
                return err_set(e, ERR_INVALID, "string_too_long", "an object key is longer than 256 bytes");
            if (json_strings_ok(child, e) < 0)
                return -1;
        }
        return 0;
    case JSON_ARRAY:
        json_array_foreach(v, i, child) {
            if (json_strings_ok(child, e) < 0)
                return -1;
        }
        return 0;
    default:
        return 0;
    }
}

json_t *json_parse_object(const char *data, size_t len, struct err *e)
{
    json_error_t je;
    json_t *v;

    if (len == 0) {
        err_set(e, ERR_INVALID, "invalid_json", "the request body is empty; send a JSON object");
        return NULL;
    }
    if (!json_depth_ok(data, len)) {
        err_set(e, ERR_INVALID, "json_too_deep", "JSON nesting is deeper than %d levels", JSON_MAX_DEPTH);
        return NULL;
    }
    v = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (v == NULL) {
        if (json_error_code(&je) == json_error_invalid_utf8)
            err_set(e, ERR_INVALID, "invalid_utf8", "the request body is not valid UTF-8");
        else if (json_error_code(&je) == json_error_duplicate_key)
            err_set(e, ERR_INVALID, "invalid_json", "the request body repeats a key: %s", je.text);
        else
            err_set(e, ERR_INVALID, "invalid_json", "the request body is not valid JSON (line %d, column %d): %s",
                    je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        err_set(e, ERR_INVALID, "expected_object", "the request body must be a JSON object");
        return NULL;
    }
    if (json_strings_ok(v, e) < 0) {
        json_decref(v);
        return NULL;
    }
    return v;
}

static const char *json_type_name(enum json_type_want t)
{
    switch (t) {
    case JT_STRING: return "a string";
    case JT_INT: return "an integer";
    case JT_BOOL: return "true or false";
    case JT_STRING_ARRAY: return "an array of strings";
    case JT_OBJECT: return "an object";
    case JT_ARRAY: return "an array";
    }
    return "?";
}

static int json_check_one(const json_t *v, const struct json_field *f, struct err *e)
{
    size_t i, max;
    json_t *item;

    if (json_is_null(v)) {
        if (f->flags & JF_NULLABLE)
            return 0;
        return err_set(e, ERR_INVALID, "wrong_type", "field '%s' must be %s, not null", f->name,
                       json_type_name(f->type));
    }
    switch (f->type) {
    case JT_STRING:
        if (!json_is_string(v))
            break;
        max = f->max ? f->max : JSON_MAX_STRING;
        if (json_string_length(v) > max)
            return err_set(e, ERR_INVALID, "field_too_long", "field '%s' is longer than %zu bytes", f->name, max);
        if (memchr(json_string_value(v), '\0', json_string_length(v)))
            return err_set(e, ERR_INVALID, "wrong_type", "field '%s' contains a NUL character", f->name);
        return 0;
    case JT_INT:
        if (json_is_integer(v))
            return 0;
        break;
    case JT_BOOL:
        if (json_is_boolean(v))
            return 0;
        break;
    case JT_OBJECT:
        if (json_is_object(v))
            return 0;
        break;
    case JT_ARRAY:
        if (!json_is_array(v))
            break;
        if (f->max && json_array_size(v) > f->max)
            return err_set(e, ERR_INVALID, "field_too_long", "field '%s' has more than %zu items", f->name, f->max);
        return 0;
    case JT_STRING_ARRAY:
        if (!json_is_array(v))
            break;
        if (f->max && json_array_size(v) > f->max)
            return err_set(e, ERR_INVALID, "field_too_long", "field '%s' has more than %zu items", f->name, f->max);
        json_array_foreach(v, i, item) {
            if (!json_is_string(item) || json_string_length(item) > 256)
                return err_set(e, ERR_INVALID, "wrong_type",
                               "field '%s' must be an array of strings of at most 256 bytes", f->name);
        }
        return 0;
    }
    return err_set(e, ERR_INVALID, "wrong_type", "field '%s' must be %s", f->name, json_type_name(f->type));
}

int json_check_fields(const json_t *obj, const struct json_field *fields, struct err *e)
{
    const struct json_field *f;
    const char *key;
    json_t *v;

    json_object_foreach((json_t *)obj, key, v) {
        for (f = fields; f->name; f++)
            if (strcmp(f->name, key) == 0)
                break;
        if (f->name == NULL) {
            err_set(e, ERR_INVALID, "unknown_field", "unknown field '%.64s'", key);
            return err_field(e, key);
        }
        if (json_check_one(v, f, e) < 0)
            return err_field(e, f->name);
    }
    for (f = fields; f->name; f++)
        if ((f->flags & JF_REQUIRED) && json_object_get(obj, f->name) == NULL) {
            err_set(e, ERR_INVALID, "missing_field", "field '%s' is required", f->name);
            return err_field(e, f->name);
        }
    return 0;
}

const char *json_get_string(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

char *json_dump_compact(const json_t *v, size_t *len)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

    if (s && len)
        *len = strlen(s);
    return s;
}
