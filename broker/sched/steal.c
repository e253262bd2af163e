/* Work stealing (rules in steal.h): the set of jobs measured short (a sorted array of
 * job ids: ids grow, so marking is an append), the time-limit check of prefetched
 * tasks and the balancing pass that gives idle workers the newest prefetched tasks of
 * the worker that holds the most. */
#include "steal.h"

#include <stdlib.h>
#include <string.h>

#include "hq_util.h"
#include "place_priv.h"

/* ---- the prefetch gate ---- */

void hq_steal_gate(hq_place_t *p, bool on)
{
    p->pf_gate = on;
}

/* Position of job in the sorted set, or its insertion point (found = false). */
static uint32_t s_job_pos(const hq_place_t *p, uint32_t job, bool *found)
{
    uint32_t lo = 0, hi = p->n_pf_jobs;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (p->pf_jobs[mid] < job)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < p->n_pf_jobs && p->pf_jobs[lo] == job;
    return lo;
}

void hq_steal_job_short(hq_place_t *p, uint32_t job_id, bool is_short)
{
    bool found;
    uint32_t pos = s_job_pos(p, job_id, &found);
    if (is_short == found)
        return;
    if (is_short) {
        hq_pl_grow((void **)&p->pf_jobs, &p->pf_jobs_cap, p->n_pf_jobs + 1, sizeof *p->pf_jobs);
        memmove(p->pf_jobs + pos + 1, p->pf_jobs + pos, (p->n_pf_jobs - pos) * sizeof *p->pf_jobs);
        p->pf_jobs[pos] = job_id;
        p->n_pf_jobs++;
    } else {
        memmove(p->pf_jobs + pos, p->pf_jobs + pos + 1,
                (p->n_pf_jobs - pos - 1) * sizeof *p->pf_jobs);
        p->n_pf_jobs--;
    }
}

bool hq_steal_may_prefetch(const hq_place_t *p, uint32_t job_id)
{
    if (!p->pf_gate)
        return true;
    bool found;
    s_job_pos(p, job_id, &found);
    return found;
}

/* ---- retractions ---- */

static inline pf_t *s_pf_at(const worker_t *w, uint32_t k)
{
    return &w->pf[w->pf_off + k];
}

static inline const variant_t *s_pf_variant(const pf_t *e)
{
    return &e->cls->variants[e->variant];
}

static void s_emit(hq_sched_slots_t *out, const worker_t *w, pf_t *e)
{
    e->retracting = true;
    out->slots = hq_realloc(out->slots, ((size_t)out->n + 1) * sizeof *out->slots);
    out->slots[out->n++] = (hq_sched_slot_t){.worker_id = w->id,
                                             .job_id = e->job,
                                             .task_id = e->task,
                                             .rq_id = e->cls->rq_id,
                                             .variant = e->variant};
}

/* Prefetched tasks whose time request outlived their worker's remaining lifetime. */
static void s_time_limits(hq_place_t *p, uint64_t now, hq_sched_slots_t *out)
{
    for (uint32_t i = 0; i < p->n_workers; i++) {
        worker_t *w = p->workers[i];
        if (w->lifetime_end == 0 || w->n_pf == 0)
            continue;
        for (uint32_t k = 0; k < w->n_pf; k++) {
            pf_t *e = s_pf_at(w, k);
            if (!e->retracting && !hq_pl_time_ok(w, s_pf_variant(e), now))
                s_emit(out, w, e);
        }
    }
}

/* Prefetched tasks of w not being retracted; *in_flight += those that are. */
static uint32_t s_stealable(const worker_t *w, uint32_t *in_flight)
{
    uint32_t n = 0;
    for (uint32_t k = 0; k < w->n_pf; k++) {
        if (s_pf_at(w, k)->retracting)
            (*in_flight)++;
        else
            n++;
    }
    return n;
}

/* A worker that could start a task now and holds nothing waiting. */
static bool s_target(const hq_place_t *p, const worker_t *w)
{
    return w->n_pf == 0 && !w->in_mn && w->held < w->credit && w->min_util <= 0 &&
           w->closed_round != p->round && w->free[CPUS_RES] > 0;
}

/* Takes back for target t the newest half of victim v's stealable prefetched tasks
 * that fit t (rule in steal.h). Returns how many. */
static uint32_t s_steal_for(hq_place_t *p, worker_t *t, worker_t *v, uint32_t stealable,
                            uint64_t now, hq_sched_slots_t *out)
{
    uint32_t want = (stealable + 1) / 2, n = 0;
    bool starts_now = false;
    uint32_t *picked = hq_malloc(want * sizeof *picked);
    for (uint32_t k = v->n_pf; k-- > 0 && n < want;) {
        const pf_t *e = s_pf_at(v, k);
        if (e->retracting || !hq_pl_fits(t, s_pf_variant(e), true, now))
            continue;
        starts_now = starts_now || hq_pl_fits_amounts(t, s_pf_variant(e), false);
        picked[n++] = k;
    }
    if (!starts_now)
        n = 0;
    for (uint32_t i = 0; i < n; i++)
        s_emit(out, v, s_pf_at(v, picked[i]));
    free(picked);
    (void)p;
    return n;
}

/* Idle capacity takes prefetched tasks from the worker that holds the most. */
static void s_balance(hq_place_t *p, uint64_t now, hq_sched_slots_t *out)
{
    bool any_target = false, any_victim = false;
    for (uint32_t i = 0; i < p->n_workers; i++) {
        any_target = any_target || s_target(p, p->workers[i]);
        any_victim = any_victim || p->workers[i]->n_pf > 0;
    }
    if (!any_target || !any_victim)
        return;
    uint32_t in_flight = 0;
    uint32_t *left = hq_calloc(p->n_workers, sizeof *left);
    for (uint32_t i = 0; i < p->n_workers; i++)
        left[i] = s_stealable(p->workers[i], &in_flight);
    for (uint32_t ti = 0; ti < p->n_workers && in_flight == 0; ti++) {
        worker_t *t = p->workers[ti];
        if (!s_target(p, t))
            continue;
        uint32_t best = UINT32_MAX;
        for (uint32_t vi = 0; vi < p->n_workers; vi++)
            if (vi != ti && left[vi] > 0 && (best == UINT32_MAX || left[vi] > left[best]))
                best = vi;
        if (best == UINT32_MAX)
            break;
        uint32_t n = s_steal_for(p, t, p->workers[best], left[best], now, out);
        left[best] -= n;
    }
    free(left);
}

uint32_t hq_steal_run(hq_place_t *p, uint64_t now_ns, hq_sched_slots_t *out)
{
    uint32_t before = out->n;
    s_time_limits(p, now_ns, out);
    s_balance(p, now_ns, out);
    return out->n - before;
}

bool hq_steal_needs_tick(const hq_place_t *p)
{
    for (uint32_t i = 0; i < p->n_workers; i++)
        if (p->workers[i]->lifetime_end != 0 && p->workers[i]->n_pf > 0)
            return true;
    return false;
}
