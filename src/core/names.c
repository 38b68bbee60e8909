/* names.c — folding, tokenising, phonetic keys and similarity of personal names across scripts and spellings.
 *
 * The rules and the reasons for them are in docs/names.md; this file keeps the comments short. Internally a
 * token is compared in a "canonical" alphabet: lower-case letters plus upper-case letters that stand for one
 * sound written with two Latin letters (S = sh, C = ch, X = kh, G = gh, T = th, D = dh, Z = zh).
 */
#include "core/names.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/parseerr.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>
#include <unicode/utrans.h>

/* ---------------------------------------------------------------------------------------------------------
 * Transliteration rules (ICU syntax). One chain per case; the C code picks the cheapest that covers the input.
 */

/* Variables shared by the rule sets below. */
#define RULES_VARS \
    "$nl = [^[:L:][:M:]];\n"                                  /* not part of a word */

/* Arabic script (Arabic, Persian, Dari, Pashto, Kurdish Sorani, Urdu) -> the Latin letters people use when
 * they write these names: consonants as in common transliterations, long vowels as a/w/y, no short vowels
 * (the script does not write them; the comparison forgives their absence). It comes right after
 * RULES_VARS, in the same pass: a "::ID;" line here would make ICU load its whole registry of
 * transliterators (~20 ms) for a chain that needs none. */
#define RULES_ARABIC \
    "\\u0627\\u0644\\u0644\\u0647 > allah;\n"               /* the word Allah, also inside Abdallah */ \
    "\\u0627\\u0644\\u0639 > ala;\n"                        /* al- + ayn: "al-Aziz" */ \
    "$nl { \\u0639\\u0645\\u0631\\u0648 } $nl > amr;\n"       /* Amr: its final waw is silent */ \
    "^ \\u0639\\u0645\\u0631\\u0648 } $nl > amr;\n" \
    "$nl { \\u0639\\u0645\\u0631\\u0648 } $ > amr;\n" \
    "^ \\u0639\\u0645\\u0631\\u0648 } $ > amr;\n" \
    "$nl { [\\u0627\\u0623\\u0622\\u0671] > a;\n" \
    "^ [\\u0627\\u0623\\u0622\\u0671] > a;\n" \
    "$nl { \\u0625 > i;\n"                                  /* initial hamza below: Ibrahim, Ismail, Iman */ \
    "^ \\u0625 > i;\n" \
    "$nl { \\u0639 > a;\n"                                  /* initial ayn: Ali, Abbas, Aisha */ \
    "^ \\u0639 > a;\n" \
    "[\\u0627\\u0623\\u0622\\u0671\\u0625] > a;\n" \
    "\\u0639 > ;\n"                                         /* medial ayn is not written in Latin */ \
    "\\u0621 > ;\n" \
    "\\u0624 > w;\n" \
    "\\u0626 > y;\n" \
    "[\\u0649\\u0629\\u06C0\\u06C3] > a;\n"                 /* alef maqsura, ta marbuta: Mustafa, Fatima */ \
    "[y\\u064A\\u06CC\\u0648w] { [\\u0647\\u06C1] } $nl > h;\n" \
    "[y\\u064A\\u06CC\\u0648w] { [\\u0647\\u06C1] } $ > h;\n" \
    "[\\u0647\\u06C1] } $nl > ah;\n"                        /* final heh: Fatemeh, Abdullah */ \
    "[szktdgpc] { [\\u0647\\u06C1] > ah;\n"                /* not a digraph: Zahra, Sohrab */ \
    "[\\u0647\\u06C1] } $ > ah;\n" \
    "[\\u0647\\u06C1\\u062D\\u06BE] > h;\n" \
    "\\u0628 > b;\n" \
    "[\\u062A\\u0637\\u0679\\u067C] > t;\n" \
    "\\u062B > th;\n" \
    "\\u062C > j;\n" \
    "\\u062E > kh;\n" \
    "[\\u062F\\u0636\\u0688\\u0689] > d;\n" \
    "\\u0630 > dh;\n" \
    "[\\u0631\\u0691\\u0693\\u0695] > r;\n" \
    "[\\u0632\\u0638\\u0681] > z;\n" \
    "[\\u0633\\u0635\\u0685] > s;\n" \
    "[\\u0634\\u069A] > sh;\n" \
    "\\u063A > gh;\n" \
    "\\u0641 > f;\n" \
    "\\u0642 > q;\n" \
    "[\\u0643\\u06A9\\u06AA] > k;\n" \
    "[\\u06AF\\u06AB] > g;\n" \
    "[\\u0644\\u06B5] > l;\n" \
    "\\u0645 > m;\n" \
    "[\\u0646\\u06BA\\u06BC] > n;\n" \
    "[\\u0648] > w;\n" \
    "[\\u064A\\u06CC] > y;\n" \
    "\\u067E > p;\n" \
    "\\u0686 > ch;\n" \
    "[\\u0698\\u0696] > zh;\n" \
    "[\\u06A4\\u06CB] > v;\n" \
    "[\\u06C6] > o;\n" \
    "[\\u06C7] > u;\n" \
    "[\\u06D5\\u06CE\\u06D0\\u06D2] > e;\n" \
    "\\u06CD > ai;\n"

/* Bengali and Devanagari: the inherent vowel of a word-final consonant is silent ("Hossain", not
 * "Hosena"), so give such a consonant a virama before ICU's Indic-Latin runs. */
#define RULES_INDIC \
    "::Null;\n" \
    "$bn = [\\u0995-\\u09B9\\u09CE\\u09DC-\\u09DF];\n" \
    "$dv = [\\u0915-\\u0939\\u0958-\\u095F];\n" \
    "($bn) } $nl > $1 \\u09CD;\n" \
    "($bn) } $ > $1 \\u09CD;\n" \
    "($dv) } $nl > $1 \\u094D;\n" \
    "($dv) } $ > $1 \\u094D;\n"

/* Per-script standards where ICU has a better one than Any-Latin's scholarly default. */
#define RULES_GREEK     "::Greek-Latin/UNGEGN;\n"
#define RULES_RUSSIAN   "::Russian-Latin/BGN;\n"
#define RULES_UKRAINIAN "::Ukrainian-Latin/BGN;\n"
#define RULES_ETHIOPIC  "::Ethiopic-Latin/ES3842;\n"
#define RULES_BENGALI   "::Bengali-Latin;\n"
#define RULES_ANY       "::Any-Latin;\n"

/* Chains: the cheapest one that covers the scripts found in the input is used, because a transliterator
 * costs time per step even when the step finds nothing to do. Everything else (NFKC, case folding, marks,
 * ASCII) is done in C with ICU's normaliser and character properties: ICU's Latin-ASCII transliterator alone
 * costs more than all of that together. */
enum chain {
    CHAIN_LATIN,        /* Latin letters with diacritics: no transliterator */
    CHAIN_ARABIC,       /* Arabic script (and Latin) */
    CHAIN_RUSSIAN,      /* Cyrillic read as Russian (and Latin) */
    CHAIN_UKRAINIAN,    /* Cyrillic with і, ї, є or ґ, read as Ukrainian (and Latin) */
    CHAIN_GREEK,
    CHAIN_ETHIOPIC,
    CHAIN_INDIC,        /* Bengali (Devanagari goes through CHAIN_ANY) */
    CHAIN_ANY,          /* several scripts, or one without a chain of its own; Cyrillic read as Russian */
    CHAIN_ANY_UK,       /* the same with Ukrainian Cyrillic */
    CHAIN_COUNT
};

static const char *const chain_rules[CHAIN_COUNT] = {
    [CHAIN_LATIN] = NULL,
    [CHAIN_ARABIC] = RULES_VARS RULES_ARABIC,
    [CHAIN_RUSSIAN] = RULES_RUSSIAN,
    [CHAIN_UKRAINIAN] = RULES_UKRAINIAN,
    [CHAIN_GREEK] = RULES_GREEK,
    [CHAIN_ETHIOPIC] = RULES_ETHIOPIC,
    [CHAIN_INDIC] = RULES_VARS RULES_INDIC RULES_BENGALI,
    [CHAIN_ANY] = RULES_VARS RULES_ARABIC RULES_INDIC RULES_GREEK RULES_RUSSIAN RULES_ETHIOPIC RULES_ANY,
    [CHAIN_ANY_UK] = RULES_VARS RULES_ARABIC RULES_INDIC RULES_GREEK RULES_UKRAINIAN RULES_ETHIOPIC RULES_ANY,
};

/* ---------------------------------------------------------------------------------------------------------
 * Transliterator lifetime. UTransliterator objects must not be used by two threads at once, so each thread
 * clones the compiled templates on first use (a clone costs far less than compiling rules) and keeps them
 * until it exits. All live clones are also on a list so names_shutdown() can close them.
 */

struct thread_ctx {
    UTransliterator *t[CHAIN_COUNT];
    struct thread_ctx *next;
};

static pthread_mutex_t names_lock = PTHREAD_MUTEX_INITIALIZER;
/* One lock per chain, held while it compiles and while a thread clones it: a thread that needs a chain
 * compiled already does not wait for another being compiled (the warm-up's Any-Latin takes longest). */
