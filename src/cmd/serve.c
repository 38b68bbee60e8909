/* serve.c — `sanad serve`: run the HTTP API and web app for one data directory, and optionally sync with
 * the enrolled peers in the background (--sync-every). */
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
#include "http/client.h"
#include "http/server.h"
#include "services/appointments.h"
#include "services/forms.h"
#include "services/patients.h"
#include "services/peers.h"
#include "services/sync.h"
#include "store/db.h"

#define SYNC_BACKOFF_MAX_MS (60LL * 60 * 1000)     /* a failing peer is retried at least hourly */
#define SWEEP_EVERY_MS (60LL * 60 * 1000)          /* unattended appointments are marked missed hourly */

static const char usage[] =
    "sanad serve --data DIR [--listen 127.0.0.1:8080] [--tls-cert F --tls-key F] [--threads N]\n"
    "                   [--sync-every DURATION [--insecure]]";

static const char help[] =
    "Serve the JSON API (/api/v1) and the web app. SIGINT or SIGTERM stops it cleanly after in-flight\n"
    "requests finish. Appointments left unattended for more than a day after their day are marked missed\n"
    "at start and hourly.\n\n"
    "  --data DIR          data directory made by 'sanad init' (default: $SANAD_DATA)\n"
    "  --listen ADDR       HOST:PORT or [IPv6]:PORT to listen on (default: 127.0.0.1:8080; port 0 = any free)\n"
    "  --tls-cert F        PEM certificate: serve HTTPS (use it whenever the network is shared)\n"
    "  --tls-key F         PEM private key for --tls-cert\n"
    "  --threads N         worker threads (default: one per CPU)\n"
    "  --sync-every D      also sync with every peer that has a url, every D (e.g. 30s, 5m, 1h); a peer\n"
    "                      that fails is retried with exponential backoff, up to an hour apart\n"
    "  --insecure          with --sync-every: accept self-signed TLS certificates of peers\n";

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

/* ---- the background syncer ---- */

struct peer_schedule {
    char id[ID_LEN];
    int64_t due_us;         /* monotonic */
    int failures;
};

struct syncer {
    const char *dir;
    int64_t every_ms;
    struct client_options client;
    atomic_int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    struct peer_schedule *sched;
    size_t nsched, capsched;
};

static struct peer_schedule *syncer_schedule(struct syncer *s, const char *id, int64_t now_us)
{
    struct peer_schedule *grown;
    size_t i;

