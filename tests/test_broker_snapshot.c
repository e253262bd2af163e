/* Unit tests of broker snapshots (snapshot.c): a state built from journal records,
 * snapshotted by a running journal glue, followed by more records, restores to the same
 * state as the full log; a pruned snapshot keeps exactly the unfinished jobs. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "jglue.h"
#include "journal.h"
#include "snapshot.h"

static char s_dir[256];

static void s_setup(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/hq-test-snapshot-XXXXXX");
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
static uint64_t s_restore_dir(hq_broker_t *b, const char *dir)
{
    memset(b, 0, sizeof *b);
    b->events = hq_events_new();
    snprintf(b->access.server_uid, sizeof b->access.server_uid, "zzzzzz");
    hq_err_t err;
    hq_journal_opts_t o = {.read_only = true};
    hq_journal_t *j = hq_journal_open(dir, &o, &err);
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

/* The history every test starts from: finished, failed, canceled, partly finished
 * (one running, one crashed once) jobs, an open job with an attached submit, a graph
 * with a dependency, a forgotten job and two workers (one lost). */
static void s_history(void)
{
    hq_journal_t *j = s_writer();
    hq_jrec_t start = {.type = HQ_JR_SERVER_START};
    start.u.server_start.epoch = 3;
    start.u.server_start.uid = "abcdef";
    s_put(j, start);
    s_worker(j, HQ_JR_WORKER_UP, 1, 0);
    s_worker(j, HQ_JR_WORKER_UP, 2, 0);
    s_submit(j, 1, 0, 0, 3, NULL, HQ_CRASH_LIMIT, 5); /* finished */
    s_submit(j, 2, 0, 0, 1, NULL, HQ_CRASH_LIMIT, 5); /* failed */
    s_submit(j, 3, 0, 0, 4, NULL, HQ_CRASH_LIMIT, 5); /* canceled */
    s_submit(j, 4, 0, 0, 5, NULL, HQ_CRASH_LIMIT, 5); /* partly finished */
    int deps[3] = {-1, 0, 1};
    s_submit(j, 5, 0, 0, 3, deps, HQ_CRASH_LIMIT, 5); /* graph: 0 finished, 1 waits on it */
    s_submit(j, 6, 0, 0, 1, NULL, HQ_CRASH_LIMIT, 5); /* forgotten */
    for (uint32_t t = 0; t < 3; t++) {
        s_task(j, HQ_JR_TASK_STARTED, 1, t, 0, 1);
        s_task(j, HQ_JR_TASK_FINISHED, 1, t, 0, 1);
    }
    s_task(j, HQ_JR_TASK_STARTED, 2, 0, 0, 2);
    s_task(j, HQ_JR_TASK_FAILED, 2, 0, 0, 2);
    s_task(j, HQ_JR_TASK_STARTED, 3, 0, 0, 1);
    s_task(j, HQ_JR_TASK_FINISHED, 3, 0, 0, 1);
    hq_jrec_t cancel = {.type = HQ_JR_JOB_CANCEL};
    cancel.u.job_cancel.job = 3;
    cancel.u.job_cancel.reason = "not needed";
    s_put(j, cancel);
    s_task(j, HQ_JR_TASK_STARTED, 4, 0, 0, 1);
    s_task(j, HQ_JR_TASK_FINISHED, 4, 0, 0, 1);
    s_task(j, HQ_JR_TASK_STARTED, 4, 1, 0, 2); /* crashes with worker 2 */
    s_task(j, HQ_JR_TASK_STARTED, 4, 2, 0, 1); /* still running */
    s_worker(j, HQ_JR_WORKER_LOST, 2, HQ_WS_HEARTBEAT_LOST);
    s_task(j, HQ_JR_TASK_STARTED, 5, 0, 0, 1);
    s_task(j, HQ_JR_TASK_FINISHED, 5, 0, 0, 1);
    s_task(j, HQ_JR_TASK_STARTED, 6, 0, 0, 1);
    s_task(j, HQ_JR_TASK_FINISHED, 6, 0, 0, 1);
    hq_jrec_t forget = {.type = HQ_JR_JOB_FORGET};
    forget.u.job.job = 6;
    s_put(j, forget);
    hq_jrec_t open = {.type = HQ_JR_JOB_OPEN};
    open.u.job_open.job = 7;
    open.u.job_open.name = "opened";
    open.u.job_open.has_max_fails = true;
    open.u.job_open.max_fails = 2;
    s_put(j, open);
    s_submit(j, 7, 7, 0, 2, NULL, HQ_CRASH_LIMIT, 5);
    s_task(j, HQ_JR_TASK_STARTED, 7, 1, 0, 1);
    s_task(j, HQ_JR_TASK_FINISHED, 7, 1, 0, 1);
    hq_jrec_t hw = {.type = HQ_JR_ID_HIGHWATER};
    hw.u.highwater.job = 9; /* ids 8 and 9 were reserved, never used */
    hw.u.highwater.worker = 2;
    s_put(j, hw);
    s_close_writer(&j);
}

