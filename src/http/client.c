/* client.c — libcurl requests to peers: enrolment, and the signed HTTP sync transport. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/util.h"
#include "http/client.h"
#include "services/changelog.h"
#include "services/peers.h"

#ifndef SANAD_VERSION
#define SANAD_VERSION "0.0.0-dev"
#endif

#define SYNC_CONTENT_TYPE "application/zstd"
#define CLIENT_SMALL_ANSWER_MAX (64u << 10)     /* nonces, enrolment answers, errors */

static pthread_once_t client_once = PTHREAD_ONCE_INIT;
static int client_ready;

static void client_global_init(void)
{
    client_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

/* One HTTP answer: status, body (bounded), and the headers the protocol reads. */
struct client_answer {
    long status;
    struct buf body;
    char signature[CRYPTO_SIGN_B64_LEN + 8];
    char next_nonce[CRYPTO_TOKEN_LEN + 8];
    char content_type[128];
    int overflow;
};

static size_t on_body(char *data, size_t size, size_t n, void *ctx)
{
    struct client_answer *a = ctx;

    if (buf_append(&a->body, data, size * n) < 0) {
        a->overflow = 1;
        return 0;   /* stops the transfer */
    }
    return size * n;
}

/* Copy the value of "Name: value\r\n" into out when the line is that header. */
static void header_take(const char *line, size_t n, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name), vl;

    if (n <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return;
    line += nl + 1;
    n -= nl + 1;
    while (n && (*line == ' ' || *line == '\t'))
        line++, n--;
    while (n && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' '))
        n--;
    vl = n < outlen - 1 ? n : outlen - 1;
    memcpy(out, line, vl);
    out[vl] = '\0';
}

static size_t on_header(char *data, size_t size, size_t n, void *ctx)
{
    struct client_answer *a = ctx;
    size_t len = size * n;

    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {   /* a new answer (after a 100 Continue, say) */
        a->signature[0] = '\0';
        a->next_nonce[0] = '\0';
        a->content_type[0] = '\0';
    }
    header_take(data, len, PEERS_HEADER_SIGNATURE, a->signature, sizeof(a->signature));
    header_take(data, len, PEERS_HEADER_NEXT_NONCE, a->next_nonce, sizeof(a->next_nonce));
    header_take(data, len, "Content-Type", a->content_type, sizeof(a->content_type));
    return len;
}

static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    const atomic_int *abort_flag = ctx;

    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return abort_flag && atomic_load(abort_flag) ? 1 : 0;
}

static int aborted(const struct client_options *o)
{
    return o->abort && atomic_load(o->abort);
}

/* POST body to url. 0 with *a filled (any HTTP status), or -1 when no answer came. share (may be NULL):
 * the session's connections, kept open from one request to the next. */
static int client_post(const struct client_options *o, CURLSH *share, const char *url, const char *content_type,
                       const void *body, size_t len, struct curl_slist *extra, size_t answer_max,
                       struct client_answer *a, struct err *e)
{
    char errbuf[CURL_ERROR_SIZE], ct[160];
    struct curl_slist *headers = NULL, *h;
    CURL *c;
    CURLcode rc;

    memset(a, 0, sizeof(*a));
    buf_init(&a->body, answer_max);
    pthread_once(&client_once, client_global_init);
    if (!client_ready)
        return err_set(e, ERR_INTERNAL, "curl_init", "cannot initialise libcurl");
    if (aborted(o))
        return err_set(e, ERR_INTERNAL, "aborted", "stopped before contacting the peer");
    c = curl_easy_init();
    if (c == NULL)
        return err_set(e, ERR_INTERNAL, "curl_init", "cannot initialise libcurl");
    snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
    headers = curl_slist_append(headers, ct);
    headers = headers ? curl_slist_append(headers, "Expect:") : NULL;   /* no 100-continue round trip */
    for (h = extra; headers && h; h = h->next)
        headers = curl_slist_append(headers, h->data);
    if (headers == NULL) {
        curl_easy_cleanup(c);
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    }
    errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)CLIENT_CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)CLIENT_TOTAL_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "sanad/" SANAD_VERSION);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)o->abort);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, o->insecure ? 0L : 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, o->insecure ? 0L : 2L);
    if (share)
        curl_easy_setopt(c, CURLOPT_SHARE, share);
    rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
    curl_easy_cleanup(c);
    curl_slist_free_all(headers);
    if (rc == CURLE_OK)
        return 0;
    if (a->overflow)
        return err_set(e, ERR_TOO_LARGE, "answer_too_large", "the peer's answer is larger than %zu bytes", answer_max);
    if (rc == CURLE_ABORTED_BY_CALLBACK)
        return err_set(e, ERR_INTERNAL, "aborted", "stopped while talking to the peer");
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE)
        return err_set(e, ERR_UNAUTHENTICATED, "tls_verify_failed",
                       "cannot verify the TLS certificate of %s (%s); for a self-signed certificate, use --insecure "
                       "(the sync signatures still protect the data's integrity)", url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    return err_set(e, ERR_INTERNAL, "peer_unreachable", "cannot reach %s: %s", url,
                   errbuf[0] ? errbuf : curl_easy_strerror(rc));
}

