/* The durable path of the broker's changes: client mutations applied once their
 * records are durable, dependants released once their parent's end is durable, and
 * the event hook that records task and worker changes, holding them in memory while
 * the journal cannot be written and appending them again once it can. */
#define HQ_LOG_MODULE "hq::server::journal"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "glue_priv.h"
#include "journal/rebuild.h"
#include "hq_duration.h"
#include "hq_log.h"
#include "hq_util.h"

hq_journal_t *hq_jr_journal(const hq_broker_t *b)
{
    return b->jr ? b->jr->j : NULL;
}

const char *hq_jr_path(const hq_broker_t *b)
{
    return b->jr ? b->jr->path : NULL;
}

void hq_jr_quiet(hq_broker_t *b, bool on)
{
    if (b->jr)
        b->jr->quiet = on;
}

uint64_t hq_jr_append(hq_broker_t *b, const hq_jrec_t *rec, hq_journal_done_fn *cb, void *arg)
{
    if (!b->jr)
        return 0;
    hq_err_t err;
    uint64_t lsn = hq_journal_append(b->jr->j, rec, cb, arg, &err);
    if (lsn == 0 && !b->jr->warned) {
        b->jr->warned = true;
        hq_error("Cannot record a %s event in the journal: %s", hq_jrec_name(rec->type), err.text);
    }
    return lsn;
}

uint32_t hq_jr_readopt_waiting(const hq_broker_t *b, uint64_t *grace_ns)
{
    *grace_ns = b->jr ? b->jr->grace_ns : 0;
    return b->jr ? b->jr->n_readopt : 0;
}

uint64_t hq_jr_epoch(const hq_broker_t *b)
{
    return b->jr ? b->jr->epoch : 0;
}

/* ---- client mutations ---- */

typedef struct s_op {
    hq_broker_t *b;
    uint8_t rid[HQ_RID_MAX];
    size_t rid_len;
    hq_msg_t *msg;
    bool cacheable; /* the reply may go to the reply cache */
    uint64_t req_id, req_hash;
    char *key; /* in g->inflight */
    uint32_t pending;
    int errnum;
    char *why; /* a record the journal refused (its size, the limit): the client's error */
    hq_jr_apply_fn *apply;
    void *ctx;
    hq_jr_free_fn *free_fn;
} s_op_t;

static char *s_req_key(const uint8_t *rid, size_t rid_len, uint64_t request_id)
{
    char *hex = hq_rid_hex(rid, rid_len);
    char *key = hq_asprintf("%s:%llu", hex, (unsigned long long)request_id);
    free(hex);
    return key;
}

bool hq_jr_inflight(hq_broker_t *b, const hq_creq_t *req)
{
    if (!b->jr || req->msg->hdr.request_id == 0)
        return false;
    char *key = s_req_key(req->rid, req->rid_len, req->msg->hdr.request_id);
    bool found = zhashx_lookup(b->jr->inflight, key) != NULL;
    free(key);
    if (found)
        hq_debug("Request %llu is still waiting for the journal; repeat dropped",
                 (unsigned long long)req->msg->hdr.request_id);
    return found;
}

static void s_op_finish(s_op_t *op)
{
    hq_broker_t *b = op->b;
    hq_creq_t req = {.rid = op->rid, .rid_len = op->rid_len, .msg = op->msg};
    bool saved_valid = b->replies.cur_valid;
    uint64_t saved_id = b->replies.cur_id, saved_hash = b->replies.cur_hash;
    if (op->why) {
        b->replies.cur_valid = false;
        hq_client_error(&b->replies, &req, HQ_ERR_INVALID, "%s", op->why);
    } else if (op->errnum) {
        b->replies.cur_valid = false; /* a retry after recovery must not get this error */
        hq_client_error(&b->replies, &req, HQ_ERR_UNAVAILABLE, "journal unavailable: %s",
                        strerror(op->errnum));
    } else {
        b->replies.cur_valid = op->cacheable;
        b->replies.cur_id = op->req_id;
        b->replies.cur_hash = op->req_hash;
        op->apply(b, &req, op->ctx);
    }
    b->replies.cur_valid = saved_valid;
    b->replies.cur_id = saved_id;
    b->replies.cur_hash = saved_hash;
    if (!req.stolen)
        hq_msg_destroy(&op->msg);
    if (op->key && b->jr) {
        zhashx_delete(b->jr->inflight, op->key);
    }
    free(op->key);
    free(op->why);
    if (op->free_fn)
        op->free_fn(op->ctx);
    free(op);
}

