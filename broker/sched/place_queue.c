/* Ready queues: one queue per (priority, job, request class), kept sorted in the
 * order a round visits them; a queue holds its task ids as runs (start, step,
 * count), so a million-task array is one run. Adding, cancelling (whole jobs or
 * id ranges with steps) and popping the next id. */
#include "place_priv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

/* <0 if queue a goes before b: priority (higher first), job (lower first), class
 * size (bigger first: smaller requests then fill the gaps), class id. */
static int s_qkey_cmp(const queue_t *a, const queue_t *b)
{
    if (a->prio != b->prio)
        return a->prio > b->prio ? -1 : 1;
    if (a->job != b->job)
        return a->job < b->job ? -1 : 1;
    if (a->size != b->size)
        return a->size > b->size ? -1 : 1;
    if (a->rq != b->rq)
        return a->rq < b->rq ? -1 : 1;
    return 0;
}

static int s_qsort_cmp(const void *a, const void *b)
{
    return s_qkey_cmp(*(queue_t *const *)a, *(queue_t *const *)b);
}

void hq_pl_queues_rekey(hq_place_t *p, const class_t *c)
{
    bool any = false;
    for (uint32_t i = 0; i < p->n_queues; i++)
        if (p->queues[i]->rq == c->rq_id && p->queues[i]->size != c->size) {
            p->queues[i]->size = c->size;
            any = true;
        }
    if (any)
        qsort(p->queues, p->n_queues, sizeof *p->queues, s_qsort_cmp);
}

static queue_t *s_queue_get(hq_place_t *p, int32_t prio, uint32_t job, uint32_t rq)
{
    const class_t *c = hq_pl_class_find(p, rq);
    queue_t key = {.prio = prio, .job = job, .rq = rq, .size = c ? c->size : 0};
    uint32_t lo = 0, hi = p->n_queues;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s_qkey_cmp(p->queues[mid], &key) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < p->n_queues && s_qkey_cmp(p->queues[lo], &key) == 0)
        return p->queues[lo];
    queue_t *q = hq_calloc(1, sizeof *q);
    *q = key;
    hq_pl_grow((void **)&p->queues, &p->queues_cap, p->n_queues + 1, sizeof *p->queues);
    memmove(p->queues + lo + 1, p->queues + lo, (p->n_queues - lo) * sizeof *p->queues);
    p->queues[lo] = q;
    p->n_queues++;
    return q;
}

void hq_pl_runs_compact(queue_t *q)
{
    if (q->head == 0)
        return;
    memmove(q->runs, q->runs + q->head, (q->n - q->head) * sizeof *q->runs);
    q->n -= q->head;
    q->head = 0;
}

/* Inserts a run keeping runs sorted by start; merges with a contiguous predecessor. */
void hq_pl_queue_add_run(queue_t *q, run_t r)
{
    if (q->head > 0 && q->head * 2 >= q->n)
        hq_pl_runs_compact(q);
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
    hq_pl_grow((void **)&q->runs, &q->cap, q->n + 1, sizeof *q->runs);
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
        hq_pl_queue_add_run(q, (run_t){.start = r->start, .step = step, .count = count});
    }
    uint64_t added = q->count - before;
    p->n_ready += added;
    return added;
}

static void s_queue_remove_at(hq_place_t *p, uint32_t i)
{
    p->n_ready -= p->queues[i]->count;
    hq_pl_queue_free(p->queues[i]);
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
    hq_pl_grow((void **)v, cap, *n + 1, sizeof **v);
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
