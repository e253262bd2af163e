/* Requests that change jobs: submit (new job or attach to an open one), open, close,
 * cancel and forget. Each handler: validate -> check meaning -> act -> reply.
 *
 * SUBMIT idempotency keys (PROTOCOL.md): b->submit_keys maps the hex of each keyed
 * submit's key to its job id, with a pending bit while the submit waits for its
 * journal record. An entry lives exactly as long as its job (forget drops it), so
 * the index costs one entry per keyed submit of a live job. */
#define HQ_LOG_MODULE "hq::server::job"
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "jglue.h"
#include "hq_log.h"
#include "hq_util.h"

/* ---- idempotency keys ---- */

/* An index value: job id << 1 | pending (never NULL: job ids start at 1). */
#define S_KEY_VAL(id, pending) ((void *)(uintptr_t)(((uintptr_t)(id) << 1) | ((pending) ? 1 : 0)))

static void s_key_hex(const uint8_t key[HQ_SUBMIT_KEY_LEN], char out[2 * HQ_SUBMIT_KEY_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < HQ_SUBMIT_KEY_LEN; i++) {
        out[2 * i] = digits[key[i] >> 4];
        out[2 * i + 1] = digits[key[i] & 15];
    }
    out[2 * HQ_SUBMIT_KEY_LEN] = 0;
}

/* The job id the key belongs to (0: unknown); *pending tells whether that submit
 * still waits for its journal record. */
static uint32_t s_key_find(hq_broker_t *b, const uint8_t *key, bool *pending)
{
    *pending = false;
    if (!b->submit_keys)
        return 0;
    char hex[2 * HQ_SUBMIT_KEY_LEN + 1];
    s_key_hex(key, hex);
    uintptr_t v = (uintptr_t)zhashx_lookup(b->submit_keys, hex);
    *pending = v & 1;
    return (uint32_t)(v >> 1);
}

static void s_key_put(hq_broker_t *b, const uint8_t *key, uint32_t job_id, bool pending)
{
    if (!b->submit_keys)
        b->submit_keys = zhashx_new(); /* string keys (copied), values are plain ids */
    char hex[2 * HQ_SUBMIT_KEY_LEN + 1];
    s_key_hex(key, hex);
    zhashx_update(b->submit_keys, hex, S_KEY_VAL(job_id, pending));
}

/* Drops the key if it still names job_id (pending_only: only a pending entry). */
static void s_key_drop(hq_broker_t *b, const uint8_t *key, uint32_t job_id, bool pending_only)
{
    bool pending;
    if (s_key_find(b, key, &pending) != job_id || (pending_only && !pending))
        return;
    char hex[2 * HQ_SUBMIT_KEY_LEN + 1];
    s_key_hex(key, hex);
    zhashx_delete(b->submit_keys, hex);
}

void hq_submit_keys_forget(hq_broker_t *b, const hq_job_t *j)
{
    for (uint32_t k = 0; k < j->n_submits && b->submit_keys; k++) {
        const hq_submit_t *s = &j->submits[k].msg->u.submit;
        if (s->has_key)
            s_key_drop(b, s->key, j->id, false);
    }
}

void hq_submit_keys_destroy(hq_broker_t *b)
{
    zhashx_destroy(&b->submit_keys);
}

void hq_jobs_reserve_slot(hq_broker_t *b, uint32_t id)
{
    if (id + 1 < b->cap_jobs)
        return;
    uint32_t cap = b->cap_jobs ? b->cap_jobs : 64;
    while (id + 1 >= cap)
        cap *= 2;
    b->jobs = hq_realloc(b->jobs, cap * sizeof(hq_job_t *));
    memset(b->jobs + b->cap_jobs, 0, (cap - b->cap_jobs) * sizeof(hq_job_t *));
    b->cap_jobs = cap;
}

uint32_t hq_job_id_reserve(hq_broker_t *b)
{
    uint32_t id = ++b->max_job_id;
    hq_jobs_reserve_slot(b, id);
    return id;
}

