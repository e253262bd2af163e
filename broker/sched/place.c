/* Pure placement: ready queues as id ranges, request classes compiled to resource
 * indices, worker capacities in amounts, and the placement round (rules in
 * place.h). A round costs O(queues + classes x workers) plus O(log workers) per
 * placed task: workers fitting a class are found once and kept in a heap. */
#include "place.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

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
} class_t;

typedef struct s_run {
    uint32_t start; /* next id */
    uint32_t step;  /* >= 1 */
    uint64_t count; /* ids left: start, start+step, ... */
} run_t;

typedef struct s_queue {
    int32_t prio;   /* higher first */
    uint32_t job;   /* lower first */
    uint32_t rq;    /* class id */
    class_t *cls;   /* resolved class, NULL until registered */
    run_t *runs;    /* owned, sorted by start from head */
    uint32_t head;  /* first live run */
    uint32_t n;     /* runs used (including consumed before head) */
    uint32_t cap;   /* runs allocated */
    uint64_t count; /* ids left */
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
};

/* ---- small helpers ---- */

static void s_grow(void **arr, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap)
        return;
    uint32_t c = *cap ? *cap : 8;
    while (c < need)
        c *= 2;
    *arr = hq_realloc(*arr, (size_t)c * elem);
    *cap = c;
}

static uint32_t s_res_index(hq_place_t *p, const char *name)
{
    for (uint32_t i = 0; i < p->n_names; i++)
        if (strcmp(p->names[i], name) == 0)
            return i;
    if (p->n_names == p->names_cap) {
        uint32_t old = p->names_cap;
        uint32_t c = old ? old * 2 : 8;
        p->names = hq_realloc(p->names, (size_t)c * sizeof *p->names);
        for (uint32_t w = 0; w < p->n_workers; w++) {
            worker_t *wk = p->workers[w];
            wk->cap = hq_realloc(wk->cap, (size_t)c * sizeof *wk->cap);
            wk->free = hq_realloc(wk->free, (size_t)c * sizeof *wk->free);
            wk->grp = hq_realloc(wk->grp, (size_t)c * sizeof *wk->grp);
            memset(wk->cap + old, 0, (size_t)(c - old) * sizeof *wk->cap);
            memset(wk->free + old, 0, (size_t)(c - old) * sizeof *wk->free);
            memset(wk->grp + old, 0, (size_t)(c - old) * sizeof *wk->grp);
            wk->grp_len = c;
        }
        p->names_cap = c;
    }
    p->names[p->n_names] = hq_strdup(name);
    return p->n_names++;
}

static int s_res_find(const hq_place_t *p, const char *name)
{
    for (uint32_t i = 0; i < p->n_names; i++)
        if (strcmp(p->names[i], name) == 0)
            return (int)i;
    return -1;
}

/* Capacity of a worker resource in amounts (indices x HQ_AMOUNT_ONE, or the sum). */
static hq_amount_t s_wres_amount(const hq_wres_t *r)
{
    const hq_amount_t max_idx = INT64_MAX / HQ_AMOUNT_ONE / 2;
    hq_amount_t n = 0;
    switch (r->kind) {
    case HQ_RES_LIST:
    case HQ_RES_GROUPS:
        for (uint32_t g = 0; g < r->n_groups && r->groups; g++)
            n += r->groups[g].n;
        return n * HQ_AMOUNT_ONE;
    case HQ_RES_RANGE:
        if (r->range_end < r->range_start)
            return 0;
        n = (r->range_end - r->range_start >= (uint64_t)max_idx)
                ? max_idx
                : (hq_amount_t)(r->range_end - r->range_start + 1);
        return n * HQ_AMOUNT_ONE;
    case HQ_RES_SUM:
        return r->sum_size > 0 ? r->sum_size : 0;
    }
    return 0;
}

static class_t *s_class_find(const hq_place_t *p, uint32_t rq_id)
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
static uint32_t s_worker_pos(const hq_place_t *p, uint32_t id, bool *found)
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

static worker_t *s_worker_find(const hq_place_t *p, uint32_t id)
{
    bool found;
    uint32_t i = s_worker_pos(p, id, &found);
    return found ? p->workers[i] : NULL;
}

static void s_worker_free(worker_t *w)
{
    if (!w)
        return;
    free(w->group);
    free(w->cap);
    free(w->free);
    free(w->pf);
    free(w->pf_keys);
    for (uint32_t i = 0; w->grp && i < w->grp_len; i++) {
        free(w->grp[i].cap);
        free(w->grp[i].free);
    }
    free(w->grp);
    for (uint32_t i = 0; i < w->n_holds; i++)
        free(w->holds[i].takes);
    free(w->holds);
    free(w);
}

static void s_queue_free(queue_t *q)
{
    if (!q)
        return;
    free(q->runs);
    free(q);
}

static void s_class_free(class_t *c)
{
    if (!c)
        return;
    for (uint32_t v = 0; v < c->n_variants; v++)
        free(c->variants[v].needs);
    free(c->variants);
    free(c);
}

/* ---- lifetime ---- */

hq_place_t *hq_place_new(void)
{
    hq_place_t *p = hq_calloc(1, sizeof *p);
    s_res_index(p, "cpus"); /* CPUS_RES */
    return p;
}

void hq_place_destroy(hq_place_t **pp)
{
    if (!pp || !*pp)
        return;
    hq_place_t *p = *pp;
    for (uint32_t i = 0; i < p->n_names; i++)
        free(p->names[i]);
    free(p->names);
    for (uint32_t i = 0; i < p->n_classes; i++)
        s_class_free(p->classes[i]);
    free(p->classes);
    for (uint32_t i = 0; i < p->n_queues; i++)
        s_queue_free(p->queues[i]);
    free(p->queues);
    for (uint32_t i = 0; i < p->n_workers; i++)
        s_worker_free(p->workers[i]);
    free(p->workers);
    free(p->heap);
    free(p->open);
    free(p->unclosed);
    free(p->shapes);
    for (uint32_t i = 0; i < p->n_mns; i++)
        free(p->mns[i].nodes);
    free(p->mns);
    free(p->slot_q);
    free(p);
    *pp = NULL;
}

/* ---- request classes ---- */

/* Classes with identical variants share one "blocked this round" memo, so many
 * classes of the same request cost one failed search per round, not one each. */
static uint64_t s_class_hash(const class_t *c)
{
    uint64_t h = 1469598103934665603ULL;
#define MIX(x) (h = (h ^ (uint64_t)(x)) * 1099511628211ULL)
    MIX(c->n_variants);
    for (uint32_t v = 0; v < c->n_variants; v++) {
        const variant_t *va = &c->variants[v];
        MIX(va->n_nodes);
        MIX(va->min_time_ns);
        MIX(va->n);
        for (uint32_t i = 0; i < va->n; i++) {
            MIX(va->needs[i].res);
            MIX(va->needs[i].all);
            MIX(va->needs[i].amount);
            MIX(va->needs[i].policy);
        }
    }
#undef MIX
    return h;
}

