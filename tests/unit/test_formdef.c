/* test_formdef.c — the forms engine: definition checks, every field type and rule, conditions, computed
 * fields, translations fallback, and every built-in form compiling. */
#include "testutil.h"

#include "core/datafiles.h"
#include "core/date.h"
#include "services/formdef.h"

/* A form with every field type and rule. */
static const char every_type[] =
    "{\"id\":\"every_type\",\"version\":1,\"default_language\":\"en\",\"languages\":[\"en\",\"ar\"],"
    " \"title\":{\"en\":\"Every type\",\"ar\":\"كل الأنواع\"},"
    " \"fields\":["
    "  {\"name\":\"note\",\"type\":\"text\",\"label\":{\"en\":\"Note\"},\"max_length\":5},"
    "  {\"name\":\"code\",\"type\":\"text\",\"label\":{\"en\":\"Code\"},\"pattern\":\"[A-Z]{2}[0-9]+\"},"
    "  {\"name\":\"story\",\"type\":\"long_text\",\"label\":{\"en\":\"Story\"}},"
    "  {\"name\":\"temp_c\",\"type\":\"number\",\"label\":{\"en\":\"Temperature\",\"ar\":\"الحرارة\"},"
    "   \"unit\":\"°C\",\"min\":30,\"max\":45,\"decimals\":1,\"required\":true},"
    "  {\"name\":\"children\",\"type\":\"number\",\"label\":{\"en\":\"Children\"},\"min\":0,\"decimals\":0},"
    "  {\"name\":\"seen_on\",\"type\":\"date\",\"label\":{\"en\":\"Seen on\"},\"min\":\"2000-01-01\"},"
    "  {\"name\":\"next_visit\",\"type\":\"date\",\"label\":{\"en\":\"Next\"},\"allow_future\":true,\"min\":\"today\"},"
    "  {\"name\":\"at\",\"type\":\"datetime\",\"label\":{\"en\":\"At\"}},"
    "  {\"name\":\"pregnant\",\"type\":\"select\",\"label\":{\"en\":\"Pregnant\"},"
    "   \"relevant\":\"sex = 'female' and age_years >= 10\",\"required_if\":\"sex = 'female' and age_years >= 15\","
    "   \"options\":[{\"code\":\"yes\",\"label\":{\"en\":\"Yes\",\"ar\":\"نعم\"}},{\"code\":\"no\",\"label\":{\"en\":\"No\"}}]},"
    "  {\"name\":\"signs\",\"type\":\"multi_select\",\"label\":{\"en\":\"Signs\"},\"max_items\":2,"
    "   \"options\":[{\"code\":\"cough\",\"label\":{\"en\":\"Cough\"}},{\"code\":\"fever\",\"label\":{\"en\":\"Fever\"}},"
    "                {\"code\":\"rash\",\"label\":{\"en\":\"Rash\"}}]},"
    "  {\"name\":\"cough_weeks\",\"type\":\"number\",\"label\":{\"en\":\"Weeks of cough\"},\"decimals\":0,"
    "   \"relevant\":\"selected(signs, 'cough')\",\"required_if\":\"selected(signs, 'cough')\"},"
    "  {\"name\":\"smoker\",\"type\":\"boolean\",\"label\":{\"en\":\"Smoker\"}},"
    "  {\"name\":\"dx\",\"type\":\"diagnosis\",\"label\":{\"en\":\"Diagnosis\"}},"
    "  {\"name\":\"drug\",\"type\":\"medication\",\"label\":{\"en\":\"Drug\"}},"
    "  {\"name\":\"scan\",\"type\":\"file\",\"label\":{\"en\":\"Scan\"}},"
    "  {\"name\":\"items\",\"type\":\"group\",\"label\":{\"en\":\"Items\"},\"max_items\":3,\"fields\":["
    "    {\"name\":\"dose\",\"type\":\"number\",\"label\":{\"en\":\"Dose\"},\"min\":0,\"required\":true},"
    "    {\"name\":\"per_day\",\"type\":\"number\",\"label\":{\"en\":\"Per day\"},\"decimals\":0},"
    "    {\"name\":\"daily\",\"type\":\"computed\",\"label\":{\"en\":\"Daily\"},\"expr\":\"dose * per_day\"}]},"
    "  {\"name\":\"weight_kg\",\"type\":\"number\",\"label\":{\"en\":\"Weight\"},\"min\":0.5,\"max\":300},"
    "  {\"name\":\"height_cm\",\"type\":\"number\",\"label\":{\"en\":\"Height\"},\"min\":30,\"max\":250},"
    "  {\"name\":\"bmi\",\"type\":\"computed\",\"label\":{\"en\":\"BMI\"},\"decimals\":1,"
    "   \"expr\":\"weight_kg / ((height_cm / 100) * (height_cm / 100))\"},"
    "  {\"name\":\"obese\",\"type\":\"computed\",\"label\":{\"en\":\"Obese\"},\"expr\":\"bmi >= 30\"}"
    " ]}";

