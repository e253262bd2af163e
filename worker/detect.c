/* Resource detection: cpus from the hwloc topology (grouped by NUMA node, limited to
 * the process's CPU affinity, which hwloc itself ignores), memory, and GPUs from the
 * CUDA/ROCm environment variables. */
#include "wk.h"

#include <dirent.h>
#include <errno.h>
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define HQ_LOG_MODULE "hq::worker"
#include "hq_args.h"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_render.h"
#include "hq_util.h"

void wk_wres_list_push(hq_wres_list_t *l, hq_wres_t *r)
{
    l->res = hq_realloc(l->res, (l->n + 1) * sizeof *l->res);
    l->res[l->n++] = *r;
    memset(r, 0, sizeof *r);
}

int wk_wres_list_find(const hq_wres_list_t *l, const char *name)
{
    for (uint32_t i = 0; i < l->n; i++)
        if (strcmp(l->res[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int s_cmp_wres(const void *a, const void *b)
{
    return strcmp(((const hq_wres_t *)a)->name, ((const hq_wres_t *)b)->name);
}

void wk_wres_list_sort(hq_wres_list_t *l)
{
    if (l->n > 1)
        qsort(l->res, l->n, sizeof *l->res, s_cmp_wres);
}

int wk_detect_parse(const char *s, unsigned *bits, hq_err_t *err)
{
    if (strcmp(s, "all") == 0) {
        *bits = WK_DETECT_ALL;
        return 0;
    }
    if (strcmp(s, "none") == 0) {
        *bits = 0;
        return 0;
    }
    unsigned b = 0;
    char *copy = hq_strdup(s);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t n = strlen(tok);
        while (n && tok[n - 1] == ' ')
            tok[--n] = '\0';
        if (strcmp(tok, "cpus") == 0)
            b |= WK_DETECT_CPUS;
        else if (strcmp(tok, "mem") == 0)
            b |= WK_DETECT_MEM;
        else if (strcmp(tok, "gpus/nvidia") == 0)
            b |= WK_DETECT_NVIDIA;
        else if (strcmp(tok, "gpus/amd") == 0)
            b |= WK_DETECT_AMD;
        else {
            hq_err_set(err,
                       "Unknown resource to detect: '%s' (use all, none or a comma list of "
                       "cpus, mem, gpus/nvidia, gpus/amd)",
                       tok);
            free(copy);
            return -1;
        }
    }
    free(copy);
    *bits = b;
    return 0;
}

static hwloc_topology_t s_topology(bool *synthetic, hq_err_t *err)
{
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0) {
        hq_err_set(err, "Cannot initialize hwloc");
        return NULL;
    }
    const char *syn = getenv("HWLOC_SYNTHETIC");
    *synthetic = false;
    if (syn && *syn) {
        if (hwloc_topology_set_synthetic(topo, syn) != 0) {
            hwloc_topology_destroy(topo);
            hq_err_set(err, "Invalid HWLOC_SYNTHETIC topology '%s'", syn);
            return NULL;
        }
        *synthetic = true;
    }
    if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        hq_err_set(err, "Cannot load the hwloc topology");
        return NULL;
    }
    return topo;
}

static void s_group_push(hq_label_group_t *g, unsigned pu)
{
    g->labels = hq_realloc(g->labels, (g->n + 1) * sizeof *g->labels);
    g->labels[g->n++] = hq_asprintf("%u", pu);
}

int wk_detect_cpus(bool no_ht, const cpu_set_t *mask, hq_wres_t *out, hq_err_t *err)
{
    bool synthetic;
    hwloc_topology_t topo = s_topology(&synthetic, err);
    if (!topo)
        return -1;
    if (synthetic)
        mask = NULL; /* a fake machine has nothing to do with our affinity */
    int n_numa = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    int n_groups = n_numa > 0 ? n_numa : 1;
    hq_label_group_t *groups = hq_calloc((size_t)n_groups, sizeof *groups);
    int n_pu = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
    for (int i = 0; i < n_pu; i++) {
        hwloc_obj_t pu = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, (unsigned)i);
        if (!pu)
            continue;
        if (mask && (pu->os_index >= CPU_SETSIZE || !CPU_ISSET(pu->os_index, mask)))
            continue;
        if (no_ht) {
            /* Keep only the first PU of each core (that is in the mask). */
            hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, pu);
            if (core) {
                bool first = true;
                unsigned idx;
                hwloc_bitmap_foreach_begin(idx, core->cpuset)
                {
                    if (idx == pu->os_index)
                        break;
                    if (!mask || (idx < CPU_SETSIZE && CPU_ISSET(idx, mask)))
                        first = false;
                }
                hwloc_bitmap_foreach_end();
                if (!first)
                    continue;
            }
        }
        int g = 0;
        if (n_numa > 0) {
            for (int k = 0; k < n_numa; k++) {
                hwloc_obj_t node = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, (unsigned)k);
                if (node && hwloc_bitmap_isset(node->cpuset, pu->os_index)) {
                    g = k;
                    break;
                }
            }
        }
        s_group_push(&groups[g], pu->os_index);
    }
    hwloc_topology_destroy(topo);
    /* Drop empty groups (NUMA nodes outside the mask). */
    int kept = 0;
    for (int g = 0; g < n_groups; g++) {
        if (groups[g].n)
            groups[kept++] = groups[g];
    }
    memset(out, 0, sizeof *out);
    out->name = hq_strdup("cpus");
    if (kept == 0) {
        /* Fallback: the available parallelism. */
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        free(groups);
        out->kind = HQ_RES_RANGE;
        out->range_start = 0;
        out->range_end = (uint64_t)(n > 0 ? n - 1 : 0);
        return 0;
    }
    out->kind = kept == 1 ? HQ_RES_LIST : HQ_RES_GROUPS;
    out->n_groups = (uint32_t)kept;
    out->groups = groups;
    return 0;
}