static void s_snap_done(void *arg, uint64_t lsn, int errnum)
{
    (void)lsn;
    int *st = arg;
    *st = errnum ? -errnum : 1;
}

/* Opens the journal as the broker does (replay + server_start), writes a snapshot
 * (prune or not) and then the tail records; closes it. */
static void s_snapshot_then_tail(bool prune)
{
    hq_broker_t b;
    memset(&b, 0, sizeof b);
    b.events = hq_events_new();
    snprintf(b.access.server_uid, sizeof b.access.server_uid, "zzzzzz");
    hq_err_t err;
    cr_assert_eq(hq_jr_open(&b, s_dir, 0, &err), 0, "%s", err.text);
    int done = 0;
    cr_assert_eq(hq_snapshot_write(&b, prune, s_snap_done, &done, &err), 0, "%s", err.text);
    hq_journal_t *j = hq_jr_journal(&b);
    for (int i = 0; i < 200 && done == 0; i++) {
        cr_assert_eq(hq_journal_flush(j, &err), 0, "%s", err.text);
        if (!done)
            usleep(5000);
    }
    cr_assert_eq(done, 1, "snapshot commit: %d", done);
    /* the tail: the running task finishes, a new job is submitted and canceled, a task of
     * the open job starts */
    hq_jrec_t r = {.type = HQ_JR_TASK_FINISHED};
    r.u.task.job = 4;
    r.u.task.task = 2;
    r.u.task.instance = 0;
    cr_assert_neq(hq_jr_append(&b, &r, NULL, NULL), 0);
    s_submit(j, 10, 0, 0, 2, NULL, HQ_CRASH_LIMIT, 5);
    hq_jrec_t cancel = {.type = HQ_JR_JOB_CANCEL};
    cancel.u.job_cancel.job = 10;
    cancel.u.job_cancel.reason = NULL;
    s_put(j, cancel);
    r = (hq_jrec_t){.type = HQ_JR_TASK_STARTED};
    r.u.task.job = 7;
    r.u.task.task = 0;
    r.u.task.instance = 0;
    r.u.task.worker = 3;
    s_put(j, r);
    hq_jr_close(&b);
    s_free(&b);
}

/* The full log: a copy of the journal without its snapshots (the first snapshot keeps
 * every segment). */
static void s_full_log_copy(char *out, size_t n)
{
    snprintf(out, n, "%s-full", s_dir);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r %s %s && rm -f %s/snap-* %s/LOCK", out, s_dir,
             out, out, out);
    cr_assert_eq(system(cmd), 0);
}

static void s_rm(const char *dir)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static void s_assert_same_job(const hq_job_t *a, const hq_job_t *b)
{
    cr_assert_eq(a->id, b->id);
    cr_assert_str_eq(a->name ? a->name : "", b->name ? b->name : "", "job %u", a->id);
    cr_assert_eq(a->open, b->open, "job %u", a->id);
    cr_assert_eq(a->has_max_fails, b->has_max_fails);
    cr_assert_eq(a->max_fails, b->max_fails);
    cr_assert_str_eq(a->cancel_reason ? a->cancel_reason : "-",
                     b->cancel_reason ? b->cancel_reason : "-", "job %u", a->id);
    cr_assert_eq(a->n_tasks, b->n_tasks, "job %u", a->id);
    cr_assert_eq(a->n_submits, b->n_submits, "job %u", a->id);
    cr_assert_eq(memcmp(a->counts, b->counts, sizeof a->counts), 0, "job %u counts", a->id);
    cr_assert_eq(a->finish_ns == 0, b->finish_ns == 0, "job %u", a->id);
    for (uint32_t k = 0; k < a->n_tasks; k++) {
        const hq_task_t *x = &a->tasks[k], *y = &b->tasks[k];
        cr_assert_eq(x->id, y->id);
        cr_assert_eq(x->state, y->state, "job %u task %u", a->id, x->id);
        cr_assert_eq(x->instance, y->instance, "job %u task %u", a->id, x->id);
        cr_assert_eq(x->crashes, y->crashes, "job %u task %u", a->id, x->id);
        cr_assert_eq(x->worker, y->worker, "job %u task %u", a->id, x->id);
        cr_assert_eq(x->end_ns != 0, y->end_ns != 0, "job %u task %u", a->id, x->id);
        cr_assert_str_eq(x->error ? x->error : "-", y->error ? y->error : "-");
    }
    if (a->deps) {
        cr_assert_not_null(b->deps);
        cr_assert_eq(a->deps->n_nodes, b->deps->n_nodes);
        for (uint32_t k = 0; k < a->deps->n_nodes; k++)
            cr_assert_eq(a->deps->nodes[k].n_wait, b->deps->nodes[k].n_wait);
    }
}

