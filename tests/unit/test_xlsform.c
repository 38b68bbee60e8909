/* test_xlsform.c — unit tests of the XLSForm converter (services/xlsform.c): the sample forms of
 * tests/data/xlsform/ against their expected definitions, the exact problems of the bad samples, the
 * limits, CSV details (BOM, CRLF, blank rows), and expression and constraint translation case by case.
 * The data directory is tests/data/xlsform from the repository root, or $SANAD_XLSFORM_DATA. */
#include "testutil.h"

#include "core/buf.h"
#include "core/expr.h"
#include "core/util.h"
#include "services/xlsform.h"

static const char *data_dir(void)
{
    const char *dir = getenv("SANAD_XLSFORM_DATA");

    return dir ? dir : "tests/data/xlsform";
}

/* tests/data/xlsform/NAME.SUFFIX, or NULL when there is no such file. Caller frees. */
static char *sample(const char *name, const char *suffix, size_t *len)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s.%s", data_dir(), name, suffix);
    *len = 0;
    return read_file(path, 16u << 20, len);
}

static json_t *convert(const char *survey, const char *choices, const char *settings, json_t **problems,
                       struct err *e)
{
    err_clear(e);
    return xlsform_convert(survey, survey ? strlen(survey) : 0, choices, choices ? strlen(choices) : 0, settings,
                           settings ? strlen(settings) : 0, problems, e);
}

static void print_json(const char *what, const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(1) | JSON_SORT_KEYS);

    fprintf(stderr, "%s:\n%s\n", what, s ? s : "(null)");
    free(s);
}

/* Convert a form that must convert; fails the test with the problems otherwise. */
static json_t *convert_ok(const char *survey, const char *choices, const char *settings)
{
    json_t *problems, *form;
    struct err e;

    form = convert(survey, choices, settings, &problems, &e);
    if (form == NULL) {
        print_json("problems", problems);
        fail_msg("conversion failed: %s (%s)", e.message, e.code);
    }
    assert_null(problems);
    return form;
}

/* Convert a form that must fail with code and exactly one problem, at (sheet, row, column), whose message
 * contains text. */
static void convert_one_problem(const char *survey, const char *choices, const char *settings, const char *code,
                                const char *sheet, int row, const char *column, const char *text)
{
    json_t *problems, *form, *p;
    struct err e;

    form = convert(survey, choices, settings, &problems, &e);
    if (form)
        print_json("form", form);
    assert_null(form);
    assert_string_equal(e.code, code);
    if (json_array_size(problems) != 1)
        print_json("problems", problems);
    assert_int_equal(json_array_size(problems), 1);
    p = json_array_get(problems, 0);
    assert_string_equal(json_string_value(json_object_get(p, "sheet")), sheet);
    assert_int_equal(json_integer_value(json_object_get(p, "row")), row);
    assert_string_equal(json_string_value(json_object_get(p, "column")), column);
    if (strstr(json_string_value(json_object_get(p, "message")), text) == NULL)
        fail_msg("message '%s' does not contain '%s'", json_string_value(json_object_get(p, "message")), text);
    json_decref(problems);
}

/* ---- the sample forms ---------------------------------------------------------------------------- */

/* Every expression of the definition compiles: relevant, required_if and expr, inside groups too. */
static void assert_expressions_compile(const json_t *fields)
{
    static const char *const keys[] = { "relevant", "required_if", "expr" };
    const json_t *f;
    struct expr *x;
    struct err e;
    size_t i, k;

    json_array_foreach(fields, i, f) {
        for (k = 0; k < 3; k++) {
            const char *src = json_string_value(json_object_get(f, keys[k]));

            if (src == NULL)
                continue;
            err_clear(&e);
            x = expr_compile(src, &e);
            if (x == NULL)
                fail_msg("'%s' does not compile: %s", src, e.message);
            expr_free(x);
        }
        if (json_object_get(f, "fields"))
            assert_expressions_compile(json_object_get(f, "fields"));
    }
}

static void good_form(const char *name)
{
    char *survey, *choices, *settings, *expected_text;
    json_t *form, *expected, *problems;
    json_error_t jerr;
    size_t ls, lc, lt, le;
    struct err e;

    survey = sample(name, "survey.csv", &ls);
    choices = sample(name, "choices.csv", &lc);
    settings = sample(name, "settings.csv", &lt);
    expected_text = sample(name, "expected.json", &le);
    if (survey == NULL || expected_text == NULL)
        fail_msg("cannot read the sample '%s' in %s (run from the repository root or set SANAD_XLSFORM_DATA)", name,
                 data_dir());
    expected = json_loads(expected_text, 0, &jerr);
    if (expected == NULL)
        fail_msg("%s.expected.json: %s", name, jerr.text);
    err_clear(&e);
    form = xlsform_convert(survey, ls, choices, lc, settings, lt, &problems, &e);
    if (form == NULL) {
        print_json("problems", problems);
        fail_msg("%s: %s", name, e.message);
    }
    assert_null(problems);
    if (!json_equal(form, expected)) {
        print_json("converted", form);
        fail_msg("%s: the definition differs from %s.expected.json", name, name);
    }
    assert_expressions_compile(json_object_get(form, "fields"));
    json_decref(form);
    json_decref(expected);
    free(survey);
    free(choices);
    free(settings);
    free(expected_text);
}

static void test_sample_anc_visit(void **state)
{
    (void)state;
    good_form("anc_visit");
}

static void test_sample_household(void **state)
{
    (void)state;
    good_form("household");
}

