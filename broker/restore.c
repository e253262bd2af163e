/* The journal inside the broker (see jglue.h): replay into the tables, the durable
 * commit of client mutations, the event hook and dependants held until their parent's
 * end is durable. */
#define HQ_LOG_MODULE "hq::server::journal"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jglue.h"
#include "jobops.h"
#include "tasks.h"
#include "jstream.h"
#include "snapshot.h"
#include "hq_duration.h"
#include "hq_log.h"
#include "hq_util.h"

/* A record of the event hook (task results, task states, worker losses) between its
 * append and its completion, or held after its write failed (ENOSPC, EIO): held records
 * are appended again once the journal is writable (G8: tasks keep running while the
 * journal is unavailable, and their results are held in memory until they are
 * durable). Compact: texts are taken again from the live state. */
typedef struct s_prec {
    uint64_t lsn;     /* of its current append (0 while held) */
    uint64_t wall_ns; /* of the event */
    uint32_t type;    /* enum hq_jrec_type */
    uint32_t a, b, c; /* task records: job, task, instance; worker_lost: worker, reason */
} s_prec_t;

typedef struct s_precs {
    s_prec_t *v;
    uint32_t head, n, cap;
} s_precs_t;

/* A dependant waiting for the durability of the finish that made it ready. */
typedef struct s_held {
    uint64_t lsn;    /* the finish record */
    uint32_t job_id; /* the dependant */
    uint32_t task_id;
} s_held_t;

struct hq_jglue {
    hq_broker_t *b;
    hq_journal_t *j;
    char *path;
    uint64_t epoch;          /* this run's server_start epoch */
    bool quiet;              /* task events not recorded */
    zhashx_t *inflight;      /* "<rid hex>:<request id>" of requests waiting for durability */
    uint64_t last_finish;    /* lsn of the last task_finished appended */
    uint64_t durable_finish; /* highest task_finished lsn known durable */
    s_held_t *held;          /* dependants waiting, in lsn order */
    uint32_t n_held, cap_held, head_held;
    bool warned;                  /* an append failure was logged */
    uint64_t grace_ns;            /* re-adoption grace period after the restart (0 = off) */
    uint32_t n_readopt;           /* tasks restored as running, waiting for re-adoption */
    int grace_timer;              /* zloop timer id of the grace period, -1 */
    s_precs_t pend;               /* hook records appended, completion not seen yet (lsn order) */
    s_precs_t failed;             /* hook records whose write failed, to append again */
    uint64_t first_failed_finish; /* lowest failed task_finished lsn not appended again */
    int retry_timer;              /* zloop timer id of a retry of failed records, -1 */
    bool closing;                 /* hq_jr_close runs: no new timers */
    bool warned_held;             /* holding records was logged */
};

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

/* ---- replay ---- */

/* A task known to have been dispatched (task_started) and not ended since. */
typedef struct s_run {
    uint32_t job_id, task_id;
} s_run_t;

struct hq_jr_state {
    hq_broker_t *b;
    uint64_t epoch; /* last server_start epoch */
    char uid[17];   /* its uid */
    s_run_t *run;   /* dispatched tasks (entries may be stale; checked on use) */
    uint32_t n_run, cap_run;
    uint64_t records;
    bool readopt;       /* running tasks wait for re-adoption */
    uint32_t n_readopt; /* how many did */
    uint8_t *wpolicy;   /* per worker id: 0 unknown, 1 on-server-lost stop, 2 finish */
    uint32_t cap_wpolicy;
};

void hq_jr_state_readopt(hq_jr_state_t *s, bool on)
{
    s->readopt = on;
}

/* A worker that registered with on-server-lost=stop exits when the broker goes away:
 * its tasks cannot be re-adopted and need no grace period. */