static pthread_mutex_t chain_lock[CHAIN_COUNT] = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
};
_Static_assert(CHAIN_COUNT == 9, "one chain_lock initialiser per chain");
static atomic_int names_ready;                  /* ctx_key valid */
static int names_failed;                        /* it could not be made: do not retry on every call */
static UTransliterator *templates[CHAIN_COUNT]; /* compiled on first use: most nodes see two or three scripts */
static int chain_failed[CHAIN_COUNT];           /* compiling failed once: do not retry on every call */
static atomic_int chain_done[CHAIN_COUNT];      /* compiled, or failed: using it waits for nobody */
static pthread_key_t ctx_key;
static struct thread_ctx *ctx_list;

static void ctx_close(struct thread_ctx *c)
{
    int i;

    for (i = 0; i < CHAIN_COUNT; i++)
        if (c->t[i])
            utrans_close(c->t[i]);
    free(c);
}

/* Thread-exit destructor: unlink and close the exiting thread's clones. */
static void ctx_destroy(void *p)
{
    struct thread_ctx *c = p, **pp;

    pthread_mutex_lock(&names_lock);
    for (pp = &ctx_list; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    pthread_mutex_unlock(&names_lock);
    ctx_close(c);
}

/* Compile one chain's rules (ASCII text with \\u escapes). NULL, with a message on stderr, when ICU refuses
 * them: a bug in the rules or a broken ICU install, never a property of the input. */
static UTransliterator *template_compile(const char *rules)
{
    UChar id[] = { 's', 'a', 'n', 'a', 'd', '-', 'n', 'a', 'm', 'e', 's', 0 };
    UErrorCode st = U_ZERO_ERROR;
    UParseError pe;
    UTransliterator *t = NULL;
    size_t n = strlen(rules);
    UChar *u = malloc((n + 1) * sizeof(*u));

    if (!u)
        return NULL;
    u_uastrncpy(u, rules, (int32_t)n + 1);
    t = utrans_openU(id, -1, UTRANS_FORWARD, u, (int32_t)n, &pe, &st);
    free(u);
    if (U_FAILURE(st)) {
        fprintf(stderr, "names: cannot compile transliteration rules: %s (line %d)\n", u_errorName(st),
                (int)pe.line);
        return NULL;
    }
    return t;
}

/* The key of the per-thread clones, once (under names_lock). */
static int names_setup_locked(void)
{
    if (names_ready)
        return 0;
    if (names_failed || pthread_key_create(&ctx_key, ctx_destroy) != 0) {
        names_failed = 1;
        return -1;
    }
    names_ready = 1;
    return 0;
}

/* Chain k's template, compiled on first use (under chain_lock[k]); NULL when ICU refuses it. */
static UTransliterator *template_get_locked(enum chain k)
{
    if (!templates[k] && !chain_failed[k] && chain_rules[k] && !(templates[k] = template_compile(chain_rules[k])))
        chain_failed[k] = 1;
    atomic_store(&chain_done[k], 1);
    return templates[k];
}

int names_init(void)
{
    int i, rc;

    pthread_mutex_lock(&names_lock);
    rc = names_setup_locked();
    pthread_mutex_unlock(&names_lock);
    /* chain by chain, the cheapest and commonest (Arabic) first: another thread that needs one meanwhile
     * waits for that one only, or compiles it itself if this has not come to it yet */
    for (i = 0; rc == 0 && i < CHAIN_COUNT; i++) {
        pthread_mutex_lock(&chain_lock[i]);
        if (chain_rules[i] && !template_get_locked((enum chain)i))
            rc = -1;
        pthread_mutex_unlock(&chain_lock[i]);
    }
    return rc;
}

void names_shutdown(void)
{
    struct thread_ctx *c, *next;
    int i;

    pthread_mutex_lock(&names_lock);
    for (i = 0; i < CHAIN_COUNT; i++)
        pthread_mutex_lock(&chain_lock[i]);
    if (!names_ready)
        goto out;
    /* Deleting the key (it runs no destructors) makes every thread's old pointer unreachable; the clones
     * themselves are closed from the list. */
    pthread_key_delete(ctx_key);
    for (c = ctx_list; c; c = next) {
        next = c->next;
        ctx_close(c);
    }
    ctx_list = NULL;
    for (i = 0; i < CHAIN_COUNT; i++) {
        if (templates[i])
            utrans_close(templates[i]);
        templates[i] = NULL;
        chain_failed[i] = 0;
        atomic_store(&chain_done[i], 0);
    }
    names_ready = 0;
out:
    for (i = 0; i < CHAIN_COUNT; i++)
        pthread_mutex_unlock(&chain_lock[i]);
    pthread_mutex_unlock(&names_lock);
}

/* This thread's transliterator for chain k, cloned on first use; NULL when ICU fails. */
static UTransliterator *ctx_transliterator(enum chain k)
{
    struct thread_ctx *c;
    UErrorCode st = U_ZERO_ERROR;

    if (!names_ready) {
        int rc;

        pthread_mutex_lock(&names_lock);
        rc = names_setup_locked();
        pthread_mutex_unlock(&names_lock);
        if (rc < 0)
            return NULL;
    }
    c = pthread_getspecific(ctx_key);
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c)
            return NULL;
        if (pthread_setspecific(ctx_key, c) != 0) {
            free(c);
            return NULL;
        }
        pthread_mutex_lock(&names_lock);
        c->next = ctx_list;
        ctx_list = c;
        pthread_mutex_unlock(&names_lock);
    }
    if (!c->t[k]) {
        pthread_mutex_lock(&chain_lock[k]);   /* cloning reads the template; keep it from racing a shutdown */
        if (template_get_locked(k))
            c->t[k] = utrans_clone(templates[k], &st);
        pthread_mutex_unlock(&chain_lock[k]);
        if (U_FAILURE(st))
            c->t[k] = NULL;
    }
    return c->t[k];
}

/* ---------------------------------------------------------------------------------------------------------
 * Per-thread caches (folds, canonical spellings, token keys, pair scores; ~880 KiB in all). Allocated on a
 * thread's first use of each: as thread-local arrays they were zeroed for every new thread, whether it ever
 * read a name or not (a sync or an HTTP connection starts threads that never do). They are freed when the
 * thread exits. NULL when memory is short: the caller then computes uncached.
 */

enum { CACHE_FOLD, CACHE_CANON, CACHE_TOKEN_KEYS, CACHE_PAIR, CACHE_COUNT };

struct thread_caches {
    void *c[CACHE_COUNT];
};

static pthread_once_t caches_once = PTHREAD_ONCE_INIT;
static pthread_key_t caches_key;
static int caches_key_ok;

static void caches_destroy(void *p)
{
    struct thread_caches *t = p;
    int i;

    for (i = 0; i < CACHE_COUNT; i++)
        free(t->c[i]);
    free(t);
}

static void caches_key_init(void)
{
    caches_key_ok = pthread_key_create(&caches_key, caches_destroy) == 0;
}

static void *thread_cache(int which, size_t size)
{
    struct thread_caches *t;

    pthread_once(&caches_once, caches_key_init);
    if (!caches_key_ok)
        return NULL;
    if ((t = pthread_getspecific(caches_key)) == NULL) {
        if ((t = calloc(1, sizeof(*t))) == NULL)
            return NULL;
        if (pthread_setspecific(caches_key, t) != 0) {
            free(t);
            return NULL;
        }
    }
    if (!t->c[which])
        t->c[which] = calloc(1, size);
    return t->c[which];
}

/* ---------------------------------------------------------------------------------------------------------
 * Folding.
 */

/* Length of the valid UTF-8 sequence starting at s (at most n bytes), or 0 when it is invalid: overlong
 * forms, surrogates and code points above U+10FFFF are refused. *cp receives the code point. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    uint32_t c;
    size_t len, i;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        len = 2;
        c = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3;
        c = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4;
        c = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)) || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return len;
}

/* Script classes of the input that decide the chain. */
enum {
    SCRIPT_ARABIC = 1 << 0,
    SCRIPT_CYRILLIC = 1 << 1,
    SCRIPT_UKRAINIAN = 1 << 2,          /* Cyrillic letters only Ukrainian uses */
    SCRIPT_GREEK = 1 << 3,
    SCRIPT_ETHIOPIC = 1 << 4,
    SCRIPT_INDIC = 1 << 5,
    SCRIPT_OTHER = 1 << 6,
};

/* The script class of a non-ASCII code point; 0 for Latin letters, marks, modifiers and punctuation. */
static int script_of(uint32_t c)
{
    if (c <= 0x036F || (c >= 0x1E00 && c <= 0x1EFF) || (c >= 0x2000 && c <= 0x206F) ||
        (c >= 0xFF00 && c <= 0xFF5E))
        return 0;
    if ((c >= 0x0600 && c <= 0x06FF) || (c >= 0x0750 && c <= 0x077F) || (c >= 0x08A0 && c <= 0x08FF) ||
        (c >= 0xFB50 && c <= 0xFDFF) || (c >= 0xFE70 && c <= 0xFEFF))
        return c == 0xFEFF ? 0 : SCRIPT_ARABIC;
    if (c == 0x0404 || c == 0x0406 || c == 0x0407 || c == 0x0454 || c == 0x0456 || c == 0x0457 ||
        c == 0x0490 || c == 0x0491)
        return SCRIPT_CYRILLIC | SCRIPT_UKRAINIAN;
    if (c >= 0x0400 && c <= 0x052F)
        return SCRIPT_CYRILLIC;
    if ((c >= 0x0370 && c <= 0x03FF) || (c >= 0x1F00 && c <= 0x1FFF))
        return SCRIPT_GREEK;
    if ((c >= 0x1200 && c <= 0x139F) || (c >= 0x2D80 && c <= 0x2DDF) || (c >= 0xAB00 && c <= 0xAB2F))
        return SCRIPT_ETHIOPIC;
    if (c >= 0x0980 && c <= 0x09FF)
        return SCRIPT_INDIC;
    return SCRIPT_OTHER;
}