static bool s_class_same(const class_t *a, const class_t *b)
{
    if (a->hash != b->hash || a->n_variants != b->n_variants)
        return false;
    for (uint32_t v = 0; v < a->n_variants; v++) {
        const variant_t *x = &a->variants[v], *y = &b->variants[v];
        if (x->n_nodes != y->n_nodes || x->min_time_ns != y->min_time_ns || x->n != y->n)
            return false;
        for (uint32_t i = 0; i < x->n; i++)
            if (x->needs[i].res != y->needs[i].res || x->needs[i].all != y->needs[i].all ||
                x->needs[i].amount != y->needs[i].amount ||
                x->needs[i].policy != y->needs[i].policy)
                return false;
    }
    return true;
}

static void s_shape_insert(class_t **table, uint32_t cap, class_t *c)
{
    uint32_t i = (uint32_t)c->hash & (cap - 1);
    while (table[i])
        i = (i + 1) & (cap - 1);
    table[i] = c;
}

static void s_shape_intern(hq_place_t *p, class_t *c)
{
    c->hash = s_class_hash(c);
    if ((p->n_shapes + 1) * 2 > p->shapes_cap) {
        uint32_t cap = p->shapes_cap ? p->shapes_cap * 2 : 64;
        class_t **t = hq_calloc(cap, sizeof *t);
        for (uint32_t i = 0; i < p->shapes_cap; i++)
            if (p->shapes[i])
                s_shape_insert(t, cap, p->shapes[i]);
        free(p->shapes);
        p->shapes = t;
        p->shapes_cap = cap;
    }
    for (uint32_t i = (uint32_t)c->hash & (p->shapes_cap - 1); p->shapes[i];
         i = (i + 1) & (p->shapes_cap - 1)) {
        if (s_class_same(p->shapes[i], c)) {
            c->shape = p->shapes[i];
            return;
        }
    }
    c->shape = c;
    s_shape_insert(p->shapes, p->shapes_cap, c);
    p->n_shapes++;
}

int hq_place_rq_add(hq_place_t *p, const hq_sched_rq_t *rq)
{
    if (!rq || rq->n_variants == 0 || !rq->variants || s_class_find(p, rq->rq_id))
        return -1;
    class_t *c = hq_calloc(1, sizeof *c);
    c->rq_id = rq->rq_id;
    c->n_variants = rq->n_variants;
    c->variants = hq_calloc(rq->n_variants, sizeof *c->variants);
    for (uint32_t v = 0; v < rq->n_variants; v++) {
        const hq_rvariant_t *src = &rq->variants[v];
        variant_t *dst = &c->variants[v];
        dst->n_nodes = src->n_nodes;
        dst->min_time_ns = src->min_time_ns;
        uint32_t n_entries = src->entries ? src->n_entries : 0;
        dst->needs = hq_calloc(n_entries ? n_entries : 1, sizeof *dst->needs);
        for (uint32_t e = 0; e < n_entries; e++) {
            const hq_rreq_t *r = &src->entries[e];
            if (!r->name)
                continue;
            uint32_t res = s_res_index(p, r->name);
            hq_amount_t amount = r->amount > 0 ? r->amount : 0;
            /* the same resource named twice counts once, amounts added */
            uint32_t k = 0;
            while (k < dst->n && dst->needs[k].res != res)
                k++;
            if (k == dst->n) {
                dst->needs[k] = (need_t){
                    .res = res, .all = r->all, .policy = (uint8_t)r->policy, .amount = amount};
                dst->n++;
            } else {
                dst->needs[k].all = dst->needs[k].all || r->all;
                if (dst->needs[k].amount <= INT64_MAX - amount)
                    dst->needs[k].amount += amount;
            }
        }
    }
    s_shape_intern(p, c);
    s_grow((void **)&p->classes, &p->classes_cap, p->n_classes + 1, sizeof *p->classes);
    uint32_t pos = p->n_classes;
    while (pos > 0 && p->classes[pos - 1]->rq_id > c->rq_id)
        pos--;
    memmove(p->classes + pos + 1, p->classes + pos, (p->n_classes - pos) * sizeof *p->classes);
    p->classes[pos] = c;
    p->n_classes++;
    return 0;
}

/* ---- ready queues ---- */

/* <0 if queue key a goes before b */
static int s_qkey_cmp(int32_t pa, uint32_t ja, uint32_t ra, int32_t pb, uint32_t jb, uint32_t rb)
{
    if (pa != pb)
        return pa > pb ? -1 : 1;
    if (ja != jb)
        return ja < jb ? -1 : 1;
    if (ra != rb)
        return ra < rb ? -1 : 1;
    return 0;
}

static queue_t *s_queue_get(hq_place_t *p, int32_t prio, uint32_t job, uint32_t rq)
{
    uint32_t lo = 0, hi = p->n_queues;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const queue_t *m = p->queues[mid];
        if (s_qkey_cmp(m->prio, m->job, m->rq, prio, job, rq) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < p->n_queues) {
        queue_t *m = p->queues[lo];
        if (m->prio == prio && m->job == job && m->rq == rq)
            return m;
    }
    queue_t *q = hq_calloc(1, sizeof *q);
    q->prio = prio;
    q->job = job;
    q->rq = rq;
    s_grow((void **)&p->queues, &p->queues_cap, p->n_queues + 1, sizeof *p->queues);
    memmove(p->queues + lo + 1, p->queues + lo, (p->n_queues - lo) * sizeof *p->queues);
    p->queues[lo] = q;
    p->n_queues++;
    return q;
}

static void s_runs_compact(queue_t *q)
{
    if (q->head == 0)
        return;
    memmove(q->runs, q->runs + q->head, (q->n - q->head) * sizeof *q->runs);
    q->n -= q->head;
    q->head = 0;
}

/* Inserts a run keeping runs sorted by start; merges with a contiguous predecessor. */
static void s_queue_add_run(queue_t *q, run_t r)
{
    if (q->head > 0 && q->head * 2 >= q->n)
        s_runs_compact(q);
    uint32_t pos = q->n;
    while (pos > q->head && q->runs[pos - 1].start > r.start)
        pos--;
    if (pos > q->head) {
        run_t *prev = &q->runs[pos - 1];
        uint64_t next = (uint64_t)prev->start + (uint64_t)prev->count * prev->step;
        if (next == r.start && (r.step == prev->step || r.count == 1)) {
            prev->count += r.count;
            q->count += r.count;
            return;
        }
    }
    s_grow((void **)&q->runs, &q->cap, q->n + 1, sizeof *q->runs);
    memmove(q->runs + pos + 1, q->runs + pos, (q->n - pos) * sizeof *q->runs);
    q->runs[pos] = r;
    q->n++;
    q->count += r.count;
}

