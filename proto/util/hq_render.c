/* Renderings shared by hq, hq-broker and hq-worker: the worker JSON object, the
 * server-info and worker-info tables (cli/REFERENCE.md §5, §6, §7). */
#include "hq_render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hq_duration.h"
#include "hq_output.h"
#include "hq_table.h"
#include "hq_util.h"

/* ---- JSON building ---- */

static json_t *s_seconds_or_null(uint64_t ns)
{
    return ns ? json_real(hq_duration_seconds(ns)) : json_null();
}

static json_t *s_label_array(const hq_label_group_t *grp)
{
    json_t *arr = json_array();
    for (uint32_t i = 0; i < grp->n; i++)
        json_array_append_new(arr, json_string(grp->labels[i]));
    return arr;
}

static json_t *s_wres_one(const hq_wres_t *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", json_string(r->name));
    switch (r->kind) {
    case HQ_RES_LIST:
        json_object_set_new(o, "kind", json_string("list"));
        json_object_set_new(o, "values", r->n_groups ? s_label_array(&r->groups[0]) : json_array());
        break;
    case HQ_RES_RANGE:
        json_object_set_new(o, "kind", json_string("range"));
        json_object_set_new(o, "start", json_integer((json_int_t)r->range_start));
        json_object_set_new(o, "end", json_integer((json_int_t)r->range_end));
        break;
    case HQ_RES_GROUPS: {
        json_object_set_new(o, "kind", json_string("groups"));
        json_t *groups = json_array();
        for (uint32_t i = 0; i < r->n_groups; i++)
            json_array_append_new(groups, s_label_array(&r->groups[i]));
        json_object_set_new(o, "groups", groups);
        break;
    }
    case HQ_RES_SUM:
        json_object_set_new(o, "kind", json_string("sum"));
        json_object_set_new(o, "size", json_integer((json_int_t)r->sum_size));
        break;
    }
    return o;
}

json_t *hq_wres_json(const hq_wres_list_t *l)
{
    return hq_wres_json_coupled(l, NULL, 0);
}

json_t *hq_wres_json_coupled(const hq_wres_list_t *l, const hq_coupling_t *w, uint32_t n)
{
    json_t *arr = json_array();
    for (uint32_t i = 0; i < l->n; i++)
        json_array_append_new(arr, s_wres_one(&l->res[i]));
    json_t *weights = json_array();
    for (uint32_t k = 0; k < n; k++)
        json_array_append_new(weights, json_pack("{s:I, s:I, s:I, s:I, s:I}", "resource1_idx",
                                                 (json_int_t)w[k].resource1_idx, "group1_idx",
                                                 (json_int_t)w[k].group1_idx, "resource2_idx",
                                                 (json_int_t)w[k].resource2_idx, "group2_idx",
                                                 (json_int_t)w[k].group2_idx, "weight",
                                                 (json_int_t)w[k].weight));
    return json_pack("{s:o, s:{s:o}}", "resources", arr, "coupling", "weights", weights);
}

bool *hq_wres_json_coupled_mask(const json_t *v, uint32_t n)
{
    const json_t *w = json_object_get(json_object_get(v, "coupling"), "weights");
    if (!json_is_array(w) || json_array_size(w) == 0 || n == 0)
        return NULL;
    bool *mask = hq_calloc(n, sizeof *mask);
    size_t i;
    const json_t *item;
    json_array_foreach(w, i, item)
    {
        const char *keys[2] = {"resource1_idx", "resource2_idx"};
        for (int k = 0; k < 2; k++) {
            json_int_t r = json_integer_value(json_object_get(item, keys[k]));
            if (r >= 0 && r < (json_int_t)n)
                mask[r] = true;
        }
    }
    return mask;
}

