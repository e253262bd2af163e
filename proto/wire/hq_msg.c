/* The wire codec's encoder and the pieces both directions share: the 40-byte header,
 * type names and bodies, limits and cross-field checks. Encoding uses msgpack-c's
 * packer and refuses anything the decoder (hq_msg_dec.c) would reject. */
#include "hq_msg.h"

#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_msg_priv.h"
#include "hq_util.h"

/* ---- types ---- */

const char *hq_msg_type_name(uint8_t type)
{
    switch (type) {
    case HQ_MSG_SERVER_INFO:
        return "SERVER_INFO";
    case HQ_MSG_SERVER_STOP:
        return "SERVER_STOP";
    case HQ_MSG_SUBMIT:
        return "SUBMIT";
    case HQ_MSG_JOB_LIST:
        return "JOB_LIST";
    case HQ_MSG_JOB_INFO:
        return "JOB_INFO";
    case HQ_MSG_JOB_CANCEL:
        return "JOB_CANCEL";
    case HQ_MSG_JOB_FORGET:
        return "JOB_FORGET";
    case HQ_MSG_JOB_WAIT:
        return "JOB_WAIT";
    case HQ_MSG_JOB_OPEN:
        return "JOB_OPEN";
    case HQ_MSG_JOB_CLOSE:
        return "JOB_CLOSE";
    case HQ_MSG_TASK_LIST:
        return "TASK_LIST";
    case HQ_MSG_TASK_INFO:
        return "TASK_INFO";
    case HQ_MSG_WORKER_LIST:
        return "WORKER_LIST";
    case HQ_MSG_WORKER_INFO:
        return "WORKER_INFO";
    case HQ_MSG_WORKER_STOP:
        return "WORKER_STOP";
    case HQ_MSG_JOB_SUMMARY:
        return "JOB_SUMMARY";
    case HQ_MSG_TASK_IDS:
        return "TASK_IDS";
    case HQ_MSG_TASK_EXPLAIN:
        return "TASK_EXPLAIN";
    case HQ_MSG_JOURNAL_READ:
        return "JOURNAL_READ";
    case HQ_MSG_JOURNAL_FLUSH:
        return "JOURNAL_FLUSH";
    case HQ_MSG_JOURNAL_PRUNE:
        return "JOURNAL_PRUNE";
    case HQ_MSG_TASK_NOTIFY:
        return "TASK_NOTIFY";
    case HQ_MSG_DEBUG_DUMP:
        return "DEBUG_DUMP";
    case HQ_MSG_ALLOC_ADD:
        return "ALLOC_ADD";
    case HQ_MSG_ALLOC_LIST:
        return "ALLOC_LIST";
    case HQ_MSG_ALLOC_INFO:
        return "ALLOC_INFO";
    case HQ_MSG_ALLOC_CTL:
        return "ALLOC_CTL";
    case HQ_MSG_ALLOC_LOG:
        return "ALLOC_LOG";
    case HQ_MSG_REPLY:
        return "REPLY";
    case HQ_MSG_ERROR:
        return "ERROR";
    case HQ_MSG_REGISTER:
        return "REGISTER";
    case HQ_MSG_RESULTS:
        return "RESULTS";
    case HQ_MSG_HEARTBEAT:
        return "HEARTBEAT";
    case HQ_MSG_GOODBYE:
        return "GOODBYE";
    case HQ_MSG_OVERVIEW:
        return "OVERVIEW";
    case HQ_MSG_REGISTERED:
        return "REGISTERED";
    case HQ_MSG_ASSIGN:
        return "ASSIGN";
    case HQ_MSG_CANCEL:
        return "CANCEL";
    case HQ_MSG_STOP:
        return "STOP";
    case HQ_MSG_RETRACT:
        return "RETRACT";
    case HQ_MSG_NODE_OF:
        return "NODE_OF";
    default:
        return "UNKNOWN";
    }
}

bool hq_msg_is_client_request(uint8_t type)
{
    return type >= 1 && type <= 39;
}

bool hq_msg_is_worker_message(uint8_t type)
{
    return type >= 60 && type <= 79;
}

hq_msg_t hq_msg_error(uint64_t request_id, uint32_t code, const char *text)
{
    hq_msg_t m = {0};
    m.hdr.version = HQ_PROTO_VERSION;
    m.hdr.type = HQ_MSG_ERROR;
    m.hdr.request_id = request_id;
    m.u.error.code = code;
    m.u.error.message = (char *)text;
    return m;
}

