/* serve.c — `sanad serve`: run the HTTP API and web app for one data directory, and optionally sync with
 * the enrolled peers (--sync-every, and "sync now" through the API: http/syncer.c). */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cmd.h"
#include "core/log.h"
#include "core/util.h"
#include "http/server.h"
#include "http/syncer.h"
#include "services/appointments.h"
#include "services/forms.h"
#include "services/patients.h"
#include "services/peers.h"
#include "store/db.h"

#define SWEEP_EVERY_MS (60LL * 60 * 1000)          /* unattended appointments are marked missed hourly */

static const char usage[] =
    "sanad serve --data DIR [--listen 127.0.0.1:8080] [--tls-cert F --tls-key F] [--threads N]\n"
    "                   [--sync-every DURATION] [--insecure]";

static const char help[] =
    "Serve the JSON API (/api/v1) and the web app. SIGINT or SIGTERM stops it cleanly after in-flight\n"
    "requests finish. Appointments left unattended for more than a day after their day are marked missed\n"
    "at start and hourly. POST /api/v1/sync/run syncs with every peer that has a url at once (\"sync now\").\n\n"
    "  --data DIR          data directory made by 'sanad init' (default: $SANAD_DATA)\n"
    "  --listen ADDR       HOST:PORT or [IPv6]:PORT to listen on (default: 127.0.0.1:8080; port 0 = any free)\n"
    "  --tls-cert F        PEM certificate: serve HTTPS (use it whenever the network is shared)\n"
    "  --tls-key F         PEM private key for --tls-cert\n"
    "  --threads N         worker threads (default: one per CPU)\n"
    "  --sync-every D      also sync with every peer that has a url, every D (e.g. 30s, 5m, 1h); a peer\n"
    "                      that fails is retried with exponential backoff, up to an hour apart\n"
    "  --insecure          accept self-signed TLS certificates of peers when syncing (--sync-every,\n"
    "                      POST /api/v1/sync/run); requests and answers are signed all the same\n";

/* "90" (seconds), "30s", "5m", "2h" -> milliseconds in [1 s, 7 days]; -1 when not one of those. */
static int64_t parse_duration_ms(const char *s)
{
    char num[24];
    size_t n = strlen(s);
    int64_t v, unit = 1000;
    const char *errstr;

    if (n == 0 || n >= sizeof(num))
        return -1;
    memcpy(num, s, n + 1);
    switch (num[n - 1]) {
    case 's': unit = 1000; num[n - 1] = '\0'; break;
    case 'm': unit = 60 * 1000; num[n - 1] = '\0'; break;
    case 'h': unit = 60 * 60 * 1000; num[n - 1] = '\0'; break;
    default: break;
    }
    if (parse_int64(num, 1, 7 * 24 * 60 * 60, &v, &errstr) < 0 || v * unit > 7LL * 24 * 60 * 60 * 1000)
        return -1;
    return v * unit;
}

/* ---- the missed-appointments sweep: at start, then hourly in a thread of its own ---- */

struct sweeper {
    const char *dir;
    atomic_int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
};

/* Mark unattended appointments missed; a failure is logged and tried again at the next sweep. */
static void sweep_missed(struct db *db)
{
    int64_t marked = 0;
    struct err e;

    err_clear(&e);
    if (appointments_mark_missed(db, now_ms(), &marked, &e) < 0)
        log_warn("appointments: the missed sweep failed: %s", e.message);
    else if (marked > 0)
        log_info("appointments: %lld marked missed", (long long)marked);
}

static void *sweeper_main(void *arg)
{
    struct sweeper *s = arg;
    struct db *db = NULL;
    struct timespec ts;
    struct err e;

    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(SWEEP_EVERY_MS / 1000);
        pthread_mutex_lock(&s->mu);
        while (!atomic_load(&s->stop) && pthread_cond_timedwait(&s->cv, &s->mu, &ts) != ETIMEDOUT)
            ;
        pthread_mutex_unlock(&s->mu);
        if (atomic_load(&s->stop))
            break;
        err_clear(&e);
        if (db == NULL && db_open(s->dir, 0, &db, &e) < 0) {
            log_error("appointments: cannot open the database: %s", e.message);
            db = NULL;
            continue;
        }
        sweep_missed(db);
    }
    db_close(db);
    return NULL;
}

