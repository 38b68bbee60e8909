/* test_json.c — unit tests of strict JSON input (core/json.c): the limits json_parse_object() enforces
 * and the field-table checks of json_check_fields(). */
#include "testutil.h"

#include "core/buf.h"
#include "core/json.h"

/* Parse a NUL-terminated literal. */
static json_t *parse(const char *s, struct err *e)
{
    err_clear(e);
    return json_parse_object(s, strlen(s), e);
}

/* Expect parsing to fail with this kind and code. */
static void expect_parse_error(const char *s, size_t len, enum err_kind kind, const char *code)
{
    struct err e;
    json_t *v;

    err_clear(&e);
    v = json_parse_object(s, len, &e);
    if (v != NULL) {
        json_decref(v);
        fail_msg("parsing '%.60s' succeeded; expected %s", s, code);
    }
    if (strcmp(e.code, code) != 0)
        fail_msg("parsing '%.60s' failed with %s (%s); expected %s", s, e.code, e.message, code);
    assert_int_equal(e.kind, kind);
    assert_true(e.message[0] != '\0');
}

static void expect_parse_ok(const char *s, size_t len)
{
    struct err e;
    json_t *v;

    err_clear(&e);
    v = json_parse_object(s, len, &e);
    if (v == NULL)
        fail_msg("parsing '%.60s' failed: %s: %s", s, e.code, e.message);
    assert_true(json_is_object(v));
    json_decref(v);
}

/* depth levels of objects: {"a":{"a":...{}...}}; depth counts every { and [. Caller frees. */
static char *nest_objects(int depth)
{
    struct buf b;
    int i;

    buf_init(&b, 1 << 20);
    for (i = 0; i < depth - 1; i++)
        assert_int_equal(buf_puts(&b, "{\"a\":"), 0);
    assert_int_equal(buf_puts(&b, "{}"), 0);
    for (i = 0; i < depth - 1; i++)
        assert_int_equal(buf_puts(&b, "}"), 0);
    return buf_detach(&b, NULL);
}

/* {"a":[[[...]]]} with depth levels in total (the object is one). Caller frees. */
static char *nest_arrays(int depth)
{
    struct buf b;
    int i;

    buf_init(&b, 1 << 20);
    assert_int_equal(buf_puts(&b, "{\"a\":"), 0);
    for (i = 0; i < depth - 1; i++)
        assert_int_equal(buf_puts(&b, "["), 0);
    for (i = 0; i < depth - 1; i++)
        assert_int_equal(buf_puts(&b, "]"), 0);
    assert_int_equal(buf_puts(&b, "}"), 0);
    return buf_detach(&b, NULL);
}

static void test_depth_limit(void **state)
{
    char *s;

    (void)state;
    s = nest_objects(JSON_MAX_DEPTH);
    expect_parse_ok(s, strlen(s));
    free(s);
    s = nest_objects(JSON_MAX_DEPTH + 1);
    expect_parse_error(s, strlen(s), ERR_INVALID, "json_too_deep");
    free(s);
    s = nest_arrays(JSON_MAX_DEPTH);
    expect_parse_ok(s, strlen(s));
    free(s);
    s = nest_arrays(JSON_MAX_DEPTH + 1);
    expect_parse_error(s, strlen(s), ERR_INVALID, "json_too_deep");
    free(s);
    /* far deeper than Jansson's own recursion: refused before it recurses */
    s = nest_arrays(100000);
    expect_parse_error(s, strlen(s), ERR_INVALID, "json_too_deep");
    free(s);
}

