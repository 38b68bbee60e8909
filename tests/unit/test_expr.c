/* test_expr.c — unit tests of the form-rule expression language (core/expr.c): a table of expressions with
 * their variables and expected results, a table of invalid expressions with the position of the error,
 * expr_names, truthiness, the hard limits, and evaluation from several threads at once. */
#include "testutil.h"

#include <pthread.h>

#include "core/buf.h"
#include "core/expr.h"

/* The variables of every row that does not bring its own. */
static const char default_vars[] =
    "{\"age_years\": 4, \"age_months\": 50, \"sex\": \"female\", \"temp_c\": 38.5,"
    " \"weight_kg\": 70, \"height_cm\": 175, \"danger_signs\": [\"convulsions\", \"lethargy\"],"
    " \"symptoms\": [], \"phq_score\": 17, \"today\": \"2024-03-01\", \"dob\": \"2020-02-29\","
    " \"visit\": \"2024-03-01T10:15Z\", \"note\": \"\", \"name\": \"O'Brien\", \"arabic\": \"محمد\","
    " \"scores\": [1, 2, 3.5], \"ints\": [1, 2, 3], \"mixed\": [1, \"a\"], \"nested\": [[1]],"
    " \"flag\": true, \"off\": false, \"nothing\": null, \"group\": [{\"x\": 1}, {\"x\": 2}],"
    " \"obj\": {\"a\": 1}, \"big\": 9007199254740993, \"qty\": \"12\", \"zero\": 0}";

static const json_t *lookup_object(const char *name, void *ctx)
{
    return json_object_get((const json_t *)ctx, name);
}

static json_t *load(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &je);

    if (v == NULL)
        fail_msg("bad JSON in the test table: %s: %s", text, je.text);
    return v;
}

/* Compile src, which must succeed. */
static struct expr *compile_ok(const char *src)
{
    struct expr *x;
    struct err e;

    err_clear(&e);
    x = expr_compile(src, &e);
    if (x == NULL)
        fail_msg("compiling '%.80s' failed: %s: %s", src, e.code, e.message);
    return x;
}

/* Compile src, which must fail as invalid_expression at 1-based byte position pos (0: any position). */
static void compile_fails_at(const char *src, int pos)
{
    struct expr *x;
    struct err e;
    const char *at;
    int got = -1;

    err_clear(&e);
    x = expr_compile(src, &e);
    if (x != NULL) {
        expr_free(x);
        fail_msg("compiling '%.80s' succeeded; expected an error at position %d", src, pos);
    }
    assert_int_equal(e.kind, ERR_INVALID);
    assert_string_equal(e.code, "invalid_expression");
    at = strstr(e.message, "at position ");
    if (at == NULL || sscanf(at, "at position %d:", &got) != 1)
        fail_msg("compiling '%.80s': message without a position: %s", src, e.message);
    if (pos != 0 && got != pos)
        fail_msg("compiling '%.80s' failed at position %d (%s); expected %d", src, got, e.message, pos);
}

struct eval_case {
    const char *expr;
    const char *vars;       /* a JSON object, or NULL for default_vars */
    const char *expected;   /* JSON; integers and reals are told apart (5 is not 5.0) */
};

