/* Task lifecycle in the broker: job lookup and selection, requeue after a lost or
 * rejected assignment (crash counting), ending unfinished tasks (cancel, abort) and
 * the max-fails rule. State changes themselves go through events.c. */
#define HQ_LOG_MODULE "hq::server::task"
#include <stdlib.h>
#include <string.h>

#include "tasks.h"
#include "journal/glue.h"
#include "hq_duration.h"
#include "hq_log.h"
#include "hq_util.h"

/* The task stops occupying its worker (counters only; capacity is the caller's). */
static void s_detach(hq_broker_t *b, hq_task_t *t)
{
    t->flags &= (uint8_t)~HQ_TF_READOPT;
    if (!(t->flags & (HQ_TF_HOLDS | HQ_TF_ADOPTED)))
        return;
    hq_worker_t *w = hq_registry_get(&b->reg, t->worker);
    if (w) {
        if (w->n_assigned > 0)
            w->n_assigned--;
        if (t->state == HQ_TS_RUNNING && w->n_running > 0)
            w->n_running--;
    }
    t->flags &= (uint8_t) ~(HQ_TF_HOLDS | HQ_TF_ADOPTED | HQ_TF_SENT);
}

/* A task reached a final state: its dependants learn it. A finished dependency may
 * make a dependant ready (sent to the scheduler at the next flush); any other end
 * aborts the dependants, transitively (an explicit stack: chains may be long).
 * Dependants waiting on dependencies are never in the scheduler, so aborting them
 * needs no cancel. */
static void s_settle(hq_broker_t *b, hq_job_t *j, const hq_task_t *done)
{
    if (!j->deps)
        return;
    uint32_t *stack = NULL, n = 0, cap = 0;
    hq_dnode_t *first = hq_job_dnode(j, done->id);
    if (!first || first->n_out == 0)
        return;
    cap = 16;
    stack = hq_malloc(cap * sizeof(uint32_t));
    stack[n++] = done->id;
    uint64_t now = hq_wall_ns();
    while (n > 0) {
        uint32_t id = stack[--n];
        const hq_task_t *t = hq_job_task(j, id);
        hq_dnode_t *node = hq_job_dnode(j, id);
        if (!t || !node)
            continue;
        bool ok = t->state == HQ_TS_FINISHED;
        for (uint32_t k = 0; k < node->n_out; k++) {
            hq_task_t *dt = hq_job_task(j, node->out[k]);
            if (!dt || hq_tstate_final(dt->state))
                continue;
            hq_dnode_t *dn = hq_job_dnode(j, dt->id);
            if (ok) {
                if (dn && dn->n_wait > 0 && --dn->n_wait == 0 && dt->state == HQ_TS_WAITING) {
                    if (b->jr)
                        hq_jr_ready_after_parent(b, j->id, dt->id);
                    else
                        hq_readyq_push(&b->ready, j, dt);
                }
                continue;
            }
            hq_events_task_state(b->events, j, dt, HQ_TS_ABORTED, 0, NULL, now);
            if (n == cap) {
                cap *= 2;
                stack = hq_realloc(stack, cap * sizeof(uint32_t));
            }
            stack[n++] = dt->id;
        }
    }
    free(stack);
    hq_turn_dirty(&b->turn);
}

static void s_check_max_fails(hq_broker_t *b, hq_job_t *j)
{
    if (!j->has_max_fails || j->counts[HQ_TS_FAILED] <= j->max_fails || hq_job_is_complete(j))
        return;
    hq_info("Job %u exceeded its max-fails limit (%u); aborting its remaining tasks", j->id,
            j->max_fails);
    hq_sched_cmd_t *cmd = hq_sched_cmd_new(HQ_SCHED_CANCEL_JOB);
    cmd->job_id = j->id;
    hq_readyq_post(&b->ready, cmd);
    for (uint32_t i = 0; i < j->n_tasks; i++) {
        hq_task_t *t = &j->tasks[i];
        if (!hq_tstate_final(t->state))
            hq_broker_end_task(b, j, t, HQ_TS_ABORTED, NULL);
    }
}

