/* The NDJSON events of a journal record (hq_jrec_ndjson): one JSON line per event,
 * {"event":{...,"type":"<kebab>"},"time":"<RFC3339>"} with sorted keys. `hq journal
 * export` prints them from the files, the running server serves them to
 * `hq journal stream` / `replay` (cli/REFERENCE.md §3.8). Pure: record in, lines out. */
#include <jansson.h>
#include <stdlib.h>

#include "hq_idrange.h"
#include "hq_journal.h"
#include "hq_render.h"
#include "hq_taskdef_json.h"
#include "hq_util.h"

static void s_emit(json_t *ev, uint64_t wall_ns, hq_jline_fn *fn, void *arg, uint64_t *n)
{
    char *t = hq_time_rfc3339(wall_ns, 6);
    json_t *line = json_pack("{s:o,s:s}", "event", ev, "time", t);
    free(t);
    char *text = json_dumps(line, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(line);
    if (text) {
        fn(text, arg);
        free(text);
        (*n)++;
    }
}

static json_t *s_task_ev(const char *type, uint32_t job, uint32_t task)
{
    return json_pack("{s:s,s:I,s:I}", "type", type, "job", (json_int_t)job, "task",
                     (json_int_t)task);
}

/* HyperQueue's words for why a worker ended (reason: enum hq_wstate of the broker:
 * 1 connection lost, 2 heartbeat lost, 3 idle timeout, 4 stopped, 5 time limit). */
static const char *s_lost_reason(uint32_t code)
{
    switch (code) {
    case 1:
        return "ConnectionLost";
    case 2:
        return "HeartbeatLost";
    case 3:
        return "IdleTimeout";
    case 4:
        return "Stopped";
    case 5:
        return "TimeLimitReached";
    default:
        return "ConnectionLost";
    }
}

/* submit_desc of a job-created event: the tasks (array or graph form), the submit
 * directory and the stream directory. */
static json_t *s_submit_desc(const hq_submit_t *sub)
{
    json_t *task_desc;
    if (sub->n_graph == 0 && sub->n_defs > 0) {
        char *ids = hq_rangelist_format(&sub->ids);
        json_t *entries = json_null();
        if (sub->n_entries) {
            entries = json_array();
            for (uint32_t i = 0; i < sub->n_entries; i++)
                json_array_append_new(
                    entries, json_stringn((const char *)sub->entries[i].data, sub->entries[i].len));
        }
        const hq_task_def_t *d = &sub->defs[0];
        task_desc = json_pack("{s:{s:s,s:o,s:o}}", "Array", "ids", ids ? ids : "", "entries",
                              entries, "task_desc", hq_task_def_json(d, d->cwd, NULL, NULL));
        free(ids);
    } else {
        json_t *tasks = json_array();
        for (uint32_t i = 0; i < sub->n_graph; i++) {
            const hq_graph_task_t *g = &sub->graph[i];
            json_t *deps = json_array();
            for (uint32_t k = 0; k < g->n_deps; k++)
                json_array_append_new(deps, json_integer(g->deps[k]));
            const hq_task_def_t *d = g->def_idx < sub->n_defs ? &sub->defs[g->def_idx] : NULL;
            json_array_append_new(
                tasks, json_pack("{s:I,s:o,s:o}", "id", (json_int_t)g->id, "task_desc",
                                 d ? hq_task_def_json(d, d->cwd, NULL, NULL) : json_null(),
                                 "task_deps", deps));
        }
        task_desc = json_pack("{s:{s:o}}", "Graph", "tasks", tasks);
    }
    return json_pack("{s:o,s:s,s:o}", "task_desc", task_desc, "submit_dir",
                     sub->submit_dir ? sub->submit_dir : "", "stream_path",
                     sub->stream_dir ? json_string(sub->stream_dir) : json_null());
}

/* The event of a task_state record (snapshots): the state it reached, if any. */
static json_t *s_task_state_ev(const hq_jrec_t *rec)
{
    const char *type = NULL;
    switch (rec->u.task_state.state) {
    case 2: /* HQ_TS_RUNNING */
        type = "task-started";
        break;
    case 3:
        type = "task-finished";
        break;
    case 4:
        type = "task-failed";
        break;
    case 5:
        type = "task-canceled";
        break;
    case 6:
        type = "task-aborted";
        break;
    default:
        return NULL;
    }
    json_t *ev = s_task_ev(type, rec->u.task_state.job, rec->u.task_state.task);
    json_object_set_new(ev, "instance", json_integer(rec->u.task_state.instance));
    if (rec->u.task_state.state == 2)
        json_object_set_new(ev, "worker", json_integer(rec->u.task_state.worker));
    if (rec->u.task_state.state == 4)
        json_object_set_new(ev, "error",
                            json_string(rec->u.task_state.error ? rec->u.task_state.error : ""));
    return ev;
}

uint64_t hq_jline_job_completed(uint32_t job, uint64_t wall_ns, hq_jline_fn *fn, void *arg)
{
    uint64_t n = 0;
    s_emit(json_pack("{s:s,s:I}", "type", "job-completed", "job", (json_int_t)job), wall_ns, fn,
           arg, &n);
    return n;
}

/* The autoalloc-* event of an automatic allocation record (NULL: a queue paused or
 * resumed, which HyperQueue has no event for). */
static json_t *s_alloc_ev(const hq_jrec_t *rec)
{
    json_int_t q = (json_int_t)rec->u.alloc.queue;
    switch (rec->type) {
    case HQ_JR_ALLOC_QUEUE: {
        json_t *params = json_loads(rec->u.alloc.text, 0, NULL);
        return json_pack("{s:s,s:I,s:o}", "type", "autoalloc-queue-created", "queue_id", q,
                         "params", params ? params : json_null());
    }
    case HQ_JR_ALLOC_QUEUE_STATE:
        return rec->u.alloc.state == 2
                   ? json_pack("{s:s,s:I}", "type", "autoalloc-queue-removed", "queue_id", q)
                   : NULL;
    case HQ_JR_ALLOC_QUEUED:
        return json_pack("{s:s,s:I,s:s,s:I}", "type", "autoalloc-allocation-queued", "queue_id", q,
                         "allocation_id", rec->u.alloc.id, "worker_count",
                         (json_int_t)rec->u.alloc.count);
    default:
        if (rec->u.alloc.state == 1)
            return json_pack("{s:s,s:I,s:s}", "type", "autoalloc-allocation-started", "queue_id", q,
                             "allocation_id", rec->u.alloc.id);
        return json_pack("{s:s,s:I,s:s,s:s}", "type", "autoalloc-allocation-finished", "queue_id",
                         q, "allocation_id", rec->u.alloc.id, "status",
                         rec->u.alloc.state == 3 ? "failed" : "finished");
    }
}

uint64_t hq_jrec_ndjson(const hq_jrec_t *rec, hq_jline_fn *fn, void *arg)
{
    uint64_t n = 0;
    json_t *ev = NULL;
    uint64_t ts = rec->wall_ns;
    switch (rec->type) {
    case HQ_JR_SERVER_START:
        ev = json_pack("{s:s,s:s,s:I}", "type", "server-start", "server_uid",
                       rec->u.server_start.uid ? rec->u.server_start.uid : "", "epoch",
                       (json_int_t)rec->u.server_start.epoch);
        break;
    case HQ_JR_SERVER_STOP:
        ev = json_pack("{s:s}", "type", "server-stop");
        break;
    case HQ_JR_JOB_SUBMIT: {
        /* Replayed records carry the decoded message, appended ones the body. */
        const hq_submit_t *sub =
            rec->u.job_submit.msg ? &rec->u.job_submit.msg->u.submit : rec->u.job_submit.submit;
        /* closed_job: a job made whole by this submit (not tasks added to an open job). */
        ev = json_pack("{s:s,s:I,s:b}", "type", "job-created", "job",
                       (json_int_t)rec->u.job_submit.job, "closed_job", !sub || sub->job_id == 0);
        if (sub) {
            json_object_set_new(
                ev, "job_desc",
                json_pack("{s:s,s:o}", "name", sub->name ? sub->name : "", "max_fails",
                          sub->has_max_fails ? json_integer(sub->max_fails) : json_null()));
            json_object_set_new(ev, "submit_desc", s_submit_desc(sub));
        }
        break;
    }
    case HQ_JR_JOB_OPEN:
        ev = json_pack("{s:s,s:I,s:s}", "type", "job-open", "job", (json_int_t)rec->u.job_open.job,
                       "name", rec->u.job_open.name ? rec->u.job_open.name : "job");
        break;
    case HQ_JR_JOB_CLOSE:
        ev = json_pack("{s:s,s:I}", "type", "job-close", "job", (json_int_t)rec->u.job.job);
        break;
    case HQ_JR_JOB_FORGET:
        ev = json_pack("{s:s,s:I}", "type", "job-forget", "job", (json_int_t)rec->u.job.job);
        break;
    case HQ_JR_JOB_CANCEL:
        ev = json_pack("{s:s,s:I}", "type", "job-cancel", "job", (json_int_t)rec->u.job_cancel.job);
        if (rec->u.job_cancel.reason)
            json_object_set_new(ev, "reason", json_string(rec->u.job_cancel.reason));
        break;
    case HQ_JR_TASK_STARTED:
        ev = s_task_ev("task-started", rec->u.task.job, rec->u.task.task);
        json_object_set_new(ev, "instance", json_integer(rec->u.task.instance));
        json_object_set_new(ev, "worker", json_integer(rec->u.task.worker));
        break;
    case HQ_JR_TASK_FINISHED:
        ev = s_task_ev("task-finished", rec->u.task.job, rec->u.task.task);
        json_object_set_new(ev, "instance", json_integer(rec->u.task.instance));
        break;
    case HQ_JR_TASK_FAILED:
        ev = s_task_ev("task-failed", rec->u.task.job, rec->u.task.task);
        json_object_set_new(ev, "instance", json_integer(rec->u.task.instance));
        json_object_set_new(ev, "error", json_string(rec->u.task.error ? rec->u.task.error : ""));
        break;
    case HQ_JR_TASK_STARTED_MN: {
        ev = s_task_ev("task-started", rec->u.nodes.job, rec->u.nodes.task);
        json_object_set_new(ev, "instance", json_integer(rec->u.nodes.instance));
        json_object_set_new(ev, "worker", json_integer(rec->u.nodes.workers[0]));
        json_t *ws = json_array();
        for (uint32_t k = 0; k < rec->u.nodes.n; k++)
            json_array_append_new(ws, json_integer(rec->u.nodes.workers[k]));
        json_object_set_new(ev, "workers", ws);
        if (rec->u.nodes.variant > 0)
            json_object_set_new(ev, "variant", json_integer(rec->u.nodes.variant));
        break;
    }
    case HQ_JR_TASKS_STARTED:
    case HQ_JR_TASKS_STARTED_V:
        for (uint32_t k = 0; k < rec->u.batch.n; k++) {
            json_t *e = s_task_ev("task-started", rec->u.batch.job, rec->u.batch.insts[k].task);
            json_object_set_new(e, "instance", json_integer(rec->u.batch.insts[k].instance));
            json_object_set_new(e, "worker", json_integer(rec->u.batch.worker));
            json_object_set_new(e, "workers", json_pack("[I]", (json_int_t)rec->u.batch.worker));
            if (rec->type == HQ_JR_TASKS_STARTED_V && rec->u.batch.variant > 0)
                json_object_set_new(e, "variant", json_integer(rec->u.batch.variant));
            s_emit(e, ts, fn, arg, &n);
        }
        return n;
    case HQ_JR_TASKS_FINISHED:
        for (uint32_t k = 0; k < rec->u.batch.n; k++) {
            json_t *e = s_task_ev("task-finished", rec->u.batch.job, rec->u.batch.insts[k].task);
            json_object_set_new(e, "instance", json_integer(rec->u.batch.insts[k].instance));
            s_emit(e, ts, fn, arg, &n);
        }
        return n;
    case HQ_JR_TASKS_CANCELED:
    case HQ_JR_TASKS_ABORTED: {
        const char *type = rec->type == HQ_JR_TASKS_CANCELED ? "task-canceled" : "task-aborted";
        for (uint32_t r = 0; r < rec->u.tasks.n; r++)
            for (uint64_t id = rec->u.tasks.ranges[r].first; id <= rec->u.tasks.ranges[r].last;
                 id++)
                s_emit(s_task_ev(type, rec->u.tasks.job, (uint32_t)id), ts, fn, arg, &n);
        return n;
    }
    case HQ_JR_WORKER_UP: {
        /* The whole configuration, as `worker info` JSON shows it. */
        const hq_register_t *reg =
            rec->u.worker_up.msg ? &rec->u.worker_up.msg->u.reg : rec->u.worker_up.reg;
        json_t *conf = json_object();
        if (reg) {
            json_t *w = hq_worker_json(rec->u.worker_up.worker, &reg->conf);
            json_object_update(conf, json_object_get(w, "configuration"));
            json_decref(w);
        }
        ev = json_pack("{s:s,s:I,s:o}", "type", "worker-connected", "id",
                       (json_int_t)rec->u.worker_up.worker, "configuration", conf);
        break;
    }
    case HQ_JR_WORKER_LOST:
        ev = json_pack("{s:s,s:I,s:s}", "type", "worker-lost", "id",
                       (json_int_t)rec->u.worker_lost.worker, "reason",
                       s_lost_reason(rec->u.worker_lost.reason));
        break;
    case HQ_JR_WORKER_OVERVIEW: {
        json_t *hw = json_loads(rec->u.overview.hw_state, 0, NULL);
        ev = json_pack("{s:s,s:I,s:o}", "type", "worker-overview", "id",
                       (json_int_t)rec->u.overview.worker, "hw-state", hw ? hw : json_null());
        break;
    }
    case HQ_JR_ALLOC_QUEUE:
    case HQ_JR_ALLOC_QUEUE_STATE:
    case HQ_JR_ALLOC_QUEUED:
    case HQ_JR_ALLOC_STATE:
        ev = s_alloc_ev(rec);
        break;
    case HQ_JR_TASK_STATE:
        ev = s_task_state_ev(rec);
        if (rec->u.task_state.end_ns)
            ts = rec->u.task_state.end_ns;
        else if (rec->u.task_state.start_ns)
            ts = rec->u.task_state.start_ns;
        break;
    default:
        return 0; /* bookkeeping records (high-waters, snapshot end) */
    }
    if (ev)
        s_emit(ev, ts, fn, arg, &n);
    return n;
}