static hq_amount_t s_mem_bytes_to_amount(unsigned long long bytes)
{
    /* MiB in fixed point: bytes * 10000 / 2^20 without overflow. */
    return (hq_amount_t)((bytes / 1048576ULL) * HQ_AMOUNT_ONE +
                         (bytes % 1048576ULL) * HQ_AMOUNT_ONE / 1048576ULL);
}

static int s_detect_mem(hq_wres_t *out)
{
    unsigned long long bytes = 0;
    const char *slurm = getenv("SLURM_JOB_ID") ? getenv("SLURM_MEM_PER_NODE") : NULL;
    if (slurm && *slurm) {
        char *e;
        errno = 0;
        unsigned long long mib = strtoull(slurm, &e, 10);
        if (!errno && !*e && e != slurm && mib > 0 && mib < (1ULL << 40))
            bytes = mib * 1048576ULL;
    }
    if (!bytes) {
        bool synthetic;
        hwloc_topology_t topo = s_topology(&synthetic, NULL);
        if (topo) {
            hwloc_obj_t root = hwloc_get_root_obj(topo);
            bytes = root ? root->total_memory : 0;
            hwloc_topology_destroy(topo);
        }
    }
    if (!bytes) {
        long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
        if (pages > 0 && psz > 0)
            bytes = (unsigned long long)pages * (unsigned long long)psz;
    }
    if (!bytes)
        return -1;
    memset(out, 0, sizeof *out);
    out->name = hq_strdup("mem");
    out->kind = HQ_RES_SUM;
    out->sum_size = s_mem_bytes_to_amount(bytes);
    return 0;
}

/* A list resource from a comma list of device ids ("0,2"), or NULL-ish if empty. */
static int s_list_from_env(const char *name, const char *value, hq_wres_t *out)
{
    hq_label_group_t g = {0};
    char *copy = hq_strdup(value);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (!*tok)
            continue;
        bool dup = false;
        for (uint32_t i = 0; i < g.n; i++)
            dup = dup || strcmp(g.labels[i], tok) == 0;
        if (dup)
            continue;
        g.labels = hq_realloc(g.labels, (g.n + 1) * sizeof *g.labels);
        g.labels[g.n++] = hq_strdup(tok);
    }
    free(copy);
    if (g.n == 0) {
        free(g.labels);
        return -1;
    }
    memset(out, 0, sizeof *out);
    out->name = hq_strdup(name);
    out->kind = HQ_RES_LIST;
    out->n_groups = 1;
    out->groups = hq_malloc(sizeof *out->groups);
    out->groups[0] = g;
    return 0;
}

static int s_detect_nvidia(hq_wres_t *out)
{
    const char *env = getenv("CUDA_VISIBLE_DEVICES");
    if (env)
        return s_list_from_env("gpus/nvidia", env, out);
    DIR *d = opendir("/proc/driver/nvidia/gpus");
    if (!d)
        return -1;
    unsigned n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    if (n == 0)
        return -1;
    hq_buf_t b = {0};
    for (unsigned i = 0; i < n; i++)
        hq_buf_printf(&b, "%s%u", i ? "," : "", i);
    int rc = s_list_from_env("gpus/nvidia", b.data, out);
    hq_buf_free(&b);
    return rc;
}

int wk_detect_all(unsigned bits, bool no_ht, hq_wres_list_t *l, hq_err_t *err)
{
    hq_wres_t r;
    if ((bits & WK_DETECT_CPUS) && wk_wres_list_find(l, "cpus") < 0) {
        cpu_set_t mask;
        bool have_mask = sched_getaffinity(0, sizeof mask, &mask) == 0;
        if (wk_detect_cpus(no_ht, have_mask ? &mask : NULL, &r, err) != 0)
            return -1;
        wk_wres_list_push(l, &r);
    }
    if ((bits & WK_DETECT_NVIDIA) && wk_wres_list_find(l, "gpus/nvidia") < 0 &&
        s_detect_nvidia(&r) == 0)
        wk_wres_list_push(l, &r);
    if ((bits & WK_DETECT_AMD) && wk_wres_list_find(l, "gpus/amd") < 0) {
        const char *env = getenv("ROCR_VISIBLE_DEVICES");
        if (env && s_list_from_env("gpus/amd", env, &r) == 0)
            wk_wres_list_push(l, &r);
    }
    if ((bits & WK_DETECT_MEM) && wk_wres_list_find(l, "mem") < 0 && s_detect_mem(&r) == 0)
        wk_wres_list_push(l, &r);
    return 0;
}