TestSuite(snapshot, .init = s_setup, .fini = s_teardown);

Test(snapshot, snapshot_plus_tail_restores_the_same_state_as_the_full_log)
{
    s_history();
    s_snapshot_then_tail(false);
    char full[300];
    s_full_log_copy(full, sizeof full);

    hq_broker_t a, f;
    uint64_t ea = s_restore_dir(&a, s_dir);
    uint64_t ef = s_restore_dir(&f, full);
    s_rm(full);
    cr_assert_eq(ea, 4, "the snapshot carries the epoch of the run that wrote it");
    cr_assert_eq(ea, ef);
    cr_assert_str_eq(a.access.server_uid, f.access.server_uid);
    cr_assert_eq(a.max_job_id, f.max_job_id);
    cr_assert_eq(a.max_job_id, 10);
    cr_assert_eq(a.max_worker_id, f.max_worker_id);
    cr_assert_eq(a.n_jobs, f.n_jobs);
    for (uint32_t id = 1; id <= a.max_job_id; id++) {
        const hq_job_t *x = hq_broker_job(&a, id), *y = hq_broker_job(&f, id);
        cr_assert_eq(x == NULL, y == NULL, "job %u present in one state only", id);
        if (x)
            s_assert_same_job(x, y);
    }
    cr_assert_null(hq_broker_job(&a, 6), "a forgotten job stays forgotten");
    cr_assert_eq(a.jobs[4]->tasks[1].crashes, 1);
    cr_assert_eq(a.jobs[4]->counts[HQ_TS_FINISHED], 2);
    s_free(&a);
    s_free(&f);
}

Test(snapshot, a_pruned_snapshot_keeps_exactly_the_unfinished_jobs)
{
    s_history();
    s_snapshot_then_tail(true);
    char full[300];
    s_full_log_copy(full, sizeof full);
    hq_broker_t a, f;
    s_restore_dir(&a, s_dir);
    s_restore_dir(&f, full);
    s_rm(full);
    /* complete jobs 1, 2, 3 are gone; 4 (finished in the tail), 5, 7 and 10 are back */
    for (uint32_t id = 1; id <= 3; id++)
        cr_assert_null(hq_broker_job(&a, id), "job %u", id);
    for (uint32_t id = 4; id <= 10; id++) {
        const hq_job_t *x = hq_broker_job(&a, id), *y = hq_broker_job(&f, id);
        if (id == 6 || id == 8 || id == 9) {
            cr_assert_null(x);
            continue;
        }
        cr_assert_not_null(x, "job %u", id);
        s_assert_same_job(x, y);
    }
    cr_assert_eq(a.max_job_id, 10, "ids are never reused");
    cr_assert_eq(a.max_worker_id, f.max_worker_id);
    s_free(&a);
    s_free(&f);
}

Test(snapshot, the_journal_replays_a_snapshot_without_the_segments_it_covers)
{
    s_history();
    s_snapshot_then_tail(false);
    s_snapshot_then_tail(false); /* the second makes the first the fallback: segments go */
    hq_broker_t a;
    s_restore_dir(&a, s_dir);
    cr_assert_eq(a.max_job_id, 10);
    cr_assert_str_eq(hq_job_state_word(a.jobs[1]), "FINISHED");
    cr_assert_str_eq(a.jobs[3]->cancel_reason, "not needed");
    cr_assert_eq(a.jobs[4]->tasks[1].crashes, 1);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "test ! -e %s/seg-0000000000000001.hqj", s_dir);
    cr_assert_eq(system(cmd), 0, "the first segment was deleted");
    s_free(&a);
}
