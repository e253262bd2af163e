/* `hq task explain`: why a task can or cannot run on each live worker. For every
 * worker and resource variant it lists the checks (time request, nodes of the group,
 * then resources, in HyperQueue's order) with what the worker provides and what the
 * task requests, as bare amounts. This looks at worker totals, not at what is free
 * right now. For a waiting task it also names why a worker that could run it does
 * not take it now: a --min-utilization, or a reservation the scheduler made for a
 * task of another job (asked from the scheduler, so the reply waits for it). */
#include <stdlib.h>
#include <string.h>

#include "explain.h"
#include "hq_duration.h"
#include "hq_util.h"
#include "schedwait.h"

/* An explanation waiting for the scheduler's state (schedwait.h). */
typedef struct {
    uint32_t job; /* the task's job */
    json_t *res;  /* the reply's result, "waits" still to add */
} s_held_t;

/* One check as JSON: {"kind", "ok", "provides", "request"}. */
static json_t *s_check(const char *kind, bool ok, char *provides, char *request)
{
    json_t *o = json_pack("{s:s,s:b,s:s,s:s}", "kind", kind, "ok", ok, "provides",
                          provides ? provides : "", "request", request ? request : "");
    free(provides);
    free(request);
    return o;
}

static const hq_wres_t *s_wres(const hq_worker_conf_t *c, const char *name)
{
    for (uint32_t i = 0; i < c->resources.n; i++)
        if (c->resources.res[i].name && strcmp(c->resources.res[i].name, name) == 0)
            return &c->resources.res[i];
    return NULL;
}

/* Remaining lifetime of a worker in ns (UINT64_MAX = unlimited). */
static uint64_t s_lifetime(const hq_worker_t *w)
{
    if (w->conf->time_limit_ns == 0)
        return UINT64_MAX;
    /* time_limit_ns is the lifetime left when the worker started */
    uint64_t reg_wall = w->conf->started_ns, wall = hq_wall_ns();
    uint64_t used = wall > reg_wall ? wall - reg_wall : 0;
    return used >= w->conf->time_limit_ns ? 0 : w->conf->time_limit_ns - used;
}

static uint32_t s_group_size(hq_broker_t *b, const char *group)
{
    uint32_t n = 0;
    for (uint32_t id = 1; id <= b->reg.max_id; id++) {
        const hq_worker_t *w = b->reg.tab[id];
        if (w && w->state == HQ_WS_RUNNING && w->conf->group && group &&
            strcmp(w->conf->group, group) == 0)
            n++;
    }
    return n;
}

/* The checks of one variant on one worker; *ok = all passed. */
static json_t *s_variant(hq_broker_t *b, const hq_worker_t *w, const hq_rvariant_t *v, bool *ok)
{
    json_t *checks = json_array();
    *ok = true;
    if (v->min_time_ns > 0) {
        uint64_t left = s_lifetime(w);
        bool pass = left >= v->min_time_ns;
        *ok = *ok && pass;
        /* whole seconds, as a human duration ("4m 53s") */
        const uint64_t sec = 1000000000ULL;
        char *prov =
            left == UINT64_MAX ? hq_strdup("unlimited") : hq_duration_format(left / sec * sec);
        json_array_append_new(
            checks, s_check("time", pass, prov, hq_duration_format(v->min_time_ns / sec * sec)));
    }
    if (v->n_nodes > 0) {
        uint32_t n = s_group_size(b, w->conf->group);
        bool pass = n >= v->n_nodes;
        *ok = *ok && pass;
        json_array_append_new(checks, s_check("nodes", pass, hq_asprintf("group size %u", n),
                                              hq_asprintf("%u", v->n_nodes)));
    }
    for (uint32_t e = 0; e < v->n_entries; e++) {
        const hq_rreq_t *r = &v->entries[e];
        const hq_wres_t *have = s_wres(w->conf, r->name);
        hq_amount_t cap = 0;
        if (have)
            cap = have->kind == HQ_RES_SUM ? hq_wres_capacity(have)
                                           : hq_wres_capacity(have) * HQ_AMOUNT_ONE;
        bool pass = have && cap > 0 && (r->all || r->amount <= cap);
        *ok = *ok && pass;
        char *prov = hq_amount_format(cap); /* 0 when the worker lacks it */
        char *req = r->all ? hq_strdup("all") : hq_amount_format(r->amount);
        json_array_append_new(checks, s_check(r->name, pass, prov, req));
    }
    return checks;
}

static void s_answer(hq_broker_t *b, const uint8_t *rid, size_t rid_len, uint64_t request_id,
                     void *data, const char *sched_text);
static void s_drop(void *data);

