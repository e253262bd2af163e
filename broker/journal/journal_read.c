/* Journal replay: list the directory, check every header first (so a version refusal
 * changes nothing), load the newest snapshot that verifies, then stream the segments
 * in lsn order through the same scanner the fuzz target runs. A torn tail of the final
 * segment is truncated; anything else invalid is corruption. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hq_util.h"
#include "journal_priv.h"

char *hq_journal_seg_path_(const hq_journal_t *j, uint64_t seq)
{
    return hq_asprintf("%s/seg-%016" PRIu64 ".hqj", j->path, seq);
}

char *hq_journal_snap_path_(const hq_journal_t *j, uint64_t lsn)
{
    return hq_asprintf("%s/snap-%016" PRIu64 ".hqs", j->path, lsn);
}

/* Parses "<prefix><digits><suffix>" exactly. */
static bool s_parse_name(const char *name, const char *prefix, const char *suffix, uint64_t *out)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), n = strlen(name);
    if (n <= pl + sl || strncmp(name, prefix, pl) != 0 || strcmp(name + n - sl, suffix) != 0)
        return false;
    uint64_t v = 0;
    for (size_t k = pl; k < n - sl; k++) {
        if (name[k] < '0' || name[k] > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(name[k] - '0');
    }
    *out = v;
    return true;
}

static int s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int s_cmp_seg(const void *a, const void *b)
{
    return s_cmp_u64(&((const hq_jseg_t *)a)->seq, &((const hq_jseg_t *)b)->seq);
}

/* Reads and checks the header of a file; returns 0, -1 damaged, -2 version. */
static int s_read_header(const hq_journal_t *j, const char *path, hq_jheader_t *h, hq_err_t *err)
{
    int fd = hq_journal_openat_(j, path, O_RDONLY, 0);
    if (fd < 0)
        return hq_err_set(err, "cannot open %s: %s", path, strerror(errno));
    uint8_t buf[HQ_JHEADER_SIZE];
    ssize_t n = pread(fd, buf, sizeof buf, 0);
    int e = errno;
    close(fd);
    if (n < 0)
        return hq_err_set(err, "cannot read %s: %s", path, strerror(e));
    return hq_jheader_decode(buf, (size_t)n, h, err);
}

/* The directory's entries, through its fd (never its path again). */
static DIR *s_opendir(const hq_journal_t *j)
{
    int fd = openat(j->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d && fd >= 0)
        close(fd);
    return d;
}

int hq_journal_load_dir_(hq_journal_t *j, hq_err_t *err)
{
    DIR *d = s_opendir(j);
    if (!d)
        return hq_err_set(err, "cannot read journal directory %s: %s", j->path, strerror(errno));
    j->n_segs = j->n_snaps = 0;
    struct dirent *de;
    int rc = 0;
    bool has_tmp = false;
    while ((de = readdir(d))) {
        uint64_t v;
        size_t n = strlen(de->d_name);
        if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0) {
            has_tmp = true;
            continue;
        }
        bool seg = s_parse_name(de->d_name, "seg-", ".hqj", &v);
        bool snap = !seg && s_parse_name(de->d_name, "snap-", ".hqs", &v);
        if ((seg || snap) && rc == 0)
            rc = hq_journal_trust_file_(j, de->d_name, err);
        if (seg) {
            if (j->n_segs == j->cap_segs) {
                j->cap_segs = j->cap_segs ? 2 * j->cap_segs : 16;
                j->segs = hq_realloc(j->segs, j->cap_segs * sizeof *j->segs);
            }
            j->segs[j->n_segs++] = (hq_jseg_t){.seq = v};
        } else if (snap) {
            if (j->n_snaps == j->cap_snaps) {
                j->cap_snaps = j->cap_snaps ? 2 * j->cap_snaps : 4;
                j->snaps = hq_realloc(j->snaps, j->cap_snaps * sizeof *j->snaps);
            }
            j->snaps[j->n_snaps++] = v;
        }
    }
    closedir(d);
    if (j->n_segs)
        qsort(j->segs, j->n_segs, sizeof *j->segs, s_cmp_seg);
    if (j->n_snaps)
        qsort(j->snaps, j->n_snaps, sizeof *j->snaps, s_cmp_u64);
    /* Versions first, over every file, so a refusal happens before anything changes. */
    for (uint32_t k = 0; k < j->n_segs + j->n_snaps && rc == 0; k++) {
        bool seg = k < j->n_segs;
        char *p = seg ? hq_journal_seg_path_(j, j->segs[k].seq)
                      : hq_journal_snap_path_(j, j->snaps[k - j->n_segs]);
        hq_jheader_t h;
        hq_err_t e = {{0}};
        int r = s_read_header(j, p, &h, &e);
        if (r == -2)
            rc = hq_err_set(err, "%s: %s; the journal was left untouched", p, e.text);
        else if (r == 0 && seg) {
            j->segs[k].prev_lsn = h.prev_lsn;
            j->segs[k].minor = h.minor;
        } else if (seg)
            j->segs[k].bad_header = true;
        /* Damaged headers are reported by replay, with the salvage option. */
        free(p);
    }
    if (rc == 0 && has_tmp && !j->o.read_only) {
        /* Unfinished creations (segment or snapshot tmp files): never valid. */
        d = s_opendir(j);
        while (d && (de = readdir(d))) {
            size_t n = strlen(de->d_name);
            if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0)
                unlinkat(j->dirfd, de->d_name, 0);
        }
        if (d)
            closedir(d);
    }
    return rc;
}

