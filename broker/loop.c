/* The core actor's loop: the two ROUTER sockets, the scheduler pipe, timers, signal
 * handling, the client dispatch table and the per-turn flush of batched work. The
 * top of the broker: it calls the handlers, which call the modules below them. */
#define HQ_LOG_MODULE "hq::server"
#include "loop.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>

#include "hq_duration.h"
#include "hq_log.h"
#include "hq_util.h"
#include "alloc/alloc.h"
#include "allocreq.h"
#include "debugdump.h"
#include "dispatch.h"
#include "mnodes.h"
#include "prefetch.h"
#include "explain.h"
#include "schedwait.h"
#include "handshake.h"
#include "journal/stream.h"
#include "query.h"
#include "journal/snapshot.h"
#include "notify.h"
#include "submit.h"
#include "wmsg.h"
#include "workers.h"
#include "wquery.h"
#include "zap.h"

#define HQ_RECV_BATCH 512      /* messages read per reader callback */
#define HQ_HANDSHAKE_MS 10000  /* ZMQ_HANDSHAKE_IVL */
#define HQ_ZMTP_HB_IVL_MS 2000 /* ZMTP heartbeat interval */
#define HQ_ZMTP_HB_TIMEOUT_MS 20000

static volatile sig_atomic_t s_signal = 0;

static void s_on_signal(int sig)
{
    s_signal = sig;
}

/* ---- client dispatch table: message type -> handler ---- */

static hq_client_fn *const s_client_table[256] = {
    [HQ_MSG_SERVER_INFO] = hq_h_server_info,
    [HQ_MSG_SERVER_STOP] = hq_h_server_stop,
    [HQ_MSG_SUBMIT] = hq_h_submit,
    [HQ_MSG_JOB_LIST] = hq_h_job_list,
    [HQ_MSG_JOB_INFO] = hq_h_job_info,
    [HQ_MSG_JOB_CANCEL] = hq_h_job_cancel,
    [HQ_MSG_JOB_FORGET] = hq_h_job_forget,
    [HQ_MSG_JOB_WAIT] = hq_h_job_wait,
    [HQ_MSG_JOB_OPEN] = hq_h_job_open,
    [HQ_MSG_JOB_CLOSE] = hq_h_job_close,
    [HQ_MSG_TASK_LIST] = hq_h_task_list,
    [HQ_MSG_TASK_INFO] = hq_h_task_info,
    [HQ_MSG_WORKER_LIST] = hq_h_worker_list,
    [HQ_MSG_WORKER_INFO] = hq_h_worker_info,
    [HQ_MSG_WORKER_STOP] = hq_h_worker_stop,
    [HQ_MSG_JOB_SUMMARY] = hq_h_job_summary,
    [HQ_MSG_TASK_IDS] = hq_h_task_ids,
    [HQ_MSG_TASK_EXPLAIN] = hq_h_task_explain,
    [HQ_MSG_JOURNAL_READ] = hq_h_journal_read,
    [HQ_MSG_JOURNAL_FLUSH] = hq_h_journal_flush,
    [HQ_MSG_JOURNAL_PRUNE] = hq_h_journal_prune,
    [HQ_MSG_TASK_NOTIFY] = hq_h_task_notify,
    [HQ_MSG_DEBUG_DUMP] = hq_h_debug_dump,
    [HQ_MSG_ALLOC_ADD] = hq_h_alloc_add,
    [HQ_MSG_ALLOC_LIST] = hq_h_alloc_list,
    [HQ_MSG_ALLOC_INFO] = hq_h_alloc_info,
    [HQ_MSG_ALLOC_CTL] = hq_h_alloc_ctl,
    [HQ_MSG_ALLOC_LOG] = hq_h_alloc_log,
};

/* ---- receiving ---- */

/* Reads one [rid][frame] message without blocking. 1 = got one, 0 = none, -1 = had
 * the wrong number of frames (drained, ignored). */
static int s_recv(zsock_t *sock, zmq_msg_t *rid, zmq_msg_t *body)
{
    void *h = zsock_resolve(sock);
    if (zmq_msg_recv(rid, h, ZMQ_DONTWAIT) < 0)
        return 0;
    int parts = 1;
    bool ok = true;
    if (!zmq_msg_more(rid)) {
        ok = false;
    } else {
        zmq_msg_recv(body, h, 0);
        parts++;
        while (zmq_msg_more(body)) {
            zmq_msg_t extra;
            zmq_msg_init(&extra);
            zmq_msg_recv(&extra, h, 0);
            int more = zmq_msg_more(&extra);
            zmq_msg_close(&extra);
            ok = false;
            parts++;
            if (!more)
                break;
        }
    }
    if (!ok)
        hq_warn("Dropped a message with %d frames (expected 2)", parts);
    return ok ? 1 : -1;
}