static enum chain chain_for(int scripts)
{
    int uk = scripts & SCRIPT_UKRAINIAN;

    switch (scripts & ~SCRIPT_UKRAINIAN) {
    case 0:
        return CHAIN_LATIN;
    case SCRIPT_ARABIC:
        return CHAIN_ARABIC;
    case SCRIPT_CYRILLIC:
        return uk ? CHAIN_UKRAINIAN : CHAIN_RUSSIAN;
    case SCRIPT_GREEK:
        return CHAIN_GREEK;
    case SCRIPT_ETHIOPIC:
        return CHAIN_ETHIOPIC;
    case SCRIPT_INDIC:
        return CHAIN_INDIC;
    default:
        return uk ? CHAIN_ANY_UK : CHAIN_ANY;
    }
}

/* Write the letters of src (n bytes, ASCII expected; other bytes are dropped) into out as lower-case words
 * separated by single spaces; apostrophes vanish, every other non-letter breaks words. The output is cut at
 * a word boundary when it does not fit (a first word longer than the buffer is cut). Returns the length. */
static int fold_ascii(const char *src, size_t n, char *out, size_t outlen)
{
    size_t i = 0, o = 0, ws, wl;

    while (i < n) {
        while (i < n && !((src[i] | 0x20) >= 'a' && (src[i] | 0x20) <= 'z'))
            i++;
        if (i >= n)
            break;
        /* Copy one word into its place after a separating space, then check it fits. */
        ws = o + (o > 0);
        wl = 0;
        while (i < n) {
            unsigned char ch = (unsigned char)src[i];
            if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z') {
                if (ws + wl < outlen - 1)
                    out[ws + wl] = (char)(ch | 0x20);
                wl++;
            } else if (ch != '\'' && ch != '`' && ch < 0x80) {
                break;
            }
            i++;
        }
        if (ws + wl > outlen - 1) {
            if (o == 0) {               /* a single over-long word: keep what fits */
                o = outlen - 1;
            }
            break;
        }
        if (o > 0)
            out[o] = ' ';
        o = ws + wl;
    }
    out[o] = '\0';
    return (int)o;
}

/* Characters that are dropped before transliteration: apostrophes and their look-alikes (they mark an ayn
 * or a hamza inside a word: "Ja'far" is "Jafar"), the Arabic tatweel, harakat and Quranic marks. Invisible
 * format characters (bidi marks, zero-width joiners, soft hyphen) go by their general category. */
static int is_dropped(UChar32 c)
{
    return c == 0x27 || c == 0x60 || c == 0xB4 || c == 0x2018 || c == 0x2019 || (c >= 0x02B9 && c <= 0x02BF) ||
           c == 0x02C8 || c == 0x0640 || (c >= 0x064B && c <= 0x065F) || c == 0x0670 ||
           (c >= 0x06D6 && c <= 0x06ED) || (c >= 0x08D3 && c <= 0x08FF) || u_charType(c) == U_FORMAT_CHAR;
}

/* Latin letters whose plain base letter loses a sound or that do not decompose: the Turkish and Kurdish
 * s-cedilla is "sh" (not "s"), the dotless i is "i", the Scandinavian o-slash is "o". NULL when c is not one. */
static const char *latin_special(UChar32 c)
{
    switch (c) {
    case 0x015F: case 0x0219: case 0x0161: case 0x015B: return "sh";   /* ş ș š ś */
    case 0x00E7: case 0x010D: case 0x0107: return "ch";                 /* ç č ć */
    case 0x017E: return "zh";                                           /* ž */
    case 0x1E2B: case 0x1E96: return "kh";                              /* ḫ ẖ */
    case 0x00DF: return "ss";
    case 0x00E6: return "ae";
    case 0x0153: return "oe";
    case 0x00F8: return "o";
    case 0x0131: return "i";
    case 0x0111: case 0x00F0: return "d";
    case 0x0142: return "l";
    case 0x00FE: return "th";
    case 0x014B: return "ng";
    case 0x0127: return "h";
    case 0x0259: case 0x01DD: return "e";
    case 0x0263: return "gh";
    case 0x0167: return "t";
    default: return NULL;
    }
}

#define UBUF_MAX (NAMES_INPUT_MAX * 8)  /* UTF-16 units after NFKC and transliteration; more is refused */

/* The non-ASCII path of names_fold: NFKC, case folding, dropped characters, transliteration by the chain for
 * the scripts found, special Latin letters, NFD without marks, then letters a-z kept and everything else a
 * word break. Returns the output length or -1. */
static int fold_unicode(const char *utf8, size_t n, int scripts, char *out, size_t outlen)
{
    UChar a[UBUF_MAX], b[UBUF_MAX];
    char tmp[UBUF_MAX];
    UErrorCode st = U_ZERO_ERROR;
    const UNormalizer2 *nfkc = unorm2_getNFKCInstance(&st), *nfd = unorm2_getNFDInstance(&st);
    UTransliterator *t = NULL;
    enum chain k = chain_for(scripts);
    int32_t la, lb, i, limit;
    size_t o = 0;

    if (U_FAILURE(st))
        return -1;
    if (k != CHAIN_LATIN && !(t = ctx_transliterator(k)))
        return -1;
    u_strFromUTF8(a, UBUF_MAX, &la, utf8, (int32_t)n, &st);
    lb = unorm2_normalize(nfkc, a, la, b, UBUF_MAX, &st);
    la = u_strFoldCase(a, UBUF_MAX, b, lb, U_FOLD_CASE_DEFAULT, &st);
    if (U_FAILURE(st) || la >= UBUF_MAX)
        return -1;
    for (i = 0, lb = 0; i < la;) {
        UChar32 c;
        int32_t start = i;
        U16_NEXT(a, i, la, c);
        if (!is_dropped(c))
            while (start < i)
                a[lb++] = a[start++];
    }
    la = lb;
    if (t) {
        limit = la;
        utrans_transUChars(t, a, &la, UBUF_MAX, 0, &limit, &st);
        if (U_FAILURE(st) || la >= UBUF_MAX)
            return -1;
    }
    for (i = 0, lb = 0; i < la && lb < UBUF_MAX - 2;) {
        UChar32 c;
        const char *sp;
        int32_t start = i;
        U16_NEXT(a, i, la, c);
        if ((sp = latin_special(c)) != NULL)
            while (*sp)
                b[lb++] = (UChar)*sp++;
        else
            while (start < i)
                b[lb++] = a[start++];
    }
    la = unorm2_normalize(nfd, b, lb, a, UBUF_MAX, &st);
    if (U_FAILURE(st) || la >= UBUF_MAX)
        return -1;
    for (i = 0; i < la && o < sizeof(tmp) - 1;) {
        UChar32 c;
        U16_NEXT(a, i, la, c);
        if (c >= 'a' && c <= 'z')
            tmp[o++] = (char)c;
        else if (c >= 'A' && c <= 'Z')
            tmp[o++] = (char)(c | 0x20);
        else if (is_dropped(c) || (c >= 0x80 && (u_isalpha(c) || (U_GET_GC_MASK(c) & U_GC_M_MASK))))
            continue;                   /* marks, and letters no rule turned into a-z */
        else
            tmp[o++] = ' ';
    }
    return fold_ascii(tmp, o, out, outlen);
}

/* Folds of non-ASCII names, per thread: transliteration is the costliest step (microseconds through ICU)
 * and the same names come again and again (a registry holds thousands of محمد). Direct-mapped on a hash
 * of the input; names longer than a slot are folded uncached. */
#define FOLD_CACHE_SIZE 1024
#define FOLD_CACHE_IN 96
#define FOLD_CACHE_OUT 128
struct fold_entry {
    char in[FOLD_CACHE_IN];
    char out[FOLD_CACHE_OUT];
    int len;
};

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;

    while (n--)
        h = (h ^ (unsigned char)*p++) * 1099511628211ULL;
    return h;
}

static int fold_unicode_cached(const char *utf8, size_t n, int scripts, char *out, size_t outlen)
{
    struct fold_entry *cache, *slot;
    int len;

    if (n >= FOLD_CACHE_IN || outlen < FOLD_CACHE_OUT
        || (cache = thread_cache(CACHE_FOLD, sizeof(*cache) * FOLD_CACHE_SIZE)) == NULL)
        return fold_unicode(utf8, n, scripts, out, outlen);
    slot = &cache[hash_bytes(utf8, n) % FOLD_CACHE_SIZE];
    if (slot->in[0] && strncmp(slot->in, utf8, n) == 0 && slot->in[n] == '\0') {
        memcpy(out, slot->out, (size_t)slot->len + 1);
        return slot->len;
    }
    len = fold_unicode(utf8, n, scripts, out, outlen);
    if (len >= 0 && len < FOLD_CACHE_OUT) {
        memcpy(slot->in, utf8, n);
        slot->in[n] = '\0';
        memcpy(slot->out, out, (size_t)len + 1);
        slot->len = len;
    }
    return len;
}