static const struct eval_case eval_cases[] = {
    /* literals */
    { "12", NULL, "12" },
    { "37.5", NULL, "37.5" },
    { "0.1", NULL, "0.1" },
    { "007", NULL, "7" },
    { "1.50", NULL, "1.5" },
    { "2.0", NULL, "2.0" },
    { "9007199254740992", NULL, "9007199254740992" },
    { "0.000000000000001", NULL, "1e-15" },
    { "'female'", NULL, "\"female\"" },
    { "'O''Brien'", NULL, "\"O'Brien\"" },
    { "''", NULL, "\"\"" },
    { "''''", NULL, "\"'\"" },
    { "'a\"b'", NULL, "\"a\\\"b\"" },
    { "'محمد'", NULL, "\"محمد\"" },
    { "'😀 αβ'", NULL, "\"😀 αβ\"" },
    { "true", NULL, "true" },
    { "false", NULL, "false" },
    { "null", NULL, "null" },
    { " \t\n12\r\n ", NULL, "12" },
    /* names */
    { "age_years", NULL, "4" },
    { "temp_c", NULL, "38.5" },
    { "sex", NULL, "\"female\"" },
    { "danger_signs", NULL, "[\"convulsions\", \"lethargy\"]" },
    { "missing_field", NULL, "null" },
    { "nothing", NULL, "null" },
    { "obj", NULL, "null" },
    { "_x1", "{\"_x1\": 3}", "3" },
    { "name = 'O''Brien'", NULL, "true" },
    { "arabic = 'محمد'", NULL, "true" },
    { "count", "{\"count\": 9}", "9" },
    /* arithmetic */
    { "2 + 3", NULL, "5" },
    { "2 - 5", NULL, "-3" },
    { "4 * 2.5", NULL, "10.0" },
    { "7 / 2", NULL, "3.5" },
    { "6 / 3", NULL, "2" },
    { "6.0 / 3", NULL, "2.0" },
    { "7 % 3", NULL, "1" },
    { "-7 % 3", NULL, "-1" },
    { "7.5 % 2", NULL, "1.5" },
    { "7.5 % -2", NULL, "1.5" },
    { "-7.5 % 2", NULL, "-1.5" },
    { "7 % -3", NULL, "1" },
    { "-0.0", NULL, "0.0" },
    { "0.0 * -1", NULL, "0.0" },
    { "1 / 0", NULL, "null" },
    { "1 % 0", NULL, "null" },
    { "1.5 / 0.0", NULL, "null" },
    { "0 / 0", NULL, "null" },
    { "zero % zero", NULL, "null" },
    { "1 + null", NULL, "null" },
    { "nothing * 2", NULL, "null" },
    { "missing - 1", NULL, "null" },
    { "'a' + 1", NULL, "null" },
    { "'a' + 'b'", NULL, "null" },
    { "true + 1", NULL, "null" },
    { "danger_signs + 1", NULL, "null" },
    { "-age_years", NULL, "-4" },
    { "--3", NULL, "3" },
    { "- - 3", NULL, "3" },
    { "-temp_c", NULL, "-38.5" },
    { "-'a'", NULL, "null" },
    { "-null", NULL, "null" },
    { "0.1 + 0.2", NULL, "0.30000000000000004" },
    { "9007199254740992 + 1", NULL, "9007199254740992.0" },
    { "big + 0", NULL, "9007199254740992.0" },
    { "-big", NULL, "-9007199254740992.0" },
    { "3000000000 * 3000000000", NULL, "9.0e18" },
    { "n * n * n * n * n * n * n * n * n * n", "{\"n\": 1e300}", "null" },
    { "a - b", "{\"a\": -9223372036854775807, \"b\": 10}", "-9.2233720368547758e18" },
    { "a / -1", "{\"a\": -9223372036854775808}", "9.2233720368547758e18" },
    { "a % -1", "{\"a\": -9223372036854775808}", "0" },
    /* precedence and associativity */
    { "2 + 3 * 4", NULL, "14" },
    { "(2 + 3) * 4", NULL, "20" },
    { "10 - 4 - 3", NULL, "3" },
    { "100 / 10 / 5", NULL, "2" },
    { "2 * -3", NULL, "-6" },
    { "-2 * -3", NULL, "6" },
    { "-(2 + 3)", NULL, "-5" },
    { "2 + 3 > 4", NULL, "true" },
    { "weight_kg / ((height_cm / 100) * (height_cm / 100))", NULL, "22.857142857142858" },
    { "1 + 1 = 2 and 2 * 2 = 4 or false", NULL, "true" },
    { "true or false and false", NULL, "true" },
    { "(true or false) and false", NULL, "false" },
    { "not 1 = 2", NULL, "true" },
    { "not true or true", NULL, "true" },
    { "not (true or true)", NULL, "false" },
    /* comparisons */
    { "age_years < 5", NULL, "true" },
    { "age_years <= 4", NULL, "true" },
    { "age_years > 4", NULL, "false" },
    { "age_years >= 4", NULL, "true" },
    { "age_years = 4", NULL, "true" },
    { "age_years != 4", NULL, "false" },
    { "4 = 4.0", NULL, "true" },
    { "temp_c > 38", NULL, "true" },
    { "'abc' < 'abd'", NULL, "true" },
    { "'b' > 'abc'", NULL, "true" },
    { "'ab' < 'abc'", NULL, "true" },
    { "'B' < 'a'", NULL, "true" },
    { "today >= '2024-01-01'", NULL, "true" },
    { "dob < today", NULL, "true" },
    { "sex = 'female'", NULL, "true" },
    { "sex != 'male'", NULL, "true" },
    { "flag = true", NULL, "true" },
    { "flag = off", NULL, "false" },
    { "flag != off", NULL, "true" },
    { "flag > off", NULL, "false" },
    { "nothing = null", NULL, "true" },
    { "nothing != null", NULL, "false" },
    { "missing = null", NULL, "true" },
    { "age_years = null", NULL, "false" },
    { "age_years != null", NULL, "true" },
    { "null = null", NULL, "true" },
    { "nothing < 5", NULL, "false" },
    { "nothing >= 5", NULL, "false" },
    { "nothing = 5", NULL, "false" },
    { "nothing != 5", NULL, "true" },
    { "'4' = 4", NULL, "false" },
    { "'4' != 4", NULL, "true" },
    { "'4' < 5", NULL, "false" },
    { "true = 1", NULL, "false" },
    { "danger_signs = danger_signs", NULL, "true" },
    { "danger_signs = symptoms", NULL, "false" },
    { "danger_signs != symptoms", NULL, "true" },
    { "danger_signs < symptoms", NULL, "false" },
    /* and, or, not: truthiness, short-circuit, boolean results */
    { "true and false", NULL, "false" },
    { "true or false", NULL, "true" },
    { "not true", NULL, "false" },
    { "not nothing", NULL, "true" },
    { "age_years < 5 and sex = 'female'", NULL, "true" },
    { "age_months >= 6 and age_months < 60", NULL, "true" },
    { "1 and 'x'", NULL, "true" },
    { "0 or ''", NULL, "false" },
    { "0.0 or nothing", NULL, "false" },
    { "nothing or 2", NULL, "true" },
    { "not 0", NULL, "true" },
    { "not ''", NULL, "true" },
    { "not symptoms", NULL, "true" },
    { "not danger_signs", NULL, "false" },
    { "not not flag", NULL, "true" },
    { "false and 1 / 0", NULL, "false" },
    { "obj or false", NULL, "false" },
    /* if */
    { "if(age_years < 5, 'child', 'adult')", NULL, "\"child\"" },
    { "if(nothing, 1, 2)", NULL, "2" },
    { "if(phq_score >= 20, 'severe', if(phq_score >= 15, 'moderately_severe', 'moderate'))", NULL,
      "\"moderately_severe\"" },
    { "if(true, danger_signs, null)", NULL, "[\"convulsions\", \"lethargy\"]" },
    { "if(false, 1 / 0, 2.5)", NULL, "2.5" },
    /* selected */
    { "selected(danger_signs, 'convulsions')", NULL, "true" },
    { "selected(danger_signs, 'fever')", NULL, "false" },
    { "selected(sex, 'female')", NULL, "true" },
    { "selected(sex, 'fem')", NULL, "false" },
    { "selected(nothing, 'x')", NULL, "false" },
    { "selected(symptoms, 'x')", NULL, "false" },
    { "selected(danger_signs, nothing)", NULL, "false" },
    /* count */
    { "count(danger_signs)", NULL, "2" },
    { "count(symptoms)", NULL, "0" },
    { "count(nothing)", NULL, "0" },
    { "count(sex)", NULL, "1" },
    { "count(group)", NULL, "2" },
    /* sum, min, max */
    { "sum(1, 2, 3)", NULL, "6" },
    { "sum(1, null, 2.5)", NULL, "3.5" },
    { "sum(nothing)", NULL, "0" },
    { "sum(scores)", NULL, "6.5" },
    { "sum(ints, 4)", NULL, "10" },
    { "sum(mixed)", NULL, "null" },
    { "sum(nested)", NULL, "null" },
    { "sum('a')", NULL, "null" },
    { "sum(a, b)", "{\"a\": [1, null, 2], \"b\": null}", "3" },
    { "min(3, 1, 2)", NULL, "1" },
    { "max(3, 1.5, 2)", NULL, "3" },
    { "min(nothing, 4, null)", NULL, "4" },
    { "max(nothing, null)", NULL, "null" },
    { "min(scores)", NULL, "1" },
    { "max(scores, 0)", NULL, "3.5" },
    { "min('2024-02-01', today)", NULL, "\"2024-02-01\"" },
    { "max(1, 'a')", NULL, "null" },
    { "max(flag)", NULL, "null" },
    /* round */
    { "round(2.675, 2)", NULL, "2.68" },
    { "round(-2.675, 2)", NULL, "-2.68" },
    { "round(-2.5, 0)", NULL, "-3" },
    { "round(2.5, 0)", NULL, "3" },
    { "round(2.4, 0)", NULL, "2" },
    { "round(-0.4, 0)", NULL, "0" },
    { "round(1.23456789, 6)", NULL, "1.234568" },
    { "round(0.05, 1)", NULL, "0.1" },
    { "round(0.004, 2)", NULL, "0.0" },
    { "round(9.995, 2)", NULL, "10.0" },
    { "round(7, 2)", NULL, "7" },
    { "round(2.5, 7)", NULL, "null" },
    { "round(2.5, -1)", NULL, "null" },
    { "round(2.5, 1.5)", NULL, "null" },
    { "round(nothing, 1)", NULL, "null" },
    { "round('2.5', 0)", NULL, "null" },
    { "round(weight_kg / ((height_cm / 100) * (height_cm / 100)), 1)", NULL, "22.9" },
    /* coalesce, empty, number */
    { "coalesce(nothing, missing, 3)", NULL, "3" },
    { "coalesce(nothing)", NULL, "null" },
    { "coalesce(note, 'x')", NULL, "\"\"" },
    { "empty(nothing)", NULL, "true" },
    { "empty(note)", NULL, "true" },
    { "empty(symptoms)", NULL, "true" },
    { "empty(0)", NULL, "false" },
    { "empty(danger_signs)", NULL, "false" },
    { "number('12')", NULL, "12" },
    { "number(' -3.25 ')", NULL, "-3.25" },
    { "number('+7')", NULL, "7" },
    { "number('abc')", NULL, "null" },
    { "number('0x1F')", NULL, "null" },
    { "number('1e3')", NULL, "null" },
    { "number('inf')", NULL, "null" },
    { "number('nan')", NULL, "null" },
    { "number('')", NULL, "null" },
    { "number('-')", NULL, "null" },
    { "number('1.')", NULL, "null" },
    { "number('99999999999999999999')", NULL, "null" },
    { "number(qty) + 1", NULL, "13" },
    { "number(5.5)", NULL, "5.5" },
    { "number(true)", NULL, "null" },
    /* days_between */
    { "days_between('2024-02-28', '2024-03-01')", NULL, "2" },
    { "days_between('2023-02-28', '2023-03-01')", NULL, "1" },
    { "days_between(dob, today)", NULL, "1462" },
    { "days_between(today, '2024-02-01')", NULL, "-29" },
    { "days_between('2024-03-01', visit)", NULL, "0" },
    { "days_between('1970-01-01', '1800-01-01')", NULL, "-62091" },
    { "days_between('1800-01-01T00:00Z', '1800-01-01T23:59:59Z')", NULL, "0" },
    { "days_between('2024-02-29T23:59:59Z', '2024-03-01')", NULL, "1" },
    { "days_between('1799-12-31', today)", NULL, "null" },
    { "days_between('2024-03-01T25:00Z', today)", NULL, "null" },
    { "days_between('2024-03-01T10:15', today)", NULL, "null" },
    { "days_between('2023-02-29', today)", NULL, "null" },
    { "days_between('2024-13-01', today)", NULL, "null" },
    { "days_between('2024-3-1', today)", NULL, "null" },
    { "days_between(nothing, today)", NULL, "null" },
    { "days_between('2024-03-01x', today)", NULL, "null" },
    { "days_between(20240301, today)", NULL, "null" },
    /* a group row's fields, as the form checker binds them */
    { "count(drugs) > 0 and selected(drugs, 'amoxicillin')", "{\"drugs\": [\"amoxicillin\"]}", "true" },
};

