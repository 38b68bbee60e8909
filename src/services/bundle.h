/* bundle.h — sync without a network: the change batches a peer lacks, written to a file that is signed by
 * this node and readable only by that peer, carried on a USB stick, and applied there exactly as a pushed
 * batch would be. See docs/sync.md, "Bundles".
 *
 * File layout (all lengths big-endian; the header is not secret, everything health-related is encrypted):
 *   "SANADBUNDLE/1\n"                          14 bytes
 *   u32 n, header: n bytes of JSON            {"format":"sanad-bundle/1","from":node id,"to":node id,
 *                                              "created_at":ms,"batches":B,"changes":C,"vector":{origin:seq}}
 *   sealed stream key                          CRYPTO_SEALED_KEY_LEN bytes, for "to"'s node key
 *   stream header                              CRYPTO_STREAM_HEADER_LEN bytes
 *   B + 1 chunks: u32 n, n bytes              each a sync batch (zstd), encrypted; the last one empty and
 *                                              marked final
 *   signature                                  64 bytes, Ed25519 by "from"'s node key over all the above
 *
 * Ownership: buffers are the caller's; bundle_head_free() releases a parsed head.
 */
#ifndef SANAD_BUNDLE_H
#define SANAD_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/id.h"
#include "services/sync.h"
#include "store/db.h"
#include "store/peers.h"

#define BUNDLE_FORMAT "sanad-bundle/1"
#define BUNDLE_MAGIC "SANADBUNDLE/1\n"
#define BUNDLE_HEADER_MAX (64u << 10)
#define BUNDLE_MAX_BYTES ((size_t)2 << 30)      /* a larger file is refused before it is read */
#define BUNDLE_MAX_BATCHES 100000

struct bundle_summary {
    char peer_name[PEER_NAME_MAX + 1];    /* the other side, as this node calls it */
    int64_t created_at;
    int64_t batches, changes;       /* in the bundle */
    size_t bytes;                   /* of the file */
    struct sync_report applied;     /* import: what applying its batches did */
};

/* The clear part of a bundle, checked for shape only (nothing is trusted before the signature is). */
struct bundle_head {
    char from[ID_LEN], to[ID_LEN];
    int64_t created_at, batches, changes;
    json_t *vector;
    const unsigned char *sealed_key, *stream_header;
    const unsigned char *chunks;    /* the chunks, up to the signature */
    size_t chunks_len;
    size_t signed_len;              /* bytes covered by the signature */
    const unsigned char *signature;
};

/* Parse the layout of data (len bytes): 0, or -1 with ERR_INVALID "invalid_bundle" (ERR_TOO_LARGE
 * "bundle_too_large"). */
int bundle_parse(const void *data, size_t len, struct bundle_head *h, struct err *e);
void bundle_head_free(struct bundle_head *h);

/* Write into *out a bundle for the peer called peer_name holding the changes it may receive that it is
 * not known to hold (all = 1: every change, as for a peer that lost its data). This node's key is read
 * from dir. Changes nothing here: a bundle may be lost on the way, and the peer's own bundles (or a sync)
 * tell what it holds. */
int bundle_export(struct db *db, const char *dir, const char *peer_name, int all, struct buf *out,
                  struct bundle_summary *s, struct err *e);

/* Check and apply a bundle: it must be addressed to this node, signed by an enrolled peer's pinned key
 * and intact, or nothing is applied (ERR_INVALID "invalid_bundle", "not_for_this_node", "bad_signature",
 * ERR_UNAUTHENTICATED "unknown_sender"). Its batches are then applied one transaction each, as if the
 * peer had pushed them (idempotent: a bundle applied twice changes nothing the second time), and what the
 * peer holds is remembered so that it is not sent to it again. */
int bundle_import(struct db *db, const char *dir, const void *data, size_t len, struct bundle_summary *s,
                  struct err *e);

#endif