/* Fold a name of several words word by word, each through the cache: the same words recur in many
 * combinations. Transliteration does not cross spaces, so this gives the same result as folding the
 * whole (checked over the variant table and the demo names). */
static int fold_words(const char *utf8, size_t n, char *out, size_t outlen)
{
    char word[NAMES_FOLD_MAX];
    size_t i = 0, o = 0, w;
    int len;

    out[0] = '\0';
    while (i < n) {
        while (i < n && utf8[i] == ' ')
            i++;
        for (w = 0; i + w < n && utf8[i + w] != ' '; w++)
            ;
        if (w == 0)
            break;
        if (w >= NAMES_INPUT_MAX)
            return -1;
        {
            char in[NAMES_INPUT_MAX + 1];

            memcpy(in, utf8 + i, w);
            in[w] = '\0';
            len = names_fold(in, word, sizeof(word));
        }
        if (len < 0)
            return -1;
        i += w;
        if (len == 0)
            continue;
        if (o + (o ? 1 : 0) + (size_t)len + 1 > outlen)
            break;      /* cut at a word, like the whole-name fold */
        if (o)
            out[o++] = ' ';
        memcpy(out + o, word, (size_t)len + 1);
        o += (size_t)len;
    }
    return (int)o;
}

int names_fold(const char *utf8, char *out, size_t outlen)
{
    const unsigned char *s = (const unsigned char *)utf8;
    int ascii = 1, scripts = 0;
    size_t n, i, len;
    uint32_t cp;

    if (!utf8 || !out || outlen == 0)
        return -1;
    out[0] = '\0';
    n = strnlen(utf8, NAMES_INPUT_MAX + 1);
    if (n > NAMES_INPUT_MAX) {
        n = NAMES_INPUT_MAX;
        while (n > 0 && (s[n] & 0xC0) == 0x80)  /* cut at a character boundary */
            n--;
    }
    for (i = 0; i < n; i += len) {
        len = utf8_decode(s + i, n - i, &cp);
        if (len == 0)
            return -1;
        if (cp >= 0x80) {
            ascii = 0;
            scripts |= script_of(cp);
        }
    }
    if (ascii)
        return fold_ascii(utf8, n, out, outlen);
    if (memchr(utf8, ' ', n))
        return fold_words(utf8, n, out, outlen);
    return fold_unicode_cached(utf8, n, scripts, out, outlen);
}