static void test_depth_ignores_brackets_in_strings(void **state)
{
    struct buf b;
    char *s;
    int i;

    (void)state;
    buf_init(&b, 4096);
    assert_int_equal(buf_puts(&b, "{\"a\":\""), 0);
    for (i = 0; i < 40; i++)
        assert_int_equal(buf_puts(&b, "[{"), 0);
    /* an escaped quote must not end the string early */
    assert_int_equal(buf_puts(&b, "\\\"[[[[\",\"b\":\"\\\\\",\"c\":[[]]}"), 0);
    s = buf_detach(&b, NULL);
    expect_parse_ok(s, strlen(s));
    free(s);
    /* sibling containers do not add up */
    expect_parse_ok("{\"a\":[],\"b\":[],\"c\":{},\"d\":[[]],\"e\":{\"f\":{}}}",
                    strlen("{\"a\":[],\"b\":[],\"c\":{},\"d\":[[]],\"e\":{\"f\":{}}}"));
}

static void test_invalid_utf8(void **state)
{
    static const char *const bad[] = {
        "{\"a\":\"\xff\"}",                 /* never valid */
        "{\"a\":\"\xc3\"}",                 /* truncated two-byte sequence */
        "{\"a\":\"\xc0\xaf\"}",             /* overlong '/' */
        "{\"a\":\"\xed\xa0\x80\"}",         /* UTF-16 surrogate encoded in UTF-8 */
        "{\"a\":\"\xf4\x90\x80\x80\"}",     /* above U+10FFFF */
        "{\"\xfe\":1}",                     /* in a key */
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_parse_error(bad[i], strlen(bad[i]), ERR_INVALID, "invalid_utf8");
    /* valid multi-byte text is fine: Arabic, Greek, an emoji */
    expect_parse_ok("{\"name\":\"\xd9\x85\xd8\xad\xd9\x85\xd8\xaf \xce\xb1 \xf0\x9f\x98\x80\"}",
                    strlen("{\"name\":\"\xd9\x85\xd8\xad\xd9\x85\xd8\xaf \xce\xb1 \xf0\x9f\x98\x80\"}"));
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    expect_parse_error("{\"a\":1,\"a\":2}", strlen("{\"a\":1,\"a\":2}"), ERR_INVALID, "invalid_json");
    expect_parse_error("{\"a\":{\"b\":1,\"b\":1}}", strlen("{\"a\":{\"b\":1,\"b\":1}}"), ERR_INVALID,
                       "invalid_json");
    /* the same key in different objects is not a duplicate */
    expect_parse_ok("{\"a\":{\"b\":1},\"c\":{\"b\":1}}", strlen("{\"a\":{\"b\":1},\"c\":{\"b\":1}}"));
}

static void test_duplicate_key_message_says_so(void **state)
{
    struct err e;

    (void)state;
    assert_null(parse("{\"password\":\"x\",\"password\":\"y\"}", &e));
    assert_non_null(strstr(e.message, "repeats a key"));
}

static void test_not_an_object(void **state)
{
    (void)state;
    expect_parse_error("[]", 2, ERR_INVALID, "expected_object");
    expect_parse_error("[{\"a\":1}]", strlen("[{\"a\":1}]"), ERR_INVALID, "expected_object");
}

/* Valid JSON texts that are not objects (RFC 8259 allows scalars at the top level) should be reported as
 * "not an object", the same as an array is. */
static void test_scalar_is_not_an_object(void **state)
{
    static const char *const scalars[] = { "42", "\"text\"", "null", "true", "1.5" };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++)
        expect_parse_error(scalars[i], strlen(scalars[i]), ERR_INVALID, "expected_object");
}

static void test_empty_and_malformed(void **state)
{
    static const char *const bad[] = {
        "   ", "{", "}", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "{'a':1}", "{\"a\":1} x", "{\"a\":1}{}",
        "{\"a\":tru}", "{\"a\":01}", "{\"a\":\"\\x\"}", "{a:1}",
    };
    size_t i;

    (void)state;
    expect_parse_error("", 0, ERR_INVALID, "invalid_json");
    expect_parse_error("{}", 0, ERR_INVALID, "invalid_json");   /* len 0 wins over the bytes */
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_parse_error(bad[i], strlen(bad[i]), ERR_INVALID, "invalid_json");
    /* surrounding white space is fine */
    expect_parse_ok(" \n{ \"a\" : 1 }\n ", strlen(" \n{ \"a\" : 1 }\n "));
}

