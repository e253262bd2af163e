/* The wire codec's decoder: hostile bytes -> typed structs, all-or-nothing. Every
 * count is checked against its limit and against the bytes left (times the smallest
 * encoding of one element) before anything is allocated, so a frame can make the
 * decoder allocate only a small multiple of its own size. Everything decoded lives in
 * one arena owned by the hq_msg_t. Nesting follows the schema; nothing recurses. */
#include "hq_msg.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "hq_mpr.h"
#include "hq_msg_priv.h"

/* Smallest encoding of one element of each list (bytes), used with the bytes left to
 * bound counts before allocating. Each struct is an array: 1 byte of header plus the
 * smallest encoding of each field (1 byte for scalars, strings and empty lists, 2 for
 * bin, and the minimum of required elements). */
enum {
    S_MIN_SCALAR = 1,
    S_MIN_BIN = 2,
    S_MIN_RANGE = 1 + 3,
    S_MIN_KV = 1 + 2,
    S_MIN_RREQ = 1 + 4,
    S_MIN_RVARIANT = 1 + 4,
    S_MIN_TASK_DEF = 1 + 2 + 1 + 1 + 4 + 4 + 2 + (1 + S_MIN_RVARIANT) + 6,
    S_MIN_GRAPH_TASK = 1 + 3,
    S_MIN_WRES = 1 + 6,
    S_MIN_RALLOC = 1 + 3,
    S_MIN_COUPLING = 1 + 5,
    S_MIN_ASSIGN_DEF = 1 + 4 + S_MIN_TASK_DEF,
    S_MIN_ASSIGN_TASK = 1 + 7 + 2,
    S_MIN_EVENT = 1 + 7,
    S_MIN_TASK_REF = 1 + 3,
};

typedef struct s_dec {
    hq_mpr_t r;        /* position in the body */
    hq_arena_t *arena; /* owner of everything decoded */
    const char *tname; /* message type name for errors */
    hq_err_t *err;     /* where the first violation goes */
} s_dec_t;

#define TRY(x)                                                                                     \
    do {                                                                                           \
        if ((x) < 0)                                                                               \
            return -1;                                                                             \
    } while (0)

