/* changes.h — storage of the replicated change log and origin aliases.
 * The logic (clocks, merge rules) lives in services/changelog.c; this file only reads and writes rows.
 * Return convention: 0 done (1 found / 0 not found for lookups), -1 with *e set on storage failure.
 * Ownership: strings passed to callbacks are valid only during the call.
 */
#ifndef SANAD_STORE_CHANGES_H
#define SANAD_STORE_CHANGES_H

#include <stdint.h>

#include "core/err.h"
#include "core/id.h"
#include "store/db.h"

/* The local alias of a node id, created on first use. */
int store_origin_alias(struct db *db, const char *node_id, int64_t *alias, struct err *e);

/* The highest seq held from this origin (0 when none). */
int store_change_last_seq(struct db *db, int64_t origin, int64_t *seq, struct err *e);
/* Append a change and move the origin's contiguous seq (the version vector) on over it. */
int store_change_append(struct db *db, int64_t origin, int64_t seq, const char *tbl, const char *row_id,
                        int64_t hlc, const char *fields_json, const char *base_json, struct err *e);
/* Append a change and leave the contiguous seq alone: for a batch, which moves it once at the end
 * (store_origin_set_contiguous). A change already held is a constraint failure (ERR_CONFLICT). */
int store_change_insert(struct db *db, int64_t origin, int64_t seq, const char *tbl, const char *row_id,
                        int64_t hlc, const char *fields_json, const char *base_json, struct err *e);
/* What a batch needs to know of an origin (node id) before taking its changes: its alias (created on
 * first use), the highest seq held (0 when none) and the highest held with no gap below it. */
int store_origin_state(struct db *db, const char *node_id, int64_t *alias, int64_t *max_seq, int64_t *contiguous,
                       struct err *e);
int store_origin_set_contiguous(struct db *db, int64_t origin, int64_t contiguous, struct err *e);
/* The highest hlc of any origin's newest change (0 when empty), to start the clock above it. */
int store_change_max_hlc(struct db *db, int64_t *hlc, struct err *e);
int store_change_count(struct db *db, int64_t *n, struct err *e);

/* Every change of one record, oldest first: cb(origin node id, hlc, fields JSON, base JSON, ctx); a
 * non-zero return stops the scan. */
typedef int (*store_change_cb)(const char *origin_node, int64_t hlc, const char *fields_json, const char *base_json,
                               void *ctx);
int store_changes_of_row(struct db *db, const char *tbl, const char *row_id, store_change_cb cb, void *ctx,
                         struct err *e);

/* Has the record any change in the log? 1 yes, 0 no (one index probe: cheaper than reading them). */
int store_row_has_changes(struct db *db, const char *tbl, const char *row_id, struct err *e);

/* Is the change (origin alias, seq) in the log? 1 yes, 0 no. */
int store_change_exists(struct db *db, int64_t origin, int64_t seq, struct err *e);

/* Changes of one origin (node id) with seq > after, in seq order, at most limit. */
typedef int (*store_log_cb)(const char *origin_node, int64_t seq, const char *tbl, const char *row_id, int64_t hlc,
                            const char *fields_json, const char *base_json, void *ctx);
int store_changes_after(struct db *db, const char *origin_node, int64_t after, int64_t limit, store_log_cb cb,
                        void *ctx, struct err *e);

/* Every origin in the log with its highest seq and its highest seq with no gap below it:
 * cb(node id, max seq, contiguous seq, ctx). */
typedef int (*store_origin_cb)(const char *origin_node, int64_t max_seq, int64_t count, void *ctx);
int store_origins_scan(struct db *db, store_origin_cb cb, void *ctx, struct err *e);

#endif
