/* test_patients.c — unit tests of the patient registry (services/patients.c): registration rules, changes,
 * tombstones, site scoping, identifiers, phones and birth dates, browsing and filters, CSV-style import,
 * export, registration fields, and search quality on the variant table tests/unit/name_variants.tsv
 * (the right person in the top 5 for >= 95 % of the pairs that are one person; different people not
 * offered as duplicates for >= 90 % of the pairs that are not); duplicates among hundreds of namesakes
 * (the birth-year index, misspelt words), result pages, the rebuilt index, demo data. */
#include "testutil.h"

#include <sqlite3.h>

#include "services/audit.h"
#include "services/demo.h"
#include "services/patients.h"
#include "services/regfields.h"
#include "store/sites.h"

struct fixture {
    char *dir;
    struct db *db;
    struct caller who;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct err e;

    err_clear(&e);
    f->db = tu_node(&f->dir);
    caller_local(&f->who, "test");
    if (caller_local_sites(f->db, &f->who, NULL, &e) < 0)
        fail_msg("sites: %s", e.message);
    assert_int_equal(f->who.nsites, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    db_close(f->db);
    tu_remove_dir(f->dir);
    free(f);
    return 0;
}

/* Create from a JSON text; fails the test when refused. */
static json_t *create_ok(struct fixture *f, const char *text)
{
    json_t *in = json_loads(text, 0, NULL), *out;
    struct err e;

    assert_non_null(in);
    err_clear(&e);
    out = patients_create(f->db, &f->who, in, &e);
    json_decref(in);
    if (out == NULL)
        fail_msg("create %s: %s (%s)", text, e.message, e.code);
    return out;
}

/* Create from a JSON text that must be refused with `code` (and field, when given). */
static void create_refused(struct fixture *f, const char *text, const char *code, const char *field)
{
    json_t *in = json_loads(text, 0, NULL), *out;
    struct err e;

    assert_non_null(in);
    err_clear(&e);
    out = patients_create(f->db, &f->who, in, &e);
    json_decref(in);
    if (out != NULL)
        fail_msg("create %s was accepted; expected %s", text, code);
    assert_string_equal(e.code, code);
    if (field)
        assert_string_equal(e.field, field);
}

static json_t *search(struct fixture *f, const char *q, const char *extra_sex, int64_t limit)
{
    struct patient_query pq = { 0 };
    struct err e;
    json_t *out;

    err_clear(&e);
    pq.q = q;
    pq.sex = extra_sex;
    pq.limit = limit;
    out = patients_search(f->db, &f->who, &pq, &e);
    if (out == NULL)
        fail_msg("search '%s': %s", q ? q : "", e.message);
    return out;
}

static void test_create_normalises_and_reads_back(void **state)
{
    struct fixture *f = *state;
    json_t *p = create_ok(f, "{\"given_name\":\"  Fatima \",\"family_name\":\"Al-Hassan\",\"name_original\":\"فاطمة الحسن\","
                             "\"sex\":\"female\",\"birth_date\":\"1990-05\",\"phones\":[\"00963 (955) 123-456\"],"
                             "\"languages\":[\"ar\",\"ku\"],\"nationality\":\"SY\","
                             "\"identifiers\":{\"unhcr\":\"123-45C67890\"}}");
    const char *id = json_string_value(json_object_get(p, "id"));
    struct err e;
    json_t *got;

    assert_true(id_valid(id));
    assert_string_equal(json_string_value(json_object_get(p, "given_name")), "Fatima");
    assert_string_equal(json_string_value(json_object_get(p, "birth_date")), "1990-05");
    assert_string_equal(json_string_value(json_object_get(p, "birth_precision")), "month");
    assert_string_equal(json_string_value(json_array_get(json_object_get(p, "phones"), 0)), "+963955123456");
    assert_string_equal(json_string_value(json_object_get(p, "site_id")), f->who.sites[0]);
    err_clear(&e);
    got = patients_get(f->db, &f->who, id, &e);
    assert_non_null(got);
    assert_true(json_equal(got, p));
    json_decref(got);
    json_decref(p);
}

static void test_create_rules(void **state)
{
    struct fixture *f = *state;

    create_refused(f, "{\"sex\":\"female\"}", "missing_name", "given_name");
    create_refused(f, "{\"given_name\":\"A\",\"sex\":\"f\"}", "invalid_sex", "sex");
    create_refused(f, "{\"given_name\":\"A\",\"birth_date\":\"2999-01-01\"}", "invalid_date", "birth_date");
    create_refused(f, "{\"given_name\":\"A\",\"birth_date\":\"1990-02-30\"}", "invalid_date", "birth_date");
    create_refused(f, "{\"given_name\":\"A\",\"birth_date\":\"1990\",\"age_years\":3}", "conflicting_fields", NULL);
    create_refused(f, "{\"given_name\":\"A\",\"age_years\":300}", "invalid_age", "age_years");
    create_refused(f, "{\"given_name\":\"A\",\"phones\":[\"12\"]}", "invalid_phone", "phones");
    create_refused(f, "{\"given_name\":\"A\",\"nationality\":\"syria\"}", "invalid_nationality", "nationality");
    create_refused(f, "{\"given_name\":\"A\",\"languages\":[\"Arabic\"]}", "invalid_language", "languages");
    create_refused(f, "{\"given_name\":\"A\",\"identifiers\":{\"ration\":\"1\"}}", "unknown_identifier_type",
                   "identifiers.ration");
    create_refused(f, "{\"given_name\":\"A\",\"identifiers\":{\"unhcr\":\"--\"}}", "invalid_identifier",
                   "identifiers.unhcr");
    create_refused(f, "{\"given_name\":\"A\",\"custom\":{\"block\":\"7\"}}", "unknown_field", "custom.block");
    /* a site this node does not have, and one it has but the caller does not belong to */
    create_refused(f, "{\"given_name\":\"A\",\"site_id\":\"01a221f5-180c-7b0b-bebc-374b2f36b55d\"}",
                   "unknown_site", "site_id");
    {
        struct caller outsider = f->who;

        outsider.nsites = 0;
        f->who.nsites = 1;
        {
            json_t *in = json_pack("{s:s,s:s}", "given_name", "A", "site_id", f->who.sites[0]), *out;
            struct err e;

            err_clear(&e);
            out = patients_create(f->db, &outsider, in, &e);
            assert_null(out);
            assert_string_equal(e.code, "site_not_allowed");
            json_decref(in);
        }
    }
}

static void test_age_gives_estimated_birth_date(void **state)
{
    struct fixture *f = *state;
    json_t *p = create_ok(f, "{\"given_name\":\"Omar\",\"age_years\":30,\"age_on\":\"2020-06-15\"}");

    assert_string_equal(json_string_value(json_object_get(p, "birth_date")), "1990-06-15");
    assert_string_equal(json_string_value(json_object_get(p, "birth_precision")), "estimated");
    json_decref(p);
}

static void test_identifier_unique_per_type(void **state)
{
    struct fixture *f = *state;
    json_t *p = create_ok(f, "{\"given_name\":\"A\",\"identifiers\":{\"passport\":\"N 123-456\"}}");

    /* the same number written differently is the same identifier */
    create_refused(f, "{\"given_name\":\"B\",\"identifiers\":{\"passport\":\"n123456\"}}", "identifier_taken", NULL);
    /* under another type it is another identifier */
    json_decref(create_ok(f, "{\"given_name\":\"B\",\"identifiers\":{\"national_id\":\"N123456\"}}"));
    json_decref(p);
}

static void test_update_changes_only_given_fields(void **state)
{
    struct fixture *f = *state;
    json_t *p = create_ok(f, "{\"given_name\":\"Zebulon\",\"family_name\":\"Quixote\",\"camp\":\"Azraq\"}");
    const char *id = json_string_value(json_object_get(p, "id"));
    json_t *in = json_pack("{s:s,s:n}", "given_name", "Xavier", "camp"), *out, *hits;
    struct err e;

    err_clear(&e);
    out = patients_update(f->db, &f->who, id, in, &e);
    assert_non_null(out);
    assert_string_equal(json_string_value(json_object_get(out, "given_name")), "Xavier");
    assert_string_equal(json_string_value(json_object_get(out, "family_name")), "Quixote");
    assert_true(json_is_null(json_object_get(out, "camp")));
    /* the search index follows: the old name is gone, the new one is found */
    hits = search(f, "Zebulon", NULL, 10);
    assert_int_equal(json_array_size(json_object_get(hits, "items")), 0);
    json_decref(hits);
    hits = search(f, "xavier quixote", NULL, 10);
    assert_int_equal(json_array_size(json_object_get(hits, "items")), 1);
    json_decref(hits);
    json_decref(in);
    json_decref(out);
    json_decref(p);
}

static void test_delete_is_a_tombstone(void **state)
{
    struct fixture *f = *state;
    json_t *p = create_ok(f, "{\"given_name\":\"Ephemeral\",\"identifiers\":{\"iom\":\"IOM-1\"}}"), *hits;
    const char *id = json_string_value(json_object_get(p, "id"));
    struct err e;

    err_clear(&e);
    assert_int_equal(patients_delete(f->db, &f->who, id, &e), 0);
    assert_null(patients_get(f->db, &f->who, id, &e));
    assert_string_equal(e.code, "patient_not_found");
    hits = search(f, "Ephemeral", NULL, 10);
    assert_int_equal(json_array_size(json_object_get(hits, "items")), 0);
    json_decref(hits);
    /* a deleted record no longer holds its identifier */
    json_decref(create_ok(f, "{\"given_name\":\"Next\",\"identifiers\":{\"iom\":\"IOM-1\"}}"));
    json_decref(p);
}

static void test_other_sites_are_invisible(void **state)
{
    struct fixture *f = *state;
    json_t *p = create_ok(f, "{\"given_name\":\"Hidden\"}"), *hits;
    const char *id = json_string_value(json_object_get(p, "id"));
    struct caller stranger = f->who;
    struct err e;

    stranger.nsites = 0;
    err_clear(&e);
    assert_null(patients_get(f->db, &stranger, id, &e));
    assert_string_equal(e.code, "patient_not_found");
    f->who.nsites = 0;
    hits = search(f, "Hidden", NULL, 10);
    assert_int_equal(json_array_size(json_object_get(hits, "items")), 0);
    json_decref(hits);
    f->who.nsites = 1;
    json_decref(p);
}

static void test_search_by_identifier_phone_and_filters(void **state)
{
    struct fixture *f = *state;
    json_t *hits;

    json_decref(create_ok(f, "{\"given_name\":\"Amina\",\"sex\":\"female\",\"birth_date\":\"2001\","
                             "\"phones\":[\"+252 61 555 0101\"],\"identifiers\":{\"unhcr\":\"KEN-22C00001\"}}"));
    json_decref(create_ok(f, "{\"given_name\":\"Amin\",\"sex\":\"male\",\"birth_date\":\"1970-03-03\"}"));
    hits = search(f, "ken 22c00001", NULL, 10);
    assert_int_equal(json_array_size(json_object_get(hits, "items")), 1);
    json_decref(hits);
    hits = search(f, "061 555 0101", NULL, 10);
    assert_int_equal(json_array_size(json_object_get(hits, "items")), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(hits, "items"), 0),
                                                          "given_name")), "Amina");
    json_decref(hits);
    hits = search(f, "amin", "male", 10);
    assert_int_equal(json_array_size(json_object_get(hits, "items")), 1);
    json_decref(hits);
    {
        struct patient_query q = { 0 };
        struct err e;

        err_clear(&e);
        q.q = "amin";
        q.born_from = "2000";
        q.born_to = "2002-06";
        hits = patients_search(f->db, &f->who, &q, &e);
        assert_non_null(hits);
        assert_int_equal(json_array_size(json_object_get(hits, "items")), 1);
        json_decref(hits);
        q.born_from = "20x0";
        assert_null(patients_search(f->db, &f->who, &q, &e));
        assert_string_equal(e.code, "invalid_date");
    }
}

