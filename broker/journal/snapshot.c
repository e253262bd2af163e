/* Snapshots and compaction (see snapshot.h). */
#define HQ_LOG_MODULE "hq::server::journal"
#include "snapshot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "hq_log.h"
#include "alloc/alloc.h"
#include "hq_util.h"
#include "glue.h"

#define S_CHECK_MS 1000                       /* compaction check period */
#define S_MIN_ESTIMATE (8ull * 1024 * 1024)   /* smallest snapshot size assumed */
#define S_DEFAULT_MAX (1024ull * 1024 * 1024) /* journal bytes that always compact */

/* ---- writing ---- */

static bool s_pristine(const hq_task_t *t)
{
    return t->state == HQ_TS_WAITING && t->instance == 0 && t->crashes == 0 && t->worker == 0 &&
           t->start_ns == 0 && t->end_ns == 0;
}

static int s_add(hq_jsnap_t *s, const hq_jrec_t *rec, uint64_t *n, hq_err_t *err)
{
    (*n)++;
    return hq_jsnap_add(s, rec, err);
}

static int s_job(hq_jsnap_t *s, const hq_job_t *j, uint64_t *n, hq_err_t *err)
{
    bool opened = j->n_submits == 0 || j->submits[0].msg->u.submit.job_id != 0;
    hq_jrec_t r;
    if (opened) {
        r = (hq_jrec_t){.type = HQ_JR_JOB_OPEN, .wall_ns = j->submit_ns};
        r.u.job_open.job = j->id;
        r.u.job_open.name = j->name;
        r.u.job_open.has_max_fails = j->has_max_fails;
        r.u.job_open.max_fails = j->max_fails;
        if (s_add(s, &r, n, err) != 0)
            return -1;
    }
    for (uint32_t k = 0; k < j->n_submits; k++) {
        r = (hq_jrec_t){.type = HQ_JR_JOB_SUBMIT, .wall_ns = j->submit_ns};
        r.u.job_submit.job = j->id;
        r.u.job_submit.submit = &j->submits[k].msg->u.submit;
        if (s_add(s, &r, n, err) != 0)
            return -1;
    }
    for (uint32_t k = 0; k < j->n_tasks; k++) {
        const hq_task_t *t = &j->tasks[k];
        if (s_pristine(t))
            continue;
        r = (hq_jrec_t){.type = HQ_JR_TASK_STATE, .wall_ns = t->end_ns ? t->end_ns : j->submit_ns};
        r.u.task_state.job = j->id;
        r.u.task_state.task = t->id;
        r.u.task_state.state = t->state;
        r.u.task_state.instance = t->instance;
        r.u.task_state.worker = t->worker;
        r.u.task_state.crashes = t->crashes;
        r.u.task_state.start_ns = t->start_ns;
        r.u.task_state.end_ns = t->end_ns;
        r.u.task_state.error = t->state == HQ_TS_FAILED ? t->error : NULL;
        if (s_add(s, &r, n, err) != 0)
            return -1;
    }
    if (j->cancel_reason) {
        r = (hq_jrec_t){.type = HQ_JR_JOB_CANCEL, .wall_ns = j->finish_ns};
        r.u.job_cancel.job = j->id;
        r.u.job_cancel.reason = j->cancel_reason;
        if (s_add(s, &r, n, err) != 0)
            return -1;
    }
    if (opened && !j->open) {
        r = (hq_jrec_t){.type = HQ_JR_JOB_CLOSE, .wall_ns = j->submit_ns};
        r.u.job.job = j->id;
        if (s_add(s, &r, n, err) != 0)
            return -1;
    }
    return 0;
}

/* Where the allocator's records go in a snapshot. */
typedef struct s_arec {
    hq_jsnap_t *s;
    uint64_t *n;
    hq_err_t *err;
} s_arec_t;

static int s_alloc_rec(const hq_jrec_t *rec, void *arg)
{
    s_arec_t *x = arg;
    return s_add(x->s, rec, x->n, x->err);
}

static int s_fill(hq_broker_t *b, hq_jsnap_t *s, bool prune, uint64_t *n, uint32_t *dropped,
                  hq_err_t *err)
{
    hq_jrec_t r = {.type = HQ_JR_SERVER_START};
    r.u.server_start.epoch = hq_jr_epoch(b);
    r.u.server_start.uid = b->conf.access.server_uid;
    if (s_add(s, &r, n, err) != 0)
        return -1;
    r = (hq_jrec_t){.type = HQ_JR_ID_HIGHWATER};
    r.u.highwater.job = b->jobs.max_id;
    r.u.highwater.worker = b->reg.max_id;
    if (s_add(s, &r, n, err) != 0)
        return -1;
    for (uint32_t id = 1; id <= b->reg.max_id && id < b->reg.cap; id++) {
        const hq_worker_t *w = b->reg.tab[id];
        if (!w || w->state != HQ_WS_RUNNING)
            continue; /* dead workers only matter through the high-water */
        r = (hq_jrec_t){.type = HQ_JR_WORKER_UP};
        r.u.worker_up.worker = w->id;
        r.u.worker_up.epoch = w->epoch;
        r.u.worker_up.reg = w->reg ? &w->reg->u.reg : NULL;
        if (s_add(s, &r, n, err) != 0)
            return -1;
    }
    s_arec_t x = {s, n, err};
    if (hq_alloc_records(b, s_alloc_rec, &x) != 0)
        return -1;
    for (uint32_t id = 1; id <= b->jobs.max_id; id++) {
        const hq_job_t *j = hq_jobtab_get(&b->jobs, id);
        if (!j)
            continue;
        if (prune && !j->open && hq_job_is_complete(j)) {
            (*dropped)++;
            continue;
        }
        if (s_job(s, j, n, err) != 0)
            return -1;
    }
    return 0;
}

