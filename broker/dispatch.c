/* Assignments to workers: the scheduler's answers become pending tasks per worker
 * (journaled as started first when the journal is on), sent as batched ASSIGNs at the
 * end of the turn, followed by the cancels queued during the turn. */
#define HQ_LOG_MODULE "hq::server::worker"
#include "dispatch.h"

#include <stdlib.h>
#include <string.h>

#include "cost.h"
#include "hq_log.h"
#include "hq_util.h"
#include "journal/glue.h"
#include "mnodes.h"
#include "prefetch.h"
#include "workers.h"

#define HQ_ASSIGN_CHUNK 4096

/* With the journal on, a batch of dispatches waits for its task_started records to be
 * durable before the workers are told: an instance id a worker has seen is never
 * handed out again after a broker crash. */
typedef struct s_dispatch {
    hq_broker_t *b;
    uint32_t pending; /* records not settled yet (+1 while appending) */
    int errnum;       /* first failure */
    uint32_t n;
    hq_sched_slot_t *slots;
    uint32_t *instances;
} s_dispatch_t;

/* Dispatches are recorded in chunks of at most S_DISPATCH_CHUNK tasks, one
 * tasks_started record per run of the same job and worker: a chunk's ASSIGNs go out
 * as soon as its records are durable while later chunks are still being written, and
 * a task costs the journal a few bytes instead of a record of its own. */
#define S_DISPATCH_CHUNK 256

typedef struct s_started_acc {
    uint32_t job, worker; /* the run being collected */
    uint64_t epoch;       /* the worker's session epoch */
    uint32_t variant;     /* the resource variant they run on */
    uint32_t n;           /* collected */
    hq_jinst_t insts[S_DISPATCH_CHUNK];
} s_started_acc_t;

static void s_mnodes_free(void **item)
{
    hq_mnodes_t *m = *item;
    if (!m)
        return;
    for (uint32_t i = 0; i < m->n; i++)
        free(m->hosts[i]);
    free(m->hosts);
    free(m);
    *item = NULL;
}

static char *s_mn_key(uint32_t job, uint32_t task)
{
    return hq_asprintf("%u@%u", job, task);
}

/* A multi-node task comes as consecutive slots of one task, root first: remembers
 * the nodes' hostnames for the root's ASSIGN. Returns how many slots follow. */
static uint32_t s_mn_collect(hq_broker_t *b, const hq_sched_slots_t *slots, uint32_t i)
{
    const hq_sched_slot_t *s = &slots->slots[i];
    uint32_t n = 1;
    while (i + n < slots->n && slots->slots[i + n].job_id == s->job_id &&
           slots->slots[i + n].task_id == s->task_id)
        n++;
    if (n == 1)
        return 0;
    if (!b->reg.mn_nodes) {
        b->reg.mn_nodes = zhashx_new();
        zhashx_set_destructor(b->reg.mn_nodes, s_mnodes_free);
    }
    hq_mnodes_t *m = hq_calloc(1, sizeof *m);
    m->n = n;
    m->hosts = hq_calloc(n, sizeof *m->hosts);
    for (uint32_t k = 0; k < n; k++) {
        hq_worker_t *w = hq_registry_get(&b->reg, slots->slots[i + k].worker_id);
        m->hosts[k] = hq_strdup(w && w->conf->hostname ? w->conf->hostname : "");
    }
    char *key = s_mn_key(s->job_id, s->task_id);
    zhashx_update(b->reg.mn_nodes, key, m);
    free(key);
    return n - 1;
}

/* Queues an assigned task for the next ASSIGN to w. */
static void s_pend(hq_worker_t *w, uint32_t job_id, uint32_t task_id)
{
    if (w->n_pending == w->cap_pending) {
        w->cap_pending = w->cap_pending ? w->cap_pending * 2 : 64;
        w->pending = hq_realloc(w->pending, w->cap_pending * sizeof(hq_tref_t));
    }
    w->pending[w->n_pending++] = (hq_tref_t){.job_id = job_id, .task_id = task_id};
}

/* The dispatch could not be recorded: no worker hears of these tasks. They wait again
 * under the same instance (no worker has seen it) and their slots go back to the
 * scheduler, which the journal's unavailability has paused (hq_jr_on_state): they are
 * placed again once dispatches can be recorded. */