/* ---- file images ---- */

typedef struct s_map {
    uint8_t *data; /* mapping (NULL for an empty file) */
    size_t len;    /* file size */
} s_map_t;

static int s_map(const hq_journal_t *j, const char *path, s_map_t *m, hq_err_t *err)
{
    m->data = NULL;
    m->len = 0;
    int fd = hq_journal_openat_(j, path, O_RDONLY, 0);
    if (fd < 0)
        return hq_err_set(err, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        return hq_err_set(err, "cannot stat %s: %s", path, strerror(e));
    }
    m->len = (size_t)st.st_size;
    if (m->len) {
        void *p = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return hq_err_set(err, "cannot map %s: %s", path, strerror(e));
        }
        madvise(p, m->len, MADV_SEQUENTIAL);
        m->data = p;
    }
    close(fd);
    return 0;
}

static void s_unmap(s_map_t *m)
{
    if (m->data)
        munmap(m->data, m->len);
    m->data = NULL;
}

/* ---- snapshots ---- */

typedef struct s_snapck {
    uint64_t count; /* records seen */
    bool ended;     /* SNAP_END seen (must be last) */
    bool bad_end;   /* SNAP_END count mismatch or not last */
} s_snapck_t;

static int s_snap_check_fn(const hq_jrec_t *rec, size_t off, void *arg, hq_err_t *err)
{
    s_snapck_t *c = arg;
    if (c->ended)
        c->bad_end = true;
    if (rec->type == HQ_JR_SNAP_END) {
        c->ended = true;
        if (rec->u.snap_end.count != c->count)
            c->bad_end = true;
    }
    c->count++;
    return 0;
}

typedef struct s_yield {
    hq_journal_replay_fn *fn;
    void *arg;
    bool from_snapshot;
    uint64_t skip_upto; /* segments: records with lsn <= this are not yielded */
    uint64_t yielded;
    bool snap_end_seen; /* a SNAP_END in a segment is corruption */
    char where[64];     /* for error messages */
    const char *path;   /* the journal directory, for error messages */
    bool salvage;       /* records the callback cannot apply are skipped */
    hq_journal_report_t *rep;
} s_yield_t;

