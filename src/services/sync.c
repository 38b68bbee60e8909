/* sync.c — replication: building and applying change batches, the field-level merge with conflicts and
 * quarantine, and sync sessions with peers. The protocol and rules are in sync.h and docs/sync.md. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "core/hlc.h"
#include "core/id.h"
#include "core/jsonmem.h"
#include "core/log.h"
#include "core/util.h"
#include "services/appointments.h"
#include "services/audit.h"
#include "services/changelog.h"
#include "services/documents.h"
#include "services/chart.h"
#include "services/encounters.h"
#include "services/forms.h"
#include "services/patients.h"
#include "services/sites.h"
#include "services/sync.h"
#include "store/changes.h"
#include "store/sites.h"
#include "store/sync.h"

/* The record types that replicate. A change of a table this node does not know (from a newer node) is
 * kept in the log and passed on, but not applied: new record types plug in here with no protocol change. */
struct sync_table {
    const char *name;
    const char *required_field;     /* a row exists locally once this field has a value */
    /* store the full current state {field: value} of a row */
    int (*apply)(struct db *db, const char *row_id, const json_t *fields, int64_t at, struct err *e);
    /* the site a row belongs to, for peers restricted to some sites */
    int (*site_of)(struct db *db, const char *row_id, char site[ID_LEN], struct err *e);
    /* are these field names and values acceptable for the table? A pure function of fields (no database,
     * no shared state): batches are checked on the thread that reads them, apart from the one applying */
    int (*check)(const json_t *fields, struct err *e);
    /* optional: store a row from its first change when the table keeps one member of the fields
     * (text_member) as JSON text: that member's text as the change holds it is handed over, so that it
     * need not be written again */
    const char *text_member;
    int (*apply_first)(struct db *db, const char *row_id, const json_t *fields, const char *member_text,
                       size_t member_len, int64_t at, struct err *e);
};

static const struct sync_table sync_tables[] = {
    /* sites first: a hub must know the site of the patients it receives (names are not health data,
     * so every peer gets every site) */
    { SITE_TABLE, "name", sites_apply, NULL, sites_check_fields },
    { PATIENT_TABLE, "site_id", patients_store_fields, patients_site_of, patients_check_fields },
    /* form definitions are not health data: every peer gets them, like sites */
    { FORM_TABLE, "definition", forms_apply, NULL, forms_check_fields },
    { ENCOUNTER_TABLE, "patient_id", encounters_apply, encounters_site_of, encounters_check_fields },
    { ENTRY_TABLE, "encounter_id", entries_apply, entries_site_of, entries_check_fields, "values",
      entries_apply_first },
    { DOCUMENT_TABLE, "sha256", documents_apply, documents_site_of, documents_check_fields },
    { APPOINTMENT_TABLE, "patient_id", appointments_apply, appointments_site_of, appointments_check_fields },
    { CHART_TABLE, "patient_id", chart_apply, chart_site_of, chart_check_fields },
};

/* The page cache while a batch is applied: room for the index pages thousands of records touch. */
#define SYNC_APPLY_CACHE_KIB (64 * 1024)

static const struct sync_table *table_find(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(sync_tables) / sizeof(sync_tables[0]); i++)
        if (strcmp(sync_tables[i].name, name) == 0)
            return &sync_tables[i];
    return NULL;
}

/* ---- vectors and cursors ---- */

struct vector_state {
    struct db *db;
    json_t *v;
    struct err *e;
    int failed;
};

static int vector_add(const char *origin, int64_t max_seq, int64_t contiguous, void *ctx)
{
    struct vector_state *s = ctx;

    /* a log with a hole (changes received out of order, or filtered upstream) counts up to the hole */
    (void)max_seq;
    json_object_set_new(s->v, origin, json_integer(contiguous));
    return 0;
}

json_t *sync_vector(struct db *db, struct err *e)
{
    struct vector_state s = { db, json_object(), e, 0 };

    if (s.v == NULL || store_origins_scan(db, vector_add, &s, e) < 0 || s.failed) {
        json_decref(s.v);
        return NULL;
    }
    return s.v;
}

static int cursor_add(const char *origin, int64_t seq, void *ctx)
{
    json_object_set_new(ctx, origin, json_integer(seq));
    return 0;
}

json_t *sync_cursor_get(struct db *db, const char *peer_id, const char *direction, struct err *e)
{
    json_t *c = json_object();

    if (c == NULL || store_cursor_scan(db, peer_id, direction, cursor_add, c, e) < 0) {
        json_decref(c);
        return NULL;
    }
    return c;
}

int sync_cursor_save(struct db *db, const char *peer_id, const char *direction, const json_t *cursor, struct err *e)
{
    const char *origin;
    json_t *v;
    int own = !db_in_transaction(db);

    if (own && db_begin_write(db, e) < 0)
        return -1;
    json_object_foreach((json_t *)cursor, origin, v) {
        if (json_is_integer(v) && store_cursor_raise(db, peer_id, direction, origin, json_integer_value(v), e) < 0) {
            if (own)
                db_rollback(db);
            return -1;
        }
    }
    return own ? db_commit(db, e) : 0;
}

/* ---- building batches ---- */

struct build_state {
    struct db *db;
    struct buf *json;           /* the changes array being written */
    json_t *cursor;
    json_t *sites;              /* sites the peer may receive, or NULL */
    size_t max;
    int64_t count;
    int64_t limit;              /* the highest seq of the current origin that may be sent */
    int past_limit;             /* the scan of the current origin reached its limit */
    int full;
    struct err *e;
    int failed;
};

static int site_allowed(const json_t *sites, const char *site)
{
    size_t i;
    json_t *s;

    json_array_foreach(sites, i, s)
        if (json_is_string(s) && strcmp(json_string_value(s), site) == 0)
            return 1;
    return 0;
}

static int build_add(const char *origin, int64_t seq, const char *tbl, const char *row_id, int64_t hlc,
                     const char *fields, const char *base, void *ctx)
{
    struct build_state *s = ctx;
    const struct sync_table *t;
    char site[ID_LEN], head[256];
    size_t before = s->json->len;
    int found, head_len;

    if (seq > s->limit) {
        s->past_limit = 1;      /* past the origin's hole: stop this origin, not the batch */
        return 1;
    }
    if (s->sites) {
        t = table_find(tbl);
        if (t && t->site_of) {
            found = t->site_of(s->db, row_id, site, s->e);
            if (found < 0) {
                s->failed = 1;
                return 1;
            }
            if (!found || !site_allowed(s->sites, site)) {
                /* not for this peer: read past it */
                json_object_set_new(s->cursor, origin, json_integer(seq));
                return 0;
            }
        }
    }
    /* ids, table names and origins are plain ASCII checked on the way in; fields and base are stored JSON
     * (appended as they are: formatting them through printf was half of building a batch) */
    head_len = snprintf(head, sizeof(head), "%s[\"%s\",%lld,\"%s\",\"%s\",%lld,", s->count ? "," : "", origin,
                        (long long)seq, tbl, row_id, (long long)hlc);
    if (head_len < 0 || (size_t)head_len >= sizeof(head) || buf_append(s->json, head, (size_t)head_len) < 0
        || buf_puts(s->json, fields) < 0 || buf_append(s->json, ",", 1) < 0 || buf_puts(s->json, base) < 0
        || buf_append(s->json, "]", 1) < 0) {
        s->json->len = before;
        s->json->data[before] = '\0';
        s->failed = 1;
        err_set(s->e, ERR_INTERNAL, "out_of_memory", "out of memory building a batch");
        return 1;
    }
    if (s->json->len > s->max && s->count > 0) {
        /* over the limit: this change goes in the next batch */
        s->json->len = before;
        s->json->data[before] = '\0';
        s->full = 1;
        return 1;
    }
    s->count++;
    json_object_set_new(s->cursor, origin, json_integer(seq));
    return 0;
}

struct origins_list {
    json_t *names;
};

static int origin_name(const char *origin, int64_t max_seq, int64_t count, void *ctx)
{
    (void)max_seq;
    (void)count;
    json_array_append_new(((struct origins_list *)ctx)->names, json_string(origin));
    return 0;
}

/* zstd's level 1: on change batches as small as level 3 (a few percent either way) and half as fast
 * again to make, which is the sender's largest cost in an initial sync */
#define SYNC_ZSTD_LEVEL 1