static void test_length_is_respected(void **state)
{
    (void)state;
    /* only len bytes are parsed: the rest of the buffer is not part of the body */
    expect_parse_ok("{\"a\":1}GARBAGE", 7);
    expect_parse_error("{\"a\":1}", 5, ERR_INVALID, "invalid_json");
}

static void test_embedded_nul_in_body(void **state)
{
    static const char body[] = "{\"a\":\"x\\u0000y\"}";

    (void)state;
    /* an escaped NUL inside a string is refused by the parser */
    expect_parse_error(body, strlen(body), ERR_INVALID, "invalid_json");
    /* a raw NUL byte in the body is refused too */
    expect_parse_error("{\"a\":\"x\0y\"}", 11, ERR_INVALID, "invalid_json");
}

/* {"s":"xxxx...x"} with n x's. Caller frees. */
static char *string_body(const char *key, size_t n)
{
    struct buf b;
    char *x = malloc(n + 1);

    assert_non_null(x);
    memset(x, 'x', n);
    x[n] = '\0';
    buf_init(&b, n + 4096);
    assert_int_equal(buf_printf(&b, "{\"%s\":\"%s\"}", key, x), 0);
    free(x);
    return buf_detach(&b, NULL);
}

static void test_long_strings(void **state)
{
    char *s, key[300];
    struct buf b;

    (void)state;
    s = string_body("s", JSON_MAX_STRING);
    expect_parse_ok(s, strlen(s));
    free(s);
    s = string_body("s", JSON_MAX_STRING + 1);
    expect_parse_error(s, strlen(s), ERR_INVALID, "string_too_long");
    free(s);

    /* inside an array inside an object */
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_puts(&b, "{\"o\":{\"l\":[\"a\",\""), 0);
    {
        char *x = malloc(JSON_MAX_STRING + 2);

        memset(x, 'y', JSON_MAX_STRING + 1);
        x[JSON_MAX_STRING + 1] = '\0';
        assert_int_equal(buf_puts(&b, x), 0);
        free(x);
    }
    assert_int_equal(buf_puts(&b, "\"]}}"), 0);
    s = buf_detach(&b, NULL);
    expect_parse_error(s, strlen(s), ERR_INVALID, "string_too_long");
    free(s);

    /* keys: 256 bytes are fine, 257 are not */
    memset(key, 'k', 256);
    key[256] = '\0';
    s = string_body(key, 1);
    expect_parse_ok(s, strlen(s));
    free(s);
    key[256] = 'k';
    key[257] = '\0';
    s = string_body(key, 1);
    {
        struct err e;
        json_t *v;

        err_clear(&e);
        v = json_parse_object(s, strlen(s), &e);
        assert_null(v);
        assert_string_equal(e.code, "string_too_long");
    }
    free(s);
}

/* ---- json_check_fields ---- */

static const struct json_field person_fields[] = {
    { "name", JT_STRING, JF_REQUIRED, 10 },
    { "age", JT_INT, 0, 0 },
    { "active", JT_BOOL, 0, 0 },
    { "tags", JT_STRING_ARRAY, 0, 3 },
    { "extra", JT_OBJECT, 0, 0 },
    { "note", JT_STRING, JF_NULLABLE, 0 },
    { "list", JT_ARRAY, 0, 2 },
    { NULL },
};

/* Parse s and check it against person_fields; return the code ("" when accepted). */
static const char *check(const char *s)
{
    static struct err e;
    json_t *v = parse(s, &e);
    int rc;

    if (v == NULL)
        fail_msg("test body '%s' does not parse: %s", s, e.message);
    err_clear(&e);
    rc = json_check_fields(v, person_fields, &e);
    json_decref(v);
    if (rc == 0) {
        assert_int_equal(e.kind, ERR_NONE);
        return "";
    }
    assert_int_equal(rc, -1);
    assert_int_equal(e.kind, ERR_INVALID);
    return e.code;
}

