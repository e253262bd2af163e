/* The journal's write side: the directory lock, the batches the main loop fills, the
 * writer thread that commits them in groups (pwritev + fdatasync) into preallocated
 * segments, error handling (no-space back-off, poisoned segments after a failed
 * fdatasync) and the snapshot commit protocol. Replay lives in journal_read.c. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "hq_util.h"
#include "journal_priv.h"

#define S_DEF_SEGMENT (64ull * 1024 * 1024)
#define S_DEF_PERIOD (100ull * 1000 * 1000)
#define S_DEF_BYTES (1024 * 1024)
#define S_DEF_RECORDS 4096
#define S_KICK_BYTES (256 * 1024) /* main hands a batch over by itself past this */
#define S_KICK_RECORDS 1024
#define S_SNAP_CHUNK (1024 * 1024)
#define S_ZERO_AHEAD (1024 * 1024) /* zeros written ahead of the records at a time */
#define S_BACKOFF_MIN (10ull * 1000 * 1000)
#define S_BACKOFF_MAX (1000ull * 1000 * 1000)

/* ---- test hooks ---- */

static _Atomic int s_fault_errno[HQ_JFAULT_COUNT];
static _Atomic int s_fault_count[HQ_JFAULT_COUNT];
static _Atomic int s_snap_stop;

void hq_journal_test_fault(enum hq_jfault_op op, int errnum, int count)
{
    if ((unsigned)op >= HQ_JFAULT_COUNT)
        return;
    s_fault_errno[op] = errnum;
    s_fault_count[op] = count;
}

void hq_journal_test_snap_stop(int after_step)
{
    s_snap_stop = after_step;
}

/* Returns the injected errno for op (consuming one), or 0. */
static int s_fault(enum hq_jfault_op op)
{
    int c = s_fault_count[op];
    if (c == 0)
        return 0;
    if (c > 0)
        s_fault_count[op] = c - 1;
    return s_fault_errno[op];
}

