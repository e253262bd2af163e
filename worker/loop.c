/* The worker's event loop, on top of everything else in worker/: broker messages
 * (handed to tasks.c), connection events, child exits and signals (one signalfd),
 * heartbeats, the idle timeout, the time limit and the policy for a lost server.
 *
 * The server is lost after two heartbeats without a word from it, or at once when
 * the connection broke and reconnecting is refused (s_on_monitor).
 * --on-server-lost finish-running: the worker keeps its running tasks, takes no new
 * ones and registers again, at once and then with exponential back-off (0.5 s
 * doubling to 32 s), for a
 * reconnect window (60 s; the environment variable HQ_RECONNECT_WINDOW, a duration,
 * changes it, "0s" disables reconnecting). Each attempt re-reads the access file (a
 * restarted server may listen elsewhere) and reports the task instances it still runs
 * or finished meanwhile, so the server re-adopts them instead of running them again;
 * the ends follow in a RESULTS right after REGISTERED. After the window it finishes
 * its tasks and exits 1. */
#include "wk.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define HQ_LOG_MODULE "hq::worker"
#include "hq_duration.h"
#include "hq_log.h"
#include "hq_util.h"
#include "overview.h"

#define WK_BACKOFF_START_NS (500 * HQ_NS_PER_MS)
#define WK_BACKOFF_MAX_NS (32 * HQ_NS_PER_SEC)

/* ---- the event loop ---- */

static void s_goodbye(wk_t *w, enum hq_goodbye_reason reason)
{
    if (!w->sock || w->lost)
        return; /* nobody to say it to */
    wk_link_flush(w);
    hq_msg_t bye;
    memset(&bye, 0, sizeof bye);
    bye.u.goodbye.reason = reason;
    wk_link_send(w, HQ_MSG_GOODBYE, &bye);
    /* Give the message a moment to leave before the socket closes (linger 0). */
    zsock_set_linger(w->sock, 1000);
}

static void s_kill_all(wk_t *w, const char *why)
{
    if (w->n_running > 0)
        hq_info("%s; killing %u running task%s", why, w->n_running, w->n_running == 1 ? "" : "s");
    wk_tasks_kill_all(w);
}

static int s_on_idle(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    wk_t *w = arg;
    w->idle_timer = -1;
    if (wk_tasks_held(w) > 0 || w->node_of)
        return 0;
    hq_info("Idle timeout reached; stopping the worker");
    s_goodbye(w, HQ_BYE_IDLE_TIMEOUT);
    w->exit_code = 0;
    return -1;
}

/* Arms the idle timer when the worker holds no task (and serves no multi-node task
 * as a secondary node), disarms it otherwise. */
static void s_idle_update(wk_t *w)
{
    bool idle = wk_tasks_held(w) == 0 && !w->node_of;
    if (!idle && w->idle_timer >= 0) {
        zloop_timer_end(w->loop, w->idle_timer);
        w->idle_timer = -1;
    } else if (idle && w->idle_timer < 0 && w->idle_timeout_ns > 0) {
        uint64_t ms = w->idle_timeout_ns / HQ_NS_PER_MS;
        w->idle_timer = zloop_timer(w->loop, ms ? (size_t)ms : 1, 1, s_on_idle, w);
    }
}

static int s_on_time_limit(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    wk_t *w = arg;
    hq_info("Worker time limit reached");
    s_kill_all(w, "Worker time limit reached");
    s_goodbye(w, HQ_BYE_TIME_LIMIT);
    w->exit_code = 0;
    return -1;
}

static int s_on_heartbeat(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    wk_t *w = arg;
    if (!w->lost)
        wk_link_send(w, HQ_MSG_HEARTBEAT, NULL);
    return 0;
}

/* --overview-interval: the hardware state, as an OVERVIEW (not kept for a resend:
 * the next one supersedes it). */
