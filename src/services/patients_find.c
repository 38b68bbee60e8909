/* patients_find.c — finding patients: ranked multilingual search over the search index, and the
 * duplicate check of a draft registration (what patients.c indexes, read back here). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/date.h"
#include "core/id.h"
#include "core/json.h"
#include "core/log.h"
#include "core/names.h"
#include "core/util.h"
#include "services/audit.h"
#include "services/patients.h"
#include "services/patients_internal.h"
#include "services/regfields.h"
#include "store/patients.h"

#define CANDIDATES_MAX 100      /* per index range scanned while searching: candidates of one key are
                                   phonetically equal, more of them only add ties to rank */
#define QUERY_WORDS_MAX 6       /* words of a query used to find candidates (all count for ranking) */
#define WORD_COMMON 500         /* name-index entries beyond which a query word counts as common */
#define SEARCH_EXACT_SCAN 300   /* holders of the driving word read, newest first, for names spelled as typed */
#define MATCH_THRESHOLD 0.6     /* duplicate candidates below this score are not shown */

/* ---- search ---- */

struct hit {
    char id[ID_LEN];
    double score;
    unsigned reasons;
    size_t seq;             /* the order it was found in */
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
    size_t len;

    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        p = realloc(h->v, h->cap * sizeof(*p));
        if (p == NULL)
            return 1;
        h->v = p;
    }
    len = strnlen(id, ID_LEN - 1);
    memcpy(h->v[h->n].id, id, len);
    h->v[h->n].id[len] = '\0';
    h->v[h->n].score = h->score;
    h->v[h->n].reasons = h->reason;
    h->v[h->n].seq = h->n;
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

/* Search results: best first, equals in the order found, so that a later page, which reads on where
 * this one stopped, continues the order of this one. */
