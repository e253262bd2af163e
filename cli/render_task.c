/* Task renderings: `task list` and `task info` (cli/REFERENCE.md §5, §6). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hq_duration.h"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_render.h"
#include "hq_table.h"
#include "hq_util.h"
#include "render.h"

char *hq_cli_cell_hosts(const json_t *task); /* render_job.c */

static const char *s_str(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

static long long s_int(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static char *s_makespan(const json_t *task)
{
    const char *started = json_string_value(json_object_get(task, "started_at"));
    if (!started)
        return hq_strdup("");
    return hq_duration_format_makespan(
        hq_cli_span_ns(started, json_string_value(json_object_get(task, "finished_at"))));
}

/* The error text, cut to limit bytes + "..." unless verbose; *cut tells. */
static char *s_error(const json_t *task, size_t limit, bool verbose, bool *cut)
{
    const char *e = s_str(task, "error");
    if (!verbose && strlen(e) >= limit) {
        *cut = true;
        return hq_asprintf("%.*s...", (int)limit, e);
    }
    return hq_strdup(e);
}

typedef struct s_job_tasks {
    long long id;      /* job id */
    const json_t *arr; /* its tasks */
} s_job_tasks_t;

static int s_job_cmp(const void *a, const void *b)
{
    long long x = ((const s_job_tasks_t *)a)->id, y = ((const s_job_tasks_t *)b)->id;
    return x < y ? -1 : x > y;
}

static int s_task_cmp(const void *a, const void *b)
{
    long long x = s_int(*(const json_t *const *)a, "id");
    long long y = s_int(*(const json_t *const *)b, "id");
    return x < y ? -1 : x > y;
}

void hq_cli_render_task_list(const hq_global_t *g, const json_t *result, bool verbose)
{
    if (g->output == HQ_OUTPUT_JSON) {
        hq_cli_print_json(result);
        return;
    }
    if (g->output == HQ_OUTPUT_QUIET)
        return;
    bool colors = hq_output_colors(g);
    size_t njobs = json_object_size(result), k = 0;
    s_job_tasks_t *jobs = hq_calloc(njobs ? njobs : 1, sizeof *jobs);
    const char *key;
    const json_t *arr;
    json_object_foreach((json_t *)result, key, arr)
    {
        jobs[k].id = strtoll(key, NULL, 10);
        jobs[k].arr = arr;
        k++;
    }
    qsort(jobs, k, sizeof *jobs, s_job_cmp);
    bool with_job = k > 1;
    static const char *const titles_all[] = {"Job ID", "Task ID",  "State",
                                             "Worker", "Makespan", "Error"};
    hq_table_t *t =
        hq_table_new_horizontal(with_job ? 6 : 5, with_job ? titles_all : titles_all + 1);
    hq_table_right_justify(t, 0);
    if (with_job)
        hq_table_right_justify(t, 1);
    bool cut = false;
    for (size_t j = 0; j < k; j++) {
        size_t n = json_array_size(jobs[j].arr);
        const json_t **tasks = hq_calloc(n ? n : 1, sizeof *tasks);
        for (size_t i = 0; i < n; i++)
            tasks[i] = json_array_get(jobs[j].arr, i);
        qsort(tasks, n, sizeof *tasks, s_task_cmp);
        for (size_t i = 0; i < n; i++) {
            char *jid = hq_asprintf("%lld", jobs[j].id);
            char *tid = hq_asprintf("%lld", s_int(tasks[i], "id"));
            char *state =
                hq_color_state(hq_cli_task_state(s_str(tasks[i], "state")), "task", colors);
            char *hosts = hq_cli_cell_hosts(tasks[i]);
            char *makespan = s_makespan(tasks[i]);
            char *error_text = s_error(tasks[i], 16, verbose, &cut);
            char *error = hq_color(error_text, "31", colors && *error_text);
            const char *cells[6] = {jid, tid, state, hosts, makespan, error};
            hq_table_add_row(t, with_job ? cells : cells + 1);
            free(jid);
            free(tid);
            free(state);
            free(hosts);
            free(makespan);
            free(error_text);
            free(error);
        }
        free(tasks);
    }
    hq_table_print(t, stdout, colors);
    hq_output_mark_printed();
    hq_table_destroy(&t);
    free(jobs);
    if (cut)
        hq_info("An error message was truncated. Use -v to display the full error.");
}

static char *s_local_time(const json_t *task, const char *key)
{
    uint64_t ns;
    if (hq_time_parse_rfc3339(json_string_value(json_object_get(task, key)), &ns) != 0)
        return hq_strdup("");
    return hq_time_local(ns);
}

static char *s_path_cell(const json_t *task, const char *key)
{
    const json_t *v = json_object_get(task, key);
    if (!v)
        return hq_strdup("");
    return hq_cli_cell_stdio(v);
}

static char *s_deps(const json_t *task)
{
    hq_buf_t out = {0};
    hq_buf_append(&out, "", 0);
    size_t i;
    const json_t *d;
    json_array_foreach(json_object_get(task, "_deps"), i, d)
    {
        hq_buf_printf(&out, "%s%lld", i ? "," : "", (long long)json_integer_value(d));
    }
    return out.data;
}

static void s_task_table(const json_t *task, bool colors, bool verbose, bool *cut)
{
    const json_t *def = json_object_get(task, "_def");
    const json_t *program = json_object_get(def, "program");
    char *id = hq_asprintf("%lld", s_int(task, "id"));
    char *state = hq_color_state(hq_cli_task_state(s_str(task, "state")), "task", colors);
    char *cmd = hq_cli_cell_command(program);
    char *env = hq_cli_cell_env(program);
    char *hosts = hq_cli_cell_hosts(task);
    char *start = s_local_time(task, "started_at");
    char *end = s_local_time(task, "finished_at");
    char *makespan = s_makespan(task);
    char *out = s_path_cell(task, "stdout");
    char *err = s_path_cell(task, "stderr");
    char *tl = hq_cli_cell_duration(json_object_get(def, "time_limit"));
    char *res = hq_cli_cell_resources(def);
    char *prio = hq_asprintf("%lld", s_int(def, "priority"));
    char *pin = hq_cli_cell_pin(def);
    char *cl = hq_cli_cell_crash_limit(def);
    char *deps = s_deps(task);
    char *error_text = s_error(task, 237, verbose, cut);
    char *error = hq_color(error_text, "31", colors && *error_text);

    hq_table_t *t = hq_table_new_vertical();
    hq_table_add_kv(t, "Task ID", id);
    hq_table_add_kv(t, "State", state);
    hq_table_add_kv(t, "Command", cmd);
    hq_table_add_kv(t, "Environment", env);
    hq_table_add_kv(t, "Worker", hosts);
    hq_table_add_kv(t, "Start", start);
    hq_table_add_kv(t, "End", end);
    hq_table_add_kv(t, "Makespan", makespan);
    hq_table_add_kv(t, "Workdir", s_str(task, "cwd"));
    hq_table_add_kv(t, "Stdout", out);
    hq_table_add_kv(t, "Stderr", err);
    hq_table_add_kv(t, "Time limit", tl);
    hq_table_add_kv(t, "Resources", res);
    hq_table_add_kv(t, "Priority", prio);
    hq_table_add_kv(t, "Pin", pin);
    hq_table_add_kv(t, "Task dir", json_is_true(json_object_get(def, "task_dir")) ? "yes" : "no");
    hq_table_add_kv(t, "Crash limit", cl);
    hq_table_add_kv(t, "Dependencies", deps);
    hq_table_add_kv(t, "Error", error);
    hq_table_print(t, stdout, colors);
    hq_table_destroy(&t);
    char *all[] = {id,  state, cmd, env,  hosts, start, end,  makespan,   out,
                   err, tl,    res, prio, pin,   cl,    deps, error_text, error};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
}

void hq_cli_render_task_info(const hq_global_t *g, const json_t *tasks, bool verbose)
{
    if (g->output == HQ_OUTPUT_JSON) {
        hq_cli_print_json(tasks);
        return;
    }
    if (g->output == HQ_OUTPUT_QUIET)
        return;
    bool colors = hq_output_colors(g);
    bool cut = false;
    size_t i;
    const json_t *t;
    json_array_foreach(tasks, i, t)
    {
        s_task_table(t, colors, verbose, &cut);
    }
    if (json_array_size(tasks) > 0)
        hq_output_mark_printed();
    if (cut)
        hq_info("An error message(s) was truncated. Use -v to display the full error(s).");
}