/* Compress src into out (replacing its content), within out's maximum size. */
static int batch_compress(const char *src, size_t n, struct buf *out, struct err *e)
{
    size_t bound = ZSTD_compressBound(n), z;
    ZSTD_CCtx *cx;
    char *tmp;
    int rc;

    buf_reset(out);
    if ((tmp = malloc(bound)) == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    /* with a content checksum, so a corrupted batch is refused rather than half-read */
    cx = ZSTD_createCCtx();
    z = cx == NULL || ZSTD_isError(ZSTD_CCtx_setParameter(cx, ZSTD_c_compressionLevel, SYNC_ZSTD_LEVEL))
                || ZSTD_isError(ZSTD_CCtx_setParameter(cx, ZSTD_c_checksumFlag, 1))
            ? (size_t)-1
            : ZSTD_compress2(cx, tmp, bound, src, n);
    ZSTD_freeCCtx(cx);
    if (ZSTD_isError(z))
        rc = err_set(e, ERR_INTERNAL, "compress_failed", "could not compress the batch");
    else if (buf_append(out, tmp, z) < 0)
        /* (the output's maximum is what the other side accepts; a batch is bounded well below it) */
        rc = err_set(e, ERR_TOO_LARGE, "batch_too_large", "the compressed batch (%zu bytes) does not fit the output "
                     "buffer", z);
    else
        rc = 0;
    free(tmp);
    return rc;
}

int sync_batch_build(struct db *db, const char *peer_id, const json_t *vector, size_t max_bytes, struct buf *out,
                     int *has_more, json_t **cursor_out, struct err *e)
{
    struct build_state s;
    struct origins_list ol = { json_array() };
    struct buf text;
    char node[37], *sites_text = NULL, *cursor_text = NULL, *vector_text = NULL;
    json_t *vec = NULL, *name;
    size_t i;
    int64_t after;
    int rc = -1, scanned;

    memset(&s, 0, sizeof(s));
    buf_init(&text, SYNC_MAX_BATCH_BYTES);
    s.db = db;
    s.json = &text;
    s.cursor = json_object();
    s.max = max_bytes < 4096 ? 4096 : max_bytes > SYNC_MAX_BATCH_BYTES / 2 ? SYNC_MAX_BATCH_BYTES / 2 : max_bytes;
    s.e = e;
    *has_more = 0;
    if (cursor_out)
        *cursor_out = NULL;
    if (ol.names == NULL || s.cursor == NULL)
        goto oom;
    if (db_begin_read(db, e) < 0)
        goto done_free;
    if (changelog_node_id(db, node, e) < 0)
        goto done;
    if (peer_id && store_peer_sites(db, peer_id, &sites_text, e) < 0)
        goto done;
    if (sites_text && (s.sites = json_loads(sites_text, 0, NULL)) == NULL) {
        err_set(e, ERR_INTERNAL, "corrupt_peer", "the site list of peer %s is unreadable", peer_id);
        goto done;
    }
    if (store_origins_scan(db, origin_name, &ol, e) < 0 || (vec = sync_vector(db, e)) == NULL)
        goto done;
    json_array_foreach(ol.names, i, name) {
        const char *origin = json_string_value(name);

        after = json_integer_value(json_object_get(vector, origin));
        /* never past a hole in this node's log: the change that fills it would be skipped by the
         * receiver's cursor for ever; the receiver gets the rest once the hole is filled */
        s.limit = json_integer_value(json_object_get(vec, origin));
        s.past_limit = 0;
        do {
            scanned = 0;
            if (store_changes_after(db, origin, after, 500, build_add, &s, e) < 0 || s.failed)
                goto done;
            scanned = json_integer_value(json_object_get(s.cursor, origin)) > after;
            if (scanned)
                after = json_integer_value(json_object_get(s.cursor, origin));
        } while (scanned && !s.full && !s.past_limit);
        if (s.full)
            break;
    }
    *has_more = s.full;
    cursor_text = json_dumps(s.cursor, JSON_COMPACT);
    vector_text = json_dumps(vec, JSON_COMPACT);
    if (cursor_text == NULL || vector_text == NULL)
        goto oom_tx;
    {
        struct buf whole;

        buf_init(&whole, SYNC_MAX_BATCH_BYTES);
        if (buf_printf(&whole, "{\"format\":\"%s\",\"node\":\"%s\",\"has_more\":%s,\"cursor\":%s,\"vector\":%s,"
                               "\"changes\":[", SYNC_BATCH_FORMAT, node, s.full ? "true" : "false", cursor_text,
                       vector_text) < 0
            || buf_append(&whole, text.data, text.len) < 0 || buf_puts(&whole, "]}") < 0) {
            buf_free(&whole);
            goto oom_tx;
        }
        rc = batch_compress(whole.data, whole.len, out, e);
        buf_free(&whole);
    }
    if (rc == 0) {
        rc = (int)(s.count > 0x7fffffff ? 0x7fffffff : s.count);
        if (cursor_out) {
            *cursor_out = s.cursor;
            s.cursor = NULL;
        }
    }
    goto done;
oom_tx:
    err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory building a batch");
done:
    db_rollback(db);
    goto done_free;
oom:
    err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory building a batch");
done_free:
    free(sites_text);
    free(cursor_text);
    free(vector_text);
    json_decref(s.sites);
    json_decref(s.cursor);
    json_decref(ol.names);
    json_decref(vec);
    buf_free(&text);
    return rc;
}

/* ---- reading batches ---- */

/* Identifiers that travel in batches: ASCII letters, digits, '-', '_' and '.', 1 to max bytes. */
static int plain_name(const char *s, size_t max)
{
    size_t i, n = s ? strlen(s) : 0;

    if (n == 0 || n > max)
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9')
              || s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return 0;
    return 1;
}

/* Does a zstd frame declare a content checksum? RFC 8878: after the 4-byte magic number, bit 2 of the
 * frame header descriptor. (zstd's own header parser is in its experimental, unstable API.) */
static int frame_has_checksum(const void *data, size_t len)
{
    const unsigned char *p = data;

    return len > 4 && p[0] == 0x28 && p[1] == 0xB5 && p[2] == 0x2F && p[3] == 0xFD && (p[4] & 0x04);
}

/* One change of a decoded batch. Its scalars are checked; fields and base are parsed and checked, and
 * their JSON text is kept as the sender wrote it, to go into the log as it is (the origin wrote it, and
 * every node passes it on unchanged). The strings point into the batch's text. */
struct batch_change {
    const char *origin, *tbl, *row_id;
    int64_t seq, hlc;
    json_t *fields;             /* a non-empty object */
    json_t *base;               /* an object, or NULL when it is {} (most changes) */
    const char *fields_text, *base_text;
    size_t fields_len, base_len;
    const char *member_text;    /* where the table's text_member is written in fields_text, or NULL */
    size_t member_len;
};

/* A decoded batch: batch_decode() fills it, batch_free() lets it go. The changes' fields and base are
 * parsed either at once, or (for a single batch applied as it arrives: a push) by a helper thread while
 * the changes before are applied: batch_change_get() waits for each. */
struct batch {
    char *text;                 /* the decompressed JSON; the change strings are cut out of it in place */
    json_t *head;               /* every member but "changes": format, node, has_more, cursor, vector */
    struct batch_change *changes;
    size_t n;
    /* the helper thread, when there is one (all under lock) */
    int helper_running;
    pthread_t helper;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t parsed;              /* changes [0, parsed) are parsed and checked */
    int parse_failed;           /* change `parsed` is malformed, or its table refuses it: */
    struct err parse_err;       /* why */
    int applied;                /* the applier is done with the changes (or gave up): free them */
    /* the changes' fields and base, all allocated here by the thread parsing them (core/jsonmem.h):
     * freeing tens of thousands of small trees one by one costs about as much as applying them */
    struct json_region region;
};

static void batch_free(struct batch *b)
{
    size_t i;

    if (b->helper_running) {
        pthread_mutex_lock(&b->lock);
        b->applied = 1;
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
        pthread_join(b->helper, NULL);
        pthread_mutex_destroy(&b->lock);
        pthread_cond_destroy(&b->cond);
    }
    for (i = 0; i < b->n; i++)
        b->changes[i].fields = b->changes[i].base = NULL;
    json_region_free(&b->region);
    free(b->changes);
    json_decref(b->head);
    free(b->text);
    memset(b, 0, sizeof(*b));
}

/* The batch is read without building one JSON tree for the whole of it: a tree of tens of thousands of
 * changes costs more to build and free than to apply them, and the log keeps each change's fields as
 * text anyway. The envelope and every change are still checked as strictly as a full parse would:
 * jansson parses each member of the envelope but the changes, the reader below each change's fields and
 * base (strict JSON, UTF-8, no duplicate keys), and the scalars of a change are read here, stricter than
 * JSON requires (plain ASCII strings without escapes, integers without fraction or exponent). */

static const char *text_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* The end of the JSON value starting at p (which is not whitespace), or NULL when the brackets and
 * strings do not close. Only the extent is found: the value is then parsed by jansson, which checks the
 * rest. Nesting is bounded (jansson's own limit is lower). */
static const char *text_value_end(const char *p, const char *end)
{
    char closers[4096];
    size_t depth = 0;
    const char *q;

    do {
        p = text_ws(p, end);
        if (p >= end)
            return NULL;
        switch (*p) {
        case '"':
            /* to the next quote not escaped (preceded by an even number of backslashes) */
            for (q = p + 1;; q++) {
                const char *bs;

                if ((q = memchr(q, '"', (size_t)(end - q))) == NULL)
                    return NULL;
                for (bs = q; bs > p + 1 && bs[-1] == '\\'; bs--)
                    ;
                if (((q - bs) & 1) == 0)
                    break;
            }
            p = q + 1;
            break;
        case '{':
        case '[':
            if (depth == sizeof(closers))
                return NULL;
            closers[depth++] = *p == '{' ? '}' : ']';
            p++;
            break;
        case '}':
        case ']':
            if (depth == 0 || closers[depth - 1] != *p)
                return NULL;
            depth--;
            p++;
            break;
        case ',':
        case ':':
            if (depth == 0)
                return NULL;
            p++;
            break;
        default:
            if (!((*p >= '0' && *p <= '9') || *p == '-' || (*p >= 'a' && *p <= 'z')))
                return NULL;
            while (p < end && ((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                               || *p == '-' || *p == '+' || *p == '.'))
                p++;
            break;
        }
    } while (depth > 0);
    return p;
}

/* A string of a change (origin, table, row id): plain ASCII without escapes, cut out of the text in
 * place (its closing quote becomes NUL). The position after it, or NULL. */
static char *text_take_plain(char *p, const char *end, const char **out)
{
    char *s;

    if (p >= end || *p != '"')
        return NULL;
    for (s = ++p; p < end && *p != '"'; p++)
        if (*p == '\\' || (unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            return NULL;
    if (p >= end)
        return NULL;
    *p = '\0';
    *out = s;
    return p + 1;
}

/* A JSON integer (no fraction or exponent) that fits in int64_t. The position after it, or NULL. */
static char *text_take_int(char *p, const char *end, int64_t *out)
{
    int neg = 0;
    uint64_t v = 0;
    char *start;

    if (p < end && *p == '-')
        neg = 1, p++;
    start = p;
    while (p < end && *p >= '0' && *p <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            return NULL;
        v = v * 10 + (uint64_t)(*p++ - '0');
    }
    if (p == start || (p - start > 1 && *start == '0') || (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
        || v > (uint64_t)INT64_MAX)
        return NULL;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return p;
}

/* The next token of a change must be c: the position after it, or NULL. */
static char *text_expect(char *p, const char *end, char c)
{
    p = (char *)text_ws(p, end);
    return p < end && *p == c ? p + 1 : NULL;
}

/* ---- a strict JSON reader for a change's fields and base ----
 * jansson's own reader spends most of its time in per-character stream calls and token copies: for a
 * batch of tens of thousands of changes that was a third of the CPU of a sync. This reader takes the
 * same JSON, as strictly as jansson does (RFC 8259; UTF-8 checked, no overlong forms or encoded
 * surrogates; no control characters and no \u0000 in strings; \u escapes with paired surrogates;
 * integers that fit json_int_t, reals that do not overflow; no duplicate keys; at most 2048 levels),
 * and builds the same jansson values straight from the text. */

#define JR_MAX_DEPTH 2048       /* jansson's own limit (JSON_PARSER_MAX_DEPTH) */

struct jreader {
    const char *p, *end;
    int depth;
    const char *member;         /* a member of the top object whose text is wanted, or NULL */
    const char *member_text;    /* OUT: where its value is written, or NULL */
    size_t member_len;
};

static void jr_ws(struct jreader *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

/* The length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t utf8_length(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len, i;

    if (s[0] < 0x80)
        return 1;
    if (s[0] < 0xC2)                /* a continuation byte, or an overlong two-byte form */
        return 0;
    if (s[0] < 0xE0)
        len = 2, cp = s[0] & 0x1F;
    else if (s[0] < 0xF0)
        len = 3, cp = s[0] & 0x0F;
    else if (s[0] < 0xF5)
        len = 4, cp = s[0] & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* Four hex digits at s (at least 4 bytes there): their value, or -1. */
static int32_t hex4(const char *s)
{
    int32_t v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        char c = s[i];

        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* The string at r->p (its opening quote). *s and *len receive its content: in the text itself when it
 * has no escape, else unescaped into *owned (malloc'ed, the caller frees it). 0, or -1 when invalid. */
static int jr_string(struct jreader *r, const char **s, size_t *len, char **owned)
{
    const char *p = r->p + 1, *start = p;
    char *out, *o;
    size_t n;
    int32_t cp, lo;

    *owned = NULL;
    for (;;) {
        if (p >= r->end)
            return -1;
        if (*p == '"') {
            *s = start;
            *len = (size_t)(p - start);
            r->p = p + 1;
            return 0;
        }
        if (*p == '\\')
            break;
        if ((unsigned char)*p < 0x20)
            return -1;
        if ((unsigned char)*p < 0x80)
            p++;
        else if ((n = utf8_length((const unsigned char *)p, (size_t)(r->end - p))) == 0)
            return -1;
        else
            p += n;
    }
    /* with escapes: unescaped, never longer than written */
    if ((out = malloc((size_t)(r->end - start) + 1)) == NULL)
        return -1;
    memcpy(out, start, (size_t)(p - start));
    o = out + (p - start);
    for (;;) {
        if (p >= r->end)
            goto bad;
        if (*p == '"')
            break;
        if ((unsigned char)*p < 0x20)
            goto bad;
        if (*p != '\\') {
            if ((unsigned char)*p < 0x80)
                n = 1;
            else if ((n = utf8_length((const unsigned char *)p, (size_t)(r->end - p))) == 0)
                goto bad;
            memcpy(o, p, n);
            o += n;
            p += n;
            continue;
        }
        if (++p >= r->end)
            goto bad;
        switch (*p++) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u':
            if (r->end - p < 4 || (cp = hex4(p)) < 0)
                goto bad;
            p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                goto bad;                                   /* a low surrogate alone */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (r->end - p < 6 || p[0] != '\\' || p[1] != 'u' || (lo = hex4(p + 2)) < 0xDC00 || lo > 0xDFFF)
                    goto bad;                               /* a high surrogate without its low one */
                p += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (cp == 0)
                goto bad;                                   /* jansson refuses NUL in strings */
            if (cp < 0x80) {
                *o++ = (char)cp;
            } else if (cp < 0x800) {
                *o++ = (char)(0xC0 | (cp >> 6));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                *o++ = (char)(0xE0 | (cp >> 12));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            } else {
                *o++ = (char)(0xF0 | (cp >> 18));
                *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
                *o++ = (char)(0x80 | (cp & 0x3F));
            }
            break;
        default:
            goto bad;
        }
    }
    *o = '\0';
    *owned = out;
    *s = out;
    *len = (size_t)(o - out);
    r->p = p + 1;
    return 0;
bad:
    free(out);
    return -1;
}

/* A number: an integer when it has no fraction or exponent (and fits json_int_t), else a real. */
static json_t *jr_number(struct jreader *r)
{
    const char *p = r->p, *digits;
    int real = 0;
    char buf[64], *endp;

    if (p < r->end && *p == '-')
        p++;
    digits = p;
    while (p < r->end && *p >= '0' && *p <= '9')
        p++;
    if (p == digits || (p - digits > 1 && *digits == '0'))
        return NULL;
    if (p < r->end && *p == '.') {
        real = 1;
        digits = ++p;
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
        if (p == digits)
            return NULL;
    }
    if (p < r->end && (*p == 'e' || *p == 'E')) {
        real = 1;
        if (++p < r->end && (*p == '+' || *p == '-'))
            p++;
        digits = p;
        while (p < r->end && *p >= '0' && *p <= '9')
            p++;
        if (p == digits)
            return NULL;
    }
    if ((size_t)(p - r->p) >= sizeof(buf)) {
        /* longer than any json_int_t, and than a real needs: read it from a copy all the same */
        char *copy = strndup(r->p, (size_t)(p - r->p));
        double d;

        if (copy == NULL || !real) {
            free(copy);
            return NULL;
        }
        errno = 0;
        d = strtod(copy, &endp);
        free(copy);
        if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL))
            return NULL;
        r->p = p;
        return json_real(d);
    }
    memcpy(buf, r->p, (size_t)(p - r->p));
    buf[p - r->p] = '\0';
    errno = 0;
    if (!real) {
        long long v = strtoll(buf, &endp, 10);

        if (errno == ERANGE)
            return NULL;            /* jansson: "too big integer" */
        r->p = p;
        return json_integer((json_int_t)v);
    } else {
        double d = strtod(buf, &endp);

        if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL))
            return NULL;            /* jansson: "real number overflow" */
        r->p = p;
        return json_real(d);
    }
}

static json_t *jr_value(struct jreader *r);

static json_t *jr_object(struct jreader *r)
{
    json_t *o = json_object(), *v;
    const char *key, *start;
    char *owned;
    size_t klen;

    if (o == NULL)
        return NULL;
    r->p++;
    jr_ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return o;
    }
    for (;;) {
        if (r->p >= r->end || *r->p != '"' || jr_string(r, &key, &klen, &owned) < 0)
            goto bad;
        jr_ws(r);
        if (r->p >= r->end || *r->p != ':' || json_object_getn(o, key, klen) != NULL) {
            free(owned);
            goto bad;
        }
        r->p++;
        jr_ws(r);
        start = r->p;
        v = jr_value(r);
        if (v == NULL || json_object_setn_new_nocheck(o, key, klen, v) < 0) {
            free(owned);
            goto bad;
        }
        if (r->depth == 1 && r->member && strlen(r->member) == klen && memcmp(r->member, key, klen) == 0) {
            r->member_text = start;
            r->member_len = (size_t)(r->p - start);
        }
        free(owned);
        jr_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            jr_ws(r);
            continue;
        }
        if (r->p < r->end && *r->p == '}') {
            r->p++;
            return o;
        }
        goto bad;
    }
bad:
    json_decref(o);
    return NULL;
}

static json_t *jr_array(struct jreader *r)
{
    json_t *a = json_array(), *v;

    if (a == NULL)
        return NULL;
    r->p++;
    jr_ws(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return a;
    }
    for (;;) {
        if ((v = jr_value(r)) == NULL || json_array_append_new(a, v) < 0)
            goto bad;
        jr_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == ']') {
            r->p++;
            return a;
        }
        goto bad;
    }
bad:
    json_decref(a);
    return NULL;
}

static json_t *jr_literal(struct jreader *r, const char *word, json_t *value)
{
    size_t n = strlen(word);

    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return NULL;
    r->p += n;
    return value;
}

static json_t *jr_value(struct jreader *r)
{
    json_t *v = NULL;
    const char *s;
    char *owned;
    size_t len;

    jr_ws(r);
    if (r->p >= r->end || ++r->depth > JR_MAX_DEPTH)
        return NULL;
    switch (*r->p) {
    case '{': v = jr_object(r); break;
    case '[': v = jr_array(r); break;
    case '"':
        if (jr_string(r, &s, &len, &owned) == 0) {
            v = json_stringn_nocheck(s, len);
            free(owned);
        }
        break;
    case 't': v = jr_literal(r, "true", json_true()); break;
    case 'f': v = jr_literal(r, "false", json_false()); break;
    case 'n': v = jr_literal(r, "null", json_null()); break;
    default:
        if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))
            v = jr_number(r);
        break;
    }
    r->depth--;
    return v;
}