static void s_undispatch(hq_broker_t *b, s_dispatch_t *d)
{
    hq_warn("Dispatch of %u task%s could not be recorded (%s): %s wait%s again", d->n,
            d->n == 1 ? "" : "s", strerror(d->errnum), d->n == 1 ? "it" : "they",
            d->n == 1 ? "s" : "");
    hq_release_t rel = {0};
    for (uint32_t i = 0; i < d->n; i++) {
        const hq_sched_slot_t *s = &d->slots[i];
        hq_job_t *j = hq_jobtab_get(&b->jobs, s->job_id);
        hq_task_t *t = j ? hq_job_task(j, s->task_id) : NULL;
        hq_worker_t *w = hq_registry_get(&b->reg, s->worker_id);
        if (!t || t->state != HQ_TS_ASSIGNED || t->worker != s->worker_id ||
            t->instance != d->instances[i])
            continue; /* changed meanwhile: whoever changed it took care */
        if (w && w->n_assigned > 0)
            w->n_assigned--;
        t->flags &= (uint8_t) ~(HQ_TF_HOLDS | HQ_TF_SENT);
        t->worker = 0;
        hq_events_task_state(b->events, j, t, HQ_TS_WAITING, 0, NULL, hq_wall_ns());
        hq_readyq_push(&b->ready, j, t);
        if (w)
            hq_release_add(&rel, s->worker_id, s->job_id, s->task_id, s->rq_id, s->variant);
    }
    hq_readyq_release(&b->ready, &rel);
    free(d->slots);
    free(d->instances);
    free(d);
    hq_turn_dirty(&b->turn);
}

static void s_dispatch_done(void *arg, uint64_t lsn, int errnum)
{
    (void)lsn;
    s_dispatch_t *d = arg;
    if (errnum && !d->errnum)
        d->errnum = errnum;
    if (--d->pending > 0)
        return;
    hq_broker_t *b = d->b;
    if (d->errnum) {
        s_undispatch(b, d);
        return;
    }
    for (uint32_t i = 0; i < d->n; i++) {
        const hq_sched_slot_t *s = &d->slots[i];
        hq_job_t *j = hq_jobtab_get(&b->jobs, s->job_id);
        hq_task_t *t = j ? hq_job_task(j, s->task_id) : NULL;
        hq_worker_t *w = hq_registry_get(&b->reg, s->worker_id);
        /* Changed meanwhile (canceled, worker lost): whoever changed it took care. */
        if (!t || !w || w->state != HQ_WS_RUNNING || t->state != HQ_TS_ASSIGNED ||
            t->worker != w->id || t->instance != d->instances[i])
            continue;
        s_pend(w, j->id, t->id);
    }
    free(d->slots);
    free(d->instances);
    free(d);
    hq_turn_dirty(&b->turn);
}

static s_dispatch_t *s_dispatch_new(hq_broker_t *b, uint32_t left)
{
    uint32_t n = left < S_DISPATCH_CHUNK ? left : S_DISPATCH_CHUNK;
    s_dispatch_t *d = hq_calloc(1, sizeof *d);
    d->b = b;
    d->pending = 1;
    d->slots = hq_malloc((n ? n : 1) * sizeof *d->slots);
    d->instances = hq_malloc((n ? n : 1) * sizeof(uint32_t));
    return d;
}

/* Appends the collected run as one tasks_started record that d waits for (tasks_started_v
 * when they run on a resource variant k > 0). */
static void s_started_flush(hq_broker_t *b, s_started_acc_t *a, s_dispatch_t *d)
{
    if (a->n == 0)
        return;
    hq_jrec_t rec = {.type = a->variant ? HQ_JR_TASKS_STARTED_V : HQ_JR_TASKS_STARTED};
    rec.u.batch.variant = a->variant;
    rec.u.batch.job = a->job;
    rec.u.batch.worker = a->worker;
    rec.u.batch.epoch = a->epoch;
    rec.u.batch.n = a->n;
    rec.u.batch.insts = a->insts;
    d->pending++;
    if (hq_jr_append(b, &rec, s_dispatch_done, d) == 0)
        s_dispatch_done(d, 0, EIO);
    a->n = 0;
}

