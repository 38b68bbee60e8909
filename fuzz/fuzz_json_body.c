/* fuzz_json_body.c — libFuzzer target for request bodies: json_parse_object() then json_check_fields().
 *
 * Every API body takes this path, so it must never crash, leak or loop on hostile input. The field
 * tables repeat the shape of the login and user-create tables in src/http/api_session.c and
 * src/http/api_users.c (they are static there); keep them in step when those change.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/json.h"
#include "store/accounts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct json_field login_fields[] = {
    { "username", JT_STRING, JF_REQUIRED, 256 },
    { "password", JT_STRING, JF_REQUIRED, 1024 },
    { NULL, 0, 0, 0 },
};

static const struct json_field user_create_fields[] = {
    { "username", JT_STRING, JF_REQUIRED, USERNAME_MAX },
    { "full_name", JT_STRING, 0, FULL_NAME_MAX },
    { "role", JT_STRING, JF_REQUIRED, 16 },
    { "password", JT_STRING, JF_REQUIRED, 256 },
    { "disabled", JT_BOOL, 0, 0 },
    { "sites", JT_STRING_ARRAY, 0, USER_SITES_MAX },
    { NULL, 0, 0, 0 },
};

/* Exercises the remaining field types (int, nullable, object) that the two tables above do not. */
static const struct json_field other_fields[] = {
    { "limit", JT_INT, 0, 0 },
    { "note", JT_STRING, JF_NULLABLE, 8 },
    { "extra", JT_OBJECT, JF_NULLABLE, 0 },
    { "username", JT_STRING, 0, 0 },
    { NULL, 0, 0, 0 },
};

/* An error must always come back with a code and a terminated message. */
static void check_err(const struct err *e)
{
    if (e->kind == ERR_NONE || e->code[0] == '\0'
        || memchr(e->code, '\0', sizeof(e->code)) == NULL
        || memchr(e->message, '\0', sizeof(e->message)) == NULL)
        __builtin_trap();
}

/* Nesting depth of v, counting v itself as 1 (a scalar is 0). */
static int depth_of(const json_t *v)
{
    const char *key;
    json_t *child;
    size_t i;
    int d, max = 0;

    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, key, child)
            if ((d = depth_of(child)) > max)
                max = d;
        return max + 1;
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, child)
            if ((d = depth_of(child)) > max)
                max = d;
        return max + 1;
    }
    return 0;
}

/* What was accepted must respect the depth limit and survive a compact dump and re-parse unchanged
 * (the API echoes client strings back, so the writer must accept whatever the reader let in). */
static void check_round_trip(const json_t *obj)
{
    struct err e;
    json_t *again;
    size_t len;
    char *text;

    if (depth_of(obj) > JSON_MAX_DEPTH)
        __builtin_trap();
    text = json_dump_compact(obj, &len);
    if (text == NULL)
        __builtin_trap();
    err_clear(&e);
    again = json_parse_object(text, len, &e);
    if (again == NULL || !json_equal((json_t *)obj, again))
        __builtin_trap();
    json_decref(again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct err e;
    json_t *obj;

    err_clear(&e);
    obj = json_parse_object((const char *)data, size, &e);
    if (obj == NULL) {
        check_err(&e);
        return 0;
    }
    if (!json_is_object(obj))
        __builtin_trap();
    check_round_trip(obj);

    err_clear(&e);
    if (json_check_fields(obj, login_fields, &e) < 0)
        check_err(&e);
    else
        (void)json_get_string(obj, "username");

    err_clear(&e);
    if (json_check_fields(obj, user_create_fields, &e) < 0)
        check_err(&e);

    err_clear(&e);
    if (json_check_fields(obj, other_fields, &e) < 0)
        check_err(&e);

    json_decref(obj);
    return 0;
}