/* The JSON object that is the whole of text[0, len) (whitespace around it allowed), or NULL. With member
 * set, *member_text and *member_len receive where the value of that member of the object is written
 * (NULL when it has none). */
static json_t *text_parse_object(const char *text, size_t len, const char *member, const char **member_text,
                                 size_t *member_len)
{
    struct jreader r = { text, text + len, 0, member, NULL, 0 };
    json_t *o;

    jr_ws(&r);
    if (r.p >= r.end || *r.p != '{' || (o = jr_value(&r)) == NULL)
        return NULL;
    jr_ws(&r);
    if (r.p != r.end) {
        json_decref(o);
        return NULL;
    }
    if (member_text) {
        *member_text = r.member_text;
        *member_len = r.member_len;
    }
    return o;
}

/* Parse and check change i's fields and base (their text and extent found by change_scan), and whether
 * its table accepts the fields (a pure check, done here rather than by the thread that applies). 0, or -1
 * with *e set. */
static int change_parse_objects(struct batch_change *c, size_t i, struct json_region *region, struct err *e)
{
    const struct sync_table *t = table_find(c->tbl);
    struct json_region *prev = json_region_use(region);
    const char *key;
    json_t *v;

    /* (only the values read here come from the region: a check may make and free values of its own) */
    c->fields = text_parse_object(c->fields_text, c->fields_len, t ? t->text_member : NULL, &c->member_text,
                                  &c->member_len);
    if (!(c->base_len == 2 && c->base_text[1] == '}'))
        c->base = text_parse_object(c->base_text, c->base_len, NULL, NULL, NULL);
    json_region_use(prev);
    if (!json_is_object(c->fields) || json_object_size(c->fields) == 0)
        goto malformed;
    json_object_foreach(c->fields, key, v)
        if (strlen(key) > 80)
            goto malformed;
    if (!(c->base_len == 2 && c->base_text[1] == '}')) {
        if (!json_is_object(c->base))
            goto malformed;
        json_object_foreach(c->base, key, v)
            if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(json_array_get(v, 0))
                || !id_valid(json_string_value(json_array_get(v, 1))) || json_object_get(c->fields, key) == NULL)
                goto malformed;
        if (json_object_size(c->base) == 0)
            c->base = NULL;     /* (released with the region) */
    }
    /* (a table this node does not know is kept and passed on unchecked: a newer node's) */
    return t && t->check ? t->check(c->fields, e) : 0;
malformed:
    return err_set(e, ERR_INVALID, "invalid_batch", "change %zu of the batch is malformed", i);
}

/* Read one change [origin, seq, table, row id, hlc, {fields}, {base}] at p: its scalars, checked, and the
 * extent of its fields and base (cut out of the text with a NUL each; change_parse_objects() parses
 * them). The position after it, or NULL when it is malformed. */
