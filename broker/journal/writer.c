/* The writer thread and its group commit: it takes the batches the main loop hands
 * over, writes them into the current segment with pwritev (zeroing the preallocated
 * space ahead first) and makes them durable with one fdatasync per group, then hands
 * them back with their verdict. Failures go to errors.c, snapshot commits to
 * compact.c. */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "hq_util.h"
#include "journal_priv.h"

#define S_ZERO_AHEAD (1024 * 1024) /* zeros written ahead of the records at a time */

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

static int s_write_all(hq_journal_t *j, hq_jgroup_t *g)
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
        int e = hq_journal_fault_(HQ_JFAULT_WRITE);
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

static void s_commit(hq_journal_t *j, hq_jgroup_t *g)
{
    if (!g->head)
        return;
    uint64_t now = hq_mono_ns();
    uint64_t last = 0;
    for (hq_jbatch_t *b = g->head; b; b = b->next)
        if (b->n_records)
            last = b->last_lsn;
    if (!g->records) { /* flushes only: everything before them is settled */
        hq_journal_group_done_(j, g, 0);
        return;
    }
    if (j->unavailable || j->seg_fd < 0) {
        if (now >= j->retry_ns || j->seg_fd < 0)
            hq_journal_recover_(j, now);
        if (j->unavailable || j->seg_fd < 0) {
            hq_journal_group_done_(j, g, j->fail_errno ? j->fail_errno : EIO);
            return;
        }
    }
    if (j->seg_off > HQ_JHEADER_SIZE && j->seg_off + g->bytes > j->o.segment_size) {
        int e = hq_journal_roll_(j);
        if (e) {
            hq_journal_set_unavailable_(j, e, now);
            hq_journal_group_done_(j, g, e);
            return;
        }
    }
    uint64_t start = j->seg_off;
    int e = s_zero_ahead(j, j->seg_off + g->bytes);
    if (!e)
        e = s_write_all(j, g);
    if (e) {
        hq_journal_write_failed_(j, g, e, start, now);
        return;
    }
    uint64_t t0 = hq_mono_ns();
    e = hq_journal_fault_(HQ_JFAULT_SYNC);
    if (!e && fdatasync(j->seg_fd) < 0)
        e = errno;
    j->st_syncs++;
    uint64_t dt = hq_mono_ns() - t0;
    j->st_sync_ns_sum += dt;
    if (dt > j->st_sync_ns_max)
        j->st_sync_ns_max = dt;
    if (e) {
        hq_journal_sync_failed_(j, g, e, now);
        return;
    }
    j->durable_lsn = last;
    hq_journal_group_done_(j, g, 0);
}

static void s_take(hq_jgroup_t *g, hq_jbatch_t *b)
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
void *hq_journal_writer_(void *arg)
{
    hq_journal_t *j = arg;
    hq_jgroup_t g = {0};
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
                b->status = hq_journal_snap_durable_(j, b->snap);
                hq_journal_post_(j, b);
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
            hq_journal_recover_(j, now);
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
