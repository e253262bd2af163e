/* The worker's local allocator: concrete indices for task resource requests. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "wk.h"

static wk_alloc_t *s_alloc(const char *cpus, const char *other)
{
    hq_wres_list_t l = {0};
    hq_wres_t r;
    hq_err_t err;
    cr_assert_eq(hq_wres_parse_cpus(cpus, &r, &err), 0, "%s", err.text);
    wk_wres_list_push(&l, &r);
    if (other) {
        cr_assert_eq(hq_wres_parse_named(other, &r, &err), 0, "%s", err.text);
        wk_wres_list_push(&l, &r);
    }
    wk_alloc_t *a = wk_alloc_new(&l);
    hq_wres_list_clear(&l);
    return a;
}

static hq_rvariant_t s_req(const char *name, hq_amount_t amount, enum hq_policy policy)
{
    hq_rvariant_t v = {0};
    v.n_entries = 1;
    v.entries = calloc(1, sizeof *v.entries);
    v.entries[0].name = strdup(name);
    v.entries[0].amount = amount;
    v.entries[0].policy = policy;
    return v;
}

static bool s_in_group(const hq_ralloc_t *a, const char *const *group, size_t n)
{
    for (uint32_t i = 0; i < a->n_labels; i++) {
        bool found = false;
        for (size_t k = 0; k < n; k++)
            found = found || strcmp(a->labels[i], group[k]) == 0;
        if (!found)
            return false;
    }
    return true;
}

Test(worker_alloc, never_gives_an_index_twice)
{
    wk_alloc_t *a = s_alloc("4", NULL);
    hq_rvariant_t v = s_req("cpus", HQ_AMOUNT_ONE, HQ_POLICY_COMPACT);
    hq_ralloc_t *got[4];
    bool seen[4] = {false};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(wk_alloc_try(a, &v, &got[i]), 0);
        cr_assert_eq(got[i][0].n_labels, 1);
        int idx = atoi(got[i][0].labels[0]);
        cr_assert(idx >= 0 && idx < 4);
        cr_assert_not(seen[idx], "index %d given twice", idx);
        seen[idx] = true;
    }
    hq_ralloc_t *none = NULL;
    cr_assert_eq(wk_alloc_try(a, &v, &none), 1);
    wk_alloc_release(a, got[2], 1);
    hq_ralloc_t *again;
    cr_assert_eq(wk_alloc_try(a, &v, &again), 0);
    cr_assert_str_eq(again[0].labels[0], got[2][0].labels[0]);
    for (int i = 0; i < 4; i++)
        wk_ralloc_free(got[i], 1);
    wk_ralloc_free(again, 1);
    hq_rvariant_clear(&v);
    wk_alloc_destroy(&a);
}

Test(worker_alloc, compact_uses_one_group_when_possible)
{
    wk_alloc_t *a = s_alloc("[[0,1,2],[3,4,5]]", NULL);
    hq_rvariant_t one = s_req("cpus", HQ_AMOUNT_ONE, HQ_POLICY_COMPACT);
    hq_rvariant_t three = s_req("cpus", 3 * HQ_AMOUNT_ONE, HQ_POLICY_COMPACT);
    hq_ralloc_t *a1, *a3;
    cr_assert_eq(wk_alloc_try(a, &one, &a1), 0);
    cr_assert_eq(wk_alloc_try(a, &three, &a3), 0);
    cr_assert_eq(a3[0].n_labels, 3);
    const char *g0[] = {"0", "1", "2"}, *g1[] = {"3", "4", "5"};
    bool one_group = s_in_group(&a3[0], g0, 3) || s_in_group(&a3[0], g1, 3);
    cr_assert(one_group, "3 cpus spread over two groups: %s,%s,%s", a3[0].labels[0],
              a3[0].labels[1], a3[0].labels[2]);
    cr_assert_not(s_in_group(&a3[0], g0, 3)); /* group 0 has only 2 free */
    wk_ralloc_free(a1, 1);
    wk_ralloc_free(a3, 1);
    hq_rvariant_clear(&one);
    hq_rvariant_clear(&three);
    wk_alloc_destroy(&a);
}

