/* `hq alloc add|dry-run pbs|slurm`, `alloc list|info|log|pause|resume|remove`
 * (cli/REFERENCE.md §3.7): the queue options are checked here (syntax errors exit 2
 * with clap's wording) and sent as one JSON document; the broker checks what needs
 * its state, submits, and answers with the log lines the command prints. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hq_duration.h"
#include "hq_output.h"
#include "hq_resource.h"
#include "hq_table.h"
#include "hq_util.h"

#define S_ADD_WAIT_MS 120000 /* the trial allocation runs sbatch/qsub and the cancel */

/* An unsigned count >= min: -1 and *out on success, else 2 (printed). */
static int s_count(const hq_cli_t *c, const char *flag, uint32_t min, uint32_t *out)
{
    const char *v = hq_args_get(c->args, flag);
    if (!v)
        return -1;
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *end || v[0] == '-' || errno)
        return hq_cli_invalid(c->spec->opts, flag, v, "invalid digit found in string");
    if (n > UINT32_MAX)
        return hq_cli_invalid(c->spec->opts, flag, v, "number too large to fit in target type");
    if (n < min) {
        if (strcmp(flag, "backlog") == 0)
            return hq_cli_invalid(c->spec->opts, flag, v, "Backlog has to be at least 1");
        char *d = hq_asprintf("%llu is not in %u..=%u", n, min, UINT32_MAX);
        int rc = hq_cli_invalid(c->spec->opts, flag, v, d);
        free(d);
        return rc;
    }
    *out = (uint32_t)n;
    return -1;
}

/* A duration option: -1 and *ns on success (absent: *ns unchanged), else 2. */
static int s_dur(const hq_cli_t *c, const char *flag, bool human_only, uint64_t *ns)
{
    const char *v = hq_args_get(c->args, flag);
    if (!v)
        return -1;
    hq_err_t err;
    int rc = human_only ? hq_duration_parse_human(v, ns, &err) : hq_duration_parse(v, ns, &err);
    return rc == 0 ? -1 : hq_cli_invalid(c->spec->opts, flag, v, err.text);
}

static void s_set_str(json_t *o, const char *key, const char *v)
{
    json_object_set_new(o, key, v ? json_string(v) : json_null());
}

/* The worker resources of the queue must parse as a worker's would. */
static int s_check_resources(const hq_cli_t *c)
{
    hq_err_t err;
    hq_wres_t r;
    const char *cpus = hq_args_get(c->args, "cpus");
    if (cpus) {
        if (hq_wres_parse_cpus(cpus, &r, &err) != 0)
            return hq_cli_invalid(c->spec->opts, "cpus", cpus, err.text);
        hq_wres_clear(&r);
    }
    for (size_t i = 0; i < hq_args_count(c->args, "resource"); i++) {
        const char *v = hq_args_at(c->args, "resource", i);
        if (hq_wres_parse_named(v, &r, &err) != 0)
            return hq_cli_invalid(c->spec->opts, "resource", v, err.text);
        hq_wres_clear(&r);
    }
    return -1;
}

/* Builds the queue parameters document (proto/wire/PROTOCOL.md, ALLOC_ADD). -1 on
 * success, else the exit code (printed). */
