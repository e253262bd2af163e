/* Placement benchmark: 100 workers of three shapes (one with 4 NUMA groups), 1M ready
 * tasks in 10 jobs of mixed requests (cpus, mem, gpus, fractional, strict/scatter/
 * tight policies, a two-variant class). Each turn runs
 * one placement round, then releases a random half of the held tasks, until every
 * task has been placed. Prints placements per second of placement+release time.
 * Usage: bench_place [tasks] [workers] [jobs] (jobs > classes: one class per job) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"
#include "sched/place.h"

#define ONE HQ_AMOUNT_ONE

static uint64_t g_rng = 88172645463325252ULL;

static uint32_t rnd(uint32_t n)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng % n);
}

static void add_worker(hq_place_t *p, uint32_t id)
{
    uint32_t shape = id % 10, cpus, gpus = 0;
    hq_amount_t mem;
    if (shape < 6) {
        cpus = 32, mem = 128000;
    } else if (shape < 9) {
        cpus = 16, gpus = 4, mem = 64000;
    } else {
        cpus = 64, mem = 256000;
    }
    hq_wres_t res[3];
    uint32_t n = 0;
    /* the 64-cpu shape has 4 NUMA groups of 16 (tracked per group by the scheduler) */
    static char lbl[64][4];
    static char *lbls[64];
    hq_label_group_t groups[4];
    for (uint32_t i = 0; i < 64; i++) {
        snprintf(lbl[i], sizeof lbl[i], "%u", i);
        lbls[i] = lbl[i];
    }
    for (uint32_t g = 0; g < 4; g++)
        groups[g] = (hq_label_group_t){.n = 16, .labels = lbls + 16 * g};
    if (cpus == 64)
        res[n++] =
            (hq_wres_t){.name = "cpus", .kind = HQ_RES_GROUPS, .n_groups = 4, .groups = groups};
    else
        res[n++] = (hq_wres_t){
            .name = "cpus", .kind = HQ_RES_RANGE, .range_start = 0, .range_end = cpus - 1};
    res[n++] = (hq_wres_t){.name = "mem", .kind = HQ_RES_SUM, .sum_size = mem * ONE};
    if (gpus)
        res[n++] = (hq_wres_t){
            .name = "gpus", .kind = HQ_RES_RANGE, .range_start = 0, .range_end = gpus - 1};
    hq_sched_worker_t w = {.worker_id = id,
                           .resources = {.n = n, .res = res},
                           .credit = cpus + 4,
                           .prefetch = 4,
                           .group = "default"};
    hq_place_worker_up(p, &w);
}

/* One class; variants separated by '|', entries "name=amount" separated by ' '. */
static void add_rq(hq_place_t *p, uint32_t rq_id, const char *spec)
{
    hq_rvariant_t vars[4];
    hq_rreq_t entries[4][4];
    char names[4][4][16];
    uint32_t nv = 0;
    char *copy = hq_strdup(spec), *vsave = NULL;
    for (char *vs = strtok_r(copy, "|", &vsave); vs && nv < 4; vs = strtok_r(NULL, "|", &vsave)) {
        hq_rvariant_t *v = &vars[nv];
        memset(v, 0, sizeof *v);
        v->entries = entries[nv];
        char *esave = NULL;
        for (char *e = strtok_r(vs, " ", &esave); e && v->n_entries < 4;
             e = strtok_r(NULL, " ", &esave)) {
            char *eq = strchr(e, '=');
            if (!eq)
                continue;
            *eq = '\0';
            snprintf(names[nv][v->n_entries], sizeof names[0][0], "%s", e);
            entries[nv][v->n_entries] = (hq_rreq_t){
                .name = names[nv][v->n_entries], .amount = (hq_amount_t)(atof(eq + 1) * ONE + 0.5)};
            const char *pol = strchr(eq + 1, ':'); /* "4:compact!" */
            static const char *pnames[] = {"compact", "compact!", "tight", "tight!", "scatter"};
            for (int k = 0; pol && k < 5; k++)
                if (strcmp(pol + 1, pnames[k]) == 0)
                    entries[nv][v->n_entries].policy = (enum hq_policy)k;
            v->n_entries++;
        }
        nv++;
    }
    hq_sched_rq_t rq = {.rq_id = rq_id, .n_variants = nv, .variants = vars};
    hq_place_rq_add(p, &rq);
    free(copy);
}

int main(int argc, char **argv)
{
    uint32_t n_tasks = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1000000;
    uint32_t n_workers = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 100;
    uint32_t n_jobs = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 10;
    if (n_jobs == 0)
        n_jobs = 1;
    static const char *classes[] = {
        "cpus=1",   "cpus=2 mem=2048", "cpus=1 gpus=1", "cpus=4:compact!", "cpus=1 gpus=1|cpus=8",
        "cpus=0.5", "cpus=8:scatter",  "cpus=6:tight!",
    };
    const uint32_t n_classes = sizeof classes / sizeof classes[0];

    hq_place_t *p = hq_place_new();
    for (uint32_t c = 0; c < n_jobs; c++)
        add_rq(p, c + 1, classes[c % n_classes]);
    for (uint32_t w = 0; w < n_workers; w++)
        add_worker(p, w + 1);
    uint32_t per_job = n_tasks / n_jobs;
    for (uint32_t j = 0; j < n_jobs; j++) {
        hq_range_t r = {.start = 0, .end = per_job - 1, .step = 1};
        hq_sched_ready_t rd = {.job_id = j + 1,
                               .rq_id = j + 1,
                               .priority = (int32_t)(j % 3),
                               .ids = {.n = 1, .ranges = &r}};
        hq_place_ready(p, &rd);
    }

    hq_sched_slot_t *held = NULL;
    size_t n_held = 0, cap_held = 0;
    hq_sched_slots_t out = {0};
    uint64_t placed = 0, rounds = 0, spent = 0;
    uint64_t t_total = hq_mono_ns();
    while (hq_place_ready_count(p) > 0 && rounds < 10000000) {
        out.n = 0;
        uint64_t t0 = hq_mono_ns();
        hq_place_run(p, t0, &out);
        spent += hq_mono_ns() - t0;
        rounds++;
        placed += out.n;
        if (n_held + out.n > cap_held) {
            cap_held = (n_held + out.n) * 2;
            held = hq_realloc(held, cap_held * sizeof *held);
        }
        memcpy(held + n_held, out.slots, out.n * sizeof *held);
        n_held += out.n;
        /* a random half of the held tasks end */
        size_t n_rel = (n_held + 1) / 2, k = 0;
        hq_sched_slot_t *rel = hq_malloc((n_rel ? n_rel : 1) * sizeof *rel);
        for (; k < n_rel; k++) {
            size_t i = rnd((uint32_t)n_held);
            rel[k] = held[i];
            held[i] = held[--n_held];
        }
        t0 = hq_mono_ns();
        hq_place_release(p, rel, (uint32_t)n_rel);
        spent += hq_mono_ns() - t0;
        free(rel);
    }
    t_total = hq_mono_ns() - t_total;
    double secs = (double)spent / 1e9;
    printf(
        "workers %u tasks %u rounds %llu placed %llu in %.3f s (wall %.3f s): %.0f placements/s\n",
        n_workers, n_tasks, (unsigned long long)rounds, (unsigned long long)placed, secs,
        (double)t_total / 1e9, secs > 0 ? (double)placed / secs : 0.0);
    free(out.slots);
    free(held);
    hq_place_destroy(&p);
    return placed == (uint64_t)per_job * n_jobs ? 0 : 1;
}