static hq_job_t *s_job_new(hq_broker_t *b, uint32_t id, const char *name, uint64_t wall_ns)
{
    if (id == 0)
        id = b->max_job_id + 1;
    hq_jobs_reserve_slot(b, id);
    hq_job_t *j = hq_calloc(1, sizeof *j);
    j->id = id;
    j->name = hq_strdup(name && name[0] ? name : "job");
    j->submit_ns = wall_ns ? wall_ns : hq_wall_ns();
    return j;
}

static void s_job_register(hq_broker_t *b, hq_job_t *j)
{
    b->jobs[j->id] = j;
    if (j->id > b->max_job_id)
        b->max_job_id = j->id;
    b->n_jobs++;
    hq_event_t ev = {.type = HQ_EV_JOB_CREATED, .job_id = j->id, .time_ns = j->submit_ns, .obj = j};
    hq_events_emit(b->events, &ev);
}

static bool s_same_variants(const hq_task_def_t *x, const hq_task_def_t *y)
{
    if (x->n_variants != y->n_variants)
        return false;
    for (uint32_t v = 0; v < x->n_variants; v++) {
        const hq_rvariant_t *a = &x->variants[v], *c = &y->variants[v];
        if (a->n_nodes != c->n_nodes || a->min_time_ns != c->min_time_ns ||
            a->weight != c->weight || a->n_entries != c->n_entries)
            return false;
        for (uint32_t k = 0; k < a->n_entries; k++) {
            const hq_rreq_t *r = &a->entries[k], *q = &c->entries[k];
            if (r->all != q->all || r->amount != q->amount || r->policy != q->policy ||
                strcmp(r->name, q->name) != 0)
                return false;
        }
    }
    return true;
}

/* Gives each new definition a scheduler request class; definitions of one submit
 * with the same variants share a class (a job file of many distinct commands then
 * costs the scheduler one class, not one per task). */
static void s_rq_add_all(hq_broker_t *b, hq_job_t *j, uint32_t def_base)
{
    uint32_t prev = UINT32_MAX;
    for (uint32_t i = def_base; i < j->n_defs; i++) {
        hq_jdef_t *jd = &j->defs[i];
        if (prev != UINT32_MAX && s_same_variants(j->defs[prev].def, jd->def)) {
            jd->rq_id = j->defs[prev].rq_id;
            continue;
        }
        uint32_t lo = i - def_base > 64 ? i - 64 : def_base, k = i;
        while (k > lo && !s_same_variants(j->defs[k - 1].def, jd->def))
            k--;
        if (k > lo) {
            jd->rq_id = j->defs[k - 1].rq_id;
            prev = k - 1;
            continue;
        }
        jd->rq_id = ++b->next_rq_id;
        prev = i;
        hq_sched_cmd_t *cmd = hq_sched_cmd_new(HQ_SCHED_RQ_ADD);
        cmd->rq.rq_id = jd->rq_id;
        cmd->rq.n_variants = jd->def->n_variants;
        hq_rvariants_copy(&cmd->rq.variants, jd->def->variants, jd->def->n_variants);
        hq_sched_post(b, cmd);
    }
}

static int s_check_def(const hq_task_def_t *d, hq_err_t *err)
{
    if (d->n_args == 0)
        return hq_err_set(err, "A task definition has no command");
    if (d->n_variants == 0)
        return hq_err_set(err, "A task definition has no resource request");
    if (d->crash_kind == HQ_CRASH_LIMIT && d->crash_limit == 0)
        return hq_err_set(err, "Crash limit cannot be 0. Use `never-restart` or `unlimited` "
                               "instead.");
    if (d->cwd && strstr(d->cwd, "%{CWD}"))
        return hq_err_set(err, "Working directory path cannot contain the working directory "
                               "placeholder `%%{CWD}`.");
    return 0;
}

/* Graph form: explicit ids with their own definitions and dependencies. */
static int s_add_graph(hq_job_t *j, const hq_submit_t *s, uint32_t def_base, hq_err_t *err)
{
    for (uint32_t i = 0; i < s->n_graph; i++)
        if (s->graph[i].def_idx >= s->n_defs)
            return hq_err_set(err, "Task %u refers to a missing definition", s->graph[i].id);
    if (hq_job_check_graph(j, s->graph, s->n_graph, err) != 0)
        return -1;
    hq_job_add_graph(j, s->graph, s->n_graph, def_base);
    return 0;
}