/* What a worker that left could have started. The worker starts a task as soon as its
 * resources allow and reports STARTED only in its next RESULTS batch, so a task that
 * kills its worker at once (or a worker killed right after a start) leaves the broker
 * with an ASSIGNED task that nevertheless ran. The rule: an ASSIGN of the task's current
 * instance handed to the worker link (HQ_TF_SENT: in the outbox, delivered now or by a
 * retransmission; with the journal on its task_started record is durable first) means
 * the worker may have started it, exactly like a reported start. The broker cannot tell
 * a started task from one the worker only queued (prefetch beyond its free resources),
 * so a prefetched task is counted too: this errs towards charging a crash a task did
 * not cause, never towards running a never-restart task twice or any task more than
 * crash-limit times. A task still ASSIGNED without HQ_TF_SENT (its task_started record
 * not yet durable, or kept back by a full socket) never reached the worker and is
 * requeued uncounted, as is one the worker rejected (it says it did not start it).
 * HyperQueue counts only tasks the worker reported running, and has this race. */
bool hq_task_maybe_started(const hq_task_t *t)
{
    return t->state == HQ_TS_RUNNING ||
           (t->state == HQ_TS_ASSIGNED && (t->flags & HQ_TF_SENT) != 0);
}

void hq_broker_requeue(hq_broker_t *b, hq_job_t *j, hq_task_t *t, bool crash)
{
    const hq_jdef_t *jd = &j->defs[t->def];
    const hq_task_def_t *def = jd->def;
    bool started = hq_task_maybe_started(t);
    s_detach(b, t);
    t->worker = started ? t->worker : 0;
    bool counted = started && crash;
    if (counted)
        t->crashes++;
    bool fail = false;
    if (started && def->crash_kind == HQ_CRASH_NEVER_RESTART)
        fail = true; /* also on a graceful stop: the task must not run twice */
    else if (counted && def->crash_kind == HQ_CRASH_LIMIT && t->crashes >= def->crash_limit)
        fail = true;
    if (fail) {
        /* A task sent but not reported started may have run: said as such. */
        const char *where = t->state == HQ_TS_RUNNING
                                ? "running on a worker that was lost"
                                : "sent to a worker that was lost before it reported the start";
        char *msg = def->crash_kind == HQ_CRASH_NEVER_RESTART
                        ? hq_asprintf("Task was %s, and it must never be restarted (crash "
                                      "limit: never-restart)",
                                      where)
                        : hq_asprintf("Task was %s; it crashed %u times (crash limit %u)", where,
                                      t->crashes, def->crash_limit);
        hq_events_task_state(b->events, j, t, HQ_TS_FAILED, t->worker, msg, hq_wall_ns());
        free(msg);
        s_settle(b, j, t);
        s_check_max_fails(b, j);
        hq_turn_dirty(&b->turn);
        return;
    }
    t->instance++;
    hq_events_task_state(b->events, j, t, HQ_TS_WAITING, 0, NULL, hq_wall_ns());
    /* Replay counts a crash for every task with a task_started record on a worker
     * lost by a crash (restore.c): when no crash was counted here, the journal is told
     * the task's state before the worker_lost record that follows. */
    if (!counted)
        hq_jr_task_state(b, j, t);
    hq_readyq_push(&b->ready, j, t);
    hq_turn_dirty(&b->turn);
}

void hq_broker_end_task(hq_broker_t *b, hq_job_t *j, hq_task_t *t, enum hq_tstate st,
                        const char *error)
{
    if (hq_tstate_final(t->state))
        return;
    if (t->state == HQ_TS_ASSIGNED || t->state == HQ_TS_RUNNING) {
        /* The worker kills it; its final report then releases the capacity. */
        hq_cancels_add(&b->cancels, t->worker, j->id, t->id, t->instance);
        hq_worker_t *w = hq_registry_get(&b->reg, t->worker);
        if (w && t->state == HQ_TS_RUNNING && w->n_running > 0)
            w->n_running--;
    }
    hq_events_task_state(b->events, j, t, st, t->worker, error, hq_wall_ns());
    /* A job cancel ends every task of the job: its dependants stay CANCELED. */
    if (st != HQ_TS_CANCELED)
        s_settle(b, j, t);
    hq_turn_dirty(&b->turn);
}

void hq_broker_task_result(hq_broker_t *b, hq_job_t *j, hq_task_t *t, enum hq_tstate st,
                           uint32_t worker_id, const char *error, uint64_t wall_ns)
{
    s_detach(b, t);
    if (hq_tstate_final(t->state))
        return; /* canceled/aborted meanwhile: only the capacity was pending */
    hq_events_task_state(b->events, j, t, st, worker_id, error, wall_ns);
    s_settle(b, j, t);
    if (st == HQ_TS_FAILED)
        s_check_max_fails(b, j);
    hq_turn_dirty(&b->turn);
}

/* ---- re-adoption ---- */