Test(worker_alloc, force_compact_waits_instead_of_splitting)
{
    wk_alloc_t *a = s_alloc("[[0,1],[2,3]]", NULL);
    hq_rvariant_t one = s_req("cpus", HQ_AMOUNT_ONE, HQ_POLICY_COMPACT);
    hq_rvariant_t two = s_req("cpus", 2 * HQ_AMOUNT_ONE, HQ_POLICY_FORCE_COMPACT);
    hq_rvariant_t two_c = s_req("cpus", 2 * HQ_AMOUNT_ONE, HQ_POLICY_COMPACT);
    hq_ralloc_t *x, *y, *z, *w, *f;
    cr_assert_eq(wk_alloc_try(a, &one, &x), 0); /* 0 */
    cr_assert_eq(wk_alloc_try(a, &one, &y), 0); /* 1: best fit keeps group 1 whole */
    cr_assert_str_eq(y[0].labels[0], "1");
    cr_assert_eq(wk_alloc_try(a, &one, &z), 0);   /* 2 */
    wk_alloc_release(a, y, 1);                    /* free: 1 and 3 */
    cr_assert_eq(wk_alloc_try(a, &two, &w), 1);   /* would need two groups */
    cr_assert_eq(wk_alloc_try(a, &two_c, &f), 0); /* plain compact may split */
    cr_assert_eq(f[0].n_labels, 2);
    wk_ralloc_free(x, 1);
    wk_ralloc_free(y, 1);
    wk_ralloc_free(z, 1);
    wk_ralloc_free(f, 1);
    hq_rvariant_clear(&one);
    hq_rvariant_clear(&two);
    hq_rvariant_clear(&two_c);
    wk_alloc_destroy(&a);
}

Test(worker_alloc, scatter_spreads_over_groups)
{
    wk_alloc_t *a = s_alloc("[[0,1],[2,3]]", NULL);
    hq_rvariant_t two = s_req("cpus", 2 * HQ_AMOUNT_ONE, HQ_POLICY_SCATTER);
    hq_ralloc_t *x;
    cr_assert_eq(wk_alloc_try(a, &two, &x), 0);
    const char *g0[] = {"0", "1"};
    cr_assert_not(s_in_group(&x[0], g0, 2));
    cr_assert(strcmp(x[0].labels[0], "0") == 0 || strcmp(x[0].labels[0], "1") == 0);
    wk_ralloc_free(x, 1);
    hq_rvariant_clear(&two);
    wk_alloc_destroy(&a);
}

Test(worker_alloc, fractions_share_an_index)
{
    wk_alloc_t *a = s_alloc("1", NULL);
    hq_rvariant_t half = s_req("cpus", HQ_AMOUNT_ONE / 2, HQ_POLICY_COMPACT);
    hq_ralloc_t *x, *y, *z;
    cr_assert_eq(wk_alloc_try(a, &half, &x), 0);
    cr_assert_eq(wk_alloc_try(a, &half, &y), 0);
    cr_assert_str_eq(x[0].labels[0], "0");
    cr_assert_str_eq(y[0].labels[0], "0");
    cr_assert_eq(wk_alloc_try(a, &half, &z), 1);
    wk_alloc_release(a, x, 1);
    cr_assert_eq(wk_alloc_try(a, &half, &z), 0);
    wk_ralloc_free(x, 1);
    wk_ralloc_free(y, 1);
    wk_ralloc_free(z, 1);
    hq_rvariant_clear(&half);
    wk_alloc_destroy(&a);
}

Test(worker_alloc, sum_resources_are_amounts)
{
    wk_alloc_t *a = s_alloc("1", "mem=sum(100)");
    hq_rvariant_t m = s_req("mem", 60 * HQ_AMOUNT_ONE, HQ_POLICY_COMPACT);
    hq_ralloc_t *x, *y;
    cr_assert_eq(wk_alloc_try(a, &m, &x), 0);
    cr_assert_eq(x[0].n_labels, 0);
    cr_assert_eq(x[0].amount, 60 * HQ_AMOUNT_ONE);
    cr_assert_eq(wk_alloc_try(a, &m, &y), 1);
    wk_alloc_release(a, x, 1);
    cr_assert_eq(wk_alloc_try(a, &m, &y), 0);
    wk_ralloc_free(x, 1);
    wk_ralloc_free(y, 1);
    hq_rvariant_clear(&m);
    wk_alloc_destroy(&a);
}

