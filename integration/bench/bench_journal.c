/* Journal throughput: appends N task lifecycles (task_started + task_finished) the way
 * the core would, measures the main-loop cost per append, the time until all of it is
 * durable (group commit), then replays the journal and measures records/s.
 *   bench_journal [DIR] [N]   (default: a temp dir, N = 1000000 lifecycles) */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hq_util.h"
#include "journal/journal.h"

static int s_count(hq_jrec_t *rec, bool from_snapshot, void *arg, hq_err_t *err)
{
    (*(uint64_t *)arg)++;
    return 0;
}

int main(int argc, char **argv)
{
    char tmpl[] = "/tmp/hq-bench-journal-XXXXXX";
    const char *dir = argc > 1 ? argv[1] : mkdtemp(tmpl);
    uint64_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;
    if (!dir || n == 0) {
        fprintf(stderr, "usage: bench_journal [DIR] [N]\n");
        return 1;
    }
    char *jdir = hq_asprintf("%s/journal", dir);
    hq_err_t err = {{0}};
    hq_journal_t *j = hq_journal_open(jdir, NULL, &err);
    if (!j || hq_journal_start(j, &err) < 0) {
        fprintf(stderr, "bench_journal: %s\n", err.text);
        hq_journal_close(&j);
        free(jdir);
        return 1;
    }
    /* 1000 tasks per loop turn, as a busy broker hands them over at the end of a turn. */
    uint64_t t0 = hq_mono_ns();
    for (uint64_t k = 0; k < n; k++) {
        hq_jrec_t r = {.type = HQ_JR_TASK_STARTED};
        r.u.task.job = 1;
        r.u.task.task = (uint32_t)k;
        r.u.task.instance = 1;
        r.u.task.worker = 1 + (uint32_t)(k % 16);
        r.u.task.epoch = 1 + k % 16;
        hq_journal_append(j, &r, NULL, NULL, NULL);
        r.type = HQ_JR_TASK_FINISHED;
        hq_journal_append(j, &r, NULL, NULL, NULL);
        if (k % 1000 == 999)
            hq_journal_kick(j);
    }
    uint64_t t1 = hq_mono_ns();
    if (hq_journal_flush(j, &err) < 0) {
        fprintf(stderr, "bench_journal: %s\n", err.text);
        hq_journal_close(&j);
        free(jdir);
        return 1;
    }
    uint64_t t2 = hq_mono_ns();
    hq_journal_stats_t st;
    hq_journal_stats(j, &st);
    hq_journal_close(&j);

    j = hq_journal_open(jdir, NULL, &err);
    uint64_t seen = 0;
    uint64_t t3 = hq_mono_ns();
    hq_journal_report_t rep;
    if (!j || hq_journal_replay(j, s_count, &seen, &rep, &err) < 0) {
        fprintf(stderr, "bench_journal: %s\n", err.text);
        hq_journal_close(&j);
        free(jdir);
        return 1;
    }
    uint64_t t4 = hq_mono_ns();
    hq_journal_close(&j);

    uint64_t recs = 2 * n;
    printf("records appended:     %" PRIu64 " (%" PRIu64 " task lifecycles)\n", recs, n);
    printf("append (main loop):   %.0f ns/record\n", (double)(t1 - t0) / (double)recs);
    printf("durable after:        %.3f s total, %.0f records/s\n", (double)(t2 - t0) / 1e9,
           (double)recs / ((double)(t2 - t0) / 1e9));
    printf("fdatasyncs:           %" PRIu64 " (%.0f records each), slowest %.2f ms\n", st.syncs,
           (double)recs / (double)(st.syncs ? st.syncs : 1), (double)st.sync_ns_max / 1e6);
    printf("bytes/record:         %.1f\n", (double)st.bytes / (double)recs);
    printf("bytes/task lifecycle: %.1f (started + finished)\n", (double)st.bytes / (double)n);
    printf("replay:               %" PRIu64 " records in %.3f s = %.0f records/s\n", seen,
           (double)(t4 - t3) / 1e9, (double)seen / ((double)(t4 - t3) / 1e9));
    if (argc <= 1) {
        char *cmd = hq_asprintf("rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_journal: could not remove %s\n", dir);
        free(cmd);
    }
    free(jdir);
    return seen == recs ? 0 : 1;
}
