/* test_names.c — unit tests of core/names: folding across scripts, particles, phonetic keys, the recall and
 * false-positive rates on tests/unit/name_variants.tsv, thread safety, and the cost per name.
 * The data file is found through $SANAD_TESTDATA (a directory) or at tests/unit/ relative to the cwd. */
#include "testutil.h"

#include <pthread.h>
#include <time.h>

#include "core/names.h"

#define VARIANTS_FILE "name_variants.tsv"
#define VARIANTS_MAX  2048

struct variant {
    char a[128], b[128];
    int match;
    char note[128];
};

static struct variant variants[VARIANTS_MAX];
static int nvariants;

/* Load the TSV once (comment lines start with '#', the first line is a header). */
static void variants_load(void)
{
    char path[2048], line[1024];
    FILE *f;
    int lineno = 0;

    if (nvariants > 0)
        return;
    f = tu_data_open(VARIANTS_FILE, path, sizeof(path));
    if (!f)
        fail_msg("cannot open '%s' (run from the repository root or set SANAD_TESTDATA)", path);
    while (fgets(line, sizeof(line), f)) {
        char *fields[4], *p = line, *nl;
        int n = 0;

        lineno++;
        if ((nl = strchr(line, '\n')) != NULL)
            *nl = '\0';
        if (lineno == 1 || line[0] == '#' || line[0] == '\0')
            continue;
        while (n < 4) {
            fields[n++] = p;
            p = strchr(p, '\t');
            if (!p)
                break;
            *p++ = '\0';
        }
        if (n != 4 || (strcmp(fields[2], "0") != 0 && strcmp(fields[2], "1") != 0))
            fail_msg("%s:%d: expected name_a, name_b, 0/1, note", path, lineno);
        assert_true(nvariants < VARIANTS_MAX);
        snprintf(variants[nvariants].a, sizeof(variants[0].a), "%s", fields[0]);
        snprintf(variants[nvariants].b, sizeof(variants[0].b), "%s", fields[1]);
        variants[nvariants].match = fields[2][0] == '1';
        snprintf(variants[nvariants].note, sizeof(variants[0].note), "%s", fields[3]);
        nvariants++;
    }
    fclose(f);
}

static void assert_fold(const char *in, const char *expect)
{
    char out[NAMES_FOLD_MAX];
    int n = names_fold(in, out, sizeof(out));

    if (n < 0 || strcmp(out, expect) != 0)
        fail_msg("names_fold('%s') = %d '%s', expected '%s'", in, n, out, expect);
    assert_int_equal(n, (int)strlen(expect));
}

/* Tokens of a name in any script, joined by '|'. */
static const char *tokens_of(const char *name)
{
    static char buf[NAMES_FOLD_MAX * 2];
    char folded[NAMES_FOLD_MAX];
    struct names_tokens t;
    size_t o = 0;
    int i;

    assert_true(names_fold(name, folded, sizeof(folded)) >= 0);
    names_tokens(folded, &t);
    buf[0] = '\0';
    for (i = 0; i < t.n; i++)
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%s", i ? "|" : "", t.tok[i]);
    return buf;
}

static void assert_tokens(const char *name, const char *expect)
{
    const char *got = tokens_of(name);

    if (strcmp(got, expect) != 0)
        fail_msg("tokens('%s') = '%s', expected '%s'", name, got, expect);
}

static const char *key_of(const char *token)
{
    static char key[NAMES_KEY_MAX];

    assert_true(names_phonetic_key(token, key, sizeof(key)) >= 0);
    return key;
}

/* ---- fold ---- */

static void test_fold_latin(void **state)
{
    (void)state;
    assert_fold("Mohammed", "mohammed");
    assert_fold("  Abd al-Raḥmān  ", "abd al rahman");
    assert_fold("José-María  O'Neil", "jose maria oneil");      /* apostrophe joins, hyphen splits */
    assert_fold("Ja'far", "jafar");
    assert_fold("Ja\xE2\x80\x99" "far", "jafar");                   /* right single quote */
    assert_fold("ʿAbd ʾAllāh", "abd allah");
    assert_fold("Zoë Müller", "zoe muller");
    assert_fold("Md. Rahman, Jr.", "md rahman jr");
    assert_fold("Åsa Øberg Straße", "asa oberg strasse");
    assert_fold("Nguyễn Thị Đào", "nguyen thi dao");
    assert_fold("ｍｏｈａｍｍｅｄ", "mohammed");                     /* NFKC: full-width letters */
}

