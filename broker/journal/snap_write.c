/* Snapshots, main-thread side: the core writes its live state as records into
 * snap-L.hqs.tmp, taken at the settled lsn L; the commit frames the snapshot-end record,
 * writes the last chunk and hands the file to the writer thread for the durable steps
 * (compact.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hq_util.h"
#include "journal_priv.h"

#define S_SNAP_CHUNK (1024 * 1024)

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
    s->fd = hq_journal_openat_(j, s->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (s->fd < 0) {
        hq_err_set(err, "cannot create %s: %s", s->tmp, strerror(errno));
        hq_jsnap_free_(s);
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
    hq_journal_send_(j, b);
    return 0;
}

void hq_jsnap_abort(hq_jsnap_t **p)
{
    hq_jsnap_t *s = p ? *p : NULL;
    if (!s)
        return;
    *p = NULL;
    hq_journal_unlinkat_(s->j, s->tmp);
    hq_jsnap_free_(s);
}
