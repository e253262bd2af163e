/* TASK_NOTIFY: a running task's notification. It is kept for job waits with
 * --on-notify (notes.c) and emitted as a task-notify event, which live journal
 * readers receive and the journal does not keep. */
#define HQ_LOG_MODULE "hq::server::notify"
#include "notify.h"

#include <string.h>

#include "hq_log.h"

int hq_h_task_notify(hq_broker_t *b, hq_creq_t *req)
{
    const hq_query_t *q = &req->msg->u.query;
    if (q->sel.kind != HQ_SEL_IDS || q->sel.ids.n != 1 ||
        q->sel.ids.ranges[0].start != q->sel.ids.ranges[0].end || q->tasks.n != 1 ||
        q->tasks.ranges[0].start != q->tasks.ranges[0].end || !q->text)
        return hq_client_error(&b->replies, req, HQ_ERR_BAD_REQUEST,
                               "TASK_NOTIFY needs one job id, one task id and a message");
    if (strlen(q->text) > HQ_NOTE_MAX)
        return hq_client_error(&b->replies, req, HQ_ERR_INVALID,
                               "Notification message is too long: %zu bytes (at most %d)",
                               strlen(q->text), HQ_NOTE_MAX);
    uint32_t job_id = q->sel.ids.ranges[0].start, task_id = q->tasks.ranges[0].start;
    hq_job_t *j = NULL;
    hq_task_t *t = hq_jobtab_task(&b->jobs, job_id, task_id, &j);
    if (!t || t->state != HQ_TS_RUNNING || (q->number && t->instance != (uint32_t)q->number))
        return hq_client_error(&b->replies, req, HQ_ERR_INVALID,
                               "Task %u of job %u is not running: it cannot send notifications",
                               task_id, job_id);
    hq_notes_add(&b->notes, job_id, task_id, t->worker, q->text);
    hq_event_t ev = {.type = HQ_EV_TASK_NOTIFY,
                     .job_id = job_id,
                     .task_id = task_id,
                     .instance = t->instance,
                     .worker_id = t->worker,
                     .text = q->text,
                     .obj = j};
    hq_events_emit(b->events, &ev);
    hq_turn_dirty(&b->turn); /* waits with --on-notify are answered at the end of the turn */
    hq_client_reply_json(&b->replies, req, json_object(), NULL);
    return 0;
}
