/* The journal record encoder: record names and payload shapes, the hand-written
 * msgpack encoder (a record costs a few dozen bytes and must be cheap on the main
 * loop) and the frame around each payload (length + CRC32C); also what decoded records
 * own. The decoder is rec_decode.c, file headers and the scanner scan.c. */
#include "journal_rec.h"

#include <stdlib.h>
#include <string.h>

#include "hq_util.h"
#include "rec_priv.h"

/* ---- names and shapes ---- */

static const char *s_names[] = {
    [HQ_JR_SERVER_START] = "server-start",
    [HQ_JR_SERVER_STOP] = "server-stop",
    [HQ_JR_JOB_SUBMIT] = "job-submit",
    [HQ_JR_JOB_OPEN] = "job-open",
    [HQ_JR_JOB_CLOSE] = "job-close",
    [HQ_JR_JOB_CANCEL] = "job-cancel",
    [HQ_JR_JOB_FORGET] = "job-forget",
    [HQ_JR_TASK_STARTED] = "task-started",
    [HQ_JR_TASK_FINISHED] = "task-finished",
    [HQ_JR_TASK_FAILED] = "task-failed",
    [HQ_JR_TASKS_CANCELED] = "tasks-canceled",
    [HQ_JR_TASKS_ABORTED] = "tasks-aborted",
    [HQ_JR_WORKER_UP] = "worker-up",
    [HQ_JR_WORKER_LOST] = "worker-lost",
    [HQ_JR_ID_HIGHWATER] = "id-highwater",
    [HQ_JR_TASK_STATE] = "task-state",
    [HQ_JR_SNAP_END] = "snapshot-end",
    [HQ_JR_TASKS_STARTED] = "tasks-started",
    [HQ_JR_TASKS_FINISHED] = "tasks-finished",
    [HQ_JR_WORKER_OVERVIEW] = "worker-overview",
    [HQ_JR_TASKS_STARTED_V] = "tasks-started-v",
    [HQ_JR_TASK_STARTED_MN] = "task-started-mn",
    [HQ_JR_ALLOC_QUEUE] = "alloc-queue",
    [HQ_JR_ALLOC_QUEUE_STATE] = "alloc-queue-state",
    [HQ_JR_ALLOC_QUEUED] = "alloc-queued",
    [HQ_JR_ALLOC_STATE] = "alloc-state",
};

/* Elements of each payload array: type, lsn, wall_ns + the body fields. */
const uint8_t hq_jrec_nfields_[HQ_JR_TYPE_MAX + 1] = {
    [HQ_JR_SERVER_START] = 5,   [HQ_JR_SERVER_STOP] = 3,       [HQ_JR_JOB_SUBMIT] = 5,
    [HQ_JR_JOB_OPEN] = 6,       [HQ_JR_JOB_CLOSE] = 4,         [HQ_JR_JOB_CANCEL] = 5,
    [HQ_JR_JOB_FORGET] = 4,     [HQ_JR_TASK_STARTED] = 8,      [HQ_JR_TASK_FINISHED] = 6,
    [HQ_JR_TASK_FAILED] = 7,    [HQ_JR_TASKS_CANCELED] = 5,    [HQ_JR_TASKS_ABORTED] = 5,
    [HQ_JR_WORKER_UP] = 6,      [HQ_JR_WORKER_LOST] = 6,       [HQ_JR_ID_HIGHWATER] = 5,
    [HQ_JR_TASK_STATE] = 12,    [HQ_JR_SNAP_END] = 4,          [HQ_JR_TASKS_STARTED] = 7,
    [HQ_JR_TASKS_FINISHED] = 5, [HQ_JR_WORKER_OVERVIEW] = 5,   [HQ_JR_TASKS_STARTED_V] = 8,
    [HQ_JR_ALLOC_QUEUE] = 5,    [HQ_JR_ALLOC_QUEUE_STATE] = 5, [HQ_JR_ALLOC_QUEUED] = 7,
    [HQ_JR_ALLOC_STATE] = 6,    [HQ_JR_TASK_STARTED_MN] = 9,
};

