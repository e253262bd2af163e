/* Tests for the pure placement module (broker/place.h): exact assignments for the
 * ordering, fitting, prefetch and reservation rules, and a seeded random property
 * test against a model of strict-FIFO workers. */
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

static void add_worker(hq_place_t *p, uint32_t id, wspec_t s)
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

/* Parses "cpus=2 gpus=all mem=1.5 time=2h nodes=2" into a variant (test helper). */
static void parse_variant(const char *spec, hq_rvariant_t *v)
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
static void add_rq(hq_place_t *p, uint32_t rq_id, const char *v0, const char *v1, const char *v2)
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

static uint64_t ready_step(hq_place_t *p, uint32_t job, uint32_t rq, int32_t prio, uint32_t start,
                           uint32_t end, uint32_t step)
{
    hq_range_t r = {.start = start, .end = end, .step = step};
    hq_sched_ready_t rd = {
        .job_id = job, .rq_id = rq, .priority = prio, .ids = {.n = 1, .ranges = &r}};
    return hq_place_ready(p, &rd);
}

static uint64_t ready(hq_place_t *p, uint32_t job, uint32_t rq, int32_t prio, uint32_t start,
                      uint32_t end)
{
    return ready_step(p, job, rq, prio, start, end, 1);
}

/* Last round's assignments, as "worker/job.task/variant ..." */
static hq_sched_slots_t g_out;
static char g_text[65536];

static const char *run_at(hq_place_t *p, uint64_t now)
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

static const char *run(hq_place_t *p)
{
    return run_at(p, NOW);
}

static void release(hq_place_t *p, uint32_t worker, uint32_t job, uint32_t task, uint32_t rq,
                    uint32_t variant)
{
    hq_sched_slot_t s = {
        .worker_id = worker, .job_id = job, .task_id = task, .rq_id = rq, .variant = variant};
    hq_place_release(p, &s, 1);
}

static hq_place_t *g_p;

static void setup(void)
{
    g_p = hq_place_new();
}

static void teardown(void)
{
    hq_place_destroy(&g_p);
    cr_assert_null(g_p);
    free(g_out.slots);
    g_out = (hq_sched_slots_t){0};
}

TestSuite(place, .init = setup, .fini = teardown);

/* ---- ordering ---- */

Test(place, higher_priority_goes_first)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 1, .credit = 10});
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 0);
    ready(g_p, 2, 1, 5, 0, 0);
    cr_assert_str_eq(run(g_p), "1/2.0/0");
    cr_assert_eq(hq_place_ready_count(g_p), 1);
}

Test(place, older_job_goes_first_among_equal_priority)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 2, .credit = 10});
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    ready(g_p, 3, 1, 2, 0, 1);
    ready(g_p, 2, 1, 2, 7, 7);
    cr_assert_str_eq(run(g_p), "1/2.7/0 1/3.0/0");
}

Test(place, task_ids_ascend_within_a_job)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 3, .credit = 10});
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    ready(g_p, 1, 1, 0, 5, 9);
    ready(g_p, 1, 1, 0, 0, 4);
    cr_assert_str_eq(run(g_p), "1/1.0/0 1/1.1/0 1/1.2/0");
}

Test(place, a_million_task_array_is_kept_as_a_range)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 4, .credit = 100});
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    cr_assert_eq(ready(g_p, 1, 1, 0, 0, 999999), 1000000);
    cr_assert_eq(hq_place_ready_count(g_p), 1000000);
    cr_assert_str_eq(run(g_p), "1/1.0/0 1/1.1/0 1/1.2/0 1/1.3/0");
    cr_assert_eq(hq_place_ready_count(g_p), 999996);
}

Test(place, spreads_to_the_worker_with_most_free_cpus_then_lower_id)
{
    add_worker(g_p, 2, (wspec_t){.cpus = 8, .credit = 10});
    add_worker(g_p, 1, (wspec_t){.cpus = 4, .credit = 10});
    add_rq(g_p, 1, "cpus=2", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 4);
    /* w2 8 free -> 6 -> 4 (tie with w1: lower id w1) -> ... */
    cr_assert_str_eq(run(g_p), "2/1.0/0 2/1.1/0 1/1.2/0 2/1.3/0 1/1.4/0");
}

/* ---- fitting ---- */

Test(place, falls_back_to_the_next_variant_only_when_the_first_fits_nowhere)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 4, .credit = 10});
    add_rq(g_p, 1, "cpus=1 gpus=1", "cpus=4", NULL);
    ready(g_p, 1, 1, 0, 0, 1);
    cr_assert_str_eq(run(g_p), "1/1.0/1");
    add_worker(g_p, 2, (wspec_t){.cpus = 4, .gpus = 1, .credit = 10});
    cr_assert_str_eq(run(g_p), "2/1.1/0");
}

