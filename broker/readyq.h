/* What the core tells the scheduler actor: commands, request classes and the tasks
 * that became ready during a loop turn. Private to broker/. */
#ifndef HQ_BROKER_READYQ_H
#define HQ_BROKER_READYQ_H

#include <stdint.h>

#include "jobs.h"
#include "sched/actor.h"

/* A task back to waiting, announced to the scheduler at the next flush. */
typedef struct hq_ready_ref {
    uint32_t job_id;
    uint32_t task_id;
    uint32_t rq_id;
    int32_t priority;
} hq_ready_ref_t;

/* Where commands go instead of the scheduler (tests); takes ownership of cmd. */
typedef void(hq_readyq_sink_fn)(void *arg, hq_sched_cmd_t *cmd);

/* The scheduler and the tasks to announce to it. */
typedef struct hq_readyq {
    hq_sched_t *sched;       /* the scheduler actor (owned; NULL: commands dropped) */
    hq_readyq_sink_fn *sink; /* when set, commands go here instead (tests) */
    void *sink_arg;          /* its argument */
    hq_ready_ref_t *list;    /* ready since the last flush */
    uint32_t n, cap;
} hq_readyq_t;

/* Scheduler capacity to give back (slots of tasks that ended or left). */
typedef struct hq_release {
    hq_sched_slot_t *slots; /* capacity to give back */
    uint32_t n, cap;
} hq_release_t;

/* Sends a command to the scheduler (takes ownership; dropped without a scheduler). */
void hq_readyq_post(hq_readyq_t *q, hq_sched_cmd_t *cmd);
/* Tells the scheduler a request class: rq_id stands for def's resource variants. */
void hq_readyq_add_class(hq_readyq_t *q, uint32_t rq_id, const hq_task_def_t *def);
/* Queues t of j for the scheduler at the next flush. */
void hq_readyq_push(hq_readyq_t *q, const hq_job_t *j, const hq_task_t *t);

/* Waiting tasks of one job announced as id ranges while they are visited in id order
 * (a restore): no per-task entry, so a restored array costs what its submit did. add
 * posts the previous run when the class changes; end posts the last one. */
typedef struct hq_readyrun {
    uint32_t job_id, rq_id;
    int32_t priority;
    hq_range_t *r;
    uint32_t n, cap;
} hq_readyrun_t;
void hq_readyrun_add(hq_readyq_t *q, hq_readyrun_t *run, const hq_job_t *j, const hq_task_t *t);
void hq_readyrun_end(hq_readyq_t *q, hq_readyrun_t *run);
/* Sends the queued tasks, grouped per (job, class) as id ranges. */
void hq_readyq_flush(hq_readyq_t *q);

/* Adds the slot a task held (worker, job, task, class, variant) to r. */
void hq_release_add(hq_release_t *r, uint32_t worker_id, uint32_t job_id, uint32_t task_id,
                    uint32_t rq_id, uint32_t variant);
/* Gives r's slots back to the scheduler (one RELEASE) and empties r. */
void hq_readyq_release(hq_readyq_t *q, hq_release_t *r);

/* Frees the queued tasks (the scheduler is the loop's). */
void hq_readyq_fini(hq_readyq_t *q);

#endif
