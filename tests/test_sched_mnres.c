/* Tests for the report of workers reserved for a multi-node task (broker/sched/mnres.h):
 * a round that reserves tells which workers, a round that does not reach the blocked
 * task leaves the answer unchanged, and no waiting multi-node task means none. */
#include "place_fixture.h"
#include "sched/mnres.h"

TestSuite(mnres, .init = setup, .fini = teardown);

static char g_ids[256];

/* The answer after a round: "unchanged" or the ids ("" for none). */
static const char *reserved(void)
{
    uint32_t *ids, n;
    if (!hq_mnres_after_round(g_p, &ids, &n))
        return "unchanged";
    size_t len = 0;
    g_ids[0] = '\0';
    for (uint32_t i = 0; i < n; i++)
        len += (size_t)snprintf(g_ids + len, sizeof g_ids - len, "%s%u", i ? " " : "", ids[i]);
    free(ids);
    return g_ids;
}

Test(mnres, a_blocked_multi_node_task_reserves_workers_until_it_runs)
{
    for (uint32_t id = 1; id <= 3; id++)
        add_worker(g_p, id, (wspec_t){.cpus = 1, .credit = 1, .prefetch = 0});
    add_rq(g_p, 1, "cpus=1", NULL, NULL);
    add_rq(g_p, 2, "nodes=3", NULL, NULL);
    ready(g_p, 1, 1, 0, 0, 0);
    cr_assert_str_eq(run(g_p), "1/1.0/0");
    cr_assert_str_eq(reserved(), "");
    ready(g_p, 2, 2, 0, 0, 0);
    cr_assert_str_eq(run(g_p), "");
    cr_assert_str_eq(reserved(), "1 2 3");
    /* every worker closed: the round stops before the task, the answer stays */
    hq_place_credit(g_p, 2, 0);
    hq_place_credit(g_p, 3, 0);
    cr_assert_str_eq(run(g_p), "");
    cr_assert_str_eq(reserved(), "unchanged");
    hq_place_credit(g_p, 2, 1);
    hq_place_credit(g_p, 3, 1);
    release(g_p, 1, 1, 0, 1, 0);
    cr_assert_str_eq(run(g_p), "1/2.0/0 2/2.0/0 3/2.0/0");
    cr_assert_str_eq(reserved(), "");
}