json_t *hq_worker_json(uint32_t id, const hq_worker_conf_t *conf)
{
    const char *lost = conf->on_server_lost == HQ_LOST_FINISH_RUNNING ? "finish-running" : "stop";
    json_t *cfg = json_object();
    json_object_set_new(cfg, "heartbeat_interval",
                        json_real(hq_duration_seconds(conf->heartbeat_ns)));
    json_object_set_new(cfg, "idle_timeout", s_seconds_or_null(conf->idle_timeout_ns));
    json_object_set_new(cfg, "time_limit", s_seconds_or_null(conf->time_limit_ns));
    json_object_set_new(cfg, "work_dir", json_string(conf->work_dir ? conf->work_dir : ""));
    json_object_set_new(cfg, "hostname", json_string(conf->hostname ? conf->hostname : ""));
    json_object_set_new(cfg, "group", json_string(conf->group ? conf->group : "default"));
    json_object_set_new(cfg, "listen_address",
                        json_string(conf->listen_address ? conf->listen_address : ""));
    json_object_set_new(cfg, "resources",
                        hq_wres_json_coupled(&conf->resources, conf->coupling, conf->n_coupling));
    json_object_set_new(cfg, "on_server_lost", json_string(lost));
    json_object_set_new(cfg, "min_utilization", json_real(conf->min_utilization));

    json_t *alloc = json_null();
    if (conf->manager == HQ_MANAGER_PBS || conf->manager == HQ_MANAGER_SLURM) {
        const char *mgr = conf->manager == HQ_MANAGER_PBS ? "PBS" : "Slurm";
        const char *jid = conf->manager_job_id ? conf->manager_job_id : "";
        json_decref(alloc);
        alloc = json_pack("{s:s, s:s}", "manager", mgr, "id", jid);
    }

    char *started = hq_time_rfc3339(conf->started_ns, 9);
    json_t *w = json_object();
    json_object_set_new(w, "id", json_integer(id));
    json_object_set_new(w, "configuration", cfg);
    json_object_set_new(w, "allocation", alloc);
    json_object_set_new(w, "runtime_info", json_null());
    json_object_set_new(w, "last_task_started", json_null());
    json_object_set_new(w, "started", json_string(started));
    json_object_set_new(w, "ended", json_null());
    json_object_set_new(w, "_pid", conf->pid ? json_integer(conf->pid) : json_null());
    json_object_set_new(w, "_overview_interval", s_seconds_or_null(conf->overview_ns));
    free(started);
    return w;
}

/* ---- JSON reading ---- */

int hq_time_parse_rfc3339(const char *s, uint64_t *ns_out)
{
    if (!s)
        return -1;
    int y, mo, d, h, mi, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6 || n != 19)
        return -1;
    const char *p = s + n;
    uint64_t frac = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 9) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                digits++;
            }
            p++;
        }
        if (digits == 0)
            return -1;
        for (; digits < 9; digits++)
            frac *= 10;
    }
    if (strcmp(p, "Z") != 0 && strcmp(p, "+00:00") != 0)
        return -1;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t < 0)
        return -1;
    *ns_out = (uint64_t)t * 1000000000ULL + frac;
    return 0;
}

static char *s_json_label(const json_t *v)
{
    if (json_is_string(v))
        return hq_strdup(json_string_value(v));
    if (json_is_integer(v))
        return hq_asprintf("%lld", (long long)json_integer_value(v));
    return hq_strdup("");
}

static void s_group_from_json(const json_t *arr, hq_label_group_t *g)
{
    size_t n = json_array_size(arr);
    g->n = (uint32_t)n;
    g->labels = hq_calloc(n ? n : 1, sizeof *g->labels);
    for (size_t i = 0; i < n; i++)
        g->labels[i] = s_json_label(json_array_get(arr, i));
}