static void test_eval_table(void **state)
{
    json_t *defaults = load(default_vars);
    size_t i;

    (void)state;
    assert_true(sizeof(eval_cases) / sizeof(eval_cases[0]) >= 80);
    for (i = 0; i < sizeof(eval_cases) / sizeof(eval_cases[0]); i++) {
        const struct eval_case *c = &eval_cases[i];
        json_t *vars = c->vars ? load(c->vars) : json_incref(defaults);
        json_t *want = load(c->expected), *got;
        struct expr *x = compile_ok(c->expr);
        struct err e;

        err_clear(&e);
        got = expr_eval(x, lookup_object, vars, &e);
        if (got == NULL)
            fail_msg("'%s': evaluation failed: %s", c->expr, e.message);
        if (!json_equal(got, want) || json_typeof(got) != json_typeof(want)) {
            char *g = json_dumps(got, JSON_ENCODE_ANY), *w = json_dumps(want, JSON_ENCODE_ANY);

            fail_msg("'%s' gave %s; expected %s", c->expr, g, w);
        }
        json_decref(got);
        json_decref(want);
        json_decref(vars);
        expr_free(x);
    }
    json_decref(defaults);
}

struct error_case {
    const char *expr;
    int position;           /* 1-based byte offset named in the message */
};

static const struct error_case error_cases[] = {
    { "", 1 },
    { "   ", 4 },
    { "1 +", 4 },
    { "(1 + 2", 7 },
    { "1 + 2)", 6 },
    { "()", 2 },
    { "-", 2 },
    { "foo(1)", 1 },
    { "IF(a, b, c)", 1 },
    { "And(1)", 1 },
    { "round(1)", 1 },
    { "if(1, 2)", 1 },
    { "count()", 1 },
    { "sum()", 1 },
    { "empty(1, 2)", 1 },
    { "days_between('2024-01-01')", 1 },
    { "'abc", 1 },
    { "x = 'it''s", 5 },
    { "1 == 1", 3 },
    { "1 <> 2", 3 },
    { "!x", 1 },
    { "x ! = y", 3 },
    { "a && b", 3 },
    { "a || b", 3 },
    { "\"text\"", 1 },
    { "0x1F", 1 },
    { "1e3", 1 },
    { "1.", 3 },
    { "1.x", 3 },
    { ".5", 1 },
    { "1.2.3", 1 },
    { "99999999999999999999", 1 },
    { "9007199254740993", 1 },
    { "0.1234567890123456", 1 },
    { "1234567890.123456", 1 },
    { "a b", 3 },
    { "1 2", 3 },
    { "x,y", 2 },
    { "1 < 2 < 3", 7 },
    { "a = b != c", 7 },
    { "and", 1 },
    { "a and", 6 },
    { "a or or b", 6 },
    { "not", 4 },
    { "sum(1,,2)", 7 },
    { "sum(1 2)", 7 },
    { "if(a, b, c", 11 },
    { "1 + (2 * (3 - ))", 15 },
    { "sum(1)(2)", 7 },
    { "true(1)", 5 },
    { "@", 1 },
    { "a # b", 3 },
    { "a + [1]", 5 },
    { "x = '\xff'", 5 },
    { "x = '\xc0\xaf'", 5 },
    { "x = '\xed\xa0\x80'", 5 },
    { "\xc3\xa9t\xc3\xa9", 1 },
    { "a\t= \x01", 5 },
};

