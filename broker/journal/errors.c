/* The writer's error handling. When no segment can be created, or a write or
 * fdatasync fails for lack of space, the journal becomes UNAVAILABLE: pending records
 * fail, and a fresh segment is tried again with an exponential back-off until one can
 * be created (then OK again). Any other write or fdatasync failure POISONS the
 * segment: the page cache state is unknown after a failed fdatasync, so that fd is
 * never synced again and the next group goes to a fresh segment whose header marks
 * where the durable records end. */
#include <errno.h>
#include <unistd.h>

#include "journal_priv.h"

#define S_BACKOFF_MIN (10ull * 1000 * 1000)
#define S_BACKOFF_MAX (1000ull * 1000 * 1000)

static bool s_space_error(int e)
{
    return e == ENOSPC || e == EDQUOT || e == EFBIG;
}

void hq_journal_set_unavailable_(hq_journal_t *j, int e, uint64_t now)
{
    if (!j->unavailable) {
        j->backoff_ns = S_BACKOFF_MIN;
        hq_journal_post_state_(j, HQ_JOURNAL_UNAVAILABLE, e);
    } else {
        j->backoff_ns = j->backoff_ns * 2 > S_BACKOFF_MAX ? S_BACKOFF_MAX : j->backoff_ns * 2;
    }
    j->unavailable = true;
    j->fail_errno = e;
    j->retry_ns = now + j->backoff_ns;
}

/* Tries to get a writable segment back. */
void hq_journal_recover_(hq_journal_t *j, uint64_t now)
{
    if (!j->unavailable && j->seg_fd >= 0)
        return;
    int e = hq_journal_roll_(j);
    if (e) {
        hq_journal_set_unavailable_(j, e, now);
        return;
    }
    if (j->unavailable) {
        j->unavailable = false;
        hq_journal_post_state_(j, HQ_JOURNAL_OK, 0);
    }
}

void hq_journal_write_failed_(hq_journal_t *j, hq_jgroup_t *g, int e, uint64_t start, uint64_t now)
{
    /* Cut what part of the group reached the file (shrinking needs no space), so a
     * crash before the next segment exists cannot resurrect these records. Never
     * append here again: the next group goes to a fresh segment whose header says
     * where the durable records end. */
    if (ftruncate(j->seg_fd, (off_t)start) == 0)
        fsync(j->seg_fd);
    close(j->seg_fd);
    j->seg_fd = -1;
    if (s_space_error(e))
        hq_journal_set_unavailable_(j, e, now);
    hq_journal_group_done_(j, g, e);
    hq_journal_recover_(j, now);
    if (!s_space_error(e) && j->seg_fd >= 0)
        hq_journal_post_state_(j, HQ_JOURNAL_POISONED, e);
}

void hq_journal_sync_failed_(hq_journal_t *j, hq_jgroup_t *g, int e, uint64_t now)
{
    /* The page cache state is unknown after a failed fdatasync: never sync this fd
     * again. Roll first, so the new header marks these records as never acked. */
    close(j->seg_fd);
    j->seg_fd = -1;
    int re = hq_journal_roll_(j);
    if (re)
        hq_journal_set_unavailable_(j, re, now);
    else if (!s_space_error(e))
        hq_journal_post_state_(j, HQ_JOURNAL_POISONED, e);
    if (!re && s_space_error(e))
        hq_journal_set_unavailable_(j, e, now);
    hq_journal_group_done_(j, g, e);
}