static void test_browse_pages(void **state)
{
    struct fixture *f = *state;
    struct patient_query q = { 0 };
    const char *next;
    json_t *page;
    struct err e;
    int i, seen = 0, pages = 0;
    char cursor[64] = "";

    for (i = 0; i < 7; i++)
        json_decref(create_ok(f, "{\"given_name\":\"Page\"}"));
    q.limit = 3;
    do {
        err_clear(&e);
        q.cursor = cursor[0] ? cursor : NULL;
        page = patients_search(f->db, &f->who, &q, &e);
        assert_non_null(page);
        seen += (int)json_array_size(json_object_get(page, "items"));
        next = json_string_value(json_object_get(page, "next"));
        snprintf(cursor, sizeof(cursor), "%s", next ? next : "");
        json_decref(page);
        pages++;
    } while (cursor[0] && pages < 10);
    assert_int_equal(seen, 7);
    assert_int_equal(pages, 3);
}

static void test_import_all_or_nothing(void **state)
{
    struct fixture *f = *state;
    json_t *rows = json_loads("[{\"given_name\":\"One\"},{\"given_name\":\"Two\",\"sex\":\"x\"},"
                              "{\"given_name\":\"Three\",\"identifiers\":{\"unhcr\":\"U-1\"}},"
                              "{\"given_name\":\"Four\",\"identifiers\":{\"unhcr\":\"U 1\"}}]", 0, NULL);
    json_t *report, *hits;
    struct err e;

    err_clear(&e);
    report = patients_import(f->db, &f->who, rows, 2, 0, &e);
    assert_non_null(report);
    assert_string_equal(e.code, "import_failed");
    /* row 3 of the file (index 1) has a bad sex; row 5 repeats row 4's identifier */
    assert_int_equal(json_array_size(json_object_get(report, "errors")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(report, "errors"), 0), "row")), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(report, "errors"), 0), "field")),
                        "sex");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(json_object_get(report, "errors"), 1), "row")), 5);
    json_decref(report);
    hits = search(f, NULL, NULL, 100);
    assert_int_equal(json_array_size(json_object_get(hits, "items")), 0);
    json_decref(hits);

    err_clear(&e);
    report = patients_import(f->db, &f->who, rows, 2, 1, &e);
    assert_non_null(report);
    assert_int_equal(e.kind, ERR_NONE);
    assert_int_equal(json_integer_value(json_object_get(report, "created")), 2);
    assert_int_equal(json_integer_value(json_object_get(report, "skipped")), 2);
    json_decref(report);
    hits = search(f, NULL, NULL, 100);
    assert_int_equal(json_array_size(json_object_get(hits, "items")), 2);
    json_decref(hits);
    json_decref(rows);
}

