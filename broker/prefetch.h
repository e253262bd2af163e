/* The core's side of prefetch and work stealing: which jobs count as short (their
 * finished tasks were measured very short, so the scheduler may queue them at a worker
 * beyond what it can start), the prefetched tasks of each worker, and the retractions
 * the scheduler asks for, sent to the workers as RETRACT at the end of the turn. A
 * worker answers a RETRACT with a REJECTED event for each task it had not started
 * (handled like any rejection: the task waits again); one it started runs on.
 * Private to broker/. */
#ifndef HQ_BROKER_PREFETCH_H
#define HQ_BROKER_PREFETCH_H

#include <stdint.h>

#include "ctx.h"

/* Tasks shorter than this on average make their job short (HQ_SHORT_TASK overrides
 * it, e.g. for tests on a loaded machine). */
#define HQ_SHORT_TASK_NS (20 * HQ_NS_PER_MS)

/* Task t of job j finished after running run_ns: updates the job's measure and tells
 * the scheduler when the job becomes short or stops being short. */
void hq_prefetch_note_run(hq_broker_t *b, hq_job_t *j, uint64_t run_ns);
/* Task t was just assigned to w (prefetch: beyond w's free capacity). */
void hq_prefetch_assigned(hq_worker_t *w, hq_task_t *t, bool prefetch);
/* Task t leaves its worker's queue (started, or no longer held by w): counters. */
void hq_prefetch_leave(hq_worker_t *w, hq_task_t *t);
/* The scheduler wants these prefetched tasks back (HQ_SCHED_RETRACT). */
void hq_prefetch_on_retract(hq_broker_t *b, hq_sched_cmd_t *cmd);
/* End of turn, after the ASSIGNs: sends the RETRACTs of tasks already sent. */
void hq_prefetch_flush(hq_broker_t *b);

#endif
