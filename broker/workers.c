/* Workers' lives as the broker sees them: loss (by heartbeat, broken link or
 * goodbye) with its tasks requeued, the liveness tick, the unreachable-peer check,
 * stopping all and freeing the registry. */
#define HQ_LOG_MODULE "hq::server::worker"
#include <stdlib.h>
#include <string.h>

#include "workers.h"

#include "hq_duration.h"
#include "hq_log.h"
#include "hq_util.h"
#include "tasks.h"

/* ---- loss ---- */

void hq_worker_lost(hq_broker_t *b, hq_worker_t *w, enum hq_wstate why)
{
    if (w->state != HQ_WS_RUNNING)
        return;
    w->state = why;
    w->ended_ns = hq_wall_ns();
    zhashx_delete(b->reg.by_rid, w->rid_key);
    /* Nothing of this session is sent again: a later session starts a new outbox. */
    hq_outbox_clear(&w->outbox);
    w->unreach_since = 0;
    const char *reason = hq_wstate_word(why);
    if (why == HQ_WS_HEARTBEAT_LOST || why == HQ_WS_CONNECTION_LOST)
        hq_info("Worker %u lost (%s)", w->id, reason);
    else
        hq_info("Worker %u stopped (%s)", w->id, reason);
    hq_sched_cmd_t *cmd = hq_sched_cmd_new(HQ_SCHED_WORKER_DOWN);
    cmd->worker_id = w->id;
    hq_readyq_post(&b->ready, cmd);
    bool crash = why == HQ_WS_HEARTBEAT_LOST || why == HQ_WS_CONNECTION_LOST;
    w->n_pending = 0;
    if (w->n_assigned > 0) {
        for (uint32_t jid = 1; jid <= b->jobs.max_id; jid++) {
            hq_job_t *j = b->jobs.tab[jid];
            if (!j)
                continue;
            for (uint32_t i = 0; i < j->n_tasks; i++) {
                hq_task_t *t = &j->tasks[i];
                if (!(t->flags & (HQ_TF_HOLDS | HQ_TF_ADOPTED)) || t->worker != w->id)
                    continue;
                if (hq_tstate_final(t->state))
                    t->flags &= (uint8_t) ~(HQ_TF_HOLDS | HQ_TF_ADOPTED);
                else
                    hq_broker_requeue(b, j, t, crash);
            }
        }
    }
    w->n_assigned = 0;
    w->n_running = 0;
    hq_event_t ev = {.type = HQ_EV_WORKER_LOST, .worker_id = w->id, .text = reason, .obj = w};
    hq_events_emit(b->events, &ev);
    hq_worker_compact(w); /* what a worker that ended no longer needs */
    hq_turn_dirty(&b->turn);
}

/* How late a tick may be before the loop counts as having stalled: its period plus a
 * margin for a busy machine. */
#define S_STALL_MARGIN_NS (200 * HQ_NS_PER_MS)

/* The broker's own loop stopped (SIGSTOP, a swapped-out or paused machine, a long
 * request): the silence of the workers during that time is the broker's, not
 * theirs. Each live worker gets a fresh heartbeat window from now, so messages that
 * waited in the sockets (results of tasks that finished meanwhile, heartbeats) are
 * read before any worker is judged. Returns true when it was such a tick. */
static bool s_after_stall(hq_broker_t *b, uint64_t now)
{
    uint64_t last = b->reg.last_tick_ns;
    b->reg.last_tick_ns = now;
    if (!last || now - last <= b->turn.tick_ns + S_STALL_MARGIN_NS)
        return false;
    uint32_t n = 0;
    for (uint32_t wid = 1; wid <= b->reg.max_id; wid++) {
        hq_worker_t *w = b->reg.tab[wid];
        if (!w || w->state != HQ_WS_RUNNING)
            continue;
        w->last_recv = now;
        if (w->unreach_since)
            w->unreach_since = now;
        n++;
    }
    b->reg.n_stalls++;
    hq_log(now - last >= HQ_NS_PER_SEC ? HQ_LOG_INFO : HQ_LOG_DEBUG, HQ_LOG_MODULE,
           "The server's loop stood still for %.1f s; %u worker%s get%s a fresh heartbeat "
           "window",
           (double)(now - last) / (double)HQ_NS_PER_SEC, n, n == 1 ? "" : "s", n == 1 ? "s" : "");
    return true;
}