uint64_t hq_place_ready(hq_place_t *p, const hq_sched_ready_t *ready)
{
    if (!ready || ready->ids.n == 0 || !ready->ids.ranges)
        return 0;
    queue_t *q = s_queue_get(p, ready->priority, ready->job_id, ready->rq_id);
    uint64_t before = q->count;
    for (uint32_t i = 0; i < ready->ids.n; i++) {
        const hq_range_t *r = &ready->ids.ranges[i];
        if (r->end < r->start)
            continue;
        uint32_t step = r->step ? r->step : 1;
        uint64_t count = ((uint64_t)r->end - r->start) / step + 1;
        s_queue_add_run(q, (run_t){.start = r->start, .step = step, .count = count});
    }
    uint64_t added = q->count - before;
    p->n_ready += added;
    return added;
}

static void s_queue_remove_at(hq_place_t *p, uint32_t i)
{
    p->n_ready -= p->queues[i]->count;
    s_queue_free(p->queues[i]);
    memmove(p->queues + i, p->queues + i + 1, (p->n_queues - i - 1) * sizeof *p->queues);
    p->n_queues--;
}

uint64_t hq_place_cancel_job(hq_place_t *p, uint32_t job_id)
{
    uint64_t dropped = 0;
    for (uint32_t i = 0; i < p->n_queues;) {
        if (p->queues[i]->job == job_id) {
            dropped += p->queues[i]->count;
            s_queue_remove_at(p, i);
        } else {
            i++;
        }
    }
    return dropped;
}

/* Appends run r to an output vector. */
static void s_runs_push(run_t **v, uint32_t *n, uint32_t *cap, run_t r)
{
    if (r.count == 0)
        return;
    s_grow((void **)v, cap, *n + 1, sizeof **v);
    (*v)[(*n)++] = r;
}

/* Removes the ids of c from the queue's runs; returns the number removed. */
static uint64_t s_queue_subtract(queue_t *q, const hq_range_t *c)
{
    if (c->end < c->start)
        return 0;
    uint32_t cstep = c->step ? c->step : 1;
    run_t *out = NULL;
    uint32_t n_out = 0, cap_out = 0;
    uint64_t removed = 0;
    for (uint32_t i = q->head; i < q->n; i++) {
        run_t r = q->runs[i];
        uint64_t first = r.start;
        uint64_t last = first + (uint64_t)(r.count - 1) * r.step;
        if (last < c->start || first > c->end) {
            s_runs_push(&out, &n_out, &cap_out, r);
            continue;
        }
        /* indices of r inside [c->start, c->end] */
        uint64_t i0 = c->start > first ? (c->start - first + r.step - 1) / r.step : 0;
        uint64_t i1 = ((uint64_t)c->end >= last) ? r.count - 1 : (c->end - first) / r.step;
        if (i0 > i1) {
            s_runs_push(&out, &n_out, &cap_out, r);
            continue;
        }
        /* keep [0, i0), then walk i0..i1 keeping ids not on c's step, then (i1, count) */
        s_runs_push(&out, &n_out, &cap_out, (run_t){.start = r.start, .step = r.step, .count = i0});
        if (cstep == 1) {
            removed += i1 - i0 + 1;
        } else {
            uint64_t keep_from = i0;
            for (uint64_t k = i0; k <= i1; k++) {
                uint64_t id = first + k * r.step;
                if ((id - c->start) % cstep == 0) {
                    if (k > keep_from)
                        s_runs_push(&out, &n_out, &cap_out,
                                    (run_t){.start = (uint32_t)(first + keep_from * r.step),
                                            .step = r.step,
                                            .count = k - keep_from});
                    removed++;
                    keep_from = k + 1;
                }
            }
            if (i1 + 1 > keep_from)
                s_runs_push(&out, &n_out, &cap_out,
                            (run_t){.start = (uint32_t)(first + keep_from * r.step),
                                    .step = r.step,
                                    .count = i1 + 1 - keep_from});
        }
        if (i1 + 1 < r.count)
            s_runs_push(&out, &n_out, &cap_out,
                        (run_t){.start = (uint32_t)(first + (i1 + 1) * r.step),
                                .step = r.step,
                                .count = r.count - i1 - 1});
    }
    free(q->runs);
    q->runs = out;
    q->n = n_out;
    q->cap = cap_out;
    q->head = 0;
    q->count -= removed;
    return removed;
}

uint64_t hq_place_cancel_tasks(hq_place_t *p, const hq_sched_ready_t *ready)
{
    if (!ready || !ready->ids.ranges)
        return 0;
    uint64_t dropped = 0;
    for (uint32_t i = 0; i < p->n_queues;) {
        queue_t *q = p->queues[i];
        if (q->job == ready->job_id) {
            for (uint32_t k = 0; k < ready->ids.n && q->count > 0; k++) {
                uint64_t d = s_queue_subtract(q, &ready->ids.ranges[k]);
                dropped += d;
                p->n_ready -= d;
            }
            if (q->count == 0) {
                s_queue_remove_at(p, i);
                continue;
            }
        }
        i++;
    }
    return dropped;
}

static uint32_t s_queue_pop(queue_t *q)
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

/* ---- workers ---- */

void hq_place_worker_up(hq_place_t *p, const hq_sched_worker_t *src)
{
    if (!src)
        return;
    hq_place_worker_down(p, src->worker_id);
    worker_t *w = hq_calloc(1, sizeof *w);
    w->id = src->worker_id;
    w->credit = src->credit;
    w->prefetch = src->prefetch;
    w->lifetime_end = src->lifetime_end_ns;
    w->group = hq_strdup(src->group ? src->group : "");
    /* intern names first: interning may grow the per-worker arrays */
    for (uint32_t i = 0; i < src->resources.n && src->resources.res; i++)
        if (src->resources.res[i].name)
            s_res_index(p, src->resources.res[i].name);
    w->cap = hq_calloc(p->names_cap, sizeof *w->cap);
    w->free = hq_calloc(p->names_cap, sizeof *w->free);
    w->grp = hq_calloc(p->names_cap, sizeof *w->grp);
    w->grp_len = p->names_cap;
    w->min_util = src->min_utilization > 0 && src->min_utilization <= 1 ? src->min_utilization : 0;
    if (w->min_util > 0)
        p->any_min_util = true;
    for (uint32_t i = 0; i < src->resources.n && src->resources.res; i++) {
        const hq_wres_t *r = &src->resources.res[i];
        if (!r->name)
            continue;
        uint32_t k = s_res_index(p, r->name);
        hq_amount_t a = s_wres_amount(r);
        if (w->cap[k] <= INT64_MAX / 2 - a)
            w->cap[k] += a;
        w->free[k] = w->cap[k];
        if (r->kind == HQ_RES_GROUPS && r->n_groups > 1 && r->groups && w->grp[k].n == 0) {
            grp_t *g = &w->grp[k];
            g->n = r->n_groups;
            g->cap = hq_calloc(g->n, sizeof *g->cap);
            g->free = hq_calloc(g->n, sizeof *g->free);
            for (uint32_t j = 0; j < g->n; j++)
                g->cap[j] = g->free[j] = (hq_amount_t)r->groups[j].n * HQ_AMOUNT_ONE;
            w->grouped = true;
        }
    }
    bool found;
    uint32_t pos = s_worker_pos(p, w->id, &found);
    s_grow((void **)&p->workers, &p->workers_cap, p->n_workers + 1, sizeof *p->workers);
    p->heap = hq_realloc(p->heap, (size_t)p->workers_cap * sizeof *p->heap);
    p->open = hq_realloc(p->open, (size_t)p->workers_cap * sizeof *p->open);
    p->unclosed = hq_realloc(p->unclosed, (size_t)p->workers_cap * sizeof *p->unclosed);
    memmove(p->workers + pos + 1, p->workers + pos, (p->n_workers - pos) * sizeof *p->workers);
    p->workers[pos] = w;
    p->n_workers++;
}