static void test_compile_errors(void **state)
{
    size_t i;

    (void)state;
    assert_true(sizeof(error_cases) / sizeof(error_cases[0]) >= 30);
    for (i = 0; i < sizeof(error_cases) / sizeof(error_cases[0]); i++)
        compile_fails_at(error_cases[i].expr, error_cases[i].position);
}

/* The message says what was expected, in words a form author can act on. */
static void test_compile_error_messages(void **state)
{
    static const struct {
        const char *expr;
        const char *says;
    } cases[] = {
        { "(1 + 2", "expected ')' to close the '(' at position 1, found the end of the expression" },
        { "1 +", "expected a value" },
        { "a b", "expected an operator or the end of the expression, found 'b'" },
        { "foo(1)", "unknown function 'foo'" },
        { "round(1)", "'round' takes 2 arguments, not 1" },
        { "sum()", "'sum' takes 1 to 16 arguments, not 0" },
        { "1 == 1", "use '=' to compare" },
        { "1 < 2 < 3", "comparisons do not chain" },
        { "'abc", "unterminated string" },
        { "sum(1 2)", "expected ',' or ')'" },
    };
    struct err e;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err_clear(&e);
        assert_null(expr_compile(cases[i].expr, &e));
        if (strstr(e.message, cases[i].says) == NULL)
            fail_msg("'%s' gave \"%s\"; expected it to say \"%s\"", cases[i].expr, e.message, cases[i].says);
    }
    /* NULL source is an error, not a crash */
    err_clear(&e);
    assert_null(expr_compile(NULL, &e));
    assert_string_equal(e.code, "invalid_expression");
}