static void test_fold_turkish_kurdish(void **state)
{
    (void)state;
    assert_fold("İsmail", "ismail");                    /* dotted capital I */
    assert_fold("IŞIL", "ishil");
    assert_fold("ılhan", "ilhan");                      /* dotless i */
    assert_fold("Şükrü Çelik", "shukru chelik");        /* s/c-cedilla are sh/ch, not s/c */
    assert_fold("Hêvî Şêrko", "hevi sherko");
}

static void test_fold_arabic(void **state)
{
    (void)state;
    assert_fold("محمد", "mhmd");
    assert_fold("مُحَمَّد", "mhmd");                          /* harakat and shadda removed */
    assert_fold("محـــمد", "mhmd");                       /* tatweel removed */
    assert_fold("أحمد", "ahmd");                          /* alef with hamza above */
    assert_fold("إبراهيم", "ibrahym");                     /* alef with hamza below */
    assert_fold("آمنة", "amna");                          /* alef madda, ta marbuta */
    assert_fold("فاطمة", "fatma");
    assert_fold("مصطفى", "mstfa");                        /* alef maqsura */
    assert_fold("عمر", "amr");                            /* initial ayn */
    assert_fold("سعد", "sd");                             /* medial ayn unwritten */
    assert_fold("عائشة", "aaysha");                       /* hamza on ya seat */
    assert_fold("عبد الرحمن", "abd alrhmn");
    assert_fold("عبدالله", "abdallah");
    assert_fold("خالد", "khald");
    assert_fold("ذبيح الله", "dhbyh allah");
    assert_fold("ﻣﺤﻤﺪ", "mhmd");                          /* presentation forms (NFKC) */
    assert_fold("محمد\xE2\x80\x8F", "mhmd");              /* right-to-left mark */
    assert_fold("حسين ١٢٣", "hsyn");                      /* Arabic-Indic digits dropped */
}

static void test_fold_persian_pashto_kurdish_script(void **state)
{
    (void)state;
    assert_fold("حسین", "hsyn");                          /* Persian yeh */
    assert_fold("فاطمه", "fatmah");                       /* final heh */
    assert_fold("پروین", "prwyn");
    assert_fold("ژاله", "zhalah");
    assert_fold("گل", "gl");
    assert_fold("ګلالۍ", "glalai");                       /* Pashto gaf and final yeh */
    assert_fold("شێرکۆ", "sherko");                       /* Sorani e and o */
}

static void test_fold_cyrillic(void **state)
{
    (void)state;
    assert_fold("Олена", "olena");
    assert_fold("Юлія", "yuliya");                        /* Ukrainian (і present): BGN */
    assert_fold("Сергій", "serhiy");                      /* Ukrainian г = h */
    assert_fold("Сергей", "sergey");                      /* Russian г = g */
    assert_fold("Наталья", "natalya");                    /* soft sign dropped */
    assert_fold("Олександр Петрович", "oleksandr petrovich"); /* no і, ї, є, ґ: read as Russian */
}

static void test_fold_greek_bengali_ethiopic(void **state)
{
    (void)state;
    assert_fold("Γιώργος", "giorgos");
    assert_fold("Ελένη", "eleni");
    assert_fold("ΧΡΗΣΤΟΣ", "christos");
    assert_fold("হোসেন", "hosen");                        /* final inherent vowel silent */
    assert_fold("আক্তার", "aktar");
    assert_fold("आकाश", "akash");                          /* Devanagari */
    assert_fold("ተስፋይ", "tesfai");                        /* Ge'ez, ES 3842 */
    assert_fold("ሙሉጌታ", "mulugeta");
}