static void s_mn_remove_at(hq_place_t *p, uint32_t i)
{
    free(p->mns[i].nodes);
    p->mns[i] = p->mns[--p->n_mns];
}

/* Frees the workers a multi-node task held (all but skip_id, which is going away). */
static void s_mn_free_nodes(hq_place_t *p, const mn_t *m, uint32_t skip_id)
{
    for (uint32_t k = 0; k < m->n; k++) {
        worker_t *w = m->nodes[k] == skip_id ? NULL : s_worker_find(p, m->nodes[k]);
        if (w) {
            w->in_mn = false;
            if (w->held > 0)
                w->held--;
        }
    }
}

void hq_place_worker_down(hq_place_t *p, uint32_t worker_id)
{
    bool found;
    uint32_t pos = s_worker_pos(p, worker_id, &found);
    if (!found)
        return;
    /* A lost root ends its multi-node task (the core requeues it): free the other
     * nodes. A lost secondary node just leaves the task's node set. */
    for (uint32_t i = 0; p->workers[pos]->in_mn && i < p->n_mns; i++) {
        mn_t *m = &p->mns[i];
        uint32_t k = 0;
        while (k < m->n && m->nodes[k] != worker_id)
            k++;
        if (k == m->n)
            continue;
        if (k == 0) {
            s_mn_free_nodes(p, m, worker_id);
            s_mn_remove_at(p, i);
        } else {
            memmove(m->nodes + k, m->nodes + k + 1, (m->n - k - 1) * sizeof *m->nodes);
            m->n--;
        }
        break;
    }
    s_worker_free(p->workers[pos]);
    memmove(p->workers + pos, p->workers + pos + 1, (p->n_workers - pos - 1) * sizeof *p->workers);
    p->n_workers--;
}

void hq_place_credit(hq_place_t *p, uint32_t worker_id, uint32_t credit)
{
    worker_t *w = s_worker_find(p, worker_id);
    if (w)
        w->credit = credit;
}

/* ---- fitting ---- */

static inline hq_amount_t s_need_amount(const worker_t *w, const need_t *n)
{
    return n->all ? w->cap[n->res] : n->amount;
}

static inline bool s_strict(uint8_t policy)
{
    return policy == HQ_POLICY_FORCE_COMPACT || policy == HQ_POLICY_FORCE_TIGHT;
}

/* The fewest groups that could ever hold amount a (largest groups first). */
static uint32_t s_min_groups(const grp_t *g, hq_amount_t a)
{
    hq_amount_t acc = 0;
    uint32_t k = 0;
    bool used[64] = {0};
    while (acc < a && k < g->n && k < 64) {
        uint32_t best = UINT32_MAX;
        for (uint32_t j = 0; j < g->n && j < 64; j++)
            if (!used[j] && (best == UINT32_MAX || g->cap[j] > g->cap[best]))
                best = j;
        used[best] = true;
        acc += g->cap[best];
        k++;
    }
    return k;
}

/* Splits a request of amount a on a per-group resource into per-group amounts (out,
 * g->n entries) the way the worker's allocator chooses groups: scatter takes one
 * unit per group in turn; compact/tight use one group when one can hold it (the
 * fullest that can: best fit), else the freest groups first. Returns false when the
 * free amounts cannot hold it, or a strict policy would need more groups than the
 * fewest the worker could ever use. */
