/* Tests for a worker's credit and prefetch (broker/sched/place.h): credit caps the
 * tasks a worker holds, prefetched tasks wait at a worker whose total capacity fits
 * them, start in order on release, and are never overtaken. */
#include "place_fixture.h"

TestSuite(place, .init = setup, .fini = teardown);

/* ---- credit and prefetch ---- */

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