static void s_note_policy(hq_jr_state_t *s, uint32_t wid, const hq_msg_t *reg)
{
    if (!reg || wid == 0 || wid > HQ_MAX_JOB_TASKS)
        return;
    if (wid >= s->cap_wpolicy) {
        uint32_t cap = s->cap_wpolicy ? s->cap_wpolicy : 64;
        while (cap <= wid)
            cap *= 2;
        s->wpolicy = hq_realloc(s->wpolicy, cap);
        memset(s->wpolicy + s->cap_wpolicy, 0, cap - s->cap_wpolicy);
        s->cap_wpolicy = cap;
    }
    s->wpolicy[wid] = reg->u.reg.conf.on_server_lost == HQ_LOST_FINISH_RUNNING ? 2 : 1;
}

static bool s_may_return(const hq_jr_state_t *s, uint32_t wid)
{
    return wid >= s->cap_wpolicy || s->wpolicy[wid] != 1;
}

hq_jr_state_t *hq_jr_state_new(hq_broker_t *b)
{
    hq_jr_state_t *s = hq_calloc(1, sizeof *s);
    s->b = b;
    return s;
}

const char *hq_jr_state_uid(const hq_jr_state_t *s)
{
    return s->uid;
}

static hq_task_t *s_task(hq_broker_t *b, uint32_t job_id, uint32_t task_id, hq_job_t **jp)
{
    hq_job_t *j = hq_jobtab_get(&b->jobs, job_id);
    *jp = j;
    return j ? hq_job_task(j, task_id) : NULL;
}

/* A final state from a record. A task_finished/failed after the job's cancel record is
 * kept: the worker's result was applied before the cancel (its record was appended
 * while the cancel waited for durability). */
static void s_end(hq_job_t *j, hq_task_t *t, enum hq_tstate st, const char *error, uint64_t ns)
{
    if (hq_tstate_final(t->state) &&
        !(t->state == HQ_TS_CANCELED && (st == HQ_TS_FINISHED || st == HQ_TS_FAILED)))
        return;
    hq_events_task_state(NULL, j, t, st, t->worker, error, ns);
}

static void s_ranges(hq_broker_t *b, const hq_jrec_t *rec, enum hq_tstate st)
{
    hq_job_t *j = hq_jobtab_get(&b->jobs, rec->u.tasks.job);
    if (!j)
        return;
    for (uint32_t r = 0; r < rec->u.tasks.n; r++) {
        const hq_jrange_t *rg = &rec->u.tasks.ranges[r];
        for (uint64_t id = rg->first; id <= rg->last; id++) {
            hq_task_t *t = hq_job_task(j, (uint32_t)id);
            if (t && !hq_tstate_final(t->state))
                hq_events_task_state(NULL, j, t, st, t->worker, NULL, rec->wall_ns);
        }
    }
}

static void s_worker_lost(hq_jr_state_t *s, const hq_jrec_t *rec)
{
    uint32_t wid = rec->u.worker_lost.worker;
    bool crash = rec->u.worker_lost.reason == HQ_WS_HEARTBEAT_LOST ||
                 rec->u.worker_lost.reason == HQ_WS_CONNECTION_LOST;
    uint32_t k = 0;
    for (uint32_t i = 0; i < s->n_run; i++) {
        hq_job_t *j;
        hq_task_t *t = s_task(s->b, s->run[i].job_id, s->run[i].task_id, &j);
        if (!t || t->state != HQ_TS_RUNNING) {
            continue; /* ended: drop the entry */
        }
        if (t->worker != wid) {
            s->run[k++] = s->run[i];
            continue;
        }
        /* As hq_broker_requeue did: back to waiting with the next instance. */
        if (crash)
            t->crashes++;
        t->instance++;
        hq_events_task_state(NULL, j, t, HQ_TS_WAITING, 0, NULL, rec->wall_ns);
    }
    s->n_run = k;
}

