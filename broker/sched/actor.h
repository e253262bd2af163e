/* The scheduler actor's interface: the core actor (main thread) and the scheduler
 * (own thread) exchange only these commands, by pointer over an inproc pipe; the
 * receiver takes ownership. The scheduler owns the ready queues (grouped by
 * priority and resource-request class) and each worker's free capacity, counted in
 * amounts; the worker picks concrete indices itself. */
#ifndef HQ_SCHED_ACTOR_H
#define HQ_SCHED_ACTOR_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>

#include "types.h"

typedef struct hq_sched hq_sched_t;

enum hq_sched_cmd_type {
    /* core -> scheduler */
    HQ_SCHED_RQ_ADD = 1,       /* rq: a resource-request class (variants), by rq_id */
    HQ_SCHED_READY = 2,        /* ready: tasks became ready (ranges of one job) */
    HQ_SCHED_CANCEL_JOB = 3,   /* job_id: drop every ready task of the job */
    HQ_SCHED_CANCEL_TASKS = 4, /* ready: drop these ready tasks (ranges of one job) */
    HQ_SCHED_WORKER_UP = 5,    /* worker: a worker registered */
    HQ_SCHED_WORKER_DOWN = 6,  /* worker_id: gone; its capacity disappears */
    HQ_SCHED_CREDIT = 7,       /* worker_id + credit */
    HQ_SCHED_RELEASE = 8,      /* release: assigned tasks ended; free their capacity */
    HQ_SCHED_DUMP = 9,         /* answer with DUMPED after the next placement round */
    HQ_SCHED_JOB_SHORT = 10,   /* job_id + credit (1 = its tasks measured short: prefetch) */
    /* scheduler -> core */
    HQ_SCHED_ASSIGNED = 20,    /* assigned: tasks placed on workers */
    HQ_SCHED_DUMPED = 21,      /* text: the placement state as JSON (hq_place_dump) */
    HQ_SCHED_RETRACT = 22,     /* slots: prefetched tasks to take back from their workers */
    HQ_SCHED_MN_RESERVED = 23, /* slots (worker_id only): the workers now reserved for a
                                  multi-node task (mnres.h); sent when the set changes */
};

typedef struct hq_sched_cmd {
    enum hq_sched_cmd_type type;
    uint32_t worker_id;       /* WORKER_DOWN, CREDIT */
    uint32_t job_id;          /* CANCEL_JOB */
    uint32_t credit;          /* CREDIT; JOB_SHORT (0/1) */
    hq_sched_rq_t rq;         /* RQ_ADD */
    hq_sched_ready_t ready;   /* READY, CANCEL_TASKS */
    hq_sched_worker_t worker; /* WORKER_UP */
    hq_sched_slots_t slots;   /* RELEASE (tasks that ended), ASSIGNED, RETRACT, MN_RESERVED */
    char *text;               /* DUMPED (owned) */
} hq_sched_cmd_t;

/* Starts the actor thread. NULL on failure. */
hq_sched_t *hq_sched_new(void);
/* Stops the thread ($TERM) and frees everything. NULL-safe, sets *p = NULL. */
void hq_sched_destroy(hq_sched_t **p);
/* Stops placement (pause: commands are still applied, no task is assigned) or starts
 * it again (placing what is ready at once). */
void hq_sched_pause(hq_sched_t *s, bool pause);

/* Sends a command; takes ownership of *cmd (set to NULL). Never blocks for long:
 * the scheduler batches work and runs placement once per loop turn. */
int hq_sched_send(hq_sched_t *s, hq_sched_cmd_t **cmd);

/* The socket the core polls (zloop reader) for scheduler output. */
zsock_t *hq_sched_sock(hq_sched_t *s);

/* Receives one command from the scheduler (HQ_SCHED_ASSIGNED). Caller owns it. */
hq_sched_cmd_t *hq_sched_recv(hq_sched_t *s);

/* Frees a command and what it owns. NULL-safe, sets *p = NULL. */
void hq_sched_cmd_destroy(hq_sched_cmd_t **p);
/* Allocates a zeroed command of the type. */
hq_sched_cmd_t *hq_sched_cmd_new(enum hq_sched_cmd_type type);

#endif
