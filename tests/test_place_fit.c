/* Tests for what fits where (broker/sched/place.h): variants in order, sum and
 * fractional amounts, a resource named twice, `all`, label groups, missing
 * resources, time requests, and multi-node variants falling back to a single-node
 * one. */
#include "place_fixture.h"

TestSuite(place, .init = setup, .fini = teardown);

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

Test(place, a_resource_named_twice_in_a_variant_counts_once_with_the_amounts_added)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 4, .credit = 10});
    add_rq(g_p, 1, "cpus=1 cpus=1", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 2);
    cr_assert_str_eq(run(g_p), "1/1.0/0 1/1.1/0");
    cr_assert_eq(hq_place_worker_free(g_p, 1, "cpus"), 0);
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
