/* The journal's group commit: many appends cost few fdatasyncs, records appended during
 * a commit form the next group, a lone record is synced at once; segments roll when
 * full, and a restart continues the clean final segment. */
#include <criterion/criterion.h>

#include "journal_helpers.h"

TestSuite(journal, .init = s_setup, .fini = s_teardown);

Test(journal, group_commit_makes_many_appends_cost_few_fdatasyncs)
{
    hq_journal_opts_t o = s_opts();
    o.segment_size = 64 << 20;
    hq_journal_t *j = s_open_started(&o);
    s_done_t d = {0};
    for (uint32_t k = 0; k < 20000; k++) {
        hq_jrec_t r = {.type = HQ_JR_TASK_FINISHED};
        r.u.task.job = 1;
        r.u.task.task = k;
        cr_assert_neq(hq_journal_append(j, &r, s_done_cb, &d, NULL), 0);
        if (k % 100 == 99)
            hq_journal_kick(j); /* as the loop does at the end of a turn */
    }
    hq_err_t err = {{0}};
    cr_assert_eq(hq_journal_flush(j, &err), 0, "%s", err.text);
    cr_assert_eq(d.n, 20000);
    cr_assert_eq(d.errors, 0);
    cr_assert_eq(d.last, 20000);
    hq_journal_stats_t st;
    hq_journal_stats(j, &st);
    cr_assert_eq(st.durable, 20000);
    /* 4096 records per group at most: at least 5 syncs; at most one per handed-over
     * batch of 100 (records arriving during a sync join the next group). */
    cr_assert_geq(st.syncs, 5);
    cr_assert_leq(st.syncs, 200, "%" PRIu64 " fdatasyncs for 20000 records", st.syncs);
    cr_assert_leq(st.syncs, st.writes);
    hq_journal_close(&j);
}

Test(journal, records_appended_during_a_commit_form_the_next_group)
{
    hq_journal_opts_t o = s_opts();
    o.segment_size = 64 << 20;
    hq_journal_t *j = s_open_started(&o);
    s_done_t d = {0};
    /* A steady stream handed over in small batches (as loop turns under load do):
     * the writer never waits for a quiet moment, yet each fdatasync covers the many
     * batches that arrived while the previous one ran. */
    uint32_t kicks = 0;
    for (uint32_t k = 0; k < 20000; k++) {
        hq_jrec_t r = {.type = HQ_JR_TASK_FINISHED};
        r.u.task.job = 1;
        r.u.task.task = k;
        cr_assert_neq(hq_journal_append(j, &r, s_done_cb, &d, NULL), 0);
        if (k % 10 == 9) {
            hq_journal_kick(j);
            kicks++;
            hq_journal_dispatch(j);
        }
    }
    hq_err_t err = {{0}};
    cr_assert_eq(hq_journal_flush(j, &err), 0, "%s", err.text);
    cr_assert_eq(d.n, 20000);
    cr_assert_eq(d.errors, 0);
    hq_journal_stats_t st;
    hq_journal_stats(j, &st);
    cr_assert_eq(st.durable, 20000);
    cr_assert_leq(st.syncs, kicks / 4, "%" PRIu64 " fdatasyncs for %u hand-overs", st.syncs, kicks);
    hq_journal_close(&j);
}

Test(journal, a_lone_record_is_synced_without_waiting_for_a_quiet_window)
{
    hq_journal_opts_t o = s_opts();
    hq_journal_t *j = s_open_started(&o);
    s_done_t d = {0};
    hq_jrec_t r = {.type = HQ_JR_JOB_CLOSE};
    uint64_t t0 = hq_mono_ns();
    cr_assert_eq(hq_journal_append(j, &r, s_done_cb, &d, NULL), 1);
    hq_journal_kick(j);
    while (!d.n && hq_mono_ns() - t0 < 2000000000ull) {
        usleep(200);
        hq_journal_dispatch(j);
    }
    cr_assert_eq(d.n, 1);
    cr_assert_eq(d.errors, 0);
    /* Committed as soon as the writer has it: one write + one fdatasync, well below the
     * 100 ms hard deadline. */
    cr_assert_lt(hq_mono_ns() - t0, 100000000ull);
    hq_journal_close(&j);
}

Test(journal, segments_roll_when_full_and_replay_in_order)
{
    hq_journal_opts_t o = s_opts();
    o.segment_size = 4096;
    hq_journal_t *j = s_open_started(&o);
    for (uint32_t k = 0; k < 2000; k++) {
        s_finished(j, 1, k);
        if (k % 50 == 49)
            cr_assert_eq(hq_journal_flush(j, NULL), 0);
    }
    hq_journal_stats_t st;
    hq_journal_close(&j);
    s_seen_t *seen = hq_calloc(1, sizeof *seen);
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(seen->n, 2000);
    for (uint32_t k = 0; k < 2000; k++)
        cr_assert_eq(seen->tasks[k], k);
    cr_assert_gt(rep.segments, 10);
    (void)st;
    free(seen);
}

Test(journal, a_restart_continues_the_clean_final_segment_instead_of_a_new_file)
{
    hq_journal_opts_t o = s_opts();
    for (uint32_t run = 0; run < 3; run++) {
        hq_journal_t *j = s_open_started(&o);
        for (uint32_t k = 0; k < 10; k++)
            cr_assert_eq(s_finished(j, 1, 10 * run + k), 10 * run + k + 1);
        hq_journal_close(&j);
    }
    char *seg2 = s_seg(2);
    cr_assert_neq(access(seg2, F_OK), 0, "restarts must not preallocate new segments");
    free(seg2);
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(seen.n, 30);
    cr_assert_eq(seen.tasks[29], 29);
}
