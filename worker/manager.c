/* Detection of the batch system the worker runs under (SLURM or PBS): the allocation
 * id (the default worker group) and the remaining wall time (the default worker time
 * limit). Everything read here comes from the environment or another program's
 * output, so every failure degrades to "unknown" with a warning; only an explicitly
 * requested manager outside its batch system (`--manager slurm|pbs`) is an error. */
#include "wk.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HQ_LOG_MODULE "hq::worker"
#include <jansson.h>

#include "hq_duration.h"
#include "hq_log.h"
#include "hq_util.h"
#include "tool.h"

extern char **environ;

#define WK_CMD_MAX_OUTPUT (1024 * 1024)
#define WK_CMD_TIMEOUT_MS 10000

void wk_manager_info_clear(wk_manager_info_t *m)
{
    free(m->job_id);
    memset(m, 0, sizeof *m);
}

int wk_parse_walltime(const char *s, uint64_t *ns)
{
    while (isspace((unsigned char)*s))
        s++;
    uint64_t days = 0;
    const char *dash = strchr(s, '-');
    if (dash) {
        char *end;
        errno = 0;
        unsigned long long d = strtoull(s, &end, 10);
        if (end != dash || end == s || errno)
            return -1;
        days = d;
        s = dash + 1;
    }
    uint64_t fields[3];
    int n = 0;
    const char *p = s;
    for (;;) {
        if (!isdigit((unsigned char)*p) || n == 3)
            return -1;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || v > 1000000000ULL)
            return -1;
        fields[n++] = v;
        p = end;
        if (*p == ':') {
            p++;
            continue;
        }
        break;
    }
    while (isspace((unsigned char)*p))
        p++;
    if (*p)
        return -1;
    uint64_t secs = 0;
    for (int i = 0; i < n; i++)
        secs = secs * 60 + fields[i];
    if (n == 3 || days == 0)
        secs += days * 86400;
    else /* "D-HH" / "D-HH:MM": fields start at hours */
        secs = days * 86400 + fields[0] * 3600 + (n > 1 ? fields[1] * 60 : 0);
    *ns = secs * HQ_NS_PER_SEC;
    return 0;
}

/* Finds "key=value" in scontrol's space-separated output and returns the value. Caller
 * frees. */
static char *s_field(const char *text, const char *key)
{
    size_t kl = strlen(key);
    const char *p = text;
    while ((p = strstr(p, key)) != NULL) {
        bool start_ok = p == text || isspace((unsigned char)p[-1]);
        const char *q = p + kl;
        if (start_ok && *q == '=') {
            q++;
            size_t n = 0;
            while (q[n] && !isspace((unsigned char)q[n]))
                n++;
            return hq_strndup(q, n);
        }
        p += kl;
    }
    return NULL;
}

static uint64_t s_slurm_remaining(const char *job_id)
{
    const char *end_time = getenv("SLURM_JOB_END_TIME");
    if (end_time && *end_time) {
        char *e;
        errno = 0;
        long long t = strtoll(end_time, &e, 10);
        if (!errno && !*e && e != end_time) {
            long long now = (long long)time(NULL);
            return t > now ? (uint64_t)(t - now) * HQ_NS_PER_SEC : 0;
        }
    }
    char *argv[] = {"scontrol", "show", "job", (char *)job_id, NULL};
    char *out = wk_tool_output(argv, WK_CMD_TIMEOUT_MS, WK_CMD_MAX_OUTPUT);
    if (!out) {
        hq_warn("Could not get the remaining time of SLURM job %s (scontrol failed); the "
                "worker has no time limit",
                job_id);
        return 0;
    }
    char *limit = s_field(out, "TimeLimit");
    char *run = s_field(out, "RunTime");
    uint64_t limit_ns = 0, run_ns = 0, rem = 0;
    if (limit && wk_parse_walltime(limit, &limit_ns) == 0) {
        if (!run || wk_parse_walltime(run, &run_ns) != 0)
            run_ns = 0;
        rem = limit_ns > run_ns ? limit_ns - run_ns : 0;
    } else if (!limit || strcmp(limit, "UNLIMITED") != 0) {
        hq_warn("Could not parse the time limit of SLURM job %s; the worker has no time limit",
                job_id);
    }
    free(limit);
    free(run);
    free(out);
    return rem;
}