/* task_started (or one instance of tasks_started): the task runs on worker. */
static void s_started(hq_jr_state_t *s, uint32_t job_id, uint32_t task_id, uint32_t instance,
                      uint32_t worker, uint64_t wall_ns)
{
    hq_broker_t *b = s->b;
    hq_job_t *j;
    hq_task_t *t = s_task(b, job_id, task_id, &j);
    if (!t || hq_tstate_final(t->state))
        return;
    if (instance > t->instance)
        t->instance = instance;
    t->worker = worker;
    if (t->state != HQ_TS_RUNNING)
        hq_events_task_state(NULL, j, t, HQ_TS_RUNNING, t->worker, NULL, wall_ns);
    if (s->n_run == s->cap_run) {
        s->cap_run = s->cap_run ? s->cap_run * 2 : 256;
        s->run = hq_realloc(s->run, s->cap_run * sizeof *s->run);
    }
    s->run[s->n_run++] = (s_run_t){.job_id = j->id, .task_id = t->id};
    if (worker > b->reg.max_id)
        b->reg.max_id = worker;
}

/* A task's state from a snapshot (snapshot.c applies it); a running one is tracked
 * like after task_started, so a later worker_lost requeues it. */
static void s_snapshot_task(hq_jr_state_t *s, const hq_jrec_t *rec)
{
    hq_job_t *j;
    hq_task_t *t = hq_snapshot_apply_task(s->b, rec, &j);
    if (!t || t->state != HQ_TS_RUNNING)
        return;
    if (s->n_run == s->cap_run) {
        s->cap_run = s->cap_run ? s->cap_run * 2 : 256;
        s->run = hq_realloc(s->run, s->cap_run * sizeof *s->run);
    }
    s->run[s->n_run++] = (s_run_t){.job_id = j->id, .task_id = t->id};
}

uint64_t hq_jr_epoch(const hq_broker_t *b)
{
    return b->jr ? b->jr->epoch : 0;
}

