/* Journal replay into the broker's tables: each record applied in lsn order through
 * the same state changes the live broker makes (jobops.c), so what the live broker
 * refused is refused again; at the end, tasks that were running wait again (or for
 * re-adoption) and the tables' counters are rebuilt. Records -> state only: no
 * sockets, no scheduler, no replies. */
#define HQ_LOG_MODULE "hq::server::journal"
#include <stdlib.h>
#include <string.h>

#include "alloc/alloc.h"
#include "glue.h"
#include "hq_log.h"
#include "hq_util.h"
#include "cost.h"
#include "jobops.h"
#include "mnodes.h"
#include "journal/snapshot.h"

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
        hq_task_t *t = hq_jobtab_task(&s->b->jobs, s->run[i].job_id, s->run[i].task_id, &j);
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
    hq_task_t *t = hq_jobtab_task(&b->jobs, job_id, task_id, &j);
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

/* One journal has one server uid: the first server_start's. A later one with another
 * uid was written by another server; an --access-file of another uid is refused. */
static int s_server_uid(hq_jr_state_t *s, const char *uid, hq_err_t *err)
{
    hq_bconf_t *c = &s->b->conf;
    if (!uid || !uid[0])
        return 0;
    if (s->uid[0] && strcmp(s->uid, uid) != 0)
        return hq_err_set(err,
                          "a server-start record of server uid %s in the journal of server uid "
                          "%s: these records were written by another server (files copied in "
                          "from another journal?), and one journal belongs to one server; "
                          "remove the other server's files",
                          uid, s->uid);
    if (s->uid[0])
        return 0;
    if (c->access_file && strcmp(c->access.server_uid, uid) != 0)
        return hq_err_set(err,
                          "the access file %s has server uid %s but this journal belongs to "
                          "server uid %s, and one journal has one server uid; start with that "
                          "server's access file (or without --access-file), or give another "
                          "journal directory",
                          c->access_file, c->access.server_uid, uid);
    snprintf(s->uid, sizeof s->uid, "%s", uid);
    if (strlen(s->uid) < sizeof c->access.server_uid)
        memcpy(c->access.server_uid, s->uid, strlen(s->uid) + 1);
    return 0;
}

int hq_jr_apply_record(hq_jrec_t *rec, bool from_snapshot, void *arg, hq_err_t *err)
{
    (void)from_snapshot;
    hq_jr_state_t *s = arg;
    hq_broker_t *b = s->b;
    hq_job_t *j = NULL;
    hq_task_t *t = NULL;
    s->records++;
    switch (rec->type) {
    case HQ_JR_SERVER_START:
        s->epoch = rec->u.server_start.epoch;
        if (s_server_uid(s, rec->u.server_start.uid, err) < 0)
            return -1;
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
        /* Written by a broker that had more memory: applying it here would abort, at
         * every start. */
        if (hq_cost_check_submit(&msg->u.submit, 0, &e) != 0) {
            hq_err_set(err, "the submit of job %u cannot be applied: %s", id, e.text);
            return 1;
        }
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
    case HQ_JR_TASK_STARTED_MN:
        s_started(s, rec->u.nodes.job, rec->u.nodes.task, rec->u.nodes.instance,
                  rec->u.nodes.workers[0], rec->wall_ns);
        hq_mn_restore(hq_jobtab_get(&b->jobs, rec->u.nodes.job), rec->u.nodes.task,
                      rec->u.nodes.workers, rec->u.nodes.n);
        break;
    case HQ_JR_TASKS_STARTED:
    case HQ_JR_TASKS_STARTED_V:
        for (uint32_t k = 0; k < rec->u.batch.n; k++)
            s_started(s, rec->u.batch.job, rec->u.batch.insts[k].task,
                      rec->u.batch.insts[k].instance, rec->u.batch.worker, rec->wall_ns);
        break;
    case HQ_JR_TASK_FINISHED:
    case HQ_JR_TASK_FAILED:
        t = hq_jobtab_task(&b->jobs, rec->u.task.job, rec->u.task.task, &j);
        if (t)
            s_end(j, t, rec->type == HQ_JR_TASK_FINISHED ? HQ_TS_FINISHED : HQ_TS_FAILED,
                  rec->u.task.error, rec->wall_ns);
        break;
    case HQ_JR_TASKS_FINISHED:
        for (uint32_t k = 0; k < rec->u.batch.n; k++) {
            t = hq_jobtab_task(&b->jobs, rec->u.batch.job, rec->u.batch.insts[k].task, &j);
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
        if (rec->u.worker_up.msg && rec->u.worker_up.msg->u.reg.has_secret)
            hq_registry_set_hash(&b->reg, rec->u.worker_up.worker,
                                 rec->u.worker_up.msg->u.reg.secret);
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
    case HQ_JR_ALLOC_QUEUE:
    case HQ_JR_ALLOC_QUEUE_STATE:
    case HQ_JR_ALLOC_QUEUED:
    case HQ_JR_ALLOC_STATE:
        hq_alloc_restore(b, rec);
        break;
    default:
        break; /* server_stop, snapshot end: nothing to rebuild */
    }
    return 0;
}

uint64_t hq_jr_state_records(const hq_jr_state_t *s)
{
    return s->records;
}

uint64_t hq_jr_state_end(hq_jr_state_t **p, uint32_t *n_readopt)
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
    /* Worker ids go on as HyperQueue's after a restore: the first new worker gets the
     * highest journaled id + 2 (one id is skipped), so ids of the two runs stay apart
     * in logs and scripts. */
    if (b->reg.max_id > 0)
        b->reg.max_id++;
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

uint64_t hq_jr_state_finish(hq_jr_state_t **p)
{
    uint32_t n;
    return hq_jr_state_end(p, &n);
}