int hq_snapshot_write(hq_broker_t *b, bool prune, hq_journal_done_fn *cb, void *arg, hq_err_t *err)
{
    hq_journal_t *j = hq_jr_journal(b);
    if (!j)
        return hq_err_set(err, "the server has no journal");
    uint64_t t0 = hq_mono_ns();
    hq_jsnap_t *s = hq_journal_snapshot_begin(j, err);
    if (!s)
        return -1;
    uint64_t lsn = hq_jsnap_lsn(s);
    uint64_t n = 0;
    uint32_t dropped = 0;
    if (s_fill(b, s, prune, &n, &dropped, err) != 0) {
        hq_jsnap_abort(&s);
        return -1;
    }
    if (hq_jsnap_commit(&s, cb, arg, err) != 0)
        return -1;
    char pruned[64] = "";
    if (prune)
        snprintf(pruned, sizeof pruned, ", %u complete jobs dropped", dropped);
    hq_info("Journal snapshot at lsn %llu: %llu records%s, written in %.3f s",
            (unsigned long long)lsn, (unsigned long long)n, pruned,
            (double)(hq_mono_ns() - t0) / 1e9);
    return 0;
}

/* ---- replay ---- */

hq_task_t *hq_snapshot_apply_task(hq_broker_t *b, const hq_jrec_t *rec, hq_job_t **jp)
{
    hq_job_t *j = hq_jobtab_get(&b->jobs, rec->u.task_state.job);
    *jp = j;
    hq_task_t *t = j ? hq_job_task(j, rec->u.task_state.task) : NULL;
    uint8_t st = rec->u.task_state.state;
    if (!t || st >= HQ_TS_COUNT)
        return NULL;
    if (t->state != st)
        hq_events_task_state(NULL, j, t, st, rec->u.task_state.worker, rec->u.task_state.error,
                             rec->u.task_state.end_ns);
    t->instance = rec->u.task_state.instance;
    t->worker = rec->u.task_state.worker;
    t->crashes = rec->u.task_state.crashes;
    t->start_ns = rec->u.task_state.start_ns;
    t->end_ns = rec->u.task_state.end_ns;
    if (rec->u.task_state.worker > b->reg.max_id)
        b->reg.max_id = rec->u.task_state.worker;
    return t;
}

/* ---- compaction ---- */

typedef struct s_cx {
    hq_broker_t *b;
    int timer;           /* check timer (-1 = none) */
    bool busy;           /* a snapshot is being committed */
    bool detached;       /* detached while busy: freed by the commit's callback */
    uint64_t base_bytes; /* segment bytes written when the last snapshot began */
    uint64_t last_size;  /* records in the last snapshot x 48 (estimate of its bytes) */
    uint64_t max_bytes;  /* compact at least past this many bytes */
    struct s_cx *next;
} s_cx_t;

static s_cx_t *s_all;

static s_cx_t *s_cx(hq_broker_t *b)
{
    for (s_cx_t *x = s_all; x; x = x->next)
        if (x->b == b)
            return x;
    return NULL;
}

/* Rough size of the snapshot the state would give. */
static uint64_t s_estimate(hq_broker_t *b)
{
    uint64_t est = 256;
    for (uint32_t id = 1; id <= b->jobs.max_id; id++) {
        const hq_job_t *j = hq_jobtab_get(&b->jobs, id);
        if (!j)
            continue;
        est += 512 + 256ull * j->n_defs;
        est += 48ull * (j->n_tasks - j->counts[HQ_TS_WAITING]);
    }
    return est;
}

static void s_compacted(void *arg, uint64_t lsn, int errnum)
{
    s_cx_t *x = arg;
    x->busy = false;
    if (errnum)
        hq_warn("Journal compaction at lsn %llu failed: %s", (unsigned long long)lsn,
                strerror(errnum));
    if (x->detached)
        free(x);
}