int hq_jr_apply_record(hq_jrec_t *rec, bool from_snapshot, void *arg, hq_err_t *err)
{
    (void)from_snapshot;
    (void)err;
    hq_jr_state_t *s = arg;
    hq_broker_t *b = s->b;
    hq_job_t *j = NULL;
    hq_task_t *t = NULL;
    s->records++;
    switch (rec->type) {
    case HQ_JR_SERVER_START:
        s->epoch = rec->u.server_start.epoch;
        if (rec->u.server_start.uid)
            snprintf(s->uid, sizeof s->uid, "%s", rec->u.server_start.uid);
        if (s->uid[0] && strlen(s->uid) < sizeof b->conf.access.server_uid)
            memcpy(b->conf.access.server_uid, s->uid, strlen(s->uid) + 1);
        break;
    case HQ_JR_JOB_SUBMIT: {
        hq_msg_t *msg = rec->u.job_submit.msg;
        uint32_t id = rec->u.job_submit.job;
        if (!msg || id == 0)
            break;
        if (id > b->jobs.max_id) {
            hq_jobtab_reserve(&b->jobs, id);
            b->jobs.max_id = id;
        }
        hq_err_t e;
        if (hq_submit_apply(b, id, msg, rec->wall_ns, &e) == 0)
            rec->u.job_submit.msg = NULL; /* taken by the job */
        else
            hq_debug("Journal: submit into job %u was refused when it happened: %s", id, e.text);
        break;
    }
    case HQ_JR_JOB_OPEN:
        if (rec->u.job_open.job > b->jobs.max_id) {
            hq_jobtab_reserve(&b->jobs, rec->u.job_open.job);
            b->jobs.max_id = rec->u.job_open.job;
        }
        hq_open_apply(b, rec->u.job_open.job, rec->u.job_open.name, rec->u.job_open.has_max_fails,
                      rec->u.job_open.max_fails, rec->wall_ns);
        break;
    case HQ_JR_JOB_CLOSE:
        j = hq_jobtab_get(&b->jobs, rec->u.job.job);
        if (j)
            j->open = false;
        break;
    case HQ_JR_JOB_CANCEL:
        j = hq_jobtab_get(&b->jobs, rec->u.job_cancel.job);
        if (!j)
            break;
        for (uint32_t k = 0; k < j->n_tasks; k++)
            if (!hq_tstate_final(j->tasks[k].state))
                hq_events_task_state(NULL, j, &j->tasks[k], HQ_TS_CANCELED, j->tasks[k].worker,
                                     NULL, rec->wall_ns);
        free(j->cancel_reason);
        j->cancel_reason = rec->u.job_cancel.reason && rec->u.job_cancel.reason[0]
                               ? hq_strdup(rec->u.job_cancel.reason)
                               : NULL;
        break;
    case HQ_JR_JOB_FORGET:
        j = hq_jobtab_get(&b->jobs, rec->u.job.job);
        if (j && hq_job_is_complete(j) && !j->open) {
            hq_jobtab_keys_forget(&b->jobs, j);
            b->jobs.tab[j->id] = NULL;
            b->jobs.n_live--;
            hq_job_destroy(&j);
        }
        break;
    case HQ_JR_TASK_STARTED:
        s_started(s, rec->u.task.job, rec->u.task.task, rec->u.task.instance, rec->u.task.worker,
                  rec->wall_ns);
        break;
    case HQ_JR_TASKS_STARTED:
        for (uint32_t k = 0; k < rec->u.batch.n; k++)
            s_started(s, rec->u.batch.job, rec->u.batch.insts[k].task,
                      rec->u.batch.insts[k].instance, rec->u.batch.worker, rec->wall_ns);
        break;
    case HQ_JR_TASK_FINISHED:
    case HQ_JR_TASK_FAILED:
        t = s_task(b, rec->u.task.job, rec->u.task.task, &j);
        if (t)
            s_end(j, t, rec->type == HQ_JR_TASK_FINISHED ? HQ_TS_FINISHED : HQ_TS_FAILED,
                  rec->u.task.error, rec->wall_ns);
        break;
    case HQ_JR_TASKS_FINISHED:
        for (uint32_t k = 0; k < rec->u.batch.n; k++) {
            t = s_task(b, rec->u.batch.job, rec->u.batch.insts[k].task, &j);
            if (t)
                s_end(j, t, HQ_TS_FINISHED, NULL, rec->wall_ns);
        }
        break;
    case HQ_JR_TASKS_CANCELED:
        s_ranges(b, rec, HQ_TS_CANCELED);
        break;
    case HQ_JR_TASKS_ABORTED:
        s_ranges(b, rec, HQ_TS_ABORTED);
        break;
    case HQ_JR_WORKER_UP:
        s_note_policy(s, rec->u.worker_up.worker, rec->u.worker_up.msg);
        if (rec->u.worker_up.worker > b->reg.max_id)
            b->reg.max_id = rec->u.worker_up.worker;
        break;
    case HQ_JR_WORKER_LOST:
        s_worker_lost(s, rec);
        break;
    case HQ_JR_ID_HIGHWATER:
        if (rec->u.highwater.job > b->jobs.max_id) {
            hq_jobtab_reserve(&b->jobs, rec->u.highwater.job);
            b->jobs.max_id = rec->u.highwater.job;
        }
        if (rec->u.highwater.worker > b->reg.max_id)
            b->reg.max_id = rec->u.highwater.worker;
        break;
    case HQ_JR_TASK_STATE:
        s_snapshot_task(s, rec);
        break;
    default:
        break; /* server_stop, snapshot end: nothing to rebuild */
    }
    return 0;
}

static uint64_t s_state_finish(hq_jr_state_t **p, uint32_t *n_readopt);

uint64_t hq_jr_state_finish(hq_jr_state_t **p)
{
    uint32_t n;
    return s_state_finish(p, &n);
}

