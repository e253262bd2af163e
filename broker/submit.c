/* Requests that change jobs: submit (new job or attach to an open one), open, close,
 * cancel and forget. Each handler: validate -> check meaning -> act -> reply; the
 * change itself is applied once its journal records are durable (jobops.c). A keyed
 * submit already known (jobtab.c, SUBMIT idempotency keys) is answered with its job. */
#define HQ_LOG_MODULE "hq::server::job"
#include <stdlib.h>
#include <string.h>

#include "submit.h"
#include "cost.h"
#include "jobops.h"
#include "tasks.h"
#include "journal/glue.h"
#include "hq_log.h"
#include "hq_util.h"

/* ---- idempotency keys ---- */

/* What a submit waiting for durability carries to its completion. */
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

typedef struct s_subctx {
    hq_broker_t *b;
    uint32_t job_id; /* reserved (new job) or attached job; 0 without a journal */
    bool has_key;    /* the key was entered as pending under job_id */
    bool fresh;      /* job_id was reserved for a new job */
    bool recorded;   /* its journal record is durable */
    uint8_t key[HQ_SUBMIT_KEY_LEN];
} s_subctx_t;

/* Runs after the completion (applied or not): a key still pending means the submit
 * was refused or its record failed, so a retry must be handled as new. */
static void s_subctx_free(void *p)
{
    s_subctx_t *ctx = p;
    if (ctx && ctx->has_key)
        hq_jobtab_key_drop(&ctx->b->jobs, ctx->key, ctx->job_id, true);
    if (ctx && ctx->fresh && !ctx->recorded) /* never journaled: the id was not used */
        hq_jobtab_give_back(&ctx->b->jobs, ctx->job_id);
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
    ((s_subctx_t *)ctx)->recorded = true;
    hq_err_t err;
    int rc = hq_submit_apply(b, job_id, req->msg, 0, &err);
    if (rc != 0) {
        hq_client_error(&b->replies, req, rc == -2 ? HQ_ERR_NOT_FOUND : HQ_ERR_INVALID, "%s",
                        err.text);
        return;
    }
    req->stolen = true;
    uint32_t id = req->msg->u.submit.job_id;
    if (id == 0)
        id = job_id ? job_id : b->jobs.max_id;
    if (s_lose_reply(id))
        return;
    hq_client_reply_log(&b->replies, req, id, NULL, 0);
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
        uint32_t known = hq_jobtab_key_find(&b->jobs, s->key, &pending);
        if (known && pending) {
            hq_debug("Submit retry for job %u still waits for the journal; repeat dropped", known);
            return 0;
        }
        if (known) {
            hq_debug("Submit retry for job %u answered again (idempotency key)", known);
            hq_client_reply_log(&b->replies, req, known, NULL, 0);
            return 0;
        }
    }
    /* validate */
    if (!s->submit_dir || s->submit_dir[0] != '/')
        return hq_client_error(&b->replies, req, HQ_ERR_BAD_REQUEST,
                               "The submit directory must be absolute");
    if (s->n_defs == 0)
        return hq_client_error(&b->replies, req, HQ_ERR_BAD_REQUEST,
                               "The submit has no task definition");
    if (s->n_graph > 0 && (s->ids.n > 0 || s->n_entries > 0))
        return hq_client_error(&b->replies, req, HQ_ERR_INVALID,
                               "Definition of array job and individual task cannot be mixed");
    for (uint32_t i = 0; i < s->n_defs; i++)
        if (s_check_def(&s->defs[i], &err) != 0)
            return hq_client_error(&b->replies, req, HQ_ERR_INVALID, "%s", err.text);
    /* what it costs: refused before it is journaled, as a record the broker cannot
     * apply would stop it at every restart */
    if (hq_cost_check_submit(s, req->len, &err) != 0 || hq_cost_check_frame(s, &err) != 0)
        return hq_client_error(&b->replies, req, HQ_ERR_INVALID, "%s", err.text);
    /* check meaning (again when applied: the job may change before that) */
    if (s->job_id != 0) {
        hq_job_t *j = hq_jobtab_get(&b->jobs, s->job_id);
        if (!j)
            return hq_client_error(&b->replies, req, HQ_ERR_NOT_FOUND, "Job %u not found.",
                                   s->job_id);
        if (!j->open)
            return hq_client_error(&b->replies, req, HQ_ERR_INVALID, "Job %u is not opened.",
                                   s->job_id);
    }
    s_subctx_t *ctx = hq_calloc(1, sizeof *ctx);
    ctx->b = b;
    if (!b->jr)
        return hq_jr_commit(b, req, NULL, 0, s_submit_done, ctx, s_subctx_free);
    ctx->fresh = s->job_id == 0;
    ctx->job_id = s->job_id ? s->job_id : hq_jobtab_next_id(&b->jobs);
    if (s->has_key) {
        ctx->has_key = true;
        memcpy(ctx->key, s->key, HQ_SUBMIT_KEY_LEN);
        hq_jobtab_key_put(&b->jobs, s->key, ctx->job_id, true);
    }
    hq_jrec_t rec = {.type = HQ_JR_JOB_SUBMIT};
    rec.u.job_submit.job = ctx->job_id;
    rec.u.job_submit.submit = s;
    return hq_jr_commit(b, req, &rec, 1, s_submit_done, ctx, s_subctx_free);
}

