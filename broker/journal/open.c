/* The journal's life cycle: opening a journal directory (defaults, the flock on
 * PATH/LOCK that keeps a second broker out, the header checks), starting the writer
 * (a fresh or continued segment and the writer thread), its statistics, and closing
 * it (commit what was appended, stop the thread, unlock). The parts: append.c (main
 * thread), queue.c, writer.c, errors.c, segment.c, compact.c and snap_write.c (writing),
 * journal_read.c (replay), faults.c (test hooks). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hq_util.h"
#include "journal_priv.h"

#define S_DEF_SEGMENT (64ull * 1024 * 1024)
#define S_DEF_PERIOD (100ull * 1000 * 1000)
#define S_DEF_RECORDS 4096

static uint64_t s_max(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static int s_lock(hq_journal_t *j, hq_err_t *err)
{
    char *p = hq_asprintf("%s/LOCK", j->path);
    if (hq_journal_trust_file_(j, "LOCK", err) < 0) {
        free(p);
        return -1;
    }
    j->lockfd = hq_journal_openat_(j, p, O_RDWR | O_CREAT, 0600);
    if (j->lockfd < 0) {
        int e = errno;
        hq_err_set(err, "cannot open %s: %s", p, strerror(e));
        free(p);
        return -1;
    }
    if (flock(j->lockfd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char buf[32] = "";
        ssize_t n = pread(j->lockfd, buf, sizeof buf - 1, 0);
        long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
        if (e == EWOULDBLOCK && pid > 0)
            hq_err_set(err, "journal %s is in use by another broker (pid %ld)", j->path, pid);
        else if (e == EWOULDBLOCK)
            hq_err_set(err, "journal %s is in use by another broker", j->path);
        else
            hq_err_set(err, "cannot lock %s: %s", p, strerror(e));
        free(p);
        return -1;
    }
    free(p);
    return 0;
}

/* Records our pid in LOCK for the "in use by" message; only once the journal was
 * accepted, so a refused start changes nothing in the directory. */
static int s_lock_note_pid(hq_journal_t *j, hq_err_t *err)
{
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(j->lockfd, 0) < 0 || pwrite(j->lockfd, pid, (size_t)n, 0) != n)
        return hq_err_set(err, "cannot write %s/LOCK: %s", j->path, strerror(errno));
    return 0;
}

hq_journal_t *hq_journal_open(const char *path, const hq_journal_opts_t *opts, hq_err_t *err)
{
    hq_journal_t *j = hq_calloc(1, sizeof *j);
    if (opts)
        j->o = *opts;
    if (!j->o.segment_size)
        j->o.segment_size = S_DEF_SEGMENT;
    if (j->o.segment_size < 4096)
        j->o.segment_size = 4096;
    if (!j->o.flush_period_ns)
        j->o.flush_period_ns = S_DEF_PERIOD;
    if (!j->o.group_bytes)
        j->o.group_bytes = HQ_JDEF_GROUP_BYTES;
    if (!j->o.group_records)
        j->o.group_records = S_DEF_RECORDS;
    if (j->o.uid)
        snprintf(j->uid, sizeof j->uid, "%s", j->o.uid);
    j->o.uid = NULL;
    j->path = hq_strdup(path);
    j->dirfd = j->lockfd = j->seg_fd = j->pipe_r = j->pipe_w = -1;
    j->kick_timer = -1;
    j->available = true;
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!j->o.read_only && mkdir(path, 0700) < 0 && errno != EEXIST) {
        hq_err_set(err, "cannot create journal directory %s: %s", path, strerror(errno));
        goto error;
    }
    j->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (j->dirfd < 0 && errno == ENOTDIR) {
        /* Most likely a HyperQueue journal (one file) or a file given by mistake. */
        hq_err_set(err,
                   "journal %s is a file, not a directory: hq keeps its journal as a directory "
                   "of segments and cannot read HyperQueue's single-file journals; give the "
                   "path of a directory (it is created if missing)",
                   path);
        goto error;
    }
    if (j->dirfd < 0) {
        hq_err_set(err, "cannot open journal directory %s: %s", path, strerror(errno));
        goto error;
    }
    if (!j->o.read_only && hq_journal_trust_dir_(path, j->dirfd, err) < 0)
        goto error;
    if (!j->o.read_only && s_lock(j, err) < 0)
        goto error;
    if (hq_journal_load_dir_(j, err) < 0)
        goto error;
    if (!j->o.read_only && s_lock_note_pid(j, err) < 0)
        goto error;
    return j;