static int s_on_overview(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    wk_t *w = arg;
    if (w->lost)
        return 0;
    char *text = wk_overview_collect(&w->overview);
    if (!text)
        return 0;
    hq_msg_t m = {0};
    m.u.overview.hw_state = text;
    wk_link_send(w, HQ_MSG_OVERVIEW, &m);
    free(text);
    return 0;
}

static int s_server_lost(wk_t *w, const char *how);

/* The DEALER's connection events. libzmq reconnects a broken connection by itself
 * (same routing id, so the broker keeps the session); what was in flight on the old
 * one may be lost, so after a reconnect the unacknowledged RESULTS go out again and a
 * heartbeat tells the broker at once how far we got. A connection that broke and
 * whose reconnects are refused (nobody listens at the broker's port any more: it
 * exited or was killed) is a lost server at once, without waiting for two missed
 * heartbeats; a link that comes back (a reset, a partition) is not. */
#define WK_REFUSED_LOST 2
static int s_on_monitor(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    (void)sock;
    wk_t *w = arg;
    uint16_t event = wk_conn_monitor_read(w);
    if (event == ZMQ_EVENT_DISCONNECTED) {
        hq_debug("The connection to the server broke; reconnecting");
        w->link_down = true;
        w->n_refused = 0;
    } else if (event == ZMQ_EVENT_CONNECTED) {
        w->n_refused = 0;
    } else if (event == ZMQ_EVENT_CLOSED && w->link_down) {
        /* A reconnect attempt failed before a TCP connection existed. */
        if (++w->n_refused >= WK_REFUSED_LOST && !w->lost && w->epoch)
            return s_server_lost(w, "the connection closed and reconnecting is refused");
    } else if (wk_conn_handshake_failed(event)) {
        hq_debug("The server refused a connection handshake (event %u)", (unsigned)event);
    } else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        w->link_down = false;
        w->n_refused = 0;
        if (++w->n_handshakes > 1 && !w->lost && w->epoch) {
            hq_debug("Reconnected to the server; %u unacknowledged message%s sent again",
                     w->outbox.n, w->outbox.n == 1 ? "" : "s");
            wk_link_retransmit(w, true);
            wk_link_send(w, HQ_MSG_HEARTBEAT, NULL);
        }
    }
    return 0;
}

/* ---- reconnecting (finish-running) ---- */

static int s_on_msg(zloop_t *loop, zsock_t *sock, void *arg);

/* One attempt: a fresh connection to whatever the access file names now, and a
 * REGISTER that reports our tasks. The answer arrives in s_on_msg. */
static void s_reconnect_attempt(wk_t *w)
{
    wk_conn_monitor_close(w);
    if (w->sock) {
        zloop_reader_end(w->loop, w->sock);
        zsock_destroy(&w->sock);
        w->handle = NULL;
    }
    char host[300];
    hq_err_t err;
    if (wk_conn_open(w, host, sizeof host, &err) != 0) {
        hq_debug("Reconnect attempt failed: %s", err.text);
        wk_conn_monitor_close(w);
        if (w->sock) {
            zsock_destroy(&w->sock);
            w->handle = NULL;
        }
        return;
    }
    if (w->mon)
        zloop_reader(w->loop, w->mon, s_on_monitor, w);
    zloop_reader(w->loop, w->sock, s_on_msg, w);
    zloop_reader_set_tolerant(w->loop, w->sock);
    w->epoch = 0;
    w->seq = 0;
    wk_link_session_reset(w, 0);
    hq_msg_t reg;
    memset(&reg, 0, sizeof reg);
    reg.u.reg.conf = w->conf;
    reg.u.reg.prefetch = w->prefetch;
    reg.u.reg.n_running = w->n_running;
    reg.u.reg.old_worker_id = w->worker_id;
    reg.u.reg.has_secret = w->has_secret; /* proof that this is that worker */
    memcpy(reg.u.reg.secret, w->secret, sizeof w->secret);
    reg.u.reg.reports = wk_link_reports(w, &reg.u.reg.n_reports);
    hq_debug("Registering again at %s with %u task report%s", host, reg.u.reg.n_reports,
             reg.u.reg.n_reports == 1 ? "" : "s");
    wk_link_send(w, HQ_MSG_REGISTER, &reg);
    free(reg.u.reg.reports);
}

