/* The placement round (hq_place_run, rules in place.h): queues are visited in order,
 * each placing what fits on free capacity (workers kept in a heap by free cpus),
 * then prefetch; a queue that stays blocked reserves a worker (or, multi-node, a
 * group's workers) for the rest of the round; finally the min-utilization undo.
 * A round costs O(queues + classes x workers) plus O(log workers) per placed task. */
#include "place_priv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

/* ---- worker heap (best on top) ---- */

/* HEAP_PACK: fewest free cpus first (tasks go where cpus are already in use, so
 * idle workers stay idle and can end); HEAP_FREE_CPUS: most free cpus first (the
 * worker a reservation drains soonest); HEAP_PREFETCH: fewest waiting tasks. */
enum heap_mode { HEAP_PACK, HEAP_FREE_CPUS, HEAP_PREFETCH };

/* Blocked classes of one job whose reservations wait for the job's other classes. */
#define RESERVE_PENDING_MAX 64

static inline bool s_better(const worker_t *a, const worker_t *b, enum heap_mode m)
{
    if (m == HEAP_PACK) {
        if (a->free[CPUS_RES] != b->free[CPUS_RES])
            return a->free[CPUS_RES] < b->free[CPUS_RES];
    } else if (m == HEAP_FREE_CPUS) {
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
        hq_pl_grow((void **)&p->slot_q, &p->slot_q_cap, k + 1, sizeof *p->slot_q);
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
    return s_open(p, w) && w->held == 0 && w->n_pf == 0 && hq_pl_time_ok(w, v, p->now);
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
        uint32_t task = hq_pl_queue_pop(q);
        hq_pl_grow((void **)&p->mns, &p->mns_cap, p->n_mns + 1, sizeof *p->mns);
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
            if (w->n_pf == 0 && w->min_util <= 0 && hq_pl_fits(w, v, false, p->now))
                h[n++] = w;
            i++;
        }
        s_heapify(h, n, p->spread ? HEAP_FREE_CPUS : HEAP_PACK);
        while (n > 0 && q->count > 0) {
            worker_t *w = h[0];
            uint32_t task = hq_pl_queue_pop(q);
            s_emit(p, o, q, w->id, task, vi);
            hq_pl_take(w, v, q->job, task);
            w->util_round = p->round;
            s_took_one(p, w);
            if (w->held < w->credit && hq_pl_fits_amounts(w, v, false))
                s_sift_down(h, n, 0, p->spread ? HEAP_FREE_CPUS : HEAP_PACK);
            else
                s_heap_pop(h, &n, p->spread ? HEAP_FREE_CPUS : HEAP_PACK);
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
            if (hq_pl_fits(w, &c->variants[vi], true, p->now)) {
                w->pf_variant = vi;
                h[n++] = w;
                break;
            }
        }
    }
    s_heapify(h, n, HEAP_PREFETCH);
    while (n > 0 && q->count > 0) {
        worker_t *w = h[0];
        uint32_t task = hq_pl_queue_pop(q);
        s_emit(p, o, q, w->id, task, w->pf_variant);
        hq_pl_pf_push(w, (pf_t){.job = q->job, .task = task, .cls = c, .variant = w->pf_variant});
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
    w->resv_job = p->resv_job;
}

