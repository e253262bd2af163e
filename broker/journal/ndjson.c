/* The NDJSON events of a journal record (hq_jrec_ndjson): one JSON line per event,
 * {"event":{...,"type":"<kebab>"},"time":"<RFC3339>"} with sorted keys. `hq journal
 * export` prints them from the files, the running server serves them to
 * `hq journal stream` / `replay` (cli/REFERENCE.md §3.8). Pure: record in, lines out. */
#include <jansson.h>
#include <stdlib.h>

#include "hq_journal.h"
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
        ev =
            json_pack("{s:s,s:I}", "type", "job-created", "job", (json_int_t)rec->u.job_submit.job);
        if (sub && sub->name)
            json_object_set_new(ev, "name", json_string(sub->name));
        if (sub)
            json_object_set_new(ev, "attached", json_boolean(sub->job_id != 0));
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
    case HQ_JR_TASKS_STARTED:
        for (uint32_t k = 0; k < rec->u.batch.n; k++) {
            json_t *e = s_task_ev("task-started", rec->u.batch.job, rec->u.batch.insts[k].task);
            json_object_set_new(e, "instance", json_integer(rec->u.batch.insts[k].instance));
            json_object_set_new(e, "worker", json_integer(rec->u.batch.worker));
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
        json_t *conf = json_object();
        const hq_register_t *reg =
            rec->u.worker_up.msg ? &rec->u.worker_up.msg->u.reg : rec->u.worker_up.reg;
        if (reg && reg->conf.hostname)
            json_object_set_new(conf, "hostname", json_string(reg->conf.hostname));
        if (reg && reg->conf.group)
            json_object_set_new(conf, "group", json_string(reg->conf.group));
        ev = json_pack("{s:s,s:I,s:o}", "type", "worker-connected", "id",
                       (json_int_t)rec->u.worker_up.worker, "configuration", conf);
        break;
    }
    case HQ_JR_WORKER_LOST:
        ev = json_pack("{s:s,s:I,s:s}", "type", "worker-lost", "id",
                       (json_int_t)rec->u.worker_lost.worker, "reason",
                       rec->u.worker_lost.text ? rec->u.worker_lost.text : "");
        break;
    case HQ_JR_WORKER_OVERVIEW: {
        json_t *hw = json_loads(rec->u.overview.hw_state, 0, NULL);
        ev = json_pack("{s:s,s:I,s:o}", "type", "worker-overview", "id",
                       (json_int_t)rec->u.overview.worker, "hw-state", hw ? hw : json_null());
        break;
    }
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