/* After a graph submit: tasks whose dependencies are all finished go to the
 * scheduler; tasks with a failed, canceled or aborted dependency are aborted (which
 * aborts their own dependants). */
static void s_graph_ready(hq_broker_t *b, hq_job_t *j, const hq_submit_t *s)
{
    for (uint32_t i = 0; i < s->n_graph; i++) {
        const hq_graph_task_t *g = &s->graph[i];
        hq_task_t *t = hq_job_task(j, g->id);
        if (!t || t->state != HQ_TS_WAITING)
            continue; /* aborted meanwhile through another task of this submit */
        bool bad = false;
        for (uint32_t k = 0; k < g->n_deps && !bad; k++) {
            const hq_task_t *dt = hq_job_task(j, g->deps[k]);
            bad = dt && hq_tstate_final(dt->state) && dt->state != HQ_TS_FINISHED;
        }
        if (bad) {
            hq_broker_end_task(b, j, t, HQ_TS_ABORTED, NULL);
            continue;
        }
        const hq_dnode_t *node = g->n_deps ? hq_job_dnode(j, g->id) : NULL;
        if (node && node->n_wait > 0)
            continue;
        const hq_jdef_t *jd = &j->defs[t->def];
        if (b->n_requeue == b->cap_requeue) {
            b->cap_requeue = b->cap_requeue ? b->cap_requeue * 2 : 256;
            b->requeue = hq_realloc(b->requeue, b->cap_requeue * sizeof(hq_ready_ref_t));
        }
        b->requeue[b->n_requeue++] = (hq_ready_ref_t){
            .job_id = j->id, .task_id = t->id, .rq_id = jd->rq_id, .priority = jd->def->priority};
    }
}

int hq_submit_apply(hq_broker_t *b, uint32_t job_id, hq_msg_t *msg, uint64_t wall_ns, hq_err_t *err)
{
    hq_submit_t *s = &msg->u.submit;
    hq_job_t *j = NULL;
    bool fresh = s->job_id == 0;
    if (!fresh) {
        j = hq_broker_job(b, s->job_id);
        if (!j) {
            hq_err_set(err, "Job %u not found.", s->job_id);
            return -2;
        }
        if (!j->open)
            return hq_err_set(err, "Job %u is not opened.", s->job_id);
    } else {
        if (job_id != 0 && hq_broker_job(b, job_id))
            return hq_err_set(err, "Job %u already exists.", job_id);
        j = s_job_new(b, job_id, s->name, wall_ns);
        j->has_max_fails = s->has_max_fails;
        j->max_fails = s->max_fails;
    }
    /* act: definitions, then tasks (nothing changes if the tasks are refused) */
    uint32_t def_base = j->n_defs;
    hq_jdef_t *defs = hq_calloc(s->n_defs, sizeof *defs);
    for (uint32_t i = 0; i < s->n_defs; i++) {
        defs[i].def = &s->defs[i];
        defs[i].submit = j->n_submits;
        hq_place_resolve_def(&defs[i], &s->defs[i], j->id, s->submit_dir, b->access.server_uid);
    }
    hq_rangelist_t given = s->ids;
    hq_range_t auto_range;
    if (s->n_graph == 0 && given.n == 0) {
        uint32_t base = fresh ? 0 : hq_job_next_task_id(j);
        uint32_t count = s->n_entries ? s->n_entries : 1;
        auto_range = (hq_range_t){.start = base, .end = base + count - 1, .step = 1};
        given = (hq_rangelist_t){.n = 1, .ranges = &auto_range};
    }
    int rc = s->n_graph > 0 ? s_add_graph(j, s, def_base, err)
                            : hq_job_add_array(j, &given, def_base, s->n_entries, err);
    if (rc != 0) {
        for (uint32_t i = 0; i < s->n_defs; i++) {
            free(defs[i].cwd);
            free(defs[i].out);
            free(defs[i].err);
        }
        free(defs);
        if (fresh)
            hq_job_destroy(&j);
        return -1;
    }
    j->defs = hq_realloc(j->defs, (j->n_defs + s->n_defs) * sizeof(hq_jdef_t));
    memcpy(j->defs + j->n_defs, defs, s->n_defs * sizeof(hq_jdef_t));
    j->n_defs += s->n_defs;
    free(defs);
    j->submits = hq_realloc(j->submits, (j->n_submits + 1) * sizeof(hq_jsubmit_t));
    hq_jsubmit_t *sub = &j->submits[j->n_submits++];
    memset(sub, 0, sizeof *sub);
    sub->msg = msg;
    sub->graph = s->n_graph > 0;
    sub->submit_dir = s->submit_dir;
    if (!sub->graph)
        sub->ids_text = hq_rangelist_format(&given);
    if (s->stream_dir && s->stream_dir[0]) {
        char *p = hq_place_subst(s->stream_dir, j->id, s->submit_dir, b->access.server_uid, NULL);
        sub->stream_dir = hq_path_join(s->submit_dir, p);
        free(p);
    }
    if (fresh)
        s_job_register(b, j);
    s_rq_add_all(b, j, def_base);
    /* The scheduler learns the new tasks as ranges (one command for an array). */
    if (!sub->graph) {
        hq_sched_cmd_t *cmd = hq_sched_cmd_new(HQ_SCHED_READY);
        cmd->ready.job_id = j->id;
        cmd->ready.rq_id = j->defs[def_base].rq_id;
        cmd->ready.priority = s->defs[0].priority;
        cmd->ready.ids.n = given.n;
        cmd->ready.ids.ranges = hq_malloc(given.n * sizeof(hq_range_t));
        memcpy(cmd->ready.ids.ranges, given.ranges, given.n * sizeof(hq_range_t));
        hq_sched_post(b, cmd);
    } else {
        s_graph_ready(b, j, s);
    }
    if (s->has_key)
        s_key_put(b, s->key, j->id, false);
    hq_core_dirty(b);
    return 0;
}

