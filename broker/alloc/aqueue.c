/* Allocation queues as data (aqueue.h): the parameters document, the queue and
 * allocation records and their JSON for `alloc list` / `alloc info`. */
#include "aqueue.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hq_duration.h"
#include "hq_render.h"
#include "hq_util.h"

#define S_MAX_LIST 1024 /* --resource values or extra arguments */

const char *hq_amgr_word(enum hq_amgr m)
{
    return m == HQ_AMGR_PBS ? "PBS" : "SLURM";
}

const char *hq_amgr_json(enum hq_amgr m)
{
    return m == HQ_AMGR_PBS ? "PBS" : "Slurm";
}

const char *hq_astate_json(enum hq_astate s)
{
    static const char *const names[] = {"queued", "running", "finished", "failed"};
    return s <= HQ_AS_FAILED ? names[s] : "failed";
}

/* An optional string member (NULL when null/absent); -1 when of another type. */
static int s_str(const json_t *o, const char *key, char **out, hq_err_t *err)
{
    const json_t *v = json_object_get(o, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return hq_err_set(err, "Queue parameter %s must be a string", key);
    *out = hq_strdup(json_string_value(v));
    return 0;
}

static int s_uint(const json_t *o, const char *key, uint64_t min, uint64_t max, uint64_t *out,
                  hq_err_t *err)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min ||
        (uint64_t)json_integer_value(v) > max)
        return hq_err_set(err, "Queue parameter %s must be an integer from %llu to %llu", key,
                          (unsigned long long)min, (unsigned long long)max);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

/* A string array member; no item may hold a newline when no_newline. */
static int s_list(const json_t *o, const char *key, bool no_newline, char ***out, uint32_t *n,
                  hq_err_t *err)
{
    const json_t *v = json_object_get(o, key);
    *out = NULL;
    *n = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v) || json_array_size(v) > S_MAX_LIST)
        return hq_err_set(err, "Queue parameter %s must be a list of at most %d strings", key,
                          S_MAX_LIST);
    *out = hq_calloc(json_array_size(v) + 1, sizeof **out);
    size_t i;
    const json_t *it;
    json_array_foreach(v, i, it)
    {
        const char *s = json_string_value(it);
        if (!s)
            return hq_err_set(err, "Queue parameter %s must be a list of strings", key);
        if (no_newline && strchr(s, '\n'))
            return hq_err_set(err,
                              "Additional argument '%s' contains a newline, which would end its "
                              "line of the submit script; give each argument without newlines",
                              s);
        (*out)[(*n)++] = hq_strdup(s);
    }
    return 0;
}

