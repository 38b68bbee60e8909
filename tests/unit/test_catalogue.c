/* test_catalogue.c — unit tests of the shipped catalogues (services/catalogue.c): the files as embedded pass
 * their checks and have the expected size, codes normalise, labels fall back, and search finds by code
 * prefix and by words in any of the four languages, ignoring case and accents, within its limits. */
#include "testutil.h"

#include <pthread.h>
#include <time.h>

#include "core/datafiles.h"
#include "services/catalogue.h"

static const char *const kind_names[CATALOGUE_KINDS] = { "icd10", "medicines", "his-categories" };

/* The codes of a search answer, space-separated, in order ("" for none); fails the test on an error. */
static void search_codes(enum catalogue_kind kind, const char *q, const char *lang, int limit, char *out,
                         size_t n)
{
    struct err e;
    json_t *res, *item;
    size_t i, len = 0;

    err_clear(&e);
    res = catalogue_search(kind, q, lang, limit, &e);
    if (res == NULL)
        fail_msg("search %s '%s': %s: %s", kind_names[kind], q ? q : "(null)", e.code, e.message);
    out[0] = '\0';
    json_array_foreach(json_object_get(res, "items"), i, item) {
        const char *code = json_string_value(json_object_get(item, "code"));

        assert_non_null(code);
        len += (size_t)snprintf(out + len, n - len, "%s%s", i ? " " : "", code);
        assert_true(len < n);
    }
    json_decref(res);
}

/* Does the space-separated list hold this code as a whole word? */
static int has_code(const char *list, const char *code)
{
    size_t len = strlen(code);
    const char *p = list;

    while ((p = strstr(p, code)) != NULL) {
        if ((p == list || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0'))
            return 1;
        p += len;
    }
    return 0;
}

/* Position of code in the list (0-based), or -1. */
static int code_position(const char *list, const char *code)
{
    char copy[8192], *save = NULL, *w;
    int i = 0;

    snprintf(copy, sizeof(copy), "%s", list);
    for (w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save), i++)
        if (strcmp(w, code) == 0)
            return i;
    return -1;
}

static void expect_search_error(enum catalogue_kind kind, const char *q, int limit, const char *code)
{
    struct err e;
    json_t *res;

    err_clear(&e);
    res = catalogue_search(kind, q, "en", limit, &e);
    if (res != NULL) {
        json_decref(res);
        fail_msg("search '%.40s' limit %d succeeded; expected %s", q ? q : "(null)", limit, code);
    }
    assert_string_equal(e.code, code);
    assert_int_equal(e.kind, ERR_INVALID);
    assert_true(e.message[0] != '\0');
}

/* ---- loading ---------------------------------------------------------------------------------------- */

static void *search_thread(void *arg)
{
    char codes[4096];

    (void)arg;
    search_codes(CATALOGUE_MEDICINES, "amoxicillin", "en", 20, codes, sizeof(codes));
    return has_code(codes, "amoxicillin_500mg_cap") ? arg : NULL;
}

/* Runs first: several threads race to load the catalogues (pthread_once) and all see them whole. */
static void test_concurrent_first_use(void **state)
{
    pthread_t th[8];
    int i, tag = 1;
    void *rc;

    (void)state;
    for (i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&th[i], NULL, search_thread, &tag), 0);
    for (i = 0; i < 8; i++) {
        assert_int_equal(pthread_join(th[i], &rc), 0);
        assert_ptr_equal(rc, &tag);
    }
}

static void test_check_passes(void **state)
{
    struct err e;

    (void)state;
    err_clear(&e);
    if (catalogue_check(&e) != 0)
        fail_msg("catalogue_check: %s: %s", e.code, e.message);
}

static void test_counts(void **state)
{
    (void)state;
    printf("# catalogues: %zu ICD-10 codes, %zu HIS categories, %zu medicines\n",
           catalogue_count(CATALOGUE_ICD10), catalogue_count(CATALOGUE_HIS), catalogue_count(CATALOGUE_MEDICINES));
    if (catalogue_count(CATALOGUE_ICD10) < 430)
        fail_msg("only %zu ICD-10 codes (want >= 430)", catalogue_count(CATALOGUE_ICD10));
    if (catalogue_count(CATALOGUE_HIS) < 35)
        fail_msg("only %zu HIS categories (want >= 35)", catalogue_count(CATALOGUE_HIS));
    if (catalogue_count(CATALOGUE_MEDICINES) < 170)
        fail_msg("only %zu medicines (want >= 170)", catalogue_count(CATALOGUE_MEDICINES));
    assert_null(catalogue_at(CATALOGUE_MEDICINES, catalogue_count(CATALOGUE_MEDICINES)));
}

/* Codes other engineers' forms and tests rely on. */
static void test_required_codes(void **state)
{
    static const char *const medicines[] = {
        "amoxicillin_500mg_cap", "paracetamol_500mg_tab", "paracetamol_120mg_5ml_susp", "ors_sachet",
        "zinc_20mg_disp_tab", "artemether_lumefantrine_20_120mg_tab", "metformin_500mg_tab", "amlodipine_5mg_tab",
        "salbutamol_100mcg_inhaler", "ferrous_folic_tab",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(medicines) / sizeof(medicines[0]); i++)
        if (catalogue_find(CATALOGUE_MEDICINES, medicines[i]) == NULL)
            fail_msg("medicine %s is missing", medicines[i]);
    assert_non_null(catalogue_find(CATALOGUE_ICD10, "A09"));
    assert_non_null(catalogue_find(CATALOGUE_ICD10, "J18.9"));
}

