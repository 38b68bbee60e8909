/* patients.c — the patient registry: validation, field-level writes through the change log, search
 * terms, ranked multilingual search and duplicate detection. Name folding and phonetic keys come from
 * core/names.c; this file decides what is indexed and how candidates are ranked. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/id.h"
#include "core/json.h"
#include "core/log.h"
#include "core/names.h"
#include "core/util.h"
#include "services/audit.h"
#include "services/changelog.h"
#include "services/patients.h"
#include "services/regfields.h"
#include "store/patients.h"
#include "store/sites.h"

#define NAME_MAX_BYTES 200
#define OTHER_NAMES_MAX 10
#define PHONES_MAX 5
#define LANGUAGES_MAX 10
#define PLACE_MAX_BYTES 500
#define TERMS_MAX 160
#define TERM_LEN 96
#define TOKENS_MAX 24
#define TOKEN_LEN 64
#define CANDIDATES_MAX 100      /* per index range scanned while searching: candidates of one key are
                                   phonetically equal, more of them only add ties to rank */
#define QUERY_WORDS_MAX 6       /* words of a query used to find candidates (all count for ranking) */
#define MATCH_THRESHOLD 0.6     /* duplicate candidates below this score are not shown */

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
static void phone_key(const char *normalised, char *out, size_t outlen)
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

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

    return m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0) ? 29 : mdays[m - 1];
}

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
static int parse_partial_date(const char *s, int *y, int *m, int *d, const char **precision)
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
        || *d > days_in_month(*y, *m))
        return -1;
    return 0;
}

/* The range of days a stored (date, precision) may stand for. */
static int birth_interval(const char *date, const char *precision, int64_t *lo, int64_t *hi)
{
    int y, m, d;
    const char *p;

    if (date == NULL || !*date || parse_partial_date(date, &y, &m, &d, &p) < 0)
        return -1;
    if (precision && strcmp(precision, "year") == 0) {
        *lo = days_from_civil(y, 1, 1);
        *hi = days_from_civil(y, 12, 31);
    } else if (precision && strcmp(precision, "month") == 0) {
        *lo = days_from_civil(y, m, 1);
        *hi = days_from_civil(y, m, days_in_month(y, m));
    } else if (precision && strcmp(precision, "estimated") == 0) {
        *lo = days_from_civil(y, m, d) - 2 * 366;   /* an age told at a border is often a year or two off */
        *hi = days_from_civil(y, m, d) + 2 * 366;
    } else {
        *lo = *hi = days_from_civil(y, m, d);
    }
    return 0;
}

/* 1 compatible, 0.5 close (a typo or swapped day and month), 0 incompatible, -1 unknown. */
static double birth_compatibility(const char *da, const char *pa, const char *db, const char *pb)
{
    int64_t alo, ahi, blo, bhi;

    if (birth_interval(da, pa, &alo, &ahi) < 0 || birth_interval(db, pb, &blo, &bhi) < 0)
        return -1;
    if (alo <= bhi && blo <= ahi)
        return 1;
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
static int birth_from_input(const json_t *input, json_t *changes, struct err *e)
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
        if (parse_partial_date(json_string_value(bd), &y, &m, &d, &prec) < 0)
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
            if (parse_partial_date(age_on, &ty, &tm, &td, &prec) < 0 || strcmp(prec, "day") != 0)
                return err_set(e, ERR_INVALID, "invalid_date", "age_on must be a date YYYY-MM-DD");
        }
        y = ty - (int)json_integer_value(age);
        m = tm;
        d = td > days_in_month(y, m) ? days_in_month(y, m) : td;
        prec = "estimated";
    } else {
        if (prec_in)
            return err_set(e, ERR_INVALID, "invalid_precision", "birth_precision needs a birth_date");
        return 0;
    }
    if (days_from_civil(y, m, d) > days_from_civil(ty, tm, td))
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
static int fold_tokens(const char *folded, struct names_tokens *t)
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
static void record_name_fold(const json_t *p, char *out, size_t outlen)
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

/* The best similarity between any group of a and any group of b (both name_fold-style strings). */
static double groups_similarity(const char *a, const char *b)
{
    char ga[NAMES_FOLD_MAX], gb[NAMES_FOLD_MAX];
    const char *pa, *pb, *ea, *eb;
    double best = 0, x;

    for (pa = a; pa && *pa; pa = ea ? ea + 3 : NULL) {
        ea = strstr(pa, " | ");
        snprintf(ga, sizeof(ga), "%.*s", (int)(ea ? (size_t)(ea - pa) : strlen(pa)), pa);
        for (pb = b; pb && *pb; pb = eb ? eb + 3 : NULL) {
            eb = strstr(pb, " | ");
            snprintf(gb, sizeof(gb), "%.*s", (int)(eb ? (size_t)(eb - pb) : strlen(pb)), pb);
            x = names_similarity(ga, gb);
            if (x > best)
                best = x;
        }
    }
    return best;
}

