/* `hq job submit-file FILE [--job ID]`: reads a job definition file (TOML,
 * cli/REFERENCE.md §8) through toml.h, validates it strictly (unknown keys refused) and
 * sends one SUBMIT: the graph form for `[[task]]` lists (with dependencies), the
 * array form for `[array]`. Identical task configurations share one definition. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "hq_duration.h"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_resource.h"
#include "hq_util.h"
#include "hq_graph.h"
#include "submit_args.h"
#include "submit_file.h"
#include "toml.h"

#define S_DEFAULT_STDOUT "%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stdout"
#define S_DEFAULT_STDERR "%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stderr"

/* `data_layer` belonged to a removed experimental feature; files that still carry it
 * are accepted and the key is ignored. */
static const char *const s_job_keys[] = {"name",  "max_fails",  "stream", "task",
                                         "array", "data_layer", NULL};
static const char *const s_task_keys[] = {
    "id",         "command",  "env",         "cwd", "stdout", "stderr",  "stdin", "task_dir",
    "time_limit", "priority", "crash_limit", "pin", "deps",   "request", NULL};
static const char *const s_array_keys[] = {
    "ids",      "entries",    "command",  "env",         "cwd", "stdout",  "stderr", "stdin",
    "task_dir", "time_limit", "priority", "crash_limit", "pin", "request", NULL};
static const char *const s_request_keys[] = {"resources", "time_request", "n_nodes", "weight",
                                             NULL};
/* `on_close` is the key HyperQueue's parser reads, `mode` the one its docs name. */
static const char *const s_stdio_keys[] = {"path", "on_close", "mode", NULL};

/* "unknown field `k` in <where> at line L, expected one of `a`, `b`". */
static int s_check_keys(const json_t *obj, const char *const *allowed, const char *where,
                        hq_err_t *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        if (strcmp(key, HQ_TOML_LINE_KEY) == 0)
            continue;
        bool ok = false;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(allowed[i], key) == 0;
        if (ok)
            continue;
        hq_buf_t b = {0};
        for (size_t i = 0; allowed[i]; i++)
            hq_buf_printf(&b, "%s`%s`", i ? ", " : "", allowed[i]);
        hq_err_set(err, "unknown field `%s` in %s at line %d, expected one of %s", key, where,
                   hq_toml_line(obj), b.data ? b.data : "");
        hq_buf_free(&b);
        return -1;
    }
    return 0;
}

static int s_bad(hq_err_t *err, const char *key, const json_t *table, const char *what)
{
    return hq_err_set(err, "invalid value of `%s` in the table at line %d: expected %s", key,
                      hq_toml_line(table), what);
}