static void test_sample_screening(void **state)
{
    (void)state;
    good_form("screening");
}

/* ---- the bad samples: every problem, at its place ------------------------------------------------ */

struct expected_problem {
    const char *sheet;
    int row;
    const char *column;
    const char *text;       /* part of the message */
};

#define PROBLEMS_LISTED_MAX 24

struct bad_sample {
    const char *name;
    const char *code;
    struct expected_problem problems[PROBLEMS_LISTED_MAX];
};

static const struct bad_sample bad_samples[] = {
    { "bad_csv", "invalid_xlsform", {
        { "survey", 2, "", "not valid CSV" },
    } },
    { "bad_columns", "invalid_xlsform", {
        { "survey", 1, "name", "no 'name' column" },
        { "choices", 1, "name", "no 'name' column" },
    } },
    { "bad_types", "xlsform_unsupported", {
        { "survey", 2, "type", "locations" },
        { "survey", 3, "type", "audio and video" },
        { "survey", 4, "type", "barcode" },
        { "survey", 5, "type", "range" },
        { "survey", 6, "type", "rank" },
        { "survey", 7, "type", "attached file" },
        { "survey", 8, "type", "or_other" },
        { "survey", 9, "type", "needs the name of a choice list" },
        { "survey", 10, "type", "'magic'" },
        { "survey", 11, "type", "time questions" },
    } },
    { "bad_expressions", "xlsform_unsupported", {
        { "survey", 5, "relevant", "pulldata()" },
        { "survey", 6, "calculation", "jr:choice-name()" },
        { "survey", 10, "relevant", "${kid_age} inside the repeat 'kids'" },
        { "survey", 10, "relevant", "indexed-repeat()" },
        { "survey", 11, "relevant", "int()" },
        { "survey", 12, "relevant", "paths (/data/...)" },
        { "survey", 13, "relevant", "${nobody}, which is not in the survey" },
        { "survey", 13, "relevant", "the note ${info}" },
        { "survey", 13, "relevant", "${started} is metadata" },
        { "survey", 14, "relevant", "${kid_age} inside the repeat 'kids'" },
        { "survey", 15, "calculation", "now()" },
        { "survey", 16, "relevant", "'(' is not closed" },
    } },
    { "bad_structure", "xlsform_unsupported", {
        { "survey", 3, "type", "end_group without a begin_group" },
        { "survey", 5, "name", "'Age' (row 4) and 'age' are one Sanad name" },
        { "survey", 6, "name", "'name' is already used in row 2" },
        { "survey", 7, "name", "must start with a letter" },
        { "survey", 8, "name", "may use only ASCII letters" },
        { "survey", 9, "name", "a word of the expression language" },
        { "survey", 10, "type", "the repeat has no questions" },
        { "survey", 12, "type", "a repeat inside a repeat" },
        { "survey", 15, "type", "end_repeat closes the begin_group of row 11" },
        { "survey", 17, "type", "the repeat has no questions" },
        { "survey", 20, "name", "the row has no name" },
        { "survey", 21, "type", "begin_group is never closed" },
        { "survey", 23, "name", "the name Sanad gives the patient's context" },
    } },
    { "bad_choices", "xlsform_unsupported", {
        { "survey", 3, "type", "'sizes' is not in the choices sheet" },
        { "survey", 4, "type", "'shapes' is not in the choices sheet" },
        { "survey", 5, "type", "'broken' has no usable choices" },
        { "choices", 4, "name", "already has a choice named 'red' (row 2)" },
        { "choices", 5, "list_name", "no list_name" },
        { "choices", 6, "name", "'light blue' is not an option code" },
        { "choices", 7, "label", "no label" },
        { "choices", 8, "name", "no name" },
        { "choices", 9, "name", "'x y' is not an option code" },
    } },
    { "bad_meaning", "xlsform_unsupported", {
        { "survey", 2, "calculation", "only on calculate rows" },
        { "survey", 3, "choice_filter", "choice_filter" },
        { "survey", 4, "repeat_count", "repeat_count" },
        { "survey", 5, "default", "default values" },
        { "survey", 7, "calculation", "a note showing a calculation" },
        { "survey", 8, "media::image", "media" },
        { "survey", 9, "appearance", "'month-year'" },
        { "survey", 10, "appearance", "search()" },
        { "survey", 11, "appearance", "another app" },
        { "survey", 12, "constraint", "something Sanad cannot check" },
        { "survey", 13, "constraint", "string-length(.) <= N" },
        { "survey", 14, "constraint", "only on questions" },
        { "survey", 14, "required", "only on questions" },
        { "survey", 16, "read_only", "not an expression" },
        { "survey", 17, "required", "a required acknowledge" },
    } },
    { "bad_settings", "xlsform_unsupported", {
        { "survey", 1, "label::Español", "'Español' has no code" },
        { "survey", 1, "hint::French (fr)", "the 'fr' text a second time" },
        { "settings", 2, "public_key", "public_key" },
        { "settings", 2, "version", "'1.2' is not a whole number" },
        { "settings", 2, "default_language", "'French' has no code" },
        { "settings", 2, "form_id", "no ASCII letter" },
        { "settings", 3, "", "one row of values" },
    } },
    { "bad_constraints", "xlsform_unsupported", {
        { "survey", 2, "constraint", "look-ahead" },
        { "survey", 3, "constraint", "escape" },
        { "survey", 4, "constraint", "more decimals than the question keeps" },
        { "survey", 5, "constraint", "sets 'min' twice" },
        { "survey", 6, "constraint", "strict bound" },
        { "survey", 7, "constraint", "something Sanad cannot check" },
        { "survey", 8, "calculation", "in a circle (through ${x})" },
        { "survey", 10, "relevant", "in a circle" },
        { "survey", 11, "relevant", "goes on after its end" },
    } },
};