/* Workers a send found unreachable (wsend.c marks them): lost once their grace
 * has passed without a word from them (at once without a loop, as in tests); the
 * one-shot timer comes back for the earliest remaining. */
static int s_on_unreach_check(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    hq_broker_t *b = arg;
    b->reg.unreach_armed = false;
    hq_workers_check_unreachable(b);
    return 0;
}

void hq_workers_check_unreachable(hq_broker_t *b)
{
    b->wlink.unreach_new = false;
    uint64_t now = hq_mono_ns(), next = 0;
    if (b->turn.loop) /* this check's timer may run before the tick after a stall */
        s_after_stall(b, now);
    for (uint32_t wid = 1; wid <= b->reg.max_id; wid++) {
        hq_worker_t *w = b->reg.tab[wid];
        if (!w || w->state != HQ_WS_RUNNING || !w->unreach_since)
            continue;
        uint64_t end = w->unreach_since + hq_worker_unreach_grace(w);
        if (now >= end || !b->turn.loop) {
            hq_worker_lost(b, w, HQ_WS_CONNECTION_LOST);
            continue;
        }
        if (!next || end < next)
            next = end;
    }
    if (next && !b->reg.unreach_armed) {
        size_t ms = (size_t)((next - now) / HQ_NS_PER_MS) + 1;
        b->reg.unreach_armed = zloop_timer(b->turn.loop, ms, 1, s_on_unreach_check, b) >= 0;
        if (!b->reg.unreach_armed) /* no timer: cannot wait for it */
            for (uint32_t wid = 1; wid <= b->reg.max_id; wid++) {
                hq_worker_t *w = b->reg.tab[wid];
                if (w && w->state == HQ_WS_RUNNING && w->unreach_since)
                    hq_worker_lost(b, w, HQ_WS_CONNECTION_LOST);
            }
    }
}

/* ---- heartbeats ---- */

void hq_workers_tick_for(hq_broker_t *b, uint64_t hb_ns)
{
    uint64_t want = hb_ns / 4;
    if (want < 5 * HQ_NS_PER_MS)
        want = 5 * HQ_NS_PER_MS;
    if (want < b->turn.tick_ns && b->turn.loop)
        hq_turn_retime(&b->turn, want);
}

void hq_workers_tick(hq_broker_t *b)
{
    uint64_t now = hq_mono_ns();
    s_after_stall(b, now);
    for (uint32_t wid = 1; wid <= b->reg.max_id; wid++) {
        hq_worker_t *w = b->reg.tab[wid];
        if (!w || w->state != HQ_WS_RUNNING)
            continue;
        if (now - w->last_recv > 2 * w->hb_ns) {
            hq_worker_lost(b, w, HQ_WS_HEARTBEAT_LOST);
            continue;
        }
        if (now - w->last_sent_hb >= w->hb_ns) {
            w->last_sent_hb = now;
            hq_msg_t m = {0};
            m.hdr.type = HQ_MSG_HEARTBEAT;
            hq_worker_send(&b->wlink, w, &m); /* unreachable: lost after a grace */
        }
    }
}

void hq_workers_stop_all(hq_broker_t *b, uint32_t reason)
{
    for (uint32_t wid = 1; wid <= b->reg.max_id; wid++) {
        hq_worker_t *w = b->reg.tab[wid];
        if (w && w->state == HQ_WS_RUNNING)
            hq_worker_send_simple(&b->wlink, w, HQ_MSG_STOP, reason);
    }
}