/* Appends the start of multi-node task t on the n nodes of slots (root first) as one
 * task_started_mn record that d waits for. */
static void s_started_mn(hq_broker_t *b, s_dispatch_t *d, const hq_sched_slot_t *slots, uint32_t n,
                         const hq_task_t *t, const hq_worker_t *root)
{
    uint32_t *ids = hq_malloc(n * sizeof *ids);
    for (uint32_t k = 0; k < n; k++)
        ids[k] = slots[k].worker_id;
    hq_jrec_t rec = {.type = HQ_JR_TASK_STARTED_MN};
    rec.u.nodes.job = slots[0].job_id;
    rec.u.nodes.task = t->id;
    rec.u.nodes.instance = t->instance;
    rec.u.nodes.epoch = root->epoch;
    rec.u.nodes.variant = t->variant;
    rec.u.nodes.n = n;
    rec.u.nodes.workers = ids;
    d->pending++;
    if (hq_jr_append(b, &rec, s_dispatch_done, d) == 0)
        s_dispatch_done(d, 0, EIO);
    free(ids);
}

void hq_workers_on_assigned(hq_broker_t *b, hq_sched_cmd_t *cmd)
{
    hq_release_t rel = {0};
    hq_journal_t *jn = hq_jr_journal(b);
    s_dispatch_t *d = jn ? s_dispatch_new(b, cmd->slots.n) : NULL;
    s_started_acc_t *acc = jn ? hq_malloc(sizeof *acc) : NULL;
    if (acc)
        acc->n = 0;
    for (uint32_t i = 0; i < cmd->slots.n; i++) {
        const hq_sched_slot_t *s = &cmd->slots.slots[i];
        uint32_t nodes = s_mn_collect(b, &cmd->slots, i); /* secondary nodes */
        i += nodes;
        hq_job_t *j = hq_jobtab_get(&b->jobs, s->job_id);
        hq_task_t *t = j ? hq_job_task(j, s->task_id) : NULL;
        hq_worker_t *w = hq_registry_get(&b->reg, s->worker_id);
        if (!t || t->state != HQ_TS_WAITING || !w || w->state != HQ_WS_RUNNING) {
            hq_release_add(&rel, s->worker_id, s->job_id, s->task_id, s->rq_id, s->variant);
            continue;
        }
        if (nodes)
            hq_mn_placed(b, s, nodes + 1);
        hq_events_task_state(b->events, j, t, HQ_TS_ASSIGNED, w->id, NULL, 0);
        t->worker = w->id;
        t->variant = (uint8_t)s->variant;
        t->flags = (uint8_t)((t->flags & ~HQ_TF_SENT) | HQ_TF_HOLDS);
        w->n_assigned++;
        hq_prefetch_assigned(w, t, s->prefetch != 0);
        if (!d) {
            s_pend(w, j->id, t->id);
            continue;
        }
        if (d->n == S_DISPATCH_CHUNK) {
            s_started_flush(b, acc, d);
            s_dispatch_done(d, 0, 0); /* drops the chunk's own hold */
            hq_journal_kick(jn);      /* its sync starts while later chunks are made */
            d = s_dispatch_new(b, cmd->slots.n - i);
        }
        if (acc->n && (nodes || acc->job != j->id || acc->worker != w->id ||
                       acc->epoch != w->epoch || acc->variant != t->variant))
            s_started_flush(b, acc, d);
        if (nodes) {
            s_started_mn(b, d, s, nodes + 1, t, w);
        } else {
            if (acc->n == 0) {
                acc->job = j->id;
                acc->worker = w->id;
                acc->epoch = w->epoch;
                acc->variant = t->variant;
            }
            acc->insts[acc->n++] = (hq_jinst_t){.task = t->id, .instance = t->instance};
        }
        d->slots[d->n] = *s;
        d->instances[d->n] = t->instance;
        d->n++;
    }
    hq_readyq_release(&b->ready, &rel);
    if (d) {
        s_started_flush(b, acc, d);
        s_dispatch_done(d, 0, 0);
    }
    free(acc);
    hq_turn_dirty(&b->turn);
}