static void s_client_request(hq_broker_t *b, const uint8_t *rid, size_t rid_len,
                             const uint8_t *data, size_t len);

static void s_client_message(hq_broker_t *b, const uint8_t *rid, size_t rid_len,
                             const uint8_t *data, size_t len)
{
    b->replies.cur_valid = false;
    s_client_request(b, rid, rid_len, data, len);
    b->replies.cur_valid = false;
}

static void s_client_request(hq_broker_t *b, const uint8_t *rid, size_t rid_len,
                             const uint8_t *data, size_t len)
{
    hq_header_t hdr;
    hq_err_t err;
    if (hq_header_decode(data, len, &hdr, &err) != 0) {
        hq_warn("Malformed client request: %s", err.text);
        hq_client_send_error(&b->replies, rid, rid_len, 0, HQ_ERR_BAD_REQUEST, err.text);
        return;
    }
    if (hq_replies_repeat(&b->replies, rid, rid_len, hdr.request_id, data, len))
        return;
    if (hq_msg_is_worker_message(hdr.type)) {
        hq_warn("A %s message arrived on the client socket", hq_msg_type_name(hdr.type));
        hq_client_send_error(&b->replies, rid, rid_len, hdr.request_id, HQ_ERR_ROLE,
                             "This message is only accepted from workers");
        return;
    }
    hq_client_fn *fn = s_client_table[hdr.type];
    if (!hq_msg_is_client_request(hdr.type) || !fn) {
        hq_warn("Unexpected message type %u on the client socket", hdr.type);
        hq_client_send_error(&b->replies, rid, rid_len, hdr.request_id, HQ_ERR_BAD_REQUEST,
                             "Unexpected message type");
        return;
    }
    hq_msg_t *msg = hq_msg_decode(data, len, &err);
    if (!msg) {
        hq_warn("Malformed %s request: %s", hq_msg_type_name(hdr.type), err.text);
        hq_client_send_error(&b->replies, rid, rid_len, hdr.request_id, HQ_ERR_BAD_REQUEST,
                             err.text);
        return;
    }
    hq_creq_t req = {.rid = rid, .rid_len = rid_len, .msg = msg, .len = len};
    fn(b, &req);
    if (!req.stolen)
        hq_msg_destroy(&msg);
}

static void s_flush(hq_broker_t *b);
static int s_on_tick(zloop_t *loop, int timer_id, void *arg);

typedef void(s_frame_fn)(hq_broker_t *b, const uint8_t *rid, size_t rid_len, const uint8_t *data,
                         size_t len);

/* Reads up to HQ_RECV_BATCH [rid][frame] messages of sock into fn, then ends the turn. */
static int s_drain(hq_broker_t *b, zsock_t *sock, s_frame_fn *fn)
{
    for (int i = 0; i < HQ_RECV_BATCH && !b->stopping; i++) {
        zmq_msg_t rid, body;
        zmq_msg_init(&rid);
        zmq_msg_init(&body);
        int rc = s_recv(sock, &rid, &body);
        if (rc == 1 && zmq_msg_size(&rid) <= HQ_RID_MAX)
            fn(b, zmq_msg_data(&rid), zmq_msg_size(&rid), zmq_msg_data(&body), zmq_msg_size(&body));
        zmq_msg_close(&rid);
        zmq_msg_close(&body);
        if (rc == 0)
            break;
    }
    if (b->turn.dirty)
        s_flush(b);
    return b->stopping ? -1 : 0;
}

static int s_on_client(zloop_t *loop, zsock_t *sock, void *arg)
{
    return s_drain(arg, sock, s_client_message);
}

static int s_on_worker(zloop_t *loop, zsock_t *sock, void *arg)
{
    return s_drain(arg, sock, hq_workers_on_message);
}

