/* The job and task tables: pure data (no sockets, no clock reads except where a time
 * is passed in). Task arrays are stored as one compact struct per task plus one shared
 * definition per submit; argv/env are never copied per task. */
#ifndef HQ_BROKER_JOBS_H
#define HQ_BROKER_JOBS_H

#include <stdbool.h>
#include <stdint.h>

#include "hq_err.h"
#include "hq_msg.h"

/* Internal task states. ASSIGNED = sent to a worker but not started (shown WAITING). */
enum hq_tstate {
    HQ_TS_WAITING = 0,
    HQ_TS_ASSIGNED,
    HQ_TS_RUNNING,
    HQ_TS_FINISHED,
    HQ_TS_FAILED,
    HQ_TS_CANCELED,
    HQ_TS_ABORTED,
    HQ_TS_COUNT
};

/* Bound on tasks per job: a hostile range list cannot make us allocate without end. */
#define HQ_MAX_JOB_TASKS 100000000u

/* Task flag bits. */
#define HQ_TF_HOLDS 1u     /* the task holds scheduler capacity on task->worker */
#define HQ_TF_READOPT 2u   /* restored as running: waits for its worker to come back */
#define HQ_TF_ADOPTED 4u   /* held by t->worker without scheduler capacity (re-adopted) */
#define HQ_TF_SENT 8u      /* an ASSIGN of this instance went to t->worker: it may have started */
#define HQ_TF_PREFETCH 16u /* queued at t->worker beyond its free capacity, not started */
#define HQ_TF_RETRACT 32u  /* a RETRACT of this instance is on its way to t->worker */

/* One task: 48 bytes, whatever the size of its definition. */
typedef struct hq_task {
    uint32_t id;       /* task id within the job */
    uint32_t def;      /* index into job->defs */
    uint32_t entry;    /* index into the submit's entries, or UINT32_MAX */
    uint32_t instance; /* current instance id (echoed by workers) */
    uint32_t worker;   /* worker holding / that last ran it (0 = none) */
    uint8_t state;     /* enum hq_tstate */
    uint8_t variant;   /* resource variant chosen by the scheduler */
    uint8_t flags;     /* HQ_TF_* */
    uint8_t pad_;      /* unused */
    uint32_t crashes;  /* times it was running on a lost worker */
    uint64_t start_ns; /* wall time of the last start (0 = never started) */
    uint64_t end_ns;   /* wall time it reached a final state (0 = not yet) */
    char *error;       /* FAILED: the error text (owned); else NULL */
} hq_task_t;

/* A task definition as the job keeps it: borrowed from its submit message, with the
 * paths resolved at submit (cli/REFERENCE.md §1.6). */
typedef struct hq_jdef {
    const hq_task_def_t *def; /* borrowed from submits[submit].msg */
    uint32_t submit;          /* index into job->submits */
    uint32_t rq_id;           /* scheduler request class of this definition */
    char *cwd;                /* resolved working dir (owned) */
    char *out;                /* resolved stdout path, NULL for none/stream (owned) */
    char *err;                /* resolved stderr path, NULL for none/stream (owned) */
} hq_jdef_t;

/* One SUBMIT into a job. */
typedef struct hq_jsubmit {
    hq_msg_t *msg;    /* owned: keeps the definitions and entries alive */
    bool graph;       /* graph form */
    char *ids_text;   /* array form: the ranges as given (owned) */
    char *stream_dir; /* resolved --stream dir or NULL (owned) */
    char *submit_dir; /* borrowed from msg */
} hq_jsubmit_t;

/* Dependency node of a graph task (job files): only tasks of graph submits that have
 * dependencies or dependants get one; array tasks stay 48 bytes. */
typedef struct hq_dnode {
    uint32_t task_id; /* the task */
    uint32_t n_deps;  /* its dependencies */
    uint32_t *deps;   /* their task ids, as given (owned) */
    uint32_t n_wait;  /* dependencies not finished yet */
    uint32_t n_out;   /* dependants */
    uint32_t cap_out; /* allocated */
    uint32_t *out;    /* dependants' task ids (owned) */
} hq_dnode_t;

/* The dependency graph of a job: nodes plus an open-addressing index by task id. */
typedef struct hq_jdeps {
    hq_dnode_t *nodes;  /* node storage */
    uint32_t n_nodes;   /* in use */
    uint32_t cap_nodes; /* allocated */
    uint32_t *slots;    /* node index + 1 per hash slot, 0 = empty */
    uint32_t cap_slots; /* power of two */
} hq_jdeps_t;

