/* http.h — what API handlers see: the request, the route table entry, and the reply writers.
 *
 * A handler is `void api_x(struct request *req)`: it reads the request, calls one service function and
 * answers with exactly one reply_*() call (the "OrReply" helpers reply themselves on failure, so the
 * handler just returns). Authentication, permission, CSRF, body-size and method checks have all
 * happened before a handler runs (router.c).
 * Ownership: all request memory comes from req->arena and is freed in one place when the request ends;
 * reply_json() consumes (decrefs) the json_t it is given.
 */
#ifndef SANAD_HTTP_H
#define SANAD_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/crypto.h"
#include "core/err.h"
#include "core/json.h"
#include "services/caller.h"
#include "services/perm.h"
#include "store/db.h"

struct MHD_Connection;
struct MHD_Response;
struct request;

#define ROUTE_MAX_PARAMS 4
#define HTTP_DEFAULT_BODY_MAX 0     /* routes that take no body accept none */

typedef void (*route_handler)(struct request *req);

struct route {
    const char *method;
    const char *pattern;        /* "/api/v1/users/{id}": {name} matches one path segment */
    route_handler handler;
    enum perm perm;             /* checked by the router before the handler runs */
    size_t body_max;            /* bytes; larger bodies get 413 before they are read */
};

extern const struct route routes[];
extern const size_t routes_count;

struct request {
    struct arena arena;
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    const struct route *route;      /* NULL for static files and unknown paths */
    const char *params[ROUTE_MAX_PARAMS];
    int nparams;
    struct buf body;
    int body_too_large;
    int authorized;                 /* router_authorize() passed */
    struct caller caller;
    char csrf[CRYPTO_TOKEN_LEN];    /* the session's CSRF token, when signed in */
    const char *token;              /* the session token presented, when any */
    int via_cookie;                 /* the session came from the cookie (so CSRF applies) */
    char peer_id[37];               /* PERM_PEER routes: the node id whose signature the router checked */
    struct db *db;
    int tls;
    int64_t started_us;
    unsigned status;
    struct MHD_Response *response;
};

/* Request accessors. */
const char *req_header(struct request *req, const char *name);
const char *req_query(struct request *req, const char *name);
const char *req_param(struct request *req, int i);

/* Parse the body as a JSON object and check it against fields (NULL: the service checks every field
 * itself, as for chart items whose fields depend on their kind). On failure it replies 400/413/415
 * itself and returns NULL. The result is owned by the caller (json_decref). */
json_t *req_json_body(struct request *req, const struct json_field *fields);

/* Replies. Each sets req->response exactly once; a second reply is a programming error. */
void reply_json(struct request *req, unsigned status, json_t *body);
void reply_error(struct request *req, const struct err *e);
/* reply_json(status, out) when out is not NULL, else reply_error(e): the usual end of a handler. */
void reply_result(struct request *req, unsigned status, json_t *out, const struct err *e);
/* An error with a message per input field: {"error":{"code","message","fields":{path: message}}}; consumes
 * fields (may be NULL). */
