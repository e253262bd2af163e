/* What the core tells the scheduler actor: commands posted to it, request classes,
 * and the tasks that became ready during a turn, sent at its end grouped per
 * (job, class) as id ranges. */
#define HQ_LOG_MODULE "hq::server"
#include "readyq.h"

#include <stdlib.h>

#include "hq_log.h"
#include "hq_util.h"

void hq_readyq_post(hq_readyq_t *q, hq_sched_cmd_t *cmd)
{
    if (q->sink) {
        q->sink(q->sink_arg, cmd);
        return;
    }
    if (!q->sched) {
        hq_sched_cmd_destroy(&cmd);
        return;
    }
    if (hq_sched_send(q->sched, &cmd) != 0) {
        hq_error("Cannot send a command to the scheduler");
        hq_sched_cmd_destroy(&cmd);
    }
}

static void s_rvariants_copy(hq_rvariant_t **dst, const hq_rvariant_t *src, uint32_t n)
{
    hq_rvariant_t *v = hq_calloc(n ? n : 1, sizeof *v);
    for (uint32_t i = 0; i < n; i++) {
        v[i] = src[i];
        v[i].entries = hq_calloc(src[i].n_entries ? src[i].n_entries : 1, sizeof(hq_rreq_t));
        for (uint32_t k = 0; k < src[i].n_entries; k++) {
            v[i].entries[k] = src[i].entries[k];
            v[i].entries[k].name = hq_strdup(src[i].entries[k].name);
        }
    }
    *dst = v;
}

static int s_cmp_ready(const void *x, const void *y)
{
    const hq_ready_ref_t *a = x, *c = y;
    if (a->job_id != c->job_id)
        return a->job_id < c->job_id ? -1 : 1;
    if (a->rq_id != c->rq_id)
        return a->rq_id < c->rq_id ? -1 : 1;
    return a->task_id < c->task_id ? -1 : a->task_id > c->task_id;
}

void hq_readyq_flush(hq_readyq_t *q)
{
    if (q->n == 0)
        return;
    qsort(q->list, q->n, sizeof(hq_ready_ref_t), s_cmp_ready);
    uint32_t i = 0;
    while (i < q->n) {
        uint32_t k = i;
        while (k < q->n && q->list[k].job_id == q->list[i].job_id &&
               q->list[k].rq_id == q->list[i].rq_id)
            k++;
        hq_sched_cmd_t *cmd = hq_sched_cmd_new(HQ_SCHED_READY);
        cmd->ready.job_id = q->list[i].job_id;
        cmd->ready.rq_id = q->list[i].rq_id;
        cmd->ready.priority = q->list[i].priority;
        hq_range_t *r = hq_malloc((k - i) * sizeof(hq_range_t));
        uint32_t nr = 0;
        for (uint32_t m = i; m < k; m++) {
            uint32_t id = q->list[m].task_id;
            if (nr > 0 && r[nr - 1].end == id)
                continue; /* duplicate */
            if (nr > 0 && r[nr - 1].end + 1 == id) {
                r[nr - 1].end = id;
                continue;
            }
            r[nr++] = (hq_range_t){.start = id, .end = id, .step = 1};
        }
        cmd->ready.ids.n = nr;
        cmd->ready.ids.ranges = r;
        hq_readyq_post(q, cmd);
        i = k;
    }
    q->n = 0;
}

void hq_readyq_push(hq_readyq_t *q, const hq_job_t *j, const hq_task_t *t)
{
    const hq_jdef_t *jd = &j->defs[t->def];
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 256;
        q->list = hq_realloc(q->list, q->cap * sizeof(hq_ready_ref_t));
    }
    q->list[q->n++] = (hq_ready_ref_t){
        .job_id = j->id, .task_id = t->id, .rq_id = jd->rq_id, .priority = jd->def->priority};
}

void hq_readyrun_end(hq_readyq_t *q, hq_readyrun_t *run)
{
    if (run->n) {
        hq_sched_cmd_t *cmd = hq_sched_cmd_new(HQ_SCHED_READY);
        cmd->ready.job_id = run->job_id;
        cmd->ready.rq_id = run->rq_id;
        cmd->ready.priority = run->priority;
        cmd->ready.ids.n = run->n;
        cmd->ready.ids.ranges = hq_realloc(run->r, run->n * sizeof *run->r);
        hq_readyq_post(q, cmd);
    } else {
        free(run->r);
    }
    *run = (hq_readyrun_t){0};
}

void hq_readyrun_add(hq_readyq_t *q, hq_readyrun_t *run, const hq_job_t *j, const hq_task_t *t)
{
    const hq_jdef_t *jd = &j->defs[t->def];
    if (run->n &&
        (run->job_id != j->id || run->rq_id != jd->rq_id || run->priority != jd->def->priority))
        hq_readyrun_end(q, run);
    run->job_id = j->id;
    run->rq_id = jd->rq_id;
    run->priority = jd->def->priority;
    if (run->n && run->r[run->n - 1].end + 1 == t->id) {
        run->r[run->n - 1].end = t->id;
        return;
    }
    if (run->n == run->cap) {
        run->cap = run->cap ? run->cap * 2 : 16;
        run->r = hq_realloc(run->r, run->cap * sizeof *run->r);
    }
    run->r[run->n++] = (hq_range_t){.start = t->id, .end = t->id, .step = 1};
}

void hq_readyq_add_class(hq_readyq_t *q, uint32_t rq_id, const hq_task_def_t *def)
{
    hq_sched_cmd_t *cmd = hq_sched_cmd_new(HQ_SCHED_RQ_ADD);
    cmd->rq.rq_id = rq_id;
    cmd->rq.n_variants = def->n_variants;
    s_rvariants_copy(&cmd->rq.variants, def->variants, def->n_variants);
    hq_readyq_post(q, cmd);
}

void hq_release_add(hq_release_t *r, uint32_t worker_id, uint32_t job_id, uint32_t task_id,
                    uint32_t rq_id, uint32_t variant)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->slots = hq_realloc(r->slots, r->cap * sizeof(hq_sched_slot_t));
    }
    r->slots[r->n++] = (hq_sched_slot_t){.worker_id = worker_id,
                                         .job_id = job_id,
                                         .task_id = task_id,
                                         .rq_id = rq_id,
                                         .variant = variant};
}

void hq_readyq_release(hq_readyq_t *q, hq_release_t *r)
{
    if (r->n == 0) {
        free(r->slots);
        *r = (hq_release_t){0};
        return;
    }
    hq_sched_cmd_t *cmd = hq_sched_cmd_new(HQ_SCHED_RELEASE);
    cmd->slots.n = r->n;
    cmd->slots.slots = r->slots;
    *r = (hq_release_t){0};
    hq_readyq_post(q, cmd);
}

void hq_readyq_fini(hq_readyq_t *q)
{
    free(q->list);
    q->list = NULL;
    q->n = q->cap = 0;
}
