/* Placement state and its registries: creating and freeing the whole state, the
 * resource-name table (names become small indices that every per-worker array is
 * indexed by), lookups of request classes and workers by id, and the introspection
 * calls of place.h. Everything else in the module builds on these. */
#include "place_priv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

/* ---- registries ---- */

void hq_pl_grow(void **arr, uint32_t *cap, uint32_t need, size_t elem)
{
    if (need <= *cap)
        return;
    uint32_t c = *cap ? *cap : 8;
    while (c < need)
        c *= 2;
    *arr = hq_realloc(*arr, (size_t)c * elem);
    *cap = c;
}

uint32_t hq_pl_res_index(hq_place_t *p, const char *name)
{
    for (uint32_t i = 0; i < p->n_names; i++)
        if (strcmp(p->names[i], name) == 0)
            return i;
    if (p->n_names == p->names_cap) {
        uint32_t old = p->names_cap;
        uint32_t c = old ? old * 2 : 8;
        p->names = hq_realloc(p->names, (size_t)c * sizeof *p->names);
        for (uint32_t w = 0; w < p->n_workers; w++) {
            worker_t *wk = p->workers[w];
            wk->cap = hq_realloc(wk->cap, (size_t)c * sizeof *wk->cap);
            wk->free = hq_realloc(wk->free, (size_t)c * sizeof *wk->free);
            wk->grp = hq_realloc(wk->grp, (size_t)c * sizeof *wk->grp);
            memset(wk->cap + old, 0, (size_t)(c - old) * sizeof *wk->cap);
            memset(wk->free + old, 0, (size_t)(c - old) * sizeof *wk->free);
            memset(wk->grp + old, 0, (size_t)(c - old) * sizeof *wk->grp);
            wk->grp_len = c;
        }
        p->names_cap = c;
    }
    p->names[p->n_names] = hq_strdup(name);
    return p->n_names++;
}

static int s_res_find(const hq_place_t *p, const char *name)
{
    for (uint32_t i = 0; i < p->n_names; i++)
        if (strcmp(p->names[i], name) == 0)
            return (int)i;
    return -1;
}

void hq_pl_worker_free(worker_t *w)
{
    if (!w)
        return;
    free(w->group);
    free(w->cap);
    free(w->free);
    free(w->pf);
    free(w->pf_keys);
    for (uint32_t i = 0; w->grp && i < w->grp_len; i++) {
        free(w->grp[i].cap);
        free(w->grp[i].free);
    }
    free(w->grp);
    for (uint32_t i = 0; i < w->n_holds; i++)
        free(w->holds[i].takes);
    free(w->holds);
    free(w);
}

void hq_pl_queue_free(queue_t *q)
{
    if (!q)
        return;
    free(q->runs);
    free(q);
}

static void s_class_free(class_t *c)
{
    if (!c)
        return;
    for (uint32_t v = 0; v < c->n_variants; v++)
        free(c->variants[v].needs);
    free(c->variants);
    free(c);
}

/* ---- lifetime ---- */

hq_place_t *hq_place_new(void)
{
    hq_place_t *p = hq_calloc(1, sizeof *p);
    hq_pl_res_index(p, "cpus"); /* CPUS_RES */
    return p;
}

void hq_place_destroy(hq_place_t **pp)
{
    if (!pp || !*pp)
        return;
    hq_place_t *p = *pp;
    for (uint32_t i = 0; i < p->n_names; i++)
        free(p->names[i]);
    free(p->names);
    for (uint32_t i = 0; i < p->n_classes; i++)
        s_class_free(p->classes[i]);
    free(p->classes);
    for (uint32_t i = 0; i < p->n_queues; i++)
        hq_pl_queue_free(p->queues[i]);
    free(p->queues);
    for (uint32_t i = 0; i < p->n_workers; i++)
        hq_pl_worker_free(p->workers[i]);
    free(p->workers);
    free(p->heap);
    free(p->open);
    free(p->unclosed);
    free(p->shapes);
    for (uint32_t i = 0; i < p->n_mns; i++)
        free(p->mns[i].nodes);
    free(p->mns);
    free(p->slot_q);
    free(p);
    *pp = NULL;
}

/* ---- introspection ---- */

void hq_place_set_spread(hq_place_t *p, bool spread)
{
    p->spread = spread;
}

uint64_t hq_place_ready_count(const hq_place_t *p)
{
    return p->n_ready;
}

int hq_place_worker_info(const hq_place_t *p, uint32_t worker_id, hq_place_winfo_t *out)
{
    const worker_t *w = hq_pl_worker_find(p, worker_id);
    if (!w)
        return -1;
    out->held = w->held;
    out->prefetched = w->n_pf;
    out->credit = w->credit;
    return 0;
}

hq_amount_t hq_place_worker_free(const hq_place_t *p, uint32_t worker_id, const char *res)
{
    const worker_t *w = hq_pl_worker_find(p, worker_id);
    int k = s_res_find(p, res);
    if (!w || k < 0 || w->cap[k] <= 0)
        return -1;
    return w->free[k];
}
