/* Unit tests of the broker's restore: records written through the real journal are
 * replayed into fresh job tables (finished, waiting, partly finished, failed and
 * canceled jobs, open jobs, dependencies, crash counters and instance ids). */
#define JF_NAME "restore"
#include "journal_fixture.h"

static uint64_t s_restore(hq_broker_t *b)
{
    return jf_restore(b, s_dir, false);
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
    cr_assert_str_eq(b.conf.access.server_uid, "abcdef", "the journal's uid wins");
    cr_assert_eq(b.jobs.max_id, 4);
    cr_assert_eq(b.jobs.n_live, 4);
    cr_assert_eq(b.reg.max_id, 2, "the next worker gets the highest journaled id + 2");
    cr_assert_str_eq(hq_job_state_word(b.jobs.tab[1]), "FINISHED");
    cr_assert_neq(b.jobs.tab[1]->finish_ns, 0);
    cr_assert_str_eq(hq_job_state_word(b.jobs.tab[2]), "FAILED");
    cr_assert_str_eq(b.jobs.tab[2]->tasks[0].error, "exit code 3");
    cr_assert_str_eq(hq_job_state_word(b.jobs.tab[3]), "CANCELED");
    cr_assert_eq(b.jobs.tab[3]->counts[HQ_TS_FINISHED], 1);
    cr_assert_eq(b.jobs.tab[3]->counts[HQ_TS_CANCELED], 3);
    cr_assert_str_eq(b.jobs.tab[3]->cancel_reason, "not needed");
    hq_job_t *p = b.jobs.tab[4];
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
    hq_job_t *job = b.jobs.tab[1];
    cr_assert_eq(b.reg.max_id, 4, "worker ids are not reused (one skipped as HyperQueue)");
    cr_assert_eq(job->tasks[0].crashes, 1);
    cr_assert_eq(job->tasks[0].instance, 2, "started as 1 on worker 3, then restored");
    cr_assert_eq(job->tasks[0].state, HQ_TS_WAITING);
    cr_assert_eq(job->tasks[1].crashes, 0);
    cr_assert_eq(job->tasks[1].instance, 1);
    cr_assert_eq(job->counts[HQ_TS_WAITING], 2);
    s_free(&b);
}

Test(restore, a_tasks_started_record_counts_like_one_task_started_per_instance)
{
    hq_journal_t *j = s_writer();
    s_worker(j, HQ_JR_WORKER_UP, 1, 0);
    s_worker(j, HQ_JR_WORKER_UP, 2, 0);
    s_submit(j, 1, 0, 0, 4, NULL, HQ_CRASH_LIMIT, 5);
    hq_jinst_t insts[] = {{0, 0}, {2, 0}, {3, 0}};
    hq_jrec_t rec = {.type = HQ_JR_TASKS_STARTED};
    rec.u.batch.job = 1;
    rec.u.batch.worker = 1;
    rec.u.batch.epoch = 77;
    rec.u.batch.n = 3;
    rec.u.batch.insts = insts;
    s_put(j, rec);
    s_task(j, HQ_JR_TASK_FINISHED, 1, 2, 0, 1);
    hq_jinst_t again[] = {{1, 0}};
    rec.u.batch.worker = 2;
    rec.u.batch.n = 1;
    rec.u.batch.insts = again;
    s_put(j, rec);
    s_worker(j, HQ_JR_WORKER_LOST, 1, HQ_WS_HEARTBEAT_LOST); /* crash of 0 and 3 */
    s_close_writer(&j);

    hq_broker_t b;
    s_restore(&b);
    hq_job_t *job = b.jobs.tab[1];
    cr_assert_eq(b.reg.max_id, 3);
    cr_assert_eq(job->tasks[2].state, HQ_TS_FINISHED);
    cr_assert_eq(job->tasks[0].crashes, 1);
    cr_assert_eq(job->tasks[3].crashes, 1);
    cr_assert_eq(job->tasks[0].instance, 1, "rerun under a higher instance");
    cr_assert_eq(job->tasks[1].crashes, 0, "worker 2 was not lost");
    cr_assert_eq(job->counts[HQ_TS_FINISHED], 1);
    cr_assert_eq(job->counts[HQ_TS_WAITING] + job->counts[HQ_TS_RUNNING], 3);
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
    cr_assert(b.jobs.tab[1]->open);
    cr_assert_str_eq(b.jobs.tab[1]->name, "feed");
    cr_assert_eq(b.jobs.tab[1]->n_tasks, 4);
    cr_assert_eq(b.jobs.tab[1]->n_submits, 2);
    cr_assert_not_null(hq_job_task(b.jobs.tab[1], 6));
    hq_job_t *g = b.jobs.tab[2];
    cr_assert_eq(g->tasks[0].state, HQ_TS_FINISHED);
    cr_assert_eq(hq_job_dnode(g, 1)->n_wait, 0, "its dependency finished");
    cr_assert_eq(hq_job_dnode(g, 2)->n_wait, 1);
    cr_assert_null(b.jobs.tab[3], "forgotten");
    cr_assert_eq(b.jobs.max_id, 3, "a forgotten job's id is not handed out again");
    cr_assert_eq(b.jobs.n_live, 2);
    s_free(&b);
}

Test(restore, refuses_records_of_another_server_uid_naming_both_and_the_position)
{
    hq_journal_t *j = s_writer();
    hq_jrec_t start = {.type = HQ_JR_SERVER_START};
    start.u.server_start.epoch = 1;
    start.u.server_start.uid = "abcdef";
    s_put(j, start);
    s_submit(j, 1, 0, 0, 1, NULL, HQ_CRASH_LIMIT, 5);
    start.u.server_start.epoch = 1;
    start.u.server_start.uid = "ghijkl"; /* another server's records */
    s_put(j, start);
    s_submit(j, 2, 0, 0, 1, NULL, HQ_CRASH_LIMIT, 5);
    s_close_writer(&j);

    hq_broker_t b;
    hq_broker_init(&b);
    hq_err_t err = {{0}};
    hq_journal_opts_t o = {.read_only = true};
    j = hq_journal_open(s_dir, &o, &err);
    cr_assert_not_null(j, "%s", err.text);
    hq_jr_state_t *st = hq_jr_state_new(&b);
    cr_assert_eq(hq_journal_replay(j, hq_jr_apply_record, st, NULL, &err), -1);
    cr_assert(strstr(err.text, "server-start record of server uid ghijkl in the journal of "
                               "server uid abcdef"),
              "%s", err.text);
    cr_assert(strstr(err.text, "segment seg-0000000000000001.hqj offset "), "%s", err.text);
    cr_assert(strstr(err.text, "(lsn 3)"), "%s", err.text);
    hq_journal_close(&j);
    hq_jr_state_finish(&st);
    cr_assert_null(b.jobs.tab[2], "nothing of the other server is restored");
    s_free(&b);
}