static void test_fields_accept_valid(void **state)
{
    (void)state;
    assert_string_equal(check("{\"name\":\"amal\"}"), "");
    assert_string_equal(check("{\"name\":\"amal\",\"age\":30,\"active\":true,\"tags\":[\"a\",\"b\"],"
                              "\"extra\":{\"k\":[1,2]},\"note\":\"hi\"}"), "");
    assert_string_equal(check("{\"name\":\"\",\"age\":-1,\"active\":false,\"tags\":[],\"extra\":{}}"), "");
    /* JT_ARRAY takes items of any type; the service checks them */
    assert_string_equal(check("{\"name\":\"a\",\"list\":[1,{\"x\":[]}]}"), "");
    assert_string_equal(check("{\"name\":\"a\",\"list\":[]}"), "");
}

static void test_fields_unknown(void **state)
{
    struct err e;
    json_t *v;

    (void)state;
    assert_string_equal(check("{\"name\":\"a\",\"nmae\":\"b\"}"), "unknown_field");
    assert_string_equal(check("{\"Name\":\"a\"}"), "unknown_field");    /* names are case-sensitive */
    /* the message names the field, so a client can fix it */
    v = parse("{\"name\":\"a\",\"surprise\":1}", &e);
    assert_int_equal(json_check_fields(v, person_fields, &e), -1);
    assert_non_null(strstr(e.message, "surprise"));
    json_decref(v);
}

static void test_fields_missing(void **state)
{
    (void)state;
    assert_string_equal(check("{}"), "missing_field");
    assert_string_equal(check("{\"age\":3}"), "missing_field");
    /* null for a required non-nullable field is a type error, not an absence */
    assert_string_equal(check("{\"name\":null}"), "wrong_type");
}

static void test_fields_wrong_type_every_type(void **state)
{
    (void)state;
    /* JT_STRING */
    assert_string_equal(check("{\"name\":1}"), "wrong_type");
    assert_string_equal(check("{\"name\":true}"), "wrong_type");
    assert_string_equal(check("{\"name\":[\"a\"]}"), "wrong_type");
    assert_string_equal(check("{\"name\":{}}"), "wrong_type");
    /* JT_INT */
    assert_string_equal(check("{\"name\":\"a\",\"age\":\"30\"}"), "wrong_type");
    assert_string_equal(check("{\"name\":\"a\",\"age\":30.5}"), "wrong_type");
    assert_string_equal(check("{\"name\":\"a\",\"age\":30.0}"), "wrong_type");
    assert_string_equal(check("{\"name\":\"a\",\"age\":true}"), "wrong_type");
    assert_string_equal(check("{\"name\":\"a\",\"age\":null}"), "wrong_type");
    /* JT_BOOL */
    assert_string_equal(check("{\"name\":\"a\",\"active\":1}"), "wrong_type");
    assert_string_equal(check("{\"name\":\"a\",\"active\":\"true\"}"), "wrong_type");
    assert_string_equal(check("{\"name\":\"a\",\"active\":null}"), "wrong_type");
    /* JT_STRING_ARRAY */
    assert_string_equal(check("{\"name\":\"a\",\"tags\":\"a\"}"), "wrong_type");
    assert_string_equal(check("{\"name\":\"a\",\"tags\":[1]}"), "wrong_type");
    assert_string_equal(check("{\"name\":\"a\",\"tags\":[\"a\",null]}"), "wrong_type");
    assert_string_equal(check("{\"name\":\"a\",\"tags\":[[\"a\"]]}"), "wrong_type");
    assert_string_equal(check("{\"name\":\"a\",\"tags\":{}}"), "wrong_type");
    assert_string_equal(check("{\"name\":\"a\",\"tags\":null}"), "wrong_type");
    /* JT_OBJECT */
    assert_string_equal(check("{\"name\":\"a\",\"extra\":[]}"), "wrong_type");
    assert_string_equal(check("{\"name\":\"a\",\"extra\":\"{}\"}"), "wrong_type");
    assert_string_equal(check("{\"name\":\"a\",\"extra\":null}"), "wrong_type");
    /* JT_ARRAY */
    assert_string_equal(check("{\"name\":\"a\",\"list\":{}}"), "wrong_type");
    assert_string_equal(check("{\"name\":\"a\",\"list\":\"[]\"}"), "wrong_type");
    assert_string_equal(check("{\"name\":\"a\",\"list\":null}"), "wrong_type");
    /* the nullable string still wants a string when not null */
    assert_string_equal(check("{\"name\":\"a\",\"note\":5}"), "wrong_type");
}