/* Bytes one task adds to an ASSIGN beside its definition: its entry and hostnames. */
static size_t s_task_bytes(const hq_assign_task_t *at)
{
    size_t n = hq_task_wire_bytes(at->has_entry ? at->entry.len : 0);
    for (uint32_t k = 0; k < at->n_nodes; k++)
        n += strlen(at->nodes[k]) + 9;
    return n;
}

/* Bytes a definition adds, with the paths the job resolved for it. */
static size_t s_def_bytes(const hq_assign_def_t *ad)
{
    return hq_def_wire_bytes(&ad->def) + (ad->submit_dir ? strlen(ad->submit_dir) : 0) +
           (ad->stream_dir ? strlen(ad->stream_dir) : 0) + 32;
}

/* Builds and sends one ASSIGN with up to HQ_ASSIGN_CHUNK pending tasks of w, and no
 * more than a frame to a worker carries (HQ_ASSIGN_MAX_BYTES; a single task always
 * fits, as submits of larger ones are refused). Returns how many pending entries
 * were consumed, or -1 (EAGAIN) / -2 (gone). */
static int s_send_assign(hq_broker_t *b, hq_worker_t *w, uint32_t from)
{
    uint32_t n = w->n_pending - from;
    if (n > HQ_ASSIGN_CHUNK)
        n = HQ_ASSIGN_CHUNK;
    hq_assign_task_t *tasks = hq_calloc(n, sizeof *tasks);
    hq_task_t **sent = hq_calloc(n, sizeof *sent);
    hq_assign_def_t *defs = NULL;
    uint32_t *def_job = NULL, *def_idx = NULL;
    uint32_t n_defs = 0, n_tasks = 0, used;
    size_t bytes = 1024;
    for (used = 0; used < n; used++) {
        hq_tref_t ref = w->pending[from + used];
        hq_job_t *j = hq_jobtab_get(&b->jobs, ref.job_id);
        hq_task_t *t = j ? hq_job_task(j, ref.task_id) : NULL;
        if (!t || t->state != HQ_TS_ASSIGNED || t->worker != w->id)
            continue; /* canceled before it was sent; its CANCEL is skipped too */
        uint32_t d = n_defs;
        for (uint32_t q = n_defs; q > 0; q--)
            if (def_job[q - 1] == j->id && def_idx[q - 1] == t->def) {
                d = q - 1;
                break;
            }
        size_t add = 0;
        if (d == n_defs) {
            defs = hq_realloc(defs, (n_defs + 1) * sizeof *defs);
            def_job = hq_realloc(def_job, (n_defs + 1) * sizeof *def_job);
            def_idx = hq_realloc(def_idx, (n_defs + 1) * sizeof *def_idx);
            const hq_jdef_t *jd = &j->defs[t->def];
            const hq_jsubmit_t *sub = &j->submits[jd->submit];
            hq_assign_def_t *ad = &defs[n_defs];
            memset(ad, 0, sizeof *ad);
            ad->job_id = j->id;
            ad->def_id = t->def;
            ad->submit_dir = sub->submit_dir;
            ad->stream_dir = sub->stream_dir;
            ad->def = *jd->def;
            ad->def.cwd = jd->cwd;
            if (ad->def.out.kind == HQ_STDIO_FILE)
                ad->def.out.path = jd->out;
            if (ad->def.err.kind == HQ_STDIO_FILE)
                ad->def.err.path = jd->err;
            add = s_def_bytes(ad);
        }
        hq_assign_task_t *at = &tasks[n_tasks];
        memset(at, 0, sizeof *at);
        at->job_id = j->id;
        at->task_id = t->id;
        at->instance = t->instance;
        at->def_idx = d;
        at->variant = t->variant;
        hq_mnodes_t *mn = NULL;
        if (b->reg.mn_nodes) {
            char *key = s_mn_key(j->id, t->id);
            mn = zhashx_lookup(b->reg.mn_nodes, key);
            free(key);
        }
        if (mn) {
            at->n_nodes = mn->n;
            at->nodes = mn->hosts;
        }
        const hq_jsubmit_t *sub = &j->submits[j->defs[t->def].submit];
        if (t->entry != UINT32_MAX && t->entry < sub->msg->u.submit.n_entries) {
            at->has_entry = true;
            at->entry = sub->msg->u.submit.entries[t->entry];
        }
        add += s_task_bytes(at);
        if (n_tasks > 0 && bytes + add > HQ_ASSIGN_MAX_BYTES)
            break; /* the rest goes in the next ASSIGN */
        bytes += add;
        if (d == n_defs) {
            def_job[n_defs] = j->id;
            def_idx[n_defs] = t->def;
            n_defs++;
        }
        sent[n_tasks++] = t;
    }
    int rc = (int)used;
    if (n_tasks > 0) {
        hq_msg_t m = {0};
        m.hdr.type = HQ_MSG_ASSIGN;
        m.u.assign.n_defs = n_defs;
        m.u.assign.defs = defs;
        m.u.assign.n_tasks = n_tasks;
        m.u.assign.tasks = tasks;
        int s = hq_worker_send(&b->wlink, w, &m);
        if (s == -1 || s == -2)
            rc = s;
        else if (s == -3)
            hq_error("Could not send %u tasks to worker %u", n_tasks, w->id);
        /* In the outbox (delivered now or retransmitted): the worker may start them, so
         * from here their loss with the worker counts as a crash (tasks.c). */
        for (uint32_t k = 0; k < n_tasks && s == 0; k++)
            sent[k]->flags |= HQ_TF_SENT;
        for (uint32_t k = 0; k < n_tasks && rc >= 0; k++) {
            if (tasks[k].n_nodes == 0)
                continue;
            char *key = s_mn_key(tasks[k].job_id, tasks[k].task_id);
            zhashx_delete(b->reg.mn_nodes, key); /* sent: the hostnames are no longer needed */
            free(key);
        }
    }
    free(tasks);
    free(sent);
    free(defs);
    free(def_job);
    free(def_idx);
    return rc;
}

