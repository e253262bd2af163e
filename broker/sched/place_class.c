/* Request classes: hq_place_rq_add compiles a class's variants into needs by resource
 * index (a resource named twice counts once, amounts added) and interns its shape,
 * so classes with identical variants share one "blocked this round" memo and many
 * classes of the same request cost one failed search per round, not one each. */
#include "place_priv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

/* Hash of the compiled variants (FNV-1a over every field that matters). */
static uint64_t s_class_hash(const class_t *c)
{
    uint64_t h = 1469598103934665603ULL;
#define MIX(x) (h = (h ^ (uint64_t)(x)) * 1099511628211ULL)
    MIX(c->n_variants);
    for (uint32_t v = 0; v < c->n_variants; v++) {
        const variant_t *va = &c->variants[v];
        MIX(va->n_nodes);
        MIX(va->min_time_ns);
        MIX(va->n);
        for (uint32_t i = 0; i < va->n; i++) {
            MIX(va->needs[i].res);
            MIX(va->needs[i].all);
            MIX(va->needs[i].amount);
            MIX(va->needs[i].policy);
        }
    }
#undef MIX
    return h;
}

static bool s_class_same(const class_t *a, const class_t *b)
{
    if (a->hash != b->hash || a->n_variants != b->n_variants)
        return false;
    for (uint32_t v = 0; v < a->n_variants; v++) {
        const variant_t *x = &a->variants[v], *y = &b->variants[v];
        if (x->n_nodes != y->n_nodes || x->min_time_ns != y->min_time_ns || x->n != y->n)
            return false;
        for (uint32_t i = 0; i < x->n; i++)
            if (x->needs[i].res != y->needs[i].res || x->needs[i].all != y->needs[i].all ||
                x->needs[i].amount != y->needs[i].amount ||
                x->needs[i].policy != y->needs[i].policy)
                return false;
    }
    return true;
}

static void s_shape_insert(class_t **table, uint32_t cap, class_t *c)
{
    uint32_t i = (uint32_t)c->hash & (cap - 1);
    while (table[i])
        i = (i + 1) & (cap - 1);
    table[i] = c;
}

static void s_shape_intern(hq_place_t *p, class_t *c)
{
    c->hash = s_class_hash(c);
    if ((p->n_shapes + 1) * 2 > p->shapes_cap) {
        uint32_t cap = p->shapes_cap ? p->shapes_cap * 2 : 64;
        class_t **t = hq_calloc(cap, sizeof *t);
        for (uint32_t i = 0; i < p->shapes_cap; i++)
            if (p->shapes[i])
                s_shape_insert(t, cap, p->shapes[i]);
        free(p->shapes);
        p->shapes = t;
        p->shapes_cap = cap;
    }
    for (uint32_t i = (uint32_t)c->hash & (p->shapes_cap - 1); p->shapes[i];
         i = (i + 1) & (p->shapes_cap - 1)) {
        if (s_class_same(p->shapes[i], c)) {
            c->shape = p->shapes[i];
            return;
        }
    }
    c->shape = c;
    s_shape_insert(p->shapes, p->shapes_cap, c);
    p->n_shapes++;
}

int hq_place_rq_add(hq_place_t *p, const hq_sched_rq_t *rq)
{
    if (!rq || rq->n_variants == 0 || !rq->variants || hq_pl_class_find(p, rq->rq_id))
        return -1;
    class_t *c = hq_calloc(1, sizeof *c);
    c->rq_id = rq->rq_id;
    c->n_variants = rq->n_variants;
    c->variants = hq_calloc(rq->n_variants, sizeof *c->variants);
    for (uint32_t v = 0; v < rq->n_variants; v++) {
        const hq_rvariant_t *src = &rq->variants[v];
        variant_t *dst = &c->variants[v];
        dst->n_nodes = src->n_nodes;
        dst->min_time_ns = src->min_time_ns;
        dst->weight = src->weight > 0 ? src->weight : HQ_AMOUNT_ONE;
        uint32_t n_entries = src->entries ? src->n_entries : 0;
        dst->needs = hq_calloc(n_entries ? n_entries : 1, sizeof *dst->needs);
        for (uint32_t e = 0; e < n_entries; e++) {
            const hq_rreq_t *r = &src->entries[e];
            if (!r->name)
                continue;
            uint32_t res = hq_pl_res_index(p, r->name);
            hq_amount_t amount = r->amount > 0 ? r->amount : 0;
            /* the same resource named twice counts once, amounts added */
            uint32_t k = 0;
            while (k < dst->n && dst->needs[k].res != res)
                k++;
            if (k == dst->n) {
                dst->needs[k] = (need_t){
                    .res = res, .all = r->all, .policy = (uint8_t)r->policy, .amount = amount};
                dst->n++;
            } else {
                dst->needs[k].all = dst->needs[k].all || r->all;
                if (dst->needs[k].amount <= INT64_MAX - amount)
                    dst->needs[k].amount += amount;
            }
        }
    }
    s_shape_intern(p, c);
    const variant_t *v0 = &c->variants[0];
    for (uint32_t i = 0; i < v0->n; i++)
        if (v0->needs[i].res == CPUS_RES)
            c->size = v0->needs[i].all ? INT64_MAX : v0->needs[i].amount;
    if (v0->n_nodes > 0)
        c->size = INT64_MAX;
    hq_pl_grow((void **)&p->classes, &p->classes_cap, p->n_classes + 1, sizeof *p->classes);
    uint32_t pos = p->n_classes;
    while (pos > 0 && p->classes[pos - 1]->rq_id > c->rq_id)
        pos--;
    memmove(p->classes + pos + 1, p->classes + pos, (p->n_classes - pos) * sizeof *p->classes);
    p->classes[pos] = c;
    p->n_classes++;
    hq_pl_queues_rekey(p, c);
    return 0;
}
