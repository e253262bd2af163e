/* Scheduling-quality benchmark: the pure placement module (sched/place.h) driven by
 * a virtual clock on three seeded workloads fixed here:
 *   a  10,000 tasks, lognormal durations (median 10 s, sigma 1), 1-8 cpus each,
 *      on 8 workers of 16 cpus in 2 groups of 8;
 *   b  the same tasks split over two priorities, submitted interleaved;
 *   c  a, with 4 of the 8 workers joining at 30 % of a's lower bound.
 * Every task is ready at time 0; a placed task runs at once (no prefetch) for its
 * duration. Prints per workload: the makespan, its lower bound (the time by which
 * the workers that have joined offered the cpu-seconds all tasks need, or the
 * longest task if longer), the ratio, the cpu utilization (task cpu-seconds over
 * the cpu-seconds offered until the makespan), the idle-worker-seconds (time a
 * worker holds no task at all, from its join to the makespan: what an idle timeout
 * can give back) for hq's placement, which packs, and for the same placement with
 * the worker choice flipped to spreading (most free cpus first) - packing saves
 * the difference - and the number of times a lower-priority task started on
 * a worker whose free cpus a waiting higher-priority task would have fit.
 * Usage: bench_quality [a|b|c ...] (default all). Exit 1 when a workload's makespan
 * is more than 10 % above its bound or a priority was overtaken. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"
#include "sched/place.h"

#define ONE HQ_AMOUNT_ONE
#define N_TASKS 10000
#define N_WORKERS 8
#define CPUS 16
#define MAX_REQ 8
#define SEC 1000000000.0

typedef struct task {
    double dur;    /* seconds */
    uint32_t cpus; /* 1..MAX_REQ */
    uint32_t job;  /* 1 or 2 */
} task_t;

typedef struct workload {
    char name;
    uint64_t seed;
    bool two_prios; /* job 2 (every other task) has the higher priority */
    bool late_half; /* workers 5..8 join at 30 % of the lower bound of a */
    task_t *tasks;
    double join[N_WORKERS + 1]; /* seconds, per worker id */
} workload_t;

typedef struct result {
    double makespan, bound, util, idle, idle_spread;
    uint64_t overtaken;
} result_t;

static uint64_t g_rng;

static double s_uniform(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return ((double)(g_rng >> 11) + 0.5) / 9007199254740992.0;
}

static void s_generate(workload_t *w)
{
    g_rng = w->seed;
    w->tasks = hq_calloc(N_TASKS, sizeof *w->tasks);
    double work = 0;
    for (uint32_t i = 0; i < N_TASKS; i++) {
        double z = sqrt(-2 * log(s_uniform())) * cos(2 * M_PI * s_uniform());
        task_t *t = &w->tasks[i];
        t->dur = 10.0 * exp(z);
        t->cpus = 1 + (uint32_t)(s_uniform() * MAX_REQ);
        t->job = w->two_prios ? 1 + i % 2 : 1;
        work += t->dur * t->cpus;
    }
    double late = w->late_half ? 0.3 * work / (N_WORKERS * CPUS) : 0;
    for (uint32_t id = 1; id <= N_WORKERS; id++)
        w->join[id] = id > N_WORKERS / 2 ? late : 0;
}

/* Lower bound: the longest task, or when the joined workers have offered all work. */
static double s_bound(const workload_t *w)
{
    double work = 0, longest = 0;
    for (uint32_t i = 0; i < N_TASKS; i++) {
        work += w->tasks[i].dur * w->tasks[i].cpus;
        longest = w->tasks[i].dur > longest ? w->tasks[i].dur : longest;
    }
    double late = w->join[N_WORKERS], early_cap = (N_WORKERS / 2) * CPUS;
    double t = work / (N_WORKERS * CPUS);
    if (late > 0 && early_cap * late >= work)
        t = work / early_cap;
    else if (late > 0)
        t = late + (work - early_cap * late) / (N_WORKERS * CPUS);
    return t > longest ? t : longest;
}