static void test_fold_mixed_and_edges(void **state)
{
    char out[NAMES_FOLD_MAX], small[8];
    char *big;
    int n;

    (void)state;
    assert_fold("Mohammed محمد Олена", "mohammed mhmd olena");
    assert_fold("", "");
    assert_fold("  --- 123 !! ", "");
    assert_int_equal(names_fold("\xC3\x28", out, sizeof(out)), -1);         /* invalid continuation */
    assert_int_equal(names_fold("\xC0\xAF", out, sizeof(out)), -1);         /* overlong */
    assert_int_equal(names_fold("\xED\xA0\x80", out, sizeof(out)), -1);     /* surrogate */
    assert_int_equal(names_fold("abc\xF5\x80\x80\x80", out, sizeof(out)), -1);
    assert_int_equal(names_fold("\xE2\x82", out, sizeof(out)), -1);         /* truncated sequence */
    assert_int_equal(names_fold(NULL, out, sizeof(out)), -1);
    assert_int_equal(names_fold("x", out, 0), -1);
    /* Output cut at a word boundary. */
    n = names_fold("Ali Hassan Mohammed", small, sizeof(small));
    assert_int_equal(n, 3);
    assert_string_equal(small, "ali");
    n = names_fold("Abdulrahman", small, sizeof(small));            /* one long word is cut */
    assert_int_equal(n, 7);
    assert_string_equal(small, "abdulra");
    /* Very long input: only NAMES_INPUT_MAX bytes are read, cut at a character boundary. */
    big = malloc(100000);
    assert_non_null(big);
    for (n = 0; n + 2 < 100000; n += 2)
        memcpy(big + n, "\xD9\x85", 2);                     /* م repeated */
    big[n] = '\0';
    n = names_fold(big, out, sizeof(out));
    assert_true(n > 0 && n < NAMES_FOLD_MAX);
    memset(big, 'a', 99999);
    big[99999] = '\0';
    n = names_fold(big, out, sizeof(out));
    assert_int_equal(n, NAMES_FOLD_MAX - 1);
    free(big);
}

/* ---- tokens ---- */

static void test_tokens_particles(void **state)
{
    (void)state;
    assert_tokens("Abdel Rahman", "abdalrahman");
    assert_tokens("Abd al-Rahman", "abdalrahman");
    assert_tokens("Abdulrahman", "abdalrahman");
    assert_tokens("Abdurrahman", "abdalrahman");
    assert_tokens("Abderrahmane", "abdalrahmane");
    assert_tokens("عبد الرحمن", "abdalrhmn");
    assert_tokens("Abdullah", "abdallah");
    assert_tokens("Abdullahi", "abdallah");
    assert_tokens("Abdoulaye", "abdallah");
    assert_tokens("Cabdullaahi", "abdallah");
    assert_tokens("عبدالله", "abdallah");
    assert_tokens("Abu Bakr", "abubakr");
    assert_tokens("Aboubakar", "abubakar");
    assert_tokens("أبو بكر", "abubkr");
    assert_tokens("Mohammed bin Salman", "mohammed|salman");
    assert_tokens("Muhammad ibn Salman", "muhammad|salman");
    assert_tokens("Fatima bint Ahmed", "fatima|ahmed");
    assert_tokens("Mohamed Ould Abdel Aziz", "mohamed|abdalaziz");
    assert_tokens("Ali al-Hassan", "ali|hassan");
    assert_tokens("Ali El Hassan", "ali|hassan");
    assert_tokens("Harun ar-Rashid", "harun|rashid");
    assert_tokens("Salah ad-Din", "salahaldin");
    assert_tokens("Salah Eddine", "salahaldin");
    assert_tokens("Salahuddin", "salahaldin");
    assert_tokens("Nasir Uddin", "nasiraldin");
    assert_tokens("Nasr Allah", "nasrallah");
    assert_tokens("Nasrullah", "nasrallah");
    assert_tokens("Md. Abdur Rahim", "muhammad|abdalrahim");
    assert_tokens("Mhd Ali", "muhammad|ali");
    assert_tokens("Abdi Mohamed", "abdi|mohamed");                  /* Abdi is a name of its own */
    assert_tokens("Abdou Diouf", "abdou|diouf");
    assert_tokens("Alla Ivanova", "alla|ivanova");                  /* not "Allah" */
    assert_tokens("An Nguyen", "an|nguyen");                        /* not an assimilated article */
    assert_tokens("Abosede", "abosede");                            /* not "Abu" */
    assert_tokens("Ash-Shami", "shami");                            /* a leading article goes too */
    assert_tokens("Ali ash-Shami", "ali|shami");
    assert_tokens("Ben", "ben");                                    /* alone it is a name */
    assert_tokens("Al", "al");
    assert_tokens("Alexander", "alexander");                        /* not an article */
    assert_tokens("", "");
}