static int s_on_sched(zloop_t *loop, zsock_t *sock, void *arg)
{
    hq_broker_t *b = arg;
    for (int i = 0; i < HQ_RECV_BATCH; i++) {
        if (!(zsock_events(sock) & ZMQ_POLLIN))
            break;
        hq_sched_cmd_t *cmd = hq_sched_recv(b->ready.sched);
        if (!cmd)
            break;
        if (cmd->type == HQ_SCHED_ASSIGNED)
            hq_workers_on_assigned(b, cmd);
        else if (cmd->type == HQ_SCHED_DUMPED)
            hq_schedwait_on_dumped(b, cmd);
        else if (cmd->type == HQ_SCHED_RETRACT)
            hq_prefetch_on_retract(b, cmd);
        else if (cmd->type == HQ_SCHED_MN_RESERVED)
            hq_mn_on_reserved(b, cmd);
        hq_sched_cmd_destroy(&cmd);
    }
    if (b->turn.dirty)
        s_flush(b);
    return b->stopping ? -1 : 0;
}

static int s_on_flush_timer(zloop_t *loop, int timer_id, void *arg)
{
    hq_broker_t *b = arg;
    b->turn.flush_timer = -1;
    if (b->turn.dirty)
        s_flush(b);
    return b->stopping ? -1 : 0;
}

/* How often freed heap memory is handed back to the system. A burst of requests
 * (a flood, a large listing, a finished million-task job) leaves freed memory in
 * malloc's arenas, which would otherwise stay resident on a shared login node. */
#define S_TRIM_NS (2 * HQ_NS_PER_SEC)

static int s_on_tick(zloop_t *loop, int timer_id, void *arg)
{
    hq_broker_t *b = arg;
    if (s_signal)
        return -1;
    hq_workers_tick(b);
    hq_handshake_tick(b);
    hq_alloc_tick(b);
    hq_broker_check_waiters(b, true);
    if (b->turn.dirty)
        s_flush(b);
    uint64_t now = hq_mono_ns();
    if (now - b->turn.trim_ns >= S_TRIM_NS) {
        b->turn.trim_ns = now;
        malloc_trim(0);
    }
    return b->stopping ? -1 : 0;
}

static void s_flush(hq_broker_t *b)
{
    b->turn.dirty = false;
    hq_readyq_flush(&b->ready);
    hq_workers_flush(b);
    if (b->wlink.unreach_new) {
        hq_workers_check_unreachable(b);
        hq_readyq_flush(&b->ready); /* the tasks of workers lost just now */
    }
    hq_broker_check_waiters(b, false);
}

/* ---- sockets ---- */

/* Messages queued per peer. Inbound, a small queue makes libzmq stop reading a peer
 * that sends faster than the broker answers (TCP back-pressure) instead of buffering
 * its flood in the broker's memory: 100k queued requests cost ~200 MiB. Outbound, a
 * client waits for each reply, so 1000 is far more than a well-behaved one needs;
 * workers keep a deep queue for ASSIGN bursts (their outbox resends what EAGAIN kept
 * back). */
#define S_RCVHWM 1000
#define S_CLIENT_SNDHWM 1000
#define S_WORKER_SNDHWM 100000