Test(worker_alloc, unknown_or_too_large_requests_never_fit)
{
    wk_alloc_t *a = s_alloc("2", NULL);
    hq_rvariant_t g = s_req("gpus", HQ_AMOUNT_ONE, HQ_POLICY_COMPACT);
    hq_rvariant_t big = s_req("cpus", 3 * HQ_AMOUNT_ONE, HQ_POLICY_COMPACT);
    hq_ralloc_t *x;
    cr_assert_eq(wk_alloc_try(a, &g, &x), -1);
    cr_assert_eq(wk_alloc_try(a, &big, &x), -1);
    hq_rvariant_clear(&g);
    hq_rvariant_clear(&big);
    wk_alloc_destroy(&a);
}

Test(worker_alloc, all_takes_every_index)
{
    wk_alloc_t *a = s_alloc("3", NULL);
    hq_rvariant_t all = s_req("cpus", 0, HQ_POLICY_COMPACT);
    all.entries[0].all = true;
    hq_ralloc_t *x, *y;
    cr_assert_eq(wk_alloc_try(a, &all, &x), 0);
    cr_assert_eq(x[0].n_labels, 3);
    cr_assert_eq(x[0].amount, 3 * HQ_AMOUNT_ONE);
    cr_assert_eq(wk_alloc_try(a, &all, &y), 1);
    wk_ralloc_free(x, 1);
    hq_rvariant_clear(&all);
    wk_alloc_destroy(&a);
}

static char *s_labels(const hq_ralloc_t *a)
{
    static char buf[256];
    buf[0] = '\0';
    for (uint32_t i = 0; i < a->n_labels; i++) {
        strcat(buf, i ? "," : "");
        strcat(buf, a->labels[i]);
    }
    return buf;
}

Test(worker_alloc, tight_fills_partly_used_groups_and_keeps_whole_groups_free)
{
    /* groups of 4; 1 cpu taken in group 0 leaves 3 + 4 + 4 free */
    hq_rvariant_t one = s_req("cpus", HQ_AMOUNT_ONE, HQ_POLICY_COMPACT);
    hq_rvariant_t six_c = s_req("cpus", 6 * HQ_AMOUNT_ONE, HQ_POLICY_COMPACT);
    hq_rvariant_t six_t = s_req("cpus", 6 * HQ_AMOUNT_ONE, HQ_POLICY_TIGHT);
    hq_ralloc_t *x, *c, *t;
    wk_alloc_t *a = s_alloc("[[0,1,2,3],[4,5,6,7],[8,9,10,11]]", NULL);
    cr_assert_eq(wk_alloc_try(a, &one, &x), 0);
    cr_assert_str_eq(s_labels(&x[0]), "0");
    /* compact: the freest groups (1 and 2), balanced */
    cr_assert_eq(wk_alloc_try(a, &six_c, &c), 0);
    cr_assert_str_eq(s_labels(&c[0]), "4,5,6,8,9,10");
    wk_alloc_release(a, c, 1);
    /* tight: fills group 0 (3 free), the rest from group 1; group 2 stays whole */
    cr_assert_eq(wk_alloc_try(a, &six_t, &t), 0);
    cr_assert_str_eq(s_labels(&t[0]), "1,2,3,4,5,6");
    wk_ralloc_free(x, 1);
    wk_ralloc_free(c, 1);
    wk_ralloc_free(t, 1);
    hq_rvariant_clear(&one);
    hq_rvariant_clear(&six_c);
    hq_rvariant_clear(&six_t);
    wk_alloc_destroy(&a);
}