int names_fold_ready(const char *utf8)
{
    const unsigned char *s = (const unsigned char *)utf8;
    size_t n, i, len;
    uint32_t cp;
    int scripts = 0;
    enum chain k;

    if (!utf8)
        return 1;
    n = strnlen(utf8, NAMES_INPUT_MAX);
    /* word by word, as names_fold folds a name of several words */
    for (i = 0; i <= n; i += len) {
        if (i == n || s[i] == ' ') {
            k = chain_for(scripts);
            if (k != CHAIN_LATIN && !atomic_load(&chain_done[k]))
                return 0;
            scripts = 0;
            len = 1;
            continue;
        }
        if ((len = utf8_decode(s + i, n - i, &cp)) == 0)
            return 1;   /* not valid UTF-8: names_fold refuses it at once */
        if (cp >= 0x80)
            scripts |= script_of(cp);
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------------------------
 * Tokens and particles.
 */

static int str_in(const char *w, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(w, *list) == 0)
            return 1;
    return 0;
}

static int ends_with(const char *w, const char *suffix, size_t *base)
{
    size_t lw = strlen(w), ls = strlen(suffix);

    if (lw < ls)
        return 0;
    *base = lw - ls;
    return strcmp(w + lw - ls, suffix) == 0;
}

static int is_vowel(char c)
{
    return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

/* "Son/daughter of" and "family of": meaningful to people, useless to tell names apart. */
static const char *const connectors[] = { "bin", "ibn", "bn", "bint", "binti", "bte", "ben", "ould", "wuld",
                                          "walad", "ag", NULL };
/* Abd- words that join the next word: "abd al rahman", "abdel rahman", "abdul rahman". Not "Abdi", "Abdou"
 * or "Abdu": those are names of their own (Somali, West African, Egyptian). */
static const char *const abd_words[] = { "abd", "abdel", "abdul", "abdal", "abdol", "abdil", "abdur", "abdus",
                                         "abdoul", "cabd", NULL };
static const char *const abu_words[] = { "abu", "abou", "abo", "aboo", "abw", NULL };
/* The article, spelled out or assimilated to the next sun letter ("ar rashid", "as sayed", "ash shami").
 * The n forms are left out: "An" is also a given name ("An Nguyen"). */
static const char *const articles[] = { "al", "el", "ul", "il", "ol", NULL };
static const char *const sun_articles[] = { "ad", "ar", "as", "at", "az", "ash", "ed", "er", "es", "et", "ez",
                                            "ud", "ur", "us", "ut", "uz", NULL };
static const char *const din_words[] = { "din", "deen", "dine", "dyn", "uddin", "uddeen", "uddine", "udin",
                                         "eddin", "eddine", "edine", "edin", "aldin", "aldyn", "aldeen", "eldin",
                                         "addin", "aldine", "eldine", NULL };
static const char *const din_suffixes[] = { "uddin", "uddeen", "uddine", "udin", "eddin", "eddine", "edine",
                                            "edin", "aldin", "aldyn", "eldin", "addin", "uldin", NULL };
/* A separate "Allah" word joins the name before it; "Alla" and "Ulla" are not in the list (given names). */
static const char *const allah_words[] = { "allah", "ullah", "ollah", "allahi", "ullahi", NULL };
static const char *const allah_suffixes[] = { "ullah", "ollah", "allah", "ulla", "olla", "ullahi", NULL };
/* Spellings of "Allah" left after "abd" and the article: Abdullah, Abdallah, Abdulla, Abdullahi, Abdoulaye. */
static const char *const abd_allah_rests[] = { "a", "ah", "ahi", "aye", "ay", "ai", "ahe", "lah", "la", "lahi",
                                               "laye", "lay", "lai", NULL };
/* Abbreviations of Muhammad: "Md." (Bengali), "Mhd", "Mohd", and the Arabic-script skeleton "mhmd". */
static const char *const muhammad_abbrevs[] = { "md", "mhd", "mohd", "muhd", "mhmd", "mohmd", NULL };

/* dst = the first la bytes of a, then b, cut to NAMES_TOKEN_MAX-1 bytes (tokens are cut, never overflow). */
static void tok_set(char *dst, const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b);

    if (la > NAMES_TOKEN_MAX - 1)
        la = NAMES_TOKEN_MAX - 1;
    memmove(dst, a, la);
    if (lb > NAMES_TOKEN_MAX - 1 - la)
        lb = NAMES_TOKEN_MAX - 1 - la;
    memmove(dst + la, b, lb);
    dst[la + lb] = '\0';
}

static void tok_join(char *dst, const char *a, const char *b)
{
    tok_set(dst, a, strlen(a), b);
}

/* Whether token t starts with a glued article ("alhassan", "elsayed", Arabic-script "alzahra"): al or el,
 * then a consonant other than l, at least five letters in all ("Alexander", "Allan", "Elena" do not). */
static int has_glued_article(const char *t)
{
    return (t[0] == 'a' || t[0] == 'e') && t[1] == 'l' && t[2] != 'l' && t[2] != '\0' && !is_vowel(t[2]) &&
           strlen(t) >= 5;
}

/* Whether the rest of an abd- word, doubled vowels merged, spells Allah ("aahi" in Cabdullaahi). */
static int abd_rest_is_allah(const char *r)
{
    char m[NAMES_TOKEN_MAX];
    size_t o = 0;

    for (; *r && o < sizeof(m) - 1; r++)
        if (o == 0 || !is_vowel(*r) || m[o - 1] != *r)
            m[o++] = *r;
    m[o] = '\0';
    return str_in(m, abd_allah_rests);
}

/* "abdulrahman", "abderrahmane", "abdirahman", "cabdiraxmaan" -> "abdal" + the name after the article. */
static void abd_normalise(const char *w, char *out)
{
    const char *r = w;

    if (r[0] == 'c' && strncmp(r + 1, "abd", 3) == 0)   /* Somali "c" writes the ayn */
        r++;
    r += 3;
    if (r[0] == 'o' && r[1] == 'u')
        r += 2;
    else if (is_vowel(r[0]))
        r++;
    if (r[0] == 'l')
        r++;                                            /* the article, or one l of a doubled "ll" */
    else if (r[0] != '\0' && r[0] == r[1] && !is_vowel(r[0]))
        r++;                                            /* assimilated article: "abdurrahman" */
    if (abd_rest_is_allah(r))
        r = "lah";
    if (strlen(r) < 2) {
        tok_join(out, w, "");
        return;
    }
    tok_join(out, "abdal", r);
}

/* Whether w (lw letters) ends with one of the suffixes, leaving at least 3 letters: *base gets its length. */
static int ends_with_any(const char *w, size_t lw, const char *const *suffixes, size_t *base)
{
    size_t ls;

    for (; *suffixes; suffixes++) {
        ls = strlen(*suffixes);
        if (lw >= ls + 3 && memcmp(w + lw - ls, *suffixes, ls) == 0) {
            *base = lw - ls;
            return 1;
        }
    }
    return 0;
}

/* One word with no neighbour to merge with: normalise glued particles. */
static void word_normalise(const char *w, char *out)
{
    size_t lw = strlen(w), base;
    char last = lw ? w[lw - 1] : 0;

    if (w[0] == 'm' && str_in(w, muhammad_abbrevs)) {
        tok_join(out, "muhammad", "");
        return;
    }
    if ((strncmp(w, "abd", 3) == 0 && lw >= 6) || (strncmp(w, "cabd", 4) == 0 && lw >= 7)) {
        abd_normalise(w, out);
        return;
    }
    if (lw >= 6 && (strncmp(w, "abou", 4) == 0 || strncmp(w, "abu", 3) == 0 ||
                    (strncmp(w, "abol", 4) == 0 && !is_vowel(w[4])))) {
        const char *r = w + (w[2] == 'o' && w[3] == 'u' ? 4 : 3);
        if (r[0] == 'l' && !is_vowel(r[1]))
            r++;                                        /* "abulfazl", "abolfazl" */
        tok_join(out, "abu", r);
        return;
    }
    /* the suffixes end in n or e (din), h, a or i (allah): most words need no list */
    if ((last == 'n' || last == 'e') && ends_with_any(w, lw, din_suffixes, &base)) {
        tok_set(out, w, base, "aldin");
        return;
    }
    if ((last == 'h' || last == 'a' || last == 'i') && ends_with_any(w, lw, allah_suffixes, &base)) {
        tok_set(out, w, base, "allah");
        return;
    }
    tok_join(out, w, "");
}

/* Append a suffix to the last token (kept within NAMES_TOKEN_MAX). */
static void tok_append(struct names_tokens *t, const char *suffix)
{
    char *last = t->tok[t->n - 1];

    tok_set(last, last, strlen(last), suffix);
}

/* What particle lists a word is in (bits below), computed once per word of a name. */
#define W_CONNECTOR 1u
#define W_ABD 2u
#define W_ABU 4u
#define W_ARTICLE 8u
#define W_SUN 16u
#define W_DIN 32u
#define W_ALLAH 64u

static unsigned word_class(const char *w)
{
    unsigned c = 0;

    /* every particle starts with one of these letters: the lists are read for those words only */
    switch (w[0]) {
    case 'a': case 'b': case 'c': case 'd': case 'e': case 'i': case 'o': case 'u': case 'w':
        break;
    default:
        return 0;
    }
    c |= str_in(w, connectors) ? W_CONNECTOR : 0;
    c |= str_in(w, abd_words) ? W_ABD : 0;
    c |= str_in(w, abu_words) ? W_ABU : 0;
    c |= str_in(w, articles) ? W_ARTICLE : 0;
    c |= str_in(w, sun_articles) ? W_SUN : 0;
    c |= str_in(w, din_words) ? W_DIN : 0;
    c |= str_in(w, allah_words) ? W_ALLAH : 0;
    return c;
}

int names_tokens(const char *folded, struct names_tokens *out)
{
    char words[2 * NAMES_TOKENS_MAX][NAMES_TOKEN_MAX];
    unsigned cls[2 * NAMES_TOKENS_MAX];
    int nw = 0, i, j;
    const char *p = folded ? folded : "";

    out->n = 0;
    while (*p && nw < (int)(sizeof(words) / sizeof(words[0]))) {
        size_t l = 0;
        while (*p && !(*p >= 'a' && *p <= 'z'))
            p++;
        if (!*p)
            break;
        while (*p >= 'a' && *p <= 'z') {
            if (l < NAMES_TOKEN_MAX - 1)
                words[nw][l++] = *p;
            p++;
        }
        words[nw][l] = '\0';
        cls[nw] = word_class(words[nw]);
        nw++;
    }
    for (i = 0; i < nw && out->n < NAMES_TOKENS_MAX; i++) {
        const char *w = words[i];
        int last = (i == nw - 1);

        if ((cls[i] & W_CONNECTOR) && i > 0 && !last)
            continue;
        if ((cls[i] & W_ABD) && !last) {
            char joined[NAMES_TOKEN_MAX];
            j = i + 1;
            if ((cls[j] & (W_ARTICLE | W_SUN)) && j + 1 < nw)
                j++;
            tok_join(joined, strcmp(w, "cabd") == 0 ? "abd" : w, j > i + 1 ? words[i + 1] : "");
            tok_set(joined, joined, strlen(joined), words[j]);
            abd_normalise(joined, out->tok[out->n++]);
            i = j;
            continue;
        }
        if ((cls[i] & W_ABU) && !last) {
            j = i + 1;
            if ((cls[j] & W_ARTICLE) && j + 1 < nw)
                j++;
            tok_join(out->tok[out->n++], "abu", words[j]);
            i = j;
            continue;
        }
        if (out->n > 0 && (cls[i] & W_DIN)) {
            tok_append(out, "aldin");
            continue;
        }
        if (out->n > 0 && (cls[i] & W_ALLAH)) {
            tok_append(out, "allah");
            continue;
        }
        if (!last && ((cls[i] & W_ARTICLE) ||
                      ((cls[i] & W_SUN) && strncmp(words[i + 1], w + 1, strlen(w) - 1) == 0))) {
            if (out->n > 0 && (cls[i + 1] & W_DIN)) {
                tok_append(out, "aldin");
                i++;
            }
            continue;                                   /* "al hassan" -> "hassan" */
        }
        word_normalise(w, out->tok[out->n++]);
    }
    return out->n;
}

/* ---------------------------------------------------------------------------------------------------------
 * Canonical spelling: digraphs become one symbol, glides become vowels where they are vowels, doubled
 * letters merge. Output is at most as long as the input.
 */

static int canon_token_uncached(const char *t, char *out, size_t outlen);

/* Canonical spellings, per thread: every key and every similarity needs them, for the same few thousand
 * name words. Direct-mapped; a word or spelling longer than a slot is computed uncached. */
#define CANON_CACHE_SIZE 2048
struct canon_entry {
    char tok[NAMES_TOKEN_MAX];
    char canon[NAMES_TOKEN_MAX * 2];
    int len;
};

static int canon_token(const char *t, char *out, size_t outlen)
{
    size_t n = strlen(t);
    struct canon_entry *cache, *slot;
    int len;

    if (n >= NAMES_TOKEN_MAX || outlen < sizeof(slot->canon)
        || (cache = thread_cache(CACHE_CANON, sizeof(*cache) * CANON_CACHE_SIZE)) == NULL)
        return canon_token_uncached(t, out, outlen);
    slot = &cache[hash_bytes(t, n) % CANON_CACHE_SIZE];
    if (slot->tok[0] && strcmp(slot->tok, t) == 0) {
        memcpy(out, slot->canon, (size_t)slot->len + 1);
        return slot->len;
    }
    len = canon_token_uncached(t, out, outlen);
    if (len >= 0 && (size_t)len < sizeof(slot->canon)) {
        memcpy(slot->tok, t, n + 1);
        memcpy(slot->canon, out, (size_t)len + 1);
        slot->len = len;
    }
    return len;
}

static int canon_token_uncached(const char *t, char *out, size_t outlen)
{
    char a[NAMES_TOKEN_MAX * 2];
    size_t n = 0, i, o;
    const char *p = t;

    /* Digraphs and letter groups, longest first. */
    while (*p && n < sizeof(a) - 1) {
        static const struct { const char *from; unsigned char len; char to; } groups[] = {
            { "shch", 4, 'S' }, { "dsch", 4, 'j' }, { "sch", 3, 'S' }, { "tch", 3, 'C' }, { "dzh", 3, 'j' },
            { "sh", 2, 'S' }, { "ch", 2, 'C' }, { "kh", 2, 'X' }, { "gh", 2, 'G' }, { "th", 2, 'T' },
            { "dh", 2, 'D' }, { "zh", 2, 'Z' }, { "ph", 2, 'f' }, { "dj", 2, 'j' }, { "ck", 2, 'k' },
            { "ks", 2, 'x' }, { "ou", 2, 'u' }, { "oo", 2, 'u' }, { "ee", 2, 'i' },
        };
        size_t g;
        int matched = 0;

        if (p[0] == 'o' && p[1] == 'u' && is_vowel(p[2])) {
            a[n++] = 'w';                               /* French "oua" is "wa": "Merouane" = "Marwan" */
            p += 2;
            continue;
        }
        for (g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
            size_t gl = groups[g].len;
            if (p[0] == groups[g].from[0] && strncmp(p, groups[g].from, gl) == 0) {
                a[n++] = groups[g].to;
                p += gl;
                matched = 1;
                break;
            }
        }
        if (matched)
            continue;
        if (*p == 'c' && n > 0 && (p[1] == 'e' || p[1] == 'i'))
            a[n++] = 's';                               /* c before e/i inside a word: "Youcef" */
        else if (*p == 'j' && p[1] == '\0' && n > 0 && (a[n - 1] == 'i' || a[n - 1] == 'e'))
            a[n++] = 'i';                               /* "Andrij", "Sergej" */
        else
            a[n++] = *p;
        p++;
    }
    a[n] = '\0';
    /* Doubled consonants merge (shadda is written or not at random). */
    for (i = 0, o = 0; i < n; i++)
        if (o == 0 || is_vowel(a[i]) || a[i] != a[o - 1])
            a[o++] = a[i];
    n = o;
    a[n] = '\0';
    /* Glides, right to left so a glide sees what follows it already resolved: y and w are consonants at
     * the start and before a vowel, vowels elsewhere ("Husayn" = "Husain", Arabic "mhmwd" = "mhmud",
     * "prwyn" = "prwin"); a y between a consonant or i and a vowel is the vowel i ("Maryam" = "Mariam",
     * "Zakariya" = "Zakaria"). */
    for (i = n; i-- > 1;) {
        char prev = a[i - 1], next = a[i + 1];
        if (a[i] == 'y') {
            if (!is_vowel(next) || !is_vowel(prev) || prev == 'i')
                a[i] = 'i';
        } else if (a[i] == 'w') {
            if (!is_vowel(next))
                a[i] = 'u';
        }
    }
    /* Doubled symbols merge, except "aa": a long a written out often marks an ayn ("Saad" is not "Said"). */
    for (i = 0, o = 0; i < n && o < outlen - 1; i++)
        if (o == 0 || a[i] != out[o - 1] || a[i] == 'a')
            out[o++] = a[i];
    out[o] = '\0';
    return (int)o;
}

/* ---------------------------------------------------------------------------------------------------------
 * Phonetic keys: the canonical spelling without vowels, in coarse consonant classes.
 */

/* Key class of symbol i of canonical string s (length n); variant 0 is the usual reading, 1 and 2 the
 * alternative readings of ambiguous letters. Returns 0 to drop the symbol. */
static char key_class(const char *s, size_t i, size_t n, int variant)
{
    char c = s[i], prev = i > 0 ? s[i - 1] : 0, next = s[i + 1];

    switch (c) {
    case 'a': case 'e': case 'i': case 'o': case 'u':
        return 0;
    case 'y':
        if (i > 0 ? is_vowel(prev) && is_vowel(next) : next == 'e')
            return 0;                           /* "Ayesha" = "Aisha", "Yelena" = "Elena" */
        return variant == 2 ? 'g' : 'j';
    case 'j':
        return variant == 2 ? 'g' : 'j';        /* Egyptian g for jim: "Gamal" */
    case 'w': case 'v':
        return 'v';
    case 'b': case 'p':
        return 'b';
    case 'k':
        return 'k';
    case 'q':
        return variant == 2 ? 'g' : 'k';        /* Gulf and Sudanese g for qaf: "Gasim" */
    case 'c':
        return variant == 1 ? 0 : 'k';          /* Somali c is the ayn: "Cali" = "Ali" */
    case 'g': case 'G':
        return variant == 1 ? 'h' : 'g';        /* Ukrainian h = Russian g: "Serhii" = "Sergei" */
    case 'X':
        return variant == 2 ? 'k' : 'h';        /* kh = h (Turkish "Halil") or k (Bengali "Akter") */
    case 'x':
        return 'h';                             /* Somali x is h; ks became x too, so keys still agree */
    case 'h':
        if (i == n - 1 && variant == 0 && is_vowel(prev))
            return 0;                           /* "Fatemeh" = "Fatima"; variant 1 keeps it ("Farah") */
        return 'h';
    case 'S':
        return variant == 1 ? 's' : 'c';        /* Turkish s-cedilla typed as s: "Isil" */
    case 'C':
        return variant == 1 ? 'h' : 'c';        /* Greek ch is kh: "Christos" = "Hristos" */
    case 'T':
        return variant == 1 ? 's' : 't';        /* "Othman" = "Osman" */
    case 'D':
        return variant == 1 ? 'z' : 'd';        /* "Dhikrullah" = "Zikrullah" */
    case 'Z':
        return variant == 1 ? 'j' : 'z';        /* Kurdish j is zh: "Rojin" = "Rozhin" */
    case 'z':
        return variant == 2 ? 'd' : 'z';        /* "Ramazan" = "Ramadan", "Reza" = "Rida" */
    case 'd': case 't':
        return i == n - 1 ? 'd' : c;            /* final devoicing: "Ahmet" = "Ahmed", "Murat" = "Murad" */
    default:
        return c;
    }
}

static int key_from_canon(const char *canon, int variant, char *out, size_t outlen)
{
    size_t n = strlen(canon), i, o = 0;

    for (i = 0; i < n && o < outlen - 1; i++) {
        char k = key_class(canon, i, n, variant);
        if (k && (o == 0 || out[o - 1] != k))
            out[o++] = k;
    }
    if (o == 0 && n > 0)
        out[o++] = canon[0];                    /* an all-vowel name ("Aya") keeps its first letter */
    out[o] = '\0';
    return (int)o;
}

int names_phonetic_key(const char *token, char *out, size_t outlen)
{
    char canon[NAMES_TOKEN_MAX * 2];

    if (!token || !out || outlen < NAMES_KEY_MAX)
        return -1;
    canon_token(token, canon, sizeof(canon));
    return key_from_canon(canon, 0, out, NAMES_KEY_MAX);
}

/* Append key k to the space-separated list in out unless already there. Returns 1 when added. */
static int keys_add(char *out, size_t outlen, size_t *len, const char *k)
{
    size_t kl = strlen(k);
    const char *p = out;

    if (kl == 0)
        return 0;
    while ((p = strstr(p, k)) != NULL) {
        if ((p == out || p[-1] == ' ') && (p[kl] == ' ' || p[kl] == '\0'))
            return 0;
        p += kl;
    }
    if (*len + (*len > 0) + kl + 1 > outlen)
        return 0;
    if (*len > 0)
        out[(*len)++] = ' ';
    memcpy(out + *len, k, kl + 1);
    *len += kl;
    return 1;
}

/* Append the keys of one token to out: its three readings and, for a glued article ("alhassan",
 * "elsayed"), those of the name without it. */
static int token_keys_add(const char *token, char *out, size_t outlen, size_t *len)
{
    char canon[NAMES_TOKEN_MAX * 2], key[NAMES_KEY_MAX];
    const char *tok = token;
    int pass, v, count = 0;

    for (pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            if (!has_glued_article(tok))
                break;
            tok += 2;
        }
        canon_token(tok, canon, sizeof(canon));
        for (v = 0; v < 3; v++) {
            key_from_canon(canon, v, key, sizeof(key));
            count += keys_add(out, outlen, len, key);
        }
    }
    return count;
}