struct names_seen {
    char names[16][EXPR_MAX_NAME + 1];
    int n;
    int stop_after;         /* return 7 from the callback once this many names were seen (0: never) */
};

static int collect_name(const char *name, void *ctx)
{
    struct names_seen *s = ctx;

    assert_true(s->n < 16);
    snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
    s->n++;
    return s->stop_after != 0 && s->n == s->stop_after ? 7 : 0;
}

static void test_names(void **state)
{
    static const char *const want[] = { "a", "b", "c", "d", "if", "sum_x" };
    struct names_seen seen;
    struct expr *x;
    int i;

    (void)state;
    x = compile_ok("if(a > b, c, a) + sum(d, b) + count(if) * sum_x + round(a, 1) + if(true, null, false)");
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(expr_names(x, collect_name, &seen), 0);
    assert_int_equal(seen.n, 6);
    for (i = 0; i < 6; i++)
        assert_string_equal(seen.names[i], want[i]);
    /* stopping early returns the callback's value */
    memset(&seen, 0, sizeof(seen));
    seen.stop_after = 2;
    assert_int_equal(expr_names(x, collect_name, &seen), 7);
    assert_int_equal(seen.n, 2);
    expr_free(x);

    /* keywords and literals are not names */
    x = compile_ok("true and not false or null = 'x' and 1 < 2");
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(expr_names(x, collect_name, &seen), 0);
    assert_int_equal(seen.n, 0);
    expr_free(x);

    /* case matters: TRUE and And are names */
    x = compile_ok("TRUE or And");
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(expr_names(x, collect_name, &seen), 0);
    assert_int_equal(seen.n, 2);
    assert_string_equal(seen.names[0], "TRUE");
    assert_string_equal(seen.names[1], "And");
    expr_free(x);
}

