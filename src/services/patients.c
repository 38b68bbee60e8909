/* patients.c — the patient registry: validation, field-level writes through the change log, the search
 * terms each record is indexed by, CSV import and demo batches, export. Name folding and phonetic keys
 * come from core/names.c; this file decides what is indexed, patients_find.c how it is searched and how
 * candidates are ranked. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/date.h"
#include "core/id.h"
#include "core/json.h"
#include "core/log.h"
#include "core/names.h"
#include "core/util.h"
#include "services/audit.h"
#include "services/changelog.h"
#include "services/patients.h"
#include "services/patients_internal.h"
#include "services/regfields.h"
#include "store/patients.h"
#include "store/sites.h"

#define NAME_MAX_BYTES 200
#define OTHER_NAMES_MAX 10
#define PHONES_MAX 5
#define LANGUAGES_MAX 10
#define PLACE_MAX_BYTES 500
#define TERMS_MAX 160
#define TOKENS_MAX 24

/* ---- normalisers ---- */

int patients_normalise_phone(const char *in, char *out, size_t outlen)
{
    size_t n = 0, digits = 0;
    const char *p = in;

    if (outlen < 18)
        return -1;
    while (*p == ' ')
        p++;
    if (p[0] == '+') {
        out[n++] = '+';
        p++;
    } else if (p[0] == '0' && p[1] == '0') {
        out[n++] = '+';     /* 00 is the international prefix in most of the world */
        p += 2;
    }
    for (; *p; p++) {
        if (*p >= '0' && *p <= '9') {
            if (digits++ >= 15)
                return -1;
            out[n++] = *p;
        } else if (!strchr(" -.()/", *p)) {
            return -1;
        }
    }
    out[n] = '\0';
    return digits >= 6 ? 0 : -1;
}

/* The last 9 digits: the subscriber number without country code or trunk 0, so "+963 955 123 456" and
 * "0955123456" meet in the index. */
void pt_phone_key(const char *normalised, char *out, size_t outlen)
{
    char digits[24];
    size_t n = 0;
    const char *p;

    for (p = normalised; *p && n < sizeof(digits) - 1; p++)
        if (*p >= '0' && *p <= '9')
            digits[n++] = *p;
    digits[n] = '\0';
    snprintf(out, outlen, "%s", n > 9 ? digits + n - 9 : digits);
}

void patients_normalise_identifier(const char *in, char *out, size_t outlen)
{
    size_t n = 0;

    for (; *in && n + 1 < outlen; in++) {
        if (strchr(" -./_", *in))
            continue;
        out[n++] = (char)toupper((unsigned char)*in);
    }
    out[n] = '\0';
}

/* ---- birth dates ---- */

static void today(int *y, int *m, int *d)
{
    time_t t = time(NULL);
    struct tm tm;

    gmtime_r(&t, &tm);
    *y = tm.tm_year + 1900;
    *m = tm.tm_mon + 1;
    *d = tm.tm_mday;
}

/* Parse "YYYY", "YYYY-MM" or "YYYY-MM-DD"; *precision gets "year", "month" or "day". */
int pt_parse_partial_date(const char *s, int *y, int *m, int *d, const char **precision)
{
    int n = 0;
    size_t len = s ? strlen(s) : 0;

    *m = 1;
    *d = 1;
    if (len == 4 && sscanf(s, "%4d%n", y, &n) == 1 && n == 4)
        *precision = "year";
    else if (len == 7 && sscanf(s, "%4d-%2d%n", y, m, &n) == 2 && n == 7)
        *precision = "month";
    else if (len == 10 && sscanf(s, "%4d-%2d-%2d%n", y, m, d, &n) == 3 && n == 10)
        *precision = "day";
    else
        return -1;
    if (!isdigit((unsigned char)s[0]) || *y < 1880 || *y > 2200 || *m < 1 || *m > 12 || *d < 1
        || *d > date_days_in_month(*y, *m))
        return -1;
    return 0;
}

/* The range of days a stored (date, precision) may stand for. */
int pt_birth_interval(const char *date, const char *precision, int64_t *lo, int64_t *hi)
{
    int y, m, d;
    const char *p;

    if (date == NULL || !*date || pt_parse_partial_date(date, &y, &m, &d, &p) < 0)
        return -1;
    if (precision && strcmp(precision, "year") == 0) {
        *lo = date_days_from_civil(y, 1, 1);
        *hi = date_days_from_civil(y, 12, 31);
    } else if (precision && strcmp(precision, "month") == 0) {
        *lo = date_days_from_civil(y, m, 1);
        *hi = date_days_from_civil(y, m, date_days_in_month(y, m));
    } else if (precision && strcmp(precision, "estimated") == 0) {
        *lo = date_days_from_civil(y, m, d) - 2 * 366;   /* an age told at a border is often a year or two off */
        *hi = date_days_from_civil(y, m, d) + 2 * 366;
    } else {
        *lo = *hi = date_days_from_civil(y, m, d);
    }
    return 0;
}

/* How well two birth dates agree: 1 the same date given the same way, 0.9 to 0.95 compatible (the ranges
 * they may stand for overlap; the nearer their middles, the higher), 0.5 close (a typo or swapped day and
 * month), 0 incompatible, -1 unknown. Among many compatible look-alikes (an estimated age allows four
 * years), the record whose date agrees best comes first. */
double pt_birth_compatibility(const char *da, const char *pa, const char *db, const char *pb)
{
    int64_t alo, ahi, blo, bhi, gap, reach;

    if (pt_birth_interval(da, pa, &alo, &ahi) < 0 || pt_birth_interval(db, pb, &blo, &bhi) < 0)
        return -1;
    if (alo <= bhi && blo <= ahi) {
        if (strcmp(da, db) == 0 && pa && pb && strcmp(pa, pb) == 0)
            return 1;
        gap = llabs((alo + ahi) - (blo + bhi));         /* twice the distance of the middles */
        reach = (ahi - alo) + (bhi - blo) + 2;
        return 0.9 + 0.05 * (1.0 - (gap >= reach ? 1.0 : (double)gap / (double)reach));
    }
    if (pa && pb && strcmp(pa, "day") == 0 && strcmp(pb, "day") == 0) {
        if (strncmp(da, db, 4) == 0 && da[5] == db[8] && da[6] == db[9] && da[8] == db[5] && da[9] == db[6])
            return 0.5;
        if (llabs(alo - blo) <= 31 || (strncmp(da + 4, db + 4, 6) == 0 && abs(atoi(da) - atoi(db)) <= 1))
            return 0.5;
    }
    return 0;
}

/* Turn birth_date / birth_precision / age_years / age_on input into stored (date, precision) fields of
 * `changes`. */
int pt_birth_from_input(const json_t *input, json_t *changes, struct err *e)
{
    const json_t *bd = json_object_get(input, "birth_date"), *age = json_object_get(input, "age_years");
    const char *prec_in = json_string_value(json_object_get(input, "birth_precision"));
    const char *age_on = json_string_value(json_object_get(input, "age_on")), *prec;
    int y, m, d, ty, tm, td;
    char date[16];

    today(&ty, &tm, &td);
    if (bd && age)
        return err_set(e, ERR_INVALID, "conflicting_fields", "give either birth_date or age_years, not both");
    if (json_is_null(bd)) {
        json_object_set_new(changes, "birth_date", json_null());
        json_object_set_new(changes, "birth_precision", json_null());
        return 0;
    }
    if (bd) {
        if (pt_parse_partial_date(json_string_value(bd), &y, &m, &d, &prec) < 0)
            return err_set(e, ERR_INVALID, "invalid_date", "birth_date must be YYYY, YYYY-MM or YYYY-MM-DD");
        if (prec_in) {
            if (strcmp(prec_in, "estimated") == 0)
                prec = "estimated";
            else if (strcmp(prec_in, prec) != 0)
                return err_set(e, ERR_INVALID, "invalid_precision",
                               "birth_precision '%.16s' does not fit the birth_date given", prec_in);
        }
    } else if (age) {
        if (!json_is_integer(age) || json_integer_value(age) < 0 || json_integer_value(age) > 130)
            return err_set(e, ERR_INVALID, "invalid_age", "age_years must be a whole number from 0 to 130");
        if (age_on) {
            if (pt_parse_partial_date(age_on, &ty, &tm, &td, &prec) < 0 || strcmp(prec, "day") != 0)
                return err_set(e, ERR_INVALID, "invalid_date", "age_on must be a date YYYY-MM-DD");
        }
        y = ty - (int)json_integer_value(age);
        m = tm;
        d = td > date_days_in_month(y, m) ? date_days_in_month(y, m) : td;
        prec = "estimated";
    } else {
        if (prec_in)
            return err_set(e, ERR_INVALID, "invalid_precision", "birth_precision needs a birth_date");
        return 0;
    }
    if (date_days_from_civil(y, m, d) > date_days_from_civil(ty, tm, td))
        return err_set(e, ERR_INVALID, "invalid_date", "the birth date is in the future");
    snprintf(date, sizeof(date), "%04d-%02d-%02d", y, m, d);
    json_object_set_new(changes, "birth_date", json_string(date));
    json_object_set_new(changes, "birth_precision", json_string(prec));
    return 0;
}

