/* Work stealing for the scheduler actor: which jobs may be prefetched (queued at a
 * worker beyond what it can start) and which prefetched tasks to take back. Works on
 * the placement state (place.h) and is just as pure: no sockets, no clock, no logging.
 *
 * The rules:
 * - Prefetch gate: with the gate on (the actor turns it on), a task is prefetched only
 *   when its job was marked short (hq_steal_job_short: its finished tasks were measured
 *   very short); other tasks are placed only on free capacity, so a worker holds only
 *   what it can start. With the gate off (the default) every job may be prefetched.
 * - Time limit: a prefetched task whose time request no longer fits the remaining
 *   lifetime of its worker is retracted.
 * - Falling behind: when no retraction is in flight, each worker that could start a
 *   task now (free cpus, below credit, nothing prefetched, not reserved in the last
 *   round, no minimal utilization, not in a multi-node task) takes back for itself
 *   from the worker with the most prefetched tasks (not yet retracting) the newest
 *   half of them (at least one): those whose variant fits its total capacity and time,
 *   provided one of them fits its free capacity now.
 * A retraction only marks the prefetched task (it stays held by its worker) and emits
 * a slot; the worker's confirmation comes back as a release (hq_place_release) and the
 * task as ready again; a task the worker started meanwhile is promoted as usual. */
#ifndef HQ_SCHED_STEAL_H
#define HQ_SCHED_STEAL_H

#include <stdbool.h>
#include <stdint.h>

#include "place.h"

/* Turns the prefetch gate on or off (off: every job may be prefetched). */
void hq_steal_gate(hq_place_t *p, bool on);
/* Marks a job's tasks as measured short (prefetch allowed) or not. */
void hq_steal_job_short(hq_place_t *p, uint32_t job_id, bool is_short);
/* Whether a task of the job may be prefetched (the gate, then the job's mark). */
bool hq_steal_may_prefetch(const hq_place_t *p, uint32_t job_id);

/* Picks the prefetched tasks to take back at CLOCK_MONOTONIC time now_ns (rules
 * above), marks them and appends one slot each to out (grown with hq_realloc).
 * Returns the number appended. */
uint32_t hq_steal_run(hq_place_t *p, uint64_t now_ns, hq_sched_slots_t *out);

/* Whether a later call of hq_steal_run could retract something with nothing else
 * happening meanwhile (a time-limited worker holds prefetched tasks): the actor then
 * runs it periodically. */
bool hq_steal_needs_tick(const hq_place_t *p);

#endif