static int s_yield_fn(const hq_jrec_t *rec, size_t off, void *arg, hq_err_t *err)
{
    s_yield_t *y = arg;
    if (rec->type == HQ_JR_SNAP_END) {
        if (!y->from_snapshot)
            return hq_err_set(err, "%s offset %zu: a snapshot-end record in a segment", y->where,
                              off + HQ_JHEADER_SIZE);
        return 0;
    }
    if (!y->from_snapshot && rec->lsn <= y->skip_upto)
        return 0;
    y->yielded++;
    if (!y->fn)
        return 0;
    hq_jrec_t copy = *rec; /* the callback may steal the owned messages */
    hq_err_t why = {{0}};
    int rc = y->fn(&copy, y->from_snapshot, y->arg, &why);
    if (rc > 0 && y->salvage) {
        size_t l = strlen(y->rep->note);
        snprintf(y->rep->note + l, sizeof y->rep->note - l,
                 "%sskipped the record at %s offset %zu (lsn %" PRIu64 "): %.300s", l ? "; " : "",
                 y->where, off + HQ_JHEADER_SIZE, rec->lsn, why.text);
        y->rep->skipped++;
        rc = 0;
    } else if (rc > 0) {
        hq_err_set(err,
                   "journal %s: %s offset %zu (lsn %" PRIu64 "): %s; start the server with "
                   "--journal-salvage to skip this record (what it did is then lost)",
                   y->path, y->where, off + HQ_JHEADER_SIZE, rec->lsn, why.text);
        rc = -1;
    } else if (rc < 0) { /* where the record is, so an operator can find it */
        hq_err_set(err, "journal %s: %s offset %zu (lsn %" PRIu64 "): %s", y->path, y->where,
                   off + HQ_JHEADER_SIZE, rec->lsn, why.text);
    }
    /* The scanner clears rec; whatever the callback did not take is freed there. */
    if (rec->type == HQ_JR_JOB_SUBMIT && !copy.u.job_submit.msg)
        ((hq_jrec_t *)rec)->u.job_submit.msg = NULL;
    if (rec->type == HQ_JR_WORKER_UP && !copy.u.worker_up.msg)
        ((hq_jrec_t *)rec)->u.worker_up.msg = NULL;
    return rc;
}

/* Validates snapshot lsn completely; 0 = usable, -1 with why. */
static int s_snap_verify(hq_journal_t *j, uint64_t lsn, hq_err_t *why)
{
    char *p = hq_journal_snap_path_(j, lsn);
    s_map_t m;
    int rc = s_map(j, p, &m, why);
    free(p);
    if (rc < 0)
        return -1;
    hq_jheader_t h;
    rc = hq_jheader_decode(m.data, m.len, &h, why);
    if (rc == 0 && (h.kind != HQ_JFILE_SNAPSHOT || h.seq != lsn))
        rc = hq_err_set(why, "header does not describe snapshot %" PRIu64, lsn);
    if (rc == 0) {
        s_snapck_t c = {0};
        hq_jscan_t st;
        hq_jscan_records(m.data + HQ_JHEADER_SIZE, m.len - HQ_JHEADER_SIZE, 0, 0, s_snap_check_fn,
                         &c, &st, why);
        if (!st.clean_end)
            rc = hq_err_set(why, "offset %zu: %s", st.end + HQ_JHEADER_SIZE, st.bad);
        else if (st.n_records && st.first_lsn != 1)
            rc = hq_err_set(why, "records start at %" PRIu64 ", not 1", st.first_lsn);
        else if (!c.ended || c.bad_end)
            rc = hq_err_set(why, "incomplete (no matching snapshot-end record)");
    }
    s_unmap(&m);
    return rc;
}

static int s_snap_yield(hq_journal_t *j, uint64_t lsn, s_yield_t *y, hq_err_t *err)
{
    char *p = hq_journal_snap_path_(j, lsn);
    s_map_t m;
    int rc = s_map(j, p, &m, err);
    free(p);
    if (rc < 0)
        return -1;
    hq_jscan_t st;
    y->from_snapshot = true;
    rc = hq_jscan_records(m.data + HQ_JHEADER_SIZE, m.len - HQ_JHEADER_SIZE, 0, 0, s_yield_fn, y,
                          &st, err);
    y->from_snapshot = false;
    s_unmap(&m);
    return rc;
}

/* ---- replay ---- */

/* Bytes from off to the last non-zero byte of the file (what a repair drops). */
static uint64_t s_junk_after(const uint8_t *p, size_t len, size_t off)
{
    while (len > off && p[len - 1] == 0)
        len--;
    return len > off ? len - off : 0;
}