int hq_wres_from_json(const json_t *v, hq_wres_list_t *out)
{
    memset(out, 0, sizeof *out);
    const json_t *arr = json_is_object(v) ? json_object_get(v, "resources") : v;
    if (!json_is_array(arr))
        return -1;
    size_t n = json_array_size(arr);
    out->res = hq_calloc(n ? n : 1, sizeof *out->res);
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_array_get(arr, i);
        const char *name = json_string_value(json_object_get(r, "name"));
        const char *kind = json_string_value(json_object_get(r, "kind"));
        if (!name || !kind)
            continue;
        hq_wres_t *w = &out->res[out->n];
        if (strcmp(kind, "list") == 0) {
            w->kind = HQ_RES_LIST;
            w->n_groups = 1;
            w->groups = hq_calloc(1, sizeof *w->groups);
            s_group_from_json(json_object_get(r, "values"), &w->groups[0]);
        } else if (strcmp(kind, "range") == 0) {
            w->kind = HQ_RES_RANGE;
            w->range_start = (uint64_t)json_integer_value(json_object_get(r, "start"));
            w->range_end = (uint64_t)json_integer_value(json_object_get(r, "end"));
        } else if (strcmp(kind, "groups") == 0) {
            const json_t *groups = json_object_get(r, "groups");
            size_t ng = json_array_size(groups);
            w->kind = HQ_RES_GROUPS;
            w->n_groups = (uint32_t)ng;
            w->groups = hq_calloc(ng ? ng : 1, sizeof *w->groups);
            for (size_t j = 0; j < ng; j++)
                s_group_from_json(json_array_get(groups, j), &w->groups[j]);
        } else if (strcmp(kind, "sum") == 0) {
            w->kind = HQ_RES_SUM;
            w->sum_size = (hq_amount_t)json_integer_value(json_object_get(r, "size"));
        } else {
            continue;
        }
        w->name = hq_strdup(name);
        out->n++;
    }
    return 0;
}

/* ---- tables ---- */

static const char *s_str(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "";
}

static char *s_num(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return hq_asprintf("%lld", (long long)json_integer_value(v));
    if (json_is_string(v))
        return hq_strdup(json_string_value(v));
    return hq_strdup("");
}

/* Float seconds -> human duration, or `none_text` for null/absent. */
static char *s_dur(const json_t *v, const char *none_text)
{
    if (!json_is_number(v))
        return hq_strdup(none_text);
    double secs = json_number_value(v);
    if (!(secs >= 0))
        secs = 0;
    return hq_duration_format((uint64_t)(secs * 1e9 + 0.5));
}

static void s_print_json_stripped(const json_t *v)
{
    json_t *copy = json_deep_copy(v);
    hq_json_strip_private(copy);
    hq_output_json(copy);
    json_decref(copy);
}

void hq_render_server_info(const hq_global_t *g, json_t *info, const char *server_dir)
{
    if (g->output == HQ_OUTPUT_JSON) {
        json_t *copy = json_deep_copy(info);
        json_object_set_new(copy, "server_dir", server_dir ? json_string(server_dir) : json_null());
        hq_json_strip_private(copy);
        hq_output_json(copy);
        json_decref(copy);
        return;
    }
    if (g->output == HQ_OUTPUT_QUIET) {
        if (server_dir) {
            printf("%s\n", server_dir);
            hq_output_mark_printed();
        }
        return;
    }
    hq_table_t *t = hq_table_new_vertical();
    if (server_dir)
        hq_table_add_kv(t, "Server directory", server_dir);
    hq_table_add_kv(t, "Server UID", s_str(info, "server_uid"));
    hq_table_add_kv(t, "Client host", s_str(info, "client_host"));
    char *cport = s_num(info, "client_port");
    hq_table_add_kv(t, "Client port", cport);
    hq_table_add_kv(t, "Worker host", s_str(info, "worker_host"));
    char *wport = s_num(info, "worker_port");
    hq_table_add_kv(t, "Worker port", wport);
    hq_table_add_kv(t, "Version", s_str(info, "version"));
    char *pid = s_num(info, "pid");
    hq_table_add_kv(t, "Pid", pid);
    uint64_t start_ns;
    char *start = hq_time_parse_rfc3339(s_str(info, "start_date"), &start_ns) == 0
                      ? hq_time_utc_date(start_ns)
                      : hq_strdup(s_str(info, "start_date"));
    hq_table_add_kv(t, "Start date", start);
    hq_table_add_kv(t, "Journal path", s_str(info, "journal_path"));
    hq_table_print(t, stdout, hq_output_colors(g));
    hq_output_mark_printed();
    hq_table_destroy(&t);
    free(cport);
    free(wport);
    free(pid);
    free(start);
}

