/* sync.h — storage for replication state: per-peer cursors, conflicts kept for review, quarantined
 * changes, and what the merge needs to know of peers. The logic is in services/sync.c.
 * Return convention: 0 done (1 found / 0 not found for lookups), -1 with *e set on storage failure.
 * Ownership: strings passed to callbacks are valid only during the call; char ** outputs are malloc'ed.
 */
#ifndef SANAD_STORE_SYNC_H
#define SANAD_STORE_SYNC_H

#include <stdint.h>

#include "core/err.h"
#include "core/id.h"
#include "store/db.h"

typedef int (*store_cursor_cb)(const char *origin_node, int64_t seq, void *ctx);
int store_cursor_scan(struct db *db, const char *peer_id, const char *direction, store_cursor_cb cb, void *ctx,
                      struct err *e);
/* Raise a cursor entry (never lowers it). */
int store_cursor_raise(struct db *db, const char *peer_id, const char *direction, const char *origin_node,
                       int64_t seq, struct err *e);

/* The site restriction of a peer (JSON array text, or NULL for every site); 0 when there is no such peer. */
int store_peer_sites(struct db *db, const char *peer_id, char **sites_json, struct err *e);

struct conflict_row {
    char id[ID_LEN];
    const char *tbl, *row_id, *field, *value, *origin, *winner_value, *winner_origin, *resolution;
    int64_t hlc, winner_hlc, detected_at, resolved_at;
};
/* Insert a conflict unless the same losing change is already recorded for that field. */
int store_conflict_insert(struct db *db, const struct conflict_row *c, struct err *e);
typedef int (*store_conflict_cb)(const struct conflict_row *c, void *ctx);
/* Open conflicts with id > after (NULL: from the start), oldest first, at most limit. */
int store_conflicts_open(struct db *db, const char *after, int64_t limit, store_conflict_cb cb, void *ctx,
                         struct err *e);
int store_conflict_get(struct db *db, const char *id, store_conflict_cb cb, void *ctx, struct err *e);
/* Mark every open conflict of (tbl, row_id, field) resolved. */
int store_conflicts_resolve_field(struct db *db, const char *tbl, const char *row_id, const char *field, int64_t at,
                                  const char *resolution, struct err *e);
int store_conflicts_count_open(struct db *db, int64_t *n, struct err *e);

int store_quarantine_insert(struct db *db, const char *origin_node, int64_t seq, const char *tbl, const char *row_id,
                            int64_t hlc, const char *fields_json, const char *base_json, const char *from_node,
                            const char *reason, int64_t at, struct err *e);
int store_quarantine_count(struct db *db, int64_t *n, struct err *e);

/* Set the connection's page cache to kib KiB; *was_kib (may be NULL) receives what it was, to be set back
 * (a smaller cache frees the pages beyond it). */
int store_sync_cache_kib(struct db *db, int kib, int *was_kib, struct err *e);

/* Peers for the status page: cb(id, name, url, last_attempt_at, last_success_at, last_error, ctx). */
typedef int (*store_peer_status_cb)(const char *id, const char *name, const char *url, int64_t last_attempt_at,
                                    int64_t last_success_at, const char *last_error, void *ctx);
int store_peers_status(struct db *db, store_peer_status_cb cb, void *ctx, struct err *e);

#endif
