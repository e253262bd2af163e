/* Read-only requests: server info, job/task queries and JOB_WAIT, answered with the
 * JSON documents of proto/wire/PROTOCOL.md ("Query replies"), plus server stop. */
#define HQ_LOG_MODULE "hq::server"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "query.h"
#include "journal/glue.h"
#include "mnodes.h"
#include "hq_duration.h"
#include "hq_log.h"
#include "hq_placeholder.h"
#include "hq_taskdef_json.h"
#include "hq_util.h"

static json_t *s_time(uint64_t ns)
{
    if (ns == 0)
        return json_null();
    char *t = hq_time_rfc3339(ns, 9);
    json_t *v = json_string(t);
    free(t);
    return v;
}

json_t *hq_server_info_json(hq_broker_t *b)
{
    const char *jp = hq_jr_path(b);
    return json_pack("{s:n,s:s,s:s,s:s,s:i,s:i,s:i,s:o,s:s,s:o}", "server_dir", "server_uid",
                     b->conf.access.server_uid, "client_host", b->conf.access.client.host,
                     "worker_host", b->conf.access.worker.host, "client_port",
                     (json_int_t)b->conf.access.client.port, "worker_port",
                     (json_int_t)b->conf.access.worker.port, "pid", (json_int_t)getpid(),
                     "start_date", s_time(b->conf.start_ns), "version", HQ_VERSION, "journal_path",
                     jp ? json_string(jp) : json_null());
}

int hq_h_server_info(hq_broker_t *b, hq_creq_t *req)
{
    hq_client_reply_json(&b->replies, req, hq_server_info_json(b), NULL);
    return 0;
}

int hq_h_server_stop(hq_broker_t *b, hq_creq_t *req)
{
    hq_info("Received Stop command from client");
    hq_client_reply_log(&b->replies, req, 0, NULL, 0);
    b->stopping = true;
    return 0;
}

/* ---- jobs ---- */

static json_t *s_job_info(const hq_job_t *j)
{
    const uint32_t *c = j->counts;
    return json_pack(
        "{s:i,s:s,s:i,s:b,s:{s:i,s:i,s:i,s:i,s:i,s:i},s:o}", "id", (json_int_t)j->id, "name",
        j->name, "task_count", (json_int_t)j->n_tasks, "is_open", j->open, "task_stats", "running",
        (json_int_t)c[HQ_TS_RUNNING], "finished", (json_int_t)c[HQ_TS_FINISHED], "failed",
        (json_int_t)c[HQ_TS_FAILED], "canceled", (json_int_t)c[HQ_TS_CANCELED], "aborted",
        (json_int_t)c[HQ_TS_ABORTED], "waiting", (json_int_t)(c[HQ_TS_WAITING] + c[HQ_TS_ASSIGNED]),
        "cancel_reason", j->cancel_reason ? json_string(j->cancel_reason) : json_null());
}

int hq_h_job_list(hq_broker_t *b, hq_creq_t *req)
{
    const hq_query_t *q = &req->msg->u.query;
    json_t *arr = json_array();
    for (uint32_t id = 1; id <= b->jobs.max_id; id++) {
        const hq_job_t *j = b->jobs.tab[id];
        if (!j)
            continue;
        bool show;
        if (q->flag)
            show = true;
        else if (q->states)
            show = (hq_job_state_bit(j) & q->states) != 0;
        else
            show = j->open || (hq_job_state_bit(j) & (HQ_ST_WAITING | HQ_ST_RUNNING));
        if (show)
            json_array_append_new(arr, s_job_info(j));
    }
    hq_client_reply_json(&b->replies, req, arr,
                         json_pack("{s:i}", "total", (json_int_t)b->jobs.n_live));
    return 0;
}

static json_t *s_td_json(const hq_jdef_t *jd)
{
    return hq_task_def_json(jd->def, jd->cwd, jd->out, jd->err);
}

