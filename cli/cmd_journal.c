/* `hq journal`: export (offline: the journal directory as NDJSON events on stdout).
 * stream / replay / flush / prune / report need the running server and are not
 * supported yet: they say so and exit 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../broker/journal.h"
#include "cli.h"
#include "hq_log.h"
#include "hq_util.h"

static const hq_opt_t s_none[] = {{0}};

typedef struct s_export {
    uint64_t n; /* events printed */
} s_export_t;

static void s_print(s_export_t *x, json_t *ev, uint64_t wall_ns)
{
    char *t = hq_time_rfc3339(wall_ns, 6);
    json_t *line = json_pack("{s:o,s:s}", "event", ev, "time", t);
    free(t);
    char *text = json_dumps(line, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(line);
    if (text) {
        fputs(text, stdout);
        fputc('\n', stdout);
        free(text);
        x->n++;
    }
}

static json_t *s_task_ev(const char *type, uint32_t job, uint32_t task)
{
    return json_pack("{s:s,s:I,s:I}", "type", type, "job", (json_int_t)job, "task",
                     (json_int_t)task);
}

static int s_export_rec(hq_jrec_t *rec, bool from_snapshot, void *arg, hq_err_t *err)
{
    (void)from_snapshot;
    (void)err;
    s_export_t *x = arg;
    json_t *ev = NULL;
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
        const hq_msg_t *m = rec->u.job_submit.msg;
        ev =
            json_pack("{s:s,s:I}", "type", "job-created", "job", (json_int_t)rec->u.job_submit.job);
        if (m && m->u.submit.name)
            json_object_set_new(ev, "name", json_string(m->u.submit.name));
        if (m)
            json_object_set_new(ev, "attached", json_boolean(m->u.submit.job_id != 0));
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
    case HQ_JR_TASKS_CANCELED:
    case HQ_JR_TASKS_ABORTED: {
        const char *type = rec->type == HQ_JR_TASKS_CANCELED ? "task-canceled" : "task-aborted";
        for (uint32_t r = 0; r < rec->u.tasks.n; r++)
            for (uint64_t id = rec->u.tasks.ranges[r].first; id <= rec->u.tasks.ranges[r].last;
                 id++)
                s_print(x, s_task_ev(type, rec->u.tasks.job, (uint32_t)id), rec->wall_ns);
        return 0;
    }
    case HQ_JR_WORKER_UP: {
        json_t *conf = json_object();
        const hq_msg_t *m = rec->u.worker_up.msg;
        if (m && m->u.reg.conf.hostname)
            json_object_set_new(conf, "hostname", json_string(m->u.reg.conf.hostname));
        if (m && m->u.reg.conf.group)
            json_object_set_new(conf, "group", json_string(m->u.reg.conf.group));
        ev = json_pack("{s:s,s:I,s:o}", "type", "worker-connected", "id",
                       (json_int_t)rec->u.worker_up.worker, "configuration", conf);
        break;
    }
    case HQ_JR_WORKER_LOST:
        ev = json_pack("{s:s,s:I,s:s}", "type", "worker-lost", "id",
                       (json_int_t)rec->u.worker_lost.worker, "reason",
                       rec->u.worker_lost.text ? rec->u.worker_lost.text : "");
        break;
    default:
        return 0; /* bookkeeping records (high-waters, snapshot internals) */
    }
    if (ev)
        s_print(x, ev, rec->wall_ns);
    return 0;
}

static int s_export(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, s_none, argc, argv, 1, false, "hq journal export",
                          "Export events from a journal to NDJSON (offline)");
    if (rc >= 0)
        return rc;
    const char *path = hq_args_pos(c.args, 0);
    if (!path) {
        rc = hq_cli_missing("<JOURNAL>");
        hq_cli_end(&c);
        return rc;
    }
    hq_journal_opts_t o = {.read_only = true};
    hq_err_t err;
    hq_journal_t *j = hq_journal_open(path, &o, &err);
    s_export_t x = {0};
    rc = 0;
    if (!j || hq_journal_replay(j, s_export_rec, &x, NULL, &err) != 0) {
        fflush(stdout);
        hq_error("Cannot read the journal %s: %s", path, err.text);
        rc = 1;
    }
    hq_journal_close(&j);
    fflush(stdout);
    if (rc == 0)
        hq_info("Outputted %llu %s", (unsigned long long)x.n, x.n == 1 ? "event" : "events");
    hq_cli_end(&c);
    return rc;
}

static int s_unsupported(int argc, char **argv, const char *what)
{
    hq_cli_t c;
    char usage[64];
    snprintf(usage, sizeof usage, "hq journal %s", what);
    int rc = hq_cli_begin(&c, s_none, argc, argv, 3, true, usage, "Not supported yet");
    if (rc >= 0)
        return rc;
    rc = hq_cli_error(&c, "`hq journal %s` is not supported yet", what);
    hq_cli_end(&c);
    return rc;
}

int hq_cmd_journal_export(int argc, char **argv)
{
    return s_export(argc, argv);
}

int hq_cmd_journal_stream(int argc, char **argv)
{
    return s_unsupported(argc, argv, "stream");
}

int hq_cmd_journal_replay(int argc, char **argv)
{
    return s_unsupported(argc, argv, "replay");
}

int hq_cmd_journal_flush(int argc, char **argv)
{
    return s_unsupported(argc, argv, "flush");
}

int hq_cmd_journal_prune(int argc, char **argv)
{
    return s_unsupported(argc, argv, "prune");
}
