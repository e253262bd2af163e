/* Unit tests of the broker's restore: records written through the real journal are
 * replayed into fresh job tables (finished, waiting, partly finished, failed and
 * canceled jobs, open jobs, dependencies, crash counters and instance ids). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "jglue.h"
#include "journal.h"

static char s_dir[256];

static void s_setup(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/hq-test-restore-XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
}

static void s_teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    cr_assert_eq(system(cmd), 0);
}

static hq_journal_t *s_writer(void)
{
    hq_err_t err;
    hq_journal_opts_t o = {.uid = "abcdef"};
    hq_journal_t *j = hq_journal_open(s_dir, &o, &err);
    cr_assert_not_null(j, "%s", err.text);
    cr_assert_eq(hq_journal_replay(j, NULL, NULL, NULL, &err), 0, "%s", err.text);
    cr_assert_eq(hq_journal_start(j, &err), 0, "%s", err.text);
    return j;
}

static void s_put(hq_journal_t *j, hq_jrec_t rec)
{
    hq_err_t err;
    cr_assert_neq(hq_journal_append(j, &rec, NULL, NULL, &err), 0, "%s", err.text);
}

/* A submit of `count` tasks 0..count-1 (array), or a graph when deps is given:
 * task i depends on deps[i] (-1 = none). */
static void s_submit(hq_journal_t *j, uint32_t job, uint32_t attach, uint32_t first, uint32_t count,
                     const int *deps, enum hq_crash_kind crash, uint32_t limit)
{
    char *args[] = {"true"};
    hq_rvariant_t var = {.n_nodes = 0};
    hq_task_def_t def = {.n_args = 1,
                         .args = args,
                         .cwd = "%{SUBMIT_DIR}",
                         .n_variants = 1,
                         .out.kind = HQ_STDIO_NONE,
                         .err.kind = HQ_STDIO_NONE,
                         .variants = &var,
                         .crash_kind = crash,
                         .crash_limit = limit};
    hq_range_t r = {.start = first, .end = first + count - 1, .step = 1};
    hq_submit_t s = {
        .job_id = attach, .name = "j", .submit_dir = "/tmp", .n_defs = 1, .defs = &def};
    hq_graph_task_t g[8];
    uint32_t dep[8];
    if (deps) {
        for (uint32_t i = 0; i < count; i++) {
            dep[i] = (uint32_t)deps[i];
            g[i] = (hq_graph_task_t){
                .id = first + i, .def_idx = 0, .n_deps = deps[i] >= 0 ? 1 : 0, .deps = &dep[i]};
        }
        s.n_graph = count;
        s.graph = g;
    } else {
        s.ids = (hq_rangelist_t){.n = 1, .ranges = &r};
    }
    hq_jrec_t rec = {.type = HQ_JR_JOB_SUBMIT};
    rec.u.job_submit.job = job;
    rec.u.job_submit.submit = &s;
    s_put(j, rec);
}

static void s_task(hq_journal_t *j, enum hq_jrec_type type, uint32_t job, uint32_t task,
                   uint32_t instance, uint32_t worker)
{
    hq_jrec_t rec = {.type = type};
    rec.u.task.job = job;
    rec.u.task.task = task;
    rec.u.task.instance = instance;
    rec.u.task.worker = worker;
    rec.u.task.error = type == HQ_JR_TASK_FAILED ? "exit code 3" : NULL;
    s_put(j, rec);
}

static void s_worker(hq_journal_t *j, enum hq_jrec_type type, uint32_t worker, uint32_t reason)
{
    hq_jrec_t rec = {.type = type};
    if (type == HQ_JR_WORKER_UP) {
        rec.u.worker_up.worker = worker;
    } else {
        rec.u.worker_lost.worker = worker;
        rec.u.worker_lost.reason = reason;
    }
    s_put(j, rec);
}

static void s_close_writer(hq_journal_t **j)
{
    hq_err_t err;
    cr_assert_eq(hq_journal_flush(*j, &err), 0, "%s", err.text);
    hq_journal_close(j);
}

