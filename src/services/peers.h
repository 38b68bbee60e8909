/* peers.h — who this node is to other nodes and whom it trusts: its Ed25519 node key, enrolment of
 * peers with one-time codes, and the signatures that authenticate every sync request and response.
 * See docs/sync.md ("Protocol") for the wire format; nothing here speaks HTTP.
 *
 * The node key is an Ed25519 seed in DATA/node.key (mode 0600, base64url), made by `sanad init` (or on
 * first use by nodes made before keys existed). It never enters the database, a log line or a backup of
 * sanad.db; in memory it lives only while signing and is wiped after. The public key is derived from it
 * and shown in meta 'node_public_key'.
 *
 * Ownership: json_t results are new references; everything else is caller storage.
 */
#ifndef SANAD_PEERS_H
#define SANAD_PEERS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/crypto.h"
#include "core/err.h"
#include "core/id.h"
#include "services/caller.h"
#include "store/db.h"
#include "store/peers.h"

#define PEERS_KEY_FILE "node.key"
#define PEERS_FINGERPRINT_LEN 40        /* "1a2b-3c4d-...": 8 groups of 4 hex digits, NUL included */
#define PEERS_CODE_LEN 30               /* "ABCDE-FGHJK-MNPQR-STVWX-YZ012": 25 base32 characters, NUL included */
#define PEERS_INVITE_HOURS_DEFAULT 24
#define PEERS_INVITE_HOURS_MAX (24 * 30)
#define PEERS_NONCE_TTL_MS (2LL * 60 * 1000)
#define PEERS_NONCES_MAX 10000          /* unexpired nonces outstanding at once; more is refused (429) */

/* The signature headers of a sync request and of the answer to it. */
#define PEERS_HEADER_NODE "X-Sanad-Node"
#define PEERS_HEADER_TIMESTAMP "X-Sanad-Timestamp"
#define PEERS_HEADER_NONCE "X-Sanad-Nonce"
#define PEERS_HEADER_SIGNATURE "X-Sanad-Signature"
/* On a signed answer: a nonce issued for the client's next request, which it may use instead of asking
 * POST /api/v1/sync/nonce (one round trip less a request; docs/sync.md "Signed requests"). */
#define PEERS_HEADER_NEXT_NONCE "X-Sanad-Next-Nonce"

/* A node key in memory: wipe it with peers_node_key_wipe() as soon as it is no longer needed. */
struct node_key {
    unsigned char seed[CRYPTO_SIGN_SEED_LEN];
    unsigned char pk[CRYPTO_SIGN_PUBLIC_LEN];
    char public_key[CRYPTO_SIGN_PUBLIC_B64_LEN];    /* pk as base64url */
};

/* Who this node is, as shown to peers and operators. */
struct node_identity {
    char node_id[ID_LEN];
    char public_key[CRYPTO_SIGN_PUBLIC_B64_LEN];
    char fingerprint[PEERS_FINGERPRINT_LEN];
    char name[PEER_NAME_MAX + 1];                   /* the name of the node's default site */
};

/* Make a new node key in DIR/node.key (mode 0600). ERR_CONFLICT "key_exists" when there is one already. */
int peers_node_key_create(const char *dir, struct err *e);
/* Read DIR/node.key, creating it when the node predates keys. Refuses a key file others may read. */
int peers_node_key_load(const char *dir, struct node_key *k, struct err *e);
void peers_node_key_wipe(struct node_key *k);

/* Fingerprint of a public key (base64url) for people to compare: the first 128 bits of its SHA-256.
 * "" when the key is malformed. */
void peers_fingerprint(const char *public_key, char out[PEERS_FINGERPRINT_LEN]);

/* This node's identity; records the public key in meta 'node_public_key' when it is not there yet.
 * Call outside a transaction. */
int peers_identity(struct db *db, const char *dir, struct node_identity *out, struct err *e);

/* Where the serving process finds its node key (for signing answers): set once before serving, after
 * checking the key can be read. */
int peers_serve_init(struct db *db, const char *dir, struct err *e);
const char *peers_serve_dir(void);

/* ---- enrolment ---- */

/* On the hub: make a one-time enrolment code for a node to be called `name`, valid for `hours`,
 * restricted to `sites` (site ids; nsites 0 = every site). Only the code's hash is stored; the code is
 * written to `code` to be shown once. *expires_at receives its expiry. Audit-logged as peer.invite. */
int peers_invite(struct db *db, const struct caller *who, const char *name, const char *const *sites, int nsites,
                 int64_t hours, char code[PEERS_CODE_LEN], int64_t *expires_at, struct err *e);