/* Substitutes the per-task placeholders the worker would use. Caller frees. */
static char *s_task_path(const char *p, const hq_job_t *j, const hq_task_t *t, const char *cwd,
                         const char *uid)
{
    char job[16], task[16], inst[16];
    snprintf(job, sizeof job, "%u", j->id);
    snprintf(task, sizeof task, "%u", t->id);
    snprintf(inst, sizeof inst, "%u", t->instance);
    hq_placeholder_vals_t v = {
        .job_id = job, .task_id = task, .instance_id = inst, .server_uid = uid};
    return hq_placeholder_path(p, &v, cwd);
}

static json_t *s_task_json(hq_broker_t *b, const hq_job_t *j, const hq_task_t *t)
{
    json_t *o = json_pack("{s:i,s:s}", "id", (json_int_t)t->id, "state", hq_tstate_json(t->state));
    if (t->start_ns != 0) {
        const hq_jdef_t *jd = &j->defs[t->def];
        char *cwd = s_task_path(jd->cwd, j, t, NULL, b->conf.access.server_uid);
        json_object_set_new(o, "cwd", json_string(cwd));
        for (int k = 0; k < 2; k++) {
            const hq_stdio_t *io = k ? &jd->def->err : &jd->def->out;
            const char *path = k ? jd->err : jd->out;
            json_t *v;
            if (io->kind == HQ_STDIO_FILE && path) {
                char *p = s_task_path(path, j, t, cwd, b->conf.access.server_uid);
                v = json_string(p);
                free(p);
            } else {
                v = hq_stdio_json(io, NULL);
            }
            json_object_set_new(o, k ? "stderr" : "stdout", v);
        }
        free(cwd);
        /* For `hq job cat` of a streamed task: where its output is. */
        const char *sdir = j->submits[jd->submit].stream_dir;
        if (sdir && (jd->def->out.kind == HQ_STDIO_STREAM || jd->def->err.kind == HQ_STDIO_STREAM))
            json_object_set_new(o, "_stream", json_string(sdir));
        json_object_set_new(o, "started_at", s_time(t->start_ns));
        uint32_t n_nodes;
        const uint32_t *nodes = hq_mn_nodes(j, t->id, &n_nodes);
        if (n_nodes > 1) {
            json_t *ws = json_array();
            for (uint32_t k = 0; k < n_nodes; k++)
                json_array_append_new(ws, json_integer(nodes[k]));
            json_object_set_new(o, "workers", ws);
        } else {
            json_object_set_new(o, "worker", json_integer(t->worker));
        }
    }
    /* A task canceled after its start ends at the cancel: its makespan stays fixed. */
    if (t->state == HQ_TS_FINISHED || t->state == HQ_TS_FAILED ||
        (t->state == HQ_TS_CANCELED && t->start_ns != 0 && t->end_ns != 0))
        json_object_set_new(o, "finished_at", s_time(t->end_ns));
    if (t->state == HQ_TS_FAILED)
        json_object_set_new(o, "error", json_string(t->error ? t->error : ""));
    json_t *hosts = json_array();
    uint32_t n_nodes = 0;
    const uint32_t *nodes = t->start_ns ? hq_mn_nodes(j, t->id, &n_nodes) : NULL;
    if (!nodes) {
        nodes = &t->worker;
        n_nodes = t->start_ns ? 1 : 0;
    }
    for (uint32_t k = 0; k < n_nodes; k++) {
        hq_worker_t *w = hq_registry_get(&b->reg, nodes[k]);
        if (w)
            json_array_append_new(hosts, json_string(w->conf->hostname ? w->conf->hostname : ""));
    }
    json_object_set_new(o, "_hosts", hosts);
    json_object_set_new(o, "_instance", json_integer(t->instance));
    return o;
}

