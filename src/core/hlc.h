/* hlc.h — the node's hybrid logical clock: 48 bits of milliseconds and a 16-bit counter in one int64.
 *
 * Timestamps from hlc_now() strictly increase within a node, even if the wall clock steps backwards,
 * and hlc_observe() folds in a timestamp received from another node so causality is kept across nodes.
 * Thread-safe (one process-wide clock behind a mutex). No ownership concerns: plain integers.
 */
#ifndef SANAD_HLC_H
#define SANAD_HLC_H

#include <stdint.h>

#define HLC_COUNTER_BITS 16

/* Start the clock no lower than `floor` (the highest timestamp already stored, so a restart with a
 * wall clock set back never issues an older timestamp). */
void hlc_init(int64_t floor);
int64_t hlc_now(void);
/* Merge a remote timestamp into the clock; returns the new local timestamp. */
int64_t hlc_observe(int64_t remote);

static inline int64_t hlc_ms(int64_t h) { return h >> HLC_COUNTER_BITS; }
static inline int64_t hlc_make(int64_t ms, int64_t counter) { return (ms << HLC_COUNTER_BITS) | counter; }

#endif
