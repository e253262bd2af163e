/* Multi-node tasks in the core (see mnodes.h): the node lists kept on the job and the
 * nodes' own record of the task they serve. */
#include "mnodes.h"

#include <stdlib.h>

#include "hq_util.h"

static hq_mnrun_t *s_find(const hq_job_t *j, uint32_t task_id)
{
    for (uint32_t i = 0; i < j->n_mnruns; i++)
        if (j->mnruns[i].task_id == task_id)
            return &j->mnruns[i];
    return NULL;
}

const uint32_t *hq_mn_nodes(const hq_job_t *j, uint32_t task_id, uint32_t *n)
{
    const hq_mnrun_t *r = j ? s_find(j, task_id) : NULL;
    *n = r ? r->n : 0;
    return r ? r->workers : NULL;
}

/* Tells a node what keeps it busy without a task of its own: the multi-node task it
 * serves as a secondary node, or (job 0) a reservation for one; nothing: free. */
static void s_tell(hq_broker_t *b, hq_worker_t *w)
{
    if (w->state != HQ_WS_RUNNING)
        return;
    hq_task_ref_t ref = {0};
    bool busy = false;
    if (w->mn_job && !w->mn_main) {
        const hq_job_t *j = hq_jobtab_get(&b->jobs, w->mn_job);
        const hq_task_t *t = j ? hq_job_task(j, w->mn_task) : NULL;
        ref = (hq_task_ref_t){
            .job_id = w->mn_job, .task_id = w->mn_task, .instance = t ? t->instance : 0};
        busy = true;
    } else if (w->mn_reserved) {
        busy = true;
    }
    if (busy == w->mn_told)
        return;
    w->mn_told = busy;
    hq_msg_t m = {0};
    m.hdr.type = HQ_MSG_NODE_OF;
    m.u.cancel.n_tasks = busy ? 1 : 0;
    m.u.cancel.tasks = busy ? &ref : NULL;
    hq_worker_send(&b->wlink, w, &m);
}

void hq_mn_on_reserved(hq_broker_t *b, const hq_sched_cmd_t *cmd)
{
    uint32_t k = 0; /* cmd's ids are sorted, like the registry */
    for (uint32_t id = 1; id <= b->reg.max_id; id++) {
        while (k < cmd->slots.n && cmd->slots.slots[k].worker_id < id)
            k++;
        hq_worker_t *w = b->reg.tab[id];
        if (!w || w->state != HQ_WS_RUNNING)
            continue;
        w->mn_reserved = k < cmd->slots.n && cmd->slots.slots[k].worker_id == id;
        s_tell(b, w);
    }
}

/* The node list of task_id (created empty if it has none yet). */
static hq_mnrun_t *s_get(hq_job_t *j, uint32_t task_id, uint32_t n)
{
    hq_mnrun_t *r = s_find(j, task_id);
    if (!r) {
        if (j->n_mnruns == j->cap_mnruns) {
            j->cap_mnruns = j->cap_mnruns ? j->cap_mnruns * 2 : 4;
            j->mnruns = hq_realloc(j->mnruns, j->cap_mnruns * sizeof *j->mnruns);
        }
        r = &j->mnruns[j->n_mnruns++];
        *r = (hq_mnrun_t){.task_id = task_id};
    }
    free(r->workers);
    r->n = n;
    r->workers = hq_malloc(n * sizeof *r->workers);
    return r;
}

void hq_mn_restore(hq_job_t *j, uint32_t task_id, const uint32_t *workers, uint32_t n)
{
    if (!j || n == 0 || !hq_job_task(j, task_id))
        return;
    hq_mnrun_t *r = s_get(j, task_id, n);
    for (uint32_t k = 0; k < n; k++)
        r->workers[k] = workers[k];
}

void hq_mn_placed(hq_broker_t *b, const hq_sched_slot_t *slots, uint32_t n)
{
    hq_job_t *j = hq_jobtab_get(&b->jobs, slots[0].job_id);
    hq_task_t *t = j ? hq_job_task(j, slots[0].task_id) : NULL;
    if (!t || n == 0)
        return;
    hq_mnrun_t *r = s_get(j, t->id, n);
    for (uint32_t k = 0; k < n; k++) {
        r->workers[k] = slots[k].worker_id;
        hq_worker_t *w = hq_registry_get(&b->reg, slots[k].worker_id);
        if (!w || w->state != HQ_WS_RUNNING)
            continue;
        w->mn_job = j->id;
        w->mn_task = t->id;
        w->mn_main = k == 0;
        s_tell(b, w);
    }
}

void hq_mn_release(hq_broker_t *b, const hq_job_t *j, const hq_task_t *t)
{
    uint32_t n;
    const uint32_t *nodes = hq_mn_nodes(j, t->id, &n);
    for (uint32_t k = 0; k < n; k++) {
        hq_worker_t *w = hq_registry_get(&b->reg, nodes[k]);
        if (!w || w->mn_job != j->id || w->mn_task != t->id)
            continue;
        w->mn_job = w->mn_task = 0;
        w->mn_main = false;
        s_tell(b, w);
    }
}