static void s_op_done(void *arg, uint64_t lsn, int errnum)
{
    (void)lsn;
    s_op_t *op = arg;
    if (errnum && !op->errnum)
        op->errnum = errnum;
    if (--op->pending == 0)
        s_op_finish(op);
}

int hq_jr_commit(hq_broker_t *b, hq_creq_t *req, const hq_jrec_t *recs, uint32_t n,
                 hq_jr_apply_fn *apply, void *ctx, hq_jr_free_fn *free_fn)
{
    hq_jglue_t *g = b->jr;
    if (!g || n == 0) {
        apply(b, req, ctx);
        if (free_fn)
            free_fn(ctx);
        return 0;
    }
    /* Even while the journal is unavailable the records go to the writer: they fail
     * fast (the client gets the typed error) and let it notice when space is back. */
    s_op_t *op = hq_calloc(1, sizeof *op);
    op->b = b;
    memcpy(op->rid, req->rid, req->rid_len);
    op->rid_len = req->rid_len;
    op->msg = req->msg;
    req->stolen = true;
    op->cacheable = b->replies.cur_valid && b->replies.cur_id == req->msg->hdr.request_id;
    op->req_id = b->replies.cur_id;
    op->req_hash = b->replies.cur_hash;
    op->apply = apply;
    op->ctx = ctx;
    op->free_fn = free_fn;
    if (req->msg->hdr.request_id != 0) {
        op->key = s_req_key(req->rid, req->rid_len, req->msg->hdr.request_id);
        zhashx_update(g->inflight, op->key, op);
    }
    op->pending = 1; /* held until every record is appended */
    for (uint32_t i = 0; i < n; i++) {
        hq_err_t err;
        op->pending++;
        if (hq_journal_append(g->j, &recs[i], s_op_done, op, &err) == 0) {
            op->pending--;
            hq_warn("Cannot record a %s request: %s", hq_jrec_name(recs[i].type), err.text);
            if (!op->errnum)
                op->errnum = EINVAL;
            if (!op->why)
                op->why = hq_asprintf("The request cannot be recorded in the journal: %s",
                                      strncmp(err.text, "journal: ", 9) ? err.text : err.text + 9);
        }
    }
    s_op_done(op, 0, 0);
    return 0;
}

/* ---- dependants ---- */

static void s_release_held(hq_jglue_t *g)
{
    hq_broker_t *b = g->b;
    bool any = false;
    while (g->head_held < g->n_held && g->held[g->head_held].lsn <= g->durable_finish) {
        s_held_t h = g->held[g->head_held++];
        hq_job_t *j;
        hq_task_t *t = hq_jobtab_task(&b->jobs, h.job_id, h.task_id, &j);
        if (t && t->state == HQ_TS_WAITING) {
            hq_readyq_push(&b->ready, j, t);
            any = true;
        }
    }
    if (g->head_held == g->n_held)
        g->head_held = g->n_held = 0;
    if (any)
        hq_turn_dirty(&b->turn);
}

void hq_jr_ready_after_parent(hq_broker_t *b, uint32_t job_id, uint32_t task_id)
{
    hq_jglue_t *g = b->jr;
    hq_job_t *j;
    hq_task_t *t = hq_jobtab_task(&b->jobs, job_id, task_id, &j);
    if (!t)
        return;
    if (!g || g->last_finish <= g->durable_finish) {
        hq_readyq_push(&b->ready, j, t);
        return;
    }
    if (g->n_held == g->cap_held) {
        g->cap_held = g->cap_held ? g->cap_held * 2 : 64;
        g->held = hq_realloc(g->held, g->cap_held * sizeof *g->held);
    }
    g->held[g->n_held++] = (s_held_t){.lsn = g->last_finish, .job_id = job_id, .task_id = task_id};
}

/* ---- the event hook and held records ---- */