static int count_one(const json_t *p, void *ctx)
{
    (void)p;
    (*(int *)ctx)++;
    return 0;
}

static void test_export_sees_live_patients(void **state)
{
    struct fixture *f = *state;
    json_t *p = create_ok(f, "{\"given_name\":\"Gone\"}");
    struct err e;
    int n = 0;

    json_decref(create_ok(f, "{\"given_name\":\"Stays\"}"));
    err_clear(&e);
    assert_int_equal(patients_delete(f->db, &f->who, json_string_value(json_object_get(p, "id")), &e), 0);
    assert_int_equal(patients_export(f->db, &f->who, count_one, &n, &e), 0);
    assert_int_equal(n, 1);
    json_decref(p);
}

static void test_registration_fields(void **state)
{
    struct fixture *f = *state;
    const char *site = f->who.sites[0];
    json_t *bad = json_loads("{\"fields\":[{\"key\":\"Block\",\"type\":\"text\",\"label\":{\"en\":\"Block\"}}]}", 0, NULL);
    json_t *good = json_loads("{\"identifier_types\":[\"ration_card\"],\"fields\":["
                              "{\"key\":\"block\",\"type\":\"select\",\"required\":true,\"label\":{\"en\":\"Block\",\"ar\":\"قطاع\"},"
                              "\"options\":[{\"code\":\"a\",\"label\":{\"en\":\"A\"}},{\"code\":\"b\",\"label\":{\"en\":\"B\"}}]},"
                              "{\"key\":\"household\",\"type\":\"number\",\"min\":1,\"max\":30,\"label\":{\"en\":\"Household\"}},"
                              "{\"key\":\"tent\",\"type\":\"text\",\"searchable\":true,\"label\":{\"en\":\"Tent\"}}]}", 0, NULL);
    json_t *out, *hits;
    struct err e;

    err_clear(&e);
    assert_null(regfields_put(f->db, &f->who, site, bad, &e));
    assert_string_equal(e.code, "invalid_config");
    out = regfields_put(f->db, &f->who, site, good, &e);
    assert_non_null(out);
    assert_true(regfields_identifier_known(out, "ration_card"));
    assert_true(regfields_identifier_known(out, "unhcr"));
    json_decref(out);
    create_refused(f, "{\"given_name\":\"A\"}", "missing_field", "custom.block");
    create_refused(f, "{\"given_name\":\"A\",\"custom\":{\"block\":\"z\"}}", "invalid_option", "custom.block");
    create_refused(f, "{\"given_name\":\"A\",\"custom\":{\"block\":\"a\",\"household\":99}}", "out_of_range",
                   "custom.household");
    json_decref(create_ok(f, "{\"given_name\":\"A\",\"custom\":{\"block\":\"a\",\"household\":4,\"tent\":\"T-17\"},"
                             "\"identifiers\":{\"ration_card\":\"RC 9\"}}"));
    hits = search(f, "t17", NULL, 10);
    assert_int_equal(json_array_size(json_object_get(hits, "items")), 1);
    json_decref(hits);
    json_decref(bad);
    json_decref(good);
}

