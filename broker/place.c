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

typedef struct s_worker {
    uint32_t id;           /* worker id */
    uint32_t credit;       /* max held tasks */
    uint32_t prefetch;     /* max waiting tasks */
    uint32_t held;         /* assigned, not released (running + waiting) */
    uint64_t lifetime_end; /* 0 = unlimited */
    char *group;           /* owned */
    hq_amount_t *cap;      /* per resource index, [names_cap] */
    hq_amount_t *free;     /* per resource index, [names_cap] */
    pf_t *pf;              /* waiting prefetched tasks, FIFO */
    uint32_t n_pf;         /* waiting count */
    uint32_t pf_cap;       /* allocated */
    uint64_t closed_round; /* reserved in this round */
    uint32_t pf_variant;   /* scratch: variant chosen for prefetch this queue */
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
            memset(wk->cap + old, 0, (size_t)(c - old) * sizeof *wk->cap);
            memset(wk->free + old, 0, (size_t)(c - old) * sizeof *wk->free);
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
                x->needs[i].amount != y->needs[i].amount)
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
                dst->needs[k] = (need_t){.res = res, .all = r->all, .amount = amount};
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
    for (uint32_t i = 0; i < src->resources.n && src->resources.res; i++) {
        const hq_wres_t *r = &src->resources.res[i];
        if (!r->name)
            continue;
        uint32_t k = s_res_index(p, r->name);
        hq_amount_t a = s_wres_amount(r);
        if (w->cap[k] <= INT64_MAX / 2 - a)
            w->cap[k] += a;
        w->free[k] = w->cap[k];
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

void hq_place_worker_down(hq_place_t *p, uint32_t worker_id)
{
    bool found;
    uint32_t pos = s_worker_pos(p, worker_id, &found);
    if (!found)
        return;
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

/* Amount check only: against free capacity, or against total capacity. */
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
    return true;
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

static void s_take(worker_t *w, const variant_t *v)
{
    for (uint32_t i = 0; i < v->n; i++)
        w->free[v->needs[i].res] -= s_need_amount(w, &v->needs[i]);
}

static void s_give(worker_t *w, const variant_t *v)
{
    for (uint32_t i = 0; i < v->n; i++) {
        uint32_t r = v->needs[i].res;
        hq_amount_t a = s_need_amount(w, &v->needs[i]);
        w->free[r] = (w->free[r] > w->cap[r] - a) ? w->cap[r] : w->free[r] + a;
    }
}

/* Starts waiting prefetched tasks, in order, while the head fits free capacity. */
static void s_promote(worker_t *w)
{
    uint32_t k = 0;
    while (k < w->n_pf) {
        const pf_t *t = &w->pf[k];
        const variant_t *v = &t->cls->variants[t->variant];
        if (!s_fits_amounts(w, v, false))
            break;
        s_take(w, v);
        k++;
    }
    if (k > 0) {
        memmove(w->pf, w->pf + k, (w->n_pf - k) * sizeof *w->pf);
        w->n_pf -= k;
    }
}

void hq_place_release(hq_place_t *p, const hq_sched_slot_t *slots, uint32_t n)
{
    for (uint32_t i = 0; i < n && slots; i++) {
        const hq_sched_slot_t *s = &slots[i];
        worker_t *w = s_worker_find(p, s->worker_id);
        if (!w)
            continue;
        uint32_t k = 0;
        while (k < w->n_pf && !(w->pf[k].job == s->job_id && w->pf[k].task == s->task_id))
            k++;
        if (k < w->n_pf) {
            memmove(w->pf + k, w->pf + k + 1, (w->n_pf - k - 1) * sizeof *w->pf);
            w->n_pf--;
        } else {
            const class_t *c = s_class_find(p, s->rq_id);
            if (!c || s->variant >= c->n_variants)
                continue;
            s_give(w, &c->variants[s->variant]);
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

static void s_emit(hq_sched_slots_t *out, uint32_t *out_cap, uint32_t worker, uint32_t job,
                   uint32_t task, uint32_t rq, uint32_t variant)
{
    if (out->n == *out_cap) {
        uint32_t c = *out_cap ? *out_cap * 2 : 256;
        out->slots = hq_realloc(out->slots, (size_t)c * sizeof *out->slots);
        *out_cap = c;
    }
    out->slots[out->n++] = (hq_sched_slot_t){
        .worker_id = worker, .job_id = job, .task_id = task, .rq_id = rq, .variant = variant};
}

/* A worker can take a task this round: not reserved, below credit. */
static inline bool s_open(const hq_place_t *p, const worker_t *w)
{
    return w->closed_round != p->round && w->held < w->credit;
}

static void s_took_one(hq_place_t *p, worker_t *w)
{
    w->held++;
    if (w->held == w->credit)
        p->n_open--;
}

/* Places what it can of one queue; returns false if tasks remain. */
static bool s_place_queue(hq_place_t *p, queue_t *q, class_t *c, hq_sched_slots_t *out,
                          uint32_t *out_cap)
{
    worker_t **h = p->heap;
    /* tasks on free capacity, variants in order */
    for (uint32_t vi = 0; vi < c->n_variants && q->count > 0; vi++) {
        const variant_t *v = &c->variants[vi];
        if (v->n_nodes > 0)
            continue;
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
            s_emit(out, out_cap, w->id, q->job, s_queue_pop(q), q->rq, vi);
            s_take(w, v);
            s_took_one(p, w);
            if (w->held < w->credit && s_fits_amounts(w, v, false))
                s_sift_down(h, n, 0, HEAP_FREE_CPUS);
            else
                s_heap_pop(h, &n, HEAP_FREE_CPUS);
        }
    }
    if (q->count == 0)
        return true;
    /* prefetch: waiting at workers whose total capacity fits */
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->n_open_list; i++) {
        worker_t *w = p->open[i];
        if (!s_open(p, w) || w->n_pf >= w->prefetch)
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
        s_emit(out, out_cap, w->id, q->job, task, q->rq, w->pf_variant);
        if (w->n_pf == w->pf_cap) {
            w->pf_cap = w->pf_cap ? w->pf_cap * 2 : 4;
            w->pf = hq_realloc(w->pf, (size_t)w->pf_cap * sizeof *w->pf);
        }
        w->pf[w->n_pf++] = (pf_t){.job = q->job, .task = task, .cls = c, .variant = w->pf_variant};
        s_took_one(p, w);
        if (w->held < w->credit && w->n_pf < w->prefetch)
            s_sift_down(h, n, 0, HEAP_PREFETCH);
        else
            s_heap_pop(h, &n, HEAP_PREFETCH);
    }
    return q->count == 0;
}

/* Reserves one worker for a blocked class (rule in place.h). */
static void s_reserve(hq_place_t *p, const class_t *c)
{
    worker_t *best = NULL;
    for (uint32_t i = 0; i < p->n_unclosed;) {
        worker_t *w = p->unclosed[i];
        if (w->closed_round == p->round || w->credit == 0) {
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
        return;
    if (s_open(p, best))
        p->n_open--;
    best->closed_round = p->round;
}

uint32_t hq_place_run(hq_place_t *p, uint64_t now_ns, hq_sched_slots_t *out)
{
    uint32_t start = out->n;
    uint32_t out_cap = out->n; /* unknown capacity: grow from the current size */
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
        bool done = s_place_queue(p, q, c, out, &out_cap);
        p->n_ready -= before - q->count;
        if (!done) {
            c->shape->blocked_round = p->round;
            s_reserve(p, c);
        }
    }
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
    return out->n - start;
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
