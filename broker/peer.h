/* Sending one frame to a peer of a ROUTER socket (non-blocking, ROUTER_MANDATORY)
 * or to a sink that stands for it, and routing-id helpers. Private to broker/. */
#ifndef HQ_BROKER_PEER_H
#define HQ_BROKER_PEER_H

#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

/* Longest routing id the broker keeps. */
#define HQ_RID_MAX 256

/* A frame sink: where frames go instead of a socket (tests drive handlers without
 * ZeroMQ and read what they sent). buf stays the caller's. */
typedef void(hq_peer_sink_fn)(void *arg, const uint8_t *rid, size_t rid_len, const uint8_t *buf,
                              size_t len);

/* Where frames to peers go: a ROUTER socket, or a sink when one is set. */
typedef struct hq_peer {
    zsock_t *sock;         /* ROUTER (owned by whoever holds the hq_peer_t) */
    hq_peer_sink_fn *sink; /* when set, frames go here instead */
    void *sink_arg;        /* its argument */
} hq_peer_t;

/* Sends [rid][buf] on a ROUTER; takes buf. 0 ok, -1 EAGAIN (the peer's queue is full),
 * -2 unreachable (EHOSTUNREACH: the peer is gone). */
int hq_peer_send(const hq_peer_t *p, const uint8_t *rid, size_t rid_len, uint8_t *buf, size_t len);
/* Sends [rid][copy of buf]; buf stays the caller's. 0, -1, -2 as hq_peer_send. */
int hq_peer_send_copy(const hq_peer_t *p, const uint8_t *rid, size_t rid_len, const uint8_t *buf,
                      size_t len);
/* Lowercase hex of a routing id. Caller frees. */
char *hq_rid_hex(const uint8_t *rid, size_t len);

#endif