static void test_tokens_limits(void **state)
{
    char folded[NAMES_FOLD_MAX];
    struct names_tokens t;
    int i;

    (void)state;
    folded[0] = '\0';
    for (i = 0; i < 30; i++)
        strcat(folded, "ali ");
    assert_int_equal(names_tokens(folded, &t), NAMES_TOKENS_MAX);
    memset(folded, 'x', 200);
    folded[200] = '\0';
    assert_int_equal(names_tokens(folded, &t), 1);
    assert_int_equal((int)strlen(t.tok[0]), NAMES_TOKEN_MAX - 1);
    assert_int_equal(names_tokens(NULL, &t), 0);
}

/* ---- keys ---- */

static void test_keys(void **state)
{
    char keys[NAMES_KEYS_MAX], small[4];

    (void)state;
    assert_string_equal(key_of("mohammed"), "mhmd");
    assert_string_equal(key_of("muhammad"), "mhmd");
    assert_string_equal(key_of("mohamad"), "mhmd");
    assert_string_equal(key_of("mhmd"), "mhmd");
    assert_string_equal(key_of("maxamed"), "mhmd");                /* Somali x */
    assert_string_equal(key_of("ahmet"), key_of("ahmed"));         /* final devoicing */
    assert_string_equal(key_of("hussein"), key_of("husayn"));
    assert_string_equal(key_of("hosen"), key_of("hossain"));
    assert_string_equal(key_of("zeynab"), key_of("zainab"));
    assert_string_equal(key_of("cherif"), key_of("sharif"));       /* ch = sh */
    assert_string_equal(key_of("khalid"), key_of("khaled"));
    assert_string_equal(key_of("qasim"), key_of("kasim"));
    assert_string_equal(key_of("oleksandr"), key_of("alexander"));
    assert_string_equal(key_of("yuliya"), key_of("julia"));
    assert_string_equal(key_of("aia"), "a");                       /* an all-vowel name keeps a letter */
    assert_int_equal(names_phonetic_key("", small, sizeof(small)), -1);
    /* names_keys: every token, plus alternative readings; shared keys for variants */
    assert_true(names_keys("Serhii Ivanov", keys, sizeof(keys)) >= 2);
    assert_non_null(strstr(keys, "srh"));
    assert_true(names_keys("Sergei", keys, sizeof(keys)) >= 2);
    assert_non_null(strstr(keys, "srh"));                          /* g read as Ukrainian h */
    assert_true(names_keys("محمد", keys, sizeof(keys)) >= 1);
    assert_string_equal(keys, "mhmd");
    assert_true(names_keys("Alhassan", keys, sizeof(keys)) >= 2);
    assert_non_null(strstr(keys, "hsn"));                          /* glued article also indexed without */
    assert_int_equal(names_keys("\xFF", keys, sizeof(keys)), -1);
    assert_int_equal(names_keys("x", small, sizeof(small)), -1);
}

/* ---- similarity ---- */

static void test_similarity_basics(void **state)
{
    (void)state;
    assert_true(names_similarity("Mohammed", "mohammed") == 1.0);
    assert_true(names_similarity("Hassan Mohammed", "Mohammed Hassan") == 1.0);   /* order-insensitive */
    assert_true(names_similarity("", "Ali") == 0.0);
    assert_true(names_similarity("Ali", "\xFF") == 0.0);
    assert_true(names_similarity("Mohammed", "Mohammed Ali Hassan") < names_similarity("Mohammed", "Mohammed"));
    assert_true(names_similarity("Mohammed Ali", "محمد علي") >= NAMES_MATCH_THRESHOLD);
    assert_true(names_similarity("Jamal", "Kamal") < NAMES_DUPLICATE_THRESHOLD);
    assert_true(names_similarity("Mohammad Reza", "Mohammadreza") >= NAMES_DUPLICATE_THRESHOLD);
}

