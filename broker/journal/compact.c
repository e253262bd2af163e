/* Compaction, on the writer thread: the durable steps of a snapshot commit (fdatasync
 * the file, rename it to snap-L.hqs, fsync the directory), then a fresh segment for
 * later records and the deletion of what no longer matters: snapshots but the new one
 * and the previous (kept as a fallback), and segments only older snapshots need. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hq_util.h"
#include "journal_priv.h"

void hq_jsnap_free_(hq_jsnap_t *s)
{
    if (s->fd >= 0)
        close(s->fd);
    free(s->tmp);
    free(s->final);
    free(s->buf);
    free(s);
}

static void s_delete_old(hq_journal_t *j, uint64_t keep_prev)
{
    /* Snapshots other than the new one and keep_prev. */
    for (uint32_t k = 0; k < j->n_snaps; k++) {
        if (j->snaps[k] == keep_prev)
            continue;
        char *p = hq_journal_snap_path_(j, j->snaps[k]);
        hq_journal_unlinkat_(j, p);
        free(p);
    }
    /* Segments whose every record is <= keep_prev (keep_prev's replay starts after). */
    uint32_t drop = 0;
    if (keep_prev)
        while (drop + 1 < j->n_segs && j->segs[drop + 1].prev_lsn <= keep_prev)
            drop++;
    for (uint32_t k = 0; k < drop; k++) {
        char *p = hq_journal_seg_path_(j, j->segs[k].seq);
        hq_journal_unlinkat_(j, p);
        free(p);
    }
    memmove(j->segs, j->segs + drop, (j->n_segs - drop) * sizeof *j->segs);
    j->n_segs -= drop;
    fsync(j->dirfd);
}

int hq_journal_snap_durable_(hq_journal_t *j, hq_jsnap_t *s)
{
    int stop = hq_journal_snap_stop_(); /* step 1 (tmp written) is done by the main thread */
    if (stop == 1)
        return 0;
    if (fdatasync(s->fd) < 0)
        return errno;
    if (stop == 2)
        return 0;
    if (hq_journal_renameat_(j, s->tmp, s->final) < 0)
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
        (void)hq_journal_roll_(j);
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