static uint64_t s_state_finish(hq_jr_state_t **p, uint32_t *n_readopt)
{
    hq_jr_state_t *s = *p;
    hq_broker_t *b = s->b;
    uint64_t now = hq_wall_ns();
    for (uint32_t id = 1; id <= b->jobs.max_id; id++) {
        hq_job_t *j = hq_jobtab_get(&b->jobs, id);
        if (!j)
            continue;
        uint64_t last_end = 0;
        for (uint32_t i = 0; i < j->n_tasks; i++) {
            hq_task_t *t = &j->tasks[i];
            if (s->readopt && (t->state == HQ_TS_RUNNING || t->state == HQ_TS_ASSIGNED) &&
                s_may_return(s, t->worker)) {
                /* Running when the broker stopped: its worker may come back and report
                 * it (same instance); hq_broker_readopt_expire requeues it otherwise. */
                if (t->state != HQ_TS_RUNNING)
                    hq_events_task_state(NULL, j, t, HQ_TS_RUNNING, t->worker, NULL, now);
                t->flags |= HQ_TF_READOPT;
                s->n_readopt++;
            } else if (t->state == HQ_TS_RUNNING || t->state == HQ_TS_ASSIGNED) {
                /* Running when the broker stopped: it runs again under a new instance
                 * (re-adoption by reconnecting workers comes later); a broker crash is
                 * not the task's fault, so the crash counter stays. */
                t->instance++;
                hq_events_task_state(NULL, j, t, HQ_TS_WAITING, 0, NULL, now);
            }
            if (hq_tstate_final(t->state) && t->end_ns > last_end)
                last_end = t->end_ns;
        }
        if (j->deps) {
            for (uint32_t n = 0; n < j->deps->n_nodes; n++) {
                hq_dnode_t *node = &j->deps->nodes[n];
                uint32_t wait = 0;
                for (uint32_t k = 0; k < node->n_deps; k++) {
                    const hq_task_t *dt = hq_job_task(j, node->deps[k]);
                    if (dt && dt->state != HQ_TS_FINISHED)
                        wait++;
                }
                node->n_wait = wait;
            }
        }
        j->finish_ns = hq_job_is_complete(j) ? last_end : 0;
    }
    if (b->reg.max_id + 1 >= b->reg.cap) {
        uint32_t cap = b->reg.cap ? b->reg.cap : 64;
        while (b->reg.max_id + 1 >= cap)
            cap *= 2;
        b->reg.tab = hq_realloc(b->reg.tab, cap * sizeof(hq_worker_t *));
        memset(b->reg.tab + b->reg.cap, 0, (cap - b->reg.cap) * sizeof(hq_worker_t *));
        b->reg.cap = cap;
    }
    b->ready.n = 0; /* the scheduler learns the restored tasks in hq_jr_attach */
    b->cancels.n = 0;
    uint64_t epoch = s->epoch;
    *n_readopt = s->n_readopt;
    if (s->n_readopt)
        hq_info("%u task%s running when the broker stopped wait for their workers to "
                "reconnect",
                s->n_readopt, s->n_readopt == 1 ? "" : "s");
    free(s->run);
    free(s->wpolicy);
    free(s);
    *p = NULL;
    return epoch;
}

/* ---- open / attach / close ---- */

