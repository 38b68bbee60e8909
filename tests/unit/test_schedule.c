/* test_schedule.c — the immunization schedule engine: the shipped WHO schedule, the hand-worked cases of
 * tests/unit/schedule_cases.tsv (found through $SANAD_TESTDATA or tests/unit/ under the cwd or above the
 * executable), malformed schedules and histories, and a site's own national schedule replacing WHO's. */
#include "testutil.h"

#include <pthread.h>

#include <jansson.h>

#include "core/datafiles.h"
#include "core/date.h"
#include "services/schedule.h"

#define CASES_FILE "schedule_cases.tsv"
#define CASE_LINE_MAX 8192

static int case_failures;      /* failed checks in the current run of the case table */

/* ---- helpers ---- */

static int64_t day_of(const char *ymd)
{
    int64_t d;

    if (date_parse(ymd, &d) < 0)
        fail_msg("not a date: '%s'", ymd);
    return d;
}

static json_t *parse_json(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);

    if (v == NULL)
        fail_msg("test JSON does not parse: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
    return v;
}

static void complain(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void complain(const char *name, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "case %s: ", name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    case_failures++;
}

/* "dtp:2" of an item, into out. */
static void pair_of(const json_t *item, char *out, size_t cap)
{
    snprintf(out, cap, "%s:%lld", json_string_value(json_object_get(item, "vaccine")),
             (long long)json_integer_value(json_object_get(item, "dose")));
}

/* The item of bucket ("due", "overdue", "next") for a "vaccine:dose" pair, or NULL. */
static json_t *find_item(const json_t *out, const char *bucket, const char *pair)
{
    json_t *item;
    char got[80];
    size_t i;

    json_array_foreach(json_object_get(out, bucket), i, item) {
        pair_of(item, got, sizeof(got));
        if (strcmp(got, pair) == 0)
            return item;
    }
    return NULL;
}

/* The entry of list ("complete", "not_recommended") for a series, or NULL. */
static json_t *find_series(const json_t *out, const char *list, const char *series)
{
    json_t *item;
    size_t i;

    json_array_foreach(json_object_get(out, list), i, item)
        if (strcmp(json_string_value(json_object_get(item, "series")), series) == 0)
            return item;
    return NULL;
}

/* The invalid dose "code@YYYY-MM-DD", or NULL. */
static json_t *find_invalid(const json_t *out, const char *code_at_date)
{
    json_t *item;
    char got[80];
    size_t i;

    json_array_foreach(json_object_get(out, "invalid_doses"), i, item) {
        snprintf(got, sizeof(got), "%s@%s", json_string_value(json_object_get(item, "vaccine")),
                 json_string_value(json_object_get(item, "date")));
        if (strcmp(got, code_at_date) == 0)
            return item;
    }
    return NULL;
}

/* A field as text: strings as they are, null as "null", integers and booleans as written in JSON. */
static void field_text(const json_t *v, char *out, size_t cap)
{
    if (v == NULL)
        snprintf(out, cap, "(absent)");
    else if (json_is_string(v))
        snprintf(out, cap, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    else if (json_is_boolean(v))
        snprintf(out, cap, "%s", json_is_true(v) ? "true" : "false");
    else
        snprintf(out, cap, "null");
}

/* The pairs of a bucket, sorted and space-separated ("-" when empty), into out. */
static void bucket_pairs(const json_t *out, const char *bucket, char *text, size_t cap)
{
    char pairs[64][80], tmp[80];
    json_t *item;
    size_t i, n = 0, j, o = 0;

    json_array_foreach(json_object_get(out, bucket), i, item)
        if (n < 64)
            pair_of(item, pairs[n++], sizeof(pairs[0]));
    for (i = 1; i < n; i++)
        for (j = i; j > 0 && strcmp(pairs[j], pairs[j - 1]) < 0; j--) {
            memcpy(tmp, pairs[j], sizeof(tmp));
            memcpy(pairs[j], pairs[j - 1], sizeof(tmp));
            memcpy(pairs[j - 1], tmp, sizeof(tmp));
        }
    text[0] = '\0';
    for (i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(text + o, cap - o, "%s%s", i ? " " : "", pairs[i]);
    if (n == 0)
        snprintf(text, cap, "-");
}

/* The expected set "a:1 b:2" (any order, "-" for none) sorted the same way. */
static void sorted_spec(const char *spec, char *text, size_t cap)
{
    json_t *fake = json_pack("{s:[]}", "x"), *arr = json_object_get(fake, "x");
    char copy[1024], *tok, *save = NULL, *colon;

    snprintf(copy, sizeof(copy), "%s", spec);
    for (tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        if (strcmp(tok, "-") == 0)
            continue;
        colon = strrchr(tok, ':');
        if (colon == NULL)
            fail_msg("bad pair '%s' in the case file", tok);
        *colon = '\0';
        json_array_append_new(arr, json_pack("{s:s, s:i}", "vaccine", tok, "dose", atoi(colon + 1)));
    }
    bucket_pairs(fake, "x", text, cap);
    json_decref(fake);
}

/* What every answer must satisfy, whatever the case: the lists exist; a planned dose has dates in order,
 * a rule, and sits in the bucket its dates say; every invalid dose has a reason. */
static void check_shape(const char *name, const json_t *out, int64_t today)
{
    static const char *const lists[] = { "due", "overdue", "next", "complete", "not_recommended", "invalid_doses" };
    static const char *const buckets[] = { "due", "overdue", "next" };
    int64_t earliest, recommended, latest;
    json_t *item;
    size_t i, b;

    if (!json_is_string(json_object_get(out, "schedule")))
        complain(name, "no schedule id");
    for (b = 0; b < 6; b++)
        if (!json_is_array(json_object_get(out, lists[b])))
            complain(name, "no list '%s'", lists[b]);
    for (b = 0; b < 3; b++)
        json_array_foreach(json_object_get(out, buckets[b]), i, item) {
            const json_t *l = json_object_get(item, "latest");

            if (date_parse(json_string_value(json_object_get(item, "earliest")), &earliest) < 0
                || date_parse(json_string_value(json_object_get(item, "recommended")), &recommended) < 0
                || (!json_is_null(l) && date_parse(json_string_value(l), &latest) < 0)) {
                complain(name, "%s[%zu]: a date is missing or malformed", buckets[b], i);
                continue;
            }
            if (earliest > recommended || (!json_is_null(l) && recommended > latest))
                complain(name, "%s[%zu]: dates out of order", buckets[b], i);
            if ((b < 2) != (recommended <= today))
                complain(name, "%s[%zu]: recommended day does not fit the bucket", buckets[b], i);
            if (json_string_length(json_object_get(item, "rule")) < 10 || json_array_size(json_object_get(item, "covers")) < 1
                || !json_is_boolean(json_object_get(item, "reported")))
                complain(name, "%s[%zu]: no rule, covers or reported flag", buckets[b], i);
        }
    json_array_foreach(json_object_get(out, "invalid_doses"), i, item)
        if (json_string_length(json_object_get(item, "reason")) < 10)
            complain(name, "invalid_doses[%zu] has no reason", i);
    json_array_foreach(json_object_get(out, "not_recommended"), i, item)
        if (json_string_length(json_object_get(item, "rule")) < 10)
            complain(name, "not_recommended[%zu] has no rule", i);
}

static size_t list_size(const json_t *out, const char *key)
{
    return json_array_size(json_object_get(out, key));
}

/* One check of the case file's last column (the grammar is in the file's header). */
static void run_check(const char *name, const json_t *out, char *check)
{
    char *tilde = strchr(check, '~'), *eq, *lhs = check, *rhs, *dot, *last, got[8192];
    int negate = 0;
    json_t *item = NULL, *v = NULL;

    if (*lhs == '!') {
        negate = 1;
        lhs++;
    }
    if (tilde) {                                   /* rule.B.V:N~text, notrec.S~text, invalid.C@D~text */
        *tilde = '\0';
        rhs = tilde + 1;
        if (strncmp(lhs, "rule.", 5) == 0 && (dot = strchr(lhs + 5, '.')) != NULL) {
            *dot = '\0';
            item = find_item(out, lhs + 5, dot + 1);
            v = json_object_get(item, "rule");
        } else if (strncmp(lhs, "notrec.", 7) == 0) {
            item = find_series(out, "not_recommended", lhs + 7);
            v = json_object_get(item, "rule");
        } else if (strncmp(lhs, "invalid.", 8) == 0) {
            item = find_invalid(out, lhs + 8);
            v = json_object_get(item, "reason");
        } else {
            fail_msg("case %s: unknown check '%s'", name, check);
        }
        if (item == NULL)
            complain(name, "%s: no such item", lhs);
        else if ((strstr(json_string_value(v), rhs) != NULL) == negate)
            complain(name, "%s: '%s' is %sin '%s'", lhs, rhs, negate ? "" : "not ", json_string_value(v));
        return;
    }
    if ((eq = strchr(lhs, '=')) == NULL)
        fail_msg("case %s: check '%s' has neither '=' nor '~'", name, check);
    *eq = '\0';
    rhs = eq + 1;
    if (strcmp(lhs, "next") == 0 || strcmp(lhs, "due") == 0 || strcmp(lhs, "overdue") == 0) {
        if ((find_item(out, lhs, rhs) != NULL) == negate)
            complain(name, "%s %s in %s", rhs, negate ? "is" : "is not", lhs);
    } else if (strcmp(lhs, "reported") == 0) {
        dot = strchr(rhs, '.');
        if (dot == NULL)
            fail_msg("case %s: reported=BUCKET.V:N", name);
        *dot = '\0';
        item = find_item(out, rhs, dot + 1);
        if (item == NULL)
            complain(name, "reported: no %s in %s", dot + 1, rhs);
        else if (json_is_true(json_object_get(item, "reported")) == negate)
            complain(name, "%s in %s is %sflagged reported", dot + 1, rhs, negate ? "" : "not ");
    } else if (strcmp(lhs, "complete") == 0 || strcmp(lhs, "notrec") == 0) {
        if ((find_series(out, lhs[0] == 'c' ? "complete" : "not_recommended", rhs) != NULL) == negate)
            complain(name, "series %s %s %s", rhs, negate ? "is" : "is not", lhs);
    } else if (strcmp(lhs, "invalid") == 0) {
        if ((find_invalid(out, rhs) != NULL) == negate)
            complain(name, "dose %s %s invalid", rhs, negate ? "is" : "is not");
    } else if (strcmp(lhs, "notrec#") == 0 || strcmp(lhs, "invalid#") == 0 || strcmp(lhs, "complete#") == 0) {
        size_t n = list_size(out, lhs[0] == 'n' ? "not_recommended" : lhs[0] == 'i' ? "invalid_doses" : "complete");

        if (n != (size_t)atoi(rhs))
            complain(name, "%s is %zu, expected %s", lhs, n, rhs);
    } else if ((dot = strchr(lhs, '.')) != NULL && (last = strrchr(lhs, '.')) != dot) {
        /* BUCKET.V:N.FIELD=VALUE or complete.SERIES.FIELD=VALUE */
        *dot = '\0';
        *last = '\0';
        item = strcmp(lhs, "complete") == 0 ? find_series(out, "complete", dot + 1) : find_item(out, lhs, dot + 1);
        if (item == NULL) {
            complain(name, "%s: no %s", lhs, dot + 1);
            return;
        }
        field_text(json_object_get(item, last + 1), got, sizeof(got));
        if (strcmp(got, rhs) != 0)
            complain(name, "%s %s %s is %s, expected %s", lhs, dot + 1, last + 1, got, rhs);
    } else {
        fail_msg("case %s: unknown check '%s'", name, check);
    }
}

/* A history from "code@date[?],..." ("-" for none). */
static json_t *history_of(const char *spec)
{
    json_t *h = json_array();
    char copy[CASE_LINE_MAX], *tok, *save = NULL, *at;
    size_t len;

    snprintf(copy, sizeof(copy), "%s", spec);
    for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "-") == 0)
            continue;
        len = strlen(tok);
        at = strchr(tok, '@');
        if (at == NULL)
            fail_msg("bad dose '%s' in the case file", tok);
        *at = '\0';
        if (len && tok[len - 1] == '?') {
            tok[len - 1] = '\0';
            json_array_append_new(h, json_pack("{s:s, s:s, s:b}", "vaccine", tok, "date", at + 1, "documented", 0));
        } else {
            json_array_append_new(h, json_pack("{s:s, s:s}", "vaccine", tok, "date", at + 1));
        }
    }
    return h;
}

