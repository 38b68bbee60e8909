/* changelog.h — every write to a replicated record goes through here, inside the writer's transaction.
 *
 * A change is (origin node, origin seq, table, row id, hlc, {field: value}, {field: [base hlc, base node]}):
 * the new values of the fields it sets, all stamped with one hybrid-logical-clock time, and for each field
 * the stamp (time and node) of the value it replaced on its origin (absent for none). The value that currently wins for a field
 * is the one of the change with the highest (hlc, origin node id) that set it: that is what the merge
 * compares, and what tells a concurrent edit (its base is not the winner's time) from a sequential one.
 * The winners are derived from the log itself (changelog_stamps), so nothing can drift from it.
 * See docs/sync.md.
 * Ownership: the fields object is borrowed; nothing is retained after the call.
 */
#ifndef SANAD_CHANGELOG_H
#define SANAD_CHANGELOG_H

#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "store/db.h"

/* What a transaction that records many changes looks up once: this node's id, its origin alias and
 * its last seq. Zero-initialise it at the start of each write transaction; it is valid only inside it. */
struct changelog_tx {
    int ready;
    char node[37];
    int64_t origin;
    int64_t seq;
};

#define CHANGELOG_NEW_ROW 1    /* the row id was just made: it has no earlier changes to look up */

/* Record a local change of `fields` ({field: JSON value}) on (tbl, row_id). Must be called inside a
 * write transaction; tx (may be NULL) caches per-transaction lookups for batches; flags may hold
 * CHANGELOG_NEW_ROW; *hlc_out (may be NULL) receives the change's time. */
int changelog_record(struct db *db, struct changelog_tx *tx, const char *tbl, const char *row_id,
                     const json_t *fields, int flags, int64_t *hlc_out, struct err *e);

/* The winning stamp of every field of a record, from its changes:
 * {field: [hlc, "origin node id", [base hlc, "base node"] of that change for the field or null, value]}.
 * A new reference; NULL with *e set on failure. */
json_t *changelog_stamps(struct db *db, const char *tbl, const char *row_id, struct err *e);
/* The same, and in *seen every change (per field) that a later change's base names: values someone
 * replaced knowingly. */
json_t *changelog_stamps_seen(struct db *db, const char *tbl, const char *row_id, json_t **seen, struct err *e);
/* Was the change (hlc, node) of field seen (named by a base) according to a changelog_stamps_seen() set? */
int changelog_seen(const json_t *seen, const char *field, int64_t hlc, const char *node);

/* This node's id (from the database), into out. */
int changelog_node_id(struct db *db, char out[37], struct err *e);

#endif
