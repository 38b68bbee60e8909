/* client.h — the HTTP client of replication (libcurl): enrolment with a hub, and a sync session with a
 * peer in which every request is signed with this node's key and every answer is checked against the
 * peer's pinned key before it is used. See docs/sync.md ("Protocol").
 *
 * Limits: connect within CLIENT_CONNECT_TIMEOUT_S, each request within CLIENT_TOTAL_TIMEOUT_S, answers
 * of at most SYNC_MAX_COMPRESSED_BYTES; redirects are not followed; only http and https.
 * TLS certificates are verified unless insecure is set (self-signed clinic certificates): even then no
 * man in the middle can alter or forge a request or an answer undetected, as both are signed; he can
 * read them, though (docs/sync.md).
 * Ownership: json_t outputs are new references the caller json_decref()s.
 */
#ifndef SANAD_CLIENT_H
#define SANAD_CLIENT_H

#include <stdatomic.h>
#include <stddef.h>

#include <jansson.h>

#include "core/err.h"
#include "services/sync.h"
#include "store/db.h"
#include "store/peers.h"

#define CLIENT_CONNECT_TIMEOUT_S 10
#define CLIENT_TOTAL_TIMEOUT_S 120

struct client_options {
    int insecure;               /* skip TLS certificate verification */
    const atomic_int *abort;    /* may be NULL; when it becomes non-zero, transfers stop within a second */
};

/* POST an enrolment request ({"code",...}, see peers_enrol_request) to hub_url/api/v1/peers/enroll;
 * *answer receives the hub's {"node_id","name","public_key"}. The hub's refusal comes back as its error
 * code and message. */
int client_enrol(const struct client_options *o, const char *hub_url, const json_t *request, json_t **answer,
                 struct err *e);

/* One sync session with an enrolled peer that has a url, over HTTP, as this node (key in dir): pull and
 * push until both sides are even (sync_with_peer). The attempt and its outcome are recorded in the
 * peer's row (last_attempt_at, last_success_at, last_error). *s receives what moved. */
int client_sync_peer(struct db *db, const char *dir, const struct peer_row *peer, size_t max_bytes,
                     const struct client_options *o, struct sync_summary *s, struct err *e);

#endif