static void test_truthy(void **state)
{
    static const struct {
        const char *json;
        int truthy;
    } cases[] = {
        { "true", 1 }, { "false", 0 }, { "null", 0 }, { "0", 0 }, { "1", 1 }, { "-3", 1 }, { "0.0", 0 },
        { "-0.0", 0 }, { "0.5", 1 }, { "\"\"", 0 }, { "\"0\"", 1 }, { "\"false\"", 1 }, { "[]", 0 },
        { "[0]", 1 }, { "[null]", 1 }, { "{}", 0 }, { "{\"a\": 1}", 0 },
    };
    size_t i;

    (void)state;
    assert_int_equal(expr_truthy(NULL), 0);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = load(cases[i].json);

        if (expr_truthy(v) != cases[i].truthy)
            fail_msg("expr_truthy(%s) is %d", cases[i].json, expr_truthy(v));
        json_decref(v);
    }
}

static void test_eval_without_lookup(void **state)
{
    struct expr *x = compile_ok("a = null and count(b) = 0 and sum(c, 2) = 2");
    struct err e;
    json_t *v;

    (void)state;
    err_clear(&e);
    v = expr_eval(x, NULL, NULL, &e);
    assert_non_null(v);
    assert_true(json_is_true(v));
    json_decref(v);
    expr_free(x);
}

/* A name bound to an array comes back as that array, one more reference to it. */
static void test_eval_returns_the_array(void **state)
{
    json_t *vars = load("{\"a\": [\"x\"]}"), *array = json_object_get(vars, "a"), *v;
    struct expr *x = compile_ok("coalesce(null, a)");
    struct err e;

    (void)state;
    err_clear(&e);
    v = expr_eval(x, lookup_object, vars, &e);
    assert_ptr_equal(v, array);
    json_decref(v);
    json_decref(vars);
    expr_free(x);
}