/* Run one case line (name, birth, today, sex, history, overdue, due, checks) against schedule s. */
static void run_case(const struct schedule *s, char **f)
{
    const char *name = f[0], *sex = strcmp(f[3], "-") == 0 ? NULL : f[3];
    int64_t today = day_of(f[2]);
    char want[2048], got[2048], *tok, *save = NULL;
    json_t *history = history_of(f[4]), *out;
    struct err e;

    err_clear(&e);
    out = schedule_due(s, history, day_of(f[1]), sex, today, &e);
    json_decref(history);
    if (out == NULL) {
        complain(name, "schedule_due failed: %s %s", e.code, e.message);
        return;
    }
    check_shape(name, out, today);
    sorted_spec(f[5], want, sizeof(want));
    bucket_pairs(out, "overdue", got, sizeof(got));
    if (strcmp(want, got) != 0)
        complain(name, "overdue is [%s], expected [%s]", got, want);
    sorted_spec(f[6], want, sizeof(want));
    bucket_pairs(out, "due", got, sizeof(got));
    if (strcmp(want, got) != 0)
        complain(name, "due is [%s], expected [%s]", got, want);
    for (tok = strtok_r(f[7], "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
        char *end;

        while (*tok == ' ')
            tok++;
        end = tok + strlen(tok);
        while (end > tok && end[-1] == ' ')
            *--end = '\0';
        if (*tok && strcmp(tok, "-") != 0)
            run_check(name, out, tok);
    }
    json_decref(out);
}

static void test_cases(void **state)
{
    char path[2048], line[CASE_LINE_MAX];
    struct schedule *s;
    int lineno = 0, ncases = 0;
    struct err e;
    FILE *f;

    (void)state;
    err_clear(&e);
    s = schedule_builtin(&e);
    if (s == NULL)
        fail_msg("the built-in schedule does not load: %s", e.message);
    f = tu_data_open(CASES_FILE, path, sizeof(path));
    if (f == NULL)
        fail_msg("cannot open '%s' (run from the repository root or set SANAD_TESTDATA)", path);
    case_failures = 0;
    while (fgets(line, sizeof(line), f)) {
        char *fields[8], *p = line, *nl;
        int n = 0;

        lineno++;
        if ((nl = strchr(line, '\n')) != NULL)
            *nl = '\0';
        else if (!feof(f))
            fail_msg("%s:%d: line longer than %d bytes", path, lineno, CASE_LINE_MAX);
        if (line[0] == '#' || line[0] == '\0' || strncmp(line, "name\t", 5) == 0)
            continue;
        while (n < 8) {
            fields[n++] = p;
            if ((p = strchr(p, '\t')) == NULL)
                break;
            *p++ = '\0';
        }
        if (n != 8)
            fail_msg("%s:%d: expected 8 tab-separated columns, found %d", path, lineno, n);
        run_case(s, fields);
        ncases++;
    }
    fclose(f);
    if (case_failures)
        fail_msg("%d failed checks in %s (listed above)", case_failures, path);
    if (ncases < 45)
        fail_msg("only %d cases in %s; the table must keep at least 45", ncases, path);
}

/* The shipped schedule loads, names every vaccine and series in en, ar, fr and es, and is the same
 * object on every call. */
static void test_builtin(void **state)
{
    static const char *const langs[] = { "en", "ar", "fr", "es" };
    const struct asset *a = data_file_find("/schedules/who_epi.json");
    struct schedule *s1, *s2;
    json_t *def, *item;
    const char *list;
    struct err e;
    size_t i, l;
    int k;

    (void)state;
    err_clear(&e);
    s1 = schedule_builtin(&e);
    s2 = schedule_builtin(&e);
    assert_non_null(s1);
    assert_ptr_equal(s1, s2);
    assert_string_equal(schedule_id(s1), "who_epi");
    assert_non_null(a);
    def = json_loadb((const char *)a->data, a->size, JSON_REJECT_DUPLICATES, NULL);
    assert_non_null(def);
    for (k = 0; k < 2; k++) {
        list = k ? "series" : "vaccines";
        json_array_foreach(json_object_get(def, list), i, item)
            for (l = 0; l < 4; l++)
                if (json_string_length(json_object_get(json_object_get(item, "name"), langs[l])) == 0)
                    fail_msg("%s[%zu] has no %s name", list, i, langs[l]);
    }
    for (l = 0; l < 4; l++)
        assert_true(json_string_length(json_object_get(json_object_get(def, "title"), langs[l])) > 0);
    /* loading the same definition again gives an equal schedule the caller owns */
    s2 = schedule_load(def, &e);
    assert_non_null(s2);
    assert_string_equal(schedule_version(s2), schedule_version(s1));
    schedule_free(s2);
    json_decref(def);
}

/* A small valid schedule the malformed ones are made from. */
static const char mini[] =
    "{\"format\":1,\"id\":\"mini\",\"version\":\"1\",\"title\":{\"en\":\"Mini\"},"
    " \"antigens\":[\"measles\",\"rubella\",\"mumps\"],"
    " \"vaccines\":[{\"code\":\"m\",\"name\":{\"en\":\"Measles\"},\"antigens\":[\"measles\"]},"
    "              {\"code\":\"r\",\"name\":{\"en\":\"Rubella\"},\"antigens\":[\"rubella\"]},"
    "              {\"code\":\"mr\",\"name\":{\"en\":\"MR\"},\"antigens\":[\"measles\",\"rubella\"]},"
    "              {\"code\":\"mu\",\"name\":{\"en\":\"Mumps\"},\"antigens\":[\"mumps\"]}],"
    " \"combinations\":[{\"vaccine\":\"mr\",\"replaces\":[\"m\",\"r\"]}],"
    " \"series\":["
    "  {\"id\":\"measles\",\"name\":{\"en\":\"Measles\"},\"counts\":[\"measles\"],\"give\":[{\"vaccine\":\"m\"}],"
    "   \"plans\":[{\"doses\":[{\"min_age\":\"9m\"},{\"min_interval\":\"4w\",\"recommended_age\":\"15m\"}]}]},"
    "  {\"id\":\"rubella\",\"name\":{\"en\":\"Rubella\"},\"counts\":[\"rubella\"],\"give\":[{\"vaccine\":\"r\"}],"
    "   \"plans\":[{\"doses\":[{\"min_age\":\"9m\"}]}]}]}";

/* Set (or, with value NULL, delete) the member at a dotted path ("series.0.plans.0.doses.1.min_interval";
 * numbers index arrays) of root. "" replaces nothing: the caller uses the value as the whole schedule. */
static void mutate(json_t *root, const char *path, const char *value)
{
    char copy[256], *part, *save = NULL, *next;
    json_t *node = root;

    snprintf(copy, sizeof(copy), "%s", path);
    part = strtok_r(copy, ".", &save);
    while (part) {
        next = strtok_r(NULL, ".", &save);
        if (next == NULL)
            break;
        node = json_is_array(node) ? json_array_get(node, (size_t)atoi(part)) : json_object_get(node, part);
        if (node == NULL)
            fail_msg("no %s in the mini schedule", path);
        part = next;
    }
    if (value) {
        json_t *v = json_loads(value, JSON_DECODE_ANY, NULL);

        if (v == NULL)
            fail_msg("bad test value %s", value);
        if (json_is_array(node))
            assert_int_equal(json_array_set_new(node, (size_t)atoi(part), v), 0);
        else
            assert_int_equal(json_object_set_new(node, part, v), 0);
    } else if (json_is_array(node)) {
        assert_int_equal(json_array_remove(node, (size_t)atoi(part)), 0);
    } else {
        json_object_del(node, part);
    }
}

static const struct {
    const char *path;       /* where the mini schedule is changed ("" = the value is the whole schedule) */
    const char *value;      /* JSON text; NULL deletes the member */
    const char *field;      /* the path the error must name */
    const char *message;    /* words the error must contain */
} bad_schedules[] = {
    { "", "[1, 2]", "", "must be a JSON object" },
    { "format", "2", "format", "must be 1" },
    { "id", "\"Mini Schedule\"", "id", "lowercase" },
    { "version", NULL, "version", "is required" },
    { "title", "\"Mini\"", "title", "object of texts" },
    { "title", "{\"english\":\"Mini\"}", "title", "language code" },
    { "grace_days", "30", "grace_days", "from 0 to 14" },
    { "colour", "\"blue\"", "colour", "not a key" },
    { "count_reported", "\"yes\"", "count_reported", "true or false" },
    { "antigens.1", "\"measles\"", "antigens[1]", "repeats" },
    { "vaccines", "[]", "vaccines", "list of 1 to" },
    { "vaccines.1.code", "\"m\"", "vaccines[1].code", "repeats" },
    { "vaccines.0.antigens.0", "\"smallpox\"", "vaccines[0].antigens", "not one of the schedule's" },
    { "series.0.give.0.vaccine", "\"nosuch\"", "series[0].give[0].vaccine", "one of the schedule's vaccines" },
    { "series.0.give.0.vaccine", "\"r\"", "series[0].give[0].vaccine", "lacks an antigen" },
    { "series.0.give", "[{\"vaccine\":\"m\",\"before\":\"5y\"}]", "series[0].give[0].before", "the last has none" },
    { "series.0.counts", "[\"measles\",\"measles\"]", "series[0].counts", "repeats" },
    { "series.1.id", "\"measles\"", "series[1].id", "repeats" },
    { "series.0.sex", "\"girls\"", "series[0].sex", "\"female\" or \"male\"" },
    { "series.0.first_dose", "2", "series[0].first_dose", "from 0 to 1" },
    { "series.0.max_age", "\"6m\"", "series[0].plans[0].doses[0].min_age", "before the series' max_age" },
    { "series.0.plans", "[]", "series[0].plans", "list of 1 to" },
    { "series.0.plans", "[{\"doses\":[{}]},{\"start_before\":\"5y\",\"doses\":[{}]}]", "series[0].plans[0].start_before",
      "every plan but the last" },
    { "series.0.plans", "[{\"start_before\":\"5y\",\"doses\":[{}]},{\"start_before\":\"12m\",\"doses\":[{}]}]",
      "series[0].plans[1].start_before", "later than the previous plan" },
    { "series.0.plans.0.doses.1.min_interval", "\"4 weeks\"", "series[0].plans[0].doses[1].min_interval",
      "must be a duration" },
    { "series.0.plans.0.doses.1.min_interval", "\"4x\"", "series[0].plans[0].doses[1].min_interval", "must be a duration" },
    { "series.0.plans.0.doses.1.min_interval", "\"999y\"", "series[0].plans[0].doses[1].min_interval",
      "must be a duration" },
    { "series.0.plans.0.doses.1.min_interval", NULL, "series[0].plans[0].doses[1].min_interval", "is required" },
    { "series.0.plans.0.doses.1.min_interval", "\"0d\"", "series[0].plans[0].doses[1].min_interval", "at least" },
    { "series.0.plans.0.doses.0.min_interval", "\"4w\"", "series[0].plans[0].doses[0].min_interval", "first dose" },
    { "series.0.plans.0.doses.0.recommended_age", "\"6m\"", "series[0].plans[0].doses[0].recommended_age",
      "not be before min_age" },
    { "series.0.plans.0.doses.0.overdue_age", "\"9m\"", "series[0].plans[0].doses[0].overdue_age", "after the recommended" },
    { "series.0.plans.0.doses.1.recommended_interval", "\"1w\"", "series[0].plans[0].doses[1].recommended_interval",
      "shorter than min_interval" },
    { "series.0.plans.0.doses.0.colour", "1", "series[0].plans[0].doses[0].colour", "not a key" },
    { "series.0.plans.0.doses", "[]", "series[0].plans[0].doses", "list of 1 to" },
    { "combinations.0.replaces", "[\"m\"]", "combinations[0].replaces", "list of 2 to" },
    { "combinations.0.replaces", "[\"m\",\"mu\"]", "combinations[0].replaces", "given by no series" },
    { "combinations.0.vaccine", "\"mu\"", "combinations[0].vaccine", "does not contain every antigen" },
    { "combinations.0.vaccine", "\"m\"", "combinations[0].replaces", "another of the schedule's vaccines" },
};

static void test_bad_schedules(void **state)
{
    struct schedule *s;
    struct err e;
    json_t *def;
    size_t i;

    (void)state;
    def = parse_json(mini);
    err_clear(&e);
    s = schedule_load(def, &e);
    if (s == NULL)
        fail_msg("the mini schedule does not load: %s", e.message);
    schedule_free(s);
    json_decref(def);
    for (i = 0; i < sizeof(bad_schedules) / sizeof(bad_schedules[0]); i++) {
        if (bad_schedules[i].path[0]) {
            def = parse_json(mini);
            mutate(def, bad_schedules[i].path, bad_schedules[i].value);
        } else {
            def = json_loads(bad_schedules[i].value, JSON_DECODE_ANY, NULL);
        }
        err_clear(&e);
        s = schedule_load(def, &e);
        if (s != NULL)
            fail_msg("bad schedule %zu (%s) accepted", i, bad_schedules[i].path);
        if (e.kind != ERR_UNPROCESSABLE || strcmp(e.code, "invalid_schedule") != 0
            || strncmp(e.field, bad_schedules[i].field, sizeof(e.field) - 1) != 0     /* e.field may be cut */
            || strstr(e.message, bad_schedules[i].message) == NULL)
            fail_msg("bad schedule %zu: got %s field '%s' '%s', expected field '%s' and '%s'", i, e.code, e.field,
                     e.message, bad_schedules[i].field, bad_schedules[i].message);
        if (strncmp(e.message, bad_schedules[i].field[0] ? bad_schedules[i].field : "schedule",
                    strlen(bad_schedules[i].field[0] ? bad_schedules[i].field : "schedule")) != 0)
            fail_msg("bad schedule %zu: the message '%s' does not start with the path", i, e.message);
        json_decref(def);
    }
    assert_true(i >= 10);
    err_clear(&e);
    assert_null(schedule_load(NULL, &e));
    assert_string_equal(e.code, "invalid_schedule");
}

static void test_bad_history(void **state)
{
    static const struct {
        const char *history;
        const char *field;
    } bad[] = {
        { "{}", "history" },
        { "[1]", "history[0]" },
        { "[{\"vaccine\":\"bcg\"}]", "history[0].date" },
        { "[{\"vaccine\":\"bcg\",\"date\":\"2025-02-30\"}]", "history[0].date" },
        { "[{\"vaccine\":\"bcg\",\"date\":\"01/02/2025\"}]", "history[0].date" },
        { "[{\"vaccine\":\"BCG\",\"date\":\"2025-01-02\"}]", "history[0].vaccine" },
        { "[{\"date\":\"2025-01-02\"}]", "history[0].vaccine" },
        { "[{\"vaccine\":\"bcg\",\"date\":\"2025-01-02\",\"dose\":\"1\"}]", "history[0].dose" },
        { "[{\"vaccine\":\"bcg\",\"date\":\"2025-01-02\",\"dose\":99}]", "history[0].dose" },
        { "[{\"vaccine\":\"bcg\",\"date\":\"2025-01-02\",\"documented\":\"yes\"}]", "history[0].documented" },
        { "[{\"vaccine\":\"bcg\",\"date\":\"2025-01-02\"},{\"vaccine\":\"bcg\",\"date\":\"2025-01-02\",\"lot\":\"A1\"}]",
          "history[1].lot" },
    };
    struct schedule *s;
    json_t *h, *out;
    struct err e;
    size_t i;
    char many[SCHEDULE_HISTORY_MAX * 48 + 64];
    size_t o = 0;

    (void)state;
    s = schedule_builtin(&e);
    assert_non_null(s);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        h = json_loads(bad[i].history, JSON_DECODE_ANY, NULL);
        assert_non_null(h);
        err_clear(&e);
        out = schedule_due(s, h, day_of("2025-01-01"), "female", day_of("2025-03-01"), &e);
        if (out != NULL || strcmp(e.code, "invalid_history") != 0 || strcmp(e.field, bad[i].field) != 0)
            fail_msg("history %zu: expected invalid_history at %s, got %s at '%s': %s", i, bad[i].field, e.code, e.field,
                     e.message);
        assert_int_equal(e.kind, ERR_UNPROCESSABLE);
        json_decref(h);
    }
    /* too many doses */
    o += (size_t)snprintf(many + o, sizeof(many) - o, "[");
    for (i = 0; i <= SCHEDULE_HISTORY_MAX; i++)
        o += (size_t)snprintf(many + o, sizeof(many) - o, "%s{\"vaccine\":\"bcg\",\"date\":\"2025-01-02\"}", i ? "," : "");
    snprintf(many + o, sizeof(many) - o, "]");
    h = parse_json(many);
    err_clear(&e);
    assert_null(schedule_due(s, h, day_of("2025-01-01"), NULL, day_of("2025-03-01"), &e));
    assert_string_equal(e.code, "invalid_history");
    json_decref(h);
    /* birth after today, and more than 150 years before it */
    err_clear(&e);
    assert_null(schedule_due(s, NULL, day_of("2025-03-02"), NULL, day_of("2025-03-01"), &e));
    assert_string_equal(e.code, "invalid_birth");
    err_clear(&e);
    assert_null(schedule_due(s, NULL, day_of("1870-01-01"), NULL, day_of("2025-03-01"), &e));
    assert_string_equal(e.code, "invalid_birth");
    err_clear(&e);
    assert_null(schedule_due(NULL, NULL, day_of("2020-01-01"), NULL, day_of("2025-03-01"), &e));
    assert_int_equal(e.kind, ERR_INTERNAL);
    /* a null history is an empty one; a born-today 150-year span boundary still answers */
    out = schedule_due(s, json_null(), day_of("2025-03-01"), NULL, day_of("2025-03-01"), &e);
    assert_non_null(out);
    assert_int_equal(json_array_size(json_object_get(out, "due")), 3);
    json_decref(out);
    out = schedule_due(s, NULL, day_of("1880-06-01"), "male", day_of("2025-03-01"), &e);
    assert_non_null(out);
    json_decref(out);
}