/* Salvage: keep seg[k] up to off, set later segments aside. */
static void s_salvage(hq_journal_t *j, uint32_t k, size_t off, hq_journal_report_t *rep)
{
    uint32_t aside = 0, from_seg = k + 1;
    if (off < HQ_JHEADER_SIZE) {
        from_seg = k; /* the header itself is bad: set the whole segment aside */
    } else if (!j->o.read_only) {
        char *p = hq_journal_seg_path_(j, j->segs[k].seq);
        if (hq_journal_truncate_(j, p, off) < 0)
            from_seg = k; /* cannot cut it: set it aside instead */
        free(p);
    }
    for (uint32_t i = from_seg; i < j->n_segs; i++) {
        char *from = hq_journal_seg_path_(j, j->segs[i].seq);
        char *to = hq_asprintf("%s.salvaged", from);
        if (!j->o.read_only && hq_journal_renameat_(j, from, to) == 0)
            aside++;
        free(from);
        free(to);
    }
    if (!j->o.read_only)
        fsync(j->dirfd);
    size_t l = strlen(rep->note);
    snprintf(rep->note + l, sizeof rep->note - l,
             "%ssalvage: kept records up to lsn %" PRIu64 "; dropped seg-%016" PRIu64
             ".hqj from offset %zu and set %u later segment(s) aside as *.salvaged",
             l ? "; " : "", rep->last_lsn, j->segs[k].seq, off, aside);
    j->n_segs = from_seg;
    rep->salvaged = true;
}

