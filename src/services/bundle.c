/* bundle.c — sync batches carried by hand: signed, encrypted files (see bundle.h and docs/sync.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/crypto.h"
#include "core/util.h"
#include "services/audit.h"
#include "services/bundle.h"
#include "services/changelog.h"
#include "services/peers.h"
#include "store/peers.h"
#include "store/sync.h"

#define MAGIC_LEN (sizeof(BUNDLE_MAGIC) - 1)
#define CHUNK_MAX (SYNC_MAX_COMPRESSED_BYTES + CRYPTO_STREAM_ABYTES)
#define APPLY_CACHE_KIB (64 * 1024)     /* as for a pushed batch (sync.c) */

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static int invalid(struct err *e, const char *why)
{
    return err_set(e, ERR_INVALID, "invalid_bundle", "this is not a Sanad bundle, or it is damaged (%s)", why);
}

void bundle_head_free(struct bundle_head *h)
{
    json_decref(h->vector);
    memset(h, 0, sizeof(*h));
}

/* A version vector as a bundle carries it: {node id: seq >= 0}. */
static int vector_valid(const json_t *v)
{
    const char *k;
    json_t *seq;

    if (!json_is_object(v))
        return 0;
    json_object_foreach((json_t *)v, k, seq)
        if (!id_valid(k) || !json_is_integer(seq) || json_integer_value(seq) < 0)
            return 0;
    return 1;
}

int bundle_parse(const void *data, size_t len, struct bundle_head *h, struct err *e)
{
    const unsigned char *p = data, *end = p + len;
    const char *from, *to, *format;
    json_int_t created, batches, changes;
    json_t *head = NULL, *vector = NULL;
    json_error_t je;
    uint32_t n;

    memset(h, 0, sizeof(*h));
    if (len > BUNDLE_MAX_BYTES)
        return err_set(e, ERR_TOO_LARGE, "bundle_too_large", "the bundle is larger than %zu bytes", BUNDLE_MAX_BYTES);
    if (len < MAGIC_LEN + 4 || memcmp(p, BUNDLE_MAGIC, MAGIC_LEN) != 0)
        return invalid(e, "it does not start as a bundle does");
    p += MAGIC_LEN;
    n = get_u32(p);
    p += 4;
    if (n == 0 || n > BUNDLE_HEADER_MAX || (size_t)(end - p) < n)
        return invalid(e, "its header is cut or too long");
    head = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &je);
    p += n;
    if (json_unpack(head, "{s:s,s:s,s:s,s:I,s:I,s:I,s:o}", "format", &format, "from", &from, "to", &to, "created_at",
                    &created, "batches", &batches, "changes", &changes, "vector", &vector) != 0
        || strcmp(format, BUNDLE_FORMAT) != 0 || !id_valid(from) || !id_valid(to) || created < 0 || batches < 0
        || batches > BUNDLE_MAX_BATCHES || changes < 0 || !vector_valid(vector)) {
        json_decref(head);
        return invalid(e, "its header is not what a bundle holds");
    }
    snprintf(h->from, sizeof(h->from), "%s", from);
    snprintf(h->to, sizeof(h->to), "%s", to);
    h->created_at = created;
    h->batches = batches;
    h->changes = changes;
    h->vector = json_incref(vector);
    json_decref(head);
    if ((size_t)(end - p) < CRYPTO_SEALED_KEY_LEN + CRYPTO_STREAM_HEADER_LEN + CRYPTO_SIGN_BYTES) {
        bundle_head_free(h);
        return invalid(e, "it is cut short");
    }
    h->sealed_key = p;
    p += CRYPTO_SEALED_KEY_LEN;
    h->stream_header = p;
    p += CRYPTO_STREAM_HEADER_LEN;
    h->chunks = p;
    h->chunks_len = (size_t)(end - CRYPTO_SIGN_BYTES - p);
    h->signed_len = len - CRYPTO_SIGN_BYTES;
    h->signature = end - CRYPTO_SIGN_BYTES;
    return 0;
}

/* ---- export ---- */