static uint64_t s_min(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

static uint64_t s_max(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* ---- open / lock ---- */

static int s_lock(hq_journal_t *j, hq_err_t *err)
{
    char *p = hq_asprintf("%s/LOCK", j->path);
    j->lockfd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
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
        j->o.group_bytes = S_DEF_BYTES;
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
    if (j->dirfd < 0) {
        hq_err_set(err, "cannot open journal directory %s: %s", path, strerror(errno));
        goto error;
    }
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

/* ---- writer thread: segments ---- */

/* Creates segment seq (tmp + header + preallocation + sync + rename + dir sync) and
 * makes it current. Returns 0 or an errno. */
static int s_seg_create(hq_journal_t *j, uint64_t seq, uint64_t prev_lsn)
{
    char *final = hq_journal_seg_path_(j, seq);
    char *tmp = hq_asprintf("%s.tmp", final);
    int e = 0;
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        e = errno;
        goto out;
    }
    hq_jheader_t h = {.kind = HQ_JFILE_SEGMENT,
                      .major = HQ_JFORMAT_MAJOR,
                      .minor = HQ_JFORMAT_MINOR,
                      .seq = seq,
                      .created_ns = hq_wall_ns(),
                      .prev_lsn = prev_lsn};
    memcpy(h.uid, j->uid, sizeof h.uid);
    uint8_t hb[HQ_JHEADER_SIZE];
    hq_jheader_encode(&h, hb);
    if ((e = s_fault(HQ_JFAULT_CREATE)) != 0)
        goto out;
    if (pwrite(fd, hb, sizeof hb, 0) != (ssize_t)sizeof hb) {
        e = errno ? errno : EIO;
        goto out;
    }
    /* Mode 0: the size becomes segment_size, so later fdatasyncs need no metadata and
     * zeroed space reads as the end of the log. */
    if (fallocate(fd, 0, 0, (off_t)j->o.segment_size) < 0 && errno != EOPNOTSUPP) {
        e = errno;
        goto out;
    }
    if (fsync(fd) < 0 || rename(tmp, final) < 0 || fsync(j->dirfd) < 0) {
        e = errno;
        goto out;
    }
out:
    if (e) {
        if (fd >= 0)
            close(fd);
        unlink(tmp);
    } else {
        if (j->seg_fd >= 0)
            close(j->seg_fd);
        j->seg_fd = fd;
        j->seg_seq = seq;
        j->seg_off = HQ_JHEADER_SIZE;
        j->seg_zeroed = HQ_JHEADER_SIZE;
        if (j->n_segs == j->cap_segs) {
            j->cap_segs = j->cap_segs ? 2 * j->cap_segs : 16;
            j->segs = hq_realloc(j->segs, j->cap_segs * sizeof *j->segs);
        }
        j->segs[j->n_segs++] = (hq_jseg_t){.seq = seq, .prev_lsn = prev_lsn};
        j->st_segments++;
    }
    free(tmp);
    free(final);
    return e;
}

static int s_roll(hq_journal_t *j)
{
    uint64_t seq = j->n_segs ? j->segs[j->n_segs - 1].seq + 1 : 1;
    return s_seg_create(j, seq, j->durable_lsn);
}

/* ---- writer thread: queues ---- */

static void s_post(hq_journal_t *j, hq_jbatch_t *b)
{
    b->next = NULL;
    pthread_mutex_lock(&j->mu);
    bool wake = !j->out_head;
    if (j->out_tail)
        j->out_tail->next = b;
    else
        j->out_head = b;
    j->out_tail = b;
    pthread_mutex_unlock(&j->mu);
    if (wake) {
        char c = 1;
        while (write(j->pipe_w, &c, 1) < 0 && errno == EINTR)
            ;
    }
}

static void s_post_state(hq_journal_t *j, int state, int errnum)
{
    hq_jbatch_t *b = hq_calloc(1, sizeof *b);
    b->kind = HQ_JB_STATE;
    b->state = state;
    b->status = errnum;
    s_post(j, b);
}

static void s_set_unavailable(hq_journal_t *j, int e, uint64_t now)
{
    if (!j->unavailable) {
        j->backoff_ns = S_BACKOFF_MIN;
        s_post_state(j, HQ_JOURNAL_UNAVAILABLE, e);
    } else {
        j->backoff_ns = j->backoff_ns * 2 > S_BACKOFF_MAX ? S_BACKOFF_MAX : j->backoff_ns * 2;
    }
    j->unavailable = true;
    j->fail_errno = e;
    j->retry_ns = now + j->backoff_ns;
}

/* Tries to get a writable segment back. */
static void s_recover(hq_journal_t *j, uint64_t now)
{
    if (!j->unavailable && j->seg_fd >= 0)
        return;
    int e = s_roll(j);
    if (e) {
        s_set_unavailable(j, e, now);
        return;
    }
    if (j->unavailable) {
        j->unavailable = false;
        s_post_state(j, HQ_JOURNAL_OK, 0);
    }
}

typedef struct s_group {
    hq_jbatch_t *head, *tail; /* batches waiting for the commit */
    size_t bytes;
    uint32_t records;
} s_group_t;

static void s_finish(hq_journal_t *j, s_group_t *g, int status)
{
    for (hq_jbatch_t *b = g->head, *n; b; b = n) {
        n = b->next;
        b->status =
            b->kind == HQ_JB_FLUSH && status == 0 && j->unavailable ? j->fail_errno : status;
        if (status)
            j->st_failed += b->n_records;
        else
            j->st_durable += b->n_records;
        s_post(j, b);
    }
    memset(g, 0, sizeof *g);
}

/* Preallocated (fallocate) space is "unwritten" to filesystems like ext4 and XFS: the
 * first write into it changes the extent map, so the fdatasync after it must commit
 * metadata too. Overwriting the space ahead of the records with zeros, a megabyte at a
 * time, pays that once per megabyte instead of once per group (zeros still read as
 * the end of the log). */
static int s_zero_ahead(hq_journal_t *j, uint64_t upto)
{
    static const uint8_t zeros[64 * 1024];
    if (upto <= j->seg_zeroed)
        return 0;
    uint64_t end = upto + S_ZERO_AHEAD;
    if (end > j->o.segment_size)
        end = j->o.segment_size;
    if (end < upto)
        end = upto;
    while (j->seg_zeroed < end) {
        struct iovec iov[16];
        int n = 0;
        uint64_t left = end - j->seg_zeroed;
        while (n < 16 && left > 0) {
            size_t len = left < sizeof zeros ? (size_t)left : sizeof zeros;
            iov[n++] = (struct iovec){(void *)zeros, len};
            left -= len;
        }
        ssize_t w = pwritev(j->seg_fd, iov, n, (off_t)j->seg_zeroed);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (w == 0)
            return EIO;
        j->seg_zeroed += (uint64_t)w;
    }
    return 0;
}

static int s_write_all(hq_journal_t *j, s_group_t *g)
{
    struct iovec iov[IOV_MAX];
    int n = 0;
    uint64_t off = j->seg_off;
    hq_jbatch_t *b = g->head;
    size_t skip = 0; /* bytes of b already written */
    while (b || n) {
        while (b && n < IOV_MAX) {
            if (b->len > skip)
                iov[n++] = (struct iovec){b->buf + skip, b->len - skip};
            b = b->next;
            skip = 0;
        }
        if (!n)
            break;
        int e = s_fault(HQ_JFAULT_WRITE);
        if (e)
            return e;
        ssize_t w = pwritev(j->seg_fd, iov, n, (off_t)off);
        j->st_writes++;
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return errno;
        }
        if (w == 0)
            return EIO;
        off += (uint64_t)w;
        j->st_bytes += (uint64_t)w;
        /* Drop what was written; a short write continues where it stopped. */
        int k = 0;
        size_t left = (size_t)w;
        while (k < n && left >= iov[k].iov_len)
            left -= iov[k++].iov_len;
        if (k < n) {
            iov[k].iov_base = (uint8_t *)iov[k].iov_base + left;
            iov[k].iov_len -= left;
        }
        memmove(iov, iov + k, (size_t)(n - k) * sizeof *iov);
        n -= k;
    }
    j->seg_off = off;
    return 0;
}

static bool s_space_error(int e)
{
    return e == ENOSPC || e == EDQUOT || e == EFBIG;
}

static void s_commit(hq_journal_t *j, s_group_t *g)
{
    if (!g->head)
        return;
    uint64_t now = hq_mono_ns();
    uint64_t last = 0;
    for (hq_jbatch_t *b = g->head; b; b = b->next)
        if (b->n_records)
            last = b->last_lsn;
    if (!g->records) { /* flushes only: everything before them is settled */
        s_finish(j, g, 0);
        return;
    }
    if (j->unavailable || j->seg_fd < 0) {
        if (now >= j->retry_ns || j->seg_fd < 0)
            s_recover(j, now);
        if (j->unavailable || j->seg_fd < 0) {
            s_finish(j, g, j->fail_errno ? j->fail_errno : EIO);
            return;
        }
    }
    if (j->seg_off > HQ_JHEADER_SIZE && j->seg_off + g->bytes > j->o.segment_size) {
        int e = s_roll(j);
        if (e) {
            s_set_unavailable(j, e, now);
            s_finish(j, g, e);
            return;
        }
    }
    uint64_t start = j->seg_off;
    int e = s_zero_ahead(j, j->seg_off + g->bytes);
    if (!e)
        e = s_write_all(j, g);
    if (e) {
        /* Cut what part of the group reached the file (shrinking needs no space), so a
         * crash before the next segment exists cannot resurrect these records. Never
         * append here again: the next group goes to a fresh segment whose header says
         * where the durable records end. */
        if (ftruncate(j->seg_fd, (off_t)start) == 0)
            fsync(j->seg_fd);
        close(j->seg_fd);
        j->seg_fd = -1;
        if (s_space_error(e))
            s_set_unavailable(j, e, now);
        s_finish(j, g, e);
        s_recover(j, now);
        if (!s_space_error(e) && j->seg_fd >= 0)
            s_post_state(j, HQ_JOURNAL_POISONED, e);
        return;
    }
    uint64_t t0 = hq_mono_ns();
    e = s_fault(HQ_JFAULT_SYNC);
    if (!e && fdatasync(j->seg_fd) < 0)
        e = errno;
    j->st_syncs++;
    uint64_t dt = hq_mono_ns() - t0;
    j->st_sync_ns_sum += dt;
    if (dt > j->st_sync_ns_max)
        j->st_sync_ns_max = dt;
    if (e) {
        /* The page cache state is unknown after a failed fdatasync: never sync this fd
         * again. Roll first, so the new header marks these records as never acked. */
        close(j->seg_fd);
        j->seg_fd = -1;
        int re = s_roll(j);
        if (re)
            s_set_unavailable(j, re, now);
        else if (!s_space_error(e))
            s_post_state(j, HQ_JOURNAL_POISONED, e);
        if (!re && s_space_error(e))
            s_set_unavailable(j, e, now);
        s_finish(j, g, e);
        return;
    }
    j->durable_lsn = last;
    s_finish(j, g, 0);
}

/* ---- writer thread: snapshot commit ---- */

static void s_delete_old(hq_journal_t *j, uint64_t keep_prev)
{
    /* Snapshots other than the new one and keep_prev. */
    for (uint32_t k = 0; k < j->n_snaps; k++) {
        if (j->snaps[k] == keep_prev)
            continue;
        char *p = hq_journal_snap_path_(j, j->snaps[k]);
        unlink(p);
        free(p);
    }
    /* Segments whose every record is <= keep_prev (keep_prev's replay starts after). */
    uint32_t drop = 0;
    if (keep_prev)
        while (drop + 1 < j->n_segs && j->segs[drop + 1].prev_lsn <= keep_prev)
            drop++;
    for (uint32_t k = 0; k < drop; k++) {
        char *p = hq_journal_seg_path_(j, j->segs[k].seq);
        unlink(p);
        free(p);
    }
    memmove(j->segs, j->segs + drop, (j->n_segs - drop) * sizeof *j->segs);
    j->n_segs -= drop;
    fsync(j->dirfd);
}

static int s_snap_durable(hq_journal_t *j, hq_jsnap_t *s)
{
    int stop = s_snap_stop; /* step 1 (tmp written) is done by the main thread */
    if (stop == 1)
        return 0;
    if (fdatasync(s->fd) < 0)
        return errno;
    if (stop == 2)
        return 0;
    if (rename(s->tmp, s->final) < 0)
        return errno;
    if (stop == 3)
        return 0;
    if (fsync(j->dirfd) < 0)
        return errno;
    if (stop == 4)
        return 0;
    /* Later records go to a fresh segment: the segments up to this snapshot then hold
     * nothing newer and can go once the next snapshot makes this one the fallback. A
     * failed roll only keeps the current segment in use. */
    if (j->seg_fd >= 0 && j->seg_off > HQ_JHEADER_SIZE)
        (void)s_roll(j);
    uint64_t prev = j->snap_lsn;
    s_delete_old(j, prev);
    j->n_snaps = 0;
    if (prev) {
        if (j->cap_snaps < 2) {
            j->cap_snaps = 2;
            j->snaps = hq_realloc(j->snaps, 2 * sizeof *j->snaps);
        }
        j->snaps[j->n_snaps++] = prev;
    } else if (!j->cap_snaps) {
        j->cap_snaps = 2;
        j->snaps = hq_realloc(j->snaps, 2 * sizeof *j->snaps);
    }
    j->snaps[j->n_snaps++] = s->lsn;
    j->snap_lsn = s->lsn;
    return 0;
}

/* ---- writer thread: main loop ---- */

static void s_take(s_group_t *g, hq_jbatch_t *b)
{
    b->next = NULL;
    if (g->tail)
        g->tail->next = b;
    else
        g->head = b;
    g->tail = b;
    g->bytes += b->len;
    g->records += b->n_records;
}

/* Classic group commit: the writer commits as soon as it has records and nothing is
 * in progress; records appended while a pwritev/fdatasync runs queue up and form the
 * next group (cut at group_bytes / group_records per write). Under load groups grow by
 * themselves, when idle a lone record costs one write + one sync: no record waits for
 * a quiet window. flush_period (the promised upper bound on time unsynced) is met by
 * construction: a record waits for at most the commit in progress plus its own; only a
 * stalled disk can delay it, and no timer would help then. */
static void *s_writer(void *arg)
{
    hq_journal_t *j = arg;
    s_group_t g = {0};
    for (;;) {
        pthread_mutex_lock(&j->mu);
        while (!j->in_head && !j->stop) {
            if (!j->unavailable) {
                pthread_cond_wait(&j->cv, &j->mu);
                continue;
            }
            uint64_t deadline = j->retry_ns;
            if (hq_mono_ns() >= deadline)
                break;
            struct timespec ts = {(time_t)(deadline / 1000000000ull),
                                  (long)(deadline % 1000000000ull)};
            pthread_cond_timedwait(&j->cv, &j->mu, &ts);
            if (hq_mono_ns() >= deadline)
                break;
        }
        hq_jbatch_t *in = j->in_head;
        j->in_head = j->in_tail = NULL;
        bool stop = j->stop;
        pthread_mutex_unlock(&j->mu);

        while (in) {
            hq_jbatch_t *b = in;
            in = in->next;
            if (b->kind == HQ_JB_SNAP) {
                s_commit(j, &g); /* records before L first */
                b->status = s_snap_durable(j, b->snap);
                s_post(j, b);
                continue;
            }
            if (g.records && (g.bytes + b->len > j->o.group_bytes ||
                              g.records + b->n_records > j->o.group_records))
                s_commit(j, &g);
            s_take(&g, b);
        }
        /* Idle now (everything queued was taken): commit at once. */
        s_commit(j, &g);
        uint64_t now = hq_mono_ns();
        if (j->unavailable && now >= j->retry_ns)
            s_recover(j, now);
        if (stop) {
            pthread_mutex_lock(&j->mu);
            bool empty = !j->in_head;
            pthread_mutex_unlock(&j->mu);
            if (empty)
                break;
        }
    }
    return NULL;
}

/* ---- main thread ---- */

/* Continues the final segment when replay found it clean, the lsns continue without
 * a gap and it has room: a restart then costs no new preallocated file. */
static int s_reopen_tail(hq_journal_t *j)
{
    /* A segment of an older minor gets no records of this one: an older hq reading it
     * would take them for a damaged tail. */
    if (!j->tail_ok || !j->n_segs || j->segs[j->n_segs - 1].seq != j->tail_seq ||
        j->segs[j->n_segs - 1].minor != HQ_JFORMAT_MINOR || j->tail_last + 1 != j->next_lsn ||
        j->tail_end + s_min(4096, j->o.segment_size / 4) > j->o.segment_size)
        return -1;
    char *p = hq_journal_seg_path_(j, j->tail_seq);
    int fd = open(p, O_RDWR | O_CLOEXEC);
    free(p);
    if (fd < 0)
        return -1;
    /* Restores the preallocation a torn-tail repair cut off; the size change is synced
     * once here so later fdatasyncs need no metadata. */
    if ((fallocate(fd, 0, 0, (off_t)j->o.segment_size) < 0 && errno != EOPNOTSUPP) ||
        fsync(fd) < 0) {
        close(fd);
        return -1;
    }
    j->seg_fd = fd;
    j->seg_seq = j->tail_seq;
    j->seg_off = j->tail_end;
    j->seg_zeroed = j->tail_end;
    return 0;
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
    int e = s_reopen_tail(j) == 0 ? 0 : s_roll(j);
    if (e)
        return hq_err_set(err, "cannot create a journal segment in %s: %s", j->path, strerror(e));
    if (pthread_create(&j->thread, NULL, s_writer, j) != 0) {
        return hq_err_set(err, "journal: cannot start the writer thread");
    }
    j->started = true;
    return 0;
}

static hq_jbatch_t *s_batch(hq_journal_t *j)
{
    hq_jbatch_t *b = j->spare;
    if (b) {
        j->spare = b->next;
        j->n_spare--;
    } else {
        b = hq_calloc(1, sizeof *b);
    }
    b->kind = HQ_JB_RECORDS;
    b->len = 0;
    b->n_records = 0;
    b->n_cbs = 0;
    b->status = 0;
    b->snap = NULL;
    b->next = NULL;
    b->born_ns = hq_mono_ns();
    return b;
}

static void s_recycle(hq_journal_t *j, hq_jbatch_t *b)
{
    if (b->kind != HQ_JB_RECORDS || j->n_spare >= 8 || b->cap > 4 * S_DEF_BYTES) {
        free(b->buf);
        free(b->cbs);
        free(b);
        return;
    }
    b->next = j->spare;
    j->spare = b;
    j->n_spare++;
}

static void s_send(hq_journal_t *j, hq_jbatch_t *b)
{
    b->next = NULL;
    pthread_mutex_lock(&j->mu);
    if (j->in_tail)
        j->in_tail->next = b;
    else
        j->in_head = b;
    j->in_tail = b;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

static void s_run_close(hq_journal_t *j);

void hq_journal_kick(hq_journal_t *j)
{
    s_run_close(j);
    if (!j->cur)
        return;
    hq_jbatch_t *b = j->cur;
    j->cur = NULL;
    s_send(j, b);
}

static int s_on_kick(zloop_t *loop, int timer_id, void *arg)
{
    hq_journal_t *j = arg;
    j->kick_timer = -1;
    hq_journal_kick(j);
    return 0;
}

static void s_cur(hq_journal_t *j)
{
    if (!j->cur) {
        j->cur = s_batch(j);
        if (j->loop && j->kick_timer < 0)
            j->kick_timer = zloop_timer(j->loop, 0, 1, s_on_kick, j);
    }
}

static void s_add_cb(hq_jbatch_t *b, hq_journal_done_fn *cb, void *arg, uint64_t lsn)
{
    if (!cb)
        return;
    /* the same callback for the same record (a run of finishes) is called once */
    if (b->n_cbs && b->cbs[b->n_cbs - 1].fn == cb && b->cbs[b->n_cbs - 1].arg == arg &&
        b->cbs[b->n_cbs - 1].lsn == lsn)
        return;
    if (b->n_cbs == b->cap_cbs) {
        b->cap_cbs = b->cap_cbs ? 2 * b->cap_cbs : 16;
        b->cbs = hq_realloc(b->cbs, b->cap_cbs * sizeof *b->cbs);
    }
    b->cbs[b->n_cbs++] = (hq_jcb_t){cb, arg, lsn};
}

/* Frames the open run of finishes into the current batch: one task_finished or one
 * tasks_finished record, at the lsn its members were given. */
static void s_run_close(hq_journal_t *j)
{
    if (!j->run_n)
        return;
    hq_jbatch_t *b = j->cur; /* the run's callbacks are in it: it was not handed over */
    hq_jrec_t r = {.lsn = j->run_lsn, .wall_ns = j->run_wall};
    if (j->run_n == 1) {
        r.type = HQ_JR_TASK_FINISHED;
        r.u.task.job = j->run_job;
        r.u.task.task = j->run[0].task;
        r.u.task.instance = j->run[0].instance;
    } else {
        r.type = HQ_JR_TASKS_FINISHED;
        r.u.batch.job = j->run_job;
        r.u.batch.n = j->run_n;
        r.u.batch.insts = j->run;
    }
    /* Cannot fail: 1 to 256 ids, no strings (hq_jrec_frame's limits are far away). */
    j->run_n = 0;
    if (hq_jrec_frame(&r, &b->buf, &b->len, &b->cap, NULL) < 0)
        return;
    if (!b->n_records)
        b->first_lsn = r.lsn;
    b->last_lsn = r.lsn;
    b->n_records++;
}

uint64_t hq_journal_append(hq_journal_t *j, const hq_jrec_t *rec, hq_journal_done_fn *cb, void *arg,
                           hq_err_t *err)
{
    if (!j->started) {
        hq_err_set(err, "journal %s is not started", j->path);
        return 0;
    }
    if (j->o.coalesce_finished && rec->type == HQ_JR_TASK_FINISHED) {
        if (j->run_n &&
            (j->run_job != rec->u.task.job || j->run_n == sizeof j->run / sizeof *j->run))
            s_run_close(j);
        s_cur(j);
        if (!j->run_n) {
            j->run_job = rec->u.task.job;
            j->run_lsn = j->next_lsn++;
            j->run_wall = rec->wall_ns ? rec->wall_ns : hq_wall_ns();
        }
        j->run[j->run_n++] =
            (hq_jinst_t){.task = rec->u.task.task, .instance = rec->u.task.instance};
        j->st_appended++;
        s_add_cb(j->cur, cb, arg, j->run_lsn);
        if (j->tap_fn) {
            hq_jrec_t r = *rec;
            r.lsn = j->run_lsn;
            if (!r.wall_ns)
                r.wall_ns = j->run_wall;
            j->tap_fn(&r, j->tap_arg);
        }
        if (j->run_n == sizeof j->run / sizeof *j->run) {
            s_run_close(j);
            hq_jbatch_t *b = j->cur;
            if (b->len >= S_KICK_BYTES || b->n_records >= S_KICK_RECORDS)
                hq_journal_kick(j);
        }
        return j->run_lsn;
    }
    s_run_close(j);
    s_cur(j);
    hq_jbatch_t *b = j->cur;
    hq_jrec_t r = *rec;
    r.lsn = j->next_lsn;
    if (!r.wall_ns)
        r.wall_ns = hq_wall_ns();
    if (hq_jrec_frame(&r, &b->buf, &b->len, &b->cap, err) < 0)
        return 0;
    j->next_lsn++;
    if (!b->n_records)
        b->first_lsn = r.lsn;
    b->last_lsn = r.lsn;
    b->n_records++;
    j->st_appended++;
    s_add_cb(b, cb, arg, r.lsn);
    if (j->tap_fn)
        j->tap_fn(&r, j->tap_arg);
    if (b->len >= S_KICK_BYTES || b->n_records >= S_KICK_RECORDS)
        hq_journal_kick(j);
    return r.lsn;
}

void hq_journal_on_append(hq_journal_t *j, hq_journal_tap_fn *fn, void *arg)
{
    j->tap_fn = fn;
    j->tap_arg = arg;
}

int hq_journal_fd(const hq_journal_t *j)
{
    return j->pipe_r;
}

static void s_snap_free(hq_jsnap_t *s);

void hq_journal_dispatch(hq_journal_t *j)
{
    if (j->pipe_r < 0)
        return;
    char drain[64];
    while (read(j->pipe_r, drain, sizeof drain) > 0)
        ;
    pthread_mutex_lock(&j->mu);
    hq_jbatch_t *b = j->out_head;
    j->out_head = j->out_tail = NULL;
    pthread_mutex_unlock(&j->mu);
    while (b) {
        hq_jbatch_t *n = b->next;
        switch (b->kind) {
        case HQ_JB_RECORDS:
        case HQ_JB_FLUSH:
            if (b->n_records) {
                uint64_t lat = hq_mono_ns() - b->born_ns;
                j->st_lat_ns_sum += lat * b->n_records;
                j->st_lat_n += b->n_records;
                if (lat > j->st_lat_ns_max)
                    j->st_lat_ns_max = lat;
            }
            for (uint32_t k = 0; k < b->n_cbs; k++)
                b->cbs[k].fn(b->cbs[k].arg, b->cbs[k].lsn, b->status);
            if (b->n_records && b->last_lsn > j->settled_lsn)
                j->settled_lsn = b->last_lsn;
            s_recycle(j, b);
            break;
        case HQ_JB_SNAP: {
            hq_jsnap_t *s = b->snap;
            if (s->cb)
                s->cb(s->arg, s->lsn, b->status);
            s_snap_free(s);
            free(b);
            break;
        }
        case HQ_JB_STATE:
            j->available = b->state != HQ_JOURNAL_UNAVAILABLE;
            if (j->state_fn)
                j->state_fn(j->state_arg, (enum hq_journal_state)b->state, b->status);
            free(b);
            break;
        }
        b = n;
    }
}

static int s_on_done(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    hq_journal_dispatch(arg);
    return 0;
}

int hq_journal_attach(hq_journal_t *j, zloop_t *loop)
{
    if (!j->started || j->loop)
        return -1;
    zmq_pollitem_t it = {NULL, j->pipe_r, ZMQ_POLLIN, 0};
    if (zloop_poller(loop, &it, s_on_done, j) < 0)
        return -1;
    j->loop = loop;
    if (j->cur)
        j->kick_timer = zloop_timer(loop, 0, 1, s_on_kick, j);
    return 0;
}

void hq_journal_detach(hq_journal_t *j)
{
    if (!j->loop)
        return;
    zmq_pollitem_t it = {NULL, j->pipe_r, ZMQ_POLLIN, 0};
    zloop_poller_end(j->loop, &it);
    if (j->kick_timer >= 0)
        zloop_timer_end(j->loop, j->kick_timer);
    j->kick_timer = -1;
    j->loop = NULL;
}

void hq_journal_flush_async(hq_journal_t *j, hq_journal_done_fn *cb, void *arg)
{
    if (!j->started) {
        if (cb)
            cb(arg, 0, EBADF);
        return;
    }
    hq_journal_kick(j);
    hq_jbatch_t *b = s_batch(j);
    b->kind = HQ_JB_FLUSH;
    if (cb) {
        b->cbs = hq_realloc(b->cbs, sizeof *b->cbs * (b->cap_cbs ? b->cap_cbs : 1));
        if (!b->cap_cbs)
            b->cap_cbs = 1;
        b->cbs[b->n_cbs++] = (hq_jcb_t){cb, arg, j->next_lsn - 1};
    }
    s_send(j, b);
}

typedef struct s_wait {
    bool done;
    int status;
} s_wait_t;

static void s_wait_cb(void *arg, uint64_t lsn, int errnum)
{
    s_wait_t *w = arg;
    w->done = true;
    w->status = errnum;
}

/* Runs completions until w is done. */
static void s_wait(hq_journal_t *j, s_wait_t *w)
{
    while (!w->done) {
        struct pollfd p = {j->pipe_r, POLLIN, 0};
        if (poll(&p, 1, 1000) < 0 && errno != EINTR)
            break;
        hq_journal_dispatch(j);
    }
}

int hq_journal_flush(hq_journal_t *j, hq_err_t *err)
{
    if (!j->started)
        return hq_err_set(err, "journal %s is not started", j->path);
    s_wait_t w = {0};
    hq_journal_flush_async(j, s_wait_cb, &w);
    s_wait(j, &w);
    if (w.status)
        return hq_err_set(err, "journal %s: %s", j->path, strerror(w.status));
    return 0;
}

void hq_journal_on_state(hq_journal_t *j, hq_journal_state_fn *fn, void *arg)
{
    j->state_fn = fn;
    j->state_arg = arg;
}

bool hq_journal_available(const hq_journal_t *j)
{
    return j->available;
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

/* ---- snapshots (main thread side) ---- */

static void s_snap_free(hq_jsnap_t *s)
{
    if (s->fd >= 0)
        close(s->fd);
    free(s->tmp);
    free(s->final);
    free(s->buf);
    free(s);
}

static int s_snap_write(hq_jsnap_t *s, hq_err_t *err)
{
    size_t done = 0;
    while (done < s->len) {
        ssize_t w = write(s->fd, s->buf + done, s->len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return hq_err_set(err, "cannot write %s: %s", s->tmp,
                              w < 0 ? strerror(errno) : "short write");
        done += (size_t)w;
    }
    s->len = 0;
    return 0;
}

hq_jsnap_t *hq_journal_snapshot_begin(hq_journal_t *j, hq_err_t *err)
{
    if (!j->started) {
        hq_err_set(err, "journal %s is not started", j->path);
        return NULL;
    }
    hq_jsnap_t *s = hq_calloc(1, sizeof *s);
    s->j = j;
    /* Not the last lsn appended: a client mutation is applied to the state only when
     * its record is durable, so a record appended but not yet settled may be missing
     * from the state written now. Replay starts after the settled lsn and applies those
     * records again (records applied at append are idempotent over the snapshot). */
    s->lsn = j->settled_lsn;
    s->final = hq_journal_snap_path_(j, s->lsn);
    s->tmp = hq_asprintf("%s.tmp", s->final);
    s->fd = open(s->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (s->fd < 0) {
        hq_err_set(err, "cannot create %s: %s", s->tmp, strerror(errno));
        s_snap_free(s);
        return NULL;
    }
    hq_jheader_t h = {.kind = HQ_JFILE_SNAPSHOT,
                      .major = HQ_JFORMAT_MAJOR,
                      .minor = HQ_JFORMAT_MINOR,
                      .seq = s->lsn,
                      .created_ns = hq_wall_ns()};
    memcpy(h.uid, j->uid, sizeof h.uid);
    s->cap = S_SNAP_CHUNK + 4096;
    s->buf = hq_malloc(s->cap);
    hq_jheader_encode(&h, s->buf);
    s->len = HQ_JHEADER_SIZE;
    return s;
}

uint64_t hq_jsnap_lsn(const hq_jsnap_t *s)
{
    return s->lsn;
}

int hq_jsnap_add(hq_jsnap_t *s, const hq_jrec_t *rec, hq_err_t *err)
{
    if (rec->type == HQ_JR_SNAP_END)
        return hq_err_set(err, "journal: snapshot-end is written by the journal itself");
    hq_jrec_t r = *rec;
    r.lsn = s->count + 1;
    if (!r.wall_ns)
        r.wall_ns = hq_wall_ns();
    if (hq_jrec_frame(&r, &s->buf, &s->len, &s->cap, err) < 0)
        return -1;
    s->count++;
    if (s->len >= S_SNAP_CHUNK)
        return s_snap_write(s, err);
    return 0;
}

int hq_jsnap_commit(hq_jsnap_t **p, hq_journal_done_fn *cb, void *arg, hq_err_t *err)
{
    hq_jsnap_t *s = *p;
    *p = NULL;
    hq_jrec_t end = {.type = HQ_JR_SNAP_END, .lsn = s->count + 1, .wall_ns = hq_wall_ns()};
    end.u.snap_end.count = s->count;
    if (hq_jrec_frame(&end, &s->buf, &s->len, &s->cap, err) < 0 || s_snap_write(s, err) < 0) {
        hq_jsnap_abort(&s);
        return -1;
    }
    s->cb = cb;
    s->arg = arg;
    hq_journal_t *j = s->j;
    hq_journal_kick(j);
    hq_jbatch_t *b = hq_calloc(1, sizeof *b);
    b->kind = HQ_JB_SNAP;
    b->snap = s;
    s_send(j, b);
    return 0;
}

void hq_jsnap_abort(hq_jsnap_t **p)
{
    hq_jsnap_t *s = p ? *p : NULL;
    if (!s)
        return;
    *p = NULL;
    unlink(s->tmp);
    s_snap_free(s);
}
