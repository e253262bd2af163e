/* Worker command lines and submit scripts of allocations (script.h). */
#include "script.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_duration.h"
#include "hq_util.h"

/* One (flag, value, quoted) piece of the worker command line. */
typedef struct s_piece {
    const char *flag; /* "--cpus" */
    char *value;      /* owned; NULL for a bare flag */
    bool quoted;      /* written as "value" in the script */
} s_piece_t;

typedef struct s_pieces {
    s_piece_t items[64];
    size_t n;
} s_pieces_t;

static void s_add(s_pieces_t *ps, const char *flag, char *value, bool quoted)
{
    if (ps->n < sizeof ps->items / sizeof ps->items[0])
        ps->items[ps->n++] = (s_piece_t){flag, value, quoted};
    else
        free(value);
}

/* The flags after `<hq> worker start`, in the order of cli/REFERENCE.md §3.7. */
static void s_pieces(const hq_aparams_t *p, const char *run_dir, s_pieces_t *ps)
{
    ps->n = 0;
    s_add(ps, "--idle-timeout", hq_duration_format(p->idle_timeout_ns), true);
    s_add(ps, "--manager", hq_strdup(p->mgr == HQ_AMGR_PBS ? "pbs" : "slurm"), true);
    s_add(ps, "--server-dir", hq_strdup(run_dir), true);
    if (p->cpus)
        s_add(ps, "--cpus", hq_strdup(p->cpus), true);
    for (uint32_t i = 0; i < p->n_resources; i++)
        s_add(ps, "--resource", hq_strdup(p->resources[i]), true);
    if (p->coupling)
        s_add(ps, "--coupling", hq_strdup(p->coupling), true);
    if (p->group)
        s_add(ps, "--group", hq_strdup(p->group), false);
    if (p->no_ht)
        s_add(ps, "--no-hyper-threading", NULL, false);
    if (p->detect)
        s_add(ps, "--detect-resources", hq_strdup(p->detect), false);
    if (p->overview)
        s_add(ps, "--overview-interval", hq_strdup(p->overview), true);
    if (p->min_util > 0)
        s_add(ps, "--min-utilization", hq_asprintf("%g", p->min_util), false);
    s_add(ps, "--on-server-lost", hq_strdup(p->on_lost ? p->on_lost : "finish-running"), true);
    uint64_t tl = p->worker_time_limit_ns ? p->worker_time_limit_ns : p->timelimit_ns;
    s_add(ps, "--time-limit", hq_duration_format(tl), true);
}

static void s_pieces_free(s_pieces_t *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        free(ps->items[i].value);
    ps->n = 0;
}

json_t *hq_ascript_worker_args(const hq_aparams_t *p, const char *hq, const char *run_dir)
{
    s_pieces_t ps;
    s_pieces(p, run_dir, &ps);
    json_t *a = json_pack("[s,s,s]", hq, "worker", "start");
    for (size_t i = 0; i < ps.n; i++) {
        json_array_append_new(a, json_string(ps.items[i].flag));
        if (ps.items[i].value)
            json_array_append_new(a, json_string(ps.items[i].value));
    }
    s_pieces_free(&ps);
    return a;
}

char *hq_ascript_worker_cmd(const hq_aparams_t *p, const char *hq, const char *run_dir,
                            const char *rust_log)
{
    s_pieces_t ps;
    s_pieces(p, run_dir, &ps);
    hq_buf_t b = {0};
    if (p->start_cmd)
        hq_buf_printf(&b, "%s && ", p->start_cmd);
    if (rust_log && *rust_log)
        hq_buf_printf(&b, "RUST_LOG=%s ", rust_log);
    if (p->wrap_cmd)
        hq_buf_printf(&b, "%s ", p->wrap_cmd);
    hq_buf_printf(&b, "%s worker start", hq);
    for (size_t i = 0; i < ps.n; i++) {
        const s_piece_t *it = &ps.items[i];
        if (!it->value)
            hq_buf_printf(&b, " %s", it->flag);
        else
            hq_buf_printf(&b, it->quoted ? " %s \"%s\"" : " %s %s", it->flag, it->value);
    }
    if (p->stop_cmd)
        hq_buf_printf(&b, "; %s", p->stop_cmd);
    s_pieces_free(&ps);
    return b.data;
}

char *hq_ascript_walltime(uint64_t ns)
{
    uint64_t s = (ns + HQ_NS_PER_SEC - 1) / HQ_NS_PER_SEC;
    return hq_asprintf("%02llu:%02llu:%02llu", (unsigned long long)(s / 3600),
                       (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60));
}

char *hq_ascript_alloc_name(const hq_aparams_t *p, uint32_t queue_id, uint32_t n)
{
    if (p->name)
        return hq_asprintf("%s-%u", p->name, n);
    return hq_asprintf("hq-%u-%u", queue_id, n);
}

char *hq_ascript_text(const hq_aparams_t *p, uint32_t n, const char *name, const char *workdir,
                      const char *worker_cmd, bool dry_run)
{
    bool pbs = p->mgr == HQ_AMGR_PBS;
    const char *d = pbs ? "#PBS" : "#SBATCH";
    char *wt = hq_ascript_walltime(p->timelimit_ns);
    hq_buf_t b = {0};
    hq_buf_printf(&b, "#!/bin/bash\n");
    if (pbs)
        hq_buf_printf(&b,
                      "%s -l select=%u\n%s -N %s\n%s -o %s/stdout\n%s -e %s/stderr\n"
                      "%s -l walltime=%s\n",
                      d, n, d, name, d, workdir, d, workdir, d, wt);
    else
        hq_buf_printf(&b,
                      "%s --nodes=%u\n%s --job-name=%s\n%s --output=%s/stdout\n"
                      "%s --error=%s/stderr\n%s --time=%s\n",
                      d, n, d, name, d, workdir, d, workdir, d, wt);
    if (p->n_extra > 0) {
        hq_buf_printf(&b, "%s", d);
        for (uint32_t i = 0; i < p->n_extra; i++)
            hq_buf_printf(&b, " %s", p->extra[i]);
        hq_buf_printf(&b, "\n");
    }
    if (pbs && dry_run)
        hq_buf_printf(&b, "#PBS -h\n");
    hq_buf_printf(&b, "\n");
    if (n > 1 && pbs)
        hq_buf_printf(&b, "pbsdsh -- bash -l -c '%s'\n", worker_cmd);
    else if (n > 1)
        hq_buf_printf(&b, "srun --overlap --ntasks=%u --nodes=%u %s\n", n, n, worker_cmd);
    else
        hq_buf_printf(&b, "%s\n", worker_cmd);
    free(wt);
    return b.data;
}
