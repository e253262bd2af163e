/* The worker socket's handler: registration, re-adoption, results and goodbyes from
 * worker peers, checked for role, registration, epoch and seq/ack order first.
 * Private to broker/. */
#ifndef HQ_BROKER_WMSG_H
#define HQ_BROKER_WMSG_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"

/* Handles one frame from peer rid of the worker socket. */
void hq_workers_on_message(hq_broker_t *b, const uint8_t *rid, size_t rid_len, const uint8_t *frame,
                           size_t len);

#endif