static char *change_scan(char *p, const char *end, struct batch_change *c)
{
    char *fields_end, *base_end;

    memset(c, 0, sizeof(*c));
    if ((p = text_expect(p, end, '[')) == NULL)
        return NULL;
    p = (char *)text_ws(p, end);
    if ((p = text_take_plain(p, end, &c->origin)) == NULL || !id_valid(c->origin) || (p = text_expect(p, end, ',')) == NULL)
        return NULL;
    p = (char *)text_ws(p, end);
    if ((p = text_take_int(p, end, &c->seq)) == NULL || c->seq < 1 || c->seq > ((int64_t)1 << 53)
        || (p = text_expect(p, end, ',')) == NULL)
        return NULL;
    p = (char *)text_ws(p, end);
    if ((p = text_take_plain(p, end, &c->tbl)) == NULL || !plain_name(c->tbl, 32) || (p = text_expect(p, end, ',')) == NULL)
        return NULL;
    p = (char *)text_ws(p, end);
    if ((p = text_take_plain(p, end, &c->row_id)) == NULL || !plain_name(c->row_id, 64)
        || (p = text_expect(p, end, ',')) == NULL)
        return NULL;
    p = (char *)text_ws(p, end);
    if ((p = text_take_int(p, end, &c->hlc)) == NULL || c->hlc < 1 || (p = text_expect(p, end, ',')) == NULL)
        return NULL;
    p = (char *)text_ws(p, end);
    if (p >= end || *p != '{' || (fields_end = (char *)text_value_end(p, end)) == NULL)
        return NULL;
    c->fields_text = p;
    if ((p = text_expect(fields_end, end, ',')) == NULL)
        return NULL;
    p = (char *)text_ws(p, end);
    if (p >= end || *p != '{' || (base_end = (char *)text_value_end(p, end)) == NULL)
        return NULL;
    c->base_text = p;
    if ((p = text_expect(base_end, end, ']')) == NULL)
        return NULL;
    c->fields_len = (size_t)(fields_end - c->fields_text);
    c->base_len = (size_t)(base_end - c->base_text);
    *fields_end = '\0';
    *base_end = '\0';
    return p;
}

/* Read the changes array [change, ...] at p; *after receives the position after it. */
static int changes_read(struct batch *b, char *p, const char *end, char **after, struct err *e)
{
    size_t cap = 0;
    struct batch_change *grown;

    if ((p = text_expect(p, end, '[')) == NULL)
        goto bad;
    p = (char *)text_ws(p, end);
    if (p < end && *p == ']')
        p++;
    else {
        for (;;) {
            if (b->n == cap) {
                cap = cap ? cap * 2 : 1024;
                if ((grown = realloc(b->changes, cap * sizeof(*grown))) == NULL)
                    return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
                b->changes = grown;
            }
            p = change_scan(p, end, &b->changes[b->n]);
            b->n++;
            if (p == NULL)
                return err_set(e, ERR_INVALID, "invalid_batch", "change %zu of the batch is malformed", b->n - 1);
            p = (char *)text_ws(p, end);
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p < end && *p == ']') {
                p++;
                break;
            }
            goto bad;
        }
    }
    *after = p;
    return 0;
bad:
    return err_set(e, ERR_INVALID, "invalid_batch", "the batch's changes are not an array of changes");
}

/* The helper thread of a batch: parses the changes in order, publishing each, then frees them once the
 * applier is done with them (it commits meanwhile). */
static void *batch_parse_thread(void *arg)
{
    struct batch *b = arg;
    struct err e;
    size_t i;
    int rc = 0, stop = 0;

    err_clear(&e);
    for (i = 0; i < b->n && rc == 0 && !stop; i++) {
        rc = change_parse_objects(&b->changes[i], i, &b->region, &e);
        pthread_mutex_lock(&b->lock);
        if (rc < 0) {
            b->parse_failed = 1;
            b->parse_err = e;
        } else
            b->parsed = i + 1;
        stop = b->applied;
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
    }
    pthread_mutex_lock(&b->lock);
    while (!b->applied)
        pthread_cond_wait(&b->cond, &b->lock);
    pthread_mutex_unlock(&b->lock);
    for (i = 0; i < b->n; i++)
        b->changes[i].fields = b->changes[i].base = NULL;
    json_region_free(&b->region);
    return NULL;
}

/* Parse every change's fields and base: now, or (helper set) on a helper thread, change after change,
 * while the caller applies them (batch_change_get). */
static int changes_parse(struct batch *b, int helper, struct err *e)
{
    size_t i;

    if (helper && b->n > 1) {
        pthread_mutex_init(&b->lock, NULL);
        pthread_cond_init(&b->cond, NULL);
        if (pthread_create(&b->helper, NULL, batch_parse_thread, b) == 0) {
            b->helper_running = 1;
            return 0;
        }
        pthread_mutex_destroy(&b->lock);
        pthread_cond_destroy(&b->cond);
    }
    for (i = 0; i < b->n; i++)
        if (change_parse_objects(&b->changes[i], i, &b->region, e) < 0)
            return -1;
    b->parsed = b->n;
    return 0;
}

/* Change i of a batch, once parsed; NULL with *e set when it is malformed (the batch is refused). */
static const struct batch_change *batch_change_get(struct batch *b, size_t i, struct err *e)
{
    int ok;

    if (!b->helper_running)
        return &b->changes[i];
    pthread_mutex_lock(&b->lock);
    while (b->parsed <= i && !b->parse_failed)
        pthread_cond_wait(&b->cond, &b->lock);
    ok = b->parsed > i;
    if (!ok)
        *e = b->parse_err;
    pthread_mutex_unlock(&b->lock);
    return ok ? &b->changes[i] : NULL;
}

/* The applier is done with the changes: the helper frees them while the caller commits. */
static void batch_changes_done(struct batch *b)
{
    if (!b->helper_running)
        return;
    pthread_mutex_lock(&b->lock);
    b->applied = 1;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->lock);
}

/* Read the envelope {"key": value, ...} at text: every member but "changes" parsed into b->head, and the
 * changes read into b where they stand (changes_read: the array is most of the batch). *has_changes tells
 * whether there was a "changes" member. */