static int hit_by_score_found(const void *a, const void *b)
{
    const struct hit *x = a, *y = b;

    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
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

/* Does a candidate (its stored name_fold, and its tokens) carry query word w: as the start of one of its
 * words, or through a phonetic key of one of its tokens or of two neighbours glued (the keys names_keys
 * gives the whole name)? Checked in memory; the keys of single tokens come from a per-thread cache. */
static int candidate_has_word(const struct query_word *w, const char *fold, const struct names_tokens *tc)
{
    char keys[NAMES_KEYS_MAX], glued[2 * NAMES_TOKEN_MAX], key[NAMES_KEY_MAX];
    size_t n = strlen(w->tok);
    const char *p = fold;
    int j;

    while (*p) {
        while (*p == ' ' || *p == '|')
            p++;
        if (strncmp(p, w->tok, n) == 0)
            return 1;
        p += strcspn(p, " ");
    }
    if (!w->keys[0])
        return 0;
    for (j = 0; j < tc->n; j++)
        if (names_token_keys(tc->tok[j], keys, sizeof(keys)) > 0 && keys_meet(w->keys, keys, w->typing))
            return 1;
    for (j = 0; j + 1 < tc->n; j++) {
        snprintf(glued, sizeof(glued), "%s%s", tc->tok[j], tc->tok[j + 1]);
        glued[NAMES_TOKEN_MAX - 1] = '\0';
        if (names_phonetic_key(glued, key, sizeof(key)) > 0 && keys_meet(w->keys, key, w->typing))
            return 1;
    }
    return 0;
}

/* The index ranges holding the candidates of one query word, in the order they are read: names whose
 * words it begins, then names sharing one of its keys (as prefixes while typing). Key terms are
 * "k:key:birth": a whole key is the prefix "key:". Returns how many ranges were written. */
static int word_ranges(const struct query_word *w, char lo[][TERM_LEN], char hi[][TERM_LEN + 2], int max)
{
    const char *k;
    int n = 0, i;

    size_t l;

    snprintf(lo[n++], TERM_LEN, "n:%.80s", w->tok);
    for (k = w->keys; *k && n < max; k += strcspn(k, " "), k += *k == ' ')
        snprintf(lo[n++], TERM_LEN, "k:%.*s%s", (int)strcspn(k, " "), k, w->typing ? "" : ":");
    for (i = 0; i < n; i++) {
        l = strlen(lo[i]);
        memcpy(hi[i], lo[i], l);
        hi[i][l] = '\xf4';
        hi[i][l + 1] = '\0';
    }
    return n;
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
    return store_patient_terms_count(db, lo, hi, WORD_COMMON, n, e);
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
        if (pt_parse_partial_date(from, &y, &m, &d, &p) < 0 || pt_birth_interval(from, p, &lo, &hi) < 0)
            return err_set(e, ERR_INVALID, "invalid_date", "born_from must be YYYY, YYYY-MM or YYYY-MM-DD");
        r->lo = lo;
        r->active = 1;
    }
    if (to && *to) {
        if (pt_parse_partial_date(to, &y, &m, &d, &p) < 0 || pt_birth_interval(to, p, &lo, &hi) < 0)
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

    if (b->deleted || !pt_site_allowed(who, b->site_id) || (q->site && strcmp(q->site, b->site_id) != 0))
        return 0;
    if (q->sex && *q->sex && strcmp(q->sex, b->sex) != 0)
        return 0;
    if (born->active) {
        if (pt_birth_interval(b->birth_date, b->birth_precision, &lo, &hi) < 0)
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

/* The ids a search has looked at (open addressing). */
struct seen_ids {
    char (*v)[ID_LEN];
    size_t n, cap;
};

/* 1 when id is new (and now noted), 0 when seen before, -1 out of memory. */
static int seen_add(struct seen_ids *s, const char *id)
{
    size_t i, cap, len;

    if (2 * (s->n + 1) > s->cap) {
        struct seen_ids bigger = { NULL, 0, s->cap ? 2 * s->cap : 1024 };

        if ((bigger.v = calloc(bigger.cap, sizeof(*bigger.v))) == NULL)
            return -1;
        for (i = 0; i < s->cap; i++)
            if (s->v[i][0])
                seen_add(&bigger, s->v[i]);
        free(s->v);
        *s = bigger;
    }
    cap = s->cap;
    for (i = pt_id_hash(id) & (cap - 1); s->v[i][0]; i = (i + 1) & (cap - 1))
        if (strcmp(s->v[i], id) == 0)
            return 0;
    len = strnlen(id, ID_LEN - 1);
    memcpy(s->v[i], id, len);
    s->v[i][len] = '\0';
    s->n++;
    return 1;
}

static int seen_has(const struct seen_ids *s, const char *id)
{
    size_t i;

    if (s->cap == 0)
        return 0;
    for (i = pt_id_hash(id) & (s->cap - 1); s->v[i][0]; i = (i + 1) & (s->cap - 1))
        if (strcmp(s->v[i], id) == 0)
            return 1;
    return 0;
}

static void seen_clear(struct seen_ids *s)
{
    if (s->v)
        memset(s->v, 0, s->cap * sizeof(*s->v));
    s->n = 0;
}

/* A search under way. */
struct search {
    struct db *db;
    const struct caller *who;
    const struct patient_query *q;
    const struct born_range *born;
    struct query_word words[QUERY_WORDS_MAX];
    int ntok, driver;
    char folded[NAMES_FOLD_MAX];
    struct names_tokens tq;     /* the query's words */
    struct name_groups qg;      /* the same, as one name */
    struct hits *h;             /* results so far */
    double ceiling;             /* the best score a candidate can have: 1, less for a half-typed word */
    size_t perfect;             /* results at the ceiling: no later candidate can beat them */
    struct seen_ids seen;
};

/* Look at one name candidate; a match goes to s->h. 0, or -1 on storage failure. */
static int search_consider(struct search *s, const char *id, int pass, struct err *e)
{
    struct patient_brief b;
    struct names_tokens tc;
    int found = pt_brief_of(s->db, id, &b, e), ok, t;
    double score = 0, whole;

    if (found <= 0 || !brief_passes(s->who, s->q, s->born, &b))
        return found < 0 ? -1 : 0;
    pt_fold_tokens(b.name_fold, &tc);
    /* pass 0: the candidate carries every word of the query */
    for (ok = 1, t = 0; pass == 0 && ok && t < s->ntok; t++)
        if (t != s->driver)
            ok = candidate_has_word(&s->words[t], b.name_fold, &tc);
    if (ok) {
        score = names_search_score_tokens(&s->tq, &tc);
        /* a name split or joined differently ("Ali Reza" / "Alireza") scores low word by word but high as
         * a whole; only worth the cost when the word score is not decisive */
        if (score < 0.95 && s->ntok > 1) {
            struct name_groups cg;

            pt_name_groups_of(b.name_fold, &cg);
            if ((whole = pt_groups_similarity(&s->qg, &cg, 0)) > score)
                score = whole;
        }
    }
    if (score < NAMES_MATCH_THRESHOLD)
        return 0;
    s->h->score = score;
    s->h->reason = REASON_NAME;
    if (hits_add(id, s->h) != 0)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    s->perfect += score >= s->ceiling;
    return 0;
}

/* Gather and rank candidates for a non-empty query into *h (sorted best first); want is the number of
 * results the caller needs. Candidates are read range by range and looked at as they come; once more
 * than want of them score the best any can (every word as typed), no later one can rank above them, and
 * the search stops (the one more tells that a next page exists). */
static int search_rank(struct db *db, const struct caller *who, const struct patient_query *q,
                       const struct born_range *born, size_t want, struct hits *h, struct err *e)
{
    char key[TOKEN_LEN], norm[72], phone[24], lo[1 + NAMES_KEYS_MAX / 2][TERM_LEN];
    char hi[1 + NAMES_KEYS_MAX / 2][TERM_LEN + 2];
    struct search *s = calloc(1, sizeof(*s));
    struct hits found = { NULL, 0, 0, 0, 0 };
    struct patient_brief b;
    int64_t freq[QUERY_WORDS_MAX];
    int t, pass, r, nr, rc = -1, fresh;
    size_t i;

    if (s == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    s->db = db;
    s->who = who;
    s->q = q;
    s->born = born;
    s->h = h;
    /* identifiers and phone numbers: exact, score 1 */
    patients_normalise_identifier(q->q, norm, sizeof(norm));
    found.score = 1.0;
    found.reason = REASON_IDENTIFIER;
    if (strlen(norm) >= 3 && scan_term(db, "i", norm, 0, 50, &found, e) < 0)
        goto out;
    found.reason = REASON_PHONE;
    if (looks_like_phone(q->q) && patients_normalise_phone(q->q, phone, sizeof(phone)) == 0) {
        pt_phone_key(phone, key, sizeof(key));
        if (scan_term(db, "p", key, 0, 50, &found, e) < 0)
            goto out;
    }
    for (i = 0; i < found.n; i++) {
        if ((fresh = seen_add(&s->seen, found.v[i].id)) < 0)
            goto oom;
        if (!fresh)
            continue;
        if ((r = pt_brief_of(db, found.v[i].id, &b, e)) < 0)
            goto out;
        h->score = 1.0;
        h->reason = found.v[i].reasons;
        if (r && brief_passes(who, q, born, &b)) {
            if (hits_add(found.v[i].id, h) != 0)
                goto oom;
            s->perfect++;
        }
    }
    /* names have no digits: a query with digits is an identifier or a phone number */
    s->ntok = strpbrk(q->q, "0123456789") == NULL && names_fold(q->q, s->folded, sizeof(s->folded)) > 0
                  ? pt_fold_tokens(s->folded, &s->tq) : 0;
    s->qg.n = s->ntok > 0;
    s->qg.g[0] = s->tq;
    if (s->ntok > QUERY_WORDS_MAX)
        s->ntok = QUERY_WORDS_MAX;
    /* the rarest word drives: its candidates are few, and the others are checked on each of them */
    for (t = 0; t < s->ntok; t++) {
        query_word_init(&s->words[t], s->tq.tok[t]);
        if (word_frequency(db, &s->words[t], &freq[t], e) < 0)
            goto out;
        if (freq[t] < freq[s->driver]
            || (freq[t] == freq[s->driver] && strlen(s->tq.tok[t]) > strlen(s->tq.tok[s->driver])))
            s->driver = t;
    }
    /* a word being typed matches at best as the start of a name ("moh" of "Mohammed"): the query scored
     * against itself with those words one letter longer is the best any candidate can score */
    s->ceiling = 1.0;
    if (s->ntok > 0) {
        struct names_tokens longer = s->tq;

        for (t = 0; t < s->ntok; t++)
            if (s->words[t].typing && strlen(longer.tok[t]) + 1 < NAMES_TOKEN_MAX)
                strcat(longer.tok[t], "x");
        s->ceiling = names_search_score_tokens(&s->tq, &longer) - 1e-9;
    }
    /* first the names with every word of the query as typed, newest first: read from the driving word's
     * term, the other words looked up in the index, so that no record is read for a name without them.
     * A common name fills the page here */
    if (s->ntok > 0) {
        char term[TERM_LEN], hiterm[TERM_LEN + 1];
        int64_t exact, fewest = INT64_MAX;
        int has, rarest = 0;
        size_t l;

        /* driven by the word with the fewest holders; a word nobody has (misspelt, half-typed) ends it */
        for (t = 0; t < s->ntok && fewest > 0; t++) {
            snprintf(term, sizeof(term), "n:%.80s", s->words[t].tok);
            l = strlen(term);
            memcpy(hiterm, term, l);
            hiterm[l] = '\x01';
            hiterm[l + 1] = '\0';
            if (store_patient_terms_count(db, term, hiterm, SEARCH_EXACT_SCAN, &exact, e) < 0)
                goto out;
            if (exact < fewest) {
                fewest = exact;
                rarest = t;
            }
        }
        found.n = 0;
        snprintf(term, sizeof(term), "n:%.80s", s->words[rarest].tok);
        l = strlen(term);
        memcpy(hiterm, term, l);
        hiterm[l] = '\x01';
        hiterm[l + 1] = '\0';
        if (fewest > 0 && store_patient_terms_scan(db, term, hiterm, SEARCH_EXACT_SCAN, hits_add, &found, e) < 0)
            goto out;
        for (i = 0; i < found.n; i++) {
            for (has = 1, t = 0; has && t < s->ntok; t++) {
                if (t == rarest)
                    continue;
                snprintf(term, sizeof(term), "n:%.80s", s->words[t].tok);
                if ((has = store_patient_term_has(db, term, found.v[i].id, e)) < 0)
                    goto out;
            }
            if (!has)
                continue;
            if ((fresh = seen_add(&s->seen, found.v[i].id)) < 0)
                goto oom;
            if (fresh && search_consider(s, found.v[i].id, 0, e) < 0)
                goto out;
            if (s->perfect > want)
                goto ranked;
        }
    }
    /* pass 0: candidates of the driving word that carry every other word too;
     * pass 1 (several words, and pass 0 did not fill the page): any word's candidates, ranked by
     * similarity alone, for names split or joined differently ("Ali Reza" / "Alireza") */
    for (pass = 0; pass < 2 && s->ntok > 0; pass++) {
        if (pass == 1) {
            seen_clear(&s->seen);
            for (i = 0; i < h->n; i++)
                if (seen_add(&s->seen, h->v[i].id) < 0)
                    goto oom;
        }
        for (t = 0; t < s->ntok; t++) {
            if (pass == 0 && t != s->driver)
                continue;
            nr = word_ranges(&s->words[t], lo, hi, (int)(sizeof(lo) / sizeof(lo[0])));
            for (r = 0; r < nr; r++) {
                found.n = 0;
                if (store_patient_terms_scan(db, lo[r], hi[r], pass == 0 ? CANDIDATES_MAX : CANDIDATES_MAX / 2,
                                             hits_add, &found, e) < 0)
                    goto out;
                for (i = 0; i < found.n; i++) {
                    if ((fresh = seen_add(&s->seen, found.v[i].id)) < 0)
                        goto oom;
                    if (fresh && search_consider(s, found.v[i].id, pass, e) < 0)
                        goto out;
                }
                if (pass == 0 && s->perfect > want)
                    goto ranked;
            }
        }
        if (h->n >= want || s->ntok < 2)
            break;
    }
ranked:
    if (h->n > 1)
        qsort(h->v, h->n, sizeof(*h->v), hit_by_score_found);
    rc = 0;
    goto out;
oom:
    err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
out:
    free(found.v);
    free(s->seen.v);
    free(s);
    return rc;
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
    if (q->site && !pt_site_allowed(who, q->site))
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
    if (patients_index_check(db, e) < 0 || db_begin_read(db, e) < 0)
        return NULL;
    items = json_array();
    if (browse) {
        if (search_browse(db, who, q, &born, limit, &h, e) < 0)
            goto fail;
        for (i = 0; i < h.n && (int64_t)i < limit; i++) {
            if (store_patient_get(db, h.v[i].id, &p, e) < 0)
                goto fail;
            if ((v = pt_patient_view(p)) != NULL)
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
            if ((v = pt_patient_view(p)) != NULL) {
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

/* A duplicate check reads, for every word of the draft's names, the patients holding one of the word's
 * keys among the birth years the draft's date is compatible with (key terms carry the birth year), and
 * compares the records of those that share two words with the draft (one, for a one-word draft, or a
 * word so rare that its holders are few). When that finds no near-exact name, a word may be misspelt:
 * the keys one edit away from its keys are read too. See "Duplicates" in docs/registry.md. */

#define MATCH_SCAN_MAX 25000    /* index entries read from one range */
#define MATCH_UNDATED_MAX 50    /* holders without a birth date read per key (newest first) */
#define MATCH_ANY_MAX 200       /* holders read per key when the draft has no birth date */
#define MATCH_VERIFY_MAX 400    /* candidates whose records are read and compared */
#define MATCH_NEAR_ROWS 40000   /* index entries read for keys one edit away */
#define MATCH_SMALL_LIST 100    /* a word held by at most this many patients of the years counts alone */
#define MATCH_WORDS_MAX 16      /* words of a draft (one bit each) */
#define MATCH_KEYS_MAX 96       /* distinct keys of a draft */
#define MATCH_EXACT_NAME 0.95   /* a candidate this similar ends the search for misspellings */

/* Civil year of a day number. */
static int year_of_day(int64_t z)
{
    int y, m, d;

    date_civil_from_days(z, &y, &m, &d);
    return y;
}

/* The birth years of stored records whose date is compatible with a draft's (see birth_interval). */
struct birth_window {
    int known;
    int lo, hi;         /* a date that is not estimated */
    int elo, ehi;       /* an estimated date (its range is two years wider on each side) */
};

static void birth_window_of(const char *date, const char *precision, struct birth_window *w)
{
    int64_t lo, hi;

    w->known = pt_birth_interval(date, precision, &lo, &hi) == 0;
    if (!w->known)
        return;
    w->lo = year_of_day(lo);
    w->hi = year_of_day(hi);
    w->elo = year_of_day(lo - 2 * 366);
    w->ehi = year_of_day(hi + 2 * 366);
}

/* The holders of key with a birth date the window allows, added to h with h->reason as their word bits;
 * *rows gets how many were read. wide: also the estimated dates of the years around the window, and
 * holders without a date. */
static int match_scan_key(struct db *db, const struct birth_window *w, const char *key, int wide, struct hits *h,
                          int64_t *rows, struct err *e)
{
    char lo[TERM_LEN], hi[TERM_LEN + 2];
    size_t before = h->n;
    int y;

    if (!w->known) {
        snprintf(lo, sizeof(lo), "k:%.40s:", key);
        snprintf(hi, sizeof(hi), "%s\xf4", lo);
        if (store_patient_terms_scan(db, lo, hi, MATCH_ANY_MAX, hits_add, h, e) < 0)
            return -1;
        *rows = (int64_t)(h->n - before);
        return 0;
    }
    snprintf(lo, sizeof(lo), "k:%.40s:%04d", key, w->lo);
    snprintf(hi, sizeof(hi), "k:%.40s:%04d~\x01", key, w->hi);
    if (store_patient_terms_scan(db, lo, hi, MATCH_SCAN_MAX, hits_add, h, e) < 0)
        return -1;
    for (y = w->elo; wide && y <= w->ehi; y++) {
        if (y >= w->lo && y <= w->hi)
            continue;
        snprintf(lo, sizeof(lo), "k:%.40s:%04d~", key, y);
        snprintf(hi, sizeof(hi), "%s\x01", lo);
        if (store_patient_terms_scan(db, lo, hi, MATCH_SCAN_MAX, hits_add, h, e) < 0)
            return -1;
    }
    if (wide) {
        snprintf(lo, sizeof(lo), "k:%.40s:", key);
        snprintf(hi, sizeof(hi), "%s\x01", lo);
        if (store_patient_terms_scan(db, lo, hi, MATCH_UNDATED_MAX, hits_add, h, e) < 0)
            return -1;
    }
    *rows = (int64_t)(h->n - before);
    return 0;
}

/* The keys of a draft's words: each with the bits of the words it stands for (words with the same main
 * key are one word: "Mohammed" and "محمد" in two scripts). */
struct match_keys {
    struct {
        char key[NAMES_KEY_MAX];
        unsigned bits;
        int own;                /* a key of one word (not of two words glued) */
    } v[MATCH_KEYS_MAX];
    int n;
    int words;                  /* bits used */
};

static void match_keys_add(struct match_keys *mk, const char *key, size_t len, unsigned bits, int own)
{
    int i;

    if (len == 0 || len >= NAMES_KEY_MAX)
        return;
    for (i = 0; i < mk->n; i++)
        if (strlen(mk->v[i].key) == len && strncmp(mk->v[i].key, key, len) == 0) {
            mk->v[i].bits |= bits;
            mk->v[i].own |= own;
            return;
        }
    if (mk->n == MATCH_KEYS_MAX)
        return;
    memcpy(mk->v[mk->n].key, key, len);
    mk->v[mk->n].key[len] = '\0';
    mk->v[mk->n].bits = bits;
    mk->v[mk->n].own = own;
    mk->n++;
}

static void match_keys_of(const char *all, struct match_keys *mk)
{
    char group[NAMES_FOLD_MAX], keys[NAMES_KEYS_MAX], main_keys[MATCH_WORDS_MAX][NAMES_KEY_MAX];
    char glued[NAMES_TOKEN_MAX * 2], gkey[NAMES_KEY_MAX];
    unsigned tbits[NAMES_TOKENS_MAX];
    const char *g, *end, *k;
    struct names_tokens tk;
    size_t kl;
    int j, w;

    mk->n = mk->words = 0;
    for (g = all; g && *g; g = end ? end + 3 : NULL) {
        end = strstr(g, " | ");
        snprintf(group, sizeof(group), "%.*s", (int)(end ? (size_t)(end - g) : strlen(g)), g);
        pt_fold_tokens(group, &tk);
        for (j = 0; j < tk.n; j++) {
            tbits[j] = 0;
            if (names_token_keys(tk.tok[j], keys, sizeof(keys)) <= 0)
                continue;
            kl = strcspn(keys, " ");
            for (w = 0; w < mk->words; w++)
                if (strlen(main_keys[w]) == kl && strncmp(main_keys[w], keys, kl) == 0)
                    break;
            if (w == mk->words) {
                if (w == MATCH_WORDS_MAX)
                    continue;
                snprintf(main_keys[w], sizeof(main_keys[w]), "%.*s", (int)kl, keys);
                mk->words++;
            }
            tbits[j] = 1u << w;
            for (k = keys; *k; k += kl, k += *k == ' ') {
                kl = strcspn(k, " ");
                match_keys_add(mk, k, kl, tbits[j], 1);
            }
        }
        /* two neighbours glued ("Mohammad Reza" = "Mohammadreza") stand for both */
        for (j = 0; j + 1 < tk.n; j++) {
            if (!tbits[j] || !tbits[j + 1])
                continue;
            snprintf(glued, sizeof(glued), "%s%s", tk.tok[j], tk.tok[j + 1]);
            glued[NAMES_TOKEN_MAX - 1] = '\0';
            if (names_phonetic_key(glued, gkey, sizeof(gkey)) > 0)
                match_keys_add(mk, gkey, strlen(gkey), tbits[j] | tbits[j + 1], 0);
        }
    }
}

/* Append t to out as a neighbour of key unless it has a class twice in a row (keys never do). */
static void neighbour_add(const char *t, const char *key, char out[][NAMES_KEY_MAX], size_t max, size_t *n)
{
    size_t i;

    if (t[0] == '\0' || *n >= max || strcmp(t, key) == 0)
        return;
    for (i = 1; t[i]; i++)
        if (t[i] == t[i - 1])
            return;
    snprintf(out[(*n)++], NAMES_KEY_MAX, "%s", t);
}

static int key_compare(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Keys one edit away from key: a consonant class added, left out or replaced, or two neighbours swapped
 * (a letter dropped, doubled into another or swapped while typing). Returns how many, each once. */
static size_t key_neighbours(const char *key, char out[][NAMES_KEY_MAX], size_t max)
{
    static const char classes[] = "bcdfghjklmnrstvz";
    size_t len = strlen(key), n = 0, i, c, j;
    char t[NAMES_KEY_MAX];

    if (len == 0 || len + 2 > NAMES_KEY_MAX)
        return 0;
    for (i = 0; i <= len; i++) {
        for (c = 0; classes[c]; c++) {
            memcpy(t, key, i);
            t[i] = classes[c];
            memcpy(t + i + 1, key + i, len - i + 1);
            neighbour_add(t, key, out, max, &n);
        }
        if (i == len)
            break;
        /* a key of one or two classes left out or replaced is a key of half the names: only added to */
        if (len > 2) {
            memcpy(t, key, i);
            memcpy(t + i, key + i + 1, len - i);
            neighbour_add(t, key, out, max, &n);
        }
        for (c = 0; len > 2 && classes[c]; c++) {
            memcpy(t, key, len + 1);
            t[i] = classes[c];
            neighbour_add(t, key, out, max, &n);
        }
        if (i + 1 < len) {
            memcpy(t, key, len + 1);
            t[i] = key[i + 1];
            t[i + 1] = key[i];
            neighbour_add(t, key, out, max, &n);
        }
    }
    if (n > 1) {
        qsort(out, n, sizeof(*out), key_compare);
        for (i = 1, j = 0; i < n; i++)
            if (strcmp(out[i], out[j]) != 0)
                memmove(out[++j], out[i], NAMES_KEY_MAX);
        n = j + 1;
    }
    return n;
}

static int popcount(unsigned x)
{
    int n = 0;

    for (; x; x &= x - 1)
        n++;
    return n;
}

/* The words of the draft a name candidate has: by one of their keys (the low 16 bits of reasons) or by a
 * key one edit away (the high 16 bits, set while looking for misspelt words). */
#define NEAR_SHIFT 16
static int words_held(unsigned reasons)
{
    return popcount((reasons | (reasons >> NEAR_SHIFT)) & ((1u << NEAR_SHIFT) - 1));
}

/* Name candidates first by the number of the draft's words they have, then of its keys (two words
 * glued count: "Hosen Hussain" written as in the draft; a key one edit away half), then newest first. */
static int hit_by_words(const void *a, const void *b)
{
    const struct hit *x = a, *y = b;
    int px = words_held(x->reasons), py = words_held(y->reasons);

    if (px != py)
        return py - px;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return -strcmp(x->id, y->id);
}

/* Merge the duplicates among name candidates (in place, first come first kept): every word bit, and the
 * number of keys found. A hash of the ids: the lists of common names run to tens of thousands. */
static int hits_merge_keys(struct hits *h)
{
    size_t cap = 64, i, j = 0, p;
    uint32_t *slot;

    while (cap < 2 * h->n)
        cap *= 2;
    if ((slot = calloc(cap, sizeof(*slot))) == NULL)
        return -1;
    for (i = 0; i < h->n; i++) {
        for (p = pt_id_hash(h->v[i].id) & (cap - 1); slot[p]; p = (p + 1) & (cap - 1))
            if (strcmp(h->v[slot[p] - 1].id, h->v[i].id) == 0)
                break;
        if (slot[p]) {
            h->v[slot[p] - 1].score += h->v[i].score;
            h->v[slot[p] - 1].reasons |= h->v[i].reasons;
        } else {
            h->v[j] = h->v[i];
            slot[p] = (uint32_t)++j;
        }
    }
    h->n = j;
    free(slot);
    return 0;
}

/* What a duplicate check compares a candidate with. */
struct match_draft {
    const struct caller *who;
    const char *all;            /* the draft's names, name_fold style */
    struct name_groups groups;  /* the same, split */
    const char *bd, *bp, *sex;
};

/* Compare one candidate with the draft: 1 and x->score, x->reasons set when it is shown, 0 when not;
 * *name_sim gets the name similarity. */
static int match_check(struct db *db, const struct match_draft *d, struct hit *x, double *name_sim, struct err *e)
{
    static const struct patient_query none = { 0 };
    static const struct born_range any = { 0, INT64_MIN, INT64_MAX };
    struct patient_brief b;
    struct name_groups cg;
    int found = pt_brief_of(db, x->id, &b, e), known_sex;
    double dob, score, sim;

    *name_sim = 0;
    if (found <= 0 || !brief_passes(d->who, &none, &any, &b))
        return found < 0 ? -1 : 0;
    pt_name_groups_of(b.name_fold, &cg);
    sim = *name_sim = pt_groups_similarity(&d->groups, &cg, 1);
    dob = pt_birth_compatibility(d->bd, d->bp, b.birth_date, b.birth_precision);
    known_sex = d->sex && strcmp(d->sex, "unknown") != 0;
    /* without a shared identifier or phone, a candidate needs a name similar enough to stand alone, or a
     * merely similar name backed by a compatible birth date and the same sex */
    if (!(x->reasons & (REASON_IDENTIFIER | REASON_PHONE)) && sim < NAMES_DUPLICATE_THRESHOLD
        && !(sim >= NAMES_MATCH_THRESHOLD && dob >= 0.9 && known_sex && strcmp(d->sex, b.sex) == 0))
        return 0;
    score = 0.6 * sim + 0.25 * (dob < 0 ? 0.5 : dob);
    if (known_sex && strcmp(b.sex, "unknown"))
        score += strcmp(d->sex, b.sex) == 0 ? 0.15 : 0;
    else
        score += 0.075;
    /* different sex or an incompatible birth date make a different person likely */
    if (known_sex && strcmp(b.sex, "unknown") && strcmp(d->sex, b.sex))
        score *= 0.6;
    if (dob == 0)
        score *= 0.6;
    if (x->reasons & REASON_PHONE)
        score = score + 0.25 > 1 ? 1 : score + 0.25;
    if (x->reasons & REASON_IDENTIFIER)
        score = 1;
    x->reasons &= REASON_IDENTIFIER | REASON_PHONE;
    if (sim >= NAMES_DUPLICATE_THRESHOLD)
        x->reasons |= REASON_NAME;
    if (score < MATCH_THRESHOLD)
        return 0;
    x->score = score;
    if (dob >= 0.9)
        x->reasons |= 8u;
    else if (dob == 0.5)
        x->reasons |= 16u;
    if (known_sex && strcmp(d->sex, b.sex) == 0)
        x->reasons |= 32u;
    return 1;
}

/* Which name candidates a round of comparisons takes. */
enum match_pick {
    PICK_WORDS,     /* those with enough of the draft's words, one at least by its own keys */
    PICK_RARE,      /* those with a word so rare that its holders are few */
};

/* Compare the name candidates (merged) that the round takes and that no round took before (done), best
 * first, within the budget *left; the shown ones go to out. *best gets the highest name similarity. */
static int match_verify(struct db *db, const struct match_draft *d, const struct hits *names, enum match_pick pick_how,
                        int need, unsigned small_bits, struct seen_ids *done, size_t *left, struct hits *out,
                        double *best, struct err *e)
{
    struct hits pick = { NULL, 0, 0, 0, 0 };
    unsigned exact;
    double sim;
    size_t i;
    int rc = -1, shown;

    for (i = 0; i < names->n; i++) {
        const struct hit *x = &names->v[i];

        exact = x->reasons & ((1u << NEAR_SHIFT) - 1);
        if (pick_how == PICK_WORDS ? !(exact && words_held(x->reasons) >= need) : !(exact & small_bits))
            continue;
        pick.score = x->score;
        pick.reason = x->reasons;
        if (!seen_has(done, x->id) && hits_add(x->id, &pick) != 0)
            goto oom;
    }
    if (pick.n > 1)
        qsort(pick.v, pick.n, sizeof(*pick.v), hit_by_words);
    for (i = 0; i < pick.n && *left > 0; i++, (*left)--) {
        struct hit x = pick.v[i];

        x.reasons = 0;
        if (seen_add(done, x.id) < 0)
            goto oom;
        if ((shown = match_check(db, d, &x, &sim, e)) < 0)
            goto out;
        if (sim > *best)
            *best = sim;
        out->score = x.score;
        out->reason = x.reasons;
        if (shown && hits_add(x.id, out) != 0)
            goto oom;
    }
    rc = 0;
    goto out;
oom:
    err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
out:
    free(pick.v);
    return rc;
}

/* The name candidates of a draft, compared: into out. Rounds, each only while no near-exact name is
 * found: the candidates with enough of the draft's words; those with one rare word; those with a word
 * by a key one edit away (a misspelt word). */
static int match_names(struct db *db, const struct match_draft *d, struct hits *out, struct err *e)
{
    char (*near)[NAMES_KEY_MAX] = NULL;
    struct hits names = { NULL, 0, 0, 0, 0 };
    struct seen_ids done = { NULL, 0, 0 };
    struct birth_window w;
    struct match_keys mk;
    int64_t rows, word_rows[MATCH_WORDS_MAX] = { 0 }, near_rows = 0;
    unsigned small_bits = 0, tried_bits = 0;
    size_t left = MATCH_VERIFY_MAX, nn, j, before;
    double best = 0;
    int need, k, b, tried, rc = -1;

    birth_window_of(d->bd, d->bp, &w);
    match_keys_of(d->all, &mk);
    if (mk.words == 0)
        return 0;
    for (k = 0; k < mk.n; k++) {
        names.reason = mk.v[k].bits;
        names.score = 1;        /* counts the draft's keys a candidate holds (hits_merge_keys) */
        /* a one-letter key ("l" of Ali) is held by many: read it only within birth years */
        if (strlen(mk.v[k].key) < 2 && !w.known)
            continue;
        if (match_scan_key(db, &w, mk.v[k].key, 1, &names, &rows, e) < 0)
            goto out;
        for (b = 0; b < mk.words; b++)
            if (mk.v[k].own && (mk.v[k].bits & (1u << b)))
                word_rows[b] += rows;
    }
    for (b = 0; b < mk.words; b++)
        if (word_rows[b] > 0 && word_rows[b] <= MATCH_SMALL_LIST)
            small_bits |= 1u << b;
    need = mk.words >= 2 ? 2 : 1;
    if (hits_merge_keys(&names) < 0)
        goto oom;
    if (match_verify(db, d, &names, PICK_WORDS, need, small_bits, &done, &left, out, &best, e) < 0)
        goto out;
    if (need < 2 || best >= MATCH_EXACT_NAME || left == 0) {
        rc = 0;
        goto out;
    }
    if (small_bits && match_verify(db, d, &names, PICK_RARE, need, small_bits, &done, &left, out, &best, e) < 0)
        goto out;
    if (best >= MATCH_EXACT_NAME || !w.known || left == 0) {
        rc = 0;
        goto out;
    }
    /* maybe a word is misspelt: its keys one edit away from the right ones. A misspelt word's keys are
     * rare, so the word with the fewest holders is tried first, and the next only while nothing near-exact
     * is found */
    if ((near = malloc(512 * sizeof(*near))) == NULL)
        goto oom;
    for (tried = 0; tried < mk.words && best < MATCH_EXACT_NAME && left > 0; tried++) {
        unsigned word;
        int rarest = -1;

        for (b = 0; b < mk.words; b++)
            if (!(tried_bits & (1u << b)) && (rarest < 0 || word_rows[b] < word_rows[rarest]))
                rarest = b;
        word = 1u << rarest;
        tried_bits |= word;
        before = names.n;
        names.reason = word << NEAR_SHIFT;
        for (k = 0; k < mk.n; k++) {
            if (!mk.v[k].own || !(mk.v[k].bits & word))
                continue;
            nn = key_neighbours(mk.v[k].key, near, 512);
            for (j = 0; j < nn; j++) {
                /* a longer neighbour says more ("mnsr" for "msr") than a short one ("mr") */
                names.score = 0.2 + 0.05 * (double)strlen(near[j]);
                /* a neighbour that is a key of the draft ("hsm" of "Kssem" next to "hsn" of "Hassan") would
                 * make every holder of that word look like it had this one too */
                for (b = 0; b < mk.n && strcmp(mk.v[b].key, near[j]) != 0; b++)
                    ;
                if (b == mk.n && near_rows < MATCH_NEAR_ROWS) {
                    if (match_scan_key(db, &w, near[j], 0, &names, &rows, e) < 0)
                        goto out;
                    near_rows += rows;
                }
            }
        }
        if (names.n > before) {
            if (hits_merge_keys(&names) < 0)
                goto oom;
            if (match_verify(db, d, &names, PICK_WORDS, need, 0, &done, &left, out, &best, e) < 0)
                goto out;
        }
    }
    rc = 0;
    goto out;
oom:
    err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
out:
    free(near);
    free(names.v);
    free(done.v);
    return rc;
}

json_t *patients_match(struct db *db, const struct caller *who, const json_t *draft, struct err *e)
{
    char key[TOKEN_LEN], all[2 * NAMES_FOLD_MAX + 8], norm[72], phone[24], lo[TERM_LEN], hi[TERM_LEN + 2];
    char other_norm[72];
    struct hits h = { NULL, 0, 0, 0, 0 }, shown = { NULL, 0, 0, 0, 0 }, ids = { NULL, 0, 0, 0, 0 };
    struct match_draft d;
    json_t *birth = json_object(), *items = json_array(), *out = NULL, *p, *v, *reasons;
    const char *type;
    size_t i, k;
    double sim;
    int found;

    if (birth == NULL || items == NULL)
        goto oom;
    if (pt_birth_from_input(draft, birth, e) < 0) {
        err_field(e, json_object_get(draft, "age_years") ? "age_years" : "birth_date");
        goto fail;
    }
    d.who = who;
    d.all = all;
    d.bd = json_string_value(json_object_get(birth, "birth_date"));
    d.bp = json_string_value(json_object_get(birth, "birth_precision"));
    d.sex = json_string_value(json_object_get(draft, "sex"));
    pt_record_name_fold(draft, all, sizeof(all));
    pt_name_groups_of(all, &d.groups);
    if (patients_index_check(db, e) < 0 || db_begin_read(db, e) < 0)
        goto fail;
    /* the same identifier of the same type: the index finds the value, the record its type */
    h.score = 1.0;
    h.reason = REASON_IDENTIFIER;
    json_object_foreach(json_object_get(draft, "identifiers"), type, v) {
        if (!json_is_string(v) || strlen(type) > 32)
            continue;
        patients_normalise_identifier(json_string_value(v), norm, sizeof(norm));
        if (norm[0] == '\0')
            continue;
        snprintf(lo, sizeof(lo), "i:%s", norm);
        snprintf(hi, sizeof(hi), "%s\x01", lo);
        ids.n = 0;
        if (store_patient_terms_scan(db, lo, hi, 20, hits_add, &ids, e) < 0)
            goto fail_tx;
        for (k = 0; k < ids.n; k++) {
            if ((found = store_patient_get(db, ids.v[k].id, &p, e)) < 0)
                goto fail_tx;
            if (found && json_is_string(json_object_get(json_object_get(p, "identifiers"), type))) {
                patients_normalise_identifier(json_string_value(json_object_get(json_object_get(p, "identifiers"), type)),
                                              other_norm, sizeof(other_norm));
                if (strcmp(other_norm, norm) == 0 && hits_add(ids.v[k].id, &h) != 0) {
                    json_decref(p);
                    goto oom_tx;
                }
            }
            json_decref(p);
        }
    }
    h.score = 0;
    h.reason = REASON_PHONE;
    json_array_foreach(json_object_get(draft, "phones"), i, v) {
        if (!json_is_string(v) || patients_normalise_phone(json_string_value(v), phone, sizeof(phone)) < 0)
            continue;
        pt_phone_key(phone, key, sizeof(key));
        if (scan_term(db, "p", key, 0, 20, &h, e) < 0)
            goto fail_tx;
    }
    hits_unique(&h);
    for (i = 0; i < h.n; i++) {
        struct hit *x = &h.v[i];

        if ((found = match_check(db, &d, x, &sim, e)) < 0)
            goto fail_tx;
        shown.score = x->score;
        shown.reason = x->reasons;
        if (found && hits_add(x->id, &shown) != 0)
            goto oom_tx;
    }
    /* candidates by name: those found by identifier or phone above are compared again, and the merge
     * below keeps the best score and every reason */
    if (all[0] && match_names(db, &d, &shown, e) < 0)
        goto fail_tx;
    hits_unique(&shown);
    if (shown.n > 1)
        qsort(shown.v, shown.n, sizeof(*shown.v), hit_by_score);
    for (i = 0; i < shown.n && i < 10; i++) {
        static const char *const reason_names[] = { "same_identifier", "same_phone", "similar_name",
                                                    "compatible_birth_date", "close_birth_date", "same_sex" };
        size_t r;

        if (store_patient_get(db, shown.v[i].id, &p, e) < 0)
            goto fail_tx;
        reasons = json_array();
        for (r = 0; r < 6; r++)
            if (shown.v[i].reasons & (1u << r))
                json_array_append_new(reasons, json_string(reason_names[r]));
        json_array_append_new(items, json_pack("{s:o,s:f,s:o}", "patient", pt_patient_view(p), "score",
                                               (double)(int)(shown.v[i].score * 1000) / 1000, "reasons", reasons));
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
    free(shown.v);
    free(ids.v);
    return out;
oom_tx:
    db_rollback(db);
oom:
    err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    goto fail;
fail_tx:
    db_rollback(db);
fail:
    json_decref(birth);
    json_decref(items);
    free(h.v);
    free(shown.v);
    free(ids.v);
    return NULL;
}

