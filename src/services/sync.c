/* sync.c — replication: building and applying change batches, the field-level merge with conflicts and
 * quarantine, and sync sessions with peers. The protocol and rules are in sync.h and docs/sync.md. */
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "core/hlc.h"
#include "core/id.h"
#include "core/log.h"
#include "core/util.h"
#include "services/audit.h"
#include "services/changelog.h"
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
    /* are these field names and values acceptable for the table? */
    int (*check)(const json_t *fields, struct err *e);
};

static const struct sync_table sync_tables[] = {
    /* sites first: a hub must know the site of the patients it receives (names are not health data,
     * so every peer gets every site) */
    { SITE_TABLE, "name", sites_apply, NULL, sites_check_fields },
    { PATIENT_TABLE, "site_id", patients_store_fields, patients_site_of, patients_check_fields },
    /* form definitions are not health data: every peer gets them, like sites */
    { FORM_TABLE, "definition", forms_apply, NULL, forms_check_fields },
    { ENCOUNTER_TABLE, "patient_id", encounters_apply, encounters_site_of, encounters_check_fields },
    { ENTRY_TABLE, "encounter_id", entries_apply, entries_site_of, entries_check_fields },
};

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
    char site[ID_LEN];
    size_t before = s->json->len;
    int found;

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
    /* ids, table names and origins are plain ASCII checked on the way in; fields and base are stored JSON */
    if (buf_printf(s->json, "%s[\"%s\",%lld,\"%s\",\"%s\",%lld,%s,%s]", s->count ? "," : "", origin, (long long)seq,
                   tbl, row_id, (long long)hlc, fields, base) < 0) {
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

/* Compress src into out (replacing its content). */
static int batch_compress(const char *src, size_t n, struct buf *out, struct err *e)
{
    size_t bound = ZSTD_compressBound(n), z;

    buf_reset(out);
    if (buf_append(out, NULL, 0) < 0 || out->max < bound)
        return err_set(e, ERR_TOO_LARGE, "batch_too_large", "the batch does not fit the output buffer");
    {
        char *tmp = malloc(bound);

        if (tmp == NULL)
            return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        {
            /* with a content checksum, so a corrupted batch is refused rather than half-read */
            ZSTD_CCtx *cx = ZSTD_createCCtx();

            z = cx == NULL ? (size_t)-1
                           : (ZSTD_isError(ZSTD_CCtx_setParameter(cx, ZSTD_c_compressionLevel, 3))
                              || ZSTD_isError(ZSTD_CCtx_setParameter(cx, ZSTD_c_checksumFlag, 1)))
                                 ? (size_t)-1
                                 : ZSTD_compress2(cx, tmp, bound, src, n);
            ZSTD_freeCCtx(cx);
        }
        if (ZSTD_isError(z) || buf_append(out, tmp, z) < 0) {
            free(tmp);
            return err_set(e, ERR_INTERNAL, "compress_failed", "could not compress the batch");
        }
        free(tmp);
    }
    return 0;
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

/* Decompress and parse a batch, checking every part of its shape. */
/* Does a zstd frame declare a content checksum? RFC 8878: after the 4-byte magic number, bit 2 of the
 * frame header descriptor. (zstd's own header parser is in its experimental, unstable API.) */
static int frame_has_checksum(const void *data, size_t len)
{
    const unsigned char *p = data;

    return len > 4 && p[0] == 0x28 && p[1] == 0xB5 && p[2] == 0x2F && p[3] == 0xFD && (p[4] & 0x04);
}

static json_t *batch_decode(const void *data, size_t len, struct err *e)
{
    unsigned long long size;
    const char *fmt, *key;
    json_error_t je;
    json_t *b, *changes, *c, *v;
    char *raw;
    size_t got, i;

    if (len > SYNC_MAX_COMPRESSED_BYTES)
        return err_set(e, ERR_TOO_LARGE, "batch_too_large", "the batch is larger than %u bytes",
                       SYNC_MAX_COMPRESSED_BYTES), NULL;
    size = ZSTD_getFrameContentSize(data, len);
    if (size == ZSTD_CONTENTSIZE_ERROR)
        return err_set(e, ERR_INVALID, "invalid_batch", "the batch is not a zstd frame"), NULL;
    if (!frame_has_checksum(data, len) || ZSTD_findFrameCompressedSize(data, len) != len)
        return err_set(e, ERR_INVALID, "invalid_batch", "the batch is not one checksummed zstd frame"), NULL;
    /* the decompressed size must be declared and bounded, so a small bomb cannot blow up memory */
    if (size == ZSTD_CONTENTSIZE_UNKNOWN || size > SYNC_MAX_BATCH_BYTES)
        return err_set(e, ERR_TOO_LARGE, "batch_too_large", "the batch would decompress beyond %u bytes",
                       SYNC_MAX_BATCH_BYTES), NULL;
    raw = malloc((size_t)size + 1);
    if (raw == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory"), NULL;
    got = ZSTD_decompress(raw, (size_t)size, data, len);
    if (ZSTD_isError(got) || got != size) {
        free(raw);
        return err_set(e, ERR_INVALID, "invalid_batch", "the batch is truncated or corrupted"), NULL;
    }
    b = json_loadb(raw, got, JSON_REJECT_DUPLICATES, &je);
    free(raw);
    if (b == NULL)
        return err_set(e, ERR_INVALID, "invalid_batch", "the batch is not valid JSON: %s", je.text), NULL;
    fmt = json_string_value(json_object_get(b, "format"));
    changes = json_object_get(b, "changes");
    if (fmt == NULL || strcmp(fmt, SYNC_BATCH_FORMAT) != 0) {
        if (json_is_object(b) && fmt != NULL)
            err_set(e, ERR_INVALID, "unsupported_batch", "the batch format is %.32s, not %s; upgrade sanad", fmt,
                    SYNC_BATCH_FORMAT);
        else
            err_set(e, ERR_INVALID, "invalid_batch", "the batch is not a %s object", SYNC_BATCH_FORMAT);
        goto bad;
    }
    if (!id_valid(json_string_value(json_object_get(b, "node"))) || !json_is_boolean(json_object_get(b, "has_more"))
        || !json_is_object(json_object_get(b, "cursor")) || !json_is_array(changes)) {
        err_set(e, ERR_INVALID, "invalid_batch", "the batch lacks node, has_more, cursor or changes");
        goto bad;
    }
    json_object_foreach(json_object_get(b, "cursor"), key, v) {
        if (!id_valid(key) || !json_is_integer(v) || json_integer_value(v) < 0) {
            err_set(e, ERR_INVALID, "invalid_batch", "the batch cursor is malformed");
            goto bad;
        }
    }
    json_array_foreach(changes, i, c) {
        json_t *fields = json_array_get(c, 5), *base = json_array_get(c, 6);

        if (!json_is_array(c) || json_array_size(c) != 7 || !id_valid(json_string_value(json_array_get(c, 0)))
            || !json_is_integer(json_array_get(c, 1)) || json_integer_value(json_array_get(c, 1)) < 1
            || json_integer_value(json_array_get(c, 1)) > ((json_int_t)1 << 53)
            || !plain_name(json_string_value(json_array_get(c, 2)), 32)
            || !plain_name(json_string_value(json_array_get(c, 3)), 64)
            || !json_is_integer(json_array_get(c, 4)) || json_integer_value(json_array_get(c, 4)) < 1
            || !json_is_object(fields) || json_object_size(fields) == 0 || !json_is_object(base)) {
            err_set(e, ERR_INVALID, "invalid_batch", "change %zu of the batch is malformed", i);
            goto bad;
        }
        json_object_foreach(fields, key, v) {
            if (strlen(key) > 80) {
                err_set(e, ERR_INVALID, "invalid_batch", "change %zu has an over-long field name", i);
                goto bad;
            }
        }
        json_object_foreach(base, key, v) {
            if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_integer(json_array_get(v, 0))
                || !id_valid(json_string_value(json_array_get(v, 1))) || json_object_get(fields, key) == NULL) {
                err_set(e, ERR_INVALID, "invalid_batch", "change %zu has a malformed base", i);
                goto bad;
            }
        }
    }
    return b;
bad:
    json_decref(b);
    return NULL;
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

/* Apply one change that is not yet in the log. */
static int apply_change(struct db *db, const json_t *c, struct sync_report *r, struct err *e)
{
    const char *origin = json_string_value(json_array_get(c, 0)), *tbl = json_string_value(json_array_get(c, 2));
    const char *row_id = json_string_value(json_array_get(c, 3)), *field;
    int64_t seq = json_integer_value(json_array_get(c, 1)), hlc = json_integer_value(json_array_get(c, 4));
    json_t *fields = json_array_get(c, 5), *base = json_array_get(c, 6), *stamps = NULL, *cur, *v, *state = NULL;
    json_t *seen = NULL;
    const struct sync_table *t = table_find(tbl);
    char *ftext = NULL, *btext = NULL;
    int64_t alias, cur_hlc;
    const json_t *my_base;
    const char *cur_origin;
    int rc = -1, changed = 0;

    if (t && t->check && t->check(fields, e) < 0)
        return -1;
    if (store_origin_alias(db, origin, &alias, e) < 0)
        return -1;
    if ((stamps = changelog_stamps_seen(db, tbl, row_id, &seen, e)) == NULL)
        return -1;
    ftext = json_dumps(fields, JSON_COMPACT);
    btext = json_dumps(base, JSON_COMPACT);
    if (ftext == NULL || btext == NULL) {
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        goto done;
    }
    if (store_change_append(db, alias, seq, tbl, row_id, hlc, ftext, btext, e) < 0)
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
    free(ftext);
    free(btext);
    return rc;
}

static void cursor_merge(json_t *cursor, const json_t *more);

/* sync_batch_apply(), and for a pulled batch (pull_peer set) the cursors saved in the same transaction:
 * the pull cursor moves on with the data it covers, and what the peer holds (its vector, carried by the
 * batch) need not be pushed to it. *vector_out (may be NULL) receives the sender's vector. */
static int batch_apply(struct db *db, const void *data, size_t len, const char *from_node, const char *pull_peer,
                       struct sync_report *r, json_t **cursor_out, int *has_more, json_t **vector_out,
                       struct err *e);

int sync_batch_apply(struct db *db, const void *data, size_t len, const char *from_node, struct sync_report *r,
                     json_t **cursor_out, int *has_more, struct err *e)
{
    return batch_apply(db, data, len, from_node, NULL, r, cursor_out, has_more, NULL, e);
}

static int batch_apply(struct db *db, const void *data, size_t len, const char *from_node, const char *pull_peer,
                       struct sync_report *r, json_t **cursor_out, int *has_more, json_t **vector_out,
                       struct err *e)
{
    json_t *b = batch_decode(data, len, e), *c;
    int64_t alias, limit = now_ms() + SYNC_FUTURE_LIMIT_MS, max_hlc = 0, own_next;
    char seen[32], *ftext, *btext, self[37];
    size_t i;
    int exists, found;

    memset(r, 0, sizeof(*r));
    if (cursor_out)
        *cursor_out = NULL;
    if (vector_out)
        *vector_out = NULL;
    if (b == NULL)
        return -1;
    if (db_begin_write(db, e) < 0)
        goto fail_free;
    if (changelog_node_id(db, self, e) < 0)
        goto fail;
    {
        json_t *mine = sync_vector(db, e);

        if (mine == NULL)
            goto fail;
        own_next = json_integer_value(json_object_get(mine, self)) + 1;
        json_decref(mine);
    }
    json_array_foreach(json_object_get(b, "changes"), i, c) {
        const char *origin = json_string_value(json_array_get(c, 0));
        int64_t seq = json_integer_value(json_array_get(c, 1)), hlc = json_integer_value(json_array_get(c, 4));

        r->received++;
        if (store_origin_alias(db, origin, &alias, e) < 0 || (exists = store_change_exists(db, alias, seq, e)) < 0)
            goto fail;
        if (exists) {
            r->duplicates++;
            continue;
        }
        /* this node's own changes come back only after a restore from an old backup (docs/operations.md),
         * and then right after the last one it holds; one that would leave a gap in its own log is forged,
         * and would stop its later writes from ever being passed on */
        if (strcmp(origin, self) == 0) {
            if (seq != own_next) {
                err_set(e, ERR_INVALID, "foreign_own_change",
                        "the batch holds change %lld of this node, which holds only up to %lld", (long long)seq,
                        (long long)(own_next - 1));
                goto fail;
            }
            own_next++;
        }
        if (hlc_ms(hlc) > limit) {
            /* a clock far ahead would win every merge for ever: keep it apart for a person to look at */
            ftext = json_dumps(json_array_get(c, 5), JSON_COMPACT);
            btext = json_dumps(json_array_get(c, 6), JSON_COMPACT);
            found = ftext && btext
                    ? store_quarantine_insert(db, origin, seq, json_string_value(json_array_get(c, 2)),
                                              json_string_value(json_array_get(c, 3)), hlc, ftext, btext, from_node,
                                              "clock_ahead", now_ms(), e)
                    : err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
            free(ftext);
            free(btext);
            if (found < 0)
                goto fail;
            r->quarantined++;
            continue;
        }
        if (apply_change(db, c, r, e) < 0)
            goto fail;
        if (hlc > max_hlc)
            max_hlc = hlc;
    }
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
        const json_t *vec = json_object_get(b, "vector");

        if (sync_cursor_save(db, pull_peer, "pull", json_object_get(b, "cursor"), e) < 0
            || (json_is_object(vec) && sync_cursor_save(db, pull_peer, "push", vec, e) < 0))
            goto fail;
    }
    if (db_commit(db, e) < 0)
        goto fail_free;
    if (cursor_out)
        *cursor_out = json_incref(json_object_get(b, "cursor"));
    if (has_more)
        *has_more = json_is_true(json_object_get(b, "has_more"));
    if (vector_out && json_is_object(json_object_get(b, "vector")))
        *vector_out = json_incref(json_object_get(b, "vector"));
    json_decref(b);
    return 0;
fail:
    db_rollback(db);
fail_free:
    json_decref(b);
    memset(r, 0, sizeof(*r));
    return -1;
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

int sync_with_peer(struct db *db, const char *peer_id, const struct sync_transport *t, size_t max_bytes,
                   struct sync_summary *s, struct err *e)
{
    struct sync_report r;
    struct buf batch;
    json_t *cursor = NULL, *bcursor = NULL;
    int has_more, n, rc = -1;

    memset(s, 0, sizeof(*s));
    buf_init(&batch, SYNC_MAX_COMPRESSED_BYTES * 2);
    if (max_bytes == 0)
        max_bytes = SYNC_DEFAULT_MAX_BYTES;
    /* pull until the peer has nothing more; what this node already holds without a gap (its own vector)
     * need not come again, whoever it came from */
    if ((cursor = sync_cursor_get(db, peer_id, "pull", e)) == NULL)
        goto done;
    {
        json_t *mine = sync_vector(db, e);

        if (mine == NULL)
            goto done;
        cursor_merge(cursor, mine);
        json_decref(mine);
    }
    do {
        buf_reset(&batch);
        if (t->pull(t->ctx, cursor, max_bytes, &batch, e) < 0)
            goto done;
        s->batches_in++;
        s->bytes_in += (int64_t)batch.len;
        if (batch_apply(db, batch.data, batch.len, peer_id, peer_id, &r, &bcursor, &has_more, NULL, e) < 0)
            goto done;
        s->pulled.received += r.received;
        s->pulled.applied += r.applied;
        s->pulled.duplicates += r.duplicates;
        s->pulled.conflicts += r.conflicts;
        s->pulled.quarantined += r.quarantined;
        /* batch_apply saved the cursors with the data */
        cursor_merge(cursor, bcursor);
        json_decref(bcursor);
        bcursor = NULL;
    } while (has_more);
    /* push until this node has nothing more for the peer */
    json_decref(cursor);
    if ((cursor = sync_cursor_get(db, peer_id, "push", e)) == NULL)
        goto done;
    for (;;) {
        json_t *after = NULL;

        n = sync_batch_build(db, NULL, cursor, max_bytes, &batch, &has_more, &bcursor, e);
        if (n < 0)
            goto done;
        if (n == 0) {
            /* nothing to send, but remember how far the log was read */
            if (sync_cursor_save(db, peer_id, "push", bcursor, e) < 0)
                goto done;
            break;
        }
        if (t->push(t->ctx, batch.data, batch.len, &after, e) < 0)
            goto done;
        s->pushed += n;
        s->batches_out++;
        s->bytes_out += (int64_t)batch.len;
        if (sync_cursor_save(db, peer_id, "push", bcursor, e) < 0
            || (after && sync_cursor_save(db, peer_id, "push", after, e) < 0)) {
            json_decref(after);
            goto done;
        }
        json_decref(after);
        cursor_merge(cursor, bcursor);
        json_decref(bcursor);
        bcursor = NULL;
        if (!has_more)
            break;
    }
    rc = 0;
done:
    json_decref(cursor);
    json_decref(bcursor);
    buf_free(&batch);
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

    struct caller peer;

    sync_peer_caller(&peer, peer_id);
    if (sync_batch_apply(db, batch, len, peer_id, &r, NULL, NULL, e) < 0) {
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
    int64_t conflicts, quarantined, changes;
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
    out = json_pack("{s:s,s:O,s:O,s:I,s:I,s:I}", "node_id", node, "vector", s.vector, "peers", s.peers,
                    "conflicts_open", (json_int_t)conflicts, "quarantined", (json_int_t)quarantined, "changes",
                    (json_int_t)changes);
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