/* ---- names ---- */

/* The stored name_fold of a record is its names folded to Latin, one group per name, groups separated by
 * " | ": "given middle family | original script | alias | alias". Search ranks against the whole string
 * (the query's words may come from any name); duplicate checks compare name with name, group by group. */

/* Split a folded string into its tokens (particles merged by names_tokens). */
int pt_fold_tokens(const char *folded, struct names_tokens *t)
{
    t->n = 0;
    return folded && *folded ? names_tokens(folded, t) : 0;
}

/* Append the folded form of name to out as a new group. */
static void fold_group(const char *name, char *out, size_t outlen)
{
    char folded[NAMES_FOLD_MAX];
    size_t n = strlen(out);

    if (name == NULL || *name == '\0' || names_fold(name, folded, sizeof(folded)) <= 0)
        return;
    if (n + strlen(folded) + 4 >= outlen)
        return;
    snprintf(out + n, outlen - n, "%s%s", n ? " | " : "", folded);
}

/* The name_fold of a record (see above). */
void pt_record_name_fold(const json_t *p, char *out, size_t outlen)
{
    char main[3 * NAMES_INPUT_MAX + 3];
    const char *given = json_string_value(json_object_get(p, "given_name"));
    const char *middle = json_string_value(json_object_get(p, "middle_name"));
    const char *family = json_string_value(json_object_get(p, "family_name"));
    size_t i;
    json_t *v;

    out[0] = '\0';
    snprintf(main, sizeof(main), "%s %s %s", given ? given : "", middle ? middle : "", family ? family : "");
    fold_group(main, out, outlen);
    fold_group(json_string_value(json_object_get(p, "name_original")), out, outlen);
    json_array_foreach(json_object_get(p, "other_names"), i, v)
        fold_group(json_string_value(v), out, outlen);
}

/* The names of a name_fold-style string, each split into tokens. */
void pt_name_groups_of(const char *fold, struct name_groups *ng)
{
    char group[NAMES_FOLD_MAX];
    const char *g, *end;

    ng->n = 0;
    for (g = fold; g && *g && ng->n < NAME_GROUPS_MAX; g = end ? end + 3 : NULL) {
        end = strstr(g, " | ");
        snprintf(group, sizeof(group), "%.*s", (int)(end ? (size_t)(end - g) : strlen(g)), g);
        if (pt_fold_tokens(group, &ng->g[ng->n]) > 0)
            ng->n++;
    }
}

/* The best similarity between any name of a and any name of b. partial: a is a draft registration, and a
 * name of b with more words than a's (a father's name the draft left out) is compared by
 * names_partial_similarity too. */
double pt_groups_similarity(const struct name_groups *a, const struct name_groups *b, int partial)
{
    double best = 0, x;
    int i, j;

    for (i = 0; i < a->n; i++)
        for (j = 0; j < b->n; j++) {
            x = names_similarity_tokens(&a->g[i], &b->g[j]);
            if (x > best)
                best = x;
            if (partial && best < 1.0 && (x = names_partial_similarity_tokens(&a->g[i], &b->g[j])) > best)
                best = x;
        }
    return best;
}

/* ---- the record ---- */

/* A site's registration config: from cache (an object site -> config, kept by batches) when given, else
 * loaded. Returns a new reference either way. */
/* The code of the error a step that runs without the database (db NULL) gives when it needs it after all. */
static const char needs_database[] = "needs_database";

static json_t *site_config(struct db *db, json_t *cache, const char *site, struct err *e)
{
    json_t *c = cache ? json_object_get(cache, site) : NULL;

    if (c)
        return json_incref(c);
    if (db == NULL) {
        err_set(e, ERR_INTERNAL, needs_database, "the registration config of a site is not loaded");
        return NULL;
    }
    c = regfields_get(db, site, e);
    if (c && cache)
        json_object_set(cache, site, c);
    return c;
}

int pt_site_allowed(const struct caller *who, const char *site)
{
    int i;

    for (i = 0; i < who->nsites; i++)
        if (site && strcmp(who->sites[i], site) == 0)
            return 1;
    return 0;
}

/* Set a flattened field on a record: "identifiers.x" and "custom.x" address one key of those objects. */
static void record_set(json_t *p, const char *field, json_t *value)
{
    const char *dot = strchr(field, '.');
    char group[32];
    json_t *obj;

    if (dot == NULL) {
        json_object_set(p, field, value);
        return;
    }
    snprintf(group, sizeof(group), "%.*s", (int)(dot - field), field);
    obj = json_object_get(p, group);
    if (!json_is_object(obj)) {
        obj = json_object();
        json_object_set_new(p, group, obj);
    }
    if (json_is_null(value))
        json_object_del(obj, dot + 1);
    else
        json_object_set(obj, dot + 1, value);
}

/* The birth part of a record's key terms: "1987" (the year of a day, month or year date), "1987~" (an
 * estimated date, whose year may be a few off) or "" (no date). Duplicate checks read the keys of the
 * birth years a draft is compatible with, instead of every holder of a key. */
static void birth_suffix(const char *date, const char *precision, char out[8])
{
    out[0] = '\0';
    if (date && strlen(date) >= 4 && isdigit((unsigned char)date[0]) && isdigit((unsigned char)date[1])
        && isdigit((unsigned char)date[2]) && isdigit((unsigned char)date[3]))
        snprintf(out, 8, "%.4s%s", date, precision && strcmp(precision, "estimated") == 0 ? "~" : "");
}

/* The search terms of a record (see "Storage and index" in docs/registry.md): n: name token,
 * k:key:birth phonetic key with the birth year, i: identifier of any type or searchable custom value,
 * p: phone. */
static size_t record_terms(const json_t *p, const json_t *config, const char *name_fold, char terms[][TERM_LEN],
                           size_t max, int all_custom)
{
    char group[NAMES_FOLD_MAX], keys[NAMES_KEYS_MAX], norm[72], birth[8], key[TOKEN_LEN];
    const char *g, *end, *k, *type;
    struct names_tokens tk;
    size_t n = 0, i, kl;
    json_t *v;
    int searchable, j;
    struct err ignored;

    birth_suffix(json_string_value(json_object_get(p, "birth_date")),
                 json_string_value(json_object_get(p, "birth_precision")), birth);
    for (g = name_fold; g && *g; g = end ? end + 3 : NULL) {
        end = strstr(g, " | ");
        snprintf(group, sizeof(group), "%.*s", (int)(end ? (size_t)(end - g) : strlen(g)), g);
        pt_fold_tokens(group, &tk);
        for (j = 0; j < tk.n && n < max; j++)
            snprintf(terms[n++], TERM_LEN, "n:%s", tk.tok[j]);
        if (names_keys_of_tokens(&tk, keys, sizeof(keys)) > 0) {
            for (k = keys; *k && n < max; k += kl, k += *k == ' ') {
                kl = strcspn(k, " ");
                snprintf(terms[n++], TERM_LEN, "k:%.*s:%s", (int)kl, k, birth);
            }
        }
    }
    json_object_foreach((json_t *)json_object_get(p, "identifiers"), type, v) {
        if (n + 1 > max || !json_is_string(v))
            break;
        patients_normalise_identifier(json_string_value(v), norm, sizeof(norm));
        snprintf(terms[n++], TERM_LEN, "i:%s", norm);
    }
    json_array_foreach(json_object_get(p, "phones"), i, v) {
        if (n + 1 > max)
            break;
        pt_phone_key(json_string_value(v), key, sizeof(key));
        snprintf(terms[n++], TERM_LEN, "p:%s", key);
    }
    json_object_foreach((json_t *)json_object_get(p, "custom"), type, v) {
        if (n + 1 > max)
            break;
        /* all_custom: the terms a record may hold, whatever the config says now (to remove them) */
        if (json_is_string(v)
            && (all_custom || (regfields_check_value(config, type, v, &searchable, &ignored) == 0 && searchable))) {
            patients_normalise_identifier(json_string_value(v), norm, sizeof(norm));
            snprintf(terms[n++], TERM_LEN, "i:%s", norm);
        }
    }
    return n;
}

