/* api_sync.c — replication between nodes over HTTP: enrolment (POST /api/v1/peers/enroll), nonces and
 * signed pull/push (POST /api/v1/sync/nonce|pull|push), and for admins the sync status and the
 * conflicts to review (GET /api/v1/sync/status, GET|PUT /api/v1/sync/settings, GET /api/v1/conflicts,
 * POST .../{id}/resolve), and "sync now" (POST /api/v1/sync/run, through the sync thread of http/syncer.c).
 * The router has checked a peer's request signature before pull and push run (PERM_PEER); their answers
 * are signed here with this node's key. See docs/sync.md ("Protocol"). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "core/log.h"
#include "core/util.h"
#include "http/http.h"
#include "http/syncer.h"
#include "services/changelog.h"
#include "services/peers.h"
#include "services/sync.h"

#define SYNC_CONTENT_TYPE "application/zstd"

static const struct json_field enrol_fields[] = {
    { "code", JT_STRING, JF_REQUIRED, 64 },
    { "node_id", JT_STRING, JF_REQUIRED, 64 },
    { "name", JT_STRING, JF_REQUIRED, PEER_NAME_MAX },
    { "public_key", JT_STRING, JF_REQUIRED, 64 },
    { "url", JT_STRING, JF_NULLABLE, PEER_URL_MAX },
    { NULL, 0, 0, 0 },
};

void api_peers_enroll(struct request *req)
{
    struct peer_enrolment in;
    json_t *body, *out;
    struct err e;

    err_clear(&e);
    body = req_json_body(req, enrol_fields);
    if (body == NULL)
        return;
    in.code = json_get_string(body, "code");
    in.node_id = json_get_string(body, "node_id");
    in.name = json_get_string(body, "name");
    in.public_key = json_get_string(body, "public_key");
    in.url = json_get_string(body, "url");
    out = peers_enrol(req->db, peers_serve_dir(), &req->caller, &in, &e);
    json_decref(body);
    if (out == NULL)
        reply_error(req, &e);
    else
        reply_json(req, 201, out);
}

void api_sync_nonce(struct request *req)
{
    char nonce[CRYPTO_TOKEN_LEN], node[ID_LEN];
    struct err e;

    err_clear(&e);
    if (changelog_node_id(req->db, node, &e) < 0 || peers_nonce_issue(req->db, nonce, &e) < 0) {
        reply_error(req, &e);
        return;
    }
    reply_json(req, 200, json_pack("{s:s,s:s}", "nonce", nonce, "node_id", node));
}

/* Answer a peer with body bytes signed for the nonce of its request (which the router checked), and a
 * nonce for its next request (none when this node has too many outstanding: the peer then asks). */