static void test_reads_are_audited(void **state)
{
    struct fixture *f = *state;
    json_t *p = create_ok(f, "{\"given_name\":\"Audited\"}"), *got, *hits;
    struct audit_verdict v;
    struct err e;

    err_clear(&e);
    got = patients_get(f->db, &f->who, json_string_value(json_object_get(p, "id")), &e);
    json_decref(got);
    hits = search(f, "audited", NULL, 5);
    json_decref(hits);
    hits = audit_page(f->db, NULL, 500, &e);
    {
        size_t i, n = json_array_size(json_object_get(hits, "items"));
        int create = 0, read = 0, searched = 0;

        for (i = 0; i < n; i++) {
            const char *a = json_string_value(json_object_get(json_array_get(json_object_get(hits, "items"), i), "action"));
            create += strcmp(a, "patient.create") == 0;
            read += strcmp(a, "patient.read") == 0;
            searched += strcmp(a, "patient.search") == 0;
        }
        assert_int_equal(create, 1);
        assert_int_equal(read, 1);
        assert_int_equal(searched, 1);
    }
    json_decref(hits);
    assert_int_equal(audit_verify(f->db, &v, &e), 0);
    json_decref(p);
}

/* ---- duplicates among namesakes, pages, the index ---- */

/* Register rows (a JSON array text made by the caller) in one import; fails the test when refused. */
static void import_ok(struct fixture *f, json_t *rows)
{
    struct err e;
    json_t *report;

    err_clear(&e);
    report = patients_import(f->db, &f->who, rows, 1, 0, &e);
    if (report == NULL || e.kind != ERR_NONE)
        fail_msg("import: %s", e.message);
    json_decref(report);
    json_decref(rows);
}