Test(place, sum_resources_are_split_by_amount)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 8, .mem = 10, .credit = 10});
    add_rq(g_p, 1, "cpus=1 mem=4", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 4);
    cr_assert_str_eq(run(g_p), "1/1.0/0 1/1.1/0");
    cr_assert_eq(hq_place_worker_free(g_p, 1, "mem"), 2 * ONE);
    cr_assert_str_eq(run(g_p), "");
    release(g_p, 1, 1, 0, 1, 0);
    cr_assert_eq(hq_place_worker_free(g_p, 1, "mem"), 6 * ONE);
    cr_assert_str_eq(run(g_p), "1/1.2/0");
}

Test(place, fractional_amounts_share_an_index)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 1, .credit = 10});
    add_rq(g_p, 1, "cpus=0.25", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 9);
    cr_assert_str_eq(run(g_p), "1/1.0/0 1/1.1/0 1/1.2/0 1/1.3/0");
}

Test(place, all_takes_the_whole_resource_and_needs_it_completely_free)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 8, .gpus = 4, .credit = 10});
    add_rq(g_p, 1, "cpus=1 gpus=1", NULL, NULL);
    add_rq(g_p, 2, "cpus=1 gpus=all", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 0);
    cr_assert_str_eq(run(g_p), "1/1.0/0");
    ready(g_p, 2, 2, 0, 0, 1);
    cr_assert_str_eq(run(g_p), "");
    release(g_p, 1, 1, 0, 1, 0);
    cr_assert_str_eq(run(g_p), "1/2.0/0");
    cr_assert_eq(hq_place_worker_free(g_p, 1, "gpus"), 0);
    release(g_p, 1, 2, 0, 2, 0);
    cr_assert_eq(hq_place_worker_free(g_p, 1, "gpus"), 4 * ONE);
    cr_assert_str_eq(run(g_p), "1/2.1/0");
}

Test(place, capacity_of_label_groups_counts_every_label)
{
    char *a[] = {"0", "1"}, *b[] = {"2", "3", "4"};
    hq_label_group_t groups[2] = {{.n = 2, .labels = a}, {.n = 3, .labels = b}};
    hq_wres_t res = {.name = "cpus", .kind = HQ_RES_GROUPS, .n_groups = 2, .groups = groups};
    hq_sched_worker_t w = {.worker_id = 7, .resources = {.n = 1, .res = &res}, .credit = 10};
    hq_place_worker_up(g_p, &w);
    cr_assert_eq(hq_place_worker_free(g_p, 7, "cpus"), 5 * ONE);
}

Test(place, a_worker_lacking_a_requested_resource_never_gets_the_task)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 64, .credit = 100, .prefetch = 10});
    add_rq(g_p, 1, "cpus=1 gpus=1", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 3);
    cr_assert_str_eq(run(g_p), "");
    add_worker(g_p, 2, (wspec_t){.cpus = 2, .gpus = 1, .credit = 100});
    cr_assert_str_eq(run(g_p), "2/1.0/0");
}

Test(place, credit_zero_gives_nothing_and_credit_limits_held_tasks)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 8, .credit = 0, .prefetch = 4});
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 9);
    cr_assert_str_eq(run(g_p), "");
    hq_place_credit(g_p, 1, 2);
    cr_assert_str_eq(run(g_p), "1/1.0/0 1/1.1/0");
    cr_assert_str_eq(run(g_p), "");
    release(g_p, 1, 1, 0, 1, 0);
    cr_assert_str_eq(run(g_p), "1/1.2/0");
    hq_place_winfo_t info;
    cr_assert_eq(hq_place_worker_info(g_p, 1, &info), 0);
    cr_assert_eq(info.held, 2);
}

Test(place, prefetch_holds_extra_tasks_that_fit_total_capacity)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 2, .credit = 10, .prefetch = 1});
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    add_rq(g_p, 2, "cpus=4", NULL, NULL);
    ready(g_p, 1, 2, 9, 0, 0); /* never fits this worker, not even prefetched */
    ready(g_p, 2, 1, 0, 0, 5);
    cr_assert_str_eq(run(g_p), "1/2.0/0 1/2.1/0 1/2.2/0");
    hq_place_winfo_t info;
    hq_place_worker_info(g_p, 1, &info);
    cr_assert_eq(info.held, 3);
    cr_assert_eq(info.prefetched, 1);
    /* a finished task lets the waiting one start; one more may be prefetched */
    release(g_p, 1, 2, 0, 1, 0);
    hq_place_worker_info(g_p, 1, &info);
    cr_assert_eq(info.prefetched, 0);
    cr_assert_eq(hq_place_worker_free(g_p, 1, "cpus"), 0);
    cr_assert_str_eq(run(g_p), "1/2.3/0");
    /* releasing a task still waiting frees no capacity */
    release(g_p, 1, 2, 3, 1, 0);
    cr_assert_eq(hq_place_worker_free(g_p, 1, "cpus"), 0);
    hq_place_worker_info(g_p, 1, &info);
    cr_assert_eq(info.held, 2);
    cr_assert_eq(info.prefetched, 0);
}

