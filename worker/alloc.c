/* The worker's local resource allocator: the broker decides that a task fits the
 * worker, this module picks the concrete indices (which cpus, which gpus) among the
 * free ones, following the request's placement policy, and takes them back when the
 * task ends. Amounts are fixed-point (HQ_AMOUNT_ONE per index). */
#include "wk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

typedef struct wk_rstate {
    char *name;           /* resource name */
    bool indexed;         /* list/range/groups (else sum) */
    uint32_t n_idx;       /* number of indices */
    char **labels;        /* label of each index */
    uint32_t *group;      /* group of each index */
    hq_amount_t *free;    /* free share of each index (0..HQ_AMOUNT_ONE) */
    uint32_t n_groups;    /* number of groups (>= 1 when indexed) */
    uint32_t *group_size; /* indices per group */
    hq_amount_t sum_size; /* sum: capacity */
    hq_amount_t sum_free; /* sum: free amount */
} wk_rstate_t;

struct wk_alloc {
    uint32_t n;              /* resources */
    wk_rstate_t *res;        /* one per worker resource */
    uint32_t n_coupling;     /* coupling weights */
    hq_coupling_t *coupling; /* resource indices refer to res */
};

static void s_add_index(wk_rstate_t *r, char *label, uint32_t group)
{
    r->labels = hq_realloc(r->labels, (r->n_idx + 1) * sizeof *r->labels);
    r->group = hq_realloc(r->group, (r->n_idx + 1) * sizeof *r->group);
    r->free = hq_realloc(r->free, (r->n_idx + 1) * sizeof *r->free);
    r->labels[r->n_idx] = label;
    r->group[r->n_idx] = group;
    r->free[r->n_idx] = HQ_AMOUNT_ONE;
    r->group_size[group]++;
    r->n_idx++;
}

wk_alloc_t *wk_alloc_new(const hq_wres_list_t *res)
{
    wk_alloc_t *a = hq_calloc(1, sizeof *a);
    a->n = res->n;
    a->res = hq_calloc(res->n ? res->n : 1, sizeof *a->res);
    for (uint32_t i = 0; i < res->n; i++) {
        const hq_wres_t *w = &res->res[i];
        wk_rstate_t *r = &a->res[i];
        r->name = hq_strdup(w->name);
        switch (w->kind) {
        case HQ_RES_SUM:
            r->sum_size = r->sum_free = w->sum_size;
            break;
        case HQ_RES_RANGE:
            r->indexed = true;
            r->n_groups = 1;
            r->group_size = hq_calloc(1, sizeof *r->group_size);
            for (uint64_t v = w->range_start; v <= w->range_end && v - w->range_start < 1u << 24;
                 v++)
                s_add_index(r, hq_asprintf("%llu", (unsigned long long)v), 0);
            break;
        case HQ_RES_LIST:
        case HQ_RES_GROUPS:
            r->indexed = true;
            r->n_groups = w->n_groups ? w->n_groups : 1;
            r->group_size = hq_calloc(r->n_groups, sizeof *r->group_size);
            for (uint32_t g = 0; g < w->n_groups; g++)
                for (uint32_t j = 0; j < w->groups[g].n; j++)
                    s_add_index(r, hq_strdup(w->groups[g].labels[j]), g);
            break;
        }
    }
    return a;
}

void wk_alloc_destroy(wk_alloc_t **ap)
{
    if (!ap || !*ap)
        return;
    wk_alloc_t *a = *ap;
    for (uint32_t i = 0; i < a->n; i++) {
        wk_rstate_t *r = &a->res[i];
        for (uint32_t j = 0; j < r->n_idx; j++)
            free(r->labels[j]);
        free(r->labels);
        free(r->group);
        free(r->free);
        free(r->group_size);
        free(r->name);
    }
    free(a->res);
    free(a->coupling);
    free(a);
    *ap = NULL;
}

