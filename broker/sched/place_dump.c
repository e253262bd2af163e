/* The placement state as JSON for `hq server debug-dump` (hq_place_dump): ready
 * queues in scheduling order, request classes, workers' capacity and what they hold,
 * placed multi-node tasks. Read-only, pure like the rest of the module. */
#include <jansson.h>
#include <stdlib.h>

#include "place_priv.h"

#define S_RUNS_SHOWN 32 /* id runs listed per queue (the count covers all) */

static json_t *s_amounts(const hq_place_t *p, const hq_amount_t *a)
{
    json_t *o = json_object();
    for (uint32_t r = 0; r < p->n_names; r++)
        if (a[r])
            json_object_set_new(o, p->names[r], json_integer((json_int_t)a[r]));
    return o;
}

static json_t *s_queue(const queue_t *q)
{
    json_t *runs = json_array();
    for (uint32_t k = q->head; k < q->n && k - q->head < S_RUNS_SHOWN; k++)
        json_array_append_new(
            runs, json_pack("{s:I,s:I,s:I}", "start", (json_int_t)q->runs[k].start, "step",
                            (json_int_t)q->runs[k].step, "count", (json_int_t)q->runs[k].count));
    return json_pack("{s:i,s:I,s:I,s:b,s:I,s:I,s:o}", "priority", (int)q->prio, "job",
                     (json_int_t)q->job, "rq_id", (json_int_t)q->rq, "class_known", q->cls != NULL,
                     "ready", (json_int_t)q->count, "n_runs", (json_int_t)(q->n - q->head), "runs",
                     runs);
}

static json_t *s_class(const hq_place_t *p, const class_t *c)
{
    json_t *vars = json_array();
    for (uint32_t v = 0; v < c->n_variants; v++) {
        const variant_t *va = &c->variants[v];
        json_t *needs = json_array();
        for (uint32_t k = 0; k < va->n; k++) {
            const need_t *n = &va->needs[k];
            json_array_append_new(needs, json_pack("{s:s,s:b,s:I,s:i}", "resource",
                                                   n->res < p->n_names ? p->names[n->res] : "?",
                                                   "all", n->all, "amount", (json_int_t)n->amount,
                                                   "policy", (int)n->policy));
        }
        json_array_append_new(vars, json_pack("{s:I,s:I,s:o}", "n_nodes", (json_int_t)va->n_nodes,
                                              "min_time_ns", (json_int_t)va->min_time_ns, "needs",
                                              needs));
    }
    return json_pack("{s:I,s:I,s:o}", "rq_id", (json_int_t)c->rq_id, "blocked_round",
                     (json_int_t)c->blocked_round, "variants", vars);
}

static json_t *s_worker(const hq_place_t *p, const worker_t *w)
{
    json_t *pf = json_array();
    for (uint32_t k = 0; k < w->n_pf; k++) {
        const pf_t *e = &w->pf[w->pf_off + k];
        json_array_append_new(pf,
                              json_pack("{s:I,s:I,s:I}", "job", (json_int_t)e->job, "task",
                                        (json_int_t)e->task, "variant", (json_int_t)e->variant));
    }
    /* reserved in the last round: for a blocked task of this job */
    json_t *resv = w->closed_round != 0 && w->closed_round == p->round
                       ? json_integer((json_int_t)w->resv_job)
                       : json_null();
    return json_pack("{s:I,s:s,s:I,s:I,s:I,s:I,s:b,s:f,s:o,s:o,s:o,s:o}", "id", (json_int_t)w->id,
                     "group", w->group ? w->group : "", "credit", (json_int_t)w->credit, "prefetch",
                     (json_int_t)w->prefetch, "held", (json_int_t)w->held, "lifetime_end_ns",
                     (json_int_t)w->lifetime_end, "in_multi_node", w->in_mn, "min_utilization",
                     w->min_util, "capacity", s_amounts(p, w->cap), "free", s_amounts(p, w->free),
                     "prefetched", pf, "reserved_for_job", resv);
}

char *hq_place_dump(const hq_place_t *p)
{
    json_t *queues = json_array();
    for (uint32_t i = 0; i < p->n_queues; i++)
        if (p->queues[i]->count > 0)
            json_array_append_new(queues, s_queue(p->queues[i]));
    json_t *classes = json_array();
    for (uint32_t i = 0; i < p->n_classes; i++)
        json_array_append_new(classes, s_class(p, p->classes[i]));
    json_t *workers = json_array();
    for (uint32_t i = 0; i < p->n_workers; i++)
        json_array_append_new(workers, s_worker(p, p->workers[i]));
    json_t *mns = json_array();
    for (uint32_t i = 0; i < p->n_mns; i++) {
        json_t *nodes = json_array();
        for (uint32_t k = 0; k < p->mns[i].n; k++)
            json_array_append_new(nodes, json_integer(p->mns[i].nodes[k]));
        json_array_append_new(mns, json_pack("{s:I,s:I,s:o}", "job", (json_int_t)p->mns[i].job,
                                             "task", (json_int_t)p->mns[i].task, "nodes", nodes));
    }
    json_t *doc = json_pack("{s:I,s:I,s:o,s:o,s:o,s:o}", "round", (json_int_t)p->round, "ready",
                            (json_int_t)p->n_ready, "queues", queues, "classes", classes, "workers",
                            workers, "multi_node_tasks", mns);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
}
