/* The worker's side of the broker link: every message carries our session epoch, a
 * sequence number and the highest broker sequence seen. Task events are collected
 * during a loop turn and sent as one RESULTS message with the current credit. */
#include "wk.h"

#include <stdlib.h>
#include <string.h>

#define HQ_LOG_MODULE "hq::worker"
#include "hq_duration.h"
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
    if (!w->handle)
        return -1;
    bool reliable = hq_msg_is_reliable(type);
    msg.hdr.version = HQ_PROTO_VERSION;
    msg.hdr.type = type;
    msg.hdr.request_id = 0;
    msg.hdr.epoch = w->epoch;
    /* Only reliable messages take a new seq; the others repeat the last one. */
    msg.hdr.seq = reliable ? w->seq + 1 : w->seq;
    msg.hdr.ack = w->ack;
    uint8_t *buf = NULL;
    size_t len = 0;
    hq_err_t err;
    if (hq_msg_encode(&msg, &buf, &len, &err) != 0) {
        hq_error("Cannot encode %s: %s", hq_msg_type_name(type), err.text);
        return -1;
    }
    int rc = zmq_send(w->handle, buf, len, ZMQ_DONTWAIT);
    if (rc < 0)
        hq_debug("Sending %s failed: %s", hq_msg_type_name(type), zmq_strerror(zmq_errno()));
    if (!reliable) {
        free(buf);
        return rc < 0 ? -1 : 0;
    }
    /* Kept until acknowledged, also when it could not leave now. */
    w->seq++;
    uint32_t dropped = hq_outbox_push(&w->outbox, w->seq, buf, len, rc < 0 ? 0 : hq_mono_ns());
    if (dropped)
        hq_warn("The server acknowledges nothing: %u unacknowledged messages dropped", dropped);
    return 0;
}

/* Half a heartbeat: the broker acknowledges at least once per heartbeat. */
static uint64_t s_retx_age(const wk_t *w)
{
    uint64_t age = w->conf.heartbeat_ns / 2;
    return age < 50 * HQ_NS_PER_MS ? 50 * HQ_NS_PER_MS : age;
}

void wk_link_retransmit(wk_t *w, bool force)
{
    uint64_t now = hq_mono_ns();
    if (!w->handle || w->lost || !hq_outbox_due(&w->outbox, now, s_retx_age(w), force))
        return;
    uint32_t k = 0;
    for (; k < w->outbox.n; k++) {
        hq_outbox_entry_t *e = hq_outbox_at(&w->outbox, k);
        if (zmq_send(w->handle, e->buf, e->len, ZMQ_DONTWAIT) < 0)
            break;
        e->sent_ns = now;
    }
    w->outbox.last_retx_ns = now;
    if (k)
        hq_debug("Retransmitted %u RESULTS message%s from seq %llu", k, k == 1 ? "" : "s",
                 (unsigned long long)hq_outbox_at(&w->outbox, 0)->seq);
}

static void s_nack(wk_t *w)
{
    uint64_t now = hq_mono_ns();
    if (w->last_nack && now - w->last_nack < s_retx_age(w) / 2)
        return;
    w->last_nack = now;
    wk_link_send(w, HQ_MSG_HEARTBEAT, NULL);
}

bool wk_link_accept(wk_t *w, const hq_msg_t *msg)
{
    uint64_t ack = msg->hdr.ack < w->seq ? msg->hdr.ack : w->seq;
    if (ack > w->peer_ack)
        w->peer_ack = ack;
    hq_outbox_ack(&w->outbox, w->peer_ack);
    wk_link_retransmit(w, false);
    if (!hq_msg_is_reliable(msg->hdr.type)) {
        if (msg->hdr.seq > w->ack)
            s_nack(w); /* the broker sent something we have not received */
        return true;
    }
    switch (hq_seq_check(w->ack, msg->hdr.seq)) {
    case HQ_SEQ_DELIVER:
        w->ack = msg->hdr.seq;
        return true;
    case HQ_SEQ_DUP:
        hq_debug("Dropped a duplicate %s (seq %llu)", hq_msg_type_name(msg->hdr.type),
                 (unsigned long long)msg->hdr.seq);
        return false;
    default:
        hq_debug("Dropped %s seq %llu: seq %llu is missing", hq_msg_type_name(msg->hdr.type),
                 (unsigned long long)msg->hdr.seq, (unsigned long long)w->ack + 1);
        s_nack(w);
        return false;
    }
}