void wk_alloc_set_coupling(wk_alloc_t *a, const hq_coupling_t *w, uint32_t n)
{
    free(a->coupling);
    a->coupling = NULL;
    a->n_coupling = 0;
    for (uint32_t k = 0; k < n; k++) {
        /* Only weights between groups that exist here can matter. */
        if (w[k].resource1_idx >= a->n || w[k].resource2_idx >= a->n ||
            w[k].resource1_idx == w[k].resource2_idx)
            continue;
        const wk_rstate_t *r1 = &a->res[w[k].resource1_idx], *r2 = &a->res[w[k].resource2_idx];
        if (!r1->indexed || !r2->indexed || w[k].group1_idx >= r1->n_groups ||
            w[k].group2_idx >= r2->n_groups)
            continue;
        a->coupling = hq_realloc(a->coupling, (a->n_coupling + 1) * sizeof *a->coupling);
        a->coupling[a->n_coupling++] = w[k];
    }
}

/* Total coupling weight between group ga of resource ra and group gb of rb. */
static uint32_t s_weight(const wk_alloc_t *a, uint32_t ra, uint32_t ga, uint32_t rb, uint32_t gb)
{
    uint32_t sum = 0;
    for (uint32_t k = 0; k < a->n_coupling; k++) {
        const hq_coupling_t *c = &a->coupling[k];
        if ((c->resource1_idx == ra && c->group1_idx == ga && c->resource2_idx == rb &&
             c->group2_idx == gb) ||
            (c->resource1_idx == rb && c->group1_idx == gb && c->resource2_idx == ra &&
             c->group2_idx == ga))
            sum += c->weight;
    }
    return sum;
}

static wk_rstate_t *s_find(const wk_alloc_t *a, const char *name)
{
    for (uint32_t i = 0; i < a->n; i++)
        if (strcmp(a->res[i].name, name) == 0)
            return &a->res[i];
    return NULL;
}

/* Fully free indices of group g. */
static uint32_t s_group_ff(const wk_rstate_t *r, uint32_t g)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->n_idx; i++)
        if (r->group[i] == g && r->free[i] == HQ_AMOUNT_ONE)
            n++;
    return n;
}

/* Coupling score of each group of entry e's resource (score[ng]): the weight to the
 * groups already picked for the entries before e, plus for each later grouped entry
 * the best weight to one of its groups that could hold it now. */
static void s_coupling_scores(const wk_alloc_t *a, const hq_rvariant_t *v, uint32_t e,
                              uint32_t *const *picks, const int *npick, uint32_t *score)
{
    uint32_t ra = (uint32_t)(s_find(a, v->entries[e].name) - a->res);
    const wk_rstate_t *r = &a->res[ra];
    memset(score, 0, r->n_groups * sizeof *score);
    for (uint32_t o = 0; o < v->n_entries; o++) {
        if (o == e)
            continue;
        const hq_rreq_t *q = &v->entries[o];
        const wk_rstate_t *ro = s_find(a, q->name);
        if (!ro || !ro->indexed || q->all)
            continue;
        uint32_t rb = (uint32_t)(ro - a->res);
        if (o < e) {
            if (!picks[o] || npick[o] <= 0)
                continue;
            for (uint32_t g = 0; g < r->n_groups; g++)
                for (uint32_t gb = 0; gb < ro->n_groups; gb++) {
                    bool used = false;
                    for (int k = 0; k < npick[o] && !used; k++)
                        used = ro->group[picks[o][k]] == gb;
                    if (used)
                        score[g] += s_weight(a, ra, g, rb, gb);
                }
            continue;
        }
        uint32_t need = (uint32_t)((q->amount + HQ_AMOUNT_ONE - 1) / HQ_AMOUNT_ONE), most = 0;
        uint32_t *ff = hq_calloc(ro->n_groups, sizeof *ff);
        for (uint32_t gb = 0; gb < ro->n_groups; gb++) {
            ff[gb] = s_group_ff(ro, gb);
            if (ff[gb] > most)
                most = ff[gb];
        }
        for (uint32_t g = 0; g < r->n_groups; g++) {
            uint32_t best = 0;
            for (uint32_t gb = 0; gb < ro->n_groups; gb++) {
                if (ff[gb] == 0 || (ff[gb] < need && need <= most))
                    continue;
                uint32_t w = s_weight(a, ra, g, rb, gb);
                if (w > best)
                    best = w;
            }
            score[g] += best;
        }
        free(ff);
    }
}