static int s_params(const hq_cli_t *c, const char *manager, json_t **out)
{
    uint64_t tl = 0, wtl = 0, idle = 5 * 60 * HQ_NS_PER_SEC, ov = 0;
    uint32_t backlog = 1, per_alloc = 1, max_count = 0;
    int rc;
    if ((rc = s_dur(c, "time-limit", false, &tl)) >= 0 ||
        (rc = s_dur(c, "worker-time-limit", false, &wtl)) >= 0 ||
        (rc = s_dur(c, "idle-timeout", false, &idle)) >= 0 ||
        (rc = s_dur(c, "overview-interval", true, &ov)) >= 0 ||
        (rc = s_count(c, "backlog", 1, &backlog)) >= 0 ||
        (rc = s_count(c, "max-workers-per-alloc", 1, &per_alloc)) >= 0 ||
        (rc = s_count(c, "max-worker-count", 1, &max_count)) >= 0 ||
        (rc = s_check_resources(c)) >= 0)
        return rc;
    double mu = 0.0;
    const char *muv = hq_args_get(c->args, "min-utilization");
    if (muv) {
        char *end = NULL;
        mu = strtod(muv, &end);
        if (!*muv || *end || isnan(mu))
            return hq_cli_invalid(c->spec->opts, "min-utilization", muv, "invalid float literal");
        if (mu < 0.0 || mu > 1.0)
            return hq_cli_invalid(c->spec->opts, "min-utilization", muv,
                                  "Minimal utilization has to be in the interval [0.0, 1.0].");
    }
    const char *name = hq_args_get(c->args, "name");
    if (name && (strchr(name, '\n') || strchr(name, '\t')))
        return hq_cli_invalid(c->spec->opts, "name", name, "name cannot have a newline or a tab");
    json_t *p = json_object();
    json_object_set_new(p, "manager", json_string(manager));
    json_object_set_new(p, "timelimit_ns", json_integer((json_int_t)tl));
    json_object_set_new(p, "worker_time_limit_ns",
                        hq_args_get(c->args, "worker-time-limit") ? json_integer((json_int_t)wtl)
                                                                  : json_null());
    json_object_set_new(p, "idle_timeout_ns", json_integer((json_int_t)idle));
    json_object_set_new(p, "backlog", json_integer(backlog));
    json_object_set_new(p, "max_workers_per_alloc", json_integer(per_alloc));
    json_object_set_new(p, "max_worker_count", max_count ? json_integer(max_count) : json_null());
    json_object_set_new(p, "min_utilization", json_real(mu));
    json_object_set_new(p, "no_hyper_threading",
                        json_boolean(hq_args_has(c->args, "no-hyper-threading")));
    static const char *const strs[][2] = {
        {"name", "name"},
        {"cpus", "cpus"},
        {"group", "group"},
        {"coupling", "coupling"},
        {"detect_resources", "detect-resources"},
        {"overview_interval", "overview-interval"},
        {"on_server_lost", "on-server-lost"},
        {"worker_start_cmd", "worker-start-cmd"},
        {"worker_stop_cmd", "worker-stop-cmd"},
        {"worker_wrap_cmd", "worker-wrap-cmd"},
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        s_set_str(p, strs[i][0], hq_args_get(c->args, strs[i][1]));
    if (!hq_args_get(c->args, "on-server-lost"))
        s_set_str(p, "on_server_lost", "finish-running");
    json_t *res = json_array();
    for (size_t i = 0; i < hq_args_count(c->args, "resource"); i++)
        json_array_append_new(res, json_string(hq_args_at(c->args, "resource", i)));
    json_object_set_new(p, "resources", res);
    json_t *extra = json_array();
    for (size_t i = 0; i < hq_args_npos(c->args); i++)
        json_array_append_new(extra, json_string(hq_args_pos(c->args, i)));
    json_object_set_new(p, "additional_args", extra);
    *out = p;
    return -1;
}

/* `alloc add` (dry_run_only false) and `alloc dry-run` of one manager. */
static int s_add(int argc, char **argv, const char *path, const char *manager, bool dry_run_only)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, path, argc, argv);
    if (rc >= 0)
        return rc;
    json_t *p = NULL;
    rc = s_params(&c, manager, &p);
    if (rc < 0) {
        json_object_set_new(p, "dry_run",
                            json_boolean(dry_run_only || !hq_args_has(c.args, "no-dry-run")));
        hq_query_t q;
        memset(&q, 0, sizeof q);
        q.text = json_dumps(p, JSON_COMPACT | JSON_SORT_KEYS);
        q.flag = dry_run_only;
        rc = hq_cli_query(&c, HQ_MSG_ALLOC_ADD, &q, S_ADD_WAIT_MS, NULL, NULL);
        free(q.text);
        if (rc == 0)
            hq_output_finish(&c.g);
    }
    json_decref(p);
    hq_cli_end(&c);
    return rc;
}

int hq_cmd_alloc_add_pbs(int argc, char **argv)
{
    return s_add(argc, argv, "alloc add pbs", "pbs", false);
}

int hq_cmd_alloc_add_slurm(int argc, char **argv)
{
    return s_add(argc, argv, "alloc add slurm", "slurm", false);
}

int hq_cmd_alloc_dry_run_pbs(int argc, char **argv)
{
    return s_add(argc, argv, "alloc dry-run pbs", "pbs", true);
}

int hq_cmd_alloc_dry_run_slurm(int argc, char **argv)
{
    return s_add(argc, argv, "alloc dry-run slurm", "slurm", true);
}

/* The queue id positional: -1 and *id, else 2 (printed). */
static int s_queue_id(const hq_cli_t *c, uint64_t *id)
{
    const char *v = hq_args_pos(c->args, 0);
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *end || v[0] == '-' || errno || n > UINT32_MAX)
        return hq_cli_invalid_pos("QUEUE_ID", v, "invalid digit found in string");
    *id = n;
    return -1;
}

