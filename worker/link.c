/* The worker's side of the broker link: every message carries our session epoch, a
 * sequence number and the highest broker sequence seen. Task events are collected
 * during a loop turn and sent as one RESULTS message with the current credit. */
#include "wk.h"

#include <stdlib.h>
#include <string.h>

#define HQ_LOG_MODULE "hq::worker"
#include "hq_log.h"
#include "hq_util.h"

#define WK_BATCH_MS 4        /* results wait at most this long while the queue is full */
#define WK_BATCH_SHORT_MS 16 /* ... or this long while tasks are short (deep queue) */

int wk_link_send(wk_t *w, uint8_t type, const hq_msg_t *body)
{
    hq_msg_t msg;
    if (body)
        msg = *body;
    else
        memset(&msg, 0, sizeof msg);
    msg.hdr.version = HQ_PROTO_VERSION;
    msg.hdr.type = type;
    msg.hdr.request_id = 0;
    msg.hdr.epoch = w->epoch;
    msg.hdr.seq = ++w->seq;
    msg.hdr.ack = w->ack;
    uint8_t *buf = NULL;
    size_t len = 0;
    hq_err_t err;
    if (hq_msg_encode(&msg, &buf, &len, &err) != 0) {
        hq_error("Cannot encode %s: %s", hq_msg_type_name(type), err.text);
        return -1;
    }
    int rc = zmq_send(w->handle, buf, len, ZMQ_DONTWAIT);
    free(buf);
    if (rc < 0) {
        hq_debug("Sending %s failed: %s", hq_msg_type_name(type), zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

static hq_ralloc_t *s_copy_allocs(const hq_ralloc_t *src, uint32_t n)
{
    if (n == 0)
        return NULL;
    hq_ralloc_t *dst = hq_calloc(n, sizeof *dst);
    for (uint32_t i = 0; i < n; i++) {
        dst[i].name = hq_strdup(src[i].name);
        dst[i].amount = src[i].amount;
        dst[i].n_labels = src[i].n_labels;
        dst[i].labels = hq_calloc(src[i].n_labels ? src[i].n_labels : 1, sizeof(char *));
        for (uint32_t j = 0; j < src[i].n_labels; j++)
            dst[i].labels[j] = hq_strdup(src[i].labels[j]);
    }
    return dst;
}

static int s_on_flush(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    wk_t *w = arg;
    w->flush_armed = false;
    w->flush_timer = -1;
    wk_link_flush(w);
    return 0;
}

/* Arms the flush. While enough tasks wait in the local queue, the broker's answer
 * is not urgent, so results of a few milliseconds travel together (fewer messages
 * and wake-ups on a busy node); otherwise they leave at the end of this loop turn. */
static void s_arm(wk_t *w)
{
    if (!w->loop)
        return;
    bool urgent = w->n_queued < w->low_water || w->draining;
    if (w->flush_armed && (w->flush_urgent || !urgent))
        return;
    if (w->flush_armed)
        zloop_timer_end(w->loop, w->flush_timer);
    size_t ms = urgent ? 0 : w->short_tasks ? WK_BATCH_SHORT_MS : WK_BATCH_MS;
    w->flush_timer = zloop_timer(w->loop, ms, 1, s_on_flush, w);
    w->flush_armed = w->flush_timer >= 0;
    w->flush_urgent = urgent;
}

void wk_link_event(wk_t *w, const wk_task_t *t, enum hq_tev_kind kind, char *error,
                   bool with_allocs)
{
    if (w->n_ev == w->cap_ev) {
        w->cap_ev = w->cap_ev ? w->cap_ev * 2 : 64;
        w->ev = hq_realloc(w->ev, w->cap_ev * sizeof *w->ev);
    }
    hq_task_event_t *e = &w->ev[w->n_ev++];
    memset(e, 0, sizeof *e);
    e->job_id = t->info->job_id;
    e->task_id = t->info->task_id;
    e->instance = t->info->instance;
    e->kind = kind;
    /* An ended process reports when it was reaped, not when its event was made
     * (the next task starts in between). */
    e->time_ns = kind != HQ_TEV_STARTED && t->ended_wall_ns ? t->ended_wall_ns : hq_wall_ns();
    e->error = error;
    if (with_allocs) {
        e->allocs = s_copy_allocs(t->allocs, t->n_allocs);
        e->n_allocs = t->allocs ? t->n_allocs : 0;
    }
    s_arm(w);
}

void wk_link_credit_changed(wk_t *w)
{
    w->credit_dirty = true;
    s_arm(w);
}

void wk_link_events_clear(wk_t *w)
{
    for (uint32_t i = 0; i < w->n_ev; i++) {
        free(w->ev[i].error);
        wk_ralloc_free(w->ev[i].allocs, w->ev[i].n_allocs);
    }
    w->n_ev = 0;
}

void wk_link_flush(wk_t *w)
{
    uint32_t credit = w->draining ? 0 : w->slots;
    if (w->n_ev == 0 && !w->credit_dirty)
        return;
    if (w->n_ev == 0 && credit == w->last_credit) {
        w->credit_dirty = false;
        return;
    }
    /* Keep each message well under the worker socket limit. */
    uint32_t sent = 0;
    do {
        uint32_t chunk = w->n_ev - sent;
        if (chunk > 4096)
            chunk = 4096;
        hq_msg_t msg;
        memset(&msg, 0, sizeof msg);
        msg.u.results.credit = credit;
        msg.u.results.n_events = chunk;
        msg.u.results.events = chunk ? w->ev + sent : NULL;
        wk_link_send(w, HQ_MSG_RESULTS, &msg);
        sent += chunk;
    } while (sent < w->n_ev);
    w->last_credit = credit;
    w->credit_dirty = false;
    wk_link_events_clear(w);
}