static void s_add_worker(hq_place_t *p, uint32_t id)
{
    static char lbl[CPUS][4];
    static char *lbls[CPUS];
    for (uint32_t i = 0; i < CPUS; i++) {
        snprintf(lbl[i], sizeof lbl[i], "%u", i);
        lbls[i] = lbl[i];
    }
    hq_label_group_t groups[2] = {{.n = CPUS / 2, .labels = lbls},
                                  {.n = CPUS / 2, .labels = lbls + CPUS / 2}};
    hq_wres_t res = {.name = "cpus", .kind = HQ_RES_GROUPS, .n_groups = 2, .groups = groups};
    hq_sched_worker_t sw = {.worker_id = id,
                            .resources = {.n = 1, .res = &res},
                            .credit = CPUS,
                            .prefetch = 0,
                            .group = "default"};
    hq_place_worker_up(p, &sw);
}

/* A running task in the end-time heap. */
typedef struct run {
    double end;
    hq_sched_slot_t slot;
} run_t;

static void s_push(run_t *h, uint32_t *n, run_t r)
{
    uint32_t i = (*n)++;
    while (i > 0 && h[(i - 1) / 2].end > r.end) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = r;
}

static run_t s_pop(run_t *h, uint32_t *n)
{
    run_t top = h[0], last = h[--*n];
    uint32_t i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && h[c + 1].end < h[c].end)
            c++;
        if (h[c].end >= last.end)
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0)
        h[i] = last;
    return top;
}

/* The event loop shared by hq's placement and the spreading reference: place()
 * fills slots for the tasks that start now. */
typedef uint32_t (*place_fn)(void *ctx, double now, hq_sched_slots_t *out);
typedef void (*release_fn)(void *ctx, const hq_sched_slot_t *s);
typedef void (*join_fn)(void *ctx, uint32_t id);

static double s_simulate(const workload_t *w, void *ctx, place_fn place, release_fn release,
                         join_fn join, double *idle_out)
{
    run_t *heap = hq_malloc(N_TASKS * sizeof *heap);
    uint32_t n_heap = 0, done = 0, running[N_WORKERS + 1] = {0};
    bool joined[N_WORKERS + 1] = {0};
    hq_sched_slots_t out = {0};
    double now = 0, idle = 0;
    while (done < N_TASKS) {
        for (uint32_t id = 1; id <= N_WORKERS; id++)
            if (!joined[id] && w->join[id] <= now) {
                joined[id] = true;
                join(ctx, id);
            }
        out.n = 0;
        place(ctx, now, &out);
        for (uint32_t k = 0; k < out.n; k++) {
            const hq_sched_slot_t *s = &out.slots[k];
            s_push(heap, &n_heap, (run_t){.end = now + w->tasks[s->task_id].dur, .slot = *s});
            running[s->worker_id]++;
        }
        double next = n_heap ? heap[0].end : now;
        for (uint32_t id = 1; id <= N_WORKERS; id++)
            if (!joined[id] && w->join[id] < next)
                next = w->join[id];
        if (n_heap == 0 && next == now)
            break; /* nothing runs and nothing can start: should not happen */
        for (uint32_t id = 1; id <= N_WORKERS; id++)
            if (joined[id] && running[id] == 0)
                idle += next - now;
        now = next;
        while (n_heap && heap[0].end <= now) {
            run_t r = s_pop(heap, &n_heap);
            running[r.slot.worker_id]--;
            release(ctx, &r.slot);
            done++;
        }
    }
    free(heap);
    free(out.slots);
    *idle_out = idle;
    return now;
}

/* ---- hq's placement ---- */

typedef struct hq_ctx {
    const workload_t *w;
    hq_place_t *p;
    uint64_t waiting[3][MAX_REQ + 1]; /* ready tasks by job and cpus */
    uint64_t overtaken;
} hq_ctx_t;

static uint32_t s_hq_place(void *c, double now, hq_sched_slots_t *out)
{
    hq_ctx_t *x = c;
    hq_amount_t free_before[N_WORKERS + 1] = {0}, high_took[N_WORKERS + 1] = {0};
    for (uint32_t id = 1; id <= N_WORKERS; id++)
        free_before[id] = hq_place_worker_free(x->p, id, "cpus");
    uint32_t n = hq_place_run(x->p, (uint64_t)(now * SEC), out);
    for (uint32_t k = 0; k < n; k++) {
        const hq_sched_slot_t *s = &out->slots[out->n - n + k];
        const task_t *t = &x->w->tasks[s->task_id];
        x->waiting[t->job][t->cpus]--;
        if (t->job == 2)
            high_took[s->worker_id] += (hq_amount_t)t->cpus * ONE;
    }
    if (!x->w->two_prios)
        return n;
    uint32_t smallest_high = 0;
    for (uint32_t q = 1; q <= MAX_REQ && !smallest_high; q++)
        if (x->waiting[2][q])
            smallest_high = q;
    for (uint32_t k = 0; k < n && smallest_high; k++) {
        const hq_sched_slot_t *s = &out->slots[out->n - n + k];
        if (x->w->tasks[s->task_id].job == 1 &&
            free_before[s->worker_id] - high_took[s->worker_id] >= (hq_amount_t)smallest_high * ONE)
            x->overtaken++;
    }
    return n;
}

