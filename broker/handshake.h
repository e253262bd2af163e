/* Peers that have not authenticated yet: the descriptor limit that lets the broker
 * take a flood of stalled handshakes without starving its clients, and the socket
 * monitors that log refused handshakes (wrong key, wrong mechanism, timed out),
 * rate-limited. Private to broker/. */
#ifndef HQ_BROKER_HANDSHAKE_H
#define HQ_BROKER_HANDSHAKE_H

#include <czmq.h>

#include "ctx.h"

/* Raises the soft RLIMIT_NOFILE to the hard limit (at most fs.nr_open): every TCP
 * connection, even one stalled in its handshake, holds a descriptor until the
 * handshake interval closes it, and a broker out of descriptors cannot accept its
 * clients. Logs the limit in force. */
void hq_handshake_raise_nofile(void);
/* Logs the failed handshakes of sock ("client" or "worker" names it) from b's loop.
 * 0, or -1 when the monitor cannot be set up. */
int hq_handshake_watch(hq_broker_t *b, zsock_t *sock, const char *name);
/* From the liveness tick: says how many refused handshakes the rate limit kept out of
 * the log, once their minute has passed. */
void hq_handshake_tick(hq_broker_t *b);
/* Ends the monitors (before the sockets are destroyed). */
void hq_handshake_stop(hq_broker_t *b);

#endif