static int s_on_check(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    s_cx_t *x = arg;
    hq_journal_t *j = hq_jr_journal(x->b);
    if (!j || x->busy || !hq_journal_available(j))
        return 0;
    hq_journal_stats_t st;
    hq_journal_stats(j, &st);
    uint64_t written = st.bytes - x->base_bytes;
    uint64_t est = s_estimate(x->b);
    if (est < S_MIN_ESTIMATE)
        est = S_MIN_ESTIMATE;
    if (written <= 4 * est && written <= x->max_bytes)
        return 0;
    hq_info("Journal: %llu bytes written since the last snapshot (estimated snapshot %llu "
            "bytes): compacting",
            (unsigned long long)written, (unsigned long long)est);
    hq_err_t err;
    x->busy = true;
    x->base_bytes = st.bytes;
    if (hq_snapshot_write(x->b, false, s_compacted, x, &err) != 0) {
        x->busy = false;
        hq_warn("Journal compaction failed: %s", err.text);
    }
    return 0;
}

void hq_snapshot_attach(hq_broker_t *b)
{
    if (!hq_jr_journal(b) || !b->turn.loop || s_cx(b))
        return;
    s_cx_t *x = hq_calloc(1, sizeof *x);
    x->b = b;
    x->max_bytes = S_DEFAULT_MAX;
    const char *env = getenv("HQ_JOURNAL_MAX_BYTES");
    if (env && *env) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(env, &end, 10);
        if (errno == 0 && end && *end == 0 && v > 0)
            x->max_bytes = v;
        else
            hq_warn("Ignoring HQ_JOURNAL_MAX_BYTES=%.64s: not a positive number of bytes", env);
    }
    /* Test hook: stop the snapshot commit after a step, as if the broker died there. */
    env = getenv("HQ_JOURNAL_TEST_SNAP_STOP");
    if (env && env[0] >= '1' && env[0] <= '4' && env[1] == 0)
        hq_journal_test_snap_stop(env[0] - '0');
    x->timer = zloop_timer(b->turn.loop, S_CHECK_MS, 0, s_on_check, x);
    x->next = s_all;
    s_all = x;
}

void hq_snapshot_detach(hq_broker_t *b)
{
    s_cx_t *x = s_cx(b);
    if (!x)
        return;
    if (b->turn.loop && x->timer >= 0)
        zloop_timer_end(b->turn.loop, x->timer);
    for (s_cx_t **pp = &s_all; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    /* A commit in flight still calls s_compacted: keep x alive until then. */
    if (!x->busy)
        free(x);
    else
        x->detached = true;
}

/* ---- JOURNAL_PRUNE ---- */

typedef struct s_prune {
    hq_broker_t *b;
    uint8_t rid[HQ_RID_MAX];
    size_t rid_len;
    uint64_t request_id;
    int round; /* 1: the first snapshot is being committed, 2: the second */
} s_prune_t;

static void s_prune_reply(s_prune_t *p, int errnum, const char *text)
{
    hq_msg_t fake = {.hdr = {.request_id = p->request_id}};
    hq_creq_t req = {.rid = p->rid, .rid_len = p->rid_len, .msg = &fake};
    if (errnum || text)
        hq_client_error(&p->b->replies, &req, HQ_ERR_UNAVAILABLE, "Cannot prune the journal: %s",
                        text ? text : strerror(errnum));
    else
        hq_client_reply_json(&p->b->replies, &req, json_object(), NULL);
}

static void s_prune_done(void *arg, uint64_t lsn, int errnum)
{
    (void)lsn;
    s_prune_t *p = arg;
    s_cx_t *x = s_cx(p->b);
    if (errnum == 0 && p->round == 1 && p->b->jr) {
        /* The second snapshot makes the first the fallback: the segments before it go. */
        hq_err_t err;
        p->round = 2;
        if (hq_snapshot_write(p->b, true, s_prune_done, p, &err) == 0)
            return;
        s_prune_reply(p, 0, err.text);
    } else {
        s_prune_reply(p, errnum, NULL);
    }
    if (x)
        x->busy = false;
    free(p);
}

int hq_h_journal_prune(hq_broker_t *b, hq_creq_t *req)
{
    if (!hq_jr_journal(b))
        return hq_client_error(&b->replies, req, HQ_ERR_INVALID,
                               "The server was started without a journal: there is nothing to "
                               "prune (start it with --journal <PATH>)");
    s_cx_t *x = s_cx(b);
    if (x && x->busy)
        return hq_client_error(&b->replies, req, HQ_ERR_UNAVAILABLE,
                               "The journal is being compacted right now; try again shortly");
    s_prune_t *p = hq_calloc(1, sizeof *p);
    p->b = b;
    memcpy(p->rid, req->rid, req->rid_len);
    p->rid_len = req->rid_len;
    p->request_id = req->msg->hdr.request_id;
    p->round = 1;
    hq_err_t err;
    if (x) {
        hq_journal_stats_t st;
        hq_journal_stats(hq_jr_journal(b), &st);
        x->busy = true;
        x->base_bytes = st.bytes;
    }
    if (hq_snapshot_write(b, true, s_prune_done, p, &err) != 0) {
        if (x)
            x->busy = false;
        free(p);
        return hq_client_error(&b->replies, req, HQ_ERR_UNAVAILABLE, "Cannot prune the journal: %s",
                               err.text);
    }
    return 0;
}
