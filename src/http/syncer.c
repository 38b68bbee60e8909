/* syncer.c — the sync thread of `sanad serve` (see syncer.h).
 *
 * Rounds are numbered. A request for a round now notes the number of the next round to start, sets the
 * request flag and wakes the thread; it then waits (bounded) until that round has ended. A request that
 * comes while a round runs is served by the following one, which then starts at once: the running round
 * may have passed the peer that just came back. */
#include "http/syncer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/id.h"
#include "core/log.h"
#include "core/util.h"
#include "http/client.h"
#include "http/server.h"
#include "services/peers.h"
#include "services/sync.h"
#include "store/db.h"

#define SYNC_BACKOFF_MAX_MS (60LL * 60 * 1000)     /* a failing peer is retried at least hourly */

struct peer_schedule {
    char id[ID_LEN];
    int64_t due_us;         /* monotonic */
    int failures;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake;    /* to the thread: stop, or a round is asked for */
    pthread_cond_t done;    /* from the thread: a round ended */
    pthread_t thread;
    int running;
    atomic_int stop;
    char dir[4096];
    int64_t every_ms;       /* 0: rounds only when asked */
    struct client_options client;
    int requested;
    uint64_t started, ended;    /* rounds started and ended so far */
    json_t *last;           /* the outcome of the last round that ended */
    struct peer_schedule *sched;
    size_t nsched, capsched;
} sy = { .mu = PTHREAD_MUTEX_INITIALIZER };

static struct peer_schedule *schedule_of(const char *id, int64_t now_us)
{
    struct peer_schedule *grown;
    size_t i;

    for (i = 0; i < sy.nsched; i++)
        if (strcmp(sy.sched[i].id, id) == 0)
            return &sy.sched[i];
    if (sy.nsched == sy.capsched) {
        size_t cap = sy.capsched ? sy.capsched * 2 : 8;

        if ((grown = realloc(sy.sched, cap * sizeof(*grown))) == NULL)
            return NULL;
        sy.sched = grown;
        sy.capsched = cap;
    }
    memset(&sy.sched[sy.nsched], 0, sizeof(sy.sched[0]));
    snprintf(sy.sched[sy.nsched].id, ID_LEN, "%s", id);
    sy.sched[sy.nsched].due_us = now_us;    /* a peer new to this process syncs at once */
    return &sy.sched[sy.nsched++];
}

/* The delay after a session: the interval, or after n failures in a row interval * 2^n, at most an hour
 * (but never shorter than the interval). */
static int64_t delay_ms(int64_t every_ms, int failures)
{
    int64_t d = every_ms;
    int i;

    for (i = 0; i < failures && d < SYNC_BACKOFF_MAX_MS; i++)
        d *= 2;
    if (d > SYNC_BACKOFF_MAX_MS)
        d = every_ms > SYNC_BACKOFF_MAX_MS ? every_ms : SYNC_BACKOFF_MAX_MS;
    return d;
}

static json_t *session_json(const char *name, int ok, const struct err *e, const struct sync_summary *s)
{
    json_t *o = json_pack("{s:s, s:b, s:{s:I, s:I, s:I, s:I, s:I}, s:I, s:I, s:I, s:I, s:I}", "peer", name,
                          "ok", ok, "pulled", "received", (json_int_t)s->pulled.received, "applied",
                          (json_int_t)s->pulled.applied, "duplicates", (json_int_t)s->pulled.duplicates,
                          "conflicts", (json_int_t)s->pulled.conflicts, "quarantined",
                          (json_int_t)s->pulled.quarantined, "pushed", (json_int_t)s->pushed, "batches_in",
                          (json_int_t)s->batches_in, "batches_out", (json_int_t)s->batches_out, "bytes_in",
                          (json_int_t)s->bytes_in, "bytes_out", (json_int_t)s->bytes_out);

    if (o && !ok)
        json_object_set_new(o, "error", json_pack("{s:s, s:s}", "code", e->code, "message", e->message));
    return o;
}

/* One round: sync with each peer that is due (every peer with a url when forced). *outcome receives what
 * each session did. Returns the monotonic time of the next due peer (INT64_MAX: none, rounds only when
 * asked). */
