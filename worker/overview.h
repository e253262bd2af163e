/* The worker's hardware overview (see overview.c). */
#ifndef HQ_WORKER_OVERVIEW_H
#define HQ_WORKER_OVERVIEW_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

/* CPU counters of the previous sample (usage is measured between two samples). */
typedef struct wk_overview {
    const char *proc_stat; /* /proc/stat, or a test's file */
    uint64_t *busy, *total;
    uint32_t n_cores;
} wk_overview_t;

/* The "hw-state" JSON object as compact text (malloc'd). */
char *wk_overview_collect(wk_overview_t *o);
void wk_overview_fini(wk_overview_t *o);

/* {"gpus": [{"id", "processor_usage", "mem_usage"}...]} from the output of
 * `nvidia-smi --format=csv,noheader --query-gpu=pci.bus_id,utilization.gpu,memory.used,
 * memory.total` ("BUS1, 10.0 %, 100 MiB, 200 MiB" -> usage 10.0, mem 50.0) and of
 * `rocm-smi --json --showuse --showbus --showmemuse` ("PCI Bus", "GPU use (%)",
 * "GPU memory use (%)" of each card). Lines or cards without these are skipped. */
json_t *wk_overview_parse_nvidia(const char *csv);
json_t *wk_overview_parse_rocm(const char *json_text);

#endif
