/* `hq worker start` (cli/REFERENCE.md §3.2): the worker configuration built from its
 * flags (declared in the command table, hq_cmds_infra.c): durations, resources given
 * and detected, the allocation manager (SLURM/PBS) with its time limit and group, the
 * hostname and the working directory. Reported to the broker in REGISTER. */
#include "wk.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hq_cmdtable.h"
#include "hq_duration.h"
#include "hq_placeholder.h"
#include "hq_util.h"

#define WK_DEFAULT_HEARTBEAT_NS (8 * HQ_NS_PER_SEC)

/* ---- configuration ---- */

/* Exit code 2 for command-line errors, 1 for HQ-level errors. */
typedef struct s_cfg_err {
    int code;
    hq_err_t err;
} s_cfg_err_t;

static int s_cli_error(s_cfg_err_t *e, const char *flag, const char *value, const char *detail)
{
    hq_args_invalid_value(&e->err, hq_cmd_find("worker start")->opts, flag, value, detail);
    e->code = 2;
    return -1;
}

static int s_choice_error(s_cfg_err_t *e, const char *flag, const char *vname, const char *value,
                          const char *choices)
{
    hq_err_set(&e->err, "error: invalid value '%s' for '--%s <%s>'\n  [possible values: %s]", value,
               flag, vname, choices);
    e->code = 2;
    return -1;
}

static int s_hq_error(s_cfg_err_t *e, const char *text)
{
    hq_err_set(&e->err, "%s", text);
    e->code = 1;
    return -1;
}

static int s_duration(const hq_args_t *a, const char *flag, uint64_t *out, s_cfg_err_t *e)
{
    const char *v = hq_args_get(a, flag);
    if (!v)
        return 0;
    hq_err_t err;
    if (hq_duration_parse(v, out, &err) != 0)
        return s_cli_error(e, flag, v, err.text);
    return 0;
}

static char *s_make_work_dir(const char *given, hq_err_t *err)
{
    if (given) {
        char *cwd = getcwd(NULL, 0);
        char *abs = hq_path_abs(given, cwd);
        free(cwd);
        char *probe = hq_asprintf("%s/.", abs);
        int rc = wk_mkdir_parents(probe);
        free(probe);
        if (rc != 0) {
            hq_err_set(err, "Cannot create working directory \"%s\": %s", abs, strerror(errno));
            free(abs);
            return NULL;
        }
        return abs;
    }
    const char *tmp = getenv("TMPDIR");
    char *tmpl = hq_asprintf("%s/hq-workerXXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpl)) {
        hq_err_set(err, "Cannot create a temporary working directory: %s", strerror(errno));
        free(tmpl);
        return NULL;
    }
    char *wd = hq_asprintf("%s/work", tmpl);
    free(tmpl);
    if (mkdir(wd, 0700) != 0) {
        hq_err_set(err, "Cannot create \"%s\": %s", wd, strerror(errno));
        free(wd);
        return NULL;
    }
    return wd;
}

static int s_resources(const hq_args_t *a, hq_worker_conf_t *c, s_cfg_err_t *e)
{
    hq_wres_list_t *l = &c->resources;
    const char *cpus = hq_args_get(a, "cpus");
    size_t nres = hq_args_count(a, "resource");
    for (size_t i = 0; i < nres; i++) {
        const char *v = hq_args_at(a, "resource", i);
        hq_wres_t r;
        hq_err_t err;
        if (hq_wres_parse_named(v, &r, &err) != 0)
            return s_cli_error(e, "resource", v, err.text);
        if (wk_wres_list_find(l, r.name) >= 0) {
            hq_err_set(&e->err, "Resource '%s' defined more than once", r.name);
            e->code = 1;
            hq_wres_clear(&r);
            return -1;
        }
        if (strcmp(r.name, "cpus") == 0) {
            if (cpus) {
                hq_wres_clear(&r);
                return s_hq_error(e,
                                  "Parameters --cpus and --resource cpus=... cannot be combined");
            }
            if (r.kind == HQ_RES_SUM) {
                hq_wres_clear(&r);
                return s_hq_error(
                    e, "Resource kind `sum` cannot be used with CPUs. CPUs must have identity");
            }
        }
        wk_wres_list_push(l, &r);
    }
    if (cpus) {
        hq_wres_t r;
        hq_err_t err;
        if (hq_wres_parse_cpus(cpus, &r, &err) != 0)
            return s_cli_error(e, "cpus", cpus, err.text);
        wk_wres_list_push(l, &r);
    }
    unsigned bits = WK_DETECT_ALL;
    const char *det = hq_args_get(a, "detect-resources");
    if (det) {
        hq_err_t err;
        if (wk_detect_parse(det, &bits, &err) != 0)
            return s_cli_error(e, "detect-resources", det, err.text);
    }
    if (wk_wres_list_find(l, "cpus") < 0 && !(bits & WK_DETECT_CPUS))
        return s_hq_error(e,
                          "You have to specify --cpus explicitly when opting out of CPU automatic "
                          "detection");
    hq_err_t err;
    if (wk_detect_all(bits, hq_args_has(a, "no-hyper-threading"), l, &err) != 0)
        return s_hq_error(e, err.text);
    wk_wres_list_sort(l);
    /* Coupling indices refer to the name-sorted list. */
    const char *cpl = hq_args_get(a, "coupling");
    if (cpl && hq_coupling_parse(cpl, l, &c->coupling, &c->n_coupling, &err) != 0)
        return s_cli_error(e, "coupling", cpl, err.text);
    if (hq_coupling_validate(c->coupling, c->n_coupling, l, &err) != 0)
        return s_hq_error(e, err.text);
    return 0;
}

