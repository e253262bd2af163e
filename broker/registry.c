/* The worker registry: lookups, state words, and the cancels queued for workers. */
#include "registry.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "hq_util.h"

uint64_t hq_worker_conf_labels(const hq_worker_conf_t *conf)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < conf->resources.n; i++)
        for (uint32_t g = 0; g < conf->resources.res[i].n_groups; g++)
            n += conf->resources.res[i].groups[g].n;
    return n;
}

void hq_worker_compact(hq_worker_t *w)
{
    free(w->rid_key);
    w->rid_key = NULL;
    free(w->pending);
    w->pending = NULL;
    w->n_pending = w->cap_pending = 0;
    sodium_memzero(w->secret, sizeof w->secret);
    if (!w->reg)
        return;
    /* A copy through the codec: one allocation of the configuration's own size. */
    hq_msg_t m = {.hdr.type = HQ_MSG_REGISTER, .hdr.version = HQ_PROTO_VERSION};
    m.u.reg.conf = w->reg->u.reg.conf;
    m.u.reg.prefetch = w->reg->u.reg.prefetch;
    m.u.reg.has_secret = w->reg->u.reg.has_secret;
    memcpy(m.u.reg.secret, w->reg->u.reg.secret, sizeof m.u.reg.secret);
    uint8_t *buf = NULL;
    size_t len = 0;
    hq_err_t err;
    if (hq_msg_encode(&m, &buf, &len, &err) != 0)
        return;
    hq_msg_t *copy = hq_msg_decode(buf, len, &err);
    free(buf);
    if (!copy)
        return;
    hq_msg_destroy(&w->reg);
    w->reg = copy;
    w->conf = &copy->u.reg.conf;
}

void hq_session_secret_hash(const uint8_t *secret, uint8_t *hash)
{
    crypto_generichash(hash, HQ_SESSION_SECRET_LEN, secret, HQ_SESSION_SECRET_LEN, NULL, 0);
}

void hq_registry_set_hash(hq_registry_t *r, uint32_t id, const uint8_t *hash)
{
    if (id == 0 || id > HQ_MAX_WORKER_ID)
        return;
    if (id >= r->cap_hashes) {
        uint32_t cap = r->cap_hashes ? r->cap_hashes : 64;
        while (cap <= id)
            cap *= 2;
        r->hashes = hq_realloc(r->hashes, cap * sizeof *r->hashes);
        memset(r->hashes + r->cap_hashes, 0, (cap - r->cap_hashes) * sizeof *r->hashes);
        r->cap_hashes = cap;
    }
    r->hashes[id].set = true;
    memcpy(r->hashes[id].hash, hash, HQ_SESSION_SECRET_LEN);
}

bool hq_registry_proves(const hq_registry_t *r, uint32_t old_worker_id, bool has_secret,
                        const uint8_t *secret)
{
    if (old_worker_id == 0)
        return false;
    if (old_worker_id >= r->cap_hashes || !r->hashes[old_worker_id].set)
        return true;
    if (!has_secret)
        return false;
    uint8_t h[HQ_SESSION_SECRET_LEN];
    hq_session_secret_hash(secret, h);
    return sodium_memcmp(h, r->hashes[old_worker_id].hash, HQ_SESSION_SECRET_LEN) == 0;
}

hq_worker_t *hq_registry_get(const hq_registry_t *r, uint32_t id)
{
    return id > 0 && id <= r->max_id ? r->tab[id] : NULL;
}

const char *hq_wstate_word(enum hq_wstate s)
{
    switch (s) {
    case HQ_WS_RUNNING:
        return "RUNNING";
    case HQ_WS_CONNECTION_LOST:
        return "CONNECTION LOST";
    case HQ_WS_HEARTBEAT_LOST:
        return "HEARTBEAT LOST";
    case HQ_WS_IDLE_TIMEOUT:
        return "IDLE TIMEOUT";
    case HQ_WS_STOPPED:
        return "STOPPED";
    default:
        return "TIME LIMIT REACHED";
    }
}

void hq_cancels_add(hq_cancels_t *c, uint32_t worker_id, uint32_t job_id, uint32_t task_id,
                    uint32_t instance)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 64;
        c->refs = hq_realloc(c->refs, c->cap * sizeof(hq_tref_t));
        c->workers = hq_realloc(c->workers, c->cap * sizeof(uint32_t));
        c->instances = hq_realloc(c->instances, c->cap * sizeof(uint32_t));
    }
    c->refs[c->n] = (hq_tref_t){.job_id = job_id, .task_id = task_id};
    c->workers[c->n] = worker_id;
    c->instances[c->n] = instance;
    c->n++;
}

void hq_registry_fini(hq_registry_t *r)
{
    for (uint32_t wid = 1; wid <= r->max_id && r->tab; wid++) {
        hq_worker_t *w = r->tab[wid];
        if (!w)
            continue;
        free(w->rid_key);
        free(w->overview);
        free(w->pending);
        hq_outbox_clear(&w->outbox);
        hq_msg_destroy(&w->reg);
        sodium_memzero(w->secret, sizeof w->secret);
        free(w);
    }
    free(r->tab);
    r->tab = NULL;
    free(r->hashes);
    r->hashes = NULL;
    r->cap_hashes = 0;
    zhashx_destroy(&r->by_rid);
    zhashx_destroy(&r->mn_nodes);
}

void hq_cancels_fini(hq_cancels_t *c)
{
    free(c->refs);
    free(c->workers);
    free(c->instances);
    *c = (hq_cancels_t){0};
}