static int sweeper_start(struct sweeper *s)
{
    pthread_condattr_t ca;

    atomic_init(&s->stop, 0);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&s->thread, NULL, sweeper_main, s) != 0) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        return -1;
    }
    return 0;
}

static void sweeper_stop(struct sweeper *s)
{
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stop, 1);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        { "data", required_argument, NULL, 'd' },
        { "listen", required_argument, NULL, 'l' },
        { "tls-cert", required_argument, NULL, 'c' },
        { "tls-key", required_argument, NULL, 'k' },
        { "threads", required_argument, NULL, 't' },
        { "sync-every", required_argument, NULL, 's' },
        { "insecure", no_argument, NULL, 'i' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct server_options o = { NULL, "127.0.0.1:8080", NULL, NULL, 0 };
    struct sweeper sweeper;
    const char *data = NULL, *errstr;
    int64_t threads, every_ms = 0;
    struct db *db;
    sigset_t sigs;
    struct err e;
    int c, rc, insecure = 0;

    err_clear(&e);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 'l': o.listen = optarg; break;
        case 'c': o.tls_cert = optarg; break;
        case 'k': o.tls_key = optarg; break;
        case 't':
            if (parse_int64(optarg, 1, 256, &threads, &errstr) < 0)
                return cmd_usage_error(usage, "--threads '%s' is %s (1 to 256)", optarg, errstr);
            o.threads = (int)threads;
            break;
        case 's':
            if ((every_ms = parse_duration_ms(optarg)) < 0)
                return cmd_usage_error(usage, "--sync-every '%s' is not a duration like 30s, 5m or 1h (1 s to 7 days)",
                                       optarg);
            break;
        case 'i': insecure = 1; break;
        case 'h': printf("usage: %s\n\n%s", usage, help); return 0;
        default: return cmd_usage_error(usage, "unknown option");
        }
    }
    if (optind < argc)
        return cmd_usage_error(usage, "unexpected argument '%s'", argv[optind]);
    if ((o.data_dir = cmd_data_dir(data)) == NULL)
        return 2;
    /* the node key signs answers to peers: check it (or make it, for a node older than keys) up front */
    if (db_open(o.data_dir, 0, &db, &e) < 0)
        return cmd_fail(&e);
    rc = peers_serve_init(db, o.data_dir, &e);
    if (rc == 0)
        rc = forms_seed_builtin(db, &e);    /* forms a newer binary ships */
    if (rc == 0)
        rc = patients_index_check(db, &e);  /* a search index built by an older binary: rebuilt now, not at
                                             * the first search */
    if (rc == 0)
        sweep_missed(db);                   /* appointments missed while the node was down */
    if (rc < 0) {
        db_close(db);
        return cmd_fail(&e);
    }
    /* no thread started from here on may take SIGINT/SIGTERM (they inherit this mask): server_run()
     * waits for them in this one, to stop cleanly */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    /* the WAL is checkpointed by a thread of its own, not by the request whose commit fills it (without
     * the thread, by SQLite on commit: slower, not wrong) */
    if (db_checkpointer_start(db, 1000, &e) < 0) {
        log_warn("serve: no checkpoint thread: %s", e.message);
        err_clear(&e);
    }
    sweeper.dir = o.data_dir;
    if (sweeper_start(&sweeper) < 0) {
        err_set(&e, ERR_INTERNAL, "thread", "cannot start the appointments thread");
        db_checkpointer_stop();
        db_close(db);
        return cmd_fail(&e);
    }
    /* the sync thread: rounds every --sync-every, or only when asked through the API */
    if (syncer_start(o.data_dir, every_ms, insecure, &e) < 0) {
        sweeper_stop(&sweeper);
        db_checkpointer_stop();
        db_close(db);
        return cmd_fail(&e);
    }
    rc = server_run(&o, &e);
    syncer_stop();
    sweeper_stop(&sweeper);
    db_checkpointer_stop();
    db_close(db);
    return rc == 0 ? 0 : cmd_fail(&e);
}