static struct form *compile_text(const char *text, json_t **problems)
{
    json_error_t jerr;
    json_t *def = json_loads(text, 0, &jerr);
    struct form *f;
    struct err e;

    if (def == NULL)
        fail_msg("test form is not JSON: %s (line %d)", jerr.text, jerr.line);
    err_clear(&e);
    f = form_compile(def, problems, &e);
    json_decref(def);
    return f;
}

static struct entry_context adult_woman(void)
{
    struct entry_context c = { .sex = "female", .age_days = 30 * 365 + 7, .encounter_type = "consultation" };

    c.today = date_today();
    return c;
}

/* Check values (JSON text) and return the stored values or NULL with *errors. */
static json_t *check(const struct form *f, const struct entry_context *c, const char *values, json_t **errors)
{
    json_t *v = json_loads(values, 0, NULL), *out;
    struct err e;

    assert_non_null(v);
    err_clear(&e);
    out = form_check_entry(f, v, c, errors, &e);
    if (out == NULL)
        assert_int_equal(e.kind, *errors ? ERR_UNPROCESSABLE : ERR_INTERNAL);
    json_decref(v);
    return out;
}

/* The message the check gives for one field of one bad entry. */
static void expect_error(const struct form *f, const struct entry_context *c, const char *values, const char *field,
                         const char *message)
{
    json_t *errors = NULL, *out = check(f, c, values, &errors);
    const char *got;

    if (out != NULL)
        fail_msg("%s: accepted, expected '%s' on %s", values, message, field);
    got = json_string_value(json_object_get(errors, field));
    if (got == NULL || strstr(got, message) == NULL) {
        char *dump = json_dumps(errors, 0);

        fail_msg("%s: expected '%s' on %s, got %s", values, message, field, dump);
    }
    json_decref(errors);
}

static void test_every_type_accepts_and_computes(void **state)
{
    struct entry_context c = adult_woman();
    json_t *problems = NULL, *errors = NULL, *out;
    struct form *f = compile_text(every_type, &problems);
    char *dump;

    (void)state;
    if (f == NULL) {
        dump = json_dumps(problems, 0);
        fail_msg("every_type does not compile: %s", dump);
    }
    out = check(f, &c,
                "{\"note\":\"hi\",\"code\":\"AB12\",\"story\":\"long\",\"temp_c\":37.5,\"children\":2,"
                " \"seen_on\":\"2024-02-29\",\"at\":\"2024-03-01T10:20Z\",\"pregnant\":\"no\","
                " \"signs\":[\"cough\",\"fever\"],\"cough_weeks\":3,\"smoker\":false,\"dx\":\"a09\","
                " \"drug\":\"amoxicillin_500mg_cap\","
                " \"scan\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\","
                " \"items\":[{\"dose\":2.5,\"per_day\":3},{\"dose\":1}],\"weight_kg\":81,\"height_cm\":160}",
                &errors);
    if (out == NULL) {
        dump = json_dumps(errors, 0);
        fail_msg("rejected: %s", dump);
    }
    assert_string_equal(json_string_value(json_object_get(out, "dx")), "A09");   /* normalised code */
    /* 81 / 1.6^2 = 31.64..., rounded to the field's one decimal */
    assert_true(json_number_value(json_object_get(out, "bmi")) > 31.599
                && json_number_value(json_object_get(out, "bmi")) < 31.601);
    assert_true(json_is_true(json_object_get(out, "obese")));
    assert_int_equal(json_number_value(json_object_get(json_array_get(json_object_get(out, "items"), 0), "daily")) * 10,
                     75);
    assert_null(json_object_get(json_array_get(json_object_get(out, "items"), 1), "daily"));   /* null * x */
    json_decref(out);
    form_release(f);
}