/* The workers of a multi-node task's last placement, root first (broker/mnodes.c). */
typedef struct hq_mnrun {
    uint32_t task_id;  /* the task */
    uint32_t n;        /* nodes */
    uint32_t *workers; /* worker ids, root first (owned) */
} hq_mnrun_t;

typedef struct hq_job {
    uint32_t id;         /* job id */
    char *name;          /* owned */
    bool open;           /* accepts further submits */
    bool has_max_fails;  /* --max-fails given */
    uint32_t max_fails;  /* abort the rest after more failures than this */
    char *cancel_reason; /* owned or NULL */
    uint64_t submit_ns;  /* wall time of creation */
    uint64_t finish_ns;  /* wall time it last became complete (0 = not) */
    hq_task_t *tasks;    /* sorted by id */
    uint32_t n_tasks;    /* tasks in use */
    uint32_t cap_tasks;  /* allocated */
    hq_jdef_t *defs;     /* all definitions of all submits */
    uint32_t n_defs;
    hq_jsubmit_t *submits;
    uint32_t n_submits;
    uint32_t counts[HQ_TS_COUNT]; /* tasks per state */
    hq_jdeps_t *deps;             /* dependency graph, NULL when no task has deps */
    uint64_t avg_run_ns;          /* moving average of its finished tasks' run times */
    uint32_t n_timed;             /* finished tasks measured */
    bool short_tasks;             /* measured short: the scheduler may prefetch them */
    hq_mnrun_t *mnruns;           /* multi-node tasks placed (mnodes.c) */
    uint32_t n_mnruns, cap_mnruns;
} hq_job_t;

/* CLI job state word (cli/REFERENCE.md §1.8) derived from the counts. */
const char *hq_job_state_word(const hq_job_t *j);
/* The enum hq_state_bit of the job state. */
uint32_t hq_job_state_bit(const hq_job_t *j);
/* No waiting, assigned or running task. */
bool hq_job_is_complete(const hq_job_t *j);
/* Lowercase JSON state of a task ("waiting"...). */
const char *hq_tstate_json(uint8_t st);
/* enum hq_state_bit of a task state. */
uint32_t hq_tstate_bit(uint8_t st);
/* Final (finished/failed/canceled/aborted). */
bool hq_tstate_final(uint8_t st);

/* Binary search by task id; NULL when absent. */
hq_task_t *hq_job_task(const hq_job_t *j, uint32_t task_id);

/* Appends the tasks of an array submit: ids from rl, all with definition def_idx;
 * entry index per task (n_entries == count: by position; else by id when id <
 * n_entries; else none). Fails with "Task <t> already exists in job <j>." or
 * "Task <t> is defined more than once." and changes nothing. */
int hq_job_add_array(hq_job_t *j, const hq_rangelist_t *rl, uint32_t def_idx, uint32_t n_entries,
                     hq_err_t *err);
/* Checks a graph submit against the job before anything changes: ids unique
 * ("Task <t> is defined more than once.") and new ("Task <t> already exists in job
 * <j>."), every dependency names a task of this submit or of the job and not the
 * task itself ("Invalid dependency on <t>"), and no cycle ("Dependency cycle
 * detected: task <t> depends on itself through its dependencies"). */
int hq_job_check_graph(const hq_job_t *j, const hq_graph_task_t *g, uint32_t n, hq_err_t *err);
/* Adds the tasks of a checked graph submit (definition def_base + def_idx) and
 * their dependency nodes; n_wait counts the dependencies that are not FINISHED
 * (failed/canceled/aborted ones included: the caller aborts such tasks). */
void hq_job_add_graph(hq_job_t *j, const hq_graph_task_t *g, uint32_t n, uint32_t def_base);
/* Dependency node of a task, or NULL when it has none. Valid until the next
 * hq_job_add_graph. */
hq_dnode_t *hq_job_dnode(const hq_job_t *j, uint32_t task_id);
/* Largest task id + 1, or 0 for an empty job. */
uint32_t hq_job_next_task_id(const hq_job_t *j);

/* Frees a job and everything it owns. NULL-safe. */
void hq_job_destroy(hq_job_t **p);

/* Resolves a definition's cwd/stdout/stderr into jd (cwd/out/err) with the
 * placeholder values known at submit: job id, submit dir, server uid
 * (hq_placeholder_resolve, cli/REFERENCE.md §1.6). */
void hq_jdef_resolve_paths(hq_jdef_t *jd, const hq_task_def_t *def, uint32_t job_id,
                           const char *submit_dir, const char *server_uid);

#endif
