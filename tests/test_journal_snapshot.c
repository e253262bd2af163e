/* Journal snapshots: replay loads the snapshot then only later records, a snapshot never
 * covers a record whose completion has not run, a damaged newest snapshot falls back
 * to the previous one, and a crash at any step of a snapshot commit leaves a
 * replayable journal with the same state. */
#include <criterion/criterion.h>

#include "journal_helpers.h"

TestSuite(journal, .init = s_setup, .fini = s_teardown);

/* A snapshot covers the records settled so far: flush first so it covers all. */
static void s_write_snapshot(hq_journal_t *j, uint32_t n_tasks, s_done_t *d)
{
    hq_err_t err = {{0}};
    cr_assert_eq(hq_journal_flush(j, &err), 0, "%s", err.text);
    hq_jsnap_t *s = hq_journal_snapshot_begin(j, &err);
    cr_assert_not_null(s, "%s", err.text);
    for (uint32_t k = 0; k < n_tasks; k++) {
        hq_jrec_t r = {.type = HQ_JR_TASK_STATE};
        r.u.task_state.job = 1;
        r.u.task_state.task = k;
        r.u.task_state.state = 3;
        cr_assert_eq(hq_jsnap_add(s, &r, &err), 0, "%s", err.text);
    }
    cr_assert_eq(hq_jsnap_commit(&s, s_done_cb, d, &err), 0, "%s", err.text);
}

Test(journal, snapshot_then_tail_replays_only_later_records)
{
    hq_journal_opts_t o = s_opts();
    o.segment_size = 4096;
    hq_journal_t *j = s_open_started(&o);
    for (uint32_t k = 0; k < 100; k++)
        s_finished(j, 1, k);
    s_done_t d = {0};
    s_write_snapshot(j, 100, &d);
    s_wait_for(j, &d, 1);
    cr_assert_eq(d.errors, 0);
    for (uint32_t k = 100; k < 110; k++)
        s_finished(j, 1, k);
    hq_journal_close(&j);
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(rep.snapshot_lsn, 100);
    cr_assert_eq(seen.n_snap, 100);
    cr_assert_eq(seen.n, 10);
    cr_assert_eq(seen.lsns[0], 101);
}

/* A client mutation is applied when its record is durable, so a snapshot taken while
 * one waits may lack it: the snapshot must not claim that record's lsn, and replay
 * must give it back from the tail. */
Test(journal, a_snapshot_never_covers_a_record_whose_completion_has_not_run)
{
    hq_journal_opts_t o = s_opts();
    o.segment_size = 4096;
    hq_journal_t *j = s_open_started(&o);
    for (uint32_t k = 0; k < 20; k++)
        s_finished(j, 1, k);
    hq_err_t err = {{0}};
    cr_assert_eq(hq_journal_flush(j, &err), 0, "%s", err.text);
    s_done_t pending = {0};
    hq_jrec_t r = {.type = HQ_JR_TASK_FINISHED};
    r.u.task.job = 2;
    r.u.task.task = 7;
    uint64_t lsn = hq_journal_append(j, &r, s_done_cb, &pending, &err);
    cr_assert_eq(lsn, 21, "%s", err.text);
    /* the main loop has not run the callback yet: the state lacks job 2 */
    hq_jsnap_t *s = hq_journal_snapshot_begin(j, &err);
    cr_assert_not_null(s, "%s", err.text);
    cr_assert_eq(hq_jsnap_lsn(s), 20, "the snapshot covers only settled records");
    s_done_t d = {0};
    cr_assert_eq(hq_jsnap_commit(&s, s_done_cb, &d, &err), 0, "%s", err.text);
    s_wait_for(j, &d, 1);
    cr_assert_eq(d.errors, 0);
    cr_assert_eq(pending.n, 1);
    hq_journal_close(&j);
    s_seen_t seen;
    hq_journal_report_t rep;
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(rep.snapshot_lsn, 20);
    cr_assert_eq(seen.n, 1, "the unsettled record is replayed from the tail");
    cr_assert_eq(seen.lsns[0], 21);
}

Test(journal, a_damaged_newest_snapshot_falls_back_to_the_previous_one)
{
    hq_journal_opts_t o = s_opts();
    o.segment_size = 4096;
    hq_journal_t *j = s_open_started(&o);
    s_done_t d = {0};
    for (uint32_t k = 0; k < 50; k++)
        s_finished(j, 1, k);
    s_write_snapshot(j, 50, &d);
    s_wait_for(j, &d, 1);
    for (uint32_t k = 50; k < 100; k++)
        s_finished(j, 1, k);
    s_write_snapshot(j, 100, &d);
    s_wait_for(j, &d, 2);
    cr_assert_eq(d.errors, 0);
    for (uint32_t k = 100; k < 105; k++)
        s_finished(j, 1, k);
    hq_journal_close(&j);
    char *snap = hq_asprintf("%s/snap-%016d.hqs", s_dir, 100);
    s_flip_bit(snap, HQ_JHEADER_SIZE + 30);
    free(snap);
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(rep.snapshot_lsn, 50);
    cr_assert_eq(seen.n_snap, 50);
    cr_assert_eq(seen.n, 55, "everything after the older snapshot, from kept segments");
    cr_assert(strstr(rep.note, "damaged"), "%s", rep.note);
}

/* Crash after each commit step: the old set or the new snapshot + tail, same state. */
Test(journal, a_crash_at_any_snapshot_step_leaves_a_replayable_journal)
{
    for (int step = 1; step <= 5; step++) {
        s_teardown();
        s_setup();
        hq_journal_opts_t o = s_opts();
        o.segment_size = 4096;
        hq_journal_t *j = s_open_started(&o);
        s_done_t d = {0};
        for (uint32_t k = 0; k < 40; k++)
            s_finished(j, 1, k);
        s_write_snapshot(j, 40, &d); /* an earlier, complete snapshot */
        s_wait_for(j, &d, 1);
        for (uint32_t k = 40; k < 80; k++)
            s_finished(j, 1, k);
        hq_journal_test_snap_stop(step < 5 ? step : 0);
        s_write_snapshot(j, 80, &d);
        s_wait_for(j, &d, 2);
        cr_assert_eq(d.errors, 0);
        hq_journal_test_snap_stop(0);
        for (uint32_t k = 80; k < 85; k++)
            s_finished(j, 1, k);
        hq_journal_close(&j); /* the "crash": nothing more of the commit happens */
        s_seen_t seen;
        hq_journal_report_t rep;
        hq_err_t err = {{0}};
        cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "step %d: %s", step, err.text);
        /* Total state = snapshot records + later records = 85 task results either way. */
        cr_assert_eq(seen.n_snap + seen.n, rep.snapshot_lsn == 80 ? 85 : 40 + 45, "step %d", step);
        cr_assert(rep.snapshot_lsn == 40 || rep.snapshot_lsn == 80, "step %d", step);
        cr_assert_eq(rep.snapshot_lsn, step >= 3 ? 80 : 40, "step %d", step);
        cr_assert_eq(rep.last_lsn, 85);
    }
}