Test(place, a_waiting_prefetched_task_is_not_overtaken)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 4, .credit = 10, .prefetch = 2});
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    add_rq(g_p, 2, "cpus=4", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 3);
    cr_assert_str_eq(run(g_p), "1/1.0/0 1/1.1/0 1/1.2/0 1/1.3/0");
    ready(g_p, 2, 2, 5, 0, 0);
    cr_assert_str_eq(run(g_p), "1/2.0/0"); /* prefetched: waits for the whole worker */
    ready(g_p, 3, 1, 0, 0, 9);
    release(g_p, 1, 1, 0, 1, 0);
    /* one cpu is free, but the waiting 4-cpu task is first: only prefetch */
    cr_assert_str_eq(run(g_p), "1/3.0/0");
    cr_assert_eq(hq_place_worker_free(g_p, 1, "cpus"), 1 * ONE);
    release(g_p, 1, 1, 1, 1, 0);
    release(g_p, 1, 1, 2, 1, 0);
    release(g_p, 1, 1, 3, 1, 0);
    /* the big task started, then 3.0 waits for a cpu */
    hq_place_winfo_t info;
    hq_place_worker_info(g_p, 1, &info);
    cr_assert_eq(info.prefetched, 1);
    cr_assert_eq(hq_place_worker_free(g_p, 1, "cpus"), 0);
}

Test(place, time_request_must_fit_the_remaining_lifetime)
{
    add_worker(g_p, 1,
               (wspec_t){.cpus = 4, .credit = 10, .prefetch = 2, .lifetime_end = NOW + HOUR});
    add_rq(g_p, 1, "cpus=1 time=2", NULL, NULL);
    add_rq(g_p, 2, "cpus=1 time=0.5", NULL, NULL);
    ready(g_p, 1, 1, 5, 0, 0);
    ready(g_p, 2, 2, 0, 0, 0);
    cr_assert_str_eq(run(g_p), "1/2.0/0");
    add_worker(g_p, 2, (wspec_t){.cpus = 1, .credit = 10});
    cr_assert_str_eq(run(g_p), "2/1.0/0");
    ready(g_p, 3, 2, 0, 0, 0);
    /* 40 minutes later only 20 are left: too short for 30 */
    cr_assert_str_eq(run_at(g_p, NOW + HOUR * 2 / 3), "");
}

Test(place, multi_node_variants_are_never_placed_but_single_node_fallback_is)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 4, .credit = 10, .prefetch = 2});
    add_rq(g_p, 1, "nodes=2", NULL, NULL);
    add_rq(g_p, 2, "nodes=2", "cpus=2", NULL);
    ready(g_p, 1, 1, 9, 0, 0);
    ready(g_p, 2, 2, 0, 0, 0);
    cr_assert_str_eq(run(g_p), "1/2.0/1");
    cr_assert_eq(hq_place_ready_count(g_p), 1);
}

Test(place, tasks_of_an_unregistered_class_wait_for_it)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 4, .credit = 10});
    ready(g_p, 1, 9, 0, 0, 1);
    cr_assert_str_eq(run(g_p), "");
    add_rq(g_p, 9, "cpus=2", NULL, NULL);
    cr_assert_str_eq(run(g_p), "1/1.0/0 1/1.1/0");
}

Test(place, duplicate_class_registration_is_refused)
{
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    hq_rvariant_t v;
    parse_variant("cpus=2", &v);
    hq_sched_rq_t rq = {.rq_id = 1, .n_variants = 1, .variants = &v};
    cr_assert_eq(hq_place_rq_add(g_p, &rq), -1);
    rq.n_variants = 0;
    rq.rq_id = 2;
    cr_assert_eq(hq_place_rq_add(g_p, &rq), -1);
    free(v.entries[0].name);
    free(v.entries);
}

/* ---- cancel, workers ---- */

Test(place, cancel_job_drops_its_ready_tasks)
{
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 99);
    ready(g_p, 2, 1, 0, 0, 9);
    cr_assert_eq(hq_place_cancel_job(g_p, 1), 100);
    cr_assert_eq(hq_place_ready_count(g_p), 10);
    add_worker(g_p, 1, (wspec_t){.cpus = 1, .credit = 10});
    cr_assert_str_eq(run(g_p), "1/2.0/0");
}

Test(place, cancel_tasks_cuts_ranges_with_steps)
{
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 9);
    ready_step(g_p, 1, 1, 0, 20, 30, 5); /* 20 25 30 */
    hq_range_t cut[2] = {{.start = 1, .end = 7, .step = 2}, {.start = 25, .end = 25, .step = 1}};
    hq_sched_ready_t rd = {.job_id = 1, .ids = {.n = 2, .ranges = cut}};
    cr_assert_eq(hq_place_cancel_tasks(g_p, &rd), 5);
    cr_assert_eq(hq_place_ready_count(g_p), 8);
    add_worker(g_p, 1, (wspec_t){.cpus = 20, .credit = 20});
    cr_assert_str_eq(run(g_p), "1/1.0/0 1/1.2/0 1/1.4/0 1/1.6/0 1/1.8/0 1/1.9/0 1/1.20/0 1/1.30/0");
    cr_assert_eq(hq_place_ready_count(g_p), 0);
}