const char *hq_jrec_name(uint32_t type)
{
    if (type == 0 || type > HQ_JR_TYPE_MAX || !s_names[type])
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

/* The automatic allocation records (types 22 to 25). */
static int s_alloc_body(s_out_t *o, const hq_jrec_t *r, hq_err_t *err)
{
    s_pu(o, r->u.alloc.queue);
    switch (r->type) {
    case HQ_JR_ALLOC_QUEUE:
        if (!r->u.alloc.text)
            return hq_err_set(err, "journal: alloc-queue without parameters");
        return s_pstr(o, r->u.alloc.text, "params", err);
    case HQ_JR_ALLOC_QUEUE_STATE:
        if (r->u.alloc.state > 2)
            return hq_err_set(err, "journal: queue state %u out of range", r->u.alloc.state);
        s_pu(o, r->u.alloc.state);
        return 0;
    case HQ_JR_ALLOC_QUEUED:
        if (!r->u.alloc.id || !r->u.alloc.text)
            return hq_err_set(err, "journal: alloc-queued without id or workdir");
        if (s_pstr(o, r->u.alloc.id, "id", err) < 0 ||
            s_pstr(o, r->u.alloc.text, "workdir", err) < 0)
            return -1;
        s_pu(o, r->u.alloc.count);
        return 0;
    default:
        if (!r->u.alloc.id || r->u.alloc.state > 3)
            return hq_err_set(err, "journal: alloc-state without id or with state %u",
                              r->u.alloc.state);
        if (s_pstr(o, r->u.alloc.id, "id", err) < 0)
            return -1;
        s_pu(o, r->u.alloc.state);
        return 0;
    }
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
    case HQ_JR_TASK_STARTED_MN: {
        uint32_t n = r->u.nodes.n;
        if (n < 2 || n > HQ_JMAX_NODES || !r->u.nodes.workers)
            return hq_err_set(err, "journal: %u nodes (2 to %u)", n, HQ_JMAX_NODES);
        s_pu(o, r->u.nodes.job);
        s_pu(o, r->u.nodes.task);
        s_pu(o, r->u.nodes.instance);
        s_pu(o, r->u.nodes.epoch);
        s_pu(o, r->u.nodes.variant);
        s_parr(o, n);
        for (uint32_t k = 0; k < n; k++)
            s_pu(o, r->u.nodes.workers[k]);
        return 0;
    }
    case HQ_JR_TASKS_STARTED:
    case HQ_JR_TASKS_STARTED_V:
    case HQ_JR_TASKS_FINISHED: {
        uint32_t n = r->u.batch.n;
        if (n == 0 || n > HQ_JMAX_INSTS || !r->u.batch.insts)
            return hq_err_set(err, "journal: %u task instances (1 to %u)", n, HQ_JMAX_INSTS);
        s_pu(o, r->u.batch.job);
        if (r->type != HQ_JR_TASKS_FINISHED) {
            s_pu(o, r->u.batch.worker);
            s_pu(o, r->u.batch.epoch);
        }
        if (r->type == HQ_JR_TASKS_STARTED_V)
            s_pu(o, r->u.batch.variant);
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
    case HQ_JR_WORKER_OVERVIEW:
        if (!r->u.overview.hw_state)
            return hq_err_set(err, "journal: worker-overview without hw-state");
        s_pu(o, r->u.overview.worker);
        return s_pstr(o, r->u.overview.hw_state, "hw_state", err);
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
    case HQ_JR_ALLOC_QUEUE:
    case HQ_JR_ALLOC_QUEUE_STATE:
    case HQ_JR_ALLOC_QUEUED:
    case HQ_JR_ALLOC_STATE:
        return s_alloc_body(o, r, err);
    }
    return hq_err_set(err, "journal: unknown record type %u", (unsigned)r->type);
}

int hq_jrec_frame(const hq_jrec_t *rec, uint8_t **buf, size_t *len, size_t *cap, hq_err_t *err)
{
    if ((uint32_t)rec->type == 0 || (uint32_t)rec->type > HQ_JR_TYPE_MAX ||
        hq_jrec_nfields_[rec->type] == 0)
        return hq_err_set(err, "journal: unknown record type %u", (unsigned)rec->type);
    size_t start = *len;
    s_out_t o = {buf, len, cap};
    s_room(&o, HQ_JFRAME_SIZE);
    s_parr(&o, hq_jrec_nfields_[rec->type]);
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
