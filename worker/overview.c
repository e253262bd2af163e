/* The worker's hardware overview (--overview-interval): per-core CPU usage since the
 * previous sample (/proc/stat), memory (/proc/meminfo), network counters summed over
 * the interfaces (/proc/net/dev) and GPU usage from `nvidia-smi` / `rocm-smi` when they
 * are on PATH, as the "hw-state" JSON object of a worker-overview event
 * (cli/REFERENCE.md §3.8). */
#define HQ_LOG_MODULE "hq::worker::overview"
#include "overview.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hq_duration.h"
#include "hq_log.h"
#include "hq_util.h"
#include "tool.h"

/* ---- CPU ---- */

/* Reads the per-core busy and total jiffies; returns the number of cores. */
static uint32_t s_read_stat(const char *path, uint64_t **busy, uint64_t **total)
{
    FILE *f = fopen(path, "r");
    *busy = *total = NULL;
    if (!f)
        return 0;
    uint32_t n = 0, cap = 0;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9')
            continue;
        unsigned long long v[10] = {0};
        int got = sscanf(line + 3, "%*u %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                         &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
        if (got < 4)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            *busy = hq_realloc(*busy, cap * sizeof **busy);
            *total = hq_realloc(*total, cap * sizeof **total);
        }
        /* user nice system idle iowait irq softirq steal (guest is inside user) */
        uint64_t idle = v[3] + v[4];
        uint64_t all = 0;
        for (int k = 0; k < 8 && k < got; k++)
            all += v[k];
        (*busy)[n] = all - idle;
        (*total)[n] = all;
        n++;
    }
    fclose(f);
    return n;
}

static json_t *s_cpu(wk_overview_t *o)
{
    uint64_t *busy, *total;
    uint32_t n = s_read_stat(o->proc_stat ? o->proc_stat : "/proc/stat", &busy, &total);
    json_t *a = json_array();
    for (uint32_t i = 0; i < n; i++) {
        uint64_t db = busy[i], dt = total[i];
        if (o->n_cores == n) {
            db -= o->busy[i] < db ? o->busy[i] : db;
            dt -= o->total[i] < dt ? o->total[i] : dt;
        }
        double pct = dt ? 100.0 * (double)db / (double)dt : 0.0;
        json_array_append_new(a, json_real(pct));
    }
    free(o->busy);
    free(o->total);
    o->busy = busy;
    o->total = total;
    o->n_cores = n;
    return json_pack("{s:o}", "cpu_per_core_percent_usage", a);
}

/* ---- memory and network ---- */

static json_t *s_memory(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    unsigned long long total = 0, avail = 0, v;
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "MemTotal: %llu kB", &v) == 1)
            total = v * 1024;
        else if (sscanf(line, "MemAvailable: %llu kB", &v) == 1)
            avail = v * 1024;
    }
    if (f)
        fclose(f);
    return json_pack("{s:I,s:I}", "free", (json_int_t)avail, "total", (json_int_t)total);
}

static json_t *s_network(void)
{
    FILE *f = fopen("/proc/net/dev", "r");
    unsigned long long s[6] = {0}; /* rx bytes, packets, errors; tx bytes, packets, errors */
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        unsigned long long v[16] = {0};
        if (sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10]) < 11)
            continue;
        s[0] += v[0];
        s[1] += v[1];
        s[2] += v[2];
        s[3] += v[8];
        s[4] += v[9];
        s[5] += v[10];
    }
    if (f)
        fclose(f);
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "rx_bytes", (json_int_t)s[0], "rx_packets",
                     (json_int_t)s[1], "rx_errors", (json_int_t)s[2], "tx_bytes", (json_int_t)s[3],
                     "tx_packets", (json_int_t)s[4], "tx_errors", (json_int_t)s[5]);
}

/* ---- GPUs ---- */

/* A GPU tool gets S_TOOL_MS: a hung GPU driver must not stall the worker's loop, and
 * with it its heartbeats. */
#define S_TOOL_MS 5000
#define S_TOOL_MAX_OUTPUT (1024 * 1024)