Test(place, worker_down_forgets_the_worker)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 1, .credit = 10});
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 1);
    cr_assert_str_eq(run(g_p), "1/1.0/0");
    hq_place_worker_down(g_p, 1);
    hq_place_winfo_t info;
    cr_assert_eq(hq_place_worker_info(g_p, 1, &info), -1);
    release(g_p, 1, 1, 0, 1, 0); /* ignored */
    cr_assert_str_eq(run(g_p), "");
    add_worker(g_p, 2, (wspec_t){.cpus = 1, .credit = 10});
    cr_assert_str_eq(run(g_p), "2/1.1/0");
}

/* ---- starvation ---- */

Test(place, a_blocked_higher_priority_task_reserves_a_worker)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 4, .credit = 100});
    add_worker(g_p, 2, (wspec_t){.cpus = 4, .credit = 100});
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    add_rq(g_p, 2, "cpus=4", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 999);
    run(g_p);
    cr_assert_eq(g_out.n, 8);
    ready(g_p, 2, 2, 5, 0, 0);
    /* one task ends on each worker: the small ones may refill worker 2 only */
    release(g_p, 1, 1, 0, 1, 0);
    release(g_p, 2, 1, 1, 1, 0);
    cr_assert_str_eq(run(g_p), "2/1.8/0");
    cr_assert_str_eq(run(g_p), "");
    release(g_p, 1, 1, 2, 1, 0);
    release(g_p, 1, 1, 4, 1, 0);
    cr_assert_str_eq(run(g_p), "");
    release(g_p, 1, 1, 6, 1, 0);
    cr_assert_str_eq(run(g_p), "1/2.0/0");
}

Test(place, a_task_that_fits_no_worker_blocks_nobody)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 4, .credit = 100});
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    add_rq(g_p, 2, "cpus=64", NULL, NULL);
    ready(g_p, 2, 2, 5, 0, 0);
    ready(g_p, 1, 1, 0, 0, 1);
    cr_assert_str_eq(run(g_p), "1/1.0/0 1/1.1/0");
}

/* ---- property test ---- */

static uint64_t g_rng;

static uint32_t rnd(uint32_t n)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return n ? (uint32_t)(g_rng % n) : 0;
}

#define PW 24  /* workers */
#define PC 12  /* classes */
#define PJ 400 /* jobs */
#define PT 64  /* tasks per job (max) */
#define NRES 3 /* cpus, gpus, mem */

typedef struct mtask {
    uint32_t job, task, rq, variant;
} mtask_t;

typedef struct mworker {
    bool alive;
    hq_amount_t cap[NRES], free[NRES];
    uint32_t credit, prefetch;
    uint64_t lifetime_end;
    mtask_t run[256];
    uint32_t n_run;
    mtask_t wait[256];
    uint32_t n_wait;
    bool in_mn; /* held whole by a multi-node task */
} mworker_t;

/* A placed multi-node task of the model: its nodes, root first. */
typedef struct mmn {
    mtask_t t;
    uint32_t nodes[PW];
    uint32_t n;
} mmn_t;

static mmn_t MN[64];
static uint32_t n_mn;

typedef struct mvariant {
    bool all[NRES];
    hq_amount_t amount[NRES]; /* < 0: not requested */
    uint64_t min_time;
    uint32_t nodes;
} mvariant_t;

static mworker_t M[PW];
static mvariant_t MV[PC][3];
static uint32_t MNV[PC];
static const char *RES_NAMES[NRES] = {"cpus", "gpus", "mem"};
static uint8_t assigned_once[PJ][PT];

static hq_amount_t mneed(const mworker_t *w, const mvariant_t *v, int r)
{
    return v->all[r] ? w->cap[r] : v->amount[r];
}

static bool mfits(const mworker_t *w, const mvariant_t *v, bool total)
{
    for (int r = 0; r < NRES; r++) {
        if (v->amount[r] < 0 && !v->all[r])
            continue;
        if (w->cap[r] <= 0)
            return false;
        if ((total ? w->cap[r] : w->free[r]) < mneed(w, v, r))
            return false;
    }
    return true;
}

static void mtake(mworker_t *w, const mvariant_t *v, int sign)
{
    for (int r = 0; r < NRES; r++)
        if (v->amount[r] >= 0 || v->all[r])
            w->free[r] -= sign * mneed(w, v, r);
}

static void mpromote(mworker_t *w)
{
    while (w->n_wait > 0) {
        const mtask_t *t = &w->wait[0];
        const mvariant_t *v = &MV[t->rq][t->variant];
        if (!mfits(w, v, false))
            break;
        mtake(w, v, 1);
        w->run[w->n_run++] = *t;
        memmove(w->wait, w->wait + 1, (w->n_wait - 1) * sizeof *w->wait);
        w->n_wait--;
    }
}

