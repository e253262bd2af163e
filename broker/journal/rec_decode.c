/* The journal record decoder: one payload into a typed record, all-or-nothing,
 * through the bounded hq_mpr reader; every count is checked against the bytes left
 * before memory is touched, and strings and ranges are copied into caller scratch. */
#include <stdlib.h>
#include <string.h>

#include "hq_mpr.h"
#include "hq_util.h"
#include "journal_rec.h"
#include "rec_priv.h"

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

static int s_nodes(s_dec_t *d, hq_jrec_t *r)
{
    uint32_t n;
    if (hq_mpr_array(&d->r, &n) != HQ_MPR_OK)
        return s_fail(d, "workers", "an array");
    if (n < 2 || n > HQ_JMAX_NODES)
        return hq_err_set(d->err, "%s record: field 'workers' has %u nodes (2 to %u)", d->tname, n,
                          HQ_JMAX_NODES);
    if (n > hq_mpr_left(&d->r))
        return hq_err_set(d->err, "%s record: field 'workers' count %u exceeds bytes left (%zu)",
                          d->tname, n, hq_mpr_left(&d->r));
    uint32_t *g = s_scratch(d, (size_t)n * sizeof *g);
    if (!g)
        return hq_err_set(d->err, "%s record: out of scratch", d->tname);
    for (uint32_t k = 0; k < n; k++)
        if (s_u32(d, "workers", &g[k]) < 0)
            return -1;
    r->u.nodes.n = n;
    r->u.nodes.workers = g;
    return 0;
}

/* The automatic allocation records (types 22 to 25). */
static int s_dalloc(s_dec_t *d, hq_jrec_t *r)
{
    if (s_u32(d, "queue", &r->u.alloc.queue) < 0)
        return -1;
    switch (r->type) {
    case HQ_JR_ALLOC_QUEUE:
        if (s_str(d, "params", &r->u.alloc.text) < 0)
            return -1;
        if (!r->u.alloc.text)
            return hq_err_set(d->err, "%s record: field 'params' is nil", d->tname);
        return 0;
    case HQ_JR_ALLOC_QUEUE_STATE:
        if (s_u32(d, "state", &r->u.alloc.state) < 0)
            return -1;
        if (r->u.alloc.state > 2)
            return hq_err_set(d->err, "%s record: field 'state': %u out of range", d->tname,
                              r->u.alloc.state);
        return 0;
    case HQ_JR_ALLOC_QUEUED:
        if (s_str(d, "id", &r->u.alloc.id) < 0 || s_str(d, "workdir", &r->u.alloc.text) < 0 ||
            s_u32(d, "count", &r->u.alloc.count) < 0)
            return -1;
        if (!r->u.alloc.id || !r->u.alloc.text)
            return hq_err_set(d->err, "%s record: field 'id' or 'workdir' is nil", d->tname);
        return 0;
    default:
        if (s_str(d, "id", &r->u.alloc.id) < 0 || s_u32(d, "state", &r->u.alloc.state) < 0)
            return -1;
        if (!r->u.alloc.id || r->u.alloc.state > 3)
            return hq_err_set(d->err, "%s record: field 'id' is nil or 'state' %u is out of range",
                              d->tname, r->u.alloc.state);
        return 0;
    }
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
    case HQ_JR_TASK_STARTED_MN:
        if (s_u32(d, "job", &r->u.nodes.job) < 0 || s_u32(d, "task", &r->u.nodes.task) < 0 ||
            s_u32(d, "instance", &r->u.nodes.instance) < 0 ||
            s_u64(d, "epoch", &r->u.nodes.epoch) < 0 ||
            s_u32(d, "variant", &r->u.nodes.variant) < 0)
            return -1;
        return s_nodes(d, r);
    case HQ_JR_TASKS_STARTED:
    case HQ_JR_TASKS_STARTED_V:
    case HQ_JR_TASKS_FINISHED:
        if (s_u32(d, "job", &r->u.batch.job) < 0)
            return -1;
        if (r->type != HQ_JR_TASKS_FINISHED && (s_u32(d, "worker", &r->u.batch.worker) < 0 ||
                                                s_u64(d, "epoch", &r->u.batch.epoch) < 0))
            return -1;
        if (r->type == HQ_JR_TASKS_STARTED_V && s_u32(d, "variant", &r->u.batch.variant) < 0)
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
    case HQ_JR_WORKER_OVERVIEW:
        if (s_u32(d, "worker", &r->u.overview.worker) < 0 ||
            s_str(d, "hw_state", &r->u.overview.hw_state) < 0)
            return -1;
        if (!r->u.overview.hw_state)
            return hq_err_set(d->err, "%s record: field 'hw_state' is nil", d->tname);
        return 0;
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
    case HQ_JR_ALLOC_QUEUE:
    case HQ_JR_ALLOC_QUEUE_STATE:
    case HQ_JR_ALLOC_QUEUED:
    case HQ_JR_ALLOC_STATE:
        return s_dalloc(d, r);
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
    if (type == 0 || type > HQ_JR_TYPE_MAX || hq_jrec_nfields_[type] == 0)
        return hq_err_set(err, "unknown record type %llu (this hq knows 1..%d)",
                          (unsigned long long)type, HQ_JR_TYPE_MAX);
    out->type = (enum hq_jrec_type)type;
    d.tname = hq_jrec_name((uint32_t)type);
    if (n != hq_jrec_nfields_[type])
        return hq_err_set(err, "%s record: %u fields, expected %u", d.tname, n,
                          hq_jrec_nfields_[type]);
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