static int term_compare(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The d: term of a record: what ranking a candidate needs, read in one step from the index instead of
 * the patient row: "d:" id "|" site "|" sex, precision (one letter each) and birth date "|" name_fold. */
#define BRIEF_TERM_MAX (2 * ID_LEN + 24 + 512)

static void brief_term(const json_t *p, const char *name_fold, char *out, size_t outlen)
{
    const char *sex = json_string_value(json_object_get(p, "sex"));
    const char *bd = json_string_value(json_object_get(p, "birth_date"));
    const char *bp = json_string_value(json_object_get(p, "birth_precision"));

    snprintf(out, outlen, "d:%s|%s|%c%c%.10s|%s", json_string_value(json_object_get(p, "id")),
             json_string_value(json_object_get(p, "site_id")),
             sex && (!strcmp(sex, "female") || !strcmp(sex, "male") || !strcmp(sex, "other")) ? sex[0] : 'u',
             bd && bp && *bd ? bp[0] : '-', bd && bp ? bd : "", name_fold);
}

/* Read a patient's d: term into b: 1 found (a live, indexed patient), 0 not. */
int pt_brief_of(struct db *db, const char *id, struct patient_brief *b, struct err *e)
{
    static const char *const sexes[] = { "female", "male", "other", "unknown" };
    static const char *const precisions[] = { "day", "month", "year", "estimated" };
    char lo[ID_LEN + 4], hi[ID_LEN + 4], term[BRIEF_TERM_MAX];
    const char *p, *bar;
    int found, i;

    snprintf(lo, sizeof(lo), "d:%.36s|", id);
    snprintf(hi, sizeof(hi), "d:%.36s}", id);
    if ((found = store_patient_term_first(db, lo, hi, term, sizeof(term), e)) <= 0)
        return found;
    memset(b, 0, sizeof(*b));
    snprintf(b->id, sizeof(b->id), "%.36s", id);
    p = term + strlen(lo);
    if ((bar = strchr(p, '|')) == NULL || bar - p >= ID_LEN || strlen(bar) < 3)
        return 0;
    memcpy(b->site_id, p, (size_t)(bar - p));
    b->site_id[bar - p] = '\0';
    p = bar + 1;
    for (i = 0; i < 3 && sexes[i][0] != p[0]; i++)
        ;
    snprintf(b->sex, sizeof(b->sex), "%s", sexes[i]);
    for (i = 0; i < 4 && precisions[i][0] != p[1]; i++)
        ;
    if (i < 4)
        snprintf(b->birth_precision, sizeof(b->birth_precision), "%s", precisions[i]);
    p += 2;
    if ((bar = strchr(p, '|')) == NULL || bar - p > 10)
        return 0;
    memcpy(b->birth_date, p, (size_t)(bar - p));
    b->birth_date[bar - p] = '\0';
    snprintf(b->name_fold, sizeof(b->name_fold), "%s", bar + 1);
    return 1;
}

/* The terms of a record as the store wants them, each once (tptr holds TERMS_MAX + 1); n is 0 for a
 * deleted record (it leaves the index). brief gets its d: term (BRIEF_TERM_MAX bytes). */
static size_t record_index(struct db *db, const json_t *p, json_t *cache, int old, char name_fold[512],
                           char terms[][TERM_LEN], char *brief, const char **tptr, struct err *e)
{
    json_t *config = site_config(db, cache, json_string_value(json_object_get(p, "site_id")), e);
    size_t n, i;

    if (config == NULL)
        return (size_t)-1;
    pt_record_name_fold(p, name_fold, 512);
    n = json_is_true(json_object_get(p, "deleted")) ? 0 : record_terms(p, config, name_fold, terms, TERMS_MAX, old);
    for (i = 0; i < n; i++)
        tptr[i] = terms[i];
    json_decref(config);
    if (!json_is_true(json_object_get(p, "deleted"))) {
        brief_term(p, name_fold, brief, BRIEF_TERM_MAX);
        tptr[n++] = brief;
    }
    /* names in two scripts often give the same words and keys: each term once */
    if (n > 1) {
        size_t j = 0;

        qsort(tptr, n, sizeof(*tptr), term_compare);
        for (i = 1; i < n; i++)
            if (strcmp(tptr[i], tptr[j]) != 0)
                tptr[++j] = tptr[i];
        n = j + 1;
    }
    return n;
}

/* ---- batches of search terms ---- */

/* The search terms of the new patients of a batch (import, demo data, index rebuild), inserted in index
 * order when the batch ends: the terms of one patient land all over the index (its keys, identifiers and
 * phones), so row by row each insert walks to another page, while sorted inserts touch each page once.
 * The identifiers of the batch are also kept here, since the uniqueness check cannot find them in the
 * index before then. */
struct term_batch {
    char *text;             /* "term\0id\0" pairs back to back */
    size_t len, cap;
    size_t *pairs;          /* offset of each pair in text */
    size_t n, ncap;
    char **idents;          /* open hash table of "type:normalised\0patient id" */
    size_t nidents, identcap;
};

#define TERM_BATCH_FLUSH 4000000    /* pairs held before they are written (~250 MB): flush earlier */

static struct term_batch *term_batch_new(void)
{
    return calloc(1, sizeof(struct term_batch));
}

static void term_batch_free(struct term_batch *b)
{
    size_t i;

    if (b == NULL)
        return;
    for (i = 0; i < b->identcap; i++)
        free(b->idents[i]);
    free(b->idents);
    free(b->text);
    free(b->pairs);
    free(b);
}

static int term_batch_add(struct term_batch *b, const char *term, const char *id)
{
    size_t tl = strlen(term) + 1, il = strlen(id) + 1;

    if (b->len + tl + il > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1 << 20;
        char *t;

        while (cap < b->len + tl + il)
            cap *= 2;
        if ((t = realloc(b->text, cap)) == NULL)
            return -1;
        b->text = t;
        b->cap = cap;
    }
    if (b->n == b->ncap) {
        size_t cap = b->ncap ? b->ncap * 2 : 1 << 16, *q;

        if ((q = realloc(b->pairs, cap * sizeof(*q))) == NULL)
            return -1;
        b->pairs = q;
        b->ncap = cap;
    }
    b->pairs[b->n++] = b->len;
    memcpy(b->text + b->len, term, tl);
    memcpy(b->text + b->len + tl, id, il);
    b->len += tl + il;
    return 0;
}

/* Pairs (offsets into text) by term, then patient id. */
static int pair_compare(const void *a, const void *b, void *text)
{
    const char *x = (const char *)text + *(const size_t *)a, *y = (const char *)text + *(const size_t *)b;
    int c = strcmp(x, y);

    return c ? c : strcmp(x + strlen(x) + 1, y + strlen(y) + 1);
}

/* Write the batch's terms in index order and empty it (its identifiers are then in the index). */
static int term_batch_flush(struct db *db, struct term_batch *b, struct err *e)
{
    const char **terms, **ids;
    size_t i;
    int rc;

    if (b == NULL || b->n == 0)
        return 0;
    terms = malloc(b->n * sizeof(*terms));
    ids = malloc(b->n * sizeof(*ids));
    if (terms == NULL || ids == NULL) {
        free(terms);
        free(ids);
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    }
    qsort_r(b->pairs, b->n, sizeof(*b->pairs), pair_compare, b->text);
    for (i = 0; i < b->n; i++) {
        terms[i] = b->text + b->pairs[i];
        ids[i] = terms[i] + strlen(terms[i]) + 1;
    }
    rc = store_patient_terms_insert(db, terms, ids, b->n, e);
    free(terms);
    free(ids);
    b->n = b->len = 0;
    for (i = 0; i < b->identcap; i++) {
        free(b->idents[i]);
        b->idents[i] = NULL;
    }
    b->nidents = 0;
    return rc;
}

static uint64_t text_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
    return h;
}

/* A hash of a patient id: its last 16 characters, the random part of a UUIDv7 (any string works). */
uint64_t pt_id_hash(const char *id)
{
    size_t n = strlen(id);

    return text_hash(n > 16 ? id + n - 16 : id);
}

/* The patient of the batch holding identifier "type:normalised", or NULL. */
static const char *term_batch_identifier(const struct term_batch *b, const char *ident)
{
    size_t i;

    if (b == NULL || b->identcap == 0)
        return NULL;
    for (i = text_hash(ident) & (b->identcap - 1); b->idents[i]; i = (i + 1) & (b->identcap - 1))
        if (strcmp(b->idents[i], ident) == 0)
            return b->idents[i] + strlen(ident) + 1;
    return NULL;
}

static int term_batch_add_identifier(struct term_batch *b, const char *ident, const char *id)
{
    size_t i, il = strlen(ident) + 1, cap;
    char **old, *entry;

    if (2 * (b->nidents + 1) > b->identcap) {
        cap = b->identcap ? b->identcap * 2 : 4096;
        old = b->idents;
        if ((b->idents = calloc(cap, sizeof(*b->idents))) == NULL) {
            b->idents = old;
            return -1;
        }
        for (i = 0; i < b->identcap; i++) {
            size_t j;

            if (old[i] == NULL)
                continue;
            for (j = text_hash(old[i]) & (cap - 1); b->idents[j]; j = (j + 1) & (cap - 1))
                ;
            b->idents[j] = old[i];
        }
        free(old);
        b->identcap = cap;
    }
    if ((entry = malloc(il + strlen(id) + 1)) == NULL)
        return -1;
    memcpy(entry, ident, il);
    strcpy(entry + il, id);
    for (i = text_hash(ident) & (b->identcap - 1); b->idents[i]; i = (i + 1) & (b->identcap - 1))
        ;
    b->idents[i] = entry;
    b->nidents++;
    return 0;
}

/* ---- the index version ---- */

/* The search terms a record has depend on this code (which keys, with what birth part). When they
 * change, PATIENT_INDEX_VERSION changes, and a database indexed by an older version is indexed again on
 * first use (patients_index_check): an update must find the terms it removes. */
#define PATIENT_INDEX_VERSION "3"
#define PATIENT_INDEX_META "patient_index"

struct id_list {
    char (*v)[ID_LEN];
    size_t n, cap;
};

