/* Unit tests of re-adoption after a broker restart: the adoption rule, restore keeping
 * running tasks of finish-running workers waiting for their workers (same instance),
 * grace expiry requeueing the rest without counting a crash, and adoption itself. */
#define JF_NAME "readopt"
#include "journal_fixture.h"

/* A worker_up with a REGISTER saying the worker's on-server-lost policy. */
static void s_worker_up(hq_journal_t *j, uint32_t worker, enum hq_server_lost policy)
{
    hq_register_t reg = {.conf = {.hostname = "h",
                                  .group = "default",
                                  .work_dir = "/tmp",
                                  .listen_address = "",
                                  .manager_job_id = "",
                                  .version = "v",
                                  .on_server_lost = policy}};
    hq_jrec_t rec = {.type = HQ_JR_WORKER_UP};
    rec.u.worker_up.worker = worker;
    rec.u.worker_up.epoch = 1;
    rec.u.worker_up.reg = &reg;
    s_put(j, rec);
}

static uint64_t s_restore(hq_broker_t *b)
{
    return jf_restore(b, s_dir, true);
}

TestSuite(readopt, .init = s_setup, .fini = s_teardown);

/* ---- the adoption rule ---- */

static hq_task_t s_t(uint32_t instance, enum hq_tstate st, uint8_t flags, uint32_t worker)
{
    return (hq_task_t){
        .id = 4, .instance = instance, .state = (uint8_t)st, .flags = flags, .worker = worker};
}

Test(readopt, adopts_a_restored_running_task_reported_with_its_instance_by_its_worker_only)
{
    hq_task_t t = s_t(3, HQ_TS_RUNNING, HQ_TF_READOPT, 1);
    hq_task_ref_t r = {1, 4, 3};
    cr_assert_eq(hq_task_adopt_check(&t, &r, 1, 0), HQ_ADOPT_YES);
    cr_assert_eq(hq_task_adopt_check(&t, &r, 0, 0), HQ_ADOPT_STALE,
                 "a registration that did not prove to be worker 1 brings nothing back");
    cr_assert_eq(hq_task_adopt_check(&t, &r, 2, 0), HQ_ADOPT_STALE, "nor does worker 2");
}

Test(readopt, refuses_another_instance_or_an_unknown_task)
{
    hq_task_t t = s_t(3, HQ_TS_RUNNING, HQ_TF_READOPT, 1);
    hq_task_ref_t older = {1, 4, 2}, newer = {1, 4, 4};
    cr_assert_eq(hq_task_adopt_check(&t, &older, 1, 0), HQ_ADOPT_STALE);
    cr_assert_eq(hq_task_adopt_check(&t, &newer, 1, 0), HQ_ADOPT_STALE);
    cr_assert_eq(hq_task_adopt_check(NULL, &older, 1, 0), HQ_ADOPT_STALE);
}

Test(readopt, reports_ended_tasks_as_ended)
{
    hq_task_ref_t r = {1, 4, 3};
    for (int st = HQ_TS_FINISHED; st <= HQ_TS_ABORTED; st++) {
        hq_task_t t = s_t(3, (enum hq_tstate)st, HQ_TF_READOPT, 1);
        cr_assert_eq(hq_task_adopt_check(&t, &r, 1, 0), HQ_ADOPT_ENDED, "state %d", st);
    }
}

Test(readopt, moves_a_task_only_from_the_live_previous_session)
{
    hq_task_ref_t r = {1, 4, 3};
    hq_task_t held = s_t(3, HQ_TS_RUNNING, HQ_TF_HOLDS, 7);
    cr_assert_eq(hq_task_adopt_check(&held, &r, 7, 7), HQ_ADOPT_YES);
    cr_assert_eq(hq_task_adopt_check(&held, &r, 8, 8), HQ_ADOPT_STALE, "another worker's task");
    cr_assert_eq(hq_task_adopt_check(&held, &r, 7, 0), HQ_ADOPT_STALE, "no live previous session");
    cr_assert_eq(hq_task_adopt_check(&held, &r, 0, 7), HQ_ADOPT_STALE,
                 "a live session is taken over only with its secret");
    hq_task_t assigned = s_t(3, HQ_TS_ASSIGNED, HQ_TF_HOLDS, 7);
    cr_assert_eq(hq_task_adopt_check(&assigned, &r, 7, 7), HQ_ADOPT_YES);
    hq_task_t loose = s_t(3, HQ_TS_RUNNING, 0, 7);
    cr_assert_eq(hq_task_adopt_check(&loose, &r, 7, 7), HQ_ADOPT_STALE, "held by nobody");
    hq_task_t waiting = s_t(3, HQ_TS_WAITING, 0, 0);
    cr_assert_eq(hq_task_adopt_check(&waiting, &r, 7, 7), HQ_ADOPT_STALE, "requeued already");
}