enum hq_adopt hq_task_adopt_check(const hq_task_t *t, const hq_task_ref_t *r, uint32_t proven_id,
                                  uint32_t live_old_id)
{
    if (!t || t->instance != r->instance)
        return HQ_ADOPT_STALE;
    if (hq_tstate_final(t->state))
        return HQ_ADOPT_ENDED;
    if (proven_id == 0 || t->worker != proven_id)
        return HQ_ADOPT_STALE; /* another worker's task, or a claim without proof */
    if ((t->flags & HQ_TF_READOPT) && t->state == HQ_TS_RUNNING)
        return HQ_ADOPT_YES;
    if ((t->flags & (HQ_TF_HOLDS | HQ_TF_ADOPTED)) && live_old_id == proven_id &&
        (t->state == HQ_TS_RUNNING || t->state == HQ_TS_ASSIGNED))
        return HQ_ADOPT_YES;
    return HQ_ADOPT_STALE;
}

void hq_broker_adopt(hq_broker_t *b, hq_job_t *j, hq_task_t *t, hq_worker_t *w)
{
    s_detach(b, t); /* from the previous session, if it still held it */
    t->flags |= HQ_TF_ADOPTED;
    t->worker = w->id;
    w->n_assigned++;
    w->n_running++;
    if (t->state != HQ_TS_RUNNING)
        hq_events_task_state(b->events, j, t, HQ_TS_RUNNING, w->id, NULL, hq_wall_ns());
    /* A later crash replays this task as running on w under the same instance. */
    hq_jrec_t rec = {.type = HQ_JR_TASK_STARTED, .wall_ns = hq_wall_ns()};
    rec.u.task.job = j->id;
    rec.u.task.task = t->id;
    rec.u.task.instance = t->instance;
    rec.u.task.worker = w->id;
    rec.u.task.epoch = w->epoch;
    hq_jr_append(b, &rec, NULL, NULL);
    hq_turn_dirty(&b->turn);
}

/* Requeues the tasks restored as running and not adopted: all of them (worker_id 0)
 * or those the journal records on worker_id. */
static uint32_t s_readopt_requeue(hq_broker_t *b, uint32_t worker_id)
{
    uint32_t n = 0;
    uint64_t now = hq_wall_ns();
    for (uint32_t id = 1; id <= b->jobs.max_id; id++) {
        hq_job_t *j = hq_jobtab_get(&b->jobs, id);
        if (!j)
            continue;
        for (uint32_t i = 0; i < j->n_tasks; i++) {
            hq_task_t *t = &j->tasks[i];
            if (!(t->flags & HQ_TF_READOPT) || (worker_id && t->worker != worker_id))
                continue;
            t->flags &= (uint8_t)~HQ_TF_READOPT;
            if (t->state != HQ_TS_RUNNING)
                continue;
            /* A broker crash is not the task's fault: the crash counter stays. */
            t->instance++;
            t->worker = 0;
            hq_events_task_state(b->events, j, t, HQ_TS_WAITING, 0, NULL, now);
            hq_readyq_push(&b->ready, j, t);
            n++;
        }
    }
    if (n)
        hq_turn_dirty(&b->turn);
    return n;
}

uint32_t hq_broker_readopt_expire(hq_broker_t *b)
{
    return s_readopt_requeue(b, 0);
}

uint32_t hq_broker_readopt_unreported(hq_broker_t *b, uint32_t old_worker_id)
{
    return old_worker_id ? s_readopt_requeue(b, old_worker_id) : 0;
}

/* The re-adoption grace period is over. */
static int s_on_grace(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    uint32_t n = hq_broker_readopt_expire(arg);
    if (n)
        hq_info("Re-adoption grace period over: %u task%s not reported by a worker run "
                "again under a new instance",
                n, n == 1 ? "" : "s");
    else
        hq_info("Re-adoption grace period over: no task left waiting for its worker");
    return 0;
}

void hq_tasks_resume(hq_broker_t *b)
{
    uint64_t grace_ns;
    uint32_t n_readopt = hq_jr_readopt_waiting(b, &grace_ns);
    if (n_readopt && b->turn.loop) {
        uint64_t ms = grace_ns / HQ_NS_PER_MS;
        zloop_timer(b->turn.loop, ms ? (size_t)ms : 1, 1, s_on_grace, b);
        hq_info("Waiting up to %.1f s for workers to re-adopt %u running task%s",
                (double)grace_ns / 1e9, n_readopt, n_readopt == 1 ? "" : "s");
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
}