/* "10.0 %" or "100 MiB" -> 10.0 / 100 (the leading number). */
static int s_num(const char *s, double *out)
{
    char *end;
    while (*s == ' ')
        s++;
    *out = strtod(s, &end);
    return end == s ? -1 : 0;
}

static char *s_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\r' || s[n - 1] == '\n' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

json_t *wk_overview_parse_nvidia(const char *csv)
{
    json_t *gpus = json_array();
    char *copy = hq_strdup(csv);
    char *save = NULL;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[4];
        char *fs = NULL;
        int n = 0;
        for (char *p = strtok_r(line, ",", &fs); p && n < 4; p = strtok_r(NULL, ",", &fs))
            f[n++] = s_trim(p);
        double use, used, total;
        if (n < 4 || s_num(f[1], &use) || s_num(f[2], &used) || s_num(f[3], &total))
            continue;
        json_array_append_new(gpus, json_pack("{s:s,s:f,s:f}", "id", f[0], "processor_usage", use,
                                              "mem_usage", total > 0 ? 100.0 * used / total : 0.0));
    }
    free(copy);
    return json_pack("{s:o}", "gpus", gpus);
}

/* A rocm-smi value: a JSON string holding a number, or a number. */
static int s_jnum(const json_t *v, double *out)
{
    if (json_is_number(v)) {
        *out = json_number_value(v);
        return 0;
    }
    return json_is_string(v) ? s_num(json_string_value(v), out) : -1;
}

json_t *wk_overview_parse_rocm(const char *text)
{
    json_t *root = json_loads(text, 0, NULL);
    json_t *gpus = json_array();
    const char *card;
    json_t *c;
    json_object_foreach(root, card, c)
    {
        const char *bus = json_string_value(json_object_get(c, "PCI Bus"));
        double use, mem;
        if (!bus || s_jnum(json_object_get(c, "GPU use (%)"), &use) ||
            s_jnum(json_object_get(c, "GPU memory use (%)"), &mem))
            continue;
        json_array_append_new(
            gpus, json_pack("{s:s,s:f,s:f}", "id", bus, "processor_usage", use, "mem_usage", mem));
    }
    json_decref(root);
    return json_pack("{s:o}", "gpus", gpus);
}

/* Whether a program is on PATH (popen of a missing one would print "not found"). */
static bool s_on_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path)
        return false;
    char *copy = hq_strdup(path), *save = NULL;
    bool found = false;
    for (char *d = strtok_r(copy, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
        char *p = hq_asprintf("%s/%s", *d ? d : ".", prog);
        found = access(p, X_OK) == 0;
        free(p);
    }
    free(copy);
    return found;
}

/* ---- the whole state ---- */

char *wk_overview_collect(wk_overview_t *o)
{
    json_t *st = json_object();
    json_object_set_new(st, "timestamp", json_integer((json_int_t)time(NULL)));
    json_object_set_new(st, "cpu_usage", s_cpu(o));
    json_object_set_new(st, "memory_usage", s_memory());
    json_object_set_new(st, "network_usage", s_network());
    if (s_on_path("nvidia-smi")) {
        char *const argv[] = {"nvidia-smi", "--format=csv,noheader",
                              "--query-gpu=pci.bus_id,utilization.gpu,memory.used,memory.total",
                              NULL};
        char *out = wk_tool_output(argv, S_TOOL_MS, S_TOOL_MAX_OUTPUT);
        if (out)
            json_object_set_new(st, "nvidia_gpus", wk_overview_parse_nvidia(out));
        free(out);
    }
    if (s_on_path("rocm-smi")) {
        char *const argv[] = {"rocm-smi", "--json", "--showuse", "--showbus", "--showmemuse", NULL};
        char *out = wk_tool_output(argv, S_TOOL_MS, S_TOOL_MAX_OUTPUT);
        if (out)
            json_object_set_new(st, "amd_gpus", wk_overview_parse_rocm(out));
        free(out);
    }
    json_t *hw = json_pack("{s:o}", "state", st);
    char *text = json_dumps(hw, JSON_COMPACT);
    json_decref(hw);
    return text;
}

void wk_overview_fini(wk_overview_t *o)
{
    free(o->busy);
    free(o->total);
    *o = (wk_overview_t){0};
}