/* ---- restore with re-adoption ---- */

/* Job 1 (tasks 0-3): 0 finished, 1 running on finish-running worker 1 (instance 2),
 * 2 running on stop worker 2, 3 waiting. */
static void s_journal(void)
{
    hq_journal_t *j = s_writer();
    s_worker_up(j, 1, HQ_LOST_FINISH_RUNNING);
    s_worker_up(j, 2, HQ_LOST_STOP);
    s_submit(j, 1, 0, 0, 4, NULL, HQ_CRASH_LIMIT, 5);
    s_task(j, HQ_JR_TASK_STARTED, 1, 0, 0, 1);
    s_task(j, HQ_JR_TASK_FINISHED, 1, 0, 0, 1);
    s_task(j, HQ_JR_TASK_STARTED, 1, 1, 2, 1);
    s_task(j, HQ_JR_TASK_STARTED, 1, 2, 0, 2);
    s_close_writer(&j);
}

Test(readopt, restore_keeps_tasks_of_returning_workers_running_with_their_instance)
{
    s_journal();
    hq_broker_t b;
    s_restore(&b);
    hq_job_t *job = b.jobs.tab[1];
    cr_assert_eq(job->tasks[1].state, HQ_TS_RUNNING);
    cr_assert_eq(job->tasks[1].instance, 2, "the instance the worker runs");
    cr_assert(job->tasks[1].flags & HQ_TF_READOPT);
    cr_assert_eq(job->tasks[1].worker, 1);
    cr_assert_eq(job->tasks[2].state, HQ_TS_WAITING, "a stop worker never comes back");
    cr_assert_eq(job->tasks[2].instance, 1);
    cr_assert_not(job->tasks[2].flags & HQ_TF_READOPT);
    cr_assert_eq(job->counts[HQ_TS_RUNNING], 1);
    s_free(&b);
}

Test(readopt, grace_expiry_requeues_unadopted_tasks_without_counting_a_crash)
{
    s_journal();
    hq_broker_t b;
    s_restore(&b);
    hq_job_t *job = b.jobs.tab[1];
    uint32_t crashes = job->tasks[1].crashes;
    cr_assert_eq(hq_broker_readopt_expire(&b), 1);
    cr_assert_eq(job->tasks[1].state, HQ_TS_WAITING);
    cr_assert_eq(job->tasks[1].instance, 3, "a new, higher instance");
    cr_assert_eq(job->tasks[1].crashes, crashes);
    cr_assert_not(job->tasks[1].flags & HQ_TF_READOPT);
    cr_assert_eq(b.ready.n, 1, "announced to the scheduler");
    cr_assert_eq(b.ready.list[0].task_id, 1);
    cr_assert_eq(hq_broker_readopt_expire(&b), 0, "only once");
    s_free(&b);
}

Test(readopt, an_adopted_task_runs_on_the_new_session_and_survives_the_grace_expiry)
{
    s_journal();
    hq_broker_t b;
    s_restore(&b);
    hq_worker_t w = {.id = b.reg.max_id + 1, .epoch = 9, .state = HQ_WS_RUNNING};
    b.reg.tab[w.id] = &w;
    b.reg.max_id = w.id;
    hq_job_t *job = b.jobs.tab[1];
    hq_task_ref_t r = {1, 1, 2};
    cr_assert_eq(hq_task_adopt_check(&job->tasks[1], &r, 1, 0), HQ_ADOPT_YES);
    hq_broker_adopt(&b, job, &job->tasks[1], &w);
    cr_assert_eq(job->tasks[1].state, HQ_TS_RUNNING);
    cr_assert_eq(job->tasks[1].instance, 2, "same instance: not run again");
    cr_assert_eq(job->tasks[1].worker, w.id);
    cr_assert(job->tasks[1].flags & HQ_TF_ADOPTED);
    cr_assert_not(job->tasks[1].flags & HQ_TF_HOLDS, "no scheduler capacity to give back");
    cr_assert_not(job->tasks[1].flags & HQ_TF_READOPT);
    cr_assert_eq(w.n_running, 1);
    cr_assert_eq(w.n_assigned, 1);
    cr_assert_eq(hq_task_adopt_check(&job->tasks[1], &r, 1, 0), HQ_ADOPT_STALE,
                 "a second report of it is not adopted twice");
    cr_assert_eq(hq_broker_readopt_expire(&b), 0);
    cr_assert_eq(job->tasks[1].state, HQ_TS_RUNNING);
    /* its end releases the worker's counters */
    hq_broker_task_result(&b, job, &job->tasks[1], HQ_TS_FINISHED, w.id, NULL, 1);
    cr_assert_eq(job->tasks[1].state, HQ_TS_FINISHED);
    cr_assert_eq(w.n_running, 0);
    cr_assert_eq(w.n_assigned, 0);
    cr_assert_eq(job->tasks[1].flags & (HQ_TF_ADOPTED | HQ_TF_HOLDS), 0);
    b.reg.tab[w.id] = NULL;
    s_free(&b);
}