static int64_t round_run(struct db *db, int forced, json_t *outcome)
{
    struct peer_row *rows = NULL;
    struct peer_schedule *ps;
    struct sync_summary sum;
    char line[320];
    struct err e;
    int64_t now, next;
    size_t i, n = 0;
    int ok;

    err_clear(&e);
    now = monotonic_us();
    /* look again for new peers at least this often */
    next = sy.every_ms ? now + sy.every_ms * 1000 : INT64_MAX;
    if (peers_sync_targets(db, &rows, &n, &e) < 0) {
        log_error("sync: cannot list peers: %s", e.message);
        return next;
    }
    for (i = 0; i < n && !atomic_load(&sy.stop); i++) {
        if ((ps = schedule_of(rows[i].id, now)) == NULL)
            break;
        if (forced || (sy.every_ms && ps->due_us <= monotonic_us())) {
            err_clear(&e);
            ok = client_sync_peer(db, sy.dir, &rows[i], SYNC_DEFAULT_MAX_BYTES, &sy.client, &sum, &e) == 0;
            if (!ok && atomic_load(&sy.stop))
                break;
            json_array_append_new(outcome, session_json(rows[i].name, ok, &e, &sum));
            if (!ok) {
                ps->failures++;
                if (sy.every_ms) {
                    ps->due_us = monotonic_us() + delay_ms(sy.every_ms, ps->failures) * 1000;
                    log_warn("sync: with '%s' failed (%d in a row; next try in %llds): %s", rows[i].name,
                             ps->failures, (long long)(delay_ms(sy.every_ms, ps->failures) / 1000), e.message);
                } else {
                    log_warn("sync: with '%s' failed: %s", rows[i].name, e.message);
                }
            } else {
                ps->failures = 0;
                ps->due_us = monotonic_us() + sy.every_ms * 1000;
                sync_summary_describe(&sum, line, sizeof(line));
                if (sum.pulled.applied || sum.pulled.conflicts || sum.pulled.quarantined || sum.pushed)
                    log_info("sync: with '%s': %s", rows[i].name, line);
                else
                    log_debug("sync: with '%s': %s", rows[i].name, line);
            }
        }
        if (sy.every_ms && ps->due_us < next)
            next = ps->due_us;
    }
    free(rows);
    return next;
}

static void deadline(struct timespec *ts, int64_t wait_us)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(wait_us / 1000000);
    ts->tv_nsec += (long)(wait_us % 1000000) * 1000;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void *syncer_main(void *arg)
{
    struct db *db = NULL;
    struct timespec ts;
    struct err e;
    int64_t next_us, started_ms;
    json_t *outcome;
    int forced;

    (void)arg;
    next_us = sy.every_ms ? 0 : INT64_MAX;  /* with an interval, every peer syncs at once */
    pthread_mutex_lock(&sy.mu);
    for (;;) {
        /* wait for the next due peer, a request or the stop */
        while (!atomic_load(&sy.stop) && !sy.requested && next_us > monotonic_us()) {
            if (next_us == INT64_MAX) {
                pthread_cond_wait(&sy.wake, &sy.mu);
            } else {
                deadline(&ts, next_us - monotonic_us());
                if (pthread_cond_timedwait(&sy.wake, &sy.mu, &ts) == ETIMEDOUT)
                    break;
            }
        }
        if (atomic_load(&sy.stop))
            break;
        forced = sy.requested;
        sy.requested = 0;
        sy.started++;
        pthread_mutex_unlock(&sy.mu);

        started_ms = now_ms();
        outcome = json_array();
        err_clear(&e);
        if (db == NULL && db_open(sy.dir, 0, &db, &e) < 0) {
            log_error("sync: cannot open the database: %s", e.message);
            db = NULL;
            next_us = sy.every_ms ? monotonic_us() + sy.every_ms * 1000 : INT64_MAX;
        } else {
            next_us = round_run(db, forced, outcome);
        }

        pthread_mutex_lock(&sy.mu);
        /* a timed round in which no peer was due (all backing off) leaves the last outcome as it was */
        if (forced || db == NULL || json_array_size(outcome) > 0) {
            json_decref(sy.last);
            sy.last = json_pack("{s:I, s:I, s:O}", "started_at", (json_int_t)started_ms, "finished_at",
                                (json_int_t)now_ms(), "peers", outcome);
            if (db == NULL && sy.last)
                json_object_set_new(sy.last, "error",
                                    json_pack("{s:s, s:s}", "code", e.code, "message", e.message));
        }
        json_decref(outcome);
        sy.ended = sy.started;
        pthread_cond_broadcast(&sy.done);
    }
    pthread_mutex_unlock(&sy.mu);
    db_close(db);
    return NULL;
}

