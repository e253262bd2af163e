/* Messages to workers: epoch, seq and ack on each, reliable ones kept in the worker's
 * outbox until acknowledged, retransmission. Private to broker/. */
#ifndef HQ_BROKER_WSEND_H
#define HQ_BROKER_WSEND_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>

#include "hq_msg.h"
#include "registry.h"
#include "turn.h"

/* The worker socket. */
typedef struct hq_wlink {
    hq_peer_t peer;   /* worker ROUTER (owned) or a test sink */
    hq_turn_t *turn;  /* dirtied when a peer turns out unreachable */
    bool unreach_new; /* a send found a peer unreachable since the last check */
} hq_wlink_t;

/* Sends a message to a worker with its session epoch, seq and ack. A reliable one
 * (ASSIGN, CANCEL) is numbered and kept in w->outbox until acknowledged, even when the
 * peer is unreachable at the moment. 0 ok (or kept), -1 EAGAIN (not numbered, try
 * later), -2 an unreliable message to an unreachable peer (dropped), -3 not encodable.
 * An unreachable peer (EHOSTUNREACH) gets w->unreach_since and link->unreach_new set:
 * it is declared lost unless it speaks again within hq_worker_unreach_grace(w)
 * (hq_workers_check_unreachable). */
int hq_worker_send(hq_wlink_t *link, hq_worker_t *w, hq_msg_t *m);
/* Sends a message whose body is a reason only (STOP, GOODBYE). */
void hq_worker_send_simple(hq_wlink_t *link, hq_worker_t *w, uint8_t type, uint32_t reason);
/* Retransmits w's unacknowledged messages in order. */
void hq_worker_retransmit(hq_wlink_t *link, hq_worker_t *w, uint64_t now);
/* Sends an ERROR (code, text) to any peer of the worker socket, registered or not:
 * the typed answer to a message that has no business there. */
void hq_worker_socket_error(hq_wlink_t *link, const uint8_t *rid, size_t rid_len,
                            uint64_t request_id, uint32_t code, const char *text);

#endif
