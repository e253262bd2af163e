/* Shared by the journal module's unit tests (tests/test_journal_*.c): a temporary
 * journal directory per test with every injected fault cleared, options with small
 * segments, appending task_finished records, a replay that keeps what it saw, paths,
 * bit flips, and completion counters. */
#ifndef HQ_TEST_JOURNAL_HELPERS_H
#define HQ_TEST_JOURNAL_HELPERS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hq_util.h"
#include "journal/journal.h"

static char s_dir[256];

static inline void s_setup(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/hq-test-journal-XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
    strcat(s_dir, "/j");
    hq_journal_test_fault(HQ_JFAULT_WRITE, 0, 0);
    hq_journal_test_fault(HQ_JFAULT_SYNC, 0, 0);
    hq_journal_test_fault(HQ_JFAULT_CREATE, 0, 0);
    hq_journal_test_snap_stop(0);
}

static inline void s_teardown(void)
{
    char cmd[300];
    char *slash = strrchr(s_dir, '/');
    *slash = '\0';
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    cr_assert_eq(system(cmd), 0);
}

static inline hq_journal_opts_t s_opts(void)
{
    hq_journal_opts_t o = {.segment_size = 1 << 20, .uid = "abc123"};
    return o;
}

static inline hq_journal_t *s_open_started(const hq_journal_opts_t *o)
{
    hq_err_t err = {{0}};
    hq_journal_t *j = hq_journal_open(s_dir, o, &err);
    cr_assert_not_null(j, "%s", err.text);
    cr_assert_eq(hq_journal_start(j, &err), 0, "%s", err.text);
    return j;
}

static inline uint64_t s_finished(hq_journal_t *j, uint32_t job, uint32_t task)
{
    hq_jrec_t r = {.type = HQ_JR_TASK_FINISHED};
    r.u.task.job = job;
    r.u.task.task = task;
    r.u.task.instance = 1;
    hq_err_t err = {{0}};
    uint64_t lsn = hq_journal_append(j, &r, NULL, NULL, &err);
    cr_assert_neq(lsn, 0, "%s", err.text);
    return lsn;
}

/* A replay that keeps what it saw. */
typedef struct s_seen {
    uint64_t n, n_snap;
    uint64_t lsns[4096];
    uint32_t tasks[4096];
    uint8_t types[4096];
} s_seen_t;

static inline int s_collect(hq_jrec_t *rec, bool from_snapshot, void *arg, hq_err_t *err)
{
    s_seen_t *s = arg;
    if (from_snapshot) {
        s->n_snap++;
        return 0;
    }
    if (s->n < 4096) {
        s->lsns[s->n] = rec->lsn;
        s->types[s->n] = (uint8_t)rec->type;
        s->tasks[s->n] = rec->u.task.task;
    }
    s->n++;
    return 0;
}

static inline int s_replay(const hq_journal_opts_t *o, s_seen_t *seen, hq_journal_report_t *rep,
                           hq_err_t *err)
{
    hq_journal_t *j = hq_journal_open(s_dir, o, err);
    if (!j)
        return -1;
    memset(seen, 0, sizeof *seen);
    int rc = hq_journal_replay(j, s_collect, seen, rep, err);
    hq_journal_close(&j);
    return rc;
}

static inline char *s_seg(uint64_t seq)
{
    return hq_asprintf("%s/seg-%016" PRIu64 ".hqj", s_dir, seq);
}

static inline void s_flip_bit(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, off), 1);
    b ^= 0x10;
    cr_assert_eq(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

/* Counts completions; out-of-order lsns and failures count as errors. */
typedef struct s_done {
    uint64_t n, last, errors;
    int last_err;
} s_done_t;

static inline void s_done_cb(void *arg, uint64_t lsn, int errnum)
{
    s_done_t *d = arg;
    d->n++;
    if (lsn <= d->last && !errnum)
        d->errors++; /* out of order */
    d->last = lsn;
    if (errnum) {
        d->last_err = errnum;
        d->errors++;
    }
}

/* Runs completions until d has seen n of them (5 s at most). */
static inline void s_wait_for(hq_journal_t *j, s_done_t *d, uint64_t n)
{
    uint64_t t0 = hq_mono_ns();
    while (d->n < n && hq_mono_ns() - t0 < 5000000000ull) {
        usleep(500);
        hq_journal_dispatch(j);
    }
    cr_assert_eq(d->n, n);
}

#endif
