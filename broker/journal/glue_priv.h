/* The journal glue's state, shared by its files (lifecycle, commit). Private to
 * broker/journal/. */
#ifndef HQ_BROKER_JOURNAL_GLUE_PRIV_H
#define HQ_BROKER_JOURNAL_GLUE_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "glue.h"

/* A record of the event hook (task results, task states, worker losses) between its
 * append and its completion, or held after its write failed (ENOSPC, EIO): held records
 * are appended again once the journal is writable (G8, disk faults: tasks keep running while the
 * journal is unavailable, and their results are held in memory until they are
 * durable). Compact: texts are taken again from the live state. */
typedef struct s_prec {
    uint64_t lsn;     /* of its current append (0 while held) */
    uint64_t wall_ns; /* of the event */
    uint32_t type;    /* enum hq_jrec_type */
    uint32_t a, b, c; /* task records: job, task, instance; worker_lost: worker, reason */
} s_prec_t;

typedef struct s_precs {
    s_prec_t *v;
    uint32_t head, n, cap;
} s_precs_t;

/* A dependant waiting for the durability of the finish that made it ready. */
typedef struct s_held {
    uint64_t lsn;    /* the finish record */
    uint32_t job_id; /* the dependant */
    uint32_t task_id;
} s_held_t;

struct hq_jglue {
    hq_broker_t *b;
    hq_journal_t *j;
    char *path;
    uint64_t epoch;          /* this run's server_start epoch */
    bool quiet;              /* task events not recorded */
    zhashx_t *inflight;      /* "<rid hex>:<request id>" of requests waiting for durability */
    uint64_t last_finish;    /* lsn of the last task_finished appended */
    uint64_t durable_finish; /* highest task_finished lsn known durable */
    s_held_t *held;          /* dependants waiting, in lsn order */
    uint32_t n_held, cap_held, head_held;
    bool warned;                  /* an append failure was logged */
    uint64_t grace_ns;            /* re-adoption grace period after the restart (0 = off) */
    uint32_t n_readopt;           /* tasks restored as running, waiting for re-adoption */
    s_precs_t pend;               /* hook records appended, completion not seen yet (lsn order) */
    s_precs_t failed;             /* hook records whose write failed, to append again */
    uint64_t first_failed_finish; /* lowest failed task_finished lsn not appended again */
    int retry_timer;              /* zloop timer id of a retry of failed records, -1 */
    bool closing;                 /* hq_jr_close runs: no new timers */
    bool warned_held;             /* holding records was logged */
};

/* The event hook (commit.c): records task and worker changes. */
void hq_jr_hook(const hq_event_t *ev, void *arg);
/* The writer's state changes (commit.c): logged; held records appended again. */
void hq_jr_on_state(void *arg, enum hq_journal_state st, int errnum);

#endif
