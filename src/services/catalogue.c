/* catalogue.c — loading, checking, looking up and searching the catalogues shipped in share/catalogues/. */
#include "services/catalogue.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>
#include <unicode/utf8.h>

#include "core/datafiles.h"

/* The columns a catalogue file may have; each kind needs a subset, in any order (the header names them). */
enum column {
    COL_CODE, COL_EN, COL_AR, COL_FR, COL_ES, COL_HIS, COL_FORM, COL_STRENGTH, COL_ROUTE, COL_ATC, COL_COUNT
};
static const char *const column_names[COL_COUNT] = {
    "code", "en", "ar", "fr", "es", "his_category", "form", "strength", "route", "atc",
};
#define COLS_LABELS ((1u << COL_CODE) | (1u << COL_EN) | (1u << COL_AR) | (1u << COL_FR) | (1u << COL_ES))

static const struct kind_spec {
    const char *name;       /* in URLs */
    const char *path;       /* below share/ */
    unsigned columns;       /* bit per enum column */
} kinds[CATALOGUE_KINDS] = {
    [CATALOGUE_ICD10] = { "icd10", "/catalogues/icd10.tsv", COLS_LABELS | (1u << COL_HIS) },
    [CATALOGUE_MEDICINES] = { "medicines", "/catalogues/medicines.tsv",
                              COLS_LABELS | (1u << COL_FORM) | (1u << COL_STRENGTH) | (1u << COL_ROUTE)
                                  | (1u << COL_ATC) },
    [CATALOGUE_HIS] = { "his-categories", "/catalogues/his_categories.tsv", COLS_LABELS },
};

/* docs/catalogues.md lists the same values. */
static const char *const medicine_forms[] = {
    "tablet", "capsule", "dispersible_tablet", "oral_suspension", "oral_solution", "syrup", "injection",
    "infusion", "cream", "ointment", "eye_drops", "ear_drops", "inhaler", "suppository", "sachet", "patch",
    "vaginal_tablet", "gel", "other",
};
static const char *const medicine_routes[] = {
    "oral", "iv", "im", "sc", "topical", "ophthalmic", "otic", "inhalation", "rectal", "vaginal", "other",
};

#define MAX_CELLS 16            /* cells a row may have; more is a malformed file */
#define PROBLEM_MAX 240

struct table {
    struct catalogue_item *items;   /* sorted by key */
    size_t n;
    char *text;                     /* a private copy of the file; the items' cells point into it */
    int present;                    /* the file is in the binary */
    int problems;                   /* how many problems loading found */
    char first_problem[PROBLEM_MAX];
};

static struct table tables[CATALOGUE_KINDS];
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