static void test_fields_nullable(void **state)
{
    static const struct json_field nullable[] = {
        { "s", JT_STRING, JF_NULLABLE, 0 },
        { "i", JT_INT, JF_NULLABLE, 0 },
        { "b", JT_BOOL, JF_NULLABLE, 0 },
        { "a", JT_STRING_ARRAY, JF_NULLABLE, 0 },
        { "o", JT_OBJECT, JF_NULLABLE, 0 },
        { "l", JT_ARRAY, JF_NULLABLE, 0 },
        { "r", JT_STRING, JF_REQUIRED | JF_NULLABLE, 0 },
        { NULL },
    };
    struct err e;
    json_t *v;

    (void)state;
    v = parse("{\"s\":null,\"i\":null,\"b\":null,\"a\":null,\"o\":null,\"l\":null,\"r\":null}", &e);
    assert_non_null(v);
    err_clear(&e);
    assert_int_equal(json_check_fields(v, nullable, &e), 0);
    json_decref(v);
    /* a required nullable field may be null but not absent */
    v = parse("{\"s\":null}", &e);
    assert_int_equal(json_check_fields(v, nullable, &e), -1);
    assert_string_equal(e.code, "missing_field");
    json_decref(v);
}

static void test_fields_too_long(void **state)
{
    char *s;
    struct err e;
    json_t *v;
    static const struct json_field unlimited[] = { { "s", JT_STRING, 0, 0 }, { NULL } };

    (void)state;
    assert_string_equal(check("{\"name\":\"0123456789\"}"), "");             /* 10 = max */
    assert_string_equal(check("{\"name\":\"0123456789a\"}"), "field_too_long");
    /* the limit is in bytes, not characters: five two-byte letters are 10 bytes, six are 12 */
    assert_string_equal(check("{\"name\":\"\xce\xb1\xce\xb1\xce\xb1\xce\xb1\xce\xb1\"}"), "");
    assert_string_equal(check("{\"name\":\"\xce\xb1\xce\xb1\xce\xb1\xce\xb1\xce\xb1\xce\xb1\"}"),
                        "field_too_long");
    /* max 0 means JSON_MAX_STRING */
    s = string_body("s", JSON_MAX_STRING);
    v = parse(s, &e);
    assert_non_null(v);
    assert_int_equal(json_check_fields(v, unlimited, &e), 0);
    json_decref(v);
    free(s);
    /* a json_t built in code (not through the parser) is held to the same limit */
    v = json_object();
    s = malloc(JSON_MAX_STRING + 2);
    memset(s, 'x', JSON_MAX_STRING + 1);
    s[JSON_MAX_STRING + 1] = '\0';
    json_object_set_new(v, "s", json_string(s));
    err_clear(&e);
    assert_int_equal(json_check_fields(v, unlimited, &e), -1);
    assert_string_equal(e.code, "field_too_long");
    json_decref(v);
    free(s);
}

