/* Tests for resources with several groups (NUMA) and whole-worker requests
 * (broker/sched/place.h): `all` and the strict compact!/tight! policies on groups,
 * tight keeping groups free, multi-node tasks on whole idle workers of one group
 * (not starved by small tasks), and a worker's minimal utilization. */
#include "place_fixture.h"

TestSuite(place, .init = setup, .fini = teardown);

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

Test(place, all_on_a_grouped_resource_needs_every_group_completely_free)
{
    add_numa_worker(g_p, 1, 2, 2, "default", 10, 0);
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    add_rq(g_p, 2, "cpus=all", NULL, NULL);
    add_rq(g_p, 3, "cpus=2:compact!", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 0);
    cr_assert_str_eq(run(g_p), "1/1.0/0");
    ready(g_p, 2, 2, 0, 0, 0);
    cr_assert_str_eq(run(g_p), "");
    release(g_p, 1, 1, 0, 1, 0);
    cr_assert_str_eq(run(g_p), "1/2.0/0");
    cr_assert_eq(hq_place_worker_free(g_p, 1, "cpus"), 0);
    /* its release gives every group back whole: two strict tasks fit, one per group */
    release(g_p, 1, 2, 0, 2, 0);
    ready(g_p, 3, 3, 0, 0, 1);
    cr_assert_str_eq(run(g_p), "1/3.0/0 1/3.1/0");
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
    cr_assert_str_eq(run(g_p), "2/1.0/0 3/1.0/0 1/2.0/0 1/2.1/0 4/2.2/0 4/2.3/0");
    hq_place_winfo_t info;
    cr_assert_eq(hq_place_worker_info(g_p, 3, &info), 0);
    cr_assert_eq(info.held, 1);
    /* the root's release frees both nodes */
    release(g_p, 2, 1, 0, 1, 0);
    cr_assert_str_eq(run(g_p), "2/2.4/0 2/2.5/0 3/2.6/0 3/2.7/0");
}

Test(place, multi_node_task_is_not_starved_by_a_stream_of_small_tasks)
{
    add_numa_worker(g_p, 1, 1, 2, "g", 2, 0);
    add_numa_worker(g_p, 2, 1, 2, "g", 2, 0);
    add_numa_worker(g_p, 3, 1, 2, "g", 2, 0);
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    add_rq(g_p, 2, "nodes=2", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 5); /* every worker busy */
    cr_assert_str_eq(run(g_p), "1/1.0/0 1/1.1/0 2/1.2/0 2/1.3/0 3/1.4/0 3/1.5/0");
    ready(g_p, 2, 2, 0, 0, 0);  /* the multi-node task */
    ready(g_p, 3, 1, 0, 0, 99); /* then a stream of small tasks of a newer job */
    /* tasks end one by one; the least busy workers of the group are reserved for
     * the multi-node task and take no new small task */
    release(g_p, 1, 1, 0, 1, 0);
    cr_assert_str_eq(run(g_p), "");
    release(g_p, 3, 1, 4, 1, 0);
    cr_assert_str_eq(run(g_p), "");
    release(g_p, 2, 1, 2, 1, 0);
    release(g_p, 1, 1, 1, 1, 0);
    /* worker 1 is idle, 2 drains; 3 is not reserved and takes a small task */
    cr_assert_str_eq(run(g_p), "3/3.0/0");
    release(g_p, 2, 1, 3, 1, 0);
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

Test(place, compact_over_several_groups_is_modelled_balanced)
{
    add_numa_worker(g_p, 1, 3, 4, "default", 10, 0);
    add_rq(g_p, 1, "cpus=6:compact", NULL, NULL);
    add_rq(g_p, 2, "cpus=6:compact!", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 0);
    cr_assert_str_eq(run(g_p), "1/1.0/0");
    /* 3 + 3 taken: groups keep 1, 1 and 4 free (not 0, 2, 4), so 6 strict cpus
     * (two groups at least) do not fit now although 6 cpus are free */
    ready(g_p, 2, 2, 0, 0, 0);
    cr_assert_str_eq(run(g_p), "");
    cr_assert_eq(hq_place_worker_free(g_p, 1, "cpus"), 6 * ONE);
    release(g_p, 1, 1, 0, 1, 0);
    cr_assert_str_eq(run(g_p), "1/2.0/0");
}

/* ---- min utilization: the mix across jobs (12 cpus, minimum 1.0) ---- */

static void min_util_setup(uint32_t job1_tasks, uint32_t job2_tasks, const char *job2_rq)
{
    add_numa_worker(g_p, 1, 1, 12, "default", 100, 1.0);
    add_rq(g_p, 1, "cpus=3 weight=2", NULL, NULL);
    add_rq(g_p, 2, job2_rq, NULL, NULL);
    ready(g_p, 1, 1, 0, 0, job1_tasks - 1);
    ready(g_p, 2, 2, 0, 0, job2_tasks - 1);
}

Test(place, min_utilization_runs_the_whole_worker_task_when_small_ones_cannot_fill_it)
{
    min_util_setup(3, 1, "cpus=all");
    cr_assert_str_eq(run(g_p), "1/2.0/0");
}

Test(place, min_utilization_prefers_four_heavier_tasks_that_fill_the_worker)
{
    min_util_setup(4, 1, "cpus=all");
    cr_assert_str_eq(run(g_p), "1/1.0/0 1/1.1/0 1/1.2/0 1/1.3/0");
}

Test(place, min_utilization_mixes_jobs_to_fill_the_worker_by_weight)
{
    min_util_setup(3, 3, "cpus=6");
    cr_assert_str_eq(run(g_p), "1/1.0/0 1/1.1/0 1/2.0/0");
    cr_assert_eq(hq_place_worker_free(g_p, 1, "cpus"), 0);
}

Test(place, min_utilization_places_nothing_that_cannot_reach_the_share)
{
    min_util_setup(3, 1, "cpus=5");
    cr_assert_str_eq(run(g_p), "");
    cr_assert_eq(hq_place_ready_count(g_p), 4);
}
