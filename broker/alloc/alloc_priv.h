/* The allocator's state, shared by alloc.c (queues, requests, events) and life.c
 * (the life of allocations: submit, poll, cancel, failures). Private to
 * broker/alloc/. */
#ifndef HQ_ALLOC_PRIV_H
#define HQ_ALLOC_PRIV_H

#include "alloc.h"
#include "aqueue.h"
#include "proc.h"

#define HQ_ALLOC_SUBMIT_LIMIT 10 /* failed submissions in a row that pause a queue */
#define HQ_ALLOC_START_LIMIT 3   /* allocations in a row that ended without a worker */
#define HQ_ALLOC_CMD_TIMEOUT (60 * HQ_NS_PER_SEC) /* sbatch, scontrol, ... */

/* Kinds of manager commands (hq_pjob_t.kind). */
enum hq_akind {
    HQ_AK_SUBMIT = 0,   /* sbatch/qsub of an allocation */
    HQ_AK_POLL,         /* scontrol/qstat */
    HQ_AK_CANCEL,       /* scancel/qdel */
    HQ_AK_TRIAL_SUBMIT, /* the trial allocation of alloc add / dry-run */
    HQ_AK_TRIAL_CANCEL, /* its cancel */
};

/* An `alloc add` / `alloc dry-run` request held while its trial allocation runs. */
typedef struct hq_trial {
    uint8_t rid[HQ_RID_MAX]; /* client routing id */
    size_t rid_len;
    uint64_t request_id;
    bool create;       /* create the queue once the trial succeeded */
    bool trial;        /* a trial allocation was submitted (its message is logged) */
    char *params_text; /* the queue's parameters */
    hq_aparams_t p;    /* decoded */
    char *job_id;      /* the trial's job id once submitted */
} hq_trial_t;

struct hq_alloc {
    hq_broker_t *b;
    hq_aqueue_t **queues; /* by creation (id order) */
    uint32_t n_queues, cap_queues;
    uint32_t max_queue_id; /* highest queue id handed out */
    hq_procs_t *procs;     /* manager commands running */
    char *root;            /* <run dir>/autoalloc */
    uint64_t poll_ns;      /* HQ_ALLOC_POLL_INTERVAL */
    uint64_t backoff_ns;   /* HQ_ALLOC_BACKOFF: first delay after a failed submission */
    uint64_t last_poll;    /* CLOCK_MONOTONIC of the last poll round */
    uint32_t n_trials;     /* trial allocation directories made */
    bool stopping;         /* the server stops: what gets submitted now is canceled */
};

hq_aqueue_t *hq_alloc_queue(hq_alloc_t *a, uint32_t id);
/* Adds a queue (ids stay ascending) / removes and frees one. */
void hq_alloc_insert(hq_alloc_t *a, hq_aqueue_t *q);
void hq_alloc_remove_queue(hq_alloc_t *a, hq_aqueue_t *q);
/* <run dir>/autoalloc (the run dir is known once the broker started). */
const char *hq_alloc_root(hq_alloc_t *a);

/* record.c: the allocator's events (the journal records them). state: 0 active,
 * 1 paused, 2 removed for HQ_EV_ALLOC_QUEUE_STATE. */
void hq_alloc_emit_queue(hq_alloc_t *a, const hq_aqueue_t *q, enum hq_event_type type,
                         uint32_t state);
/* HQ_EV_ALLOC_QUEUED or HQ_EV_ALLOC_STATE (its present state) of an allocation. */
void hq_alloc_emit_alloc(hq_alloc_t *a, const hq_aqueue_t *q, const hq_allocation_t *al,
                         enum hq_event_type type);
/* Makes a directory and its parents (0700). 0 or -1. */
int hq_alloc_mkdirs(const char *path);
/* Writes text to path (mode). 0 or -1. */
int hq_alloc_write(const char *path, const char *text, int mode);

/* Answers a held `alloc add` / `dry-run` (error NULL: the trial succeeded; the queue
 * is created when asked for) and frees it. */
void hq_alloc_trial_ended(hq_alloc_t *a, hq_trial_t *t, const char *error);

/* life.c */
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

#endif