static void s_hq_release(void *c, const hq_sched_slot_t *s)
{
    hq_place_release(((hq_ctx_t *)c)->p, s, 1);
}

static void s_hq_join(void *c, uint32_t id)
{
    s_add_worker(((hq_ctx_t *)c)->p, id);
}

/* Runs workload w through hq's placement (spread: with the worker choice flipped). */
static double s_run_hq(const workload_t *w, bool spread, double *idle, uint64_t *overtaken)
{
    hq_ctx_t hx = {.w = w, .p = hq_place_new()};
    hq_place_set_spread(hx.p, spread);
    for (uint32_t job = 1; job <= 2; job++)
        for (uint32_t c = 1; c <= MAX_REQ; c++) {
            hq_rreq_t e = {.name = "cpus", .amount = (hq_amount_t)c * ONE};
            hq_rvariant_t v = {.weight = ONE, .n_entries = 1, .entries = &e};
            hq_sched_rq_t rq = {.rq_id = job * 100 + c, .n_variants = 1, .variants = &v};
            hq_place_rq_add(hx.p, &rq);
        }
    for (uint32_t i = 0; i < N_TASKS; i++) {
        const task_t *t = &w->tasks[i];
        hq_range_t one = {.start = i, .end = i, .step = 1};
        hq_sched_ready_t rd = {.job_id = t->job,
                               .rq_id = t->job * 100 + t->cpus,
                               .priority = t->job == 2 ? 5 : 0,
                               .ids = {.n = 1, .ranges = &one}};
        hq_place_ready(hx.p, &rd);
        hx.waiting[t->job][t->cpus]++;
    }
    double makespan = s_simulate(w, &hx, s_hq_place, s_hq_release, s_hq_join, idle);
    *overtaken = hx.overtaken;
    hq_place_destroy(&hx.p);
    return makespan;
}

static result_t s_run(workload_t *w)
{
    result_t r = {0};
    uint64_t ignored;
    r.makespan = s_run_hq(w, false, &r.idle, &r.overtaken);
    s_run_hq(w, true, &r.idle_spread, &ignored);
    r.bound = s_bound(w);
    double work = 0, offered = 0;
    for (uint32_t i = 0; i < N_TASKS; i++)
        work += w->tasks[i].dur * w->tasks[i].cpus;
    for (uint32_t id = 1; id <= N_WORKERS; id++)
        offered += (r.makespan - w->join[id]) * CPUS;
    r.util = work / offered;
    return r;
}

int main(int argc, char **argv)
{
    workload_t all[3] = {
        {.name = 'a', .seed = 0x9E3779B97F4A7C15ULL},
        {.name = 'b', .seed = 0x9E3779B97F4A7C15ULL, .two_prios = true},
        {.name = 'c', .seed = 0x9E3779B97F4A7C15ULL, .late_half = true},
    };
    int rc = 0;
    printf("%-9s %10s %10s %7s %6s %12s %12s %9s\n", "workload", "makespan_s", "bound_s", "ratio",
           "util", "idle_wk_s", "idle_spread", "overtaken");
    for (int k = 0; k < 3; k++) {
        workload_t *w = &all[k];
        bool chosen = argc < 2;
        for (int a = 1; a < argc; a++)
            chosen = chosen || argv[a][0] == w->name;
        if (!chosen)
            continue;
        s_generate(w);
        result_t r = s_run(w);
        double ratio = r.makespan / r.bound;
        printf("%-9c %10.1f %10.1f %7.3f %6.3f %12.1f %12.1f %9llu\n", w->name, r.makespan, r.bound,
               ratio, r.util, r.idle, r.idle_spread, (unsigned long long)r.overtaken);
        if (ratio > 1.10 || r.overtaken > 0)
            rc = 1;
        free(w->tasks);
    }
    return rc;
}
