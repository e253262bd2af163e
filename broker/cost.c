/* What a submit costs in memory and what the broker can still hold, so a submit that
 * would exhaust it is refused before it is journaled (an accepted record the broker
 * cannot apply would stop it at every restart). The limit is the smallest of
 * RLIMIT_AS, the cgroup's memory limit and the memory available at start, less what is
 * in use; broker/GUARANTEES.md documents the cost of a task. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cost.h"
#include "hq_idrange.h"

static uint64_t s_avail_start; /* MemAvailable at start (0 = unknown) */
static uint64_t s_rss_start;   /* resident bytes at start */

/* A number after key in a "key value [kB]" file such as /proc/meminfo; 0 if absent. */
static uint64_t s_field(const char *path, const char *key)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    char line[256];
    uint64_t v = 0;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, n) == 0) {
            unsigned long long x = strtoull(line + n, NULL, 10);
            v = strstr(line, "kB") ? (uint64_t)x * 1024 : (uint64_t)x;
            break;
        }
    }
    fclose(f);
    return v;
}

/* One number in a file (cgroup files); 0 for "max", a missing file or junk. */
static uint64_t s_number(const char *path)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    char buf[64] = "";
    uint64_t v = 0;
    if (fgets(buf, sizeof buf, f) && buf[0] >= '0' && buf[0] <= '9')
        v = strtoull(buf, NULL, 10);
    fclose(f);
    return v;
}

/* The cgroup's limit and usage (v2 memory.max, else v1 memory.limit_in_bytes); false
 * when there is no limit. */
static bool s_cgroup(uint64_t *limit, uint64_t *used)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return false;
    char line[1024], path[1200];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        const char *v2 = strncmp(line, "0::", 3) == 0 ? line + 3 : NULL;
        const char *v1 = strstr(line, ":memory:");
        const char *rel = v2 ? v2 : v1 ? v1 + 8 : NULL;
        if (!rel)
            continue;
        for (int pass = 0; pass < 2 && !found; pass++) {
            const char *r = pass ? "" : rel; /* a container sees its own cgroup at the root */
            snprintf(path, sizeof path,
                     v2 ? "/sys/fs/cgroup%s/memory.max"
                        : "/sys/fs/cgroup/memory%s/memory.limit_in_bytes",
                     r);
            uint64_t lim = s_number(path);
            if (!lim || lim >= (1ull << 60))
                continue;
            snprintf(path, sizeof path,
                     v2 ? "/sys/fs/cgroup%s/memory.current"
                        : "/sys/fs/cgroup/memory%s/memory.usage_in_bytes",
                     r);
            *limit = lim;
            *used = s_number(path);
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* Virtual and resident size of this process. */
static void s_self(uint64_t *vsize, uint64_t *rss)
{
    unsigned long long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "re");
    if (f) {
        if (fscanf(f, "%llu %llu", &pages, &res) != 2)
            pages = res = 0;
        fclose(f);
    }
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    *vsize = pages * page;
    *rss = res * page;
}

void hq_cost_init(void)
{
    uint64_t vs;
    s_self(&vs, &s_rss_start);
    s_avail_start = s_field("/proc/meminfo", "MemAvailable:");
}

static void s_take(hq_headroom_t *h, uint64_t limit, uint64_t used, const char *what)
{
    uint64_t left = used < limit ? limit - used : 0;
    if (h->limit && left >= h->bytes)
        return;
    h->bytes = left;
    h->limit = limit;
    h->used = used;
    snprintf(h->what, sizeof h->what, "%s", what);
}

