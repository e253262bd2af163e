/* One turn of the core loop: work is batched (scheduler commands, ASSIGNs, waiter
 * checks) and flushed once at the end of the turn. Private to broker/. */
#ifndef HQ_BROKER_TURN_H
#define HQ_BROKER_TURN_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>

typedef struct hq_turn {
    zloop_t *loop;         /* the core loop (NULL in tests without one) */
    bool dirty;            /* something to flush at the end of this turn */
    int flush_timer;       /* 0 ms timer armed while dirty (or -1) */
    zloop_timer_fn *flush; /* the loop's flush, run by that timer */
    void *flush_arg;       /* its argument */
    uint64_t trim_ns;      /* monotonic time of the last malloc_trim */
    zloop_timer_fn *tick;  /* the loop's periodic tick (liveness checks) */
    void *tick_arg;        /* its argument */
    int tick_timer;        /* its zloop timer id (or -1) */
    uint64_t tick_ns;      /* its period */
} hq_turn_t;

/* Marks that outgoing work is pending; flushed once at the end of this loop turn.
 * The loop's readers flush at the end of their batch; other callers (journal
 * completions) get a 0 ms timer that runs the flush. */
void hq_turn_dirty(hq_turn_t *t);
/* Runs the tick every tick_ns from now on (a worker with a short heartbeat needs a
 * faster liveness check). 0, or -1 when the timer cannot be set. */
int hq_turn_retime(hq_turn_t *t, uint64_t tick_ns);

#endif