static void test_search_score(void **state)
{
    (void)state;
    /* typing as you search: prefixes score high, but below a whole word */
    assert_true(names_search_score("moham", "Mohammed Ali") >= NAMES_MATCH_THRESHOLD);
    assert_true(names_search_score("muham", "Mohammed Ali") >= NAMES_MATCH_THRESHOLD);
    assert_true(names_search_score("moh al", "Mohammed Ali") >= NAMES_MATCH_THRESHOLD);
    assert_true(names_search_score("abdel r", "Abd al-Rahman Hussein") >= NAMES_MATCH_THRESHOLD);
    assert_true(names_search_score("محمد", "Mohamed Hassan") >= NAMES_MATCH_THRESHOLD);
    assert_true(names_search_score("moham", "Mohammed") < names_search_score("mohammed", "Mohammed"));
    /* every query word needs its own candidate word; extra candidate words cost nothing */
    assert_true(names_search_score("ali", "Mohammed Ali Hassan") == 1.0);
    assert_true(names_search_score("ali ahmed", "Ali Hassan") < NAMES_MATCH_THRESHOLD);
    assert_true(names_search_score("kam", "Jamal") < NAMES_MATCH_THRESHOLD);
    assert_true(names_search_score("", "Jamal") == 0.0);
}

/* The measured figures on the variant list. Positives must reach NAMES_MATCH_THRESHOLD (recall >= 95 %);
 * negatives must stay under NAMES_DUPLICATE_THRESHOLD (>= 90 %). Every miss is printed. */
static void test_variant_list(void **state)
{
    int pos = 0, pos_hit = 0, pos_dup = 0, neg = 0, neg_ok = 0, neg_below_match = 0, key_hit = 0, i;
    double recall, specificity;

    (void)state;
    variants_load();
    assert_true(nvariants >= 240);
    for (i = 0; i < nvariants; i++) {
        const struct variant *v = &variants[i];
        double s = names_similarity(v->a, v->b), r = names_similarity(v->b, v->a);

        if (s != r)
            fail_msg("similarity is not symmetric for '%s' / '%s': %.3f vs %.3f", v->a, v->b, s, r);
        if (v->match) {
            char ka[NAMES_KEYS_MAX], kb[NAMES_KEYS_MAX], *tok, *save;
            int shared = 0;

            pos++;
            if (s >= NAMES_MATCH_THRESHOLD)
                pos_hit++;
            else
                printf("  miss  %.3f  %-22s %-22s (%s)\n", s, v->a, v->b, v->note);
            if (s >= NAMES_DUPLICATE_THRESHOLD)
                pos_dup++;
            /* would the key index have found b from a? */
            assert_true(names_keys(v->a, ka, sizeof(ka)) >= 0);
            assert_true(names_keys(v->b, kb, sizeof(kb)) >= 0);
            for (tok = strtok_r(ka, " ", &save); tok && !shared; tok = strtok_r(NULL, " ", &save)) {
                char *p = kb;
                size_t l = strlen(tok);
                while ((p = strstr(p, tok)) != NULL) {
                    if ((p == kb || p[-1] == ' ') && (p[l] == ' ' || p[l] == '\0')) {
                        shared = 1;
                        break;
                    }
                    p += l;
                }
            }
            key_hit += shared;
            if (!shared)
                printf("  nokey        %-22s %-22s\n", v->a, v->b);
        } else {
            neg++;
            if (s < NAMES_DUPLICATE_THRESHOLD)
                neg_ok++;
            else
                printf("  false %.3f  %-22s %-22s (%s)\n", s, v->a, v->b, v->note);
            if (s < NAMES_MATCH_THRESHOLD)
                neg_below_match++;
        }
    }
    /* the trade-off around the thresholds, for whoever tunes them */
    for (i = 70; i <= 95; i += 5) {
        double th = i / 100.0;
        int ph = 0, nb = 0, j;
        for (j = 0; j < nvariants; j++) {
            double s = names_similarity(variants[j].a, variants[j].b);
            if (variants[j].match && s >= th)
                ph++;
            if (!variants[j].match && s < th)
                nb++;
        }
        printf("names: threshold %.2f: recall %5.1f %%, negatives below %5.1f %%\n", th, 100.0 * ph / pos,
               100.0 * nb / neg);
    }
    recall = 100.0 * pos_hit / pos;
    specificity = 100.0 * neg_ok / neg;
    printf("names: %d positive pairs: recall %.1f %% at match threshold %.2f, %.1f %% at duplicate threshold "
           "%.2f; phonetic keys shared by %.1f %%\n", pos, recall, NAMES_MATCH_THRESHOLD,
           100.0 * pos_dup / pos, NAMES_DUPLICATE_THRESHOLD, 100.0 * key_hit / pos);
    printf("names: %d negative pairs: %.1f %% below duplicate threshold, %.1f %% below match threshold\n",
           neg, specificity, 100.0 * neg_below_match / neg);
    assert_true(pos >= 200);
    assert_true(neg >= 40);
    if (recall < 95.0)
        fail_msg("recall %.1f %% is under 95 %%", recall);
    if (specificity < 90.0)
        fail_msg("only %.1f %% of negative pairs stay under the duplicate threshold (need 90 %%)", specificity);
}

