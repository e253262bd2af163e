/* Resource detection: hwloc cpus grouped by NUMA node, the affinity mask, GPUs from
 * the environment, and --detect-resources parsing. */
#include <criterion/criterion.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wk.h"

Test(worker_detect, synthetic_numa_machine_gives_one_group_per_node)
{
    setenv("HWLOC_SYNTHETIC", "pack:2 [numa] core:3 pu:2", 1);
    hq_wres_t r;
    hq_err_t err;
    cr_assert_eq(wk_detect_cpus(false, NULL, &r, &err), 0, "%s", err.text);
    cr_assert_str_eq(r.name, "cpus");
    cr_assert_eq(r.kind, HQ_RES_GROUPS);
    cr_assert_eq(r.n_groups, 2);
    cr_assert_eq(r.groups[0].n, 6);
    cr_assert_eq(r.groups[1].n, 6);
    cr_assert_str_eq(r.groups[0].labels[0], "0");
    cr_assert_str_eq(r.groups[1].labels[0], "6");
    hq_wres_clear(&r);
    unsetenv("HWLOC_SYNTHETIC");
}

Test(worker_detect, no_hyper_threading_keeps_one_pu_per_core)
{
    setenv("HWLOC_SYNTHETIC", "pack:2 [numa] core:3 pu:2", 1);
    hq_wres_t r;
    cr_assert_eq(wk_detect_cpus(true, NULL, &r, NULL), 0);
    cr_assert_eq(r.n_groups, 2);
    cr_assert_eq(r.groups[0].n, 3);
    cr_assert_str_eq(r.groups[0].labels[1], "2");
    hq_wres_clear(&r);
    unsetenv("HWLOC_SYNTHETIC");
}

Test(worker_detect, single_node_gives_a_list)
{
    setenv("HWLOC_SYNTHETIC", "core:4 pu:1", 1);
    hq_wres_t r;
    cr_assert_eq(wk_detect_cpus(false, NULL, &r, NULL), 0);
    cr_assert_eq(r.kind, HQ_RES_LIST);
    cr_assert_eq(r.n_groups, 1);
    cr_assert_eq(r.groups[0].n, 4);
    hq_wres_clear(&r);
    unsetenv("HWLOC_SYNTHETIC");
}

Test(worker_detect, real_machine_respects_the_affinity_mask)
{
    unsetenv("HWLOC_SYNTHETIC");
    cpu_set_t all;
    cr_assert_eq(sched_getaffinity(0, sizeof all, &all), 0);
    int first = -1;
    for (int i = 0; i < CPU_SETSIZE && first < 0; i++)
        if (CPU_ISSET(i, &all))
            first = i;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    hq_wres_t r;
    hq_err_t err;
    cr_assert_eq(wk_detect_cpus(false, &one, &r, &err), 0, "%s", err.text);
    cr_assert_eq(r.kind, HQ_RES_LIST);
    cr_assert_eq(r.groups[0].n, 1);
    char want[16];
    snprintf(want, sizeof want, "%d", first);
    cr_assert_str_eq(r.groups[0].labels[0], want);
    hq_wres_clear(&r);
}

Test(worker_detect, gpus_come_from_the_environment_and_manual_resources_win)
{
    setenv("HWLOC_SYNTHETIC", "core:2 pu:1", 1);
    setenv("CUDA_VISIBLE_DEVICES", "2,5", 1);
    setenv("ROCR_VISIBLE_DEVICES", "1", 1);
    hq_wres_list_t l = {0};
    hq_wres_t mem;
    cr_assert_eq(hq_wres_parse_named("mem=sum(10)", &mem, NULL), 0);
    wk_wres_list_push(&l, &mem);
    cr_assert_eq(wk_detect_all(WK_DETECT_ALL, false, &l, NULL), 0);
    cr_assert_eq(l.n, 4);
    int g = wk_wres_list_find(&l, "gpus/nvidia");
    cr_assert_geq(g, 0);
    cr_assert_eq(l.res[g].groups[0].n, 2);
    cr_assert_str_eq(l.res[g].groups[0].labels[1], "5");
    cr_assert_geq(wk_wres_list_find(&l, "gpus/amd"), 0);
    int m = wk_wres_list_find(&l, "mem");
    cr_assert_eq(l.res[m].sum_size, 10 * HQ_AMOUNT_ONE, "manual mem kept");
    wk_wres_list_sort(&l);
    cr_assert_str_eq(l.res[0].name, "cpus");
    cr_assert_str_eq(l.res[1].name, "gpus/amd");
    cr_assert_str_eq(l.res[2].name, "gpus/nvidia");
    cr_assert_str_eq(l.res[3].name, "mem");
    hq_wres_list_clear(&l);
    unsetenv("CUDA_VISIBLE_DEVICES");
    unsetenv("ROCR_VISIBLE_DEVICES");
    unsetenv("HWLOC_SYNTHETIC");
}

Test(worker_detect, slurm_memory_wins_under_slurm)
{
    setenv("SLURM_JOB_ID", "12", 1);
    setenv("SLURM_MEM_PER_NODE", "2048", 1);
    hq_wres_list_t l = {0};
    cr_assert_eq(wk_detect_all(WK_DETECT_MEM, false, &l, NULL), 0);
    cr_assert_eq(l.n, 1);
    cr_assert_eq(l.res[0].kind, HQ_RES_SUM);
    cr_assert_eq(l.res[0].sum_size, 2048LL * HQ_AMOUNT_ONE);
    hq_wres_list_clear(&l);
    unsetenv("SLURM_JOB_ID");
    unsetenv("SLURM_MEM_PER_NODE");
}

Test(worker_detect, parses_detect_resources_values)
{
    unsigned b;
    cr_assert_eq(wk_detect_parse("all", &b, NULL), 0);
    cr_assert_eq(b, WK_DETECT_ALL);
    cr_assert_eq(wk_detect_parse("none", &b, NULL), 0);
    cr_assert_eq(b, 0);
    cr_assert_eq(wk_detect_parse("mem,gpus/amd", &b, NULL), 0);
    cr_assert_eq(b, WK_DETECT_MEM | WK_DETECT_AMD);
    hq_err_t err;
    cr_assert_eq(wk_detect_parse("cpus,disk", &b, &err), -1);
    cr_assert_not_null(strstr(err.text, "disk"));
}
