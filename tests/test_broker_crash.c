/* Unit tests of crash counting when a worker is lost: a task whose ASSIGN was sent
 * (HQ_TF_SENT) may have started even without a STARTED report, so it counts like a
 * running one (never-restart fails, crash-limit counts); one never sent, or lost with
 * a graceful stop, does not count; replay applies the task_state record the live
 * broker writes for an uncounted requeue before the worker_lost record. */
#define JF_NAME "crash"
#include "journal_fixture.h"
#include "hq_util.h"

TestSuite(crash, .init = s_setup, .fini = s_teardown);

/* Job 1: 3 never-restart tasks; job 2: 3 tasks with --crash-limit 5. */
static void s_two_jobs(hq_broker_t *b)
{
    hq_journal_t *j = s_writer();
    s_submit(j, 1, 0, 0, 3, NULL, HQ_CRASH_NEVER_RESTART, 0);
    s_submit(j, 2, 0, 0, 3, NULL, HQ_CRASH_LIMIT, 5);
    s_close_writer(&j);
    jf_restore(b, s_dir, false);
}

static hq_worker_t *s_add_worker(hq_broker_t *b)
{
    hq_worker_t *w = hq_calloc(1, sizeof *w);
    w->id = b->reg.max_id + 1;
    w->state = HQ_WS_RUNNING;
    w->rid_key = hq_strdup("rid");
    zhashx_insert(b->reg.by_rid, w->rid_key, w);
    b->reg.tab[w->id] = w;
    b->reg.max_id = w->id;
    return w;
}

/* Puts task t on w as ASSIGNED (sent or not) or RUNNING, as the broker would. */
static void s_place(hq_job_t *j, hq_task_t *t, hq_worker_t *w, enum hq_tstate st, bool sent)
{
    hq_events_task_state(NULL, j, t, HQ_TS_ASSIGNED, w->id, NULL, 0);
    t->worker = w->id;
    t->flags |= HQ_TF_HOLDS | (sent ? HQ_TF_SENT : 0);
    w->n_assigned++;
    if (st == HQ_TS_RUNNING) {
        hq_events_task_state(NULL, j, t, HQ_TS_RUNNING, w->id, NULL, 1);
        w->n_running++;
    }
}

static void s_done(hq_broker_t *b, hq_worker_t *w)
{
    b->reg.tab[w->id] = NULL;
    free(w->rid_key);
    free(w);
    s_free(b);
}

Test(crash, the_rule_what_a_worker_may_have_started)
{
    hq_task_t t = {.state = HQ_TS_ASSIGNED};
    cr_assert_not(hq_task_maybe_started(&t), "assigned, ASSIGN not sent");
    t.flags = HQ_TF_HOLDS | HQ_TF_SENT;
    cr_assert(hq_task_maybe_started(&t), "ASSIGN sent, no STARTED report yet");
    t.state = HQ_TS_RUNNING;
    t.flags = HQ_TF_HOLDS;
    cr_assert(hq_task_maybe_started(&t));
    t.state = HQ_TS_WAITING;
    t.flags = HQ_TF_SENT;
    cr_assert_not(hq_task_maybe_started(&t));
}

Test(crash, a_lost_worker_counts_sent_tasks_like_running_ones)
{
    hq_broker_t b;
    s_two_jobs(&b);
    hq_worker_t *w = s_add_worker(&b);
    hq_job_t *nr = b.jobs.tab[1], *lim = b.jobs.tab[2];
    s_place(nr, &nr->tasks[0], w, HQ_TS_ASSIGNED, true);  /* killed its worker at once */
    s_place(nr, &nr->tasks[1], w, HQ_TS_ASSIGNED, false); /* never left the broker */
    s_place(nr, &nr->tasks[2], w, HQ_TS_RUNNING, true);
    s_place(lim, &lim->tasks[0], w, HQ_TS_ASSIGNED, true);
    s_place(lim, &lim->tasks[1], w, HQ_TS_ASSIGNED, false);
    s_place(lim, &lim->tasks[2], w, HQ_TS_RUNNING, true);
    hq_worker_lost(&b, w, HQ_WS_CONNECTION_LOST);

    cr_assert_eq(nr->tasks[0].state, HQ_TS_FAILED, "never-restart: it may have run");
    cr_assert_not_null(strstr(nr->tasks[0].error, "never-restart"));
    cr_assert_not_null(strstr(nr->tasks[0].error, "before it reported the start"));
    cr_assert_eq(nr->tasks[1].state, HQ_TS_WAITING, "never sent: it did not run");
    cr_assert_eq(nr->tasks[1].crashes, 0);
    cr_assert_eq(nr->tasks[1].instance, 1);
    cr_assert_eq(nr->tasks[2].state, HQ_TS_FAILED);
    cr_assert_not_null(strstr(nr->tasks[2].error, "was running on a worker"));

    cr_assert_eq(lim->tasks[0].state, HQ_TS_WAITING);
    cr_assert_eq(lim->tasks[0].crashes, 1, "sent: counted like a running task");
    cr_assert_eq(lim->tasks[1].crashes, 0, "not sent: not counted");
    cr_assert_eq(lim->tasks[2].crashes, 1);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(lim->tasks[i].instance, 1);
        cr_assert_eq(lim->tasks[i].flags & (HQ_TF_HOLDS | HQ_TF_SENT), 0);
    }
    cr_assert_eq(w->n_assigned, 0);
    cr_assert_eq(b.ready.n, 4, "the waiting tasks go back to the scheduler");
    s_done(&b, w);
}