uint32_t wk_alloc_units(const wk_alloc_t *a, const char *name)
{
    const wk_rstate_t *r = s_find(a, name);
    if (!r)
        return 0;
    return r->indexed ? r->n_idx : (uint32_t)(r->sum_size / HQ_AMOUNT_ONE);
}

void wk_ralloc_free(hq_ralloc_t *allocs, uint32_t n)
{
    if (!allocs)
        return;
    for (uint32_t i = 0; i < n; i++) {
        free(allocs[i].name);
        for (uint32_t j = 0; j < allocs[i].n_labels; j++)
            free(allocs[i].labels[j]);
        free(allocs[i].labels);
    }
    free(allocs);
}

/* Tight: the same number of groups as compact would use (freest first), but each
 * chosen group is the least free one that still lets the remaining choices cover the
 * request, so partly used groups are filled and whole groups stay free. Marks the
 * chosen groups; returns how many. need <= sum(ff). */
static uint32_t s_tight_groups(const uint32_t *ff, uint32_t ng, uint32_t need, bool *chosen)
{
    uint32_t *sorted = hq_malloc((ng ? ng : 1) * sizeof *sorted); /* group ids, freest first */
    for (uint32_t g = 0; g < ng; g++)
        sorted[g] = g;
    for (uint32_t i = 1; i < ng; i++)
        for (uint32_t k = i; k > 0 && ff[sorted[k]] > ff[sorted[k - 1]]; k--) {
            uint32_t t = sorted[k];
            sorted[k] = sorted[k - 1];
            sorted[k - 1] = t;
        }
    uint32_t k = 0, acc = 0;
    while (acc < need && k < ng)
        acc += ff[sorted[k++]];
    uint32_t left = need, n = 0;
    for (uint32_t r = k; r > 0 && left > 0; r--) {
        /* room of the r-1 freest groups not chosen yet, besides candidate g */
        int pick = -1;
        for (uint32_t i = 0; i < ng; i++) {
            uint32_t g = sorted[i];
            if (chosen[g] || ff[g] == 0)
                continue;
            uint32_t others = 0, taken = 0;
            for (uint32_t j = 0; j < ng && taken + 1 < r; j++)
                if (sorted[j] != g && !chosen[sorted[j]]) {
                    others += ff[sorted[j]];
                    taken++;
                }
            if (ff[g] + others >= left && (pick < 0 || ff[g] < ff[pick]))
                pick = (int)g;
        }
        if (pick < 0)
            break;
        chosen[pick] = true;
        n++;
        left -= ff[pick] < left ? ff[pick] : left;
    }
    free(sorted);
    return n;
}

/* Chooses `whole` fully free indices (+ one index for the fraction when frac > 0)
 * according to policy; writes positions into pick (whole + 1 slots). Returns the
 * number of picked positions, or -1 when it does not fit now. */