int hq_journal_replay(hq_journal_t *j, hq_journal_replay_fn *fn, void *arg,
                      hq_journal_report_t *report, hq_err_t *err)
{
    hq_journal_report_t local;
    hq_journal_report_t *rep = report ? report : &local;
    memset(rep, 0, sizeof *rep);
    if (j->replayed)
        return hq_err_set(err, "journal %s was already replayed", j->path);
    s_yield_t y = {.fn = fn, .arg = arg, .path = j->path, .salvage = j->o.salvage, .rep = rep};

    /* 1. The newest snapshot that verifies, else the one before. */
    uint64_t L = 0;
    for (uint32_t k = j->n_snaps; k-- > 0;) {
        hq_err_t why = {{0}};
        if (s_snap_verify(j, j->snaps[k], &why) == 0) {
            L = j->snaps[k];
            break;
        }
        size_t l = strlen(rep->note);
        snprintf(rep->note + l, sizeof rep->note - l,
                 "%ssnapshot snap-%016" PRIu64 ".hqs is damaged (%.400s), trying an older one",
                 l ? "; " : "", j->snaps[k], why.text);
    }
    if (j->n_snaps && L == 0 && (j->n_segs == 0 || j->segs[0].prev_lsn != 0))
        return hq_err_set(err,
                          "journal %s: no usable snapshot and the segments do not reach "
                          "back to the start: %s",
                          j->path, rep->note);
    if (L) {
        snprintf(y.where, sizeof y.where, "snap-%016" PRIu64 ".hqs", L);
        if (s_snap_yield(j, L, &y, err) < 0)
            return -1;
        rep->snapshot_lsn = L;
        rep->snap_records = y.yielded;
        y.yielded = 0;
    }
    j->snap_lsn = L;

    /* 2. The segment holding L + 1: the last one whose prev_lsn <= L. */
    uint32_t first = 0;
    for (uint32_t k = 0; k < j->n_segs; k++)
        if (!j->segs[k].bad_header && j->segs[k].prev_lsn <= L)
            first = k;
    if (j->n_segs && j->segs[first].prev_lsn > L)
        return hq_err_set(err,
                          "journal %s: records after lsn %" PRIu64 " are missing (the "
                          "oldest segment starts after lsn %" PRIu64 ")",
                          j->path, L, j->segs[first].prev_lsn);
    y.skip_upto = L;
    uint64_t last = L;

    /* 3. Stream the segments. */
    for (uint32_t k = first; k < j->n_segs; k++) {
        bool final = k + 1 == j->n_segs;
        /* Records beyond the next segment's prev_lsn were never acked. */
        bool known_max = !final && !j->segs[k + 1].bad_header;
        uint64_t max = known_max ? j->segs[k + 1].prev_lsn : 0;
        char *p = hq_journal_seg_path_(j, j->segs[k].seq);
        snprintf(y.where, sizeof y.where, "segment seg-%016" PRIu64 ".hqj", j->segs[k].seq);
        s_map_t m;
        if (s_map(j, p, &m, err) < 0) {
            free(p);
            return -1;
        }
        rep->segments++;
        hq_jheader_t h;
        hq_err_t herr = {{0}};
        size_t bad_off = 0;
        char bad[700] = "";
        bool corrupt = false;
        hq_jscan_t st = {0};
        if (hq_jheader_decode(m.data, m.len, &h, &herr) < 0 || h.kind != HQ_JFILE_SEGMENT ||
            h.seq != j->segs[k].seq) {
            corrupt = true;
            snprintf(bad, sizeof bad, "%.600s",
                     herr.text[0] ? herr.text : "header does not describe this segment");
        } else {
            if (hq_jscan_records(m.data + HQ_JHEADER_SIZE, m.len - HQ_JHEADER_SIZE, h.prev_lsn, max,
                                 s_yield_fn, &y, &st, err) < 0) {
                s_unmap(&m);
                free(p);
                return -1;
            }
            if (st.n_records)
                last = st.last_lsn > last ? st.last_lsn : last;
            uint64_t reached = st.n_records ? st.last_lsn : h.prev_lsn;
            bad_off = HQ_JHEADER_SIZE + st.end;
            if (known_max && reached != max) {
                corrupt = true;
                if (st.clean_end || st.stopped_by_limit)
                    snprintf(bad, sizeof bad,
                             "ends at lsn %" PRIu64 " but the next segment continues after "
                             "lsn %" PRIu64,
                             reached, max);
                else
                    snprintf(bad, sizeof bad, "%s", st.bad);
            } else if (!final && !st.clean_end && known_max) {
                /* Records of a failed group after the durable end: never acked. */
                rep->discarded += s_junk_after(m.data, m.len, bad_off);
            } else if (!final && !st.clean_end) {
                corrupt = true;
                snprintf(bad, sizeof bad, "%s", st.bad);
            } else if (final && !st.clean_end) {
                if (st.valid_after) {
                    corrupt = true;
                    snprintf(bad, sizeof bad, "%s (valid records follow)", st.bad);
                } else {
                    uint64_t dropped = s_junk_after(m.data, m.len, bad_off);
                    rep->torn_bytes = dropped;
                    size_t l = strlen(rep->note);
                    snprintf(rep->note + l, sizeof rep->note - l,
                             "%storn tail: %s offset %zu: %s; %" PRIu64 " byte(s) dropped",
                             l ? "; " : "", y.where, bad_off, st.bad, dropped);
                    if (!j->o.read_only) {
                        if (hq_journal_truncate_(j, p, bad_off) < 0 || fsync(j->dirfd) < 0) {
                            int e = errno;
                            s_unmap(&m);
                            free(p);
                            return hq_err_set(err, "cannot truncate the torn tail of %s: %s",
                                              y.where, strerror(e));
                        }
                    }
                }
            }
        }
        if (final && !corrupt) {
            /* The next start may append here instead of preallocating a new file. */
            j->tail_ok = true;
            j->tail_seq = j->segs[k].seq;
            j->tail_end = bad_off;
            j->tail_last = st.n_records ? st.last_lsn : h.prev_lsn;
        }
        s_unmap(&m);
        free(p);
        rep->last_lsn = last;
        if (corrupt) {
            if (!j->o.salvage)
                return hq_err_set(err,
                                  "journal %s is corrupted: %s offset %zu: %s (records up to "
                                  "lsn %" PRIu64 " are intact; --journal-salvage keeps them "
                                  "and drops the rest)",
                                  j->path, y.where, bad_off, bad, last);
            s_salvage(j, k, bad_off, rep);
            break;
        }
    }
    rep->records = y.yielded;
    rep->last_lsn = last;
    j->last_lsn = last;
    j->replayed = true;
    return 0;
}