void hq_cost_headroom(hq_headroom_t *h)
{
    memset(h, 0, sizeof *h);
    uint64_t vs, rss;
    s_self(&vs, &rss);
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        s_take(h, (uint64_t)rl.rlim_cur, vs, "the address-space limit (RLIMIT_AS)");
    uint64_t cg_lim, cg_used;
    if (s_cgroup(&cg_lim, &cg_used))
        s_take(h, cg_lim, cg_used, "the cgroup's memory limit");
    if (s_avail_start)
        s_take(h, s_avail_start + s_rss_start, rss, "the memory available at start");
    if (!h->limit)
        h->bytes = UINT64_MAX;
    /* What the broker needs to go on serving (replies, dispatch, the journal). */
    h->bytes = h->bytes > HQ_COST_RESERVE ? h->bytes - HQ_COST_RESERVE : 0;
}

uint64_t hq_submit_tasks(const hq_submit_t *s)
{
    if (s->n_graph > 0)
        return s->n_graph;
    if (s->ids.n > 0)
        return hq_rangelist_count(&s->ids);
    return s->n_entries ? s->n_entries : 1;
}

uint64_t hq_submit_cost(const hq_submit_t *s, size_t frame_bytes)
{
    return hq_submit_tasks(s) * HQ_TASK_BYTES + (uint64_t)frame_bytes * HQ_FRAME_COPIES;
}

static size_t s_str(const char *s)
{
    return (s ? strlen(s) : 0) + 9;
}

size_t hq_def_wire_bytes(const hq_task_def_t *d)
{
    size_t n = 512 + s_str(d->cwd) + s_str(d->out.path) + s_str(d->err.path) +
               (size_t)d->stdin_data.len + 9;
    for (uint32_t k = 0; k < d->n_args; k++)
        n += s_str(d->args[k]);
    for (uint32_t k = 0; k < d->n_env; k++)
        n += s_str(d->env[k].key) + s_str(d->env[k].value);
    for (uint32_t v = 0; v < d->n_variants; v++) {
        n += 64;
        for (uint32_t k = 0; k < d->variants[v].n_entries; k++)
            n += 32 + s_str(d->variants[v].entries[k].name);
    }
    return n;
}

size_t hq_task_wire_bytes(size_t entry_len)
{
    return 96 + entry_len;
}

int hq_cost_check_frame(const hq_submit_t *s, hq_err_t *err)
{
    size_t paths = s_str(s->submit_dir) + s_str(s->stream_dir);
    size_t entry = 0;
    for (uint32_t k = 0; k < s->n_entries; k++)
        if (s->entries[k].len > entry)
            entry = s->entries[k].len;
    for (uint32_t i = 0; i < s->n_defs; i++) {
        size_t n = hq_def_wire_bytes(&s->defs[i]) + paths + hq_task_wire_bytes(entry);
        if (n > HQ_ASSIGN_MAX_BYTES)
            return hq_err_set(err,
                              "A task of this submit takes %zu bytes (its command, environment "
                              "and stdin%s), more than one message to a worker can carry "
                              "(%zu bytes); pass large inputs as files",
                              n, s->n_entries ? " and its entry" : "", HQ_ASSIGN_MAX_BYTES);
    }
    return 0;
}

static double s_mb(uint64_t v)
{
    return (double)v / 1e6;
}

int hq_cost_check_submit(const hq_submit_t *s, size_t frame_bytes, hq_err_t *err)
{
    uint64_t cost = hq_submit_cost(s, frame_bytes);
    hq_headroom_t h;
    hq_cost_headroom(&h);
    if (cost <= h.bytes)
        return 0;
    uint64_t tasks = hq_submit_tasks(s);
    return hq_err_set(err,
                      "The submit of %llu tasks needs about %.1f MB of server memory (%d bytes "
                      "per task and %zu bytes of definitions) but the server can take only "
                      "%.1f MB more (%s is %.1f MB and %.1f MB are in use); submit fewer "
                      "tasks at a time or give the server more memory",
                      (unsigned long long)tasks, s_mb(cost), HQ_TASK_BYTES, frame_bytes,
                      s_mb(h.bytes), h.what, s_mb(h.limit), s_mb(h.used));
}