/* A site's national schedule in the same format: hexavalent at 2, 4 and 6 months, rotavirus with the
 * older limits (first dose before 15 weeks, none from 32 weeks), PCV 2p+1, MMR at 12 and 18 months. */
static const char national[] =
    "{\"format\":1,\"id\":\"national_sample\",\"version\":\"2025-01\","
    " \"title\":{\"en\":\"Sample national schedule\",\"fr\":\"Calendrier national (exemple)\"},"
    " \"grace_days\":4,\"overdue_after_days\":30,"
    " \"antigens\":[\"diphtheria\",\"tetanus\",\"pertussis\",\"hib\",\"hepatitis_b\",\"polio_inactivated\","
    "              \"rotavirus\",\"measles\",\"mumps\",\"rubella\",\"pneumococcus\"],"
    " \"vaccines\":["
    "  {\"code\":\"hexa\",\"name\":{\"en\":\"DTaP-IPV-HepB-Hib\"},"
    "   \"antigens\":[\"diphtheria\",\"tetanus\",\"pertussis\",\"polio_inactivated\",\"hepatitis_b\",\"hib\"]},"
    "  {\"code\":\"dtap\",\"name\":{\"en\":\"DTaP\"},\"antigens\":[\"diphtheria\",\"tetanus\",\"pertussis\"]},"
    "  {\"code\":\"hib\",\"name\":{\"en\":\"Hib\"},\"antigens\":[\"hib\"]},"
    "  {\"code\":\"hepb\",\"name\":{\"en\":\"Hepatitis B\"},\"antigens\":[\"hepatitis_b\"]},"
    "  {\"code\":\"ipv\",\"name\":{\"en\":\"IPV\"},\"antigens\":[\"polio_inactivated\"]},"
    "  {\"code\":\"rota\",\"name\":{\"en\":\"Rotavirus\"},\"antigens\":[\"rotavirus\"]},"
    "  {\"code\":\"pcv\",\"name\":{\"en\":\"PCV\"},\"antigens\":[\"pneumococcus\"]},"
    "  {\"code\":\"mmr\",\"name\":{\"en\":\"MMR\"},\"antigens\":[\"measles\",\"mumps\",\"rubella\"]}],"
    " \"combinations\":[{\"vaccine\":\"hexa\",\"replaces\":[\"dtap\",\"hib\",\"hepb\",\"ipv\"]}],"
    " \"series\":["
    "  {\"id\":\"dtp\",\"name\":{\"en\":\"DTP\"},\"counts\":[\"tetanus\"],\"give\":[{\"vaccine\":\"dtap\"}],"
    "   \"plans\":[{\"doses\":[{\"min_age\":\"6w\",\"recommended_age\":\"2m\"},"
    "     {\"min_interval\":\"4w\",\"recommended_age\":\"4m\"},{\"min_interval\":\"4w\",\"recommended_age\":\"6m\"}]}]},"
    "  {\"id\":\"hib\",\"name\":{\"en\":\"Hib\"},\"counts\":[\"hib\"],\"give\":[{\"vaccine\":\"hib\"}],\"max_age\":\"5y\","
    "   \"plans\":[{\"doses\":[{\"min_age\":\"6w\",\"recommended_age\":\"2m\"},"
    "     {\"min_interval\":\"4w\",\"recommended_age\":\"4m\"},{\"min_interval\":\"4w\",\"recommended_age\":\"6m\"}]}]},"
    "  {\"id\":\"hepb\",\"name\":{\"en\":\"Hepatitis B\"},\"counts\":[\"hepatitis_b\"],\"give\":[{\"vaccine\":\"hepb\"}],"
    "   \"plans\":[{\"doses\":[{\"min_age\":\"6w\",\"recommended_age\":\"2m\"},"
    "     {\"min_interval\":\"4w\",\"recommended_age\":\"4m\"},{\"min_interval\":\"4w\",\"recommended_age\":\"6m\"}]}]},"
    "  {\"id\":\"ipv\",\"name\":{\"en\":\"Polio (IPV)\"},\"counts\":[\"polio_inactivated\"],\"give\":[{\"vaccine\":\"ipv\"}],"
    "   \"plans\":[{\"doses\":[{\"min_age\":\"6w\",\"recommended_age\":\"2m\"},"
    "     {\"min_interval\":\"4w\",\"recommended_age\":\"4m\"},{\"min_interval\":\"4w\",\"recommended_age\":\"6m\"}]}]},"
    "  {\"id\":\"rota\",\"name\":{\"en\":\"Rotavirus\"},\"counts\":[\"rotavirus\"],\"give\":[{\"vaccine\":\"rota\"}],"
    "   \"max_age\":\"32w\",\"plans\":[{\"start_before\":\"15w\",\"doses\":[{\"min_age\":\"6w\",\"recommended_age\":\"2m\"},"
    "     {\"min_interval\":\"4w\",\"recommended_age\":\"4m\"}]}]},"
    "  {\"id\":\"pcv\",\"name\":{\"en\":\"PCV\"},\"counts\":[\"pneumococcus\"],\"give\":[{\"vaccine\":\"pcv\"}],\"max_age\":\"5y\","
    "   \"plans\":[{\"start_before\":\"12m\",\"label\":\"2p+1\",\"doses\":[{\"min_age\":\"6w\",\"recommended_age\":\"2m\"},"
    "     {\"min_interval\":\"8w\",\"recommended_age\":\"4m\"},"
    "     {\"label\":\"booster\",\"min_age\":\"9m\",\"min_interval\":\"8w\",\"recommended_age\":\"12m\"}]},"
    "    {\"start_before\":\"5y\",\"doses\":[{\"min_age\":\"6w\"}]}]},"
    "  {\"id\":\"measles\",\"name\":{\"en\":\"Measles\"},\"counts\":[\"measles\"],\"give\":[{\"vaccine\":\"mmr\"}],"
    "   \"plans\":[{\"doses\":[{\"min_age\":\"12m\"},{\"min_interval\":\"4w\",\"recommended_age\":\"18m\"}]}]},"
    "  {\"id\":\"rubella\",\"name\":{\"en\":\"Rubella\"},\"counts\":[\"rubella\"],\"give\":[{\"vaccine\":\"mmr\"}],"
    "   \"plans\":[{\"doses\":[{\"min_age\":\"12m\"}]}]}]}";