static void test_rules(void **state)
{
    struct entry_context c = adult_woman(), child = { .sex = "female", .age_days = 3 * 365, .encounter_type = "consultation" };
    json_t *problems = NULL, *errors = NULL, *out;
    struct form *f = compile_text(every_type, &problems);

    (void)state;
    child.today = date_today();
    assert_non_null(f);
    expect_error(f, &c, "{\"pregnant\":\"no\"}", "temp_c", "is required");
    expect_error(f, &c, "{\"temp_c\":37}", "pregnant", "is required");             /* required_if */
    expect_error(f, &c, "{\"temp_c\":29.9,\"pregnant\":\"no\"}", "temp_c", "must be between 30 and 45");
    expect_error(f, &c, "{\"temp_c\":37.25,\"pregnant\":\"no\"}", "temp_c", "at most 1 decimal");
    expect_error(f, &c, "{\"temp_c\":\"37\",\"pregnant\":\"no\"}", "temp_c", "must be a number");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"children\":1.5}", "children", "whole number");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"children\":-1}", "children", "at least 0");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"note\":\"toolong\"}", "note", "at most 5 characters");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"code\":\"ab12\"}", "code", "expected format");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"maybe\"}", "pregnant", "not one of the options");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"signs\":[\"cough\",\"cough\"],\"cough_weeks\":1}", "signs",
                 "repeats");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"signs\":[\"cough\",\"fever\",\"rash\"],\"cough_weeks\":1}",
                 "signs", "at most 2");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"signs\":[\"cough\"]}", "cough_weeks", "is required");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"signs\":[\"fever\"],\"cough_weeks\":2}", "cough_weeks",
                 "not asked here");
    expect_error(f, &child, "{\"temp_c\":37,\"pregnant\":\"no\"}", "pregnant", "not asked here");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"seen_on\":\"2024-02-30\"}", "seen_on", "must be a date");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"seen_on\":\"1999-12-31\"}", "seen_on", "before");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"seen_on\":\"2999-01-01\"}", "seen_on", "future");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"next_visit\":\"2001-01-01\"}", "next_visit", "today");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"at\":\"2024-03-01 10:20\"}", "at", "UTC time");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"smoker\":\"no\"}", "smoker", "true or false");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"dx\":\"XYZ.9\"}", "dx", "ICD-10");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"drug\":\"snake_oil\"}", "drug", "catalogue");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"scan\":\"../etc/passwd\"}", "scan", "document id");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"items\":[{\"per_day\":2}]}", "items[0].dose", "is required");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"items\":[{\"dose\":1,\"daily\":3}]}", "items[0].daily",
                 "computed");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"items\":[{\"dose\":1,\"x\":3}]}", "items[0].x",
                 "not a field");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"items\":[{},{},{},{}]}", "items", "at most 3");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"bmi\":20}", "bmi", "computed");
    expect_error(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"unknown\":1}", "unknown", "not a field");
    /* several errors at once */
    out = check(f, &c, "{\"temp_c\":50,\"smoker\":1}", &errors);
    assert_null(out);
    assert_int_equal(json_object_size(errors), 3);     /* temp_c, pregnant, smoker */
    json_decref(errors);
    /* a null value is an absent value */
    errors = NULL;
    out = check(f, &c, "{\"temp_c\":37,\"pregnant\":\"no\",\"note\":null}", &errors);
    assert_non_null(out);
    assert_null(json_object_get(out, "note"));
    json_decref(out);
    form_release(f);
}

