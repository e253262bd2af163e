/* Job and task tables: compact task arrays, the job state rule and submit-time
 * placeholder resolution. Pure: no sockets, no logging. */
#include "jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_idrange.h"
#include "hq_placeholder.h"
#include "hq_graph.h"
#include "hq_util.h"

const char *hq_job_state_word(const hq_job_t *j)
{
    const uint32_t *c = j->counts;
    if (c[HQ_TS_RUNNING] > 0)
        return "RUNNING";
    if (c[HQ_TS_WAITING] + c[HQ_TS_ASSIGNED] > 0)
        return "WAITING";
    if (c[HQ_TS_FAILED] > 0)
        return "FAILED";
    if (c[HQ_TS_ABORTED] > 0)
        return "ABORTED";
    if (c[HQ_TS_CANCELED] > 0)
        return "CANCELED";
    if (j->open)
        return "OPENED";
    return "FINISHED";
}

uint32_t hq_job_state_bit(const hq_job_t *j)
{
    const char *w = hq_job_state_word(j);
    static const struct {
        const char *w;
        uint32_t bit;
    } map[] = {{"RUNNING", HQ_ST_RUNNING},  {"WAITING", HQ_ST_WAITING},   {"FAILED", HQ_ST_FAILED},
               {"ABORTED", HQ_ST_ABORTED},  {"CANCELED", HQ_ST_CANCELED}, {"OPENED", HQ_ST_OPENED},
               {"FINISHED", HQ_ST_FINISHED}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(map[i].w, w) == 0)
            return map[i].bit;
    return 0;
}

bool hq_job_is_complete(const hq_job_t *j)
{
    return j->counts[HQ_TS_WAITING] + j->counts[HQ_TS_ASSIGNED] + j->counts[HQ_TS_RUNNING] == 0;
}

const char *hq_tstate_json(uint8_t st)
{
    switch (st) {
    case HQ_TS_WAITING:
    case HQ_TS_ASSIGNED:
        return "waiting";
    case HQ_TS_RUNNING:
        return "running";
    case HQ_TS_FINISHED:
        return "finished";
    case HQ_TS_FAILED:
        return "failed";
    case HQ_TS_CANCELED:
        return "canceled";
    default:
        return "aborted";
    }
}

uint32_t hq_tstate_bit(uint8_t st)
{
    switch (st) {
    case HQ_TS_WAITING:
    case HQ_TS_ASSIGNED:
        return HQ_ST_WAITING;
    case HQ_TS_RUNNING:
        return HQ_ST_RUNNING;
    case HQ_TS_FINISHED:
        return HQ_ST_FINISHED;
    case HQ_TS_FAILED:
        return HQ_ST_FAILED;
    case HQ_TS_CANCELED:
        return HQ_ST_CANCELED;
    default:
        return HQ_ST_ABORTED;
    }
}

bool hq_tstate_final(uint8_t st)
{
    return st >= HQ_TS_FINISHED;
}

hq_task_t *hq_job_task(const hq_job_t *j, uint32_t task_id)
{
    /* Tasks are sorted by id and usually dense (arrays a-b): try the direct index. */
    if (j->n_tasks > 0 && task_id >= j->tasks[0].id) {
        uint32_t k = task_id - j->tasks[0].id;
        if (k < j->n_tasks && j->tasks[k].id == task_id)
            return &j->tasks[k];
    }
    uint32_t lo = 0, hi = j->n_tasks;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (j->tasks[mid].id < task_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < j->n_tasks && j->tasks[lo].id == task_id)
        return &j->tasks[lo];
    return NULL;
}

uint32_t hq_job_next_task_id(const hq_job_t *j)
{
    return j->n_tasks == 0 ? 0 : j->tasks[j->n_tasks - 1].id + 1;
}

static int s_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int s_cmp_task(const void *a, const void *b)
{
    uint32_t x = ((const hq_task_t *)a)->id, y = ((const hq_task_t *)b)->id;
    return x < y ? -1 : x > y;
}