/* The window closed: finish the running tasks (s_on_signal exits after the last). */
static int s_reconnect_give_up(wk_t *w)
{
    w->reconnecting = false;
    wk_link_events_clear(w);
    wk_link_kept_clear(w);
    if (w->n_running == 0) {
        hq_error("Could not reconnect to the server; exiting");
        w->exit_code = 1;
        return -1;
    }
    hq_warn("Could not reconnect to the server; waiting for %u running task%s to finish, "
            "then exiting",
            w->n_running, w->n_running == 1 ? "" : "s");
    return 0;
}

static int s_on_reconnect(zloop_t *loop, int timer_id, void *arg)
{
    (void)timer_id;
    wk_t *w = arg;
    w->reconnect_timer = -1;
    if (!w->reconnecting)
        return 0;
    uint64_t now = hq_mono_ns();
    if (now >= w->reconnect_end)
        return s_reconnect_give_up(w);
    s_reconnect_attempt(w);
    uint64_t delay = w->backoff_ns;
    w->backoff_ns = w->backoff_ns * 2 > WK_BACKOFF_MAX_NS ? WK_BACKOFF_MAX_NS : w->backoff_ns * 2;
    if (now + delay > w->reconnect_end)
        delay = w->reconnect_end - now;
    uint64_t ms = delay / HQ_NS_PER_MS;
    w->reconnect_timer = zloop_timer(loop, ms ? (size_t)ms : 1, 1, s_on_reconnect, w);
    return 0;
}

static void s_reconnect_start(wk_t *w)
{
    w->reconnecting = true;
    w->reconnect_end = hq_mono_ns() + w->reconnect_window_ns;
    w->backoff_ns = WK_BACKOFF_START_NS;
    /* The first attempt at once: a restarted broker may already be there. */
    w->reconnect_timer = zloop_timer(w->loop, 1, 1, s_on_reconnect, w);
}

static void s_reregistered(wk_t *w, const hq_msg_t *msg)
{
    w->worker_id = msg->u.registered.worker_id;
    w->epoch = msg->hdr.epoch;
    wk_conn_keep_secret(w, &msg->u.registered);
    wk_link_session_reset(w, msg->hdr.seq);
    free(w->server_uid);
    w->server_uid = hq_strdup(msg->u.registered.server_uid ? msg->u.registered.server_uid : "");
    w->tctx.server_uid = w->server_uid;
    w->lost = false;
    w->node_of = false; /* a new session: the server tells again */
    w->draining = false;
    w->reconnecting = false;
    if (w->reconnect_timer >= 0) {
        zloop_timer_end(w->loop, w->reconnect_timer);
        w->reconnect_timer = -1;
    }
    /* The new session's scheduler does not count what runs already. */
    for (wk_task_t *t = w->running; t; t = t->next)
        if (!t->carried) {
            t->carried = true;
            w->n_carried++;
        }
    w->last_credit = UINT32_MAX;
    hq_info("Reconnected to the server as worker %u; %u running task%s reported", w->worker_id,
            w->n_running, w->n_running == 1 ? "" : "s");
    wk_link_resend_ends(w);
}

/* The server is gone (how: what showed it): apply --on-server-lost. Returns -1 when
 * the worker ends now (the loop handler's result), 0 when it goes on. */