static void random_worker(hq_place_t *p, uint32_t id, uint64_t now)
{
    mworker_t *w = &M[id];
    memset(w, 0, sizeof *w);
    w->alive = true;
    wspec_t s = {.cpus = 1 + rnd(16),
                 .gpus = rnd(2) ? rnd(5) : 0,
                 .mem = rnd(2) ? 1 + rnd(64) : 0,
                 .credit = rnd(10) == 0 ? 0 : rnd(24),
                 .prefetch = rnd(4),
                 .lifetime_end = rnd(3) == 0 ? now + rnd(10) * HOUR : 0};
    w->cap[0] = s.cpus * ONE;
    w->cap[1] = s.gpus * ONE;
    w->cap[2] = s.mem * ONE;
    memcpy(w->free, w->cap, sizeof w->cap);
    w->credit = s.credit;
    w->prefetch = s.prefetch;
    w->lifetime_end = s.lifetime_end;
    add_worker(p, id, s);
}

static void random_class(hq_place_t *p, uint32_t c)
{
    char specs[3][128];
    MNV[c] = 1 + rnd(3);
    for (uint32_t v = 0; v < MNV[c]; v++) {
        mvariant_t *mv = &MV[c][v];
        memset(mv, 0, sizeof *mv);
        int len = 0;
        if (rnd(15) == 0) {
            mv->nodes = 2;
            len += snprintf(specs[v] + len, sizeof specs[v] - len, "nodes=2 ");
        }
        for (int r = 0; r < NRES; r++) {
            mv->amount[r] = -1;
            if (mv->nodes || (r > 0 && rnd(3) != 0))
                continue;
            if (r > 0 && rnd(6) == 0) {
                mv->all[r] = true;
                len += snprintf(specs[v] + len, sizeof specs[v] - len, "%s=all ", RES_NAMES[r]);
            } else {
                mv->amount[r] = (hq_amount_t)(1 + rnd(16)) * ONE / 4;
                len += snprintf(specs[v] + len, sizeof specs[v] - len, "%s=%.4f ", RES_NAMES[r],
                                (double)mv->amount[r] / ONE);
            }
        }
        if (rnd(4) == 0) {
            mv->min_time = (1 + rnd(8)) * HOUR;
            len += snprintf(specs[v] + len, sizeof specs[v] - len, "time=%.4f",
                            (double)mv->min_time / HOUR);
        }
    }
    add_rq(p, c, specs[0], MNV[c] > 1 ? specs[1] : NULL, MNV[c] > 2 ? specs[2] : NULL);
}

/* Checks one assignment against the model and applies it. */
static void mapply(const hq_sched_slot_t *s, uint64_t now)
{
    cr_assert_lt(s->worker_id, PW);
    mworker_t *w = &M[s->worker_id];
    cr_assert(w->alive, "assigned to dead worker %u", s->worker_id);
    cr_assert_lt(s->rq_id, PC);
    cr_assert_lt(s->variant, MNV[s->rq_id]);
    cr_assert_lt(s->job_id, PJ);
    cr_assert_lt(s->task_id, PT);
    cr_assert_eq(assigned_once[s->job_id][s->task_id], 0, "task %u.%u assigned twice", s->job_id,
                 s->task_id);
    assigned_once[s->job_id][s->task_id] = 1;
    const mvariant_t *v = &MV[s->rq_id][s->variant];
    cr_assert_eq(v->nodes, 0, "multi-node variant placed as one slot");
    cr_assert(!w->in_mn, "task on a node of a multi-node task");
    for (int r = 0; r < NRES; r++)
        if (v->amount[r] >= 0 || v->all[r])
            cr_assert_gt(w->cap[r], 0, "worker %u lacks %s", s->worker_id, RES_NAMES[r]);
    if (w->lifetime_end)
        cr_assert_leq(v->min_time, w->lifetime_end > now ? w->lifetime_end - now : 0);
    cr_assert_lt(w->n_run + w->n_wait, w->credit, "credit exceeded on worker %u", s->worker_id);
    mtask_t t = {s->job_id, s->task_id, s->rq_id, s->variant};
    if (w->n_wait == 0 && mfits(w, v, false)) {
        mtake(w, v, 1);
        w->run[w->n_run++] = t;
    } else {
        cr_assert(mfits(w, v, true), "prefetched task does not fit total capacity");
        w->wait[w->n_wait++] = t;
        cr_assert_leq(w->n_wait, w->prefetch, "prefetch exceeded on worker %u", s->worker_id);
    }
}

/* Checks the n_nodes consecutive slots of a multi-node task; returns slots used. */
static uint32_t mapply_mn(const hq_sched_slot_t *s, uint32_t left, uint64_t now)
{
    const mvariant_t *v = &MV[s->rq_id][s->variant];
    cr_assert_leq(v->nodes, left, "multi-node task with too few slots");
    cr_assert_eq(assigned_once[s->job_id][s->task_id], 0, "task assigned twice");
    assigned_once[s->job_id][s->task_id] = 1;
    cr_assert_lt(n_mn, 64);
    mmn_t *m = &MN[n_mn++];
    m->t = (mtask_t){s->job_id, s->task_id, s->rq_id, s->variant};
    m->n = v->nodes;
    for (uint32_t k = 0; k < v->nodes; k++) {
        const hq_sched_slot_t *x = &s[k];
        cr_assert(x->job_id == s->job_id && x->task_id == s->task_id, "nodes of one task");
        cr_assert_lt(x->worker_id, PW);
        mworker_t *w = &M[x->worker_id];
        cr_assert(w->alive && !w->in_mn && w->n_run + w->n_wait == 0 && w->credit > 0,
                  "multi-node task on a busy worker %u", x->worker_id);
        if (w->lifetime_end)
            cr_assert_leq(v->min_time, w->lifetime_end > now ? w->lifetime_end - now : 0);
        w->in_mn = true;
        m->nodes[k] = x->worker_id;
    }
    return v->nodes;
}

