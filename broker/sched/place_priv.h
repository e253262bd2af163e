/* Private to the placement module (place*.c): the state behind hq_place_t (ready
 * queues, request classes, workers and what they hold) and the functions one file
 * of the module offers the others, grouped by the file that defines them. Calls run
 * one way only (no file calls back into one that calls it):
 *   place_round.c   -> place_mix.c, place_release.c, place_queue.c, place_fit.c, place.c
 *   place_mix.c     -> place_fit.c
 *   place_release.c -> place_worker.c, place_fit.c, place.c
 *   place_class.c   -> place_queue.c (re-sorts the queues of a class registered late)
 *   place_worker.c, place_queue.c, place_class.c -> place.c (state, registries)
 *   place_fit.c     -> nothing (works on one worker and one variant)
 * Pure like place.h: no sockets, no clock, no logging. */
#ifndef HQ_SCHED_PLACE_PRIV_H
#define HQ_SCHED_PLACE_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "place.h"

#define CPUS_RES 0 /* "cpus" is always resource index 0 */

typedef struct s_need {
    uint32_t res;       /* resource index */
    bool all;           /* whole capacity */
    uint8_t policy;     /* enum hq_policy */
    hq_amount_t amount; /* requested amount (unused when all) */
} need_t;

typedef struct s_variant {
    uint32_t n_nodes;     /* > 0: multi-node, never placed here */
    uint64_t min_time_ns; /* time request */
    uint32_t weight;      /* fixed-point (HQ_AMOUNT_ONE = 1): min-utilization mixes */
    uint32_t n;           /* number of needs */
    need_t *needs;        /* owned */
} variant_t;

typedef struct s_class {
    uint32_t rq_id;         /* core's class id */
    uint32_t n_variants;    /* >= 1 */
    variant_t *variants;    /* owned */
    uint64_t blocked_round; /* round in which the class could place nothing more */
    uint64_t hash;          /* of the compiled variants */
    struct s_class *shape;  /* first registered class with identical variants */
    hq_amount_t size;       /* cpus of its first variant (max for all/nodes): order key */
} class_t;

typedef struct s_run {
    uint32_t start; /* next id */
    uint32_t step;  /* >= 1 */
    uint64_t count; /* ids left: start, start+step, ... */
} run_t;

typedef struct s_queue {
    int32_t prio;     /* higher first */
    uint32_t job;     /* lower first */
    uint32_t rq;      /* class id */
    hq_amount_t size; /* its class's size (0 until registered): bigger first in a job */
    class_t *cls;     /* resolved class, NULL until registered */
    run_t *runs;      /* owned, sorted by start from head */
    uint32_t head;    /* first live run */
    uint32_t n;       /* runs used (including consumed before head) */
    uint32_t cap;     /* runs allocated */
    uint64_t count;   /* ids left */
} queue_t;

typedef struct s_pf {
    uint32_t job;     /* job id */
    uint32_t task;    /* task id */
    class_t *cls;     /* its class */
    uint32_t variant; /* chosen variant */
} pf_t;

/* Per-group amounts of one resource of a worker (only resources with >1 group). */
typedef struct s_grp {
    uint32_t n;        /* groups; 0 = not tracked per group */
    hq_amount_t *cap;  /* capacity of each group */
    hq_amount_t *free; /* free amount of each group */
} grp_t;

/* What one held task took from each group (to give back exactly that). */
typedef struct s_take {
    uint32_t res;       /* resource index */
    uint32_t group;     /* group index */
    hq_amount_t amount; /* amount taken */
} take_t;

typedef struct s_hold {
    uint32_t job;  /* job id */
    uint32_t task; /* task id */
    uint32_t n;    /* takes */
    take_t *takes; /* owned */
} hold_t;

/* A placed multi-node task: the workers it holds, root first. */
typedef struct s_mn {
    uint32_t job;    /* job id */
    uint32_t task;   /* task id */
    uint32_t n;      /* nodes still held */
    uint32_t *nodes; /* worker ids, owned */
} mn_t;