static int s_int(const json_t *t, const char *key, long long lo, long long hi, long long *out,
                 hq_err_t *err)
{
    json_t *v = json_object_get(t, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return s_bad(err, key, t, "an integer in range");
    *out = json_integer_value(v);
    return 0;
}

static int s_str(const json_t *t, const char *key, const char **out, hq_err_t *err)
{
    json_t *v = json_object_get(t, key);
    if (!json_is_string(v))
        return s_bad(err, key, t, "a string");
    *out = json_string_value(v);
    return 0;
}

static int s_duration(const json_t *t, const char *key, uint64_t *ns, hq_err_t *err)
{
    json_t *v = json_object_get(t, key);
    if (json_is_number(v)) {
        double s = json_number_value(v);
        if (!(s >= 0) || s > 1e9)
            return s_bad(err, key, t, "a duration");
        *ns = (uint64_t)(s * 1e9);
        return 0;
    }
    if (!json_is_string(v))
        return s_bad(err, key, t, "a duration");
    hq_err_t e;
    if (hq_duration_parse(json_string_value(v), ns, &e) != 0)
        return hq_err_set(err, "invalid value of `%s` in the table at line %d: %s", key,
                          hq_toml_line(t), e.text);
    return 0;
}

/* A channel without a key goes to the job's stream when it has one (stream). */
static int s_stdio(const json_t *t, const char *key, const char *dflt, bool stream, hq_stdio_t *out,
                   hq_err_t *err)
{
    json_t *v = json_object_get(t, key);
    hq_err_t e;
    if (!v && stream) {
        memset(out, 0, sizeof *out);
        out->kind = HQ_STDIO_STREAM;
        return 0;
    }
    if (!v)
        return hq_submit_parse_stdio(dflt, dflt, out, err);
    if (json_is_string(v)) {
        if (hq_submit_parse_stdio(json_string_value(v), dflt, out, &e) != 0)
            return hq_err_set(err, "invalid value of `%s` in the table at line %d: %s", key,
                              hq_toml_line(t), e.text);
        return 0;
    }
    if (!json_is_object(v))
        return s_bad(err, key, t, "a path or a table {path, on_close}");
    if (s_check_keys(v, s_stdio_keys, key, err) != 0)
        return -1;
    const char *path = NULL;
    if (s_str(v, "path", &path, err) != 0)
        return -1;
    bool rm = false;
    static const char *const close_keys[] = {"on_close", "mode"};
    for (int k = 0; k < 2; k++) {
        const char *mode = NULL;
        if (!json_object_get(v, close_keys[k]))
            continue;
        if (s_str(v, close_keys[k], &mode, err) != 0)
            return -1;
        if (strcmp(mode, "rm-if-finished") == 0)
            rm = true;
        else if (strcmp(mode, "never") != 0)
            return s_bad(err, close_keys[k], v, "\"never\" or \"rm-if-finished\"");
    }
    if (hq_submit_parse_stdio(path, dflt, out, &e) != 0)
        return hq_err_set(err, "invalid value of `path` in the table at line %d: %s",
                          hq_toml_line(v), e.text);
    if (rm)
        out->rm_if_finished = true;
    return 0;
}

/* One amount of a resources table: integer, float or "amount [policy]" / "all". */
static int s_rreq(const json_t *res, const char *name, hq_rreq_t *out, hq_err_t *err)
{
    json_t *v = json_object_get(res, name);
    char buf[64];
    const char *text;
    if (json_is_integer(v)) {
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        text = buf;
    } else if (json_is_real(v)) {
        snprintf(buf, sizeof buf, "%.10g", json_real_value(v));
        text = buf;
    } else if (json_is_string(v)) {
        text = json_string_value(v);
    } else {
        return s_bad(err, name, res, "an amount");
    }
    hq_err_t e;
    if (hq_rreq_parse(name, text, out, &e) != 0)
        return hq_err_set(err, "invalid request of resource `%s` at line %d: %s", name,
                          hq_toml_line(res), e.text);
    return 0;
}

/* One resource variant. implicit_cpus: the task has no [[task.request]] at all, so
 * it asks for `cpus = 1` (a request that names resources gets only those). */
static int s_variant(const json_t *rq, bool implicit_cpus, hq_rvariant_t *var, hq_err_t *err)
{
    memset(var, 0, sizeof *var);
    var->weight = HQ_AMOUNT_ONE;
    if (s_check_keys(rq, s_request_keys, "[[task.request]]", err) != 0)
        return -1;
    long long n = 0;
    if (json_object_get(rq, "n_nodes")) {
        if (s_int(rq, "n_nodes", 0, UINT32_MAX, &n, err) != 0)
            return -1;
        var->n_nodes = (uint32_t)n;
    }
    if (json_object_get(rq, "time_request") &&
        s_duration(rq, "time_request", &var->min_time_ns, err) != 0)
        return -1;
    json_t *w = json_object_get(rq, "weight");
    if (w) {
        double x = json_is_number(w) ? json_number_value(w) : -1;
        if (!(x > 0) || x * HQ_AMOUNT_ONE > UINT32_MAX || (uint32_t)(x * HQ_AMOUNT_ONE + 0.5) == 0)
            return hq_err_set(err, "Resource weight has to be positive number");
        var->weight = (uint32_t)(x * HQ_AMOUNT_ONE + 0.5);
    }
    json_t *res = json_object_get(rq, "resources");
    if (res && !json_is_object(res))
        return s_bad(err, "resources", rq, "a table");
    size_t nres = res ? json_object_size(res) : 0;
    var->entries = hq_calloc(nres + 2, sizeof(hq_rreq_t));
    /* cpus first (1 compact for single-node tasks without any request) */
    if (res && json_object_get(res, "cpus")) {
        if (var->n_nodes > 0)
            return hq_err_set(err, "A multi-node request at line %d cannot request cpus",
                              hq_toml_line(rq));
        if (s_rreq(res, "cpus", &var->entries[var->n_entries], err) != 0)
            return -1;
        var->n_entries++;
    } else if (implicit_cpus && var->n_nodes == 0) {
        if (hq_rreq_parse("cpus", "1", &var->entries[var->n_entries], err) != 0)
            return -1;
        var->n_entries++;
    }
    const char *key;
    json_t *v;
    json_object_foreach(res, key, v)
    {
        if (strcmp(key, HQ_TOML_LINE_KEY) == 0 || strcmp(key, "cpus") == 0)
            continue;
        if (s_rreq(res, key, &var->entries[var->n_entries], err) != 0)
            return -1;
        var->n_entries++;
    }
    return 0;
}

/* Fills def from a [[task]] / [array] table (keys already checked). */
static int s_def(const json_t *t, bool stream, hq_task_def_t *d, hq_err_t *err)
{
    memset(d, 0, sizeof *d);
    d->crash_kind = HQ_CRASH_LIMIT;
    d->crash_limit = 5;
    json_t *cmd = json_object_get(t, "command");
    if (!json_is_array(cmd) || json_array_size(cmd) == 0)
        return hq_err_set(err,
                          "missing field `command` (a non-empty array of strings) in the "
                          "task at line %d",
                          hq_toml_line(t));
    d->args = hq_calloc(json_array_size(cmd) + 1, sizeof(char *));
    size_t i;
    json_t *v;
    json_array_foreach(cmd, i, v)
    {
        if (!json_is_string(v))
            return s_bad(err, "command", t, "an array of strings");
        d->args[d->n_args++] = hq_strdup(json_string_value(v));
    }
    json_t *env = json_object_get(t, "env");
    if (env) {
        if (!json_is_object(env))
            return s_bad(err, "env", t, "a table of strings");
        const char **items = hq_calloc(json_object_size(env) + 1, sizeof(char *));
        char **owned = hq_calloc(json_object_size(env) + 1, sizeof(char *));
        size_t n = 0;
        const char *key;
        int rc = 0;
        json_object_foreach(env, key, v)
        {
            if (strcmp(key, HQ_TOML_LINE_KEY) == 0)
                continue;
            if (!json_is_string(v)) {
                rc = s_bad(err, key, env, "a string");
                break;
            }
            owned[n] = hq_asprintf("%s=%s", key, json_string_value(v));
            items[n] = owned[n];
            n++;
        }
        bool dups = false;
        if (rc == 0 && hq_submit_build_env(items, n, &d->env, &d->n_env, &dups, err) != 0)
            rc = -1;
        for (size_t k = 0; k < n; k++)
            free(owned[k]);
        free(owned);
        free(items);
        if (rc != 0)
            return -1;
    }
    const char *s = NULL;
    if (json_object_get(t, "cwd")) {
        if (s_str(t, "cwd", &s, err) != 0)
            return -1;
        if (strstr(s, "%{CWD}"))
            return hq_err_set(err, "Working directory path cannot contain the working "
                                   "directory placeholder `%%{CWD}`.");
        d->cwd = hq_strdup(s);
    } else {
        d->cwd = hq_strdup("%{SUBMIT_DIR}");
    }
    if (s_stdio(t, "stdout", S_DEFAULT_STDOUT, stream, &d->out, err) != 0 ||
        s_stdio(t, "stderr", S_DEFAULT_STDERR, stream, &d->err, err) != 0)
        return -1;
    if (json_object_get(t, "stdin")) {
        if (s_str(t, "stdin", &s, err) != 0)
            return -1;
        size_t len = json_string_length(json_object_get(t, "stdin"));
        if (len > HQ_MAX_ENTRY)
            return hq_err_set(err, "`stdin` at line %d is larger than %d bytes", hq_toml_line(t),
                              HQ_MAX_ENTRY);
        d->stdin_data.data = hq_malloc(len + 1);
        memcpy(d->stdin_data.data, s, len + 1);
        d->stdin_data.len = (uint32_t)len;
    }
    json_t *td = json_object_get(t, "task_dir");
    if (td) {
        if (!json_is_boolean(td))
            return s_bad(err, "task_dir", t, "a boolean");
        d->task_dir = json_is_true(td);
    }
    if (json_object_get(t, "time_limit") && s_duration(t, "time_limit", &d->time_limit_ns, err))
        return -1;
    long long n = 0;
    if (json_object_get(t, "priority")) {
        if (s_int(t, "priority", INT32_MIN, INT32_MAX, &n, err) != 0)
            return -1;
        d->priority = (int32_t)n;
    }
    json_t *cl = json_object_get(t, "crash_limit");
    if (cl) {
        hq_err_t e;
        char buf[32];
        const char *text = NULL;
        if (json_is_integer(cl)) {
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(cl));
            text = buf;
        } else if (json_is_string(cl)) {
            text = json_string_value(cl);
        } else {
            return s_bad(err, "crash_limit", t, "N, \"never-restart\" or \"unlimited\"");
        }
        if (hq_submit_parse_crash_limit(text, &d->crash_kind, &d->crash_limit, &e) != 0)
            return hq_err_set(err, "%s", e.text);
    }
    if (json_object_get(t, "pin")) {
        if (s_str(t, "pin", &s, err) != 0)
            return -1;
        if (strcmp(s, "none") == 0)
            d->pin = HQ_PIN_NONE;
        else if (strcmp(s, "taskset") == 0)
            d->pin = HQ_PIN_TASKSET;
        else if (strcmp(s, "omp") == 0)
            d->pin = HQ_PIN_OMP;
        else
            return s_bad(err, "pin", t, "\"none\", \"taskset\" or \"omp\"");
    }
    json_t *rq = json_object_get(t, "request");
    if (rq && (!json_is_array(rq) || json_array_size(rq) == 0))
        return s_bad(err, "request", t, "an array of tables ([[task.request]])");
    size_t nv = rq ? json_array_size(rq) : 1;
    if (nv > 255)
        return hq_err_set(err, "Too many resource variants in the task at line %d",
                          hq_toml_line(t));
    d->variants = hq_calloc(nv, sizeof(hq_rvariant_t));
    if (!rq) {
        json_t *empty = json_object();
        int rc = s_variant(empty, true, &d->variants[0], err);
        json_decref(empty);
        d->n_variants = 1;
        return rc;
    }
    json_array_foreach(rq, i, v)
    {
        if (!json_is_object(v))
            return s_bad(err, "request", t, "an array of tables ([[task.request]])");
        d->n_variants++;
        if (s_variant(v, false, &d->variants[i], err) != 0)
            return -1;
    }
    return 0;
}