static void problem(struct table *t, enum catalogue_kind kind, size_t line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Record a problem with a file; the first one is kept word for word, the others counted. */
static void problem(struct table *t, enum catalogue_kind kind, size_t line, const char *fmt, ...)
{
    char what[160];
    va_list ap;

    if (t->problems++ > 0)
        return;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (line > 0)
        snprintf(t->first_problem, sizeof(t->first_problem), "share%s line %zu: %s", kinds[kind].path, line,
                 what);
    else
        snprintf(t->first_problem, sizeof(t->first_problem), "share%s: %s", kinds[kind].path, what);
}

/* ---------------------------------------------------------------------------------------------------------
 * Folding
 */

/* Arabic letters people type interchangeably, mapped to one: alef wasla -> alef, alef maqsura and Farsi yeh ->
 * yeh, teh marbuta -> heh, keheh -> kaf. (Hamza carriers lose the hamza as a combining mark after NFKD.) */
static UChar32 unify_letter(UChar32 c)
{
    switch (c) {
    case 0x0671: return 0x0627;
    case 0x0649: case 0x06CC: return 0x064A;
    case 0x0629: return 0x0647;
    case 0x06A9: return 0x0643;
    default: return c;
    }
}

int catalogue_fold(const char *in, char *out, size_t n)
{
    UErrorCode st = U_ZERO_ERROR;
    const UNormalizer2 *nfkd;
    UChar *src = NULL, *norm = NULL;
    int32_t len16 = 0, lennorm, cap, i;
    size_t inlen, o = 0;
    int in_word = 0, rc = -1;

    if (in == NULL || out == NULL || n == 0)
        return -1;
    inlen = strlen(in);
    if (inlen > INT32_MAX / 32)
        return -1;
    u_strFromUTF8(NULL, 0, &len16, in, (int32_t)inlen, &st);
    if (U_FAILURE(st) && st != U_BUFFER_OVERFLOW_ERROR)
        return -1;                                  /* invalid UTF-8 */
    st = U_ZERO_ERROR;
    src = malloc(((size_t)len16 + 1) * sizeof(UChar));
    if (src == NULL)
        goto done;
    u_strFromUTF8(src, len16 + 1, NULL, in, (int32_t)inlen, &st);
    nfkd = unorm2_getNFKDInstance(&st);
    if (U_FAILURE(st))
        goto done;
    cap = len16 * 2 + 16;
    for (;;) {
        UChar *grown = realloc(norm, (size_t)cap * sizeof(UChar));

        if (grown == NULL)
            goto done;
        norm = grown;
        lennorm = unorm2_normalize(nfkd, src, len16, norm, cap, &st);
        if (st != U_BUFFER_OVERFLOW_ERROR)
            break;
        st = U_ZERO_ERROR;
        cap = lennorm + 1;
    }
    if (U_FAILURE(st))
        goto done;

    for (i = 0; i < lennorm;) {
        uint8_t utf8[U8_MAX_LENGTH];
        const char *spelled = NULL;
        int32_t k = 0;
        int8_t type;
        UChar32 c;

        U16_NEXT(norm, i, lennorm, c);
        type = u_charType(c);
        if (type == U_NON_SPACING_MARK || type == U_ENCLOSING_MARK || type == U_FORMAT_CHAR || c == 0x0640)
            continue;                               /* accents, harakat, ZWJ/ZWNJ/bidi marks, tatweel */
        c = unify_letter(u_foldCase(c, U_FOLD_CASE_DEFAULT));
        if (!u_isalnum(c)) {
            in_word = 0;
            continue;
        }
        if (type == U_DECIMAL_DIGIT_NUMBER)
            c = '0' + u_charDigitValue(c);          /* Arabic-Indic and other digits as ASCII */
        if (c == 0x0153)
            spelled = "oe";
        else if (c == 0x00E6)
            spelled = "ae";
        else if (c == 0x00DF)
            spelled = "ss";
        if (spelled) {
            memcpy(utf8, spelled, 2);
            k = 2;
        } else {
            U8_APPEND_UNSAFE(utf8, k, c);
        }
        if (o + (in_word ? 0 : 1) + (size_t)k + 1 > n)
            goto done;
        if (!in_word)
            out[o++] = ' ';
        memcpy(out + o, utf8, (size_t)k);
        o += (size_t)k;
        in_word = 1;
    }
    out[o] = '\0';
    rc = (int)o;
done:
    if (rc < 0)
        out[0] = '\0';
    free(src);
    free(norm);
    return rc;
}

/* A buffer always large enough for catalogue_fold() of len input bytes: NFKD turns one character of at most
 * 3 UTF-8 bytes into at most 18 UTF-16 units, each at most 3 bytes out plus a space. */
static size_t fold_capacity(size_t len)
{
    return len * 24 + 16;
}

/* catalogue_fold() into a new malloc'ed string; NULL on invalid UTF-8 or out of memory. */
static char *fold_dup(const char *in)
{
    size_t cap = fold_capacity(strlen(in));
    char *out = malloc(cap), *exact;
    int len;

    if (out == NULL)
        return NULL;
    len = catalogue_fold(in, out, cap);
    if (len < 0) {
        free(out);
        return NULL;
    }
    exact = realloc(out, (size_t)len + 1);
    return exact ? exact : out;
}

/* ---------------------------------------------------------------------------------------------------------
 * Keys: the spelling codes are compared in
 */

/* The lookup key of a code as typed: surrounding spaces dropped, ASCII lower case; ICD-10 also without the
 * dot, which may only follow the three-character category ("J18.9", "J18."). Returns the key length, or -1
 * when the code is empty, too long or has a character no code of this kind has. */
static int make_key(enum catalogue_kind kind, const char *code, char *key, size_t n)
{
    size_t len, i, o = 0;

    if (code == NULL)
        return -1;
    while (*code == ' ' || *code == '\t')
        code++;
    len = strnlen(code, CATALOGUE_CODE_MAX + 1);
    while (len > 0 && (code[len - 1] == ' ' || code[len - 1] == '\t'))
        len--;
    if (len == 0 || len > CATALOGUE_CODE_MAX || len >= n)
        return -1;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)code[i];

        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (kind == CATALOGUE_ICD10 && c == '.') {
            if (i != 3)
                return -1;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || (kind != CATALOGUE_ICD10 && (c == '_' || c == '-' || c == '.'))))
            return -1;
        key[o++] = (char)c;
    }
    key[o] = '\0';
    return o > 0 ? (int)o : -1;
}