enum hq_msg_body hq_msgp_body(uint8_t type)
{
    switch (type) {
    case HQ_MSG_SERVER_INFO:
    case HQ_MSG_SERVER_STOP:
    case HQ_MSG_JOB_SUMMARY:
    case HQ_MSG_HEARTBEAT:
    case HQ_MSG_JOURNAL_FLUSH:
    case HQ_MSG_JOURNAL_PRUNE:
    case HQ_MSG_DEBUG_DUMP:
        return HQ_BODY_NONE;
    case HQ_MSG_SUBMIT:
        return HQ_BODY_SUBMIT;
    case HQ_MSG_JOB_LIST:
    case HQ_MSG_JOB_INFO:
    case HQ_MSG_JOB_CANCEL:
    case HQ_MSG_JOB_FORGET:
    case HQ_MSG_JOB_WAIT:
    case HQ_MSG_JOB_OPEN:
    case HQ_MSG_JOB_CLOSE:
    case HQ_MSG_TASK_LIST:
    case HQ_MSG_TASK_INFO:
    case HQ_MSG_WORKER_LIST:
    case HQ_MSG_WORKER_INFO:
    case HQ_MSG_WORKER_STOP:
    case HQ_MSG_TASK_IDS:
    case HQ_MSG_TASK_EXPLAIN:
    case HQ_MSG_JOURNAL_READ:
    case HQ_MSG_TASK_NOTIFY:
    case HQ_MSG_ALLOC_ADD:
    case HQ_MSG_ALLOC_LIST:
    case HQ_MSG_ALLOC_INFO:
    case HQ_MSG_ALLOC_CTL:
    case HQ_MSG_ALLOC_LOG:
        return HQ_BODY_QUERY;
    case HQ_MSG_REPLY:
        return HQ_BODY_REPLY;
    case HQ_MSG_ERROR:
        return HQ_BODY_ERROR;
    case HQ_MSG_REGISTER:
        return HQ_BODY_REGISTER;
    case HQ_MSG_RESULTS:
        return HQ_BODY_RESULTS;
    case HQ_MSG_GOODBYE:
    case HQ_MSG_STOP:
        return HQ_BODY_GOODBYE;
    case HQ_MSG_OVERVIEW:
        return HQ_BODY_OVERVIEW;
    case HQ_MSG_REGISTERED:
        return HQ_BODY_REGISTERED;
    case HQ_MSG_ASSIGN:
        return HQ_BODY_ASSIGN;
    case HQ_MSG_CANCEL:
    case HQ_MSG_RETRACT:
    case HQ_MSG_NODE_OF:
        return HQ_BODY_CANCEL;
    default:
        return HQ_BODY_INVALID;
    }
}

uint64_t hq_msgp_max_frame(uint8_t type)
{
    return type >= 60 ? (uint64_t)HQ_WORKER_MAXMSG : (uint64_t)HQ_CLIENT_MAXMSG;
}

/* ---- header ---- */

static void s_put_be(uint8_t *p, uint64_t v, int n)
{
    for (int k = n - 1; k >= 0; k--) {
        p[k] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

static uint64_t s_get_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int k = 0; k < n; k++)
        v = (v << 8) | p[k];
    return v;
}

int hq_header_decode(const uint8_t *buf, size_t len, hq_header_t *hdr, hq_err_t *err)
{
    if (!buf || len < HQ_HEADER_SIZE)
        return hq_err_set(err, "frame of %zu bytes is shorter than the %d-byte header", len,
                          HQ_HEADER_SIZE);
    if (buf[0] != 'H' || buf[1] != 'Q')
        return hq_err_set(err, "bad magic 0x%02x%02x (expected \"HQ\")", buf[0], buf[1]);
    if (s_get_be(buf + 36, 4) != 0)
        return hq_err_set(err, "reserved header field is 0x%08llx (must be 0)",
                          (unsigned long long)s_get_be(buf + 36, 4));
    hdr->version = buf[2];
    hdr->type = buf[3];
    hdr->request_id = s_get_be(buf + 4, 8);
    hdr->epoch = s_get_be(buf + 12, 8);
    hdr->seq = s_get_be(buf + 20, 8);
    hdr->ack = s_get_be(buf + 28, 8);
    return 0;
}

/* ---- shared checks ---- */

int hq_msgp_check_range(const hq_range_t *r, const char *tname, hq_err_t *err)
{
    if (r->step < 1)
        return hq_err_set(err, "%s: field 'ranges' step 0 in range %u-%u", tname, r->start, r->end);
    if (r->start > r->end)
        return hq_err_set(err, "%s: field 'ranges' start %u is after end %u", tname, r->start,
                          r->end);
    return 0;
}