/* Six cpus over three free groups of four, by policy. */
static const char *s_six_of_three_groups(enum hq_policy policy)
{
    hq_rvariant_t six = s_req("cpus", 6 * HQ_AMOUNT_ONE, policy);
    hq_ralloc_t *x;
    wk_alloc_t *a = s_alloc("[[0,1,2,3],[4,5,6,7],[8,9,10,11]]", NULL);
    cr_assert_eq(wk_alloc_try(a, &six, &x), 0);
    const char *labels = s_labels(&x[0]);
    wk_ralloc_free(x, 1);
    hq_rvariant_clear(&six);
    wk_alloc_destroy(&a);
    return labels;
}

Test(worker_alloc, compact_balances_tight_fills_scatter_spreads_six_over_three_groups)
{
    cr_assert_str_eq(s_six_of_three_groups(HQ_POLICY_COMPACT), "0,1,2,4,5,6"); /* [3,3] */
    cr_assert_str_eq(s_six_of_three_groups(HQ_POLICY_TIGHT), "0,1,2,3,4,5");   /* [4,2] */
    cr_assert_str_eq(s_six_of_three_groups(HQ_POLICY_SCATTER), "0,4,8,1,5,9"); /* [2,2,2] */
}

Test(worker_alloc, force_tight_waits_for_the_fewest_groups)
{
    hq_rvariant_t two = s_req("cpus", 2 * HQ_AMOUNT_ONE, HQ_POLICY_SCATTER);
    hq_rvariant_t four = s_req("cpus", 4 * HQ_AMOUNT_ONE, HQ_POLICY_FORCE_TIGHT);
    hq_rvariant_t four_t = s_req("cpus", 4 * HQ_AMOUNT_ONE, HQ_POLICY_TIGHT);
    hq_ralloc_t *x, *z, *t;
    wk_alloc_t *a = s_alloc("[[0,1,2,3],[4,5,6,7]]", NULL);
    cr_assert_eq(wk_alloc_try(a, &two, &x), 0);
    cr_assert_str_eq(s_labels(&x[0]), "0,4");
    /* 3 + 3 free: 4 cpus would need two groups where one is possible */
    cr_assert_eq(wk_alloc_try(a, &four, &z), 1);
    cr_assert_eq(wk_alloc_try(a, &four_t, &t), 0);
    cr_assert_str_eq(s_labels(&t[0]), "1,2,3,5");
    wk_alloc_release(a, x, 1);
    wk_alloc_release(a, t, 1);
    cr_assert_eq(wk_alloc_try(a, &four, &z), 0);
    cr_assert_str_eq(s_labels(&z[0]), "0,1,2,3");
    wk_ralloc_free(x, 1);
    wk_ralloc_free(t, 1);
    wk_ralloc_free(z, 1);
    hq_rvariant_clear(&two);
    hq_rvariant_clear(&four);
    hq_rvariant_clear(&four_t);
    wk_alloc_destroy(&a);
}

/* ---- coupling ---- */

/* cpus 2x4 (groups [0..3], [4..7]) and gpus [[0],[1]] coupled by spec. */
static wk_alloc_t *s_coupled(const char *spec)
{
    hq_wres_list_t l = {0};
    hq_wres_t r;
    hq_err_t err;
    cr_assert_eq(hq_wres_parse_cpus("2x4", &r, &err), 0, "%s", err.text);
    wk_wres_list_push(&l, &r);
    cr_assert_eq(hq_wres_parse_named("gpus=[[0],[1]]", &r, &err), 0, "%s", err.text);
    wk_wres_list_push(&l, &r);
    wk_wres_list_sort(&l);
    wk_alloc_t *a = wk_alloc_new(&l);
    hq_coupling_t *c;
    uint32_t n;
    cr_assert_eq(hq_coupling_parse(spec, &l, &c, &n, &err), 0, "%s", err.text);
    wk_alloc_set_coupling(a, c, n);
    free(c);
    hq_wres_list_clear(&l);
    return a;
}