static json_t *plan_for(const struct schedule *s, const char *history, const char *birth, const char *today)
{
    json_t *h = parse_json(history), *out;
    struct err e;

    err_clear(&e);
    out = schedule_due(s, h, day_of(birth), "female", day_of(today), &e);
    if (out == NULL)
        fail_msg("schedule_due: %s", e.message);
    json_decref(h);
    return out;
}

/* Expected answers worked by hand from the national table above (and from WHO's for the contrasts). */
static void test_national_schedule(void **state)
{
    struct schedule *nat, *who;
    char got[1024];
    json_t *def = parse_json(national), *out;
    struct err e;

    (void)state;
    err_clear(&e);
    nat = schedule_load(def, &e);
    json_decref(def);
    if (nat == NULL)
        fail_msg("the national schedule does not load: %s", e.message);
    who = schedule_builtin(&e);
    assert_string_equal(schedule_id(nat), "national_sample");

    /* 2 months, nothing given: DTaP, Hib, HepB and IPV dose 1 are due together (recommended at 2 months =
     * today) and given as the hexavalent; rotavirus and PCV 1 due. */
    out = plan_for(nat, "[]", "2025-01-01", "2025-03-01");
    assert_string_equal(json_string_value(json_object_get(out, "schedule")), "national_sample");
    bucket_pairs(out, "due", got, sizeof(got));
    assert_string_equal(got, "hexa:1 pcv:1 rota:1");
    bucket_pairs(out, "overdue", got, sizeof(got));
    assert_string_equal(got, "-");
    assert_non_null(find_item(out, "next", "hexa:2"));
    json_decref(out);

    /* 11 months with the 2-4-6-month doses: MMR is not due before 12 months here (2025-01-01), while WHO's
     * schedule has MR overdue since 9 months (+28 days). PCV booster: from 9 months and 8 weeks after dose
     * 2 (2024-10-01), recommended at 12 months. */
    out = plan_for(nat,
                   "[{\"vaccine\":\"hexa\",\"date\":\"2024-03-01\"},{\"vaccine\":\"hexa\",\"date\":\"2024-05-01\"},"
                   " {\"vaccine\":\"hexa\",\"date\":\"2024-07-01\"},{\"vaccine\":\"rota\",\"date\":\"2024-03-01\"},"
                   " {\"vaccine\":\"rota\",\"date\":\"2024-05-01\"},{\"vaccine\":\"pcv\",\"date\":\"2024-03-01\"},"
                   " {\"vaccine\":\"pcv\",\"date\":\"2024-05-01\"}]",
                   "2024-01-01", "2024-12-01");
    bucket_pairs(out, "due", got, sizeof(got));
    assert_string_equal(got, "-");
    bucket_pairs(out, "overdue", got, sizeof(got));
    assert_string_equal(got, "-");
    assert_string_equal(json_string_value(json_object_get(find_item(out, "next", "mmr:1"), "recommended")), "2025-01-01");
    assert_string_equal(json_string_value(json_object_get(find_item(out, "next", "pcv:3"), "earliest")), "2024-10-01");
    assert_string_equal(json_string_value(json_object_get(find_item(out, "next", "pcv:3"), "recommended")), "2025-01-01");
    json_decref(out);
    out = plan_for(who,
                   "[{\"vaccine\":\"dtap_ipv_hepb_hib\",\"date\":\"2024-03-01\"},"
                   " {\"vaccine\":\"dtap_ipv_hepb_hib\",\"date\":\"2024-05-01\"},"
                   " {\"vaccine\":\"dtap_ipv_hepb_hib\",\"date\":\"2024-07-01\"}]",
                   "2024-01-01", "2024-12-01");
    assert_non_null(find_item(out, "overdue", "mr:1"));
    json_decref(out);

    /* 15 weeks and 4 days with no rotavirus: too late to start here (before 15 weeks = 2025-04-16); WHO
     * still gives dose 1 (overdue). */
    out = plan_for(nat, "[]", "2025-01-01", "2025-04-20");
    assert_non_null(find_series(out, "not_recommended", "rota"));
    json_decref(out);
    out = plan_for(who, "[]", "2025-01-01", "2025-04-20");
    assert_non_null(find_item(out, "overdue", "rota:1"));
    json_decref(out);

    /* Rotavirus dose 1 at 14 weeks, seen at 32 weeks (2025-08-13): no dose from 32 weeks, so dose 2 is not
     * recommended any more. */
    out = plan_for(nat, "[{\"vaccine\":\"rota\",\"date\":\"2025-04-10\"}]", "2025-01-01", "2025-08-13");
    assert_non_null(find_series(out, "not_recommended", "rota"));
    assert_null(find_item(out, "overdue", "rota:2"));
    json_decref(out);

    /* MMR 1 at 12 months, seen at 16 months: MMR 2 recommended at 18 months (2025-07-01); rubella is done. */
    out = plan_for(nat, "[{\"vaccine\":\"mmr\",\"date\":\"2025-01-01\"}]", "2024-01-01", "2025-05-01");
    assert_string_equal(json_string_value(json_object_get(find_item(out, "next", "mmr:2"), "recommended")), "2025-07-01");
    assert_non_null(find_series(out, "complete", "rubella"));
    json_decref(out);
    schedule_free(nat);
}