int hq_msgp_check_wres(const hq_wres_t *w, const char *tname, hq_err_t *err)
{
    switch (w->kind) {
    case HQ_RES_LIST:
        if (w->n_groups != 1)
            return hq_err_set(err,
                              "%s: field 'groups' of list resource '%s' has %u groups (need 1)",
                              tname, w->name, w->n_groups);
        break;
    case HQ_RES_GROUPS:
        if (w->n_groups < 1)
            return hq_err_set(err, "%s: field 'groups' of resource '%s' is empty", tname, w->name);
        break;
    case HQ_RES_RANGE:
    case HQ_RES_SUM:
        if (w->n_groups != 0)
            return hq_err_set(err, "%s: field 'groups' of resource '%s' must be empty for its kind",
                              tname, w->name);
        break;
    default:
        return hq_err_set(err, "%s: field 'kind' value %u out of range (0..3)", tname,
                          (unsigned)w->kind);
    }
    if (w->kind == HQ_RES_RANGE && w->range_start > w->range_end)
        return hq_err_set(err, "%s: field 'range_start' of resource '%s' is after range_end", tname,
                          w->name);
    hq_err_t why;
    if (hq_wres_check_size(w, w->name, &why) != 0)
        return hq_err_set(err, "%s: %s", tname, why.text);
    if (w->sum_size < 0)
        return hq_err_set(err, "%s: field 'sum_size' of resource '%s' is negative", tname, w->name);
    return 0;
}

int hq_msgp_check_coupling(const hq_worker_conf_t *c, const hq_coupling_t *w, const char *tname,
                           hq_err_t *err)
{
    if (w->resource1_idx >= c->resources.n || w->resource2_idx >= c->resources.n)
        return hq_err_set(err, "%s: field 'coupling' resource index %u/%u out of range (0..%u)",
                          tname, w->resource1_idx, w->resource2_idx, c->resources.n);
    if (w->resource1_idx == w->resource2_idx)
        return hq_err_set(err, "%s: field 'coupling' couples resource %u with itself", tname,
                          w->resource1_idx);
    if (w->group1_idx >= hq_wres_coupling_groups(&c->resources.res[w->resource1_idx]) ||
        w->group2_idx >= hq_wres_coupling_groups(&c->resources.res[w->resource2_idx]))
        return hq_err_set(err, "%s: field 'coupling' group index %u/%u out of range", tname,
                          w->group1_idx, w->group2_idx);
    if (w->weight > HQ_COUPLING_MAX_WEIGHT)
        return hq_err_set(err, "%s: field 'coupling' weight %u out of range (0..%u)", tname,
                          w->weight, HQ_COUPLING_MAX_WEIGHT);
    return 0;
}

int hq_msgp_check_utilization(double u, const char *tname, hq_err_t *err)
{
    if (!isfinite(u) || u < 0.0 || u > 1.0)
        return hq_err_set(err, "%s: field 'min_utilization' value %g out of range (0..1)", tname,
                          u);
    return 0;
}

/* ---- encoder ---- */

typedef struct s_enc {
    msgpack_packer pk; /* writes into data */
    uint8_t *data;     /* the frame, grown with hq_realloc */
    size_t len;        /* bytes written */
    size_t cap;        /* bytes allocated */
    const char *tname; /* message type name for errors */
    hq_err_t *err;     /* where refusals go */
} s_enc_t;

#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((x) < 0)                                                                               \
            return -1;                                                                             \
    } while (0)

/* msgpack-c write callback: never fails (hq_realloc aborts on OOM). */
static int s_write(void *ctx, const char *buf, size_t n)
{
    s_enc_t *e = ctx;
    if (n > e->cap - e->len) {
        size_t cap = e->cap ? e->cap : 256;
        while (n > cap - e->len)
            cap *= 2;
        e->data = hq_realloc(e->data, cap);
        e->cap = cap;
    }
    memcpy(e->data + e->len, buf, n);
    e->len += n;
    return 0;
}