static int compare_items(const void *a, const void *b)
{
    return strcmp(((const struct catalogue_item *)a)->key, ((const struct catalogue_item *)b)->key);
}

static int compare_key_item(const void *key, const void *item)
{
    return strcmp(key, ((const struct catalogue_item *)item)->key);
}

/* The item with exactly this key in a loaded table, or NULL. */
static const struct catalogue_item *table_find(const struct table *t, const char *key)
{
    if (t->n == 0)
        return NULL;
    return bsearch(key, t->items, t->n, sizeof(t->items[0]), compare_key_item);
}

/* ---------------------------------------------------------------------------------------------------------
 * Loading
 */

/* The spelling a shipped code must have: ICD-10 "A09", "J18.9"; medicines lower-case snake_case; HIS
 * categories letters, digits, '_', '-', '.'. */
static int code_well_formed(enum catalogue_kind kind, const char *code)
{
    size_t i, len = strlen(code);

    if (len == 0 || len > CATALOGUE_CODE_MAX)
        return 0;
    switch (kind) {
    case CATALOGUE_ICD10:
        if (len < 3 || !(code[0] >= 'A' && code[0] <= 'Z') || !(code[1] >= '0' && code[1] <= '9'))
            return 0;
        for (i = 2; i < len; i++) {
            if (i == 3 && code[i] == '.' && len > 4)
                continue;
            if (!((code[i] >= 'A' && code[i] <= 'Z') || (code[i] >= '0' && code[i] <= '9')) || len > 8)
                return 0;
        }
        return 1;
    case CATALOGUE_MEDICINES:
        if (!(code[0] >= 'a' && code[0] <= 'z'))
            return 0;
        for (i = 0; i < len; i++)
            if (!((code[i] >= 'a' && code[i] <= 'z') || (code[i] >= '0' && code[i] <= '9') || code[i] == '_'))
                return 0;
        return 1;
    case CATALOGUE_HIS:
        for (i = 0; i < len; i++)
            if (!((code[i] >= 'a' && code[i] <= 'z') || (code[i] >= 'A' && code[i] <= 'Z')
                  || (code[i] >= '0' && code[i] <= '9') || code[i] == '_' || code[i] == '-' || code[i] == '.'))
                return 0;
        return 1;
    }
    return 0;
}

/* An ATC code: a letter, two digits, then optionally a letter, a letter, two digits ("J01CA04", "A07CA"). */
static int atc_well_formed(const char *s)
{
    static const char shape[] = "A99AA99";  /* 'A' a capital letter, '9' a digit */
    size_t i, len = strlen(s);

    if (len != 3 && len != 4 && len != 5 && len != 7)
        return 0;
    for (i = 0; i < len; i++)
        if (shape[i] == 'A' ? !(s[i] >= 'A' && s[i] <= 'Z') : !(s[i] >= '0' && s[i] <= '9'))
            return 0;
    return 1;
}