/* Every code is unique, finds its own item, and normalises to itself. */
static void test_unique_codes(void **state)
{
    char out[CATALOGUE_CODE_MAX + 1];
    int k;

    (void)state;
    for (k = 0; k < CATALOGUE_KINDS; k++) {
        size_t i, n = catalogue_count((enum catalogue_kind)k);

        for (i = 0; i < n; i++) {
            const struct catalogue_item *it = catalogue_at((enum catalogue_kind)k, i);

            if (catalogue_find((enum catalogue_kind)k, it->code) != it)
                fail_msg("%s: code %s does not find its own item", kind_names[k], it->code);
            assert_int_equal(catalogue_normalise((enum catalogue_kind)k, it->code, out, sizeof(out)), 0);
            assert_string_equal(out, it->code);
            if (i > 0 && strcmp(catalogue_at((enum catalogue_kind)k, i - 1)->code, it->code) == 0)
                fail_msg("%s: code %s twice", kind_names[k], it->code);
        }
    }
}

/* Does s hold a letter of the Arabic block (U+0600..U+06FF, lead bytes 0xD8..0xDB)? */
static int has_arabic(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0xD8 && (unsigned char)*s <= 0xDB)
            return 1;
    return 0;
}

static void test_four_languages(void **state)
{
    int k, l;

    (void)state;
    for (k = 0; k < CATALOGUE_KINDS; k++) {
        size_t i, n = catalogue_count((enum catalogue_kind)k);

        for (i = 0; i < n; i++) {
            const struct catalogue_item *it = catalogue_at((enum catalogue_kind)k, i);

            for (l = 0; l < CATALOGUE_LANGS; l++)
                if (it->label[l] == NULL || it->label[l][0] == '\0')
                    fail_msg("%s %s: label %d is empty", kind_names[k], it->code, l);
            if (!has_arabic(it->label[1]))
                fail_msg("%s %s: the Arabic label has no Arabic letter", kind_names[k], it->code);
            if (has_arabic(it->label[0]) || has_arabic(it->label[2]) || has_arabic(it->label[3]))
                fail_msg("%s %s: Arabic script in a Latin-script label", kind_names[k], it->code);
            if (k == CATALOGUE_ICD10) {
                assert_non_null(it->his_category);
                assert_non_null(catalogue_find(CATALOGUE_HIS, it->his_category));
            }
            if (k == CATALOGUE_MEDICINES)
                assert_true(it->form[0] && it->strength[0] && it->route[0] && it->atc[0]);
        }
    }
}

/* ---- malformed files -------------------------------------------------------------------------------- */

/* Check text as a file of this kind: 0 when want_problem is NULL, else -1 with a message holding it. */
static void expect_check_text(enum catalogue_kind kind, const char *text, size_t len, const char *want_problem)
{
    struct err e;
    int rc;

    err_clear(&e);
    rc = catalogue_check_text(kind, text, len, &e);
    if (want_problem == NULL && rc != 0)
        fail_msg("file rejected: %s\n---\n%s---", e.message, text);
    if (want_problem && rc == 0)
        fail_msg("file accepted; expected a problem '%s'\n---\n%s---", want_problem, text);
    if (want_problem && (strcmp(e.code, "catalogue_invalid") != 0 || strstr(e.message, want_problem) == NULL))
        fail_msg("file rejected with %s '%s'; expected '%s'", e.code, e.message, want_problem);
}

#define MED_HEADER "code\ten\tar\tfr\tes\tform\tstrength\troute\tatc\n"
#define MED_ROW(code, form, route, atc) code "\tX\tعربي\tX\tX\t" form "\t1 mg\t" route "\t" atc "\n"
#define ICD_HEADER "code\this_category\ten\tar\tfr\tes\n"