/* Append chunk m (n bytes) of the stream to out, encrypted. */
static int chunk_append(struct buf *out, struct crypto_stream *st, const void *m, size_t n, int final, struct err *e)
{
    unsigned char len[4], *c = malloc(n + CRYPTO_STREAM_ABYTES);
    int rc;

    if (c == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    crypto_stream_push(st, m, n, final, c);
    put_u32(len, (uint32_t)(n + CRYPTO_STREAM_ABYTES));
    rc = buf_append(out, len, 4) < 0 || buf_append(out, c, n + CRYPTO_STREAM_ABYTES) < 0
             ? err_set(e, ERR_TOO_LARGE, "bundle_too_large", "the bundle would be larger than %zu bytes",
                       BUNDLE_MAX_BYTES)
             : 0;
    free(c);
    return rc;
}

/* Raise cursor entries to those of more. */
static void vector_raise(json_t *cursor, const json_t *more)
{
    const char *k;
    json_t *v, *cur;

    json_object_foreach((json_t *)more, k, v) {
        cur = json_object_get(cursor, k);
        if (cur == NULL || json_integer_value(cur) < json_integer_value(v))
            json_object_set(cursor, k, v);
    }
}

int bundle_export(struct db *db, const char *dir, const char *peer_name, int all, struct buf *out,
                  struct bundle_summary *s, struct err *e)
{
    unsigned char key[CRYPTO_STREAM_KEY_LEN], peer_pk[CRYPTO_SIGN_PUBLIC_LEN], sig[CRYPTO_SIGN_BYTES], len[4];
    struct crypto_stream st;
    struct node_key me;
    struct peer_row peer;
    struct caller who;
    struct buf chunks, batch;
    json_t *from = NULL, *vector = NULL, *cursor = NULL, *header = NULL;
    char self[ID_LEN], *header_text = NULL;
    int has_more, n, rc = -1;

    memset(s, 0, sizeof(*s));
    memset(&me, 0, sizeof(me));
    buf_init(&chunks, BUNDLE_MAX_BYTES);
    buf_init(&batch, SYNC_MAX_COMPRESSED_BYTES);
    buf_reset(out);
    if (peers_get_by_name(db, peer_name, &peer, e) < 0 || changelog_node_id(db, self, e) < 0
        || peers_node_key_load(dir, &me, e) < 0)
        goto done;
    if (crypto_b64url_decode_exact(peer.public_key, peer_pk, sizeof(peer_pk)) < 0) {
        err_set(e, ERR_INTERNAL, "corrupt_peer", "the pinned key of peer '%s' is unreadable", peer_name);
        goto done;
    }
    /* from what the peer is known to hold (its vector, as its sync or bundles last told), or from nothing */
    from = all ? json_object() : sync_cursor_get(db, peer.id, "push", e);
    if (from == NULL || (vector = sync_vector(db, e)) == NULL)
        goto done;
    crypto_stream_key_new(key);
    {
        unsigned char sealed[CRYPTO_SEALED_KEY_LEN], sh[CRYPTO_STREAM_HEADER_LEN];

        if (crypto_seal_key(peer_pk, key, sealed) < 0) {
            err_set(e, ERR_INTERNAL, "corrupt_peer", "the pinned key of peer '%s' cannot receive a bundle", peer_name);
            goto done;
        }
        crypto_stream_push_init(&st, key, sh);
        if (buf_append(&chunks, sealed, sizeof(sealed)) < 0 || buf_append(&chunks, sh, sizeof(sh)) < 0)
            goto oom;
    }
    do {
        json_decref(cursor);
        cursor = NULL;
        if ((n = sync_batch_build(db, peer.id, from, SYNC_DEFAULT_MAX_BYTES, &batch, &has_more, &cursor, e)) < 0)
            goto done;
        if (n == 0 && !has_more)
            break;      /* nothing (more) the peer lacks */
        if (s->batches >= BUNDLE_MAX_BATCHES) {
            err_set(e, ERR_TOO_LARGE, "bundle_too_large", "the bundle would hold more than %d batches",
                    BUNDLE_MAX_BATCHES);
            goto done;
        }
        if (chunk_append(&chunks, &st, batch.data, batch.len, 0, e) < 0)
            goto done;
        s->batches++;
        s->changes += n;
        vector_raise(from, cursor);
    } while (has_more);
    if (chunk_append(&chunks, &st, "", 0, 1, e) < 0)
        goto done;
    s->created_at = now_ms();
    header = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:O}", "format", BUNDLE_FORMAT, "from", self, "to", peer.id,
                       "created_at", (json_int_t)s->created_at, "batches", (json_int_t)s->batches, "changes",
                       (json_int_t)s->changes, "vector", vector);
    if (header == NULL || (header_text = json_dumps(header, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
        goto oom;
    put_u32(len, (uint32_t)strlen(header_text));
    if (buf_append(out, BUNDLE_MAGIC, MAGIC_LEN) < 0 || buf_append(out, len, 4) < 0
        || buf_puts(out, header_text) < 0 || buf_append(out, chunks.data, chunks.len) < 0)
        goto oom;
    crypto_sign_make(me.seed, out->data, out->len, sig);
    if (buf_append(out, sig, sizeof(sig)) < 0)
        goto oom;
    /* patient data leaves the node: audited like a batch a peer pulls */
    caller_local(&who, "bundle");
    if (audit_record(db, &who, "sync.bundle_export", "peer", peer.id, NULL, "ok", e) < 0)
        goto done;
    snprintf(s->peer_name, sizeof(s->peer_name), "%s", peer.name);
    s->bytes = out->len;
    rc = 0;
    goto done;
oom:
    err_set(e, ERR_TOO_LARGE, "bundle_too_large", "the bundle does not fit in memory or in %zu bytes",
            BUNDLE_MAX_BYTES);
done:
    if (rc < 0)
        buf_reset(out);
    crypto_wipe(key, sizeof(key));
    crypto_wipe(&st, sizeof(st));
    peers_node_key_wipe(&me);
    free(header_text);
    json_decref(header);
    json_decref(from);
    json_decref(vector);
    json_decref(cursor);
    buf_free(&chunks);
    buf_free(&batch);
    return rc;
}

/* ---- import ---- */

struct chunk {
    unsigned char *data;
    size_t len;
};

/* Decrypt every chunk (each must be the next of the stream, the last one final and empty, nothing after
 * it) before anything is applied: a bundle altered anywhere applies nothing. */
static int chunks_open(const struct bundle_head *h, const unsigned char key[CRYPTO_STREAM_KEY_LEN],
                       struct chunk **out, size_t *count, struct err *e)
{
    const unsigned char *p = h->chunks, *end = h->chunks + h->chunks_len;
    struct crypto_stream st;
    struct chunk *v = NULL;
    size_t n = 0;
    uint32_t clen;
    int final = 0;

    *out = NULL;
    *count = 0;
    if (crypto_stream_pull_init(&st, key, h->stream_header) < 0)
        return invalid(e, "its stream header is damaged");
    /* (room for the final chunk, and for one past it when a bundle has too many) */
    if ((v = calloc((size_t)h->batches + 2, sizeof(*v))) == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    while (!final) {
        if ((size_t)(end - p) < 4 || (clen = get_u32(p)) < CRYPTO_STREAM_ABYTES || clen > CHUNK_MAX
            || (size_t)(end - p - 4) < clen || n > (size_t)h->batches)
            goto bad;
        p += 4;
        if ((v[n].data = malloc(clen - CRYPTO_STREAM_ABYTES + 1)) == NULL) {
            err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
            goto fail;
        }
        if (crypto_stream_pull(&st, p, clen, v[n].data, &final) < 0)
            goto bad;
        v[n].len = clen - CRYPTO_STREAM_ABYTES;
        p += clen;
        n++;
    }
    /* B batches and the empty final chunk, and nothing else */
    if (p != end || n != (size_t)h->batches + 1 || v[n - 1].len != 0)
        goto bad;
    crypto_wipe(&st, sizeof(st));
    *out = v;
    *count = n - 1;
    return 0;
bad:
    invalid(e, "its content does not decrypt as the sender wrote it");
fail:
    crypto_wipe(&st, sizeof(st));
    while (n + 1 > 0) {
        free(v[n].data);
        if (n-- == 0)
            break;
    }
    free(v);
    return -1;
}

int bundle_import(struct db *db, const char *dir, const void *data, size_t len, struct bundle_summary *s,
                  struct err *e)
{
    unsigned char key[CRYPTO_STREAM_KEY_LEN], peer_pk[CRYPTO_SIGN_PUBLIC_LEN];
    struct bundle_head h;
    struct node_key me;
    struct peer_row peer;
    struct sync_report r;
    struct chunk *chunks = NULL;
    struct caller who;
    char self[ID_LEN];
    size_t n = 0, i;
    int found, was, rc = -1, cache_set = 0;

    memset(s, 0, sizeof(*s));
    memset(&me, 0, sizeof(me));
    if (bundle_parse(data, len, &h, e) < 0)
        return -1;
    if (changelog_node_id(db, self, e) < 0)
        goto done;
    if (strcmp(h.to, self) != 0) {
        err_set(e, ERR_INVALID, "not_for_this_node", "this bundle was made for node %s, not for this one (%s)", h.to,
                self);
        goto done;
    }
    if ((found = store_peer_get(db, h.from, &peer, e)) < 0)
        goto done;
    if (!found) {
        err_set(e, ERR_UNAUTHENTICATED, "unknown_sender",
                "this bundle comes from node %s, which is not an enrolled peer ('sanad peer list')", h.from);
        goto done;
    }
    if (crypto_b64url_decode_exact(peer.public_key, peer_pk, sizeof(peer_pk)) < 0
        || !crypto_sign_check(peer_pk, data, h.signed_len, h.signature)) {
        err_set(e, ERR_INVALID, "bad_signature",
                "the bundle's signature does not match the key of peer '%s': it was altered, or not made by it",
                peer.name);
        goto done;
    }
    if (peers_node_key_load(dir, &me, e) < 0)
        goto done;
    if (crypto_unseal_key(me.seed, h.sealed_key, key) < 0) {
        err_set(e, ERR_INVALID, "invalid_bundle", "the bundle's key cannot be opened with this node's key");
        goto done;
    }
    if (chunks_open(&h, key, &chunks, &n, e) < 0)
        goto done;
    if (store_sync_cache_kib(db, APPLY_CACHE_KIB, &was, e) < 0)
        goto done;
    cache_set = 1;
    for (i = 0; i < n; i++) {
        if (sync_batch_apply(db, chunks[i].data, chunks[i].len, h.from, &r, NULL, NULL, e) < 0) {
            if (i > 0) {
                struct err first = *e;

                err_set(e, first.kind, first.code, "batch %zu of %zu: %.150s (the %zu before it are applied)",
                        i + 1, n, first.message, i);
            }
            goto done;
        }
        sync_report_add(&s->applied, &r);
    }
    /* what the peer holds need not be sent to it again (nor pulled back from it) */
    caller_local(&who, "bundle");
    if (db_begin_write(db, e) < 0)
        goto done;
    if (sync_cursor_save(db, h.from, "push", h.vector, e) < 0
        || audit_record(db, &who, "sync.bundle_import", "peer", h.from, NULL, "ok", e) < 0 || db_commit(db, e) < 0) {
        db_rollback(db);
        goto done;
    }
    /* heard from it: 'sanad peer list' and the sync status show when (a failure here loses nothing) */
    if (peers_record_attempt(db, h.from, NULL, e) < 0)
        err_clear(e);
    snprintf(s->peer_name, sizeof(s->peer_name), "%s", peer.name);
    s->created_at = h.created_at;
    s->batches = h.batches;
    s->changes = h.changes;
    s->bytes = len;
    rc = 0;
done:
    if (cache_set)
        store_sync_cache_kib(db, was, NULL, NULL);
    for (i = 0; chunks && i <= n; i++)
        free(chunks[i].data);
    free(chunks);
    crypto_wipe(key, sizeof(key));
    peers_node_key_wipe(&me);
    bundle_head_free(&h);
    return rc;
}