static int envelope_read(struct batch *b, char *text, size_t len, int *has_changes, struct err *e)
{
    const char *end = text + len, *k, *kend, *v, *vend;
    json_error_t je;
    json_t *key, *val;
    char *p = text, *after = NULL;

    *has_changes = 0;
    if ((b->head = json_object()) == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    p = (char *)text_ws(p, end);
    if (p >= end || *p != '{')
        goto not_object;
    p = (char *)text_ws(p + 1, end);
    if (p < end && *p == '}')
        p++;
    else {
        for (;;) {
            k = text_ws(p, end);
            if (k >= end || *k != '"' || (kend = text_value_end(k, end)) == NULL)
                goto not_json;
            if ((p = text_expect((char *)kend, end, ':')) == NULL)
                goto not_json;
            v = text_ws(p, end);
            key = json_loadb(k, (size_t)(kend - k), JSON_DECODE_ANY, &je);
            if (!json_is_string(key)) {
                json_decref(key);
                goto not_json;
            }
            if (json_object_get(b->head, json_string_value(key))
                || (strcmp(json_string_value(key), "changes") == 0 && *has_changes)) {
                err_set(e, ERR_INVALID, "invalid_batch", "the batch repeats the member %.20s", json_string_value(key));
                json_decref(key);
                return -1;
            }
            if (strcmp(json_string_value(key), "changes") == 0) {
                *has_changes = 1;
                json_decref(key);
                if (changes_read(b, (char *)v, end, &after, e) < 0) {
                    /* (a batch of another format, named before its changes as sanad writes it, is told so) */
                    const char *fmt = json_string_value(json_object_get(b->head, "format"));

                    if (fmt && strcmp(fmt, SYNC_BATCH_FORMAT) != 0)
                        err_set(e, ERR_INVALID, "unsupported_batch", "the batch format is %.32s, not %s; upgrade sanad",
                                fmt, SYNC_BATCH_FORMAT);
                    return -1;
                }
                vend = after;
                key = NULL;
            } else if ((vend = text_value_end(v, end)) == NULL) {
                json_decref(key);
                goto not_json;
            } else {
                val = json_loadb(v, (size_t)(vend - v), JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
                if (val == NULL) {
                    json_decref(key);
                    return err_set(e, ERR_INVALID, "invalid_batch", "the batch is not valid JSON: %s", je.text);
                }
                json_object_set_new(b->head, json_string_value(key), val);
            }
            json_decref(key);
            p = (char *)text_ws(vend, end);
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p < end && *p == '}') {
                p++;
                break;
            }
            goto not_json;
        }
    }
    if (text_ws(p, end) != end)
        goto not_json;
    return 0;
not_object:
    if (text_value_end(p, end) == NULL)
        goto not_json;
    return err_set(e, ERR_INVALID, "invalid_batch", "the batch is not a %s object", SYNC_BATCH_FORMAT);
not_json:
    return err_set(e, ERR_INVALID, "invalid_batch", "the batch is not valid JSON");
}

/* Decompress a batch and read it into *b, checking every part of its shape. Nothing is applied. With
 * helper, the changes' fields and base are parsed on a helper thread as the caller applies them (a
 * malformed one is then reported by batch_change_get, and the caller's transaction rolled back). */
static int batch_decode(const void *data, size_t len, struct batch *b, int helper, struct err *e)
{
    unsigned long long size;
    const char *fmt, *key;
    int has_changes;
    json_t *v;
    size_t got;

    memset(b, 0, sizeof(*b));
    if (len > SYNC_MAX_COMPRESSED_BYTES)
        return err_set(e, ERR_TOO_LARGE, "batch_too_large", "the batch is larger than %u bytes",
                       SYNC_MAX_COMPRESSED_BYTES);
    size = ZSTD_getFrameContentSize(data, len);
    if (size == ZSTD_CONTENTSIZE_ERROR)
        return err_set(e, ERR_INVALID, "invalid_batch", "the batch is not a zstd frame");
    if (!frame_has_checksum(data, len) || ZSTD_findFrameCompressedSize(data, len) != len)
        return err_set(e, ERR_INVALID, "invalid_batch", "the batch is not one checksummed zstd frame");
    /* the decompressed size must be declared and bounded, so a small bomb cannot blow up memory */
    if (size == ZSTD_CONTENTSIZE_UNKNOWN || size > SYNC_MAX_BATCH_BYTES)
        return err_set(e, ERR_TOO_LARGE, "batch_too_large", "the batch would decompress beyond %u bytes",
                       SYNC_MAX_BATCH_BYTES);
    b->text = malloc((size_t)size + 1);
    if (b->text == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    got = ZSTD_decompress(b->text, (size_t)size, data, len);
    if (ZSTD_isError(got) || got != size) {
        err_set(e, ERR_INVALID, "invalid_batch", "the batch is truncated or corrupted");
        goto bad;
    }
    b->text[got] = '\0';
    if (envelope_read(b, b->text, got, &has_changes, e) < 0)
        goto bad;
    fmt = json_string_value(json_object_get(b->head, "format"));
    if (fmt == NULL || strcmp(fmt, SYNC_BATCH_FORMAT) != 0) {
        if (fmt != NULL)
            err_set(e, ERR_INVALID, "unsupported_batch", "the batch format is %.32s, not %s; upgrade sanad", fmt,
                    SYNC_BATCH_FORMAT);
        else
            err_set(e, ERR_INVALID, "invalid_batch", "the batch is not a %s object", SYNC_BATCH_FORMAT);
        goto bad;
    }
    if (!id_valid(json_string_value(json_object_get(b->head, "node")))
        || !json_is_boolean(json_object_get(b->head, "has_more")) || !json_is_object(json_object_get(b->head, "cursor"))
        || !has_changes) {
        err_set(e, ERR_INVALID, "invalid_batch", "the batch lacks node, has_more, cursor or changes");
        goto bad;
    }
    json_object_foreach(json_object_get(b->head, "cursor"), key, v) {
        if (!id_valid(key) || !json_is_integer(v) || json_integer_value(v) < 0) {
            err_set(e, ERR_INVALID, "invalid_batch", "the batch cursor is malformed");
            goto bad;
        }
    }
    if (changes_parse(b, helper, e) < 0)
        goto bad;
    return 0;
bad:
    batch_free(b);
    return -1;
}

/* ---- the merge ---- */

/* Is (hlc, origin) after (hlc2, origin2)? The node id breaks ties, so every node picks the same winner. */
static int stamp_after(int64_t hlc, const char *origin, int64_t hlc2, const char *origin2)
{
    return hlc > hlc2 || (hlc == hlc2 && strcmp(origin, origin2) > 0);
}

/* Does base ([hlc, node] or null) name the change (hlc, origin)? Two nodes may stamp the same time, so
 * the node counts too. */
static int base_names(const json_t *base, int64_t hlc, const char *origin)
{
    const char *node = json_string_value(json_array_get(base, 1));

    return json_is_array(base) && json_integer_value(json_array_get(base, 0)) == hlc && node && strcmp(node, origin) == 0;
}

static int record_conflict(struct db *db, const char *tbl, const char *row_id, const char *field, const json_t *loser,
                           int64_t loser_hlc, const char *loser_origin, const json_t *winner, int64_t winner_hlc,
                           const char *winner_origin, struct err *e)
{
    struct conflict_row c;
    char *lv = json_dumps(loser, JSON_COMPACT | JSON_ENCODE_ANY), *wv = json_dumps(winner, JSON_COMPACT | JSON_ENCODE_ANY);
    int rc;

    memset(&c, 0, sizeof(c));
    id_new(c.id);
    c.tbl = tbl;
    c.row_id = row_id;
    c.field = field;
    c.value = lv;
    c.hlc = loser_hlc;
    c.origin = loser_origin;
    c.winner_value = wv;
    c.winner_hlc = winner_hlc;
    c.winner_origin = winner_origin;
    c.detected_at = now_ms();
    rc = lv && wv ? store_conflict_insert(db, &c, e) : err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    free(lv);
    free(wv);
    return rc;
}

/* What the apply of a batch knows of each origin it holds changes of, so that the log is asked about an
 * origin once per batch rather than once per change. */
struct origin_state {
    const char *node;           /* in the batch's text */
    int64_t alias;
    int64_t held_max;           /* the highest seq in the log, this batch's changes included */
    int64_t contiguous;         /* the highest seq held with no gap below it */
    int64_t contiguous_was;     /* ... when the batch started: written back once, at the end, if it moved */
};

struct apply_ctx {
    struct db *db;
    struct origin_state *origins;
    size_t n, cap, last;
    json_t *index;              /* node id -> position in origins */
};

static void apply_ctx_free(struct apply_ctx *ax)
{
    free(ax->origins);
    json_decref(ax->index);
}

/* The state of an origin, looked up in the log the first time the batch names it. */
static struct origin_state *origin_find(struct apply_ctx *ax, const char *node, struct err *e)
{
    struct origin_state *o;
    json_t *pos;

    /* a batch holds each origin's changes in a run, so the last one asked for is nearly always it */
    if (ax->n > 0 && strcmp(ax->origins[ax->last].node, node) == 0)
        return &ax->origins[ax->last];
    if ((pos = json_object_get(ax->index, node)) != NULL) {
        ax->last = (size_t)json_integer_value(pos);
        return &ax->origins[ax->last];
    }
    if (ax->n == ax->cap) {
        size_t cap = ax->cap ? ax->cap * 2 : 8;
        struct origin_state *grown = realloc(ax->origins, cap * sizeof(*grown));

        if (grown == NULL)
            return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
        ax->origins = grown;
        ax->cap = cap;
    }
    o = &ax->origins[ax->n];
    memset(o, 0, sizeof(*o));
    o->node = node;
    if (store_origin_state(ax->db, node, &o->alias, &o->held_max, &o->contiguous, e) < 0)
        return NULL;
    o->contiguous_was = o->contiguous;
    if (json_object_set_new(ax->index, node, json_integer((json_int_t)ax->n)) < 0)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    ax->last = ax->n++;
    return o;
}

/* Is change seq of origin o in the log already? Only a seq at or below the highest held needs a look. */
static int origin_holds(struct apply_ctx *ax, const struct origin_state *o, int64_t seq, struct err *e)
{
    return seq > o->held_max ? 0 : store_change_exists(ax->db, o->alias, seq, e);
}

/* Change seq of origin o went into the log: move its contiguous seq on, over any changes already held
 * beyond (a gap being filled), as store_change_append() does for a single change. */
static int origin_took(struct apply_ctx *ax, struct origin_state *o, int64_t seq, struct err *e)
{
    int64_t held = o->held_max;
    int found;

    if (seq > o->held_max)
        o->held_max = seq;
    if (seq != o->contiguous + 1)
        return 0;
    o->contiguous = seq;
    while (held > o->contiguous) {
        if ((found = store_change_exists(ax->db, o->alias, o->contiguous + 1, e)) < 0)
            return -1;
        if (!found)
            break;
        o->contiguous++;
    }
    return 0;
}

/* Write back the contiguous seqs that moved (the version vector), inside the batch's transaction. */
static int origins_save(struct apply_ctx *ax, struct err *e)
{
    size_t i;

    for (i = 0; i < ax->n; i++)
        if (ax->origins[i].contiguous != ax->origins[i].contiguous_was
            && store_origin_set_contiguous(ax->db, ax->origins[i].alias, ax->origins[i].contiguous, e) < 0)
            return -1;
    return 0;
}

/* Apply one change that is not yet in the log (origin alias given). */
static int apply_change(struct db *db, const struct batch_change *c, int64_t alias, struct sync_report *r,
                        struct err *e)
{
    const char *origin = c->origin, *tbl = c->tbl, *row_id = c->row_id, *field;
    int64_t hlc = c->hlc;
    json_t *fields = c->fields, *base = c->base, *stamps = NULL, *cur, *v, *state = NULL;
    json_t *seen = NULL;
    const struct sync_table *t = table_find(tbl);
    int64_t cur_hlc;
    const json_t *my_base;
    const char *cur_origin;
    int rc = -1, changed = 0;

    /* (the table checked the fields when the batch was read: change_parse_objects) */
    if ((rc = store_row_has_changes(db, tbl, row_id, e)) <= 0) {
        /* the row's first change here (a new record, the common case): each of its fields wins as it
         * stands and nothing can conflict, so the row's state is the change itself, stored as it is */
        if (rc < 0 || store_change_insert(db, alias, c->seq, tbl, row_id, hlc, c->fields_text, c->base_text, e) < 0)
            return -1;
        r->applied++;
        if (t == NULL || json_object_get(fields, t->required_field) == NULL)
            return 0;
        if (t->apply_first && c->member_text && json_is_object(json_object_get(fields, t->text_member)))
            return t->apply_first(db, row_id, fields, c->member_text, c->member_len, now_ms(), e);
        return t->apply(db, row_id, fields, now_ms(), e);
    }
    rc = -1;
    if ((stamps = changelog_stamps_seen(db, tbl, row_id, &seen, e)) == NULL)
        return -1;
    /* the fields and base go into the log as the origin wrote them (checked by batch_decode) */
    if (store_change_insert(db, alias, c->seq, tbl, row_id, hlc, c->fields_text, c->base_text, e) < 0)
        goto done;
    r->applied++;
    json_object_foreach(fields, field, v) {
        cur = json_object_get(stamps, field);
        my_base = json_object_get(base, field);
        if (cur == NULL) {
            json_object_set_new(stamps, field, json_pack("[I,s,O,O]", (json_int_t)hlc, origin,
                                                         my_base ? my_base : json_null(), v));
            changed = 1;
            continue;
        }
        cur_hlc = json_integer_value(json_array_get(cur, 0));
        cur_origin = json_string_value(json_array_get(cur, 1));
        if (stamp_after(hlc, origin, cur_hlc, cur_origin)) {
            /* the current value is lost unseen only if no change (this one or any other) replaced it
             * knowingly */
            if (!base_names(my_base, cur_hlc, cur_origin) && !changelog_seen(seen, field, cur_hlc, cur_origin)) {
                /* written without seeing the current value: concurrent */
                if (!json_equal(v, json_array_get(cur, 3))) {
                    if (record_conflict(db, tbl, row_id, field, json_array_get(cur, 3), cur_hlc, cur_origin, v, hlc,
                                        origin, e) < 0)
                        goto done;
                    r->conflicts++;
                }
            } else if (store_conflicts_resolve_field(db, tbl, row_id, field, now_ms(), "superseded", e) < 0) {
                /* written after seeing the current value: a later decision, which settles open conflicts */
                goto done;
            }
            json_object_set_new(stamps, field, json_pack("[I,s,O,O]", (json_int_t)hlc, origin,
                                                         my_base ? my_base : json_null(), v));
            changed = 1;
        } else if (!base_names(json_array_get(cur, 2), hlc, origin) && !changelog_seen(seen, field, hlc, origin)
                   && !json_equal(v, json_array_get(cur, 3))) {
            /* the current value wins, and was written without seeing this one: keep this one for review */
            if (record_conflict(db, tbl, row_id, field, v, hlc, origin, json_array_get(cur, 3), cur_hlc,
                                json_string_value(json_array_get(cur, 1)), e) < 0)
                goto done;
            r->conflicts++;
        }
    }
    /* store the whole winning state: correct whatever order changes arrived in (an update may arrive
     * before the record's creation from another node; the row appears once it has its required field) */
    if (t && changed && json_object_get(stamps, t->required_field)) {
        state = json_object();
        json_object_foreach(stamps, field, cur)
            json_object_set(state, field, json_array_get(cur, 3));
        if (t->apply(db, row_id, state, now_ms(), e) < 0)
            goto done;
    }
    rc = 0;
done:
    json_decref(stamps);
    json_decref(seen);
    json_decref(state);
    return rc;
}

/* ---- settings ---- */

#define SETTING_CLOCK_AHEAD "sync_max_clock_ahead_hours"

/* The node's max_clock_ahead_hours (meta; the default when never set). */
static int clock_ahead_hours(struct db *db, int64_t *hours, struct err *e)
{
    char v[32];
    int found = store_meta_get(db, SETTING_CLOCK_AHEAD, v, sizeof(v), e);

    if (found < 0)
        return -1;
    *hours = found ? strtoll(v, NULL, 10) : SYNC_CLOCK_AHEAD_HOURS_DEFAULT;
    if (*hours < 1 || *hours > SYNC_CLOCK_AHEAD_HOURS_MAX)
        *hours = SYNC_CLOCK_AHEAD_HOURS_DEFAULT;
    return 0;
}

json_t *sync_settings_get(struct db *db, struct err *e)
{
    int64_t hours;

    if (clock_ahead_hours(db, &hours, e) < 0)
        return NULL;
    return json_pack("{s:I}", "max_clock_ahead_hours", (json_int_t)hours);
}

json_t *sync_settings_set(struct db *db, const struct caller *who, const json_t *in, struct err *e)
{
    const json_t *v = json_object_get(in, "max_clock_ahead_hours");
    const char *key;
    json_t *x;
    char text[32];

    if (!json_is_object(in)) {
        err_set(e, ERR_INVALID, "invalid_json", "the settings must be a JSON object");
        return NULL;
    }
    json_object_foreach((json_t *)in, key, x)
        if (strcmp(key, "max_clock_ahead_hours") != 0) {
            err_set_field(e, key, ERR_INVALID, "unknown_field", "'%.40s' is not a sync setting", key);
            return NULL;
        }
    if (v == NULL) {
        err_set_field(e, "max_clock_ahead_hours", ERR_INVALID, "missing_field", "max_clock_ahead_hours is required");
        return NULL;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > SYNC_CLOCK_AHEAD_HOURS_MAX) {
        err_set_field(e, "max_clock_ahead_hours", ERR_INVALID, "invalid_field",
                      "max_clock_ahead_hours must be a whole number of hours from 1 to %d", SYNC_CLOCK_AHEAD_HOURS_MAX);
        return NULL;
    }
    snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(v));
    if (db_begin_write(db, e) < 0)
        return NULL;
    if (store_meta_set(db, SETTING_CLOCK_AHEAD, text, e) < 0
        || audit_record(db, who, "sync.settings", "node", NULL, NULL, "ok", e) < 0 || db_commit(db, e) < 0) {
        db_rollback(db);
        return NULL;
    }
    return sync_settings_get(db, e);
}

int sync_record_run_request(struct db *db, const struct caller *who, struct err *e)
{
    if (db_begin_write(db, e) < 0)
        return -1;
    if (audit_record(db, who, "sync.run", "node", NULL, NULL, "ok", e) < 0 || db_commit(db, e) < 0) {
        db_rollback(db);
        return -1;
    }
    return 0;
}

void sync_report_add(struct sync_report *to, const struct sync_report *r)
{
    to->received += r->received;
    to->applied += r->applied;
    to->duplicates += r->duplicates;
    to->conflicts += r->conflicts;
    to->quarantined += r->quarantined;
}

/* Apply a decoded batch in one transaction. For a pulled batch (pull_peer set) the cursors are saved in
 * the same transaction: the pull cursor moves on with the data it covers, and what the peer holds (its
 * vector, carried by the batch) need not be pushed to it. */
static int batch_apply_decoded(struct db *db, struct batch *b, const char *from_node, const char *pull_peer,
                               struct sync_report *r, struct err *e)
{
    struct apply_ctx ax;
    struct origin_state *o;
    int64_t limit, hours, max_hlc = 0, own_next;
    char seen[32], self[37];
    size_t i;
    int exists, found;

    memset(r, 0, sizeof(*r));
    memset(&ax, 0, sizeof(ax));
    ax.db = db;
    if ((ax.index = json_object()) == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    /* A pulled batch commits without waiting for the disk (WAL, synchronous=NORMAL): a power cut may
     * take back the last batches, but never half of one, and their cursor goes back with them, so they
     * are pulled again from the peer, which still holds them. A local write committed after them makes
     * them durable with it. A pushed batch is acknowledged to its sender, so it waits for the disk. */
    if ((pull_peer ? db_begin_write_relaxed(db, e) : db_begin_write(db, e)) < 0) {
        apply_ctx_free(&ax);
        return -1;
    }
    patients_apply_begin();
    if (changelog_node_id(db, self, e) < 0 || clock_ahead_hours(db, &hours, e) < 0)
        goto fail;
    limit = now_ms() + hours * 3600 * 1000;
    {
        json_t *mine = sync_vector(db, e);

        if (mine == NULL)
            goto fail;
        own_next = json_integer_value(json_object_get(mine, self)) + 1;
        json_decref(mine);
    }
    for (i = 0; i < b->n; i++) {
        const struct batch_change *c = batch_change_get(b, i, e);

        if (c == NULL)
            goto fail;
        r->received++;
        if ((o = origin_find(&ax, c->origin, e)) == NULL || (exists = origin_holds(&ax, o, c->seq, e)) < 0)
            goto fail;
        if (exists) {
            r->duplicates++;
            continue;
        }
        /* this node's own changes come back only after a restore from an old backup (docs/operations.md),
         * and then right after the last one it holds; one that would leave a gap in its own log is forged,
         * and would stop its later writes from ever being passed on */
        if (strcmp(c->origin, self) == 0) {
            if (c->seq != own_next) {
                err_set(e, ERR_INVALID, "foreign_own_change",
                        "the batch holds change %lld of this node, which holds only up to %lld", (long long)c->seq,
                        (long long)(own_next - 1));
                goto fail;
            }
            own_next++;
        }
        if (hlc_ms(c->hlc) > limit) {
            /* a clock far ahead would win every merge for ever: keep it apart for a person to look at */
            if (store_quarantine_insert(db, c->origin, c->seq, c->tbl, c->row_id, c->hlc, c->fields_text,
                                        c->base_text, from_node, "clock_ahead", now_ms(), e) < 0)
                goto fail;
            r->quarantined++;
            continue;
        }
        if (apply_change(db, c, o->alias, r, e) < 0 || origin_took(&ax, o, c->seq, e) < 0)
            goto fail;
        if (c->hlc > max_hlc)
            max_hlc = c->hlc;
    }
    batch_changes_done(b);
    if (patients_apply_end(db, e) < 0 || origins_save(&ax, e) < 0)
        goto fail;
    if (max_hlc) {
        /* later local writes must be stamped after everything seen, even across a restart */
        hlc_observe(max_hlc);
        found = store_meta_get(db, "hlc_seen", seen, sizeof(seen), e);
        if (found < 0)
            goto fail;
        if (!found || strtoll(seen, NULL, 10) < max_hlc) {
            snprintf(seen, sizeof(seen), "%lld", (long long)max_hlc);
            if (store_meta_set(db, "hlc_seen", seen, e) < 0)
                goto fail;
        }
    }
    if (pull_peer) {
        const json_t *vec = json_object_get(b->head, "vector");

        if (sync_cursor_save(db, pull_peer, "pull", json_object_get(b->head, "cursor"), e) < 0
            || (json_is_object(vec) && sync_cursor_save(db, pull_peer, "push", vec, e) < 0))
            goto fail;
    }
    apply_ctx_free(&ax);
    if (db_commit(db, e) < 0) {
        memset(r, 0, sizeof(*r));
        return -1;
    }
    return 0;
fail:
    db_rollback(db);
    patients_apply_abort();
    apply_ctx_free(&ax);
    memset(r, 0, sizeof(*r));
    return -1;
}

int sync_batch_apply(struct db *db, const void *data, size_t len, const char *from_node, struct sync_report *r,
                     json_t **cursor_out, int *has_more, struct err *e)
{
    struct batch b;

    memset(r, 0, sizeof(*r));
    if (cursor_out)
        *cursor_out = NULL;
    /* the request thread applies while a helper parses: a push is one batch, with no next one to
     * fetch meanwhile */
    if (batch_decode(data, len, &b, 1, e) < 0)
        return -1;
    if (batch_apply_decoded(db, &b, from_node, NULL, r, e) < 0) {
        batch_free(&b);
        return -1;
    }
    if (cursor_out)
        *cursor_out = json_incref(json_object_get(b.head, "cursor"));
    if (has_more)
        *has_more = json_is_true(json_object_get(b.head, "has_more"));
    batch_free(&b);
    return 0;
}

/* ---- sessions ---- */

/* Raise cursor entries to those of more (never lower). */
static void cursor_merge(json_t *cursor, const json_t *more)
{
    const char *origin;
    json_t *v;

    json_object_foreach((json_t *)more, origin, v)
        if (json_integer_value(v) > json_integer_value(json_object_get(cursor, origin)))
            json_object_set(cursor, origin, v);
}

/* Would more raise any entry of cursor? */
static int cursor_raises(const json_t *cursor, const json_t *more)
{
    const char *origin;
    json_t *v;

    json_object_foreach((json_t *)more, origin, v)
        if (json_integer_value(v) > json_integer_value(json_object_get(cursor, origin)))
            return 1;
    return 0;
}

/* One pull of a session: the batch fetched from the peer and decoded. With a transport that allows it,
 * the next pull runs on a thread of its own while this node applies the batch before it: the peer
 * builds, the network carries and this node decodes batch k+1 while batch k is applied. */
struct pull_job {
    const struct sync_transport *t;
    json_t *vector;             /* what this node holds: ask for what comes after */
    size_t max_bytes;
    struct buf raw;             /* the compressed batch as it came */
    struct batch b;
    struct err e;
    int rc;
    pthread_t thread;
    int running;
};

static void pull_job_run(struct pull_job *j)
{
    /* the batch this job brought last time, applied since: freeing tens of thousands of JSON values
     * takes a tenth of an apply, so it is done here, off the thread that applies */
    batch_free(&j->b);
    buf_reset(&j->raw);
    err_clear(&j->e);
    j->rc = j->t->pull(j->t->ctx, j->vector, j->max_bytes, &j->raw, &j->e);
    if (j->rc == 0)
        j->rc = batch_decode(j->raw.data, j->raw.len, &j->b, 0, &j->e);
}

static void *pull_job_thread(void *arg)
{
    pull_job_run(arg);
    return NULL;
}

/* Start a pull of what comes after vector (a copy is taken): on its own thread when the transport allows
 * it, else here and now. */
static int pull_job_start(struct pull_job *j, const json_t *vector, struct err *e)
{
    json_decref(j->vector);
    if ((j->vector = json_deep_copy(vector)) == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    if (j->t->concurrent && pthread_create(&j->thread, NULL, pull_job_thread, j) == 0) {
        j->running = 1;
        return 0;
    }
    pull_job_run(j);
    return 0;
}

/* Wait for a started pull: 0 with j->b decoded, or -1 with *e set from it. */
static int pull_job_finish(struct pull_job *j, struct err *e)
{
    if (j->running) {
        pthread_join(j->thread, NULL);
        j->running = 0;
    }
    if (j->rc < 0)
        *e = j->e;
    return j->rc;
}

static void pull_job_free(struct pull_job *j)
{
    if (j->running) {
        pthread_join(j->thread, NULL);
        j->running = 0;
    }
    batch_free(&j->b);
    buf_free(&j->raw);
    json_decref(j->vector);
    j->vector = NULL;
}

/* One push of a session, run like a pull: on its own thread while this node builds the next batch. */
struct push_job {
    const struct sync_transport *t;
    struct buf batch;
    json_t *after;              /* the peer's vector, when it sent one */
    struct err e;
    int rc;
    pthread_t thread;
    int running;
};

static void *push_job_thread(void *arg)
{
    struct push_job *j = arg;

    j->rc = j->t->push(j->t->ctx, j->batch.data, j->batch.len, &j->after, &j->e);
    return NULL;
}

static void push_job_start(struct push_job *j)
{
    j->after = NULL;
    err_clear(&j->e);
    if (j->t->concurrent && pthread_create(&j->thread, NULL, push_job_thread, j) == 0) {
        j->running = 1;
        return;
    }
    push_job_thread(j);
}

static int push_job_finish(struct push_job *j, struct err *e)
{
    if (j->running) {
        pthread_join(j->thread, NULL);
        j->running = 0;
    }
    if (j->rc < 0)
        *e = j->e;
    return j->rc;
}

static void push_job_free(struct push_job *j)
{
    push_job_finish(j, &j->e);
    json_decref(j->after);
    j->after = NULL;
    buf_free(&j->batch);
}

/* Pull until the peer has nothing more. What this node already holds without a gap (its own vector) need
 * not come again, whoever it came from. */
static int session_pull(struct db *db, const char *peer_id, const struct sync_transport *t, size_t max_bytes,
                        struct sync_summary *s, struct err *e)
{
    struct pull_job jobs[2], *cur = &jobs[0], *next = &jobs[1], *swap;
    struct sync_report r;
    json_t *cursor = NULL, *ahead = NULL;
    int has_more, rc = -1;
    size_t i;

    memset(jobs, 0, sizeof(jobs));
    for (i = 0; i < 2; i++) {
        jobs[i].t = t;
        jobs[i].max_bytes = max_bytes;
        buf_init(&jobs[i].raw, SYNC_MAX_COMPRESSED_BYTES * 2);
    }
    if ((cursor = sync_cursor_get(db, peer_id, "pull", e)) == NULL)
        goto done;
    {
        json_t *mine = sync_vector(db, e);

        if (mine == NULL)
            goto done;
        cursor_merge(cursor, mine);
        json_decref(mine);
    }
    if (pull_job_start(cur, cursor, e) < 0)
        goto done;
    for (;;) {
        if (pull_job_finish(cur, e) < 0)
            goto done;
        s->batches_in++;
        s->bytes_in += (int64_t)cur->raw.len;
        has_more = json_is_true(json_object_get(cur->b.head, "has_more"));
        if (has_more && t->concurrent) {
            /* ask for the next batch now, after what this one brings: it is not applied yet, but the
             * answer is only taken once it is (and thrown away if it fails) */
            json_decref(ahead);
            if ((ahead = json_deep_copy(cursor)) == NULL) {
                err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
                goto done;
            }
            cursor_merge(ahead, json_object_get(cur->b.head, "cursor"));
            if (pull_job_start(next, ahead, e) < 0)
                goto done;
        }
        /* the batch and the cursors it moves, in one transaction */
        if (batch_apply_decoded(db, &cur->b, peer_id, peer_id, &r, e) < 0)
            goto done;
        sync_report_add(&s->pulled, &r);
        cursor_merge(cursor, json_object_get(cur->b.head, "cursor"));
        if (!has_more)
            break;
        swap = cur;
        cur = next;
        next = swap;
        /* (a transport that cannot run beside the database asks only now, as the batch is applied) */
        if (!t->concurrent && pull_job_start(cur, cursor, e) < 0)
            goto done;
    }
    rc = 0;
done:
    for (i = 0; i < 2; i++)
        pull_job_free(&jobs[i]);
    json_decref(cursor);
    json_decref(ahead);
    return rc;
}

/* Push until this node has nothing more for the peer. */
static int session_push(struct db *db, const char *peer_id, const struct sync_transport *t, size_t max_bytes,
                        struct sync_summary *s, struct err *e)
{
    struct push_job job;
    struct buf built;
    json_t *cursor = NULL, *bcursor = NULL, *next_cursor = NULL;
    int n, next_n = 0, has_more, next_more = 0, rc = -1;

    memset(&job, 0, sizeof(job));
    job.t = t;
    buf_init(&job.batch, SYNC_MAX_COMPRESSED_BYTES * 2);
    buf_init(&built, SYNC_MAX_COMPRESSED_BYTES * 2);
    if ((cursor = sync_cursor_get(db, peer_id, "push", e)) == NULL)
        goto done;
    n = sync_batch_build(db, NULL, cursor, max_bytes, &job.batch, &has_more, &bcursor, e);
    for (;;) {
        if (n < 0)
            goto done;
        if (n == 0) {
            /* nothing to send, but remember how far the log was read (a transaction, and an fsync, only
             * when that moved) */
            if (cursor_raises(cursor, bcursor) && sync_cursor_save(db, peer_id, "push", bcursor, e) < 0)
                goto done;
            break;
        }
        push_job_start(&job);
        if (has_more && t->concurrent) {
            /* build the next batch while the peer takes this one; it is sent only if this one went */
            json_t *ahead = json_deep_copy(cursor);

            if (ahead == NULL) {
                err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
                goto done;
            }
            cursor_merge(ahead, bcursor);
            next_n = sync_batch_build(db, NULL, ahead, max_bytes, &built, &next_more, &next_cursor, e);
            json_decref(ahead);
        }
        if (push_job_finish(&job, e) < 0)
            goto done;
        s->pushed += n;
        s->batches_out++;
        s->bytes_out += (int64_t)job.batch.len;
        if (sync_cursor_save(db, peer_id, "push", bcursor, e) < 0
            || (job.after && sync_cursor_save(db, peer_id, "push", job.after, e) < 0))
            goto done;
        json_decref(job.after);
        job.after = NULL;
        cursor_merge(cursor, bcursor);
        json_decref(bcursor);
        bcursor = NULL;
        if (!has_more)
            break;
        if (t->concurrent) {
            struct buf swap = job.batch;

            job.batch = built;
            built = swap;
            n = next_n;
            has_more = next_more;
            bcursor = next_cursor;
            next_cursor = NULL;
        } else {
            n = sync_batch_build(db, NULL, cursor, max_bytes, &job.batch, &has_more, &bcursor, e);
        }
    }
    rc = 0;
done:
    push_job_free(&job);
    buf_free(&built);
    json_decref(cursor);
    json_decref(bcursor);
    json_decref(next_cursor);
    return rc;
}

void sync_summary_describe(const struct sync_summary *s, char *out, size_t n)
{
    snprintf(out, n,
             "pulled %lld (applied %lld, duplicates %lld, conflicts %lld, quarantined %lld), pushed %lld; "
             "batches in %lld, out %lld; bytes in %lld, out %lld",
             (long long)s->pulled.received, (long long)s->pulled.applied, (long long)s->pulled.duplicates,
             (long long)s->pulled.conflicts, (long long)s->pulled.quarantined, (long long)s->pushed,
             (long long)s->batches_in, (long long)s->batches_out, (long long)s->bytes_in, (long long)s->bytes_out);
}

int sync_with_peer(struct db *db, const char *peer_id, const struct sync_transport *t, size_t max_bytes,
                   struct sync_summary *s, struct err *e)
{
    int rc, was;

    memset(s, 0, sizeof(*s));
    if (max_bytes == 0)
        max_bytes = SYNC_DEFAULT_MAX_BYTES;
    if (store_sync_cache_kib(db, SYNC_APPLY_CACHE_KIB, &was, e) < 0)
        return -1;
    rc = session_pull(db, peer_id, t, max_bytes, s, e) < 0 || session_push(db, peer_id, t, max_bytes, s, e) < 0
             ? -1 : 0;
    if (was != SYNC_APPLY_CACHE_KIB)
        store_sync_cache_kib(db, was, NULL, NULL);
    return rc;
}

/* The identity a peer acts under in the audit log. */
static void sync_peer_caller(struct caller *c, const char *peer_id)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->username, sizeof(c->username), "peer:%.32s", peer_id);
    snprintf(c->address, sizeof(c->address), "peer");
}

int sync_serve_pull(struct db *db, const char *peer_id, const json_t *request, struct buf *out, struct err *e)
{
    const json_t *vector = json_object_get(request, "vector"), *max = json_object_get(request, "max_bytes");
    const char *origin;
    json_t *v;
    int has_more;

    if (vector && !json_is_object(vector))
        return err_set(e, ERR_INVALID, "invalid_vector", "vector must be an object {node id: seq}");
    json_object_foreach((json_t *)vector, origin, v)
        if (!id_valid(origin) || !json_is_integer(v) || json_integer_value(v) < 0)
            return err_set(e, ERR_INVALID, "invalid_vector", "vector must map node ids to whole numbers");
    if (max && (!json_is_integer(max) || json_integer_value(max) < 1))
        return err_set(e, ERR_INVALID, "invalid_max_bytes", "max_bytes must be a positive whole number");
    int n = sync_batch_build(db, peer_id, vector, max ? (size_t)json_integer_value(max) : SYNC_DEFAULT_MAX_BYTES,
                             out, &has_more, NULL, e);
    struct caller peer;

    if (n < 0)
        return -1;
    /* patient data leaves the node: one audit entry per batch, naming the peer */
    sync_peer_caller(&peer, peer_id);
    return audit_record(db, &peer, "sync.pull", "peer", peer_id, NULL, "ok", e);
}

json_t *sync_serve_push(struct db *db, const char *peer_id, const void *batch, size_t len, struct err *e)
{
    struct sync_report r;
    json_t *vector;
    int rc, was;

    struct caller peer;

    sync_peer_caller(&peer, peer_id);
    /* a batch of thousands of records touches more index pages than a request's usual cache holds: a
     * larger one while it is applied, back to the usual one after (SQLite frees the rest) */
    if (store_sync_cache_kib(db, SYNC_APPLY_CACHE_KIB, &was, e) < 0)
        return NULL;
    rc = sync_batch_apply(db, batch, len, peer_id, &r, NULL, NULL, e);
    if (was != SYNC_APPLY_CACHE_KIB)
        store_sync_cache_kib(db, was, NULL, NULL);
    if (rc < 0) {
        audit_record(db, &peer, "sync.push", "peer", peer_id, NULL, "failed", NULL);
        return NULL;
    }
    if (audit_record(db, &peer, "sync.push", "peer", peer_id, NULL, "ok", e) < 0 || (vector = sync_vector(db, e)) == NULL)
        return NULL;
    return json_pack("{s:o,s:I,s:I,s:I,s:I,s:I}", "vector", vector, "received", (json_int_t)r.received, "applied",
                     (json_int_t)r.applied, "duplicates", (json_int_t)r.duplicates, "conflicts",
                     (json_int_t)r.conflicts, "quarantined", (json_int_t)r.quarantined);
}

/* ---- status and conflicts ---- */

struct status_state {
    struct db *db;
    json_t *peers;
    json_t *vector;
    struct err *e;
    int failed;
};

static int status_peer(const char *id, const char *name, const char *url, int64_t last_attempt_at,
                       int64_t last_success_at, const char *last_error, void *ctx)
{
    struct status_state *s = ctx;
    char attempt[32], success[32];
    json_t *push = sync_cursor_get(s->db, id, "push", s->e), *v;
    const char *origin;
    int64_t pending = 0;

    if (push == NULL) {
        s->failed = 1;
        return 1;
    }
    /* changes this node holds beyond what the peer is known to have */
    json_object_foreach(s->vector, origin, v) {
        int64_t have = json_integer_value(json_object_get(push, origin));

        if (json_integer_value(v) > have)
            pending += json_integer_value(v) - have;
    }
    json_decref(push);
    format_time_ms(last_attempt_at, attempt, sizeof(attempt));
    format_time_ms(last_success_at, success, sizeof(success));
    json_array_append_new(s->peers, json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:s?,s:I}", "id", id, "name", name, "url", url,
                                              "last_attempt_at", last_attempt_at ? attempt : NULL, "last_success_at",
                                              last_success_at ? success : NULL, "last_error", last_error, "pending",
                                              (json_int_t)pending));
    return 0;
}

