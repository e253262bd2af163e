/* Tests for the order a placement round follows (broker/sched/place.h): priority,
 * then job, then task id; packing onto the workers with the fewest free cpus; a
 * blocked task reserving a worker (no starvation) unless it fits nowhere. */
#include "place_fixture.h"

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

Test(place, packs_onto_the_worker_with_fewest_free_cpus_then_lower_id)
{
    add_worker(g_p, 2, (wspec_t){.cpus = 8, .credit = 10});
    add_worker(g_p, 1, (wspec_t){.cpus = 4, .credit = 10});
    add_rq(g_p, 1, "cpus=2", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 4);
    /* w1 4 free -> 2 -> 0 (full), then w2 8 -> 6 -> 4 */
    cr_assert_str_eq(run(g_p), "1/1.0/0 1/1.1/0 2/1.2/0 2/1.3/0 2/1.4/0");
}

Test(place, one_cpu_tasks_fill_a_worker_before_the_next_is_used)
{
    for (uint32_t id = 1; id <= 8; id++)
        add_worker(g_p, id, (wspec_t){.cpus = 4, .credit = 100});
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    /* eight jobs of one task each, submitted one after another */
    for (uint32_t job = 1; job <= 8; job++) {
        ready(g_p, job, 1, 0, 0, 0);
        run(g_p);
    }
    hq_place_winfo_t wi;
    for (uint32_t id = 1; id <= 8; id++) {
        cr_assert_eq(hq_place_worker_info(g_p, id, &wi), 0);
        cr_assert_eq(wi.held, id <= 2 ? 4u : 0u, "worker %u holds %u", id, wi.held);
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

Test(place, bigger_requests_of_a_job_go_first_and_smaller_ones_fill_the_gaps)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 8, .credit = 100});
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    add_rq(g_p, 2, "cpus=3", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 9);
    ready(g_p, 1, 2, 0, 10, 12);
    /* 3 + 3, then two 1-cpu tasks in the gap; the third 3-cpu task waits */
    cr_assert_str_eq(run(g_p), "1/1.10/0 1/1.11/0 1/1.0/0 1/1.1/0");
    /* a 1-cpu task ends: the job's own small tasks may take it (no reservation
     * against them), a newer job gets nothing while the 3-cpu task is blocked */
    ready(g_p, 2, 1, 0, 0, 0);
    release(g_p, 1, 1, 0, 1, 0);
    cr_assert_str_eq(run(g_p), "1/1.2/0");
}
