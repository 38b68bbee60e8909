/* router.c — matching a request to its route, and the central checks every API request passes:
 * session, permission, CSRF (or, on PERM_PEER routes, a peer node's request signature), then the
 * handler. Nothing here knows any one resource. */
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "core/log.h"
#include "services/audit.h"
#include "services/auth.h"
#include "services/peers.h"
#include "http/http.h"

#define SESSION_COOKIE "sanad_session"

/* Does path match pattern? Captures {name} segments into params (pointers into the arena copy). */
static int route_path_match(const char *pattern, const char *path, const char **params, int *nparams)
{
    const char *p = pattern, *s = path;
    int n = 0;

    while (*p && *s) {
        if (*p == '{') {
            const char *end = strchr(s, '/');
            size_t len = end ? (size_t)(end - s) : strlen(s);

            if (len == 0 || n >= ROUTE_MAX_PARAMS)
                return 0;
            params[n++] = s;   /* terminated later by the caller's copy */
            s += len;
            p = strchr(p, '}');
            if (p == NULL)
                return 0;
            p++;
        } else if (*p++ != *s++) {
            return 0;
        }
    }
    if (*p || *s)
        return 0;
    *nparams = n;
    return 1;
}

const struct route *router_match(const char *method, const char *path, const char **params, int *nparams,
                                 int *path_known)
{
    size_t i;

    *path_known = 0;
    *nparams = 0;
    for (i = 0; i < routes_count; i++) {
        if (!route_path_match(routes[i].pattern, path, params, nparams))
            continue;
        *path_known = 1;
        /* HEAD is GET without the body (libmicrohttpd leaves the body out) */
        if (strcmp(routes[i].method, method) == 0 || (strcmp(method, "HEAD") == 0 && strcmp(routes[i].method, "GET") == 0))
            return &routes[i];
    }
    return NULL;
}

/* The token from "Authorization: Bearer T" or, failing that, the session cookie. */
static const char *request_token(struct request *req, int *via_cookie)
{
    const char *auth = req_header(req, MHD_HTTP_HEADER_AUTHORIZATION);

    *via_cookie = 0;
    if (auth && strncasecmp(auth, "Bearer ", 7) == 0)
        return auth + 7;
    *via_cookie = 1;
    return MHD_lookup_connection_value(req->conn, MHD_COOKIE_KIND, SESSION_COOKIE);
}

static int method_is_safe(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
}

/* A peer node's request: no session, no CSRF (nothing is sent implicitly); the node id, nonce and
 * signature headers must check out before anything is read or applied. */
static int router_check_peer(struct request *req, struct err *e)
{
    struct peers_signed_request sr;

    sr.method = req->method;
    sr.path = req->path;
    sr.body = req->body.data;
    sr.len = req->body.len;
    sr.node_id = req_header(req, PEERS_HEADER_NODE);
    sr.timestamp = req_header(req, PEERS_HEADER_TIMESTAMP);
    sr.nonce = req_header(req, PEERS_HEADER_NONCE);
    sr.signature = req_header(req, PEERS_HEADER_SIGNATURE);
    return peers_authenticate(req->db, &req->caller, &sr, req->peer_id, e);
}

int router_authorize(struct request *req)
{
    const struct route *r = req->route;
    const char *csrf;
    struct err e;

    if (req->authorized)
        return 0;
    err_clear(&e);
    if (r->perm != PERM_PEER)
        req->token = request_token(req, &req->via_cookie);
    if (r->perm == PERM_PEER) {
        if (router_check_peer(req, &e) < 0) {
            reply_error(req, &e);
            return -1;
        }
    } else if (r->perm != PERM_PUBLIC) {
        if (req->token == NULL) {
            reply_error_code(req, 401, "not_signed_in", "sign in first; the session is missing or has ended");
            return -1;
        }
        if (auth_session(req->db, req->token, &req->caller, req->csrf, &e) < 0) {
            reply_error(req, &e);
            return -1;
        }
        if (!perm_allows(req->caller.role, r->perm)) {
            audit_record(req->db, &req->caller, "access.denied", "route", r->pattern, NULL, "denied", &e);
            reply_error_code(req, 403, "forbidden", "your role (%s) may not do this", role_name(req->caller.role));
            return -1;
        }
        /* a cookie is sent by the browser on its own, so a write through it must prove it came from our
         * page by echoing the session's CSRF token; bearer tokens are never sent implicitly */
        if (req->via_cookie && !method_is_safe(req->method)) {
            csrf = req_header(req, "X-CSRF-Token");
            if (csrf == NULL || strlen(csrf) != CRYPTO_TOKEN_LEN - 1
                || !crypto_equal(csrf, req->csrf, CRYPTO_TOKEN_LEN - 1)) {
                reply_error_code(req, 403, "csrf_failed",
                                 "this change needs the X-CSRF-Token header given at sign-in");
                return -1;
            }
        }
    }
    req->authorized = 1;
    return 0;
}

void router_dispatch(struct request *req)
{
    const struct route *r = req->route;

    if (router_authorize(req) < 0)
        return;
    r->handler(req);
    if (req->response == NULL) {
        log_error("http: handler for %s %s gave no reply", r->method, r->pattern);
        reply_error_code(req, 500, "internal_error", "the server failed to answer; try again");
    }
}