static int s_fail(s_dec_t *d, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int s_fail(s_dec_t *d, const char *field, const char *fmt, ...)
{
    char what[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return hq_err_set(d->err, "%s: field '%s' %s", d->tname, field, what);
}

/* Turns a reader status into a message naming the field and what was found. */
static int s_rdfail(s_dec_t *d, const char *field, int rc, const char *want)
{
    if (rc == HQ_MPR_TRUNCATED)
        return s_fail(d, field, "truncated (%s does not fit in the %zu bytes left)", want,
                      hq_mpr_left(&d->r));
    return s_fail(d, field, "expected %s, got %s", want, hq_mpr_peek_name(&d->r));
}

static void *s_alloc(s_dec_t *d, size_t n, size_t size)
{
    /* n * size cannot overflow: n was bounded by the bytes left of a frame. */
    return hq_arena_alloc(d->arena, n * size, 8, true);
}

/* A struct: an array of exactly nf fields. */
static int s_struct(s_dec_t *d, const char *field, uint32_t nf)
{
    uint32_t n;
    int rc = hq_mpr_array(&d->r, &n);
    if (rc)
        return s_rdfail(d, field, rc, "array");
    if (n != nf)
        return s_fail(d, field, "has %u fields, expected %u", n, nf);
    return 0;
}

/* A list header: min <= n <= max and n elements of at least min_bytes each fit. */
static int s_list(s_dec_t *d, const char *field, uint32_t min, uint32_t max, size_t min_bytes,
                  uint32_t *n)
{
    int rc = hq_mpr_array(&d->r, n);
    if (rc)
        return s_rdfail(d, field, rc, "array");
    if (*n < min)
        return s_fail(d, field, "count %u is below the minimum %u", *n, min);
    if (*n > max)
        return s_fail(d, field, "count %u exceeds limit %u", *n, max);
    if ((uint64_t)*n * min_bytes > hq_mpr_left(&d->r))
        return s_fail(d, field, "count %u exceeds bytes left (%zu)", *n, hq_mpr_left(&d->r));
    return 0;
}

static int s_uint(s_dec_t *d, const char *field, uint64_t max, uint64_t *out)
{
    hq_mpr_int_t v;
    int rc = hq_mpr_integer(&d->r, &v);
    if (rc)
        return s_rdfail(d, field, rc, "integer");
    if (v.neg)
        return s_fail(d, field, "value %lld is negative", (long long)v.i);
    if (v.u > max)
        return s_fail(d, field, "value %llu out of range (0..%llu)", (unsigned long long)v.u,
                      (unsigned long long)max);
    *out = v.u;
    return 0;
}

static int s_u32(s_dec_t *d, const char *field, uint32_t *out)
{
    uint64_t v = 0;
    TRY(s_uint(d, field, UINT32_MAX, &v));
    *out = (uint32_t)v;
    return 0;
}

static int s_u64(s_dec_t *d, const char *field, uint64_t *out)
{
    return s_uint(d, field, UINT64_MAX, out);
}

/* An enum stored as its C enum type: the caller passes the target's address. */
static int s_enum(s_dec_t *d, const char *field, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;
    TRY(s_uint(d, field, max, &v));
    *out = (uint32_t)v;
    return 0;
}

static int s_sint(s_dec_t *d, const char *field, int64_t min, int64_t max, int64_t *out)
{
    hq_mpr_int_t v;
    int rc = hq_mpr_integer(&d->r, &v);
    if (rc)
        return s_rdfail(d, field, rc, "integer");
    if (v.neg ? v.i < min : v.u > (uint64_t)max) {
        if (v.neg)
            return s_fail(d, field, "value %lld out of range", (long long)v.i);
        return s_fail(d, field, "value %llu out of range", (unsigned long long)v.u);
    }
    *out = v.neg ? v.i : (int64_t)v.u;
    return 0;
}

static int s_bool(s_dec_t *d, const char *field, bool *out)
{
    int rc = hq_mpr_bool(&d->r, out);
    if (rc)
        return s_rdfail(d, field, rc, "bool");
    return 0;
}

static int s_str(s_dec_t *d, const char *field, uint32_t cap, bool nullable, char **out)
{
    if (nullable && hq_mpr_is_nil(&d->r)) {
        d->r.p++;
        *out = NULL;
        return 0;
    }
    const uint8_t *data;
    uint32_t len;
    int rc = hq_mpr_str(&d->r, &data, &len);
    if (rc)
        return s_rdfail(d, field, rc, nullable ? "str or nil" : "str");
    if (len > cap)
        return s_fail(d, field, "length %u exceeds limit %u", len, cap);
    if (memchr(data, 0, len))
        return s_fail(d, field, "contains a NUL byte");
    char *s = hq_arena_alloc(d->arena, (size_t)len + 1, 1, false);
    memcpy(s, data, len);
    s[len] = '\0';
    *out = s;
    return 0;
}

/* bin: data is never NULL after decode and always NUL-terminated. */
static int s_bin(s_dec_t *d, const char *field, uint32_t cap, hq_bytes_t *out)
{
    const uint8_t *data;
    uint32_t len;
    int rc = hq_mpr_bin(&d->r, &data, &len);
    if (rc)
        return s_rdfail(d, field, rc, "bin");
    if (len > cap)
        return s_fail(d, field, "length %u exceeds limit %u", len, cap);
    uint8_t *p = hq_arena_alloc(d->arena, (size_t)len + 1, 1, false);
    if (len)
        memcpy(p, data, len);
    p[len] = 0;
    out->len = len;
    out->data = p;
    return 0;
}

/* A list of strings (argv, labels, log lines, nodes). */
static int s_strlist(s_dec_t *d, const char *field, uint32_t min, uint32_t *n, char ***out)
{
    TRY(s_list(d, field, min, HQ_MSG_MAX_LIST, S_MIN_SCALAR, n));
    *out = NULL;
    if (*n == 0)
        return 0;
    char **v = s_alloc(d, *n, sizeof *v);
    for (uint32_t k = 0; k < *n; k++)
        TRY(s_str(d, field, HQ_MAX_STR, false, &v[k]));
    *out = v;
    return 0;
}

static int s_rangelist(s_dec_t *d, const char *field, hq_rangelist_t *rl)
{
    TRY(s_list(d, field, 0, HQ_MSG_MAX_ITEMS, S_MIN_RANGE, &rl->n));
    if (rl->n == 0)
        return 0;
    rl->ranges = s_alloc(d, rl->n, sizeof *rl->ranges);
    for (uint32_t k = 0; k < rl->n; k++) {
        hq_range_t *r = &rl->ranges[k];
        TRY(s_struct(d, field, HQ_NF_RANGE));
        TRY(s_u32(d, "range start", &r->start));
        TRY(s_u32(d, "range end", &r->end));
        TRY(s_u32(d, "range step", &r->step));
        TRY(hq_msgp_check_range(r, d->tname, d->err));
    }
    return 0;
}

static int s_stdio(s_dec_t *d, const char *field, hq_stdio_t *s)
{
    uint32_t kind;
    TRY(s_struct(d, field, HQ_NF_STDIO));
    TRY(s_enum(d, field, HQ_STDIO_STREAM, &kind));
    s->kind = (enum hq_stdio_kind)kind;
    TRY(s_str(d, "path", HQ_MAX_STR, true, &s->path));
    if (s->kind == HQ_STDIO_FILE && !s->path)
        return s_fail(d, field, "has kind FILE but no path");
    TRY(s_bool(d, "rm_if_finished", &s->rm_if_finished));
    return 0;
}

static int s_rvariant(s_dec_t *d, hq_rvariant_t *v)
{
    TRY(s_struct(d, "variants", HQ_NF_RVARIANT));
    TRY(s_u32(d, "n_nodes", &v->n_nodes));
    TRY(s_u64(d, "min_time_ns", &v->min_time_ns));
    TRY(s_u32(d, "weight", &v->weight));
    TRY(s_list(d, "requests", 0, HQ_MSG_MAX_LIST, S_MIN_RREQ, &v->n_entries));
    if (v->n_entries == 0)
        return 0;
    v->entries = s_alloc(d, v->n_entries, sizeof *v->entries);
    for (uint32_t k = 0; k < v->n_entries; k++) {
        hq_rreq_t *q = &v->entries[k];
        uint32_t policy;
        TRY(s_struct(d, "requests", HQ_NF_RREQ));
        TRY(s_str(d, "request name", HQ_MAX_STR, false, &q->name));
        TRY(s_bool(d, "all", &q->all));
        TRY(s_sint(d, "amount", 0, INT64_MAX, &q->amount));
        TRY(s_enum(d, "policy", HQ_POLICY_SCATTER, &policy));
        q->policy = (enum hq_policy)policy;
    }
    return 0;
}

static int s_task_def(s_dec_t *d, hq_task_def_t *t)
{
    uint32_t v;
    int64_t prio;
    TRY(s_struct(d, "def", HQ_NF_TASK_DEF));
    TRY(s_strlist(d, "args", 1, &t->n_args, &t->args));
    TRY(s_list(d, "env", 0, HQ_MSG_MAX_LIST, S_MIN_KV, &t->n_env));
    if (t->n_env) {
        t->env = s_alloc(d, t->n_env, sizeof *t->env);
        for (uint32_t k = 0; k < t->n_env; k++) {
            TRY(s_struct(d, "env", HQ_NF_KV));
            TRY(s_str(d, "env key", HQ_MAX_STR, false, &t->env[k].key));
            TRY(s_str(d, "env value", HQ_MAX_STR, false, &t->env[k].value));
        }
    }
    TRY(s_str(d, "cwd", HQ_MAX_STR, false, &t->cwd));
    TRY(s_stdio(d, "stdout", &t->out));
    TRY(s_stdio(d, "stderr", &t->err));
    TRY(s_bin(d, "stdin", HQ_MAX_ENTRY, &t->stdin_data));
    TRY(s_list(d, "variants", 1, HQ_MSG_MAX_LIST, S_MIN_RVARIANT, &t->n_variants));
    t->variants = s_alloc(d, t->n_variants, sizeof *t->variants);
    for (uint32_t k = 0; k < t->n_variants; k++)
        TRY(s_rvariant(d, &t->variants[k]));
    TRY(s_u64(d, "time_limit_ns", &t->time_limit_ns));
    TRY(s_sint(d, "priority", INT32_MIN, INT32_MAX, &prio));
    t->priority = (int32_t)prio;
    TRY(s_enum(d, "crash_kind", HQ_CRASH_UNLIMITED, &v));
    t->crash_kind = (enum hq_crash_kind)v;
    TRY(s_u32(d, "crash_limit", &t->crash_limit));
    TRY(s_enum(d, "pin", HQ_PIN_OMP, &v));
    t->pin = (enum hq_pin)v;
    TRY(s_bool(d, "task_dir", &t->task_dir));
    return 0;
}

static int s_submit(s_dec_t *d, hq_submit_t *s)
{
    uint32_t nbody;
    int brc = hq_mpr_array(&d->r, &nbody);
    if (brc)
        return s_rdfail(d, "body", brc, "array");
    if (nbody != HQ_NF_SUBMIT && nbody != HQ_NF_SUBMIT_V0)
        return s_fail(d, "body", "has %u fields, expected %u", nbody, HQ_NF_SUBMIT);
    TRY(s_u32(d, "job_id", &s->job_id));
    TRY(s_str(d, "name", HQ_MAX_STR, true, &s->name));
    TRY(s_bool(d, "has_max_fails", &s->has_max_fails));
    TRY(s_u32(d, "max_fails", &s->max_fails));
    TRY(s_str(d, "submit_dir", HQ_MAX_STR, false, &s->submit_dir));
    TRY(s_str(d, "stream_dir", HQ_MAX_STR, true, &s->stream_dir));
    TRY(s_list(d, "defs", 1, HQ_MSG_MAX_ITEMS, S_MIN_TASK_DEF, &s->n_defs));
    s->defs = s_alloc(d, s->n_defs, sizeof *s->defs);
    for (uint32_t k = 0; k < s->n_defs; k++)
        TRY(s_task_def(d, &s->defs[k]));
    TRY(s_rangelist(d, "ids", &s->ids));
    TRY(s_list(d, "entries", 0, HQ_MSG_MAX_ITEMS, S_MIN_BIN, &s->n_entries));
    if (s->n_entries) {
        s->entries = s_alloc(d, s->n_entries, sizeof *s->entries);
        for (uint32_t k = 0; k < s->n_entries; k++)
            TRY(s_bin(d, "entries", HQ_MAX_ENTRY, &s->entries[k]));
    }
    TRY(s_list(d, "graph", 0, HQ_MSG_MAX_ITEMS, S_MIN_GRAPH_TASK, &s->n_graph));
    if (s->n_graph) {
        s->graph = s_alloc(d, s->n_graph, sizeof *s->graph);
        for (uint32_t k = 0; k < s->n_graph; k++) {
            hq_graph_task_t *g = &s->graph[k];
            TRY(s_struct(d, "graph", HQ_NF_GRAPH_TASK));
            TRY(s_u32(d, "id", &g->id));
            TRY(s_u32(d, "def_idx", &g->def_idx));
            if (g->def_idx >= s->n_defs)
                return s_fail(d, "def_idx", "value %u is not below n_defs %u", g->def_idx,
                              s->n_defs);
            TRY(s_list(d, "deps", 0, HQ_MSG_MAX_ITEMS, S_MIN_SCALAR, &g->n_deps));
            if (g->n_deps) {
                g->deps = s_alloc(d, g->n_deps, sizeof *g->deps);
                for (uint32_t j = 0; j < g->n_deps; j++)
                    TRY(s_u32(d, "deps", &g->deps[j]));
            }
        }
    }
    if (nbody == HQ_NF_SUBMIT_V0)
        return 0; /* an older sender: no idempotency key */
    const uint8_t *key;
    uint32_t klen;
    int krc = hq_mpr_bin(&d->r, &key, &klen);
    if (krc)
        return s_rdfail(d, "key", krc, "bin");
    if (klen != HQ_SUBMIT_KEY_LEN)
        return s_fail(d, "key", "length %u is not %u", klen, HQ_SUBMIT_KEY_LEN);
    memcpy(s->key, key, HQ_SUBMIT_KEY_LEN);
    s->has_key = true;
    return 0;
}

static int s_query(s_dec_t *d, hq_query_t *q)
{
    uint32_t kind;
    TRY(s_struct(d, "body", HQ_NF_QUERY));
    TRY(s_struct(d, "selector", HQ_NF_SELECTOR));
    TRY(s_enum(d, "selector kind", HQ_SEL_ALL, &kind));
    q->sel.kind = (enum hq_sel_kind)kind;
    TRY(s_rangelist(d, "selector ids", &q->sel.ids));
    TRY(s_rangelist(d, "tasks", &q->tasks));
    TRY(s_enum(d, "states", 0x7f, &q->states));
    TRY(s_bool(d, "flag", &q->flag));
    TRY(s_str(d, "text", HQ_MAX_STR, true, &q->text));
    TRY(s_u64(d, "number", &q->number));
    return 0;
}

static int s_reply(s_dec_t *d, hq_reply_t *r)
{
    TRY(s_struct(d, "body", HQ_NF_REPLY));
    TRY(s_u64(d, "id", &r->id));
    TRY(s_str(d, "json", HQ_MSG_MAX_JSON, true, &r->json));
    TRY(s_strlist(d, "log", 0, &r->n_log, &r->log));
    return 0;
}

static int s_error(s_dec_t *d, hq_error_msg_t *m)
{
    TRY(s_struct(d, "body", HQ_NF_ERROR));
    TRY(s_u32(d, "code", &m->code));
    if (m->code < HQ_ERR_BAD_REQUEST || m->code > HQ_ERR_VERSION)
        return s_fail(d, "code", "value %u out of range (1..6)", m->code);
    TRY(s_str(d, "message", HQ_MAX_STR, false, &m->message));
    return 0;
}

static int s_wres(s_dec_t *d, hq_wres_t *w)
{
    uint32_t kind;
    TRY(s_struct(d, "resources", HQ_NF_WRES));
    TRY(s_str(d, "resource name", HQ_MAX_STR, false, &w->name));
    TRY(s_enum(d, "kind", HQ_RES_SUM, &kind));
    w->kind = (enum hq_res_kind)kind;
    TRY(s_list(d, "groups", 0, HQ_MSG_MAX_LIST, S_MIN_SCALAR, &w->n_groups));
    if (w->n_groups) {
        w->groups = s_alloc(d, w->n_groups, sizeof *w->groups);
        for (uint32_t g = 0; g < w->n_groups; g++)
            TRY(s_strlist(d, "labels", 0, &w->groups[g].n, &w->groups[g].labels));
    }
    TRY(s_u64(d, "range_start", &w->range_start));
    TRY(s_u64(d, "range_end", &w->range_end));
    TRY(s_sint(d, "sum_size", 0, INT64_MAX, &w->sum_size));
    return hq_msgp_check_wres(w, d->tname, d->err);
}

/* A session secret: an empty bin (none) or exactly HQ_SESSION_SECRET_LEN bytes. */
static int s_secret(s_dec_t *d, bool *has, uint8_t *secret)
{
    const uint8_t *data;
    uint32_t len;
    int rc = hq_mpr_bin(&d->r, &data, &len);
    if (rc)
        return s_rdfail(d, "secret", rc, "bin");
    if (len != 0 && len != HQ_SESSION_SECRET_LEN)
        return s_fail(d, "secret", "length %u is neither 0 nor %u", len, HQ_SESSION_SECRET_LEN);
    *has = len != 0;
    if (len)
        memcpy(secret, data, len);
    return 0;
}

static int s_register(s_dec_t *d, hq_register_t *r)
{
    hq_worker_conf_t *c = &r->conf;
    uint32_t v;
    uint32_t nbody;
    int brc = hq_mpr_array(&d->r, &nbody);
    if (brc)
        return s_rdfail(d, "body", brc, "array");
    if (nbody != HQ_NF_REGISTER && nbody != HQ_NF_REGISTER_V1 && nbody != HQ_NF_REGISTER_V0)
        return s_fail(d, "body", "has %u fields, expected %u", nbody, HQ_NF_REGISTER);
    uint32_t nf;
    int hrc = hq_mpr_array(&d->r, &nf);
    if (hrc)
        return s_rdfail(d, "conf", hrc, "array");
    if (nf != HQ_NF_CONF && nf != HQ_NF_CONF_V0)
        return s_fail(d, "conf", "has %u fields, expected %u", nf, HQ_NF_CONF);
    TRY(s_str(d, "hostname", HQ_MAX_STR, false, &c->hostname));
    TRY(s_str(d, "group", HQ_MAX_STR, false, &c->group));
    TRY(s_str(d, "work_dir", HQ_MAX_STR, false, &c->work_dir));
    TRY(s_str(d, "listen_address", HQ_MAX_STR, false, &c->listen_address));
    TRY(s_u64(d, "heartbeat_ns", &c->heartbeat_ns));
    TRY(s_u64(d, "idle_timeout_ns", &c->idle_timeout_ns));
    TRY(s_u64(d, "time_limit_ns", &c->time_limit_ns));
    TRY(s_u64(d, "overview_ns", &c->overview_ns));
    int rc = hq_mpr_double(&d->r, &c->min_utilization);
    if (rc)
        return s_rdfail(d, "min_utilization", rc, "float");
    TRY(hq_msgp_check_utilization(c->min_utilization, d->tname, d->err));
    TRY(s_enum(d, "on_server_lost", HQ_LOST_FINISH_RUNNING, &v));
    c->on_server_lost = (enum hq_server_lost)v;
    TRY(s_enum(d, "manager", HQ_MANAGER_PBS, &v));
    c->manager = (enum hq_manager)v;
    TRY(s_str(d, "manager_job_id", HQ_MAX_STR, false, &c->manager_job_id));
    TRY(s_u32(d, "pid", &c->pid));
    TRY(s_u64(d, "started_ns", &c->started_ns));
    TRY(s_list(d, "resources", 0, HQ_MSG_MAX_LIST, S_MIN_WRES, &c->resources.n));
    if (c->resources.n) {
        c->resources.res = s_alloc(d, c->resources.n, sizeof *c->resources.res);
        for (uint32_t k = 0; k < c->resources.n; k++)
            TRY(s_wres(d, &c->resources.res[k]));
    }
    TRY(s_str(d, "version", HQ_MAX_STR, false, &c->version));
    if (nf == HQ_NF_CONF) {
        TRY(s_list(d, "coupling", 0, HQ_MSG_MAX_LIST, S_MIN_COUPLING, &c->n_coupling));
        if (c->n_coupling)
            c->coupling = s_alloc(d, c->n_coupling, sizeof *c->coupling);
        for (uint32_t k = 0; k < c->n_coupling; k++) {
            hq_coupling_t *w = &c->coupling[k];
            TRY(s_struct(d, "coupling", HQ_NF_COUPLING));
            TRY(s_u32(d, "resource1_idx", &w->resource1_idx));
            TRY(s_u32(d, "group1_idx", &w->group1_idx));
            TRY(s_u32(d, "resource2_idx", &w->resource2_idx));
            TRY(s_u32(d, "group2_idx", &w->group2_idx));
            TRY(s_u32(d, "weight", &w->weight));
            TRY(hq_msgp_check_coupling(c, w, d->tname, d->err));
        }
    }
    TRY(s_u32(d, "prefetch", &r->prefetch));
    TRY(s_u32(d, "n_running", &r->n_running));
    TRY(s_u32(d, "old_worker_id", &r->old_worker_id));
    if (nbody == HQ_NF_REGISTER_V0)
        return 0;
    TRY(s_list(d, "reports", 0, HQ_MSG_MAX_ITEMS, S_MIN_TASK_REF, &r->n_reports));
    if (r->n_reports)
        r->reports = s_alloc(d, r->n_reports, sizeof *r->reports);
    for (uint32_t k = 0; k < r->n_reports; k++) {
        TRY(s_struct(d, "reports", HQ_NF_TASK_REF));
        TRY(s_u32(d, "job_id", &r->reports[k].job_id));
        TRY(s_u32(d, "task_id", &r->reports[k].task_id));
        TRY(s_u32(d, "instance", &r->reports[k].instance));
    }
    if (nbody == HQ_NF_REGISTER_V1)
        return 0;
    return s_secret(d, &r->has_secret, r->secret);
}

static int s_registered(s_dec_t *d, hq_registered_t *r)
{
    uint32_t nbody;
    int brc = hq_mpr_array(&d->r, &nbody);
    if (brc)
        return s_rdfail(d, "body", brc, "array");
    if (nbody != HQ_NF_REGISTERED && nbody != HQ_NF_REGISTERED_V0)
        return s_fail(d, "body", "has %u fields, expected %u", nbody, HQ_NF_REGISTERED);
    TRY(s_u32(d, "worker_id", &r->worker_id));
    TRY(s_str(d, "server_uid", HQ_MAX_STR, false, &r->server_uid));
    TRY(s_u64(d, "heartbeat_ns", &r->heartbeat_ns));
    TRY(s_u64(d, "idle_timeout_ns", &r->idle_timeout_ns));
    if (nbody == HQ_NF_REGISTERED_V0)
        return 0;
    return s_secret(d, &r->has_secret, r->secret);
}

static int s_assign(s_dec_t *d, hq_assign_t *a)
{
    TRY(s_struct(d, "body", HQ_NF_ASSIGN));
    TRY(s_list(d, "defs", 0, HQ_MSG_MAX_ITEMS, S_MIN_ASSIGN_DEF, &a->n_defs));
    if (a->n_defs) {
        a->defs = s_alloc(d, a->n_defs, sizeof *a->defs);
        for (uint32_t k = 0; k < a->n_defs; k++) {
            hq_assign_def_t *ad = &a->defs[k];
            TRY(s_struct(d, "defs", HQ_NF_ASSIGN_DEF));
            TRY(s_u32(d, "job_id", &ad->job_id));
            TRY(s_u32(d, "def_id", &ad->def_id));
            TRY(s_str(d, "submit_dir", HQ_MAX_STR, false, &ad->submit_dir));
            TRY(s_str(d, "stream_dir", HQ_MAX_STR, true, &ad->stream_dir));
            TRY(s_task_def(d, &ad->def));
        }
    }
    TRY(s_list(d, "tasks", 0, HQ_MSG_MAX_ITEMS, S_MIN_ASSIGN_TASK, &a->n_tasks));
    if (a->n_tasks == 0)
        return 0;
    a->tasks = s_alloc(d, a->n_tasks, sizeof *a->tasks);
    for (uint32_t k = 0; k < a->n_tasks; k++) {
        hq_assign_task_t *t = &a->tasks[k];
        TRY(s_struct(d, "tasks", HQ_NF_ASSIGN_TASK));
        TRY(s_u32(d, "job_id", &t->job_id));
        TRY(s_u32(d, "task_id", &t->task_id));
        TRY(s_u32(d, "instance", &t->instance));
        TRY(s_u32(d, "def_idx", &t->def_idx));
        if (t->def_idx >= a->n_defs)
            return s_fail(d, "def_idx", "value %u is not below n_defs %u", t->def_idx, a->n_defs);
        TRY(s_bool(d, "has_entry", &t->has_entry));
        TRY(s_bin(d, "entry", HQ_MAX_ENTRY, &t->entry));
        TRY(s_u32(d, "variant", &t->variant));
        if (t->variant >= a->defs[t->def_idx].def.n_variants)
            return s_fail(d, "variant", "value %u is not below the definition's %u variants",
                          t->variant, a->defs[t->def_idx].def.n_variants);
        TRY(s_strlist(d, "nodes", 0, &t->n_nodes, &t->nodes));
    }
    return 0;
}

static int s_results(s_dec_t *d, hq_results_t *r)
{
    TRY(s_struct(d, "body", HQ_NF_RESULTS));
    TRY(s_u32(d, "credit", &r->credit));
    TRY(s_list(d, "events", 0, HQ_MSG_MAX_ITEMS, S_MIN_EVENT, &r->n_events));
    if (r->n_events == 0)
        return 0;
    r->events = s_alloc(d, r->n_events, sizeof *r->events);
    for (uint32_t k = 0; k < r->n_events; k++) {
        hq_task_event_t *v = &r->events[k];
        TRY(s_struct(d, "events", HQ_NF_EVENT));
        TRY(s_u32(d, "job_id", &v->job_id));
        TRY(s_u32(d, "task_id", &v->task_id));
        TRY(s_u32(d, "instance", &v->instance));
        TRY(s_enum(d, "kind", HQ_TEV_REJECTED, &v->kind));
        TRY(s_u64(d, "time_ns", &v->time_ns));
        TRY(s_str(d, "error", HQ_MAX_STR, true, &v->error));
        TRY(s_list(d, "allocs", 0, HQ_MSG_MAX_LIST, S_MIN_RALLOC, &v->n_allocs));
        if (v->n_allocs == 0)
            continue;
        v->allocs = s_alloc(d, v->n_allocs, sizeof *v->allocs);
        for (uint32_t j = 0; j < v->n_allocs; j++) {
            hq_ralloc_t *a = &v->allocs[j];
            TRY(s_struct(d, "allocs", HQ_NF_RALLOC));
            TRY(s_str(d, "alloc name", HQ_MAX_STR, false, &a->name));
            TRY(s_sint(d, "alloc amount", 0, INT64_MAX, &a->amount));
            TRY(s_strlist(d, "alloc labels", 0, &a->n_labels, &a->labels));
        }
    }
    return 0;
}

static int s_cancel(s_dec_t *d, hq_cancel_t *c)
{
    TRY(s_struct(d, "body", HQ_NF_CANCEL));
    TRY(s_list(d, "tasks", 0, HQ_MSG_MAX_ITEMS, S_MIN_TASK_REF, &c->n_tasks));
    if (c->n_tasks == 0)
        return 0;
    c->tasks = s_alloc(d, c->n_tasks, sizeof *c->tasks);
    for (uint32_t k = 0; k < c->n_tasks; k++) {
        TRY(s_struct(d, "tasks", HQ_NF_TASK_REF));
        TRY(s_u32(d, "job_id", &c->tasks[k].job_id));
        TRY(s_u32(d, "task_id", &c->tasks[k].task_id));
        TRY(s_u32(d, "instance", &c->tasks[k].instance));
    }
    return 0;
}

static int s_body(s_dec_t *d, hq_msg_t *m, enum hq_msg_body body)
{
    switch (body) {
    case HQ_BODY_NONE:
        if (hq_mpr_left(&d->r))
            return hq_err_set(d->err, "%s: has no body but %zu bytes follow the header", d->tname,
                              hq_mpr_left(&d->r));
        return 0;
    case HQ_BODY_SUBMIT:
        return s_submit(d, &m->u.submit);
    case HQ_BODY_QUERY:
        return s_query(d, &m->u.query);
    case HQ_BODY_REPLY:
        return s_reply(d, &m->u.reply);
    case HQ_BODY_ERROR:
        return s_error(d, &m->u.error);
    case HQ_BODY_REGISTER:
        return s_register(d, &m->u.reg);
    case HQ_BODY_REGISTERED:
        return s_registered(d, &m->u.registered);
    case HQ_BODY_RESULTS:
        return s_results(d, &m->u.results);
    case HQ_BODY_ASSIGN:
        return s_assign(d, &m->u.assign);
    case HQ_BODY_CANCEL:
        return s_cancel(d, &m->u.cancel);
    case HQ_BODY_GOODBYE:
        TRY(s_struct(d, "body", HQ_NF_GOODBYE));
        return s_enum(d, "reason", HQ_BYE_SERVER_STOP, &m->u.goodbye.reason);
    case HQ_BODY_OVERVIEW:
        TRY(s_struct(d, "body", HQ_NF_OVERVIEW));
        return s_str(d, "hw_state", HQ_MAX_STR, false, &m->u.overview.hw_state);
    case HQ_BODY_INVALID:
    default:
        return hq_err_set(d->err, "unknown message type %u", m->hdr.type);
    }
}

hq_msg_t *hq_msg_decode(const uint8_t *buf, size_t len, hq_err_t *err)
{
    hq_header_t hdr;
    if (hq_header_decode(buf, len, &hdr, err) < 0)
        return NULL;
    if (hdr.version != HQ_PROTO_VERSION) {
        hq_err_set(err, "unsupported protocol version %u (this side speaks %u)", hdr.version,
                   HQ_PROTO_VERSION);
        return NULL;
    }
    enum hq_msg_body body = hq_msgp_body(hdr.type);
    if (body == HQ_BODY_INVALID) {
        hq_err_set(err, "unknown message type %u", hdr.type);
        return NULL;
    }
    if ((uint64_t)len > hq_msgp_max_frame(hdr.type)) {
        hq_err_set(err, "%s: frame of %zu bytes exceeds the %llu-byte limit",
                   hq_msg_type_name(hdr.type), len,
                   (unsigned long long)hq_msgp_max_frame(hdr.type));
        return NULL;
    }
    s_dec_t d = {
        .r = {.p = buf + HQ_HEADER_SIZE, .end = buf + len},
        .arena = hq_arena_new(sizeof(hq_msg_t) + 2 * len),
        .tname = hq_msg_type_name(hdr.type),
        .err = err,
    };
    hq_msg_t *m = hq_arena_alloc(d.arena, sizeof *m, 16, true);
    m->hdr = hdr;
    m->arena_ = d.arena;
    if (s_body(&d, m, body) < 0)
        goto fail;
    if (hq_mpr_left(&d.r)) {
        hq_err_set(err, "%s: %zu trailing bytes after the body", d.tname, hq_mpr_left(&d.r));
        goto fail;
    }
    return m;
fail:
    hq_arena_destroy(&d.arena);
    return NULL;
}

void hq_msg_destroy(hq_msg_t **msg)
{
    if (!msg || !*msg)
        return;
    hq_arena_t *a = (*msg)->arena_;
    *msg = NULL;
    hq_arena_destroy(&a);
}