json_t *sync_status(struct db *db, struct err *e)
{
    struct status_state s = { db, json_array(), NULL, e, 0 };
    int64_t conflicts, quarantined, changes, hours;
    char node[37];
    json_t *out = NULL;

    if (s.peers == NULL || db_begin_read(db, e) < 0) {
        json_decref(s.peers);
        return NULL;
    }
    if (changelog_node_id(db, node, e) < 0 || (s.vector = sync_vector(db, e)) == NULL
        || store_peers_status(db, status_peer, &s, e) < 0 || s.failed
        || store_conflicts_count_open(db, &conflicts, e) < 0 || store_quarantine_count(db, &quarantined, e) < 0
        || store_change_count(db, &changes, e) < 0)
        goto done;
    if (clock_ahead_hours(db, &hours, e) < 0)
        goto done;
    out = json_pack("{s:s,s:O,s:O,s:I,s:I,s:I,s:I}", "node_id", node, "vector", s.vector, "peers", s.peers,
                    "conflicts_open", (json_int_t)conflicts, "quarantined", (json_int_t)quarantined, "changes",
                    (json_int_t)changes, "max_clock_ahead_hours", (json_int_t)hours);
done:
    db_rollback(db);
    json_decref(s.peers);
    json_decref(s.vector);
    return out;
}