/* What a submit waiting for durability carries to its completion. */
typedef struct s_subctx {
    hq_broker_t *b;
    uint32_t job_id; /* reserved (new job) or attached job; 0 without a journal */
    bool has_key;    /* the key was entered as pending under job_id */
    uint8_t key[HQ_SUBMIT_KEY_LEN];
} s_subctx_t;

/* Runs after the completion (applied or not): a key still pending means the submit
 * was refused or its record failed, so a retry must be handled as new. */
static void s_subctx_free(void *p)
{
    s_subctx_t *ctx = p;
    if (ctx && ctx->has_key)
        s_key_drop(ctx->b, ctx->key, ctx->job_id, true);
    free(ctx);
}

/* Test hook (integration/test_submit_retry.py): HQ_TEST_SUBMIT_LOSE_REPLY=N makes the
 * broker apply its N-th successful submit (counted from 1 in this run) but send no
 * reply, as if the reply were lost, and log a line saying so. Unset: no effect. */
static bool s_lose_reply(uint32_t job_id)
{
    static uint64_t s_applied;
    const char *v = getenv("HQ_TEST_SUBMIT_LOSE_REPLY");
    s_applied++;
    if (!v || !*v)
        return false;
    char *end = NULL;
    unsigned long long n = strtoull(v, &end, 10);
    if (*end != 0 || n != s_applied)
        return false;
    hq_warn("Test hook HQ_TEST_SUBMIT_LOSE_REPLY: the reply to the submit of job %u is not sent",
            job_id);
    return true;
}

static void s_submit_done(hq_broker_t *b, hq_creq_t *req, void *ctx)
{
    uint32_t job_id = ((s_subctx_t *)ctx)->job_id;
    hq_err_t err;
    int rc = hq_submit_apply(b, job_id, req->msg, 0, &err);
    if (rc != 0) {
        hq_client_error(b, req, rc == -2 ? HQ_ERR_NOT_FOUND : HQ_ERR_INVALID, "%s", err.text);
        return;
    }
    req->stolen = true;
    uint32_t id = req->msg->u.submit.job_id;
    if (id == 0)
        id = job_id ? job_id : b->max_job_id;
    if (s_lose_reply(id))
        return;
    hq_client_reply_log(b, req, id, NULL, 0);
}

