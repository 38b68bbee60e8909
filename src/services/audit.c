/* audit.c — appending to, verifying and paging the hash-chained audit log. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "services/audit.h"

static const char genesis[CRYPTO_HASH_HEX_LEN] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* Feed "len:bytes;" so that no two different field lists hash alike. */
static void hash_field(struct crypto_hasher *h, const char *s)
{
    char len[24];
    int n = snprintf(len, sizeof(len), "%zu:", strlen(s));

    crypto_hasher_update(h, len, (size_t)n);
    crypto_hasher_update(h, s, strlen(s));
    crypto_hasher_update(h, ";", 1);
}

void audit_row_hash(const struct audit_row *r, const char *prev_hash, char out[CRYPTO_HASH_HEX_LEN])
{
    struct crypto_hasher h;
    char num[24];

    crypto_hasher_init(&h);
    hash_field(&h, "sanad-audit-v1");
    hash_field(&h, prev_hash);
    snprintf(num, sizeof(num), "%" PRId64, r->seq);
    hash_field(&h, num);
    snprintf(num, sizeof(num), "%" PRId64, r->at);
    hash_field(&h, num);
    hash_field(&h, r->user_id);
    hash_field(&h, r->username);
    hash_field(&h, r->action);
    hash_field(&h, r->entity_type);
    hash_field(&h, r->entity_id);
    hash_field(&h, r->site_id);
    hash_field(&h, r->address);
    hash_field(&h, r->request_id);
    hash_field(&h, r->outcome);
    crypto_hasher_final_hex(&h, out);
}

static void copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}

int audit_record(struct db *db, const struct caller *who, const char *action, const char *entity_type,
                 const char *entity_id, const char *site_id, const char *outcome, struct err *e)
{
    return audit_record_in(db, NULL, who, action, entity_type, entity_id, site_id, outcome, e);
}

int audit_record_in(struct db *db, struct audit_head *head, const struct caller *who, const char *action,
                    const char *entity_type, const char *entity_id, const char *site_id, const char *outcome,
                    struct err *e)
{
    struct audit_row r;
    int own_tx = !db_in_transaction(db);

    memset(&r, 0, sizeof(r));
    /* alone (not inside a writer's transaction), the entry records a read, a sign-in or a refusal: it is
     * committed without a disk sync of its own, and made durable by the next synced commit (see
     * docs/security.md, "Audit log") — so that reading a chart does not cost an fsync */
    if (own_tx && db_begin_write_relaxed(db, e) < 0)
        return -1;
    if (head && head->ready) {
        r.seq = head->seq;
        memcpy(r.prev_hash, head->hash, sizeof(r.prev_hash));
    } else if (store_audit_last(db, &r.seq, r.prev_hash, e) < 0) {
        goto fail;
    }
    if (r.seq == 0)
        copy(r.prev_hash, sizeof(r.prev_hash), genesis);
    r.seq++;
    r.at = now_ms();
    if (who) {
        if (who->authenticated) {
            copy(r.user_id, sizeof(r.user_id), who->user_id);
        }
        copy(r.username, sizeof(r.username), who->username);
        copy(r.address, sizeof(r.address), who->address);
        copy(r.request_id, sizeof(r.request_id), who->request_id);
    }
    copy(r.action, sizeof(r.action), action);
    copy(r.entity_type, sizeof(r.entity_type), entity_type);
    copy(r.entity_id, sizeof(r.entity_id), entity_id);
    copy(r.site_id, sizeof(r.site_id), site_id);
    copy(r.outcome, sizeof(r.outcome), outcome);
    audit_row_hash(&r, r.prev_hash, r.hash);
    if (store_audit_insert(db, &r, e) < 0)
        goto fail;
    if (head && !own_tx) {
        head->ready = 1;
        head->seq = r.seq;
        memcpy(head->hash, r.hash, sizeof(head->hash));
    }
    if (own_tx && db_commit(db, e) < 0)
        return -1;
    return 0;
fail:
    if (own_tx)
        db_rollback(db);
    return -1;
}

struct verify_state {
    struct audit_verdict *v;
    char prev[CRYPTO_HASH_HEX_LEN];
    int64_t expect_seq;
};

