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

int changelog_record(struct db *db, struct changelog_tx *tx, const char *tbl, const char *row_id,
                     const json_t *fields, int64_t *hlc_out, struct err *e)
{
    char *vtext = NULL, *ftext = NULL, *btext = NULL;
    json_t *versions = NULL, *base = NULL, *v, *cur;
    struct changelog_tx local = { 0 };
    int64_t origin, hlc;
    const char *field;
    int found, rc = -1;

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
    origin = tx->origin;
    hlc = hlc_now();
    found = store_versions_get(db, tbl, row_id, &vtext, e);
    if (found < 0)
        return -1;
    versions = found ? json_loads(vtext, 0, NULL) : json_object();
    base = json_object();
    if (versions == NULL || base == NULL) {
        err_set(e, ERR_INTERNAL, "corrupt_versions", "the version record of %s %s is unreadable", tbl, row_id);
        goto done;
    }
    json_object_foreach((json_t *)fields, field, v) {
        cur = json_object_get(versions, field);
        if (cur)
            json_object_set_new(base, field, json_integer(json_integer_value(json_array_get(cur, 0))));
        json_object_set_new(versions, field, json_pack("[I,I]", (json_int_t)hlc, (json_int_t)origin));
    }
    ftext = json_dumps(fields, JSON_COMPACT | JSON_SORT_KEYS);
    btext = json_dumps(base, JSON_COMPACT | JSON_SORT_KEYS);
    free(vtext);
    vtext = json_dumps(versions, JSON_COMPACT | JSON_SORT_KEYS);
    if (ftext == NULL || btext == NULL || vtext == NULL) {
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        goto done;
    }
    if (store_change_append(db, origin, tx->seq + 1, tbl, row_id, hlc, ftext, btext, e) < 0
        || store_versions_put(db, tbl, row_id, vtext, e) < 0)
        goto done;
    tx->seq++;
    if (hlc_out)
        *hlc_out = hlc;
    rc = 0;
done:
    json_decref(versions);
    json_decref(base);
    free(vtext);
    free(ftext);
    free(btext);
    return rc;
}