static void mapply_all(const hq_sched_slots_t *out, uint64_t now)
{
    for (uint32_t i = 0; i < out->n;) {
        const hq_sched_slot_t *s = &out->slots[i];
        cr_assert_lt(s->rq_id, PC);
        cr_assert_lt(s->variant, MNV[s->rq_id]);
        if (MV[s->rq_id][s->variant].nodes > 0) {
            i += mapply_mn(s, out->n - i, now);
        } else {
            mapply(s, now);
            i++;
        }
    }
}

/* Ends the multi-node task rooted at wid (if any); true when it did. */
static bool mrelease_mn(hq_place_t *p, uint32_t wid)
{
    for (uint32_t i = 0; i < n_mn; i++) {
        if (MN[i].nodes[0] != wid)
            continue;
        for (uint32_t k = 0; k < MN[i].n; k++)
            M[MN[i].nodes[k]].in_mn = false;
        mtask_t t = MN[i].t;
        MN[i] = MN[--n_mn];
        release(p, wid, t.job, t.task, t.rq, t.variant);
        return true;
    }
    return false;
}

/* A worker of the model goes down: a root ends its task, a secondary leaves it. */
static void mdown_mn(uint32_t wid)
{
    for (uint32_t i = 0; i < n_mn; i++) {
        for (uint32_t k = 0; k < MN[i].n; k++) {
            if (MN[i].nodes[k] != wid)
                continue;
            if (k == 0) {
                for (uint32_t j = 0; j < MN[i].n; j++)
                    M[MN[i].nodes[j]].in_mn = false;
                MN[i] = MN[--n_mn];
            } else {
                memmove(MN[i].nodes + k, MN[i].nodes + k + 1, (MN[i].n - k - 1) * sizeof(uint32_t));
                MN[i].n--;
                M[wid].in_mn = false;
            }
            return;
        }
    }
}

static void mcheck(hq_place_t *p)
{
    for (uint32_t i = 0; i < PW; i++) {
        const mworker_t *w = &M[i];
        if (!w->alive)
            continue;
        for (int r = 0; r < NRES; r++) {
            cr_assert_geq(w->free[r], 0, "worker %u over capacity on %s", i, RES_NAMES[r]);
            if (w->cap[r] > 0)
                cr_assert_eq(hq_place_worker_free(p, i, RES_NAMES[r]), w->free[r]);
        }
        hq_place_winfo_t info;
        cr_assert_eq(hq_place_worker_info(p, i, &info), 0);
        cr_assert_eq(info.held, w->n_run + w->n_wait + (w->in_mn ? 1 : 0),
                     "worker %u held %u run %u wait %u mn %d", i, info.held, w->n_run, w->n_wait,
                     w->in_mn);
        cr_assert_eq(info.prefetched, w->n_wait);
    }
}

static void mrelease(hq_place_t *p, uint32_t wid, bool waiting, uint32_t k)
{
    mworker_t *w = &M[wid];
    mtask_t t;
    if (waiting) {
        t = w->wait[k];
        memmove(w->wait + k, w->wait + k + 1, (w->n_wait - k - 1) * sizeof *w->wait);
        w->n_wait--;
    } else {
        t = w->run[k];
        w->run[k] = w->run[--w->n_run];
        mtake(w, &MV[t.rq][t.variant], -1);
    }
    mpromote(w);
    release(p, wid, t.job, t.task, t.rq, t.variant);
}