/* ---- a worker back without some of its recorded tasks ---- */

/* Job 1 (tasks 0-3): 0 and 1 running on finish-running worker 1 (instances 2 and 0),
 * 2 running on finish-running worker 3, 3 waiting. */
static void s_journal_two_finish_workers(void)
{
    hq_journal_t *j = s_writer();
    s_worker_up(j, 1, HQ_LOST_FINISH_RUNNING);
    s_worker_up(j, 3, HQ_LOST_FINISH_RUNNING);
    s_submit(j, 1, 0, 0, 4, NULL, HQ_CRASH_LIMIT, 5);
    s_task(j, HQ_JR_TASK_STARTED, 1, 0, 2, 1);
    s_task(j, HQ_JR_TASK_STARTED, 1, 1, 0, 1);
    s_task(j, HQ_JR_TASK_STARTED, 1, 2, 0, 3);
    s_close_writer(&j);
}

Test(readopt, tasks_a_returning_worker_did_not_report_wait_again_at_once)
{
    s_journal_two_finish_workers();
    hq_broker_t b;
    s_restore(&b);
    hq_job_t *job = b.jobs.tab[1];
    for (uint32_t i = 0; i < 3; i++)
        cr_assert(job->tasks[i].flags & HQ_TF_READOPT, "task %u", i);
    job->tasks[1].crashes = 2;
    /* worker 1 registers again reporting task 0 only: task 1 never reached it */
    hq_worker_t w = {.id = b.reg.max_id + 1, .epoch = 9, .state = HQ_WS_RUNNING};
    b.reg.tab[w.id] = &w;
    b.reg.max_id = w.id;
    hq_task_ref_t r = {1, 0, 2};
    cr_assert_eq(hq_task_adopt_check(&job->tasks[0], &r, 1, 0), HQ_ADOPT_YES);
    hq_broker_adopt(&b, job, &job->tasks[0], &w);
    cr_assert_eq(hq_broker_readopt_unreported(&b, 1), 1);
    cr_assert_eq(job->tasks[1].state, HQ_TS_WAITING, "no grace period for it");
    cr_assert_eq(job->tasks[1].instance, 1, "a new, higher instance");
    cr_assert_eq(job->tasks[1].crashes, 2, "not the task's fault");
    cr_assert_not(job->tasks[1].flags & HQ_TF_READOPT);
    cr_assert_eq(b.ready.n, 1, "announced to the scheduler");
    cr_assert_eq(b.ready.list[0].task_id, 1);
    cr_assert_eq(job->tasks[0].state, HQ_TS_RUNNING, "the reported one stays adopted");
    cr_assert_eq(job->tasks[0].instance, 2);
    cr_assert_eq(job->tasks[0].worker, w.id);
    cr_assert_eq(job->tasks[2].state, HQ_TS_RUNNING, "worker 3 may still come back");
    cr_assert_eq(job->tasks[2].instance, 0);
    cr_assert(job->tasks[2].flags & HQ_TF_READOPT);
    cr_assert_eq(hq_broker_readopt_unreported(&b, 1), 0, "only once");
    cr_assert_eq(hq_broker_readopt_unreported(&b, 0), 0, "a first registration moves nothing");
    cr_assert_eq(job->tasks[2].state, HQ_TS_RUNNING);
    cr_assert_eq(hq_broker_readopt_expire(&b), 1, "the grace expiry requeues the rest");
    cr_assert_eq(job->tasks[2].instance, 1);
    b.reg.tab[w.id] = NULL;
    s_free(&b);
}