static void s_precs_push(s_precs_t *q, const s_prec_t *p)
{
    if (q->head > 0 && q->head == q->n)
        q->head = q->n = 0;
    if (q->n == q->cap) {
        if (q->head > 0) { /* reuse the consumed front */
            memmove(q->v, q->v + q->head, (q->n - q->head) * sizeof *q->v);
            q->n -= q->head;
            q->head = 0;
        }
        if (q->n == q->cap) {
            q->cap = q->cap ? q->cap * 2 : 64;
            q->v = hq_realloc(q->v, q->cap * sizeof *q->v);
        }
    }
    q->v[q->n++] = *p;
}

/* The record of p; false when it no longer applies (its job was forgotten). Texts
 * and a task_state's fields come from the live task. */
static bool s_prec_rec(hq_broker_t *b, const s_prec_t *p, hq_jrec_t *rec, hq_jrange_t *one)
{
    *rec = (hq_jrec_t){.type = (enum hq_jrec_type)p->type, .wall_ns = p->wall_ns};
    if (p->type == HQ_JR_WORKER_LOST) {
        rec->u.worker_lost.worker = p->a;
        rec->u.worker_lost.reason = p->b;
        rec->u.worker_lost.text = hq_wstate_word((enum hq_wstate)p->b);
        return true;
    }
    if (p->type == HQ_JR_WORKER_UP) { /* held: the worker as it is now, if still there */
        const hq_worker_t *w = hq_registry_get(&b->reg, p->a);
        if (!w)
            return false;
        rec->u.worker_up.worker = p->a;
        rec->u.worker_up.epoch = w->epoch;
        rec->u.worker_up.reg = w->reg ? &w->reg->u.reg : NULL;
        return true;
    }
    hq_job_t *j;
    hq_task_t *t = hq_jobtab_task(&b->jobs, p->a, p->b, &j);
    if (!t)
        return false;
    switch (p->type) {
    case HQ_JR_TASK_FINISHED:
    case HQ_JR_TASK_FAILED:
        rec->u.task.job = p->a;
        rec->u.task.task = p->b;
        rec->u.task.instance = p->c;
        rec->u.task.error = p->type == HQ_JR_TASK_FAILED ? t->error : NULL;
        return true;
    case HQ_JR_TASKS_CANCELED:
    case HQ_JR_TASKS_ABORTED:
        *one = (hq_jrange_t){.first = p->b, .last = p->b};
        rec->u.tasks.job = p->a;
        rec->u.tasks.n = 1;
        rec->u.tasks.ranges = one;
        return true;
    case HQ_JR_TASK_STATE:
        /* The task's state now: later changes of it are recorded after this. */
        rec->u.task_state.job = p->a;
        rec->u.task_state.task = p->b;
        rec->u.task_state.state = t->state;
        rec->u.task_state.instance = t->instance;
        rec->u.task_state.worker = t->worker;
        rec->u.task_state.crashes = t->crashes;
        rec->u.task_state.start_ns = t->start_ns;
        rec->u.task_state.end_ns = t->end_ns;
        rec->u.task_state.error = t->state == HQ_TS_FAILED ? t->error : NULL;
        return true;
    default:
        return false;
    }
}

static void s_rec_done(void *arg, uint64_t lsn, int errnum);

/* Appends rec for the hook record p (tracked until its completion). Returns the lsn
 * or 0 (a record the journal refuses; logged by hq_jr_append). */
static uint64_t s_track(hq_jglue_t *g, const hq_jrec_t *rec, s_prec_t p)
{
    uint64_t lsn = hq_jr_append(g->b, rec, s_rec_done, g);
    if (!lsn)
        return 0;
    p.lsn = lsn;
    s_precs_push(&g->pend, &p);
    if (p.type == HQ_JR_TASK_FINISHED)
        g->last_finish = lsn;
    return lsn;
}

/* Appends the held records again, in their original order. Dependants held behind a
 * failed finish now wait for its new record. */
