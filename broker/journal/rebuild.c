/* Events of a broker without a journal, rebuilt from its state or made from its live
 * events (see rebuild.h): each becomes the journal record it would have been, and
 * ndjson.c gives its line, so both ways print the same events. */
#include "journal/rebuild.h"

#include <stdlib.h>

#include "hq_util.h"
#include "jobs.h"
#include "mnodes.h"
#include "registry.h"

/* One event of the state: a record (borrowing the broker's data) or a job-completed. */
typedef struct s_item {
    uint64_t time_ns;
    uint64_t order; /* ties keep the order of making */
    hq_jrec_t rec;  /* type 0: job-completed of rec.u.job.job */
    hq_jinst_t inst;
    hq_jrange_t range;
} s_item_t;

typedef struct s_items {
    s_item_t *v;
    size_t n, cap;
} s_items_t;

static s_item_t *s_add(s_items_t *a, uint64_t time_ns, enum hq_jrec_type type)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 256;
        a->v = hq_realloc(a->v, a->cap * sizeof *a->v);
    }
    s_item_t *it = &a->v[a->n];
    *it = (s_item_t){.time_ns = time_ns, .order = a->n};
    it->rec.type = type;
    it->rec.wall_ns = time_ns;
    a->n++;
    return it;
}

static int s_cmp(const void *x, const void *y)
{
    const s_item_t *a = x, *b = y;
    if (a->time_ns != b->time_ns)
        return a->time_ns < b->time_ns ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

static uint64_t s_line(s_item_t *it, hq_jline_fn *fn, void *arg)
{
    /* The record points into its item, which growing and sorting the array moved. */
    if (it->rec.type == HQ_JR_TASKS_STARTED || it->rec.type == HQ_JR_TASKS_STARTED_V)
        it->rec.u.batch.insts = &it->inst;
    else if (it->rec.type == HQ_JR_TASKS_CANCELED || it->rec.type == HQ_JR_TASKS_ABORTED)
        it->rec.u.tasks.ranges = &it->range;
    if (it->rec.type == 0)
        return hq_jline_job_completed(it->rec.u.job.job, it->time_ns, fn, arg);
    return hq_jrec_ndjson(&it->rec, fn, arg);
}

/* The started record of task t of job j (one instance, with its variant). */
static void s_started(s_item_t *it, const hq_job_t *j, const hq_task_t *t, uint32_t worker)
{
    it->rec.type = t->variant ? HQ_JR_TASKS_STARTED_V : HQ_JR_TASKS_STARTED;
    it->inst = (hq_jinst_t){.task = t->id, .instance = t->instance};
    it->rec.u.batch.job = j->id;
    it->rec.u.batch.worker = worker;
    it->rec.u.batch.variant = t->variant;
    it->rec.u.batch.n = 1;
    it->rec.u.batch.insts = &it->inst;
    uint32_t n;
    const uint32_t *nodes = hq_mn_nodes(j, t->id, &n);
    if (n > 1 && nodes[0] == worker) { /* a multi-node task: all its nodes (the job's) */
        it->rec = (hq_jrec_t){.type = HQ_JR_TASK_STARTED_MN, .wall_ns = it->rec.wall_ns};
        it->rec.u.nodes.job = j->id;
        it->rec.u.nodes.task = t->id;
        it->rec.u.nodes.instance = t->instance;
        it->rec.u.nodes.variant = t->variant;
        it->rec.u.nodes.n = n;
        it->rec.u.nodes.workers = nodes;
    }
}

/* The end record of task t (finished, failed, canceled, aborted), or type 0. */
static void s_ended(s_item_t *it, const hq_job_t *j, const hq_task_t *t)
{
    switch (t->state) {
    case HQ_TS_FINISHED:
    case HQ_TS_FAILED:
        it->rec.type = t->state == HQ_TS_FINISHED ? HQ_JR_TASK_FINISHED : HQ_JR_TASK_FAILED;
        it->rec.u.task.job = j->id;
        it->rec.u.task.task = t->id;
        it->rec.u.task.instance = t->instance;
        it->rec.u.task.error = t->state == HQ_TS_FAILED ? (t->error ? t->error : "") : NULL;
        break;
    default:
        it->rec.type = t->state == HQ_TS_CANCELED ? HQ_JR_TASKS_CANCELED : HQ_JR_TASKS_ABORTED;
        it->range = (hq_jrange_t){.first = t->id, .last = t->id};
        it->rec.u.tasks.job = j->id;
        it->rec.u.tasks.n = 1;
        it->rec.u.tasks.ranges = &it->range;
        break;
    }
}

uint64_t hq_jrebuild_state(const hq_broker_t *b, uint64_t skip, uint64_t max, hq_jline_fn *fn,
                           void *arg, bool *more)
{
    s_items_t a = {0};
    s_item_t *it = s_add(&a, b->conf.start_ns, HQ_JR_SERVER_START);
    it->rec.u.server_start.uid = b->conf.access.server_uid;
    for (uint32_t id = 1; id <= b->reg.max_id && id < b->reg.cap; id++) {
        const hq_worker_t *w = b->reg.tab[id];
        if (!w)
            continue;
        it = s_add(&a, w->connected_ns, HQ_JR_WORKER_UP);
        it->rec.u.worker_up.worker = w->id;
        it->rec.u.worker_up.epoch = w->epoch;
        it->rec.u.worker_up.reg = w->reg ? &w->reg->u.reg : NULL;
        if (w->ended_ns) {
            it = s_add(&a, w->ended_ns, HQ_JR_WORKER_LOST);
            it->rec.u.worker_lost.worker = w->id;
            it->rec.u.worker_lost.reason = (uint32_t)w->state;
        }
    }
    for (uint32_t id = 1; id <= b->jobs.max_id; id++) {
        const hq_job_t *j = hq_jobtab_get((hq_jobtab_t *)&b->jobs, id);
        if (!j)
            continue;
        if (j->open || j->n_submits == 0) {
            it = s_add(&a, j->submit_ns, HQ_JR_JOB_OPEN);
            it->rec.u.job_open.job = j->id;
            it->rec.u.job_open.name = j->name;
        }
        for (uint32_t s = 0; s < j->n_submits; s++) {
            if (!j->submits[s].msg)
                continue;
            it = s_add(&a, j->submit_ns, HQ_JR_JOB_SUBMIT);
            it->rec.u.job_submit.job = j->id;
            it->rec.u.job_submit.submit = &j->submits[s].msg->u.submit;
        }
        for (uint32_t i = 0; i < j->n_tasks; i++) {
            const hq_task_t *t = &j->tasks[i];
            if (t->start_ns)
                s_started(s_add(&a, t->start_ns, 0), j, t, t->worker);
            if (hq_tstate_final(t->state))
                s_ended(s_add(&a, t->end_ns ? t->end_ns : t->start_ns, 0), j, t);
        }
        if (j->finish_ns && hq_job_is_complete(j)) {
            it = s_add(&a, j->finish_ns, 0);
            it->rec.u.job.job = j->id;
        }
    }
    qsort(a.v, a.n, sizeof *a.v, s_cmp);
    uint64_t n = 0;
    for (size_t k = skip; k < a.n && k - skip < max; k++)
        n += s_line(&a.v[k], fn, arg);
    *more = skip < a.n && a.n - skip > max;
    free(a.v);
    return n;
}

bool hq_jrebuild_alloc_rec(const hq_event_t *ev, hq_jrec_t *rec)
{
    static const enum hq_jrec_type types[] = {HQ_JR_ALLOC_QUEUE, HQ_JR_ALLOC_QUEUE_STATE,
                                              HQ_JR_ALLOC_QUEUED, HQ_JR_ALLOC_STATE};
    if (ev->type < HQ_EV_ALLOC_QUEUE || ev->type > HQ_EV_ALLOC_STATE)
        return false;
    *rec = (hq_jrec_t){.type = types[ev->type - HQ_EV_ALLOC_QUEUE], .wall_ns = ev->time_ns};
    rec->u.alloc.queue = ev->queue_id;
    rec->u.alloc.id = ev->alloc_id;
    rec->u.alloc.text = ev->text;
    if (ev->type == HQ_EV_ALLOC_QUEUED)
        rec->u.alloc.count = ev->count;
    else
        rec->u.alloc.state = ev->count;
    return true;
}

uint64_t hq_jrebuild_event(const hq_broker_t *b, const hq_event_t *ev, hq_jline_fn *fn, void *arg)
{
    (void)b;
    s_item_t it = {.time_ns = ev->time_ns};
    it.rec.wall_ns = ev->time_ns;
    const hq_job_t *j = NULL;
    const hq_task_t *t = NULL;
    if (ev->type >= HQ_EV_JOB_CREATED && ev->type != HQ_EV_TASK_REQUEUED && ev->obj) {
        j = ev->obj;
        t = ev->type >= HQ_EV_TASK_STARTED ? hq_job_task(j, ev->task_id) : NULL;
    }
    switch (ev->type) {
    case HQ_EV_SERVER_START:
        it.rec.type = HQ_JR_SERVER_START;
        it.rec.u.server_start.uid = ev->text;
        break;
    case HQ_EV_SERVER_STOP:
        it.rec.type = HQ_JR_SERVER_STOP;
        break;
    case HQ_EV_WORKER_CONNECTED:
    case HQ_EV_WORKER_LOST: {
        const hq_worker_t *w = ev->obj;
        if (!w)
            return 0;
        if (ev->type == HQ_EV_WORKER_CONNECTED) {
            it.rec.type = HQ_JR_WORKER_UP;
            it.rec.u.worker_up.worker = w->id;
            it.rec.u.worker_up.epoch = w->epoch;
            it.rec.u.worker_up.reg = w->reg ? &w->reg->u.reg : NULL;
        } else {
            it.rec.type = HQ_JR_WORKER_LOST;
            it.rec.u.worker_lost.worker = w->id;
            it.rec.u.worker_lost.reason = (uint32_t)w->state;
        }
        break;
    }
    case HQ_EV_JOB_CREATED:
        if (!j || j->n_submits == 0 || !j->submits[j->n_submits - 1].msg)
            return 0; /* an open job: its job-open follows */
        it.rec.type = HQ_JR_JOB_SUBMIT;
        it.rec.u.job_submit.job = j->id;
        it.rec.u.job_submit.submit = &j->submits[j->n_submits - 1].msg->u.submit;
        break;
    case HQ_EV_JOB_OPEN:
        it.rec.type = HQ_JR_JOB_OPEN;
        it.rec.u.job_open.job = ev->job_id;
        it.rec.u.job_open.name = j ? j->name : NULL;
        break;
    case HQ_EV_JOB_CLOSE:
    case HQ_EV_JOB_CANCEL:
        it.rec.type = ev->type == HQ_EV_JOB_CLOSE ? HQ_JR_JOB_CLOSE : HQ_JR_JOB_CANCEL;
        if (ev->type == HQ_EV_JOB_CLOSE)
            it.rec.u.job.job = ev->job_id;
        else {
            it.rec.u.job_cancel.job = ev->job_id;
            it.rec.u.job_cancel.reason = ev->text;
        }
        break;
    case HQ_EV_JOB_COMPLETED:
        return hq_jline_job_completed(ev->job_id, ev->time_ns, fn, arg);
    case HQ_EV_ALLOC_QUEUE:
    case HQ_EV_ALLOC_QUEUE_STATE:
    case HQ_EV_ALLOC_QUEUED:
    case HQ_EV_ALLOC_STATE:
        hq_jrebuild_alloc_rec(ev, &it.rec);
        return hq_jrec_ndjson(&it.rec, fn, arg);
    case HQ_EV_TASK_STARTED:
        if (!j || !t)
            return 0;
        s_started(&it, j, t, ev->worker_id);
        break;
    case HQ_EV_TASK_FINISHED:
    case HQ_EV_TASK_FAILED:
    case HQ_EV_TASK_CANCELED:
    case HQ_EV_TASK_ABORTED:
        if (!j || !t)
            return 0;
        s_ended(&it, j, t);
        break;
    default:
        return 0;
    }
    return s_line(&it, fn, arg);
}