static bool s_split(const grp_t *g, hq_amount_t a, bool all, uint8_t policy, hq_amount_t *out)
{
    hq_amount_t total = 0;
    for (uint32_t j = 0; j < g->n; j++) {
        out[j] = 0;
        total += g->free[j];
    }
    if (all) {
        for (uint32_t j = 0; j < g->n; j++) {
            if (g->free[j] != g->cap[j])
                return false;
            out[j] = g->cap[j];
        }
        return true;
    }
    if (total < a)
        return false;
    hq_amount_t left = a;
    if (policy == HQ_POLICY_SCATTER) {
        while (left > 0) {
            for (uint32_t j = 0; j < g->n && left > 0; j++) {
                hq_amount_t room = g->free[j] - out[j];
                hq_amount_t t = room < HQ_AMOUNT_ONE ? room : HQ_AMOUNT_ONE;
                if (t > left)
                    t = left;
                out[j] += t;
                left -= t;
            }
        }
        return true;
    }
    uint32_t best = UINT32_MAX;
    for (uint32_t j = 0; j < g->n; j++)
        if (g->free[j] >= a && (best == UINT32_MAX || g->free[j] < g->free[best]))
            best = j;
    if (best != UINT32_MAX) {
        out[best] = a;
        return true;
    }
    uint32_t used = 0;
    if (policy == HQ_POLICY_TIGHT || policy == HQ_POLICY_FORCE_TIGHT) {
        /* as many groups as the freest-first choice, each the least free one that
         * still lets the others cover the rest (mirrors the worker's allocator) */
        hq_amount_t acc = 0;
        uint32_t k = 0;
        bool seen[64] = {0};
        while (acc < a && k < g->n) {
            uint32_t big = UINT32_MAX;
            for (uint32_t j = 0; j < g->n; j++)
                if (!seen[j] && (big == UINT32_MAX || g->free[j] > g->free[big]))
                    big = j;
            seen[big] = true;
            acc += g->free[big];
            k++;
        }
        bool chosen[64] = {0};
        for (uint32_t r = k; r > 0 && left > 0; r--) {
            uint32_t pick = UINT32_MAX;
            for (uint32_t c = 0; c < g->n; c++) {
                if (chosen[c] || g->free[c] <= 0)
                    continue;
                /* the r-1 largest other free amounts */
                hq_amount_t others = 0;
                bool used_o[64] = {0};
                for (uint32_t t = 0; t + 1 < r; t++) {
                    uint32_t big = UINT32_MAX;
                    for (uint32_t j = 0; j < g->n; j++)
                        if (j != c && !chosen[j] && !used_o[j] &&
                            (big == UINT32_MAX || g->free[j] > g->free[big]))
                            big = j;
                    if (big == UINT32_MAX)
                        break;
                    used_o[big] = true;
                    others += g->free[big];
                }
                if (g->free[c] + others >= left &&
                    (pick == UINT32_MAX || g->free[c] < g->free[pick]))
                    pick = c;
            }
            if (pick == UINT32_MAX)
                return false;
            chosen[pick] = true;
            used++;
            out[pick] = 1; /* marks the choice; amounts follow */
            left -= g->free[pick] < left ? g->free[pick] : left;
        }
        /* fill the least free chosen groups completely, the rest from the freest */
        left = a;
        while (left > 0) {
            uint32_t small = UINT32_MAX;
            for (uint32_t j = 0; j < g->n; j++)
                if (chosen[j] && (small == UINT32_MAX || g->free[j] < g->free[small]))
                    small = j;
            if (small == UINT32_MAX)
                return false;
            chosen[small] = false;
            out[small] = g->free[small] < left ? g->free[small] : left;
            left -= out[small];
        }
        for (uint32_t j = 0; j < g->n; j++)
            if (chosen[j])
                out[j] = 0;
        return !s_strict(policy) || used <= s_min_groups(g, a);
    }
    while (left > 0) {
        uint32_t big = UINT32_MAX;
        for (uint32_t j = 0; j < g->n; j++)
            if (out[j] == 0 && g->free[j] > 0 && (big == UINT32_MAX || g->free[j] > g->free[big]))
                big = j;
        if (big == UINT32_MAX)
            return false; /* cannot happen: total >= a */
        out[big] = g->free[big] < left ? g->free[big] : left;
        left -= out[big];
        used++;
    }
    return !s_strict(policy) || used <= s_min_groups(g, a);
}

/* Strict policies on per-group resources: the free groups must hold the request in
 * the fewest groups possible. */
static bool s_fits_groups(const worker_t *w, const variant_t *v)
{
    hq_amount_t scratch[64];
    for (uint32_t i = 0; i < v->n; i++) {
        const need_t *n = &v->needs[i];
        const grp_t *g = &w->grp[n->res];
        if (g->n == 0 || g->n > 64 || n->all || !s_strict(n->policy))
            continue;
        if (!s_split(g, n->amount, false, n->policy, scratch))
            return false;
    }
    return true;
}

/* Amount check: against free capacity (with the group rule of strict policies), or
 * against total capacity. */
static bool s_fits_amounts(const worker_t *w, const variant_t *v, bool total)
{
    for (uint32_t i = 0; i < v->n; i++) {
        const need_t *n = &v->needs[i];
        hq_amount_t cap = w->cap[n->res];
        if (cap <= 0)
            return false;
        hq_amount_t have = total ? cap : w->free[n->res];
        if (have < s_need_amount(w, n))
            return false;
    }
    return total || !w->grouped || s_fits_groups(w, v);
}

static bool s_time_ok(const worker_t *w, const variant_t *v, uint64_t now)
{
    if (w->lifetime_end == 0 || v->min_time_ns == 0)
        return true;
    uint64_t left = w->lifetime_end > now ? w->lifetime_end - now : 0;
    return v->min_time_ns <= left;
}

static bool s_fits(const worker_t *w, const variant_t *v, bool total, uint64_t now)
{
    return v->n_nodes == 0 && s_time_ok(w, v, now) && s_fits_amounts(w, v, total);
}

/* Records the per-group amounts a task takes on a worker with grouped resources. */
static void s_take_groups(worker_t *w, const variant_t *v, uint32_t job, uint32_t task)
{
    hq_amount_t part[64];
    hold_t h = {.job = job, .task = task};
    for (uint32_t i = 0; i < v->n; i++) {
        const need_t *n = &v->needs[i];
        grp_t *g = &w->grp[n->res];
        if (g->n == 0 || g->n > 64)
            continue;
        if (!s_split(g, s_need_amount(w, n), n->all, n->policy, part) &&
            !s_split(g, s_need_amount(w, n), false, HQ_POLICY_COMPACT, part))
            continue; /* the group model drifted (fractions): track amounts only */
        for (uint32_t j = 0; j < g->n; j++) {
            if (part[j] == 0)
                continue;
            h.takes = hq_realloc(h.takes, (h.n + 1) * sizeof *h.takes);
            h.takes[h.n++] = (take_t){.res = n->res, .group = j, .amount = part[j]};
            g->free[j] -= part[j];
        }
    }
    if (h.n == 0)
        return;
    if (w->n_holds == w->holds_cap) {
        w->holds_cap = w->holds_cap ? w->holds_cap * 2 : 8;
        w->holds = hq_realloc(w->holds, (size_t)w->holds_cap * sizeof *w->holds);
    }
    w->holds[w->n_holds++] = h;
}

static void s_give_groups(worker_t *w, uint32_t job, uint32_t task)
{
    for (uint32_t i = 0; i < w->n_holds; i++) {
        hold_t *h = &w->holds[i];
        if (h->job != job || h->task != task)
            continue;
        for (uint32_t k = 0; k < h->n; k++) {
            grp_t *g = &w->grp[h->takes[k].res];
            uint32_t j = h->takes[k].group;
            g->free[j] += h->takes[k].amount;
            if (g->free[j] > g->cap[j])
                g->free[j] = g->cap[j];
        }
        free(h->takes);
        w->holds[i] = w->holds[--w->n_holds];
        return;
    }
}

static void s_take(worker_t *w, const variant_t *v, uint32_t job, uint32_t task)
{
    for (uint32_t i = 0; i < v->n; i++)
        w->free[v->needs[i].res] -= s_need_amount(w, &v->needs[i]);
    if (w->grouped)
        s_take_groups(w, v, job, task);
}

static void s_give(worker_t *w, const variant_t *v, uint32_t job, uint32_t task)
{
    for (uint32_t i = 0; i < v->n; i++) {
        uint32_t r = v->needs[i].res;
        hq_amount_t a = s_need_amount(w, &v->needs[i]);
        w->free[r] = (w->free[r] > w->cap[r] - a) ? w->cap[r] : w->free[r] + a;
    }
    if (w->grouped)
        s_give_groups(w, job, task);
}

/* ---- the prefetch FIFO: releases look tasks up in O(1), starts pop from the front ---- */