static void reply_signed(struct request *req, const char *content_type, const void *body, size_t len)
{
    char sig[CRYPTO_SIGN_B64_LEN], next[CRYPTO_TOKEN_LEN];
    struct err e;
    int have_next;

    err_clear(&e);
    if (peers_sign_response(peers_serve_dir(), req_header(req, PEERS_HEADER_NONCE), body, len, sig, &e) < 0) {
        log_error("sync: cannot sign an answer: %s", e.message);
        reply_error(req, &e);
        return;
    }
    have_next = peers_nonce_issue(req->db, next, &e) == 0;
    reply_bytes(req, 200, content_type, body, len, 0);
    reply_add_header(req, PEERS_HEADER_SIGNATURE, sig);
    if (have_next)
        reply_add_header(req, PEERS_HEADER_NEXT_NONCE, next);
    reply_add_header(req, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
}

static const struct json_field pull_fields[] = {
    { "vector", JT_OBJECT, JF_REQUIRED, 0 },
    { "max_bytes", JT_INT, 0, 0 },
    { NULL, 0, 0, 0 },
};

void api_sync_pull(struct request *req)
{
    struct buf out;
    json_t *body;
    struct err e;

    err_clear(&e);
    body = req_json_body(req, pull_fields);
    if (body == NULL)
        return;
    buf_init(&out, SYNC_MAX_COMPRESSED_BYTES);
    if (sync_serve_pull(req->db, req->peer_id, body, &out, &e) < 0) {
        json_decref(body);
        buf_free(&out);
        reply_error(req, &e);
        return;
    }
    json_decref(body);
    reply_signed(req, SYNC_CONTENT_TYPE, out.data, out.len);
    buf_free(&out);
}

void api_sync_push(struct request *req)
{
    const char *ct = req_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    json_t *out;
    char *text;
    size_t len;
    struct err e;

    err_clear(&e);
    if (ct == NULL || strncasecmp(ct, SYNC_CONTENT_TYPE, strlen(SYNC_CONTENT_TYPE)) != 0
        || (ct[strlen(SYNC_CONTENT_TYPE)] != '\0' && ct[strlen(SYNC_CONTENT_TYPE)] != ';')) {
        reply_error_code(req, 415, "unsupported_media_type", "send the batch as Content-Type: " SYNC_CONTENT_TYPE);
        return;
    }
    out = sync_serve_push(req->db, req->peer_id, req->body.data, req->body.len, &e);
    if (out == NULL) {
        reply_error(req, &e);
        return;
    }
    text = json_dump_compact(out, &len);
    json_decref(out);
    if (text == NULL) {
        reply_error_code(req, 500, "out_of_memory", "out of memory");
        return;
    }
    reply_signed(req, "application/json; charset=utf-8", text, len);
    free(text);
}

void api_sync_status(struct request *req)
{
    struct err e;
    json_t *out, *syncer;

    err_clear(&e);
    out = sync_status(req->db, &e);
    if (out == NULL) {
        reply_error(req, &e);
        return;
    }
    /* the sync thread of this server: is a round running, and how did the last one end */
    if ((syncer = syncer_state()) == NULL)
        syncer = json_null();
    json_object_set_new(out, "syncer", syncer);
    reply_json(req, 200, out);
}

void api_sync_settings_get(struct request *req)
{
    struct err e;

    err_clear(&e);
    reply_result(req, 200, sync_settings_get(req->db, &e), &e);
}

void api_sync_settings_put(struct request *req)
{
    struct err e;
    json_t *body = req_json_body(req, NULL), *out;

    if (body == NULL)
        return;
    err_clear(&e);
    out = sync_settings_set(req->db, &req->caller, body, &e);
    json_decref(body);
    reply_result(req, 200, out, &e);
}

/* POST /api/v1/sync/run[?wait=SECONDS]: a round with every peer that has a url, now; waits up to wait
 * seconds (0 to 30, default 0) for it: 200 with what each session did, or 202 while it still runs. */
void api_sync_run(struct request *req)
{
    const char *wait_s = req_query(req, "wait"), *errstr;
    struct peer_row *rows = NULL;
    int64_t wait = 0;
    json_t *round = NULL;
    struct err e;
    size_t n = 0;
    int rc;

    err_clear(&e);
    if (wait_s && parse_int64(wait_s, 0, SYNCER_WAIT_MAX_MS / 1000, &wait, &errstr) < 0) {
        reply_error_code(req, 400, "invalid_wait", "wait must be a whole number of seconds from 0 to %d",
                         SYNCER_WAIT_MAX_MS / 1000);
        return;
    }
    if (peers_sync_targets(req->db, &rows, &n, &e) < 0) {
        reply_error(req, &e);
        return;
    }
    free(rows);
    if (n == 0) {
        reply_error_code(req, 409, "no_peer",
                         "no peer to sync with: none has a url ('sanad peer add' enrols this node with a hub)");
        return;
    }
    if (sync_record_run_request(req->db, &req->caller, &e) < 0) {
        reply_error(req, &e);
        return;
    }
    rc = syncer_run(wait * 1000, &round, &e);
    if (rc < 0)
        reply_error(req, &e);
    else if (rc == 0)
        reply_json(req, 202, json_pack("{s:s}", "state", "running"));
    else
        reply_json(req, 200, json_pack("{s:s, s:o}", "state", "done", "round", round));
}

void api_conflicts_list(struct request *req)
{
    const char *limit_s = req_query(req, "limit"), *errstr;
    int64_t limit = 100;
    struct err e;
    json_t *out;

    err_clear(&e);
    if (limit_s && parse_int64(limit_s, 1, 500, &limit, &errstr) < 0) {
        reply_error_code(req, 400, "invalid_limit", "limit must be a whole number from 1 to 500");
        return;
    }
    out = sync_conflicts(req->db, req_query(req, "cursor"), limit, &e);
    if (out == NULL)
        reply_error(req, &e);
    else
        reply_json(req, 200, out);
}

static const struct json_field resolve_fields[] = {
    { "choose", JT_STRING, JF_REQUIRED, 16 },
    { NULL, 0, 0, 0 },
};

void api_conflicts_resolve(struct request *req)
{
    json_t *body, *out;
    struct err e;

    err_clear(&e);
    body = req_json_body(req, resolve_fields);
    if (body == NULL)
        return;
    out = sync_conflict_resolve(req->db, &req->caller, req_param(req, 0), json_get_string(body, "choose"), &e);
    json_decref(body);
    if (out == NULL)
        reply_error(req, &e);
    else
        reply_json(req, 200, out);
}