static void s_def_clear(hq_task_def_t *d)
{
    for (uint32_t i = 0; i < d->n_args; i++)
        free(d->args[i]);
    free(d->args);
    hq_submit_free_env(d->env, d->n_env);
    free(d->cwd);
    free(d->out.path);
    free(d->err.path);
    free(d->stdin_data.data);
    for (uint32_t i = 0; i < d->n_variants; i++)
        hq_rvariant_clear(&d->variants[i]);
    free(d->variants);
    memset(d, 0, sizeof *d);
}

void hq_jobfile_clear(hq_submit_t *s)
{
    free(s->name);
    free(s->submit_dir);
    free(s->stream_dir);
    for (uint32_t i = 0; i < s->n_defs; i++)
        s_def_clear(&s->defs[i]);
    free(s->defs);
    hq_rangelist_clear(&s->ids);
    for (uint32_t i = 0; i < s->n_entries; i++)
        free(s->entries[i].data);
    free(s->entries);
    for (uint32_t i = 0; i < s->n_graph; i++)
        free(s->graph[i].deps);
    free(s->graph);
    memset(s, 0, sizeof *s);
}

static uint32_t s_add_def(hq_submit_t *s, uint32_t *cap)
{
    if (s->n_defs == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        s->defs = hq_realloc(s->defs, *cap * sizeof(hq_task_def_t));
    }
    memset(&s->defs[s->n_defs], 0, sizeof(hq_task_def_t));
    return s->n_defs++;
}