static void s_flush_cancels(hq_broker_t *b)
{
    if (b->cancels.n == 0)
        return;
    for (uint32_t wid = 1; wid <= b->reg.max_id; wid++) {
        hq_worker_t *w = b->reg.tab[wid];
        if (!w || w->state != HQ_WS_RUNNING)
            continue;
        uint32_t n = 0;
        for (uint32_t i = 0; i < b->cancels.n; i++)
            n += b->cancels.workers[i] == wid;
        if (n == 0)
            continue;
        hq_task_ref_t *refs = hq_malloc(n * sizeof *refs);
        uint32_t k = 0;
        for (uint32_t i = 0; i < b->cancels.n; i++)
            if (b->cancels.workers[i] == wid)
                refs[k++] = (hq_task_ref_t){.job_id = b->cancels.refs[i].job_id,
                                            .task_id = b->cancels.refs[i].task_id,
                                            .instance = b->cancels.instances[i]};
        hq_msg_t m = {0};
        m.hdr.type = HQ_MSG_CANCEL;
        m.u.cancel.n_tasks = n;
        m.u.cancel.tasks = refs;
        hq_worker_send(&b->wlink, w, &m); /* kept until acknowledged, even when unreachable */
        free(refs);
    }
    b->cancels.n = 0;
}

void hq_workers_flush(hq_broker_t *b)
{
    for (uint32_t wid = 1; wid <= b->reg.max_id; wid++) {
        hq_worker_t *w = b->reg.tab[wid];
        if (!w || w->state != HQ_WS_RUNNING || w->n_pending == 0)
            continue;
        uint32_t from = 0;
        int rc = 0;
        while (from < w->n_pending) {
            rc = s_send_assign(b, w, from);
            if (rc < 0)
                break;
            from += (uint32_t)rc;
        }
        if (rc == -2) {
            hq_worker_lost(b, w, HQ_WS_CONNECTION_LOST);
            continue;
        }
        /* EAGAIN: keep the unsent rest for the next flush. */
        memmove(w->pending, w->pending + from, (w->n_pending - from) * sizeof(hq_tref_t));
        w->n_pending -= from;
        if (w->n_pending > 0)
            b->turn.dirty = true;
    }
    /* Retractions and cancels after assigns, so a worker never sees them before the
     * ASSIGN. */
    hq_prefetch_flush(b);
    s_flush_cancels(b);
}