static int id_list_add(const char *id, void *ctx)
{
    struct id_list *l = ctx;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        char (*q)[ID_LEN] = realloc(l->v, cap * sizeof(*q));

        if (q == NULL)
            return 1;
        l->v = q;
        l->cap = cap;
    }
    snprintf(l->v[l->n++], ID_LEN, "%s", id);
    return 0;
}

/* Rebuild the search index from the patient rows, inside the caller's write transaction. */
static int index_rebuild(struct db *db, struct err *e)
{
    char terms[TERMS_MAX][TERM_LEN], name_fold[512], after[ID_LEN] = "", brief[BRIEF_TERM_MAX];
    const char *tptr[TERMS_MAX + 1];
    struct term_batch *batch = term_batch_new();
    struct id_list ids = { NULL, 0, 0 };
    json_t *cache = json_object(), *p;
    int64_t done = 0, t0 = monotonic_us();
    size_t i, j, n;
    int rc = -1, found;

    if (batch == NULL || cache == NULL) {
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        goto out;
    }
    if (store_patient_terms_clear(db, e) < 0)
        goto out;
    do {
        ids.n = 0;
        if (store_patient_ids_after(db, after, 1000, id_list_add, &ids, e) < 0)
            goto out;
        for (i = 0; i < ids.n; i++) {
            if ((found = store_patient_get(db, ids.v[i], &p, e)) < 0)
                goto out;
            if (!found)
                continue;
            n = record_index(db, p, cache, 0, name_fold, terms, brief, tptr, e);
            json_decref(p);
            if (n == (size_t)-1)
                goto out;
            for (j = 0; j < n; j++)
                if (term_batch_add(batch, tptr[j], ids.v[i]) < 0) {
                    err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
                    goto out;
                }
            if (batch->n >= TERM_BATCH_FLUSH / 4 && term_batch_flush(db, batch, e) < 0)
                goto out;
        }
        done += (int64_t)ids.n;
        if (ids.n)
            snprintf(after, sizeof(after), "%s", ids.v[ids.n - 1]);
    } while (ids.n == 1000);
    if (term_batch_flush(db, batch, e) < 0 || store_meta_set(db, PATIENT_INDEX_META, PATIENT_INDEX_VERSION, e) < 0)
        goto out;
    if (done > 0)
        log_info("patients: search index rebuilt for %lld patients in %.1f s (index version %s)", (long long)done,
                 (double)(monotonic_us() - t0) / 1e6, PATIENT_INDEX_VERSION);
    rc = 0;
out:
    term_batch_free(batch);
    json_decref(cache);
    free(ids.v);
    return rc;
}

int patients_index_check(struct db *db, struct err *e)
{
    char version[16];
    int found, own = !db_in_transaction(db);

    found = store_meta_get(db, PATIENT_INDEX_META, version, sizeof(version), e);
    if (found < 0)
        return -1;
    if (found && strcmp(version, PATIENT_INDEX_VERSION) == 0)
        return 0;
    if (own) {
        if (db_begin_write(db, e) < 0)
            return -1;
        /* read again under the lock: another thread or process may have rebuilt it meanwhile */
        found = store_meta_get(db, PATIENT_INDEX_META, version, sizeof(version), e);
        if (found < 0) {
            db_rollback(db);
            return -1;
        }
        if (found && strcmp(version, PATIENT_INDEX_VERSION) == 0) {
            db_rollback(db);
            return 0;
        }
    }
    if (index_rebuild(db, e) < 0) {
        if (own)
            db_rollback(db);
        return -1;
    }
    return own ? db_commit(db, e) : 0;
}

/* ---- many patients stored in one transaction (a sync batch) ---- */

/* The terms of the patients a sync batch adds, written sorted at its end: a patient's terms scatter over
 * the whole index, and written patient by patient they cost more than the rest of the patient.
 * A new patient whose names need a transliterator still being compiled (at the start of a process, on
 * another thread: names_init) is stored at once without its folded names, and indexed when the batch
 * ends or before anything reads its terms: meanwhile the batch's other records go in. */
static __thread struct term_batch *apply_terms;
static __thread json_t *apply_pending;  /* array of those patients' records */

void patients_apply_begin(void)
{
    term_batch_free(apply_terms);
    json_decref(apply_pending);
    apply_terms = term_batch_new();     /* (NULL when out of memory: each patient is written alone) */
    apply_pending = json_array();       /* (NULL: none waits) */
}

/* Fold and index the patients that waited (see above), into apply_terms. */
static int apply_pending_index(struct db *db, struct err *e)
{
    char terms[TERMS_MAX][TERM_LEN], name_fold[512], brief[BRIEF_TERM_MAX];
    const char *tptr[TERMS_MAX + 1], *id;
    size_t i, j, n;
    json_t *p;

    json_array_foreach(apply_pending, i, p) {
        id = json_string_value(json_object_get(p, "id"));
        n = record_index(db, p, NULL, 0, name_fold, terms, brief, tptr, e);
        if (n == (size_t)-1 || store_patient_set_name_fold(db, id, name_fold, e) < 0)
            return -1;
        for (j = 0; j < n; j++)
            if (term_batch_add(apply_terms, tptr[j], id) < 0)
                return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    }
    json_array_clear(apply_pending);
    return 0;
}

int patients_apply_end(struct db *db, struct err *e)
{
    int rc = apply_pending_index(db, e) < 0 ? -1 : term_batch_flush(db, apply_terms, e);

    patients_apply_abort();
    return rc;
}

void patients_apply_abort(void)
{
    term_batch_free(apply_terms);
    json_decref(apply_pending);
    apply_terms = NULL;
    apply_pending = NULL;
}

/* Whether every name of p can be folded without waiting for a transliterator. */
static int record_names_ready(const json_t *p)
{
    static const char *const fields[] = { "given_name", "middle_name", "family_name", "name_original" };
    size_t i;
    json_t *v;

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (!names_fold_ready(json_string_value(json_object_get(p, fields[i]))))
            return 0;
    json_array_foreach(json_object_get(p, "other_names"), i, v)
        if (!names_fold_ready(json_string_value(v)))
            return 0;
    return 1;
}

int patients_store_fields(struct db *db, const char *id, const json_t *fields, int64_t at, struct err *e)
{
    char terms[TERMS_MAX][TERM_LEN], old_terms[TERMS_MAX][TERM_LEN], brief[BRIEF_TERM_MAX], old_brief[BRIEF_TERM_MAX];
    const char *tptr[TERMS_MAX + 1], *optr[TERMS_MAX + 1];
    char name_fold[512], old_fold[512];
    json_t *p = NULL, *v;
    const char *field;
    int64_t created = at;
    size_t n, nold = 0, i;
    int found, rc = -1;

    if (patients_index_check(db, e) < 0 || (found = store_patient_get(db, id, &p, e)) < 0)
        return -1;
    if (!found) {
        p = json_pack("{s:s}", "id", id);
    } else {
        /* the terms it replaces may wait in the batch: written first, they are found and removed */
        if ((apply_terms && apply_pending_index(db, e) < 0) || term_batch_flush(db, apply_terms, e) < 0)
            goto done;
        created = json_integer_value(json_object_get(p, "created_at"));
        /* the index holds exactly the terms of the stored record: recompute them to remove them */
        nold = record_index(db, p, NULL, 1, old_fold, old_terms, old_brief, optr, e);
        if (nold == (size_t)-1)
            goto done;
    }
    json_object_foreach((json_t *)fields, field, v)
        record_set(p, field, v);
    if (!json_is_string(json_object_get(p, "site_id"))) {
        err_set(e, ERR_INVALID, "missing_site", "a patient record needs a site");
        goto done;
    }
    if (!found && apply_terms && apply_pending && !record_names_ready(p)) {
        /* indexed later in the batch (see apply_terms); a copy, as the batch's values may be released
         * before its end (services/sync.c reads its changes in chunks) */
        if (store_patient_put(db, p, "", created, at, e) < 0)
            goto done;
        if (json_array_append_new(apply_pending, json_deep_copy(p)) < 0) {
            err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
            goto done;
        }
        rc = 0;
        goto done;
    }
    n = record_index(db, p, NULL, 0, name_fold, terms, brief, tptr, e);
    if (n == (size_t)-1 || store_patient_put(db, p, name_fold, created, at, e) < 0)
        goto done;
    if (!found && apply_terms) {
        for (i = 0; i < n; i++)
            if (term_batch_add(apply_terms, tptr[i], id) < 0) {
                err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
                goto done;
            }
        if (apply_terms->n >= TERM_BATCH_FLUSH / 4 && term_batch_flush(db, apply_terms, e) < 0)
            goto done;
    } else if (store_patient_terms_set(db, id, optr, nold, tptr, n, e) < 0)
        goto done;
    rc = 0;
done:
    json_decref(p);
    return rc;
}

/* ---- input ---- */

