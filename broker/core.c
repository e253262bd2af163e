/* The core actor's loop: the two ROUTER sockets, the scheduler pipe, timers, signal
 * handling, the client dispatch table and the per-turn flush of batched work. */
#define HQ_LOG_MODULE "hq::server"
#include "core.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>

#include "hq_duration.h"
#include "hq_log.h"
#include "hq_util.h"
#include "jstream.h"
#include "snapshot.h"
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
};

char *hq_rid_hex(const uint8_t *rid, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char *s = hq_malloc(len * 2 + 1);
    for (size_t i = 0; i < len; i++) {
        s[2 * i] = hex[rid[i] >> 4];
        s[2 * i + 1] = hex[rid[i] & 15];
    }
    s[len * 2] = 0;
    return s;
}

/* ---- sending ---- */

static void s_free_buf(void *data, void *hint)
{
    (void)hint;
    free(data);
}

/* Sends [rid][buf] on a ROUTER; takes buf. 0 ok, -1 EAGAIN, -2 unreachable. */
static int s_router_send(zsock_t *sock, const uint8_t *rid, size_t rid_len, uint8_t *buf,
                         size_t len)
{
    void *h = zsock_resolve(sock);
    if (zmq_send(h, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        int e = errno;
        free(buf);
        return e == EAGAIN ? -1 : -2;
    }
    zmq_msg_t m;
    zmq_msg_init_data(&m, buf, len, s_free_buf, NULL);
    if (zmq_msg_send(&m, h, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return errno == EAGAIN ? -1 : -2;
    }
    return 0;
}

/* FNV-1a of a request frame: a cached reply is reused only for the same bytes. */
static uint64_t s_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void s_cache_put(hq_broker_t *b, const uint8_t *rid, size_t rid_len, uint64_t request_id,
                        const uint8_t *buf, size_t len)
{
    if (request_id == 0 || !b->cur_req_valid || b->cur_req_id != request_id ||
        len > HQ_REPLY_CACHE_MAX_REPLY)
        return;
    char *hex = hq_rid_hex(rid, rid_len);
    char *key = hq_asprintf("%s:%llu", hex, (unsigned long long)request_id);
    free(hex);
    uint32_t slot = b->cache_pos++ % HQ_REPLY_CACHE;
    if (b->cache_keys[slot]) {
        zhashx_delete(b->reply_cache, b->cache_keys[slot]);
        free(b->cache_keys[slot]);
    }
    zchunk_t *c = zchunk_new(NULL, sizeof(uint64_t) + len);
    zchunk_append(c, &b->cur_req_hash, sizeof(uint64_t));
    zchunk_append(c, buf, len);
    zhashx_update(b->reply_cache, key, c);
    b->cache_keys[slot] = key;
}

static void s_client_send_msg(hq_broker_t *b, const uint8_t *rid, size_t rid_len, hq_msg_t *m)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    hq_err_t err;
    if (hq_msg_encode(m, &buf, &len, &err) != 0) {
        hq_warn("Cannot encode the reply to a %s request: %s", "client", err.text);
        hq_msg_t e = {.hdr = m->hdr};
        e.hdr.type = HQ_MSG_ERROR;
        e.u.error.code = HQ_ERR_INVALID;
        char text[] = "The reply is too large to be sent; select fewer jobs or tasks.";
        e.u.error.message = text;
        if (hq_msg_encode(&e, &buf, &len, &err) != 0)
            return;
    }
    s_cache_put(b, rid, rid_len, m->hdr.request_id, buf, len);
    if (s_router_send(b->client, rid, rid_len, buf, len) != 0)
        hq_debug("Client %s is gone; reply dropped", "peer");
}

void hq_client_reply(hq_broker_t *b, const uint8_t *rid, size_t rid_len, uint64_t request_id,
                     const hq_reply_t *r)
{
    hq_msg_t m = {0};
    m.hdr.version = HQ_PROTO_VERSION;
    m.hdr.type = HQ_MSG_REPLY;
    m.hdr.request_id = request_id;
    m.u.reply = *r;
    s_client_send_msg(b, rid, rid_len, &m);
}

static void s_send_error(hq_broker_t *b, const uint8_t *rid, size_t rid_len, uint64_t request_id,
                         uint32_t code, const char *text)
{
    hq_msg_t m = {0};
    m.hdr.version = HQ_PROTO_VERSION;
    m.hdr.type = HQ_MSG_ERROR;
    m.hdr.request_id = request_id;
    m.u.error.code = code;
    m.u.error.message = (char *)text;
    s_client_send_msg(b, rid, rid_len, &m);
}

int hq_client_error(hq_broker_t *b, hq_creq_t *req, uint32_t code, const char *fmt, ...)
{
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    s_send_error(b, req->rid, req->rid_len, req->msg->hdr.request_id, code, text);
    return 0;
}

void hq_client_reply_json(hq_broker_t *b, hq_creq_t *req, json_t *result, json_t *meta)
{
    json_t *doc = json_pack("{s:o,s:o}", "result", result ? result : json_null(), "meta",
                            meta ? meta : json_object());
    char *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(doc);
    hq_reply_t r = {.json = text};
    hq_client_reply(b, req->rid, req->rid_len, req->msg->hdr.request_id, &r);
    free(text);
}

void hq_client_reply_log(hq_broker_t *b, hq_creq_t *req, uint64_t id, char **lines, uint32_t n)
{
    hq_reply_t r = {.id = id, .n_log = n, .log = lines};
    hq_client_reply(b, req->rid, req->rid_len, req->msg->hdr.request_id, &r);
}

/* Sends [rid][copy of buf] on a ROUTER (buf stays the caller's). 0, -1, -2 as above. */
static int s_router_send_copy(zsock_t *sock, const uint8_t *rid, size_t rid_len, const uint8_t *buf,
                              size_t len)
{
    void *h = zsock_resolve(sock);
    if (zmq_send(h, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return errno == EAGAIN ? -1 : -2;
    if (zmq_send(h, buf, len, ZMQ_DONTWAIT) < 0)
        return errno == EAGAIN ? -1 : -2;
    return 0;
}

int hq_worker_send(hq_broker_t *b, hq_worker_t *w, hq_msg_t *m)
{
    bool reliable = hq_msg_is_reliable(m->hdr.type);
    m->hdr.version = HQ_PROTO_VERSION;
    m->hdr.epoch = w->epoch;
    /* Only reliable messages take a new seq; the others repeat the last one, which
     * tells the peer what it should have received. */
    m->hdr.seq = reliable ? w->seq_out + 1 : w->seq_out;
    m->hdr.ack = w->ack_in;
    uint8_t *buf = NULL;
    size_t len = 0;
    hq_err_t err;
    if (hq_msg_encode(m, &buf, &len, &err) != 0) {
        hq_error("Cannot encode %s for worker %u: %s", hq_msg_type_name(m->hdr.type), w->id,
                 err.text);
        return -3;
    }
    if (!reliable) {
        int rc = s_router_send(b->worker, w->rid, w->rid_len, buf, len);
        if (rc == -2)
            hq_workers_unreachable(b, w);
        return rc;
    }
    int rc = s_router_send_copy(b->worker, w->rid, w->rid_len, buf, len);
    if (rc == -1) {
        free(buf);
        return -1;
    }
    w->seq_out++;
    uint32_t dropped = hq_outbox_push(&w->outbox, w->seq_out, buf, len, rc == 0 ? hq_mono_ns() : 0);
    if (dropped)
        hq_warn("Worker %u acknowledges nothing: %u unacknowledged messages dropped", w->id,
                dropped);
    if (rc == -2)
        hq_workers_unreachable(b, w);
    return 0;
}

void hq_worker_retransmit(hq_broker_t *b, hq_worker_t *w, uint64_t now)
{
    uint32_t k = 0;
    int rc = 0;
    for (; k < w->outbox.n; k++) {
        hq_outbox_entry_t *e = hq_outbox_at(&w->outbox, k);
        rc = s_router_send_copy(b->worker, w->rid, w->rid_len, e->buf, e->len);
        if (rc != 0)
            break;
        e->sent_ns = now;
    }
    w->outbox.last_retx_ns = now;
    w->n_retx += k;
    if (k)
        hq_debug("Retransmitted %u message%s (seq %llu..) to worker %u", k, k == 1 ? "" : "s",
                 (unsigned long long)hq_outbox_at(&w->outbox, 0)->seq, w->id);
    if (rc == -2)
        hq_workers_unreachable(b, w);
}

void hq_worker_socket_error(hq_broker_t *b, const uint8_t *rid, size_t rid_len, uint64_t request_id,
                            uint32_t code, const char *text)
{
    hq_msg_t m = {0};
    m.hdr.version = HQ_PROTO_VERSION;
    m.hdr.type = HQ_MSG_ERROR;
    m.hdr.request_id = request_id;
    m.u.error.code = code;
    m.u.error.message = (char *)text;
    uint8_t *buf = NULL;
    size_t len = 0;
    hq_err_t err;
    if (hq_msg_encode(&m, &buf, &len, &err) != 0)
        return;
    if (s_router_send(b->worker, rid, rid_len, buf, len) != 0)
        hq_debug("Peer on the worker socket is gone; error reply dropped");
}

void hq_sched_post(hq_broker_t *b, hq_sched_cmd_t *cmd)
{
    if (!b->sched) {
        hq_sched_cmd_destroy(&cmd);
        return;
    }
    if (hq_sched_send(b->sched, &cmd) != 0) {
        hq_error("Cannot send a command to the scheduler");
        hq_sched_cmd_destroy(&cmd);
    }
}

void hq_rvariants_copy(hq_rvariant_t **dst, const hq_rvariant_t *src, uint32_t n)
{
    hq_rvariant_t *v = hq_calloc(n ? n : 1, sizeof *v);
    for (uint32_t i = 0; i < n; i++) {
        v[i] = src[i];
        v[i].entries = hq_calloc(src[i].n_entries ? src[i].n_entries : 1, sizeof(hq_rreq_t));
        for (uint32_t k = 0; k < src[i].n_entries; k++) {
            v[i].entries[k] = src[i].entries[k];
            v[i].entries[k].name = hq_strdup(src[i].entries[k].name);
        }
    }
    *dst = v;
}

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
    b->cur_req_valid = false;
    s_client_request(b, rid, rid_len, data, len);
    b->cur_req_valid = false;
}

static void s_client_request(hq_broker_t *b, const uint8_t *rid, size_t rid_len,
                             const uint8_t *data, size_t len)
{
    hq_header_t hdr;
    hq_err_t err;
    if (hq_header_decode(data, len, &hdr, &err) != 0) {
        hq_warn("Malformed client request: %s", err.text);
        s_send_error(b, rid, rid_len, 0, HQ_ERR_BAD_REQUEST, err.text);
        return;
    }
    if (hdr.request_id != 0) {
        char *hex = hq_rid_hex(rid, rid_len);
        char *key = hq_asprintf("%s:%llu", hex, (unsigned long long)hdr.request_id);
        zchunk_t *c = zhashx_lookup(b->reply_cache, key);
        free(hex);
        free(key);
        uint64_t h = s_hash(data, len);
        uint64_t stored;
        if (c && zchunk_size(c) >= sizeof stored) {
            memcpy(&stored, zchunk_data(c), sizeof stored);
            if (stored == h) {
                hq_debug("Repeated request %llu answered from the cache",
                         (unsigned long long)hdr.request_id);
                size_t n = zchunk_size(c) - sizeof stored;
                uint8_t *copy = hq_malloc(n ? n : 1);
                memcpy(copy, zchunk_data(c) + sizeof stored, n);
                s_router_send(b->client, rid, rid_len, copy, n);
                return;
            }
        }
        b->cur_req_hash = h;
        b->cur_req_id = hdr.request_id;
        b->cur_req_valid = true;
    }
    if (hq_msg_is_worker_message(hdr.type)) {
        hq_warn("A %s message arrived on the client socket", hq_msg_type_name(hdr.type));
        s_send_error(b, rid, rid_len, hdr.request_id, HQ_ERR_ROLE,
                     "This message is only accepted from workers");
        return;
    }
    hq_client_fn *fn = s_client_table[hdr.type];
    if (!hq_msg_is_client_request(hdr.type) || !fn) {
        hq_warn("Unexpected message type %u on the client socket", hdr.type);
        s_send_error(b, rid, rid_len, hdr.request_id, HQ_ERR_BAD_REQUEST,
                     "Unexpected message type");
        return;
    }
    hq_msg_t *msg = hq_msg_decode(data, len, &err);
    if (!msg) {
        hq_warn("Malformed %s request: %s", hq_msg_type_name(hdr.type), err.text);
        s_send_error(b, rid, rid_len, hdr.request_id, HQ_ERR_BAD_REQUEST, err.text);
        return;
    }
    hq_creq_t req = {.rid = rid, .rid_len = rid_len, .msg = msg};
    fn(b, &req);
    if (!req.stolen)
        hq_msg_destroy(&msg);
}

static void s_flush(hq_broker_t *b);

static int s_on_client(zloop_t *loop, zsock_t *sock, void *arg)
{
    hq_broker_t *b = arg;
    for (int i = 0; i < HQ_RECV_BATCH && !b->stopping; i++) {
        zmq_msg_t rid, body;
        zmq_msg_init(&rid);
        zmq_msg_init(&body);
        int rc = s_recv(sock, &rid, &body);
        if (rc == 1 && zmq_msg_size(&rid) <= HQ_RID_MAX)
            s_client_message(b, zmq_msg_data(&rid), zmq_msg_size(&rid), zmq_msg_data(&body),
                             zmq_msg_size(&body));
        zmq_msg_close(&rid);
        zmq_msg_close(&body);
        if (rc == 0)
            break;
    }
    if (b->dirty)
        s_flush(b);
    return b->stopping ? -1 : 0;
}

static int s_on_worker(zloop_t *loop, zsock_t *sock, void *arg)
{
    hq_broker_t *b = arg;
    for (int i = 0; i < HQ_RECV_BATCH && !b->stopping; i++) {
        zmq_msg_t rid, body;
        zmq_msg_init(&rid);
        zmq_msg_init(&body);
        int rc = s_recv(sock, &rid, &body);
        if (rc == 1 && zmq_msg_size(&rid) <= HQ_RID_MAX)
            hq_workers_on_message(b, zmq_msg_data(&rid), zmq_msg_size(&rid), zmq_msg_data(&body),
                                  zmq_msg_size(&body));
        zmq_msg_close(&rid);
        zmq_msg_close(&body);
        if (rc == 0)
            break;
    }
    if (b->dirty)
        s_flush(b);
    return b->stopping ? -1 : 0;
}

static int s_on_sched(zloop_t *loop, zsock_t *sock, void *arg)
{
    hq_broker_t *b = arg;
    for (int i = 0; i < HQ_RECV_BATCH; i++) {
        if (!(zsock_events(sock) & ZMQ_POLLIN))
            break;
        hq_sched_cmd_t *cmd = hq_sched_recv(b->sched);
        if (!cmd)
            break;
        if (cmd->type == HQ_SCHED_ASSIGNED)
            hq_workers_on_assigned(b, cmd);
        hq_sched_cmd_destroy(&cmd);
    }
    if (b->dirty)
        s_flush(b);
    return b->stopping ? -1 : 0;
}

static int s_on_flush_timer(zloop_t *loop, int timer_id, void *arg)
{
    hq_broker_t *b = arg;
    b->flush_timer = -1;
    if (b->dirty)
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
    hq_broker_check_waiters(b, true);
    if (b->dirty)
        s_flush(b);
    uint64_t now = hq_mono_ns();
    if (now - b->trim_ns >= S_TRIM_NS) {
        b->trim_ns = now;
        malloc_trim(0);
    }
    return b->stopping ? -1 : 0;
}

void hq_core_dirty(hq_broker_t *b)
{
    b->dirty = true;
    /* Readers flush at the end of their batch; this timer covers other callers. */
    if (b->flush_timer < 0 && b->loop)
        b->flush_timer = zloop_timer(b->loop, 0, 1, s_on_flush_timer, b);
}

/* Tasks requeued since the last flush go to the scheduler, grouped per (job, class). */
static int s_cmp_ready(const void *x, const void *y)
{
    const hq_ready_ref_t *a = x, *c = y;
    if (a->job_id != c->job_id)
        return a->job_id < c->job_id ? -1 : 1;
    if (a->rq_id != c->rq_id)
        return a->rq_id < c->rq_id ? -1 : 1;
    return a->task_id < c->task_id ? -1 : a->task_id > c->task_id;
}

static void s_flush_requeue(hq_broker_t *b)
{
    if (b->n_requeue == 0)
        return;
    qsort(b->requeue, b->n_requeue, sizeof(hq_ready_ref_t), s_cmp_ready);
    uint32_t i = 0;
    while (i < b->n_requeue) {
        uint32_t k = i;
        while (k < b->n_requeue && b->requeue[k].job_id == b->requeue[i].job_id &&
               b->requeue[k].rq_id == b->requeue[i].rq_id)
            k++;
        hq_sched_cmd_t *cmd = hq_sched_cmd_new(HQ_SCHED_READY);
        cmd->ready.job_id = b->requeue[i].job_id;
        cmd->ready.rq_id = b->requeue[i].rq_id;
        cmd->ready.priority = b->requeue[i].priority;
        hq_range_t *r = hq_malloc((k - i) * sizeof(hq_range_t));
        uint32_t nr = 0;
        for (uint32_t m = i; m < k; m++) {
            uint32_t id = b->requeue[m].task_id;
            if (nr > 0 && r[nr - 1].end == id)
                continue; /* duplicate */
            if (nr > 0 && r[nr - 1].end + 1 == id) {
                r[nr - 1].end = id;
                continue;
            }
            r[nr++] = (hq_range_t){.start = id, .end = id, .step = 1};
        }
        cmd->ready.ids.n = nr;
        cmd->ready.ids.ranges = r;
        hq_sched_post(b, cmd);
        i = k;
    }
    b->n_requeue = 0;
}

static void s_flush(hq_broker_t *b)
{
    b->dirty = false;
    s_flush_requeue(b);
    hq_workers_flush(b);
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

int hq_core_start(hq_broker_t *b, hq_err_t *err)
{
    hq_zap_policy_t policy = {0};
    hq_curve_pair_t broker, peer;
    if (b->access.client.has_secret) {
        hq_access_derive(b->access.client.secret, &broker, &peer);
        policy.client_curve = true;
        memcpy(policy.client_pub, peer.public_bin, 32);
    }
    if (b->access.worker.has_secret) {
        hq_access_derive(b->access.worker.secret, &broker, &peer);
        policy.worker_curve = true;
        memcpy(policy.worker_pub, peer.public_bin, 32);
    }
    b->zap = hq_zap_new(&policy);
    if (!b->zap)
        return hq_err_set(err, "Cannot start the ZAP handler");
    b->client = s_router(HQ_ZAP_DOMAIN_CLIENT, &b->access.client, HQ_CLIENT_MAXMSG, S_CLIENT_SNDHWM,
                         &b->access.client.port, err);
    if (!b->client)
        return -1;
    b->worker = s_router(HQ_ZAP_DOMAIN_WORKER, &b->access.worker, HQ_WORKER_MAXMSG, S_WORKER_SNDHWM,
                         &b->access.worker.port, err);
    if (!b->worker)
        return -1;
    /* A worker keeps its routing id across reconnects of its socket (a reset link):
     * the new connection takes over the old one's id at once. */
    zsock_set_router_handover(b->worker, 1);
    b->sched = hq_sched_new();
    if (!b->sched)
        return hq_err_set(err, "Cannot start the scheduler");
    b->reply_cache = zhashx_new();
    zhashx_set_destructor(b->reply_cache, (zhashx_destructor_fn *)zchunk_destroy);
    b->worker_by_rid = zhashx_new();
    b->waiters = zlistx_new();
    b->loop = zloop_new();
    zloop_set_nonstop(b->loop, true);
    b->flush_timer = -1;
    zloop_reader(b->loop, b->client, s_on_client, b);
    zloop_reader(b->loop, b->worker, s_on_worker, b);
    zloop_reader(b->loop, hq_sched_sock(b->sched), s_on_sched, b);
    b->hb_tick_ns = 250 * HQ_NS_PER_MS;
    b->hb_timer = zloop_timer(b->loop, 250, 0, s_on_tick, b);
    return 0;
}

int hq_core_retime_tick(hq_broker_t *b, uint64_t tick_ns)
{
    if (b->hb_timer >= 0)
        zloop_timer_end(b->loop, b->hb_timer);
    size_t ms = (size_t)(tick_ns / HQ_NS_PER_MS);
    b->hb_timer = zloop_timer(b->loop, ms ? ms : 1, 0, s_on_tick, b);
    b->hb_tick_ns = tick_ns;
    return 0;
}

void hq_core_run(hq_broker_t *b)
{
    struct sigaction sa = {0};
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: poll must return EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    while (!b->stopping) {
        zloop_start(b->loop);
        if (s_signal) {
            hq_info("Received %s, attempting to stop", s_signal == SIGTERM ? "SIGTERM" : "SIGINT");
            b->stopping = true;
        }
    }
}

void hq_core_stop(hq_broker_t *b)
{
    zloop_destroy(&b->loop);
    hq_sched_destroy(&b->sched);
    zsock_destroy(&b->client);
    zsock_destroy(&b->worker);
    zactor_destroy(&b->zap);
    if (b->waiters) {
        hq_waiter_t *w = zlistx_first(b->waiters);
        while (w) {
            free(w->job_ids);
            free(w);
            w = zlistx_next(b->waiters);
        }
        zlistx_destroy(&b->waiters);
    }
    zhashx_destroy(&b->reply_cache);
    for (uint32_t i = 0; i < HQ_REPLY_CACHE; i++)
        free(b->cache_keys[i]);
    zhashx_destroy(&b->worker_by_rid);
}