static json_t *conflict_json(const struct conflict_row *c)
{
    char at[32];
    json_t *v = c->value ? json_loads(c->value, JSON_DECODE_ANY, NULL) : NULL;
    json_t *w = c->winner_value ? json_loads(c->winner_value, JSON_DECODE_ANY, NULL) : NULL;

    format_time_ms(c->detected_at, at, sizeof(at));
    return json_pack("{s:s,s:s,s:s,s:s,s:o,s:I,s:s,s:o,s:I,s:s,s:s}", "id", c->id, "table", c->tbl, "row_id",
                     c->row_id, "field", c->field, "value", v ? v : json_null(), "hlc", (json_int_t)c->hlc, "origin",
                     c->origin, "current_value", w ? w : json_null(), "current_hlc", (json_int_t)c->winner_hlc,
                     "current_origin", c->winner_origin, "detected_at", at);
}

static int conflict_collect(const struct conflict_row *c, void *ctx)
{
    json_t *o = conflict_json(c);

    return o && json_array_append_new(ctx, o) == 0 ? 0 : 1;
}

json_t *sync_conflicts(struct db *db, const char *cursor, int64_t limit, struct err *e)
{
    json_t *items = json_array();
    const char *last;

    if (limit < 1 || limit > 500)
        limit = 100;
    if (cursor && !id_valid(cursor))
        return err_set(e, ERR_INVALID, "invalid_cursor", "the cursor is not one this server gave out"), NULL;
    if (items == NULL || store_conflicts_open(db, cursor, limit + 1, conflict_collect, items, e) < 0) {
        json_decref(items);
        return NULL;
    }
    if ((int64_t)json_array_size(items) > limit) {
        json_array_remove(items, (size_t)limit);
        last = json_string_value(json_object_get(json_array_get(items, (size_t)limit - 1), "id"));
        return json_pack("{s:o,s:s}", "items", items, "next", last);
    }
    return json_pack("{s:o,s:n}", "items", items, "next");
}