error:
    hq_journal_close(&j);
    return NULL;
}

void hq_journal_set_uid(hq_journal_t *j, const char *uid)
{
    snprintf(j->uid, sizeof j->uid, "%s", uid ? uid : "");
}

int hq_journal_start(hq_journal_t *j, hq_err_t *err)
{
    if (j->o.read_only)
        return hq_err_set(err, "journal %s is open read-only", j->path);
    if (j->started)
        return 0;
    if (!j->replayed && hq_journal_replay(j, NULL, NULL, NULL, err) < 0)
        return -1;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
        return hq_err_set(err, "journal: pipe: %s", strerror(errno));
    j->pipe_r = fds[0];
    j->pipe_w = fds[1];
    uint64_t prev_max = 0;
    for (uint32_t k = 0; k < j->n_segs; k++)
        prev_max = s_max(prev_max, j->segs[k].prev_lsn);
    j->durable_lsn = s_max(s_max(j->last_lsn, j->snap_lsn), prev_max);
    j->next_lsn = j->durable_lsn + 1;
    j->settled_lsn = j->durable_lsn;
    int e = hq_journal_reopen_tail_(j) == 0 ? 0 : hq_journal_roll_(j);
    if (e)
        return hq_err_set(err, "cannot create a journal segment in %s: %s", j->path, strerror(e));
    if (pthread_create(&j->thread, NULL, hq_journal_writer_, j) != 0) {
        return hq_err_set(err, "journal: cannot start the writer thread");
    }
    j->started = true;
    return 0;
}

void hq_journal_stats(const hq_journal_t *j, hq_journal_stats_t *st)
{
    st->appended = j->st_appended;
    st->durable = j->st_durable;
    st->failed = j->st_failed;
    st->syncs = j->st_syncs;
    st->writes = j->st_writes;
    st->bytes = j->st_bytes;
    st->segments = j->st_segments;
    st->last_lsn = j->next_lsn ? j->next_lsn - 1 : j->last_lsn;
    st->sync_ns_max = j->st_sync_ns_max;
}

void hq_journal_close(hq_journal_t **p)
{
    hq_journal_t *j = p ? *p : NULL;
    if (!j)
        return;
    *p = NULL;
    hq_journal_detach(j);
    if (j->started && getenv("HQ_JOURNAL_STATS"))
        fprintf(
            stderr,
            "journal stats: appended %" PRIu64 " syncs %" PRIu64 " writes %" PRIu64
            " records/sync %.1f latency mean %.3f ms max %.2f ms sync mean %.3f ms max %.2f ms\n",
            (uint64_t)j->st_appended, (uint64_t)j->st_syncs, (uint64_t)j->st_writes,
            j->st_syncs ? (double)j->st_durable / (double)j->st_syncs : 0.0,
            j->st_lat_n ? (double)j->st_lat_ns_sum / (double)j->st_lat_n / 1e6 : 0.0,
            (double)j->st_lat_ns_max / 1e6,
            j->st_syncs ? (double)j->st_sync_ns_sum / (double)j->st_syncs / 1e6 : 0.0,
            (double)j->st_sync_ns_max / 1e6);
    if (j->started) {
        hq_journal_kick(j);
        pthread_mutex_lock(&j->mu);
        j->stop = true;
        pthread_cond_signal(&j->cv);
        pthread_mutex_unlock(&j->mu);
        pthread_join(j->thread, NULL);
        hq_journal_dispatch(j);
    }
    while (j->spare) {
        hq_jbatch_t *b = j->spare;
        j->spare = b->next;
        free(b->buf);
        free(b->cbs);
        free(b);
    }
    if (j->seg_fd >= 0)
        close(j->seg_fd);
    if (j->pipe_r >= 0)
        close(j->pipe_r);
    if (j->pipe_w >= 0)
        close(j->pipe_w);
    if (j->lockfd >= 0)
        close(j->lockfd); /* releases the flock */
    if (j->dirfd >= 0)
        close(j->dirfd);
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->segs);
    free(j->snaps);
    free(j->path);
    free(j);
}
