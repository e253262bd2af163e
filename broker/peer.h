/* Sending one frame to a peer of a ROUTER socket (non-blocking, ROUTER_MANDATORY),
 * and routing-id helpers. Private to broker/. */
#ifndef HQ_BROKER_PEER_H
#define HQ_BROKER_PEER_H

#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

/* Longest routing id the broker keeps. */
#define HQ_RID_MAX 256

/* Sends [rid][buf] on a ROUTER; takes buf. 0 ok, -1 EAGAIN (the peer's queue is full),
 * -2 unreachable (EHOSTUNREACH: the peer is gone). */
int hq_peer_send(zsock_t *sock, const uint8_t *rid, size_t rid_len, uint8_t *buf, size_t len);
/* Sends [rid][copy of buf]; buf stays the caller's. 0, -1, -2 as hq_peer_send. */
int hq_peer_send_copy(zsock_t *sock, const uint8_t *rid, size_t rid_len, const uint8_t *buf,
                      size_t len);
/* Lowercase hex of a routing id. Caller frees. */
char *hq_rid_hex(const uint8_t *rid, size_t len);

#endif
