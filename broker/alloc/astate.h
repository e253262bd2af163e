/* The automatic allocator's state, the bottom of broker/alloc/: its constants, the
 * kinds of manager commands, the held trial requests, the allocator (its queues by id,
 * its running manager commands, its directory) and the lookup, insertion and removal
 * of queues and allocations, plus the file helpers its allocation directories need.
 * Calls nothing above it (alloc.c, life.c, record.c). Private to broker/alloc/. */
#ifndef HQ_ALLOC_ASTATE_H
#define HQ_ALLOC_ASTATE_H

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

/* The queue with this id, or NULL (a may be NULL). */
hq_aqueue_t *hq_alloc_queue(hq_alloc_t *a, uint32_t id);
/* Adds a queue (ids stay ascending) / removes and frees one. */
void hq_alloc_insert(hq_alloc_t *a, hq_aqueue_t *q);
void hq_alloc_remove_queue(hq_alloc_t *a, hq_aqueue_t *q);
/* The allocation (and its queue in *qp) that a worker of manager m with this manager
 * job id belongs to, or NULL. */
hq_allocation_t *hq_alloc_find(hq_alloc_t *a, enum hq_manager m, const char *job_id,
                               hq_aqueue_t **qp);
/* <run dir>/autoalloc (the run dir is known once the broker started). */
const char *hq_alloc_root(hq_alloc_t *a);
/* Makes a directory and its parents (0700). 0 or -1. */
int hq_alloc_mkdirs(const char *path);
/* Writes text to path (mode). 0 or -1. */
int hq_alloc_write(const char *path, const char *text, int mode);

#endif