/* Reported doses count by default; a schedule with "count_reported": false counts documented doses only.
 * Mini schedule, born 2020-01-01, seen 2025-01-01, a measles dose at 12 months reported without a card:
 * counted, measles 2 (recommended at 15 months) and rubella 1 (9 months) are overdue, given together as
 * MR (the combination of m and r), numbered as measles dose 2 and flagged reported. Not counted, measles 1
 * and rubella 1 are overdue as MR dose 1 and the reported dose is invalid. */
static void test_reported_policy(void **state)
{
    const char *history = "[{\"vaccine\":\"m\",\"date\":\"2021-01-01\",\"documented\":false}]";
    struct schedule *s;
    json_t *def, *out, *item;
    struct err e;

    (void)state;
    def = parse_json(mini);
    err_clear(&e);
    s = schedule_load(def, &e);
    assert_non_null(s);
    out = plan_for(s, history, "2020-01-01", "2025-01-01");
    item = find_item(out, "overdue", "mr:2");
    assert_non_null(item);
    assert_true(json_is_true(json_object_get(item, "reported")));
    assert_int_equal(json_array_size(json_object_get(item, "covers")), 2);
    assert_int_equal(json_array_size(json_object_get(out, "invalid_doses")), 0);
    json_decref(out);
    schedule_free(s);

    json_object_set_new(def, "count_reported", json_false());
    s = schedule_load(def, &e);
    assert_non_null(s);
    out = plan_for(s, history, "2020-01-01", "2025-01-01");
    assert_non_null(find_item(out, "overdue", "mr:1"));
    assert_non_null(find_invalid(out, "m@2021-01-01"));
    assert_non_null(strstr(json_string_value(json_object_get(find_invalid(out, "m@2021-01-01"), "reason")),
                           "documented doses only"));
    json_decref(out);
    schedule_free(s);
    json_decref(def);
}

static void *builtin_thread(void *arg)
{
    struct err e;

    (void)arg;
    return schedule_builtin(&e);
}

/* schedule_builtin() parses once, whichever thread asks first. */
static void test_builtin_threads(void **state)
{
    pthread_t t[4];
    void *got[4];
    int i;

    (void)state;
    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, builtin_thread, NULL), 0);
    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], &got[i]), 0);
    for (i = 1; i < 4; i++)
        assert_ptr_equal(got[i], got[0]);
    assert_non_null(got[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_threads),
        cmocka_unit_test(test_builtin),
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_bad_schedules),
        cmocka_unit_test(test_bad_history),
        cmocka_unit_test(test_national_schedule),
        cmocka_unit_test(test_reported_policy),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