static void test_bad_samples(void **state)
{
    char *survey, *choices, *settings;
    const struct bad_sample *b;
    json_t *form, *problems, *p;
    size_t ls, lc, lt, i, n;
    struct err e;

    (void)state;
    for (b = bad_samples; b < bad_samples + sizeof(bad_samples) / sizeof(bad_samples[0]); b++) {
        survey = sample(b->name, "survey.csv", &ls);
        choices = sample(b->name, "choices.csv", &lc);
        settings = sample(b->name, "settings.csv", &lt);
        if (survey == NULL)
            fail_msg("cannot read the sample '%s' in %s", b->name, data_dir());
        err_clear(&e);
        form = xlsform_convert(survey, ls, choices, lc, settings, lt, &problems, &e);
        if (form)
            print_json(b->name, form);
        assert_null(form);
        if (strcmp(e.code, b->code) != 0)
            fail_msg("%s: code %s, expected %s", b->name, e.code, b->code);
        assert_int_equal(e.kind, strcmp(b->code, "invalid_xlsform") == 0 ? ERR_INVALID : ERR_UNPROCESSABLE);
        for (n = 0; n < PROBLEMS_LISTED_MAX && b->problems[n].sheet; n++)
            ;
        if (json_array_size(problems) != n) {
            print_json(b->name, problems);
            fail_msg("%s: %zu problems, expected %zu", b->name, json_array_size(problems), n);
        }
        json_array_foreach(problems, i, p) {
            const struct expected_problem *x = &b->problems[i];
            const char *message = json_string_value(json_object_get(p, "message"));

            assert_int_equal(json_object_size(p), 4);
            if (strcmp(json_string_value(json_object_get(p, "sheet")), x->sheet) != 0
                || json_integer_value(json_object_get(p, "row")) != x->row
                || strcmp(json_string_value(json_object_get(p, "column")), x->column) != 0
                || strstr(message, x->text) == NULL) {
                print_json(b->name, problems);
                fail_msg("%s: problem %zu is not %s row %d column '%s' '%s'", b->name, i, x->sheet, x->row, x->column,
                         x->text);
            }
        }
        json_decref(problems);
        free(survey);
        free(choices);
        free(settings);
    }
}

/* ---- limits and CSV details ---------------------------------------------------------------------- */

static const char settings_min[] = "form_id\nlimits\n";

static void test_limits(void **state)
{
    struct buf b;
    json_t *problems, *form;
    struct err e;
    char *big;
    int i;

    (void)state;
    /* a sheet over 2 MiB */
    big = malloc(XLSFORM_SHEET_MAX + 2);
    assert_non_null(big);
    memset(big, 'a', XLSFORM_SHEET_MAX + 1);
    big[XLSFORM_SHEET_MAX + 1] = '\0';
    convert_one_problem(big, NULL, settings_min, "invalid_xlsform", "survey", 0, "", "larger than");
    free(big);

    /* more than 2000 rows */
    buf_init(&b, 1u << 22);
    buf_puts(&b, "type,name,label\n");
    for (i = 0; i < XLSFORM_ROWS_MAX + 1; i++)
        buf_printf(&b, "text,q%d,Question %d\n", i, i);
    convert_one_problem(b.data, NULL, settings_min, "invalid_xlsform", "survey", XLSFORM_ROWS_MAX + 2, "",
                        "more than 2000 rows");
    /* exactly 2000 is fine (notes, since a Sanad form holds at most 500 fields) */
    buf_reset(&b);
    buf_puts(&b, "type,name,label\n");
    for (i = 0; i < XLSFORM_ROWS_MAX; i++)
        buf_printf(&b, "%s,q%d,Question %d\n", i % 4 ? "note" : "text", i, i);
    form = convert_ok(b.data, NULL, settings_min);
    assert_int_equal(json_array_size(json_object_get(form, "fields")), XLSFORM_ROWS_MAX / 4);
    json_decref(form);
    /* 501 fields */
    buf_reset(&b);
    buf_puts(&b, "type,name,label\n");
    for (i = 0; i < 501; i++)
        buf_printf(&b, "text,q%d,Question %d\n", i, i);
    convert_one_problem(b.data, NULL, settings_min, "xlsform_unsupported", "survey", 502, "type", "at most 500 fields");

    /* a cell over 8 KiB */
    buf_reset(&b);
    buf_puts(&b, "type,name,label\ntext,q,\"");
    for (i = 0; i < XLSFORM_CELL_MAX + 1; i++)
        buf_puts(&b, "x");
    buf_puts(&b, "\"\n");
    convert_one_problem(b.data, NULL, settings_min, "invalid_xlsform", "survey", 2, "label", "longer than 8192 bytes");

    /* more than 256 columns */
    buf_reset(&b);
    buf_puts(&b, "type,name");
    for (i = 0; i < XLSFORM_COLUMNS_MAX; i++)
        buf_printf(&b, ",c%d", i);
    buf_puts(&b, "\ntext,q\n");
    convert_one_problem(b.data, NULL, settings_min, "invalid_xlsform", "survey", 1, "", "more than 256 columns");
    buf_free(&b);

    /* invalid UTF-8, a NUL byte, an empty survey */
    convert_one_problem("type,name,label\ntext,q,caf\xe9\n", NULL, settings_min, "invalid_xlsform", "survey", 2, "label",
                        "not valid UTF-8");
    {
        static const char with_nul[] = "type,name,label\ntext,q,a\0b\n";

        form = xlsform_convert(with_nul, sizeof(with_nul) - 1, NULL, 0, settings_min, strlen(settings_min), &problems, &e);
    }
    assert_null(form);
    assert_int_equal(json_array_size(problems), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(problems, 0), "message")),
                        "the cell contains a NUL byte");
    json_decref(problems);
    convert_one_problem(NULL, NULL, settings_min, "invalid_xlsform", "survey", 0, "", "empty");
    convert_one_problem("\n,,\n", NULL, settings_min, "invalid_xlsform", "survey", 0, "", "empty");
    convert_one_problem("type,name,label\n", NULL, settings_min, "xlsform_unsupported", "survey", 1, "type",
                        "no questions");
    /* the settings sheet is optional, but then the form has no id */
    convert_one_problem("type,name,label\ntext,q,Q\n", NULL, NULL, "xlsform_unsupported", "settings", 0, "form_id",
                        "needs an id");
}