static int in_list(const char *s, const char *const *list, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

/* Split line (modified in place) at tabs into at most max cells; returns the count, or max + 1 when there
 * are more. */
static int split_tabs(char *line, char **cells, int max)
{
    int n = 0;

    for (;;) {
        char *tab = strchr(line, '\t');

        if (n == max)
            return max + 1;
        cells[n++] = line;
        if (tab == NULL)
            return n;
        *tab = '\0';
        line = tab + 1;
    }
}

/* Fill the searchable words of an item: per language, the folded label (medicines: label and strength). */
static int item_fold_words(enum catalogue_kind kind, struct catalogue_item *it)
{
    int l;

    for (l = 0; l < CATALOGUE_LANGS; l++) {
        char joined[1024];
        const char *text = it->label[l];

        if (kind == CATALOGUE_MEDICINES) {
            snprintf(joined, sizeof(joined), "%s %s", it->label[l], it->strength);
            text = joined;
        }
        it->words[l] = fold_dup(text);
        if (it->words[l] == NULL)
            return -1;
    }
    return 0;
}

/* Parse one row (cells as split) into *it; 0 when it can be loaded, -1 when it must be left out. Problems
 * that do not stop the row loading (an empty label) are recorded too. */
static int parse_row(struct table *t, enum catalogue_kind kind, size_t line, char **cells, const int *col,
                     struct catalogue_item *it)
{
    static const enum column label_cols[CATALOGUE_LANGS] = { COL_EN, COL_AR, COL_FR, COL_ES };
    char key[CATALOGUE_CODE_MAX + 1];
    int c, l;

    memset(it, 0, sizeof(*it));
    for (c = 0; c < COL_COUNT; c++) {
        const char *cell;
        size_t len;

        if (col[c] < 0)
            continue;
        cell = cells[col[c]];
        len = strlen(cell);
        if (len == 0)
            problem(t, kind, line, "empty %s", column_names[c]);
        else if (cell[0] == ' ' || cell[len - 1] == ' ')
            problem(t, kind, line, "%s has spaces around it", column_names[c]);
    }
    it->code = cells[col[COL_CODE]];
    if (!code_well_formed(kind, it->code) || make_key(kind, it->code, key, sizeof(key)) < 0) {
        problem(t, kind, line, "malformed code '%.64s'", it->code);
        return -1;
    }
    for (l = 0; l < CATALOGUE_LANGS; l++)
        it->label[l] = cells[col[label_cols[l]]];
    if (kind == CATALOGUE_ICD10)
        it->his_category = cells[col[COL_HIS]];
    if (kind == CATALOGUE_MEDICINES) {
        it->form = cells[col[COL_FORM]];
        it->strength = cells[col[COL_STRENGTH]];
        it->route = cells[col[COL_ROUTE]];
        it->atc = cells[col[COL_ATC]];
        if (!in_list(it->form, medicine_forms, sizeof(medicine_forms) / sizeof(medicine_forms[0])))
            problem(t, kind, line, "unknown form '%.40s'", it->form);
        if (!in_list(it->route, medicine_routes, sizeof(medicine_routes) / sizeof(medicine_routes[0])))
            problem(t, kind, line, "unknown route '%.40s'", it->route);
        if (!atc_well_formed(it->atc))
            problem(t, kind, line, "malformed ATC code '%.16s'", it->atc);
    }
    if (item_fold_words(kind, it) < 0) {
        problem(t, kind, line, "not valid UTF-8 (or out of memory)");
        for (l = 0; l < CATALOGUE_LANGS; l++)
            free((char *)it->words[l]);
        return -1;
    }
    it->key = strdup(key);
    if (it->key == NULL) {
        problem(t, kind, line, "out of memory");
        for (l = 0; l < CATALOGUE_LANGS; l++)
            free((char *)it->words[l]);
        return -1;
    }
    return 0;
}

/* Load the text of a file of this kind (NULL: the file is missing) into *t (zeroed). Never fails: problems
 * are recorded in *t. */
static void load_table(struct table *t, enum catalogue_kind kind, const unsigned char *data, size_t size)
{
    int col[COL_COUNT], ncols = 0, c, i;
    char *cells[MAX_CELLS + 1];
    size_t nlines = 0, line, k;
    char *p, *next;

    if (data == NULL) {
        problem(t, kind, 0, "missing from the binary");
        return;
    }
    t->present = 1;
    t->text = malloc(size + 1);
    if (t->text == NULL) {
        problem(t, kind, 0, "out of memory");
        return;
    }
    memcpy(t->text, data, size);
    t->text[size] = '\0';
    if (strlen(t->text) != size) {
        problem(t, kind, 0, "contains a NUL byte");
        return;
    }
    for (c = 0; c < COL_COUNT; c++)
        col[c] = -1;
    for (p = t->text; *p; p++)
        nlines += *p == '\n';
    t->items = calloc(nlines + 1, sizeof(t->items[0]));
    if (t->items == NULL) {
        problem(t, kind, 0, "out of memory");
        return;
    }

    for (line = 1, p = t->text; *p; line++, p = next) {
        size_t len;

        next = strchr(p, '\n');
        if (next)
            *next++ = '\0';
        else
            next = p + strlen(p);
        len = strlen(p);
        if (len > 0 && p[len - 1] == '\r')
            p[--len] = '\0';
        if (line == 1) {                            /* the header names the columns */
            ncols = split_tabs(p, cells, MAX_CELLS);
            if (ncols > MAX_CELLS) {
                problem(t, kind, line, "more than %d columns", MAX_CELLS);
                return;
            }
            for (i = 0; i < ncols; i++) {
                for (c = 0; c < COL_COUNT && strcmp(cells[i], column_names[c]) != 0; c++)
                    ;
                if (c == COL_COUNT || !(kinds[kind].columns & (1u << c)))
                    problem(t, kind, line, "unexpected column '%.40s'", cells[i]);
                else if (col[c] >= 0)
                    problem(t, kind, line, "column '%s' twice", column_names[c]);
                else
                    col[c] = i;
            }
            for (c = 0; c < COL_COUNT; c++)
                if ((kinds[kind].columns & (1u << c)) && col[c] < 0) {
                    problem(t, kind, line, "no column '%s' in the header", column_names[c]);
                    return;
                }
            continue;
        }
        if (len == 0) {
            if (*next)
                problem(t, kind, line, "empty line");
            continue;
        }
        i = split_tabs(p, cells, MAX_CELLS);
        if (i != ncols) {
            problem(t, kind, line, "%d cells, the header has %d", i > MAX_CELLS ? MAX_CELLS + 1 : i, ncols);
            continue;
        }
        if (parse_row(t, kind, line, cells, col, &t->items[t->n]) == 0)
            t->n++;
    }
    if (line == 1)
        problem(t, kind, 0, "empty file");

    qsort(t->items, t->n, sizeof(t->items[0]), compare_items);
    for (k = 1; k < t->n; k++)
        if (strcmp(t->items[k - 1].key, t->items[k].key) == 0)
            problem(t, kind, 0, "code '%s' twice (as '%s' and '%s')", t->items[k].key, t->items[k - 1].code,
                    t->items[k].code);
}

/* Record a problem in an ICD-10 table for every code whose HIS category is not in his. */
static void check_his_categories(struct table *icd, const struct table *his)
{
    char key[CATALOGUE_CODE_MAX + 1];
    size_t k;

    for (k = 0; k < icd->n; k++) {
        const struct catalogue_item *it = &icd->items[k];

        if (make_key(CATALOGUE_HIS, it->his_category, key, sizeof(key)) < 0 || table_find(his, key) == NULL)
            problem(icd, CATALOGUE_ICD10, 0, "code %s: unknown HIS category '%.64s'", it->code, it->his_category);
    }
}

static void table_free(struct table *t)
{
    size_t k;
    int l;

    for (k = 0; k < t->n; k++) {
        free((char *)t->items[k].key);
        for (l = 0; l < CATALOGUE_LANGS; l++)
            free((char *)t->items[k].words[l]);
    }
    free(t->items);
    free(t->text);
    memset(t, 0, sizeof(*t));
}

static void load_all(void)
{
    static const enum catalogue_kind order[] = { CATALOGUE_HIS, CATALOGUE_MEDICINES, CATALOGUE_ICD10 };
    size_t i;

    for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        const struct asset *file = data_file_find(kinds[order[i]].path);

        load_table(&tables[order[i]], order[i], file ? file->data : NULL, file ? file->size : 0);
    }
    check_his_categories(&tables[CATALOGUE_ICD10], &tables[CATALOGUE_HIS]);
}

