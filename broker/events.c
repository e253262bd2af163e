/* The single event point (see events.h). */
#define HQ_LOG_MODULE "hq::server::event"
#include "events.h"

#include <stdlib.h>

#include "hq_log.h"
#include "hq_util.h"

#define HQ_MAX_HOOKS 8

struct hq_events {
    hq_event_fn *fns[HQ_MAX_HOOKS]; /* hooks in registration order */
    void *args[HQ_MAX_HOOKS];       /* their arguments */
    int n;                          /* hooks in use */
};

hq_events_t *hq_events_new(void)
{
    return hq_calloc(1, sizeof(hq_events_t));
}

void hq_events_destroy(hq_events_t **p)
{
    if (!p || !*p)
        return;
    free(*p);
    *p = NULL;
}

int hq_events_hook(hq_events_t *e, hq_event_fn *fn, void *arg)
{
    if (e->n >= HQ_MAX_HOOKS)
        return -1;
    e->fns[e->n] = fn;
    e->args[e->n] = arg;
    e->n++;
    return 0;
}

void hq_events_unhook(hq_events_t *e, hq_event_fn *fn, void *arg)
{
    for (int i = 0; i < e->n; i++) {
        if (e->fns[i] != fn || e->args[i] != arg)
            continue;
        for (int k = i + 1; k < e->n; k++) {
            e->fns[k - 1] = e->fns[k];
            e->args[k - 1] = e->args[k];
        }
        e->n--;
        return;
    }
}

const char *hq_event_name(enum hq_event_type t)
{
    static const char *names[HQ_EV_COUNT] = {"server-start",
                                             "server-stop",
                                             "worker-connected",
                                             "worker-lost",
                                             "job-created",
                                             "job-open",
                                             "job-close",
                                             "job-cancel",
                                             "job-completed",
                                             "task-started",
                                             "task-finished",
                                             "task-failed",
                                             "task-canceled",
                                             "task-aborted",
                                             "task-requeued",
                                             "task-notify",
                                             "worker-overview",
                                             "autoalloc-queue",
                                             "autoalloc-queue-state",
                                             "autoalloc-allocation-queued",
                                             "autoalloc-allocation-state"};
    return (unsigned)t < HQ_EV_COUNT ? names[t] : "unknown";
}

void hq_events_emit(hq_events_t *e, hq_event_t *ev)
{
    if (ev->time_ns == 0)
        ev->time_ns = hq_wall_ns();
    if (hq_log_enabled(HQ_LOG_DEBUG))
        hq_debug("event %s job=%u task=%u instance=%u worker=%u%s%s", hq_event_name(ev->type),
                 ev->job_id, ev->task_id, ev->instance, ev->worker_id, ev->text ? " " : "",
                 ev->text ? ev->text : "");
    for (int i = 0; i < e->n; i++)
        e->fns[i](ev, e->args[i]);
}

bool hq_events_task_state(hq_events_t *e, hq_job_t *j, hq_task_t *t, enum hq_tstate st,
                          uint32_t worker_id, const char *error, uint64_t wall_ns)
{
    bool was_complete = hq_job_is_complete(j);
    j->counts[t->state]--;
    j->counts[st]++;
    t->state = (uint8_t)st;
    enum hq_event_type type = HQ_EV_COUNT;
    switch (st) {
    case HQ_TS_WAITING:
        type = HQ_EV_TASK_REQUEUED;
        t->start_ns = 0;
        break;
    case HQ_TS_ASSIGNED:
        break;
    case HQ_TS_RUNNING:
        type = HQ_EV_TASK_STARTED;
        t->start_ns = wall_ns;
        break;
    case HQ_TS_FINISHED:
        type = HQ_EV_TASK_FINISHED;
        break;
    case HQ_TS_FAILED:
        type = HQ_EV_TASK_FAILED;
        free(t->error);
        t->error = hq_strdup(error ? error : "");
        break;
    case HQ_TS_CANCELED:
        type = HQ_EV_TASK_CANCELED;
        break;
    case HQ_TS_ABORTED:
        type = HQ_EV_TASK_ABORTED;
        break;
    default:
        break;
    }
    if (hq_tstate_final(st))
        t->end_ns = wall_ns;
    if (e && type != HQ_EV_COUNT) {
        hq_event_t ev = {.type = type,
                         .time_ns = wall_ns,
                         .job_id = j->id,
                         .task_id = t->id,
                         .instance = t->instance,
                         .worker_id = worker_id,
                         .text = st == HQ_TS_FAILED ? t->error : NULL,
                         .obj = j};
        hq_events_emit(e, &ev);
    }
    bool now_complete = hq_job_is_complete(j);
    if (!now_complete)
        j->finish_ns = 0;
    if (now_complete && !was_complete) {
        j->finish_ns = wall_ns;
        if (e) {
            hq_event_t ev = {
                .type = HQ_EV_JOB_COMPLETED, .time_ns = wall_ns, .job_id = j->id, .obj = j};
            hq_events_emit(e, &ev);
        }
        return true;
    }
    return false;
}