int hq_h_submit(hq_broker_t *b, hq_creq_t *req)
{
    if (hq_jr_inflight(b, req))
        return 0;
    hq_submit_t *s = &req->msg->u.submit;
    hq_err_t err;
    /* a retry of a submit this broker knows (maybe from the journal): same answer */
    if (s->has_key) {
        bool pending;
        uint32_t known = s_key_find(b, s->key, &pending);
        if (known && pending) {
            hq_debug("Submit retry for job %u still waits for the journal; repeat dropped", known);
            return 0;
        }
        if (known) {
            hq_debug("Submit retry for job %u answered again (idempotency key)", known);
            hq_client_reply_log(b, req, known, NULL, 0);
            return 0;
        }
    }
    /* validate */
    if (!s->submit_dir || s->submit_dir[0] != '/')
        return hq_client_error(b, req, HQ_ERR_BAD_REQUEST, "The submit directory must be absolute");
    if (s->n_defs == 0)
        return hq_client_error(b, req, HQ_ERR_BAD_REQUEST, "The submit has no task definition");
    if (s->n_graph > 0 && (s->ids.n > 0 || s->n_entries > 0))
        return hq_client_error(b, req, HQ_ERR_INVALID,
                               "Definition of array job and individual task cannot be mixed");
    for (uint32_t i = 0; i < s->n_defs; i++)
        if (s_check_def(&s->defs[i], &err) != 0)
            return hq_client_error(b, req, HQ_ERR_INVALID, "%s", err.text);
    /* check meaning (again when applied: the job may change before that) */
    if (s->job_id != 0) {
        hq_job_t *j = hq_broker_job(b, s->job_id);
        if (!j)
            return hq_client_error(b, req, HQ_ERR_NOT_FOUND, "Job %u not found.", s->job_id);
        if (!j->open)
            return hq_client_error(b, req, HQ_ERR_INVALID, "Job %u is not opened.", s->job_id);
    }
    s_subctx_t *ctx = hq_calloc(1, sizeof *ctx);
    ctx->b = b;
    if (!b->jr)
        return hq_jr_commit(b, req, NULL, 0, s_submit_done, ctx, s_subctx_free);
    ctx->job_id = s->job_id ? s->job_id : hq_job_id_reserve(b);
    if (s->has_key) {
        ctx->has_key = true;
        memcpy(ctx->key, s->key, HQ_SUBMIT_KEY_LEN);
        s_key_put(b, s->key, ctx->job_id, true);
    }
    hq_jrec_t rec = {.type = HQ_JR_JOB_SUBMIT};
    rec.u.job_submit.job = ctx->job_id;
    rec.u.job_submit.submit = s;
    return hq_jr_commit(b, req, &rec, 1, s_submit_done, ctx, s_subctx_free);
}

hq_job_t *hq_open_apply(hq_broker_t *b, uint32_t job_id, const char *name, bool has_max_fails,
                        uint32_t max_fails, uint64_t wall_ns)
{
    if (job_id != 0 && hq_broker_job(b, job_id))
        return NULL;
    hq_job_t *j = s_job_new(b, job_id, name, wall_ns);
    j->open = true;
    j->has_max_fails = has_max_fails;
    j->max_fails = max_fails;
    s_job_register(b, j);
    hq_event_t ev = {.type = HQ_EV_JOB_OPEN, .job_id = j->id, .time_ns = j->submit_ns, .obj = j};
    hq_events_emit(b->events, &ev);
    return j;
}

static void s_open_done(hq_broker_t *b, hq_creq_t *req, void *ctx)
{
    const hq_query_t *q = &req->msg->u.query;
    hq_job_t *j = hq_open_apply(b, *(uint32_t *)ctx, q->text, q->number > 0,
                                q->number > 0 ? (uint32_t)(q->number - 1) : 0, 0);
    if (!j) {
        hq_client_error(b, req, HQ_ERR_INVALID, "Job %u already exists.", *(uint32_t *)ctx);
        return;
    }
    hq_client_reply_log(b, req, j->id, NULL, 0);
}

