/* The connection to the broker's client socket: one request at a time over a
 * DEALER socket with CURVE keys from the access file, a random request id reused on
 * retry, and a reply timeout. */
#ifndef HQ_CLIENT_H
#define HQ_CLIENT_H

#include <stdint.h>

#include "hq_args.h"
#include "hq_err.h"
#include "hq_msg.h"

typedef struct hq_client hq_client_t;

/* Reads the access file of the server dir in g and prepares a connection. On
 * failure err holds the full cli/REFERENCE.md §2 message (with its "Caused by:" part). */
hq_client_t *hq_client_new(const hq_global_t *g, hq_err_t *err);
void hq_client_destroy(hq_client_t **c);

/* Sends req (its hdr.type and body; version and request id are filled in here)
 * and waits for the matching reply, up to the usual timeout plus extra_wait_ms.
 * Returns the REPLY message (caller destroys), or NULL with err filled: the
 * ERROR reply's message, an oversized request, or the unreachable-server text. */
hq_msg_t *hq_client_call(hq_client_t *c, hq_msg_t *req, uint64_t extra_wait_ms, hq_err_t *err);

/* Gives s a fresh idempotency key: 16 random bytes from libsodium, drawn once per
 * `hq` invocation. hq_client_call then retries that SUBMIT the Lazy Pirate way
 * (proto/wire/PROTOCOL.md: HQ_SUBMIT_RETRY, HQ_SUBMIT_TIMEOUT). Returns 0, or -1 when
 * libsodium cannot be initialised (s unchanged). */
int hq_client_key_submit(hq_submit_t *s);

#endif