/* Replays the journal into a fresh broker; returns the epoch seen. */
static uint64_t s_restore(hq_broker_t *b)
{
    memset(b, 0, sizeof *b);
    b->events = hq_events_new();
    snprintf(b->access.server_uid, sizeof b->access.server_uid, "zzzzzz");
    hq_err_t err;
    hq_journal_opts_t o = {.read_only = true};
    hq_journal_t *j = hq_journal_open(s_dir, &o, &err);
    cr_assert_not_null(j, "%s", err.text);
    hq_jr_state_t *st = hq_jr_state_new(b);
    cr_assert_eq(hq_journal_replay(j, hq_jr_apply_record, st, NULL, &err), 0, "%s", err.text);
    hq_journal_close(&j);
    return hq_jr_state_finish(&st);
}

static void s_free(hq_broker_t *b)
{
    for (uint32_t id = 1; id <= b->max_job_id && b->jobs; id++)
        hq_job_destroy(&b->jobs[id]);
    free(b->jobs);
    free(b->workers);
    free(b->requeue);
    free(b->cancels);
    free(b->cancel_workers);
    free(b->cancel_instances);
    hq_events_destroy(&b->events);
}

TestSuite(restore, .init = s_setup, .fini = s_teardown);

Test(restore, rebuilds_finished_failed_canceled_and_partly_finished_jobs)
{
    hq_journal_t *j = s_writer();
    hq_jrec_t start = {.type = HQ_JR_SERVER_START};
    start.u.server_start.epoch = 4;
    start.u.server_start.uid = "abcdef";
    s_put(j, start);
    s_worker(j, HQ_JR_WORKER_UP, 1, 0);
    s_submit(j, 1, 0, 0, 2, NULL, HQ_CRASH_LIMIT, 5); /* finished */
    s_submit(j, 2, 0, 0, 1, NULL, HQ_CRASH_LIMIT, 5); /* failed */
    s_submit(j, 3, 0, 0, 4, NULL, HQ_CRASH_LIMIT, 5); /* canceled, one finished before */
    s_submit(j, 4, 0, 0, 3, NULL, HQ_CRASH_LIMIT, 5); /* partly finished, one running */
    for (uint32_t t = 0; t < 2; t++) {
        s_task(j, HQ_JR_TASK_STARTED, 1, t, 0, 1);
        s_task(j, HQ_JR_TASK_FINISHED, 1, t, 0, 1);
    }
    s_task(j, HQ_JR_TASK_STARTED, 2, 0, 0, 1);
    s_task(j, HQ_JR_TASK_FAILED, 2, 0, 0, 1);
    s_task(j, HQ_JR_TASK_STARTED, 3, 0, 0, 1);
    s_task(j, HQ_JR_TASK_FINISHED, 3, 0, 0, 1);
    hq_jrec_t cancel = {.type = HQ_JR_JOB_CANCEL};
    cancel.u.job_cancel.job = 3;
    cancel.u.job_cancel.reason = "not needed";
    s_put(j, cancel);
    s_task(j, HQ_JR_TASK_STARTED, 4, 0, 0, 1);
    s_task(j, HQ_JR_TASK_FINISHED, 4, 0, 0, 1);
    s_task(j, HQ_JR_TASK_STARTED, 4, 1, 2, 1);
    s_close_writer(&j);

    hq_broker_t b;
    cr_assert_eq(s_restore(&b), 4);
    cr_assert_str_eq(b.access.server_uid, "abcdef", "the journal's uid wins");
    cr_assert_eq(b.max_job_id, 4);
    cr_assert_eq(b.n_jobs, 4);
    cr_assert_eq(b.max_worker_id, 1);
    cr_assert_str_eq(hq_job_state_word(b.jobs[1]), "FINISHED");
    cr_assert_neq(b.jobs[1]->finish_ns, 0);
    cr_assert_str_eq(hq_job_state_word(b.jobs[2]), "FAILED");
    cr_assert_str_eq(b.jobs[2]->tasks[0].error, "exit code 3");
    cr_assert_str_eq(hq_job_state_word(b.jobs[3]), "CANCELED");
    cr_assert_eq(b.jobs[3]->counts[HQ_TS_FINISHED], 1);
    cr_assert_eq(b.jobs[3]->counts[HQ_TS_CANCELED], 3);
    cr_assert_str_eq(b.jobs[3]->cancel_reason, "not needed");
    hq_job_t *p = b.jobs[4];
    cr_assert_eq(p->counts[HQ_TS_FINISHED], 1);
    cr_assert_eq(p->counts[HQ_TS_WAITING], 2, "the running task waits again");
    cr_assert_eq(p->tasks[1].instance, 3, "a new, higher instance than the one started");
    cr_assert_eq(p->tasks[1].crashes, 0, "a broker crash is not the task's fault");
    cr_assert_eq(p->tasks[2].instance, 0);
    s_free(&b);
}