static void s_retry_failed(hq_jglue_t *g)
{
    if (g->failed.n == g->failed.head)
        return;
    s_precs_t q = g->failed;
    g->failed = (s_precs_t){0};
    uint32_t n = 0;
    uint64_t last_finish = 0;
    for (uint32_t i = q.head; i < q.n; i++) {
        hq_jrec_t rec;
        hq_jrange_t one;
        if (!s_prec_rec(g->b, &q.v[i], &rec, &one))
            continue;
        uint64_t lsn = s_track(g, &rec, q.v[i]);
        if (lsn && q.v[i].type == HQ_JR_TASK_FINISHED)
            last_finish = lsn;
        n += lsn != 0;
    }
    free(q.v);
    if (g->first_failed_finish && last_finish) {
        for (uint32_t i = g->head_held; i < g->n_held; i++)
            if (g->held[i].lsn >= g->first_failed_finish)
                g->held[i].lsn = last_finish;
    }
    g->first_failed_finish = 0;
    g->warned_held = false;
    hq_info(
        "Journal: %u held record%s (task results, worker registrations and losses) appended again",
        n, n == 1 ? "" : "s");
}

static int s_on_retry(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    hq_jglue_t *g = arg;
    g->retry_timer = -1;
    if (hq_journal_available(g->j))
        s_retry_failed(g);
    return 0;
}

/* Completion of a hook record (callbacks come in lsn order). A failed one is held;
 * it goes out again when the journal says it is writable (s_on_state), or after a
 * short pause when the journal never said it was not (a failed write it recovered
 * from at once). Consecutive finishes of one job share one record, one lsn and one
 * callback (the journal's coalesce_finished): every entry with that lsn completes. */
static void s_rec_done(void *arg, uint64_t lsn, int errnum)
{
    hq_jglue_t *g = arg;
    s_precs_t *q = &g->pend;
    while (q->head < q->n && q->v[q->head].lsn < lsn)
        q->head++; /* not expected: every tracked append completes */
    bool finish = false;
    while (q->head < q->n && q->v[q->head].lsn == lsn) {
        s_prec_t p = q->v[q->head++];
        if (p.type == HQ_JR_TASK_FINISHED)
            finish = true;
        if (!errnum)
            continue;
        if (p.type == HQ_JR_TASK_FINISHED &&
            (!g->first_failed_finish || lsn < g->first_failed_finish))
            g->first_failed_finish = lsn;
        p.lsn = 0;
        s_precs_push(&g->failed, &p);
        if (!g->warned_held) {
            g->warned_held = true;
            hq_warn("Journal: a %s record could not be written (%s); task results are held "
                    "in memory until the journal is writable again",
                    hq_jrec_name(p.type), strerror(errnum));
        }
    }
    if (q->head == q->n)
        q->head = q->n = 0;
    if (errnum) {
        if (hq_journal_available(g->j) && g->retry_timer < 0 && g->b->turn.loop && !g->closing)
            g->retry_timer = zloop_timer(g->b->turn.loop, 100, 1, s_on_retry, g);
        return;
    }
    if (!finish)
        return;
    /* Dependants of a finish wait until every finish up to it is durable: a later
     * durable finish does not stand in for a failed one that is not yet written. */
    uint64_t upto =
        g->first_failed_finish && lsn >= g->first_failed_finish ? g->first_failed_finish - 1 : lsn;
    if (upto > g->durable_finish)
        g->durable_finish = upto;
    if (g->n_held > g->head_held)
        s_release_held(g);
}

void hq_jr_task_state(hq_broker_t *b, const hq_job_t *j, const hq_task_t *t)
{
    hq_jglue_t *g = b->jr;
    if (!g || !j || !t)
        return;
    s_prec_t p = {
        .wall_ns = hq_wall_ns(), .type = HQ_JR_TASK_STATE, .a = j->id, .b = t->id, .c = 0};
    hq_jrec_t rec;
    hq_jrange_t one;
    if (s_prec_rec(b, &p, &rec, &one))
        s_track(g, &rec, p);
}