static char *s_manager_cli(const json_t *alloc)
{
    const char *mgr = json_string_value(json_object_get(alloc, "manager"));
    if (!mgr)
        return hq_strdup("None");
    if (strcmp(mgr, "Slurm") == 0)
        return hq_strdup("SLURM");
    return hq_strdup(mgr);
}

static char *s_last_task(const json_t *lts)
{
    if (!json_is_object(lts))
        return hq_strdup("");
    const json_t *tid = json_object_get(lts, "task_id");
    return hq_asprintf(
        "%lld@%lld; Time: \"%s\"", (long long)json_integer_value(json_object_get(tid, "job_id")),
        (long long)json_integer_value(json_object_get(tid, "job_task_id")), s_str(lts, "time"));
}

/* "12.5 %" */
static void s_pct(hq_buf_t *b, const json_t *v)
{
    hq_buf_printf(b, "%.1f %%", json_number_value(v));
}

static void s_gpu_row(hq_table_t *t, const char *key, const json_t *gpus)
{
    const json_t *list = json_object_get(gpus, "gpus");
    if (!json_is_array(list))
        return;
    hq_buf_t b = {0};
    size_t i;
    const json_t *g;
    json_array_foreach(list, i, g)
    {
        hq_buf_printf(&b, "%s%s: ", i ? "\n" : "", s_str(g, "id"));
        s_pct(&b, json_object_get(g, "processor_usage"));
        hq_buf_printf(&b, ", memory ");
        s_pct(&b, json_object_get(g, "mem_usage"));
    }
    hq_buf_append(&b, "", 1);
    hq_table_add_kv(t, key, b.data);
    hq_buf_free(&b);
}

/* The latest hardware overview of a worker (its "hw-state"."state"), if it sent one. */
static void s_overview_rows(hq_table_t *t, const json_t *st)
{
    if (!json_is_object(st))
        return;
    hq_buf_t b = {0};
    const json_t *cores =
        json_object_get(json_object_get(st, "cpu_usage"), "cpu_per_core_percent_usage");
    double sum = 0;
    size_t i, n = json_array_size(cores);
    const json_t *v;
    json_array_foreach(cores, i, v)
    {
        sum += json_number_value(v);
    }
    hq_buf_printf(&b, "%.1f %% (%zu cores:", n ? sum / (double)n : 0.0, n);
    json_array_foreach(cores, i, v)
    {
        hq_buf_printf(&b, " ");
        s_pct(&b, v);
    }
    hq_buf_printf(&b, ")");
    hq_buf_append(&b, "", 1);
    hq_table_add_kv(t, "CPU usage", b.data);
    b.len = 0;
    const json_t *mem = json_object_get(st, "memory_usage");
    double total = (double)json_integer_value(json_object_get(mem, "total"));
    double free_b = (double)json_integer_value(json_object_get(mem, "free"));
    hq_buf_printf(&b, "%.2f GiB free of %.2f GiB", free_b / 1073741824.0, total / 1073741824.0);
    hq_buf_append(&b, "", 1);
    hq_table_add_kv(t, "Memory", b.data);
    b.len = 0;
    const json_t *net = json_object_get(st, "network_usage");
    hq_buf_printf(
        &b, "received %lld B (%lld packets, %lld errors), sent %lld B (%lld packets, %lld errors)",
        (long long)json_integer_value(json_object_get(net, "rx_bytes")),
        (long long)json_integer_value(json_object_get(net, "rx_packets")),
        (long long)json_integer_value(json_object_get(net, "rx_errors")),
        (long long)json_integer_value(json_object_get(net, "tx_bytes")),
        (long long)json_integer_value(json_object_get(net, "tx_packets")),
        (long long)json_integer_value(json_object_get(net, "tx_errors")));
    hq_buf_append(&b, "", 1);
    hq_table_add_kv(t, "Network", b.data);
    hq_buf_free(&b);
    s_gpu_row(t, "NVIDIA GPUs", json_object_get(st, "nvidia_gpus"));
    s_gpu_row(t, "AMD GPUs", json_object_get(st, "amd_gpus"));
}

