/* server.c — libmicrohttpd wiring: one request struct per HTTP request, bounded bodies, routing to
 * router.c or static.c, one database connection per worker thread, the access log, graceful shutdown.
 *
 * Limits (OpenBSD httpd style, enforced before any handler runs): request line and headers must fit
 * HTTP_CONN_MEMORY (libmicrohttpd answers 431 otherwise); a body larger than its route's body_max gets
 * 413 without being read; a route taking more than HTTP_AUTH_FIRST_BODY is authorized before its body is
 * read; idle connections close after HTTP_CONN_TIMEOUT seconds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "core/log.h"
#include "core/util.h"
#include "http/http.h"
#include "http/server.h"

#define HTTP_CONN_MEMORY (32 * 1024)
#define HTTP_CONN_TIMEOUT 30
#define HTTP_CONN_LIMIT 1000
#define HTTP_PER_IP_LIMIT 256
#define HTTP_DRAIN_SECONDS 10
#define HTTP_AUTH_FIRST_BODY (1u << 20)     /* routes taking larger bodies authorize before reading them */

static const char *server_data_dir;
static int server_tls;
static pthread_key_t server_db_key;
static atomic_long server_inflight;
static atomic_int server_draining;     /* SIGINT/SIGTERM came: requests still running should end soon */
static atomic_ulong server_request_counter;
static unsigned server_id_prefix;

static void server_db_destroy(void *p)
{
    db_close(p);
}

/* The calling worker thread's database connection, opened on first use. */
static struct db *server_thread_db(struct err *e)
{
    struct db *db = pthread_getspecific(server_db_key);

    if (db == NULL) {
        if (db_open(server_data_dir, 0, &db, e) < 0)
            return NULL;
        pthread_setspecific(server_db_key, db);
    }
    return db;
}

static void request_address(struct request *req)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char *out = req->caller.address;
    size_t n = sizeof(req->caller.address);

    snprintf(out, n, "unknown");
    if (ci == NULL || ci->client_addr == NULL)
        return;
    if (ci->client_addr->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)ci->client_addr)->sin_addr, out, (socklen_t)n);
    else if (ci->client_addr->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ci->client_addr)->sin6_addr, out, (socklen_t)n);
}

static struct request *request_new(struct MHD_Connection *conn, const char *method, const char *url)
{
    struct request *req = calloc(1, sizeof(*req));
    const char *params[ROUTE_MAX_PARAMS];
    int i, path_known;

    if (req == NULL)
        log_fatal("http: out of memory");
    arena_init(&req->arena);
    req->conn = conn;
    req->started_us = monotonic_us();
    req->method = arena_strdup(&req->arena, method);
    req->path = arena_strdup(&req->arena, url);
    req->tls = server_tls;
    snprintf(req->caller.request_id, sizeof(req->caller.request_id), "%08x%08lx", server_id_prefix,
             (unsigned long)atomic_fetch_add(&server_request_counter, 1) & 0xffffffffUL);
    request_address(req);
    req->route = router_match(method, req->path, params, &req->nparams, &path_known);
    for (i = 0; i < req->nparams; i++)
        req->params[i] = arena_strndup(&req->arena, params[i], strcspn(params[i], "/"));
    buf_init(&req->body, req->route ? req->route->body_max : 0);
    if (req->route == NULL && path_known)
        reply_error_code(req, 405, "method_not_allowed", "%s is not allowed on this path", method);
    atomic_fetch_add(&server_inflight, 1);
    return req;
}

static void request_free(struct request *req)
{
    buf_free(&req->body);
    arena_free(&req->arena);
    free(req);
}

/* Access log: never the query string, never a body, never a name; the route pattern, not the path. */
static void access_log(const struct request *req)
{
    const char *what = req->route ? req->route->pattern : (str_has_prefix(req->path, "/api/") ? "(unknown)" : "(static)");

    log_info("http %s %s %u %lldus id=%s", req->method, what, req->status,
             (long long)(monotonic_us() - req->started_us), req->caller.request_id);
}

