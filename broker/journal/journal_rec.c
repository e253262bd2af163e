/* Journal records without I/O: CRC32C, framing, the payload codec and the scanner
 * over a file image. The encoder is hand-written (a record costs a few dozen bytes
 * and must be cheap on the main loop); the decoder uses the bounded hq_mpr reader and
 * checks every count against the bytes left before touching memory. */
#include "journal_rec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_mpr.h"
#include "hq_util.h"

/* ---- CRC32C ---- */

static uint32_t s_crc_tab[8][256];

__attribute__((constructor)) static void s_crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        s_crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            s_crc_tab[t][i] = (s_crc_tab[t - 1][i] >> 8) ^ s_crc_tab[0][s_crc_tab[t - 1][i] & 0xff];
#if defined(__x86_64__)
    __builtin_cpu_init();
#endif
}

uint32_t hq_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t c = ~crc;
    while (len >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        c = s_crc_tab[7][lo & 0xff] ^ s_crc_tab[6][(lo >> 8) & 0xff] ^
            s_crc_tab[5][(lo >> 16) & 0xff] ^ s_crc_tab[4][lo >> 24] ^ s_crc_tab[3][p[4]] ^
            s_crc_tab[2][p[5]] ^ s_crc_tab[1][p[6]] ^ s_crc_tab[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--)
        c = (c >> 8) ^ s_crc_tab[0][(c ^ *p++) & 0xff];
    return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t s_crc_hw(uint32_t crc, const uint8_t *p,
                                                           size_t len)
{
    uint64_t c = ~crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif

uint32_t hq_crc32c(uint32_t crc, const void *data, size_t len)
{
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        return s_crc_hw(crc, data, len);
#endif
    return hq_crc32c_sw(crc, data, len);
}

/* ---- little-endian helpers ---- */

static void s_le32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static void s_le64(uint8_t *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static uint32_t s_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t s_rd64(const uint8_t *p)
{
    return (uint64_t)s_rd32(p) | (uint64_t)s_rd32(p + 4) << 32;
}

/* ---- names and shapes ---- */

static const char *s_names[] = {
    [HQ_JR_SERVER_START] = "server-start",     [HQ_JR_SERVER_STOP] = "server-stop",
    [HQ_JR_JOB_SUBMIT] = "job-submit",         [HQ_JR_JOB_OPEN] = "job-open",
    [HQ_JR_JOB_CLOSE] = "job-close",           [HQ_JR_JOB_CANCEL] = "job-cancel",
    [HQ_JR_JOB_FORGET] = "job-forget",         [HQ_JR_TASK_STARTED] = "task-started",
    [HQ_JR_TASK_FINISHED] = "task-finished",   [HQ_JR_TASK_FAILED] = "task-failed",
    [HQ_JR_TASKS_CANCELED] = "tasks-canceled", [HQ_JR_TASKS_ABORTED] = "tasks-aborted",
    [HQ_JR_WORKER_UP] = "worker-up",           [HQ_JR_WORKER_LOST] = "worker-lost",
    [HQ_JR_ID_HIGHWATER] = "id-highwater",     [HQ_JR_TASK_STATE] = "task-state",
    [HQ_JR_SNAP_END] = "snapshot-end",         [HQ_JR_TASKS_STARTED] = "tasks-started",
    [HQ_JR_TASKS_FINISHED] = "tasks-finished",
};

/* Elements of each payload array: type, lsn, wall_ns + the body fields. */
static const uint8_t s_nfields[] = {
    [HQ_JR_SERVER_START] = 5,   [HQ_JR_SERVER_STOP] = 3,    [HQ_JR_JOB_SUBMIT] = 5,
    [HQ_JR_JOB_OPEN] = 6,       [HQ_JR_JOB_CLOSE] = 4,      [HQ_JR_JOB_CANCEL] = 5,
    [HQ_JR_JOB_FORGET] = 4,     [HQ_JR_TASK_STARTED] = 8,   [HQ_JR_TASK_FINISHED] = 6,
    [HQ_JR_TASK_FAILED] = 7,    [HQ_JR_TASKS_CANCELED] = 5, [HQ_JR_TASKS_ABORTED] = 5,
    [HQ_JR_WORKER_UP] = 6,      [HQ_JR_WORKER_LOST] = 6,    [HQ_JR_ID_HIGHWATER] = 5,
    [HQ_JR_TASK_STATE] = 12,    [HQ_JR_SNAP_END] = 4,       [HQ_JR_TASKS_STARTED] = 7,
    [HQ_JR_TASKS_FINISHED] = 5,
};

const char *hq_jrec_name(uint32_t type)
{
    if (type == 0 || type > HQ_JR_TYPE_MAX)
        return "unknown";
    return s_names[type];
}

/* ---- encoder ---- */

typedef struct s_out {
    uint8_t **buf;
    size_t *len;
    size_t *cap;
} s_out_t;

static uint8_t *s_room(s_out_t *o, size_t n)
{
    if (*o->len + n > *o->cap) {
        size_t c = *o->cap ? *o->cap : 256;
        while (c < *o->len + n)
            c *= 2;
        *o->buf = hq_realloc(*o->buf, c);
        *o->cap = c;
    }
    uint8_t *p = *o->buf + *o->len;
    *o->len += n;
    return p;
}

static void s_be_n(uint8_t *p, uint64_t v, int n)
{
    for (int k = n - 1; k >= 0; k--) {
        p[k] = (uint8_t)v;
        v >>= 8;
    }
}

static void s_pu(s_out_t *o, uint64_t v)
{
    if (v < 128) {
        *s_room(o, 1) = (uint8_t)v;
    } else if (v <= 0xff) {
        uint8_t *p = s_room(o, 2);
        p[0] = 0xcc;
        p[1] = (uint8_t)v;
    } else if (v <= 0xffff) {
        uint8_t *p = s_room(o, 3);
        p[0] = 0xcd;
        s_be_n(p + 1, v, 2);
    } else if (v <= 0xffffffffu) {
        uint8_t *p = s_room(o, 5);
        p[0] = 0xce;
        s_be_n(p + 1, v, 4);
    } else {
        uint8_t *p = s_room(o, 9);
        p[0] = 0xcf;
        s_be_n(p + 1, v, 8);
    }
}

static void s_parr(s_out_t *o, uint32_t n)
{
    if (n < 16) {
        *s_room(o, 1) = (uint8_t)(0x90 | n);
    } else if (n <= 0xffff) {
        uint8_t *p = s_room(o, 3);
        p[0] = 0xdc;
        s_be_n(p + 1, n, 2);
    } else {
        uint8_t *p = s_room(o, 5);
        p[0] = 0xdd;
        s_be_n(p + 1, n, 4);
    }
}

static void s_pnil(s_out_t *o)
{
    *s_room(o, 1) = 0xc0;
}

static int s_pstr(s_out_t *o, const char *s, const char *field, hq_err_t *err)
{
    if (!s) {
        s_pnil(o);
        return 0;
    }
    size_t n = strlen(s);
    if (n > HQ_MAX_STR)
        return hq_err_set(err, "journal: field '%s' is %zu bytes (max %d)", field, n, HQ_MAX_STR);
    uint8_t *p;
    if (n < 32) {
        p = s_room(o, 1 + n);
        p[0] = (uint8_t)(0xa0 | n);
        p += 1;
    } else if (n <= 0xff) {
        p = s_room(o, 2 + n);
        p[0] = 0xd9;
        p[1] = (uint8_t)n;
        p += 2;
    } else if (n <= 0xffff) {
        p = s_room(o, 3 + n);
        p[0] = 0xda;
        s_be_n(p + 1, n, 2);
        p += 3;
    } else {
        p = s_room(o, 5 + n);
        p[0] = 0xdb;
        s_be_n(p + 1, n, 4);
        p += 5;
    }
    memcpy(p, s, n);
    return 0;
}

static void s_pbin(s_out_t *o, const uint8_t *d, size_t n)
{
    uint8_t *p;
    if (n <= 0xff) {
        p = s_room(o, 2 + n);
        p[0] = 0xc4;
        p[1] = (uint8_t)n;
        p += 2;
    } else if (n <= 0xffff) {
        p = s_room(o, 3 + n);
        p[0] = 0xc5;
        s_be_n(p + 1, n, 2);
        p += 3;
    } else {
        p = s_room(o, 5 + n);
        p[0] = 0xc6;
        s_be_n(p + 1, n, 4);
        p += 5;
    }
    if (n)
        memcpy(p, d, n);
}

/* Encodes an embedded protocol message (SUBMIT / REGISTER) as bin. */
static int s_pmsg(s_out_t *o, uint8_t type, const void *body, hq_err_t *err)
{
    hq_msg_t m;
    memset(&m, 0, sizeof m);
    m.hdr.type = type;
    if (type == HQ_MSG_SUBMIT)
        m.u.submit = *(const hq_submit_t *)body;
    else
        m.u.reg = *(const hq_register_t *)body;
    uint8_t *frame;
    size_t flen;
    if (hq_msg_encode(&m, &frame, &flen, err) < 0)
        return hq_err_prefix(err, "journal: ");
    if (flen > HQ_JREC_MAX - 64) {
        free(frame);
        return hq_err_set(err, "journal: the %s is %zu bytes, more than a record holds (%u)",
                          hq_msg_type_name(type), flen, HQ_JREC_MAX - 64);
    }
    s_pbin(o, frame, flen);
    free(frame);
    return 0;
}

static int s_body(s_out_t *o, const hq_jrec_t *r, hq_err_t *err)
{
    switch (r->type) {
    case HQ_JR_SERVER_START:
        s_pu(o, r->u.server_start.epoch);
        return s_pstr(o, r->u.server_start.uid, "uid", err);
    case HQ_JR_SERVER_STOP:
        return 0;
    case HQ_JR_JOB_SUBMIT:
        if (!r->u.job_submit.submit)
            return hq_err_set(err, "journal: job-submit without a submit body");
        s_pu(o, r->u.job_submit.job);
        return s_pmsg(o, HQ_MSG_SUBMIT, r->u.job_submit.submit, err);
    case HQ_JR_JOB_OPEN:
        s_pu(o, r->u.job_open.job);
        if (s_pstr(o, r->u.job_open.name, "name", err) < 0)
            return -1;
        if (r->u.job_open.has_max_fails)
            s_pu(o, r->u.job_open.max_fails);
        else
            s_pnil(o);
        return 0;
    case HQ_JR_JOB_CLOSE:
    case HQ_JR_JOB_FORGET:
        s_pu(o, r->u.job.job);
        return 0;
    case HQ_JR_JOB_CANCEL:
        s_pu(o, r->u.job_cancel.job);
        return s_pstr(o, r->u.job_cancel.reason, "reason", err);
    case HQ_JR_TASK_STARTED:
    case HQ_JR_TASK_FINISHED:
    case HQ_JR_TASK_FAILED:
        s_pu(o, r->u.task.job);
        s_pu(o, r->u.task.task);
        s_pu(o, r->u.task.instance);
        if (r->type == HQ_JR_TASK_STARTED) {
            s_pu(o, r->u.task.worker);
            s_pu(o, r->u.task.epoch);
        } else if (r->type == HQ_JR_TASK_FAILED) {
            return s_pstr(o, r->u.task.error, "error", err);
        }
        return 0;
    case HQ_JR_TASKS_STARTED:
    case HQ_JR_TASKS_FINISHED: {
        uint32_t n = r->u.batch.n;
        if (n == 0 || n > HQ_JMAX_INSTS || !r->u.batch.insts)
            return hq_err_set(err, "journal: %u task instances (1 to %u)", n, HQ_JMAX_INSTS);
        s_pu(o, r->u.batch.job);
        if (r->type == HQ_JR_TASKS_STARTED) {
            s_pu(o, r->u.batch.worker);
            s_pu(o, r->u.batch.epoch);
        }
        s_parr(o, 2 * n);
        for (uint32_t k = 0; k < n; k++) {
            s_pu(o, r->u.batch.insts[k].task);
            s_pu(o, r->u.batch.insts[k].instance);
        }
        return 0;
    }
    case HQ_JR_TASKS_CANCELED:
    case HQ_JR_TASKS_ABORTED: {
        uint32_t n = r->u.tasks.n;
        if (n > HQ_JMAX_RANGES || (n && !r->u.tasks.ranges))
            return hq_err_set(err, "journal: %u ranges (max %u)", n, HQ_JMAX_RANGES);
        for (uint32_t k = 0; k < n; k++) {
            const hq_jrange_t *g = &r->u.tasks.ranges[k];
            if (g->first > g->last || (k && r->u.tasks.ranges[k - 1].last >= g->first))
                return hq_err_set(err, "journal: range %u-%u is out of order", g->first, g->last);
        }
        s_pu(o, r->u.tasks.job);
        s_parr(o, 2 * n);
        for (uint32_t k = 0; k < n; k++) {
            s_pu(o, r->u.tasks.ranges[k].first);
            s_pu(o, r->u.tasks.ranges[k].last);
        }
        return 0;
    }
    case HQ_JR_WORKER_UP:
        s_pu(o, r->u.worker_up.worker);
        s_pu(o, r->u.worker_up.epoch);
        if (!r->u.worker_up.reg) {
            s_pbin(o, NULL, 0);
            return 0;
        }
        return s_pmsg(o, HQ_MSG_REGISTER, r->u.worker_up.reg, err);
    case HQ_JR_WORKER_LOST:
        s_pu(o, r->u.worker_lost.worker);
        s_pu(o, r->u.worker_lost.reason);
        return s_pstr(o, r->u.worker_lost.text, "text", err);
    case HQ_JR_ID_HIGHWATER:
        s_pu(o, r->u.highwater.job);
        s_pu(o, r->u.highwater.worker);
        return 0;
    case HQ_JR_TASK_STATE:
        if (r->u.task_state.state >= 7)
            return hq_err_set(err, "journal: task state %u out of range", r->u.task_state.state);
        s_pu(o, r->u.task_state.job);
        s_pu(o, r->u.task_state.task);
        s_pu(o, r->u.task_state.state);
        s_pu(o, r->u.task_state.instance);
        s_pu(o, r->u.task_state.worker);
        s_pu(o, r->u.task_state.crashes);
        s_pu(o, r->u.task_state.start_ns);
        s_pu(o, r->u.task_state.end_ns);
        return s_pstr(o, r->u.task_state.error, "error", err);
    case HQ_JR_SNAP_END:
        s_pu(o, r->u.snap_end.count);
        return 0;
    }
    return hq_err_set(err, "journal: unknown record type %u", (unsigned)r->type);
}

int hq_jrec_frame(const hq_jrec_t *rec, uint8_t **buf, size_t *len, size_t *cap, hq_err_t *err)
{
    if ((uint32_t)rec->type == 0 || (uint32_t)rec->type > HQ_JR_TYPE_MAX)
        return hq_err_set(err, "journal: unknown record type %u", (unsigned)rec->type);
    size_t start = *len;
    s_out_t o = {buf, len, cap};
    s_room(&o, HQ_JFRAME_SIZE);
    s_parr(&o, s_nfields[rec->type]);
    s_pu(&o, (uint64_t)rec->type);
    s_pu(&o, rec->lsn);
    s_pu(&o, rec->wall_ns);
    if (s_body(&o, rec, err) < 0) {
        *len = start;
        return -1;
    }
    size_t plen = *len - start - HQ_JFRAME_SIZE;
    if (plen > HQ_JREC_MAX) {
        *len = start;
        return hq_err_set(err, "journal: %s record of %zu bytes exceeds the cap (%u)",
                          hq_jrec_name(rec->type), plen, HQ_JREC_MAX);
    }
    uint8_t *f = *buf + start;
    s_le32(f, (uint32_t)plen);
    s_le32(f + 4, hq_crc32c(hq_crc32c(0, f, 4), f + 8, plen));
    return 0;
}

void hq_jrec_clear(hq_jrec_t *rec)
{
    if (rec->type == HQ_JR_JOB_SUBMIT)
        hq_msg_destroy(&rec->u.job_submit.msg);
    else if (rec->type == HQ_JR_WORKER_UP)
        hq_msg_destroy(&rec->u.worker_up.msg);
}

void hq_jscratch_free(hq_jscratch_t *s)
{
    free(s->data);
    memset(s, 0, sizeof *s);
}

/* ---- decoder ---- */

typedef struct s_dec {
    hq_mpr_t r;
    hq_jscratch_t *sc;
    const char *tname;
    hq_err_t *err;
} s_dec_t;

static int s_fail(s_dec_t *d, const char *field, const char *want)
{
    return hq_err_set(d->err, "%s record: field '%s': expected %s, found %s", d->tname, field, want,
                      hq_mpr_peek_name(&d->r));
}

static int s_u64(s_dec_t *d, const char *field, uint64_t *out)
{
    hq_mpr_int_t v;
    if (hq_mpr_integer(&d->r, &v) != HQ_MPR_OK || v.neg)
        return s_fail(d, field, "an unsigned integer");
    *out = v.u;
    return 0;
}

static int s_u32(s_dec_t *d, const char *field, uint32_t *out)
{
    uint64_t v = 0;
    if (s_u64(d, field, &v) < 0)
        return -1;
    if (v > UINT32_MAX)
        return hq_err_set(d->err, "%s record: field '%s': %llu does not fit 32 bits", d->tname,
                          field, (unsigned long long)v);
    *out = (uint32_t)v;
    return 0;
}

static void *s_scratch(s_dec_t *d, size_t n)
{
    /* The caller reserved enough room for the whole record (see hq_jrec_decode), so
     * earlier pointers into the scratch never move. */
    if (d->sc->used + n > d->sc->cap)
        return NULL;
    void *p = d->sc->data + d->sc->used;
    d->sc->used += (n + 7) & ~(size_t)7;
    if (d->sc->used > d->sc->cap)
        d->sc->used = d->sc->cap;
    return p;
}

static int s_str(s_dec_t *d, const char *field, const char **out)
{
    if (hq_mpr_is_nil(&d->r)) {
        hq_mpr_nil(&d->r);
        *out = NULL;
        return 0;
    }
    const uint8_t *s;
    uint32_t n;
    int rc = hq_mpr_str(&d->r, &s, &n);
    if (rc == HQ_MPR_TRUNCATED)
        return hq_err_set(d->err, "%s record: field '%s': string runs past the end", d->tname,
                          field);
    if (rc != HQ_MPR_OK)
        return s_fail(d, field, "a string or nil");
    if (n > HQ_MAX_STR)
        return hq_err_set(d->err, "%s record: field '%s': %u bytes (max %d)", d->tname, field, n,
                          HQ_MAX_STR);
    if (memchr(s, 0, n))
        return hq_err_set(d->err, "%s record: field '%s' contains a NUL byte", d->tname, field);
    char *c = s_scratch(d, (size_t)n + 1);
    if (!c)
        return hq_err_set(d->err, "%s record: field '%s': out of scratch", d->tname, field);
    memcpy(c, s, n);
    c[n] = '\0';
    *out = c;
    return 0;
}

static int s_msg(s_dec_t *d, const char *field, uint8_t type, bool optional, hq_msg_t **out)
{
    const uint8_t *b;
    uint32_t n;
    int rc = hq_mpr_bin(&d->r, &b, &n);
    if (rc == HQ_MPR_TRUNCATED)
        return hq_err_set(d->err, "%s record: field '%s': bytes run past the end", d->tname, field);
    if (rc != HQ_MPR_OK)
        return s_fail(d, field, "bytes");
    *out = NULL;
    if (n == 0 && optional)
        return 0;
    hq_err_t e = {{0}};
    hq_msg_t *m = hq_msg_decode(b, n, &e);
    if (!m)
        return hq_err_set(d->err, "%s record: field '%s': %s", d->tname, field, e.text);
    if (m->hdr.type != type) {
        uint8_t got = m->hdr.type;
        hq_msg_destroy(&m);
        return hq_err_set(d->err, "%s record: field '%s' holds a %s message, not %s", d->tname,
                          field, hq_msg_type_name(got), hq_msg_type_name(type));
    }
    *out = m;
    return 0;
}

static int s_ranges(s_dec_t *d, hq_jrec_t *r)
{
    uint32_t n;
    if (hq_mpr_array(&d->r, &n) != HQ_MPR_OK)
        return s_fail(d, "ranges", "an array");
    if (n % 2)
        return hq_err_set(d->err, "%s record: field 'ranges' has an odd count %u", d->tname, n);
    if (n / 2 > HQ_JMAX_RANGES)
        return hq_err_set(d->err, "%s record: field 'ranges': %u ranges (max %u)", d->tname, n / 2,
                          HQ_JMAX_RANGES);
    if (n > hq_mpr_left(&d->r))
        return hq_err_set(d->err, "%s record: field 'ranges' count %u exceeds bytes left (%zu)",
                          d->tname, n, hq_mpr_left(&d->r));
    hq_jrange_t *g = NULL;
    if (n) {
        g = s_scratch(d, (size_t)(n / 2) * sizeof *g);
        if (!g)
            return hq_err_set(d->err, "%s record: out of scratch", d->tname);
    }
    for (uint32_t k = 0; k < n / 2; k++) {
        if (s_u32(d, "ranges", &g[k].first) < 0 || s_u32(d, "ranges", &g[k].last) < 0)
            return -1;
        if (g[k].first > g[k].last || (k && g[k - 1].last >= g[k].first))
            return hq_err_set(d->err, "%s record: range %u-%u is out of order", d->tname,
                              g[k].first, g[k].last);
    }
    r->u.tasks.n = n / 2;
    r->u.tasks.ranges = g;
    return 0;
}

static int s_insts(s_dec_t *d, hq_jrec_t *r)
{
    uint32_t n;
    if (hq_mpr_array(&d->r, &n) != HQ_MPR_OK)
        return s_fail(d, "tasks", "an array");
    if (n == 0 || n % 2)
        return hq_err_set(d->err, "%s record: field 'tasks' has count %u (a positive even one)",
                          d->tname, n);
    if (n / 2 > HQ_JMAX_INSTS)
        return hq_err_set(d->err, "%s record: field 'tasks': %u instances (max %u)", d->tname,
                          n / 2, HQ_JMAX_INSTS);
    if (n > hq_mpr_left(&d->r))
        return hq_err_set(d->err, "%s record: field 'tasks' count %u exceeds bytes left (%zu)",
                          d->tname, n, hq_mpr_left(&d->r));
    hq_jinst_t *g = s_scratch(d, (size_t)(n / 2) * sizeof *g);
    if (!g)
        return hq_err_set(d->err, "%s record: out of scratch", d->tname);
    for (uint32_t k = 0; k < n / 2; k++)
        if (s_u32(d, "tasks", &g[k].task) < 0 || s_u32(d, "tasks", &g[k].instance) < 0)
            return -1;
    r->u.batch.n = n / 2;
    r->u.batch.insts = g;
    return 0;
}

static int s_dbody(s_dec_t *d, hq_jrec_t *r)
{
    switch (r->type) {
    case HQ_JR_SERVER_START:
        if (s_u64(d, "epoch", &r->u.server_start.epoch) < 0)
            return -1;
        return s_str(d, "uid", &r->u.server_start.uid);
    case HQ_JR_SERVER_STOP:
        return 0;
    case HQ_JR_JOB_SUBMIT:
        if (s_u32(d, "job", &r->u.job_submit.job) < 0)
            return -1;
        return s_msg(d, "submit", HQ_MSG_SUBMIT, false, &r->u.job_submit.msg);
    case HQ_JR_JOB_OPEN:
        if (s_u32(d, "job", &r->u.job_open.job) < 0 || s_str(d, "name", &r->u.job_open.name) < 0)
            return -1;
        if (hq_mpr_is_nil(&d->r)) {
            hq_mpr_nil(&d->r);
            return 0;
        }
        r->u.job_open.has_max_fails = true;
        return s_u32(d, "max_fails", &r->u.job_open.max_fails);
    case HQ_JR_JOB_CLOSE:
    case HQ_JR_JOB_FORGET:
        return s_u32(d, "job", &r->u.job.job);
    case HQ_JR_JOB_CANCEL:
        if (s_u32(d, "job", &r->u.job_cancel.job) < 0)
            return -1;
        return s_str(d, "reason", &r->u.job_cancel.reason);
    case HQ_JR_TASK_STARTED:
    case HQ_JR_TASK_FINISHED:
    case HQ_JR_TASK_FAILED:
        if (s_u32(d, "job", &r->u.task.job) < 0 || s_u32(d, "task", &r->u.task.task) < 0 ||
            s_u32(d, "instance", &r->u.task.instance) < 0)
            return -1;
        if (r->type == HQ_JR_TASK_STARTED)
            return s_u32(d, "worker", &r->u.task.worker) < 0 ? -1
                                                             : s_u64(d, "epoch", &r->u.task.epoch);
        if (r->type == HQ_JR_TASK_FAILED)
            return s_str(d, "error", &r->u.task.error);
        return 0;
    case HQ_JR_TASKS_CANCELED:
    case HQ_JR_TASKS_ABORTED:
        if (s_u32(d, "job", &r->u.tasks.job) < 0)
            return -1;
        return s_ranges(d, r);
    case HQ_JR_TASKS_STARTED:
    case HQ_JR_TASKS_FINISHED:
        if (s_u32(d, "job", &r->u.batch.job) < 0)
            return -1;
        if (r->type == HQ_JR_TASKS_STARTED && (s_u32(d, "worker", &r->u.batch.worker) < 0 ||
                                               s_u64(d, "epoch", &r->u.batch.epoch) < 0))
            return -1;
        return s_insts(d, r);
    case HQ_JR_WORKER_UP:
        if (s_u32(d, "worker", &r->u.worker_up.worker) < 0 ||
            s_u64(d, "epoch", &r->u.worker_up.epoch) < 0)
            return -1;
        return s_msg(d, "register", HQ_MSG_REGISTER, true, &r->u.worker_up.msg);
    case HQ_JR_WORKER_LOST:
        if (s_u32(d, "worker", &r->u.worker_lost.worker) < 0 ||
            s_u32(d, "reason", &r->u.worker_lost.reason) < 0)
            return -1;
        return s_str(d, "text", &r->u.worker_lost.text);
    case HQ_JR_ID_HIGHWATER:
        if (s_u32(d, "job", &r->u.highwater.job) < 0)
            return -1;
        return s_u32(d, "worker", &r->u.highwater.worker);
    case HQ_JR_TASK_STATE: {
        uint32_t st = 0;
        if (s_u32(d, "job", &r->u.task_state.job) < 0 ||
            s_u32(d, "task", &r->u.task_state.task) < 0 || s_u32(d, "state", &st) < 0)
            return -1;
        if (st >= 7)
            return hq_err_set(d->err, "%s record: field 'state': %u out of range", d->tname, st);
        r->u.task_state.state = (uint8_t)st;
        if (s_u32(d, "instance", &r->u.task_state.instance) < 0 ||
            s_u32(d, "worker", &r->u.task_state.worker) < 0 ||
            s_u32(d, "crashes", &r->u.task_state.crashes) < 0 ||
            s_u64(d, "start_ns", &r->u.task_state.start_ns) < 0 ||
            s_u64(d, "end_ns", &r->u.task_state.end_ns) < 0)
            return -1;
        return s_str(d, "error", &r->u.task_state.error);
    }
    case HQ_JR_SNAP_END:
        return s_u64(d, "count", &r->u.snap_end.count);
    }
    return hq_err_set(d->err, "unknown record type %u", (unsigned)r->type);
}

int hq_jrec_decode(const uint8_t *payload, size_t len, hq_jrec_t *out, hq_jscratch_t *sc,
                   hq_err_t *err)
{
    memset(out, 0, sizeof *out);
    /* Strings need at most len + one NUL each, ranges 8 bytes per >= 2 payload bytes:
     * 4 * len bounds the whole record, reserved up front so pointers never move. */
    size_t need = 4 * len + 64;
    if (sc->cap < need) {
        size_t c = sc->cap ? sc->cap : 256;
        while (c < need)
            c *= 2;
        free(sc->data);
        sc->data = hq_malloc(c);
        sc->cap = c;
    }
    sc->used = 0;
    s_dec_t d = {{payload, payload + len}, sc, "journal", err};
    uint32_t n;
    if (hq_mpr_array(&d.r, &n) != HQ_MPR_OK)
        return hq_err_set(err, "journal record: expected an array, found %s",
                          hq_mpr_peek_name(&d.r));
    uint64_t type = 0;
    if (n < 3 || s_u64(&d, "type", &type) < 0)
        return n < 3 ? hq_err_set(err, "journal record: array of %u elements (min 3)", n) : -1;
    if (type == 0 || type > HQ_JR_TYPE_MAX)
        return hq_err_set(err, "unknown record type %llu (this hq knows 1..%d)",
                          (unsigned long long)type, HQ_JR_TYPE_MAX);
    out->type = (enum hq_jrec_type)type;
    d.tname = s_names[type];
    if (n != s_nfields[type])
        return hq_err_set(err, "%s record: %u fields, expected %u", d.tname, n, s_nfields[type]);
    if (s_u64(&d, "lsn", &out->lsn) < 0 || s_u64(&d, "wall_ts", &out->wall_ns) < 0)
        return -1;
    if (s_dbody(&d, out) < 0) {
        hq_jrec_clear(out);
        return -1;
    }
    if (hq_mpr_left(&d.r) != 0) {
        hq_jrec_clear(out);
        return hq_err_set(err, "%s record: %zu trailing bytes", d.tname, hq_mpr_left(&d.r));
    }
    return 0;
}

/* ---- file header ---- */

static const char s_magic_seg[8] = "HQJSEG\r\n";
static const char s_magic_snap[8] = "HQJSNP\r\n";

void hq_jheader_encode(const hq_jheader_t *h, uint8_t out[HQ_JHEADER_SIZE])
{
    memset(out, 0, HQ_JHEADER_SIZE);
    memcpy(out, h->kind == HQ_JFILE_SNAPSHOT ? s_magic_snap : s_magic_seg, 8);
    out[8] = (uint8_t)h->major;
    out[9] = (uint8_t)(h->major >> 8);
    out[10] = (uint8_t)h->minor;
    out[11] = (uint8_t)(h->minor >> 8);
    s_le32(out + 12, HQ_JHEADER_SIZE);
    s_le64(out + 16, h->seq);
    s_le64(out + 24, h->created_ns);
    s_le64(out + 32, h->prev_lsn);
    memcpy(out + 40, h->uid, strnlen(h->uid, 16));
    s_le32(out + 60, hq_crc32c(0, out, 60));
}

int hq_jheader_decode(const uint8_t *buf, size_t len, hq_jheader_t *h, hq_err_t *err)
{
    memset(h, 0, sizeof *h);
    if (len < HQ_JHEADER_SIZE)
        return hq_err_set(err, "file header truncated (%zu of %d bytes)", len, HQ_JHEADER_SIZE);
    if (memcmp(buf, s_magic_seg, 8) == 0)
        h->kind = HQ_JFILE_SEGMENT;
    else if (memcmp(buf, s_magic_snap, 8) == 0)
        h->kind = HQ_JFILE_SNAPSHOT;
    else
        return hq_err_set(err, "not an hq journal file (bad magic)");
    uint32_t crc = s_rd32(buf + 60), want = hq_crc32c(0, buf, 60);
    if (crc != want)
        return hq_err_set(err, "file header CRC mismatch (stored %08x, computed %08x)", crc, want);
    h->major = (uint16_t)(buf[8] | buf[9] << 8);
    h->minor = (uint16_t)(buf[10] | buf[11] << 8);
    if (h->major != HQ_JFORMAT_MAJOR || h->minor > HQ_JFORMAT_MINOR) {
        hq_err_set(err,
                   "journal format %u.%u is not supported: this hq reads format %d.0 to %d.%d%s",
                   h->major, h->minor, HQ_JFORMAT_MAJOR, HQ_JFORMAT_MAJOR, HQ_JFORMAT_MINOR,
                   h->major == HQ_JFORMAT_MAJOR ? " (it was written by a newer hq)" : "");
        return -2;
    }
    if (s_rd32(buf + 12) != HQ_JHEADER_SIZE)
        return hq_err_set(err, "file header size %u, expected %d", s_rd32(buf + 12),
                          HQ_JHEADER_SIZE);
    h->seq = s_rd64(buf + 16);
    h->created_ns = s_rd64(buf + 24);
    h->prev_lsn = s_rd64(buf + 32);
    memcpy(h->uid, buf + 40, 16);
    h->uid[16] = '\0';
    for (int k = 0; h->uid[k]; k++)
        if ((unsigned char)h->uid[k] < 0x20 || (unsigned char)h->uid[k] > 0x7e)
            return hq_err_set(err, "file header: server uid is not printable");
    return 0;
}

/* ---- scanning ---- */

static bool s_all_zero(const uint8_t *p, size_t n)
{
    static const uint8_t zero[4096];
    while (n) {
        size_t k = n < sizeof zero ? n : sizeof zero;
        if (memcmp(p, zero, k) != 0)
            return false;
        p += k;
        n -= k;
    }
    return true;
}

/* Frame check only: 0 = a whole frame with a good CRC of *plen payload bytes. */
static int s_frame(const uint8_t *buf, size_t len, size_t off, uint32_t *plen, char *why,
                   size_t whylen)
{
    size_t left = len - off;
    if (left < HQ_JFRAME_SIZE) {
        snprintf(why, whylen, "frame header truncated (%zu bytes left)", left);
        return -1;
    }
    uint32_t n = s_rd32(buf + off), crc = s_rd32(buf + off + 4);
    if (n > HQ_JREC_MAX) {
        snprintf(why, whylen, "record length %u exceeds the cap (%u)", n, HQ_JREC_MAX);
        return -1;
    }
    if (n > left - HQ_JFRAME_SIZE) {
        snprintf(why, whylen, "record of %u bytes truncated (%zu bytes left)", n,
                 left - HQ_JFRAME_SIZE);
        return -1;
    }
    if (n == 0) {
        snprintf(why, whylen, "empty record");
        return -1;
    }
    uint32_t want = hq_crc32c(hq_crc32c(0, buf + off, 4), buf + off + 8, n);
    if (crc != want) {
        snprintf(why, whylen, "CRC mismatch (stored %08x, computed %08x)", crc, want);
        return -1;
    }
    *plen = n;
    return 0;
}

/* Whether any valid record starts after off (torn tail vs corruption). Cheap filters
 * (payload starts with a record array and a known type) before a CRC is computed. */
static bool s_valid_after(const uint8_t *buf, size_t len, size_t off, hq_jscratch_t *sc)
{
    char why[8];
    for (size_t p = off + 1; p + HQ_JFRAME_SIZE + 3 <= len; p++) {
        uint8_t a = buf[p + 8], t = buf[p + 9];
        if (a < 0x93 || a > 0x9c || t == 0 || t > HQ_JR_TYPE_MAX || buf[p] == 0)
            continue;
        uint32_t n;
        if (s_frame(buf, len, p, &n, why, sizeof why) < 0)
            continue;
        hq_jrec_t r;
        hq_err_t e;
        if (hq_jrec_decode(buf + p + 8, n, &r, sc, &e) == 0) {
            hq_jrec_clear(&r);
            return true;
        }
    }
    return false;
}

int hq_jscan_records(const uint8_t *buf, size_t len, uint64_t prev_lsn, uint64_t max_lsn,
                     hq_jscan_fn *fn, void *arg, hq_jscan_t *st, hq_err_t *err)
{
    memset(st, 0, sizeof *st);
    hq_jscratch_t sc = {0};
    size_t off = 0;
    uint64_t last = prev_lsn;
    int rc = 0;
    for (;;) {
        if (off == len || (buf[off] == 0 && s_all_zero(buf + off, len - off))) {
            st->clean_end = true;
            break;
        }
        uint32_t n;
        if (s_frame(buf, len, off, &n, st->bad, sizeof st->bad) < 0)
            break;
        hq_jrec_t r;
        hq_err_t e;
        if (hq_jrec_decode(buf + off + 8, n, &r, &sc, &e) < 0) {
            snprintf(st->bad, sizeof st->bad, "%.500s", e.text);
            break;
        }
        bool ok = st->n_records ? r.lsn == last + 1 : r.lsn > prev_lsn;
        if (!ok) {
            snprintf(st->bad, sizeof st->bad, "lsn %llu does not follow lsn %llu",
                     (unsigned long long)r.lsn, (unsigned long long)last);
            hq_jrec_clear(&r);
            break;
        }
        if (max_lsn && r.lsn > max_lsn) {
            hq_jrec_clear(&r);
            st->stopped_by_limit = true;
            break;
        }
        if (fn && fn(&r, off, arg, err) < 0) {
            hq_jrec_clear(&r);
            rc = -1;
            break;
        }
        hq_jrec_clear(&r);
        if (!st->n_records)
            st->first_lsn = r.lsn;
        st->n_records++;
        last = st->last_lsn = r.lsn;
        off += HQ_JFRAME_SIZE + n;
    }
    st->end = off;
    if (rc == 0 && !st->clean_end && !st->stopped_by_limit)
        st->valid_after = s_valid_after(buf, len, off, &sc);
    hq_jscratch_free(&sc);
    return rc;
}