int hq_jr_open(hq_broker_t *b, const char *path, uint64_t flush_ns, hq_err_t *err)
{
    hq_journal_opts_t o = {
        .flush_period_ns = flush_ns, .uid = b->conf.access.server_uid, .coalesce_finished = true};
    /* Segment preallocation size; small values let tests put a journal on a tiny
     * filesystem. Accepts a plain byte count of at least 4096. */
    const char *sv = getenv("HQ_JOURNAL_SEGMENT_BYTES");
    if (sv && *sv) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(sv, &end, 10);
        if (errno || !end || *end || v < 4096 || v > (1ULL << 40))
            hq_warn("Ignoring HQ_JOURNAL_SEGMENT_BYTES=%s: expected a byte count between 4096 "
                    "and 1099511627776",
                    sv);
        else
            o.segment_size = v;
    }
    hq_journal_t *j = hq_journal_open(path, &o, err);
    if (!j)
        return -1;
    uint64_t t0 = hq_mono_ns();
    uint64_t grace_ns = HQ_READOPT_GRACE_NS;
    const char *gv = getenv("HQ_READOPT_GRACE");
    if (gv && *gv) {
        hq_err_t e;
        if (hq_duration_parse(gv, &grace_ns, &e) != 0) {
            hq_warn("Ignoring HQ_READOPT_GRACE=%s: %s", gv, e.text);
            grace_ns = HQ_READOPT_GRACE_NS;
        }
    }
    hq_jr_state_t *st = hq_jr_state_new(b);
    hq_jr_state_readopt(st, grace_ns > 0);
    hq_journal_report_t rep;
    if (hq_journal_replay(j, hq_jr_apply_record, st, &rep, err) != 0) {
        hq_jr_state_finish(&st);
        hq_journal_close(&j);
        return -1;
    }
    uint64_t records = st->records;
    uint32_t n_readopt = 0;
    uint64_t epoch = s_state_finish(&st, &n_readopt);
    uint64_t dt = hq_mono_ns() - t0;
    if (rep.last_lsn > 0 || rep.torn_bytes > 0)
        hq_info("Journal %s replayed: %llu records (%llu from a snapshot), %u segments, "
                "%llu torn bytes dropped, %u jobs restored, in %.3f s",
                path, (unsigned long long)records, (unsigned long long)rep.snap_records,
                rep.segments, (unsigned long long)rep.torn_bytes, b->jobs.n_live, (double)dt / 1e9);
    else
        hq_info("Journal %s is empty: starting a new one", path);
    if (rep.note[0])
        hq_warn("Journal: %s", rep.note);
    if (hq_journal_start(j, err) != 0) {
        hq_journal_close(&j);
        return -1;
    }
    hq_jglue_t *g = hq_calloc(1, sizeof *g);
    g->b = b;
    g->j = j;
    g->path = hq_strdup(path);
    g->epoch = epoch + 1;
    g->inflight = zhashx_new();
    g->grace_ns = grace_ns;
    g->n_readopt = n_readopt;
    g->grace_timer = -1;
    g->retry_timer = -1;
    b->jr = g;
    hq_jrec_t rec = {.type = HQ_JR_SERVER_START};
    rec.u.server_start.epoch = g->epoch;
    rec.u.server_start.uid = b->conf.access.server_uid;
    if (hq_journal_append(j, &rec, NULL, NULL, err) == 0 || hq_journal_flush(j, err) != 0) {
        hq_err_t e2;
        hq_err_set(&e2, "Cannot write to the journal %s: %s", path, err->text);
        *err = e2;
        hq_jr_close(b);
        return -1;
    }
    hq_info("Journal epoch %llu", (unsigned long long)g->epoch);
    return 0;
}

static void s_hook(const hq_event_t *ev, void *arg);
static void s_on_state(void *arg, enum hq_journal_state st, int errnum);

static int s_on_grace(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    hq_jglue_t *g = arg;
    g->grace_timer = -1;
    uint32_t n = hq_broker_readopt_expire(g->b);
    if (n)
        hq_info("Re-adoption grace period over: %u task%s not reported by a worker run "
                "again under a new instance",
                n, n == 1 ? "" : "s");
    else
        hq_info("Re-adoption grace period over: no task left waiting for its worker");
    return 0;
}