static void test_check_malformed(void **state)
{
    static const struct {
        enum catalogue_kind kind;
        const char *text;
        const char *problem;    /* NULL: the file is fine */
    } cases[] = {
        { CATALOGUE_MEDICINES, MED_HEADER MED_ROW("a_1mg_tab", "tablet", "oral", "J01CA04"), NULL },
        { CATALOGUE_MEDICINES, MED_HEADER MED_ROW("a_1mg_tab", "tablet", "oral", "A07CA"), NULL },
        /* CRLF line ends and columns in another order are fine */
        { CATALOGUE_MEDICINES, "atc\tcode\ten\tar\tfr\tes\tform\tstrength\troute\r\n"
                               "J01CA04\ta_1mg_tab\tX\tعربي\tX\tX\ttablet\t1 mg\toral\r\n", NULL },
        { CATALOGUE_MEDICINES, "", "empty file" },
        { CATALOGUE_MEDICINES, "code\ten\tar\tfr\tes\tform\tstrength\troute\n", "no column 'atc'" },
        { CATALOGUE_MEDICINES, "code\ten\tar\tfr\tes\tform\tstrength\troute\tatc\tnotes\n", "unexpected column 'notes'" },
        { CATALOGUE_MEDICINES, "code\ten\tar\tfr\tes\tform\tstrength\troute\tatc\ten\n", "column 'en' twice" },
        { CATALOGUE_MEDICINES, MED_HEADER "a_1mg_tab\tX\tعربي\tX\tX\ttablet\t1 mg\toral\n", "line 2: 8 cells, the header has 9" },
        { CATALOGUE_MEDICINES, MED_HEADER "a_1mg_tab\tX\tعربي\tX\tX\ttablet\t1 mg\toral\tJ01CA04\textra\n", "line 2: 10 cells" },
        { CATALOGUE_MEDICINES, MED_HEADER "a_1mg_tab\tX\t\tX\tX\ttablet\t1 mg\toral\tJ01CA04\n", "line 2: empty ar" },
        { CATALOGUE_MEDICINES, MED_HEADER "a_1mg_tab\t X\tعربي\tX\tX\ttablet\t1 mg\toral\tJ01CA04\n", "en has spaces around it" },
        { CATALOGUE_MEDICINES, MED_HEADER MED_ROW("a_1mg_tab", "tablet", "oral", "J01CA04") MED_ROW("A_1MG_TAB", "tablet", "oral", "J01CA04"),
          "malformed code 'A_1MG_TAB'" },
        { CATALOGUE_MEDICINES, MED_HEADER MED_ROW("a_1mg_tab", "tablet", "oral", "J01CA04") MED_ROW("a_1mg_tab", "capsule", "oral", "J01CA04"),
          "code 'a_1mg_tab' twice" },
        { CATALOGUE_MEDICINES, MED_HEADER MED_ROW("a-1mg", "tablet", "oral", "J01CA04"), "malformed code 'a-1mg'" },
        { CATALOGUE_MEDICINES, MED_HEADER MED_ROW("a_1mg_tab", "pill", "oral", "J01CA04"), "unknown form 'pill'" },
        { CATALOGUE_MEDICINES, MED_HEADER MED_ROW("a_1mg_tab", "tablet", "mouth", "J01CA04"), "unknown route 'mouth'" },
        { CATALOGUE_MEDICINES, MED_HEADER MED_ROW("a_1mg_tab", "tablet", "oral", "J01CA4"), "malformed ATC code 'J01CA4'" },
        { CATALOGUE_MEDICINES, MED_HEADER MED_ROW("a_1mg_tab", "tablet", "oral", "J01CA04") "\n" MED_ROW("b_1mg_tab", "tablet", "oral", "J01CA04"),
          "line 3: empty line" },
        { CATALOGUE_MEDICINES, MED_HEADER "a_1mg_tab\tX\t\xd8\tX\tX\ttablet\t1 mg\toral\tJ01CA04\n", "not valid UTF-8" },
        { CATALOGUE_ICD10, ICD_HEADER "A09\tHIS_PLACEHOLDER\tDiarrhoea\tإسهال\tDiarrhée\tDiarrea\n", NULL },
        { CATALOGUE_ICD10, ICD_HEADER "A09\tno_such_category\tDiarrhoea\tإسهال\tDiarrhée\tDiarrea\n",
          "code A09: unknown HIS category 'no_such_category'" },
        { CATALOGUE_ICD10, ICD_HEADER "A09\tHIS_PLACEHOLDER\tX\tإسهال\tX\tX\nJ189\tHIS_PLACEHOLDER\tX\tإ\tX\tX\n"
                           "J18.9\tHIS_PLACEHOLDER\tX\tإ\tX\tX\n", "code 'j189' twice" },
        { CATALOGUE_ICD10, ICD_HEADER "a09\tHIS_PLACEHOLDER\tX\tإسهال\tX\tX\n", "malformed code 'a09'" },
        { CATALOGUE_ICD10, ICD_HEADER "J1.89\tHIS_PLACEHOLDER\tX\tإسهال\tX\tX\n", "malformed code 'J1.89'" },
        { CATALOGUE_ICD10, ICD_HEADER "J18.\tHIS_PLACEHOLDER\tX\tإسهال\tX\tX\n", "malformed code 'J18.'" },
        { CATALOGUE_HIS, "code\ten\tar\tfr\tes\nx\tX\tع\tX\tX\n", NULL },
        { CATALOGUE_HIS, "code\ten\tar\tfr\tes\nx y\tX\tع\tX\tX\n", "malformed code 'x y'" },
    };
    const char *his = catalogue_at(CATALOGUE_HIS, 0)->code;
    char text[1024], *p;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), "%s", cases[i].text);
        while ((p = strstr(text, "HIS_PLACEHOLDER")) != NULL) {     /* a category the shipped file has */
            char rest[1024];

            snprintf(rest, sizeof(rest), "%s", p + strlen("HIS_PLACEHOLDER"));
            snprintf(p, sizeof(text) - (size_t)(p - text), "%s%s", his, rest);
        }
        expect_check_text(cases[i].kind, text, strlen(text), cases[i].problem);
    }
    /* a NUL byte inside the file */
    expect_check_text(CATALOGUE_MEDICINES, MED_HEADER "a\0b", sizeof(MED_HEADER "a\0b") - 1, "contains a NUL byte");
}