static inline uint64_t s_pf_key(uint32_t job, uint32_t task)
{
    return ((uint64_t)job << 32 | task) + 1; /* never 0 (0 marks an empty slot) */
}

static inline uint32_t s_pf_slot(uint64_t key, uint32_t mask)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (uint32_t)key & mask;
}

static void s_pf_keys_put(worker_t *w, uint64_t key);

/* Keeps the set at most half full. */
static void s_pf_keys_grow(worker_t *w)
{
    if (w->pf_keys_cap && (w->n_pf + 1) * 2 <= w->pf_keys_cap)
        return;
    uint64_t *old = w->pf_keys;
    uint32_t old_cap = w->pf_keys_cap;
    w->pf_keys_cap = old_cap ? old_cap * 2 : 64;
    w->pf_keys = hq_calloc(w->pf_keys_cap, sizeof *w->pf_keys);
    for (uint32_t i = 0; i < old_cap; i++)
        if (old[i])
            s_pf_keys_put(w, old[i]);
    free(old);
}

static void s_pf_keys_put(worker_t *w, uint64_t key)
{
    uint32_t mask = w->pf_keys_cap - 1, i = s_pf_slot(key, mask);
    while (w->pf_keys[i] && w->pf_keys[i] != key)
        i = (i + 1) & mask;
    w->pf_keys[i] = key;
}

static bool s_pf_keys_has(const worker_t *w, uint64_t key)
{
    if (!w->pf_keys_cap)
        return false;
    uint32_t mask = w->pf_keys_cap - 1, i = s_pf_slot(key, mask);
    while (w->pf_keys[i]) {
        if (w->pf_keys[i] == key)
            return true;
        i = (i + 1) & mask;
    }
    return false;
}

/* Linear probing with backward-shift deletion: no tombstones. */
static void s_pf_keys_del(worker_t *w, uint64_t key)
{
    if (!w->pf_keys_cap)
        return;
    uint32_t mask = w->pf_keys_cap - 1, i = s_pf_slot(key, mask);
    while (w->pf_keys[i] != key) {
        if (!w->pf_keys[i])
            return;
        i = (i + 1) & mask;
    }
    for (uint32_t j = (i + 1) & mask; w->pf_keys[j]; j = (j + 1) & mask) {
        uint32_t home = s_pf_slot(w->pf_keys[j], mask);
        /* move j into the hole at i unless its home lies cyclically in (i, j] */
        bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            w->pf_keys[i] = w->pf_keys[j];
            i = j;
        }
    }
    w->pf_keys[i] = 0;
}

static inline pf_t *s_pf_at(worker_t *w, uint32_t k)
{
    return &w->pf[w->pf_off + k];
}

static void s_pf_push(worker_t *w, pf_t t)
{
    if (w->pf_off + w->n_pf == w->pf_cap) {
        if (w->pf_off > 0 && w->pf_off >= w->n_pf) {
            memmove(w->pf, w->pf + w->pf_off, (size_t)w->n_pf * sizeof *w->pf);
            w->pf_off = 0;
        } else {
            w->pf_cap = w->pf_cap ? w->pf_cap * 2 : 4;
            w->pf = hq_realloc(w->pf, (size_t)w->pf_cap * sizeof *w->pf);
        }
    }
    s_pf_keys_grow(w);
    s_pf_keys_put(w, s_pf_key(t.job, t.task));
    w->pf[w->pf_off + w->n_pf++] = t;
}

/* Starts waiting prefetched tasks, in order, while the head fits free capacity. */
static void s_promote(worker_t *w)
{
    uint32_t k = 0;
    while (k < w->n_pf) {
        const pf_t *t = s_pf_at(w, k);
        const variant_t *v = &t->cls->variants[t->variant];
        if (!s_fits_amounts(w, v, false))
            break;
        s_take(w, v, t->job, t->task);
        s_pf_keys_del(w, s_pf_key(t->job, t->task));
        k++;
    }
    w->pf_off += k;
    w->n_pf -= k;
    if (w->n_pf == 0)
        w->pf_off = 0;
}

void hq_place_release(hq_place_t *p, const hq_sched_slot_t *slots, uint32_t n)
{
    for (uint32_t i = 0; i < n && slots; i++) {
        const hq_sched_slot_t *s = &slots[i];
        /* a multi-node task frees all its nodes */
        bool mn = false;
        for (uint32_t m = 0; m < p->n_mns; m++) {
            if (p->mns[m].job == s->job_id && p->mns[m].task == s->task_id) {
                s_mn_free_nodes(p, &p->mns[m], UINT32_MAX);
                s_mn_remove_at(p, m);
                mn = true;
                break;
            }
        }
        if (mn)
            continue;
        worker_t *w = s_worker_find(p, s->worker_id);
        if (!w || w->in_mn)
            continue;
        uint64_t key = s_pf_key(s->job_id, s->task_id);
        if (s_pf_keys_has(w, key)) {
            /* released before it started (canceled, lost): rare, so a scan is fine */
            uint32_t k = 0;
            while (k < w->n_pf &&
                   !(s_pf_at(w, k)->job == s->job_id && s_pf_at(w, k)->task == s->task_id))
                k++;
            if (k < w->n_pf) {
                memmove(s_pf_at(w, k), s_pf_at(w, k + 1), (w->n_pf - k - 1) * sizeof *w->pf);
                w->n_pf--;
            }
            s_pf_keys_del(w, key);
        } else {
            const class_t *c = s_class_find(p, s->rq_id);
            if (!c || s->variant >= c->n_variants || c->variants[s->variant].n_nodes > 0)
                continue;
            s_give(w, &c->variants[s->variant], s->job_id, s->task_id);
        }
        if (w->held > 0)
            w->held--;
        s_promote(w);
    }
}

/* ---- worker heap (best on top) ---- */

enum heap_mode { HEAP_FREE_CPUS, HEAP_PREFETCH };

static inline bool s_better(const worker_t *a, const worker_t *b, enum heap_mode m)
{
    if (m == HEAP_FREE_CPUS) {
        if (a->free[CPUS_RES] != b->free[CPUS_RES])
            return a->free[CPUS_RES] > b->free[CPUS_RES];
    } else if (a->n_pf != b->n_pf) {
        return a->n_pf < b->n_pf;
    }
    return a->id < b->id;
}

static void s_sift_down(worker_t **h, uint32_t n, uint32_t i, enum heap_mode m)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < n && s_better(h[l], h[best], m))
            best = l;
        if (r < n && s_better(h[r], h[best], m))
            best = r;
        if (best == i)
            return;
        worker_t *t = h[i];
        h[i] = h[best];
        h[best] = t;
        i = best;
    }
}