#define N JF_NULLABLE
const struct json_field patients_input_fields[] = {
    { "site_id", JT_STRING, 0, 36 },
    { "given_name", JT_STRING, N, 400 },
    { "family_name", JT_STRING, N, 400 },
    { "middle_name", JT_STRING, N, 400 },
    { "name_original", JT_STRING, N, 400 },
    { "other_names", JT_STRING_ARRAY, N, OTHER_NAMES_MAX },
    { "sex", JT_STRING, 0, 16 },
    { "birth_date", JT_STRING, N, 10 },
    { "birth_precision", JT_STRING, 0, 16 },
    { "age_years", JT_INT, 0, 0 },
    { "age_on", JT_STRING, 0, 10 },
    { "nationality", JT_STRING, N, 3 },
    { "languages", JT_STRING_ARRAY, N, LANGUAGES_MAX },
    { "preferred_language", JT_STRING, N, 16 },
    { "phones", JT_STRING_ARRAY, N, PHONES_MAX },
    { "address", JT_STRING, N, PLACE_MAX_BYTES },
    { "camp", JT_STRING, N, PLACE_MAX_BYTES },
    { "shelter", JT_STRING, N, PLACE_MAX_BYTES },
    { "identifiers", JT_OBJECT, 0, 0 },
    { "custom", JT_OBJECT, 0, 0 },
    { NULL, 0, 0, 0 },
};
#undef N


/* A name field: a string of at most NAME_MAX_BYTES after trimming, or null / "" to clear. */
static int take_name(const json_t *input, const char *field, json_t *changes, struct err *e)
{
    const json_t *v = json_object_get(input, field);
    const char *s;
    size_t len;

    if (v == NULL)
        return 0;
    if (json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0)) {
        json_object_set_new(changes, field, json_null());
        return 0;
    }
    s = json_string_value(v);
    while (*s == ' ' || *s == '\t')
        s++;
    len = strlen(s);
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (len > NAME_MAX_BYTES) {
        err_set(e, ERR_INVALID, "field_too_long", "%s is longer than %d bytes", field, NAME_MAX_BYTES);
        return err_field(e, field);
    }
    json_object_set_new(changes, field, len ? json_stringn(s, len) : json_null());
    return 0;
}

static int take_text(const json_t *input, const char *field, size_t max, json_t *changes, struct err *e)
{
    const json_t *v = json_object_get(input, field);

    if (v == NULL)
        return 0;
    if (json_is_string(v) && json_string_length(v) > max) {
        err_set(e, ERR_INVALID, "field_too_long", "%s is longer than %zu bytes", field, max);
        return err_field(e, field);
    }
    json_object_set_new(changes, field, json_is_string(v) && json_string_length(v) ? json_copy((json_t *)v) : json_null());
    return 0;
}

/* Language tag: 2-3 lower-case letters, optionally "-" and 2-8 letters/digits ("ar", "fa-AF", "prs"). */
static int language_valid(const char *s)
{
    size_t i = 0, n;

    while (s[i] >= 'a' && s[i] <= 'z')
        i++;
    if (i < 2 || i > 3)
        return 0;
    if (s[i] == '\0')
        return 1;
    if (s[i] != '-')
        return 0;
    for (n = 0, i++; isalnum((unsigned char)s[i]); i++, n++)
        ;
    return s[i] == '\0' && n >= 2 && n <= 8;
}

static int take_string_list(const json_t *input, const char *field, size_t max_items, json_t *changes,
                            struct err *e)
{
    const json_t *v = json_object_get(input, field);
    json_t *out, *item;
    char phone[24];
    size_t i;

    if (v == NULL)
        return 0;
    if (json_is_null(v)) {
        json_object_set_new(changes, field, json_array());
        return 0;
    }
    if (json_array_size(v) > max_items) {
        err_set(e, ERR_INVALID, "too_many_items", "%s has more than %zu items", field, max_items);
        return err_field(e, field);
    }
    out = json_array();
    json_array_foreach(v, i, item) {
        const char *s = json_string_value(item);

        if (s == NULL || *s == '\0' || strlen(s) > NAME_MAX_BYTES) {
            json_decref(out);
            err_set(e, ERR_INVALID, "wrong_type", "%s must hold non-empty strings of at most %d bytes", field,
                    NAME_MAX_BYTES);
            return err_field(e, field);
        }
        if (strcmp(field, "phones") == 0) {
            if (patients_normalise_phone(s, phone, sizeof(phone)) < 0) {
                json_decref(out);
                err_set(e, ERR_INVALID, "invalid_phone",
                        "phones[%zu] is not a phone number (6 to 15 digits, optional + or 00 prefix)", i);
                return err_field(e, field);
            }
            s = phone;
        } else if (strcmp(field, "languages") == 0 && !language_valid(s)) {
            json_decref(out);
            err_set(e, ERR_INVALID, "invalid_language", "languages[%zu] must be a code like 'ar' or 'fa-AF'", i);
            return err_field(e, field);
        }
        json_array_append_new(out, json_string(s));
    }
    json_object_set_new(changes, field, out);
    return 0;
}

/* The current value of a flattened field of a record (NULL when absent). */
static const json_t *current_value(const json_t *p, const char *field)
{
    const char *dot = strchr(field, '.');
    char group[32];

    if (p == NULL)
        return NULL;
    if (dot == NULL)
        return json_object_get(p, field);
    snprintf(group, sizeof(group), "%.*s", (int)(dot - field), field);
    return json_object_get(json_object_get(p, group), dot + 1);
}

/* Validate an input object and turn it into flattened changes against the current record (NULL on create). */
static int changes_from_input(struct db *db, const struct caller *who, const json_t *input, const json_t *current,
                              json_t *changes, json_t *cache, struct err *e)
{
    static const char *const names[] = { "given_name", "family_name", "middle_name", "name_original" };
    const char *site, *key, *s;
    json_t *config = NULL, *v, *obj;
    char norm[72];
    size_t i;
    int searchable, rc = -1;

    site = json_string_value(json_object_get(input, "site_id"));
    if (site) {
        if (!pt_site_allowed(who, site)) {
            struct site_row row;

            if (db == NULL)
                return err_set(e, ERR_INTERNAL, needs_database, "which error depends on the sites of the node");
            if (store_site_get(db, site, &row, e) == 0)
                err_set(e, ERR_INVALID, "unknown_site", "site '%.40s' is not a site of this node", site);
            else
                err_set(e, ERR_FORBIDDEN, "site_not_allowed", "you cannot register patients at that site");
            return err_field(e, "site_id");
        }
        json_object_set_new(changes, "site_id", json_string(site));
    } else if (current == NULL) {
        if (who->nsites == 0)
            return err_set(e, ERR_FORBIDDEN, "no_site", "your account belongs to no site; ask an admin to add one");
        site = who->sites[0];
        json_object_set_new(changes, "site_id", json_string(site));
    } else {
        site = json_string_value(json_object_get(current, "site_id"));
    }
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (take_name(input, names[i], changes, e) < 0)
            return -1;
    if (take_string_list(input, "other_names", OTHER_NAMES_MAX, changes, e) < 0
        || take_string_list(input, "phones", PHONES_MAX, changes, e) < 0
        || take_string_list(input, "languages", LANGUAGES_MAX, changes, e) < 0
        || take_text(input, "address", PLACE_MAX_BYTES, changes, e) < 0
        || take_text(input, "camp", PLACE_MAX_BYTES, changes, e) < 0
        || take_text(input, "shelter", PLACE_MAX_BYTES, changes, e) < 0
        || pt_birth_from_input(input, changes, e) < 0) {
        if (e->field[0] == '\0')
            err_field(e, json_object_get(input, "age_years") ? "age_years" : "birth_date");
        return -1;
    }
    if ((v = json_object_get(input, "sex")) != NULL) {
        s = json_string_value(v);
        if (s == NULL || (strcmp(s, "female") && strcmp(s, "male") && strcmp(s, "other") && strcmp(s, "unknown"))) {
            err_set(e, ERR_INVALID, "invalid_sex", "sex must be female, male, other or unknown");
            return err_field(e, "sex");
        }
        json_object_set_new(changes, "sex", json_string(s));
    }
    if ((v = json_object_get(input, "nationality")) != NULL) {
        s = json_string_value(v);
        if (s && (strlen(s) < 2 || strlen(s) > 3 || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(s))) {
            err_set(e, ERR_INVALID, "invalid_nationality", "nationality must be an ISO 3166 country code like 'SY' or 'AFG'");
            return err_field(e, "nationality");
        }
        json_object_set_new(changes, "nationality", s ? json_string(s) : json_null());
    }
    if ((v = json_object_get(input, "preferred_language")) != NULL) {
        s = json_string_value(v);
        if (s && !language_valid(s))
        {
            err_set(e, ERR_INVALID, "invalid_language", "preferred_language must be a code like 'ar'");
            return err_field(e, "preferred_language");
        }
        json_object_set_new(changes, "preferred_language", s ? json_string(s) : json_null());
    }
    config = site_config(db, cache, site, e);
    if (config == NULL)
        return -1;
    obj = json_object_get(input, "identifiers");
    json_object_foreach(obj, key, v) {
        char field[80];

        if (!regfields_identifier_known(config, key)) {
            err_set(e, ERR_INVALID, "unknown_identifier_type",
                    "identifier type '%.32s' is not used at this site (see registration-fields)", key);
            goto bad_identifier;
        }
        if (!json_is_null(v)) {
            if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 64) {
                err_set(e, ERR_INVALID, "invalid_identifier", "identifier '%s' must be 1 to 64 characters", key);
                goto bad_identifier;
            }
            patients_normalise_identifier(json_string_value(v), norm, sizeof(norm));
            if (norm[0] == '\0') {
                err_set(e, ERR_INVALID, "invalid_identifier", "identifier '%s' has no letters or digits", key);
                goto bad_identifier;
            }
        }
        snprintf(field, sizeof(field), "identifiers.%s", key);
        json_object_set(changes, field, v);
        continue;
bad_identifier:
        snprintf(field, sizeof(field), "identifiers.%s", key);
        err_field(e, field);
        goto done;
    }
    obj = json_object_get(input, "custom");
    json_object_foreach(obj, key, v) {
        char field[80];

        snprintf(field, sizeof(field), "custom.%s", key);
        if (regfields_check_value(config, key, v, &searchable, e) < 0) {
            err_field(e, field);
            goto done;
        }
        json_object_set(changes, field, v);
    }
    if (current != NULL) {
        /* a change may not leave a record without any name, or clear a required custom field */
        static const char *const namef[] = { "given_name", "family_name", "name_original" };
        int named = 0;

        for (i = 0; i < sizeof(namef) / sizeof(namef[0]); i++) {
            const json_t *nv = json_object_get(changes, namef[i]);

            if (nv == NULL)
                nv = json_object_get(current, namef[i]);
            named |= json_is_string(nv) && json_string_length(nv) > 0;
        }
        if (!named) {
            err_set(e, ERR_INVALID, "missing_name", "a patient keeps at least a given name, a family name or the name in original script");
            err_field(e, "given_name");
            goto done;
        }
        json_array_foreach(regfields_fields(config), i, v) {
            char field[80];

            snprintf(field, sizeof(field), "custom.%s", json_string_value(json_object_get(v, "key")));
            if (json_is_true(json_object_get(v, "required")) && json_is_null(json_object_get(changes, field))) {
                err_set(e, ERR_INVALID, "missing_field", "custom field '%s' is required at this site and cannot be cleared",
                        json_string_value(json_object_get(v, "key")));
                err_field(e, field);
                goto done;
            }
        }
    }
    if (current == NULL) {
        /* a new record needs a name to be found again, and every required custom field */
        if (!json_is_string(json_object_get(changes, "given_name")) && !json_is_string(json_object_get(changes, "family_name"))
            && !json_is_string(json_object_get(changes, "name_original"))) {
            err_set(e, ERR_INVALID, "missing_name", "give at least a given name, a family name or the name in original script");
            err_field(e, "given_name");
            goto done;
        }
        json_array_foreach(regfields_fields(config), i, v) {
            const json_t *given = json_object_get(json_object_get(input, "custom"),
                                                  json_string_value(json_object_get(v, "key")));

            if (json_is_true(json_object_get(v, "required")) && (given == NULL || json_is_null(given))) {
                char field[80];

                err_set(e, ERR_INVALID, "missing_field", "custom field '%s' is required at this site",
                        json_string_value(json_object_get(v, "key")));
                snprintf(field, sizeof(field), "custom.%s", json_string_value(json_object_get(v, "key")));
                err_field(e, field);
                goto done;
            }
        }
        if (json_object_get(changes, "sex") == NULL)
            json_object_set_new(changes, "sex", json_string("unknown"));
    }
    rc = 0;
