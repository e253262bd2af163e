/* Job renderings: `job list`, `job info`, `job summary` (cli/REFERENCE.md §5, §6, §7), plus the
 * task-definition cells that `task info` shares. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hq_duration.h"
#include "hq_output.h"
#include "hq_render.h"
#include "hq_resource.h"
#include "hq_table.h"
#include "hq_util.h"
#include "render.h"

#define S_FAILED_SHOWN 5

static const char *s_str(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

static long long s_int(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/* ---- shared cells ---- */

char *hq_cli_wrap(const char *text, size_t width)
{
    hq_buf_t out = {0};
    size_t col = 0;
    const char *p = text;
    hq_buf_append(&out, "", 0);
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        size_t len = strcspn(p, " ");
        if (col > 0 && col + 1 + len > width) {
            hq_buf_append(&out, "\n", 1);
            col = 0;
        } else if (col > 0) {
            hq_buf_append(&out, " ", 1);
            col++;
        }
        while (len > width - col) { /* over-long word: split it */
            size_t take = width - col;
            hq_buf_append(&out, p, take);
            hq_buf_append(&out, "\n", 1);
            p += take;
            len -= take;
            col = 0;
        }
        hq_buf_append(&out, p, len);
        col += len;
        p += len;
    }
    return out.data;
}

char *hq_cli_cell_command(const json_t *program)
{
    hq_buf_t out = {0};
    hq_buf_append(&out, "", 0);
    size_t i;
    const json_t *a;
    json_array_foreach(json_object_get(program, "args"), i, a)
    {
        char *w = hq_cli_wrap(json_string_value(a) ? json_string_value(a) : "", 80);
        hq_buf_printf(&out, "%s%s", i ? "\n" : "", w);
        free(w);
    }
    return out.data;
}

static int s_strcmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *hq_cli_cell_env(const json_t *program)
{
    const json_t *env = json_object_get(program, "env");
    size_t n = json_object_size(env), k = 0;
    const char **keys = hq_calloc(n ? n : 1, sizeof *keys);
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)env, key, v)
    {
        if (strncmp(key, "HQ_", 3) != 0)
            keys[k++] = key;
    }
    qsort(keys, k, sizeof *keys, s_strcmp);
    hq_buf_t out = {0};
    hq_buf_append(&out, "", 0);
    for (size_t i = 0; i < k; i++)
        hq_buf_printf(&out, "%s%s=%s", i ? "\n" : "", keys[i], s_str(env, keys[i]));
    free(keys);
    return out.data;
}

static void s_request_from_json(const json_t *e, hq_rreq_t *r)
{
    static const struct {
        const char *key;
        enum hq_policy policy;
    } policies[] = {
        {"Compact", HQ_POLICY_COMPACT}, {"ForceCompact", HQ_POLICY_FORCE_COMPACT},
        {"Tight", HQ_POLICY_TIGHT},     {"ForceTight", HQ_POLICY_FORCE_TIGHT},
        {"Scatter", HQ_POLICY_SCATTER},
    };
    r->name = hq_strdup(s_str(e, "resource"));
    const json_t *req = json_object_get(e, "request");
    if (json_is_string(req)) {
        r->all = true;
        return;
    }
    for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++) {
        const json_t *amount = json_object_get(req, policies[i].key);
        if (amount) {
            r->policy = policies[i].policy;
            r->amount = (hq_amount_t)json_integer_value(amount);
        }
    }
}

