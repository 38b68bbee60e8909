/* syncer.h — the sync thread of `sanad serve`: it syncs with every enrolled peer that has a url, every
 * interval (a failing peer backs off: interval * 2^failures, at most an hour) and whenever asked through
 * POST /api/v1/sync/run ("sync now", for when a link comes up). One per process; it has a database
 * connection of its own. See docs/sync.md ("Syncing from a running node").
 *
 * Ownership: syncer_run's *result is a new reference the caller json_decref()s.
 */
#ifndef SANAD_SYNCER_H
#define SANAD_SYNCER_H

#include <stdint.h>

#include <jansson.h>

#include "core/err.h"

#define SYNCER_WAIT_MAX_MS 30000    /* the longest POST /api/v1/sync/run waits for its round */

/* Start the thread for the node in dir. every_ms > 0: a round every every_ms; 0: only when asked.
 * insecure: accept self-signed TLS certificates of peers (the requests and answers are signed anyway). */
int syncer_start(const char *dir, int64_t every_ms, int insecure, struct err *e);

/* Stop it: a transfer in flight is cut within a second; what was applied stays applied. */
void syncer_stop(void);

/* Ask for a round with every peer that has a url, now, whatever their schedule and backoff, and wait up to
 * wait_ms for a round that started after the request to end. Returns 1 with *result =
 * {"started_at","finished_at","peers":[{"peer","ok","error"?,"pulled":{..},"pushed",..}]} when it ended
 * in time, 0 when it still runs (its outcome then shows in GET /api/v1/sync/status), -1 when no syncer
 * runs in this process (err: ERR_INTERNAL "no_syncer"). */
int syncer_run(int64_t wait_ms, json_t **result, struct err *e);

/* The thread's state for GET /api/v1/sync/status: {"running": a round runs now, "every_s": the interval
 * or null, "last_round": the outcome of the last round (as syncer_run gives it) or null}; NULL when no
 * syncer runs in this process or memory is short. */
json_t *syncer_state(void);

#endif