static void s_open_done(hq_broker_t *b, hq_creq_t *req, void *ctx)
{
    const hq_query_t *q = &req->msg->u.query;
    hq_job_t *j = hq_open_apply(b, *(uint32_t *)ctx, q->text, q->number > 0,
                                q->number > 0 ? (uint32_t)(q->number - 1) : 0, 0);
    if (!j) {
        hq_client_error(&b->replies, req, HQ_ERR_INVALID, "Job %u already exists.",
                        *(uint32_t *)ctx);
        return;
    }
    hq_client_reply_log(&b->replies, req, j->id, NULL, 0);
}

int hq_h_job_open(hq_broker_t *b, hq_creq_t *req)
{
    if (hq_jr_inflight(b, req))
        return 0;
    const hq_query_t *q = &req->msg->u.query;
    if (q->text && (strchr(q->text, '\n') || strchr(q->text, '\t')))
        return hq_client_error(&b->replies, req, HQ_ERR_INVALID,
                               "name cannot have a newline or a tab");
    uint32_t *ctx = hq_malloc(sizeof *ctx);
    *ctx = 0;
    if (!b->jr)
        return hq_jr_commit(b, req, NULL, 0, s_open_done, ctx, free);
    *ctx = hq_jobtab_next_id(&b->jobs);
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
    hq_client_reply_log(&b->replies, req, 0, l->v, l->n);
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
    sel->ids = hq_jobtab_select(&b->jobs, q, &sel->n, &sel->miss, &sel->nm);
    return sel;
}

/* Records to commit for one request, growing. */
typedef struct s_recs {
    hq_jrec_t *v;
    uint32_t n, cap;
    hq_jrange_t **ranges; /* owned range arrays of tasks-canceled records */
    uint32_t n_ranges;
} s_recs_t;

static hq_jrec_t *s_rec_add(s_recs_t *r, enum hq_jrec_type type)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->v = hq_realloc(r->v, r->cap * sizeof *r->v);
    }
    hq_jrec_t *rec = &r->v[r->n++];
    memset(rec, 0, sizeof *rec);
    rec->type = type;
    return rec;
}

/* The most ranges put in one tasks-canceled record (well under the record size cap). */
#define S_CANCEL_RANGES_PER_REC 65536u

/* tasks-canceled records for the unfinished tasks of j (ids ascending), so that the
 * cancel of each task is durable before the request is answered, like the job's. */
