/* What opening a journal refuses: a second opener while the directory lock is held
 * (told the holder's pid), and files of a newer minor or another major format (leaving
 * every file untouched); a segment of an older minor is replayed but not continued. */
#include <criterion/criterion.h>

#include "journal_helpers.h"

TestSuite(journal, .init = s_setup, .fini = s_teardown);

Test(journal, a_second_opener_is_refused_and_told_the_holders_pid)
{
    hq_journal_opts_t o = s_opts();
    hq_err_t err = {{0}};
    hq_journal_t *j = hq_journal_open(s_dir, &o, &err);
    cr_assert_not_null(j, "%s", err.text);
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        hq_err_t e = {{0}};
        hq_journal_t *j2 = hq_journal_open(s_dir, &o, &e);
        ssize_t w = write(pfd[1], e.text, strlen(e.text) + 1);
        (void)w;
        _exit(j2 ? 1 : 0);
    }
    char msg[2048] = "";
    cr_assert_gt(read(pfd[0], msg, sizeof msg - 1), 0);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "second open succeeded");
    char want[64];
    snprintf(want, sizeof want, "in use by another broker (pid %ld)", (long)getpid());
    cr_assert(strstr(msg, want), "%s", msg);
    hq_journal_close(&j);
    /* Released on close. */
    j = hq_journal_open(s_dir, &o, &err);
    cr_assert_not_null(j, "%s", err.text);
    hq_journal_close(&j);
    close(pfd[0]);
    close(pfd[1]);
}

/* ---- versions ---- */

static void s_rewrite_header_version(const char *path, uint16_t major, uint16_t minor)
{
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    uint8_t h[HQ_JHEADER_SIZE];
    cr_assert_eq(pread(fd, h, sizeof h, 0), (ssize_t)sizeof h);
    h[8] = (uint8_t)major;
    h[9] = (uint8_t)(major >> 8);
    h[10] = (uint8_t)minor;
    h[11] = (uint8_t)(minor >> 8);
    uint32_t c = hq_crc32c(0, h, 60);
    for (int k = 0; k < 4; k++)
        h[60 + k] = (uint8_t)(c >> (8 * k));
    cr_assert_eq(pwrite(fd, h, sizeof h, 0), (ssize_t)sizeof h);
    close(fd);
}

Test(journal, newer_minor_or_other_major_is_refused_and_files_left_untouched)
{
    hq_journal_opts_t o = s_opts();
    hq_journal_t *j = s_open_started(&o);
    s_finished(j, 1, 1);
    hq_journal_close(&j);
    char *seg = s_seg(1);
    s_rewrite_header_version(seg, HQ_JFORMAT_MAJOR, HQ_JFORMAT_MINOR + 1);
    struct stat before, after;
    cr_assert_eq(stat(seg, &before), 0);
    char *tmp = hq_asprintf("%s/seg-0000000000000009.hqj.tmp", s_dir);
    int fd = open(tmp, O_CREAT | O_WRONLY, 0600);
    close(fd);
    hq_err_t err = {{0}};
    cr_assert_null(hq_journal_open(s_dir, &o, &err));
    char want[64];
    snprintf(want, sizeof want, "format 1.%d is not supported", HQ_JFORMAT_MINOR + 1);
    cr_assert(strstr(err.text, want), "%s", err.text);
    cr_assert(strstr(err.text, "newer hq"), "%s", err.text);
    cr_assert(strstr(err.text, "untouched"), "%s", err.text);
    cr_assert_eq(stat(seg, &after), 0);
    cr_assert_eq(before.st_size, after.st_size);
    cr_assert_eq(access(tmp, F_OK), 0, "a refusal must not clean up either");
    s_rewrite_header_version(seg, 2, 0);
    cr_assert_null(hq_journal_open(s_dir, &o, &err));
    cr_assert(strstr(err.text, "format 2.0 is not supported"), "%s", err.text);
    free(tmp);
    free(seg);
}

Test(journal, a_segment_of_an_older_minor_is_replayed_but_not_continued)
{
    hq_journal_opts_t o = s_opts();
    hq_journal_t *j = s_open_started(&o);
    s_finished(j, 1, 1);
    hq_journal_close(&j);
    char *seg1 = s_seg(1), *seg2 = s_seg(2);
    s_rewrite_header_version(seg1, HQ_JFORMAT_MAJOR, HQ_JFORMAT_MINOR - 1);
    struct stat before, after;
    cr_assert_eq(stat(seg1, &before), 0);
    j = s_open_started(&o);
    s_finished(j, 1, 2);
    hq_journal_close(&j);
    cr_assert_eq(access(seg2, F_OK), 0, "new records go to a segment of this minor");
    cr_assert_eq(stat(seg1, &after), 0);
    cr_assert_eq(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
    cr_assert_eq(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec, "the old segment is not written");
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(seen.n, 2, "both records replay");
    free(seg1);
    free(seg2);
}