char *hq_cli_cell_resources(const json_t *td)
{
    const json_t *vars = json_object_get(td, "resources");
    size_t n = json_array_size(vars);
    if (n == 0)
        return hq_strdup("");
    hq_rvariant_t *v = hq_calloc(n, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        const json_t *var = json_array_get(vars, i);
        const json_t *entries = json_object_get(var, "resources");
        v[i].n_nodes = (uint32_t)s_int(var, "n_nodes");
        v[i].min_time_ns = hq_cli_seconds_ns(json_object_get(var, "min_time"));
        v[i].weight = json_is_integer(json_object_get(var, "weight"))
                          ? (uint32_t)s_int(var, "weight")
                          : HQ_AMOUNT_ONE;
        v[i].n_entries = (uint32_t)json_array_size(entries);
        v[i].entries = hq_calloc(v[i].n_entries ? v[i].n_entries : 1, sizeof *v[i].entries);
        for (uint32_t j = 0; j < v[i].n_entries; j++)
            s_request_from_json(json_array_get(entries, j), &v[i].entries[j]);
    }
    char *text = hq_rvariants_display(v, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        hq_rvariant_clear(&v[i]);
    free(v);
    return text ? text : hq_strdup("");
}

char *hq_cli_cell_stdio(const json_t *v)
{
    if (!json_is_string(v))
        return hq_strdup("<None>");
    if (strcmp(json_string_value(v), "<pipe>") == 0)
        return hq_strdup("<Stream>");
    return hq_strdup(json_string_value(v));
}

char *hq_cli_cell_pin(const json_t *td)
{
    const char *pin = json_string_value(json_object_get(td, "pin_mode"));
    if (!pin)
        return hq_strdup("none");
    return hq_strdup(strcmp(pin, "openmp") == 0 ? "omp" : pin);
}

char *hq_cli_cell_crash_limit(const json_t *td)
{
    const json_t *cl = json_object_get(td, "crash_limit");
    if (json_is_string(cl))
        return hq_strdup(json_string_value(cl));
    if (json_is_integer(cl))
        return hq_asprintf("%lld", (long long)json_integer_value(cl));
    return hq_strdup("5");
}

char *hq_cli_cell_duration(const json_t *v)
{
    if (!json_is_number(v))
        return hq_strdup("None");
    return hq_duration_format(hq_cli_seconds_ns(v));
}

/* ---- job list ---- */

static char *s_short_name(const char *name)
{
    size_t n = strlen(name);
    if (n <= 50)
        return hq_strdup(name);
    return hq_asprintf("%.24s...%s", name, name + n - 23);
}

void hq_cli_render_job_list(const hq_global_t *g, const json_t *jobs, long long total, bool verbose)
{
    size_t i;
    const json_t *j;
    if (g->output == HQ_OUTPUT_JSON) {
        hq_cli_print_json(jobs);
        return;
    }
    if (g->output == HQ_OUTPUT_QUIET) {
        json_array_foreach(jobs, i, j)
        {
            printf("%lld %s\n", s_int(j, "id"), hq_cli_job_state(j));
        }
        return;
    }
    bool colors = hq_output_colors(g);
    static const char *const titles[] = {"ID", "Name", "State", "Tasks", "Cancel Reason"};
    int ncols = verbose ? 5 : 4;
    hq_table_t *t = hq_table_new_horizontal(ncols, titles);
    hq_table_right_justify(t, 0);
    bool any_open = false;
    json_array_foreach(jobs, i, j)
    {
        bool open = json_is_true(json_object_get(j, "is_open"));
        any_open |= open;
        char *id = hq_asprintf("%s%lld", open ? "*" : "", s_int(j, "id"));
        char *name = s_short_name(s_str(j, "name"));
        char *state = hq_color_state(hq_cli_job_state(j), "task", colors);
        char *tasks = hq_asprintf("%lld", s_int(j, "task_count"));
        const char *cells[5] = {id, name, state, tasks, s_str(j, "cancel_reason")};
        hq_table_add_row(t, cells);
        free(id);
        free(name);
        free(state);
        free(tasks);
    }
    hq_table_print(t, stdout, colors);
    hq_table_destroy(&t);
    if (any_open)
        printf("* = Open jobs\n");
    long long shown = (long long)json_array_size(jobs);
    if (shown != total)
        printf("There %s %lld %s in total. Use `--all` to display all jobs.\n",
               total == 1 ? "is" : "are", total, total == 1 ? "job" : "jobs");
    hq_output_mark_printed();
}

/* ---- job summary ---- */

void hq_cli_render_job_summary(const hq_global_t *g, const json_t *summary)
{
    static const char *const rows[][2] = {
        {"RUNNING", "Running"}, {"WAITING", "Waiting"}, {"FINISHED", "Finished"},
        {"FAILED", "Failed"},   {"ABORTED", "Aborted"}, {"CANCELED", "Canceled"},
    };
    if (g->output == HQ_OUTPUT_JSON) {
        hq_cli_print_json(summary);
        return;
    }
    if (g->output == HQ_OUTPUT_QUIET) {
        for (size_t i = 0; i < 6; i++)
            printf("%s %lld\n", rows[i][0], s_int(summary, rows[i][1]));
        return;
    }
    bool colors = hq_output_colors(g);
    static const char *const titles[] = {"Status", "Count"};
    hq_table_t *t = hq_table_new_horizontal(2, titles);
    hq_table_right_justify(t, 1);
    for (size_t i = 0; i < 6; i++) {
        char *state = hq_color_state(rows[i][0], "task", colors);
        char *count = hq_asprintf("%lld", s_int(summary, rows[i][1]));
        const char *cells[2] = {state, count};
        hq_table_add_row(t, cells);
        free(state);
        free(count);
    }
    hq_table_print(t, stdout, colors);
    hq_table_destroy(&t);
    hq_output_mark_printed();
}

/* ---- job info ---- */

/* "[####....]" of width 40: canceled, failed, finished, running, aborted. */
static char *s_progress_bar(const json_t *stats, long long n, bool colors)
{
    static const char *const parts[][2] = {
        {"canceled", "35"}, {"failed", "31"},  {"finished", "32"},
        {"running", "33"},  {"aborted", "34"},
    };
    const long long width = 40;
    hq_buf_t out = {0};
    hq_buf_append(&out, "[", 1);
    long long total = 0;
    for (size_t i = 0; i < 5; i++) {
        long long count = s_int(stats, parts[i][0]);
        long long chars = n > 0 ? (count * width + n - 1) / n : 0;
        if (chars > width - total)
            chars = width - total;
        if (chars <= 0)
            continue;
        char *hashes = hq_malloc((size_t)chars + 1);
        memset(hashes, '#', (size_t)chars);
        hashes[chars] = '\0';
        char *col = hq_color(hashes, parts[i][1], colors);
        hq_buf_printf(&out, "%s", col);
        free(col);
        free(hashes);
        total += chars;
    }
    for (; total < width; total++)
        hq_buf_append(&out, ".", 1);
    hq_buf_append(&out, "]", 1);
    return out.data;
}

static char *s_job_state_cell(const json_t *info, bool colors)
{
    long long n = s_int(info, "task_count");
    if (n == 1)
        return hq_color_state(hq_cli_job_state(info), "task", colors);
    const json_t *stats = json_object_get(info, "task_stats");
    char *bar = s_progress_bar(stats, n, colors);
    hq_buf_t out = {0};
    hq_buf_printf(&out, "%s", bar);
    free(bar);
    static const char *const lines[][3] = {
        {"running", "RUNNING", NULL},   {"failed", "FAILED", NULL},
        {"finished", "FINISHED", NULL}, {"canceled", "CANCELED", NULL},
        {"waiting", "WAITING", NULL},   {"aborted", "ABORTED", "91"},
    };
    for (size_t i = 0; i < 6; i++) {
        long long count = s_int(stats, lines[i][0]);
        if (count <= 0)
            continue;
        char *word = lines[i][2] ? hq_color(lines[i][1], lines[i][2], colors)
                                 : hq_color_state(lines[i][1], "task", colors);
        hq_buf_printf(&out, "\n%s (%lld)", word, count);
        free(word);
    }
    return out.data;
}

static char *s_workers_cell(const json_t *hosts)
{
    size_t n = json_array_size(hosts);
    hq_buf_t out = {0};
    hq_buf_append(&out, "", 0);
    for (size_t i = 0; i < n && i < 2; i++) {
        const char *h = json_string_value(json_array_get(hosts, i));
        hq_buf_printf(&out, "%s%s", i ? "," : "", h ? h : "N/A");
    }
    if (n > 2)
        hq_buf_printf(&out, ", \xe2\x80\xa6 (%zu total)", n);
    return out.data;
}

static char *s_date_cell(const char *rfc)
{
    uint64_t ns;
    if (hq_time_parse_rfc3339(rfc, &ns) != 0)
        return hq_strdup(rfc ? rfc : "");
    return hq_time_utc_date(ns);
}

static char *s_hosts_cell(const json_t *task)
{
    const json_t *hosts = json_object_get(task, "_hosts");
    hq_buf_t out = {0};
    hq_buf_append(&out, "", 0);
    if (json_is_array(hosts) && json_array_size(hosts) > 0) {
        size_t i;
        const json_t *h;
        json_array_foreach(hosts, i, h)
        {
            hq_buf_printf(&out, "%s%s", i ? "\n" : "",
                          json_string_value(h) ? json_string_value(h) : "N/A");
        }
    } else if (json_is_integer(json_object_get(task, "worker"))) {
        hq_buf_printf(&out, "%lld", s_int(task, "worker"));
    } else {
        size_t i;
        const json_t *w;
        json_array_foreach(json_object_get(task, "workers"), i, w)
        {
            hq_buf_printf(&out, "%s%lld", i ? "\n" : "", (long long)json_integer_value(w));
        }
    }
    return out.data;
}

/* Exported for render_task.c. */
char *hq_cli_cell_hosts(const json_t *task);
char *hq_cli_cell_hosts(const json_t *task)
{
    return s_hosts_cell(task);
}

static int s_task_id_cmp(const void *a, const void *b)
{
    long long x = s_int(*(const json_t *const *)a, "id");
    long long y = s_int(*(const json_t *const *)b, "id");
    return x < y ? -1 : x > y;
}

static void s_failed_table(const json_t *job, bool colors)
{
    const json_t *tasks = json_object_get(job, "tasks");
    size_t n = json_array_size(tasks), k = 0;
    const json_t **failed = hq_calloc(n ? n : 1, sizeof *failed);
    for (size_t i = 0; i < n; i++) {
        const json_t *t = json_array_get(tasks, i);
        if (strcmp(s_str(t, "state"), "failed") == 0)
            failed[k++] = t;
    }
    qsort(failed, k, sizeof *failed, s_task_id_cmp);
    long long n_failed =
        json_is_integer(json_object_get(job, "_n_failed"))
            ? s_int(job, "_n_failed")
            : s_int(json_object_get(json_object_get(job, "info"), "task_stats"), "failed");
    if (k > 0) {
        static const char *const titles[] = {"Task ID", "Worker", "Error"};
        hq_table_t *t = hq_table_new_horizontal(3, titles);
        for (size_t i = 0; i < k && i < S_FAILED_SHOWN; i++) {
            char *id = hq_asprintf("%lld", s_int(failed[i], "id"));
            char *hosts = s_hosts_cell(failed[i]);
            char *error = hq_color(s_str(failed[i], "error"), "31", colors);
            const char *cells[3] = {id, hosts, error};
            hq_table_add_row(t, cells);
            free(id);
            free(hosts);
            free(error);
        }
        hq_table_print(t, stdout, colors);
        hq_table_destroy(&t);
        if (n_failed < (long long)k)
            n_failed = (long long)k;
        if (n_failed > S_FAILED_SHOWN)
            printf("%lld tasks failed. (%d shown)\n", n_failed, S_FAILED_SHOWN);
        else
            printf("%lld tasks failed.\n", n_failed);
    }
    free(failed);
}

static void s_job_table(const json_t *job, bool colors)
{
    const json_t *info = json_object_get(job, "info");
    const json_t *submits = json_object_get(job, "submits");
    const json_t *single =
        json_array_size(submits) == 1 ? json_object_get(json_array_get(submits, 0), "array") : NULL;
    hq_table_t *t = hq_table_new_vertical();
    char *id = hq_asprintf("%lld", s_int(info, "id"));
    hq_table_add_kv(t, "ID", id);
    hq_table_add_kv(t, "Name", s_str(info, "name"));
    char *state = s_job_state_cell(info, colors);
    hq_table_add_kv(t, "State", state);
    hq_table_add_kv(t, "Cancel Reason", s_str(info, "cancel_reason"));
    bool open = json_is_true(json_object_get(info, "is_open"));
    char *session = open ? hq_color("open", "32", colors) : hq_strdup("closed");
    hq_table_add_kv(t, "Session", session);
    long long n = s_int(info, "task_count");
    char *tasks =
        n > 0 ? hq_asprintf("%lld; Ids: %s", n, s_str(job, "_ids")) : hq_asprintf("%lld", n);
    hq_table_add_kv(t, "Tasks", tasks);
    char *workers = s_workers_cell(json_object_get(job, "_worker_hosts"));
    hq_table_add_kv(t, "Workers", workers);
    if (single) {
        const json_t *program = json_object_get(single, "program");
        char *res = hq_cli_cell_resources(single);
        char *pin = hq_cli_cell_pin(single);
        char *prio = hq_asprintf("%lld", s_int(single, "priority"));
        char *cmd = hq_cli_cell_command(program);
        char *out = hq_cli_cell_stdio(json_object_get(program, "stdout"));
        char *err = hq_cli_cell_stdio(json_object_get(program, "stderr"));
        char *env = hq_cli_cell_env(program);
        char *tl = hq_cli_cell_duration(json_object_get(single, "time_limit"));
        char *cl = hq_cli_cell_crash_limit(single);
        hq_table_add_kv(t, "Resources", res);
        hq_table_add_kv(t, "Pin", pin);
        hq_table_add_kv(t, "Priority", prio);
        hq_table_add_kv(t, "Command", cmd);
        hq_table_add_kv(t, "Stdout", out);
        hq_table_add_kv(t, "Stderr", err);
        hq_table_add_kv(t, "Environment", env);
        hq_table_add_kv(t, "Working directory", s_str(program, "cwd"));
        hq_table_add_kv(t, "Task time limit", tl);
        hq_table_add_kv(t, "Crash limit", cl);
        free(res);
        free(pin);
        free(prio);
        free(cmd);
        free(out);
        free(err);
        free(env);
        free(tl);
        free(cl);
    }
    const char *started = json_string_value(json_object_get(job, "started_at"));
    char *date = s_date_cell(started);
    hq_table_add_kv(t, "Submission date", date);
    if (json_array_size(submits) == 1)
        hq_table_add_kv(t, "Submission directory", s_str(job, "_submit_dir"));
    char *makespan = hq_duration_format_makespan(
        hq_cli_span_ns(started, json_string_value(json_object_get(job, "finished_at"))));
    hq_table_add_kv(t, "Makespan", makespan);
    hq_table_print(t, stdout, colors);
    hq_table_destroy(&t);
    free(id);
    free(state);
    free(session);
    free(tasks);
    free(workers);
    free(date);
    free(makespan);
    s_failed_table(job, colors);
}

void hq_cli_render_job_info(const hq_global_t *g, const json_t *jobs)
{
    if (g->output == HQ_OUTPUT_JSON) {
        hq_cli_print_json(jobs);
        return;
    }
    if (g->output == HQ_OUTPUT_QUIET)
        return;
    bool colors = hq_output_colors(g);
    size_t i;
    const json_t *j;
    json_array_foreach(jobs, i, j)
    {
        s_job_table(j, colors);
    }
    if (json_array_size(jobs) > 0)
        hq_output_mark_printed();
}
