/* Segment files: creating the next segment (header, preallocation, sync, rename,
 * directory sync; on the writer thread, and for the first one at start) and, at
 * start, continuing the final segment replay found clean instead of preallocating a
 * new file. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hq_util.h"
#include "journal_priv.h"

static uint64_t s_min(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Creates segment seq (tmp + header + preallocation + sync + rename + dir sync) and
 * makes it current. Returns 0 or an errno. */
static int s_seg_create(hq_journal_t *j, uint64_t seq, uint64_t prev_lsn)
{
    char *final = hq_journal_seg_path_(j, seq);
    char *tmp = hq_asprintf("%s.tmp", final);
    int e = 0;
    int fd = hq_journal_openat_(j, tmp, O_RDWR | O_CREAT | O_TRUNC, 0600);
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
    if ((e = hq_journal_fault_(HQ_JFAULT_CREATE)) != 0)
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
    if (fsync(fd) < 0 || hq_journal_renameat_(j, tmp, final) < 0 || fsync(j->dirfd) < 0) {
        e = errno;
        goto out;
    }
out:
    if (e) {
        if (fd >= 0)
            close(fd);
        hq_journal_unlinkat_(j, tmp);
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

int hq_journal_roll_(hq_journal_t *j)
{
    uint64_t seq = j->n_segs ? j->segs[j->n_segs - 1].seq + 1 : 1;
    return s_seg_create(j, seq, j->durable_lsn);
}

/* Continues the final segment when replay found it clean, the lsns continue without
 * a gap and it has room: a restart then costs no new preallocated file. */
int hq_journal_reopen_tail_(hq_journal_t *j)
{
    /* A segment of an older minor gets no records of this one: an older hq reading it
     * would take them for a damaged tail. */
    if (!j->tail_ok || !j->n_segs || j->segs[j->n_segs - 1].seq != j->tail_seq ||
        j->segs[j->n_segs - 1].minor != HQ_JFORMAT_MINOR || j->tail_last + 1 != j->next_lsn ||
        j->tail_end + s_min(4096, j->o.segment_size / 4) > j->o.segment_size)
        return -1;
    char *p = hq_journal_seg_path_(j, j->tail_seq);
    int fd = hq_journal_openat_(j, p, O_RDWR, 0);
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
