/* Fitting: whether a request variant fits a worker (amounts, lifetime, and for
 * resources with several groups the groups the worker's allocator would use), and
 * taking or giving back what a task holds. The group split mirrors the worker's
 * allocator: scatter, compact/tight, and the strict compact!/tight! rule. */
#include "place_priv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

static inline hq_amount_t s_need_amount(const worker_t *w, const need_t *n)
{
    return n->all ? w->cap[n->res] : n->amount;
}

static inline bool s_strict(uint8_t policy)
{
    return policy == HQ_POLICY_FORCE_COMPACT || policy == HQ_POLICY_FORCE_TIGHT;
}

/* The fewest groups that could ever hold amount a (largest groups first). */
static uint32_t s_min_groups(const grp_t *g, hq_amount_t a)
{
    hq_amount_t acc = 0;
    uint32_t k = 0;
    bool used[64] = {0};
    while (acc < a && k < g->n && k < 64) {
        uint32_t best = UINT32_MAX;
        for (uint32_t j = 0; j < g->n && j < 64; j++)
            if (!used[j] && (best == UINT32_MAX || g->cap[j] > g->cap[best]))
                best = j;
        used[best] = true;
        acc += g->cap[best];
        k++;
    }
    return k;
}

/* Splits a request of amount a on a per-group resource into per-group amounts (out,
 * g->n entries) the way the worker's allocator chooses groups: scatter takes one
 * unit per group in turn; compact/tight use one group when one can hold it (the
 * fullest that can: best fit), else the freest groups first. Returns false when the
 * free amounts cannot hold it, or a strict policy would need more groups than the
 * fewest the worker could ever use. */
static bool s_split(const grp_t *g, hq_amount_t a, bool all, uint8_t policy, hq_amount_t *out)
{
    hq_amount_t total = 0;
    for (uint32_t j = 0; j < g->n; j++) {
        out[j] = 0;
        total += g->free[j];
    }
    if (all) {
        for (uint32_t j = 0; j < g->n; j++) {
            if (g->free[j] != g->cap[j])
                return false;
            out[j] = g->cap[j];
        }
        return true;
    }
    if (total < a)
        return false;
    hq_amount_t left = a;
    if (policy == HQ_POLICY_SCATTER) {
        while (left > 0) {
            for (uint32_t j = 0; j < g->n && left > 0; j++) {
                hq_amount_t room = g->free[j] - out[j];
                hq_amount_t t = room < HQ_AMOUNT_ONE ? room : HQ_AMOUNT_ONE;
                if (t > left)
                    t = left;
                out[j] += t;
                left -= t;
            }
        }
        return true;
    }
    uint32_t best = UINT32_MAX;
    for (uint32_t j = 0; j < g->n; j++)
        if (g->free[j] >= a && (best == UINT32_MAX || g->free[j] < g->free[best]))
            best = j;
    if (best != UINT32_MAX) {
        out[best] = a;
        return true;
    }
    uint32_t used = 0;
    if (policy == HQ_POLICY_TIGHT || policy == HQ_POLICY_FORCE_TIGHT) {
        /* as many groups as the freest-first choice, each the least free one that
         * still lets the others cover the rest (mirrors the worker's allocator) */
        hq_amount_t acc = 0;
        uint32_t k = 0;
        bool seen[64] = {0};
        while (acc < a && k < g->n) {
            uint32_t big = UINT32_MAX;
            for (uint32_t j = 0; j < g->n; j++)
                if (!seen[j] && (big == UINT32_MAX || g->free[j] > g->free[big]))
                    big = j;
            seen[big] = true;
            acc += g->free[big];
            k++;
        }
        bool chosen[64] = {0};
        for (uint32_t r = k; r > 0 && left > 0; r--) {
            uint32_t pick = UINT32_MAX;
            for (uint32_t c = 0; c < g->n; c++) {
                if (chosen[c] || g->free[c] <= 0)
                    continue;
                /* the r-1 largest other free amounts */
                hq_amount_t others = 0;
                bool used_o[64] = {0};
                for (uint32_t t = 0; t + 1 < r; t++) {
                    uint32_t big = UINT32_MAX;
                    for (uint32_t j = 0; j < g->n; j++)
                        if (j != c && !chosen[j] && !used_o[j] &&
                            (big == UINT32_MAX || g->free[j] > g->free[big]))
                            big = j;
                    if (big == UINT32_MAX)
                        break;
                    used_o[big] = true;
                    others += g->free[big];
                }
                if (g->free[c] + others >= left &&
                    (pick == UINT32_MAX || g->free[c] < g->free[pick]))
                    pick = c;
            }
            if (pick == UINT32_MAX)
                return false;
            chosen[pick] = true;
            used++;
            out[pick] = 1; /* marks the choice; amounts follow */
            left -= g->free[pick] < left ? g->free[pick] : left;
        }
        /* fill the least free chosen groups completely, the rest from the freest */
        left = a;
        while (left > 0) {
            uint32_t small = UINT32_MAX;
            for (uint32_t j = 0; j < g->n; j++)
                if (chosen[j] && (small == UINT32_MAX || g->free[j] < g->free[small]))
                    small = j;
            if (small == UINT32_MAX)
                return false;
            chosen[small] = false;
            out[small] = g->free[small] < left ? g->free[small] : left;
            left -= out[small];
        }
        for (uint32_t j = 0; j < g->n; j++)
            if (chosen[j])
                out[j] = 0;
        return !s_strict(policy) || used <= s_min_groups(g, a);
    }
    /* compact: the freest groups until they hold it, then balanced over them (one
     * unit per chosen group in turn, as the worker's allocator takes indices) */
    bool chosen[64] = {0};
    for (hq_amount_t room = 0; room < a;) {
        uint32_t big = UINT32_MAX;
        for (uint32_t j = 0; j < g->n; j++)
            if (!chosen[j] && g->free[j] > 0 && (big == UINT32_MAX || g->free[j] > g->free[big]))
                big = j;
        if (big == UINT32_MAX)
            return false; /* cannot happen: total >= a */
        chosen[big] = true;
        room += g->free[big];
        used++;
    }
    while (left > 0) {
        for (uint32_t j = 0; j < g->n && left > 0; j++) {
            if (!chosen[j] || out[j] >= g->free[j])
                continue;
            hq_amount_t t = g->free[j] - out[j];
            if (t > HQ_AMOUNT_ONE)
                t = HQ_AMOUNT_ONE;
            if (t > left)
                t = left;
            out[j] += t;
            left -= t;
        }
    }
    return !s_strict(policy) || used <= s_min_groups(g, a);
}