static int s_server_lost(wk_t *w, const char *how)
{
    w->lost = true;
    w->draining = true;
    hq_debug("Server lost: %s", how);
    /* The session is over: its unacknowledged RESULTS are never sent again (the ends
     * among them are kept for a reconnect, see wk_link_reports). */
    hq_outbox_clear(&w->outbox);
    wk_tasks_drop_queued(w, false);
    if (w->conf.on_server_lost == HQ_LOST_FINISH_RUNNING && w->reconnect_window_ns > 0) {
        hq_warn("Server lost; keeping %u running task%s and trying to reconnect for %.0f s",
                w->n_running, w->n_running == 1 ? "" : "s", (double)w->reconnect_window_ns / 1e9);
        s_reconnect_start(w);
        return 0;
    }
    wk_link_events_clear(w);
    wk_link_kept_clear(w);
    if (w->conf.on_server_lost == HQ_LOST_FINISH_RUNNING && w->n_running > 0) {
        hq_warn("Server lost; waiting for %u running task%s to finish, then exiting", w->n_running,
                w->n_running == 1 ? "" : "s");
        return 0;
    }
    if (w->n_running > 0)
        hq_error("Server lost; killing %u running task%s and exiting", w->n_running,
                 w->n_running == 1 ? "" : "s");
    else
        hq_error("Server lost; exiting");
    wk_tasks_kill_all(w);
    w->exit_code = 1;
    return -1;
}

static int s_on_lost_check(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    wk_t *w = arg;
    if (w->lost)
        return 0;
    uint64_t now = hq_mono_ns();
    if (now - w->last_recv <= 2 * w->conf.heartbeat_ns)
        return 0;
    return s_server_lost(w, "no message for two heartbeat intervals");
}

static int s_on_signal(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void)loop;
    (void)item;
    wk_t *w = arg;
    struct signalfd_siginfo si[16];
    ssize_t n = read(w->sigfd, si, sizeof si);
    bool child = false;
    int term = 0;
    for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof si[0]; i++) {
        if (si[i].ssi_signo == SIGCHLD)
            child = true;
        else
            term = (int)si[i].ssi_signo;
    }
    if (child) {
        wk_tasks_reap(w);
        s_idle_update(w);
        if (w->lost && !w->reconnecting) {
            wk_link_events_clear(w); /* nobody to send them to */
            if (w->n_running == 0) {
                hq_info("All running tasks finished; exiting");
                w->exit_code = 1;
                return -1;
            }
        }
    }
    if (term) {
        /* Not a graceful stop (only `hq worker stop`, idle timeout and time limit are):
         * the server takes it as a lost connection and counts a crash for each task
         * this worker held, as when it is killed (GOODBYE only makes that immediate). */
        hq_info("Received %s; stopping the worker", term == SIGINT    ? "SIGINT"
                                                    : term == SIGTERM ? "SIGTERM"
                                                    : term == SIGTSTP ? "SIGTSTP"
                                                    : term == SIGHUP  ? "SIGHUP"
                                                                      : "signal");
        wk_link_drop_held(w);
        s_kill_all(w, "Worker stopping");
        s_goodbye(w, HQ_BYE_SIGNAL);
        w->exit_code = 0;
        return -1;
    }
    return 0;
}