int hq_job_add_array(hq_job_t *j, const hq_rangelist_t *rl, uint32_t def_idx, uint32_t n_entries,
                     hq_err_t *err)
{
    uint64_t count = hq_rangelist_count(rl);
    if (count == 0)
        return 0;
    if (count + j->n_tasks > HQ_MAX_JOB_TASKS)
        return hq_err_set(err, "Too many tasks in job %u (at most %u).", j->id,
                          (unsigned)HQ_MAX_JOB_TASKS);
    /* Existing ids must not be reused. */
    if (j->n_tasks > 0) {
        for (uint32_t r = 0; r < rl->n; r++) {
            const hq_range_t *rg = &rl->ranges[r];
            uint32_t step = rg->step ? rg->step : 1;
            for (uint64_t id = rg->start; id <= rg->end; id += step)
                if (hq_job_task(j, (uint32_t)id))
                    return hq_err_set(err, "Task %u already exists in job %u.", (uint32_t)id,
                                      j->id);
        }
    }
    /* Within the new ids: ranges as given may overlap or come out of order. */
    uint32_t old_n = j->n_tasks;
    bool mono = true;
    {
        bool have = false;
        uint32_t last = 0;
        for (uint32_t r = 0; r < rl->n && mono; r++) {
            const hq_range_t *rg = &rl->ranges[r];
            if (have && rg->start <= last)
                mono = false;
            uint32_t step = rg->step ? rg->step : 1;
            last = rg->start + (rg->end - rg->start) / step * step;
            have = true;
        }
    }
    if (!mono) {
        uint32_t *ids = hq_malloc((size_t)count * sizeof(uint32_t));
        uint64_t k = 0;
        for (uint32_t r = 0; r < rl->n; r++) {
            const hq_range_t *rg = &rl->ranges[r];
            uint32_t step = rg->step ? rg->step : 1;
            for (uint64_t id = rg->start; id <= rg->end; id += step)
                ids[k++] = (uint32_t)id;
        }
        qsort(ids, (size_t)count, sizeof(uint32_t), s_cmp_u32);
        for (uint64_t i = 1; i < count; i++)
            if (ids[i] == ids[i - 1]) {
                uint32_t dup = ids[i];
                free(ids);
                return hq_err_set(err, "Task %u is defined more than once.", dup);
            }
        free(ids);
    }
    uint64_t need = old_n + count;
    if (need > j->cap_tasks) {
        uint64_t cap = j->cap_tasks ? j->cap_tasks : 16;
        while (cap < need)
            cap *= 2;
        j->tasks = hq_realloc(j->tasks, (size_t)cap * sizeof(hq_task_t));
        j->cap_tasks = (uint32_t)cap;
    }
    bool by_pos = n_entries > 0 && n_entries == count;
    bool sorted = mono && (old_n == 0 || rl->ranges[0].start > j->tasks[old_n - 1].id);
    uint32_t pos = 0;
    hq_task_t *t = j->tasks + old_n;
    for (uint32_t r = 0; r < rl->n; r++) {
        const hq_range_t *rg = &rl->ranges[r];
        uint32_t step = rg->step ? rg->step : 1;
        for (uint64_t id = rg->start; id <= rg->end; id += step, pos++, t++) {
            memset(t, 0, sizeof *t);
            t->id = (uint32_t)id;
            t->def = def_idx;
            t->entry = by_pos ? pos : (id < n_entries ? (uint32_t)id : UINT32_MAX);
            t->state = HQ_TS_WAITING;
        }
    }
    if (!sorted)
        qsort(j->tasks, (size_t)need, sizeof(hq_task_t), s_cmp_task);
    j->n_tasks = (uint32_t)need;
    j->counts[HQ_TS_WAITING] += (uint32_t)count;
    j->finish_ns = 0;
    return 0;
}

/* ---- dependency graph ---- */