static void finish(struct request *req)
{
    struct err e;

    if (req->response)
        return;
    if (req->body_too_large && req->route) {
        reply_error_code(req, 413, "body_too_large", "the request body is larger than %zu bytes",
                         req->route->body_max);
        return;
    }
    if (req->route == NULL) {
        if (str_has_prefix(req->path, "/api/") || strcmp(req->path, "/api") == 0)
            reply_error_code(req, 404, "no_such_endpoint", "there is no API endpoint at this path");
        else if ((strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) || req->body.len
                 || req->body_too_large)
            reply_error_code(req, 405, "method_not_allowed", "static files are read-only and take no body");
        else
            static_serve(req);
        return;
    }
    err_clear(&e);
    req->db = server_thread_db(&e);
    if (req->db == NULL) {
        reply_error(req, &e);
        return;
    }
    router_dispatch(req);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct request *req = *con_cls;
    const char *cl;
    int64_t length;
    const char *errstr;
    enum MHD_Result ret;
    struct err e;

    (void)cls;
    (void)version;
    if (req == NULL) {
        req = request_new(conn, method, url);
        *con_cls = req;
        /* refuse an announced oversized body before reading a byte of it */
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (req->response == NULL && cl
            && (parse_int64(cl, 0, INT64_MAX, &length, &errstr) < 0 || (uint64_t)length > req->body.max))
            req->body_too_large = 1;
        /* a route that takes megabytes (a document upload) checks who is asking before reading a byte, so
         * that nobody unknown can make the node hold megabytes per connection; PERM_PEER routes cannot (the
         * signature covers the body) */
        if (req->response == NULL && !req->body_too_large && req->route && req->route->body_max > HTTP_AUTH_FIRST_BODY
            && req->route->perm != PERM_PEER && req->route->perm != PERM_PUBLIC) {
            err_clear(&e);
            if ((req->db = server_thread_db(&e)) == NULL)
                reply_error(req, &e);
            else
                router_authorize(req);
        }
        if (req->response || req->body_too_large) {
            finish(req);
            return MHD_queue_response(conn, req->status, req->response);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!req->body_too_large && buf_append(&req->body, upload_data, *upload_data_size) < 0)
            req->body_too_large = 1;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->status) /* already answered in the first call */
        return MHD_YES;
    finish(req);
    ret = MHD_queue_response(conn, req->status, req->response);
    return ret;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decoding of paths and query values, in place, except "%00": a decoded NUL would end the C
 * string early, so "/index.html%00.txt" would be served as "/index.html". Left encoded, it matches nothing. */
static size_t on_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    char *r = s, *w = s;
    int hi, lo;

    (void)cls;
    (void)conn;
    while (*r) {
        if (r[0] == '%' && (hi = hex_value(r[1])) >= 0 && (lo = hex_value(r[2])) >= 0 && (hi | lo) != 0) {
            *w++ = (char)(hi << 4 | lo);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct request *req = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (req == NULL)
        return;
    if (req->status)
        access_log(req);
    if (req->response)
        MHD_destroy_response(req->response);
    request_free(req);
    *con_cls = NULL;
    atomic_fetch_sub(&server_inflight, 1);
}

__attribute__((format(printf, 2, 0)))
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];

    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    log_warn("http: %s", line);
}

/* Parse "HOST:PORT" or "[V6]:PORT" into a socket address. */
static int parse_listen(const char *listen, struct sockaddr_storage *ss, struct err *e)
{
    char host[256];
    const char *colon, *port;
    struct addrinfo hints, *res;
    int64_t p;
    const char *errstr;
    size_t hl;

    if (listen[0] == '[') {
        colon = strstr(listen, "]:");
        if (colon == NULL)
            return err_set(e, ERR_INVALID, "invalid_listen", "--listen takes HOST:PORT or [IPv6]:PORT");
        hl = (size_t)(colon - listen - 1);
        port = colon + 2;
        if (hl >= sizeof(host))
            return err_set(e, ERR_INVALID, "invalid_listen", "--listen host is too long");
        memcpy(host, listen + 1, hl);
    } else {
        colon = strrchr(listen, ':');
        if (colon == NULL)
            return err_set(e, ERR_INVALID, "invalid_listen", "--listen takes HOST:PORT, e.g. 127.0.0.1:8080");
        hl = (size_t)(colon - listen);
        port = colon + 1;
        if (hl >= sizeof(host))
            return err_set(e, ERR_INVALID, "invalid_listen", "--listen host is too long");
        memcpy(host, listen, hl);
    }
    host[hl] = '\0';
    if (parse_int64(port, 0, 65535, &p, &errstr) < 0)
        return err_set(e, ERR_INVALID, "invalid_listen", "--listen port '%s' is %s", port, errstr);
    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICHOST;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return err_set(e, ERR_INVALID, "invalid_listen", "--listen host '%s' is not a numeric IP address", host);
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)p);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)p);
    return 0;
}