/* Keys of single tokens, per thread: ranking checks the words of hundreds of candidates per search, and
 * the same few thousand name words come again and again. Direct-mapped; longer lists are not kept. */
#define TOKEN_KEYS_CACHE_SIZE 1024
struct token_keys_entry {
    char tok[NAMES_TOKEN_MAX];
    char keys[160];
};

int names_token_keys(const char *token, char *out, size_t outlen)
{
    struct token_keys_entry *cache, *slot;
    size_t len = 0, n;
    int count;

    if (!token || !out || outlen < NAMES_KEYS_MAX)
        return -1;
    out[0] = '\0';
    n = strlen(token);
    if (n == 0 || n >= NAMES_TOKEN_MAX
        || (cache = thread_cache(CACHE_TOKEN_KEYS, sizeof(*cache) * TOKEN_KEYS_CACHE_SIZE)) == NULL)
        return token_keys_add(token, out, outlen, &len);
    slot = &cache[hash_bytes(token, n) % TOKEN_KEYS_CACHE_SIZE];
    if (slot->tok[0] && strcmp(slot->tok, token) == 0) {
        const char *p;

        memcpy(out, slot->keys, strlen(slot->keys) + 1);
        for (count = out[0] != '\0', p = out; (p = strchr(p, ' ')) != NULL; p++)
            count++;
        return count;
    }
    count = token_keys_add(token, out, outlen, &len);
    if (len < sizeof(slot->keys)) {
        memcpy(slot->tok, token, n + 1);
        memcpy(slot->keys, out, len + 1);
    }
    return count;
}

int names_keys_of_tokens(const struct names_tokens *t, char *out, size_t outlen)
{
    char canon[NAMES_TOKEN_MAX * 2], key[NAMES_KEY_MAX], glued[NAMES_TOKEN_MAX];
    size_t len = 0;
    int i, count = 0;

    if (!t || !out || outlen < NAMES_KEYS_MAX)
        return -1;
    out[0] = '\0';
    for (i = 0; i < t->n; i++) {
        count += token_keys_add(t->tok[i], out, outlen, &len);
        /* Two neighbours glued, for names written joined or split: "Mohammad Reza" = "Mohammadreza". */
        if (i + 1 < t->n) {
            tok_join(glued, t->tok[i], t->tok[i + 1]);
            canon_token(glued, canon, sizeof(canon));
            key_from_canon(canon, 0, key, sizeof(key));
            count += keys_add(out, outlen, &len, key);
        }
    }
    return count;
}

int names_keys(const char *utf8, char *out, size_t outlen)
{
    char folded[NAMES_FOLD_MAX];
    struct names_tokens t;

    if (!out || outlen < NAMES_KEYS_MAX)
        return -1;
    out[0] = '\0';
    if (names_fold(utf8, folded, sizeof(folded)) < 0)
        return -1;
    names_tokens(folded, &t);
    return names_keys_of_tokens(&t, out, outlen);
}

/* ---------------------------------------------------------------------------------------------------------
 * Weighted edit distance between canonical spellings.
 */