/* A string of n copies of unit, wrapped in before and after. Caller frees. */
static char *repeat(const char *before, const char *unit, int n, const char *after)
{
    struct buf b;
    int i;

    buf_init(&b, 1 << 20);
    assert_int_equal(buf_puts(&b, before), 0);
    for (i = 0; i < n; i++)
        assert_int_equal(buf_puts(&b, unit), 0);
    assert_int_equal(buf_puts(&b, after), 0);
    return buf_detach(&b, NULL);
}

/* A balanced sum of leaves ones: 2 * leaves - 1 nodes. */
static void balanced_sum(struct buf *b, int leaves)
{
    if (leaves == 1) {
        assert_int_equal(buf_puts(b, "1"), 0);
        return;
    }
    assert_int_equal(buf_puts(b, "("), 0);
    balanced_sum(b, leaves / 2);
    assert_int_equal(buf_puts(b, "+"), 0);
    balanced_sum(b, leaves - leaves / 2);
    assert_int_equal(buf_puts(b, ")"), 0);
}

static void eval_expect(const char *src, const char *expected)
{
    struct expr *x = compile_ok(src);
    json_t *want = load(expected), *got;
    struct err e;

    err_clear(&e);
    got = expr_eval(x, NULL, NULL, &e);
    assert_non_null(got);
    if (!json_equal(got, want) || json_typeof(got) != json_typeof(want))
        fail_msg("'%.60s...' gave the wrong value", src);
    json_decref(got);
    json_decref(want);
    expr_free(x);
}

static void test_limit_length(void **state)
{
    char *s;

    (void)state;
    s = repeat("1", " ", EXPR_MAX_SOURCE - 1, "");
    assert_int_equal(strlen(s), EXPR_MAX_SOURCE);
    eval_expect(s, "1");
    free(s);
    s = repeat("1", " ", EXPR_MAX_SOURCE, "");
    compile_fails_at(s, EXPR_MAX_SOURCE + 1);
    free(s);
    /* far too long: refused before anything is parsed */
    s = repeat("", "(", 1000000, "");
    compile_fails_at(s, EXPR_MAX_SOURCE + 1);
    free(s);
}

/* open n times, then middle, then close n times. Caller frees. */
static char *nest(const char *open, int n, const char *middle, const char *close)
{
    struct buf b;
    int i;

    buf_init(&b, 1 << 20);
    for (i = 0; i < n; i++)
        assert_int_equal(buf_puts(&b, open), 0);
    assert_int_equal(buf_puts(&b, middle), 0);
    for (i = 0; i < n; i++)
        assert_int_equal(buf_puts(&b, close), 0);
    return buf_detach(&b, NULL);
}

static void test_limit_depth(void **state)
{
    char *s;

    (void)state;
    /* parentheses: 64 levels, not 65 (the error is at the 65th '(') */
    s = nest("(", EXPR_MAX_DEPTH, "7", ")");
    eval_expect(s, "7");
    free(s);
    s = nest("(", EXPR_MAX_DEPTH + 1, "7", ")");
    compile_fails_at(s, EXPR_MAX_DEPTH + 1);
    free(s);
    s = nest("(", EXPR_MAX_SOURCE / 2 - 1, "7", ")");
    compile_fails_at(s, EXPR_MAX_DEPTH + 1);
    free(s);
    /* calls */
    s = nest("count(", EXPR_MAX_DEPTH - 1, "7", ")");
    eval_expect(s, "1");
    free(s);
    s = nest("count(", EXPR_MAX_DEPTH, "7", ")");
    compile_fails_at(s, 0);
    free(s);
    /* unary operators: the tree's height counts the operand too */
    s = nest("not ", EXPR_MAX_DEPTH - 1, "x", "");
    eval_expect(s, "true");        /* 63 nots of null */
    free(s);
    s = nest("not ", EXPR_MAX_DEPTH, "x", "");
    compile_fails_at(s, 0);
    free(s);
    s = nest("-", EXPR_MAX_DEPTH - 1, "1", "");
    eval_expect(s, "-1");
    free(s);
    s = nest("-", EXPR_MAX_DEPTH, "1", "");
    compile_fails_at(s, 0);
    free(s);
    /* a chain of binary operators is a tree as tall as the chain: 63 '+' make 64 levels */
    s = repeat("1", "+1", EXPR_MAX_DEPTH - 1, "");
    eval_expect(s, "64");
    free(s);
    s = repeat("1", "+1", EXPR_MAX_DEPTH, "");
    compile_fails_at(s, 2 * EXPR_MAX_DEPTH);
    free(s);
    s = repeat("a", " or a", 600, "");
    compile_fails_at(s, 0);
    free(s);
}