static json_t *s_job_detail(hq_broker_t *b, const hq_job_t *j, bool all_tasks)
{
    json_t *submits = json_array();
    for (uint32_t s = 0; s < j->n_submits; s++) {
        const hq_jsubmit_t *sub = &j->submits[s];
        if (!sub->graph) {
            for (uint32_t d = 0; d < j->n_defs; d++)
                if (j->defs[d].submit == s) {
                    json_array_append_new(submits,
                                          json_pack("{s:o}", "array", s_td_json(&j->defs[d])));
                    break;
                }
        } else {
            json_t *g = json_array();
            for (uint32_t d = 0; d < j->n_defs; d++)
                if (j->defs[d].submit == s)
                    json_array_append_new(g, s_td_json(&j->defs[d]));
            json_array_append_new(submits, json_pack("{s:o}", "graph", g));
        }
    }
    json_t *tasks = json_array();
    uint32_t failed_shown = 0;
    uint8_t *seen = hq_calloc((size_t)b->reg.max_id + 1, 1);
    uint32_t *ids = hq_malloc(((size_t)j->n_tasks + 1) * sizeof(uint32_t));
    for (uint32_t i = 0; i < j->n_tasks; i++) {
        const hq_task_t *t = &j->tasks[i];
        ids[i] = t->id;
        if (t->start_ns && t->worker && t->worker <= b->reg.max_id)
            seen[t->worker] = 1;
        uint32_t n_nodes;
        const uint32_t *nodes = t->start_ns ? hq_mn_nodes(j, t->id, &n_nodes) : NULL;
        for (uint32_t k = 0; nodes && k < n_nodes; k++)
            if (nodes[k] && nodes[k] <= b->reg.max_id)
                seen[nodes[k]] = 1;
        bool include = all_tasks || t->state == HQ_TS_RUNNING ||
                       (t->state == HQ_TS_FAILED && failed_shown < 5);
        if (t->state == HQ_TS_FAILED && !all_tasks && include)
            failed_shown++;
        if (include)
            json_array_append_new(tasks, s_task_json(b, j, t));
    }
    json_t *hosts = json_array();
    for (uint32_t w = 1; w <= b->reg.max_id; w++)
        if (seen[w])
            json_array_append_new(
                hosts, json_string(b->reg.tab[w] && b->reg.tab[w]->conf->hostname
                                       ? b->reg.tab[w]->conf->hostname
                                       : "N/A")); /* unknown: a worker of before a restart */
    free(seen);
    char *ids_text = NULL;
    if (j->n_submits == 1 && !j->submits[0].graph && j->submits[0].ids_text)
        ids_text = hq_strdup(j->submits[0].ids_text);
    else
        ids_text = hq_idset_format(ids, j->n_tasks);
    free(ids);
    json_t *o = json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "info", s_job_info(j), "max_fails",
                          j->has_max_fails ? json_integer(j->max_fails) : json_null(), "started_at",
                          s_time(j->submit_ns), "finished_at",
                          hq_job_is_complete(j) ? s_time(j->finish_ns) : json_null(), "submits",
                          submits, "tasks", tasks);
    json_object_set_new(o, "_ids", json_string(ids_text ? ids_text : ""));
    free(ids_text);
    json_object_set_new(o, "_submit_dir",
                        j->n_submits ? json_string(j->submits[0].submit_dir) : json_null());
    json_object_set_new(o, "_worker_hosts", hosts);
    json_object_set_new(o, "_n_failed", json_integer(j->counts[HQ_TS_FAILED]));
    return o;
}

static json_t *s_ids_json(const uint32_t *ids, uint32_t n)
{
    json_t *a = json_array();
    for (uint32_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(ids[i]));
    return a;
}

int hq_h_job_info(hq_broker_t *b, hq_creq_t *req)
{
    const hq_query_t *q = &req->msg->u.query;
    uint32_t n, nm, *miss;
    uint32_t *ids = hq_jobtab_select(&b->jobs, &q->sel, &n, &miss, &nm);
    json_t *arr = json_array();
    for (uint32_t i = 0; i < n; i++)
        json_array_append_new(arr, s_job_detail(b, b->jobs.tab[ids[i]], q->flag));
    hq_client_reply_json(&b->replies, req, arr,
                         json_pack("{s:o}", "not_found", s_ids_json(miss, nm)));
    free(ids);
    free(miss);
    return 0;
}