int hq_aparams_from_json(const char *text, hq_aparams_t *p, hq_err_t *err)
{
    memset(p, 0, sizeof *p);
    json_error_t jerr;
    json_t *o = text ? json_loads(text, 0, &jerr) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        return hq_err_set(err, "Queue parameters are not a JSON object");
    }
    const char *mgr = json_string_value(json_object_get(o, "manager"));
    uint64_t backlog = 1, per_alloc = 1, max_workers = 0, tl = 0, wtl = 0;
    uint64_t idle = 5 * 60 * HQ_NS_PER_SEC;
    const json_t *mu = json_object_get(o, "min_utilization");
    int rc = -1;
    if (!mgr || (strcmp(mgr, "slurm") != 0 && strcmp(mgr, "pbs") != 0)) {
        hq_err_set(err, "Unknown manager '%s': use pbs or slurm", mgr ? mgr : "");
        goto out;
    }
    p->mgr = strcmp(mgr, "pbs") == 0 ? HQ_AMGR_PBS : HQ_AMGR_SLURM;
    if (s_uint(o, "timelimit_ns", 1, UINT64_MAX / 2, &tl, err) ||
        s_uint(o, "worker_time_limit_ns", 1, UINT64_MAX / 2, &wtl, err) ||
        s_uint(o, "idle_timeout_ns", 0, UINT64_MAX / 2, &idle, err) ||
        s_uint(o, "backlog", 1, UINT32_MAX, &backlog, err) ||
        s_uint(o, "max_workers_per_alloc", 1, UINT32_MAX, &per_alloc, err) ||
        s_uint(o, "max_worker_count", 1, UINT32_MAX, &max_workers, err))
        goto out;
    if (tl == 0) {
        hq_err_set(err, "The time limit of the queue (--time-limit) is missing");
        goto out;
    }
    if (wtl > tl) {
        hq_err_set(err, "Worker time limit cannot be larger than queue time limit");
        goto out;
    }
    if (mu && (!json_is_number(mu) || json_number_value(mu) < 0.0 || json_number_value(mu) > 1.0 ||
               isnan(json_number_value(mu)))) {
        hq_err_set(err, "Minimal utilization has to be in the interval [0.0, 1.0].");
        goto out;
    }
    p->timelimit_ns = tl;
    p->worker_time_limit_ns = wtl;
    p->idle_timeout_ns = idle;
    p->backlog = (uint32_t)backlog;
    p->per_alloc = (uint32_t)per_alloc;
    p->max_workers = (uint32_t)max_workers;
    p->min_util = mu ? json_number_value(mu) : 0.0;
    p->no_ht = json_is_true(json_object_get(o, "no_hyper_threading"));
    if (s_str(o, "name", &p->name, err) || s_str(o, "cpus", &p->cpus, err) ||
        s_str(o, "group", &p->group, err) || s_str(o, "coupling", &p->coupling, err) ||
        s_str(o, "detect_resources", &p->detect, err) ||
        s_str(o, "overview_interval", &p->overview, err) ||
        s_str(o, "on_server_lost", &p->on_lost, err) ||
        s_str(o, "worker_start_cmd", &p->start_cmd, err) ||
        s_str(o, "worker_stop_cmd", &p->stop_cmd, err) ||
        s_str(o, "worker_wrap_cmd", &p->wrap_cmd, err) ||
        s_list(o, "resources", false, &p->resources, &p->n_resources, err) ||
        s_list(o, "additional_args", true, &p->extra, &p->n_extra, err))
        goto out;
    if (!p->on_lost)
        p->on_lost = hq_strdup("finish-running");
    if (strcmp(p->on_lost, "stop") != 0 && strcmp(p->on_lost, "finish-running") != 0) {
        hq_err_set(err, "Unknown --on-server-lost policy '%s': use stop or finish-running",
                   p->on_lost);
        goto out;
    }
    if (p->name && (strchr(p->name, '\n') || strchr(p->name, '\t') || strchr(p->name, '/'))) {
        hq_err_set(err, "Queue name '%s' cannot have a newline, a tab or a '/'", p->name);
        goto out;
    }
    rc = 0;
out:
    json_decref(o);
    if (rc != 0)
        hq_aparams_clear(p);
    return rc;
}

static void s_free_list(char **l, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        free(l[i]);
    free(l);
}

void hq_aparams_clear(hq_aparams_t *p)
{
    char **strs[] = {&p->name,     &p->cpus,    &p->group,     &p->coupling, &p->detect,
                     &p->overview, &p->on_lost, &p->start_cmd, &p->stop_cmd, &p->wrap_cmd};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
    s_free_list(p->resources, p->n_resources);
    s_free_list(p->extra, p->n_extra);
    p->resources = p->extra = NULL;
    p->n_resources = p->n_extra = 0;
}

bool hq_aparams_predict(const hq_aparams_t *p, hq_wres_list_t *out)
{
    memset(out, 0, sizeof *out);
    if (!p->cpus)
        return false;
    out->res = hq_calloc(p->n_resources + 1, sizeof *out->res);
    hq_err_t err;
    if (hq_wres_parse_cpus(p->cpus, &out->res[0], &err) != 0) {
        hq_wres_list_clear(out);
        return false;
    }
    out->n = 1;
    for (uint32_t i = 0; i < p->n_resources; i++)
        if (hq_wres_parse_named(p->resources[i], &out->res[out->n], &err) == 0)
            out->n++;
    return true;
}

hq_allocation_t *hq_aqueue_add_alloc(hq_aqueue_t *q, uint32_t seq, const char *workdir,
                                     uint32_t target)
{
    if (q->n_allocs == q->cap_allocs) {
        q->cap_allocs = q->cap_allocs ? q->cap_allocs * 2 : 8;
        q->allocs = hq_realloc(q->allocs, q->cap_allocs * sizeof *q->allocs);
    }
    hq_allocation_t *a = hq_calloc(1, sizeof *a);
    a->id = hq_strdup("");
    a->seq = seq;
    a->workdir = hq_strdup(workdir);
    a->target = target;
    a->state = HQ_AS_QUEUED;
    q->allocs[q->n_allocs++] = a;
    return a;
}

