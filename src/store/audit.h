/* audit.h — storage of the append-only audit chain. The chain itself (hashing, verification) lives in
 * services/audit.c; this file only reads and writes rows.
 * Return convention as in accounts.h. */
#ifndef SANAD_STORE_AUDIT_H
#define SANAD_STORE_AUDIT_H

#include <stdint.h>

#include "core/crypto.h"
#include "core/err.h"
#include "core/id.h"
#include "store/db.h"

struct audit_row {
    int64_t seq;
    int64_t at;
    char user_id[ID_LEN];       /* "" when nobody was authenticated */
    char username[65];
    char action[48];            /* e.g. "login", "user.create", "patient.read" */
    char entity_type[32];
    char entity_id[ID_LEN + 27];
    char site_id[ID_LEN];
    char address[64];
    char request_id[33];
    char outcome[16];           /* "ok", "denied", "failed", "throttled" */
    char prev_hash[CRYPTO_HASH_HEX_LEN];
    char hash[CRYPTO_HASH_HEX_LEN];
};

typedef int (*store_audit_cb)(const struct audit_row *row, void *ctx);

/* The last row's seq and hash; *seq = 0 and hash "" when the log is empty. */
int store_audit_last(struct db *db, int64_t *seq, char hash[CRYPTO_HASH_HEX_LEN], struct err *e);
int store_audit_insert(struct db *db, const struct audit_row *r, struct err *e);
/* Rows with seq > after, ascending, at most limit (limit <= 0: all). */
int store_audit_scan(struct db *db, int64_t after, int64_t limit, store_audit_cb cb, void *ctx, struct err *e);

#endif