static void s_worker_table(const hq_global_t *g, const json_t *w, bool runtime)
{
    bool colors = hq_output_colors(g);
    const json_t *cfg = json_object_get(w, "configuration");
    const json_t *alloc = json_object_get(w, "allocation");
    hq_table_t *t = hq_table_new_vertical();

    char *id = s_num(w, "id");
    hq_table_add_kv(t, "Worker", id);
    const char *state_word = json_string_value(json_object_get(w, "_state"));
    char *state = hq_color_state(state_word ? state_word : "RUNNING", "worker", colors);
    hq_table_add_kv(t, "State", state);
    hq_table_add_kv(t, "Hostname", s_str(cfg, "hostname"));
    char *started = hq_asprintf("\"%s\"", s_str(w, "started"));
    hq_table_add_kv(t, "Started", started);
    hq_table_add_kv(t, "Data provider", s_str(cfg, "listen_address"));
    hq_table_add_kv(t, "Working directory", s_str(cfg, "work_dir"));
    char *hb = s_dur(json_object_get(cfg, "heartbeat_interval"), "None");
    hq_table_add_kv(t, "Heartbeat", hb);
    char *idle = s_dur(json_object_get(cfg, "idle_timeout"), "None");
    hq_table_add_kv(t, "Idle timeout", idle);
    char *overview = s_dur(json_object_get(w, "_overview_interval"), "None");
    hq_table_add_kv(t, "Overview interval", overview);
    hq_wres_list_t res;
    char *summary = NULL;
    if (hq_wres_from_json(json_object_get(cfg, "resources"), &res) == 0) {
        bool *coupled = hq_wres_json_coupled_mask(json_object_get(cfg, "resources"), res.n);
        summary = hq_wres_summary_ex(&res, true, coupled);
        free(coupled);
        hq_wres_list_clear(&res);
    }
    hq_table_add_kv(t, "Resources", summary ? summary : "");
    char *tl = s_dur(json_object_get(cfg, "time_limit"), "None");
    hq_table_add_kv(t, "Time Limit", tl);
    char *pid = json_is_integer(json_object_get(w, "_pid")) ? s_num(w, "_pid") : hq_strdup("N/A");
    hq_table_add_kv(t, "Process pid", pid);
    hq_table_add_kv(t, "Group", s_str(cfg, "group"));
    char *mgr = s_manager_cli(alloc);
    hq_table_add_kv(t, "Manager", mgr);
    const char *mjid = json_string_value(json_object_get(alloc, "id"));
    hq_table_add_kv(t, "Manager Job ID", mjid && *mjid ? mjid : "N/A");
    char *lts = s_last_task(json_object_get(w, "last_task_started"));
    hq_table_add_kv(t, "Last task started", lts);
    if (runtime)
        hq_table_add_kv(t, "Runtime Info", s_str(w, "_runtime_text"));
    s_overview_rows(t, json_object_get(json_object_get(w, "_overview"), "state"));

    hq_table_print(t, stdout, colors);
    hq_output_mark_printed();
    hq_table_destroy(&t);
    free(id);
    free(state);
    free(started);
    free(hb);
    free(idle);
    free(overview);
    free(summary);
    free(tl);
    free(pid);
    free(mgr);
    free(lts);
}

void hq_render_worker_info(const hq_global_t *g, json_t *workers, bool runtime)
{
    if (g->output == HQ_OUTPUT_JSON) {
        s_print_json_stripped(workers);
        return;
    }
    if (g->output == HQ_OUTPUT_QUIET)
        return;
    size_t i;
    json_t *w;
    json_array_foreach(workers, i, w)
    {
        if (i > 0)
            printf("\n");
        s_worker_table(g, w, runtime);
    }
}
