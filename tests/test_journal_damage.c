/* Damaged journals: a torn tail at every offset of the last record is truncated and
 * the segment continued, corruption is refused with the segment and offset (also in
 * the final segment when valid records follow), and salvage keeps the valid prefix. */
#include <criterion/criterion.h>

#include "journal_helpers.h"

TestSuite(journal, .init = s_setup, .fini = s_teardown);

Test(journal, torn_tail_at_every_offset_of_the_last_record_is_truncated)
{
    hq_journal_opts_t o = s_opts();
    o.segment_size = 4096; /* small: the scan after each cut stays cheap */
    hq_journal_t *j = s_open_started(&o);
    hq_jrec_t r = {.type = HQ_JR_TASK_FAILED};
    r.u.task.job = 3;
    r.u.task.error = "Program terminated with signal 9";
    for (uint32_t k = 0; k < 10; k++) {
        r.u.task.task = k;
        cr_assert_neq(hq_journal_append(j, &r, NULL, NULL, NULL), 0);
    }
    hq_journal_close(&j);
    char *seg = s_seg(1);
    uint8_t *img;
    size_t len;
    cr_assert_eq(hq_read_file(seg, 1 << 20, (char **)&img, &len), 0);
    /* Find where the last record starts and ends. */
    size_t off = HQ_JHEADER_SIZE, last = 0, end = 0;
    for (int k = 0; k < 10; k++) {
        uint32_t n =
            img[off] | img[off + 1] << 8 | img[off + 2] << 16 | (uint32_t)img[off + 3] << 24;
        last = off;
        off += 8 + n;
    }
    end = off;
    for (size_t cut = last; cut < end; cut++) {
        /* Rewrite the segment as the crash left it: bytes before cut, zeros after. */
        int fd = open(seg, O_WRONLY | O_TRUNC);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, img, cut), (ssize_t)cut);
        cr_assert_eq(ftruncate(fd, (off_t)len), 0);
        close(fd);
        /* Remove the segments earlier opens created, so seg 1 is final. */
        for (uint64_t s = 2; s < 4; s++) {
            char *p = s_seg(s);
            unlink(p);
            free(p);
        }
        s_seen_t seen;
        hq_journal_report_t rep;
        hq_err_t err = {{0}};
        cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "cut %zu: %s", cut, err.text);
        cr_assert_eq(seen.n, 9, "cut %zu", cut);
        cr_assert_eq(rep.last_lsn, 9);
        /* Dropped: the partial record up to its last non-zero byte (the rest is the
         * zeroed preallocation). */
        size_t junk = cut;
        while (junk > last && img[junk - 1] == 0)
            junk--;
        bool zeros = junk == last;
        cr_assert_eq(rep.torn_bytes, junk - last, "cut %zu: %" PRIu64, cut, rep.torn_bytes);
        struct stat st;
        cr_assert_eq(stat(seg, &st), 0);
        if (!zeros) {
            cr_assert_eq((size_t)st.st_size, last, "cut %zu: tail not truncated", cut);
            cr_assert(strstr(rep.note, "torn tail"), "%s", rep.note);
        }
    }
    /* The repaired segment is continued by the next start, preallocation restored. */
    j = s_open_started(&o);
    cr_assert_eq(s_finished(j, 3, 99), 10);
    hq_journal_close(&j);
    struct stat st;
    cr_assert_eq(stat(seg, &st), 0);
    cr_assert_eq((size_t)st.st_size, (size_t)o.segment_size);
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(seen.n, 10);
    cr_assert_eq(seen.tasks[9], 99);
    free(img);
    free(seg);
}

/* ---- corruption ---- */

static void s_three_segments(hq_journal_opts_t *o)
{
    *o = s_opts();
    o->segment_size = 4096;
    hq_journal_t *j = s_open_started(o);
    for (uint32_t k = 0; k < 300; k++) {
        s_finished(j, 1, k);
        if (k % 20 == 19)
            hq_journal_flush(j, NULL);
    }
    hq_journal_close(&j);
}

Test(journal, a_bit_flip_in_a_middle_segment_is_refused_with_segment_and_offset)
{
    hq_journal_opts_t o;
    s_three_segments(&o);
    char *seg = s_seg(2);
    s_flip_bit(seg, HQ_JHEADER_SIZE + 100);
    free(seg);
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), -1);
    cr_assert(strstr(err.text, "corrupted"), "%s", err.text);
    cr_assert(strstr(err.text, "seg-0000000000000002.hqj offset"), "%s", err.text);
    /* Refusal changes nothing: a second attempt fails the same way. */
    hq_err_t err2 = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err2), -1);
    cr_assert_str_eq(err.text, err2.text);
}

Test(journal, salvage_keeps_the_prefix_and_says_what_was_lost)
{
    hq_journal_opts_t o;
    s_three_segments(&o);
    char *seg = s_seg(2);
    s_flip_bit(seg, HQ_JHEADER_SIZE + 100);
    free(seg);
    o.salvage = true;
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert(rep.salvaged);
    cr_assert_gt(seen.n, 0);
    cr_assert_lt(seen.n, 300);
    for (uint64_t k = 0; k < seen.n; k++)
        cr_assert_eq(seen.lsns[k], k + 1);
    cr_assert(strstr(rep.note, "salvage"), "%s", rep.note);
    /* The salvaged journal opens cleanly afterwards and continues after the prefix. */
    o.salvage = false;
    uint64_t kept = seen.n;
    hq_journal_t *j = s_open_started(&o);
    cr_assert_eq(s_finished(j, 2, 0), kept + 1);
    hq_journal_close(&j);
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(seen.n, kept + 1);
}

Test(journal, corruption_in_the_final_segment_with_valid_records_after_it_is_refused)
{
    hq_journal_opts_t o = s_opts();
    hq_journal_t *j = s_open_started(&o);
    for (uint32_t k = 0; k < 50; k++)
        s_finished(j, 1, k);
    hq_journal_close(&j);
    char *seg = s_seg(2); /* the empty segment of the last close would be final: drop it */
    unlink(seg);
    free(seg);
    seg = s_seg(1);
    s_flip_bit(seg, HQ_JHEADER_SIZE + 40);
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), -1);
    cr_assert(strstr(err.text, "valid records follow"), "%s", err.text);
    free(seg);
}