void reply_error_fields(struct request *req, const struct err *e, json_t *fields);
void reply_error_code(struct request *req, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void reply_no_content(struct request *req);
void reply_bytes(struct request *req, unsigned status, const char *content_type, const void *data, size_t len,
                 int persistent);
/* Answer 200 with the bytes of an open file as a download (the reply takes fd and closes it):
 * Content-Disposition: attachment with name (UTF-8; see http_content_disposition),
 * Content-Security-Policy: sandbox; default-src 'none', Cache-Control: no-store, nosniff. */
void reply_download(struct request *req, int fd, uint64_t size, const char *content_type, const char *name);
/* The Content-Disposition value for a download named name (UTF-8): `attachment; filename="ASCII fallback";
 * filename*=UTF-8''percent-encoded` (RFC 6266, RFC 8187). Names longer than HTTP_DISPOSITION_NAME_MAX bytes
 * are cut (at a character); with outlen >= HTTP_DISPOSITION_MAX the value is always whole. */
#define HTTP_DISPOSITION_NAME_MAX 270
#define HTTP_DISPOSITION_MAX 1200
void http_content_disposition(const char *name, char *out, size_t outlen);
/* Add a header to the reply already made (e.g. Set-Cookie). */
void reply_add_header(struct request *req, const char *name, const char *value);

/* HTTP status for an error kind. */
unsigned http_status_for(enum err_kind kind);

/* Route matching, authentication and dispatch (router.c). */
const struct route *router_match(const char *method, const char *path, const char **params, int *nparams,
                                 int *path_known);
/* The central checks (session, permission, CSRF; or a peer's signature): 0 when the handler may run,
 * -1 after replying. Done once: the server runs it before reading a large body (server.c). */
int router_authorize(struct request *req);
void router_dispatch(struct request *req);

/* Static web files embedded in the binary (static.c). */
void static_serve(struct request *req);

/* API handlers, one file per resource. */
void api_health(struct request *req);
void api_session_create(struct request *req);
void api_session_delete(struct request *req);
void api_me(struct request *req);
void api_users_list(struct request *req);
void api_users_create(struct request *req);
void api_users_update(struct request *req);
void api_sites_list(struct request *req);
void api_sites_create(struct request *req);
void api_audit_list(struct request *req);
void api_patients_create(struct request *req);
void api_patients_search(struct request *req);
void api_patients_match(struct request *req);
void api_patients_get(struct request *req);
void api_patients_update(struct request *req);
void api_patients_delete(struct request *req);
void api_regfields_get(struct request *req);
void api_regfields_put(struct request *req);
void api_catalogues_search(struct request *req);
void api_forms_list(struct request *req);
void api_forms_create(struct request *req);
void api_forms_import(struct request *req);
void api_forms_get(struct request *req);
void api_forms_update(struct request *req);
void api_forms_versions(struct request *req);
void api_encounters_create(struct request *req);
void api_encounters_list(struct request *req);
void api_encounters_get(struct request *req);
void api_encounters_update(struct request *req);
void api_entries_create(struct request *req);
void api_entries_get(struct request *req);
void api_entries_withdraw(struct request *req);
void api_appointments_create(struct request *req);
void api_appointments_follow_up(struct request *req);
void api_appointments_list(struct request *req);
void api_appointments_queue(struct request *req);
void api_appointments_get(struct request *req);
void api_appointments_update(struct request *req);
void api_documents_upload(struct request *req);
void api_documents_list(struct request *req);
void api_documents_get(struct request *req);
void api_documents_content(struct request *req);
void api_documents_withdraw(struct request *req);
void api_problems_create(struct request *req);
void api_problems_list(struct request *req);
void api_problems_get(struct request *req);
void api_problems_update(struct request *req);
void api_allergies_create(struct request *req);
void api_allergies_list(struct request *req);
void api_allergies_get(struct request *req);
void api_allergies_update(struct request *req);
void api_medications_create(struct request *req);
void api_medications_list(struct request *req);
void api_medications_get(struct request *req);
void api_medications_update(struct request *req);
void api_immunizations_create(struct request *req);
void api_immunizations_list(struct request *req);
void api_immunizations_get(struct request *req);
void api_immunizations_update(struct request *req);
void api_immunizations_due(struct request *req);
void api_patient_summary(struct request *req);
void api_patient_timeline(struct request *req);
void api_schedule_get(struct request *req);
void api_schedule_put(struct request *req);
void api_peers_enroll(struct request *req);
void api_sync_nonce(struct request *req);
void api_sync_pull(struct request *req);
void api_sync_push(struct request *req);
void api_sync_status(struct request *req);
void api_sync_settings_get(struct request *req);
void api_sync_settings_put(struct request *req);
void api_sync_run(struct request *req);
void api_conflicts_list(struct request *req);
void api_conflicts_resolve(struct request *req);

#endif