/* Every problem is counted; 200 are listed, in row order. */
static void test_problem_cap(void **state)
{
    json_t *problems, *form;
    struct buf b;
    struct err e;
    int i;

    (void)state;
    buf_init(&b, 1u << 20);
    buf_puts(&b, "type,name,label\n");
    for (i = 0; i < 300; i++)
        buf_printf(&b, "geopoint,g%d,Where %d\n", i, i);
    buf_puts(&b, "text,q,Q\n");
    form = convert(b.data, NULL, settings_min, &problems, &e);
    assert_null(form);
    assert_int_equal(e.kind, ERR_UNPROCESSABLE);
    assert_int_equal(json_array_size(problems), XLSFORM_PROBLEMS_MAX);
    for (i = 0; i < XLSFORM_PROBLEMS_MAX; i++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(problems, (size_t)i), "row")), i + 2);
    assert_non_null(strstr(e.message, "300 problems"));
    json_decref(problems);
    buf_free(&b);
}

static void test_csv_details(void **state)
{
    json_t *form, *fields, *f;

    (void)state;
    /* a byte-order mark, CRLF, header case, blank rows, spaces around cells, a quoted label over two lines */
    form = convert_ok("\xEF\xBB\xBFType, NAME ,Label::English (en),HINT\r\n"
                      "\r\n"
                      ",,,\r\n"
                      " integer , age ,\"Age,\nin years\",  Whole years  \r\n"
                      "text,name,Name,\r\n",
                      NULL, "\xEF\xBB\xBF" "form_id,version\r\nclinic_intake,7\r\n");
    assert_string_equal(json_string_value(json_object_get(form, "id")), "clinic_intake");
    assert_int_equal(json_integer_value(json_object_get(form, "version")), 7);
    fields = json_object_get(form, "fields");
    assert_int_equal(json_array_size(fields), 2);
    f = json_array_get(fields, 0);
    assert_string_equal(json_string_value(json_object_get(f, "name")), "age");
    assert_string_equal(json_string_value(json_object_get(json_object_get(f, "label"), "en")), "Age,\nin years");
    assert_string_equal(json_string_value(json_object_get(json_object_get(f, "help"), "en")), "Whole years");
    json_decref(form);

    /* row numbers count blank rows, and CRLF counts once */
    convert_one_problem("type,name,label\r\ntext,a,A\r\n\r\n,,\r\ngeoshape,b,B\r\n", NULL, settings_min,
                        "xlsform_unsupported", "survey", 5, "type", "locations");
    /* a quoted cell over two lines is one row */
    convert_one_problem("type,name,label\ntext,a,\"A\nA\"\ngeoshape,b,B\n", NULL, settings_min, "xlsform_unsupported",
                        "survey", 3, "type", "locations");
    convert_one_problem("type,name,label\ntext,a,\"open\n", NULL, settings_min, "invalid_xlsform", "survey", 2, "",
                        "ends inside a quoted cell");
    convert_one_problem("type,name,type\ntext,a,text\n", NULL, settings_min, "invalid_xlsform", "survey", 1, "type",
                        "this column twice");
}

/* ---- settings and languages ---------------------------------------------------------------------- */