/* The string at obj.k1.k2 of a decoded JSON document, or NULL. */
static const char *s_json_str2(json_t *obj, const char *k1, const char *k2)
{
    json_t *v = json_object_get(json_object_get(obj, k1), k2);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* `qstat -f ID -F json`: Jobs.<ID>.Resource_List.walltime minus
 * Jobs.<ID>.resources_used.walltime (absent before the job's first accounting tick). */
static uint64_t s_pbs_remaining(const char *job_id)
{
    char *argv[] = {"qstat", "-f", (char *)job_id, "-F", "json", NULL};
    char *out = wk_tool_output(argv, WK_CMD_TIMEOUT_MS, WK_CMD_MAX_OUTPUT);
    if (!out) {
        hq_warn("Could not get the remaining time of PBS job %s (qstat failed); the worker has "
                "no time limit",
                job_id);
        return 0;
    }
    json_error_t jerr;
    json_t *doc = json_loads(out, 0, &jerr);
    free(out);
    json_t *job = json_object_get(json_object_get(doc, "Jobs"), job_id);
    const char *limit = s_json_str2(job, "Resource_List", "walltime");
    const char *used = s_json_str2(job, "resources_used", "walltime");
    uint64_t limit_ns = 0, used_ns = 0, rem = 0;
    if (limit && wk_parse_walltime(limit, &limit_ns) == 0) {
        if (!used || wk_parse_walltime(used, &used_ns) != 0)
            used_ns = 0;
        rem = limit_ns > used_ns ? limit_ns - used_ns : 0;
    } else {
        hq_warn("Could not find the walltime of PBS job %s in the output of `qstat -f %s -F "
                "json`; the worker has no time limit",
                job_id, job_id);
    }
    json_decref(doc);
    return rem;
}

static const char *s_slurm_id(void)
{
    const char *id = getenv("SLURM_JOB_ID");
    if (!id || !*id)
        id = getenv("SLURM_JOBID");
    return id && *id ? id : NULL;
}

static bool s_pbs_env(void)
{
    const char *env = getenv("PBS_ENVIRONMENT");
    return env && *env;
}

static const char *s_pbs_id(void)
{
    const char *id = getenv("PBS_JOBID");
    return s_pbs_env() && id && *id ? id : NULL;
}

static bool s_sane_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 256)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isprint((unsigned char)id[i]) || isspace((unsigned char)id[i]))
            return false;
    return true;
}

int wk_manager_detect(const char *which, wk_manager_info_t *out, hq_err_t *err)
{
    memset(out, 0, sizeof *out);
    bool slurm = false, pbs = false;
    if (!which || strcmp(which, "detect") == 0) {
        slurm = s_slurm_id() != NULL;
        pbs = !slurm && s_pbs_id() != NULL;
    } else if (strcmp(which, "slurm") == 0) {
        slurm = true;
    } else if (strcmp(which, "pbs") == 0) {
        pbs = true;
    } else if (strcmp(which, "none") != 0) {
        return hq_err_set(err, "invalid manager '%s' (possible values: detect, none, pbs, slurm)",
                          which);
    }
    /* An explicit manager outside its batch system is an error, as in HyperQueue. */
    if (slurm && !s_slurm_id())
        return hq_err_set(err,
                          "SLURM_JOB_ID/SLURM_JOBID not found. The process is not running under "
                          "SLURM");
    if (pbs && !s_pbs_env())
        return hq_err_set(err, "PBS_ENVIRONMENT not found. The process is not running under PBS");
    if (pbs && !s_pbs_id())
        return hq_err_set(err, "PBS_JOBID not found. The process is not running under PBS");
    const char *id = slurm ? s_slurm_id() : pbs ? s_pbs_id() : NULL;
    if ((slurm || pbs) && !s_sane_id(id))
        return hq_err_set(err, "Invalid %s job id '%s' in the environment", slurm ? "SLURM" : "PBS",
                          id);
    if (slurm) {
        out->manager = HQ_MANAGER_SLURM;
        out->job_id = hq_strdup(id);
        out->remaining_ns = s_slurm_remaining(id);
        hq_info("SLURM environment detected (job %s)", id);
    } else if (pbs) {
        out->manager = HQ_MANAGER_PBS;
        out->job_id = hq_strdup(id);
        out->remaining_ns = s_pbs_remaining(id);
        hq_info("PBS environment detected (job %s)", id);
    }
    return 0;
}