static void s_heapify(worker_t **h, uint32_t n, enum heap_mode m)
{
    for (uint32_t i = n / 2; i-- > 0;)
        s_sift_down(h, n, i, m);
}

static void s_heap_pop(worker_t **h, uint32_t *n, enum heap_mode m)
{
    h[0] = h[--*n];
    s_sift_down(h, *n, 0, m);
}

/* ---- the round ---- */

/* Output of a round: the slots, and (for the min-utilization undo) the queue each
 * slot came from. */
typedef struct s_out {
    hq_sched_slots_t *slots; /* caller's vector */
    uint32_t cap;            /* its allocated size */
    uint32_t start;          /* first slot of this round */
} out_t;

static void s_emit(hq_place_t *p, out_t *o, queue_t *q, uint32_t worker, uint32_t task,
                   uint32_t variant)
{
    hq_sched_slots_t *out = o->slots;
    if (out->n == o->cap) {
        uint32_t c = o->cap ? o->cap * 2 : 256;
        out->slots = hq_realloc(out->slots, (size_t)c * sizeof *out->slots);
        o->cap = c;
    }
    if (p->any_min_util) {
        uint32_t k = out->n - o->start;
        s_grow((void **)&p->slot_q, &p->slot_q_cap, k + 1, sizeof *p->slot_q);
        p->slot_q[k] = q;
    }
    out->slots[out->n++] = (hq_sched_slot_t){
        .worker_id = worker, .job_id = q->job, .task_id = task, .rq_id = q->rq, .variant = variant};
}

/* A worker can take a task this round: not reserved, not part of a multi-node task,
 * below credit. */
static inline bool s_open(const hq_place_t *p, const worker_t *w)
{
    return w->closed_round != p->round && !w->in_mn && w->held < w->credit;
}

static void s_took_one(hq_place_t *p, worker_t *w)
{
    w->held++;
    if (w->held == w->credit)
        p->n_open--;
}

/* Whole idle worker: nothing held, open, lifetime long enough. */
static bool s_idle_for(const hq_place_t *p, const worker_t *w, const variant_t *v)
{
    return s_open(p, w) && w->held == 0 && w->n_pf == 0 && s_time_ok(w, v, p->now);
}

static int s_cmp_group_id(const void *a, const void *b)
{
    const worker_t *x = *(worker_t *const *)a, *y = *(worker_t *const *)b;
    int c = strcmp(x->group, y->group);
    if (c != 0)
        return c;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Multi-node variant vi: each task takes n_nodes whole idle workers of one group (the
 * group whose lowest idle worker id is lowest; its lowest ids; root = lowest id). */
static void s_place_mn(hq_place_t *p, queue_t *q, class_t *c, uint32_t vi, out_t *o)
{
    const variant_t *v = &c->variants[vi];
    worker_t **h = p->heap;
    while (q->count > 0 && p->n_open >= v->n_nodes) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < p->n_workers; i++)
            if (s_idle_for(p, p->workers[i], v))
                h[n++] = p->workers[i];
        if (n < v->n_nodes)
            return;
        qsort(h, n, sizeof *h, s_cmp_group_id);
        uint32_t best = UINT32_MAX;
        for (uint32_t s = 0; s < n;) {
            uint32_t e = s;
            while (e < n && strcmp(h[e]->group, h[s]->group) == 0)
                e++;
            if (e - s >= v->n_nodes && (best == UINT32_MAX || h[s]->id < h[best]->id))
                best = s;
            s = e;
        }
        if (best == UINT32_MAX)
            return;
        uint32_t task = s_queue_pop(q);
        s_grow((void **)&p->mns, &p->mns_cap, p->n_mns + 1, sizeof *p->mns);
        mn_t *m = &p->mns[p->n_mns++];
        *m = (mn_t){.job = q->job, .task = task, .n = v->n_nodes};
        m->nodes = hq_malloc(v->n_nodes * sizeof *m->nodes);
        for (uint32_t k = 0; k < v->n_nodes; k++) {
            worker_t *w = h[best + k];
            m->nodes[k] = w->id;
            s_emit(p, o, q, w->id, task, vi);
            p->n_open--; /* it was open (idle) */
            w->held++;
            w->in_mn = true;
        }
    }
}

/* Places what it can of one queue; returns false if tasks remain. */
static bool s_place_queue(hq_place_t *p, queue_t *q, class_t *c, out_t *o)
{
    worker_t **h = p->heap;
    /* tasks on free capacity, variants in order */
    for (uint32_t vi = 0; vi < c->n_variants && q->count > 0; vi++) {
        const variant_t *v = &c->variants[vi];
        if (v->n_nodes > 0) {
            s_place_mn(p, q, c, vi, o);
            continue;
        }
        uint32_t n = 0;
        for (uint32_t i = 0; i < p->n_open_list;) {
            worker_t *w = p->open[i];
            if (!s_open(p, w)) {
                p->open[i] = p->open[--p->n_open_list];
                continue;
            }
            if (w->n_pf == 0 && s_fits(w, v, false, p->now))
                h[n++] = w;
            i++;
        }
        s_heapify(h, n, HEAP_FREE_CPUS);
        while (n > 0 && q->count > 0) {
            worker_t *w = h[0];
            uint32_t task = s_queue_pop(q);
            s_emit(p, o, q, w->id, task, vi);
            s_take(w, v, q->job, task);
            w->util_round = p->round;
            s_took_one(p, w);
            if (w->held < w->credit && s_fits_amounts(w, v, false))
                s_sift_down(h, n, 0, HEAP_FREE_CPUS);
            else
                s_heap_pop(h, &n, HEAP_FREE_CPUS);
        }
    }
    if (q->count == 0)
        return true;
    /* prefetch: waiting at workers whose total capacity fits (not on workers with a
     * minimal utilization: a round may take their tasks back) */
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->n_open_list; i++) {
        worker_t *w = p->open[i];
        if (!s_open(p, w) || w->n_pf >= w->prefetch || w->min_util > 0)
            continue;
        for (uint32_t vi = 0; vi < c->n_variants; vi++) {
            if (s_fits(w, &c->variants[vi], true, p->now)) {
                w->pf_variant = vi;
                h[n++] = w;
                break;
            }
        }
    }
    s_heapify(h, n, HEAP_PREFETCH);
    while (n > 0 && q->count > 0) {
        worker_t *w = h[0];
        uint32_t task = s_queue_pop(q);
        s_emit(p, o, q, w->id, task, w->pf_variant);
        s_pf_push(w, (pf_t){.job = q->job, .task = task, .cls = c, .variant = w->pf_variant});
        s_took_one(p, w);
        if (w->held < w->credit && w->n_pf < w->prefetch)
            s_sift_down(h, n, 0, HEAP_PREFETCH);
        else
            s_heap_pop(h, &n, HEAP_PREFETCH);
    }
    return q->count == 0;
}