static int s_on_msg(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    (void)sock;
    wk_t *w = arg;
    /* Drain what is there, handle it, and let the 0 ms timer send one RESULTS. */
    for (int budget = 0; budget < 256; budget++) {
        hq_msg_t *msg = wk_conn_recv(w);
        if (!msg)
            break;
        if (w->lost) {
            if (w->reconnecting && msg->hdr.type == HQ_MSG_REGISTERED)
                s_reregistered(w, msg);
            else if (w->reconnecting && msg->hdr.type == HQ_MSG_ERROR)
                hq_warn("The server refused the registration: %s",
                        msg->u.error.message ? msg->u.error.message : "");
            hq_msg_destroy(&msg);
            continue;
        }
        if (msg->hdr.epoch != w->epoch && msg->hdr.type != HQ_MSG_HEARTBEAT) {
            hq_debug("Ignoring %s from epoch %llu", hq_msg_type_name(msg->hdr.type),
                     (unsigned long long)msg->hdr.epoch);
            hq_msg_destroy(&msg);
            continue;
        }
        if (msg->hdr.epoch == w->epoch && !wk_link_accept(w, msg)) {
            hq_msg_destroy(&msg);
            continue;
        }
        switch (msg->hdr.type) {
        case HQ_MSG_ASSIGN:
            wk_tasks_assign(w, &msg);
            s_idle_update(w);
            break;
        case HQ_MSG_CANCEL:
            wk_tasks_cancel(w, &msg->u.cancel);
            s_idle_update(w);
            break;
        case HQ_MSG_RETRACT:
            wk_tasks_retract(w, &msg->u.cancel);
            s_idle_update(w);
            break;
        case HQ_MSG_NODE_OF: /* a secondary node of a multi-node task is not idle */
            w->node_of = msg->u.cancel.n_tasks > 0;
            s_idle_update(w);
            break;
        case HQ_MSG_HEARTBEAT:
            break;
        case HQ_MSG_STOP: {
            uint32_t reason = msg->u.goodbye.reason;
            hq_msg_destroy(&msg);
            if (reason == HQ_BYE_SERVER_STOP) {
                hq_info("Server is stopping; stopping the worker");
                w->exit_code = 1;
            } else {
                hq_info("Worker stopped by the server");
                w->exit_code = 0;
            }
            s_kill_all(w, "Worker stopping");
            return -1;
        }
        case HQ_MSG_ERROR:
            hq_warn("Server error: %s", msg->u.error.message ? msg->u.error.message : "");
            break;
        default:
            hq_debug("Ignoring unexpected %s", hq_msg_type_name(msg->hdr.type));
            break;
        }
        hq_msg_destroy(&msg);
    }
    return 0;
}

int wk_loop_run(wk_t *w)
{
    w->loop = zloop_new();
    w->stream_timer = w->sync_timer = w->capture_timer = -1;
    zloop_reader(w->loop, w->sock, s_on_msg, w);
    if (w->mon)
        zloop_reader(w->loop, w->mon, s_on_monitor, w);
    zloop_reader_set_tolerant(w->loop, w->sock);
    zmq_pollitem_t sig = {.socket = NULL, .fd = w->sigfd, .events = ZMQ_POLLIN};
    zloop_poller(w->loop, &sig, s_on_signal, w);
    uint64_t hb_ms = w->conf.heartbeat_ns / HQ_NS_PER_MS;
    zloop_timer(w->loop, hb_ms ? (size_t)hb_ms : 1, 0, s_on_heartbeat, w);
    uint64_t check_ms = hb_ms / 4 > 100 ? hb_ms / 4 : 100;
    zloop_timer(w->loop, (size_t)check_ms, 0, s_on_lost_check, w);
    if (w->conf.overview_ns > 0) {
        uint64_t ms = w->conf.overview_ns / HQ_NS_PER_MS;
        wk_overview_fini(&w->overview);
        free(wk_overview_collect(&w->overview)); /* the first CPU sample */
        zloop_timer(w->loop, ms ? (size_t)ms : 1, 0, s_on_overview, w);
    }
    if (w->conf.time_limit_ns > 0) {
        uint64_t ms = w->conf.time_limit_ns / HQ_NS_PER_MS;
        zloop_timer(w->loop, ms ? (size_t)ms : 1, 1, s_on_time_limit, w);
    }
    w->idle_timer = -1;
    w->reconnect_timer = -1;
    w->last_recv = hq_mono_ns();
    w->last_credit = UINT32_MAX;
    wk_link_credit_changed(w);
    s_idle_update(w);
    w->exit_code = -1;
    /* zloop_start returns when a handler ends the loop (exit_code set) or when
     * interrupted; only the first ends the worker. */
    for (int spins = 0; w->exit_code < 0 && !zsys_interrupted && spins < 1000000; spins++)
        zloop_start(w->loop);
    if (w->exit_code < 0)
        w->exit_code = 1;
    wk_tasks_kill_all(w);
    wk_capture_close_all(w); /* what the killed tasks wrote is kept and synced */
    wk_link_events_clear(w);
    return w->exit_code;
}