static uint32_t s_hash(uint32_t id)
{
    return id * 2654435761u;
}

hq_dnode_t *hq_job_dnode(const hq_job_t *j, uint32_t task_id)
{
    const hq_jdeps_t *d = j->deps;
    if (!d || d->cap_slots == 0)
        return NULL;
    uint32_t mask = d->cap_slots - 1;
    for (uint32_t i = s_hash(task_id) & mask;; i = (i + 1) & mask) {
        uint32_t v = d->slots[i];
        if (v == 0)
            return NULL;
        if (d->nodes[v - 1].task_id == task_id)
            return &d->nodes[v - 1];
    }
}

static void s_slot_put(hq_jdeps_t *d, uint32_t task_id, uint32_t idx1)
{
    uint32_t mask = d->cap_slots - 1;
    uint32_t i = s_hash(task_id) & mask;
    while (d->slots[i] != 0)
        i = (i + 1) & mask;
    d->slots[i] = idx1;
}

/* Index of the node of task_id, created when missing. */
static uint32_t s_dnode_get(hq_job_t *j, uint32_t task_id)
{
    if (!j->deps)
        j->deps = hq_calloc(1, sizeof(hq_jdeps_t));
    hq_jdeps_t *d = j->deps;
    hq_dnode_t *n = hq_job_dnode(j, task_id);
    if (n)
        return (uint32_t)(n - d->nodes);
    if ((uint64_t)(d->n_nodes + 1) * 2 > d->cap_slots) {
        uint32_t cap = d->cap_slots ? d->cap_slots * 2 : 64;
        free(d->slots);
        d->slots = hq_calloc(cap, sizeof(uint32_t));
        d->cap_slots = cap;
        for (uint32_t i = 0; i < d->n_nodes; i++)
            s_slot_put(d, d->nodes[i].task_id, i + 1);
    }
    if (d->n_nodes == d->cap_nodes) {
        d->cap_nodes = d->cap_nodes ? d->cap_nodes * 2 : 32;
        d->nodes = hq_realloc(d->nodes, d->cap_nodes * sizeof(hq_dnode_t));
    }
    uint32_t idx = d->n_nodes++;
    memset(&d->nodes[idx], 0, sizeof(hq_dnode_t));
    d->nodes[idx].task_id = task_id;
    s_slot_put(d, task_id, idx + 1);
    return idx;
}

/* A task id the graph may depend on: one of job j. */
static bool s_job_has(void *arg, uint32_t id)
{
    return hq_job_task(arg, id) != NULL;
}

int hq_job_check_graph(const hq_job_t *j, const hq_graph_task_t *g, uint32_t n, hq_err_t *err)
{
    if ((uint64_t)n + j->n_tasks > HQ_MAX_JOB_TASKS)
        return hq_err_set(err, "Too many tasks in job %u (at most %u).", j->id,
                          (unsigned)HQ_MAX_JOB_TASKS);
    return hq_graph_check(g, n, s_job_has, (void *)j, j->id, err);
}