/* The shipped files pass the same text check as the loaded tables. */
static void test_check_shipped_text(void **state)
{
    int k;

    (void)state;
    for (k = 0; k < CATALOGUE_KINDS; k++) {
        const struct asset *file = data_file_find(catalogue_path((enum catalogue_kind)k));

        assert_non_null(file);
        expect_check_text((enum catalogue_kind)k, (const char *)file->data, file->size, NULL);
    }
}

/* ---- normalisation ---------------------------------------------------------------------------------- */

static void test_normalise(void **state)
{
    static const struct {
        enum catalogue_kind kind;
        const char *in;
        const char *want;       /* NULL: unknown (-1) */
    } cases[] = {
        { CATALOGUE_ICD10, "A09", "A09" },
        { CATALOGUE_ICD10, "a09", "A09" },
        { CATALOGUE_ICD10, " a09\t", "A09" },
        { CATALOGUE_ICD10, "J18.9", "J18.9" },
        { CATALOGUE_ICD10, "j18.9", "J18.9" },
        { CATALOGUE_ICD10, "J189", "J18.9" },
        { CATALOGUE_ICD10, "j189", "J18.9" },
        { CATALOGUE_ICD10, "J1.89", NULL },         /* a dot only after the category */
        { CATALOGUE_ICD10, "J18 9", NULL },
        { CATALOGUE_ICD10, "J18..9", NULL },
        { CATALOGUE_ICD10, "J1", NULL },
        { CATALOGUE_ICD10, "Q99.99", NULL },        /* well-formed but not in the catalogue */
        { CATALOGUE_ICD10, "", NULL },
        { CATALOGUE_ICD10, "   ", NULL },
        { CATALOGUE_ICD10, "ج18", NULL },
        { CATALOGUE_MEDICINES, "amoxicillin_500mg_cap", "amoxicillin_500mg_cap" },
        { CATALOGUE_MEDICINES, "AMOXICILLIN_500MG_CAP", "amoxicillin_500mg_cap" },
        { CATALOGUE_MEDICINES, "Ors_Sachet", "ors_sachet" },
        { CATALOGUE_MEDICINES, "amoxicillin", NULL },      /* no prefix matching here */
        { CATALOGUE_MEDICINES, "amoxicillin 500mg cap", NULL },
        { CATALOGUE_MEDICINES, "amoxicillin_500mg_cap;", NULL },
        { CATALOGUE_MEDICINES, "", NULL },
    };
    char out[CATALOGUE_CODE_MAX + 1], j18[CATALOGUE_CODE_MAX + 1], longcode[CATALOGUE_CODE_MAX + 2];
    size_t i;
    int rc;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        strcpy(out, "garbage");
        rc = catalogue_normalise(cases[i].kind, cases[i].in, out, sizeof(out));
        if (cases[i].want == NULL && rc != -1)
            fail_msg("%s '%s' normalised to '%s'; expected unknown", kind_names[cases[i].kind], cases[i].in, out);
        if (cases[i].want && (rc != 0 || strcmp(out, cases[i].want) != 0))
            fail_msg("%s '%s' -> %d '%s'; expected '%s'", kind_names[cases[i].kind], cases[i].in, rc, out,
                     cases[i].want);
        if (rc != 0)
            assert_string_equal(out, "");
        assert_true((catalogue_find(cases[i].kind, cases[i].in) != NULL) == (rc == 0));
    }

    /* "J18." is "J18", whether or not the catalogue has the category itself */
    rc = catalogue_normalise(CATALOGUE_ICD10, "J18", j18, sizeof(j18));
    assert_int_equal(catalogue_normalise(CATALOGUE_ICD10, "j18.", out, sizeof(out)), rc);
    assert_string_equal(out, j18);

    /* 64 characters may match a code (none is that long), 65 are refused before any lookup */
    memset(longcode, 'a', sizeof(longcode) - 1);
    longcode[sizeof(longcode) - 1] = '\0';
    assert_int_equal(strlen(longcode), 65);
    assert_int_equal(catalogue_normalise(CATALOGUE_MEDICINES, longcode, out, sizeof(out)), -1);
    assert_null(catalogue_find(CATALOGUE_ICD10, longcode));

    /* NULLs and an output buffer too small */
    assert_int_equal(catalogue_normalise(CATALOGUE_ICD10, NULL, out, sizeof(out)), -1);
    assert_int_equal(catalogue_normalise(CATALOGUE_ICD10, "A09", NULL, 0), -1);
    assert_int_equal(catalogue_normalise(CATALOGUE_ICD10, "A09", out, 3), -1);
    assert_string_equal(out, "");
    assert_int_equal(catalogue_normalise(CATALOGUE_ICD10, "a09", out, 4), 0);
    assert_string_equal(out, "A09");
    assert_null(catalogue_find(CATALOGUE_MEDICINES, NULL));

    /* HIS categories: case-insensitive */
    if (catalogue_count(CATALOGUE_HIS) > 0) {
        const struct catalogue_item *h = catalogue_at(CATALOGUE_HIS, 0);
        char upper[CATALOGUE_CODE_MAX + 1];

        for (i = 0; h->code[i]; i++)
            upper[i] = (h->code[i] >= 'a' && h->code[i] <= 'z') ? (char)(h->code[i] - 32) : h->code[i];
        upper[i] = '\0';
        assert_int_equal(catalogue_normalise(CATALOGUE_HIS, upper, out, sizeof(out)), 0);
        assert_string_equal(out, h->code);
    }
}