/* Strict policies on per-group resources: the free groups must hold the request in
 * the fewest groups possible. */
static bool s_fits_groups(const worker_t *w, const variant_t *v)
{
    hq_amount_t scratch[64];
    for (uint32_t i = 0; i < v->n; i++) {
        const need_t *n = &v->needs[i];
        const grp_t *g = &w->grp[n->res];
        if (g->n == 0 || g->n > 64 || n->all || !s_strict(n->policy))
            continue;
        if (!s_split(g, n->amount, false, n->policy, scratch))
            return false;
    }
    return true;
}

/* Amount check: against free capacity (with the group rule of strict policies), or
 * against total capacity. */
bool hq_pl_fits_amounts(const worker_t *w, const variant_t *v, bool total)
{
    for (uint32_t i = 0; i < v->n; i++) {
        const need_t *n = &v->needs[i];
        hq_amount_t cap = w->cap[n->res];
        if (cap <= 0)
            return false;
        hq_amount_t have = total ? cap : w->free[n->res];
        if (have < s_need_amount(w, n))
            return false;
    }
    return total || !w->grouped || s_fits_groups(w, v);
}

bool hq_pl_fits(const worker_t *w, const variant_t *v, bool total, uint64_t now)
{
    return v->n_nodes == 0 && hq_pl_time_ok(w, v, now) && hq_pl_fits_amounts(w, v, total);
}

/* Records the per-group amounts a task takes on a worker with grouped resources. */
static void s_take_groups(worker_t *w, const variant_t *v, uint32_t job, uint32_t task)
{
    hq_amount_t part[64];
    hold_t h = {.job = job, .task = task};
    for (uint32_t i = 0; i < v->n; i++) {
        const need_t *n = &v->needs[i];
        grp_t *g = &w->grp[n->res];
        if (g->n == 0 || g->n > 64)
            continue;
        if (!s_split(g, s_need_amount(w, n), n->all, n->policy, part) &&
            !s_split(g, s_need_amount(w, n), false, HQ_POLICY_COMPACT, part))
            continue; /* the group model drifted (fractions): track amounts only */
        for (uint32_t j = 0; j < g->n; j++) {
            if (part[j] == 0)
                continue;
            h.takes = hq_realloc(h.takes, (h.n + 1) * sizeof *h.takes);
            h.takes[h.n++] = (take_t){.res = n->res, .group = j, .amount = part[j]};
            g->free[j] -= part[j];
        }
    }
    if (h.n == 0)
        return;
    if (w->n_holds == w->holds_cap) {
        w->holds_cap = w->holds_cap ? w->holds_cap * 2 : 8;
        w->holds = hq_realloc(w->holds, (size_t)w->holds_cap * sizeof *w->holds);
    }
    w->holds[w->n_holds++] = h;
}

static void s_give_groups(worker_t *w, uint32_t job, uint32_t task)
{
    for (uint32_t i = 0; i < w->n_holds; i++) {
        hold_t *h = &w->holds[i];
        if (h->job != job || h->task != task)
            continue;
        for (uint32_t k = 0; k < h->n; k++) {
            grp_t *g = &w->grp[h->takes[k].res];
            uint32_t j = h->takes[k].group;
            g->free[j] += h->takes[k].amount;
            if (g->free[j] > g->cap[j])
                g->free[j] = g->cap[j];
        }
        free(h->takes);
        w->holds[i] = w->holds[--w->n_holds];
        return;
    }
}

void hq_pl_take(worker_t *w, const variant_t *v, uint32_t job, uint32_t task)
{
    for (uint32_t i = 0; i < v->n; i++)
        w->free[v->needs[i].res] -= s_need_amount(w, &v->needs[i]);
    if (w->grouped)
        s_take_groups(w, v, job, task);
}

void hq_pl_give(worker_t *w, const variant_t *v, uint32_t job, uint32_t task)
{
    for (uint32_t i = 0; i < v->n; i++) {
        uint32_t r = v->needs[i].res;
        hq_amount_t a = s_need_amount(w, &v->needs[i]);
        w->free[r] = (w->free[r] > w->cap[r] - a) ? w->cap[r] : w->free[r] + a;
    }
    if (w->grouped)
        s_give_groups(w, job, task);
}