static int s_pick(const wk_rstate_t *r, uint32_t whole, hq_amount_t frac, enum hq_policy policy,
                  const uint32_t *score, uint32_t *pick)
{
    uint32_t ng = r->n_groups;
    uint32_t *ff = hq_calloc(ng, sizeof *ff); /* fully free per group */
    uint32_t total_ff = 0;
    for (uint32_t i = 0; i < r->n_idx; i++)
        if (r->free[i] == HQ_AMOUNT_ONE) {
            ff[r->group[i]]++;
            total_ff++;
        }
    /* The fraction goes to the partially used index with the least room that fits. */
    int frac_idx = -1;
    if (frac > 0) {
        for (uint32_t i = 0; i < r->n_idx; i++)
            if (r->free[i] >= frac && r->free[i] < HQ_AMOUNT_ONE &&
                (frac_idx < 0 || r->free[i] < r->free[frac_idx]))
                frac_idx = (int)i;
    }
    uint32_t need = whole + (frac > 0 && frac_idx < 0 ? 1 : 0);
    if (need > total_ff) {
        free(ff);
        return -1;
    }
    bool *chosen_group = hq_calloc(ng, sizeof *chosen_group);
    uint32_t n_chosen_groups = 0;
    int n = 0;
    if (need > 0) {
        if (policy == HQ_POLICY_SCATTER) {
            /* Round robin over the groups, one index at a time. */
            uint32_t *next = hq_calloc(ng, sizeof *next);
            uint32_t got = 0;
            while (got < need) {
                for (uint32_t g = 0; g < ng && got < need; g++) {
                    for (uint32_t i = next[g]; i < r->n_idx; i++) {
                        next[g] = i + 1;
                        if (r->group[i] == g && r->free[i] == HQ_AMOUNT_ONE) {
                            pick[n++] = i;
                            got++;
                            break;
                        }
                    }
                }
            }
            free(next);
        } else {
            /* Compact/tight: fewest groups. If one group can hold it, the fullest
             * such group (best fit); else the largest groups first. */
            uint32_t remaining = need;
            int best = -1;
            /* With coupling, the best coupled group that holds it wins. */
            for (uint32_t g = 0; g < ng; g++) {
                if (ff[g] < need)
                    continue;
                if (best < 0)
                    best = (int)g;
                else if (score && score[g] != score[best])
                    best = score[g] > score[best] ? (int)g : best;
                else if (ff[g] < ff[best])
                    best = (int)g;
            }
            if (best >= 0) {
                chosen_group[best] = true;
                n_chosen_groups = 1;
            } else if (policy == HQ_POLICY_TIGHT || policy == HQ_POLICY_FORCE_TIGHT) {
                n_chosen_groups = s_tight_groups(ff, ng, need, chosen_group);
            } else {
                while (remaining > 0) {
                    int big = -1;
                    for (uint32_t g = 0; g < ng; g++)
                        if (!chosen_group[g] && ff[g] > 0 &&
                            (big < 0 || ff[g] > ff[big] ||
                             (ff[g] == ff[big] && score && score[g] > score[big])))
                            big = (int)g;
                    chosen_group[big] = true; /* exists: need <= total_ff */
                    n_chosen_groups++;
                    remaining -= ff[big] < remaining ? ff[big] : remaining;
                }
            }
            if (policy == HQ_POLICY_FORCE_COMPACT || policy == HQ_POLICY_FORCE_TIGHT) {
                /* The fewest groups the request could ever use on this worker. */
                uint32_t *sizes = hq_malloc(ng * sizeof *sizes);
                memcpy(sizes, r->group_size, ng * sizeof *sizes);
                uint32_t min_groups = 0, acc = 0;
                while (acc < need && min_groups < ng) {
                    uint32_t bi = 0;
                    for (uint32_t g = 1; g < ng; g++)
                        if (sizes[g] > sizes[bi])
                            bi = g;
                    acc += sizes[bi];
                    sizes[bi] = 0;
                    min_groups++;
                }
                free(sizes);
                if (n_chosen_groups > min_groups) {
                    free(ff);
                    free(chosen_group);
                    return -1;
                }
            }
            /* Take indices in label order from the chosen groups: compact balances
             * them (one index per chosen group in turn: 6 over two free groups of 4
             * is 3 + 3), tight takes the least free first (whole groups are used up
             * and the remainder comes from the freest chosen group). */
            bool tight = policy == HQ_POLICY_TIGHT || policy == HQ_POLICY_FORCE_TIGHT;
            uint32_t got = 0;
            if (!tight && n_chosen_groups > 1) {
                uint32_t *quota = hq_calloc(ng, sizeof *quota);
                for (uint32_t left = need; left > 0;)
                    for (uint32_t g = 0; g < ng && left > 0; g++)
                        if (chosen_group[g] && quota[g] < ff[g]) {
                            quota[g]++;
                            left--;
                        }
                for (uint32_t i = 0; i < r->n_idx && got < need; i++) {
                    uint32_t g = r->group[i];
                    if (r->free[i] == HQ_AMOUNT_ONE && quota[g] > 0) {
                        quota[g]--;
                        pick[n++] = i;
                        got++;
                    }
                }
                free(quota);
            }
            while (got < need) {
                int g = -1;
                for (uint32_t k = 0; k < ng; k++)
                    if (chosen_group[k] && ff[k] > 0 &&
                        (g < 0 || (tight ? ff[k] < ff[g] : ff[k] > ff[g])))
                        g = (int)k;
                if (g < 0)
                    break;
                for (uint32_t i = 0; i < r->n_idx && got < need && ff[g] > 0; i++) {
                    if (r->group[i] == (uint32_t)g && r->free[i] == HQ_AMOUNT_ONE) {
                        pick[n++] = i;
                        got++;
                    }
                }
                ff[g] = 0;
            }
        }
    }
    if (frac > 0 && frac_idx >= 0)
        pick[n++] = (uint32_t)frac_idx;
    free(ff);
    free(chosen_group);
    return n;
}

