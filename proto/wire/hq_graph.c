/* The task graph of a SUBMIT checked before anything changes: ids unique and new,
 * every dependency on a task of the submit or of the job, none on itself, no cycle.
 * Used by the broker against the job and by `hq job submit-file` before it connects. */
#include "hq_graph.h"

#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

typedef struct s_idpos {
    uint32_t id;  /* task id */
    uint32_t pos; /* index in the submit's graph */
} s_idpos_t;

static int s_cmp_idpos(const void *a, const void *b)
{
    uint32_t x = ((const s_idpos_t *)a)->id, y = ((const s_idpos_t *)b)->id;
    return x < y ? -1 : x > y;
}

/* Position of id in the sorted map, or UINT32_MAX. */
static uint32_t s_find_pos(const s_idpos_t *map, uint32_t n, uint32_t id)
{
    uint32_t lo = 0, hi = n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (map[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && map[lo].id == id ? map[lo].pos : UINT32_MAX;
}

int hq_graph_check(const hq_graph_task_t *g, uint32_t n, hq_graph_has_fn *has, void *arg,
                   uint32_t job_id, hq_err_t *err)
{
    s_idpos_t *map = hq_malloc(((size_t)n + 1) * sizeof *map);
    for (uint32_t i = 0; i < n; i++) {
        if (has && has(arg, g[i].id)) {
            free(map);
            return hq_err_set(err, "Task %u already exists in job %u.", g[i].id, job_id);
        }
        map[i] = (s_idpos_t){.id = g[i].id, .pos = i};
    }
    qsort(map, n, sizeof *map, s_cmp_idpos);
    for (uint32_t i = 1; i < n; i++)
        if (map[i].id == map[i - 1].id) {
            uint32_t dup = map[i].id;
            free(map);
            return hq_err_set(err, "Task %u is defined more than once.", dup);
        }
    /* Dependencies: in-degree counts only edges between new tasks (old tasks cannot
     * depend on new ones, so a cycle lies entirely within this submit). */
    uint32_t *indeg = hq_calloc((size_t)n + 1, sizeof(uint32_t));
    uint64_t n_edges = 0;
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < g[i].n_deps; k++) {
            uint32_t d = g[i].deps[k];
            uint32_t p = s_find_pos(map, n, d);
            if (d == g[i].id || (p == UINT32_MAX && !(has && has(arg, d)))) {
                free(map);
                free(indeg);
                return hq_err_set(err, "Invalid dependency on %u", d);
            }
            if (p != UINT32_MAX) {
                indeg[i]++;
                n_edges++;
            }
        }
    /* Kahn's algorithm over the new tasks; out-edges in CSR form. */
    uint32_t *start = hq_calloc((size_t)n + 1, sizeof(uint32_t));
    uint32_t *edges = hq_malloc((size_t)(n_edges + 1) * sizeof(uint32_t));
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < g[i].n_deps; k++) {
            uint32_t p = s_find_pos(map, n, g[i].deps[k]);
            if (p != UINT32_MAX)
                start[p + 1]++;
        }
    for (uint32_t i = 0; i < n; i++)
        start[i + 1] += start[i];
    uint32_t *fill = hq_malloc(((size_t)n + 1) * sizeof(uint32_t));
    memcpy(fill, start, (size_t)n * sizeof(uint32_t));
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < g[i].n_deps; k++) {
            uint32_t p = s_find_pos(map, n, g[i].deps[k]);
            if (p != UINT32_MAX)
                edges[fill[p]++] = i;
        }
    uint32_t *queue = fill; /* reused: every position is pushed at most once */
    uint32_t head = 0, tail = 0;
    for (uint32_t i = 0; i < n; i++)
        if (indeg[i] == 0)
            queue[tail++] = i;
    while (head < tail) {
        uint32_t v = queue[head++];
        for (uint32_t e = start[v]; e < start[v + 1]; e++)
            if (--indeg[edges[e]] == 0)
                queue[tail++] = edges[e];
    }
    int rc = 0;
    if (tail < n) {
        /* Walk back through unfinished dependencies until a task repeats: it lies on
         * a cycle; report the smallest id of that cycle. */
        uint32_t v = 0;
        while (indeg[v] == 0)
            v++;
        for (uint32_t step = 0; step < n; step++) {
            for (uint32_t k = 0; k < g[v].n_deps; k++) {
                uint32_t p = s_find_pos(map, n, g[v].deps[k]);
                if (p != UINT32_MAX && indeg[p] > 0) {
                    v = p;
                    break;
                }
            }
        }
        uint32_t min_id = g[v].id, w = v;
        do {
            for (uint32_t k = 0; k < g[w].n_deps; k++) {
                uint32_t p = s_find_pos(map, n, g[w].deps[k]);
                if (p != UINT32_MAX && indeg[p] > 0) {
                    w = p;
                    break;
                }
            }
            if (g[w].id < min_id)
                min_id = g[w].id;
        } while (w != v);
        rc = hq_err_set(err,
                        "Dependency cycle detected: task %u depends on itself through its "
                        "dependencies",
                        min_id);
    }
    free(map);
    free(indeg);
    free(start);
    free(edges);
    free(fill);
    return rc;
}
