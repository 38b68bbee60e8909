/* changelog.c — stamping local writes with the node's clock and logging them for replication. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/hlc.h"
#include "core/log.h"
#include "services/changelog.h"
#include "store/changes.h"
#include "store/sites.h"

static atomic_int changelog_clock_ready;

int changelog_node_id(struct db *db, char out[37], struct err *e)
{
    int found = store_meta_get(db, "node_id", out, 37, e);

    if (found < 0)
        return -1;
    if (!found)
        return err_set(e, ERR_INTERNAL, "no_node_id", "the database has no node id; was it made by 'sanad init'?");
    return 0;
}

/* Start the clock above everything this node has issued or seen, once per process. */
static int changelog_clock_floor(struct db *db, struct err *e)
{
    char seen[32];
    int64_t hlc = 0;
    int found;

    if (atomic_load(&changelog_clock_ready))
        return 0;
    if (store_change_max_hlc(db, &hlc, e) < 0)
        return -1;
    hlc_init(hlc);
    found = store_meta_get(db, "hlc_seen", seen, sizeof(seen), e);
    if (found < 0)
        return -1;
    if (found)
        hlc_init(strtoll(seen, NULL, 10));
    atomic_store(&changelog_clock_ready, 1);
    return 0;
}

struct stamps_state {
    json_t *stamps;
    json_t *seen;       /* {field: {"hlc:node": true}} of every change some base names, or NULL */
    int failed;
};

static int stamps_add(const char *origin_node, int64_t hlc, const char *fields_json, const char *base_json,
                      void *ctx)
{
    struct stamps_state *st = ctx;
    json_t *fields = json_loads(fields_json, 0, NULL), *base = json_loads(base_json, 0, NULL), *v, *cur;
    const char *field;

    if (fields == NULL || base == NULL) {
        json_decref(fields);
        json_decref(base);
        st->failed = 1;
        return 1;
    }
    if (st->seen) {
        json_t *b, *set;
        char key[64];

        json_object_foreach(base, field, b) {
            set = json_object_get(st->seen, field);
            if (set == NULL)
                json_object_set_new(st->seen, field, set = json_object());
            snprintf(key, sizeof(key), "%lld:%.40s", (long long)json_integer_value(json_array_get(b, 0)),
                     json_string_value(json_array_get(b, 1)) ? json_string_value(json_array_get(b, 1)) : "");
            json_object_set_new(set, key, json_true());
        }
    }
    json_object_foreach(fields, field, v) {
        cur = json_object_get(st->stamps, field);
        if (cur == NULL || hlc > json_integer_value(json_array_get(cur, 0))
            || (hlc == json_integer_value(json_array_get(cur, 0))
                && strcmp(origin_node, json_string_value(json_array_get(cur, 1))) > 0))
            json_object_set_new(st->stamps, field,
                                json_pack("[I,s,O,O]", (json_int_t)hlc, origin_node,
                                          json_object_get(base, field) ? json_object_get(base, field) : json_null(), v));
    }
    json_decref(fields);
    json_decref(base);
    return 0;
}

json_t *changelog_stamps_seen(struct db *db, const char *tbl, const char *row_id, json_t **seen, struct err *e)
{
    struct stamps_state st = { json_object(), seen ? json_object() : NULL, 0 };

    if (seen)
        *seen = NULL;
    if (st.stamps == NULL || (seen && st.seen == NULL) || store_changes_of_row(db, tbl, row_id, stamps_add, &st, e) < 0
        || st.failed) {
        if (st.failed)
            err_set(e, ERR_INTERNAL, "corrupt_change", "a change of %s %s is unreadable", tbl, row_id);
        json_decref(st.stamps);
        json_decref(st.seen);
        return NULL;
    }
    if (seen)
        *seen = st.seen;
    return st.stamps;
}

json_t *changelog_stamps(struct db *db, const char *tbl, const char *row_id, struct err *e)
{
    return changelog_stamps_seen(db, tbl, row_id, NULL, e);
}

int changelog_seen(const json_t *seen, const char *field, int64_t hlc, const char *node)
{
    char key[64];

    snprintf(key, sizeof(key), "%lld:%.40s", (long long)hlc, node ? node : "");
    return json_object_get(json_object_get(seen, field), key) != NULL;
}

int changelog_record(struct db *db, struct changelog_tx *tx, const char *tbl, const char *row_id,
                     const json_t *fields, int flags, int64_t *hlc_out, struct err *e)
{
    char *ftext = NULL, *btext = NULL;
    json_t *stamps = NULL, *base = NULL, *v, *cur;
    struct changelog_tx local = { 0 };
    const char *field;
    int64_t hlc;
    int rc = -1;

    if (!db_in_transaction(db))
        log_fatal("changelog_record outside a transaction");
    if (tx == NULL)
        tx = &local;
    if (!tx->ready) {
        if (changelog_node_id(db, tx->node, e) < 0 || store_origin_alias(db, tx->node, &tx->origin, e) < 0
            || changelog_clock_floor(db, e) < 0 || store_change_last_seq(db, tx->origin, &tx->seq, e) < 0)
            return -1;
        tx->ready = 1;
    }
    hlc = hlc_now();
    base = json_object();
    if (base == NULL)
        goto oom;
    if (!(flags & CHANGELOG_NEW_ROW)) {
        if ((stamps = changelog_stamps(db, tbl, row_id, e)) == NULL)
            goto done;
        json_object_foreach((json_t *)fields, field, v) {
            /* the base names the change this one replaces: its time and its node */
            if ((cur = json_object_get(stamps, field)) != NULL)
                json_object_set_new(base, field, json_pack("[O,O]", json_array_get(cur, 0), json_array_get(cur, 1)));
        }
    }
    ftext = json_dumps(fields, JSON_COMPACT);
    btext = json_dumps(base, JSON_COMPACT);
    if (ftext == NULL || btext == NULL)
        goto oom;
    if (store_change_append(db, tx->origin, tx->seq + 1, tbl, row_id, hlc, ftext, btext, e) < 0)
        goto done;
    tx->seq++;
    if (hlc_out)
        *hlc_out = hlc;
    rc = 0;
    goto done;
oom:
    err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
done:
    json_decref(stamps);
    json_decref(base);
    free(ftext);
    free(btext);
    return rc;
}