/* `alloc pause|resume|remove <queue>`. */
static int s_ctl(int argc, char **argv, const char *path, const char *action)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, path, argc, argv);
    if (rc >= 0)
        return rc;
    hq_query_t q;
    memset(&q, 0, sizeof q);
    rc = s_queue_id(&c, &q.number);
    if (rc < 0) {
        q.text = (char *)action;
        q.flag = hq_args_has(c.args, "force");
        rc = hq_cli_query(&c, HQ_MSG_ALLOC_CTL, &q, S_ADD_WAIT_MS, NULL, NULL);
        if (rc == 0)
            hq_output_finish(&c.g);
    }
    hq_cli_end(&c);
    return rc;
}

int hq_cmd_alloc_pause(int argc, char **argv)
{
    return s_ctl(argc, argv, "alloc pause", "pause");
}

int hq_cmd_alloc_resume(int argc, char **argv)
{
    return s_ctl(argc, argv, "alloc resume", "resume");
}

int hq_cmd_alloc_remove(int argc, char **argv)
{
    return s_ctl(argc, argv, "alloc remove", "remove");
}

static char *s_int_cell(const json_t *v)
{
    return hq_asprintf("%lld", json_is_integer(v) ? (long long)json_integer_value(v) : 0LL);
}

/* Local "DD.MM.YYYY HH:MM:SS" of a wall time in ns, "" when 0 or absent. */
static char *s_time_cell(const json_t *v)
{
    json_int_t ns = json_integer_value(v);
    return ns > 0 ? hq_time_local((uint64_t)ns) : hq_strdup("");
}

int hq_cmd_alloc_list(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "alloc list", argc, argv);
    if (rc >= 0)
        return rc;
    json_t *root = NULL;
    hq_query_t q;
    memset(&q, 0, sizeof q);
    rc = hq_cli_query(&c, HQ_MSG_ALLOC_LIST, &q, 0, &root, NULL);
    const json_t *list = json_object_get(root, "result");
    if (rc == 0 && c.g.output == HQ_OUTPUT_JSON) {
        hq_cli_print_json(list);
    } else if (rc == 0 && c.g.output == HQ_OUTPUT_CLI) {
        static const char *const titles[] = {"ID",
                                             "State",
                                             "Backlog size",
                                             "Max workers per alloc",
                                             "Max worker count",
                                             "Timelimit",
                                             "Manager",
                                             "Worker resources",
                                             "Name",
                                             "Args"};
        hq_table_t *t = hq_table_new_horizontal(10, titles);
        size_t i;
        const json_t *qu;
        json_array_foreach(list, i, qu)
        {
            char *cells[10];
            cells[0] = s_int_cell(json_object_get(qu, "id"));
            cells[1] = hq_strdup(json_string_value(json_object_get(qu, "_state")));
            cells[2] = s_int_cell(json_object_get(qu, "backlog"));
            cells[3] = s_int_cell(json_object_get(qu, "max_workers_per_alloc"));
            cells[4] = s_int_cell(json_object_get(qu, "max_worker_count"));
            cells[5] = hq_duration_format(hq_cli_seconds_ns(json_object_get(qu, "timelimit")));
            cells[6] = hq_strdup(json_string_value(json_object_get(qu, "_manager")));
            cells[7] = hq_strdup(json_string_value(json_object_get(qu, "_resources")));
            const char *name = json_string_value(json_object_get(qu, "name"));
            cells[8] = hq_strdup(name ? name : "");
            hq_buf_t args = {0};
            size_t k;
            const json_t *a;
            hq_buf_printf(&args, "%s", "");
            json_array_foreach(json_object_get(qu, "additional_args"), k, a)
            {
                hq_buf_printf(&args, "%s%s", k ? "," : "", json_string_value(a));
            }
            cells[9] = args.data;
            hq_table_add_row(t, (const char **)cells);
            for (int k2 = 0; k2 < 10; k2++)
                free(cells[k2]);
        }
        hq_table_print(t, stdout, hq_output_colors(&c.g));
        hq_output_mark_printed();
        hq_table_destroy(&t);
    }
    if (rc == 0)
        hq_output_finish(&c.g);
    json_decref(root);
    hq_cli_end(&c);
    return rc;
}

static int s_alloc_cmp(const void *a, const void *b)
{
    const char *x = json_string_value(json_object_get(*(json_t *const *)a, "id"));
    const char *y = json_string_value(json_object_get(*(json_t *const *)b, "id"));
    return strcmp(x ? x : "", y ? y : "");
}

