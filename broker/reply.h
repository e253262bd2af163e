/* Replies to clients and the reply cache (a repeated request is answered with the
 * reply it already got). Private to broker/. */
#ifndef HQ_BROKER_REPLY_H
#define HQ_BROKER_REPLY_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>
#include <jansson.h>

#include "hq_msg.h"
#include "peer.h"

#define HQ_REPLY_CACHE 1024
/* Replies larger than this are not cached (listings: a repeat is answered anew), so
 * the cache holds at most 1024 x 16 KiB; replies to changes are far smaller. */
#define HQ_REPLY_CACHE_MAX_REPLY (16 * 1024)

/* The client socket and its reply cache. */
typedef struct hq_replies {
    hq_peer_t peer;             /* client ROUTER (owned) or a test sink */
    zhashx_t *cache;            /* "<rid hex>:<request id>" -> zchunk_t (frame hash + reply) */
    char *keys[HQ_REPLY_CACHE]; /* insertion ring for eviction */
    uint32_t pos;               /* next ring slot */
    bool cur_valid;             /* the request being handled may be cached: */
    uint64_t cur_id;            /*   its request id */
    uint64_t cur_hash;          /*   and the hash of its frame */
} hq_replies_t;

/* A client request being handled. */
typedef struct hq_creq {
    const uint8_t *rid; /* routing id (borrowed) */
    size_t rid_len;
    hq_msg_t *msg; /* decoded request (borrowed unless the handler sets stolen) */
    bool stolen;   /* the handler took ownership of msg */
} hq_creq_t;

/* Creates the cache (the socket is set by the loop). */
void hq_replies_init(hq_replies_t *r);
/* Frees the cache and closes the socket. */
void hq_replies_fini(hq_replies_t *r);
/* Called for each request frame before it is handled: true when it repeats a request
 * whose reply is cached (the cached reply was sent again: nothing else to do);
 * otherwise the reply about to be sent for request_id will be cached. */
bool hq_replies_repeat(hq_replies_t *r, const uint8_t *rid, size_t rid_len, uint64_t request_id,
                       const uint8_t *data, size_t len);
/* Replies to a client (and caches the reply by request id). */
void hq_client_reply(hq_replies_t *r, const uint8_t *rid, size_t rid_len, uint64_t request_id,
                     const hq_reply_t *reply);
/* Replies with a JSON document {"result": result, "meta": meta}; steals both. */
void hq_client_reply_json(hq_replies_t *r, hq_creq_t *req, json_t *result, json_t *meta);
/* Replies {"result": result, "meta": {}} to a request held since an earlier turn
 * (not the one being handled now); steals result. */
void hq_client_reply_held_json(hq_replies_t *r, const uint8_t *rid, size_t rid_len,
                               uint64_t request_id, json_t *result);
/* Replies with log lines only ("INFO\t..." etc., each owned by the caller). */
void hq_client_reply_log(hq_replies_t *r, hq_creq_t *req, uint64_t id, char **lines, uint32_t n);
/* Sends a typed ERROR reply (code, text) for request_id. */
void hq_client_send_error(hq_replies_t *r, const uint8_t *rid, size_t rid_len, uint64_t request_id,
                          uint32_t code, const char *text);
/* Sends a typed ERROR reply to req; always returns 0 (the request was answered). */
int hq_client_error(hq_replies_t *r, hq_creq_t *req, uint32_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