    for (i = 0; i < s->nsched; i++)
        if (strcmp(s->sched[i].id, id) == 0)
            return &s->sched[i];
    if (s->nsched == s->capsched) {
        s->capsched = s->capsched ? s->capsched * 2 : 8;
        grown = realloc(s->sched, s->capsched * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        s->sched = grown;
    }
    memset(&s->sched[s->nsched], 0, sizeof(s->sched[0]));
    snprintf(s->sched[s->nsched].id, ID_LEN, "%s", id);
    s->sched[s->nsched].due_us = now_us;   /* a peer new to this process syncs at once */
    return &s->sched[s->nsched++];
}

/* The delay after a session: the interval, or after n failures in a row interval * 2^n, at most an hour
 * (but never shorter than the interval). */
static int64_t syncer_delay_ms(int64_t every_ms, int failures)
{
    int64_t d = every_ms;
    int i;

    for (i = 0; i < failures && d < SYNC_BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > SYNC_BACKOFF_MAX_MS)
        d = every_ms > SYNC_BACKOFF_MAX_MS ? every_ms : SYNC_BACKOFF_MAX_MS;
    return d;
}

/* One round: sync with each peer that is due; returns the monotonic time of the next due peer. */
static int64_t syncer_round(struct syncer *s, struct db *db)
{
    struct peer_row *rows = NULL;
    struct peer_schedule *ps;
    struct sync_summary sum;
    char line[320];
    struct err e;
    int64_t now, next;
    size_t i, n = 0;

    err_clear(&e);
    now = monotonic_us();
    next = now + s->every_ms * 1000;    /* look again for new peers at least this often */
    if (peers_sync_targets(db, &rows, &n, &e) < 0) {
        log_error("sync: cannot list peers: %s", e.message);
        return next;
    }
    for (i = 0; i < n && !atomic_load(&s->stop); i++) {
        if ((ps = syncer_schedule(s, rows[i].id, now)) == NULL)
            break;
        if (ps->due_us <= monotonic_us()) {
            err_clear(&e);
            if (client_sync_peer(db, s->dir, &rows[i], SYNC_DEFAULT_MAX_BYTES, &s->client, &sum, &e) < 0) {
                if (atomic_load(&s->stop))
                    break;
                ps->failures++;
                ps->due_us = monotonic_us() + syncer_delay_ms(s->every_ms, ps->failures) * 1000;
                log_warn("sync: with '%s' failed (%d in a row; next try in %llds): %s", rows[i].name, ps->failures,
                         (long long)(syncer_delay_ms(s->every_ms, ps->failures) / 1000), e.message);
            } else {
                ps->failures = 0;
                ps->due_us = monotonic_us() + s->every_ms * 1000;
                cmd_sync_describe(&sum, line, sizeof(line));
                if (sum.pulled.applied || sum.pulled.conflicts || sum.pulled.quarantined || sum.pushed)
                    log_info("sync: with '%s': %s", rows[i].name, line);
                else
                    log_debug("sync: with '%s': %s", rows[i].name, line);
            }
        }
        if (ps->due_us < next)
            next = ps->due_us;
    }
    free(rows);
    return next;
}

static void *syncer_main(void *arg)
{
    struct syncer *s = arg;
    struct db *db = NULL;
    struct timespec ts;
    struct err e;
    int64_t next_us, wait_us;

    while (!atomic_load(&s->stop)) {
        err_clear(&e);
        if (db == NULL && db_open(s->dir, 0, &db, &e) < 0) {
            log_error("sync: cannot open the database: %s", e.message);
            db = NULL;
            next_us = monotonic_us() + s->every_ms * 1000;
        } else {
            next_us = syncer_round(s, db);
        }
        wait_us = next_us - monotonic_us();
        if (wait_us <= 0)
            continue;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(wait_us / 1000000);
        ts.tv_nsec += (long)(wait_us % 1000000) * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&s->mu);
        while (!atomic_load(&s->stop) && pthread_cond_timedwait(&s->cv, &s->mu, &ts) != ETIMEDOUT)
            ;
        pthread_mutex_unlock(&s->mu);
    }
    db_close(db);
    return NULL;
}

static int syncer_start(struct syncer *s)
{
    pthread_condattr_t ca;

    atomic_init(&s->stop, 0);
    s->client.abort = &s->stop;     /* a stop request also cuts a transfer in flight */
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&s->thread, NULL, syncer_main, s) != 0)
        return -1;
    log_info("sync: syncing with peers every %llds", (long long)(s->every_ms / 1000));
    return 0;
}

static void syncer_stop(struct syncer *s)
{
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->stop, 1);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->sched);
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
    sigset_t sigs;

    /* the thread must not take SIGINT/SIGTERM: server_run() waits for them in this thread */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
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
    struct syncer syncer;
    struct sweeper sweeper;
    const char *data = NULL, *errstr;
    int64_t threads, every_ms = 0;
    struct db *db;
    sigset_t sigs;
    struct err e;
    int c, rc, insecure = 0;

    err_clear(&e);
    memset(&syncer, 0, sizeof(syncer));
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
    if (insecure && every_ms == 0)
        return cmd_usage_error(usage, "--insecure goes with --sync-every");
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
    if (every_ms) {
        /* the syncer thread must not take SIGINT/SIGTERM: server_run() waits for them in this thread */
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGINT);
        sigaddset(&sigs, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &sigs, NULL);
        syncer.dir = o.data_dir;
        syncer.every_ms = every_ms;
        syncer.client.insecure = insecure;
        if (syncer_start(&syncer) < 0) {
            sweeper_stop(&sweeper);
            db_checkpointer_stop();
            db_close(db);
            err_set(&e, ERR_INTERNAL, "thread", "cannot start the sync thread");
            return cmd_fail(&e);
        }
    }
    rc = server_run(&o, &e);
    if (every_ms)
        syncer_stop(&syncer);
    sweeper_stop(&sweeper);
    db_checkpointer_stop();
    db_close(db);
    return rc == 0 ? 0 : cmd_fail(&e);
}