int hq_h_job_open(hq_broker_t *b, hq_creq_t *req)
{
    if (hq_jr_inflight(b, req))
        return 0;
    const hq_query_t *q = &req->msg->u.query;
    if (q->text && (strchr(q->text, '\n') || strchr(q->text, '\t')))
        return hq_client_error(b, req, HQ_ERR_INVALID, "name cannot have a newline or a tab");
    uint32_t *ctx = hq_malloc(sizeof *ctx);
    *ctx = 0;
    if (!b->jr)
        return hq_jr_commit(b, req, NULL, 0, s_open_done, ctx, free);
    *ctx = hq_job_id_reserve(b);
    hq_jrec_t rec = {.type = HQ_JR_JOB_OPEN};
    rec.u.job_open.job = *ctx;
    rec.u.job_open.name = q->text;
    rec.u.job_open.has_max_fails = q->number > 0;
    rec.u.job_open.max_fails = q->number > 0 ? (uint32_t)(q->number - 1) : 0;
    return hq_jr_commit(b, req, &rec, 1, s_open_done, ctx, free);
}

/* Collects log lines for a reply. */
typedef struct s_lines {
    char **v;
    uint32_t n, cap;
} s_lines_t;

static void s_line(s_lines_t *l, char *line)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        l->v = hq_realloc(l->v, l->cap * sizeof(char *));
    }
    l->v[l->n++] = line;
}

