/* Prefetch and work stealing in the core (see prefetch.h): the short-job measure, the
 * per-worker count of prefetched tasks, and RETRACT messages. */
#define HQ_LOG_MODULE "hq::server::worker"
#include "prefetch.h"

#include <stdlib.h>

#include "hq_duration.h"
#include "hq_log.h"
#include "hq_util.h"

/* The short-task threshold: HQ_SHORT_TASK (a duration) or HQ_SHORT_TASK_NS. */
static uint64_t s_short_ns(void)
{
    static uint64_t ns;
    if (ns)
        return ns;
    ns = HQ_SHORT_TASK_NS;
    const char *v = getenv("HQ_SHORT_TASK");
    if (!v || !*v)
        return ns;
    hq_err_t e;
    uint64_t d = 0;
    if (hq_duration_parse(v, &d, &e) != 0)
        hq_warn("Ignoring HQ_SHORT_TASK=%s: %s", v, e.text);
    else if (d == 0)
        hq_warn("Ignoring HQ_SHORT_TASK=%s: it must be longer than 0", v);
    else
        ns = d;
    return ns;
}

void hq_prefetch_note_run(hq_broker_t *b, hq_job_t *j, uint64_t run_ns)
{
    /* Rises fast (a long task halves the distance), falls slowly (1/8 per task): one
     * long task ends the prefetch at once, short ones bring it back gradually. */
    if (j->n_timed++ == 0)
        j->avg_run_ns = run_ns;
    else if (run_ns > j->avg_run_ns)
        j->avg_run_ns += (run_ns - j->avg_run_ns) / 2;
    else
        j->avg_run_ns -= (j->avg_run_ns - run_ns) / 8;
    bool is_short = j->avg_run_ns < s_short_ns();
    if (is_short == j->short_tasks)
        return;
    j->short_tasks = is_short;
    hq_debug("Job %u: tasks take %llu us on average; prefetch %s", j->id,
             (unsigned long long)(j->avg_run_ns / 1000), is_short ? "on" : "off");
    hq_sched_cmd_t *cmd = hq_sched_cmd_new(HQ_SCHED_JOB_SHORT);
    cmd->job_id = j->id;
    cmd->credit = is_short;
    hq_readyq_post(&b->ready, cmd);
}

void hq_prefetch_assigned(hq_worker_t *w, hq_task_t *t, bool prefetch)
{
    t->flags &= (uint8_t) ~(HQ_TF_PREFETCH | HQ_TF_RETRACT);
    if (!prefetch)
        return;
    t->flags |= HQ_TF_PREFETCH;
    w->n_prefetched++;
}

void hq_prefetch_leave(hq_worker_t *w, hq_task_t *t)
{
    if ((t->flags & HQ_TF_PREFETCH) && w && w->n_prefetched > 0)
        w->n_prefetched--;
    t->flags &= (uint8_t) ~(HQ_TF_PREFETCH | HQ_TF_RETRACT);
}

/* The task the worker holds as (job, task) if it is still waiting there. */
static hq_task_t *s_waiting_on(hq_broker_t *b, const hq_worker_t *w, uint32_t job, uint32_t task)
{
    hq_job_t *j = hq_jobtab_get(&b->jobs, job);
    hq_task_t *t = j ? hq_job_task(j, task) : NULL;
    if (!t || t->state != HQ_TS_ASSIGNED || t->worker != w->id || !(t->flags & HQ_TF_HOLDS))
        return NULL;
    return t;
}

void hq_prefetch_on_retract(hq_broker_t *b, hq_sched_cmd_t *cmd)
{
    for (uint32_t i = 0; i < cmd->slots.n; i++) {
        const hq_sched_slot_t *s = &cmd->slots.slots[i];
        hq_worker_t *w = hq_registry_get(&b->reg, s->worker_id);
        if (!w || w->state != HQ_WS_RUNNING)
            continue;
        hq_task_t *t = s_waiting_on(b, w, s->job_id, s->task_id);
        if (!t || (t->flags & HQ_TF_RETRACT))
            continue;
        t->flags |= HQ_TF_RETRACT;
        if (w->n_retract == w->cap_retract) {
            w->cap_retract = w->cap_retract ? w->cap_retract * 2 : 16;
            w->retract = hq_realloc(w->retract, w->cap_retract * sizeof *w->retract);
        }
        w->retract[w->n_retract++] = (hq_tref_t){.job_id = s->job_id, .task_id = s->task_id};
    }
    hq_turn_dirty(&b->turn);
}

/* Sends w's retractions of tasks it was sent; those still on their way to it (their
 * ASSIGN not sent yet) stay for a later turn. */
static void s_flush_worker(hq_broker_t *b, hq_worker_t *w)
{
    hq_task_ref_t *refs = hq_malloc(w->n_retract * sizeof *refs);
    uint32_t n = 0, keep = 0;
    for (uint32_t i = 0; i < w->n_retract; i++) {
        hq_tref_t r = w->retract[i];
        hq_task_t *t = s_waiting_on(b, w, r.job_id, r.task_id);
        if (!t || !(t->flags & HQ_TF_RETRACT))
            continue; /* started, ended or lost meanwhile */
        if (!(t->flags & HQ_TF_SENT)) {
            w->retract[keep++] = r;
            continue;
        }
        refs[n++] =
            (hq_task_ref_t){.job_id = r.job_id, .task_id = r.task_id, .instance = t->instance};
    }
    w->n_retract = keep; /* the turn that sends their ASSIGN sends them */
    if (n) {
        hq_debug("Retracting %u prefetched task%s from worker %u", n, n == 1 ? "" : "s", w->id);
        hq_msg_t m = {0};
        m.hdr.type = HQ_MSG_RETRACT;
        m.u.cancel.n_tasks = n;
        m.u.cancel.tasks = refs;
        hq_worker_send(&b->wlink, w, &m); /* kept until acknowledged */
    }
    free(refs);
}

void hq_prefetch_flush(hq_broker_t *b)
{
    for (uint32_t wid = 1; wid <= b->reg.max_id; wid++) {
        hq_worker_t *w = b->reg.tab[wid];
        if (w && w->state == HQ_WS_RUNNING && w->n_retract > 0)
            s_flush_worker(b, w);
    }
}