static void test_kind_parse(void **state)
{
    enum catalogue_kind k;

    (void)state;
    assert_int_equal(catalogue_kind_parse("icd10", &k), 0);
    assert_int_equal(k, CATALOGUE_ICD10);
    assert_int_equal(catalogue_kind_parse("medicines", &k), 0);
    assert_int_equal(k, CATALOGUE_MEDICINES);
    assert_int_equal(catalogue_kind_parse("his-categories", &k), 0);
    assert_int_equal(k, CATALOGUE_HIS);
    assert_int_equal(catalogue_kind_parse("ICD10", &k), -1);
    assert_int_equal(catalogue_kind_parse("vaccines", &k), -1);
    assert_int_equal(catalogue_kind_parse(NULL, &k), -1);
    assert_string_equal(catalogue_path(CATALOGUE_MEDICINES), "/catalogues/medicines.tsv");
}

/* ---- labels ----------------------------------------------------------------------------------------- */

static void test_label_fallback(void **state)
{
    const struct catalogue_item *amox = catalogue_find(CATALOGUE_MEDICINES, "amoxicillin_500mg_cap");
    struct catalogue_item only_ar = { .code = "x1", .label = { "", "عربي", "", "" } };
    struct catalogue_item only_fr = { .code = "x2", .label = { "", "", "Français", "" } };
    struct catalogue_item none = { .code = "x3", .label = { "", "", "", "" } };
    struct catalogue_item en_es = { .code = "x4", .label = { "English", "", "", "Español" } };

    (void)state;
    assert_non_null(amox);
    assert_string_equal(catalogue_label(amox, "en"), "Amoxicillin");
    assert_string_equal(catalogue_label(amox, "fr"), "Amoxicilline");
    assert_string_equal(catalogue_label(amox, "es"), "Amoxicilina");
    assert_string_equal(catalogue_label(amox, "ar"), "أموكسيسيلين");
    assert_string_equal(catalogue_label(amox, "ar-LB"), "أموكسيسيلين");
    assert_string_equal(catalogue_label(amox, "FR_ca"), "Amoxicilline");
    assert_string_equal(catalogue_label(amox, "de"), "Amoxicillin");       /* not shipped: English */
    assert_string_equal(catalogue_label(amox, "f"), "Amoxicillin");
    assert_string_equal(catalogue_label(amox, "fra"), "Amoxicillin");
    assert_string_equal(catalogue_label(amox, ""), "Amoxicillin");
    assert_string_equal(catalogue_label(amox, NULL), "Amoxicillin");
    assert_string_equal(catalogue_label(&only_ar, "fr"), "عربي");            /* no French, no English: any */
    assert_string_equal(catalogue_label(&only_fr, "es"), "Français");
    assert_string_equal(catalogue_label(&en_es, "ar"), "English");           /* English before any other */
    assert_string_equal(catalogue_label(&en_es, "es"), "Español");
    assert_string_equal(catalogue_label(&none, "en"), "x3");                 /* nothing at all: the code */
    assert_null(catalogue_label(NULL, "en"));
}

/* ---- folding ---------------------------------------------------------------------------------------- */

static void test_fold(void **state)
{
    static const struct { const char *in, *want; } cases[] = {
        { "Diarrhée", " diarrhee" },
        { "  ŒDÈME aigu  ", " oedeme aigu" },
        { "Ácido fólico", " acido folico" },
        { "d'ipratropium", " d ipratropium" },
        { "125 mg/5 mL", " 125 mg 5 ml" },
        { "أَمْلاح الإماهة", " املاح الاماهه" },             /* harakat gone, hamza on alef gone, teh marbuta */
        { "مستشفى", " مستشفي" },                              /* alef maqsura as yeh */
        { "٥٠٠ ملغ", " 500 ملغ" },                            /* Arabic-Indic digits */
        { "ﬁèvre", " fievre" },                                /* compatibility ligature */
        { "", "" },
        { "-- / --", "" },
    };
    char out[256];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int n = catalogue_fold(cases[i].in, out, sizeof(out));

        if (n < 0 || strcmp(out, cases[i].want) != 0)
            fail_msg("fold '%s' -> %d '%s'; expected '%s'", cases[i].in, n, out, cases[i].want);
        assert_int_equal(n, (int)strlen(cases[i].want));
    }
    assert_int_equal(catalogue_fold("caf\xc3", out, sizeof(out)), -1);        /* cut UTF-8 */
    assert_int_equal(catalogue_fold("\xff\xfe", out, sizeof(out)), -1);
    assert_int_equal(catalogue_fold("diarrhée", out, 9), -1);                 /* " diarrhee" needs 10 bytes */
    assert_int_equal(catalogue_fold("diarrhée", out, 10), 9);
    assert_int_equal(catalogue_fold(NULL, out, sizeof(out)), -1);
}