static void s_cancel_ranges(s_recs_t *r, const hq_job_t *j)
{
    hq_jrange_t *rg = NULL;
    uint32_t n = 0, cap = 0;
    for (uint32_t k = 0; k < j->n_tasks; k++) {
        const hq_task_t *t = &j->tasks[k];
        if (hq_tstate_final(t->state))
            continue;
        if (n > 0 && rg[n - 1].last + 1 == t->id) {
            rg[n - 1].last = t->id;
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            rg = hq_realloc(rg, cap * sizeof *rg);
        }
        rg[n++] = (hq_jrange_t){.first = t->id, .last = t->id};
    }
    if (n == 0)
        return;
    r->ranges = hq_realloc(r->ranges, (r->n_ranges + 1) * sizeof *r->ranges);
    r->ranges[r->n_ranges++] = rg;
    for (uint32_t off = 0; off < n; off += S_CANCEL_RANGES_PER_REC) {
        hq_jrec_t *rec = s_rec_add(r, HQ_JR_TASKS_CANCELED);
        rec->u.tasks.job = j->id;
        rec->u.tasks.ranges = rg + off;
        rec->u.tasks.n = n - off < S_CANCEL_RANGES_PER_REC ? n - off : S_CANCEL_RANGES_PER_REC;
    }
}

/* Records one job_* record per selected job that passes keep() (nothing else changes
 * state; a cancel adds the tasks-canceled records of the job), then applies. */
static int s_sel_commit(hq_broker_t *b, hq_creq_t *req, s_sel_t *sel, enum hq_jrec_type type,
                        bool (*keep)(hq_broker_t *, const hq_job_t *, const hq_query_t *),
                        hq_jr_apply_fn *apply)
{
    const hq_query_t *q = &req->msg->u.query;
    s_recs_t recs = {0};
    if (b->jr && sel->n > 0) {
        for (uint32_t i = 0; i < sel->n; i++) {
            const hq_job_t *j = b->jobs.tab[sel->ids[i]];
            if (!keep(b, j, q))
                continue;
            hq_jrec_t *r = s_rec_add(&recs, type);
            if (type == HQ_JR_JOB_CANCEL) {
                r->u.job_cancel.job = j->id;
                r->u.job_cancel.reason = q->text && q->text[0] ? q->text : NULL;
                s_cancel_ranges(&recs, j);
            } else {
                r->u.job.job = j->id;
            }
        }
    }
    int rc = hq_jr_commit(b, req, recs.v, recs.n, apply, sel, s_sel_free);
    free(recs.v);
    for (uint32_t i = 0; i < recs.n_ranges; i++)
        free(recs.ranges[i]);
    free(recs.ranges);
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
        hq_job_t *j = hq_jobtab_get(&b->jobs, sel->ids[i]);
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
    hq_turn_dirty(&b->turn);
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
        hq_job_t *j = hq_jobtab_get(&b->jobs, sel->ids[i]);
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
        hq_readyq_post(&b->ready, cmd);
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
    hq_turn_dirty(&b->turn);
    s_reply_lines(b, req, &l);
}

int hq_h_job_cancel(hq_broker_t *b, hq_creq_t *req)
{
    if (hq_jr_inflight(b, req))
        return 0;
    const hq_query_t *q = &req->msg->u.query;
    size_t rlen = q->text ? strlen(q->text) : 0;
    if (rlen > 200)
        return hq_client_error(&b->replies, req, HQ_ERR_INVALID,
                               "Cancel reason must be shorter than 200 you entered %zu.", rlen);
    s_sel_t *sel = s_sel_new(b, &q->sel);
    if (q->sel.kind == HQ_SEL_ALL) {
        /* `all` means the waiting and running jobs: finished ones are not named. */
        uint32_t k = 0;
        for (uint32_t i = 0; i < sel->n; i++)
            if (s_open_tasks(b->jobs.tab[sel->ids[i]]) > 0)
                sel->ids[k++] = sel->ids[i];
        sel->n = k;
    }
    return s_sel_commit(b, req, sel, HQ_JR_JOB_CANCEL, s_keep_cancel, s_cancel_done);
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

static void s_forget_done(hq_broker_t *b, hq_creq_t *req, void *ctx)
{
    s_sel_t *sel = ctx;
    const hq_query_t *q = &req->msg->u.query;
    uint32_t forgotten = 0, ignored = sel->nm;
    for (uint32_t i = 0; i < sel->n; i++) {
        hq_job_t *j = hq_jobtab_get(&b->jobs, sel->ids[i]);
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
