/* fuzz_expr.c — libFuzzer target for core/expr: the input, as a NUL-terminated string, is compiled and, when
 * it compiles, its names listed and it is evaluated against a fixed set of variables (numbers, strings,
 * dates, arrays, null, an object). Checks the module's promises: a compile error is invalid_expression with
 * a position; expr_names gives distinct valid names; a result is never NULL, never NaN or infinite, only of
 * the documented types, and the same on a second evaluation.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/expr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *variables;

static const json_t *lookup(const char *name, void *ctx)
{
    return json_object_get((const json_t *)ctx, name);
}

struct names_check {
    char seen[EXPR_MAX_NODES][EXPR_MAX_NAME + 1];
    int n;
};

/* Trap unless name is [A-Za-z_][A-Za-z0-9_]* within EXPR_MAX_NAME bytes and not seen before. */
static int check_name(const char *name, void *ctx)
{
    struct names_check *c = ctx;
    size_t i, n = strlen(name);
    int k;

    if (n == 0 || n > EXPR_MAX_NAME || c->n >= EXPR_MAX_NODES || (name[0] >= '0' && name[0] <= '9'))
        __builtin_trap();
    for (i = 0; i < n; i++) {
        char ch = name[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_'))
            __builtin_trap();
    }
    for (k = 0; k < c->n; k++)
        if (strcmp(c->seen[k], name) == 0)
            __builtin_trap();
    memcpy(c->seen[c->n++], name, n + 1);
    return 0;
}

static void check_result(const json_t *v)
{
    char *dump;

    if (v == NULL)
        __builtin_trap();
    switch (json_typeof(v)) {
    case JSON_REAL:
        if (!(json_real_value(v) - json_real_value(v) == 0.0))     /* NaN or infinite */
            __builtin_trap();
        break;
    case JSON_OBJECT:
        __builtin_trap();
    default:
        break;
    }
    dump = json_dumps(v, JSON_ENCODE_ANY);
    if (dump == NULL)
        __builtin_trap();
    free(dump);
    (void)expr_truthy(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct names_check names;
    struct expr *x;
    struct err e;
    json_t *a, *b;
    char *src;

    if (size > 2 * EXPR_MAX_SOURCE)
        return 0;
    if (variables == NULL) {
        variables = json_loads(
            "{\"age_years\": 4, \"age_months\": 50, \"age_days\": 1520, \"sex\": \"female\","
            " \"encounter_type\": \"triage\", \"today\": \"2024-03-01\", \"dob\": \"2020-02-29\","
            " \"visit\": \"2024-03-01T10:15Z\", \"temp_c\": 38.5, \"weight_kg\": 70, \"height_cm\": 175,"
            " \"danger_signs\": [\"convulsions\", \"lethargy\"], \"symptoms\": [], \"scores\": [1, 2.5, null],"
            " \"mixed\": [1, \"a\", [2], {}], \"note\": \"\", \"name\": \"O'Brien\", \"arabic\": \"\\u0645\","
            " \"flag\": true, \"off\": false, \"nothing\": null, \"obj\": {\"a\": 1},"
            " \"big\": 9223372036854775807, \"small\": -9223372036854775808, \"huge\": 1e308,"
            " \"tiny\": 5e-324, \"zero\": 0, \"qty\": \"12\", \"a\": 1, \"b\": 2.5, \"c\": \"c\", \"d\": -1}",
            0, NULL);
        if (variables == NULL)
            abort();
    }
    src = malloc(size + 1);
    if (src == NULL)
        abort();
    memcpy(src, data, size);
    src[size] = '\0';

    err_clear(&e);
    x = expr_compile(src, &e);
    if (x == NULL) {
        if (e.kind != ERR_INVALID || strcmp(e.code, "invalid_expression") != 0 ||
            strstr(e.message, "at position ") == NULL)
            __builtin_trap();
        free(src);
        return 0;
    }
    names.n = 0;
    if (expr_names(x, check_name, &names) != 0)
        __builtin_trap();
    a = expr_eval(x, lookup, variables, &e);
    b = expr_eval(x, NULL, NULL, &e);
    check_result(a);
    check_result(b);
    json_decref(b);
    b = expr_eval(x, lookup, variables, &e);
    if (!json_equal(a, b) && !(json_is_null(a) && json_is_null(b)))
        __builtin_trap();
    json_decref(a);
    json_decref(b);
    expr_free(x);
    free(src);
    return 0;
}
