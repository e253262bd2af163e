/* Pure placement for the scheduler actor: ready-task queues (kept as id ranges),
 * request classes, each worker's capacity in amounts, and the placement round.
 * No sockets, no clock, no logging: state in, assignments out. Implemented by
 * place*.c (one concern each, listed in place_priv.h); this is their only public
 * header.
 *
 * The rules (what a round does):
 * - Order: queues are visited by priority (higher first), then job id (lower
 *   first), then the class's cpus (first variant; bigger first, `all` and
 *   multi-node biggest: the smaller requests of a job then fill the gaps), then
 *   request class id; inside a queue task ids ascend.
 * - Fit: a variant fits a worker when every requested resource exists there
 *   (capacity > 0) and its free amount is >= the request (`all` = the whole
 *   capacity, so the resource must be completely free), its min_time_ns is <= the
 *   worker's remaining lifetime, and the worker holds fewer tasks than its credit.
 * - Groups: resources with several groups (NUMA) are also counted per group. A task
 *   takes from the groups the worker's allocator would use (scatter: one unit per
 *   group in turn; else one group when one can hold it, the fullest such, otherwise
 *   the freest groups first). A strict policy (compact!, tight!) fits only when the
 *   free groups hold it in the fewest groups the worker could ever use.
 * - Multi-node variants (n_nodes > 0) take n_nodes whole idle workers (nothing held)
 *   of one group: the group whose lowest idle worker id is lowest, its lowest ids.
 *   One slot is emitted per node, root (lowest id) first; the root's release frees
 *   all nodes; a lost root frees the others, a lost secondary leaves the set.
 * - Min utilization: a worker with min_utilization > 0 gets no prefetch and is not
 *   used by the queue-by-queue pass nor reserved. After that pass it gets a mix of
 *   the first 16 ready queues (per queue its first variant that fits the worker's
 *   total capacity; `all` at most once) that fits its free amounts and credit and
 *   brings its busy cpus to at least min_utilization x its cpus: the mix with the
 *   most weight (the variant's weight per task) of the highest priority, then of
 *   the next priority..., then the most cpus, then more of the earlier queues
 *   (place_mix.c, a bounded search). When none reaches the share it gets nothing
 *   (12 cpus at 1.0: three 3-cpu tasks of weight 2 and one `all` task -> the `all`
 *   task; four 3-cpu tasks -> the four; three 3-cpu and three 6-cpu tasks -> two
 *   3-cpu and one 6-cpu). A mix the groups model cannot take whole is taken back.
 * - Variants: the first variant is used while some worker fits it; only when none
 *   does is the next variant tried.
 * - Pack: among fitting workers the one with the fewest free cpus wins, ties go to
 *   the lower worker id, so a worker is filled before the next one is used (eight
 *   1-cpu tasks on idle 4-cpu workers take two workers) and idle workers stay idle
 *   (they can end on their idle timeout).
 * - Prefetch: when no variant fits any worker's free capacity, a task may be queued
 *   on a worker whose TOTAL capacity fits it, up to `prefetch` such tasks per worker
 *   (fewest prefetched first, then lower id). The model of a worker is strict FIFO:
 *   prefetched tasks start, in order, as soon as releases free enough capacity, and
 *   while a worker holds a waiting prefetched task it gets no task on free capacity
 *   (that task would overtake the waiting one), only further prefetch.
 * - No starvation: when a queue still has tasks but nothing more can be placed or
 *   prefetched, its class reserves one worker for the rest of the round, once the
 *   other classes of the same job had their turn (they fill the gaps): the worker
 *   (not already reserved, credit > 0, no min utilization) whose total capacity
 *   fits a variant (resources and time request), with the most free cpus, ties to
 *   the lower id. Later jobs' queues (lower priority, or equal priority and newer
 *   jobs) get nothing on a reserved worker, so it drains until the blocked task
 *   fits. The worker itself starts its queue in order but lets no task overtake a
 *   waiting task of a higher priority (worker/tasks.c). A blocked multi-node variant reserves
 * n_nodes workers of the group with the most idle workers (ties: lowest id), the least busy ones.
 * One reservation per class per round (classes with identical variants count as one); a class that
 * can never fit anywhere reserves nothing and blocks nobody.
 */