static void test_settings(void **state)
{
    json_t *form, *langs;
    const char *survey = "type,name,label\ntext,q,Q\n";

    (void)state;
    form = convert_ok(survey, NULL, "form_id,version,form_title\n  ANC-Visit v2!,2000000000,Visite ANC\n");
    assert_string_equal(json_string_value(json_object_get(form, "id")), "anc_visit_v2");
    assert_int_equal(json_integer_value(json_object_get(form, "version")), 2000000000);
    assert_string_equal(json_string_value(json_object_get(json_object_get(form, "title"), "en")), "Visite ANC");
    json_decref(form);
    /* no form_id: the title names it; no version: 1 */
    form = convert_ok(survey, NULL, "form_title\n2024 Cholera line list\n");
    assert_string_equal(json_string_value(json_object_get(form, "id")), "cholera_line_list");
    assert_int_equal(json_integer_value(json_object_get(form, "version")), 1);
    json_decref(form);
    convert_one_problem(survey, NULL, "form_id,version\nx,2024031501\n", "xlsform_unsupported", "settings", 2, "version",
                        "not a whole number from 1 to 2000000000");
    convert_one_problem(survey, NULL, "form_id,version\nx,0\n", "xlsform_unsupported", "settings", 2, "version",
                        "not a whole number");

    /* languages: bare columns are the default language, which the settings may name */
    form = convert_ok("type,name,label,label::Arabic (ar)\ntext,q,Nom,الاسم\n", NULL,
                      "form_id,default_language\nx,French (fr)\n");
    assert_string_equal(json_string_value(json_object_get(form, "default_language")), "fr");
    langs = json_object_get(form, "languages");
    assert_int_equal(json_array_size(langs), 2);
    assert_string_equal(json_string_value(json_array_get(langs, 0)), "fr");
    assert_string_equal(json_string_value(json_array_get(langs, 1)), "ar");
    assert_string_equal(json_string_value(json_object_get(json_object_get(form, "title"), "fr")), "x");
    json_decref(form);
    /* only translated columns and no default_language: the first label language */
    form = convert_ok("type,name,label::Arabic (ar),label::English (en)\ntext,q,الاسم,Name\n", NULL, "form_id\nx\n");
    assert_string_equal(json_string_value(json_object_get(form, "default_language")), "ar");
    json_decref(form);
    /* bare columns without default_language: English */
    form = convert_ok("type,name,label,label::uk\ntext,q,Name,Ім'я\n", NULL, "form_id\nx\n");
    assert_string_equal(json_string_value(json_object_get(form, "default_language")), "en");
    assert_string_equal(json_string_value(json_object_get(json_object_get(json_array_get(json_object_get(form, "fields"), 0),
                                                                          "label"), "uk")), "Ім'я");
    json_decref(form);
    /* a code with a region subtag */
    form = convert_ok("type,name,label::Portuguese (pt-BR)\ntext,q,Nome\n", NULL, "form_id\nx\n");
    assert_string_equal(json_string_value(json_object_get(form, "default_language")), "pt-BR");
    json_decref(form);
    convert_one_problem("type,name,label,label::English (en)\ntext,q,Name,Name\n", NULL, "form_id\nx\n",
                        "xlsform_unsupported", "survey", 1, "label::English (en)", "second time");
    convert_one_problem("type,name,label,label::English\ntext,q,Name,Name\n", NULL, "form_id\nx\n",
                        "xlsform_unsupported", "survey", 1, "label::English", "has no code");
}

/* ---- rows: types, metadata, notes, groups -------------------------------------------------------- */

static void test_rows(void **state)
{
    json_t *form, *fields;

    (void)state;
    /* metadata and notes leave nothing; disabled rows are left out; groups are flattened */
    form = convert_ok("type,name,label,disabled,relevant\n"
                      "start,start,,,\nend,end,,,\nusername,user,,,\nnote,hello,Welcome,,\n"
                      "begin group,g1,Group,,${q1} = 'x'\n"
                      "text,q1,Q1,,\n"
                      "begin_group,g2,,,\n"
                      "text,q2,Q2,no,\n"
                      "text,q3,Q3,yes,\n"
                      "end group,,,,\nend_group,,,,\n",
                      NULL, "form_id\nx\n");
    fields = json_object_get(form, "fields");
    assert_int_equal(json_array_size(fields), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(fields, 0), "relevant")), "q1 = 'x'");
    assert_string_equal(json_string_value(json_object_get(json_array_get(fields, 1), "name")), "q2");
    assert_string_equal(json_string_value(json_object_get(json_array_get(fields, 1), "relevant")), "q1 = 'x'");
    json_decref(form);
    /* a field may refer to one further down */
    form = convert_ok("type,name,label,relevant\ntext,q1,Q1,${q2} = 'a'\ntext,q2,Q2,\n", NULL, "form_id\nx\n");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(form, "fields"), 0), "relevant")),
                        "q2 = 'a'");
    json_decref(form);
    convert_one_problem("type,name,label,disabled\nbegin_group,g,G,yes\ntext,q,Q,\nend_group,,,\n", NULL,
                        "form_id\nx\n", "xlsform_unsupported", "survey", 2, "disabled", "begin and end rows");
    convert_one_problem("type,name,label\ntext,q,\n", NULL, "form_id\nx\n", "xlsform_unsupported", "survey", 2, "label",
                        "no label");
    convert_one_problem("type,name,label\n,q,Q\ntext,r,R\n", NULL, "form_id\nx\n", "xlsform_unsupported", "survey", 2,
                        "type", "no type");
    convert_one_problem("type,name,label\ntext,q,Hello ${q}\n", NULL, "form_id\nx\n", "xlsform_unsupported", "survey",
                        2, "label", "shows an answer");
    /* a repeat whose name is refused: its rows are not reported again */
    convert_one_problem("type,name,label\nbegin_repeat,Bad Name,R\ntext,q,Q\nend_repeat,,\ntext,z,Z\n", NULL,
                        "form_id\nx\n", "xlsform_unsupported", "survey", 2, "name", "may use only ASCII letters");
    /* display-only columns are dropped */
    form = convert_ok("type,name,label,guidance_hint,required_message,body::accuracyThreshold,comments\n"
                      "text,q,Q,Ask gently,Please answer,5,check with the team\n",
                      NULL, "form_id\nx\n");
    assert_int_equal(json_object_size(json_array_get(json_object_get(form, "fields"), 0)), 3);
    json_decref(form);
}

/* What form_compile() refuses and the converter's own checks let through is reported at its row. */
static void test_definition_check(void **state)
{
    struct buf b;
    int i;

    (void)state;
    buf_init(&b, 1u << 16);
    buf_puts(&b, "type,name,label,hint\ntext,q,Q,Q\ninteger,n,\"");
    for (i = 0; i < 2001; i++)
        buf_puts(&b, "x");
    buf_puts(&b, "\",Help\n");
    convert_one_problem(b.data, NULL, "form_id\nx\n", "xlsform_unsupported", "survey", 3, "label",
                        "Sanad refuses the converted question (fields[1].label)");
    buf_free(&b);
}

