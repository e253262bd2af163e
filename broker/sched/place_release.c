/* Releases and the prefetch FIFO: tasks prefetched to a worker wait there in order
 * (a hash set of their keys finds one in O(1) when it is released before it
 * started); a release frees what a task held and then starts waiting tasks from
 * the front while they fit the free capacity. */
#include "place_priv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

/* ---- the prefetch FIFO: releases look tasks up in O(1), starts pop from the front ---- */

static inline uint64_t s_pf_key(uint32_t job, uint32_t task)
{
    return ((uint64_t)job << 32 | task) + 1; /* never 0 (0 marks an empty slot) */
}

static inline uint32_t s_pf_slot(uint64_t key, uint32_t mask)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return (uint32_t)key & mask;
}

static void s_pf_keys_put(worker_t *w, uint64_t key);

/* Keeps the set at most half full. */
static void s_pf_keys_grow(worker_t *w)
{
    if (w->pf_keys_cap && (w->n_pf + 1) * 2 <= w->pf_keys_cap)
        return;
    uint64_t *old = w->pf_keys;
    uint32_t old_cap = w->pf_keys_cap;
    w->pf_keys_cap = old_cap ? old_cap * 2 : 64;
    w->pf_keys = hq_calloc(w->pf_keys_cap, sizeof *w->pf_keys);
    for (uint32_t i = 0; i < old_cap; i++)
        if (old[i])
            s_pf_keys_put(w, old[i]);
    free(old);
}

static void s_pf_keys_put(worker_t *w, uint64_t key)
{
    uint32_t mask = w->pf_keys_cap - 1, i = s_pf_slot(key, mask);
    while (w->pf_keys[i] && w->pf_keys[i] != key)
        i = (i + 1) & mask;
    w->pf_keys[i] = key;
}

static bool s_pf_keys_has(const worker_t *w, uint64_t key)
{
    if (!w->pf_keys_cap)
        return false;
    uint32_t mask = w->pf_keys_cap - 1, i = s_pf_slot(key, mask);
    while (w->pf_keys[i]) {
        if (w->pf_keys[i] == key)
            return true;
        i = (i + 1) & mask;
    }
    return false;
}

/* Linear probing with backward-shift deletion: no tombstones. */
static void s_pf_keys_del(worker_t *w, uint64_t key)
{
    if (!w->pf_keys_cap)
        return;
    uint32_t mask = w->pf_keys_cap - 1, i = s_pf_slot(key, mask);
    while (w->pf_keys[i] != key) {
        if (!w->pf_keys[i])
            return;
        i = (i + 1) & mask;
    }
    for (uint32_t j = (i + 1) & mask; w->pf_keys[j]; j = (j + 1) & mask) {
        uint32_t home = s_pf_slot(w->pf_keys[j], mask);
        /* move j into the hole at i unless its home lies cyclically in (i, j] */
        bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            w->pf_keys[i] = w->pf_keys[j];
            i = j;
        }
    }
    w->pf_keys[i] = 0;
}

static inline pf_t *s_pf_at(worker_t *w, uint32_t k)
{
    return &w->pf[w->pf_off + k];
}

void hq_pl_pf_push(worker_t *w, pf_t t)
{
    if (w->pf_off + w->n_pf == w->pf_cap) {
        if (w->pf_off > 0 && w->pf_off >= w->n_pf) {
            memmove(w->pf, w->pf + w->pf_off, (size_t)w->n_pf * sizeof *w->pf);
            w->pf_off = 0;
        } else {
            w->pf_cap = w->pf_cap ? w->pf_cap * 2 : 4;
            w->pf = hq_realloc(w->pf, (size_t)w->pf_cap * sizeof *w->pf);
        }
    }
    s_pf_keys_grow(w);
    s_pf_keys_put(w, s_pf_key(t.job, t.task));
    w->pf[w->pf_off + w->n_pf++] = t;
}

/* Starts waiting prefetched tasks, in order, while the head fits free capacity. */
static void s_promote(worker_t *w)
{
    uint32_t k = 0;
    while (k < w->n_pf) {
        const pf_t *t = s_pf_at(w, k);
        const variant_t *v = &t->cls->variants[t->variant];
        if (!hq_pl_fits_amounts(w, v, false))
            break;
        hq_pl_take(w, v, t->job, t->task);
        s_pf_keys_del(w, s_pf_key(t->job, t->task));
        k++;
    }
    w->pf_off += k;
    w->n_pf -= k;
    if (w->n_pf == 0)
        w->pf_off = 0;
}

/* ---- releases ---- */

void hq_place_release(hq_place_t *p, const hq_sched_slot_t *slots, uint32_t n)
{
    for (uint32_t i = 0; i < n && slots; i++) {
        const hq_sched_slot_t *s = &slots[i];
        /* a multi-node task frees all its nodes */
        bool mn = false;
        for (uint32_t m = 0; m < p->n_mns; m++) {
            if (p->mns[m].job == s->job_id && p->mns[m].task == s->task_id) {
                hq_pl_mn_free_nodes(p, &p->mns[m], UINT32_MAX);
                hq_pl_mn_remove_at(p, m);
                mn = true;
                break;
            }
        }
        if (mn)
            continue;
        worker_t *w = hq_pl_worker_find(p, s->worker_id);
        if (!w || w->in_mn)
            continue;
        uint64_t key = s_pf_key(s->job_id, s->task_id);
        if (s_pf_keys_has(w, key)) {
            /* released before it started (canceled, lost): rare, so a scan is fine */
            uint32_t k = 0;
            while (k < w->n_pf &&
                   !(s_pf_at(w, k)->job == s->job_id && s_pf_at(w, k)->task == s->task_id))
                k++;
            if (k < w->n_pf) {
                memmove(s_pf_at(w, k), s_pf_at(w, k + 1), (w->n_pf - k - 1) * sizeof *w->pf);
                w->n_pf--;
            }
            s_pf_keys_del(w, key);
        } else {
            const class_t *c = hq_pl_class_find(p, s->rq_id);
            if (!c || s->variant >= c->n_variants || c->variants[s->variant].n_nodes > 0)
                continue;
            hq_pl_give(w, &c->variants[s->variant], s->job_id, s->task_id);
        }
        if (w->held > 0)
            w->held--;
        s_promote(w);
    }
}
