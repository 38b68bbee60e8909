/* peers.h — storage of enrolled peer nodes, pending enrolment invites and the one-time nonces of signed
 * sync requests. (Cursors, conflicts and quarantine are in store/sync.h.)
 * Return convention: 0 done (1 found / 0 not found for lookups and takes), -1 with *e set on storage failure.
 * Ownership: rows are caller storage; nothing returned needs freeing.
 */
#ifndef SANAD_STORE_PEERS_H
#define SANAD_STORE_PEERS_H

#include <stdint.h>

#include "core/crypto.h"
#include "core/err.h"
#include "core/id.h"
#include "store/accounts.h"
#include "store/db.h"

#define PEER_NAME_MAX 64
#define PEER_URL_MAX 512
#define PEER_ERROR_MAX 255
#define PEER_SITES_JSON_MAX (USER_SITES_MAX * (ID_LEN + 3) + 2)   /* ["id","id",...] */

struct peer_row {
    char id[ID_LEN];                            /* the peer's node id */
    char name[PEER_NAME_MAX + 1];
    char public_key[CRYPTO_SIGN_PUBLIC_B64_LEN];/* Ed25519, base64url, pinned at enrolment */
    char url[PEER_URL_MAX + 1];                 /* "" when the peer only calls us */
    char sites[PEER_SITES_JSON_MAX];            /* JSON array of site ids; "" for every site */
    int64_t enrolled_at;
    int64_t last_attempt_at, last_success_at;   /* 0 for never */
    char last_error[PEER_ERROR_MAX + 1];        /* "" for none */
};

typedef int (*store_peer_cb)(const struct peer_row *row, void *ctx);

/* ERR_CONFLICT "peer_exists" when the node id or the name is already enrolled. */
int store_peer_insert(struct db *db, const struct peer_row *p, struct err *e);
int store_peer_get(struct db *db, const char *id, struct peer_row *out, struct err *e);
int store_peer_get_by_name(struct db *db, const char *name, struct peer_row *out, struct err *e);
/* Every peer, by name. A callback returning -1 stops the scan (ERR_INTERNAL). */
int store_peer_list(struct db *db, store_peer_cb cb, void *ctx, struct err *e);
/* 1 when a peer of that name was removed (with its cursors), 0 when there was none. */
int store_peer_delete_by_name(struct db *db, const char *name, struct err *e);
/* Note a sync attempt: at `at`; on success (error NULL) last_success_at = at and last_error cleared,
 * otherwise last_error = error. */
int store_peer_record_attempt(struct db *db, const char *id, int64_t at, const char *error, struct err *e);

/* Invites: a pending enrolment, found by the hash of its code. sites NULL: every site. */
int store_invite_insert(struct db *db, const char *code_hash, const char *name, const char *sites_json,
                        int64_t expires_at, struct err *e);
/* 1 when a pending invite of that name exists and has not expired. */
int store_invite_name_pending(struct db *db, const char *name, int64_t now, struct err *e);
/* Take an unexpired invite (it is deleted: single use): 1 and name/sites filled (sites "" for every
 * site), or 0 when the code is unknown, used or expired. Expired invites are swept on the way. */
int store_invite_take(struct db *db, const char *code_hash, int64_t now, char name[PEER_NAME_MAX + 1],
                      char sites[PEER_SITES_JSON_MAX], struct err *e);

/* Nonces of signed sync requests: inserted when issued, taken (deleted) when used. */
int store_nonce_insert(struct db *db, const char *nonce, int64_t expires_at, struct err *e);
/* 1 when the nonce was issued, unused and unexpired (it is now used up), 0 otherwise. */
int store_nonce_take(struct db *db, const char *nonce, int64_t now, struct err *e);
/* Forget expired nonces; *outstanding receives how many unexpired ones remain. */
int store_nonces_purge(struct db *db, int64_t now, int64_t *outstanding, struct err *e);

#endif
