/* The process-wide ZAP handler (RFC 27): one actor bound to inproc://zeromq.zap.01
 * before any socket binds. Per ZAP domain ("client", "worker") it admits CURVE with
 * exactly that role's public key, or NULL when the role runs without encryption, and
 * refuses everything else. (CURVE without a ZAP handler accepts any client key.) */
#ifndef HQ_BROKER_ZAP_H
#define HQ_BROKER_ZAP_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>

#define HQ_ZAP_DOMAIN_CLIENT "client"
#define HQ_ZAP_DOMAIN_WORKER "worker"

typedef struct hq_zap_policy {
    bool client_curve;      /* client side uses CURVE (else NULL mechanism) */
    uint8_t client_pub[32]; /* the client role's public key */
    bool worker_curve;      /* worker side uses CURVE */
    uint8_t worker_pub[32]; /* the worker role's public key */
} hq_zap_policy_t;

/* Starts the handler; returns once it is bound, or NULL if the endpoint could not be
 * bound (another handler in this process). */
zactor_t *hq_zap_new(const hq_zap_policy_t *policy);

/* The decision for one request: NULL when admitted, else the reason. Pure. */
const char *hq_zap_decide(const hq_zap_policy_t *p, const char *domain, const char *mechanism,
                          const uint8_t *cred, size_t cred_len);

#endif
