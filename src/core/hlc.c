/* hlc.c — hybrid logical clock (Kulkarni et al., 2014), process-wide. */
#include <pthread.h>

#include "core/hlc.h"
#include "core/util.h"

static pthread_mutex_t hlc_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t hlc_last;

void hlc_init(int64_t floor)
{
    pthread_mutex_lock(&hlc_lock);
    if (floor > hlc_last)
        hlc_last = floor;
    pthread_mutex_unlock(&hlc_lock);
}

int64_t hlc_now(void)
{
    int64_t wall = hlc_make(now_ms(), 0), t;

    pthread_mutex_lock(&hlc_lock);
    hlc_last = wall > hlc_last ? wall : hlc_last + 1;
    t = hlc_last;
    pthread_mutex_unlock(&hlc_lock);
    return t;
}

int64_t hlc_observe(int64_t remote)
{
    int64_t wall = hlc_make(now_ms(), 0), t;

    pthread_mutex_lock(&hlc_lock);
    t = hlc_last > remote ? hlc_last : remote;
    hlc_last = wall > t ? wall : t + 1;
    t = hlc_last;
    pthread_mutex_unlock(&hlc_lock);
    return t;
}