/* ---- search ----------------------------------------------------------------------------------------- */

static void test_search_code_prefix(void **state)
{
    char codes[8192];

    (void)state;
    /* "amoxicillin_5" is also the words "amoxicillin" and "5" (as in "125 mg/5 mL"): those come after */
    search_codes(CATALOGUE_MEDICINES, "amoxicillin_5", "en", 10, codes, sizeof(codes));
    assert_int_equal(code_position(codes, "amoxicillin_500mg_cap"), 0);
    assert_true(code_position(codes, "amoxicillin_125mg_5ml_susp") > 0);
    assert_int_equal(code_position(codes, "amoxicillin_250mg_cap"), -1);
    search_codes(CATALOGUE_MEDICINES, "AMOXICILLIN_2", "en", 10, codes, sizeof(codes));
    assert_int_equal(strncmp(codes, "amoxicillin_250mg_5ml_susp amoxicillin_250mg_cap amoxicillin_250mg_disp_tab",
                             strlen("amoxicillin_250mg_5ml_susp amoxicillin_250mg_cap amoxicillin_250mg_disp_tab")), 0);
    assert_int_equal(code_position(codes, "amoxicillin_500mg_cap"), -1);

    /* ICD-10: with or without the dot, any case; the category and its subcodes */
    search_codes(CATALOGUE_ICD10, "j18.", "en", 50, codes, sizeof(codes));
    assert_true(has_code(codes, "J18.9"));
    assert_int_equal(strncmp(codes, "J18", 3), 0);
    search_codes(CATALOGUE_ICD10, "j189", "en", 5, codes, sizeof(codes));
    assert_int_equal(code_position(codes, "J18.9"), 0);
    search_codes(CATALOGUE_ICD10, "A0", "en", 100, codes, sizeof(codes));
    assert_true(has_code(codes, "A09"));
}

/* Code-prefix matches first (in code order), then label matches (in code order). */
static void test_search_order(void **state)
{
    char codes[8192];
    int isoniazid, isosorbide, nph, rhze;

    (void)state;
    search_codes(CATALOGUE_MEDICINES, "iso", "en", 100, codes, sizeof(codes));
    isoniazid = code_position(codes, "isoniazid_100mg_tab");
    isosorbide = code_position(codes, "isosorbide_dinitrate_5mg_tab");
    nph = code_position(codes, "insulin_nph_100iu_ml_inj");             /* "isophane" in its label */
    rhze = code_position(codes, "rhze_150_75_400_275mg_tab");           /* "isoniazid" in its label */
    if (!(isoniazid == 0 && isosorbide == 2 && nph > isosorbide && rhze > nph))
        fail_msg("unexpected order for 'iso': %s", codes);
}

