/* Builders shared by the placement unit tests (test_place_*.c): workers, request
 * classes and ready ranges from short specs, a round's assignments as text
 * ("worker/job.task/variant ..."), and the suite's fresh placement state g_p. */
#ifndef HQ_TEST_PLACE_FIXTURE_H
#define HQ_TEST_PLACE_FIXTURE_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"
#include "sched/place.h"

#define ONE HQ_AMOUNT_ONE
#define HOUR (3600ULL * 1000000000ULL)
#define NOW (1000ULL * HOUR)

/* ---- builders ---- */

typedef struct wspec {
    uint32_t cpus;         /* range(0-cpus-1) */
    uint32_t gpus;         /* list of n labels; 0 = none */
    hq_amount_t mem;       /* sum, in units; 0 = none */
    uint32_t credit;       /* tasks */
    uint32_t prefetch;     /* tasks */
    uint64_t lifetime_end; /* 0 = unlimited */
} wspec_t;

static inline void add_worker(hq_place_t *p, uint32_t id, wspec_t s)
{
    hq_wres_t res[3];
    uint32_t n = 0;
    char *labels[16];
    char names[16][4];
    hq_label_group_t grp = {.n = s.gpus, .labels = labels};
    for (uint32_t i = 0; i < s.gpus && i < 16; i++) {
        snprintf(names[i], sizeof names[i], "%u", i);
        labels[i] = names[i];
    }
    if (s.cpus)
        res[n++] = (hq_wres_t){
            .name = "cpus", .kind = HQ_RES_RANGE, .range_start = 0, .range_end = s.cpus - 1};
    if (s.gpus)
        res[n++] = (hq_wres_t){.name = "gpus", .kind = HQ_RES_LIST, .n_groups = 1, .groups = &grp};
    if (s.mem)
        res[n++] = (hq_wres_t){.name = "mem", .kind = HQ_RES_SUM, .sum_size = s.mem * ONE};
    hq_sched_worker_t w = {.worker_id = id,
                           .resources = {.n = n, .res = res},
                           .credit = s.credit,
                           .prefetch = s.prefetch,
                           .lifetime_end_ns = s.lifetime_end,
                           .group = "default"};
    hq_place_worker_up(p, &w);
}

/* Parses "cpus=2 gpus=all mem=1.5 time=2h nodes=2 weight=2" into a variant (test
 * helper). */
static inline void parse_variant(const char *spec, hq_rvariant_t *v)
{
    memset(v, 0, sizeof *v);
    v->weight = ONE;
    v->entries = calloc(8, sizeof *v->entries);
    char *copy = strdup(spec), *save = NULL;
    for (char *tok = strtok_r(copy, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        cr_assert(eq, "bad spec %s", spec);
        *eq = '\0';
        const char *val = eq + 1;
        if (strcmp(tok, "time") == 0) {
            v->min_time_ns = (uint64_t)(atof(val) * HOUR);
        } else if (strcmp(tok, "weight") == 0) {
            v->weight = (uint32_t)(atof(val) * ONE);
        } else if (strcmp(tok, "nodes") == 0) {
            v->n_nodes = (uint32_t)atoi(val);
        } else {
            hq_rreq_t *r = &v->entries[v->n_entries++];
            r->name = strdup(tok);
            const char *pol = strchr(val, ':'); /* "4:compact!" */
            if (pol) {
                const char *names[] = {"compact", "compact!", "tight", "tight!", "scatter"};
                for (int k = 0; k < 5; k++)
                    if (strcmp(pol + 1, names[k]) == 0)
                        r->policy = (enum hq_policy)k;
            }
            if (strcmp(val, "all") == 0)
                r->all = true;
            else
                r->amount = (hq_amount_t)(atof(val) * ONE + 0.5);
        }
    }
    free(copy);
}

/* Registers class rq_id with up to 4 variants given as specs (NULL-terminated). */
static inline void add_rq(hq_place_t *p, uint32_t rq_id, const char *v0, const char *v1,
                          const char *v2)
{
    const char *specs[3] = {v0, v1, v2};
    hq_rvariant_t vars[3];
    uint32_t n = 0;
    for (int i = 0; i < 3 && specs[i]; i++)
        parse_variant(specs[i], &vars[n++]);
    hq_sched_rq_t rq = {.rq_id = rq_id, .n_variants = n, .variants = vars};
    cr_assert_eq(hq_place_rq_add(p, &rq), 0);
    for (uint32_t i = 0; i < n; i++) {
        for (uint32_t e = 0; e < vars[i].n_entries; e++)
            free(vars[i].entries[e].name);
        free(vars[i].entries);
    }
}

static inline uint64_t ready_step(hq_place_t *p, uint32_t job, uint32_t rq, int32_t prio,
                                  uint32_t start, uint32_t end, uint32_t step)
{
    hq_range_t r = {.start = start, .end = end, .step = step};
    hq_sched_ready_t rd = {
        .job_id = job, .rq_id = rq, .priority = prio, .ids = {.n = 1, .ranges = &r}};
    return hq_place_ready(p, &rd);
}

static inline uint64_t ready(hq_place_t *p, uint32_t job, uint32_t rq, int32_t prio, uint32_t start,
                             uint32_t end)
{
    return ready_step(p, job, rq, prio, start, end, 1);
}

/* Last round's assignments, as "worker/job.task/variant ..." */
static hq_sched_slots_t g_out;
static char g_text[65536];

static inline const char *run_at(hq_place_t *p, uint64_t now)
{
    free(g_out.slots);
    g_out = (hq_sched_slots_t){0};
    hq_place_run(p, now, &g_out);
    size_t len = 0;
    g_text[0] = '\0';
    for (uint32_t i = 0; i < g_out.n && len < sizeof g_text - 64; i++) {
        const hq_sched_slot_t *s = &g_out.slots[i];
        len += (size_t)snprintf(g_text + len, sizeof g_text - len, "%s%u/%u.%u/%u", i ? " " : "",
                                s->worker_id, s->job_id, s->task_id, s->variant);
    }
    return g_text;
}

static inline const char *run(hq_place_t *p)
{
    return run_at(p, NOW);
}

static inline void release(hq_place_t *p, uint32_t worker, uint32_t job, uint32_t task, uint32_t rq,
                           uint32_t variant)
{
    hq_sched_slot_t s = {
        .worker_id = worker, .job_id = job, .task_id = task, .rq_id = rq, .variant = variant};
    hq_place_release(p, &s, 1);
}

static hq_place_t *g_p;

static inline void setup(void)
{
    g_p = hq_place_new();
}

static inline void teardown(void)
{
    hq_place_destroy(&g_p);
    cr_assert_null(g_p);
    free(g_out.slots);
    g_out = (hq_sched_slots_t){0};
}

#endif