static void test_limit_nodes(void **state)
{
    struct buf b;
    char *s;

    (void)state;
    /* -(256 leaves) is 512 nodes */
    buf_init(&b, 1 << 20);
    assert_int_equal(buf_puts(&b, "-"), 0);
    balanced_sum(&b, 256);
    s = buf_detach(&b, NULL);
    eval_expect(s, "-256");
    free(s);
    /* 257 leaves are 513 */
    buf_init(&b, 1 << 20);
    balanced_sum(&b, 257);
    s = buf_detach(&b, NULL);
    assert_true(strlen(s) <= EXPR_MAX_SOURCE);
    compile_fails_at(s, 0);
    free(s);
}

static void test_limit_string_name_args(void **state)
{
    char *s;

    (void)state;
    /* string literals: 1024 bytes, counted after '' is unescaped */
    s = repeat("'", "x", EXPR_MAX_STRING, "' = ''");
    eval_expect(s, "false");
    free(s);
    s = repeat("'", "''", EXPR_MAX_STRING, "' != ''");
    eval_expect(s, "true");
    free(s);
    s = repeat("1 + '", "x", EXPR_MAX_STRING + 1, "'");
    compile_fails_at(s, 5);
    free(s);
    s = repeat("'", "''", EXPR_MAX_STRING + 1, "'");
    compile_fails_at(s, 1);
    free(s);
    /* names: 64 bytes */
    s = repeat("", "n", EXPR_MAX_NAME, " = null");
    eval_expect(s, "true");
    free(s);
    s = repeat("", "n", EXPR_MAX_NAME + 1, "");
    compile_fails_at(s, 1);
    free(s);
    /* arguments: 16, the error at the 17th */
    s = repeat("sum(1", ", 1", EXPR_MAX_ARGS - 1, ")");
    eval_expect(s, "16");
    free(s);
    s = repeat("sum(1", ", 1", EXPR_MAX_ARGS, ")");
    compile_fails_at(s, 5 + 3 * EXPR_MAX_ARGS);
    free(s);
}

struct thread_job {
    const struct expr *x;
    int ok;
};

static void *eval_many(void *arg)
{
    struct thread_job *job = arg;
    json_t *vars = json_pack("{s:i, s:[s,s]}", "age_years", 3, "danger_signs", "convulsions", "fever");
    int i;

    job->ok = 1;
    for (i = 0; i < 2000; i++) {
        struct err e;
        json_t *v;

        json_object_set_new(vars, "age_years", json_integer(i % 10));
        err_clear(&e);
        v = expr_eval(job->x, lookup_object, vars, &e);
        if (v == NULL || !json_is_integer(v) || json_integer_value(v) != (i % 10 < 5 ? 2 : 0))
            job->ok = 0;
        json_decref(v);
    }
    json_decref(vars);
    return NULL;
}

/* One compiled expression, evaluated from several threads at once (run it under TSan to see races). */
static void test_threads(void **state)
{
    struct expr *x = compile_ok("if(age_years < 5 and selected(danger_signs, 'fever'), count(danger_signs), 0)");
    struct thread_job jobs[4];
    pthread_t threads[4];
    int i;

    (void)state;
    for (i = 0; i < 4; i++) {
        jobs[i].x = x;
        assert_int_equal(pthread_create(&threads[i], NULL, eval_many, &jobs[i]), 0);
    }
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_true(jobs[i].ok);
    }
    expr_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_table),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_compile_error_messages),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_truthy),
        cmocka_unit_test(test_eval_without_lookup),
        cmocka_unit_test(test_eval_returns_the_array),
        cmocka_unit_test(test_limit_length),
        cmocka_unit_test(test_limit_depth),
        cmocka_unit_test(test_limit_nodes),
        cmocka_unit_test(test_limit_string_name_args),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