/* ---- expressions --------------------------------------------------------------------------------- */

/* The survey every expression case runs in; the case is the relevant of the last row, "x". */
static const char expr_survey[] =
    "type,name,label,relevant,calculation\n"
    "integer,n,N,,\n"
    "decimal,dec,Dec,,\n"
    "text,t,T,,\n"
    "date,d,D,,\n"
    "date,d2,D2,,\n"
    "datetime,dt,DT,,\n"
    "select_one yn,s,S,,\n"
    "select_multiple yn,m,M,,\n"
    "acknowledge,ack,Ack,,\n"
    "calculate,c,,,${n} * 2\n"
    "calculate,cr,,${n} > 1,${n} + 1\n"
    "today,today_meta,,,\n"
    "begin_repeat,r,R,,\n"
    "integer,in_r,In R,,\n"
    "end_repeat,,,,\n";
static const char expr_choices[] = "list_name,name,label\nyn,yes,Yes\nyn,no,No\nyn,1,One\n";

/* The Sanad text of an XLSForm relevant (NULL when refused: *message gets the problem). */
static char *relevant_of(const char *xls, char **message)
{
    json_t *form, *problems, *fields;
    struct buf b;
    struct err e;
    char *out = NULL;
    const char *q;

    buf_init(&b, 1u << 16);
    buf_puts(&b, expr_survey);
    buf_puts(&b, "text,x,X,\"");
    for (q = xls; *q; q++)
        buf_append(&b, *q == '"' ? "\"\"" : q, *q == '"' ? 2 : 1);
    buf_puts(&b, "\",\n");
    form = convert(b.data, expr_choices, "form_id\nexpr\n", &problems, &e);
    buf_free(&b);
    *message = NULL;
    if (form) {
        fields = json_object_get(form, "fields");
        out = strdup(json_string_value(json_object_get(json_array_get(fields, json_array_size(fields) - 1), "relevant")));
        json_decref(form);
    } else {
        if (json_array_size(problems) != 1)
            print_json(xls, problems);
        assert_int_equal(json_array_size(problems), 1);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(problems, 0), "row")), 17);
        *message = strdup(json_string_value(json_object_get(json_array_get(problems, 0), "message")));
        json_decref(problems);
    }
    return out;
}

static void test_expressions(void **state)
{
    static const struct {
        const char *xls;
        const char *sanad;      /* NULL: refused, with a message containing `refused` */
        const char *refused;
    } cases[] = {
        { "${n} > 3", "n > 3", NULL },
        { "${n}>=3 and ${dec}<=2.50 or not(${t} = 'a')", "n >= 3 and dec <= 2.5 or not(t = 'a')", NULL },
        { "(${n} + 1) * 2 div 3 mod 4 - -1", "(n + 1) * 2 / 3 % 4 - -1", NULL },
        { "${n} - (1 - 2)", "n - (1 - 2)", NULL },
        { "-(${n} + 1) > .5", "-(n + 1) > 0.5", NULL },
        { "${n} = 1 or (${n} = 2 and ${n} != 3)", "n = 1 or n = 2 and n != 3", NULL },
        { "(${n} = 1 or ${n} = 2) and ${n} != 3", "(n = 1 or n = 2) and n != 3", NULL },
        { "not(${n} > 1) = true()", "(not(n > 1)) = true", NULL },
        { "${t} = ''", "empty(t)", NULL },
        { "'' != ${t}", "not(empty(t))", NULL },
        { "string-length(${t}) = 0", "empty(t)", NULL },
        { "string-length(${t}) > 0", "not(empty(t))", NULL },
        { "string-length(${t}) > 3", NULL, "string-length()" },
        { "selected(${m}, 'yes')", "selected(m, 'yes')", NULL },
        { "selected(${s}, \"no\")", "selected(s, 'no')", NULL },
        { "count-selected(${m}) >= 2", "count(m) >= 2", NULL },
        { "count(${r}) > 0", "count(r) > 0", NULL },
        { "${r} > 0", NULL, "used only in count" },
        { "count(${n}) > 0", NULL, "rows of a repeat" },
        { "${m} = 'yes'", NULL, "selected(${m}, 'code')" },
        { "${s} = 1", "number(s) = 1", NULL },
        { "${n} = '5'", "n = 5", NULL },
        { "${ack} = 'OK'", "ack = true", NULL },
        { "${t} = \"it's\"", "t = 'it''s'", NULL },
        { "if(${n} > 1, 'a', 'b') = 'a'", "if(n > 1, 'a', 'b') = 'a'", NULL },
        { "coalesce(${n}, 0) + round(${dec}) + round(${dec}, 2) > number(${t})",
          "coalesce(n, 0) + round(dec, 0) + round(dec, 2) > number(t)", NULL },
        { "max(${n}, ${dec}, 3) < min(4, 5)", "max(n, dec, 3) < min(4, 5)", NULL },
        { "today() - ${d} > 28", "days_between(d, encounter_date) > 28", NULL },
        { "${d2} - ${d} < 7", "days_between(d, d2) < 7", NULL },
        { "${d} > date('2024-01-31')", "d > '2024-01-31'", NULL },
        { "${today_meta} > ${d}", "encounter_date > d", NULL },
        { "${d} + 7 > today()", NULL, "arithmetic on dates" },
        { "${dt} - ${dt} > 1", NULL, "arithmetic on dates" },
        { "date(${t}) > ${d}", NULL, "date('YYYY-MM-DD')" },
        { "${c} > 4", "n * 2 > 4", NULL },
        { "${c} + 1 > 4", "n * 2 + 1 > 4", NULL },
        { "${c} * 3 > 4", "n * 2 * 3 > 4", NULL },
        { "3 * ${c} > 4", "3 * (n * 2) > 4", NULL },
        { "${cr} > 4", "if(n > 1, n + 1, null) > 4", NULL },
        { ". = 'a'", "x = 'a'", NULL },
        { "${in_r} > 1", NULL, "inside the repeat 'r'" },
        { "concat(${t}, 'a') = 'ba'", NULL, "concat() has no equivalent" },
        { "jr:choice-name(${s}, '${s}') = 'Yes'", NULL, "ODK Collect extension" },
        { "pulldata('f', 'a', 'b', ${t}) = 1", NULL, "pulldata()" },
        { "indexed-repeat(${t}, ${r}, 1) > 1", NULL, "indexed-repeat()" },
        { "${last-saved#t} = 'a'", NULL, "last saved" },
        { "/data/n > 1", NULL, "paths" },
        { "${n}[1] > 1", NULL, "predicates" },
        { "${n} | ${t}", NULL, "unions" },
        { "${n} == 1", NULL, "'=='" },
        { "${n} > ", NULL, "ends where a value" },
        { "${n} > 1 1", NULL, "goes on after its end" },
        { "foo > 1", NULL, "'foo' is not a field reference" },
        { "if(${n}, 1) > 1", NULL, "if() takes 3 arguments, not 2" },
        { "${nobody} > 1", NULL, "not in the survey" },
        { "${n} > 'a", NULL, "not closed" },
        { "${n > 1", NULL, "not closed" },
        { "${x} = 'a'", "x = 'a'", NULL },
    };
    char *out, *message;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        out = relevant_of(cases[i].xls, &message);
        if (cases[i].sanad) {
            if (out == NULL)
                fail_msg("'%s' was refused: %s", cases[i].xls, message);
            if (strcmp(out, cases[i].sanad) != 0)
                fail_msg("'%s' became '%s', expected '%s'", cases[i].xls, out, cases[i].sanad);
        } else {
            if (out)
                fail_msg("'%s' became '%s', expected a problem", cases[i].xls, out);
            if (strstr(message, cases[i].refused) == NULL)
                fail_msg("'%s' was refused with '%s', expected '%s'", cases[i].xls, message, cases[i].refused);
        }
        free(out);
        free(message);
    }
}