/* cpus (policy compact) + gpus. */
static hq_rvariant_t s_req2(uint32_t cpus, uint32_t gpus)
{
    hq_rvariant_t v = {0};
    v.n_entries = 2;
    v.entries = calloc(2, sizeof *v.entries);
    v.entries[0].name = strdup("cpus");
    v.entries[0].amount = cpus * HQ_AMOUNT_ONE;
    v.entries[1].name = strdup("gpus");
    v.entries[1].amount = gpus * HQ_AMOUNT_ONE;
    return v;
}

static const char *const s_numa0[] = {"0", "1", "2", "3"};
static const char *const s_numa1[] = {"4", "5", "6", "7"};

Test(worker_alloc, coupled_cpus_and_gpu_come_from_coupled_groups)
{
    wk_alloc_t *a = s_coupled("cpus[0]:gpus[0],cpus[1]:gpus[1]");
    hq_rvariant_t v = s_req2(2, 1);
    hq_ralloc_t *t1, *t2, *t3;
    cr_assert_eq(wk_alloc_try(a, &v, &t1), 0);
    cr_assert_str_eq(t1[1].labels[0], "0");
    cr_assert(s_in_group(&t1[0], s_numa0, 4));
    /* gpu 0 is busy now: the next task takes gpu 1 and the cpus of NUMA node 1,
     * although best fit alone would fill node 0. */
    cr_assert_eq(wk_alloc_try(a, &v, &t2), 0);
    cr_assert_str_eq(t2[1].labels[0], "1");
    cr_assert_eq(t2[0].n_labels, 2);
    cr_assert(s_in_group(&t2[0], s_numa1, 4), "got cpus %s,%s", t2[0].labels[0], t2[0].labels[1]);
    wk_alloc_release(a, t1, 2);
    cr_assert_eq(wk_alloc_try(a, &v, &t3), 0);
    cr_assert_str_eq(t3[1].labels[0], "0");
    cr_assert(s_in_group(&t3[0], s_numa0, 4));
    wk_ralloc_free(t1, 2);
    wk_ralloc_free(t2, 2);
    wk_ralloc_free(t3, 2);
    hq_rvariant_clear(&v);
    wk_alloc_destroy(&a);
}

Test(worker_alloc, crossed_coupling_is_followed_not_the_group_order)
{
    wk_alloc_t *a = s_coupled("gpus[1]:cpus[0],cpus[1]:gpus[0]=300");
    hq_rvariant_t v = s_req2(2, 1);
    hq_ralloc_t *t1, *t2;
    cr_assert_eq(wk_alloc_try(a, &v, &t1), 0);
    /* Both pairs are free: the heavier one (cpus[1]:gpus[0]) wins. */
    cr_assert_str_eq(t1[1].labels[0], "0");
    cr_assert(s_in_group(&t1[0], s_numa1, 4));
    cr_assert_eq(wk_alloc_try(a, &v, &t2), 0);
    cr_assert_str_eq(t2[1].labels[0], "1");
    cr_assert(s_in_group(&t2[0], s_numa0, 4));
    wk_ralloc_free(t1, 2);
    wk_ralloc_free(t2, 2);
    hq_rvariant_clear(&v);
    wk_alloc_destroy(&a);
}

Test(worker_alloc, coupling_is_a_preference_not_a_requirement)
{
    wk_alloc_t *a = s_coupled("cpus[0]:gpus[0],cpus[1]:gpus[1]");
    hq_rvariant_t four = s_req("cpus", 4 * HQ_AMOUNT_ONE, HQ_POLICY_COMPACT);
    hq_rvariant_t one = s_req2(1, 1), two = s_req2(2, 1);
    hq_ralloc_t *t4, *t1, *t2;
    cr_assert_eq(wk_alloc_try(a, &four, &t4), 0);
    cr_assert(s_in_group(&t4[0], s_numa0, 4));
    /* Node 0 is full: 1 cpu + 1 gpu goes to node 1 with its gpu 1. */
    cr_assert_eq(wk_alloc_try(a, &one, &t1), 0);
    cr_assert(s_in_group(&t1[0], s_numa1, 4));
    cr_assert_str_eq(t1[1].labels[0], "1");
    /* Only node 1 cpus and gpu 0 are left: the task still runs, uncoupled. */
    cr_assert_eq(wk_alloc_try(a, &two, &t2), 0);
    cr_assert(s_in_group(&t2[0], s_numa1, 4));
    cr_assert_str_eq(t2[1].labels[0], "0");
    hq_ralloc_t *none = NULL;
    cr_assert_eq(wk_alloc_try(a, &one, &none), 1);
    wk_ralloc_free(t4, 1);
    wk_ralloc_free(t1, 2);
    wk_ralloc_free(t2, 2);
    hq_rvariant_clear(&four);
    hq_rvariant_clear(&one);
    hq_rvariant_clear(&two);
    wk_alloc_destroy(&a);
}

