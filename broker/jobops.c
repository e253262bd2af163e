/* State changes of jobs shared by live requests (applied once their journal records
 * are durable) and by journal replay: a submit (new job or into an open one, with its
 * request classes and dependency graph), an open job, forgetting a complete job. */
#define HQ_LOG_MODULE "hq::server::job"
#include "jobops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_log.h"
#include "hq_placeholder.h"
#include "hq_util.h"
#include "journal/glue.h"
#include "tasks.h"

static hq_job_t *s_job_new(hq_broker_t *b, uint32_t id, const char *name, uint64_t wall_ns)
{
    if (id == 0)
        id = b->jobs.max_id + 1;
    hq_jobtab_reserve(&b->jobs, id);
    hq_job_t *j = hq_calloc(1, sizeof *j);
    j->id = id;
    j->name = hq_strdup(name && name[0] ? name : "job");
    j->submit_ns = wall_ns ? wall_ns : hq_wall_ns();
    return j;
}

static void s_job_register(hq_broker_t *b, hq_job_t *j)
{
    b->jobs.tab[j->id] = j;
    if (j->id > b->jobs.max_id)
        b->jobs.max_id = j->id;
    b->jobs.n_live++;
    hq_event_t ev = {.type = HQ_EV_JOB_CREATED, .job_id = j->id, .time_ns = j->submit_ns, .obj = j};
    hq_events_emit(b->events, &ev);
}

static bool s_same_variants(const hq_task_def_t *x, const hq_task_def_t *y)
{
    if (x->n_variants != y->n_variants)
        return false;
    for (uint32_t v = 0; v < x->n_variants; v++) {
        const hq_rvariant_t *a = &x->variants[v], *c = &y->variants[v];
        if (a->n_nodes != c->n_nodes || a->min_time_ns != c->min_time_ns ||
            a->weight != c->weight || a->n_entries != c->n_entries)
            return false;
        for (uint32_t k = 0; k < a->n_entries; k++) {
            const hq_rreq_t *r = &a->entries[k], *q = &c->entries[k];
            if (r->all != q->all || r->amount != q->amount || r->policy != q->policy ||
                strcmp(r->name, q->name) != 0)
                return false;
        }
    }
    return true;
}

/* Gives each new definition a scheduler request class; definitions of one submit
 * with the same variants share a class (a job file of many distinct commands then
 * costs the scheduler one class, not one per task). */
static void s_rq_add_all(hq_broker_t *b, hq_job_t *j, uint32_t def_base)
{
    uint32_t prev = UINT32_MAX;
    for (uint32_t i = def_base; i < j->n_defs; i++) {
        hq_jdef_t *jd = &j->defs[i];
        if (prev != UINT32_MAX && s_same_variants(j->defs[prev].def, jd->def)) {
            jd->rq_id = j->defs[prev].rq_id;
            continue;
        }
        uint32_t lo = i - def_base > 64 ? i - 64 : def_base, k = i;
        while (k > lo && !s_same_variants(j->defs[k - 1].def, jd->def))
            k--;
        if (k > lo) {
            jd->rq_id = j->defs[k - 1].rq_id;
            prev = k - 1;
            continue;
        }
        jd->rq_id = ++b->jobs.next_rq_id;
        prev = i;
        hq_readyq_add_class(&b->ready, jd->rq_id, jd->def);
    }
}

/* Graph form: explicit ids with their own definitions and dependencies. */
static int s_add_graph(hq_job_t *j, const hq_submit_t *s, uint32_t def_base, hq_err_t *err)
{
    for (uint32_t i = 0; i < s->n_graph; i++)
        if (s->graph[i].def_idx >= s->n_defs)
            return hq_err_set(err, "Task %u refers to a missing definition", s->graph[i].id);
    if (hq_job_check_graph(j, s->graph, s->n_graph, err) != 0)
        return -1;
    hq_job_add_graph(j, s->graph, s->n_graph, def_base);
    return 0;
}

