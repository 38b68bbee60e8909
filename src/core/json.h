/* json.h — strict JSON input on top of Jansson: hard limits, and declarative field checks.
 *
 * Every request body goes through json_parse_object() (size, nesting depth, string length, UTF-8,
 * duplicate keys), then through json_check_fields() with a table naming each accepted field, its type
 * and limit, so an unknown or mistyped field is an error, never silently ignored.
 * Ownership: json_parse_object() returns a new reference the caller json_decref()s.
 */
#ifndef SANAD_JSON_H
#define SANAD_JSON_H

#include <stddef.h>

#include <jansson.h>

#include "core/err.h"

#define JSON_MAX_DEPTH 32
#define JSON_MAX_STRING 65536

enum json_type_want {
    JT_STRING,
    JT_INT,
    JT_BOOL,
    JT_STRING_ARRAY,
    JT_OBJECT,
    JT_ARRAY,           /* an array of anything (max items); the service checks the items */
};

#define JF_REQUIRED 1   /* the field must be present */
#define JF_NULLABLE 2   /* null is accepted (and means "clear" / "absent") */

struct json_field {
    const char *name;
    enum json_type_want type;
    int flags;
    size_t max;     /* strings: max bytes (0 = JSON_MAX_STRING); arrays: max items; ints: unused */
};

/* Parse len bytes as one JSON object. NULL with *e set (invalid_json, invalid_utf8, json_too_deep,
 * string_too_long, expected_object) on failure. */
json_t *json_parse_object(const char *data, size_t len, struct err *e);

/* Check obj against a table ending in { NULL }: 0 when every key is known with the right type and size;
 * -1 with *e set (unknown_field, missing_field, wrong_type, field_too_long) on the first violation. */
int json_check_fields(const json_t *obj, const struct json_field *fields, struct err *e);

/* The string value of obj[key], or NULL when absent, null or not a string. */
const char *json_get_string(const json_t *obj, const char *key);

/* Serialise compactly; the caller free()s the result. NULL on out-of-memory. */
char *json_dump_compact(const json_t *v, size_t *len);

#endif
