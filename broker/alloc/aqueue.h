/* Allocation queues and their allocations as data: the queue parameters (decoded
 * from the JSON document `hq alloc add` sends and the journal keeps), the queues,
 * and the allocations each one submitted. No processes, no sockets. Private to
 * broker/alloc/. */
#ifndef HQ_ALLOC_AQUEUE_H
#define HQ_ALLOC_AQUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "hq_err.h"
#include "hq_resource.h"

enum hq_amgr { HQ_AMGR_SLURM = 0, HQ_AMGR_PBS = 1 };
enum hq_astate { HQ_AS_QUEUED = 0, HQ_AS_RUNNING, HQ_AS_FINISHED, HQ_AS_FAILED };

/* A queue's parameters (cli/REFERENCE.md §3.7). Strings owned; NULL = not given. */
typedef struct hq_aparams {
    enum hq_amgr mgr;              /* batch system */
    uint64_t timelimit_ns;         /* --time-limit (> 0) */
    uint64_t worker_time_limit_ns; /* --worker-time-limit, 0 = the time limit */
    uint64_t idle_timeout_ns;      /* --idle-timeout (default 5m) */
    uint32_t backlog;              /* --backlog (>= 1) */
    uint32_t per_alloc;            /* --max-workers-per-alloc (>= 1) */
    uint32_t max_workers;          /* --max-worker-count, 0 = unlimited */
    double min_util;               /* --min-utilization */
    bool no_ht;                    /* --no-hyper-threading */
    char *name, *cpus, *group, *coupling, *detect, *overview, *on_lost;
    char *start_cmd, *stop_cmd, *wrap_cmd;
    uint32_t n_resources; /* --resource values as typed */
    char **resources;
    uint32_t n_extra; /* the arguments after `--` */
    char **extra;
} hq_aparams_t;

/* One allocation (a batch job) of a queue. */
typedef struct hq_allocation {
    char *id;             /* the manager's job id ("" while being submitted) */
    uint32_t seq;         /* NNN of its directory */
    char *workdir;        /* <queue dir>/<NNN> */
    uint32_t target;      /* workers (nodes) asked for */
    enum hq_astate state; /* queued, running, finished, failed */
    uint64_t queued_ns;   /* wall times (0 = not yet) */
    uint64_t started_ns;  /* first worker connected or the manager said running */
    uint64_t ended_ns;    /* finished or failed */
    uint32_t n_connected; /* its workers connected now */
    uint32_t n_seen;      /* its workers that ever connected */
    bool polling;         /* a status query is running */
    bool restored;        /* known from the journal of an earlier run */
} hq_allocation_t;

typedef struct hq_aqueue {
    uint32_t id;              /* queue id, from 1 */
    hq_aparams_t p;           /* parameters */
    char *params_text;        /* the parameters as JSON text (journal) */
    bool paused;              /* no submissions */
    char *dir;                /* <run>/autoalloc/<id>[-<name>] */
    hq_allocation_t **allocs; /* in submission order */
    uint32_t n_allocs, cap_allocs;
    uint32_t next_seq;        /* NNN of the next allocation directory */
    uint32_t submit_failures; /* consecutive failed submissions */
    uint32_t start_failures;  /* consecutive allocations that ended without a worker */
    uint64_t retry_at;        /* CLOCK_MONOTONIC before which no submission (back-off) */
    bool submitting;          /* a submission is running */
    char *last_error;         /* the last submission or start failure, or NULL */
    char *why_idle;           /* why the last evaluation submitted nothing, or NULL */
    bool has_known;           /* known holds the workers' resources */
    hq_wres_list_t known;     /* predicted from --cpus/--resource, or the first worker's */
} hq_aqueue_t;

/* Decodes and checks the parameters document. Errors name the value and say what is
 * accepted ("Worker time limit cannot be larger than queue time limit", ...). */
int hq_aparams_from_json(const char *text, hq_aparams_t *p, hq_err_t *err);
void hq_aparams_clear(hq_aparams_t *p);
/* "SLURM" / "PBS" (tables) and "Slurm" / "PBS" (JSON). */
const char *hq_amgr_word(enum hq_amgr m);
const char *hq_amgr_json(enum hq_amgr m);
/* "queued", "running", "finished", "failed". */
const char *hq_astate_json(enum hq_astate s);

/* Predicts the workers' resources from --cpus/--resource (false when --cpus is not
 * given: the first worker tells). */
bool hq_aparams_predict(const hq_aparams_t *p, hq_wres_list_t *out);

/* A new allocation record appended to q (state QUEUED, id ""). */
hq_allocation_t *hq_aqueue_add_alloc(hq_aqueue_t *q, uint32_t seq, const char *workdir,
                                     uint32_t target);
/* Drops an allocation record (a submission that failed). */
void hq_aqueue_drop_alloc(hq_aqueue_t *q, hq_allocation_t *a);
/* The allocation of q with this manager job id, or NULL. */
hq_allocation_t *hq_aqueue_find(const hq_aqueue_t *q, const char *id);
void hq_aqueue_destroy(hq_aqueue_t **q);

/* The queue's object of `alloc list` (cli/REFERENCE.md §6), with the table's private
 * keys; worker_args is the generated worker command line. */
json_t *hq_aqueue_json(const hq_aqueue_t *q, json_t *worker_args);
/* An allocation's object of `alloc info`. */
json_t *hq_allocation_json(const hq_allocation_t *a);

#endif