static int verify_row(const struct audit_row *r, void *ctx)
{
    struct verify_state *s = ctx;
    char want[CRYPTO_HASH_HEX_LEN];

    s->v->checked++;
    if (r->seq != s->expect_seq) {
        s->v->bad_seq = r->seq;
        snprintf(s->v->reason, sizeof(s->v->reason), "entries %" PRId64 " to %" PRId64 " are missing",
                 s->expect_seq, r->seq - 1);
        return 1;
    }
    if (strcmp(r->prev_hash, s->prev) != 0) {
        s->v->bad_seq = r->seq;
        snprintf(s->v->reason, sizeof(s->v->reason), "its link to the previous entry does not match");
        return 1;
    }
    audit_row_hash(r, r->prev_hash, want);
    if (strcmp(want, r->hash) != 0) {
        s->v->bad_seq = r->seq;
        snprintf(s->v->reason, sizeof(s->v->reason), "its content does not match its hash (altered)");
        return 1;
    }
    memcpy(s->prev, r->hash, sizeof(s->prev));
    s->expect_seq++;
    return 0;
}

int audit_verify(struct db *db, struct audit_verdict *v, struct err *e)
{
    struct verify_state s;
    int rc;

    memset(v, 0, sizeof(*v));
    s.v = v;
    memcpy(s.prev, genesis, sizeof(s.prev));
    s.expect_seq = 1;
    if (db_begin_read(db, e) < 0)
        return -1;
    rc = store_audit_scan(db, 0, 0, verify_row, &s, e);
    db_rollback(db);
    if (rc < 0)
        return -1;
    return v->bad_seq ? 1 : 0;
}

struct page_state {
    json_t *items;
    int64_t last;
};

static int page_row(const struct audit_row *r, void *ctx)
{
    struct page_state *p = ctx;
    char at[32];
    json_t *o;

    format_time_ms(r->at, at, sizeof(at));
    o = json_pack("{s:I,s:s,s:s?,s:s?,s:s,s:s?,s:s?,s:s?,s:s?,s:s?,s:s,s:s}",
                  "seq", (json_int_t)r->seq, "at", at,
                  "user_id", r->user_id[0] ? r->user_id : NULL,
                  "username", r->username[0] ? r->username : NULL,
                  "action", r->action,
                  "entity_type", r->entity_type[0] ? r->entity_type : NULL,
                  "entity_id", r->entity_id[0] ? r->entity_id : NULL,
                  "site_id", r->site_id[0] ? r->site_id : NULL,
                  "address", r->address[0] ? r->address : NULL,
                  "request_id", r->request_id[0] ? r->request_id : NULL,
                  "outcome", r->outcome, "hash", r->hash);
    if (o == NULL || json_array_append_new(p->items, o) < 0)
        return -1;
    p->last = r->seq;
    return 0;
}

json_t *audit_page(struct db *db, const char *cursor, int64_t limit, struct err *e)
{
    struct page_state p;
    const char *errstr;
    int64_t after = 0;
    json_t *out;
    char next[24];
    int rc;

    if (cursor && parse_int64(cursor, 0, INT64_MAX, &after, &errstr) < 0) {
        err_set(e, ERR_INVALID, "invalid_cursor", "the cursor is not one this server gave out");
        return NULL;
    }
    if (limit < 1)
        limit = 1;
    if (limit > 500)
        limit = 500;
    p.items = json_array();
    p.last = 0;
    if (p.items == NULL) {
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        return NULL;
    }
    rc = store_audit_scan(db, after, limit + 1, page_row, &p, e);
    if (rc != 0) {
        json_decref(p.items);
        if (rc > 0)
            err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        return NULL;
    }
    /* one row more than asked tells whether there is a next page */
    if ((int64_t)json_array_size(p.items) > limit) {
        json_array_remove(p.items, (size_t)limit);
        snprintf(next, sizeof(next), "%lld",
                 (long long)json_integer_value(json_object_get(json_array_get(p.items, (size_t)limit - 1), "seq")));
        out = json_pack("{s:o,s:s}", "items", p.items, "next", next);
    } else {
        out = json_pack("{s:o,s:n}", "items", p.items, "next");
    }
    if (out == NULL)
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    return out;
}