/* A definition with a problem, and the path and words the check must report. */
static const struct {
    const char *fields;     /* the "fields" array text */
    const char *path;
    const char *message;
} bad_definitions[] = {
    { "[]", "fields", "non-empty" },
    { "[{\"name\":\"Bad\",\"type\":\"text\",\"label\":{\"en\":\"x\"}}]", "fields[0].name", "lowercase" },
    { "[{\"name\":\"a\",\"type\":\"texte\",\"label\":{\"en\":\"x\"}}]", "fields[0].type", "must be one of" },
    { "[{\"name\":\"a\",\"type\":\"text\"}]", "fields[0].label", "is required" },
    { "[{\"name\":\"a\",\"type\":\"text\",\"label\":\"x\"}]", "fields[0].label", "object of texts" },
    { "[{\"name\":\"a\",\"type\":\"text\",\"label\":{\"english\":\"x\"}}]", "fields[0].label", "language code" },
    { "[{\"name\":\"a\",\"type\":\"text\",\"label\":{\"en\":\"x\"}},{\"name\":\"a\",\"type\":\"text\",\"label\":{\"en\":\"y\"}}]",
      "fields[1].name", "repeats" },
    { "[{\"name\":\"a\",\"type\":\"number\",\"label\":{\"en\":\"x\"},\"min\":5,\"max\":1}]", "fields[0].max", "below min" },
    { "[{\"name\":\"a\",\"type\":\"number\",\"label\":{\"en\":\"x\"},\"options\":[]}]", "fields[0].options", "not a key" },
    { "[{\"name\":\"a\",\"type\":\"select\",\"label\":{\"en\":\"x\"}}]", "fields[0].options", "list of 1" },
    { "[{\"name\":\"a\",\"type\":\"select\",\"label\":{\"en\":\"x\"},\"options\":[{\"code\":\"a b\",\"label\":{\"en\":\"x\"}}]}]",
      "fields[0].options[0].code", "code of letters" },
    { "[{\"name\":\"a\",\"type\":\"text\",\"label\":{\"en\":\"x\"},\"relevant\":\"b >\"}]", "fields[0].relevant", "" },
    { "[{\"name\":\"a\",\"type\":\"text\",\"label\":{\"en\":\"x\"},\"relevant\":\"nosuch = 1\"}]", "fields[0].relevant",
      "neither a field" },
    { "[{\"name\":\"a\",\"type\":\"text\",\"label\":{\"en\":\"x\"},\"pattern\":\"([a-z\"}]", "fields[0].pattern",
      "regular expression" },
    { "[{\"name\":\"a\",\"type\":\"computed\",\"label\":{\"en\":\"x\"}}]", "fields[0].expr", "required" },
    { "[{\"name\":\"a\",\"type\":\"group\",\"label\":{\"en\":\"x\"},\"fields\":[{\"name\":\"b\",\"type\":\"group\","
      "\"label\":{\"en\":\"x\"},\"fields\":[{\"name\":\"c\",\"type\":\"text\",\"label\":{\"en\":\"x\"}}]}]}]",
      "fields[0].fields[0].type", "another group" },
    { "[{\"name\":\"age_years\",\"type\":\"number\",\"label\":{\"en\":\"x\"}}]", "fields[0].name", "reserved" },
    { "[{\"name\":\"a\",\"type\":\"date\",\"label\":{\"en\":\"x\"},\"min\":\"yesterday\"}]", "fields[0].min", "today" },
};