/* [[task]] list -> graph form. */
static int s_tasks(const json_t *tasks, hq_submit_t *s, hq_err_t *err)
{
    size_t n = json_array_size(tasks);
    s->graph = hq_calloc(n + 1, sizeof(hq_graph_task_t));
    uint32_t cap_defs = 0;
    /* Identical configurations (everything but id and deps) share a definition. */
    json_t *seen = json_object();
    /* Tasks without an id get the ids after the largest explicit one, in order (from
     * 0 when no task has one). */
    uint64_t next_id = 0;
    size_t i;
    json_t *t;
    json_array_foreach(tasks, i, t)
    {
        json_t *idv = json_is_object(t) ? json_object_get(t, "id") : NULL;
        if (json_is_integer(idv) && json_integer_value(idv) >= 0 &&
            (uint64_t)json_integer_value(idv) + 1 > next_id)
            next_id = (uint64_t)json_integer_value(idv) + 1;
    }
    int rc = 0;
    json_array_foreach(tasks, i, t)
    {
        if (!json_is_object(t)) {
            rc = hq_err_set(err, "`task` must be an array of tables ([[task]])");
            break;
        }
        if ((rc = s_check_keys(t, s_task_keys, "[[task]]", err)) != 0)
            break;
        hq_graph_task_t *g = &s->graph[s->n_graph];
        long long id = 0;
        if (json_object_get(t, "id")) {
            if ((rc = s_int(t, "id", 0, UINT32_MAX, &id, err)) != 0)
                break;
        } else {
            if (next_id > UINT32_MAX) {
                rc = hq_err_set(err, "Too many tasks");
                break;
            }
            id = (long long)next_id++;
        }
        g->id = (uint32_t)id;
        json_t *deps = json_object_get(t, "deps");
        if (deps) {
            if (!json_is_array(deps)) {
                rc = s_bad(err, "deps", t, "an array of task ids");
                break;
            }
            g->deps = hq_calloc(json_array_size(deps) + 1, sizeof(uint32_t));
            size_t k;
            json_t *d;
            json_array_foreach(deps, k, d)
            {
                if (!json_is_integer(d) || json_integer_value(d) < 0 ||
                    json_integer_value(d) > UINT32_MAX) {
                    rc = s_bad(err, "deps", t, "an array of task ids");
                    break;
                }
                g->deps[g->n_deps++] = (uint32_t)json_integer_value(d);
            }
            if (rc != 0) {
                s->n_graph++;
                break;
            }
        }
        s->n_graph++;
        json_t *copy = json_copy(t);
        json_object_del(copy, "id");
        json_object_del(copy, "deps");
        json_object_del(copy, HQ_TOML_LINE_KEY);
        json_t *request = json_object_get(copy, "request");
        if (json_is_array(request)) { /* drop the line numbers of nested tables */
            json_t *rc_copy = json_deep_copy(request);
            size_t k;
            json_t *r;
            json_array_foreach(rc_copy, k, r)
            {
                json_object_del(r, HQ_TOML_LINE_KEY);
                json_object_del(json_object_get(r, "resources"), HQ_TOML_LINE_KEY);
            }
            json_object_set_new(copy, "request", rc_copy);
        }
        json_t *env = json_object_get(copy, "env");
        if (json_is_object(env)) {
            json_t *ec = json_copy(env);
            json_object_del(ec, HQ_TOML_LINE_KEY);
            json_object_set_new(copy, "env", ec);
        }
        json_t *io[2] = {json_object_get(copy, "stdout"), json_object_get(copy, "stderr")};
        for (int k = 0; k < 2; k++)
            if (json_is_object(io[k])) {
                json_t *ic = json_copy(io[k]);
                json_object_del(ic, HQ_TOML_LINE_KEY);
                json_object_set_new(copy, k == 0 ? "stdout" : "stderr", ic);
            }
        char *key = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(copy);
        json_t *known = key ? json_object_get(seen, key) : NULL;
        if (known) {
            g->def_idx = (uint32_t)json_integer_value(known);
        } else {
            uint32_t di = s_add_def(s, &cap_defs);
            if ((rc = s_def(t, s->stream_dir != NULL, &s->defs[di], err)) != 0) {
                free(key);
                break;
            }
            g->def_idx = di;
            if (key)
                json_object_set_new(seen, key, json_integer(di));
        }
        free(key);
    }
    json_decref(seen);
    return rc;
}

