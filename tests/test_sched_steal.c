/* Tests for work stealing (broker/sched/steal.h): with the prefetch gate on, only
 * jobs measured short are prefetched; prefetched tasks whose time request outlives
 * their worker are taken back; an idle worker takes back the newest half of the
 * longest prefetch queue; a task being taken back is never taken twice, and the
 * worker's answer (a release) or its start ends the retraction. */
#include "place_fixture.h"
#include "sched/steal.h"

TestSuite(steal, .init = setup, .fini = teardown);

static hq_sched_slots_t g_ret;
static char g_ret_text[4096];

/* Retractions of a steal pass at now, as "worker/job.task ..." */
static const char *steal_at(uint64_t now)
{
    free(g_ret.slots);
    g_ret = (hq_sched_slots_t){0};
    hq_steal_run(g_p, now, &g_ret);
    size_t len = 0;
    g_ret_text[0] = '\0';
    for (uint32_t i = 0; i < g_ret.n && len < sizeof g_ret_text - 64; i++)
        len += (size_t)snprintf(g_ret_text + len, sizeof g_ret_text - len, "%s%u/%u.%u",
                                i ? " " : "", g_ret.slots[i].worker_id, g_ret.slots[i].job_id,
                                g_ret.slots[i].task_id);
    return g_ret_text;
}

static uint32_t prefetched(uint32_t worker)
{
    hq_place_winfo_t info;
    cr_assert_eq(hq_place_worker_info(g_p, worker, &info), 0);
    return info.prefetched;
}

Test(steal, with_the_gate_on_only_jobs_measured_short_are_prefetched)
{
    hq_steal_gate(g_p, true);
    add_worker(g_p, 1, (wspec_t){.cpus = 1, .credit = 8, .prefetch = 8});
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 3);
    cr_assert_str_eq(run(g_p), "1/1.0/0");
    cr_assert_eq(g_out.slots[0].prefetch, 0);
    cr_assert_eq(prefetched(1), 0);
    hq_steal_job_short(g_p, 1, true);
    cr_assert_str_eq(run(g_p), "1/1.1/0 1/1.2/0 1/1.3/0");
    cr_assert_eq(g_out.slots[0].prefetch, 1);
    cr_assert_eq(prefetched(1), 3);
    hq_steal_job_short(g_p, 1, false);
    cr_assert(!hq_steal_may_prefetch(g_p, 1));
}

Test(steal, with_the_gate_off_every_job_may_be_prefetched)
{
    cr_assert(hq_steal_may_prefetch(g_p, 7));
    hq_steal_gate(g_p, true);
    cr_assert(!hq_steal_may_prefetch(g_p, 7));
    for (uint32_t j = 20; j > 0; j--)
        hq_steal_job_short(g_p, j, true);
    for (uint32_t j = 1; j <= 20; j++)
        cr_assert(hq_steal_may_prefetch(g_p, j));
    cr_assert(!hq_steal_may_prefetch(g_p, 21));
}

Test(steal, prefetched_tasks_whose_time_request_outlives_the_worker_are_taken_back)
{
    add_worker(g_p, 1,
               (wspec_t){.cpus = 1, .credit = 8, .prefetch = 8, .lifetime_end = NOW + 3 * HOUR});
    add_rq(g_p, 1, "cpus=1 time=2", NULL, NULL);
    add_rq(g_p, 2, "cpus=1", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 1);
    ready(g_p, 2, 2, 0, 0, 0);
    cr_assert_str_eq(run(g_p), "1/1.0/0 1/1.1/0 1/2.0/0");
    cr_assert(hq_steal_needs_tick(g_p));
    cr_assert_str_eq(steal_at(NOW + HOUR / 2), "");
    /* 1.5 h left: the 2 h request of 1.1 no longer fits; 2.0 asks for no time */
    cr_assert_str_eq(steal_at(NOW + 3 * HOUR / 2), "1/1.1");
    cr_assert_str_eq(steal_at(NOW + 2 * HOUR), "", "a task is taken back once");
    /* the worker's answer releases it: it leaves the prefetch queue */
    release(g_p, 1, 1, 1, 1, 0);
    cr_assert_eq(prefetched(1), 1);
}

Test(steal, an_idle_worker_takes_back_the_newest_half_of_the_longest_queue)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 1, .credit = 16, .prefetch = 16});
    add_worker(g_p, 2, (wspec_t){.cpus = 1, .credit = 16, .prefetch = 16});
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 7);
    run(g_p); /* 1.0 and 1.1 run; 1.2 .. 1.7 prefetched, three each */
    cr_assert_eq(prefetched(1) + prefetched(2), 6);
    cr_assert_str_eq(steal_at(NOW), "", "nobody is idle");
    /* worker 2's running task ends and its queue drains: it steals */
    release(g_p, 2, 1, 1, 1, 0);
    cr_assert_eq(prefetched(2), 2);
    release(g_p, 2, 1, 3, 1, 0);
    release(g_p, 2, 1, 5, 1, 0);
    release(g_p, 2, 1, 7, 1, 0);
    cr_assert_eq(prefetched(2), 0);
    cr_assert_str_eq(steal_at(NOW), "1/1.6 1/1.4");
    cr_assert_str_eq(steal_at(NOW), "", "nothing more while a retraction is in flight");
    /* worker 1 gives back 1.6, but had started nothing of 1.4 yet: still in flight */
    release(g_p, 1, 1, 6, 1, 0);
    cr_assert_str_eq(steal_at(NOW), "");
    release(g_p, 1, 1, 4, 1, 0);
    /* nothing in flight: worker 2 (still idle) takes the last waiting task but one */
    cr_assert_str_eq(steal_at(NOW), "1/1.2");
}

Test(steal, a_task_the_idle_worker_could_not_start_now_is_not_taken)
{
    add_worker(g_p, 1, (wspec_t){.cpus = 4, .credit = 16, .prefetch = 16});
    add_worker(g_p, 2, (wspec_t){.cpus = 5, .credit = 16, .prefetch = 0});
    add_rq(g_p, 1, "cpus=4", NULL, NULL);
    add_rq(g_p, 2, "cpus=5", NULL, NULL); /* fits worker 2 only, whatever the packing */
    ready(g_p, 2, 2, 1, 0, 0);
    ready(g_p, 1, 1, 0, 0, 2);
    cr_assert_str_eq(run(g_p), "2/2.0/0 1/1.0/0 1/1.1/0 1/1.2/0");
    cr_assert_eq(prefetched(1), 2);
    /* worker 2 has no cpu free: 1.2 fits its total capacity but would not start */
    cr_assert_str_eq(steal_at(NOW), "");
    release(g_p, 2, 2, 0, 2, 0);
    cr_assert_str_eq(steal_at(NOW), "1/1.2");
}