/* ---- threads ---- */

static char (*thread_expect)[NAMES_FOLD_MAX];      /* fold of every variants[i].b, computed on one thread */

static void *thread_fold(void *p)
{
    int *failures = p, round, i;
    char out[NAMES_FOLD_MAX];

    for (round = 0; round < 10; round++)
        for (i = 0; i < nvariants; i++)
            if (names_fold(variants[i].b, out, sizeof(out)) < 0 || strcmp(out, thread_expect[i]) != 0)
                (*failures)++;
    return NULL;
}

static void test_threads(void **state)
{
    pthread_t th[4];
    int failures[4] = { 0 }, i;

    (void)state;
    variants_load();
    thread_expect = calloc((size_t)nvariants, sizeof(*thread_expect));
    assert_non_null(thread_expect);
    for (i = 0; i < nvariants; i++)
        assert_true(names_fold(variants[i].b, thread_expect[i], sizeof(thread_expect[i])) >= 0);
    for (i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, thread_fold, &failures[i]), 0);
    for (i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(failures[i], 0);
    }
    free(thread_expect);
    thread_expect = NULL;
    /* shut down and start again: the module must come back */
    names_shutdown();
    assert_int_equal(names_init(), 0);
    assert_fold("Олена", "olena");
}

/* ---- cost (printed, not asserted) ---- */

static double elapsed_us(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e6 + (double)(b->tv_nsec - a->tv_nsec) / 1e3;
}

static void test_cost(void **state)
{
    char folded[NAMES_FOLD_MAX], key[NAMES_KEY_MAX];
    struct names_tokens t;
    struct timespec t0, t1;
    int reps = getenv("SANAD_SANITIZED") ? 20 : 1000, r, i, j, names = 0, nonascii = 0;
    double sims = 0.0;

    (void)state;
    variants_load();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (r = 0; r < reps; r++)
        for (i = 0; i < nvariants; i++) {
            const char *name = (i & 1) ? variants[i].b : variants[i].a;
            assert_true(names_fold(name, folded, sizeof(folded)) >= 0);
            names_tokens(folded, &t);
            for (j = 0; j < t.n; j++)
                names_phonetic_key(t.tok[j], key, sizeof(key));
            names++;
        }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("names: fold+tokens+keys: %.2f us per name (mean over %d names, %d reps of the variant list)\n",
           elapsed_us(&t0, &t1) / names, names, reps);
    /* the ICU path alone: names that are not plain ASCII */
    names = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (r = 0; r < reps; r++)
        for (i = 0; i < nvariants; i++) {
            const unsigned char *p = (const unsigned char *)variants[i].b;
            while (*p && *p < 0x80)
                p++;
            if (!*p)
                continue;
            assert_true(names_fold(variants[i].b, folded, sizeof(folded)) >= 0);
            nonascii++;
            names++;
        }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (names)
        printf("names: fold of a non-ASCII name (ICU): %.2f us per name\n", elapsed_us(&t0, &t1) / names);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (r = 0; r < reps / 10 + 1; r++)
        for (i = 0; i < nvariants; i++)
            sims += names_similarity(variants[i].a, variants[i].b);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("names: similarity of a pair (both folded inside): %.2f us\n",
           elapsed_us(&t0, &t1) / ((reps / 10 + 1) * nvariants));
    assert_true(sims > 0.0 && nonascii > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold_latin),
        cmocka_unit_test(test_fold_turkish_kurdish),
        cmocka_unit_test(test_fold_arabic),
        cmocka_unit_test(test_fold_persian_pashto_kurdish_script),
        cmocka_unit_test(test_fold_cyrillic),
        cmocka_unit_test(test_fold_greek_bengali_ethiopic),
        cmocka_unit_test(test_fold_mixed_and_edges),
        cmocka_unit_test(test_tokens_particles),
        cmocka_unit_test(test_tokens_limits),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_similarity_basics),
        cmocka_unit_test(test_search_score),
        cmocka_unit_test(test_variant_list),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_cost),
    };
    int rc;

    assert_int_equal(names_init(), 0);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    names_shutdown();
    return rc;
}