typedef struct s_worker {
    uint32_t id;           /* worker id */
    uint32_t credit;       /* max held tasks */
    uint32_t prefetch;     /* max waiting tasks */
    uint32_t held;         /* assigned, not released (running + waiting) */
    uint64_t lifetime_end; /* 0 = unlimited */
    char *group;           /* owned */
    hq_amount_t *cap;      /* per resource index, [names_cap] */
    hq_amount_t *free;     /* per resource index, [names_cap] */
    pf_t *pf;              /* waiting prefetched tasks, FIFO: pf[pf_off .. pf_off+n_pf) */
    uint32_t n_pf;         /* waiting count */
    uint32_t pf_off;       /* entries consumed at the front (compacted lazily) */
    uint32_t pf_cap;       /* allocated */
    uint64_t *pf_keys;     /* open-addressing set of job<<32|task of pf entries (0 = empty) */
    uint32_t pf_keys_cap;  /* slots, a power of two (0 = none yet) */
    uint64_t closed_round; /* reserved in this round */
    uint32_t resv_job;     /* the job it was reserved for (when closed_round) */
    uint32_t pf_variant;   /* scratch: variant chosen for prefetch this queue */
    grp_t *grp;            /* per resource index [grp_len] */
    uint32_t grp_len;      /* entries of grp (= names_cap) */
    bool grouped;          /* some resource is tracked per group */
    hold_t *holds;         /* held tasks that took group amounts */
    uint32_t n_holds;      /* used */
    uint32_t holds_cap;    /* allocated */
    bool in_mn;            /* held whole by a multi-node task */
    double min_util;       /* min share of busy cpus after a round (0 = off) */
    uint64_t util_round;   /* round in which it got tasks on free capacity */
} worker_t;

struct hq_place {
    char **names;         /* resource names by index */
    uint32_t n_names;     /* used */
    uint32_t names_cap;   /* allocated (also the size of worker arrays) */
    class_t **classes;    /* sorted by rq_id */
    uint32_t n_classes;   /* used */
    uint32_t classes_cap; /* allocated */
    queue_t **queues;     /* sorted by (prio desc, job, rq) */
    uint32_t n_queues;    /* used */
    uint32_t queues_cap;  /* allocated */
    worker_t **workers;   /* sorted by id */
    uint32_t n_workers;   /* used */
    uint32_t workers_cap; /* allocated */
    worker_t **heap;      /* scratch heap, [workers_cap] */
    worker_t **open;      /* round: workers that may be open (pruned lazily) */
    uint32_t n_open_list; /* entries in open */
    worker_t **unclosed;  /* round: workers not reserved (pruned lazily) */
    uint32_t n_unclosed;  /* entries in unclosed */
    class_t **shapes;     /* hash table of distinct classes, [shapes_cap] */
    uint32_t n_shapes;    /* used */
    uint32_t shapes_cap;  /* power of two */
    uint64_t round;       /* round counter */
    uint64_t n_ready;     /* ready ids over all queues */
    uint64_t now;         /* time of the running round */
    uint32_t n_open;      /* workers in the round not reserved and below credit */
    mn_t *mns;            /* placed multi-node tasks */
    uint32_t n_mns;       /* used */
    uint32_t mns_cap;     /* allocated */
    queue_t **slot_q;     /* round scratch: queue of each emitted slot (min-util undo) */
    uint32_t slot_q_cap;  /* allocated */
    bool any_min_util;    /* some worker has a min utilization */
    bool spread;          /* benchmarks: most free cpus first instead of packing */
    uint32_t resv_job;    /* round scratch: the job a reservation is made for */
};

/* ---- place.c: state and registries ---- */

/* Grows *arr (of elem-sized entries) to hold at least need, doubling from 8. */
void hq_pl_grow(void **arr, uint32_t *cap, uint32_t need, size_t elem);
/* Index of a resource name, interned on first use (grows every worker's arrays). */
uint32_t hq_pl_res_index(hq_place_t *p, const char *name);
void hq_pl_worker_free(worker_t *w);
void hq_pl_queue_free(queue_t *q);

/* ---- lookups by id (inline: they run for every placed and released task) ---- */

