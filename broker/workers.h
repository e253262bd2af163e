/* Workers' lives as the broker sees them: loss with its tasks requeued, the liveness
 * tick, the unreachable-peer check, stopping all, freeing the registry. Private to
 * broker/. */
#ifndef HQ_BROKER_WORKERS_H
#define HQ_BROKER_WORKERS_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"

/* The worker is gone (state says why): requeue its tasks, tell the scheduler. */
void hq_worker_lost(hq_broker_t *b, hq_worker_t *w, enum hq_wstate why);
/* Workers a send found unreachable (w->unreach_since, set by wsend.c) are lost once
 * hq_worker_unreach_grace(w) passed without a word from them; a one-shot timer comes
 * back for the rest. Called at the end of a turn in which a send found one. */
void hq_workers_check_unreachable(hq_broker_t *b);
/* The liveness tick: loses workers silent for 2 heartbeats, sends heartbeats due. */
void hq_workers_tick(hq_broker_t *b);
/* A worker with heartbeat hb_ns registered: the tick runs at least every hb_ns / 4. */
void hq_workers_tick_for(hq_broker_t *b, uint64_t hb_ns);
/* Sends STOP to every live worker. */
void hq_workers_stop_all(hq_broker_t *b, uint32_t reason);

#endif
