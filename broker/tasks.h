/* Task lifecycle in the broker: requeue after a lost or rejected assignment (crash
 * counting), ending unfinished tasks (cancel, abort), workers' final reports with the
 * max-fails rule and dependants, and re-adoption of tasks a reconnecting worker still
 * runs. State changes themselves go through events.c. Private to broker/. */
#ifndef HQ_BROKER_TASKS_H
#define HQ_BROKER_TASKS_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"

/* Whether t, leaving its worker (lost, stopped or rejecting it), may have started
 * there: RUNNING, or ASSIGNED with HQ_TF_SENT. This is what the crash counter and
 * never-restart go by (the rule and why: hq_broker_requeue in tasks.c). */
bool hq_task_maybe_started(const hq_task_t *t);
/* Task to waiting again (new instance); queued for the scheduler at the next flush. */
void hq_broker_requeue(hq_broker_t *b, hq_job_t *j, hq_task_t *t, bool crash);
/* Ends a task that is not final: frees capacity, tells its worker, sets the state. */
void hq_broker_end_task(hq_broker_t *b, hq_job_t *j, hq_task_t *t, enum hq_tstate st,
                        const char *error);
/* A worker's final report (FINISHED/FAILED/CANCELED) for a task it holds. */
void hq_broker_task_result(hq_broker_t *b, hq_job_t *j, hq_task_t *t, enum hq_tstate st,
                           uint32_t worker_id, const char *error, uint64_t wall_ns);

/* ---- re-adoption ---- */
enum hq_adopt {
    HQ_ADOPT_YES = 0,   /* the worker runs the instance the broker expects: adopt it */
    HQ_ADOPT_ENDED = 1, /* the task already ended (or was canceled): kill it */
    HQ_ADOPT_STALE = 2, /* unknown task or another instance: kill it */
};
/* The adoption rule for a reconnecting worker's report r about task t (NULL: unknown):
 * the instance must be the task's current one, and the task must be on the worker id
 * the registration proved to be (proven_id, 0 = none: see hq_registry_proves), either
 * restored as running there (HQ_TF_READOPT) or still held by that previous session,
 * live_old_id, which is still live (a short outage the broker survived; 0 = none). */
enum hq_adopt hq_task_adopt_check(const hq_task_t *t, const hq_task_ref_t *r, uint32_t proven_id,
                                  uint32_t live_old_id);
/* Adopts t (after HQ_ADOPT_YES) for w: RUNNING on w with the same instance, no
 * scheduler capacity (HQ_TF_ADOPTED); records a task_started for it. */
void hq_broker_adopt(hq_broker_t *b, hq_job_t *j, hq_task_t *t, hq_worker_t *w);
/* Grace period over: restored running tasks nobody adopted wait again with a new
 * instance (crash counter unchanged). Returns how many. */
uint32_t hq_broker_readopt_expire(hq_broker_t *b);
/* The worker that held old_worker_id before the restart registered again and its
 * report (adopted at once) did not include these: restored running tasks recorded on
 * it wait again at once, as at the grace expiry. Returns how many. */
uint32_t hq_broker_readopt_unreported(hq_broker_t *b, uint32_t old_worker_id);

/* After a restart, once the loop runs: the restored request classes and waiting tasks
 * go to the scheduler (dependants of a dependency that did not finish are aborted),
 * and tasks restored as running wait for their workers for the grace period
 * (hq_broker_readopt_expire then). */
void hq_tasks_resume(hq_broker_t *b);

#endif