Test(worker_alloc, coupling_keeps_compact_to_the_fewest_groups)
{
    wk_alloc_t *a = s_coupled("cpus[0]:gpus[0],cpus[1]:gpus[1]");
    hq_rvariant_t v = s_req2(4, 1);
    hq_ralloc_t *t1, *t2;
    cr_assert_eq(wk_alloc_try(a, &v, &t1), 0);
    cr_assert(s_in_group(&t1[0], s_numa0, 4));
    cr_assert_str_eq(t1[1].labels[0], "0");
    cr_assert_eq(wk_alloc_try(a, &v, &t2), 0);
    cr_assert(s_in_group(&t2[0], s_numa1, 4));
    cr_assert_str_eq(t2[1].labels[0], "1");
    wk_ralloc_free(t1, 2);
    wk_ralloc_free(t2, 2);
    hq_rvariant_clear(&v);
    wk_alloc_destroy(&a);
}

Test(worker_alloc, strict_request_waits_for_coupled_groups)
{
    wk_alloc_t *a = s_coupled("cpus[0]:gpus[0],cpus[1]:gpus[1]");
    hq_rvariant_t cpus4 = s_req("cpus", 4 * HQ_AMOUNT_ONE, HQ_POLICY_COMPACT);
    hq_rvariant_t gpu = s_req("gpus", HQ_AMOUNT_ONE, HQ_POLICY_COMPACT);
    hq_rvariant_t strict = s_req2(2, 1), loose = s_req2(2, 1);
    strict.entries[0].policy = HQ_POLICY_FORCE_COMPACT;
    strict.entries[1].policy = HQ_POLICY_FORCE_COMPACT;
    hq_ralloc_t *c, *g0, *g1, *s, *l;
    /* one NUMA node's cpus busy, and the gpu coupled to the other node: the free
     * cpus and the free gpu are not coupled */
    cr_assert_eq(wk_alloc_try(a, &cpus4, &c), 0);
    cr_assert_eq(wk_alloc_try(a, &gpu, &g0), 0);
    cr_assert_eq(wk_alloc_try(a, &gpu, &g1), 0);
    bool node0_busy = s_in_group(&c[0], s_numa0, 4);
    hq_ralloc_t *keep = strcmp(g0[0].labels[0], node0_busy ? "1" : "0") == 0 ? g0 : g1;
    hq_ralloc_t *drop = keep == g0 ? g1 : g0;
    wk_alloc_release(a, drop, 1);
    cr_assert_eq(wk_alloc_try(a, &strict, &s), 1);
    cr_assert_eq(wk_alloc_try(a, &loose, &l), 0);
    wk_alloc_release(a, l, 2);
    /* once the gpu coupled to the free cpus is free, the strict one runs */
    wk_alloc_release(a, keep, 1);
    cr_assert_eq(wk_alloc_try(a, &strict, &s), 0);
    cr_assert_str_eq(s[1].labels[0], node0_busy ? "1" : "0");
    wk_ralloc_free(c, 1);
    wk_ralloc_free(g0, 1);
    wk_ralloc_free(g1, 1);
    wk_ralloc_free(s, 2);
    wk_ralloc_free(l, 2);
    hq_rvariant_clear(&cpus4);
    hq_rvariant_clear(&gpu);
    hq_rvariant_clear(&strict);
    hq_rvariant_clear(&loose);
    wk_alloc_destroy(&a);
}