/* The place of patient id among the duplicate candidates for draft (a JSON text), or -1. */
static int match_rank(struct fixture *f, const char *draft_text, const char *id)
{
    json_t *draft = json_loads(draft_text, 0, NULL), *out, *items;
    struct err e;
    size_t i;
    int rank = -1;

    assert_non_null(draft);
    err_clear(&e);
    out = patients_match(f->db, &f->who, draft, &e);
    if (out == NULL)
        fail_msg("match %s: %s", draft_text, e.message);
    items = json_object_get(out, "items");
    for (i = 0; i < json_array_size(items) && rank < 0; i++)
        if (strcmp(json_string_value(json_object_get(json_object_get(json_array_get(items, i), "patient"), "id")), id)
            == 0)
            rank = (int)i;
    json_decref(out);
    json_decref(draft);
    return rank;
}

static void test_duplicates_among_namesakes(void **state)
{
    struct fixture *f = *state;
    json_t *target = create_ok(f, "{\"given_name\":\"Mohammed\",\"middle_name\":\"Karim\",\"family_name\":\"Hassan\","
                                  "\"sex\":\"male\",\"birth_date\":\"1987-03-12\"}");
    const char *id = json_string_value(json_object_get(target, "id"));
    json_t *rows = json_array();
    char date[16];
    int i;

    /* 400 namesakes registered after him, born over forty years, some with estimated dates: more than the
     * newest holders of a key a check could read without the birth year */
    for (i = 0; i < 400; i++) {
        snprintf(date, sizeof(date), "%04d-%02d-%02d", 1960 + i % 40, 1 + i % 12, 1 + i % 28);
        json_t *row = json_pack("{s:s,s:s,s:s,s:s}", "given_name", i % 3 ? "Mohammed" : "Muhammad", "family_name",
                                "Hassan", "sex", "male", "birth_date", date);

        if (i % 2)
            json_object_set_new(row, "middle_name", json_string("Ali"));
        if (i % 5 == 0)
            json_object_set_new(row, "birth_precision", json_string("estimated"));
        json_array_append_new(rows, row);
    }
    import_ok(f, rows);
    /* the same person registered again: first */
    assert_int_equal(match_rank(f, "{\"given_name\":\"Mohammed\",\"family_name\":\"Hassan\",\"sex\":\"male\","
                                   "\"birth_date\":\"1987-03-12\"}", id), 0);
    /* ... with a word misspelt so that its phonetic key changes ("Hassa": hs, not hsn) */
    assert_int_equal(match_rank(f, "{\"given_name\":\"Mohammed\",\"family_name\":\"Hassa\",\"sex\":\"male\","
                                   "\"birth_date\":\"1987-03-12\"}", id), 0);
    /* ... with an estimated age that covers his birth date (and his father's name, which sets him apart
     * from the fifty namesakes the estimate also allows) */
    assert_int_equal(match_rank(f, "{\"given_name\":\"Mohammed\",\"middle_name\":\"Karim\",\"family_name\":\"Hassan\","
                                   "\"sex\":\"male\",\"age_years\":39,\"age_on\":\"2026-06-01\"}", id), 0);
    /* a birth date ten years off does not make him a candidate by name */
    assert_int_equal(match_rank(f, "{\"given_name\":\"Mohammed\",\"family_name\":\"Hassan\",\"sex\":\"male\","
                                   "\"birth_date\":\"1997-03-12\"}", id), -1);
    json_decref(target);
}