int hq_h_job_summary(hq_broker_t *b, hq_creq_t *req)
{
    json_int_t c[7] = {0}; /* RUNNING WAITING FINISHED FAILED ABORTED CANCELED OPENED */
    for (uint32_t id = 1; id <= b->jobs.max_id; id++) {
        const hq_job_t *j = b->jobs.tab[id];
        if (!j)
            continue;
        switch (hq_job_state_bit(j)) {
        case HQ_ST_RUNNING:
            c[0]++;
            break;
        case HQ_ST_WAITING:
            c[1]++;
            break;
        case HQ_ST_FINISHED:
            c[2]++;
            break;
        case HQ_ST_FAILED:
            c[3]++;
            break;
        case HQ_ST_ABORTED:
            c[4]++;
            break;
        case HQ_ST_CANCELED:
            c[5]++;
            break;
        default:
            c[6]++;
            break;
        }
    }
    json_t *o = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "Running", c[0], "Waiting", c[1], "Finished",
                          c[2], "Failed", c[3], "Aborted", c[4], "Canceled", c[5]);
    if (c[6] > 0)
        json_object_set_new(o, "Opened", json_integer(c[6]));
    hq_client_reply_json(&b->replies, req, o, NULL);
    return 0;
}

/* ---- tasks ---- */

static bool s_task_selected(const hq_task_t *t, const hq_query_t *q)
{
    if (q->tasks.n > 0 && !hq_rangelist_contains(&q->tasks, t->id))
        return false;
    return q->states == 0 || (hq_tstate_bit(t->state) & q->states);
}

int hq_h_task_list(hq_broker_t *b, hq_creq_t *req)
{
    const hq_query_t *q = &req->msg->u.query;
    uint32_t n, nm, *miss;
    uint32_t *ids = hq_jobtab_select(&b->jobs, &q->sel, &n, &miss, &nm);
    json_t *res = json_object();
    for (uint32_t i = 0; i < n; i++) {
        const hq_job_t *j = b->jobs.tab[ids[i]];
        json_t *arr = json_array();
        for (uint32_t k = 0; k < j->n_tasks; k++)
            if (s_task_selected(&j->tasks[k], q))
                json_array_append_new(arr, s_task_json(b, j, &j->tasks[k]));
        char key[16];
        snprintf(key, sizeof key, "%u", j->id);
        json_object_set_new(res, key, arr);
    }
    hq_client_reply_json(&b->replies, req, res,
                         json_pack("{s:o}", "not_found", s_ids_json(miss, nm)));
    free(ids);
    free(miss);
    return 0;
}

int hq_h_task_info(hq_broker_t *b, hq_creq_t *req)
{
    const hq_query_t *q = &req->msg->u.query;
    uint32_t n, nm, *miss;
    uint32_t *ids = hq_jobtab_select(&b->jobs, &q->sel, &n, &miss, &nm);
    json_t *arr = json_array();
    json_t *nf = json_array();
    const hq_job_t *j = n > 0 ? b->jobs.tab[ids[0]] : NULL;
    if (j) {
        uint64_t total = hq_rangelist_count(&q->tasks);
        for (uint32_t r = 0; r < q->tasks.n && total <= 1000000; r++) {
            const hq_range_t *rg = &q->tasks.ranges[r];
            uint32_t step = rg->step ? rg->step : 1;
            for (uint64_t id = rg->start; id <= rg->end; id += step) {
                const hq_task_t *t = hq_job_task(j, (uint32_t)id);
                if (!t) {
                    json_array_append_new(nf, json_integer((json_int_t)id));
                    continue;
                }
                json_t *o = s_task_json(b, j, t);
                json_object_set_new(o, "_def", s_td_json(&j->defs[t->def]));
                json_t *deps = json_array();
                const hq_dnode_t *node = hq_job_dnode(j, t->id);
                for (uint32_t k = 0; node && k < node->n_deps; k++)
                    json_array_append_new(deps, json_integer(node->deps[k]));
                json_object_set_new(o, "_deps", deps);
                json_object_set_new(o, "_crash_count", json_integer(t->crashes));
                json_array_append_new(arr, o);
            }
        }
    }
    hq_client_reply_json(&b->replies, req, arr,
                         json_pack("{s:b,s:o}", "job_not_found", j == NULL, "tasks_not_found", nf));
    free(ids);
    free(miss);
    return 0;
}

