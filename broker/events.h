/* The single event point: every job, task and worker state change goes through here.
 * It keeps the per-job task counts, logs the event at debug level and calls the
 * registered hooks (the journal attaches here). */
#ifndef HQ_BROKER_EVENTS_H
#define HQ_BROKER_EVENTS_H

#include <stdint.h>

#include "jobs.h"

enum hq_event_type {
    HQ_EV_SERVER_START = 0,
    HQ_EV_SERVER_STOP,
    HQ_EV_WORKER_CONNECTED,
    HQ_EV_WORKER_LOST,
    HQ_EV_JOB_CREATED,
    HQ_EV_JOB_OPEN,
    HQ_EV_JOB_CLOSE,
    HQ_EV_JOB_CANCEL,
    HQ_EV_JOB_COMPLETED,
    HQ_EV_TASK_STARTED,
    HQ_EV_TASK_FINISHED,
    HQ_EV_TASK_FAILED,
    HQ_EV_TASK_CANCELED,
    HQ_EV_TASK_ABORTED,
    HQ_EV_TASK_REQUEUED,     /* internal: back to waiting (not a HyperQueue event) */
    HQ_EV_TASK_NOTIFY,       /* `hq task notify`: streamed to live readers, never journaled */
    HQ_EV_WORKER_OVERVIEW,   /* a worker's hardware state (text: the hw-state JSON) */
    HQ_EV_ALLOC_QUEUE,       /* autoalloc-queue-created (text: the parameters JSON) */
    HQ_EV_ALLOC_QUEUE_STATE, /* a queue paused (count 1), resumed (0) or removed (2) */
    HQ_EV_ALLOC_QUEUED,      /* autoalloc-allocation-queued (text: workdir, count: workers) */
    HQ_EV_ALLOC_STATE,       /* an allocation started / finished / failed (count: state) */
    HQ_EV_COUNT
};

typedef struct hq_event {
    enum hq_event_type type;
    uint64_t time_ns;     /* wall time */
    uint32_t job_id;      /* job events, task events */
    uint32_t task_id;     /* task events */
    uint32_t instance;    /* task events */
    uint32_t worker_id;   /* worker events, task-started */
    const char *text;     /* error (task-failed), reason (worker-lost), uid (server-start),
                           * message (task-notify) */
    const void *obj;      /* the hq_job_t / hq_worker_t concerned, or NULL (borrowed) */
    uint32_t queue_id;    /* autoalloc events: the allocation queue */
    uint32_t count;       /* autoalloc events: workers (queued) or the new state */
    const char *alloc_id; /* autoalloc allocation events: the manager's job id */
} hq_event_t;

typedef void(hq_event_fn)(const hq_event_t *ev, void *arg);

typedef struct hq_events hq_events_t;

hq_events_t *hq_events_new(void);
void hq_events_destroy(hq_events_t **p);

/* Registers a hook called for every event, in registration order. */
int hq_events_hook(hq_events_t *e, hq_event_fn *fn, void *arg);
/* Removes the hook registered with exactly this fn and arg (if any). */
void hq_events_unhook(hq_events_t *e, hq_event_fn *fn, void *arg);

/* Kebab-case name ("task-finished"). */
const char *hq_event_name(enum hq_event_type t);

/* Emits an event (fills time_ns when 0). */
void hq_events_emit(hq_events_t *e, hq_event_t *ev);

/* The only way a task changes state: updates the job's counts, the task's times and
 * error (error is copied; only kept for FAILED), emits the matching task event, and
 * job-completed when the job has nothing left to run. Returns true when the job just
 * became complete. */
bool hq_events_task_state(hq_events_t *e, hq_job_t *j, hq_task_t *t, enum hq_tstate st,
                          uint32_t worker_id, const char *error, uint64_t wall_ns);

#endif