static void s_close(hq_place_t *p, worker_t *w)
{
    if (s_open(p, w))
        p->n_open--;
    w->closed_round = p->round;
}

/* Reserves one worker for a blocked class (rule in place.h). */
static bool s_reserve(hq_place_t *p, const class_t *c)
{
    worker_t *best = NULL;
    for (uint32_t i = 0; i < p->n_unclosed;) {
        worker_t *w = p->unclosed[i];
        if (w->closed_round == p->round || w->credit == 0 || w->in_mn) {
            p->unclosed[i] = p->unclosed[--p->n_unclosed];
            continue;
        }
        i++;
        if (best && !s_better(w, best, HEAP_FREE_CPUS))
            continue;
        for (uint32_t vi = 0; vi < c->n_variants; vi++) {
            if (s_fits(w, &c->variants[vi], true, p->now)) {
                best = w;
                break;
            }
        }
    }
    if (!best)
        return false;
    s_close(p, best);
    return true;
}

static uint32_t s_busy(const worker_t *w)
{
    return w->held + w->n_pf;
}

static int s_cmp_busy_id(const void *a, const void *b)
{
    const worker_t *x = *(worker_t *const *)a, *y = *(worker_t *const *)b;
    if (s_busy(x) != s_busy(y))
        return s_busy(x) < s_busy(y) ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Reserves n_nodes workers of one group for a blocked multi-node variant: the group
 * with the most idle workers (ties: lowest worker id), its least busy workers. */
static bool s_reserve_mn(hq_place_t *p, const variant_t *v)
{
    worker_t **h = p->heap;
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->n_workers; i++) {
        worker_t *w = p->workers[i];
        if (w->closed_round != p->round && w->credit > 0 && !w->in_mn && s_time_ok(w, v, p->now))
            h[n++] = w;
    }
    qsort(h, n, sizeof *h, s_cmp_group_id);
    uint32_t best = UINT32_MAX, best_len = 0, best_idle = 0;
    for (uint32_t s = 0; s < n;) {
        uint32_t e = s, idle = 0;
        while (e < n && strcmp(h[e]->group, h[s]->group) == 0) {
            idle += s_busy(h[e]) == 0;
            e++;
        }
        if (e - s >= v->n_nodes && (best == UINT32_MAX || idle > best_idle)) {
            best = s;
            best_len = e - s;
            best_idle = idle;
        }
        s = e;
    }
    if (best == UINT32_MAX)
        return false;
    qsort(h + best, best_len, sizeof *h, s_cmp_busy_id);
    for (uint32_t k = 0; k < v->n_nodes; k++)
        s_close(p, h[best + k]);
    return true;
}

/* Min utilization: a worker that got tasks on free capacity this round but would
 * still use less than its minimal share of cpus gets none of them. */
static void s_min_util_undo(hq_place_t *p, out_t *o)
{
    hq_sched_slots_t *out = o->slots;
    bool any = false;
    for (uint32_t i = 0; i < p->n_workers; i++) {
        worker_t *w = p->workers[i];
        if (w->min_util <= 0 || w->util_round != p->round || w->in_mn)
            continue;
        hq_amount_t cap = w->cap[CPUS_RES];
        double used = cap > 0 ? (double)(cap - w->free[CPUS_RES]) / (double)cap : 0;
        if (used + 1e-9 < w->min_util) {
            w->util_round = 0; /* marks the undo */
            any = true;
        }
    }
    if (!any)
        return;
    uint32_t k = o->start;
    for (uint32_t i = o->start; i < out->n; i++) {
        hq_sched_slot_t s = out->slots[i];
        worker_t *w = s_worker_find(p, s.worker_id);
        if (!w || w->min_util <= 0 || w->util_round != 0 || w->in_mn) {
            out->slots[k++] = s;
            continue;
        }
        queue_t *q = p->slot_q[i - o->start];
        s_give(w, &q->cls->variants[s.variant], s.job_id, s.task_id);
        if (w->held > 0)
            w->held--;
        s_queue_add_run(q, (run_t){.start = s.task_id, .step = 1, .count = 1});
        p->n_ready++;
    }
    out->n = k;
}

uint32_t hq_place_run(hq_place_t *p, uint64_t now_ns, hq_sched_slots_t *slots)
{
    out_t o = {.slots = slots, .cap = slots->n, .start = slots->n};
    p->round++;
    p->now = now_ns;
    p->n_open = 0;
    p->n_open_list = 0;
    for (uint32_t i = 0; i < p->n_workers; i++) {
        worker_t *w = p->workers[i];
        p->unclosed[i] = w;
        if (s_open(p, w)) {
            p->n_open++;
            p->open[p->n_open_list++] = w;
        }
    }
    p->n_unclosed = p->n_workers;
    for (uint32_t i = 0; i < p->n_queues && p->n_open > 0; i++) {
        queue_t *q = p->queues[i];
        if (q->count == 0)
            continue;
        if (!q->cls)
            q->cls = s_class_find(p, q->rq);
        class_t *c = q->cls;
        if (!c || c->shape->blocked_round == p->round)
            continue;
        uint64_t before = q->count;
        bool done = s_place_queue(p, q, c, &o);
        p->n_ready -= before - q->count;
        if (!done) {
            c->shape->blocked_round = p->round;
            if (!s_reserve(p, c))
                for (uint32_t vi = 0; vi < c->n_variants; vi++)
                    if (c->variants[vi].n_nodes > 0 && s_reserve_mn(p, &c->variants[vi]))
                        break;
        }
    }
    if (p->any_min_util)
        s_min_util_undo(p, &o);
    /* drop emptied queues, keeping order */
    uint32_t k = 0;
    for (uint32_t i = 0; i < p->n_queues; i++) {
        queue_t *q = p->queues[i];
        if (q->count == 0) {
            s_queue_free(q);
        } else {
            if (q->head > 0 && q->head * 2 >= q->n)
                s_runs_compact(q);
            p->queues[k++] = q;
        }
    }
    p->n_queues = k;
    return slots->n - o.start;
}

/* ---- introspection ---- */

uint64_t hq_place_ready_count(const hq_place_t *p)
{
    return p->n_ready;
}

int hq_place_worker_info(const hq_place_t *p, uint32_t worker_id, hq_place_winfo_t *out)
{
    const worker_t *w = s_worker_find(p, worker_id);
    if (!w)
        return -1;
    out->held = w->held;
    out->prefetched = w->n_pf;
    out->credit = w->credit;
    return 0;
}

hq_amount_t hq_place_worker_free(const hq_place_t *p, uint32_t worker_id, const char *res)
{
    const worker_t *w = s_worker_find(p, worker_id);
    int k = s_res_find(p, res);
    if (!w || k < 0 || w->cap[k] <= 0)
        return -1;
    return w->free[k];
}