int hq_h_task_explain(hq_broker_t *b, hq_creq_t *req)
{
    const hq_query_t *q = &req->msg->u.query;
    uint32_t n, nm, *miss;
    uint32_t *ids = hq_jobtab_select(&b->jobs, &q->sel, &n, &miss, &nm);
    hq_job_t *j = n > 0 ? b->jobs.tab[ids[0]] : NULL;
    free(ids);
    free(miss);
    if (!j)
        return hq_client_error(&b->replies, req, HQ_ERR_NOT_FOUND, "Job not found");
    if (q->tasks.n != 1 || q->tasks.ranges[0].start != q->tasks.ranges[0].end)
        return hq_client_error(&b->replies, req, HQ_ERR_INVALID, "Exactly one task id is expected");
    uint32_t tid = q->tasks.ranges[0].start;
    const hq_task_t *t = hq_job_task(j, tid);
    if (!t)
        return hq_client_error(&b->replies, req, HQ_ERR_NOT_FOUND, "Task %u not found in job %u",
                               tid, j->id);
    const hq_dnode_t *node = hq_job_dnode(j, tid);
    uint32_t n_deps = 0, n_waiting = 0;
    for (uint32_t k = 0; node && k < node->n_deps; k++) {
        const hq_task_t *d = hq_job_task(j, node->deps[k]);
        n_deps++;
        if (d && d->state != HQ_TS_FINISHED)
            n_waiting++;
    }
    const hq_task_def_t *def = j->defs[t->def].def;
    json_t *workers = json_array();
    for (uint32_t id = 1; id <= b->reg.max_id; id++) {
        const hq_worker_t *w = b->reg.tab[id];
        if (!w || w->state != HQ_WS_RUNNING)
            continue;
        json_t *vars = json_array();
        uint32_t n_ok = 0;
        for (uint32_t v = 0; v < def->n_variants; v++) {
            bool ok;
            json_t *checks = s_variant(b, w, &def->variants[v], &ok);
            n_ok += ok;
            json_array_append_new(vars, json_pack("{s:b,s:o}", "runnable", ok, "checks", checks));
        }
        json_array_append_new(workers,
                              json_pack("{s:i,s:i,s:o}", "worker_id", (json_int_t)id,
                                        "n_enabled_variants", (json_int_t)n_ok, "variants", vars));
    }
    json_t *expl = json_pack("{s:i,s:i,s:o}", "n_task_deps", (json_int_t)n_deps, "n_waiting_deps",
                             (json_int_t)n_waiting, "workers", workers);
    json_t *res = json_pack("{s:{s:i,s:i},s:o}", "task_id", "job_id", (json_int_t)j->id,
                            "job_task_id", (json_int_t)tid, "explanation", expl);
    if (t->state != HQ_TS_WAITING || n_waiting > 0 || !b->ready.sched) {
        hq_client_reply_json(&b->replies, req, res, json_object());
        return 0;
    }
    s_held_t *h = hq_calloc(1, sizeof *h);
    h->job = j->id;
    h->res = res;
    hq_schedwait_hold(b, req, s_answer, s_drop, h);
    return 0;
}

/* The scheduler's worker entry with this id in its state document, or NULL. */
static const json_t *s_sched_worker(const json_t *sched, json_int_t id)
{
    size_t i;
    const json_t *w;
    json_array_foreach(json_object_get(sched, "workers"), i, w)
    {
        if (json_integer_value(json_object_get(w, "id")) == id)
            return w;
    }
    return NULL;
}

/* Adds "waits" to the explanation: for each worker that could run the task, why it
 * does not take it now (min utilization, or reserved for another job). */
static void s_add_waits(hq_broker_t *b, s_held_t *h, const json_t *sched)
{
    json_t *expl = json_object_get(h->res, "explanation");
    json_t *waits = json_array();
    size_t i;
    const json_t *wk;
    json_array_foreach(json_object_get(expl, "workers"), i, wk)
    {
        json_int_t id = json_integer_value(json_object_get(wk, "worker_id"));
        if (json_integer_value(json_object_get(wk, "n_enabled_variants")) <= 0 || id <= 0 ||
            (uint64_t)id > b->reg.max_id || !b->reg.tab[id])
            continue;
        const hq_worker_t *w = b->reg.tab[id];
        if (w->conf->min_utilization > 0)
            json_array_append_new(waits, json_pack("{s:I,s:s,s:f}", "worker_id", id, "reason",
                                                   "min_utilization", "min_utilization",
                                                   w->conf->min_utilization));
        const json_t *sw = s_sched_worker(sched, id);
        json_int_t rj = json_integer_value(json_object_get(sw, "reserved_for_job"));
        if (sw && json_is_integer(json_object_get(sw, "reserved_for_job")) &&
            rj != (json_int_t)h->job)
            json_array_append_new(waits, json_pack("{s:I,s:s,s:I}", "worker_id", id, "reason",
                                                   "reservation", "job", rj));
    }
    json_object_set_new(expl, "waits", waits);
}

/* The scheduler's state arrived (NULL: it cannot come): adds the waits, answers. */
static void s_answer(hq_broker_t *b, const uint8_t *rid, size_t rid_len, uint64_t request_id,
                     void *data, const char *sched_text)
{
    s_held_t *h = data;
    json_t *sched = sched_text ? json_loads(sched_text, 0, NULL) : NULL;
    s_add_waits(b, h, sched);
    json_decref(sched);
    hq_client_reply_held_json(&b->replies, rid, rid_len, request_id, h->res);
    free(h);
}

static void s_drop(void *data)
{
    s_held_t *h = data;
    json_decref(h->res);
    free(h);
}