int hq_h_task_ids(hq_broker_t *b, hq_creq_t *req)
{
    const hq_query_t *q = &req->msg->u.query;
    uint32_t n, nm, *miss;
    uint32_t *ids = hq_jobtab_select(&b->jobs, &q->sel, &n, &miss, &nm);
    json_t *res = json_object();
    for (uint32_t i = 0; i < n; i++) {
        const hq_job_t *j = b->jobs.tab[ids[i]];
        json_t *arr = json_array();
        for (uint32_t k = 0; k < j->n_tasks; k++)
            if (q->states == 0 || (hq_tstate_bit(j->tasks[k].state) & q->states))
                json_array_append_new(arr, json_integer(j->tasks[k].id));
        char key[16];
        snprintf(key, sizeof key, "%u", j->id);
        json_object_set_new(res, key, arr);
    }
    hq_client_reply_json(&b->replies, req, res,
                         json_pack("{s:o}", "not_found", s_ids_json(miss, nm)));
    free(ids);
    free(miss);
    return 0;
}

/* ---- JOB_WAIT ---- */

/* Long polls one client connection may hold at once. `hq job wait` holds one; a peer
 * that sends more (each up to a day long) gets its oldest answered early instead, with
 * the current status, so the waiters a peer can pin stay bounded. */
#define S_WAITS_PER_PEER 16

/* Current progress of a waiter's jobs; returns true when all are done. */
static json_t *s_wait_status(hq_broker_t *b, const uint32_t *job_ids, uint32_t n,
                             bool without_close, bool *done)
{
    uint64_t c[HQ_TS_COUNT] = {0};
    uint32_t jobs = 0, jobs_done = 0;
    for (uint32_t i = 0; i < n; i++) {
        const hq_job_t *j = hq_jobtab_get(&b->jobs, job_ids[i]);
        if (!j)
            continue; /* forgotten meanwhile: nothing to wait for */
        jobs++;
        for (int s = 0; s < HQ_TS_COUNT; s++)
            c[s] += j->counts[s];
        if (hq_job_is_complete(j) && (without_close || !j->open))
            jobs_done++;
    }
    *done = jobs_done == jobs;
    return json_pack("{s:b,s:i,s:i,s:{s:I,s:I,s:I,s:I,s:I,s:I}}", "done", *done, "jobs",
                     (json_int_t)jobs, "jobs_done", (json_int_t)jobs_done, "counts", "waiting",
                     (json_int_t)(c[HQ_TS_WAITING] + c[HQ_TS_ASSIGNED]), "running",
                     (json_int_t)c[HQ_TS_RUNNING], "finished", (json_int_t)c[HQ_TS_FINISHED],
                     "failed", (json_int_t)c[HQ_TS_FAILED], "canceled",
                     (json_int_t)c[HQ_TS_CANCELED], "aborted", (json_int_t)c[HQ_TS_ABORTED]);
}

/* --on-notify: the notifications after seq of these jobs, and the cursor to send next. */
static void s_add_notes(hq_broker_t *b, json_t *st, uint64_t seq, const uint32_t *ids, uint32_t n)
{
    json_object_set_new(st, "notifications", hq_notes_json(&b->notes, seq, ids, n));
    json_object_set_new(st, "notify_next", json_integer((json_int_t)b->notes.last_seq));
}

