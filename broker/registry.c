/* The worker registry: lookups, state words, and the cancels queued for workers. */
#include "registry.h"

#include <stdlib.h>

#include "hq_util.h"

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
        free(w->retract);
        hq_outbox_clear(&w->outbox);
        hq_msg_destroy(&w->reg);
        free(w);
    }
    free(r->tab);
    r->tab = NULL;
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