int hq_jr_attach(hq_broker_t *b, hq_err_t *err)
{
    hq_jglue_t *g = b->jr;
    if (!g)
        return 0;
    if (hq_journal_attach(g->j, b->turn.loop) != 0)
        return hq_err_set(err, "Cannot attach the journal to the loop");
    hq_journal_on_state(g->j, s_on_state, g);
    hq_events_hook(b->events, s_hook, g);
    hq_snapshot_attach(b);
    if (g->n_readopt) {
        uint64_t ms = g->grace_ns / HQ_NS_PER_MS;
        g->grace_timer = zloop_timer(b->turn.loop, ms ? (size_t)ms : 1, 1, s_on_grace, g);
        hq_info("Waiting up to %.1f s for workers to re-adopt %u running task%s",
                (double)g->grace_ns / 1e9, g->n_readopt, g->n_readopt == 1 ? "" : "s");
    }
    /* The scheduler learns the restored request classes and waiting tasks. */
    for (uint32_t id = 1; id <= b->jobs.max_id; id++) {
        hq_job_t *j = hq_jobtab_get(&b->jobs, id);
        if (!j)
            continue;
        for (uint32_t d = 0; d < j->n_defs; d++) {
            bool first = true;
            for (uint32_t e = 0; e < d && first; e++)
                first = j->defs[e].rq_id != j->defs[d].rq_id;
            if (!first)
                continue;
            hq_readyq_add_class(&b->ready, j->defs[d].rq_id, j->defs[d].def);
        }
        if (j->counts[HQ_TS_WAITING] == 0)
            continue;
        for (uint32_t i = 0; i < j->n_tasks; i++) {
            hq_task_t *t = &j->tasks[i];
            if (t->state != HQ_TS_WAITING)
                continue;
            hq_dnode_t *node = j->deps ? hq_job_dnode(j, t->id) : NULL;
            bool bad = false;
            for (uint32_t k = 0; node && k < node->n_deps && !bad; k++) {
                const hq_task_t *dt = hq_job_task(j, node->deps[k]);
                bad = dt && hq_tstate_final(dt->state) && dt->state != HQ_TS_FINISHED;
            }
            if (bad)
                hq_broker_end_task(b, j, t, HQ_TS_ABORTED, NULL);
            else if (!node || node->n_wait == 0)
                hq_readyq_push(&b->ready, j, t);
        }
    }
    hq_turn_dirty(&b->turn);
    return 0;
}

void hq_jr_close(hq_broker_t *b)
{
    hq_jglue_t *g = b->jr;
    if (!g)
        return;
    g->closing = true;
    hq_jstream_close(b);
    hq_snapshot_detach(b);
    if (hq_journal_available(g->j)) {
        hq_jrec_t rec = {.type = HQ_JR_SERVER_STOP};
        hq_err_t err;
        if (hq_journal_append(g->j, &rec, NULL, NULL, &err) != 0)
            hq_journal_flush(g->j, &err);
    }
    if (g->grace_timer >= 0 && b->turn.loop)
        zloop_timer_end(b->turn.loop, g->grace_timer);
    if (g->retry_timer >= 0 && b->turn.loop)
        zloop_timer_end(b->turn.loop, g->retry_timer);
    if (g->failed.n > g->failed.head)
        hq_warn("Journal: %u held record%s (task results, worker losses) could not be "
                "written before the stop",
                g->failed.n - g->failed.head, g->failed.n - g->failed.head == 1 ? "" : "s");
    hq_journal_detach(g->j);
    hq_journal_close(&g->j);
    zhashx_destroy(&g->inflight);
    free(g->pend.v);
    free(g->failed.v);
    free(g->held);
    free(g->path);
    free(g);
    b->jr = NULL;
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
    if (op->errnum) {
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
        hq_task_t *t = s_task(b, h.job_id, h.task_id, &j);
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
    hq_task_t *t = s_task(b, job_id, task_id, &j);
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
    hq_job_t *j;
    hq_task_t *t = s_task(b, p->a, p->b, &j);
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
    hq_info("Journal: %u held record%s (task results, worker losses) appended again", n,
            n == 1 ? "" : "s");
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

static void s_hook(const hq_event_t *ev, void *arg)
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
        hq_jr_append(b, &rec, NULL, NULL);
        return;
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
    default:
        return;
    }
    if (g->quiet && ev->type != HQ_EV_WORKER_LOST)
        return;
    p.type = rec.type;
    s_track(g, &rec, p);
}

static void s_on_state(void *arg, enum hq_journal_state st, int errnum)
{
    hq_jglue_t *g = arg;
    switch (st) {
    case HQ_JOURNAL_OK:
        hq_info("Journal %s is writable again", g->path);
        g->warned = false;
        s_retry_failed(g);
        break;
    case HQ_JOURNAL_UNAVAILABLE:
        hq_error("Journal %s is unavailable (%s): changes are refused until it can be "
                 "written again; running tasks continue",
                 g->path, strerror(errnum));
        break;
    case HQ_JOURNAL_POISONED:
        hq_error("Journal %s: a sync failed (%s); continuing in a fresh segment", g->path,
                 strerror(errnum));
        s_retry_failed(g);
        break;
    }
}