/* What a node sends to enrol (POST /api/v1/peers/enroll). url may be NULL. */
struct peer_enrolment {
    const char *code, *node_id, *name, *public_key, *url;
};

/* On the hub: check the code (single use, unexpired; throttled per address like sign-ins) and enrol the
 * node as a peer with the invite's name and site restriction. Answers {"node_id","name","public_key"}
 * of this node. ERR_UNAUTHENTICATED "invalid_code" (one message whether the code is unknown, used,
 * expired or malformed), ERR_THROTTLED, ERR_CONFLICT "peer_exists", ERR_INVALID for bad fields. */
json_t *peers_enrol(struct db *db, const char *dir, const struct caller *who, const struct peer_enrolment *in,
                    struct err *e);

/* On the node: the body of an enrolment request with this node's id and key ({"code","node_id","name",
 * "public_key"[,"url"]}). ERR_INVALID "invalid_code" when the code cannot be one. */
json_t *peers_enrol_request(struct db *db, const char *dir, const char *code, const char *self_url, struct err *e);

/* On the node: store the hub that answered an enrolment at hub_url (NULL: an answer carried by hand,
 * for a hub reached only by bundles), pinning its key. name (may be NULL:
 * the hub's own name) is what the hub will be called here; fingerprint (may be NULL) must match the
 * hub's key when given. *out receives the stored row. */
int peers_enrol_accept(struct db *db, const struct caller *who, const char *hub_url, const char *name,
                       const char *fingerprint, const json_t *answer, struct peer_row *out, struct err *e);

/* Every peer: [{"id","name","url","public_key","fingerprint","sites","enrolled_at","last_attempt_at",
 * "last_success_at","last_error"}] (times RFC 3339 or null). */
json_t *peers_list(struct db *db, struct err *e);
int peers_get_by_name(struct db *db, const char *name, struct peer_row *out, struct err *e);
/* The peer of node id; ERR_NOT_FOUND "no_such_peer" when it is not enrolled. */
int peers_get(struct db *db, const char *id, struct peer_row *out, struct err *e);
/* The peers that have a url (those this node syncs with): a malloc'ed array the caller frees. */
int peers_sync_targets(struct db *db, struct peer_row **rows, size_t *n, struct err *e);
/* Remove a peer and its sync cursors. ERR_NOT_FOUND "no_such_peer". Audit-logged as peer.remove. */
int peers_remove(struct db *db, const struct caller *who, const char *name, struct err *e);
/* Note the outcome of a sync attempt with a peer (error NULL: success). */
int peers_record_attempt(struct db *db, const char *peer_id, const char *error, struct err *e);

/* ---- signed sync requests ---- */

/* Issue a nonce for one signed request: random, single use, valid PEERS_NONCE_TTL_MS. */
int peers_nonce_issue(struct db *db, char nonce[CRYPTO_TOKEN_LEN], struct err *e);

/* A sync request as received: the header values may be NULL when absent. */
struct peers_signed_request {
    const char *method, *path;
    const void *body;
    size_t len;
    const char *node_id, *timestamp, *nonce, *signature;
};

/* Check a signed request: the node is an enrolled peer, the nonce was issued here and is unused and
 * unexpired (it is used up now, whatever follows), and the signature over
 * "sanad-sync-v1\nMETHOD\nPATH\n<sha256 hex of body>\n<timestamp>\n<nonce>\n<node id>" verifies with the
 * peer's pinned key. 0 and peer_id filled, or ERR_UNAUTHENTICATED with code unknown_peer /
 * invalid_nonce / bad_signature. Failures are audit-logged (sync.auth) with the caller's address. */
int peers_authenticate(struct db *db, const struct caller *who, const struct peers_signed_request *r,
                       char peer_id[ID_LEN], struct err *e);

/* Sign a request as the node of key k (timestamp: ms, as sent in X-Sanad-Timestamp). */
int peers_sign_request(const struct node_key *k, const char *method, const char *path, const void *body,
                       size_t len, const char *timestamp, const char *nonce, const char *node_id,
                       char sig[CRYPTO_SIGN_B64_LEN], struct err *e);

/* Sign an answer to the request that carried `nonce`: over
 * "sanad-sync-response-v1\n<nonce>\n<sha256 hex of body>", with the node key in dir. */
int peers_sign_response(const char *dir, const char *nonce, const void *body, size_t len,
                        char sig[CRYPTO_SIGN_B64_LEN], struct err *e);
/* Check such a signature with a peer's pinned key: 0, or ERR_UNAUTHENTICATED "bad_response_signature". */
int peers_check_response(const char *public_key, const char *nonce, const void *body, size_t len,
                         const char *sig, struct err *e);

#endif
