/* Workers: registering one (its resources turned into capacities by resource index,
 * per-group amounts for resources with several groups), removing one (with the
 * multi-node task sets it belongs to), its credit, and freeing the nodes of a
 * multi-node task. */
#include "place_priv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

/* Capacity of a worker resource in amounts (indices x HQ_AMOUNT_ONE, or the sum). */
static hq_amount_t s_wres_amount(const hq_wres_t *r)
{
    const hq_amount_t max_idx = INT64_MAX / HQ_AMOUNT_ONE / 2;
    hq_amount_t n = 0;
    switch (r->kind) {
    case HQ_RES_LIST:
    case HQ_RES_GROUPS:
        for (uint32_t g = 0; g < r->n_groups && r->groups; g++)
            n += r->groups[g].n;
        return n * HQ_AMOUNT_ONE;
    case HQ_RES_RANGE:
        if (r->range_end < r->range_start)
            return 0;
        n = (r->range_end - r->range_start >= (uint64_t)max_idx)
                ? max_idx
                : (hq_amount_t)(r->range_end - r->range_start + 1);
        return n * HQ_AMOUNT_ONE;
    case HQ_RES_SUM:
        return r->sum_size > 0 ? r->sum_size : 0;
    }
    return 0;
}

void hq_place_worker_up(hq_place_t *p, const hq_sched_worker_t *src)
{
    if (!src)
        return;
    hq_place_worker_down(p, src->worker_id);
    worker_t *w = hq_calloc(1, sizeof *w);
    w->id = src->worker_id;
    w->credit = src->credit;
    w->prefetch = src->prefetch;
    w->lifetime_end = src->lifetime_end_ns;
    w->group = hq_strdup(src->group ? src->group : "");
    /* intern names first: interning may grow the per-worker arrays */
    for (uint32_t i = 0; i < src->resources.n && src->resources.res; i++)
        if (src->resources.res[i].name)
            hq_pl_res_index(p, src->resources.res[i].name);
    w->cap = hq_calloc(p->names_cap, sizeof *w->cap);
    w->free = hq_calloc(p->names_cap, sizeof *w->free);
    w->grp = hq_calloc(p->names_cap, sizeof *w->grp);
    w->grp_len = p->names_cap;
    w->min_util = src->min_utilization > 0 && src->min_utilization <= 1 ? src->min_utilization : 0;
    if (w->min_util > 0)
        p->any_min_util = true;
    for (uint32_t i = 0; i < src->resources.n && src->resources.res; i++) {
        const hq_wres_t *r = &src->resources.res[i];
        if (!r->name)
            continue;
        uint32_t k = hq_pl_res_index(p, r->name);
        hq_amount_t a = s_wres_amount(r);
        if (w->cap[k] <= INT64_MAX / 2 - a)
            w->cap[k] += a;
        w->free[k] = w->cap[k];
        if (r->kind == HQ_RES_GROUPS && r->n_groups > 1 && r->groups && w->grp[k].n == 0) {
            grp_t *g = &w->grp[k];
            g->n = r->n_groups;
            g->cap = hq_calloc(g->n, sizeof *g->cap);
            g->free = hq_calloc(g->n, sizeof *g->free);
            for (uint32_t j = 0; j < g->n; j++)
                g->cap[j] = g->free[j] = (hq_amount_t)r->groups[j].n * HQ_AMOUNT_ONE;
            w->grouped = true;
        }
    }
    bool found;
    uint32_t pos = hq_pl_worker_pos(p, w->id, &found);
    hq_pl_grow((void **)&p->workers, &p->workers_cap, p->n_workers + 1, sizeof *p->workers);
    p->heap = hq_realloc(p->heap, (size_t)p->workers_cap * sizeof *p->heap);
    p->open = hq_realloc(p->open, (size_t)p->workers_cap * sizeof *p->open);
    p->unclosed = hq_realloc(p->unclosed, (size_t)p->workers_cap * sizeof *p->unclosed);
    memmove(p->workers + pos + 1, p->workers + pos, (p->n_workers - pos) * sizeof *p->workers);
    p->workers[pos] = w;
    p->n_workers++;
}

void hq_pl_mn_remove_at(hq_place_t *p, uint32_t i)
{
    free(p->mns[i].nodes);
    p->mns[i] = p->mns[--p->n_mns];
}

/* Frees the workers a multi-node task held (all but skip_id, which is going away). */
void hq_pl_mn_free_nodes(hq_place_t *p, const mn_t *m, uint32_t skip_id)
{
    for (uint32_t k = 0; k < m->n; k++) {
        worker_t *w = m->nodes[k] == skip_id ? NULL : hq_pl_worker_find(p, m->nodes[k]);
        if (w) {
            w->in_mn = false;
            if (w->held > 0)
                w->held--;
        }
    }
}

void hq_place_worker_down(hq_place_t *p, uint32_t worker_id)
{
    bool found;
    uint32_t pos = hq_pl_worker_pos(p, worker_id, &found);
    if (!found)
        return;
    /* A lost root ends its multi-node task (the core requeues it): free the other
     * nodes. A lost secondary node just leaves the task's node set. */
    for (uint32_t i = 0; p->workers[pos]->in_mn && i < p->n_mns; i++) {
        mn_t *m = &p->mns[i];
        uint32_t k = 0;
        while (k < m->n && m->nodes[k] != worker_id)
            k++;
        if (k == m->n)
            continue;
        if (k == 0) {
            hq_pl_mn_free_nodes(p, m, worker_id);
            hq_pl_mn_remove_at(p, i);
        } else {
            memmove(m->nodes + k, m->nodes + k + 1, (m->n - k - 1) * sizeof *m->nodes);
            m->n--;
        }
        break;
    }
    hq_pl_worker_free(p->workers[pos]);
    memmove(p->workers + pos, p->workers + pos + 1, (p->n_workers - pos - 1) * sizeof *p->workers);
    p->n_workers--;
}

void hq_place_credit(hq_place_t *p, uint32_t worker_id, uint32_t credit)
{
    worker_t *w = hq_pl_worker_find(p, worker_id);
    if (w)
        w->credit = credit;
}