static void s_alloc_free(hq_allocation_t *a)
{
    free(a->id);
    free(a->workdir);
    free(a);
}

void hq_aqueue_drop_alloc(hq_aqueue_t *q, hq_allocation_t *a)
{
    for (uint32_t i = 0; i < q->n_allocs; i++) {
        if (q->allocs[i] != a)
            continue;
        memmove(&q->allocs[i], &q->allocs[i + 1], (q->n_allocs - i - 1) * sizeof *q->allocs);
        q->n_allocs--;
        s_alloc_free(a);
        return;
    }
}

hq_allocation_t *hq_aqueue_find(const hq_aqueue_t *q, const char *id)
{
    for (uint32_t i = 0; id && *id && i < q->n_allocs; i++)
        if (strcmp(q->allocs[i]->id, id) == 0)
            return q->allocs[i];
    return NULL;
}

void hq_aqueue_destroy(hq_aqueue_t **qp)
{
    hq_aqueue_t *q = qp ? *qp : NULL;
    if (!q)
        return;
    for (uint32_t i = 0; i < q->n_allocs; i++)
        s_alloc_free(q->allocs[i]);
    free(q->allocs);
    hq_aparams_clear(&q->p);
    hq_wres_list_clear(&q->known);
    free(q->params_text);
    free(q->dir);
    free(q->last_error);
    free(q->why_idle);
    free(q);
    *qp = NULL;
}

static json_t *s_strings(char *const *l, uint32_t n)
{
    json_t *a = json_array();
    for (uint32_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(l[i]));
    return a;
}

json_t *hq_aqueue_json(const hq_aqueue_t *q, json_t *worker_args)
{
    const hq_aparams_t *p = &q->p;
    char *summary = q->has_known ? hq_wres_summary(&q->known, false) : hq_strdup("<unknown>");
    json_t *known = q->has_known ? hq_wres_json(&q->known) : json_null();
    json_t *o = json_pack(
        "{s:I,s:o,s:s,s:s,s:o,s:I,s:I,s:f,s:o,s:o,s:o,s:s,s:s,s:s}", "id", (json_int_t)q->id,
        "name", p->name ? json_string(p->name) : json_null(), "state",
        q->paused ? "Paused" : "Active", "manager", hq_amgr_json(p->mgr), "additional_args",
        s_strings(p->extra, p->n_extra), "backlog", (json_int_t)p->backlog, "max_workers_per_alloc",
        (json_int_t)p->per_alloc, "timelimit", hq_duration_seconds(p->timelimit_ns),
        "max_worker_count", p->max_workers ? json_integer(p->max_workers) : json_null(),
        "worker_args", worker_args, "known_worker_resources", known, "_state",
        q->paused ? "PAUSED" : "ACTIVE", "_manager", hq_amgr_word(p->mgr), "_resources", summary);
    free(summary);
    return o;
}

json_t *hq_allocation_json(const hq_allocation_t *a)
{
    bool ok_start = a->state == HQ_AS_RUNNING || a->state == HQ_AS_FINISHED;
    json_t *o = json_pack("{s:s,s:I,s:s,s:s,s:I,s:I,s:I}", "id", a->id, "target_worker_count",
                          (json_int_t)a->target, "status", hq_astate_json(a->state), "workdir",
                          a->workdir, "_queued_ns", (json_int_t)a->queued_ns, "_started_ns",
                          (json_int_t)a->started_ns, "_ended_ns", (json_int_t)a->ended_ns);
    const struct {
        const char *key;
        uint64_t ns;
    } times[] = {{"queued_at", a->queued_ns},
                 {"started_at", ok_start ? a->started_ns : 0},
                 {"ended_at", a->state == HQ_AS_FINISHED ? a->ended_ns : 0}};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
        char *text = times[i].ns ? hq_time_rfc3339(times[i].ns, 9) : NULL;
        json_object_set_new(o, times[i].key, text ? json_string(text) : json_null());
        free(text);
    }
    return o;
}