#define CANON_MAX 80            /* canonical strings compared (joined names included) are cut to this */

struct pair_cost {
    char a, b;
    float cost;
};

/* Substitution costs below 1: the differences transliterations really make. Symmetric. */
static const struct pair_cost sub_costs[] = {
    /* vowels: unwritten in Arabic script, written differently by every language */
    { 'a', 'e', 0.25f }, { 'e', 'i', 0.25f }, { 'o', 'u', 0.2f }, { 'a', 'o', 0.45f }, { 'e', 'o', 0.45f },
    { 'i', 'u', 0.5f }, { 'a', 'i', 0.6f }, { 'a', 'u', 0.55f }, { 'e', 'u', 0.65f }, { 'i', 'o', 0.55f },
    /* glides and their vowels */
    { 'i', 'y', 0.15f }, { 'u', 'w', 0.15f }, { 'o', 'w', 0.3f }, { 'e', 'y', 0.3f }, { 'w', 'v', 0.2f },
    { 'j', 'y', 0.35f },
    /* velars and uvulars: q/k/c, Gulf and Sudanese g for q, gh for g, kh for h or k */
    { 'k', 'q', 0.2f }, { 'k', 'c', 0.2f }, { 'q', 'c', 0.3f }, { 'c', 's', 0.3f }, { 'c', 'j', 0.4f }, { 'k', 'g', 0.5f },
    { 'q', 'g', 0.3f }, { 'G', 'g', 0.2f }, { 'G', 'q', 0.4f }, { 'X', 'h', 0.3f }, { 'X', 'k', 0.35f },
    { 'X', 'C', 0.3f }, { 'x', 'h', 0.3f }, { 'x', 'X', 0.4f }, { 'g', 'h', 0.45f }, { 'j', 'g', 0.35f },
    /* sibilants: sh = ch (French), s for th (Persian/Turkish), z for dh/d (Persian/Turkish) */
    { 'S', 'C', 0.2f }, { 'S', 's', 0.5f }, { 'T', 't', 0.2f }, { 'T', 's', 0.3f }, { 'T', 'D', 0.4f },
    { 'D', 'd', 0.2f }, { 'D', 'z', 0.3f }, { 'd', 'z', 0.5f }, { 'Z', 'z', 0.3f }, { 'Z', 'j', 0.35f },
    { 's', 'z', 0.45f }, { 'd', 't', 0.5f },
    /* labials */
    { 'b', 'p', 0.3f }, { 'f', 'v', 0.5f }, { 'f', 'p', 0.5f }, { 'b', 'v', 0.5f },
};

static float sub_table[128][128];
static pthread_once_t sub_once = PTHREAD_ONCE_INIT;

static void sub_table_init(void)
{
    size_t i, j;

    for (i = 0; i < 128; i++)
        for (j = 0; j < 128; j++) {
            int vi = is_vowel((char)i), vj = is_vowel((char)j);
            sub_table[i][j] = i == j ? 0.0f : (vi && vj) ? 0.6f : 1.0f;
        }
    for (i = 0; i < sizeof(sub_costs) / sizeof(sub_costs[0]); i++) {
        sub_table[(int)sub_costs[i].a][(int)sub_costs[i].b] = sub_costs[i].cost;
        sub_table[(int)sub_costs[i].b][(int)sub_costs[i].a] = sub_costs[i].cost;
    }
}

/* Cost of inserting or deleting symbol s[i] of a string of length n, when the longer of the two strings
 * compared has length len. Vowels are cheap inside a word (the Arabic script leaves them out), cheaper still
 * when they only lengthen a vowel ("Faadumo"), dearer next to another vowel (Rana/Rania) or at the start,
 * and dear at the end, where they tell Ali from Alia and Oleksandr from Oleksandra: a final letter costs
 * the same share of a long name as of a short one. When open_end is set the string is a prefix still being
 * typed and its last symbol is not final. */
static float indel_cost(const char *s, int i, int n, int len, int open_end)
{
    char c = s[i], prev = i > 0 ? s[i - 1] : 0, next = i + 1 < n ? s[i + 1] : 0;
    int final = (i == n - 1) && !open_end;
    float final_cost = 0.18f * (float)len;

    if (is_vowel(c)) {
        if (prev == c || next == c)
            return 0.2f;
        if (final)
            return final_cost > 0.9f ? final_cost : 0.9f;
        if (i == 0)
            return 0.5f;
        return (is_vowel(prev) || is_vowel(next)) ? 0.55f : 0.25f;
    }
    if (c == 'y' || c == 'w')
        return 0.3f;
    if (c == 'h')
        return final ? 0.3f : 0.6f;
    if (c == 'c')
        return 0.35f;                           /* Somali c is the ayn, often left out */
    if (final)
        return final_cost > 1.0f ? final_cost : 1.0f;
    return 1.0f;
}

/* Weighted edit distance between a (length na) and b (length nb). With prefix set, a is a query still being
 * typed: the result is the distance from a to the closest prefix of b. */
static float edit_distance(const char *a, int na, const char *b, int nb, int prefix)
{
    float d[CANON_MAX + 1][CANON_MAX + 1];
    float best;
    int i, j, len;

    pthread_once(&sub_once, sub_table_init);
    if (na > CANON_MAX)
        na = CANON_MAX;
    if (nb > CANON_MAX)
        nb = CANON_MAX;
    len = na > nb ? na : nb;
    d[0][0] = 0.0f;
    for (i = 1; i <= na; i++)
        d[i][0] = d[i - 1][0] + indel_cost(a, i - 1, na, len, prefix);
    for (j = 1; j <= nb; j++)
        d[0][j] = d[0][j - 1] + indel_cost(b, j - 1, nb, len, prefix);
    for (i = 1; i <= na; i++)
        for (j = 1; j <= nb; j++) {
            float del = d[i - 1][j] + indel_cost(a, i - 1, na, len, prefix);
            float ins = d[i][j - 1] + indel_cost(b, j - 1, nb, len, prefix);
            float sub = sub_table[a[i - 1] & 0x7F][b[j - 1] & 0x7F];
            if (i == na && j == nb && !prefix && 0.18f * (float)len > 1.0f)
                sub *= 0.18f * (float)len;      /* a different ending weighs as much in a long name */
            sub += d[i - 1][j - 1];
            if (del > ins)
                del = ins;
            d[i][j] = sub < del ? sub : del;
        }
    if (!prefix)
        return d[na][nb];
    best = d[na][0];
    for (j = 1; j <= nb; j++)
        if (d[na][j] < best)
            best = d[na][j];
    return best;
}

/* ---------------------------------------------------------------------------------------------------------
 * Similarity.
 */

/* Similarity of two canonical spellings in [0, 1]. */
static double canon_similarity(const char *a, const char *b)
{
    int na = (int)strlen(a), nb = (int)strlen(b);
    int n = na > nb ? na : nb;
    double s;

    if (n == 0)
        return 0.0;
    if (strcmp(a, b) == 0)
        return 1.0;
    s = 1.0 - edit_distance(a, na, b, nb, 0) / (double)n;
    return s < 0.0 ? 0.0 : s;
}

/* Split off a particle both tokens share ("abdal", "abu", "allah", "aldin") so the part that tells the
 * names apart is compared alone: Abdulrahman vs Abdulrahim is "rahman" vs "rahim". */
static void strip_shared_affix(const char **a, const char **b, char *bufa, char *bufb)
{
    static const char *const prefixes[] = { "abdal", "abu", NULL };
    static const char *const suffixes[] = { "allah", "aldin", NULL };
    size_t la = strlen(*a), lb = strlen(*b), ba, bb;
    int i;

    for (i = 0; prefixes[i]; i++) {
        size_t pl = strlen(prefixes[i]);
        if (la >= pl + 2 && lb >= pl + 2 && strncmp(*a, prefixes[i], pl) == 0 &&
            strncmp(*b, prefixes[i], pl) == 0) {
            *a += pl;
            *b += pl;
            return;
        }
    }
    for (i = 0; suffixes[i]; i++)
        if (ends_with(*a, suffixes[i], &ba) && ends_with(*b, suffixes[i], &bb) && ba >= 2 && bb >= 2) {
            tok_set(bufa, *a, ba, "");
            tok_set(bufb, *b, bb, "");
            *a = bufa;
            *b = bufb;
            return;
        }
}

/* Similarity of two tokens by their canonical spellings; with prefix set, a is a query word that may be
 * unfinished. */
static double token_similarity_plain(const char *a, const char *b, int prefix)
{
    char bufa[NAMES_TOKEN_MAX], bufb[NAMES_TOKEN_MAX];
    char ca[NAMES_TOKEN_MAX * 2], cb[NAMES_TOKEN_MAX * 2];
    double s, p;
    int na, nb;

    if (strcmp(a, b) == 0)
        return 1.0;
    strip_shared_affix(&a, &b, bufa, bufb);
    na = canon_token(a, ca, sizeof(ca));
    nb = canon_token(b, cb, sizeof(cb));
    s = canon_similarity(ca, cb);
    if (prefix && na >= 2 && na < nb) {
        /* A prefix match is worth a little less than the whole word, so "moham" ranks "mohammed" below an
         * exact "moham"; a two- or three-letter prefix proves little. */
        p = 1.0 - edit_distance(ca, na, cb, nb, 1) / (double)na;
        p *= na >= 4 ? 0.97 : 0.9;
        if (p > s)
            s = p;
    }
    return s;
}

