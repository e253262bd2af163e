/* life.c: the life of allocations and of the held `alloc add` / `dry-run` requests,
 * called by alloc.c (the tick, the broker's events, the requests). Calls down into
 * record.c and astate.c only. Private to broker/alloc/. */
#ifndef HQ_ALLOC_LIFE_H
#define HQ_ALLOC_LIFE_H

#include "astate.h"

/* Submits, cancels unneeded allocations and polls (the tick's work). */
void hq_alife_tick(hq_alloc_t *a);
/* Handles an ended manager command. */
void hq_alife_done(hq_alloc_t *a, hq_pdone_t *d);
/* Runs the trial allocation of a held request in a new directory. */
void hq_alife_trial(hq_alloc_t *a, hq_trial_t *t);
/* Cancels an allocation (scancel/qdel) and records it as ended. */
void hq_alife_cancel(hq_alloc_t *a, hq_aqueue_t *q, hq_allocation_t *al);
/* A worker of an allocation connected / left. */
void hq_alife_worker_up(hq_alloc_t *a, hq_aqueue_t *q, hq_allocation_t *al,
                        const hq_worker_conf_t *conf);
void hq_alife_worker_down(hq_alloc_t *a, hq_aqueue_t *q, hq_allocation_t *al);
/* "Could not submit allocation: ..." from an ended submit command (caller frees). */
char *hq_alife_submit_error(const hq_pdone_t *d, const char *prog);

/* Answers a held `alloc add` / `dry-run` (error NULL: the trial succeeded; the queue
 * is created when asked for) and frees it. */
void hq_alife_trial_ended(hq_alloc_t *a, hq_trial_t *t, const char *error);
/* Frees a held request without answering it. */
void hq_alife_trial_free(hq_trial_t *t);

#endif
