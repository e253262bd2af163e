/* Min utilization: the mix of ready tasks one worker with a --min-utilization gets
 * in a round (rule in place.h). A bounded depth-first search over how many tasks of
 * each of the first ready queues to take: the mix must fit the worker's free amounts
 * and credit and bring its busy share of cpus to at least the minimum; among such
 * mixes the one with the most weight of the highest priority wins (then of the next
 * priority, ...), then the most cpus used, then the one taking more of the earlier
 * (older) queues. Only chooses; place_round.c takes the tasks. */
#include "place_priv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

/* Search nodes per worker and round: bounds the cost on many distinct queues. */
#define MIX_BUDGET 50000

typedef struct s_search {
    const hq_place_t *p;
    const worker_t *w;
    hq_pl_mix_t *items;
    uint32_t n;
    hq_amount_t *free;     /* per resource index, as the partial mix leaves it */
    uint32_t *count;       /* per item, the partial mix */
    uint32_t room;         /* tasks the credit still allows */
    hq_amount_t need_cpus; /* busy cpus the mix must reach */
    uint64_t level_w[HQ_PL_MIX_MAX];
    bool found;
    uint64_t best_w[HQ_PL_MIX_MAX];
    hq_amount_t best_cpus;
    uint32_t nodes;
} search_t;

static inline hq_amount_t s_amount(const worker_t *w, const need_t *n)
{
    return n->all ? w->cap[n->res] : n->amount;
}

/* Whether one more task of item it fits the partial mix (amounts only). */
static bool s_fits(const search_t *s, const hq_pl_mix_t *it)
{
    for (uint32_t i = 0; i < it->v->n; i++) {
        const need_t *n = &it->v->needs[i];
        if (n->all ? s->free[n->res] != s->w->cap[n->res] : s->free[n->res] < n->amount)
            return false;
    }
    return true;
}

static void s_add(search_t *s, const hq_pl_mix_t *it, int sign)
{
    for (uint32_t i = 0; i < it->v->n; i++)
        s->free[it->v->needs[i].res] -= sign * s_amount(s->w, &it->v->needs[i]);
    s->level_w[it->level] += sign > 0 ? it->weight : -it->weight;
}

/* Keeps the partial mix when it is valid and better than the best so far. */
static void s_consider(search_t *s)
{
    hq_amount_t used = s->w->cap[CPUS_RES] - s->free[CPUS_RES];
    if (used < s->need_cpus || used == s->w->cap[CPUS_RES] - s->w->free[CPUS_RES])
        return;
    if (s->found) {
        int c = 0;
        for (uint32_t l = 0; l < HQ_PL_MIX_MAX && c == 0; l++)
            if (s->level_w[l] != s->best_w[l])
                c = s->level_w[l] > s->best_w[l] ? 1 : -1;
        if (c < 0 || (c == 0 && used <= s->best_cpus))
            return;
    }
    s->found = true;
    memcpy(s->best_w, s->level_w, sizeof s->best_w);
    s->best_cpus = used;
    for (uint32_t i = 0; i < s->n; i++)
        s->items[i].take = s->count[i];
}

/* Items i.. get their counts, the most first (earlier queues are preferred on ties). */
static void s_dfs(search_t *s, uint32_t i)
{
    if (++s->nodes > MIX_BUDGET)
        return;
    if (i == s->n) {
        s_consider(s);
        return;
    }
    hq_pl_mix_t *it = &s->items[i];
    uint32_t k = 0;
    while (k < it->max && k < s->room && s_fits(s, it)) {
        s_add(s, it, 1);
        k++;
    }
    for (;;) {
        s->count[i] = k;
        s->room -= k;
        s_dfs(s, i + 1);
        s->room += k;
        if (k == 0 || s->nodes > MIX_BUDGET)
            break;
        s_add(s, it, -1);
        k--;
    }
    while (k > 0) {
        s_add(s, it, -1);
        k--;
    }
    s->count[i] = 0;
}

uint32_t hq_pl_mix_choose(const hq_place_t *p, const worker_t *w, hq_pl_mix_t *items)
{
    if (w->held >= w->credit || w->cap[CPUS_RES] <= 0)
        return 0;
    uint32_t n = 0, level = 0;
    int32_t last_prio = 0;
    for (uint32_t qi = 0; qi < p->n_queues && n < HQ_PL_MIX_MAX; qi++) {
        queue_t *q = p->queues[qi];
        class_t *c = q->cls;
        if (q->count == 0 || !c)
            continue;
        for (uint32_t vi = 0; vi < c->n_variants; vi++) {
            const variant_t *v = &c->variants[vi];
            if (!hq_pl_fits(w, v, true, p->now))
                continue;
            if (n > 0 && q->prio != last_prio)
                level++;
            last_prio = q->prio;
            bool all = false;
            for (uint32_t k = 0; k < v->n; k++)
                all = all || v->needs[k].all;
            uint64_t cnt = q->count;
            items[n++] =
                (hq_pl_mix_t){.q = q,
                              .vi = vi,
                              .v = v,
                              .weight = v->weight,
                              .level = level < HQ_PL_MIX_MAX ? level : HQ_PL_MIX_MAX - 1,
                              .max = all ? 1 : (cnt > UINT32_MAX ? UINT32_MAX : (uint32_t)cnt)};
            break;
        }
    }
    if (n == 0)
        return 0;
    search_t s = {.p = p, .w = w, .items = items, .n = n, .room = w->credit - w->held};
    s.free = hq_malloc(p->names_cap * sizeof *s.free);
    memcpy(s.free, w->free, p->names_cap * sizeof *s.free);
    s.count = hq_calloc(n, sizeof *s.count);
    double need = w->min_util * (double)w->cap[CPUS_RES] - 1e-6 * (double)HQ_AMOUNT_ONE;
    s.need_cpus = need > 0 ? (hq_amount_t)need : 0;
    for (uint32_t i = 0; i < n; i++)
        items[i].take = 0;
    s_dfs(&s, 0);
    free(s.free);
    free(s.count);
    return s.found ? n : 0;
}