static void answer_free(struct client_answer *a)
{
    buf_free(&a->body);
}

static enum err_kind kind_for_status(long status)
{
    switch (status) {
    case 400: return ERR_INVALID;
    case 401: return ERR_UNAUTHENTICATED;
    case 403: return ERR_FORBIDDEN;
    case 404: return ERR_NOT_FOUND;
    case 409: return ERR_CONFLICT;
    case 413: return ERR_TOO_LARGE;
    case 422: return ERR_UNPROCESSABLE;
    case 429: return ERR_THROTTLED;
    default: return ERR_INTERNAL;
    }
}

/* A refusal from the peer, as its own error code and message when it sent the JSON envelope. */
static int answer_error(const struct client_answer *a, const char *what, struct err *e)
{
    json_t *v = json_loadb(a->body.data, a->body.len, 0, NULL);
    json_t *err = v ? json_object_get(v, "error") : NULL;
    const char *code = json_get_string(err, "code"), *msg = json_get_string(err, "message");

    if (code && msg)
        err_set(e, kind_for_status(a->status), code, "the peer refused %s (%ld %.40s): %.160s", what, a->status, code,
                msg);
    else
        err_set(e, kind_for_status(a->status), "peer_error", "the peer answered %s with HTTP %ld", what, a->status);
    json_decref(v);
    return -1;
}

static void url_join(char *out, size_t n, const char *base, const char *path)
{
    size_t bl = strlen(base);

    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    snprintf(out, n, "%.*s%s", (int)bl, base, path);
}

int client_enrol(const struct client_options *o, const char *hub_url, const json_t *request, json_t **answer,
                 struct err *e)
{
    char url[PEER_URL_MAX + 64], *body;
    struct client_answer a;
    size_t len;
    int rc = -1;

    *answer = NULL;
    body = json_dump_compact(request, &len);
    if (body == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    url_join(url, sizeof(url), hub_url, "/api/v1/peers/enroll");
    if (client_post(o, NULL, url, "application/json", body, len, NULL, CLIENT_SMALL_ANSWER_MAX, &a, e) < 0)
        goto done;
    if (a.status != 201) {
        answer_error(&a, "the enrolment", e);
        goto done;
    }
    *answer = json_parse_object(a.body.data, a.body.len, e);
    rc = *answer ? 0 : -1;
done:
    crypto_wipe(body, len);     /* it holds the one-time code */
    free(body);
    answer_free(&a);
    return rc;
}

/* ---- the signed sync transport ---- */

/* A session's requests go one after the other, but not always from the same thread (the next batch is
 * fetched on a second one): what they share is under locks. */
struct http_transport {
    const struct client_options *o;
    const struct peer_row *peer;
    struct node_key key;
    char node_id[ID_LEN];
    CURLSH *share;                  /* connections (and TLS sessions, addresses) kept for the session */
    pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];   /* one per kind: libcurl nests them */
    pthread_mutex_t nonce_lock;
    char next_nonce[CRYPTO_TOKEN_LEN];  /* from the last signed answer, for the next request; "" none */
};

static void share_lock(CURL *c, curl_lock_data data, curl_lock_access access, void *ctx)
{
    struct http_transport *t = ctx;

    (void)c;
    (void)access;
    pthread_mutex_lock(&t->share_lock[(unsigned)data < CURL_LOCK_DATA_LAST ? data : 0]);
}

static void share_unlock(CURL *c, curl_lock_data data, void *ctx)
{
    struct http_transport *t = ctx;

    (void)c;
    pthread_mutex_unlock(&t->share_lock[(unsigned)data < CURL_LOCK_DATA_LAST ? data : 0]);
}

