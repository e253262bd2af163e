/* Unit tests of broker snapshots (snapshot.c): a state built from journal records,
 * snapshotted by a running journal glue, followed by more records, restores to the same
 * state as the full log; a pruned snapshot keeps exactly the unfinished jobs. */
#define JF_NAME "snapshot"
#include "journal_fixture.h"
#include "journal/snapshot.h"

static uint64_t s_restore_dir(hq_broker_t *b, const char *dir)
{
    return jf_restore(b, dir, false);
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
    hq_broker_init(&b);
    snprintf(b.conf.access.server_uid, sizeof b.conf.access.server_uid, "zzzzzz");
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
    cr_assert_str_eq(a.conf.access.server_uid, f.conf.access.server_uid);
    cr_assert_eq(a.jobs.max_id, f.jobs.max_id);
    cr_assert_eq(a.jobs.max_id, 10);
    cr_assert_eq(a.reg.max_id, f.reg.max_id);
    cr_assert_eq(a.jobs.n_live, f.jobs.n_live);
    for (uint32_t id = 1; id <= a.jobs.max_id; id++) {
        const hq_job_t *x = hq_jobtab_get(&a.jobs, id), *y = hq_jobtab_get(&f.jobs, id);
        cr_assert_eq(x == NULL, y == NULL, "job %u present in one state only", id);
        if (x)
            s_assert_same_job(x, y);
    }
    cr_assert_null(hq_jobtab_get(&a.jobs, 6), "a forgotten job stays forgotten");
    cr_assert_eq(a.jobs.tab[4]->tasks[1].crashes, 1);
    cr_assert_eq(a.jobs.tab[4]->counts[HQ_TS_FINISHED], 2);
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
        cr_assert_null(hq_jobtab_get(&a.jobs, id), "job %u", id);
    for (uint32_t id = 4; id <= 10; id++) {
        const hq_job_t *x = hq_jobtab_get(&a.jobs, id), *y = hq_jobtab_get(&f.jobs, id);
        if (id == 6 || id == 8 || id == 9) {
            cr_assert_null(x);
            continue;
        }
        cr_assert_not_null(x, "job %u", id);
        s_assert_same_job(x, y);
    }
    cr_assert_eq(a.jobs.max_id, 10, "ids are never reused");
    cr_assert_eq(a.reg.max_id, f.reg.max_id);
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
    cr_assert_eq(a.jobs.max_id, 10);
    cr_assert_str_eq(hq_job_state_word(a.jobs.tab[1]), "FINISHED");
    cr_assert_str_eq(a.jobs.tab[3]->cancel_reason, "not needed");
    cr_assert_eq(a.jobs.tab[4]->tasks[1].crashes, 1);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "test ! -e %s/seg-0000000000000001.hqj", s_dir);
    cr_assert_eq(system(cmd), 0, "the first segment was deleted");
    s_free(&a);
}