/* Calculates: a computed field names those computed before it and writes out the others; relevant and
 * required_if always write them out (they are checked before anything is computed). */
static void test_calculates(void **state)
{
    json_t *form, *fields;

    (void)state;
    form = convert_ok("type,name,label,relevant,required,calculation\n"
                      "integer,n,N,,,\n"
                      "calculate,a,,,,${n} + 1\n"
                      "calculate,b,,,,${a} * ${later}\n"
                      "calculate,later,,,,${n} - 1\n"
                      "integer,q,Q,${b} > 0,${a} > 2,\n",
                      NULL, "form_id\nx\n");
    fields = json_object_get(form, "fields");
    assert_string_equal(json_string_value(json_object_get(json_array_get(fields, 2), "expr")), "a * (n - 1)");
    assert_string_equal(json_string_value(json_object_get(json_array_get(fields, 4), "relevant")),
                        "(n + 1) * (n - 1) > 0");
    assert_string_equal(json_string_value(json_object_get(json_array_get(fields, 4), "required_if")), "n + 1 > 2");
    json_decref(form);
    convert_one_problem("type,name,label,calculation\ncalculate,a,,${a} + 1\n", NULL, "form_id\nx\n",
                        "xlsform_unsupported", "survey", 2, "calculation", "circle");
    convert_one_problem("type,name,label,calculation\ncalculate,a,,\n", NULL, "form_id\nx\n", "xlsform_unsupported",
                        "survey", 2, "calculation", "no calculation");
}

/* ---- constraints --------------------------------------------------------------------------------- */