static void test_search_words(void **state)
{
    char codes[8192];

    (void)state;
    /* English, a prefix, any case */
    search_codes(CATALOGUE_MEDICINES, "AMOXI", "en", 100, codes, sizeof(codes));
    assert_true(has_code(codes, "amoxicillin_500mg_cap"));
    assert_true(has_code(codes, "amoxicillin_clavulanate_500_125mg_tab"));
    /* several words: all must match, in any order; the strength counts for medicines */
    search_codes(CATALOGUE_MEDICINES, "amox 500", "en", 100, codes, sizeof(codes));
    assert_true(has_code(codes, "amoxicillin_500mg_cap"));
    assert_false(has_code(codes, "amoxicillin_250mg_cap"));
    search_codes(CATALOGUE_MEDICINES, "acid clavulanic", "en", 100, codes, sizeof(codes));
    assert_true(has_code(codes, "amoxicillin_clavulanate_500_125mg_tab"));
    assert_false(has_code(codes, "amoxicillin_500mg_cap"));
    /* a word must start a word: "oxicillin" is inside "amoxicillin" only */
    search_codes(CATALOGUE_MEDICINES, "oxicillin", "en", 100, codes, sizeof(codes));
    assert_string_equal(codes, "");
    /* French, with and without accents */
    search_codes(CATALOGUE_MEDICINES, "céfalexine", "fr", 100, codes, sizeof(codes));
    assert_true(has_code(codes, "cefalexin_250mg_cap"));
    search_codes(CATALOGUE_MEDICINES, "ETHAMBUTOL", "fr", 100, codes, sizeof(codes));
    assert_true(has_code(codes, "ethambutol_400mg_tab"));
    search_codes(CATALOGUE_MEDICINES, "sels rehydratation", "fr", 100, codes, sizeof(codes));
    assert_true(has_code(codes, "ors_sachet"));
    /* Spanish */
    search_codes(CATALOGUE_MEDICINES, "acido folico", "es", 100, codes, sizeof(codes));
    assert_true(has_code(codes, "folic_acid_5mg_tab"));
    assert_true(has_code(codes, "ferrous_folic_tab"));
    /* Arabic, with and without the hamza, and a prefix */
    search_codes(CATALOGUE_MEDICINES, "أموكسيسيلين", "ar", 100, codes, sizeof(codes));
    assert_true(has_code(codes, "amoxicillin_500mg_cap"));
    search_codes(CATALOGUE_MEDICINES, "اموكسي", "ar", 100, codes, sizeof(codes));
    assert_true(has_code(codes, "amoxicillin_500mg_cap"));
    search_codes(CATALOGUE_MEDICINES, "أملاح الإماهة", "ar", 100, codes, sizeof(codes));
    assert_true(has_code(codes, "ors_sachet"));
    /* the language of the query need not be the language of the answer */
    search_codes(CATALOGUE_MEDICINES, "باراسيتامول 500", "fr", 100, codes, sizeof(codes));
    assert_true(has_code(codes, "paracetamol_500mg_tab"));
    /* nothing */
    search_codes(CATALOGUE_MEDICINES, "zzzz", "en", 100, codes, sizeof(codes));
    assert_string_equal(codes, "");
    search_codes(CATALOGUE_MEDICINES, "%%", "en", 100, codes, sizeof(codes));
    assert_string_equal(codes, "");

    /* ICD-10 in English, French without accents ("diarrhee" finds "diarrhée") and Arabic */
    search_codes(CATALOGUE_ICD10, "pneumonia", "en", 100, codes, sizeof(codes));
    assert_true(has_code(codes, "J18.9"));
    search_codes(CATALOGUE_ICD10, "diarrhee", "fr", 100, codes, sizeof(codes));
    assert_true(has_code(codes, "A09"));
    search_codes(CATALOGUE_ICD10, "DIARRHÉE", "fr", 100, codes, sizeof(codes));
    assert_true(has_code(codes, "A09"));
    {
        const struct catalogue_item *a09 = catalogue_find(CATALOGUE_ICD10, "A09");
        char first_ar_word[128];
        size_t len;

        assert_non_null(a09);
        len = strcspn(a09->label[1], " ");
        assert_true(len > 0 && len < sizeof(first_ar_word));
        memcpy(first_ar_word, a09->label[1], len);
        first_ar_word[len] = '\0';
        search_codes(CATALOGUE_ICD10, first_ar_word, "ar", 100, codes, sizeof(codes));
        if (!has_code(codes, "A09"))
            fail_msg("searching the first Arabic word of A09 ('%s') did not find it", first_ar_word);
    }
}

static void test_search_answer_shape(void **state)
{
    struct err e;
    json_t *res, *item;

    (void)state;
    err_clear(&e);
    res = catalogue_search(CATALOGUE_MEDICINES, "amoxicillin_500mg_cap", "ar-LB", 10, &e);
    assert_non_null(res);
    assert_int_equal(json_array_size(json_object_get(res, "items")), 1);
    item = json_array_get(json_object_get(res, "items"), 0);
    assert_string_equal(json_string_value(json_object_get(item, "code")), "amoxicillin_500mg_cap");
    assert_string_equal(json_string_value(json_object_get(item, "label")), "أموكسيسيلين");
    assert_string_equal(json_string_value(json_object_get(item, "form")), "capsule");
    assert_string_equal(json_string_value(json_object_get(item, "strength")), "500 mg");
    assert_string_equal(json_string_value(json_object_get(item, "route")), "oral");
    assert_string_equal(json_string_value(json_object_get(item, "atc")), "J01CA04");
    assert_null(json_object_get(item, "his_category"));
    json_decref(res);

    res = catalogue_search(CATALOGUE_MEDICINES, "ors_sachet", "de", 10, &e);     /* unknown language: English */
    assert_non_null(res);
    item = json_array_get(json_object_get(res, "items"), 0);
    assert_string_equal(json_string_value(json_object_get(item, "label")), "Oral rehydration salts (low osmolarity)");
    json_decref(res);

    res = catalogue_search(CATALOGUE_ICD10, "A09", "fr", 1, &e);
    assert_non_null(res);
    item = json_array_get(json_object_get(res, "items"), 0);
    assert_non_null(item);
    assert_string_equal(json_string_value(json_object_get(item, "code")), "A09");
    {
        const struct catalogue_item *a09 = catalogue_find(CATALOGUE_ICD10, "A09");
        const struct catalogue_item *his;

        assert_non_null(a09);
        his = catalogue_find(CATALOGUE_HIS, a09->his_category);
        assert_non_null(his);
        assert_string_equal(json_string_value(json_object_get(item, "label")), a09->label[2]);
        assert_string_equal(json_string_value(json_object_get(item, "his_category")), his->code);
        assert_string_equal(json_string_value(json_object_get(item, "his_label")), his->label[2]);
    }
    assert_null(json_object_get(item, "form"));
    json_decref(res);

    res = catalogue_search(CATALOGUE_HIS, NULL, "es", 3, &e);
    assert_non_null(res);
    assert_true(catalogue_count(CATALOGUE_HIS) >= 3);
    assert_int_equal(json_array_size(json_object_get(res, "items")), 3);
    item = json_array_get(json_object_get(res, "items"), 0);
    assert_int_equal(json_object_size(item), 2);                              /* code and label only */
    assert_string_equal(json_string_value(json_object_get(item, "label")), catalogue_at(CATALOGUE_HIS, 0)->label[3]);
    json_decref(res);
}