#ifndef HQ_PLACE_H
#define HQ_PLACE_H

#include <stdbool.h>
#include <stdint.h>

#include "hq_resource.h"
#include "types.h"

typedef struct hq_place hq_place_t;

/* Creates empty placement state. Never NULL (out-of-memory aborts). */
hq_place_t *hq_place_new(void);
/* The state as a JSON text (place_dump.c; `hq server debug-dump`). Caller frees. */
char *hq_place_dump(const hq_place_t *p);
/* Frees everything. NULL-safe, sets *p = NULL. */
void hq_place_destroy(hq_place_t **p);

/* Registers a request class (copied). Returns -1 (and changes nothing) if the
 * rq_id is already known or the class has no variants. */
int hq_place_rq_add(hq_place_t *p, const hq_sched_rq_t *rq);

/* Adds ready tasks (ranges copied, never expanded). Tasks of a class that is not
 * registered yet wait until it is. Returns the number of task ids added. */
uint64_t hq_place_ready(hq_place_t *p, const hq_sched_ready_t *ready);

/* Drops every ready task of the job. Returns the number dropped. */
uint64_t hq_place_cancel_job(hq_place_t *p, uint32_t job_id);

/* Drops these ready tasks of ready->job_id (any class). Ids that are not ready are
 * ignored. Returns the number dropped. */
uint64_t hq_place_cancel_tasks(hq_place_t *p, const hq_sched_ready_t *ready);

/* Adds a worker (resources copied). A known worker_id is replaced (its held tasks
 * are forgotten). */
void hq_place_worker_up(hq_place_t *p, const hq_sched_worker_t *w);
/* Removes a worker and everything it held. Unknown ids are ignored. */
void hq_place_worker_down(hq_place_t *p, uint32_t worker_id);
/* Sets a worker's credit. Unknown ids are ignored. */
void hq_place_credit(hq_place_t *p, uint32_t worker_id, uint32_t credit);

/* Tasks ended: frees what they held (a waiting prefetched task just leaves the
 * worker's queue), then starts waiting prefetched tasks that fit now. Slots naming
 * unknown workers, classes or variants are ignored. */
void hq_place_release(hq_place_t *p, const hq_sched_slot_t *slots, uint32_t n);

/* Runs one placement round at CLOCK_MONOTONIC time now_ns and appends the
 * assignments to out (out->slots grows with hq_realloc; out keeps ownership).
 * Returns the number of slots appended. */
uint32_t hq_place_run(hq_place_t *p, uint64_t now_ns, hq_sched_slots_t *out);

/* ---- introspection (tests, benchmarks) ---- */

/* Benchmarks only: among fitting workers take the one with the MOST free cpus
 * (spreading) instead of packing, to measure what packing saves. */
void hq_place_set_spread(hq_place_t *p, bool spread);

/* Number of ready (unassigned) tasks. */
uint64_t hq_place_ready_count(const hq_place_t *p);

typedef struct hq_place_winfo {
    uint32_t held;       /* tasks assigned and not released */
    uint32_t prefetched; /* of which waiting at the worker (prefetch) */
    uint32_t credit;     /* current credit */
} hq_place_winfo_t;

/* Fills *out for a worker. -1 if unknown. */
int hq_place_worker_info(const hq_place_t *p, uint32_t worker_id, hq_place_winfo_t *out);

/* Free amount of a named resource on a worker; -1 if the worker or resource is
 * unknown to it. */
hq_amount_t hq_place_worker_free(const hq_place_t *p, uint32_t worker_id, const char *res);

#endif