void wk_link_session_reset(wk_t *w, uint64_t peer_seq)
{
    hq_outbox_clear(&w->outbox);
    w->ack = peer_seq;
    w->peer_ack = 0;
    w->last_nack = 0;
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

static void s_release_held(wk_t *w)
{
    for (uint32_t i = 0; i < w->n_held; i++) {
        if (w->n_ev == w->cap_ev) {
            w->cap_ev = w->cap_ev ? w->cap_ev * 2 : 64;
            w->ev = hq_realloc(w->ev, w->cap_ev * sizeof *w->ev);
        }
        w->ev[w->n_ev++] = w->held[i];
    }
    w->n_held = 0;
    s_arm(w);
}

static int s_on_held(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    wk_t *w = arg;
    w->held_timer = -1;
    s_release_held(w);
    return 0;
}

void wk_link_hold_last(wk_t *w)
{
    if (w->n_ev == 0 || !w->loop)
        return;
    if (w->n_held == w->cap_held) {
        w->cap_held = w->cap_held ? w->cap_held * 2 : 8;
        w->held = hq_realloc(w->held, w->cap_held * sizeof *w->held);
    }
    w->held[w->n_held++] = w->ev[--w->n_ev];
    /* One timer for the group: tasks of one allocation die together. */
    if (w->held_timer < 0)
        w->held_timer = zloop_timer(w->loop, WK_HOLD_MS, 1, s_on_held, w);
    if (w->held_timer < 0)
        s_release_held(w);
}

void wk_link_drop_held(wk_t *w)
{
    for (uint32_t i = 0; i < w->n_held; i++) {
        free(w->held[i].error);
        wk_ralloc_free(w->held[i].allocs, w->held[i].n_allocs);
    }
    if (w->n_held)
        hq_info("%u task%s killed together with the worker; the server counts %s as lost "
                "with it",
                w->n_held, w->n_held == 1 ? "" : "s", w->n_held == 1 ? "it" : "them");
    w->n_held = 0;
    if (w->held_timer >= 0) {
        zloop_timer_end(w->loop, w->held_timer);
        w->held_timer = -1;
    }
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
    for (uint32_t i = 0; i < w->n_held; i++)
        free(w->held[i].error);
    w->n_held = 0;
}

static bool s_is_end(uint32_t kind)
{
    return kind == HQ_TEV_FINISHED || kind == HQ_TEV_FAILED || kind == HQ_TEV_CANCELED;
}

/* An end event stays here until the broker acknowledged it and a few heartbeats
 * passed (its record is durable by then): if the broker dies first, the event is
 * reported again after the reconnect. */
static void s_keep(wk_t *w, const hq_task_event_t *e, uint64_t seq, uint64_t now)
{
    if (w->n_kept == w->cap_kept) {
        w->cap_kept = w->cap_kept ? w->cap_kept * 2 : 64;
        w->kept = hq_realloc(w->kept, w->cap_kept * sizeof *w->kept);
        w->kept_seq = hq_realloc(w->kept_seq, w->cap_kept * sizeof *w->kept_seq);
        w->kept_at = hq_realloc(w->kept_at, w->cap_kept * sizeof *w->kept_at);
    }
    hq_task_event_t *k = &w->kept[w->n_kept];
    *k = *e;
    k->error = e->error ? hq_strdup(e->error) : NULL;
    k->n_allocs = 0;
    k->allocs = NULL;
    w->kept_seq[w->n_kept] = seq;
    w->kept_at[w->n_kept] = now;
    w->n_kept++;
}

static void s_prune_kept(wk_t *w, uint64_t now)
{
    uint64_t hold = 2 * w->conf.heartbeat_ns + 2 * HQ_NS_PER_SEC;
    uint32_t k = 0;
    for (uint32_t i = 0; i < w->n_kept; i++) {
        if (w->kept_seq[i] <= w->peer_ack && now - w->kept_at[i] > hold) {
            free(w->kept[i].error);
            continue;
        }
        w->kept[k] = w->kept[i];
        w->kept_seq[k] = w->kept_seq[i];
        w->kept_at[k] = w->kept_at[i];
        k++;
    }
    w->n_kept = k;
}

void wk_link_kept_clear(wk_t *w)
{
    for (uint32_t i = 0; i < w->n_kept; i++)
        free(w->kept[i].error);
    w->n_kept = 0;
}

hq_task_ref_t *wk_link_reports(wk_t *w, uint32_t *n)
{
    uint32_t cap = w->n_running + w->n_ev + w->n_kept + 1;
    hq_task_ref_t *r = hq_malloc(cap * sizeof *r);
    uint32_t k = 0;
    for (const wk_task_t *t = w->running; t; t = t->next)
        r[k++] = (hq_task_ref_t){t->info->job_id, t->info->task_id, t->info->instance};
    for (uint32_t i = 0; i < w->n_ev; i++)
        if (s_is_end(w->ev[i].kind))
            r[k++] = (hq_task_ref_t){w->ev[i].job_id, w->ev[i].task_id, w->ev[i].instance};
    for (uint32_t i = 0; i < w->n_kept; i++)
        r[k++] = (hq_task_ref_t){w->kept[i].job_id, w->kept[i].task_id, w->kept[i].instance};
    *n = k;
    return r;
}

void wk_link_resend_ends(wk_t *w)
{
    /* Events of the lost session: only the ends matter (a start is known from the
     * broker's journal, a rejected task was requeued by the broker). */
    uint32_t k = 0;
    for (uint32_t i = 0; i < w->n_ev; i++) {
        hq_task_event_t *e = &w->ev[i];
        if (!s_is_end(e->kind)) {
            free(e->error);
            wk_ralloc_free(e->allocs, e->n_allocs);
            continue;
        }
        w->ev[k++] = *e;
    }
    w->n_ev = k;
    for (uint32_t i = 0; i < w->n_kept; i++) {
        if (w->n_ev == w->cap_ev) {
            w->cap_ev = w->cap_ev ? w->cap_ev * 2 : 64;
            w->ev = hq_realloc(w->ev, w->cap_ev * sizeof *w->ev);
        }
        w->ev[w->n_ev++] = w->kept[i]; /* takes the error string */
    }
    w->n_kept = 0;
    w->credit_dirty = true;
    s_arm(w);
}

void wk_link_flush(wk_t *w)
{
    if (w->lost)
        return; /* nobody to send to: events wait for a reconnect */
    uint32_t credit = w->draining ? 0 : w->slots > w->n_carried ? w->slots - w->n_carried : 0;
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
        if (w->conf.on_server_lost == HQ_LOST_FINISH_RUNNING) {
            uint64_t now = hq_mono_ns();
            for (uint32_t i = 0; i < chunk; i++)
                if (s_is_end(w->ev[sent + i].kind))
                    s_keep(w, &w->ev[sent + i], w->seq, now);
            s_prune_kept(w, now);
        }
        sent += chunk;
    } while (sent < w->n_ev);
    w->last_credit = credit;
    w->credit_dirty = false;
    wk_link_events_clear(w);
}