static bool s_strict_policy(enum hq_policy p)
{
    return p == HQ_POLICY_FORCE_COMPACT || p == HQ_POLICY_FORCE_TIGHT;
}

/* Strict requests and coupling: when entry e or o is strict (compact!, tight!) and
 * their resources are coupled at all, every group e got must be coupled (weight > 0)
 * to a group o got, and the reverse; otherwise the task waits for such groups. */
static bool s_coupled_ok(const wk_alloc_t *a, const hq_rvariant_t *v, uint32_t *const *picks,
                         const int *npick)
{
    for (uint32_t e = 0; e < v->n_entries; e++) {
        for (uint32_t o = 0; o < v->n_entries; o++) {
            const hq_rreq_t *qe = &v->entries[e], *qo = &v->entries[o];
            if (e == o || !picks[e] || !picks[o] || qe->all || qo->all ||
                !(s_strict_policy(qe->policy) || s_strict_policy(qo->policy)))
                continue;
            const wk_rstate_t *re = s_find(a, qe->name), *ro = s_find(a, qo->name);
            uint32_t ie = (uint32_t)(re - a->res), io = (uint32_t)(ro - a->res);
            bool coupled = false;
            for (uint32_t k = 0; k < a->n_coupling && !coupled; k++)
                coupled =
                    (a->coupling[k].resource1_idx == ie && a->coupling[k].resource2_idx == io) ||
                    (a->coupling[k].resource1_idx == io && a->coupling[k].resource2_idx == ie);
            if (!coupled)
                continue;
            for (int i = 0; i < npick[e]; i++) {
                uint32_t ge = re->group[picks[e][i]];
                bool any = false;
                for (int j = 0; j < npick[o] && !any; j++)
                    any = s_weight(a, ie, ge, io, ro->group[picks[o][j]]) > 0;
                if (!any)
                    return false;
            }
        }
    }
    return true;
}