/* Answers waiter w with its current status and removes it (the cursor is on w). */
static void s_answer_waiter(hq_broker_t *b, hq_waiter_t *w, json_t *st)
{
    if (w->notify)
        s_add_notes(b, st, w->note_seq, w->job_ids, w->n_jobs);
    json_t *doc = json_pack("{s:o,s:o}", "result", st, "meta", json_object());
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    hq_reply_t r = {.json = text};
    hq_client_reply(&b->replies, w->rid, w->rid_len, w->request_id, &r);
    free(text);
    free(w->job_ids);
    free(w);
    zlistx_delete(b->waiters, zlistx_cursor(b->waiters));
}

/* Makes room for one more waiter of this peer (S_WAITS_PER_PEER). */
static void s_limit_waiters(hq_broker_t *b, const uint8_t *rid, size_t rid_len)
{
    if (!b->waiters)
        return;
    uint32_t n = 0;
    hq_waiter_t *oldest = NULL;
    for (hq_waiter_t *w = zlistx_first(b->waiters); w; w = zlistx_next(b->waiters)) {
        if (w->rid_len == rid_len && memcmp(w->rid, rid, rid_len) == 0) {
            if (!oldest)
                oldest = w;
            n++;
        }
    }
    if (n < S_WAITS_PER_PEER)
        return;
    hq_warn("A client holds %u job waits; answering its oldest early", n);
    zlistx_find(b->waiters, oldest);
    bool done;
    json_t *st = s_wait_status(b, oldest->job_ids, oldest->n_jobs, oldest->without_close, &done);
    s_answer_waiter(b, oldest, st);
}

int hq_h_job_wait(hq_broker_t *b, hq_creq_t *req)
{
    const hq_query_t *q = &req->msg->u.query;
    uint32_t n, nm, *miss;
    uint32_t *ids = hq_jobtab_select(&b->jobs, &q->sel, &n, &miss, &nm);
    free(miss);
    bool done;
    json_t *st = s_wait_status(b, ids, n, q->flag, &done);
    /* --on-notify: text is the client's notification cursor (decimal). */
    bool notify = q->text != NULL;
    uint64_t note_seq = notify ? strtoull(q->text, NULL, 10) : 0;
    if (notify && note_seq > b->notes.last_seq)
        note_seq = b->notes.last_seq; /* a cursor of an earlier run of the server */
    if (done || q->number == 0 || (notify && hq_notes_pending(&b->notes, note_seq, ids, n))) {
        if (notify)
            s_add_notes(b, st, note_seq, ids, n);
        hq_client_reply_json(&b->replies, req, st, NULL);
        free(ids);
        return 0;
    }
    json_decref(st);
    s_limit_waiters(b, req->rid, req->rid_len);
    hq_waiter_t *w = hq_calloc(1, sizeof *w);
    memcpy(w->rid, req->rid, req->rid_len);
    w->rid_len = req->rid_len;
    w->request_id = req->msg->hdr.request_id;
    w->job_ids = ids;
    w->n_jobs = n;
    w->without_close = q->flag;
    w->notify = notify;
    w->note_seq = note_seq;
    uint64_t ms = q->number > 86400000ULL ? 86400000ULL : q->number;
    w->deadline = hq_mono_ns() + ms * HQ_NS_PER_MS;
    zlistx_add_end(b->waiters, w);
    return 0;
}

void hq_broker_check_waiters(hq_broker_t *b, bool timeout_only)
{
    (void)timeout_only;
    if (!b->waiters || zlistx_size(b->waiters) == 0)
        return;
    uint64_t now = hq_mono_ns();
    hq_waiter_t *w = zlistx_first(b->waiters);
    while (w) {
        bool done;
        json_t *st = s_wait_status(b, w->job_ids, w->n_jobs, w->without_close, &done);
        if (done || now >= w->deadline ||
            (w->notify && hq_notes_pending(&b->notes, w->note_seq, w->job_ids, w->n_jobs))) {
            s_answer_waiter(b, w, st);
            w = zlistx_first(b->waiters);
            continue;
        }
        json_decref(st);
        w = zlistx_next(b->waiters);
    }
}