static void test_search_pages_through_namesakes(void **state)
{
    struct fixture *f = *state;
    struct patient_query q = { 0 };
    json_t *rows = json_array(), *page, *seen = json_object();
    const char *next;
    char cursor[64] = "";
    struct err e;
    size_t i;
    int pages = 0, n = 0;

    for (i = 0; i < 12; i++)
        json_array_append_new(rows, json_pack("{s:s,s:s}", "given_name", "Zaid", "family_name", "Yasin"));
    json_array_append_new(rows, json_pack("{s:s,s:s}", "given_name", "Zayd", "family_name", "Yaseen"));
    import_ok(f, rows);
    /* a search stops once a page (and one more) of exact names is found: the next page reads on */
    q.q = "zaid yasin";
    q.limit = 5;
    do {
        err_clear(&e);
        q.cursor = cursor[0] ? cursor : NULL;
        page = patients_search(f->db, &f->who, &q, &e);
        assert_non_null(page);
        for (i = 0; i < json_array_size(json_object_get(page, "items")); i++, n++)
            json_object_set_new(seen, json_string_value(json_object_get(json_array_get(json_object_get(page, "items"), i),
                                                                        "id")), json_true());
        next = json_string_value(json_object_get(page, "next"));
        snprintf(cursor, sizeof(cursor), "%s", next ? next : "");
        json_decref(page);
        pages++;
    } while (cursor[0] && pages < 10);
    /* every namesake once, the other spelling too (last) */
    assert_int_equal(n, 13);
    assert_int_equal(json_object_size(seen), 13);
    assert_int_equal(pages, 3);
    json_decref(seen);
}

static void test_index_rebuilt_for_a_new_version(void **state)
{
    struct fixture *f = *state;
    json_t *p = create_ok(f, "{\"given_name\":\"Rebuilt\",\"family_name\":\"Index\",\"identifiers\":{\"unhcr\":\"R-77\"}}");
    char path[4096], version[16];
    sqlite3 *raw;
    json_t *hits;
    struct err e;

    /* as a database indexed by an older version: other terms, another version */
    snprintf(path, sizeof(path), "%s/sanad.db", f->dir);
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "DELETE FROM patient_terms; INSERT INTO patient_terms VALUES ('k:old', 'x');"
                                       "UPDATE meta SET value = '1' WHERE key = 'patient_index'", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(raw);
    /* the first use indexes every patient again */
    hits = search(f, "rebuilt index", NULL, 5);
    assert_int_equal(json_array_size(json_object_get(hits, "items")), 1);
    json_decref(hits);
    hits = search(f, "R-77", NULL, 5);
    assert_int_equal(json_array_size(json_object_get(hits, "items")), 1);
    json_decref(hits);
    err_clear(&e);
    assert_int_equal(store_meta_get(f->db, "patient_index", version, sizeof(version), &e), 1);
    assert_string_not_equal(version, "1");
    /* the identifier is taken again, found through the new index */
    create_refused(f, "{\"given_name\":\"Other\",\"identifiers\":{\"unhcr\":\"r77\"}}", "identifier_taken", NULL);
    json_decref(p);
}

