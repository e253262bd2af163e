/* Disk errors under the journal: no space fails the pending records and the journal
 * resumes by itself when space returns, a failed fdatasync poisons the segment and
 * rolls over, and a real file size limit surfaces as an error. */
#include <criterion/criterion.h>

#include "journal_helpers.h"

TestSuite(journal, .init = s_setup, .fini = s_teardown);

typedef struct s_states {
    int unavailable, ok, poisoned, last_err;
} s_states_t;

static void s_state_cb(void *arg, enum hq_journal_state st, int errnum)
{
    s_states_t *s = arg;
    if (st == HQ_JOURNAL_UNAVAILABLE)
        s->unavailable++;
    else if (st == HQ_JOURNAL_OK)
        s->ok++;
    else
        s->poisoned++;
    s->last_err = errnum;
}

Test(journal, no_space_fails_pending_records_and_resumes_when_space_returns)
{
    hq_journal_opts_t o = s_opts();
    hq_journal_t *j = s_open_started(&o);
    s_states_t states = {0};
    hq_journal_on_state(j, s_state_cb, &states);
    s_done_t ok1 = {0}, bad = {0}, ok2 = {0};
    hq_jrec_t r = {.type = HQ_JR_JOB_CLOSE};
    hq_journal_append(j, &r, s_done_cb, &ok1, NULL);
    cr_assert_eq(hq_journal_flush(j, NULL), 0);
    cr_assert_eq(ok1.errors, 0);
    /* The disk fills: the write fails and so does making a new segment, for a while. */
    hq_journal_test_fault(HQ_JFAULT_WRITE, ENOSPC, 1);
    hq_journal_test_fault(HQ_JFAULT_CREATE, ENOSPC, 3);
    for (int k = 0; k < 5; k++)
        hq_journal_append(j, &r, s_done_cb, &bad, NULL);
    hq_journal_kick(j);
    s_wait_for(j, &bad, 5);
    cr_assert_eq(bad.errors, 5);
    cr_assert_eq(bad.last_err, ENOSPC);
    cr_assert_eq(states.unavailable, 1);
    cr_assert_not(hq_journal_available(j));
    cr_assert_neq(hq_journal_flush(j, NULL), 0, "the lost records fail the next flush");
    /* Space returns: the writer's back-off retry gets a fresh segment by itself. */
    uint64_t t0 = hq_mono_ns();
    while (!states.ok && hq_mono_ns() - t0 < 5000000000ull) {
        usleep(1000);
        hq_journal_dispatch(j);
    }
    cr_assert_eq(states.ok, 1);
    cr_assert(hq_journal_available(j));
    uint64_t lsn = hq_journal_append(j, &r, s_done_cb, &ok2, NULL);
    cr_assert_eq(hq_journal_flush(j, NULL), 0);
    cr_assert_eq(ok2.n, 1);
    cr_assert_eq(ok2.errors, 0);
    hq_journal_close(&j);
    /* Replay: the first record and the one after recovery, never the failed ones. */
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(seen.n, 2);
    cr_assert_eq(seen.lsns[0], 1);
    cr_assert_eq(seen.lsns[1], lsn);
}

Test(journal, fdatasync_eio_poisons_the_segment_and_rolls_over)
{
    hq_journal_opts_t o = s_opts();
    hq_journal_t *j = s_open_started(&o);
    s_states_t states = {0};
    hq_journal_on_state(j, s_state_cb, &states);
    s_done_t ok1 = {0}, bad = {0}, ok2 = {0};
    hq_jrec_t r = {.type = HQ_JR_JOB_CLOSE};
    hq_journal_append(j, &r, s_done_cb, &ok1, NULL);
    cr_assert_eq(hq_journal_flush(j, NULL), 0);
    hq_journal_test_fault(HQ_JFAULT_SYNC, EIO, 1);
    for (int k = 0; k < 3; k++)
        hq_journal_append(j, &r, s_done_cb, &bad, NULL);
    hq_journal_kick(j);
    s_wait_for(j, &bad, 3);
    cr_assert_eq(bad.errors, 3);
    cr_assert_eq(bad.last_err, EIO);
    cr_assert_eq(states.poisoned, 1);
    cr_assert_neq(hq_journal_flush(j, NULL), 0, "the lost records fail the next flush");
    hq_journal_stats_t st;
    hq_journal_stats(j, &st);
    cr_assert_eq(st.segments, 2, "a fresh segment after the failed sync");
    hq_journal_append(j, &r, s_done_cb, &ok2, NULL);
    cr_assert_eq(hq_journal_flush(j, NULL), 0);
    cr_assert_eq(ok2.errors, 0);
    hq_journal_close(&j);
    /* The failed records are in the poisoned segment (the write worked) but the next
     * header says they were never durable: replay skips them. */
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(seen.n, 2);
    cr_assert_eq(seen.lsns[0], 1);
    cr_assert_eq(seen.lsns[1], 5);
    cr_assert_gt(rep.discarded, 0);
}

Test(journal, real_file_size_limit_surfaces_as_an_error_not_a_crash)
{
    hq_journal_opts_t o = s_opts(); /* 1 MiB segments: preallocated beyond the limit */
    hq_journal_t *j = s_open_started(&o);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 8192;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    s_done_t d = {0};
    hq_jrec_t r = {.type = HQ_JR_TASK_FAILED};
    r.u.task.error =
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    for (int k = 0; k < 200; k++)
        hq_journal_append(j, &r, s_done_cb, &d, NULL);
    hq_journal_flush(j, NULL);
    s_wait_for(j, &d, 200);
    cr_assert_gt(d.errors, 0, "writes past the limit must fail");
    cr_assert_eq(d.last_err, EFBIG);
    cr_assert_not(hq_journal_available(j));
    setrlimit(RLIMIT_FSIZE, &old);
    hq_journal_close(&j);
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(seen.n, 200 - d.errors, "exactly the acked records are replayed");
}

Test(journal, flush_fails_when_records_since_the_last_flush_were_lost_in_another_group)
{
    hq_journal_opts_t o = s_opts();
    hq_journal_t *j = s_open_started(&o);
    s_done_t bad = {0};
    hq_jrec_t r = {.type = HQ_JR_JOB_CLOSE};
    cr_assert_eq(hq_journal_flush(j, NULL), 0);
    hq_journal_test_fault(HQ_JFAULT_SYNC, EIO, 1);
    for (int k = 0; k < 3; k++)
        hq_journal_append(j, &r, s_done_cb, &bad, NULL);
    hq_journal_kick(j);
    /* The records' group fails before the flush is even sent: the flush's own group
     * has nothing to sync, yet what was appended before it is not durable. */
    s_wait_for(j, &bad, 3);
    cr_assert_eq(bad.errors, 3);
    hq_err_t err = {{0}};
    cr_assert_neq(hq_journal_flush(j, &err), 0);
    cr_assert(strstr(err.text, "Input/output error"), "%s", err.text);
    /* Reported once: the next flush covers only what came after it. */
    cr_assert_eq(hq_journal_flush(j, NULL), 0);
    hq_journal_close(&j);
}