/* After a graph submit: tasks whose dependencies are all finished go to the
 * scheduler; tasks with a failed, canceled or aborted dependency are aborted (which
 * aborts their own dependants). */
static void s_graph_ready(hq_broker_t *b, hq_job_t *j, const hq_submit_t *s)
{
    for (uint32_t i = 0; i < s->n_graph; i++) {
        const hq_graph_task_t *g = &s->graph[i];
        hq_task_t *t = hq_job_task(j, g->id);
        if (!t || t->state != HQ_TS_WAITING)
            continue; /* aborted meanwhile through another task of this submit */
        bool bad = false;
        for (uint32_t k = 0; k < g->n_deps && !bad; k++) {
            const hq_task_t *dt = hq_job_task(j, g->deps[k]);
            bad = dt && hq_tstate_final(dt->state) && dt->state != HQ_TS_FINISHED;
        }
        if (bad) {
            hq_broker_end_task(b, j, t, HQ_TS_ABORTED, NULL);
            continue;
        }
        const hq_dnode_t *node = g->n_deps ? hq_job_dnode(j, g->id) : NULL;
        if (node && node->n_wait > 0)
            continue;
        const hq_jdef_t *jd = &j->defs[t->def];
        if (b->ready.n == b->ready.cap) {
            b->ready.cap = b->ready.cap ? b->ready.cap * 2 : 256;
            b->ready.list = hq_realloc(b->ready.list, b->ready.cap * sizeof(hq_ready_ref_t));
        }
        b->ready.list[b->ready.n++] = (hq_ready_ref_t){
            .job_id = j->id, .task_id = t->id, .rq_id = jd->rq_id, .priority = jd->def->priority};
    }
}

int hq_submit_apply(hq_broker_t *b, uint32_t job_id, hq_msg_t *msg, uint64_t wall_ns, hq_err_t *err)
{
    hq_submit_t *s = &msg->u.submit;
    hq_job_t *j = NULL;
    bool fresh = s->job_id == 0;
    if (!fresh) {
        j = hq_jobtab_get(&b->jobs, s->job_id);
        if (!j) {
            hq_err_set(err, "Job %u not found.", s->job_id);
            return -2;
        }
        if (!j->open)
            return hq_err_set(err, "Job %u is not opened.", s->job_id);
    } else {
        if (job_id != 0 && hq_jobtab_get(&b->jobs, job_id))
            return hq_err_set(err, "Job %u already exists.", job_id);
        j = s_job_new(b, job_id, s->name, wall_ns);
        j->has_max_fails = s->has_max_fails;
        j->max_fails = s->max_fails;
    }
    /* act: definitions, then tasks (nothing changes if the tasks are refused) */
    uint32_t def_base = j->n_defs;
    hq_jdef_t *defs = hq_calloc(s->n_defs, sizeof *defs);
    for (uint32_t i = 0; i < s->n_defs; i++) {
        defs[i].def = &s->defs[i];
        defs[i].submit = j->n_submits;
        hq_jdef_resolve_paths(&defs[i], &s->defs[i], j->id, s->submit_dir,
                              b->conf.access.server_uid);
    }
    hq_rangelist_t given = s->ids;
    hq_range_t auto_range;
    if (s->n_graph == 0 && given.n == 0) {
        uint32_t base = fresh ? 0 : hq_job_next_task_id(j);
        uint32_t count = s->n_entries ? s->n_entries : 1;
        auto_range = (hq_range_t){.start = base, .end = base + count - 1, .step = 1};
        given = (hq_rangelist_t){.n = 1, .ranges = &auto_range};
    }
    int rc = s->n_graph > 0 ? s_add_graph(j, s, def_base, err)
                            : hq_job_add_array(j, &given, def_base, s->n_entries, err);
    if (rc != 0) {
        for (uint32_t i = 0; i < s->n_defs; i++) {
            free(defs[i].cwd);
            free(defs[i].out);
            free(defs[i].err);
        }
        free(defs);
        if (fresh)
            hq_job_destroy(&j);
        return -1;
    }
    j->defs = hq_realloc(j->defs, (j->n_defs + s->n_defs) * sizeof(hq_jdef_t));
    memcpy(j->defs + j->n_defs, defs, s->n_defs * sizeof(hq_jdef_t));
    j->n_defs += s->n_defs;
    free(defs);
    j->submits = hq_realloc(j->submits, (j->n_submits + 1) * sizeof(hq_jsubmit_t));
    hq_jsubmit_t *sub = &j->submits[j->n_submits++];
    memset(sub, 0, sizeof *sub);
    sub->msg = msg;
    sub->graph = s->n_graph > 0;
    sub->submit_dir = s->submit_dir;
    if (!sub->graph)
        sub->ids_text = hq_rangelist_format(&given);
    if (s->stream_dir && s->stream_dir[0]) {
        char job[16];
        snprintf(job, sizeof job, "%u", j->id);
        hq_placeholder_vals_t v = {
            .job_id = job, .submit_dir = s->submit_dir, .server_uid = b->conf.access.server_uid};
        char *p = hq_placeholder_expand(s->stream_dir, &v);
        sub->stream_dir = hq_path_abs(p, s->submit_dir);
        free(p);
    }
    if (fresh)
        s_job_register(b, j);
    s_rq_add_all(b, j, def_base);
    /* The scheduler learns the new tasks as ranges (one command for an array). */
    if (!sub->graph) {
        hq_sched_cmd_t *cmd = hq_sched_cmd_new(HQ_SCHED_READY);
        cmd->ready.job_id = j->id;
        cmd->ready.rq_id = j->defs[def_base].rq_id;
        cmd->ready.priority = s->defs[0].priority;
        cmd->ready.ids.n = given.n;
        cmd->ready.ids.ranges = hq_malloc(given.n * sizeof(hq_range_t));
        memcpy(cmd->ready.ids.ranges, given.ranges, given.n * sizeof(hq_range_t));
        hq_readyq_post(&b->ready, cmd);
    } else {
        s_graph_ready(b, j, s);
    }
    if (s->has_key)
        hq_jobtab_key_put(&b->jobs, s->key, j->id, false);
    hq_turn_dirty(&b->turn);
    return 0;
}

