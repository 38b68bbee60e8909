/* server.h — running the HTTP server: libmicrohttpd wiring, limits, per-thread databases, access log. */
#ifndef SANAD_SERVER_H
#define SANAD_SERVER_H

#include "core/err.h"

struct server_options {
    const char *data_dir;
    const char *listen;     /* "127.0.0.1:8080", "0.0.0.0:8443", "[::1]:8080" */
    const char *tls_cert;   /* PEM files; both or neither */
    const char *tls_key;
    int threads;            /* worker threads; 0 = one per CPU */
};

/* Serve until SIGINT or SIGTERM, then stop accepting, let in-flight requests finish (up to 10 s) and
 * close. Prints "listening on ADDR:PORT" to stderr once ready (port 0 picks a free one). */
int server_run(const struct server_options *o, struct err *e);

/* Non-zero once server_run() was told to stop: a handler that waits (POST /api/v1/sync/run) stops
 * waiting. */
int server_stopping(void);

#endif