static int conflict_keep(const struct conflict_row *c, void *ctx)
{
    json_t **out = ctx;

    *out = json_pack("{s:s,s:s,s:s,s:s,s:s?,s:b}", "id", c->id, "tbl", c->tbl, "row_id", c->row_id, "field", c->field,
                     "value", c->value, "resolved", c->resolved_at != 0);
    return 1;
}

json_t *sync_conflict_resolve(struct db *db, const struct caller *who, const char *id, const char *choose,
                              struct err *e)
{
    const struct sync_table *t;
    json_t *c = NULL, *stamps = NULL, *value = NULL, *fields = NULL, *state = NULL, *cur, *out;
    const char *tbl, *row_id, *field, *f;
    int other;

    if (choose == NULL || (strcmp(choose, "current") && strcmp(choose, "other")))
        return err_set(e, ERR_INVALID, "invalid_choice", "choose must be \"current\" or \"other\""), NULL;
    other = strcmp(choose, "other") == 0;
    if (!id_valid(id))
        return err_set(e, ERR_NOT_FOUND, "conflict_not_found", "no conflict with this id"), NULL;
    if (db_begin_write(db, e) < 0)
        return NULL;
    if (store_conflict_get(db, id, conflict_keep, &c, e) < 0)
        goto fail;
    if (c == NULL) {
        err_set(e, ERR_NOT_FOUND, "conflict_not_found", "no conflict with this id");
        goto fail;
    }
    if (json_is_true(json_object_get(c, "resolved"))) {
        err_set(e, ERR_CONFLICT, "already_resolved", "this conflict was already resolved");
        goto fail;
    }
    tbl = json_string_value(json_object_get(c, "tbl"));
    row_id = json_string_value(json_object_get(c, "row_id"));
    field = json_string_value(json_object_get(c, "field"));
    t = table_find(tbl);
    if (t == NULL) {
        err_set(e, ERR_CONFLICT, "unknown_table", "this node cannot edit records of type '%s'", tbl);
        goto fail;
    }
    if ((stamps = changelog_stamps(db, tbl, row_id, e)) == NULL)
        goto fail;
    /* the decision is written as a new change of the field, after everything seen, so it wins everywhere
     * and every node that receives it settles its own copy of the conflict */
    value = other ? json_loads(json_string_value(json_object_get(c, "value")), JSON_DECODE_ANY, NULL)
                  : json_incref(json_array_get(json_object_get(stamps, field), 3));
    fields = json_object();
    json_object_set(fields, field, value ? value : json_null());
    if (changelog_record(db, NULL, tbl, row_id, fields, 0, NULL, e) < 0)
        goto fail;
    json_decref(stamps);
    if ((stamps = changelog_stamps(db, tbl, row_id, e)) == NULL)
        goto fail;
    state = json_object();
    json_object_foreach(stamps, f, cur)
        json_object_set(state, f, json_array_get(cur, 3));
    if ((json_object_get(state, t->required_field) && t->apply(db, row_id, state, now_ms(), e) < 0)
        || store_conflicts_resolve_field(db, tbl, row_id, field, now_ms(), other ? "took_other" : "kept_current", e) < 0
        || audit_record(db, who, "conflict.resolve", tbl, row_id, NULL, "ok", e) < 0
        || db_commit(db, e) < 0)
        goto fail;
    /* field points into c: build the answer before letting c go */
    out = json_pack("{s:s,s:s,s:s}", "id", id, "resolution", other ? "took_other" : "kept_current", "field", field);
    json_decref(stamps);
    json_decref(fields);
    json_decref(state);
    json_decref(value);
    json_decref(c);
    if (out == NULL)
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    return out;
fail:
    db_rollback(db);
    json_decref(stamps);
    json_decref(fields);
    json_decref(state);
    json_decref(value);
    json_decref(c);
    return NULL;
}