static int s_configure(wk_t *w, const hq_args_t *a, s_cfg_err_t *e)
{
    hq_worker_conf_t *c = &w->conf;
    c->heartbeat_ns = WK_DEFAULT_HEARTBEAT_NS;
    if (s_duration(a, "heartbeat", &c->heartbeat_ns, e) != 0 ||
        s_duration(a, "idle-timeout", &c->idle_timeout_ns, e) != 0 ||
        s_duration(a, "time-limit", &c->time_limit_ns, e) != 0)
        return -1;
    uint64_t retract = 30 * HQ_NS_PER_SEC;
    if (s_duration(a, "retract-check-interval", &retract, e) != 0)
        return -1;
    if (c->heartbeat_ns < HQ_NS_PER_MS)
        return s_cli_error(e, "heartbeat", hq_args_get(a, "heartbeat"),
                           "the heartbeat interval must be at least 1ms");
    const char *ov = hq_args_get(a, "overview-interval");
    if (ov) {
        hq_err_t err;
        if (hq_duration_parse_human(ov, &c->overview_ns, &err) != 0)
            return s_cli_error(e, "overview-interval", ov, err.text);
    }
    const char *mu = hq_args_get(a, "min-utilization");
    if (mu) {
        char *end;
        errno = 0;
        double v = strtod(mu, &end);
        if (end == mu || *end || errno || isnan(v))
            return s_cli_error(e, "min-utilization", mu, "invalid float literal");
        if (v < 0.0 || v > 1.0)
            return s_cli_error(e, "min-utilization", mu,
                               "Minimal utilization has to be in the interval [0.0, 1.0].");
        c->min_utilization = v;
    }
    const char *lost = hq_args_get(a, "on-server-lost");
    if (lost && strcmp(lost, "stop") == 0)
        c->on_server_lost = HQ_LOST_STOP;
    else if (lost && strcmp(lost, "finish-running") == 0)
        c->on_server_lost = HQ_LOST_FINISH_RUNNING;
    else if (lost)
        return s_choice_error(e, "on-server-lost", "ON_SERVER_LOST", lost, "stop, finish-running");
    const char *mgr = hq_args_get(a, "manager");
    if (mgr && strcmp(mgr, "detect") != 0 && strcmp(mgr, "none") != 0 && strcmp(mgr, "pbs") != 0 &&
        strcmp(mgr, "slurm") != 0)
        return s_choice_error(e, "manager", "MANAGER", mgr, "detect, none, pbs, slurm");
    if (s_resources(a, c, e) != 0)
        return -1;
    wk_manager_info_t mi;
    if (wk_manager_detect(mgr ? mgr : "detect", &mi, &e->err) != 0) {
        e->code = 1;
        return -1;
    }
    c->manager = mi.manager;
    c->manager_job_id = hq_strdup(mi.job_id ? mi.job_id : "");
    if (!hq_args_has(a, "time-limit") && mi.remaining_ns)
        c->time_limit_ns = mi.remaining_ns;
    const char *group = hq_args_get(a, "group");
    c->group = hq_strdup(group ? group : mi.job_id ? mi.job_id : "default");
    wk_manager_info_clear(&mi);
    const char *host = hq_args_get(a, "hostname");
    c->hostname = host ? hq_strdup(host) : hq_hostname();
    c->work_dir = s_make_work_dir(hq_args_get(a, "work-dir"), &e->err);
    if (!c->work_dir) {
        e->code = 1;
        return -1;
    }
    if (!hq_args_get(a, "work-dir")) { /* ".../hq-workerXXXXXX/work": remove it at exit */
        w->temp_root = hq_strdup(c->work_dir);
        char *slash = strrchr(w->temp_root, '/');
        if (slash)
            *slash = '\0';
    }
    c->listen_address = hq_strdup("");
    c->pid = (uint32_t)getpid();
    c->started_ns = hq_wall_ns();
    c->version = hq_strdup(HQ_VERSION);
    return 0;
}

int wk_configure(wk_t *w, const hq_args_t *a, hq_err_t *err)
{
    s_cfg_err_t ce = {0};
    if (s_configure(w, a, &ce) == 0)
        return 0;
    *err = ce.err;
    return ce.code;
}
