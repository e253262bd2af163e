/* Demand of an allocation queue (demand.h). */
#include "demand.h"

#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

/* The worker resource called name in the queue's shape, or NULL. */
static const hq_wres_t *s_res(const hq_wres_list_t *l, const char *name)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (l->res[i].name && strcmp(l->res[i].name, name) == 0)
            return &l->res[i];
    return NULL;
}

/* Capacity in fixed-point units (indexed resources count whole labels). */
static hq_amount_t s_units(const hq_wres_t *r)
{
    return r->kind == HQ_RES_SUM ? hq_wres_capacity(r) : hq_wres_capacity(r) * HQ_AMOUNT_ONE;
}

enum s_verdict { S_OK, S_TOO_LONG, S_NO_RESOURCE, S_TOO_WIDE };

static enum s_verdict s_fits(const hq_aqueue_t *q, const hq_rvariant_t *v)
{
    uint64_t life = q->p.worker_time_limit_ns ? q->p.worker_time_limit_ns : q->p.timelimit_ns;
    if (v->min_time_ns > life)
        return S_TOO_LONG;
    if (v->n_nodes > q->p.per_alloc)
        return S_TOO_WIDE;
    if (!q->has_known)
        return S_OK;
    for (uint32_t e = 0; e < v->n_entries; e++) {
        const hq_rreq_t *r = &v->entries[e];
        const hq_wres_t *have = s_res(&q->known, r->name);
        if (!have || s_units(have) <= 0 || (!r->all && r->amount > s_units(have)))
            return S_NO_RESOURCE;
    }
    return S_OK;
}

/* Adds one runnable task of variant v. */
static void s_count(hq_ademand_t *d, const hq_aqueue_t *q, const hq_rvariant_t *v)
{
    d->n_ready++;
    if (v->n_nodes > 0) {
        d->workers += v->n_nodes;
        if (v->n_nodes > d->max_nodes)
            d->max_nodes = v->n_nodes;
        return;
    }
    const hq_wres_t *cpus = q->has_known ? s_res(&q->known, "cpus") : NULL;
    hq_amount_t per_worker = cpus ? s_units(cpus) : 0;
    hq_amount_t want = per_worker; /* unknown shape or "all": a whole worker */
    for (uint32_t e = 0; e < v->n_entries && per_worker > 0; e++)
        if (strcmp(v->entries[e].name, "cpus") == 0 && !v->entries[e].all)
            want = v->entries[e].amount;
    if (per_worker <= 0) {
        d->workers++;
        return;
    }
    uint64_t before = (d->cpu_units + (uint64_t)per_worker - 1) / (uint64_t)per_worker;
    d->cpu_units += (uint64_t)want;
    uint64_t after = (d->cpu_units + (uint64_t)per_worker - 1) / (uint64_t)per_worker;
    d->workers += after - before;
}

/* Judges one waiting task: counts it as demand or as skipped. */
static void s_task(hq_ademand_t *d, const hq_aqueue_t *q, const hq_job_t *j, const hq_task_t *t)
{
    const hq_dnode_t *node = j->deps ? hq_job_dnode(j, t->id) : NULL;
    if (node && node->n_wait > 0) {
        d->n_deps++;
        return;
    }
    const hq_task_def_t *def = j->defs[t->def].def;
    enum s_verdict worst = S_OK;
    for (uint32_t v = 0; v < def->n_variants; v++) {
        enum s_verdict r = s_fits(q, &def->variants[v]);
        if (r == S_OK) {
            s_count(d, q, &def->variants[v]);
            return;
        }
        if (worst == S_OK)
            worst = r;
    }
    if (worst == S_TOO_LONG)
        d->n_too_long++;
    else if (worst == S_TOO_WIDE)
        d->n_too_wide++;
    else
        d->n_no_resource++;
}

/* Whether the worker holding an assigned task runs as many tasks as it has cpus: the
 * task waits in its prefetch, not for a moment before it starts. */
static bool s_held_back(const hq_registry_t *reg, const hq_task_t *t)
{
    const hq_worker_t *w = hq_registry_get(reg, t->worker);
    if (!w || w->state != HQ_WS_RUNNING || w->n_running == 0)
        return false;
    const hq_wres_t *cpus = s_res(&w->conf->resources, "cpus");
    return !cpus || (hq_amount_t)w->n_running >= hq_wres_capacity(cpus);
}

void hq_ademand_compute(const hq_jobtab_t *jobs, const hq_registry_t *reg, const hq_aqueue_t *q,
                        uint64_t cap, hq_ademand_t *out)
{
    memset(out, 0, sizeof *out);
    for (uint32_t id = 1; id <= jobs->max_id && out->workers < cap; id++) {
        const hq_job_t *j = hq_jobtab_get(jobs, id);
        if (!j || j->counts[HQ_TS_WAITING] + j->counts[HQ_TS_ASSIGNED] == 0)
            continue;
        uint32_t left = j->counts[HQ_TS_WAITING] + j->counts[HQ_TS_ASSIGNED];
        for (uint32_t i = 0; i < j->n_tasks && left > 0 && out->workers < cap; i++) {
            const hq_task_t *t = &j->tasks[i];
            if (t->state != HQ_TS_WAITING && t->state != HQ_TS_ASSIGNED)
                continue;
            left--;
            if (t->state == HQ_TS_WAITING || s_held_back(reg, t))
                s_task(out, q, j, t);
        }
    }
}

char *hq_ademand_why(const hq_ademand_t *d)
{
    hq_buf_t b = {0};
    const struct {
        uint64_t n;
        const char *one, *many;
    } parts[] = {
        {d->n_deps, "waits for dependencies", "wait for dependencies"},
        {d->n_too_long, "requests more time (--time-request) than the queue's workers have",
         "request more time (--time-request) than the queue's workers have"},
        {d->n_no_resource, "requests resources the queue's workers do not have",
         "request resources the queue's workers do not have"},
        {d->n_too_wide, "needs more nodes than --max-workers-per-alloc",
         "need more nodes than --max-workers-per-alloc"},
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        if (parts[i].n)
            hq_buf_printf(&b, "%s%llu task%s %s", b.len ? "; " : "", (unsigned long long)parts[i].n,
                          parts[i].n == 1 ? "" : "s",
                          parts[i].n == 1 ? parts[i].one : parts[i].many);
    return b.data;
}