int wk_alloc_try(wk_alloc_t *a, const hq_rvariant_t *v, hq_ralloc_t **out)
{
    uint32_t n = v->n_entries;
    hq_ralloc_t *allocs = hq_calloc(n ? n : 1, sizeof *allocs);
    /* Check everything first so that a failed try changes nothing; entries name
     * distinct resources (the request parser refuses duplicates). */
    uint32_t **picks = hq_calloc(n ? n : 1, sizeof *picks);
    int *npick = hq_calloc(n ? n : 1, sizeof *npick);
    int rc = 0;
    for (uint32_t e = 0; e < n && rc == 0; e++) {
        const hq_rreq_t *q = &v->entries[e];
        wk_rstate_t *r = s_find(a, q->name);
        if (!r) {
            rc = -1;
            break;
        }
        if (!r->indexed) {
            hq_amount_t want = q->all ? r->sum_size : q->amount;
            if (want > r->sum_size || want <= 0)
                rc = -1;
            else if (want > r->sum_free)
                rc = 1;
            continue;
        }
        if (q->all) {
            picks[e] = hq_malloc((r->n_idx + 1) * sizeof **picks);
            for (uint32_t i = 0; i < r->n_idx; i++) {
                if (r->free[i] != HQ_AMOUNT_ONE)
                    rc = 1;
                picks[e][i] = i;
            }
            npick[e] = (int)r->n_idx;
            continue;
        }
        if (q->amount <= 0 || q->amount > (hq_amount_t)r->n_idx * HQ_AMOUNT_ONE) {
            rc = -1;
            break;
        }
        uint32_t whole = (uint32_t)(q->amount / HQ_AMOUNT_ONE);
        hq_amount_t frac = q->amount % HQ_AMOUNT_ONE;
        picks[e] = hq_malloc((whole + 2) * sizeof **picks);
        uint32_t *score = NULL;
        if (a->n_coupling && r->n_groups > 1) {
            score = hq_malloc(r->n_groups * sizeof *score);
            s_coupling_scores(a, v, e, picks, npick, score);
        }
        npick[e] = s_pick(r, whole, frac, q->policy, score, picks[e]);
        free(score);
        if (npick[e] < 0)
            rc = 1;
    }
    if (rc == 0 && a->n_coupling > 0 && !s_coupled_ok(a, v, picks, npick))
        rc = 1;
    if (rc == 0) {
        for (uint32_t e = 0; e < n; e++) {
            const hq_rreq_t *q = &v->entries[e];
            wk_rstate_t *r = s_find(a, q->name);
            hq_ralloc_t *al = &allocs[e];
            al->name = hq_strdup(q->name);
            if (!r->indexed) {
                al->amount = q->all ? r->sum_size : q->amount;
                r->sum_free -= al->amount;
                continue;
            }
            al->amount = q->all ? (hq_amount_t)r->n_idx * HQ_AMOUNT_ONE : q->amount;
            al->n_labels = (uint32_t)npick[e];
            al->labels = hq_calloc(al->n_labels ? al->n_labels : 1, sizeof *al->labels);
            hq_amount_t left = al->amount;
            for (int k = 0; k < npick[e]; k++) {
                uint32_t i = picks[e][k];
                hq_amount_t take = left >= HQ_AMOUNT_ONE ? HQ_AMOUNT_ONE : left;
                r->free[i] -= take;
                left -= take;
                al->labels[k] = hq_strdup(r->labels[i]);
            }
        }
    }
    for (uint32_t e = 0; e < n; e++)
        free(picks[e]);
    free(picks);
    free(npick);
    if (rc != 0) {
        free(allocs);
        return rc;
    }
    *out = allocs;
    return 0;
}

void wk_alloc_release(wk_alloc_t *a, const hq_ralloc_t *allocs, uint32_t n)
{
    for (uint32_t e = 0; e < n; e++) {
        const hq_ralloc_t *al = &allocs[e];
        wk_rstate_t *r = s_find(a, al->name);
        if (!r)
            continue;
        if (!r->indexed) {
            r->sum_free += al->amount;
            if (r->sum_free > r->sum_size)
                r->sum_free = r->sum_size;
            continue;
        }
        hq_amount_t left = al->amount;
        for (uint32_t k = 0; k < al->n_labels; k++) {
            hq_amount_t give = left >= HQ_AMOUNT_ONE ? HQ_AMOUNT_ONE : left;
            left -= give;
            for (uint32_t i = 0; i < r->n_idx; i++) {
                if (strcmp(r->labels[i], al->labels[k]) == 0) {
                    r->free[i] += give;
                    if (r->free[i] > HQ_AMOUNT_ONE)
                        r->free[i] = HQ_AMOUNT_ONE;
                    break;
                }
            }
        }
    }
}