static zsock_t *s_router(const char *domain, const hq_access_role_t *role, int64_t maxmsg,
                         int sndhwm, uint16_t *port, hq_err_t *err)
{
    zsock_t *s = zsock_new(ZMQ_ROUTER);
    if (!s) {
        hq_err_set(err, "Cannot create a socket");
        return NULL;
    }
    zsock_set_router_mandatory(s, 1);
    zsock_set_linger(s, 0);
    zsock_set_sndhwm(s, sndhwm);
    zsock_set_rcvhwm(s, S_RCVHWM);
    void *h = zsock_resolve(s);
    zmq_setsockopt(h, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    int v = HQ_HANDSHAKE_MS;
    zmq_setsockopt(h, ZMQ_HANDSHAKE_IVL, &v, sizeof v);
    v = HQ_ZMTP_HB_IVL_MS;
    zmq_setsockopt(h, ZMQ_HEARTBEAT_IVL, &v, sizeof v);
    v = HQ_ZMTP_HB_TIMEOUT_MS;
    zmq_setsockopt(h, ZMQ_HEARTBEAT_TIMEOUT, &v, sizeof v);
    zsock_set_zap_domain(s, domain);
    if (role->has_secret) {
        hq_curve_pair_t broker, peer;
        hq_access_derive(role->secret, &broker, &peer);
        zsock_set_curve_server(s, 1);
        zsock_set_curve_secretkey(s, broker.secret_z85);
        zsock_set_curve_publickey(s, broker.public_z85);
    }
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://*:%u", (unsigned)*port);
    if (zsock_bind(s, "%s", ep) < 0) {
        hq_err_set(err, "Cannot listen on port %u: %s", (unsigned)*port, zmq_strerror(errno));
        zsock_destroy(&s);
        return NULL;
    }
    char *last = zsock_last_endpoint(s);
    const char *colon = last ? strrchr(last, ':') : NULL;
    *port = colon ? (uint16_t)atoi(colon + 1) : *port;
    zstr_free(&last);
    return s;
}

int hq_loop_start(hq_broker_t *b, hq_err_t *err)
{
    hq_zap_policy_t policy = {0};
    hq_curve_pair_t broker, peer;
    if (b->conf.access.client.has_secret) {
        hq_access_derive(b->conf.access.client.secret, &broker, &peer);
        policy.client_curve = true;
        memcpy(policy.client_pub, peer.public_bin, 32);
    }
    if (b->conf.access.worker.has_secret) {
        hq_access_derive(b->conf.access.worker.secret, &broker, &peer);
        policy.worker_curve = true;
        memcpy(policy.worker_pub, peer.public_bin, 32);
    }
    b->zap = hq_zap_new(&policy);
    if (!b->zap)
        return hq_err_set(err, "Cannot start the ZAP handler");
    zsock_t *client = s_router(HQ_ZAP_DOMAIN_CLIENT, &b->conf.access.client, HQ_CLIENT_MAXMSG,
                               S_CLIENT_SNDHWM, &b->conf.access.client.port, err);
    if (!client)
        return -1;
    b->replies.peer.sock = client;
    b->wlink.peer.sock = s_router(HQ_ZAP_DOMAIN_WORKER, &b->conf.access.worker, HQ_WORKER_MAXMSG,
                                  S_WORKER_SNDHWM, &b->conf.access.worker.port, err);
    if (!b->wlink.peer.sock)
        return -1;
    /* A worker keeps its routing id across reconnects of its socket (a reset link):
     * the new connection takes over the old one's id at once. */
    zsock_set_router_handover(b->wlink.peer.sock, 1);
    b->ready.sched = hq_sched_new();
    if (!b->ready.sched)
        return hq_err_set(err, "Cannot start the scheduler");
    b->turn.loop = zloop_new();
    zloop_set_nonstop(b->turn.loop, true);
    b->turn.flush = s_on_flush_timer;
    b->turn.flush_arg = b;
    b->turn.tick = s_on_tick;
    b->turn.tick_arg = b;
    zloop_reader(b->turn.loop, b->replies.peer.sock, s_on_client, b);
    zloop_reader(b->turn.loop, b->wlink.peer.sock, s_on_worker, b);
    zloop_reader(b->turn.loop, hq_sched_sock(b->ready.sched), s_on_sched, b);
    if (hq_handshake_watch(b, b->replies.peer.sock, "client") != 0 ||
        hq_handshake_watch(b, b->wlink.peer.sock, "worker") != 0)
        hq_warn("Cannot watch the sockets' handshakes: refused ones are not logged");
    b->turn.tick_ns = 250 * HQ_NS_PER_MS;
    b->reg.last_tick_ns = hq_mono_ns(); /* a stall before the first tick counts too */
    return hq_turn_retime(&b->turn, b->turn.tick_ns) == 0
               ? 0
               : hq_err_set(err, "Cannot start the broker's liveness timer");
}

void hq_loop_run(hq_broker_t *b)
{
    struct sigaction sa = {0};
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: poll must return EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (!b->stopping) {
        zloop_start(b->turn.loop);
        if (s_signal) {
            hq_info("Received %s, attempting to stop", s_signal == SIGTERM ? "SIGTERM" : "SIGINT");
            b->stop_signal = s_signal;
            b->stopping = true;
        }
    }
}

void hq_loop_stop(hq_broker_t *b)
{
    hq_schedwait_close(b);
    hq_handshake_stop(b);
    zloop_destroy(&b->turn.loop);
    hq_sched_destroy(&b->ready.sched);
    zsock_destroy(&b->replies.peer.sock);
    zsock_destroy(&b->wlink.peer.sock);
    zactor_destroy(&b->zap);
}