done:
    json_decref(config);
    return rc;
}

/* Drop changes that would not change anything. */
static void drop_unchanged(const json_t *current, json_t *changes)
{
    const char *field;
    json_t *v, *tmp;
    const json_t *cur;

    json_object_foreach_safe(changes, tmp, field, v) {
        cur = current_value(current, field);
        if ((cur == NULL && json_is_null(v)) || (cur && json_equal(cur, v)))
            json_object_del(changes, field);
    }
}

/* Refuse an identifier another live patient already holds under the same type. The index finds the
 * patients holding the value under any type (i:), their records tell the type; identifiers of a batch
 * not yet in the index are in the batch. */
static int identifiers_unique(struct db *db, const char *self, const json_t *changes, const struct term_batch *batch,
                              struct err *e)
{
    char norm[72], lo[TERM_LEN], hi[TERM_LEN], ident[128], other_norm[72];
    struct id_list holders = { NULL, 0, 0 };
    const char *field, *other = NULL;
    json_t *v, *p;
    size_t i;
    int rc = -1, found;

    json_object_foreach((json_t *)changes, field, v) {
        if (strncmp(field, "identifiers.", 12) != 0 || !json_is_string(v))
            continue;
        patients_normalise_identifier(json_string_value(v), norm, sizeof(norm));
        snprintf(ident, sizeof(ident), "%s:%s", field + 12, norm);
        other = term_batch_identifier(batch, ident);
        if (other && self && strcmp(other, self) == 0)
            other = NULL;
        snprintf(lo, sizeof(lo), "i:%s", norm);
        snprintf(hi, sizeof(hi), "i:%s\x01", norm);
        holders.n = 0;
        if (other == NULL && store_patient_terms_scan(db, lo, hi, 16, id_list_add, &holders, e) < 0)
            goto done;
        for (i = 0; other == NULL && i < holders.n; i++) {
            if (self && strcmp(self, holders.v[i]) == 0)
                continue;
            if ((found = store_patient_get(db, holders.v[i], &p, e)) < 0)
                goto done;
            if (found && json_is_string(json_object_get(json_object_get(p, "identifiers"), field + 12))) {
                patients_normalise_identifier(
                    json_string_value(json_object_get(json_object_get(p, "identifiers"), field + 12)), other_norm,
                    sizeof(other_norm));
                if (strcmp(other_norm, norm) == 0 && !json_is_true(json_object_get(p, "deleted")))
                    other = holders.v[i];
            }
            json_decref(p);
        }
        if (other) {
            err_set(e, ERR_CONFLICT, "identifier_taken",
                    "patient %s already has this %s identifier; open that record instead", other, field + 12);
            err_field(e, field);
            goto done;
        }
    }
    rc = 0;
done:
    free(holders.v);
    return rc;
}

/* ---- output ---- */

/* The API view of a stored record: times as RFC 3339, birth date as precise as it is known. */
json_t *pt_patient_view(const json_t *p)
{
    json_t *o = json_deep_copy(p);
    const char *bd = json_string_value(json_object_get(p, "birth_date"));
    const char *prec = json_string_value(json_object_get(p, "birth_precision"));
    char at[32];

    static const char *const names[] = { "given_name", "family_name", "middle_name", "name_original" };
    size_t i;

    if (o == NULL)
        return NULL;
    /* the columns hold '' for no name; the API says null, like every other absent field */
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (json_string_length(json_object_get(o, names[i])) == 0)
            json_object_set_new(o, names[i], json_null());
    format_time_ms(json_integer_value(json_object_get(p, "created_at")), at, sizeof(at));
    json_object_set_new(o, "created_at", json_string(at));
    format_time_ms(json_integer_value(json_object_get(p, "updated_at")), at, sizeof(at));
    json_object_set_new(o, "updated_at", json_string(at));
    if (bd && prec && strcmp(prec, "year") == 0)
        json_object_set_new(o, "birth_date", json_stringn(bd, 4));
    else if (bd && prec && strcmp(prec, "month") == 0)
        json_object_set_new(o, "birth_date", json_stringn(bd, 7));
    json_object_del(o, "deleted");
    return o;
}

/* Load a record the caller may see: ERR_NOT_FOUND when missing, deleted or at another site (the same
 * answer, so ids of other sites' patients cannot be probed). */
static json_t *load_visible(struct db *db, const struct caller *who, const char *id, struct err *e)
{
    json_t *p = NULL;
    int found;

    if (!id_valid(id)) {
        err_set(e, ERR_NOT_FOUND, "patient_not_found", "no patient with this id");
        return NULL;
    }
    found = store_patient_get(db, id, &p, e);
    if (found < 0)
        return NULL;
    if (!found || json_is_true(json_object_get(p, "deleted"))
        || !pt_site_allowed(who, json_string_value(json_object_get(p, "site_id")))) {
        json_decref(p);
        err_set(e, ERR_NOT_FOUND, "patient_not_found", "no patient with this id");
        return NULL;
    }
    return p;
}

/* ---- writes ---- */

/* One write: validate, log the changed fields, store, audit — all in one transaction. */
static json_t *patient_write(struct db *db, const struct caller *who, const char *id_in, const json_t *input,
                             struct err *e)
{
    char id[ID_LEN];
    json_t *current = NULL, *changes = json_object(), *out = NULL;
    int64_t hlc;