int syncer_start(const char *dir, int64_t every_ms, int insecure, struct err *e)
{
    pthread_condattr_t ca;

    if (sy.running)
        return err_set(e, ERR_INTERNAL, "syncer_running", "the sync thread runs already");
    if (strlen(dir) >= sizeof(sy.dir))
        return err_set(e, ERR_INVALID, "path_too_long", "the data directory's path is too long");
    snprintf(sy.dir, sizeof(sy.dir), "%s", dir);
    sy.every_ms = every_ms;
    sy.client.insecure = insecure;
    sy.client.abort = &sy.stop;     /* a stop request also cuts a transfer in flight */
    atomic_init(&sy.stop, 0);
    sy.requested = 0;
    sy.started = sy.ended = 0;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sy.wake, &ca);
    pthread_cond_init(&sy.done, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&sy.thread, NULL, syncer_main, NULL) != 0) {
        pthread_cond_destroy(&sy.wake);
        pthread_cond_destroy(&sy.done);
        return err_set(e, ERR_INTERNAL, "thread", "cannot start the sync thread");
    }
    sy.running = 1;
    if (every_ms)
        log_info("sync: syncing with peers every %llds", (long long)(every_ms / 1000));
    return 0;
}

void syncer_stop(void)
{
    if (!sy.running)
        return;
    pthread_mutex_lock(&sy.mu);
    atomic_store(&sy.stop, 1);
    pthread_cond_signal(&sy.wake);
    pthread_cond_broadcast(&sy.done);  /* waiting requests answer "still running" */
    pthread_mutex_unlock(&sy.mu);
    pthread_join(sy.thread, NULL);
    pthread_cond_destroy(&sy.wake);
    pthread_cond_destroy(&sy.done);
    json_decref(sy.last);
    sy.last = NULL;
    free(sy.sched);
    sy.sched = NULL;
    sy.nsched = sy.capsched = 0;
    sy.running = 0;
}

json_t *syncer_state(void)
{
    json_t *out = NULL;

    pthread_mutex_lock(&sy.mu);
    if (sy.running)
        out = json_pack("{s:b, s:o, s:o}", "running", sy.started > sy.ended, "every_s",
                        sy.every_ms ? json_integer(sy.every_ms / 1000) : json_null(), "last_round",
                        sy.last ? json_deep_copy(sy.last) : json_null());
    pthread_mutex_unlock(&sy.mu);
    return out;
}

int syncer_run(int64_t wait_ms, json_t **result, struct err *e)
{
    struct timespec ts;
    int64_t until;
    uint64_t want;
    int rc = 0;

    *result = NULL;
    pthread_mutex_lock(&sy.mu);
    if (!sy.running || atomic_load(&sy.stop)) {
        pthread_mutex_unlock(&sy.mu);
        return err_set(e, ERR_INTERNAL, "no_syncer", "this process runs no sync thread");
    }
    want = sy.started + 1;
    sy.requested = 1;
    pthread_cond_signal(&sy.wake);
    /* in slices, so that a server told to stop does not wait for the round */
    for (until = monotonic_us() + wait_ms * 1000; sy.ended < want && !atomic_load(&sy.stop) && !server_stopping();) {
        int64_t left = until - monotonic_us();

        if (left <= 0)
            break;
        deadline(&ts, left < 200000 ? left : 200000);
        pthread_cond_timedwait(&sy.done, &sy.mu, &ts);
    }
    if (sy.ended >= want && sy.last) {
        /* a copy: the thread replaces its own after the next round */
        if ((*result = json_deep_copy(sy.last)) == NULL)
            rc = err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        else
            rc = 1;
    }
    pthread_mutex_unlock(&sy.mu);
    return rc;
}