/* [array] -> array form. */
static int s_array(const json_t *a, hq_submit_t *s, hq_err_t *err)
{
    if (!json_is_object(a))
        return hq_err_set(err, "`array` must be a table ([array])");
    if (s_check_keys(a, s_array_keys, "[array]", err) != 0)
        return -1;
    uint32_t cap = 0;
    s_add_def(s, &cap);
    if (s_def(a, s->stream_dir != NULL, &s->defs[0], err) != 0)
        return -1;
    json_t *entries = json_object_get(a, "entries");
    if (entries) {
        if (!json_is_array(entries))
            return s_bad(err, "entries", a, "an array");
        s->entries = hq_calloc(json_array_size(entries) + 1, sizeof(hq_bytes_t));
        size_t i;
        json_t *e;
        json_array_foreach(entries, i, e)
        {
            char *text = json_is_string(e) ? hq_strdup(json_string_value(e))
                                           : json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY);
            if (!text)
                text = hq_strdup("");
            s->entries[s->n_entries].data = (uint8_t *)text;
            s->entries[s->n_entries].len = (uint32_t)strlen(text);
            s->n_entries++;
        }
    }
    json_t *ids = json_object_get(a, "ids");
    hq_rangelist_t rl = {0};
    hq_err_t e;
    if (ids) {
        if (json_is_string(ids)) {
            if (hq_rangelist_parse(json_string_value(ids), &rl, &e) != 0)
                return hq_err_set(err, "invalid value of `ids` in [array]: %s", e.text);
        } else if (json_is_integer(ids) && json_integer_value(ids) >= 0 &&
                   json_integer_value(ids) <= UINT32_MAX) {
            char buf[32];
            snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(ids));
            if (hq_rangelist_parse(buf, &rl, &e) != 0)
                return hq_err_set(err, "invalid value of `ids` in [array]: %s", e.text);
        } else {
            return s_bad(err, "ids", a, "a string of id ranges such as \"1,2,50-100\"");
        }
    }
    if (entries) {
        if (ids) {
            /* Paired by position: the k-th id runs the k-th entry. */
            uint64_t nids = hq_rangelist_count(&rl);
            if (nids != s->n_entries) {
                hq_rangelist_clear(&rl);
                return hq_err_set(err,
                                  "`ids` in [array] at line %d gives %llu ids but `entries` "
                                  "has %u; they are paired by position, so the counts must "
                                  "match",
                                  hq_toml_line(a), (unsigned long long)nids, s->n_entries);
            }
            s->ids = rl;
        } else if (s->n_entries > 0) {
            s->ids.ranges = hq_calloc(1, sizeof(hq_range_t));
            s->ids.n = 1;
            s->ids.ranges[0] = (hq_range_t){.start = 0, .end = s->n_entries - 1, .step = 1};
        }
    } else if (ids) {
        s->ids = rl;
    } else {
        s->ids.ranges = hq_calloc(1, sizeof(hq_range_t));
        s->ids.n = 1;
        s->ids.ranges[0] = (hq_range_t){.start = 0, .end = 0, .step = 1};
    }
    return 0;
}