Test(restore, counts_crashes_from_lost_workers_and_keeps_instances_ascending)
{
    hq_journal_t *j = s_writer();
    s_worker(j, HQ_JR_WORKER_UP, 1, 0);
    s_worker(j, HQ_JR_WORKER_UP, 2, 0);
    s_submit(j, 1, 0, 0, 2, NULL, HQ_CRASH_LIMIT, 5);
    s_task(j, HQ_JR_TASK_STARTED, 1, 0, 0, 1);
    s_task(j, HQ_JR_TASK_STARTED, 1, 1, 0, 2);
    s_worker(j, HQ_JR_WORKER_LOST, 1, HQ_WS_HEARTBEAT_LOST); /* crash: counter + 1 */
    s_worker(j, HQ_JR_WORKER_LOST, 2, HQ_WS_STOPPED);        /* graceful: no count */
    s_worker(j, HQ_JR_WORKER_UP, 3, 0);
    s_task(j, HQ_JR_TASK_STARTED, 1, 0, 1, 3);
    s_close_writer(&j);

    hq_broker_t b;
    s_restore(&b);
    hq_job_t *job = b.jobs[1];
    cr_assert_eq(b.max_worker_id, 3, "worker ids are not reused");
    cr_assert_eq(job->tasks[0].crashes, 1);
    cr_assert_eq(job->tasks[0].instance, 2, "started as 1 on worker 3, then restored");
    cr_assert_eq(job->tasks[0].state, HQ_TS_WAITING);
    cr_assert_eq(job->tasks[1].crashes, 0);
    cr_assert_eq(job->tasks[1].instance, 1);
    cr_assert_eq(job->counts[HQ_TS_WAITING], 2);
    s_free(&b);
}

Test(restore, keeps_open_jobs_attached_submits_and_dependency_counts)
{
    hq_journal_t *j = s_writer();
    hq_jrec_t open = {.type = HQ_JR_JOB_OPEN};
    open.u.job_open.job = 1;
    open.u.job_open.name = "feed";
    s_put(j, open);
    s_submit(j, 1, 1, 0, 2, NULL, HQ_CRASH_LIMIT, 5);
    s_submit(j, 1, 1, 5, 2, NULL, HQ_CRASH_LIMIT, 5);
    const int deps[] = {-1, 0, 1};
    s_submit(j, 2, 0, 0, 3, deps, HQ_CRASH_LIMIT, 5); /* chain 0 <- 1 <- 2 */
    s_task(j, HQ_JR_TASK_STARTED, 2, 0, 0, 1);
    s_task(j, HQ_JR_TASK_FINISHED, 2, 0, 0, 1);
    hq_jrec_t fg = {.type = HQ_JR_JOB_OPEN};
    fg.u.job_open.job = 3;
    s_put(j, fg);
    hq_jrec_t cl = {.type = HQ_JR_JOB_CLOSE};
    cl.u.job.job = 3;
    s_put(j, cl);
    hq_jrec_t forget = {.type = HQ_JR_JOB_FORGET};
    forget.u.job.job = 3;
    s_put(j, forget);
    s_close_writer(&j);

    hq_broker_t b;
    s_restore(&b);
    cr_assert(b.jobs[1]->open);
    cr_assert_str_eq(b.jobs[1]->name, "feed");
    cr_assert_eq(b.jobs[1]->n_tasks, 4);
    cr_assert_eq(b.jobs[1]->n_submits, 2);
    cr_assert_not_null(hq_job_task(b.jobs[1], 6));
    hq_job_t *g = b.jobs[2];
    cr_assert_eq(g->tasks[0].state, HQ_TS_FINISHED);
    cr_assert_eq(hq_job_dnode(g, 1)->n_wait, 0, "its dependency finished");
    cr_assert_eq(hq_job_dnode(g, 2)->n_wait, 1);
    cr_assert_null(b.jobs[3], "forgotten");
    cr_assert_eq(b.max_job_id, 3, "a forgotten job's id is not handed out again");
    cr_assert_eq(b.n_jobs, 2);
    s_free(&b);
}