/* Keep the session's connections between its requests: a request on a link with a long round trip
 * (satellite, 2G) would otherwise pay a TCP and a TLS handshake first. NULL share: each connects anew. */
static void transport_share_init(struct http_transport *t)
{
    int i;

    for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&t->share_lock[i], NULL);
    pthread_once(&client_once, client_global_init);
    if (!client_ready || (t->share = curl_share_init()) == NULL)
        return;
    if (curl_share_setopt(t->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK
        || curl_share_setopt(t->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK
        || curl_share_setopt(t->share, CURLSHOPT_USERDATA, t) != CURLSHE_OK
        || curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK
        || curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK
        || curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK) {
        curl_share_cleanup(t->share);
        t->share = NULL;
    }
}

static void transport_share_free(struct http_transport *t)
{
    int i;

    if (t->share)
        curl_share_cleanup(t->share);
    t->share = NULL;
    for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&t->share_lock[i]);
}

/* The nonce the last answer brought, taken (1), or none (0). */
static int transport_take_nonce(struct http_transport *t, char nonce[CRYPTO_TOKEN_LEN])
{
    int have;

    pthread_mutex_lock(&t->nonce_lock);
    have = t->next_nonce[0] != '\0';
    if (have)
        memcpy(nonce, t->next_nonce, CRYPTO_TOKEN_LEN);
    t->next_nonce[0] = '\0';
    pthread_mutex_unlock(&t->nonce_lock);
    return have;
}

/* Keep the nonce a signed answer brought for the next request, when it is one (32 bytes, base64url). */
static void transport_keep_nonce(struct http_transport *t, const char *n)
{
    unsigned char raw[32];

    if (strlen(n) != CRYPTO_TOKEN_LEN - 1 || crypto_b64url_decode_exact(n, raw, sizeof(raw)) < 0)
        return;
    pthread_mutex_lock(&t->nonce_lock);
    memcpy(t->next_nonce, n, CRYPTO_TOKEN_LEN);
    pthread_mutex_unlock(&t->nonce_lock);
}

/* Ask the peer for a nonce, checking it answers as the enrolled node. */
static int transport_nonce(struct http_transport *t, char nonce[CRYPTO_TOKEN_LEN], struct err *e)
{
    char url[PEER_URL_MAX + 64];
    struct client_answer a;
    json_t *v = NULL;
    const char *n, *node;
    int rc = -1;

    url_join(url, sizeof(url), t->peer->url, "/api/v1/sync/nonce");
    if (client_post(t->o, t->share, url, "application/json", NULL, 0, NULL, CLIENT_SMALL_ANSWER_MAX, &a, e) < 0)
        goto done;
    if (a.status != 200) {
        answer_error(&a, "a nonce", e);
        goto done;
    }
    if ((v = json_parse_object(a.body.data, a.body.len, e)) == NULL)
        goto done;
    n = json_get_string(v, "nonce");
    node = json_get_string(v, "node_id");
    if (n == NULL || strlen(n) != CRYPTO_TOKEN_LEN - 1) {
        err_set(e, ERR_INVALID, "bad_nonce", "the peer at %s answered without a usable nonce", t->peer->url);
        goto done;
    }
    if (node == NULL || strcmp(node, t->peer->id) != 0) {
        err_set(e, ERR_UNAUTHENTICATED, "wrong_peer", "the node at %s is %.36s, not the enrolled peer '%s' (%s)",
                t->peer->url, node ? node : "unknown", t->peer->name, t->peer->id);
        goto done;
    }
    memcpy(nonce, n, CRYPTO_TOKEN_LEN);
    rc = 0;
done:
    json_decref(v);
    answer_free(&a);
    return rc;
}

/* A signed POST of body to path with nonce; the answer must be 200, of content type want_type, and signed
 * by the peer for this nonce. The nonce it brings for the next request is kept. */
