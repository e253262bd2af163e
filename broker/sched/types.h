/* The data the scheduler's two halves share: what the core tells the scheduler
 * (request classes, ready tasks, workers) and what placement answers (slots: a task
 * on a worker with the variant chosen). The actor (actor.h) carries these in its
 * commands; pure placement (place.h) takes and returns them. Plain data, no code. */
#ifndef HQ_SCHED_TYPES_H
#define HQ_SCHED_TYPES_H

#include <stdint.h>

#include "hq_idrange.h"
#include "hq_resource.h"

typedef struct hq_sched_rq {
    uint32_t rq_id;          /* class id chosen by the core (unique) */
    uint32_t n_variants;     /* >= 1 */
    hq_rvariant_t *variants; /* owned */
} hq_sched_rq_t;

typedef struct hq_sched_ready {
    uint32_t job_id;
    uint32_t rq_id;     /* request class of these tasks */
    int32_t priority;   /* higher first; among equals lower job_id first */
    hq_rangelist_t ids; /* owned: task ids (each listed once) */
} hq_sched_ready_t;

typedef struct hq_sched_worker {
    uint32_t worker_id;
    hq_wres_list_t resources; /* owned copy of the worker's resources */
    uint32_t credit;          /* max tasks held at once (running + queued) */
    uint32_t prefetch;        /* tasks it may hold beyond its free capacity */
    uint64_t lifetime_end_ns; /* CLOCK_MONOTONIC deadline; 0 = unlimited */
    char *group;              /* owned */
    double min_utilization;   /* 0..1: place only when >= this share of cpus is busy */
} hq_sched_worker_t;

typedef struct hq_sched_slot {
    uint32_t worker_id;
    uint32_t job_id;
    uint32_t task_id;
    uint32_t rq_id;
    uint32_t variant; /* chosen variant */
    uint8_t prefetch; /* ASSIGNED: queued beyond the worker's free capacity */
} hq_sched_slot_t;

typedef struct hq_sched_slots {
    uint32_t n;
    hq_sched_slot_t *slots; /* owned */
} hq_sched_slots_t;

#endif