static int s_efail(s_enc_t *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int s_efail(s_enc_t *e, const char *field, const char *fmt, ...)
{
    char what[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return hq_err_set(e->err, "%s: field '%s' %s", e->tname, field, what);
}

static int s_fields(s_enc_t *e, uint32_t n)
{
    msgpack_pack_array(&e->pk, n);
    return 0;
}

static int s_count(s_enc_t *e, const char *field, uint32_t n, const void *arr, uint32_t min,
                   uint32_t max)
{
    if (n < min)
        return s_efail(e, field, "count %u is below the minimum %u", n, min);
    if (n > max)
        return s_efail(e, field, "count %u exceeds limit %u", n, max);
    if (n > 0 && !arr)
        return s_efail(e, field, "is NULL with count %u", n);
    msgpack_pack_array(&e->pk, n);
    return 0;
}

static int s_enum(s_enc_t *e, const char *field, uint32_t v, uint32_t max)
{
    if (v > max)
        return s_efail(e, field, "value %u out of range (0..%u)", v, max);
    msgpack_pack_uint32(&e->pk, v);
    return 0;
}

static int s_str(s_enc_t *e, const char *field, const char *s, size_t cap, bool nullable)
{
    if (!s) {
        if (!nullable)
            return s_efail(e, field, "is NULL (not nullable)");
        msgpack_pack_nil(&e->pk);
        return 0;
    }
    size_t n = strlen(s);
    if (n > cap)
        return s_efail(e, field, "length %zu exceeds limit %zu", n, cap);
    msgpack_pack_str(&e->pk, n);
    msgpack_pack_str_body(&e->pk, s, n);
    return 0;
}

static int s_bin(s_enc_t *e, const char *field, const hq_bytes_t *b, size_t cap)
{
    if (b->len > cap)
        return s_efail(e, field, "length %u exceeds limit %zu", b->len, cap);
    if (b->len > 0 && !b->data)
        return s_efail(e, field, "is NULL with length %u", b->len);
    msgpack_pack_bin(&e->pk, b->len);
    if (b->len)
        msgpack_pack_bin_body(&e->pk, b->data, b->len);
    return 0;
}

static void s_bool(s_enc_t *e, bool v)
{
    if (v)
        msgpack_pack_true(&e->pk);
    else
        msgpack_pack_false(&e->pk);
}

static int s_rangelist(s_enc_t *e, const char *field, const hq_rangelist_t *rl)
{
    TRY(s_count(e, field, rl->n, rl->ranges, 0, HQ_MSG_MAX_ITEMS));
    for (uint32_t k = 0; k < rl->n; k++) {
        const hq_range_t *r = &rl->ranges[k];
        TRY(hq_msgp_check_range(r, e->tname, e->err));
        s_fields(e, HQ_NF_RANGE);
        msgpack_pack_uint32(&e->pk, r->start);
        msgpack_pack_uint32(&e->pk, r->end);
        msgpack_pack_uint32(&e->pk, r->step);
    }
    return 0;
}

static int s_stdio(s_enc_t *e, const char *field, const hq_stdio_t *s)
{
    s_fields(e, HQ_NF_STDIO);
    TRY(s_enum(e, field, (uint32_t)s->kind, HQ_STDIO_STREAM));
    if (s->kind == HQ_STDIO_FILE && !s->path)
        return s_efail(e, field, "has kind FILE but no path");
    TRY(s_str(e, "path", s->path, HQ_MAX_STR, true));
    s_bool(e, s->rm_if_finished);
    return 0;
}

static int s_rvariant(s_enc_t *e, const hq_rvariant_t *v)
{
    s_fields(e, HQ_NF_RVARIANT);
    msgpack_pack_uint32(&e->pk, v->n_nodes);
    msgpack_pack_uint64(&e->pk, v->min_time_ns);
    msgpack_pack_uint32(&e->pk, v->weight);
    TRY(s_count(e, "requests", v->n_entries, v->entries, 0, HQ_MSG_MAX_LIST));
    for (uint32_t k = 0; k < v->n_entries; k++) {
        const hq_rreq_t *q = &v->entries[k];
        s_fields(e, HQ_NF_RREQ);
        TRY(s_str(e, "request name", q->name, HQ_MAX_STR, false));
        s_bool(e, q->all);
        if (q->amount < 0)
            return s_efail(e, "amount", "value %lld is negative", (long long)q->amount);
        msgpack_pack_int64(&e->pk, q->amount);
        TRY(s_enum(e, "policy", (uint32_t)q->policy, HQ_POLICY_SCATTER));
    }
    return 0;
}

static int s_task_def(s_enc_t *e, const hq_task_def_t *d)
{
    s_fields(e, HQ_NF_TASK_DEF);
    TRY(s_count(e, "args", d->n_args, d->args, 1, HQ_MSG_MAX_LIST));
    for (uint32_t k = 0; k < d->n_args; k++)
        TRY(s_str(e, "args", d->args[k], HQ_MAX_STR, false));
    TRY(s_count(e, "env", d->n_env, d->env, 0, HQ_MSG_MAX_LIST));
    for (uint32_t k = 0; k < d->n_env; k++) {
        s_fields(e, HQ_NF_KV);
        TRY(s_str(e, "env key", d->env[k].key, HQ_MAX_STR, false));
        TRY(s_str(e, "env value", d->env[k].value, HQ_MAX_STR, false));
    }
    TRY(s_str(e, "cwd", d->cwd, HQ_MAX_STR, false));
    TRY(s_stdio(e, "stdout", &d->out));
    TRY(s_stdio(e, "stderr", &d->err));
    TRY(s_bin(e, "stdin", &d->stdin_data, HQ_MAX_ENTRY));
    TRY(s_count(e, "variants", d->n_variants, d->variants, 1, HQ_MSG_MAX_LIST));
    for (uint32_t k = 0; k < d->n_variants; k++)
        TRY(s_rvariant(e, &d->variants[k]));
    msgpack_pack_uint64(&e->pk, d->time_limit_ns);
    msgpack_pack_int32(&e->pk, d->priority);
    TRY(s_enum(e, "crash_kind", (uint32_t)d->crash_kind, HQ_CRASH_UNLIMITED));
    msgpack_pack_uint32(&e->pk, d->crash_limit);
    TRY(s_enum(e, "pin", (uint32_t)d->pin, HQ_PIN_OMP));
    s_bool(e, d->task_dir);
    return 0;
}

static int s_submit(s_enc_t *e, const hq_submit_t *s)
{
    /* Keyless submits keep the 10-field form, byte for byte what older senders wrote. */
    s_fields(e, s->has_key ? HQ_NF_SUBMIT : HQ_NF_SUBMIT_V0);
    msgpack_pack_uint32(&e->pk, s->job_id);
    TRY(s_str(e, "name", s->name, HQ_MAX_STR, true));
    s_bool(e, s->has_max_fails);
    msgpack_pack_uint32(&e->pk, s->max_fails);
    TRY(s_str(e, "submit_dir", s->submit_dir, HQ_MAX_STR, false));
    TRY(s_str(e, "stream_dir", s->stream_dir, HQ_MAX_STR, true));
    TRY(s_count(e, "defs", s->n_defs, s->defs, 1, HQ_MSG_MAX_ITEMS));
    for (uint32_t k = 0; k < s->n_defs; k++)
        TRY(s_task_def(e, &s->defs[k]));
    TRY(s_rangelist(e, "ids", &s->ids));
    TRY(s_count(e, "entries", s->n_entries, s->entries, 0, HQ_MSG_MAX_ITEMS));
    for (uint32_t k = 0; k < s->n_entries; k++)
        TRY(s_bin(e, "entries", &s->entries[k], HQ_MAX_ENTRY));
    TRY(s_count(e, "graph", s->n_graph, s->graph, 0, HQ_MSG_MAX_ITEMS));
    for (uint32_t k = 0; k < s->n_graph; k++) {
        const hq_graph_task_t *g = &s->graph[k];
        if (g->def_idx >= s->n_defs)
            return s_efail(e, "def_idx", "value %u is not below n_defs %u", g->def_idx, s->n_defs);
        s_fields(e, HQ_NF_GRAPH_TASK);
        msgpack_pack_uint32(&e->pk, g->id);
        msgpack_pack_uint32(&e->pk, g->def_idx);
        TRY(s_count(e, "deps", g->n_deps, g->deps, 0, HQ_MSG_MAX_ITEMS));
        for (uint32_t j = 0; j < g->n_deps; j++)
            msgpack_pack_uint32(&e->pk, g->deps[j]);
    }
    if (s->has_key) {
        msgpack_pack_bin(&e->pk, HQ_SUBMIT_KEY_LEN);
        msgpack_pack_bin_body(&e->pk, s->key, HQ_SUBMIT_KEY_LEN);
    }
    return 0;
}

static int s_query(s_enc_t *e, const hq_query_t *q)
{
    s_fields(e, HQ_NF_QUERY);
    s_fields(e, HQ_NF_SELECTOR);
    TRY(s_enum(e, "selector kind", (uint32_t)q->sel.kind, HQ_SEL_ALL));
    TRY(s_rangelist(e, "selector ids", &q->sel.ids));
    TRY(s_rangelist(e, "tasks", &q->tasks));
    if (q->states > 0x7f)
        return s_efail(e, "states", "mask 0x%x has unknown bits", q->states);
    msgpack_pack_uint32(&e->pk, q->states);
    s_bool(e, q->flag);
    TRY(s_str(e, "text", q->text, HQ_MAX_STR, true));
    msgpack_pack_uint64(&e->pk, q->number);
    return 0;
}

static int s_reply(s_enc_t *e, const hq_reply_t *r)
{
    s_fields(e, HQ_NF_REPLY);
    msgpack_pack_uint64(&e->pk, r->id);
    TRY(s_str(e, "json", r->json, HQ_MSG_MAX_JSON, true));
    TRY(s_count(e, "log", r->n_log, r->log, 0, HQ_MSG_MAX_LIST));
    for (uint32_t k = 0; k < r->n_log; k++)
        TRY(s_str(e, "log", r->log[k], HQ_MAX_STR, false));
    return 0;
}

static int s_error(s_enc_t *e, const hq_error_msg_t *m)
{
    s_fields(e, HQ_NF_ERROR);
    if (m->code < HQ_ERR_BAD_REQUEST || m->code > HQ_ERR_VERSION)
        return s_efail(e, "code", "value %u out of range (1..6)", m->code);
    msgpack_pack_uint32(&e->pk, m->code);
    TRY(s_str(e, "message", m->message, HQ_MAX_STR, false));
    return 0;
}

static int s_wres(s_enc_t *e, const hq_wres_t *w)
{
    s_fields(e, HQ_NF_WRES);
    TRY(s_str(e, "resource name", w->name, HQ_MAX_STR, false));
    TRY(hq_msgp_check_wres(w, e->tname, e->err));
    msgpack_pack_uint32(&e->pk, (uint32_t)w->kind);
    TRY(s_count(e, "groups", w->n_groups, w->groups, 0, HQ_MSG_MAX_LIST));
    for (uint32_t g = 0; g < w->n_groups; g++) {
        const hq_label_group_t *grp = &w->groups[g];
        TRY(s_count(e, "labels", grp->n, grp->labels, 0, HQ_MSG_MAX_LIST));
        for (uint32_t k = 0; k < grp->n; k++)
            TRY(s_str(e, "labels", grp->labels[k], HQ_MAX_STR, false));
    }
    msgpack_pack_uint64(&e->pk, w->range_start);
    msgpack_pack_uint64(&e->pk, w->range_end);
    msgpack_pack_int64(&e->pk, w->sum_size);
    return 0;
}

/* A session secret: bin of HQ_SESSION_SECRET_LEN bytes, or an empty bin for none. */
static void s_secret(s_enc_t *e, bool has, const uint8_t *secret)
{
    msgpack_pack_bin(&e->pk, has ? HQ_SESSION_SECRET_LEN : 0);
    if (has)
        msgpack_pack_bin_body(&e->pk, secret, HQ_SESSION_SECRET_LEN);
}

static int s_register(s_enc_t *e, const hq_register_t *r)
{
    const hq_worker_conf_t *c = &r->conf;
    s_fields(e, HQ_NF_REGISTER);
    s_fields(e, HQ_NF_CONF);
    TRY(s_str(e, "hostname", c->hostname, HQ_MAX_STR, false));
    TRY(s_str(e, "group", c->group, HQ_MAX_STR, false));
    TRY(s_str(e, "work_dir", c->work_dir, HQ_MAX_STR, false));
    TRY(s_str(e, "listen_address", c->listen_address, HQ_MAX_STR, false));
    msgpack_pack_uint64(&e->pk, c->heartbeat_ns);
    msgpack_pack_uint64(&e->pk, c->idle_timeout_ns);
    msgpack_pack_uint64(&e->pk, c->time_limit_ns);
    msgpack_pack_uint64(&e->pk, c->overview_ns);
    TRY(hq_msgp_check_utilization(c->min_utilization, e->tname, e->err));
    msgpack_pack_double(&e->pk, c->min_utilization);
    TRY(s_enum(e, "on_server_lost", (uint32_t)c->on_server_lost, HQ_LOST_FINISH_RUNNING));
    TRY(s_enum(e, "manager", (uint32_t)c->manager, HQ_MANAGER_PBS));
    TRY(s_str(e, "manager_job_id", c->manager_job_id, HQ_MAX_STR, false));
    msgpack_pack_uint32(&e->pk, c->pid);
    msgpack_pack_uint64(&e->pk, c->started_ns);
    TRY(s_count(e, "resources", c->resources.n, c->resources.res, 0, HQ_MSG_MAX_LIST));
    for (uint32_t k = 0; k < c->resources.n; k++)
        TRY(s_wres(e, &c->resources.res[k]));
    TRY(s_str(e, "version", c->version, HQ_MAX_STR, false));
    TRY(s_count(e, "coupling", c->n_coupling, c->coupling, 0, HQ_MSG_MAX_LIST));
    for (uint32_t k = 0; k < c->n_coupling; k++) {
        const hq_coupling_t *w = &c->coupling[k];
        TRY(hq_msgp_check_coupling(c, w, e->tname, e->err));
        s_fields(e, HQ_NF_COUPLING);
        msgpack_pack_uint32(&e->pk, w->resource1_idx);
        msgpack_pack_uint32(&e->pk, w->group1_idx);
        msgpack_pack_uint32(&e->pk, w->resource2_idx);
        msgpack_pack_uint32(&e->pk, w->group2_idx);
        msgpack_pack_uint32(&e->pk, w->weight);
    }
    msgpack_pack_uint32(&e->pk, r->prefetch);
    msgpack_pack_uint32(&e->pk, r->n_running);
    msgpack_pack_uint32(&e->pk, r->old_worker_id);
    TRY(s_count(e, "reports", r->n_reports, r->reports, 0, HQ_MSG_MAX_ITEMS));
    for (uint32_t k = 0; k < r->n_reports; k++) {
        s_fields(e, HQ_NF_TASK_REF);
        msgpack_pack_uint32(&e->pk, r->reports[k].job_id);
        msgpack_pack_uint32(&e->pk, r->reports[k].task_id);
        msgpack_pack_uint32(&e->pk, r->reports[k].instance);
    }
    s_secret(e, r->has_secret, r->secret);
    return 0;
}

static int s_registered(s_enc_t *e, const hq_registered_t *r)
{
    s_fields(e, HQ_NF_REGISTERED);
    msgpack_pack_uint32(&e->pk, r->worker_id);
    TRY(s_str(e, "server_uid", r->server_uid, HQ_MAX_STR, false));
    msgpack_pack_uint64(&e->pk, r->heartbeat_ns);
    msgpack_pack_uint64(&e->pk, r->idle_timeout_ns);
    s_secret(e, r->has_secret, r->secret);
    return 0;
}

static int s_assign(s_enc_t *e, const hq_assign_t *a)
{
    s_fields(e, HQ_NF_ASSIGN);
    TRY(s_count(e, "defs", a->n_defs, a->defs, 0, HQ_MSG_MAX_ITEMS));
    for (uint32_t k = 0; k < a->n_defs; k++) {
        const hq_assign_def_t *d = &a->defs[k];
        s_fields(e, HQ_NF_ASSIGN_DEF);
        msgpack_pack_uint32(&e->pk, d->job_id);
        msgpack_pack_uint32(&e->pk, d->def_id);
        TRY(s_str(e, "submit_dir", d->submit_dir, HQ_MAX_STR, false));
        TRY(s_str(e, "stream_dir", d->stream_dir, HQ_MAX_STR, true));
        TRY(s_task_def(e, &d->def));
    }
    TRY(s_count(e, "tasks", a->n_tasks, a->tasks, 0, HQ_MSG_MAX_ITEMS));
    for (uint32_t k = 0; k < a->n_tasks; k++) {
        const hq_assign_task_t *t = &a->tasks[k];
        if (t->def_idx >= a->n_defs)
            return s_efail(e, "def_idx", "value %u is not below n_defs %u", t->def_idx, a->n_defs);
        if (t->variant >= a->defs[t->def_idx].def.n_variants)
            return s_efail(e, "variant", "value %u is not below the definition's %u variants",
                           t->variant, a->defs[t->def_idx].def.n_variants);
        s_fields(e, HQ_NF_ASSIGN_TASK);
        msgpack_pack_uint32(&e->pk, t->job_id);
        msgpack_pack_uint32(&e->pk, t->task_id);
        msgpack_pack_uint32(&e->pk, t->instance);
        msgpack_pack_uint32(&e->pk, t->def_idx);
        s_bool(e, t->has_entry);
        TRY(s_bin(e, "entry", &t->entry, HQ_MAX_ENTRY));
        msgpack_pack_uint32(&e->pk, t->variant);
        TRY(s_count(e, "nodes", t->n_nodes, t->nodes, 0, HQ_MSG_MAX_LIST));
        for (uint32_t j = 0; j < t->n_nodes; j++)
            TRY(s_str(e, "nodes", t->nodes[j], HQ_MAX_STR, false));
    }
    return 0;
}

static int s_results(s_enc_t *e, const hq_results_t *r)
{
    s_fields(e, HQ_NF_RESULTS);
    msgpack_pack_uint32(&e->pk, r->credit);
    TRY(s_count(e, "events", r->n_events, r->events, 0, HQ_MSG_MAX_ITEMS));
    for (uint32_t k = 0; k < r->n_events; k++) {
        const hq_task_event_t *v = &r->events[k];
        s_fields(e, HQ_NF_EVENT);
        msgpack_pack_uint32(&e->pk, v->job_id);
        msgpack_pack_uint32(&e->pk, v->task_id);
        msgpack_pack_uint32(&e->pk, v->instance);
        TRY(s_enum(e, "kind", v->kind, HQ_TEV_REJECTED));
        msgpack_pack_uint64(&e->pk, v->time_ns);
        TRY(s_str(e, "error", v->error, HQ_MAX_STR, true));
        TRY(s_count(e, "allocs", v->n_allocs, v->allocs, 0, HQ_MSG_MAX_LIST));
        for (uint32_t j = 0; j < v->n_allocs; j++) {
            const hq_ralloc_t *a = &v->allocs[j];
            s_fields(e, HQ_NF_RALLOC);
            TRY(s_str(e, "alloc name", a->name, HQ_MAX_STR, false));
            if (a->amount < 0)
                return s_efail(e, "alloc amount", "value %lld is negative", (long long)a->amount);
            msgpack_pack_int64(&e->pk, a->amount);
            TRY(s_count(e, "alloc labels", a->n_labels, a->labels, 0, HQ_MSG_MAX_LIST));
            for (uint32_t l = 0; l < a->n_labels; l++)
                TRY(s_str(e, "alloc labels", a->labels[l], HQ_MAX_STR, false));
        }
    }
    return 0;
}

static int s_cancel(s_enc_t *e, const hq_cancel_t *c)
{
    s_fields(e, HQ_NF_CANCEL);
    TRY(s_count(e, "tasks", c->n_tasks, c->tasks, 0, HQ_MSG_MAX_ITEMS));
    for (uint32_t k = 0; k < c->n_tasks; k++) {
        s_fields(e, HQ_NF_TASK_REF);
        msgpack_pack_uint32(&e->pk, c->tasks[k].job_id);
        msgpack_pack_uint32(&e->pk, c->tasks[k].task_id);
        msgpack_pack_uint32(&e->pk, c->tasks[k].instance);
    }
    return 0;
}

static int s_body(s_enc_t *e, const hq_msg_t *m)
{
    switch (hq_msgp_body(m->hdr.type)) {
    case HQ_BODY_NONE:
        return 0;
    case HQ_BODY_SUBMIT:
        return s_submit(e, &m->u.submit);
    case HQ_BODY_QUERY:
        return s_query(e, &m->u.query);
    case HQ_BODY_REPLY:
        return s_reply(e, &m->u.reply);
    case HQ_BODY_ERROR:
        return s_error(e, &m->u.error);
    case HQ_BODY_REGISTER:
        return s_register(e, &m->u.reg);
    case HQ_BODY_REGISTERED:
        return s_registered(e, &m->u.registered);
    case HQ_BODY_RESULTS:
        return s_results(e, &m->u.results);
    case HQ_BODY_ASSIGN:
        return s_assign(e, &m->u.assign);
    case HQ_BODY_CANCEL:
        return s_cancel(e, &m->u.cancel);
    case HQ_BODY_GOODBYE:
        s_fields(e, HQ_NF_GOODBYE);
        return s_enum(e, "reason", m->u.goodbye.reason, HQ_BYE_SERVER_STOP);
    case HQ_BODY_OVERVIEW:
        s_fields(e, HQ_NF_OVERVIEW);
        return s_str(e, "hw_state", m->u.overview.hw_state, HQ_MAX_STR, false);
    case HQ_BODY_INVALID:
    default:
        return hq_err_set(e->err, "cannot encode unknown message type %u", m->hdr.type);
    }
}

int hq_msg_encode(const hq_msg_t *msg, uint8_t **buf, size_t *len, hq_err_t *err)
{
    if (!msg || !buf || !len)
        return hq_err_set(err, "hq_msg_encode: NULL argument");
    s_enc_t e = {.tname = hq_msg_type_name(msg->hdr.type), .err = err};
    msgpack_packer_init(&e.pk, &e, s_write);

    uint8_t hdr[HQ_HEADER_SIZE];
    hdr[0] = 'H';
    hdr[1] = 'Q';
    hdr[2] = HQ_PROTO_VERSION;
    hdr[3] = msg->hdr.type;
    s_put_be(hdr + 4, msg->hdr.request_id, 8);
    s_put_be(hdr + 12, msg->hdr.epoch, 8);
    s_put_be(hdr + 20, msg->hdr.seq, 8);
    s_put_be(hdr + 28, msg->hdr.ack, 8);
    s_put_be(hdr + 36, 0, 4);
    s_write(&e, (const char *)hdr, sizeof hdr);

    if (s_body(&e, msg) < 0) {
        free(e.data);
        return -1;
    }
    uint64_t max = hq_msgp_max_frame(msg->hdr.type);
    if ((uint64_t)e.len > max) {
        hq_err_set(err, "%s: message of %zu bytes exceeds the %llu-byte limit of its socket",
                   e.tname, e.len, (unsigned long long)max);
        free(e.data);
        return -1;
    }
    *buf = e.data;
    *len = e.len;
    return 0;
}