static void s_reply_lines(hq_broker_t *b, hq_creq_t *req, s_lines_t *l)
{
    hq_client_reply_log(b, req, 0, l->v, l->n);
    for (uint32_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* Jobs selected by a close/cancel/forget request, resolved when it arrived. */
typedef struct s_sel {
    uint32_t *ids, n;   /* existing jobs, ascending */
    uint32_t *miss, nm; /* explicit ids that do not exist */
} s_sel_t;

static void s_sel_free(void *p)
{
    s_sel_t *sel = p;
    if (!sel)
        return;
    free(sel->ids);
    free(sel->miss);
    free(sel);
}

static s_sel_t *s_sel_new(hq_broker_t *b, const hq_selector_t *q)
{
    s_sel_t *sel = hq_calloc(1, sizeof *sel);
    sel->ids = hq_broker_select_jobs(b, q, &sel->n, &sel->miss, &sel->nm);
    return sel;
}

/* Records one job_* record per selected job that passes keep() (nothing else changes
 * state), then applies. */
static int s_sel_commit(hq_broker_t *b, hq_creq_t *req, s_sel_t *sel, enum hq_jrec_type type,
                        bool (*keep)(hq_broker_t *, const hq_job_t *, const hq_query_t *),
                        hq_jr_apply_fn *apply)
{
    const hq_query_t *q = &req->msg->u.query;
    hq_jrec_t *recs = NULL;
    uint32_t n = 0;
    if (b->jr && sel->n > 0) {
        recs = hq_calloc(sel->n, sizeof *recs);
        for (uint32_t i = 0; i < sel->n; i++) {
            const hq_job_t *j = b->jobs[sel->ids[i]];
            if (!keep(b, j, q))
                continue;
            hq_jrec_t *r = &recs[n++];
            r->type = type;
            if (type == HQ_JR_JOB_CANCEL) {
                r->u.job_cancel.job = j->id;
                r->u.job_cancel.reason = q->text && q->text[0] ? q->text : NULL;
            } else {
                r->u.job.job = j->id;
            }
        }
    }
    int rc = hq_jr_commit(b, req, recs, n, apply, sel, s_sel_free);
    free(recs);
    return rc;
}

static bool s_keep_close(hq_broker_t *b, const hq_job_t *j, const hq_query_t *q)
{
    (void)b;
    (void)q;
    return j->open;
}

static void s_close_done(hq_broker_t *b, hq_creq_t *req, void *ctx)
{
    s_sel_t *sel = ctx;
    s_lines_t l = {0};
    for (uint32_t i = 0; i < sel->n; i++) {
        hq_job_t *j = hq_broker_job(b, sel->ids[i]);
        if (!j) {
            s_line(&l, hq_asprintf("ERROR\tClosing job %u failed; job not found", sel->ids[i]));
            continue;
        }
        if (!j->open) {
            s_line(&l, hq_asprintf("ERROR\tClosing job %u failed; job is already closed", j->id));
            continue;
        }
        j->open = false;
        hq_event_t ev = {.type = HQ_EV_JOB_CLOSE, .job_id = j->id, .obj = j};
        hq_events_emit(b->events, &ev);
        s_line(&l, hq_asprintf("INFO\tJob %u closed", j->id));
    }
    for (uint32_t i = 0; i < sel->nm; i++)
        s_line(&l, hq_asprintf("ERROR\tClosing job %u failed; job not found", sel->miss[i]));
    if (sel->n == 0 && sel->nm == 0)
        s_line(&l, hq_strdup("INFO\tThere is nothing to close"));
    hq_core_dirty(b);
    s_reply_lines(b, req, &l);
}

int hq_h_job_close(hq_broker_t *b, hq_creq_t *req)
{
    if (hq_jr_inflight(b, req))
        return 0;
    s_sel_t *sel = s_sel_new(b, &req->msg->u.query.sel);
    return s_sel_commit(b, req, sel, HQ_JR_JOB_CLOSE, s_keep_close, s_close_done);
}

static uint32_t s_open_tasks(const hq_job_t *j)
{
    return j->counts[HQ_TS_WAITING] + j->counts[HQ_TS_ASSIGNED] + j->counts[HQ_TS_RUNNING];
}

static bool s_keep_cancel(hq_broker_t *b, const hq_job_t *j, const hq_query_t *q)
{
    (void)b;
    (void)q;
    return s_open_tasks(j) > 0;
}

static void s_cancel_done(hq_broker_t *b, hq_creq_t *req, void *ctx)
{
    s_sel_t *sel = ctx;
    const hq_query_t *q = &req->msg->u.query;
    s_lines_t l = {0};
    for (uint32_t i = 0; i < sel->n; i++) {
        hq_job_t *j = hq_broker_job(b, sel->ids[i]);
        if (!j) {
            s_line(&l, hq_asprintf("ERROR\tCanceling job %u failed; job not found", sel->ids[i]));
            continue;
        }
        uint32_t open_tasks = s_open_tasks(j);
        if (open_tasks == 0) {
            s_line(&l, hq_asprintf("ERROR\tCanceling job %u failed; all tasks are already "
                                   "finished",
                                   j->id));
            continue;
        }
        uint32_t finished = j->n_tasks - open_tasks;
        hq_sched_cmd_t *cmd = hq_sched_cmd_new(HQ_SCHED_CANCEL_JOB);
        cmd->job_id = j->id;
        hq_sched_post(b, cmd);
        /* The job_cancel record stands for every task it cancels. */
        hq_jr_quiet(b, true);
        for (uint32_t k = 0; k < j->n_tasks; k++)
            if (!hq_tstate_final(j->tasks[k].state))
                hq_broker_end_task(b, j, &j->tasks[k], HQ_TS_CANCELED, NULL);
        hq_jr_quiet(b, false);
        free(j->cancel_reason);
        j->cancel_reason = q->text && q->text[0] ? hq_strdup(q->text) : NULL;
        hq_event_t ev = {
            .type = HQ_EV_JOB_CANCEL, .job_id = j->id, .text = j->cancel_reason, .obj = j};
        hq_events_emit(b->events, &ev);
        s_line(&l, hq_asprintf("INFO\tJob %u canceled (%u tasks canceled, %u tasks already "
                               "finished)",
                               j->id, open_tasks, finished));
    }
    for (uint32_t i = 0; i < sel->nm; i++)
        s_line(&l, hq_asprintf("ERROR\tCanceling job %u failed; job not found", sel->miss[i]));
    if (sel->n == 0 && sel->nm == 0)
        s_line(&l, hq_strdup("INFO\tThere is nothing to cancel"));
    hq_core_dirty(b);
    s_reply_lines(b, req, &l);
}

int hq_h_job_cancel(hq_broker_t *b, hq_creq_t *req)
{
    if (hq_jr_inflight(b, req))
        return 0;
    const hq_query_t *q = &req->msg->u.query;
    size_t rlen = q->text ? strlen(q->text) : 0;
    if (rlen > 200)
        return hq_client_error(b, req, HQ_ERR_INVALID,
                               "Cancel reason must be shorter than 200 you entered %zu.", rlen);
    s_sel_t *sel = s_sel_new(b, &q->sel);
    return s_sel_commit(b, req, sel, HQ_JR_JOB_CANCEL, s_keep_cancel, s_cancel_done);
}

/* Gives back capacity still held by canceled tasks of a job about to be forgotten. */
static void s_release_held(hq_broker_t *b, hq_job_t *j)
{
    hq_sched_slot_t *slots = NULL;
    uint32_t n = 0, cap = 0;
    for (uint32_t i = 0; i < j->n_tasks; i++) {
        hq_task_t *t = &j->tasks[i];
        if (!(t->flags & HQ_TF_HOLDS))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            slots = hq_realloc(slots, cap * sizeof *slots);
        }
        slots[n++] = (hq_sched_slot_t){.worker_id = t->worker,
                                       .job_id = j->id,
                                       .task_id = t->id,
                                       .rq_id = j->defs[t->def].rq_id,
                                       .variant = t->variant};
        hq_worker_t *w = hq_broker_worker(b, t->worker);
        if (w && w->n_assigned > 0)
            w->n_assigned--;
    }
    if (n == 0)
        return;
    hq_sched_cmd_t *cmd = hq_sched_cmd_new(HQ_SCHED_RELEASE);
    cmd->slots.n = n;
    cmd->slots.slots = slots;
    hq_sched_post(b, cmd);
}

static uint32_t s_forget_filter(const hq_query_t *q)
{
    return q->states ? q->states : (HQ_ST_FINISHED | HQ_ST_FAILED | HQ_ST_ABORTED | HQ_ST_CANCELED);
}

static bool s_keep_forget(hq_broker_t *b, const hq_job_t *j, const hq_query_t *q)
{
    (void)b;
    return hq_job_is_complete(j) && !j->open && (hq_job_state_bit(j) & s_forget_filter(q));
}

void hq_job_forget_one(hq_broker_t *b, hq_job_t *j)
{
    s_release_held(b, j);
    hq_submit_keys_forget(b, j);
    b->jobs[j->id] = NULL;
    b->n_jobs--;
    hq_job_destroy(&j);
}

static void s_forget_done(hq_broker_t *b, hq_creq_t *req, void *ctx)
{
    s_sel_t *sel = ctx;
    const hq_query_t *q = &req->msg->u.query;
    uint32_t forgotten = 0, ignored = sel->nm;
    for (uint32_t i = 0; i < sel->n; i++) {
        hq_job_t *j = hq_broker_job(b, sel->ids[i]);
        if (!j || !s_keep_forget(b, j, q)) {
            ignored++;
            continue;
        }
        hq_job_forget_one(b, j);
        forgotten++;
    }
    s_lines_t l = {0};
    if (ignored > 0)
        s_line(&l, hq_asprintf("INFO\t%u %s were forgotten, %u were ignored due to wrong state "
                               "or invalid ID",
                               forgotten, forgotten == 1 ? "job" : "jobs", ignored));
    else
        s_line(&l, hq_asprintf("INFO\t%u %s were forgotten", forgotten,
                               forgotten == 1 ? "job" : "jobs"));
    s_reply_lines(b, req, &l);
}

int hq_h_job_forget(hq_broker_t *b, hq_creq_t *req)
{
    if (hq_jr_inflight(b, req))
        return 0;
    s_sel_t *sel = s_sel_new(b, &req->msg->u.query.sel);
    return s_sel_commit(b, req, sel, HQ_JR_JOB_FORGET, s_keep_forget, s_forget_done);
}