static const struct table *table_get(enum catalogue_kind kind)
{
    pthread_once(&load_once, load_all);
    return (unsigned)kind < CATALOGUE_KINDS ? &tables[kind] : NULL;
}

/* ---------------------------------------------------------------------------------------------------------
 * Public functions
 */

int catalogue_kind_parse(const char *name, enum catalogue_kind *kind)
{
    int k;

    for (k = 0; name && k < CATALOGUE_KINDS; k++)
        if (strcmp(name, kinds[k].name) == 0) {
            *kind = (enum catalogue_kind)k;
            return 0;
        }
    return -1;
}

const char *catalogue_path(enum catalogue_kind kind)
{
    return (unsigned)kind < CATALOGUE_KINDS ? kinds[kind].path : NULL;
}

size_t catalogue_count(enum catalogue_kind kind)
{
    const struct table *t = table_get(kind);

    return t ? t->n : 0;
}

const struct catalogue_item *catalogue_at(enum catalogue_kind kind, size_t i)
{
    const struct table *t = table_get(kind);

    return t && i < t->n ? &t->items[i] : NULL;
}

const struct catalogue_item *catalogue_find(enum catalogue_kind kind, const char *code)
{
    const struct table *t = table_get(kind);
    char key[CATALOGUE_CODE_MAX + 1];

    if (t == NULL || make_key(kind, code, key, sizeof(key)) < 0)
        return NULL;
    return table_find(t, key);
}

