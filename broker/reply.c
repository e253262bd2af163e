/* Replies to clients: typed REPLY and ERROR frames on the client socket, and the
 * reply cache that answers a repeated request (same routing id, request id and bytes)
 * with the reply it already got instead of running it twice. */
#define HQ_LOG_MODULE "hq::server"
#include "reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_log.h"
#include "hq_util.h"
#include "peer.h"

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

static void s_cache_put(hq_replies_t *r, const uint8_t *rid, size_t rid_len, uint64_t request_id,
                        const uint8_t *buf, size_t len)
{
    if (request_id == 0 || !r->cur_valid || r->cur_id != request_id ||
        len > HQ_REPLY_CACHE_MAX_REPLY)
        return;
    char *hex = hq_rid_hex(rid, rid_len);
    char *key = hq_asprintf("%s:%llu", hex, (unsigned long long)request_id);
    free(hex);
    uint32_t slot = r->pos++ % HQ_REPLY_CACHE;
    if (r->keys[slot]) {
        zhashx_delete(r->cache, r->keys[slot]);
        free(r->keys[slot]);
    }
    zchunk_t *c = zchunk_new(NULL, sizeof(uint64_t) + len);
    zchunk_append(c, &r->cur_hash, sizeof(uint64_t));
    zchunk_append(c, buf, len);
    zhashx_update(r->cache, key, c);
    r->keys[slot] = key;
}

static void s_client_send_msg(hq_replies_t *r, const uint8_t *rid, size_t rid_len, hq_msg_t *m)
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
    s_cache_put(r, rid, rid_len, m->hdr.request_id, buf, len);
    if (hq_peer_send(&r->peer, rid, rid_len, buf, len) != 0)
        hq_debug("Client %s is gone; reply dropped", "peer");
}

void hq_client_reply(hq_replies_t *r, const uint8_t *rid, size_t rid_len, uint64_t request_id,
                     const hq_reply_t *reply)
{
    hq_msg_t m = {0};
    m.hdr.version = HQ_PROTO_VERSION;
    m.hdr.type = HQ_MSG_REPLY;
    m.hdr.request_id = request_id;
    m.u.reply = *reply;
    s_client_send_msg(r, rid, rid_len, &m);
}

void hq_client_send_error(hq_replies_t *r, const uint8_t *rid, size_t rid_len, uint64_t request_id,
                          uint32_t code, const char *text)
{
    hq_msg_t m = hq_msg_error(request_id, code, text);
    s_client_send_msg(r, rid, rid_len, &m);
}

int hq_client_error(hq_replies_t *r, hq_creq_t *req, uint32_t code, const char *fmt, ...)
{
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    hq_client_send_error(r, req->rid, req->rid_len, req->msg->hdr.request_id, code, text);
    return 0;
}

void hq_client_reply_json(hq_replies_t *r, hq_creq_t *req, json_t *result, json_t *meta)
{
    json_t *doc = json_pack("{s:o,s:o}", "result", result ? result : json_null(), "meta",
                            meta ? meta : json_object());
    char *text = json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(doc);
    hq_reply_t reply = {.json = text};
    hq_client_reply(r, req->rid, req->rid_len, req->msg->hdr.request_id, &reply);
    free(text);
}

void hq_client_reply_held_json(hq_replies_t *r, const uint8_t *rid, size_t rid_len,
                               uint64_t request_id, json_t *result)
{
    json_t *doc =
        json_pack("{s:o,s:o}", "result", result ? result : json_null(), "meta", json_object());
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    hq_reply_t reply = {.json = text};
    bool saved = r->cur_valid;
    r->cur_valid = false;
    hq_client_reply(r, rid, rid_len, request_id, &reply);
    r->cur_valid = saved;
    free(text);
}

void hq_client_reply_log(hq_replies_t *r, hq_creq_t *req, uint64_t id, char **lines, uint32_t n)
{
    hq_reply_t reply = {.id = id, .n_log = n, .log = lines};
    hq_client_reply(r, req->rid, req->rid_len, req->msg->hdr.request_id, &reply);
}

bool hq_replies_repeat(hq_replies_t *r, const uint8_t *rid, size_t rid_len, uint64_t request_id,
                       const uint8_t *data, size_t len)
{
    r->cur_valid = false;
    if (request_id == 0)
        return false;
    char *hex = hq_rid_hex(rid, rid_len);
    char *key = hq_asprintf("%s:%llu", hex, (unsigned long long)request_id);
    zchunk_t *c = zhashx_lookup(r->cache, key);
    free(hex);
    free(key);
    uint64_t h = s_hash(data, len);
    uint64_t stored;
    if (c && zchunk_size(c) >= sizeof stored) {
        memcpy(&stored, zchunk_data(c), sizeof stored);
        if (stored == h) {
            hq_debug("Repeated request %llu answered from the cache",
                     (unsigned long long)request_id);
            size_t n = zchunk_size(c) - sizeof stored;
            uint8_t *copy = hq_malloc(n ? n : 1);
            memcpy(copy, zchunk_data(c) + sizeof stored, n);
            hq_peer_send(&r->peer, rid, rid_len, copy, n);
            return true;
        }
    }
    r->cur_hash = h;
    r->cur_id = request_id;
    r->cur_valid = true;
    return false;
}

void hq_replies_init(hq_replies_t *r)
{
    r->cache = zhashx_new();
    zhashx_set_destructor(r->cache, (zhashx_destructor_fn *)zchunk_destroy);
}

void hq_replies_fini(hq_replies_t *r)
{
    zhashx_destroy(&r->cache);
    for (uint32_t i = 0; i < HQ_REPLY_CACHE; i++) {
        free(r->keys[i]);
        r->keys[i] = NULL;
    }
    zsock_destroy(&r->peer.sock);
}