static void test_bad_definitions(void **state)
{
    char text[2048];
    json_t *problems;
    struct form *f;
    const char *got;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad_definitions) / sizeof(bad_definitions[0]); i++) {
        snprintf(text, sizeof(text), "{\"id\":\"t\",\"version\":1,\"title\":{\"en\":\"T\"},\"fields\":%s}",
                 bad_definitions[i].fields);
        problems = NULL;
        f = compile_text(text, &problems);
        if (f != NULL)
            fail_msg("definition %zu accepted", i);
        got = json_string_value(json_object_get(problems, bad_definitions[i].path));
        if (got == NULL || strstr(got, bad_definitions[i].message) == NULL) {
            char *dump = json_dumps(problems, 0);

            fail_msg("definition %zu: expected '%s' at %s, got %s", i, bad_definitions[i].message,
                     bad_definitions[i].path, dump);
        }
        json_decref(problems);
    }
    /* top-level problems */
    problems = NULL;
    assert_null(compile_text("{\"id\":\"T\",\"version\":0,\"title\":{\"en\":\"T\"},\"default_language\":\"fr\","
                             "\"colour\":1,\"fields\":[{\"name\":\"a\",\"type\":\"boolean\",\"label\":{\"en\":\"x\"}}]}",
                             &problems));
    assert_non_null(json_object_get(problems, "id"));
    assert_non_null(json_object_get(problems, "version"));
    assert_non_null(json_object_get(problems, "default_language"));
    assert_non_null(json_object_get(problems, "colour"));
    json_decref(problems);
}

static void test_localise_falls_back(void **state)
{
    json_t *problems = NULL, *loc, *fields;
    struct form *f = compile_text(every_type, &problems);

    (void)state;
    assert_non_null(f);
    loc = form_localise(form_definition(f), "ar");
    fields = json_object_get(loc, "fields");
    assert_string_equal(json_string_value(json_object_get(loc, "title")), "كل الأنواع");
    assert_string_equal(json_string_value(json_object_get(json_array_get(fields, 3), "label")), "الحرارة");
    /* no Arabic label: the default language, never nothing */
    assert_string_equal(json_string_value(json_object_get(json_array_get(fields, 0), "label")), "Note");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(json_array_get(fields, 8), "options"), 0), "label")),
                        "نعم");
    json_decref(loc);
    /* a language the form lacks entirely, and a regional tag */
    loc = form_localise(form_definition(f), "el");
    assert_string_equal(json_string_value(json_object_get(loc, "title")), "Every type");
    json_decref(loc);
    loc = form_localise(form_definition(f), "ar-LB");
    assert_string_equal(json_string_value(json_object_get(loc, "title")), "كل الأنواع");
    json_decref(loc);
    form_release(f);
}

/* Every form shipped in data/forms compiles, is translated into en, ar, fr and es, and accepts an empty
 * entry or says which fields are required. */
static void test_builtin_forms_compile(void **state)
{
    static const char *const langs[] = { "en", "ar", "fr", "es" };
    struct entry_context c = adult_woman();
    size_t i, j, nforms = 0;
    json_t *def, *problems, *errors, *out;
    struct form *f;

    (void)state;
    for (i = 0; i < data_files_count; i++) {
        if (strncmp(data_files[i].path, "/forms/", 7) != 0)
            continue;
        def = json_loadb((const char *)data_files[i].data, data_files[i].size, 0, NULL);
        if (def == NULL)
            fail_msg("%s is not JSON", data_files[i].path);
        problems = NULL;
        {
            struct err e;

            err_clear(&e);
            f = form_compile(def, &problems, &e);
        }
        if (f == NULL) {
            char *dump = json_dumps(problems, 0);

            fail_msg("%s does not compile: %s", data_files[i].path, dump);
        }
        for (j = 0; j < 4; j++)
            if (json_object_get(json_object_get(def, "title"), langs[j]) == NULL)
                fail_msg("%s has no %s title", data_files[i].path, langs[j]);
        errors = NULL;
        out = check(f, &c, "{}", &errors);
        assert_true(out != NULL || json_object_size(errors) > 0);
        json_decref(out);
        json_decref(errors);
        form_release(f);
        json_decref(def);
        nforms++;
    }
    assert_true(nforms >= 11);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_type_accepts_and_computes),
        cmocka_unit_test(test_rules),
        cmocka_unit_test(test_bad_definitions),
        cmocka_unit_test(test_localise_falls_back),
        cmocka_unit_test(test_builtin_forms_compile),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
