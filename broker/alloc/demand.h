/* The demand of one allocation queue: from the tasks waiting now, how many workers of
 * the queue's shape (its known or predicted resources, its workers' time limit, its
 * nodes per allocation) could be put to work. Tasks waiting on dependencies and tasks
 * no worker of the queue could run are counted apart, with the reason, and create no
 * demand. Reads the job table and the worker registry. Private to broker/alloc/. */
#ifndef HQ_ALLOC_DEMAND_H
#define HQ_ALLOC_DEMAND_H

#include <stdint.h>

#include "aqueue.h"
#include "jobtab.h"
#include "registry.h"

typedef struct hq_ademand {
    uint64_t workers;       /* workers the runnable tasks could use */
    uint64_t cpu_units;     /* their cpu request in fixed-point units (single-node tasks) */
    uint32_t max_nodes;     /* largest multi-node request among them (0 = none) */
    uint64_t n_ready;       /* runnable tasks counted */
    uint64_t n_deps;        /* waiting on dependencies */
    uint64_t n_too_long;    /* --time-request above the queue's worker time limit */
    uint64_t n_no_resource; /* a resource the queue's workers lack or have too little of */
    uint64_t n_too_wide;    /* more nodes than --max-workers-per-alloc */
} hq_ademand_t;

/* Computes q's demand from the waiting tasks and from those a worker took ahead while
 * all its cpus are busy (its prefetch: another worker could start them now); stops
 * counting once workers reaches cap (enough to decide). */
void hq_ademand_compute(const hq_jobtab_t *jobs, const hq_registry_t *reg, const hq_aqueue_t *q,
                        uint64_t cap, hq_ademand_t *out);
/* "12 tasks wait for dependencies; 3 tasks request more time than the queue's time
 * limit ..." for the debug log and `alloc info`, or NULL when nothing was skipped.
 * Caller frees. */
char *hq_ademand_why(const hq_ademand_t *d);

#endif