/* Similarity of two tokens, also trying the readings the Arabic script leaves open: a glued article
 * ("alzahra" = "zahra") and a final y after a consonant that is an alef maqsura in Persian spelling
 * ("mrtdy" = "Morteza"). An alternative reading costs a little. */
static double token_similarity_uncached(const char *a, const char *b, int prefix);

/* Scores of token pairs, per thread: ranking compares the same query words with the same common names
 * over and over (a search scores hundreds of candidates), and one score costs two canonical spellings
 * and an edit distance. Direct-mapped on a hash of the pair; a collision just recomputes. */
#define PAIR_CACHE_SIZE 2048    /* ~190 KiB per thread */
struct pair_entry {
    char a[NAMES_TOKEN_MAX], b[NAMES_TOKEN_MAX];
    int prefix;
    double score;
};

static double token_similarity(const char *a, const char *b, int prefix)
{
    uint64_t h = 1469598103934665603ULL;
    struct pair_entry *cache, *slot;
    const char *p;
    double s;

    if (strlen(a) >= NAMES_TOKEN_MAX || strlen(b) >= NAMES_TOKEN_MAX
        || (cache = thread_cache(CACHE_PAIR, sizeof(*cache) * PAIR_CACHE_SIZE)) == NULL)
        return token_similarity_uncached(a, b, prefix);
    for (p = a; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (p = b; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ (unsigned)prefix) * 1099511628211ULL;
    slot = &cache[h % PAIR_CACHE_SIZE];
    if (slot->a[0] && slot->prefix == prefix && strcmp(slot->a, a) == 0 && strcmp(slot->b, b) == 0)
        return slot->score;
    s = token_similarity_uncached(a, b, prefix);
    snprintf(slot->a, sizeof(slot->a), "%s", a);
    snprintf(slot->b, sizeof(slot->b), "%s", b);
    slot->prefix = prefix;
    slot->score = s;
    return s;
}

static double token_similarity_uncached(const char *a, const char *b, int prefix)
{
    double s = token_similarity_plain(a, b, prefix), r;
    const char *x = a, *y = b;
    int k;

    if (s >= 1.0)
        return s;
    for (k = 0; k < 2; k++, x = b, y = a) {
        size_t lx = strlen(x);
        if (has_glued_article(x) && !has_glued_article(y)) {
            r = (k == 0 ? token_similarity_plain(x + 2, y, prefix) : token_similarity_plain(y, x + 2, prefix))
                - 0.02;
            if (r > s)
                s = r;
        }
        if (lx >= 3 && x[lx - 1] == 'y' && !is_vowel(x[lx - 2])) {
            char alt[NAMES_TOKEN_MAX];
            tok_join(alt, x, "");
            alt[lx - 1] = 'a';
            r = (k == 0 ? token_similarity_plain(alt, y, prefix) : token_similarity_plain(y, alt, prefix)) - 0.02;
            if (r > s)
                s = r;
        }
    }
    return s;
}

/* Fold and tokenise; returns the number of tokens, or -1 on invalid input. */
static int name_tokens_make(const char *utf8, struct names_tokens *t)
{
    char folded[NAMES_FOLD_MAX];

    if (names_fold(utf8, folded, sizeof(folded)) < 0)
        return -1;
    return names_tokens(folded, t);
}

/* Pair tokens greedily, best pair first, each token used once, from the matrix s of token similarities
 * (s[i][j] for token i of a and token j of b; with transpose set, b plays a's part). Returns the
 * length-weighted mean similarity of the pairs. With open_query set, a is a search query: its tokens left
 * without a partner count as zeros. *unmatched receives the number of tokens of the longer name left over. */
static double tokens_pair(double s[NAMES_TOKENS_MAX][NAMES_TOKENS_MAX], const struct names_tokens *a,
                          const struct names_tokens *b, int transpose, int open_query, int *unmatched)
{
    int used_a[NAMES_TOKENS_MAX] = { 0 }, used_b[NAMES_TOKENS_MAX] = { 0 };
    const struct names_tokens *r = transpose ? b : a, *c = transpose ? a : b;   /* rows, columns */
    int pairs = a->n < b->n ? a->n : b->n, i, j, k;
    double sum = 0.0, weight = 0.0;

    for (k = 0; k < pairs; k++) {
        int bi = -1, bj = -1;
        double best = -1.0, w, v;
        for (i = 0; i < r->n; i++)
            for (j = 0; !used_a[i] && j < c->n; j++) {
                v = transpose ? s[j][i] : s[i][j];
                if (!used_b[j] && v > best) {
                    best = v;
                    bi = i;
                    bj = j;
                }
            }
        used_a[bi] = used_b[bj] = 1;
        w = (double)(strlen(r->tok[bi]) + strlen(c->tok[bj]));
        sum += w * best;
        weight += w;
    }
    if (open_query)
        for (i = 0; i < r->n; i++)
            if (!used_a[i])
                weight += 2.0 * (double)strlen(r->tok[i]);
    *unmatched = (a->n > b->n ? a->n : b->n) - pairs;
    return weight > 0.0 ? sum / weight : 0.0;
}

/* The similarity matrix of the tokens of a and b. */
static void tokens_matrix(const struct names_tokens *a, const struct names_tokens *b, int prefix,
                          double s[NAMES_TOKENS_MAX][NAMES_TOKENS_MAX])
{
    int i, j;

    for (i = 0; i < a->n; i++)
        for (j = 0; j < b->n; j++)
            s[i][j] = token_similarity(a->tok[i], b->tok[j], prefix);
}

/* All tokens of a name glued together, for names split differently ("Mohammad Reza" / "Mohammadreza"). */
static void tokens_glue(const struct names_tokens *t, char *out, size_t outlen)
{
    size_t o = 0, l;
    int i;

    for (i = 0; i < t->n; i++) {
        l = strlen(t->tok[i]);
        if (l > outlen - 1 - o)
            l = outlen - 1 - o;
        memcpy(out + o, t->tok[i], l);
        o += l;
    }
    out[o] = '\0';
}

double names_similarity_tokens(const struct names_tokens *ta, const struct names_tokens *tb)
{
    double m[NAMES_TOKENS_MAX][NAMES_TOKENS_MAX], s, s2, glued;
    int unmatched;

    if (!ta || !tb || ta->n <= 0 || tb->n <= 0)
        return 0.0;
    tokens_matrix(ta, tb, 0, m);
    /* Greedy pairing may break a tie differently from each side; taking the better keeps a ~ b = b ~ a. */
    s = tokens_pair(m, ta, tb, 0, 0, &unmatched);
    s2 = tokens_pair(m, ta, tb, 1, 0, &unmatched);
    if (s2 > s)
        s = s2;
    /* A missing middle or family name lowers the score without ruling the pair out. */
    s *= 1.0 - 0.1 * (unmatched > 2 ? 2 : unmatched);
    if (ta->n != tb->n) {
        char ga[CANON_MAX * 2], gb[CANON_MAX * 2], ca[CANON_MAX * 2], cb[CANON_MAX * 2];
        tokens_glue(ta, ga, sizeof(ga));
        tokens_glue(tb, gb, sizeof(gb));
        canon_token(ga, ca, sizeof(ca));
        canon_token(gb, cb, sizeof(cb));
        glued = canon_similarity(ca, cb);
        if (glued > s)
            s = glued;
    }
    return s;
}

double names_similarity(const char *a, const char *b)
{
    struct names_tokens ta, tb;

    if (name_tokens_make(a, &ta) <= 0 || name_tokens_make(b, &tb) <= 0)
        return 0.0;
    return names_similarity_tokens(&ta, &tb);
}

double names_partial_similarity_tokens(const struct names_tokens *tp, const struct names_tokens *tw)
{
    double m[NAMES_TOKENS_MAX][NAMES_TOKENS_MAX], s;
    int unmatched, extra;

    if (!tp || !tw || tp->n < 2 || tw->n < tp->n)
        return 0.0;
    tokens_matrix(tp, tw, 0, m);
    s = tokens_pair(m, tp, tw, 0, 1, &unmatched);
    /* a name with the same words and more is a little less alike than the same name */
    extra = tw->n - tp->n;
    return s * (extra == 0 ? 1.0 : extra == 1 ? 0.99 : 0.98);
}

double names_partial_similarity(const char *part, const char *whole)
{
    struct names_tokens tp, tw;

    if (name_tokens_make(part, &tp) < 2 || name_tokens_make(whole, &tw) < tp.n)
        return 0.0;
    return names_partial_similarity_tokens(&tp, &tw);
}

double names_search_score_tokens(const struct names_tokens *tq, const struct names_tokens *tc)
{
    double m[NAMES_TOKENS_MAX][NAMES_TOKENS_MAX];
    int unmatched;

    if (!tq || !tc || tq->n <= 0 || tc->n <= 0)
        return 0.0;
    tokens_matrix(tq, tc, 1, m);
    return tokens_pair(m, tq, tc, 0, 1, &unmatched);
}

double names_search_score(const char *query, const char *candidate)
{
    struct names_tokens tq, tc;

    if (name_tokens_make(query, &tq) <= 0 || name_tokens_make(candidate, &tc) <= 0)
        return 0.0;
    return names_search_score_tokens(&tq, &tc);
}