static void test_constraints(void **state)
{
    static const struct {
        const char *type;
        const char *constraint;
        const char *rules;      /* JSON object of the keys the constraint sets; NULL: refused */
        const char *refused;
    } cases[] = {
        { "integer", ". >= 1 and . <= 10", "{\"min\":1,\"max\":10}", NULL },
        { "integer", ". > 0 and . < 100", "{\"min\":1,\"max\":99}", NULL },
        { "integer", "10 >= . and 0 <= .", "{\"min\":0,\"max\":10}", NULL },
        { "integer", ". >= -5", "{\"min\":-5}", NULL },
        { "integer", ". > -5", "{\"min\":-4}", NULL },
        { "decimal", ". > 0", "{\"min\":0.01}", NULL },
        { "decimal", ". >= 35.5 and . <= 42", "{\"min\":35.5,\"max\":42}", NULL },
        { "decimal", ". < 1.25", "{\"max\":1.24}", NULL },
        { "decimal", ". > 0.001", NULL, "more decimals" },
        { "integer", ". = 5", NULL, "<, <=, > or >=" },
        { "date", ". <= today()", "{}", NULL },
        { "date", ". >= today()", "{\"min\":\"today\",\"allow_future\":true}", NULL },
        { "date", ". >= date('2000-01-01') and . <= '2030-12-31'",
          "{\"min\":\"2000-01-01\",\"max\":\"2030-12-31\",\"allow_future\":true}", NULL },
        { "datetime", ". <= now()", "{}", NULL },
        { "datetime", ". >= now()", NULL, "cannot check" },
        { "text", "string-length(.) <= 20", "{\"max_length\":20}", NULL },
        { "text", "string-length(.) < 20", "{\"max_length\":19}", NULL },
        { "text", "regex(., '^[A-Z]{2}\\d{6}$')", "{\"pattern\":\"^[A-Z]{2}[0-9]{6}$\"}", NULL },
        { "text", "regex(., '[\\w.\\-]+@[a-z]+\\.[a-z]{2,}')", "{\"pattern\":\"[A-Za-z0-9_.-]+@[a-z]+\\\\.[a-z]{2,}\"}",
          NULL },
        { "text", "regex(., '(?:ab)+\\s?[^\\d]')", "{\"pattern\":\"(ab)+[[:space:]]?[^0-9]\"}", NULL },
        { "text", "regex(., 'a*?')", NULL, "lazy" },
        { "text", "regex(., '((a{100}){100}){100}')", NULL, "repeats too much" },
        { "text", "regex(., '[a')", NULL, "not closed" },
        { "text", "regex(., 'a\\')", NULL, "lone backslash" },
        { "text", "regex(., '(a')", NULL, "POSIX regular expressions cannot read it" },
        { "text", "regex(., '^\\d+$') and string-length(.) <= 10", "{\"pattern\":\"^[0-9]+$\",\"max_length\":10}", NULL },
        { "text", "string-length(.) >= 3", NULL, "max_length" },
        { "integer", "regex(., '1')", NULL, "only for text" },
        { "select_multiple yn", "count-selected(.) <= 2", "{\"max_items\":2}", NULL },
        { "select_multiple yn", "count-selected(.) > 0 and count-selected(.) < 3", "{\"min_items\":1,\"max_items\":2}",
          NULL },
        { "select_one yn", ". != 'no'", NULL, "cannot check" },
        { "integer", ". >= ${other}", NULL, "cannot check" },
        { "integer", ". >= 1 or . <= 0", NULL, "cannot be expressed" },
        { "integer", "selected(., 'a')", NULL, "cannot be expressed" },
    };
    json_t *form, *problems, *field, *want;
    const char *key;
    json_t *v;
    struct buf b;
    struct err e;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        buf_init(&b, 1u << 16);
        buf_printf(&b, "type,name,label,constraint\ninteger,other,Other,\n%s,q,Q,\"", cases[i].type);
        buf_puts(&b, cases[i].constraint);
        buf_puts(&b, "\"\n");
        form = convert(b.data, "list_name,name,label\nyn,a,A\n", "form_id\nc\n", &problems, &e);
        buf_free(&b);
        if (cases[i].rules == NULL) {
            if (form)
                print_json(cases[i].constraint, form);
            assert_null(form);
            assert_int_equal(json_array_size(problems), 1);
            if (strstr(json_string_value(json_object_get(json_array_get(problems, 0), "message")), cases[i].refused) == NULL)
                fail_msg("'%s': problem '%s', expected '%s'", cases[i].constraint,
                         json_string_value(json_object_get(json_array_get(problems, 0), "message")), cases[i].refused);
            assert_string_equal(json_string_value(json_object_get(json_array_get(problems, 0), "column")), "constraint");
            json_decref(problems);
            continue;
        }
        if (form == NULL) {
            print_json(cases[i].constraint, problems);
            fail_msg("'%s' was refused", cases[i].constraint);
        }
        field = json_array_get(json_object_get(form, "fields"), 1);
        want = json_loads(cases[i].rules, 0, NULL);
        assert_non_null(want);
        /* the keys the constraint maps onto, and no others */
        json_object_foreach(want, key, v)
            if (!json_equal(json_object_get(field, key), v)) {
                print_json(cases[i].constraint, field);
                fail_msg("'%s': %s differs", cases[i].constraint, key);
            }
        {
            static const char *const rule_keys[] = { "min", "max", "pattern", "max_length", "min_items", "max_items",
                                                     "allow_future" };
            size_t k;

            for (k = 0; k < sizeof(rule_keys) / sizeof(rule_keys[0]); k++)
                if (json_object_get(field, rule_keys[k]) && !json_object_get(want, rule_keys[k]))
                    fail_msg("'%s': unexpected %s", cases[i].constraint, rule_keys[k]);
        }
        json_decref(want);
        json_decref(form);
    }
}

/* A form whose every row is wrong in some way: each problem listed, none stops the others. */
static void test_every_problem_listed(void **state)
{
    json_t *form, *problems;
    struct err e;

    (void)state;
    form = convert("type,name,label,relevant\n"
                   "geopoint,a,A,\n"
                   "text,b,B,pulldata('x')\n"
                   "select_one nolist,c,C,\n"
                   "text,b,B2,\n",
                   NULL, "form_id,version\nx,v1\n", &problems, &e);
    assert_null(form);
    assert_int_equal(json_array_size(problems), 5);
    json_decref(problems);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sample_anc_visit),
        cmocka_unit_test(test_sample_household),
        cmocka_unit_test(test_sample_screening),
        cmocka_unit_test(test_bad_samples),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_problem_cap),
        cmocka_unit_test(test_csv_details),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_definition_check),
        cmocka_unit_test(test_expressions),
        cmocka_unit_test(test_calculates),
        cmocka_unit_test(test_constraints),
        cmocka_unit_test(test_every_problem_listed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