hq_job_t *hq_open_apply(hq_broker_t *b, uint32_t job_id, const char *name, bool has_max_fails,
                        uint32_t max_fails, uint64_t wall_ns)
{
    if (job_id != 0 && hq_jobtab_get(&b->jobs, job_id))
        return NULL;
    hq_job_t *j = s_job_new(b, job_id, name, wall_ns);
    j->open = true;
    j->has_max_fails = has_max_fails;
    j->max_fails = max_fails;
    s_job_register(b, j);
    hq_event_t ev = {.type = HQ_EV_JOB_OPEN, .job_id = j->id, .time_ns = j->submit_ns, .obj = j};
    hq_events_emit(b->events, &ev);
    return j;
}

/* Gives back capacity still held by canceled tasks of a job about to be forgotten. */
static void s_release_held(hq_broker_t *b, hq_job_t *j)
{
    hq_release_t rel = {0};
    for (uint32_t i = 0; i < j->n_tasks; i++) {
        hq_task_t *t = &j->tasks[i];
        if (!(t->flags & HQ_TF_HOLDS))
            continue;
        hq_release_add(&rel, t->worker, j->id, t->id, j->defs[t->def].rq_id, t->variant);
        hq_worker_t *w = hq_registry_get(&b->reg, t->worker);
        if (w && w->n_assigned > 0)
            w->n_assigned--;
    }
    hq_readyq_release(&b->ready, &rel);
}

void hq_job_forget_one(hq_broker_t *b, hq_job_t *j)
{
    s_release_held(b, j);
    hq_jobtab_keys_forget(&b->jobs, j);
    b->jobs.tab[j->id] = NULL;
    b->jobs.n_live--;
    hq_job_destroy(&j);
}