Test(crash, the_crash_limit_fails_a_sent_task_at_its_limit)
{
    hq_broker_t b;
    s_two_jobs(&b);
    hq_job_t *lim = b.jobs.tab[2];
    for (uint32_t round = 1; round <= 5; round++) {
        hq_worker_t *w = s_add_worker(&b);
        s_place(lim, &lim->tasks[0], w, HQ_TS_ASSIGNED, true);
        hq_worker_lost(&b, w, HQ_WS_HEARTBEAT_LOST);
        cr_assert_eq(lim->tasks[0].crashes, round);
        cr_assert_eq(lim->tasks[0].state, round < 5 ? HQ_TS_WAITING : HQ_TS_FAILED, "round %u",
                     round);
        b.reg.tab[w->id] = NULL;
        free(w->rid_key);
        free(w);
    }
    cr_assert_not_null(strstr(lim->tasks[0].error, "crashed 5 times (crash limit 5)"));
    s_free(&b);
}

Test(crash, a_graceful_stop_counts_nothing_but_never_restart_still_fails)
{
    hq_broker_t b;
    s_two_jobs(&b);
    hq_worker_t *w = s_add_worker(&b);
    hq_job_t *nr = b.jobs.tab[1], *lim = b.jobs.tab[2];
    s_place(nr, &nr->tasks[0], w, HQ_TS_ASSIGNED, true);
    s_place(lim, &lim->tasks[0], w, HQ_TS_ASSIGNED, true);
    s_place(lim, &lim->tasks[1], w, HQ_TS_RUNNING, true);
    hq_worker_lost(&b, w, HQ_WS_STOPPED);
    cr_assert_eq(nr->tasks[0].state, HQ_TS_FAILED, "must not run twice");
    cr_assert_eq(lim->tasks[0].crashes, 0);
    cr_assert_eq(lim->tasks[1].crashes, 0);
    cr_assert_eq(lim->tasks[0].state, HQ_TS_WAITING);
    s_done(&b, w);
}

/* What the live broker journals when a crash is not counted (the ASSIGN never left):
 * a task_state record before the worker_lost one; replay must not count it either. */
Test(crash, replay_agrees_with_an_uncounted_requeue)
{
    hq_journal_t *j = s_writer();
    s_submit(j, 1, 0, 0, 2, NULL, HQ_CRASH_LIMIT, 5);
    s_task(j, HQ_JR_TASK_STARTED, 1, 0, 0, 1);
    s_task(j, HQ_JR_TASK_STARTED, 1, 1, 0, 1);
    hq_jrec_t rec = {.type = HQ_JR_TASK_STATE};
    rec.u.task_state.job = 1;
    rec.u.task_state.task = 1;
    rec.u.task_state.state = HQ_TS_WAITING;
    rec.u.task_state.instance = 1;
    s_put(j, rec);
    s_worker(j, HQ_JR_WORKER_LOST, 1, HQ_WS_CONNECTION_LOST);
    s_close_writer(&j);
    hq_broker_t b;
    jf_restore(&b, s_dir, false);
    hq_job_t *job = b.jobs.tab[1];
    cr_assert_eq(job->tasks[0].crashes, 1, "sent and lost: counted");
    cr_assert_eq(job->tasks[0].instance, 1);
    cr_assert_eq(job->tasks[1].state, HQ_TS_WAITING);
    cr_assert_eq(job->tasks[1].crashes, 0, "requeued uncounted live: uncounted on replay");
    cr_assert_eq(job->tasks[1].instance, 1, "not bumped twice");
    s_free(&b);
}