Test(place, random_workloads_never_exceed_capacity_prefetch_or_credit)
{
    for (uint64_t seed = 1; seed <= 6; seed++) {
        hq_place_t *p = hq_place_new();
        g_rng = 0x9E3779B97F4A7C15ULL * seed;
        memset(assigned_once, 0, sizeof assigned_once);
        n_mn = 0;
        uint64_t now = NOW;
        for (uint32_t c = 0; c < PC; c++)
            random_class(p, c);
        for (uint32_t i = 0; i < PW; i++)
            random_worker(p, i, now);
        uint32_t next_job = 0;
        uint64_t placed = 0;
        for (int step = 0; step < 3000; step++) {
            uint32_t action = rnd(100);
            if (action < 20 && next_job < PJ) {
                uint32_t job = next_job++;
                uint32_t a = rnd(PT), b = rnd(PT);
                ready_step(p, job, rnd(PC), (int32_t)rnd(4) - 1, a < b ? a : b, a < b ? b : a,
                           1 + rnd(2));
            } else if (action < 55) {
                now += rnd(600) * 1000000000ULL;
                hq_sched_slots_t out = {0};
                hq_place_run(p, now, &out);
                mapply_all(&out, now);
                placed += out.n;
                free(out.slots);
            } else if (action < 90) {
                uint32_t wid = rnd(PW);
                mworker_t *w = &M[wid];
                if (w->alive && w->in_mn) {
                    mrelease_mn(p, wid);
                } else if (w->alive && w->n_run + w->n_wait > 0) {
                    bool waiting = w->n_wait > 0 && (w->n_run == 0 || rnd(4) == 0);
                    mrelease(p, wid, waiting, rnd(waiting ? w->n_wait : w->n_run));
                }
            } else if (action < 94) {
                uint32_t wid = rnd(PW);
                if (M[wid].alive) {
                    M[wid].credit = rnd(24);
                    hq_place_credit(p, wid, M[wid].credit);
                }
            } else if (action < 97) {
                uint32_t wid = rnd(PW);
                if (M[wid].alive) {
                    hq_place_worker_down(p, wid);
                    mdown_mn(wid);
                    M[wid].alive = false;
                } else {
                    random_worker(p, wid, now);
                }
            } else if (next_job > 0) {
                uint32_t job = rnd(next_job);
                if (rnd(2)) {
                    hq_place_cancel_job(p, job);
                } else {
                    hq_range_t r = {.start = rnd(PT), .end = PT, .step = 1 + rnd(3)};
                    hq_sched_ready_t rd = {.job_id = job, .ids = {.n = 1, .ranges = &r}};
                    hq_place_cancel_tasks(p, &rd);
                }
            }
            mcheck(p);
        }
        cr_assert_gt(placed, 500, "seed %llu placed only %llu", (unsigned long long)seed,
                     (unsigned long long)placed);
        hq_place_destroy(&p);
    }
}

Test(place, classes_with_identical_requests_are_each_placed)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 3, .credit = 10});
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    add_rq(g_p, 2, "cpus=1", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 1);
    ready(g_p, 2, 2, 0, 0, 1);
    cr_assert_str_eq(run(g_p), "1/1.0/0 1/1.1/0 1/2.0/0");
    release(g_p, 1, 1, 0, 1, 0);
    cr_assert_str_eq(run(g_p), "1/2.1/0");
}

/* ---- groups, strict policies, multi-node tasks, min utilization ---- */

/* A worker whose cpus are n_groups NUMA groups of size each; group name; min util. */
static void add_numa_worker(hq_place_t *p, uint32_t id, uint32_t n_groups, uint32_t size,
                            const char *group, uint32_t credit, double min_util)
{
    hq_label_group_t groups[8];
    char *labels[8][16];
    char names[8][16][4];
    for (uint32_t g = 0; g < n_groups; g++) {
        groups[g] = (hq_label_group_t){.n = size, .labels = labels[g]};
        for (uint32_t i = 0; i < size; i++) {
            snprintf(names[g][i], sizeof names[g][i], "%u", g * size + i);
            labels[g][i] = names[g][i];
        }
    }
    hq_wres_t res = {.name = "cpus",
                     .kind = n_groups > 1 ? HQ_RES_GROUPS : HQ_RES_LIST,
                     .n_groups = n_groups,
                     .groups = groups};
    hq_sched_worker_t w = {.worker_id = id,
                           .resources = {.n = 1, .res = &res},
                           .credit = credit,
                           .group = (char *)group,
                           .min_utilization = min_util};
    hq_place_worker_up(p, &w);
}

Test(place, strict_compact_waits_for_a_single_free_group)
{
    add_numa_worker(g_p, 1, 2, 4, "default", 10, 0);
    add_rq(g_p, 1, "cpus=3", NULL, NULL);
    add_rq(g_p, 2, "cpus=3:compact!", NULL, NULL);
    add_rq(g_p, 3, "cpus=2:compact", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 0);
    /* 3 cpus go to one group (best fit): groups have 1 and 4 free */
    cr_assert_str_eq(run(g_p), "1/1.0/0");
    ready(g_p, 2, 3, 0, 0, 0);
    /* 2 compact: best fit is the group with 1 free? no, it needs 2: the 4-free group */
    cr_assert_str_eq(run(g_p), "1/2.0/0");
    /* free per group now 1 and 2: 3 cpus fit in amounts but not in one group */
    ready(g_p, 3, 2, 0, 0, 0);
    cr_assert_str_eq(run(g_p), "");
    /* a non-strict request of the same size would be placed across groups */
    ready(g_p, 4, 1, 0, 0, 0);
    cr_assert_str_eq(run(g_p), "");
    cr_assert_eq(hq_place_worker_free(g_p, 1, "cpus"), 3 * ONE);
    /* the first task ends: group 0 is free again; the strict task (older job) takes
     * it, leaving 1 + 2 free cpus for the non-strict one across both groups */
    release(g_p, 1, 1, 0, 1, 0);
    cr_assert_str_eq(run(g_p), "1/3.0/0 1/4.0/0");
}