/* The class with rq_id, or NULL (binary search: classes are sorted by rq_id). */
static inline class_t *hq_pl_class_find(const hq_place_t *p, uint32_t rq_id)
{
    uint32_t lo = 0, hi = p->n_classes;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (p->classes[mid]->rq_id < rq_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (lo < p->n_classes && p->classes[lo]->rq_id == rq_id) ? p->classes[lo] : NULL;
}

/* Index of the worker with id, or the insertion point (found = false). */
static inline uint32_t hq_pl_worker_pos(const hq_place_t *p, uint32_t id, bool *found)
{
    uint32_t lo = 0, hi = p->n_workers;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (p->workers[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < p->n_workers && p->workers[lo]->id == id;
    return lo;
}

static inline worker_t *hq_pl_worker_find(const hq_place_t *p, uint32_t id)
{
    bool found;
    uint32_t i = hq_pl_worker_pos(p, id, &found);
    return found ? p->workers[i] : NULL;
}

/* ---- place_queue.c: ready queues ---- */

/* The class was just registered: its queues get its size and the order is restored. */
void hq_pl_queues_rekey(hq_place_t *p, const class_t *c);
/* Moves the live runs to the front (drops the consumed ones before head). */
void hq_pl_runs_compact(queue_t *q);
/* Inserts a run keeping runs sorted by start; merges with a contiguous predecessor. */
void hq_pl_queue_add_run(queue_t *q, run_t r);
/* Takes the lowest ready id of a non-empty queue (inline: once per placed task). */
static inline uint32_t hq_pl_queue_pop(queue_t *q)
{
    run_t *r = &q->runs[q->head];
    uint32_t id = r->start;
    r->count--;
    q->count--;
    if (r->count == 0)
        q->head++;
    else
        r->start += r->step;
    return id;
}

/* ---- place_worker.c: workers and multi-node node sets ---- */

/* Forgets placed multi-node task i (order of the others not kept). */
void hq_pl_mn_remove_at(hq_place_t *p, uint32_t i);
/* Frees the workers a multi-node task held (all but skip_id, which is going away). */
void hq_pl_mn_free_nodes(hq_place_t *p, const mn_t *m, uint32_t skip_id);

/* ---- place_fit.c: fitting, taking and giving back ---- */

/* Whether a worker's remaining lifetime at now covers the variant's time request. */
static inline bool hq_pl_time_ok(const worker_t *w, const variant_t *v, uint64_t now)
{
    if (w->lifetime_end == 0 || v->min_time_ns == 0)
        return true;
    uint64_t left = w->lifetime_end > now ? w->lifetime_end - now : 0;
    return v->min_time_ns <= left;
}

/* Amount check: against free capacity (with the group rule of strict policies), or
 * against total capacity. */
bool hq_pl_fits_amounts(const worker_t *w, const variant_t *v, bool total);
/* A single-node variant fits: lifetime and amounts (free or total capacity). */
bool hq_pl_fits(const worker_t *w, const variant_t *v, bool total, uint64_t now);
/* Takes what task job.task of variant v holds from the worker's free capacity. */
void hq_pl_take(worker_t *w, const variant_t *v, uint32_t job, uint32_t task);
/* Gives back what hq_pl_take took. */
void hq_pl_give(worker_t *w, const variant_t *v, uint32_t job, uint32_t task);

/* ---- place_mix.c: the mix of tasks for a worker with a min utilization ---- */

#define HQ_PL_MIX_MAX 16 /* ready queues a mix is chosen from (the first ones) */

typedef struct s_mix {
    queue_t *q;         /* ready queue */
    uint32_t vi;        /* its variant that fits the worker */
    const variant_t *v; /* that variant */
    uint64_t weight;    /* weight of one task */
    uint32_t level;     /* priority level, 0 = highest among the items */
    uint32_t max;       /* tasks it has (1 for an `all` request) */
    uint32_t take;      /* out: tasks of it in the chosen mix */
} hq_pl_mix_t;

/* Chooses the mix for worker w (items: HQ_PL_MIX_MAX entries). Returns the number of
 * items filled, their `take` set, or 0 when no mix reaches the worker's minimum. */
uint32_t hq_pl_mix_choose(const hq_place_t *p, const worker_t *w, hq_pl_mix_t *items);

/* ---- place_release.c: the prefetch FIFO ---- */

/* Appends a task to the worker's FIFO of waiting prefetched tasks. */
void hq_pl_pf_push(worker_t *w, pf_t t);

#endif