static void s_render_allocs(const hq_cli_t *c, json_t *list)
{
    if (c->g.output == HQ_OUTPUT_JSON) {
        hq_cli_print_json(list);
        return;
    }
    if (c->g.output != HQ_OUTPUT_CLI)
        return;
    bool colors = hq_output_colors(&c->g);
    static const char *const titles[] = {"ID",           "State",      "Working directory",
                                         "Worker count", "Queue time", "Start time",
                                         "Finish time"};
    hq_table_t *t = hq_table_new_horizontal(7, titles);
    size_t i;
    const json_t *al;
    json_array_foreach(list, i, al)
    {
        char *st = hq_strdup(json_string_value(json_object_get(al, "status")));
        for (char *p = st; *p; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        char *cells[7];
        cells[0] = hq_strdup(json_string_value(json_object_get(al, "id")));
        cells[1] = hq_color_state(st, "alloc", colors);
        cells[2] = hq_strdup(json_string_value(json_object_get(al, "workdir")));
        cells[3] = s_int_cell(json_object_get(al, "target_worker_count"));
        cells[4] = s_time_cell(json_object_get(al, "_queued_ns"));
        cells[5] = s_time_cell(json_object_get(al, "_started_ns"));
        cells[6] = s_time_cell(json_object_get(al, "_ended_ns"));
        hq_table_add_row(t, (const char **)cells);
        for (int k = 0; k < 7; k++)
            free(cells[k]);
        free(st);
    }
    hq_table_print(t, stdout, colors);
    hq_output_mark_printed();
    hq_table_destroy(&t);
}

int hq_cmd_alloc_info(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "alloc info", argc, argv);
    if (rc >= 0)
        return rc;
    const char *filter = hq_args_get(c.args, "filter");
    static const char *const states[] = {"queued", "running", "finished", "failed"};
    bool known = !filter;
    for (size_t i = 0; filter && i < 4; i++)
        known = known || strcmp(filter, states[i]) == 0;
    hq_query_t q;
    memset(&q, 0, sizeof q);
    if (!known)
        rc = hq_cli_invalid(c.spec->opts, "filter", filter,
                            "[possible values: queued, running, finished, failed]");
    else
        rc = s_queue_id(&c, &q.number);
    json_t *root = NULL;
    if (rc < 0)
        rc = hq_cli_query(&c, HQ_MSG_ALLOC_INFO, &q, 0, &root, NULL);
    if (rc == 0) {
        const json_t *all = json_object_get(root, "result");
        size_t n = json_array_size(all), k = 0, i;
        json_t **items = hq_calloc(n ? n : 1, sizeof *items);
        json_t *al;
        json_array_foreach(all, i, al)
        {
            const char *st = json_string_value(json_object_get(al, "status"));
            if (!filter || (st && strcmp(st, filter) == 0))
                items[k++] = al;
        }
        qsort(items, k, sizeof *items, s_alloc_cmp);
        json_t *list = json_array();
        for (size_t j = 0; j < k; j++)
            json_array_append(list, items[j]);
        free(items);
        s_render_allocs(&c, list);
        json_decref(list);
        hq_output_finish(&c.g);
    }
    json_decref(root);
    hq_cli_end(&c);
    return rc;
}

int hq_cmd_alloc_log(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "alloc log", argc, argv);
    if (rc >= 0)
        return rc;
    const char *channel = hq_args_pos(c.args, 1);
    json_t *root = NULL;
    if (strcmp(channel, "stdout") != 0 && strcmp(channel, "stderr") != 0) {
        rc = hq_cli_invalid_pos("CHANNEL", channel, "[possible values: stdout, stderr]");
    } else if (c.g.output == HQ_OUTPUT_JSON) {
        rc = hq_cli_error(&c, "JSON output mode doesn't support allocation output");
    } else {
        hq_query_t q;
        memset(&q, 0, sizeof q);
        q.text = (char *)hq_args_pos(c.args, 0);
        rc = hq_cli_query(&c, HQ_MSG_ALLOC_LOG, &q, 0, &root, NULL);
    }
    if (rc == 0) {
        const char *dir =
            json_string_value(json_object_get(json_object_get(root, "result"), "workdir"));
        char *path = hq_asprintf("%s/%s", dir ? dir : ".", channel);
        char *data = NULL;
        size_t len = 0;
        if (hq_read_file(path, (size_t)1 << 30, &data, &len) != 0) {
            rc = hq_cli_error(&c, "Cannot read %s: %s", path, strerror(errno));
        } else {
            fwrite(data, 1, len, stdout);
            hq_output_mark_printed();
        }
        free(data);
        free(path);
    }
    json_decref(root);
    hq_cli_end(&c);
    return rc;
}