void hq_job_add_graph(hq_job_t *j, const hq_graph_task_t *g, uint32_t n, uint32_t def_base)
{
    if (n == 0)
        return;
    uint32_t old_n = j->n_tasks;
    uint64_t need = (uint64_t)old_n + n;
    if (need > j->cap_tasks) {
        uint64_t cap = j->cap_tasks ? j->cap_tasks : 16;
        while (cap < need)
            cap *= 2;
        j->tasks = hq_realloc(j->tasks, (size_t)cap * sizeof(hq_task_t));
        j->cap_tasks = (uint32_t)cap;
    }
    bool sorted = true;
    uint32_t last = old_n ? j->tasks[old_n - 1].id : 0;
    for (uint32_t i = 0; i < n; i++) {
        hq_task_t *t = &j->tasks[old_n + i];
        memset(t, 0, sizeof *t);
        t->id = g[i].id;
        t->def = def_base + g[i].def_idx;
        t->entry = UINT32_MAX;
        t->state = HQ_TS_WAITING;
        if ((old_n + i > 0) && g[i].id <= last)
            sorted = false;
        last = g[i].id;
    }
    j->n_tasks = (uint32_t)need;
    if (!sorted)
        qsort(j->tasks, (size_t)need, sizeof(hq_task_t), s_cmp_task);
    j->counts[HQ_TS_WAITING] += n;
    j->finish_ns = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (g[i].n_deps == 0)
            continue;
        uint32_t me = s_dnode_get(j, g[i].id);
        hq_dnode_t *node = &j->deps->nodes[me];
        node->n_deps = g[i].n_deps;
        node->deps = hq_malloc(g[i].n_deps * sizeof(uint32_t));
        memcpy(node->deps, g[i].deps, g[i].n_deps * sizeof(uint32_t));
        uint32_t wait = 0;
        for (uint32_t k = 0; k < g[i].n_deps; k++) {
            uint32_t dep = g[i].deps[k];
            const hq_task_t *dt = hq_job_task(j, dep);
            if (dt && dt->state != HQ_TS_FINISHED)
                wait++;
            hq_dnode_t *dn = &j->deps->nodes[s_dnode_get(j, dep)];
            if (dn->n_out == dn->cap_out) {
                dn->cap_out = dn->cap_out ? dn->cap_out * 2 : 2;
                dn->out = hq_realloc(dn->out, dn->cap_out * sizeof(uint32_t));
            }
            dn->out[dn->n_out++] = g[i].id;
        }
        j->deps->nodes[me].n_wait = wait;
    }
}

static void s_deps_destroy(hq_jdeps_t *d)
{
    if (!d)
        return;
    for (uint32_t i = 0; i < d->n_nodes; i++) {
        free(d->nodes[i].deps);
        free(d->nodes[i].out);
    }
    free(d->nodes);
    free(d->slots);
    free(d);
}

void hq_job_destroy(hq_job_t **p)
{
    if (!p || !*p)
        return;
    hq_job_t *j = *p;
    s_deps_destroy(j->deps);
    for (uint32_t i = 0; i < j->n_mnruns; i++)
        free(j->mnruns[i].workers);
    free(j->mnruns);
    for (uint32_t i = 0; i < j->n_tasks; i++)
        free(j->tasks[i].error);
    free(j->tasks);
    for (uint32_t i = 0; i < j->n_defs; i++) {
        free(j->defs[i].cwd);
        free(j->defs[i].out);
        free(j->defs[i].err);
    }
    free(j->defs);
    for (uint32_t i = 0; i < j->n_submits; i++) {
        hq_msg_destroy(&j->submits[i].msg);
        free(j->submits[i].ids_text);
        free(j->submits[i].stream_dir);
    }
    free(j->submits);
    free(j->name);
    free(j->cancel_reason);
    free(j);
    *p = NULL;
}

/* ---- task paths ---- */

/* The stdout/stderr spec to resolve: the path given, or dflt for a file without one;
 * NULL when the output goes to no file. */
static const char *s_stdio_spec(const hq_stdio_t *io, const char *dflt)
{
    if (io->kind != HQ_STDIO_FILE)
        return NULL;
    return io->path && io->path[0] ? io->path : dflt;
}

void hq_jdef_resolve_paths(hq_jdef_t *jd, const hq_task_def_t *def, uint32_t job_id,
                           const char *submit_dir, const char *server_uid)
{
    char job[16];
    snprintf(job, sizeof job, "%u", job_id);
    hq_placeholder_vals_t v = {.job_id = job, .submit_dir = submit_dir, .server_uid = server_uid};
    hq_placeholder_resolve(def->cwd,
                           s_stdio_spec(&def->out, "%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stdout"),
                           s_stdio_spec(&def->err, "%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stderr"), &v,
                           &jd->cwd, &jd->out, &jd->err);
}
