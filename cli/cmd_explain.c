/* `hq task explain <job|last> <TASK_ID>`: why a task can or cannot run on each live
 * worker (cli/REFERENCE.md §5): two lines, then one table row per variant of each worker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hq_output.h"
#include "hq_table.h"
#include "hq_util.h"

static void s_print(const hq_cli_t *c, const json_t *res)
{
    const json_t *tid = json_object_get(res, "task_id");
    const json_t *ex = json_object_get(res, "explanation");
    char *id =
        hq_asprintf("%lld@%lld", (long long)json_integer_value(json_object_get(tid, "job_id")),
                    (long long)json_integer_value(json_object_get(tid, "job_task_id")));
    long long n = json_integer_value(json_object_get(ex, "n_task_deps"));
    long long w = json_integer_value(json_object_get(ex, "n_waiting_deps"));
    if (n == 0)
        printf("Task %s is ready to run because it has no dependencies.\n", id);
    else if (w == 0)
        printf("Task %s is ready to run because its all %lld dependencies are finished.\n", id, n);
    else
        printf("Task %s is not ready to run, because %lld/%lld dependencies are not finished.\n",
               id, w, n);
    const json_t *workers = json_object_get(ex, "workers");
    size_t i;
    const json_t *wk;
    uint32_t n_ok = 0;
    char *ids = hq_strdup("");
    long long run_start = -1, run_end = -1; /* merged range list, workers ascend */
    json_array_foreach(workers, i, wk)
    {
        if (json_integer_value(json_object_get(wk, "n_enabled_variants")) <= 0)
            continue;
        long long wid = json_integer_value(json_object_get(wk, "worker_id"));
        n_ok++;
        if (run_start >= 0 && wid == run_end + 1) {
            run_end = wid;
            continue;
        }
        if (run_start >= 0) {
            char *next =
                run_end > run_start
                    ? hq_asprintf("%s%s%lld-%lld", ids, *ids ? "," : "", run_start, run_end)
                    : hq_asprintf("%s%s%lld", ids, *ids ? "," : "", run_start);
            free(ids);
            ids = next;
        }
        run_start = run_end = wid;
    }
    if (run_start >= 0) {
        char *next = run_end > run_start
                         ? hq_asprintf("%s%s%lld-%lld", ids, *ids ? "," : "", run_start, run_end)
                         : hq_asprintf("%s%s%lld", ids, *ids ? "," : "", run_start);
        free(ids);
        ids = next;
    }
    if (n_ok == 0)
        printf("There is no worker where the task can run.\n");
    else
        printf("The task can run on %u worker%s: %s\n", n_ok, n_ok == 1 ? "" : "s", ids);
    free(ids);
    /* why a worker that could run the waiting task does not take it now */
    json_array_foreach(json_object_get(ex, "waits"), i, wk)
    {
        long long wid = json_integer_value(json_object_get(wk, "worker_id"));
        const char *why = json_string_value(json_object_get(wk, "reason"));
        if (why && strcmp(why, "reservation") == 0) {
            printf("Worker %lld is reserved for a waiting task of job %lld.\n", wid,
                   (long long)json_integer_value(json_object_get(wk, "job")));
        } else if (why && strcmp(why, "min_utilization") == 0) {
            double mu = json_number_value(json_object_get(wk, "min_utilization"));
            printf("Worker %lld starts tasks only together with others that keep at least %g %% "
                   "of its cpus busy (--min-utilization %g).\n",
                   wid, mu * 100, mu);
        }
    }
    if (json_array_size(workers) > 0) {
        /* One row per variant, its checks stacked in the cells; the worker's id and
         * whether it can run the task only on its first row. */
        static const char *const titles[] = {"Worker Id", "Runnable", "Variant",
                                             "Type",      "Provides", "Request"};
        hq_table_t *t = hq_table_new_horizontal(6, titles);
        for (int k = 0; k < 6; k++)
            hq_table_plain_title(t, k);
        json_array_foreach(workers, i, wk)
        {
            const json_t *vars = json_object_get(wk, "variants");
            size_t n_vars = json_array_size(vars);
            long long n_en = json_integer_value(json_object_get(wk, "n_enabled_variants"));
            char *wid = hq_asprintf(
                "%lld", (long long)json_integer_value(json_object_get(wk, "worker_id")));
            char *runnable = n_en <= 0    ? hq_strdup("No")
                             : n_vars > 1 ? hq_asprintf("Yes (%lld/%zu)", n_en, n_vars)
                                          : hq_strdup("Yes");
            size_t v;
            const json_t *var;
            json_array_foreach(vars, v, var)
            {
                char *vs = hq_asprintf("%zu", v);
                hq_buf_t col[3] = {{0}, {0}, {0}};
                static const char *const keys[3] = {"kind", "provides", "request"};
                size_t k;
                const json_t *ch;
                json_array_foreach(json_object_get(var, "checks"), k, ch)
                {
                    for (int x = 0; x < 3; x++) {
                        const char *val = json_string_value(json_object_get(ch, keys[x]));
                        hq_buf_printf(&col[x], "%s%s", k ? "\n" : "", val ? val : "");
                    }
                }
                const char *cells[6] = {v == 0 ? wid : "",
                                        v == 0 ? runnable : "",
                                        vs,
                                        col[0].data ? col[0].data : "",
                                        col[1].data ? col[1].data : "",
                                        col[2].data ? col[2].data : ""};
                hq_table_add_row(t, cells);
                for (int x = 0; x < 3; x++)
                    hq_buf_free(&col[x]);
                free(vs);
            }
            free(runnable);
            free(wid);
        }
        hq_table_print(t, stdout, hq_output_colors(&c->g));
        hq_table_destroy(&t);
    }
    hq_output_mark_printed();
    free(id);
}

int hq_cmd_task_explain(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "task explain", argc, argv);
    if (rc >= 0)
        return rc;
    hq_query_t q;
    memset(&q, 0, sizeof q);
    hq_err_t err;
    const char *job = hq_args_pos(c.args, 0);
    const char *task = hq_args_pos(c.args, 1);
    if (hq_selector_parse(job, false, &q.sel, &err) != 0 ||
        (q.sel.kind == HQ_SEL_IDS && hq_rangelist_count(&q.sel.ids) != 1)) {
        rc = hq_cli_invalid_pos("JOB_SELECTOR", job, "invalid digit found in string");
        goto out;
    }
    char *end = NULL;
    unsigned long tid = strtoul(task, &end, 10);
    if (!*task || *end || tid > UINT32_MAX) {
        rc = hq_cli_invalid_pos("TASK_ID", task, "invalid digit found in string");
        goto out;
    }
    q.tasks.n = 1;
    q.tasks.ranges = hq_calloc(1, sizeof *q.tasks.ranges);
    q.tasks.ranges[0] = (hq_range_t){.start = (uint32_t)tid, .end = (uint32_t)tid, .step = 1};
    json_t *root = NULL;
    rc = hq_cli_query(&c, HQ_MSG_TASK_EXPLAIN, &q, 0, &root, NULL);
    if (rc == 0) {
        const json_t *result = json_object_get(root, "result");
        if (c.g.output == HQ_OUTPUT_JSON)
            hq_cli_print_json(result);
        else if (c.g.output == HQ_OUTPUT_CLI)
            s_print(&c, result);
        hq_output_finish(&c.g);
    }
    json_decref(root);
out:
    hq_selector_clear(&q.sel);
    hq_rangelist_clear(&q.tasks);
    hq_cli_end(&c);
    return rc;
}