int catalogue_normalise(enum catalogue_kind kind, const char *code, char *out, size_t n)
{
    const struct catalogue_item *it = catalogue_find(kind, code);

    if (out == NULL || n == 0)
        return -1;
    out[0] = '\0';
    if (it == NULL || strlen(it->code) >= n)
        return -1;
    memcpy(out, it->code, strlen(it->code) + 1);
    return 0;
}

/* Index of a language in item labels (0 en, 1 ar, 2 fr, 3 es) from a BCP 47 tag, or -1. */
static int lang_index(const char *lang)
{
    static const char *const langs[CATALOGUE_LANGS] = { "en", "ar", "fr", "es" };
    size_t len;
    int l;

    if (lang == NULL)
        return 0;
    len = strcspn(lang, "-_");
    for (l = 0; l < CATALOGUE_LANGS; l++)
        if (len == 2 && strncasecmp(lang, langs[l], 2) == 0)
            return l;
    return -1;
}

const char *catalogue_label(const struct catalogue_item *it, const char *lang)
{
    int l = lang_index(lang);

    if (it == NULL)
        return NULL;
    if (l >= 0 && it->label[l][0])
        return it->label[l];
    for (l = 0; l < CATALOGUE_LANGS; l++)       /* English first, then any */
        if (it->label[l][0])
            return it->label[l];
    return it->code;
}

/* Does every word of the folded query (" w1 w2") start a word of the folded text (" a b c")? */
static int words_match(const char *text, const char *query)
{
    char needle[CATALOGUE_QUERY_MAX * 24 + 32];
    const char *w = query;

    while (*w == ' ') {
        size_t len = strcspn(w + 1, " ") + 1;   /* " w1" */

        if (len >= sizeof(needle))
            return 0;
        memcpy(needle, w, len);
        needle[len] = '\0';
        if (strstr(text, needle) == NULL)
            return 0;
        w += len;
    }
    return 1;
}

static int set_string(json_t *obj, const char *key, const char *value)
{
    return json_object_set_new(obj, key, value ? json_string(value) : json_null());
}

