/* audit.h — the hash-chained, append-only audit log of who did what to which record, when, from where.
 *
 * Entry n holds hash_n = BLAKE2b-256(hash_{n-1} || fields of n), each field length-prefixed (see
 * docs/security.md), with hash_0 = 64 zeros; altering, inserting or removing any row breaks the chain
 * from that row on, and audit_verify() names the first broken row.
 * Ownership: returned json_t values are new references.
 */
#ifndef SANAD_AUDIT_H
#define SANAD_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/err.h"
#include "services/caller.h"
#include "store/audit.h"
#include "store/db.h"

/* Append one entry. Inside a caller's write transaction it joins it (so the entry commits or rolls back
 * with the change it describes); otherwise it runs in a write transaction of its own.
 * outcome: "ok", "denied", "failed" or "throttled". Any of entity_type, entity_id, site_id may be NULL. */
int audit_record(struct db *db, const struct caller *who, const char *action, const char *entity_type,
                 const char *entity_id, const char *site_id, const char *outcome, struct err *e);

/* The head of the chain as known inside one write transaction, so that a batch appending many entries
 * (an import) does not read it back each time. Zero-initialise per transaction. */
struct audit_head {
    int ready;
    int64_t seq;
    char hash[CRYPTO_HASH_HEX_LEN];
};

/* audit_record() inside the caller's write transaction, carrying the chain head in *head. */
int audit_record_in(struct db *db, struct audit_head *head, const struct caller *who, const char *action,
                    const char *entity_type, const char *entity_id, const char *site_id, const char *outcome,
                    struct err *e);

/* The chain hash of one row given its predecessor's hash (exposed for tests). */
void audit_row_hash(const struct audit_row *r, const char *prev_hash, char out[CRYPTO_HASH_HEX_LEN]);

struct audit_verdict {
    int64_t checked;        /* rows read */
    int64_t bad_seq;        /* first bad row, 0 when intact */
    char reason[160];       /* what is wrong with it */
};

/* Walk the whole chain. 0 when intact, 1 when broken (*v says where), -1 on storage failure. */
int audit_verify(struct db *db, struct audit_verdict *v, struct err *e);

/* A page of entries after the cursor (a seq as text, or NULL for the start):
 * {"items":[...], "next": "cursor" | null}. limit is clamped to [1, 500]. */
json_t *audit_page(struct db *db, const char *cursor, int64_t limit, struct err *e);

#endif
