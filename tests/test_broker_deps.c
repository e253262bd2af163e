/* Unit tests of task dependencies in the job table: graph checks (duplicates, unknown
 * and self dependencies, cycles, dependencies on earlier submits) and the nodes
 * that count unfinished dependencies. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobs.h"

static hq_job_t *s_job(uint32_t id)
{
    hq_job_t *j = calloc(1, sizeof *j);
    j->id = id;
    return j;
}

/* g[i] = task id ids[i] depending on deps[i] (-1 terminated lists). */
static hq_graph_task_t *s_graph(uint32_t n, const uint32_t *ids, const int deps[][4])
{
    hq_graph_task_t *g = calloc(n, sizeof *g);
    for (uint32_t i = 0; i < n; i++) {
        g[i].id = ids[i];
        g[i].deps = calloc(4, sizeof(uint32_t));
        for (int k = 0; k < 4 && deps[i][k] >= 0; k++)
            g[i].deps[g[i].n_deps++] = (uint32_t)deps[i][k];
    }
    return g;
}

static void s_graph_free(hq_graph_task_t *g, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        free(g[i].deps);
    free(g);
}

Test(job_graph, accepts_a_diamond_and_counts_unfinished_dependencies)
{
    hq_job_t *j = s_job(1);
    uint32_t ids[] = {3, 0, 1, 2};
    const int deps[][4] = {{1, 2, -1}, {-1}, {0, -1}, {0, -1}};
    hq_graph_task_t *g = s_graph(4, ids, deps);
    hq_err_t err;
    cr_assert_eq(hq_job_check_graph(j, g, 4, &err), 0, "%s", err.text);
    hq_job_add_graph(j, g, 4, 0);
    cr_assert_eq(j->n_tasks, 4);
    for (uint32_t i = 0; i < 4; i++)
        cr_assert_eq(j->tasks[i].id, i, "tasks stay sorted by id");
    cr_assert_eq(j->counts[HQ_TS_WAITING], 4);
    cr_assert_null(hq_job_dnode(j, 7));
    hq_dnode_t *n3 = hq_job_dnode(j, 3);
    cr_assert_not_null(n3);
    cr_assert_eq(n3->n_deps, 2);
    cr_assert_eq(n3->n_wait, 2);
    hq_dnode_t *n0 = hq_job_dnode(j, 0);
    cr_assert_eq(n0->n_deps, 0);
    cr_assert_eq(n0->n_out, 2);
    cr_assert_eq(hq_job_dnode(j, 1)->n_out, 1);
    cr_assert_eq(hq_job_dnode(j, 1)->out[0], 3);
    s_graph_free(g, 4);
    hq_job_destroy(&j);
}

Test(job_graph, refuses_a_duplicate_id_with_the_exact_message)
{
    hq_job_t *j = s_job(1);
    uint32_t ids[] = {1, 2, 1};
    const int deps[][4] = {{-1}, {-1}, {-1}};
    hq_graph_task_t *g = s_graph(3, ids, deps);
    hq_err_t err;
    cr_assert_eq(hq_job_check_graph(j, g, 3, &err), -1);
    cr_assert_str_eq(err.text, "Task 1 is defined more than once.");
    s_graph_free(g, 3);
    hq_job_destroy(&j);
}

Test(job_graph, refuses_unknown_and_self_dependencies)
{
    hq_job_t *j = s_job(1);
    uint32_t ids[] = {1, 2};
    const int unknown[][4] = {{-1}, {9, -1}};
    hq_graph_task_t *g = s_graph(2, ids, unknown);
    hq_err_t err;
    cr_assert_eq(hq_job_check_graph(j, g, 2, &err), -1);
    cr_assert_str_eq(err.text, "Invalid dependency on 9");
    s_graph_free(g, 2);
    const int self[][4] = {{-1}, {2, -1}};
    g = s_graph(2, ids, self);
    cr_assert_eq(hq_job_check_graph(j, g, 2, &err), -1);
    cr_assert_str_eq(err.text, "Invalid dependency on 2");
    s_graph_free(g, 2);
    hq_job_destroy(&j);
}

Test(job_graph, refuses_a_cycle_naming_its_smallest_task)
{
    hq_job_t *j = s_job(1);
    uint32_t ids[] = {0, 5, 6, 7, 8};
    /* 0 is fine; 5 -> 6 -> 7 -> 5 is a cycle; 8 hangs below it */
    const int deps[][4] = {{-1}, {7, 0, -1}, {5, -1}, {6, -1}, {7, -1}};
    hq_graph_task_t *g = s_graph(5, ids, deps);
    hq_err_t err;
    cr_assert_eq(hq_job_check_graph(j, g, 5, &err), -1);
    cr_assert_str_eq(err.text, "Dependency cycle detected: task 5 depends on itself through its "
                               "dependencies");
    s_graph_free(g, 5);
    hq_job_destroy(&j);
}

Test(job_graph, lets_new_tasks_depend_on_tasks_of_an_earlier_submit)
{
    hq_job_t *j = s_job(4);
    uint32_t first_ids[] = {0, 1};
    const int none[][4] = {{-1}, {-1}};
    hq_graph_task_t *g1 = s_graph(2, first_ids, none);
    cr_assert_eq(hq_job_check_graph(j, g1, 2, NULL), 0);
    hq_job_add_graph(j, g1, 2, 0);
    /* task 0 finished, task 1 still waiting */
    j->counts[HQ_TS_WAITING]--;
    j->counts[HQ_TS_FINISHED]++;
    j->tasks[0].state = HQ_TS_FINISHED;
    uint32_t ids[] = {2};
    const int deps[][4] = {{0, 1, -1}};
    hq_graph_task_t *g2 = s_graph(1, ids, deps);
    hq_err_t err;
    cr_assert_eq(hq_job_check_graph(j, g2, 1, &err), 0, "%s", err.text);
    hq_job_add_graph(j, g2, 1, 1);
    cr_assert_eq(hq_job_dnode(j, 2)->n_wait, 1, "only the unfinished dependency counts");
    cr_assert_eq(hq_job_task(j, 2)->def, 1);
    /* ids of an earlier submit cannot be reused */
    cr_assert_eq(hq_job_check_graph(j, g1, 1, &err), -1);
    cr_assert_str_eq(err.text, "Task 0 already exists in job 4.");
    s_graph_free(g1, 2);
    s_graph_free(g2, 1);
    hq_job_destroy(&j);
}

Test(job_graph, checks_and_adds_a_100000_task_chain_quickly)
{
    uint32_t n = 100000;
    hq_graph_task_t *g = calloc(n, sizeof *g);
    uint32_t *deps = calloc(n, sizeof(uint32_t));
    for (uint32_t i = 0; i < n; i++) {
        g[i].id = i;
        if (i > 0) {
            deps[i] = i - 1;
            g[i].deps = &deps[i];
            g[i].n_deps = 1;
        }
    }
    hq_job_t *j = s_job(1);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    cr_assert_eq(hq_job_check_graph(j, g, n, NULL), 0);
    hq_job_add_graph(j, g, n, 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    cr_assert_lt(s, 1.0);
    cr_assert_eq(hq_job_dnode(j, n - 1)->n_wait, 1);
    cr_assert_eq(hq_job_dnode(j, 0)->n_out, 1);
    hq_job_destroy(&j);
    free(g);
    free(deps);
}
