/* Tests for placement's state changes (broker/sched/place.h): registering request
 * classes (late, duplicate), cancelling ready tasks (whole jobs, ranges with steps),
 * removing a worker or registering its id again, and resource names first seen
 * after workers registered. */
#include "place_fixture.h"

TestSuite(place, .init = setup, .fini = teardown);

/* ---- classes ---- */

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

Test(place, registering_a_known_worker_id_replaces_it_and_forgets_its_tasks)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 2, .credit = 10});
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 9);
    cr_assert_str_eq(run(g_p), "1/1.0/0 1/1.1/0");
    add_worker(g_p, 1, (wspec_t){.cpus = 3, .credit = 10});
    hq_place_winfo_t info;
    cr_assert_eq(hq_place_worker_info(g_p, 1, &info), 0);
    cr_assert_eq(info.held, 0);
    cr_assert_eq(hq_place_worker_free(g_p, 1, "cpus"), 3 * ONE);
    cr_assert_str_eq(run(g_p), "1/1.2/0 1/1.3/0 1/1.4/0");
}

Test(place, resources_first_named_after_a_worker_registered_are_missing_on_it)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 2, .mem = 4, .credit = 10});
    /* more new names than the name table holds: the worker's arrays grow */
    add_rq(g_p, 1, "cpus=1 r1=1 r2=1 r3=1", "r4=1 r5=1 r6=1 r7=1", "r8=1 r9=1 mem=1");
    add_rq(g_p, 2, "cpus=1 mem=1", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 0);
    ready(g_p, 2, 2, 0, 0, 0);
    /* job 1 fits nowhere, so it reserves nothing and job 2 is placed */
    cr_assert_str_eq(run(g_p), "1/2.0/0");
    cr_assert_eq(hq_place_worker_free(g_p, 1, "cpus"), 1 * ONE);
    cr_assert_eq(hq_place_worker_free(g_p, 1, "mem"), 3 * ONE);
    cr_assert_eq(hq_place_worker_free(g_p, 1, "r9"), -1);
    cr_assert_eq(hq_place_ready_count(g_p), 1);
}