void hq_jr_hook(const hq_event_t *ev, void *arg)
{
    hq_jglue_t *g = arg;
    hq_broker_t *b = g->b;
    hq_jrec_t rec = {.wall_ns = ev->time_ns};
    hq_jrange_t one = {.first = ev->task_id, .last = ev->task_id};
    s_prec_t p = {.wall_ns = ev->time_ns, .a = ev->job_id, .b = ev->task_id, .c = ev->instance};
    switch (ev->type) {
    case HQ_EV_TASK_FINISHED:
    case HQ_EV_TASK_FAILED:
        rec.type = ev->type == HQ_EV_TASK_FINISHED ? HQ_JR_TASK_FINISHED : HQ_JR_TASK_FAILED;
        rec.u.task.job = ev->job_id;
        rec.u.task.task = ev->task_id;
        rec.u.task.instance = ev->instance;
        rec.u.task.error = ev->type == HQ_EV_TASK_FAILED ? ev->text : NULL;
        break;
    case HQ_EV_TASK_CANCELED:
    case HQ_EV_TASK_ABORTED:
        rec.type = ev->type == HQ_EV_TASK_CANCELED ? HQ_JR_TASKS_CANCELED : HQ_JR_TASKS_ABORTED;
        rec.u.tasks.job = ev->job_id;
        rec.u.tasks.n = 1;
        rec.u.tasks.ranges = &one;
        break;
    case HQ_EV_WORKER_CONNECTED: {
        const hq_worker_t *w = ev->obj;
        rec.type = HQ_JR_WORKER_UP;
        rec.u.worker_up.worker = ev->worker_id;
        rec.u.worker_up.epoch = w ? w->epoch : 0;
        rec.u.worker_up.reg = w && w->reg ? &w->reg->u.reg : NULL;
        /* Held when it fails, like results: appended again (before any dispatch to
         * the worker, which waits for the journal too) once the journal is writable. */
        p.a = ev->worker_id;
        p.b = p.c = 0;
        break;
    }
    case HQ_EV_WORKER_LOST: {
        const hq_worker_t *w = ev->obj;
        rec.type = HQ_JR_WORKER_LOST;
        rec.u.worker_lost.worker = ev->worker_id;
        rec.u.worker_lost.reason = w ? (uint32_t)w->state : 0;
        rec.u.worker_lost.text = ev->text;
        p.a = ev->worker_id;
        p.b = rec.u.worker_lost.reason;
        p.c = 0;
        break;
    }
    case HQ_EV_ALLOC_QUEUE:
    case HQ_EV_ALLOC_QUEUE_STATE:
    case HQ_EV_ALLOC_QUEUED:
    case HQ_EV_ALLOC_STATE:
        /* Appended without waiting: a lost tail costs at most a re-learned state. */
        if (hq_jrebuild_alloc_rec(ev, &rec))
            hq_jr_append(b, &rec, NULL, NULL);
        return;
    case HQ_EV_WORKER_OVERVIEW:
        /* Statistics only: appended without waiting, nothing depends on it. */
        rec.type = HQ_JR_WORKER_OVERVIEW;
        rec.u.overview.worker = ev->worker_id;
        rec.u.overview.hw_state = ev->text;
        hq_jr_append(b, &rec, NULL, NULL);
        return;
    default:
        return;
    }
    if (g->quiet && ev->type != HQ_EV_WORKER_LOST && ev->type != HQ_EV_WORKER_CONNECTED)
        return;
    p.type = rec.type;
    s_track(g, &rec, p);
}

void hq_jr_on_state(void *arg, enum hq_journal_state st, int errnum)
{
    hq_jglue_t *g = arg;
    switch (st) {
    case HQ_JOURNAL_OK:
        hq_info("Journal %s is writable again: dispatching resumes", g->path);
        g->warned = false;
        s_retry_failed(g);
        hq_sched_pause(g->b->ready.sched, false);
        break;
    case HQ_JOURNAL_UNAVAILABLE:
        /* A dispatch that cannot be recorded could hand out an instance id twice after
         * a crash: the scheduler places nothing until the journal is writable. */
        hq_sched_pause(g->b->ready.sched, true);
        hq_error("Journal %s is unavailable (%s): changes are refused and no task is "
                 "dispatched until it can be written again; running tasks continue",
                 g->path, strerror(errnum));
        break;
    case HQ_JOURNAL_POISONED:
        hq_error("Journal %s: a sync failed (%s); continuing in a fresh segment", g->path,
                 strerror(errnum));
        s_retry_failed(g);
        break;
    }
}