Test(place, strict_compact_needing_two_groups_refuses_three)
{
    add_numa_worker(g_p, 1, 3, 4, "default", 10, 0);
    add_rq(g_p, 1, "cpus=6:scatter", NULL, NULL);
    add_rq(g_p, 2, "cpus=6:compact!", NULL, NULL);
    add_rq(g_p, 3, "cpus=6:compact", NULL, NULL);
    /* scatter takes 2 cpus per group: 2 + 2 + 2 stay free */
    ready(g_p, 1, 1, 0, 0, 0);
    cr_assert_str_eq(run(g_p), "1/1.0/0");
    /* 6 cpus fit in 2 groups of 4 at best, here only in 3: the strict one waits and
     * reserves the worker, so the non-strict one of a newer job waits too */
    ready(g_p, 2, 2, 0, 0, 0);
    ready(g_p, 3, 3, 0, 0, 0);
    cr_assert_str_eq(run(g_p), "");
    cr_assert_eq(hq_place_worker_free(g_p, 1, "cpus"), 6 * ONE);
    /* once free, the strict one takes 4 + 2 and the other the remaining 2 + 4 */
    release(g_p, 1, 1, 0, 1, 0);
    cr_assert_str_eq(run(g_p), "1/2.0/0 1/3.0/0");
}

Test(place, multi_node_task_takes_whole_idle_workers_of_one_group)
{
    add_numa_worker(g_p, 1, 1, 2, "a", 4, 0);
    add_numa_worker(g_p, 2, 1, 2, "b", 4, 0);
    add_numa_worker(g_p, 3, 1, 2, "b", 4, 0);
    add_numa_worker(g_p, 4, 1, 2, "b", 4, 0);
    add_rq(g_p, 1, "nodes=2", NULL, NULL);
    add_rq(g_p, 2, "cpus=1", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 0);
    ready(g_p, 2, 2, 0, 0, 9);
    /* group a has one worker only; group b gives its two lowest ids, root first */
    cr_assert_str_eq(run(g_p), "2/1.0/0 3/1.0/0 1/2.0/0 4/2.1/0 1/2.2/0 4/2.3/0");
    hq_place_winfo_t info;
    cr_assert_eq(hq_place_worker_info(g_p, 3, &info), 0);
    cr_assert_eq(info.held, 1);
    /* the root's release frees both nodes */
    release(g_p, 2, 1, 0, 1, 0);
    cr_assert_str_eq(run(g_p), "2/2.4/0 3/2.5/0 2/2.6/0 3/2.7/0");
}

Test(place, multi_node_task_is_not_starved_by_a_stream_of_small_tasks)
{
    add_numa_worker(g_p, 1, 1, 2, "g", 2, 0);
    add_numa_worker(g_p, 2, 1, 2, "g", 2, 0);
    add_numa_worker(g_p, 3, 1, 2, "g", 2, 0);
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    add_rq(g_p, 2, "nodes=2", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 5); /* every worker busy */
    cr_assert_str_eq(run(g_p), "1/1.0/0 2/1.1/0 3/1.2/0 1/1.3/0 2/1.4/0 3/1.5/0");
    ready(g_p, 2, 2, 0, 0, 0);  /* the multi-node task */
    ready(g_p, 3, 1, 0, 0, 99); /* then a stream of small tasks of a newer job */
    /* tasks end one by one; the least busy workers of the group are reserved for
     * the multi-node task and take no new small task */
    release(g_p, 1, 1, 0, 1, 0);
    cr_assert_str_eq(run(g_p), "");
    release(g_p, 3, 1, 2, 1, 0);
    cr_assert_str_eq(run(g_p), "");
    release(g_p, 2, 1, 1, 1, 0);
    release(g_p, 1, 1, 3, 1, 0);
    /* worker 1 is idle, 2 drains; 3 is not reserved and takes a small task */
    cr_assert_str_eq(run(g_p), "3/3.0/0");
    release(g_p, 2, 1, 4, 1, 0);
    cr_assert_str_eq(run(g_p), "1/2.0/0 2/2.0/0");
}

Test(place, min_utilization_holds_back_work_that_would_underuse_a_worker)
{
    add_numa_worker(g_p, 1, 1, 4, "default", 8, 0.5);
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 0);
    cr_assert_str_eq(run(g_p), "");
    cr_assert_eq(hq_place_ready_count(g_p), 1);
    cr_assert_eq(hq_place_worker_free(g_p, 1, "cpus"), 4 * ONE);
    ready(g_p, 1, 1, 0, 1, 1);
    cr_assert_str_eq(run(g_p), "1/1.0/0 1/1.1/0");
    cr_assert_eq(hq_place_ready_count(g_p), 0);
}

Test(place, tight_keeps_whole_groups_free_for_strict_requests)
{
    add_numa_worker(g_p, 1, 3, 4, "default", 10, 0);
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    add_rq(g_p, 2, "cpus=6:tight", NULL, NULL);
    add_rq(g_p, 3, "cpus=4:compact!", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 0); /* group 0: 3 free */
    ready(g_p, 2, 2, 0, 0, 0); /* tight: 3 from group 0, 3 from group 1 */
    ready(g_p, 3, 3, 0, 0, 0); /* a whole group (2) is still free */
    cr_assert_str_eq(run(g_p), "1/1.0/0 1/2.0/0 1/3.0/0");
}