static void test_demo_data_goes_through_the_change_log(void **state)
{
    struct fixture *f = *state;
    struct audit_verdict v;
    char path[4096];
    sqlite3 *raw;
    sqlite3_stmt *st;
    struct err e;

    err_clear(&e);
    if (demo_add_patients(f->db, &f->who, f->who.sites[0], 700, 11, NULL, &e) < 0)
        fail_msg("demo: %s", e.message);
    snprintf(path, sizeof(path), "%s/sanad.db", f->dir);
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(raw, "SELECT (SELECT count(*) FROM patients),"
                                             " (SELECT count(*) FROM changes WHERE tbl = 'patient'),"
                                             " (SELECT count(*) FROM audit_log WHERE action = 'patient.create'),"
                                             " (SELECT count(*) FROM patient_terms WHERE term >= 'd:' AND term < 'd;')",
                                        -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    /* each patient: one change, one audit entry, one brief in the index, like an API create */
    assert_int_equal(sqlite3_column_int(st, 0), 700);
    assert_int_equal(sqlite3_column_int(st, 1), 700);
    assert_int_equal(sqlite3_column_int(st, 2), 700);
    assert_int_equal(sqlite3_column_int(st, 3), 700);
    sqlite3_finalize(st);
    sqlite3_close(raw);
    assert_int_equal(audit_verify(f->db, &v, &e), 0);
    /* the same seed makes the same people: their identifiers are refused */
    err_clear(&e);
    assert_int_equal(demo_add_patients(f->db, &f->who, f->who.sites[0], 10, 11, NULL, &e), -1);
    assert_string_equal(e.code, "identifier_taken");
}

/* ---- search quality on the variant table ---- */

struct pair {
    char a[160], b[160];
    int same;
};

static int load_pairs(struct pair *pairs, int max)
{
    const char *dir = getenv("SANAD_TESTDATA");
    char path[512], line[512], *tab1, *tab2, *tab3;
    FILE *fp;
    int n = 0;

    snprintf(path, sizeof(path), "%s/name_variants.tsv", dir ? dir : "tests/unit");
    fp = fopen(path, "r");
    if (fp == NULL)
        fail_msg("cannot open %s (run from the repository root or set SANAD_TESTDATA)", path);
    while (fgets(line, sizeof(line), fp) && n < max) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '#' || line[0] == '\0' || strncmp(line, "name_a\t", 7) == 0)
            continue;
        tab1 = strchr(line, '\t');
        tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
        if (tab2 == NULL)
            continue;
        tab3 = strchr(tab2 + 1, '\t');
        if (tab3)
            *tab3 = '\0';
        *tab1 = *tab2 = '\0';
        snprintf(pairs[n].a, sizeof(pairs[n].a), "%.159s", line);
        snprintf(pairs[n].b, sizeof(pairs[n].b), "%.159s", tab1 + 1);
        pairs[n].same = atoi(tab2 + 1);
        n++;
    }
    fclose(fp);
    return n;
}

/* The id of the patient registered with identifier other = "VAR-i". */
static int id_of_variant(struct fixture *f, int i, char id[ID_LEN])
{
    char q[32];
    json_t *hits;
    int ok;

    snprintf(q, sizeof(q), "VAR-%d", i);
    hits = search(f, q, NULL, 2);
    ok = json_array_size(json_object_get(hits, "items")) == 1;
    if (ok)
        snprintf(id, ID_LEN, "%s", json_string_value(json_object_get(json_array_get(json_object_get(hits, "items"), 0), "id")));
    json_decref(hits);
    return ok;
}

/* Family names shared by many people, so that a search must tell given names apart. */
static const char *const surnames[] = { "Hassan", "Ahmadi", "Mohamed", "Haile", "Shevchenko", "Rahman", "Osman",
                                        "Karimi", "Khalil", "Begum", "Abdi", "Tesfamariam" };
#define NSURNAMES (sizeof(surnames) / sizeof(surnames[0]))