static int transport_post_with(struct http_transport *t, const char *nonce, const char *path,
                               const char *content_type, const void *body, size_t len, const char *want_type,
                               size_t answer_max, struct client_answer *a, struct err *e)
{
    char url[PEER_URL_MAX + 64], ts[24], sig[CRYPTO_SIGN_B64_LEN], line[256];
    struct curl_slist *headers = NULL;
    size_t tl;
    int rc = -1;

    memset(a, 0, sizeof(*a));
    buf_init(&a->body, 0);
    snprintf(ts, sizeof(ts), "%lld", (long long)now_ms());
    if (peers_sign_request(&t->key, "POST", path, body, len, ts, nonce, t->node_id, sig, e) < 0)
        return -1;
    snprintf(line, sizeof(line), "%s: %s", PEERS_HEADER_NODE, t->node_id);
    headers = curl_slist_append(headers, line);
    snprintf(line, sizeof(line), "%s: %s", PEERS_HEADER_TIMESTAMP, ts);
    headers = headers ? curl_slist_append(headers, line) : NULL;
    snprintf(line, sizeof(line), "%s: %s", PEERS_HEADER_NONCE, nonce);
    headers = headers ? curl_slist_append(headers, line) : NULL;
    snprintf(line, sizeof(line), "%s: %s", PEERS_HEADER_SIGNATURE, sig);
    headers = headers ? curl_slist_append(headers, line) : NULL;
    if (headers == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    url_join(url, sizeof(url), t->peer->url, path);
    buf_free(&a->body);
    if (client_post(t->o, t->share, url, content_type, body, len, headers, answer_max, a, e) < 0)
        goto done;
    if (a->status != 200) {
        answer_error(a, path, e);
        goto done;
    }
    /* nothing of the answer is used before its signature checks out */
    if (peers_check_response(t->peer->public_key, nonce, a->body.data, a->body.len,
                             a->signature[0] ? a->signature : NULL, e) < 0)
        goto done;
    tl = strlen(want_type);
    if (strncasecmp(a->content_type, want_type, tl) != 0 || (a->content_type[tl] != '\0' && a->content_type[tl] != ';')) {
        err_set(e, ERR_INVALID, "bad_content_type", "the peer answered %s with '%.60s', not %s", path,
                a->content_type, want_type);
        goto done;
    }
    transport_keep_nonce(t, a->next_nonce);
    rc = 0;
done:
    curl_slist_free_all(headers);
    return rc;
}

/* transport_post_with() with the nonce the last answer brought, or else one asked for. A nonce brought
 * by an answer may be gone when it is used (expired while a batch was applied, or purged): the request,
 * refused before anything was read, is then made again with a nonce asked for. */
static int transport_post(struct http_transport *t, const char *path, const char *content_type, const void *body,
                          size_t len, const char *want_type, size_t answer_max, struct client_answer *a,
                          struct err *e)
{
    char nonce[CRYPTO_TOKEN_LEN];

    if (transport_take_nonce(t, nonce)) {
        if (transport_post_with(t, nonce, path, content_type, body, len, want_type, answer_max, a, e) == 0)
            return 0;
        if (a->status != 401 || strcmp(e->code, "invalid_nonce") != 0)
            return -1;
        answer_free(a);
        err_clear(e);
    }
    memset(a, 0, sizeof(*a));
    buf_init(&a->body, 0);
    if (transport_nonce(t, nonce, e) < 0)
        return -1;
    return transport_post_with(t, nonce, path, content_type, body, len, want_type, answer_max, a, e);
}

static int transport_pull(void *ctx, const json_t *vector, size_t max_bytes, struct buf *batch, struct err *e)
{
    struct http_transport *t = ctx;
    struct client_answer a;
    json_t *req;
    char *body;
    size_t len;
    int rc = -1;

    req = json_pack("{s:o,s:I}", "vector", vector ? json_incref((json_t *)vector) : json_object(), "max_bytes",
                    (json_int_t)max_bytes);
    body = req ? json_dump_compact(req, &len) : NULL;
    json_decref(req);
    if (body == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    if (transport_post(t, "/api/v1/sync/pull", "application/json", body, len, SYNC_CONTENT_TYPE,
                       SYNC_MAX_COMPRESSED_BYTES, &a, e) == 0) {
        if (buf_append(batch, a.body.data, a.body.len) < 0)
            err_set(e, ERR_TOO_LARGE, "batch_too_large", "the peer's batch (%zu bytes) is larger than allowed",
                    a.body.len);
        else
            rc = 0;
    }
    answer_free(&a);
    free(body);
    return rc;
}

static int transport_push(void *ctx, const void *batch, size_t len, json_t **vector_out, struct err *e)
{
    struct http_transport *t = ctx;
    struct client_answer a;
    json_t *v = NULL, *vec;
    int rc = -1;

    if (vector_out)
        *vector_out = NULL;
    if (transport_post(t, "/api/v1/sync/push", SYNC_CONTENT_TYPE, batch, len, "application/json",
                       CLIENT_SMALL_ANSWER_MAX * 16, &a, e) < 0)
        goto done;
    if ((v = json_parse_object(a.body.data, a.body.len, e)) == NULL)
        goto done;
    vec = json_object_get(v, "vector");
    if (!json_is_object(vec)) {
        err_set(e, ERR_INVALID, "bad_push_answer", "the peer's answer to a push has no vector");
        goto done;
    }
    if (vector_out)
        *vector_out = json_incref(vec);
    rc = 0;
done:
    json_decref(v);
    answer_free(&a);
    return rc;
}

/* The nonce the last session with each peer was left with, for the next session of this process (the
 * sync thread of a server: its next round, or "sync now"): used while well inside its validity, so that
 * a stale one seldom costs a refused request. */
#define KEPT_NONCES 64
#define KEPT_NONCE_MAX_AGE_US ((PEERS_NONCE_TTL_MS - 30000) * 1000)
static struct {
    char peer[ID_LEN];
    char nonce[CRYPTO_TOKEN_LEN];
    int64_t at_us;          /* monotonic */
} kept[KEPT_NONCES];
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;

static void kept_take(const char *peer, char nonce[CRYPTO_TOKEN_LEN])
{
    int i;

    nonce[0] = '\0';
    pthread_mutex_lock(&kept_lock);
    for (i = 0; i < KEPT_NONCES; i++)
        if (kept[i].peer[0] && strcmp(kept[i].peer, peer) == 0) {
            if (monotonic_us() - kept[i].at_us < KEPT_NONCE_MAX_AGE_US)
                memcpy(nonce, kept[i].nonce, CRYPTO_TOKEN_LEN);
            kept[i].peer[0] = '\0';
            break;
        }
    pthread_mutex_unlock(&kept_lock);
}

static void kept_put(const char *peer, const char *nonce)
{
    int i, slot = 0;

    if (nonce[0] == '\0')
        return;
    pthread_mutex_lock(&kept_lock);
    for (i = 0; i < KEPT_NONCES; i++) {
        if (kept[i].peer[0] == '\0' || strcmp(kept[i].peer, peer) == 0) {
            slot = i;
            break;
        }
        if (kept[i].at_us < kept[slot].at_us)
            slot = i;   /* else the oldest goes */
    }
    snprintf(kept[slot].peer, ID_LEN, "%s", peer);
    memcpy(kept[slot].nonce, nonce, CRYPTO_TOKEN_LEN);
    kept[slot].at_us = monotonic_us();
    pthread_mutex_unlock(&kept_lock);
}

int client_sync_peer(struct db *db, const char *dir, const struct peer_row *peer, size_t max_bytes,
                     const struct client_options *o, struct sync_summary *s, struct err *e)
{
    struct sync_transport tr;
    struct http_transport t;
    struct err e2;
    int rc;

    memset(s, 0, sizeof(*s));
    memset(&t, 0, sizeof(t));
    if (peer->url[0] == '\0')
        return err_set(e, ERR_INVALID, "no_url", "peer '%s' has no url: it syncs with this node, not the other way round",
                       peer->name);
    t.o = o;
    t.peer = peer;
    if (changelog_node_id(db, t.node_id, e) < 0 || peers_node_key_load(dir, &t.key, e) < 0)
        return -1;
    tr.ctx = &t;
    tr.pull = transport_pull;
    tr.push = transport_push;
    tr.concurrent = 1;      /* the transport only signs and talks HTTP: no database */
    pthread_mutex_init(&t.nonce_lock, NULL);
    transport_share_init(&t);
    kept_take(peer->id, t.next_nonce);
    rc = sync_with_peer(db, peer->id, &tr, max_bytes, s, e);
    kept_put(peer->id, t.next_nonce);
    transport_share_free(&t);
    pthread_mutex_destroy(&t.nonce_lock);
    peers_node_key_wipe(&t.key);
    err_clear(&e2);
    if (peers_record_attempt(db, peer->id, rc < 0 ? e->message : NULL, &e2) < 0)
        log_warn("sync: cannot record the attempt with peer '%s': %s", peer->name, e2.message);
    return rc;
}
