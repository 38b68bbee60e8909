/* sync.h — replication between nodes: change batches, their merge into the local state, conflicts and
 * quarantine, and a sync session with a peer over any transport (HTTP in production, direct calls in
 * tests). See docs/sync.md for the protocol and the merge rules.
 *
 * A batch is a zstd frame holding one JSON object:
 *   {"format":"sanad-batch/1", "node":"<sender node id>", "has_more":bool,
 *    "cursor":{"<origin node id>":seq,...},       -- how far the sender's log was read for this batch
 *    "changes":[["<origin node id>", seq, "table", "row id", hlc, {field: value}, {field: [base hlc, "base node id"]}], ...]}
 * Changes of one origin appear in seq order. Applying a batch is one transaction and idempotent: a change
 * already held (same origin and seq) is skipped, so duplicated, re-ordered or re-sent batches are safe.
 *
 * Merge: for every field, the value of the change with the highest (hlc, origin node id) wins, whatever
 * order changes arrive in, so all nodes converge. When the incoming and the current value were written
 * concurrently (neither change's base names the other) and differ, the loser is kept in the conflicts
 * table for a person to review. A change stamped more than the node's max_clock_ahead_hours (default
 * 24) ahead of this node's clock is quarantined (kept apart, reported, not applied).
 *
 * Ownership: json_t results are new references; buffers are the caller's.
 */
#ifndef SANAD_SYNC_H
#define SANAD_SYNC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "services/caller.h"
#include "store/db.h"

#define SYNC_BATCH_FORMAT "sanad-batch/1"
#define SYNC_DEFAULT_MAX_BYTES (4u << 20)       /* uncompressed JSON per batch */
#define SYNC_MAX_BATCH_BYTES (32u << 20)        /* a batch that decompresses to more is refused */
#define SYNC_MAX_COMPRESSED_BYTES (16u << 20)   /* a compressed batch larger than this is refused */
/* How far ahead of this node's clock a change may be stamped and still be applied (the node setting
 * max_clock_ahead_hours; a change further ahead is quarantined) */
#define SYNC_CLOCK_AHEAD_HOURS_DEFAULT 24
#define SYNC_CLOCK_AHEAD_HOURS_MAX (24 * 366)

struct sync_report {
    int64_t received;       /* changes in the batch */
    int64_t applied;        /* new changes taken into the log */
    int64_t duplicates;     /* already held */
    int64_t conflicts;      /* concurrent losing values kept for review */
    int64_t quarantined;    /* stamped implausibly far in the future */
};

/* Add r's counts to *to. */
void sync_report_add(struct sync_report *to, const struct sync_report *r);

/* Build the next batch of this node's log for a peer: the changes after `vector` ({origin: seq}, may be
 * NULL or empty) that the peer may receive (peer_id NULL: no site restriction), at most max_bytes of
 * JSON (at least one change), compressed into *out. *cursor_out receives the position reached. */
int sync_batch_build(struct db *db, const char *peer_id, const json_t *vector, size_t max_bytes, struct buf *out,
                     int *has_more, json_t **cursor_out, struct err *e);

/* Check, decode and apply a batch in one transaction. from_node is the sender (recorded with quarantined
 * changes). *cursor_out and *has_more (each may be NULL) receive the batch's cursor and has_more.
 * Malformed, oversized or bomb-like input: ERR_INVALID / ERR_TOO_LARGE and nothing applied. */
int sync_batch_apply(struct db *db, const void *data, size_t len, const char *from_node, struct sync_report *r,
                     json_t **cursor_out, int *has_more, struct err *e);

/* This node's version vector: {origin node id: highest seq held with no gap below it}. */
json_t *sync_vector(struct db *db, struct err *e);

/* Cursors of a peer: how far this node has pulled from it / pushed to it, {origin: seq}. */
json_t *sync_cursor_get(struct db *db, const char *peer_id, const char *direction, struct err *e);
int sync_cursor_save(struct db *db, const char *peer_id, const char *direction, const json_t *cursor, struct err *e);

/* How a sync session reaches the other node. */
struct sync_transport {
    void *ctx;
    /* Ask the peer for the changes after vector; *batch receives the compressed batch. */
    int (*pull)(void *ctx, const json_t *vector, size_t max_bytes, struct buf *batch, struct err *e);
    /* Give the peer a batch; *vector_out (may be NULL) receives the peer's vector afterwards. */
    int (*push)(void *ctx, const void *batch, size_t len, json_t **vector_out, struct err *e);
    /* Non-zero when pull and push touch no database and may run on another thread: the session then
     * fetches the next batch while it applies one, and builds the next while the peer takes one. */
    int concurrent;
};

struct sync_summary {
    struct sync_report pulled;
    int64_t pushed;         /* changes sent */
    int64_t batches_in, batches_out;
    int64_t bytes_in, bytes_out;    /* compressed, as on the wire */
};

/* What a session moved, as one line for people and logs: "pulled N (applied N, ...), pushed N; ...". */
void sync_summary_describe(const struct sync_summary *s, char *out, size_t n);

/* One sync session with an enrolled peer: pull until the peer has nothing more, then push until this node
 * has nothing more for it. Each batch is applied (or acknowledged) before its cursor is saved, so a cut
 * link or a crash loses nothing and a new session resumes where the last one stopped. */
int sync_with_peer(struct db *db, const char *peer_id, const struct sync_transport *t, size_t max_bytes,
                   struct sync_summary *s, struct err *e);

/* Server side of a session, for an authenticated peer. sync_serve_pull: request {"vector":{..},
 * "max_bytes":N} -> batch into *out. sync_serve_push: apply a batch -> {"vector":{..},"applied":..,..}. */
int sync_serve_pull(struct db *db, const char *peer_id, const json_t *request, struct buf *out, struct err *e);
json_t *sync_serve_push(struct db *db, const char *peer_id, const void *batch, size_t len, struct err *e);

/* This node's sync settings: {"max_clock_ahead_hours": N}. */
json_t *sync_settings_get(struct db *db, struct err *e);
/* Change them ({"max_clock_ahead_hours": 1..SYNC_CLOCK_AHEAD_HOURS_MAX}; ERR_INVALID with the field at
 * fault otherwise); audit-logged as sync.settings. The new settings. */
json_t *sync_settings_set(struct db *db, const struct caller *who, const json_t *in, struct err *e);

/* Note in the audit log that who asked for a sync with the peers now (POST /api/v1/sync/run). */
int sync_record_run_request(struct db *db, const struct caller *who, struct err *e);

/* {"node_id":..,"peers":[{id,name,url,last_attempt_at,last_success_at,last_error,pending}],
 *  "conflicts_open":N,"quarantined":N,"changes":N} */
json_t *sync_status(struct db *db, struct err *e);
/* Open conflicts, oldest first, paged by cursor (an id): {"items":[..],"next":..}. */
json_t *sync_conflicts(struct db *db, const char *cursor, int64_t limit, struct err *e);
/* Resolve a conflict: {"choose":"current"} keeps the winning value, {"choose":"other"} writes the losing
 * one again as a new change (which then wins everywhere); either way the decision syncs as a change. */
json_t *sync_conflict_resolve(struct db *db, const struct caller *who, const char *id, const char *choose,
                              struct err *e);

#endif