static void test_search_quality_on_variant_table(void **state)
{
    struct fixture *f = *state;
    static struct pair pairs[2000];
    static char ids[2000][ID_LEN];
    int n = load_pairs(pairs, 2000), i, positives = 0, found = 0, negatives = 0, kept_apart = 0;
    json_t *rows = json_array(), *report, *hits, *draft, *items;
    char query[256], tag[32];
    struct err e;
    size_t k;

    err_clear(&e);
    assert_true(n >= 150);
    /* a background population of realistic names, so the right person must win against many others */
    if (demo_add_patients(f->db, &f->who, f->who.sites[0], getenv("SANAD_SANITIZED") ? 1000 : 3000, 7, NULL, &e) < 0)
        fail_msg("demo: %s", e.message);
    /* one person per pair: a person of a positive pair has a family name from the shared pool (searches
     * give given and family name, as a registrar does); a person of a negative pair has only the name */
    for (i = 0; i < n; i++) {
        snprintf(tag, sizeof(tag), "VAR-%d", i);
        if (pairs[i].same)
            json_array_append_new(rows, json_pack("{s:s,s:s,s:{s:s}}", "given_name", pairs[i].a, "family_name",
                                                  surnames[i % NSURNAMES], "identifiers", "other", tag));
        else
            json_array_append_new(rows, json_pack("{s:s,s:{s:s}}", "given_name", pairs[i].a, "identifiers", "other", tag));
    }
    report = patients_import(f->db, &f->who, rows, 1, 0, &e);
    if (report == NULL || e.kind != ERR_NONE)
        fail_msg("import: %s", e.message);
    json_decref(report);
    json_decref(rows);
    for (i = 0; i < n; i++)
        assert_true(id_of_variant(f, i, ids[i]));

    for (i = 0; i < n; i++) {
        if (pairs[i].same) {
            /* the registered person appears in the top 5: at most 4 others score strictly higher */
            double target = -1;
            int higher = 0;

            positives++;
            snprintf(query, sizeof(query), "%s %s", pairs[i].b, surnames[i % NSURNAMES]);
            hits = search(f, query, NULL, 100);
            items = json_object_get(hits, "items");
            for (k = 0; k < json_array_size(items); k++)
                if (strcmp(json_string_value(json_object_get(json_array_get(items, k), "id")), ids[i]) == 0)
                    target = json_real_value(json_object_get(json_array_get(items, k), "score"));
            for (k = 0; target >= 0 && k < json_array_size(items); k++)
                higher += json_real_value(json_object_get(json_array_get(items, k), "score")) > target;
            if (target >= 0 && higher < 5)
                found++;
            else
                printf("# miss: '%s %s' not in the top 5 for '%s' (%d ahead)\n", pairs[i].a, surnames[i % NSURNAMES],
                       query, target >= 0 ? higher : -1);
            json_decref(hits);
        } else {
            /* names alone do not make a different person a duplicate candidate */
            int offered = 0;

            negatives++;
            draft = json_pack("{s:s}", "given_name", pairs[i].b);
            hits = patients_match(f->db, &f->who, draft, &e);
            assert_non_null(hits);
            items = json_object_get(hits, "items");
            for (k = 0; k < json_array_size(items); k++)
                offered |= strcmp(json_string_value(json_object_get(json_object_get(json_array_get(items, k), "patient"),
                                                                   "id")), ids[i]) == 0;
            if (!offered)
                kept_apart++;
            else
                printf("# false duplicate: '%s' offered for '%s'\n", pairs[i].a, pairs[i].b);
            json_decref(hits);
            json_decref(draft);
        }
    }
    printf("# search recall@5: %d of %d pairs (%.1f %%); different people kept apart: %d of %d (%.1f %%)\n", found,
           positives, 100.0 * found / positives, kept_apart, negatives, 100.0 * kept_apart / negatives);
    assert_true(positives >= 150 && negatives >= 40);
    assert_true(found * 100 >= positives * 95);
    assert_true(kept_apart * 100 >= negatives * 90);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_normalises_and_reads_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_age_gives_estimated_birth_date, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identifier_unique_per_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_update_changes_only_given_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_is_a_tombstone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_sites_are_invisible, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_by_identifier_phone_and_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_browse_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_import_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_sees_live_patients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registration_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reads_are_audited, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates_among_namesakes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_pages_through_namesakes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_rebuilt_for_a_new_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_demo_data_goes_through_the_change_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_search_quality_on_variant_table, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