static void test_fields_array_limits(void **state)
{
    struct buf b;
    char *s;
    int i;

    (void)state;
    assert_string_equal(check("{\"name\":\"a\",\"tags\":[\"1\",\"2\",\"3\"]}"), "");
    assert_string_equal(check("{\"name\":\"a\",\"tags\":[\"1\",\"2\",\"3\",\"4\"]}"), "field_too_long");
    assert_string_equal(check("{\"name\":\"a\",\"list\":[1,2]}"), "");
    assert_string_equal(check("{\"name\":\"a\",\"list\":[1,2,3]}"), "field_too_long");
    /* items are strings of at most 256 bytes */
    buf_init(&b, 4096);
    assert_int_equal(buf_puts(&b, "{\"name\":\"a\",\"tags\":[\""), 0);
    for (i = 0; i < 256; i++)
        assert_int_equal(buf_puts(&b, "t"), 0);
    assert_int_equal(buf_puts(&b, "\"]}"), 0);
    assert_string_equal(check(b.data), "");
    buf_reset(&b);
    assert_int_equal(buf_puts(&b, "{\"name\":\"a\",\"tags\":[\""), 0);
    for (i = 0; i < 257; i++)
        assert_int_equal(buf_puts(&b, "t"), 0);
    assert_int_equal(buf_puts(&b, "\"]}"), 0);
    assert_string_equal(check(b.data), "wrong_type");
    buf_free(&b);

    /* max 0: no item limit */
    {
        static const struct json_field many[] = { { "a", JT_STRING_ARRAY, 0, 0 }, { NULL } };
        struct err e;
        json_t *v;

        buf_init(&b, 1 << 20);
        assert_int_equal(buf_puts(&b, "{\"a\":["), 0);
        for (i = 0; i < 1000; i++)
            assert_int_equal(buf_printf(&b, "%s\"%d\"", i ? "," : "", i), 0);
        assert_int_equal(buf_puts(&b, "]}"), 0);
        s = buf_detach(&b, NULL);
        v = parse(s, &e);
        assert_non_null(v);
        assert_int_equal(json_check_fields(v, many, &e), 0);
        json_decref(v);
        free(s);
    }
}

static void test_fields_embedded_nul(void **state)
{
    static const struct json_field f[] = { { "s", JT_STRING, 0, 0 }, { NULL } };
    struct err e;
    json_t *v = json_object();

    (void)state;
    /* Jansson can hold a NUL inside a string built in code; the check must not let it through */
    json_object_set_new(v, "s", json_stringn("ab\0cd", 5));
    err_clear(&e);
    assert_int_equal(json_check_fields(v, f, &e), -1);
    assert_string_equal(e.code, "wrong_type");
    assert_int_equal(e.kind, ERR_INVALID);
    json_decref(v);
}

static void test_get_string_and_dump(void **state)
{
    struct err e;
    json_t *v;
    char *out;
    size_t len = 0;

    (void)state;
    v = parse("{\"s\":\"x\",\"i\":1,\"n\":null}", &e);
    assert_non_null(v);
    assert_string_equal(json_get_string(v, "s"), "x");
    assert_null(json_get_string(v, "i"));
    assert_null(json_get_string(v, "n"));
    assert_null(json_get_string(v, "missing"));
    out = json_dump_compact(v, &len);
    assert_non_null(out);
    assert_int_equal(len, strlen(out));
    /* compact: no spaces; and it parses back to an equal object */
    assert_null(strchr(out, ' '));
    {
        json_t *back = parse(out, &e);

        assert_non_null(back);
        assert_true(json_equal(v, back));
        json_decref(back);
    }
    free(out);
    json_decref(v);
    /* any value, not just objects */
    v = json_integer(7);
    out = json_dump_compact(v, NULL);
    assert_string_equal(out, "7");
    free(out);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_depth_ignores_brackets_in_strings),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_duplicate_key_message_says_so),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_scalar_is_not_an_object),
        cmocka_unit_test(test_empty_and_malformed),
        cmocka_unit_test(test_length_is_respected),
        cmocka_unit_test(test_embedded_nul_in_body),
        cmocka_unit_test(test_long_strings),
        cmocka_unit_test(test_fields_accept_valid),
        cmocka_unit_test(test_fields_unknown),
        cmocka_unit_test(test_fields_missing),
        cmocka_unit_test(test_fields_wrong_type_every_type),
        cmocka_unit_test(test_fields_nullable),
        cmocka_unit_test(test_fields_too_long),
        cmocka_unit_test(test_fields_array_limits),
        cmocka_unit_test(test_fields_embedded_nul),
        cmocka_unit_test(test_get_string_and_dump),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