/* The JSON of one search result. */
static json_t *item_json(enum catalogue_kind kind, const struct table *his, const struct catalogue_item *it,
                         const char *lang)
{
    json_t *o = json_object();
    int bad;

    if (o == NULL)
        return NULL;
    bad = set_string(o, "code", it->code) | set_string(o, "label", catalogue_label(it, lang));
    if (kind == CATALOGUE_ICD10) {
        char key[CATALOGUE_CODE_MAX + 1];
        const struct catalogue_item *h = NULL;

        if (make_key(CATALOGUE_HIS, it->his_category, key, sizeof(key)) >= 0)
            h = table_find(his, key);
        bad |= set_string(o, "his_category", it->his_category)
               | set_string(o, "his_label", h ? catalogue_label(h, lang) : NULL);
    } else if (kind == CATALOGUE_MEDICINES) {
        bad |= set_string(o, "form", it->form) | set_string(o, "strength", it->strength)
               | set_string(o, "route", it->route) | set_string(o, "atc", it->atc);
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *catalogue_search(enum catalogue_kind kind, const char *q, const char *lang, int limit, struct err *e)
{
    const struct table *t = table_get(kind), *his = table_get(CATALOGUE_HIS);
    const struct catalogue_item **found = NULL;
    char key[CATALOGUE_CODE_MAX + 1], folded[CATALOGUE_QUERY_MAX * 24 + 32];
    int keylen = -1, nfound = 0, pass;
    json_t *out = NULL, *items;
    size_t k, qlen = q ? strlen(q) : 0;

    if (t == NULL) {
        err_set(e, ERR_INVALID, "catalogue_not_found", "there is no such catalogue");
        return NULL;
    }
    if (limit < 1 || limit > CATALOGUE_LIMIT_MAX) {
        err_set(e, ERR_INVALID, "invalid_limit", "limit must be a whole number from 1 to %d", CATALOGUE_LIMIT_MAX);
        err_field(e, "limit");
        return NULL;
    }
    if (qlen > CATALOGUE_QUERY_MAX) {
        err_set(e, ERR_INVALID, "query_too_long", "the search text must be at most %d bytes", CATALOGUE_QUERY_MAX);
        err_field(e, "q");
        return NULL;
    }
    folded[0] = '\0';
    if (q && catalogue_fold(q, folded, sizeof(folded)) < 0) {
        err_set(e, ERR_INVALID, "invalid_utf8", "the search text is not valid UTF-8");
        err_field(e, "q");
        return NULL;
    }
    if (q)
        keylen = make_key(kind, q, key, sizeof(key));
    found = malloc((size_t)limit * sizeof(*found));
    if (found == NULL)
        goto oom;

    if (q == NULL || q[strspn(q, " \t")] == '\0') {     /* blank: the first items */
        for (k = 0; k < t->n && nfound < limit; k++)
            found[nfound++] = &t->items[k];
    } else {
        /* pass 0: code prefix; pass 1: words of a label, among the items pass 0 did not take */
        for (pass = 0; pass < 2 && nfound < limit; pass++) {
            for (k = 0; k < t->n && nfound < limit; k++) {
                const struct catalogue_item *it = &t->items[k];
                int by_code = keylen > 0 && strncmp(it->key, key, (size_t)keylen) == 0, l;

                if (pass == 0) {
                    if (by_code)
                        found[nfound++] = it;
                    continue;
                }
                if (by_code || folded[0] == '\0')
                    continue;
                for (l = 0; l < CATALOGUE_LANGS; l++)
                    if (words_match(it->words[l], folded)) {
                        found[nfound++] = it;
                        break;
                    }
            }
        }
    }

    out = json_object();
    items = json_array();
    if (out == NULL || items == NULL || json_object_set_new(out, "items", items) < 0) {
        json_decref(items);
        goto oom;
    }
    for (pass = 0; pass < nfound; pass++) {
        json_t *o = item_json(kind, his, found[pass], lang);

        if (o == NULL || json_array_append_new(items, o) < 0)
            goto oom;
    }
    free(found);
    return out;
oom:
    free(found);
    json_decref(out);
    err_set(e, ERR_INTERNAL, "out_of_memory", "the node ran out of memory");
    return NULL;
}

/* 0 when the tables have no problem, else -1 with *e naming the first and counting them all. */
static int report_problems(const struct table *const *t, int n, struct err *e)
{
    int k, total = 0, first = -1;

    for (k = 0; k < n; k++) {
        total += t[k]->problems;
        if (first < 0 && t[k]->problems > 0)
            first = k;
    }
    if (total == 0)
        return 0;
    return err_set(e, ERR_INTERNAL, "catalogue_invalid", "%s (%d problem%s in all)", t[first]->first_problem,
                   total, total == 1 ? "" : "s");
}

int catalogue_check(struct err *e)
{
    const struct table *all[CATALOGUE_KINDS] = { &tables[0], &tables[1], &tables[2] };

    table_get(CATALOGUE_ICD10);
    return report_problems(all, CATALOGUE_KINDS, e);
}

int catalogue_check_text(enum catalogue_kind kind, const char *text, size_t len, struct err *e)
{
    const struct table *his = table_get(CATALOGUE_HIS);
    struct table t;
    const struct table *one = &t;
    int rc;

    if ((unsigned)kind >= CATALOGUE_KINDS || text == NULL)
        return err_set(e, ERR_INVALID, "invalid_argument", "no such catalogue kind, or no text");
    memset(&t, 0, sizeof(t));
    load_table(&t, kind, (const unsigned char *)text, len);
    if (kind == CATALOGUE_ICD10)
        check_his_categories(&t, his);
    rc = report_problems(&one, 1, e);
    table_free(&t);
    return rc;
}