int hq_jobfile_build(const char *text, size_t len, hq_submit_t *s, hq_err_t *err)
{
    memset(s, 0, sizeof *s);
    json_t *root = hq_toml_parse(text, len, err);
    if (!root)
        return -1;
    int rc = -1;
    long long n = 0;
    const char *str = NULL;
    if (s_check_keys(root, s_job_keys, "the job definition", err) != 0)
        goto out;
    if (json_object_get(root, "name")) {
        if (s_str(root, "name", &str, err) != 0)
            goto out;
        if (strpbrk(str, "\n\t")) {
            hq_err_set(err, "name cannot have a newline or a tab");
            goto out;
        }
        s->name = hq_strdup(str);
    }
    if (json_object_get(root, "max_fails")) {
        if (s_int(root, "max_fails", 0, UINT32_MAX, &n, err) != 0)
            goto out;
        s->has_max_fails = true;
        s->max_fails = (uint32_t)n;
    }
    if (json_object_get(root, "stream")) {
        if (s_str(root, "stream", &str, err) != 0)
            goto out;
        if (!*str) {
            hq_err_set(err, "`stream` cannot be empty: give the directory to stream into");
            goto out;
        }
        s->stream_dir = hq_strdup(str);
    }
    json_t *tasks = json_object_get(root, "task");
    json_t *array = json_object_get(root, "array");
    if (tasks && array) {
        hq_err_set(err, "Definition of array job and individual task cannot be mixed");
        goto out;
    }
    if (tasks) {
        if (!json_is_array(tasks) || json_array_size(tasks) == 0) {
            hq_err_set(err, "`task` must be a non-empty array of tables ([[task]])");
            goto out;
        }
        if (s_tasks(tasks, s, err) != 0)
            goto out;
    } else if (array) {
        if (s_array(array, s, err) != 0)
            goto out;
    } else {
        hq_err_set(err, "The job definition has no task: add `[[task]]` tables or an `[array]`");
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    if (rc != 0)
        hq_jobfile_clear(s);
    return rc;
}

int hq_cmd_job_submit_file(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "job submit-file", argc, argv);
    if (rc >= 0)
        return rc;
    hq_submit_t s;
    memset(&s, 0, sizeof s);
    const char *path = hq_args_pos(c.args, 0);
    const char *job = hq_args_get(c.args, "job");
    uint32_t job_id = 0;
    char *text = NULL;
    size_t len = 0;
    hq_err_t err;
    if (job) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(job, &end, 10);
        if (*job < '0' || *job > '9' || *end || errno || v > UINT32_MAX) {
            rc = hq_cli_invalid(c.spec->opts, "job", job, "invalid digit found in string");
            goto out;
        }
        job_id = (uint32_t)v;
    }
    if (hq_read_file(path, (size_t)HQ_CLIENT_MAXMSG, &text, &len) != 0) {
        int e = errno;
        rc = hq_cli_error(&c, "Cannot read %s: %s (os error %d)", path, strerror(e), e);
        goto out;
    }
    if (hq_jobfile_build(text, len, &s, &err) != 0) {
        /* HyperQueue's exact texts (cli/REFERENCE.md §8) stay as they are; others name the
         * file. */
        if (strncmp(err.text, "Task ", 5) == 0 ||
            strncmp(err.text, "Invalid dependency", 18) == 0 ||
            strncmp(err.text, "Definition of array", 19) == 0)
            rc = hq_cli_error(&c, "%s", err.text);
        else
            rc = hq_cli_error(&c, "Invalid job definition file %s: %s", path, err.text);
        goto out;
    }
    if (job_id && s.name) {
        rc = hq_cli_error(&c, "Parameter --name is not allowed when submitting to an open job.");
        goto out;
    }
    if (job_id && s.has_max_fails) {
        rc = hq_cli_error(&c,
                          "Parameter --max-fails is not allowed when submitting to an open job.");
        goto out;
    }
    /* Without an open job every dependency must be in the file: check here so a bad
     * file fails before connecting (the broker checks again, also against the job). */
    if (s.n_graph > 0 && !job_id) {
        if (hq_graph_check(s.graph, s.n_graph, NULL, NULL, 0, &err) != 0) {
            rc = hq_cli_error(&c, "%s", err.text);
            goto out;
        }
    }
    s.job_id = job_id;
    if (!job_id && !s.name)
        s.name = hq_strdup("job");
    char cwdbuf[PATH_MAX];
    if (!getcwd(cwdbuf, sizeof cwdbuf)) {
        int e = errno;
        rc = hq_cli_error(&c, "Cannot get the current directory: %s (os error %d)", strerror(e), e);
        goto out;
    }
    s.submit_dir = hq_strdup(cwdbuf);
    if (hq_client_key_submit(&s) != 0) {
        rc = hq_cli_error(&c, "Cannot initialise libsodium");
        goto out;
    }
    uint64_t id = 0;
    rc = hq_cli_submit(&c, &s, &id);
    if (rc != 0)
        goto out;
    if (c.g.output == HQ_OUTPUT_JSON) {
        json_t *o = json_pack("{s:I}", "id", (json_int_t)id);
        hq_output_json(o);
        json_decref(o);
    } else if (c.g.output == HQ_OUTPUT_QUIET) {
        printf("%llu\n", (unsigned long long)id);
    } else {
        printf("Job submitted successfully, job ID: %llu\n", (unsigned long long)id);
    }
    fflush(stdout);
out:
    free(text);
    hq_jobfile_clear(&s);
    hq_cli_end(&c);
    return rc;
}