/* A blank query lists the first items in code order. */
static void test_search_empty(void **state)
{
    char codes[8192], want[8192];
    size_t i, len = 0;

    (void)state;
    for (i = 0; i < 5; i++)
        len += (size_t)snprintf(want + len, sizeof(want) - len, "%s%s", i ? " " : "",
                                catalogue_at(CATALOGUE_MEDICINES, i)->code);
    search_codes(CATALOGUE_MEDICINES, "", "en", 5, codes, sizeof(codes));
    assert_string_equal(codes, want);
    search_codes(CATALOGUE_MEDICINES, NULL, "en", 5, codes, sizeof(codes));
    assert_string_equal(codes, want);
    search_codes(CATALOGUE_MEDICINES, "  \t ", "en", 5, codes, sizeof(codes));
    assert_string_equal(codes, want);
    for (i = 1; i < catalogue_count(CATALOGUE_MEDICINES); i++)
        assert_true(strcmp(catalogue_at(CATALOGUE_MEDICINES, i - 1)->code, catalogue_at(CATALOGUE_MEDICINES, i)->code) < 0);
}

static void test_search_limits(void **state)
{
    char q[CATALOGUE_QUERY_MAX + 2], codes[16384];

    (void)state;
    expect_search_error(CATALOGUE_MEDICINES, "amox", 0, "invalid_limit");
    expect_search_error(CATALOGUE_MEDICINES, "amox", -1, "invalid_limit");
    expect_search_error(CATALOGUE_MEDICINES, "amox", CATALOGUE_LIMIT_MAX + 1, "invalid_limit");
    search_codes(CATALOGUE_MEDICINES, "", "en", CATALOGUE_LIMIT_MAX, codes, sizeof(codes));
    assert_int_equal(code_position(codes, catalogue_at(CATALOGUE_MEDICINES, CATALOGUE_LIMIT_MAX - 1)->code),
                     CATALOGUE_LIMIT_MAX - 1);
    assert_int_equal(code_position(codes, catalogue_at(CATALOGUE_MEDICINES, CATALOGUE_LIMIT_MAX)->code), -1);
    search_codes(CATALOGUE_MEDICINES, "a", "en", 1, codes, sizeof(codes));
    assert_null(strchr(codes, ' '));
    assert_true(codes[0] != '\0');

    memset(q, 'a', sizeof(q) - 1);
    q[sizeof(q) - 1] = '\0';                                     /* 101 bytes */
    expect_search_error(CATALOGUE_MEDICINES, q, 10, "query_too_long");
    q[CATALOGUE_QUERY_MAX] = '\0';                               /* 100 bytes: accepted */
    search_codes(CATALOGUE_MEDICINES, q, "en", 10, codes, sizeof(codes));
    assert_string_equal(codes, "");
    expect_search_error(CATALOGUE_MEDICINES, "amox\xc3", 10, "invalid_utf8");
    /* 33 of the widest NFKD expansion (U+FDFA, 3 bytes -> 18 characters) fit the fold buffer */
    q[0] = '\0';
    while (strlen(q) + 3 <= CATALOGUE_QUERY_MAX)
        strcat(q, "\xef\xb7\xba");
    search_codes(CATALOGUE_ICD10, q, "en", 10, codes, sizeof(codes));
}

/* Search latency over the biggest catalogue, for the report (and a generous bound so a pathological slowdown
 * fails). */
static void test_search_latency(void **state)
{
    static const char *const queries[] = { "pneumonia", "diarrhee", "J18", "a", "إسهال", "fever unspecified",
                                           "amox 500", "zzzz", "" };
    struct timespec t0, t1;
    double us;
    int i, rounds = 200;

    (void)state;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < rounds; i++) {
        const char *q = queries[(size_t)i % (sizeof(queries) / sizeof(queries[0]))];
        struct err e;
        json_t *res;

        err_clear(&e);
        res = catalogue_search(i % 2 ? CATALOGUE_ICD10 : CATALOGUE_MEDICINES, q, "fr", 20, &e);
        assert_non_null(res);
        json_decref(res);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    us = ((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) / rounds;
    printf("# catalogue_search: %.1f us per search (mean of %d)\n", us, rounds);
    assert_true(us < 20000.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_first_use),
        cmocka_unit_test(test_check_passes),
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_required_codes),
        cmocka_unit_test(test_unique_codes),
        cmocka_unit_test(test_four_languages),
        cmocka_unit_test(test_check_malformed),
        cmocka_unit_test(test_check_shipped_text),
        cmocka_unit_test(test_normalise),
        cmocka_unit_test(test_kind_parse),
        cmocka_unit_test(test_label_fallback),
        cmocka_unit_test(test_fold),
        cmocka_unit_test(test_search_code_prefix),
        cmocka_unit_test(test_search_order),
        cmocka_unit_test(test_search_words),
        cmocka_unit_test(test_search_answer_shape),
        cmocka_unit_test(test_search_empty),
        cmocka_unit_test(test_search_limits),
        cmocka_unit_test(test_search_latency),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