/* Reserves one worker for a blocked class (rule in place.h). */
static bool s_reserve(hq_place_t *p, const class_t *c)
{
    worker_t *best = NULL;
    for (uint32_t i = 0; i < p->n_unclosed;) {
        worker_t *w = p->unclosed[i];
        if (w->closed_round == p->round || w->credit == 0 || w->in_mn || w->min_util > 0) {
            p->unclosed[i] = p->unclosed[--p->n_unclosed];
            continue;
        }
        i++;
        if (best && !s_better(w, best, HEAP_FREE_CPUS))
            continue;
        for (uint32_t vi = 0; vi < c->n_variants; vi++) {
            if (hq_pl_fits(w, &c->variants[vi], true, p->now)) {
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
        if (w->closed_round != p->round && w->credit > 0 && !w->in_mn &&
            hq_pl_time_ok(w, v, p->now))
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

/* The reservations of the blocked classes of one job (rule in place.h). */
static void s_reserve_all(hq_place_t *p, const queue_t *const *qs, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++) {
        const class_t *c = qs[k]->cls;
        p->resv_job = qs[k]->job;
        if (!s_reserve(p, c))
            for (uint32_t vi = 0; vi < c->n_variants; vi++)
                if (c->variants[vi].n_nodes > 0 && s_reserve_mn(p, &c->variants[vi]))
                    break;
    }
}

/* Min utilization: each open worker with a minimum gets the mix place_mix.c chooses
 * (after every queue had its turn on the other workers). */
static void s_min_util_mix(hq_place_t *p, out_t *o)
{
    hq_pl_mix_t items[HQ_PL_MIX_MAX];
    for (uint32_t i = 0; i < p->n_workers; i++) {
        worker_t *w = p->workers[i];
        if (w->min_util <= 0 || !s_open(p, w) || w->n_pf > 0)
            continue;
        uint32_t n = hq_pl_mix_choose(p, w, items);
        for (uint32_t k = 0; k < n; k++) {
            queue_t *q = items[k].q;
            for (uint32_t t = 0; t < items[k].take && q->count > 0 && s_open(p, w); t++) {
                if (!hq_pl_fits(w, items[k].v, false, p->now))
                    break; /* groups: the undo below takes the mix back if short */
                uint32_t task = hq_pl_queue_pop(q);
                p->n_ready--;
                s_emit(p, o, q, w->id, task, items[k].vi);
                hq_pl_take(w, items[k].v, q->job, task);
                w->util_round = p->round;
                s_took_one(p, w);
            }
        }
    }
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
        worker_t *w = hq_pl_worker_find(p, s.worker_id);
        if (!w || w->min_util <= 0 || w->util_round != 0 || w->in_mn) {
            out->slots[k++] = s;
            continue;
        }
        queue_t *q = p->slot_q[i - o->start];
        hq_pl_give(w, &q->cls->variants[s.variant], s.job_id, s.task_id);
        if (w->held > 0)
            w->held--;
        hq_pl_queue_add_run(q, (run_t){.start = s.task_id, .step = 1, .count = 1});
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
    /* Blocked classes reserve once the job's other (smaller) classes had their turn:
     * they fill the gaps; the reservation holds against later jobs only. */
    const queue_t *pending[RESERVE_PENDING_MAX];
    uint32_t n_pending = 0;
    const queue_t *pend_q = NULL;
    for (uint32_t i = 0; i < p->n_queues && p->n_open > 0; i++) {
        queue_t *q = p->queues[i];
        if (q->count == 0)
            continue;
        if (n_pending > 0 && (q->job != pend_q->job || q->prio != pend_q->prio)) {
            s_reserve_all(p, pending, n_pending);
            n_pending = 0;
        }
        if (!q->cls)
            q->cls = hq_pl_class_find(p, q->rq);
        class_t *c = q->cls;
        if (!c || c->shape->blocked_round == p->round)
            continue;
        uint64_t before = q->count;
        bool done = s_place_queue(p, q, c, &o);
        p->n_ready -= before - q->count;
        if (!done) {
            c->shape->blocked_round = p->round;
            if (n_pending == RESERVE_PENDING_MAX) {
                s_reserve_all(p, pending, n_pending);
                n_pending = 0;
            }
            pending[n_pending++] = q;
            pend_q = q;
        }
    }
    if (n_pending > 0)
        s_reserve_all(p, pending, n_pending);
    if (p->any_min_util) {
        s_min_util_mix(p, &o);
        s_min_util_undo(p, &o);
    }
    /* drop emptied queues, keeping order */
    uint32_t k = 0;
    for (uint32_t i = 0; i < p->n_queues; i++) {
        queue_t *q = p->queues[i];
        if (q->count == 0) {
            hq_pl_queue_free(q);
        } else {
            if (q->head > 0 && q->head * 2 >= q->n)
                hq_pl_runs_compact(q);
            p->queues[k++] = q;
        }
    }
    p->n_queues = k;
    return slots->n - o.start;
}
