/* Messages to workers on the worker socket: session epoch, seq and ack on each, the
 * outbox of reliable messages kept until acknowledged, retransmission, and typed
 * errors to any peer of the socket. A peer found unreachable is only marked here
 * (hq_wlink_t.unreach_new); the worker registry decides at the end of the turn. */
#define HQ_LOG_MODULE "hq::server::worker"
#include "wsend.h"

#include "hq_log.h"
#include "hq_util.h"
#include "peer.h"

/* EHOSTUNREACH: its connection broke. Lost unless it speaks again within its grace
 * (hq_worker_unreach_grace): the registry checks at the end of the turn. */
static void s_unreachable(hq_wlink_t *link, hq_worker_t *w)
{
    if (w->state != HQ_WS_RUNNING || w->unreach_since)
        return;
    w->unreach_since = hq_mono_ns();
    link->unreach_new = true;
    hq_debug("Worker %u is unreachable; lost unless it reconnects within %llu ms", w->id,
             (unsigned long long)(hq_worker_unreach_grace(w) / HQ_NS_PER_MS));
    hq_turn_dirty(link->turn);
}

int hq_worker_send(hq_wlink_t *link, hq_worker_t *w, hq_msg_t *m)
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
        int rc = hq_peer_send(&link->peer, w->rid, w->rid_len, buf, len);
        if (rc == -2)
            s_unreachable(link, w);
        return rc;
    }
    int rc = hq_peer_send_copy(&link->peer, w->rid, w->rid_len, buf, len);
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
        s_unreachable(link, w);
    return 0;
}

void hq_worker_retransmit(hq_wlink_t *link, hq_worker_t *w, uint64_t now)
{
    uint32_t k = 0;
    int rc = 0;
    for (; k < w->outbox.n; k++) {
        hq_outbox_entry_t *e = hq_outbox_at(&w->outbox, k);
        rc = hq_peer_send_copy(&link->peer, w->rid, w->rid_len, e->buf, e->len);
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
        s_unreachable(link, w);
}

void hq_worker_socket_error(hq_wlink_t *link, const uint8_t *rid, size_t rid_len,
                            uint64_t request_id, uint32_t code, const char *text)
{
    hq_msg_t m = hq_msg_error(request_id, code, text);
    uint8_t *buf = NULL;
    size_t len = 0;
    hq_err_t err;
    if (hq_msg_encode(&m, &buf, &len, &err) != 0)
        return;
    if (hq_peer_send(&link->peer, rid, rid_len, buf, len) != 0)
        hq_debug("Peer on the worker socket is gone; error reply dropped");
}

void hq_worker_send_simple(hq_wlink_t *link, hq_worker_t *w, uint8_t type, uint32_t reason)
{
    hq_msg_t m = {0};
    m.hdr.type = type;
    m.u.goodbye.reason = reason;
    hq_worker_send(link, w, &m);
}