/* ---- the record ---- */

/* A site's registration config: from cache (an object site -> config, kept by batches) when given, else
 * loaded. Returns a new reference either way. */
static json_t *site_config(struct db *db, json_t *cache, const char *site, struct err *e)
{
    json_t *c = cache ? json_object_get(cache, site) : NULL;

    if (c)
        return json_incref(c);
    c = regfields_get(db, site, e);
    if (c && cache)
        json_object_set(cache, site, c);
    return c;
}

static int site_allowed(const struct caller *who, const char *site)
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

/* The search terms of a record (see the migration: n: name token, k: phonetic key, i: identifier of any
 * type or searchable custom value, t: identifier by type, p: phone). */
static size_t record_terms(const json_t *p, const json_t *config, const char *name_fold, char terms[][TERM_LEN],
                           size_t max, int all_custom)
{
    char group[NAMES_FOLD_MAX], keys[NAMES_KEYS_MAX], key[TOKEN_LEN], norm[72];
    const char *g, *end, *k, *type;
    struct names_tokens tk;
    size_t n = 0, i;
    json_t *v;
    int searchable, j;
    struct err ignored;

    for (g = name_fold; g && *g; g = end ? end + 3 : NULL) {
        end = strstr(g, " | ");
        snprintf(group, sizeof(group), "%.*s", (int)(end ? (size_t)(end - g) : strlen(g)), g);
        fold_tokens(group, &tk);
        for (j = 0; j < tk.n && n < max; j++)
            snprintf(terms[n++], TERM_LEN, "n:%s", tk.tok[j]);
        if (names_keys(group, keys, sizeof(keys)) > 0) {
            for (k = keys; *k && n < max; k += strcspn(k, " "), k += *k == ' ') {
                snprintf(key, sizeof(key), "%.*s", (int)strcspn(k, " "), k);
                snprintf(terms[n++], TERM_LEN, "k:%s", key);
            }
        }
    }
    json_object_foreach((json_t *)json_object_get(p, "identifiers"), type, v) {
        if (n + 2 > max || !json_is_string(v))
            break;
        patients_normalise_identifier(json_string_value(v), norm, sizeof(norm));
        snprintf(terms[n++], TERM_LEN, "i:%s", norm);
        snprintf(terms[n++], TERM_LEN, "t:%s:%s", type, norm);
    }
    json_array_foreach(json_object_get(p, "phones"), i, v) {
        if (n + 1 > max)
            break;
        phone_key(json_string_value(v), key, sizeof(key));
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

/* The terms of a record as the store wants them, each once; n is 0 for a deleted record (it leaves the
 * index). */
static size_t record_index(struct db *db, const json_t *p, json_t *cache, int old, char name_fold[512],
                           char terms[][TERM_LEN], const char **tptr, struct err *e)
{
    json_t *config = site_config(db, cache, json_string_value(json_object_get(p, "site_id")), e);
    size_t n, i;

    if (config == NULL)
        return (size_t)-1;
    record_name_fold(p, name_fold, 512);
    n = json_is_true(json_object_get(p, "deleted")) ? 0 : record_terms(p, config, name_fold, terms, TERMS_MAX, old);
    for (i = 0; i < n; i++)
        tptr[i] = terms[i];
    json_decref(config);
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

/* patients_store_fields() with a config cache (see site_config). */
static int store_fields(struct db *db, const char *id, const json_t *fields, int64_t at, json_t *cache, struct err *e)
{
    /* static: callers hold the database write lock, so one writer at a time uses them */
    static char terms[TERMS_MAX][TERM_LEN], old_terms[TERMS_MAX][TERM_LEN];
    const char *tptr[TERMS_MAX], *optr[TERMS_MAX];
    char name_fold[512], old_fold[512];
    json_t *p = NULL, *v;
    const char *field;
    int64_t created = at;
    size_t n, nold = 0;
    int found, rc = -1;

    found = store_patient_get(db, id, &p, e);
    if (found < 0)
        return -1;
    if (!found) {
        p = json_pack("{s:s}", "id", id);
    } else {
        created = json_integer_value(json_object_get(p, "created_at"));
        /* the index holds exactly the terms of the stored record: recompute them to remove them */
        nold = record_index(db, p, cache, 1, old_fold, old_terms, optr, e);
        if (nold == (size_t)-1)
            goto done;
    }
    json_object_foreach((json_t *)fields, field, v)
        record_set(p, field, v);
    if (!json_is_string(json_object_get(p, "site_id"))) {
        err_set(e, ERR_INVALID, "missing_site", "a patient record needs a site");
        goto done;
    }
    n = record_index(db, p, cache, 0, name_fold, terms, tptr, e);
    if (n == (size_t)-1)
        goto done;
    if (store_patient_put(db, p, name_fold, created, at, e) < 0
        || store_patient_terms_set(db, id, optr, nold, tptr, n, e) < 0)
        goto done;
    rc = 0;
done:
    json_decref(p);
    return rc;
}

int patients_store_fields(struct db *db, const char *id, const json_t *fields, int64_t at, struct err *e)
{
    return store_fields(db, id, fields, at, NULL, e);
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
        if (!site_allowed(who, site)) {
            struct site_row row;

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
        || birth_from_input(input, changes, e) < 0) {
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

struct other_holder {
    const char *self;
    char other[ID_LEN];
};

static int note_other_holder(const char *patient_id, void *ctx)
{
    struct other_holder *h = ctx;

    if (h->self && strcmp(h->self, patient_id) == 0)
        return 0;
    snprintf(h->other, sizeof(h->other), "%s", patient_id);
    return 1;
}

/* Refuse an identifier another live patient already holds under the same type. */
static int identifiers_unique(struct db *db, const char *self, const json_t *changes, struct err *e)
{
    char norm[72], lo[TERM_LEN], hi[TERM_LEN];
    struct other_holder h;
    const char *field;
    json_t *v;

    json_object_foreach((json_t *)changes, field, v) {
        if (strncmp(field, "identifiers.", 12) != 0 || !json_is_string(v))
            continue;
        patients_normalise_identifier(json_string_value(v), norm, sizeof(norm));
        snprintf(lo, sizeof(lo), "t:%s:%s", field + 12, norm);
        snprintf(hi, sizeof(hi), "t:%s:%s\x01", field + 12, norm);
        h.self = self;
        h.other[0] = '\0';
        if (store_patient_terms_scan(db, lo, hi, 2, note_other_holder, &h, e) < 0)
            return -1;
        if (h.other[0]) {
            err_set(e, ERR_CONFLICT, "identifier_taken",
                    "patient %s already has this %s identifier; open that record instead", h.other, field + 12);
            return err_field(e, field);
        }
    }
    return 0;
}

/* ---- output ---- */

/* The API view of a stored record: times as RFC 3339, birth date as precise as it is known. */
static json_t *patient_view(const json_t *p)
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
        || !site_allowed(who, json_string_value(json_object_get(p, "site_id")))) {
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
        if (identifiers_unique(db, id, changes, e) < 0 || changelog_record(db, NULL, PATIENT_TABLE, id, changes, id_in ? 0 : CHANGELOG_NEW_ROW, &hlc, e) < 0
            || patients_store_fields(db, id, changes, now_ms(), e) < 0)
            goto fail;
    }
    json_decref(current);
    current = NULL;
    if (store_patient_get(db, id, &current, e) <= 0 || (out = patient_view(current)) == NULL
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
    out = patient_view(p);
    if (audit_record(db, who, "patient.read", "patient", id, json_string_value(json_object_get(p, "site_id")), "ok",
                     e) < 0) {
        json_decref(out);
        out = NULL;
    }
    json_decref(p);
    return out;
}

/* ---- search ---- */

struct hit {
    char id[ID_LEN];
    double score;           /* < 0: a name candidate still to be checked and scored */
    unsigned reasons;
};

#define REASON_IDENTIFIER 1u
#define REASON_PHONE 2u
#define REASON_NAME 4u

struct hits {
    struct hit *v;
    size_t n, cap;
    double score;           /* the score and reason given to hits added by the current scan */
    unsigned reason;
};

static int hits_add(const char *id, void *ctx)
{
    struct hits *h = ctx;
    struct hit *p;

    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        p = realloc(h->v, h->cap * sizeof(*p));
        if (p == NULL)
            return 1;
        h->v = p;
    }
    snprintf(h->v[h->n].id, ID_LEN, "%s", id);
    h->v[h->n].score = h->score;
    h->v[h->n].reasons = h->reason;
    h->n++;
    return 0;
}

static int hit_by_id(const void *a, const void *b)
{
    return strcmp(((const struct hit *)a)->id, ((const struct hit *)b)->id);
}

static int hit_by_score(const void *a, const void *b)
{
    const struct hit *x = a, *y = b;

    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return -strcmp(x->id, y->id);   /* newer first among equals */
}

/* Sort by id and merge duplicates, keeping the best score and every reason. */
static void hits_unique(struct hits *h)
{
    size_t i, j = 0;

    if (h->n == 0)
        return;
    qsort(h->v, h->n, sizeof(*h->v), hit_by_id);
    for (i = 1; i < h->n; i++) {
        if (strcmp(h->v[i].id, h->v[j].id) == 0) {
            if (h->v[i].score > h->v[j].score)
                h->v[j].score = h->v[i].score;
            h->v[j].reasons |= h->v[i].reasons;
        } else {
            h->v[++j] = h->v[i];
        }
    }
    h->n = j + 1;
}

/* Scan one exact term or, with prefix set, every term starting with it. */
static int scan_term(struct db *db, const char *kind, const char *value, int prefix, int64_t limit, struct hits *h,
                     struct err *e)
{
    char lo[TERM_LEN], hi[TERM_LEN + 2];

    snprintf(lo, sizeof(lo), "%.8s:%.80s", kind, value);
    snprintf(hi, sizeof(hi), "%.90s%s", lo, prefix ? "\xf4" : "\x01");
    return store_patient_terms_scan(db, lo, hi, limit, hits_add, h, e);
}

/* A query word with its phonetic keys, computed once per search. */
struct query_word {
    const char *tok;
    char keys[NAMES_KEYS_MAX];
    int typing;         /* a short word may be half-typed: its keys match as prefixes */
};

static void query_word_init(struct query_word *w, const char *tok)
{
    w->tok = tok;
    w->typing = strlen(tok) <= 4;
    if (names_keys(tok, w->keys, sizeof(w->keys)) <= 0)
        w->keys[0] = '\0';
}

/* Is one of the space-separated keys of `keys` equal to (or, typing, a prefix of) one of `have`? */
static int keys_meet(const char *keys, const char *have, int typing)
{
    const char *k, *c;
    size_t kn, cn;

    for (k = keys; *k; k += kn, k += *k == ' ') {
        kn = strcspn(k, " ");
        for (c = have; *c; c += cn, c += *c == ' ') {
            cn = strcspn(c, " ");
            if (typing ? cn >= kn && strncmp(c, k, kn) == 0 : cn == kn && strncmp(c, k, kn) == 0)
                return 1;
        }
    }
    return 0;
}

/* Does a candidate (its stored name_fold) carry query word w: as the start of one of its words, or
 * through a phonetic key? Checked in memory: the candidate's keys are computed once, when first needed. */
static int candidate_has_word(const struct query_word *w, const char *fold, char *ckeys, int *ckeys_ready)
{
    size_t n = strlen(w->tok);
    const char *p = fold;

    while (*p) {
        while (*p == ' ' || *p == '|')
            p++;
        if (strncmp(p, w->tok, n) == 0)
            return 1;
        p += strcspn(p, " ");
    }
    if (!*ckeys_ready) {
        if (names_keys(fold, ckeys, NAMES_KEYS_MAX) <= 0)
            ckeys[0] = '\0';
        *ckeys_ready = 1;
    }
    return keys_meet(w->keys, ckeys, w->typing);
}

/* Add the candidates of one query word: names whose words it begins, and names sharing one of its keys
 * (newest first; as prefixes while typing); at most limit from each index range. */
static int scan_word(struct db *db, const struct query_word *w, int64_t limit, struct hits *h, struct err *e)
{
    char key[TOKEN_LEN];
    const char *k;

    if (scan_term(db, "n", w->tok, 1, limit, h, e) < 0)
        return -1;
    for (k = w->keys; *k; k += strcspn(k, " "), k += *k == ' ') {
        snprintf(key, sizeof(key), "%.*s", (int)strcspn(k, " "), k);
        if (scan_term(db, "k", key, w->typing, limit, h, e) < 0)
            return -1;
    }
    return 0;
}

/* How common a query word is: its name-index entries, counted up to a cap (short words count as common). */
static int word_frequency(struct db *db, const struct query_word *w, int64_t *n, struct err *e)
{
    char lo[TERM_LEN], hi[TERM_LEN + 2];

    if (w->typing) {
        *n = INT64_MAX;
        return 0;
    }
    snprintf(lo, sizeof(lo), "n:%.60s", w->tok);
    snprintf(hi, sizeof(hi), "%s\xf4", lo);
    return store_patient_terms_count(db, lo, hi, 2000, n, e);
}

struct born_range {
    int active;
    int64_t lo, hi;
};

static int born_range_parse(const char *from, const char *to, struct born_range *r, struct err *e)
{
    int64_t lo, hi;
    int y, m, d;
    const char *p;

    r->active = 0;
    r->lo = INT64_MIN;
    r->hi = INT64_MAX;
    if (from && *from) {
        if (parse_partial_date(from, &y, &m, &d, &p) < 0 || birth_interval(from, p, &lo, &hi) < 0)
            return err_set(e, ERR_INVALID, "invalid_date", "born_from must be YYYY, YYYY-MM or YYYY-MM-DD");
        r->lo = lo;
        r->active = 1;
    }
    if (to && *to) {
        if (parse_partial_date(to, &y, &m, &d, &p) < 0 || birth_interval(to, p, &lo, &hi) < 0)
            return err_set(e, ERR_INVALID, "invalid_date", "born_to must be YYYY, YYYY-MM or YYYY-MM-DD");
        r->hi = hi;
        r->active = 1;
    }
    return 0;
}

/* Filters of a search that a candidate must pass. */
static int brief_passes(const struct caller *who, const struct patient_query *q, const struct born_range *born,
                        const struct patient_brief *b)
{
    int64_t lo, hi;

    if (b->deleted || !site_allowed(who, b->site_id) || (q->site && strcmp(q->site, b->site_id) != 0))
        return 0;
    if (q->sex && *q->sex && strcmp(q->sex, b->sex) != 0)
        return 0;
    if (born->active) {
        if (birth_interval(b->birth_date, b->birth_precision, &lo, &hi) < 0)
            return 0;
        if (hi < born->lo || lo > born->hi)
            return 0;
    }
    return 1;
}

/* Is q a phone number rather than a name? Digits, spaces and + - ( ) only, at least 6 digits. */
static int looks_like_phone(const char *q)
{
    size_t digits = 0;

    for (; *q; q++) {
        if (*q >= '0' && *q <= '9')
            digits++;
        else if (!strchr(" +-.()/", *q))
            return 0;
    }
    return digits >= 6;
}

/* Gather and rank candidates for a non-empty query into *h (sorted best first); want is the number of
 * results the caller needs. */
static int search_rank(struct db *db, const struct caller *who, const struct patient_query *q,
                       const struct born_range *born, size_t want, struct hits *h, struct err *e)
{
    char key[TOKEN_LEN], folded[NAMES_FOLD_MAX], norm[72], phone[24], ckeys[NAMES_KEYS_MAX];
    struct query_word words[QUERY_WORDS_MAX];
    int64_t freq[QUERY_WORDS_MAX];
    struct names_tokens tk;
    struct patient_brief b;
    int ntok, t, driver = 0, pass, ok;
    size_t i, kept;

    patients_normalise_identifier(q->q, norm, sizeof(norm));
    h->score = 1.0;
    h->reason = REASON_IDENTIFIER;
    if (strlen(norm) >= 3 && scan_term(db, "i", norm, 0, 50, h, e) < 0)
        return -1;
    h->reason = REASON_PHONE;
    if (looks_like_phone(q->q) && patients_normalise_phone(q->q, phone, sizeof(phone)) == 0) {
        phone_key(phone, key, sizeof(key));
        if (scan_term(db, "p", key, 0, 50, h, e) < 0)
            return -1;
    }
    /* names have no digits: a query with digits is an identifier or a phone number */
    ntok = strpbrk(q->q, "0123456789") == NULL && names_fold(q->q, folded, sizeof(folded)) > 0
               ? fold_tokens(folded, &tk) : 0;
    if (ntok > QUERY_WORDS_MAX)
        ntok = QUERY_WORDS_MAX;
    /* the rarest word drives: its candidates are few, and the others are checked on each of them */
    for (t = 0; t < ntok; t++) {
        query_word_init(&words[t], tk.tok[t]);
        if (word_frequency(db, &words[t], &freq[t], e) < 0)
            return -1;
        if (freq[t] < freq[driver] || (freq[t] == freq[driver] && strlen(tk.tok[t]) > strlen(tk.tok[driver])))
            driver = t;
    }
    /* pass 0: candidates of the driving word that carry every other word too;
     * pass 1 (several words, and pass 0 did not fill the page): any word's candidates, ranked by
     * similarity alone, for names split or joined differently ("Ali Reza" / "Alireza") */
    for (pass = 0; pass < 2 && ntok > 0; pass++) {
        h->score = -1;
        h->reason = REASON_NAME;
        for (t = 0; t < ntok; t++) {
            if (pass == 0 && t != driver)
                continue;
            if (scan_word(db, &words[t], pass == 0 ? CANDIDATES_MAX : CANDIDATES_MAX / 2, h, e) < 0)
                return -1;
        }
        hits_unique(h);
        for (kept = 0, i = 0; i < h->n; i++) {
            struct hit *x = &h->v[i];
            int found = store_patient_brief(db, x->id, &b, e), ready = 0;

            if (found < 0)
                return -1;
            if (!found || !brief_passes(who, q, born, &b))
                continue;
            if (x->score < 0) {
                for (ok = 1, t = 0; pass == 0 && ok && t < ntok; t++)
                    if (t != driver)
                        ok = candidate_has_word(&words[t], b.name_fold, ckeys, &ready);
                x->score = 0;
                if (ok) {
                    x->score = names_search_score(folded, b.name_fold);
                    /* a name split or joined differently ("Ali Reza" / "Alireza") scores low word by word
                     * but high as a whole; only worth the cost when the word score is not decisive */
                    if (x->score < 0.95 && ntok > 1) {
                        double whole = groups_similarity(folded, b.name_fold);

                        if (whole > x->score)
                            x->score = whole;
                    }
                }
                if (x->score < NAMES_MATCH_THRESHOLD && !(x->reasons & ~REASON_NAME))
                    continue;
            }
            h->v[kept++] = *x;
        }
        h->n = kept;
        if (h->n >= want || ntok < 2)
            break;
    }
    if (ntok == 0) {
        /* identifier or phone hits only: still filter them */
        hits_unique(h);
        for (kept = 0, i = 0; i < h->n; i++) {
            int found = store_patient_brief(db, h->v[i].id, &b, e);

            if (found < 0)
                return -1;
            if (found && brief_passes(who, q, born, &b))
                h->v[kept++] = h->v[i];
        }
        h->n = kept;
    }
    if (h->n > 1)
        qsort(h->v, h->n, sizeof(*h->v), hit_by_score);
    return 0;
}

/* No query: the newest registrations of the caller's sites (or the one asked for) that pass the filters,
 * read in slices since filters apply after the scan. *h gets at most limit + 1 (the extra one says that
 * a next page exists). */
static int search_browse(struct db *db, const struct caller *who, const struct patient_query *q,
                         const struct born_range *born, int64_t limit, struct hits *h, struct err *e)
{
    char sites[USER_SITES_MAX * (ID_LEN + 3) + 3], before[ID_LEN];
    struct hits slice = { NULL, 0, 0, 0, 0 };
    struct patient_brief b;
    size_t n = 0, i;
    int found, rc = -1;

    sites[n++] = '[';
    for (i = 0; i < (size_t)who->nsites; i++)
        if (!q->site || strcmp(q->site, who->sites[i]) == 0)
            n += (size_t)snprintf(sites + n, sizeof(sites) - n, "%s\"%s\"", n > 1 ? "," : "", who->sites[i]);
    snprintf(sites + n, sizeof(sites) - n, "]");
    snprintf(before, sizeof(before), "%s", q->cursor ? q->cursor + 2 : "~");
    h->score = 1;
    do {
        slice.n = 0;
        if (store_patient_list(db, sites, before, 200, hits_add, &slice, e) < 0)
            goto done;
        for (i = 0; i < slice.n && (int64_t)h->n <= limit; i++) {
            found = store_patient_brief(db, slice.v[i].id, &b, e);
            if (found < 0)
                goto done;
            if (found && brief_passes(who, q, born, &b) && hits_add(slice.v[i].id, h) != 0)
                goto done;
        }
        if (slice.n)
            snprintf(before, sizeof(before), "%s", slice.v[slice.n - 1].id);
    } while (slice.n == 200 && (int64_t)h->n <= limit);
    rc = 0;
done:
    free(slice.v);
    return rc;
}

json_t *patients_search(struct db *db, const struct caller *who, const struct patient_query *q, struct err *e)
{
    struct hits h = { NULL, 0, 0, 0, 0 };
    struct born_range born;
    json_t *items = NULL, *out = NULL, *p, *v;
    int64_t limit = q->limit > 0 ? q->limit : 20, offset = 0;
    const char *errstr;
    char next[64];
    size_t i;
    int browse = q->q == NULL || q->q[strspn(q->q, " ")] == '\0';

    if (limit > PATIENTS_PAGE_MAX)
        limit = PATIENTS_PAGE_MAX;
    if (q->sex && *q->sex && strcmp(q->sex, "female") && strcmp(q->sex, "male") && strcmp(q->sex, "other")
        && strcmp(q->sex, "unknown"))
        return err_set(e, ERR_INVALID, "invalid_sex", "sex must be female, male, other or unknown"), NULL;
    if (q->site && !site_allowed(who, q->site))
        return err_set(e, ERR_FORBIDDEN, "site_not_allowed", "you cannot see patients of that site"), NULL;
    if (born_range_parse(q->born_from, q->born_to, &born, e) < 0)
        return NULL;
    if (q->cursor && !browse && (strncmp(q->cursor, "o:", 2) != 0
                                 || parse_int64(q->cursor + 2, 0, 100000, &offset, &errstr) < 0))
        return err_set(e, ERR_INVALID, "invalid_cursor", "the cursor is not one this search gave out"), NULL;
    if (q->cursor && browse && (strncmp(q->cursor, "b:", 2) != 0 || !id_valid(q->cursor + 2)))
        return err_set(e, ERR_INVALID, "invalid_cursor", "the cursor is not one this search gave out"), NULL;
    if (q->q && strlen(q->q) > 200)
        return err_set(e, ERR_INVALID, "query_too_long", "q is longer than 200 bytes"), NULL;
    if (db_begin_read(db, e) < 0)
        return NULL;
    items = json_array();
    if (browse) {
        if (search_browse(db, who, q, &born, limit, &h, e) < 0)
            goto fail;
        for (i = 0; i < h.n && (int64_t)i < limit; i++) {
            if (store_patient_get(db, h.v[i].id, &p, e) < 0)
                goto fail;
            if ((v = patient_view(p)) != NULL)
                json_array_append_new(items, v);
            json_decref(p);
        }
        snprintf(next, sizeof(next), "b:%s", i ? h.v[i - 1].id : "");
        out = json_pack("{s:o,s:s?}", "items", items, "next", i < h.n ? next : NULL);
    } else {
        if (search_rank(db, who, q, &born, (size_t)(offset + limit), &h, e) < 0)
            goto fail;
        for (i = (size_t)offset; i < h.n && (int64_t)(i - (size_t)offset) < limit; i++) {
            if (store_patient_get(db, h.v[i].id, &p, e) < 0)
                goto fail;
            if ((v = patient_view(p)) != NULL) {
                json_object_set_new(v, "score", json_real((double)(int)(h.v[i].score * 1000) / 1000));
                json_array_append_new(items, v);
            }
            json_decref(p);
        }
        snprintf(next, sizeof(next), "o:%zu", i);
        out = json_pack("{s:o,s:s?}", "items", items, "next", i < h.n ? next : NULL);
    }
    items = NULL;
    db_rollback(db);
    free(h.v);
    if (out == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    if (audit_record(db, who, "patient.search", "patient", NULL, q->site, "ok", e) < 0) {
        json_decref(out);
        return NULL;
    }
    return out;
fail:
    db_rollback(db);
    json_decref(items);
    free(h.v);
    return NULL;
}

/* ---- duplicates ---- */

json_t *patients_match(struct db *db, const struct caller *who, const json_t *draft, struct err *e)
{
    char key[TOKEN_LEN], all[2 * NAMES_FOLD_MAX + 8], norm[72], phone[24], lo[TERM_LEN], keys[NAMES_KEYS_MAX];
    struct hits h = { NULL, 0, 0, 0, 0 };
    struct patient_query none = { 0 };
    struct born_range any = { 0, INT64_MIN, INT64_MAX };
    struct patient_brief b;
    json_t *birth = json_object(), *items = json_array(), *out = NULL, *p, *v, *reasons;
    const char *type, *draft_sex = json_string_value(json_object_get(draft, "sex")), *bd, *bp;
    size_t i, kept;
    const char *k;
    int found;
    double name_sim, dob, score;

    if (birth == NULL || items == NULL)
        goto oom;
    if (birth_from_input(draft, birth, e) < 0) {
        err_field(e, json_object_get(draft, "age_years") ? "age_years" : "birth_date");
        goto fail;
    }
    bd = json_string_value(json_object_get(birth, "birth_date"));
    bp = json_string_value(json_object_get(birth, "birth_precision"));
    record_name_fold(draft, all, sizeof(all));
    if (db_begin_read(db, e) < 0)
        goto fail;
    h.score = 1.0;
    h.reason = REASON_IDENTIFIER;
    json_object_foreach(json_object_get(draft, "identifiers"), type, v) {
        if (!json_is_string(v) || strlen(type) > 32)
            continue;
        patients_normalise_identifier(json_string_value(v), norm, sizeof(norm));
        snprintf(lo, sizeof(lo), "%s:%s", type, norm);
        if (norm[0] && scan_term(db, "t", lo, 0, 20, &h, e) < 0)
            goto fail_tx;
    }
    h.score = 0;
    h.reason = REASON_PHONE;
    json_array_foreach(json_object_get(draft, "phones"), i, v) {
        if (!json_is_string(v) || patients_normalise_phone(json_string_value(v), phone, sizeof(phone)) < 0)
            continue;
        phone_key(phone, key, sizeof(key));
        if (scan_term(db, "p", key, 0, 20, &h, e) < 0)
            goto fail_tx;
    }
    h.reason = REASON_NAME;
    /* candidates share at least one phonetic key with one of the draft's names */
    if (names_keys(all, keys, sizeof(keys)) > 0) {
        for (k = keys; *k; k += strcspn(k, " "), k += *k == ' ') {
            snprintf(key, sizeof(key), "%.*s", (int)strcspn(k, " "), k);
            if (strlen(key) >= 2 && scan_term(db, "k", key, 0, 200, &h, e) < 0)
                goto fail_tx;
        }
    }
    hits_unique(&h);
    for (kept = 0, i = 0; i < h.n; i++) {
        struct hit *x = &h.v[i];

        found = store_patient_brief(db, x->id, &b, e);
        if (found < 0)
            goto fail_tx;
        if (!found || !brief_passes(who, &none, &any, &b))
            continue;
        name_sim = all[0] ? groups_similarity(all, b.name_fold) : 0;
        dob = birth_compatibility(bd, bp, b.birth_date, b.birth_precision);
        /* without a shared identifier or phone, a candidate needs a name similar enough to stand alone,
         * or a merely similar name backed by a compatible birth date and the same sex */
        if (!(x->reasons & (REASON_IDENTIFIER | REASON_PHONE)) && name_sim < NAMES_DUPLICATE_THRESHOLD
            && !(name_sim >= NAMES_MATCH_THRESHOLD && dob == 1 && draft_sex && strcmp(draft_sex, "unknown")
                 && strcmp(draft_sex, b.sex) == 0))
            continue;
        score = 0.6 * name_sim + 0.25 * (dob < 0 ? 0.5 : dob);
        if (draft_sex && strcmp(draft_sex, "unknown") && strcmp(b.sex, "unknown"))
            score += strcmp(draft_sex, b.sex) == 0 ? 0.15 : 0;
        else
            score += 0.075;
        /* different sex or an incompatible birth date make a different person likely */
        if (draft_sex && strcmp(draft_sex, "unknown") && strcmp(b.sex, "unknown") && strcmp(draft_sex, b.sex))
            score *= 0.6;
        if (dob == 0)
            score *= 0.6;
        if (x->reasons & REASON_PHONE)
            score = score + 0.25 > 1 ? 1 : score + 0.25;
        if (x->reasons & REASON_IDENTIFIER)
            score = 1;
        if (name_sim >= NAMES_DUPLICATE_THRESHOLD)
            x->reasons |= REASON_NAME;
        else
            x->reasons &= ~REASON_NAME;
        if (score < MATCH_THRESHOLD)
            continue;
        x->score = score;
        if (dob == 1)
            x->reasons |= 8u;
        else if (dob == 0.5)
            x->reasons |= 16u;
        if (draft_sex && strcmp(draft_sex, "unknown") && strcmp(draft_sex, b.sex) == 0)
            x->reasons |= 32u;
        h.v[kept++] = *x;
    }
    h.n = kept;
    if (h.n > 1)
        qsort(h.v, h.n, sizeof(*h.v), hit_by_score);
    for (i = 0; i < h.n && i < 10; i++) {
        static const char *const reason_names[] = { "same_identifier", "same_phone", "similar_name",
                                                    "compatible_birth_date", "close_birth_date", "same_sex" };
        size_t r;

        if (store_patient_get(db, h.v[i].id, &p, e) < 0)
            goto fail_tx;
        reasons = json_array();
        for (r = 0; r < 6; r++)
            if (h.v[i].reasons & (1u << r))
                json_array_append_new(reasons, json_string(reason_names[r]));
        json_array_append_new(items, json_pack("{s:o,s:f,s:o}", "patient", patient_view(p), "score",
                                               (double)(int)(h.v[i].score * 1000) / 1000, "reasons", reasons));
        json_decref(p);
    }
    db_rollback(db);
    out = json_pack("{s:o}", "items", items);
    items = NULL;
    if (out == NULL)
        goto oom;
    if (audit_record(db, who, "patient.match", "patient", NULL, NULL, "ok", e) < 0) {
        json_decref(out);
        out = NULL;
    }
    json_decref(birth);
    free(h.v);
    return out;
oom:
    err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    goto fail;
fail_tx:
    db_rollback(db);
fail:
    json_decref(birth);
    json_decref(items);
    free(h.v);
    return NULL;
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
    if (imp->errors == NULL || imp->configs == NULL || db_begin_write(db, e) < 0) {
        if (imp->errors == NULL || imp->configs == NULL)
            err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        json_decref(imp->errors);
        json_decref(imp->configs);
        imp->errors = imp->configs = NULL;
        return -1;
    }
    return 0;
}

int patients_import_row(struct patient_import *imp, const json_t *row, int64_t rownum, struct err *e)
{
    json_t *changes = json_object();
    char id[ID_LEN];
    struct err re;

    if (changes == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    err_clear(&re);
    id_new(id);
    if (!json_is_object(row)) {
        err_set(&re, ERR_INVALID, "expected_object", "the row is not a record");
    } else if (json_check_fields(row, patients_input_fields, &re) == 0
               && changes_from_input(imp->db, imp->who, row, NULL, changes, imp->configs, &re) == 0
               && identifiers_unique(imp->db, id, changes, &re) == 0) {
        if (changelog_record(imp->db, &imp->tx, PATIENT_TABLE, id, changes, CHANGELOG_NEW_ROW, NULL, e) < 0
            || store_fields(imp->db, id, changes, now_ms(), imp->configs, e) < 0
            || audit_record_in(imp->db, &imp->audit, imp->who, "patient.create", "patient", id,
                               json_string_value(json_object_get(changes, "site_id")), "ok", e) < 0) {
            json_decref(changes);
            return -1;      /* storage failure: the caller finishes, which rolls everything back */
        }
        imp->created++;
    }
    json_decref(changes);
    if (re.kind != ERR_NONE) {
        imp->failed++;
        if (json_array_size(imp->errors) < 1000)
            json_array_append_new(imp->errors, json_pack("{s:I,s:s,s:s,s:s}", "row", (json_int_t)rownum, "field",
                                                         re.field, "code", re.code, "message", re.message));
    }
    return 0;
}

json_t *patients_import_finish(struct patient_import *imp, int ok, struct err *e)
{
    json_t *report;

    json_decref(imp->configs);
    imp->configs = NULL;
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
    struct hits h = { NULL, 0, 0, 0, 0 };
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
        h.n = 0;
        if (store_patient_list(db, sites, before, 500, hits_add, &h, e) < 0)
            goto done;
        for (i = 0; i < h.n && !stop; i++) {
            if (store_patient_get(db, h.v[i].id, &p, e) < 0)
                goto done;
            v = patient_view(p);
            json_decref(p);
            if (v == NULL)
                goto done;
            stop = cb(v, ctx);
            json_decref(v);
        }
        if (h.n)
            snprintf(before, sizeof(before), "%s", h.v[h.n - 1].id);
    } while (h.n == 500 && !stop);
    rc = 0;
done:
    db_rollback(db);
    free(h.v);
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