int server_stopping(void)
{
    return atomic_load(&server_draining);
}

int server_run(const struct server_options *o, struct err *e)
{
    struct sockaddr_storage ss;
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *info;
    char *cert = NULL, *key = NULL;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    unsigned threads = o->threads > 0 ? (unsigned)o->threads : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    char addr[INET6_ADDRSTRLEN];
    struct db *probe;
    sigset_t sigs;
    int sig, waited;
    unsigned char rnd[4];

    if (parse_listen(o->listen, &ss, e) < 0)
        return -1;
    /* open once up front: a missing or too-new database fails here, not on the first request */
    if (db_open(o->data_dir, 0, &probe, e) < 0)
        return -1;
    db_close(probe);
    if ((o->tls_cert == NULL) != (o->tls_key == NULL))
        return err_set(e, ERR_INVALID, "tls_incomplete", "--tls-cert and --tls-key go together");
    if (o->tls_cert) {
        cert = read_file(o->tls_cert, 1 << 20, NULL);
        key = read_file(o->tls_key, 1 << 20, NULL);
        if (cert == NULL || key == NULL) {
            free(cert);
            free(key);
            return err_set(e, ERR_INVALID, "tls_unreadable", "cannot read the TLS certificate or key: %s",
                           strerror(errno));
        }
        flags |= MHD_USE_TLS;
        server_tls = 1;
    }
    if (threads < 1)
        threads = 1;
    server_data_dir = o->data_dir;
    pthread_key_create(&server_db_key, server_db_destroy);
    crypto_random_bytes(rnd, sizeof(rnd));
    server_id_prefix = (unsigned)rnd[0] << 24 | (unsigned)rnd[1] << 16 | (unsigned)rnd[2] << 8 | rnd[3];

    /* workers inherit this mask, so only the main thread's sigwait() sees the signals */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    d = MHD_start_daemon(flags | (ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL, on_request, NULL,
                         MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                         MHD_OPTION_THREAD_POOL_SIZE, threads,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_CONN_TIMEOUT,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_CONN_LIMIT,
                         MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)HTTP_PER_IP_LIMIT,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                         MHD_OPTION_UNESCAPE_CALLBACK, on_unescape, NULL,
                         cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, cert,
                         MHD_OPTION_HTTPS_MEM_KEY, key,
                         MHD_OPTION_END);
    if (d == NULL) {
        free(cert);
        free(key);
        return err_set(e, ERR_INVALID, "cannot_listen",
                       "cannot listen on %s (address in use, not local, or TLS files invalid)", o->listen);
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, addr, sizeof(addr));
    else
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, addr, sizeof(addr));
    log_info("sanad: listening on %s%s%s:%u (%s, %u threads)", ss.ss_family == AF_INET6 ? "[" : "", addr,
             ss.ss_family == AF_INET6 ? "]" : "", info ? info->port : 0, server_tls ? "https" : "http", threads);

    while (sigwait(&sigs, &sig) != 0 || (sig != SIGINT && sig != SIGTERM))
        ;
    log_info("sanad: %s received; finishing in-flight requests", sig == SIGINT ? "SIGINT" : "SIGTERM");
    atomic_store(&server_draining, 1);
    MHD_quiesce_daemon(d);
    for (waited = 0; atomic_load(&server_inflight) > 0 && waited < HTTP_DRAIN_SECONDS * 100; waited++) {
        struct timespec ts = { 0, 10 * 1000 * 1000 };
        nanosleep(&ts, NULL);
    }
    MHD_stop_daemon(d);
    if (cert) {
        crypto_wipe(key, strlen(key));
        free(cert);
        free(key);
    }
    log_info("sanad: stopped");
    return 0;
}