    if (changes == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    if (id_in)
        snprintf(id, sizeof(id), "%s", id_in);
    else
        id_new(id);
    if (db_begin_write(db, e) < 0)
        goto fail;
    if (id_in && (current = load_visible(db, who, id, e)) == NULL)
        goto fail;
    if (changes_from_input(db, who, input, current, changes, NULL, e) < 0)
        goto fail;
    drop_unchanged(current, changes);
    if (json_object_size(changes) > 0) {
        if (identifiers_unique(db, id, changes, NULL, e) < 0 || changelog_record(db, NULL, PATIENT_TABLE, id, changes, id_in ? 0 : CHANGELOG_NEW_ROW, &hlc, e) < 0
            || patients_store_fields(db, id, changes, now_ms(), e) < 0)
            goto fail;
    }
    json_decref(current);
    current = NULL;
    if (store_patient_get(db, id, &current, e) <= 0 || (out = pt_patient_view(current)) == NULL
        || audit_record(db, who, id_in ? "patient.update" : "patient.create", "patient", id,
                        json_string_value(json_object_get(current, "site_id")), "ok", e) < 0
        || db_commit(db, e) < 0)
        goto fail;
    json_decref(current);
    json_decref(changes);
    return out;
fail:
    db_rollback(db);
    json_decref(out);
    json_decref(current);
    json_decref(changes);
    if (e->kind == ERR_NONE)
        err_set(e, ERR_INTERNAL, "internal_error", "the patient could not be saved");
    return NULL;
}

json_t *patients_create(struct db *db, const struct caller *who, const json_t *input, struct err *e)
{
    return patient_write(db, who, NULL, input, e);
}

json_t *patients_update(struct db *db, const struct caller *who, const char *id, const json_t *input,
                        struct err *e)
{
    return patient_write(db, who, id, input, e);
}

int patients_delete(struct db *db, const struct caller *who, const char *id, struct err *e)
{
    json_t *current = NULL, *changes = json_pack("{s:b}", "deleted", 1);

    if (db_begin_write(db, e) < 0)
        goto fail;
    if ((current = load_visible(db, who, id, e)) == NULL)
        goto fail;
    if (changelog_record(db, NULL, PATIENT_TABLE, id, changes, 0, NULL, e) < 0
        || patients_store_fields(db, id, changes, now_ms(), e) < 0
        || audit_record(db, who, "patient.delete", "patient", id,
                        json_string_value(json_object_get(current, "site_id")), "ok", e) < 0
        || db_commit(db, e) < 0)
        goto fail;
    json_decref(current);
    json_decref(changes);
    return 0;
fail:
    db_rollback(db);
    json_decref(current);
    json_decref(changes);
    return -1;
}

json_t *patients_get(struct db *db, const struct caller *who, const char *id, struct err *e)
{
    json_t *p = load_visible(db, who, id, e), *out;

    if (p == NULL) {
        if (e->kind == ERR_NOT_FOUND)
            audit_record(db, who, "patient.read", "patient", id_valid(id) ? id : NULL, NULL, "failed", NULL);
        return NULL;
    }
    out = pt_patient_view(p);
    if (audit_record(db, who, "patient.read", "patient", id, json_string_value(json_object_get(p, "site_id")), "ok",
                     e) < 0) {
        json_decref(out);
        out = NULL;
    }
    json_decref(p);
    return out;
}

/* ---- batches ---- */

int patients_import_begin(struct patient_import *imp, struct db *db, const struct caller *who, int skip_bad,
                          struct err *e)
{
    memset(imp, 0, sizeof(*imp));
    imp->db = db;
    imp->who = who;
    imp->skip_bad = skip_bad;
    imp->errors = json_array();
    imp->configs = json_object();
    imp->batch = term_batch_new();
    if (imp->errors == NULL || imp->configs == NULL || imp->batch == NULL) {
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        goto fail;
    }
    if (db_begin_write(db, e) < 0)
        goto fail;
    if (patients_index_check(db, e) < 0) {
        db_rollback(db);
        goto fail;
    }
    return 0;
fail:
    json_decref(imp->errors);
    json_decref(imp->configs);
    term_batch_free(imp->batch);
    imp->errors = imp->configs = NULL;
    imp->batch = NULL;
    return -1;
}

/* Remember the identifiers of a row just stored, for the uniqueness check of the next rows. */
static int batch_note_identifiers(struct term_batch *batch, const char *id, const json_t *changes)
{
    char norm[72], ident[128];
    const char *field;
    json_t *v;

    json_object_foreach((json_t *)changes, field, v) {
        if (strncmp(field, "identifiers.", 12) != 0 || !json_is_string(v))
            continue;
        patients_normalise_identifier(json_string_value(v), norm, sizeof(norm));
        snprintf(ident, sizeof(ident), "%s:%s", field + 12, norm);
        if (term_batch_add_identifier(batch, ident, id) < 0)
            return -1;
    }
    return 0;
}

/* An import row validated and turned into the record, its search terms and its row text: everything of
 * registering it that needs no database, so that another thread can do it while the writer stores the
 * rows before it. */
struct patient_prepared {
    int64_t rownum;
    char id[ID_LEN];
    json_t *row;                /* set when validation needs the database: the writer does all of it */
    json_t *changes;            /* the validated fields; NULL when the row is refused */
    struct err refused;         /* why it is refused */
    json_t *record;             /* the new record */
    struct patient_row text;    /* its row, rendered */
    char name_fold[512];
    char *terms;                /* its search terms, "term\0term\0..." in order */
    size_t nterms;
};

void patients_prepared_free(struct patient_prepared *pp)
{
    if (pp == NULL)
        return;
    json_decref(pp->row);
    json_decref(pp->changes);
    json_decref(pp->record);
    store_patient_row_free(&pp->text);
    free(pp->terms);
    free(pp);
}

/* Validate and derive; db may be NULL (then a row that needs it is left to the writer: pp->row). NULL
 * when out of memory. */
static struct patient_prepared *prepare_row(struct db *db, const struct caller *who, json_t *configs,
                                            const json_t *row, int64_t rownum)
{
    char terms[TERMS_MAX][TERM_LEN], brief[BRIEF_TERM_MAX];
    const char *tptr[TERMS_MAX + 1], *field;
    struct patient_prepared *pp = calloc(1, sizeof(*pp));
    struct err ignored;
    size_t n, i, len;
    json_t *v;

    if (pp == NULL)
        return NULL;
    pp->rownum = rownum;
    err_clear(&pp->refused);
    id_new(pp->id);
    if (!json_is_object(row)) {
        err_set(&pp->refused, ERR_INVALID, "expected_object", "the row is not a record");
        return pp;
    }
    if (json_check_fields(row, patients_input_fields, &pp->refused) < 0)
        return pp;
    if ((pp->changes = json_object()) == NULL)
        goto oom;
    if (changes_from_input(db, who, row, NULL, pp->changes, configs, &pp->refused) < 0) {
        json_decref(pp->changes);
        pp->changes = NULL;
        if (strcmp(pp->refused.code, needs_database) == 0) {
            err_clear(&pp->refused);
            pp->row = json_incref((json_t *)row);
        }
        return pp;
    }
    if ((pp->record = json_pack("{s:s}", "id", pp->id)) == NULL)
        goto oom;
    json_object_foreach(pp->changes, field, v)
        record_set(pp->record, field, v);
    err_clear(&ignored);
    n = record_index(db, pp->record, configs, 0, pp->name_fold, terms, brief, tptr, &ignored);
    if (n == (size_t)-1) {
        /* only when its site's config is not loaded, which changes_from_input would have found */
        json_decref(pp->changes);
        json_decref(pp->record);
        pp->changes = pp->record = NULL;
        pp->row = json_incref((json_t *)row);
        return pp;
    }
    for (len = 0, i = 0; i < n; i++)
        len += strlen(tptr[i]) + 1;
    if ((pp->terms = malloc(len + 1)) == NULL)
        goto oom;
    for (len = 0, i = 0; i < n; i++) {
        size_t l = strlen(tptr[i]) + 1;

        memcpy(pp->terms + len, tptr[i], l);
        len += l;
    }
    pp->nterms = n;
    if (store_patient_row_of(pp->record, &pp->text) < 0)
        goto oom;
    pp->text.name_fold = pp->name_fold;
    return pp;
oom:
    patients_prepared_free(pp);
    return NULL;
}

json_t *patients_import_configs(struct db *db, const struct caller *who, struct err *e)
{
    json_t *configs = json_object(), *c;
    int i;

    if (configs == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    for (i = 0; i < who->nsites; i++) {
        if ((c = site_config(db, configs, who->sites[i], e)) == NULL) {
            json_decref(configs);
            return NULL;
        }
        json_decref(c);
    }
    return configs;
}

struct patient_prepared *patients_import_prepare(const struct caller *who, const json_t *configs, const json_t *row,
                                                 int64_t rownum)
{
    return prepare_row(NULL, who, (json_t *)configs, row, rownum);
}

/* Note a refused row in the report. */
static void import_refused(struct patient_import *imp, const struct err *re, int64_t rownum)
{
    imp->failed++;
    if (json_array_size(imp->errors) < 1000)
        json_array_append_new(imp->errors, json_pack("{s:I,s:s,s:s,s:s}", "row", (json_int_t)rownum, "field",
                                                     re->field, "code", re->code, "message", re->message));
}

int patients_import_prepared(struct patient_import *imp, const struct patient_prepared *pp, struct err *e)
{
    struct patient_prepared *full = NULL;
    const char *site, *t;
    struct err re;
    int64_t at;
    size_t i;
    int rc = -1;

    if (pp->row) {
        /* validation needs the database: all of it here */
        if ((full = prepare_row(imp->db, imp->who, imp->configs, pp->row, pp->rownum)) == NULL)
            return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        if (full->row) {       /* cannot happen with a database; refuse rather than loop */
            err_set(&full->refused, ERR_INTERNAL, "internal_error", "the row could not be validated");
            json_decref(full->row);
            full->row = NULL;
        }
        pp = full;
    }
    err_clear(&re);
    if (pp->changes == NULL) {
        import_refused(imp, &pp->refused, pp->rownum);
        rc = 0;
        goto done;
    }
    if (identifiers_unique(imp->db, pp->id, pp->changes, imp->batch, &re) < 0) {
        if (re.kind == ERR_INTERNAL) {
            *e = re;
            goto done;
        }
        import_refused(imp, &re, pp->rownum);
        rc = 0;
        goto done;
    }
    site = json_string_value(json_object_get(pp->changes, "site_id"));
    at = now_ms();
    {
        struct patient_row row = pp->text;

        row.created_at = row.updated_at = at;
        if (changelog_record(imp->db, &imp->tx, PATIENT_TABLE, pp->id, pp->changes, CHANGELOG_NEW_ROW, NULL, e) < 0
            || store_patient_put_row(imp->db, &row, e) < 0)
            goto done;      /* storage failure: the caller finishes, which rolls everything back */
    }
    for (t = pp->terms, i = 0; i < pp->nterms; i++, t += strlen(t) + 1)
        if (term_batch_add(imp->batch, t, pp->id) < 0)
            goto oom;
    if ((imp->batch->n >= TERM_BATCH_FLUSH && term_batch_flush(imp->db, imp->batch, e) < 0)
        || audit_record_in(imp->db, &imp->audit, imp->who, "patient.create", "patient", pp->id, site, "ok", e) < 0)
        goto done;
    if (batch_note_identifiers(imp->batch, pp->id, pp->changes) < 0)
        goto oom;
    imp->created++;
    rc = 0;
    goto done;
oom:
    err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
done:
    patients_prepared_free(full);
    return rc;
}

int patients_import_row(struct patient_import *imp, const json_t *row, int64_t rownum, struct err *e)
{
    struct patient_prepared *pp = prepare_row(imp->db, imp->who, imp->configs, row, rownum);

    int rc;

    if (pp == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    rc = patients_import_prepared(imp, pp, e);
    patients_prepared_free(pp);
    return rc;
}

json_t *patients_import_finish(struct patient_import *imp, int ok, struct err *e)
{
    json_t *report;

    json_decref(imp->configs);
    imp->configs = NULL;
    if (ok && !(imp->failed > 0 && !imp->skip_bad) && term_batch_flush(imp->db, imp->batch, e) < 0)
        ok = 0;
    term_batch_free(imp->batch);
    imp->batch = NULL;
    if (!ok || (imp->failed > 0 && !imp->skip_bad)) {
        db_rollback(imp->db);
        if (!ok) {
            json_decref(imp->errors);
            return NULL;
        }
        report = json_pack("{s:I,s:I,s:o}", "created", (json_int_t)0, "skipped",
                           (json_int_t)(imp->created + imp->failed), "errors", imp->errors);
        err_set(e, ERR_UNPROCESSABLE, "import_failed",
                "%lld rows are invalid; nothing was imported (fix them, or skip them with --skip-bad)",
                (long long)imp->failed);
        return report;
    }
    if (db_commit(imp->db, e) < 0) {
        json_decref(imp->errors);
        return NULL;
    }
    return json_pack("{s:I,s:I,s:o}", "created", (json_int_t)imp->created, "skipped", (json_int_t)imp->failed,
                     "errors", imp->errors);
}

json_t *patients_import(struct db *db, const struct caller *who, const json_t *rows, int64_t first_row,
                        int skip_bad, struct err *e)
{
    struct patient_import imp;
    json_t *row;
    size_t i;
    int ok = 1;

    if (patients_import_begin(&imp, db, who, skip_bad, e) < 0)
        return NULL;
    json_array_foreach(rows, i, row) {
        if (patients_import_row(&imp, row, first_row + (int64_t)i, e) < 0) {
            ok = 0;
            break;
        }
    }
    return patients_import_finish(&imp, ok, e);
}

/* ---- export ---- */

int patients_export(struct db *db, const struct caller *who, patients_export_cb cb, void *ctx, struct err *e)
{
    struct id_list ids = { NULL, 0, 0 };
    char before[ID_LEN] = "~";
    json_t *p, *v;
    size_t i;
    int rc = -1, stop = 0;

    if (db_begin_read(db, e) < 0)
        return -1;
    do {
        char sites[USER_SITES_MAX * (ID_LEN + 3) + 3];
        size_t n = 0;

        sites[n++] = '[';
        for (i = 0; i < (size_t)who->nsites; i++)
            n += (size_t)snprintf(sites + n, sizeof(sites) - n, "%s\"%s\"", n > 1 ? "," : "", who->sites[i]);
        snprintf(sites + n, sizeof(sites) - n, "]");
        ids.n = 0;
        if (store_patient_list(db, sites, before, 500, id_list_add, &ids, e) < 0)
            goto done;
        for (i = 0; i < ids.n && !stop; i++) {
            if (store_patient_get(db, ids.v[i], &p, e) < 0)
                goto done;
            v = pt_patient_view(p);
            json_decref(p);
            if (v == NULL)
                goto done;
            stop = cb(v, ctx);
            json_decref(v);
        }
        if (ids.n)
            snprintf(before, sizeof(before), "%s", ids.v[ids.n - 1]);
    } while (ids.n == 500 && !stop);
    rc = 0;
done:
    db_rollback(db);
    free(ids.v);
    if (rc == 0)
        rc = audit_record(db, who, "patient.export", "patient", NULL, NULL, "ok", e);
    return rc;
}

/* ---- replication hooks ---- */

int patients_site_of(struct db *db, const char *id, char site[ID_LEN], struct err *e)
{
    struct patient_brief b;
    int found = store_patient_brief(db, id, &b, e);

    if (found > 0)
        snprintf(site, ID_LEN, "%s", b.site_id);
    return found;
}

/* Is field one this version of the patient record knows (whatever its value)? */
static int is_known_field(const char *field)
{
    static const char *const known[] = { "site_id", "given_name", "family_name", "middle_name", "name_original",
                                         "sex", "birth_date", "birth_precision", "nationality", "preferred_language",
                                         "address", "camp", "shelter", "other_names", "languages", "phones",
                                         "deleted" };
    size_t i;

    for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(field, known[i]) == 0)
            return 1;
    return strncmp(field, "identifiers.", 12) == 0 || strncmp(field, "custom.", 7) == 0;
}

int patients_check_fields(const json_t *fields, struct err *e)
{
    static const char *const text[] = { "site_id", "given_name", "family_name", "middle_name", "name_original",
                                        "sex", "birth_date", "birth_precision", "nationality", "preferred_language",
                                        "address", "camp", "shelter" };
    static const char *const lists[] = { "other_names", "languages", "phones" };
    const char *field;
    size_t i, ok;
    json_t *v, *item;

    json_object_foreach((json_t *)fields, field, v) {
        ok = 0;
        for (i = 0; i < sizeof(text) / sizeof(text[0]) && !ok; i++)
            ok = strcmp(field, text[i]) == 0 && (json_is_null(v) || (json_is_string(v) && json_string_length(v) <= 2000));
        for (i = 0; i < sizeof(lists) / sizeof(lists[0]) && !ok; i++) {
            if (strcmp(field, lists[i]) == 0 && json_is_array(v) && json_array_size(v) <= 32) {
                ok = 1;
                json_array_foreach(v, i, item)
                    ok &= json_is_string(item) && json_string_length(item) <= 2000;
                break;
            }
        }
        if (!ok && strcmp(field, "deleted") == 0)
            ok = json_is_boolean(v);
        if (!ok && strncmp(field, "identifiers.", 12) == 0)
            ok = strlen(field) <= 12 + 32 && (json_is_null(v) || (json_is_string(v) && json_string_length(v) <= 64));
        if (!ok && strncmp(field, "custom.", 7) == 0)
            ok = strlen(field) <= 7 + 32 && !json_is_object(v) && !json_is_array(v)
                 && (!json_is_string(v) || json_string_length(v) <= 2000);
        /* a field a newer node added: kept in the log and passed on (this node stores what it knows), as long
         * as it is plainly named and small; refusing it would stop sync with every newer node */
        if (!ok && !is_known_field(field)) {
            size_t k, len = strlen(field);
            char *dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

            ok = len > 0 && len <= 64 && dump && strlen(dump) <= 4000;
            for (k = 0; ok && k < len; k++)
                ok = (field[k] >= 'a' && field[k] <= 'z') || (field[k] >= '0' && field[k] <= '9') || field[k] == '_'
                     || field[k] == '.';
            free(dump);
        }
        if (!ok)
            return err_set(e, ERR_INVALID, "invalid_change", "a patient change has an unknown or malformed field '%.60s'",
                           field);
    }
    return 0;
}
