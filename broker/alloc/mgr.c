/* Batch system command lines and outputs (mgr.h). */
#include "mgr.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hq_util.h"

void hq_argv_clear(hq_argv_t *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    a->n = 0;
    a->v[0] = NULL;
}

static void s_push(hq_argv_t *a, const char *s)
{
    if (a->n < (int)(sizeof a->v / sizeof a->v[0]) - 1)
        a->v[a->n++] = hq_strdup(s);
    a->v[a->n] = NULL;
}

void hq_mgr_submit_argv(enum hq_amgr m, bool dry_run, hq_argv_t *out)
{
    out->n = 0;
    s_push(out, m == HQ_AMGR_PBS ? "qsub" : "sbatch");
    if (dry_run && m == HQ_AMGR_SLURM)
        s_push(out, "--hold");
    s_push(out, "hq-submit.sh");
}

/* The first line of text starting with prefix (NULL prefix: the first non-blank
 * line), trimmed; NULL when none. */
static char *s_line(const char *text, const char *prefix)
{
    for (const char *l = text; l && *l;) {
        const char *nl = strchr(l, '\n');
        size_t len = nl ? (size_t)(nl - l) : strlen(l);
        while (len && isspace((unsigned char)*l)) {
            l++;
            len--;
        }
        while (len && isspace((unsigned char)l[len - 1]))
            len--;
        if (len && (!prefix || (len >= strlen(prefix) && strncmp(l, prefix, strlen(prefix)) == 0)))
            return hq_strndup(l, len);
        l = nl ? nl + 1 : NULL;
    }
    return NULL;
}

/* A job id is a non-empty word of printable characters without spaces or quotes. */
static bool s_valid_id(const char *s)
{
    if (!s || !*s || strlen(s) > 256)
        return false;
    for (const char *p = s; *p; p++)
        if (!isgraph((unsigned char)*p) || *p == '"' || *p == '\'' || *p == '/')
            return false;
    return true;
}

char *hq_mgr_parse_submit(enum hq_amgr m, const char *out)
{
    char *line = s_line(out, m == HQ_AMGR_PBS ? NULL : "Submitted batch job");
    if (!line)
        return NULL;
    char *id = NULL;
    if (m == HQ_AMGR_PBS) {
        id = line;
        line = NULL;
    } else {
        /* the 4th word */
        char *save = NULL, *w = strtok_r(line, " \t", &save);
        for (int k = 1; w && k < 4; k++)
            w = strtok_r(NULL, " \t", &save);
        id = w ? hq_strdup(w) : NULL;
    }
    free(line);
    if (!s_valid_id(id)) {
        free(id);
        return NULL;
    }
    return id;
}

void hq_mgr_status_argv(enum hq_amgr m, char *const *ids, uint32_t n, hq_argv_t *out)
{
    out->n = 0;
    if (m == HQ_AMGR_SLURM) {
        s_push(out, "scontrol");
        s_push(out, "show");
        s_push(out, "job");
        s_push(out, n ? ids[0] : "");
        return;
    }
    s_push(out, "qstat");
    for (uint32_t i = 0; i < n && out->n < 56; i++) {
        s_push(out, "-f");
        s_push(out, ids[i]);
    }
    s_push(out, "-F");
    s_push(out, "json");
    s_push(out, "-x");
}

static enum hq_mstate s_slurm_state(const char *st)
{
    static const char *const queued[] = {"PENDING",      "CONFIGURING", "REQUEUED",
                                         "REQUEUE_HOLD", "REQUEUE_FED", "SUSPENDED",
                                         "RESV_DEL_HOLD"};
    for (size_t i = 0; i < sizeof queued / sizeof queued[0]; i++)
        if (strcmp(st, queued[i]) == 0)
            return HQ_MS_QUEUED;
    if (strcmp(st, "RUNNING") == 0 || strcmp(st, "COMPLETING") == 0 ||
        strcmp(st, "STAGE_OUT") == 0 || strcmp(st, "SIGNALING") == 0 || strcmp(st, "RESIZING") == 0)
        return HQ_MS_RUNNING;
    if (strcmp(st, "COMPLETED") == 0)
        return HQ_MS_FINISHED;
    return *st ? HQ_MS_FAILED : HQ_MS_UNKNOWN;
}

static enum hq_mstate s_pbs_state(const json_t *job)
{
    const char *st = json_string_value(json_object_get(job, "job_state"));
    if (!st)
        return HQ_MS_UNKNOWN;
    if (strchr("QHWTS", st[0]))
        return HQ_MS_QUEUED;
    if (strchr("RE", st[0]))
        return HQ_MS_RUNNING;
    if (st[0] == 'F') {
        const json_t *ex = json_object_get(job, "Exit_status");
        return !ex || (json_is_integer(ex) && json_integer_value(ex) == 0) ? HQ_MS_FINISHED
                                                                           : HQ_MS_FAILED;
    }
    return HQ_MS_UNKNOWN;
}

enum hq_mstate hq_mgr_parse_status(enum hq_amgr m, const char *id, int exit_code, const char *out,
                                   const char *err)
{
    if (m == HQ_AMGR_SLURM) {
        if (exit_code != 0)
            return err && strstr(err, "Invalid job id") ? HQ_MS_GONE : HQ_MS_UNKNOWN;
        const char *p = out ? strstr(out, "JobState=") : NULL;
        if (!p)
            return HQ_MS_UNKNOWN;
        p += strlen("JobState=");
        char st[32];
        size_t k = 0;
        while (p[k] && !isspace((unsigned char)p[k]) && k < sizeof st - 1) {
            st[k] = p[k];
            k++;
        }
        st[k] = '\0';
        return s_slurm_state(st);
    }
    json_error_t jerr;
    json_t *root = out ? json_loads(out, 0, &jerr) : NULL;
    if (!root)
        return HQ_MS_UNKNOWN;
    const json_t *jobs = json_object_get(root, "Jobs");
    const json_t *job = json_object_get(jobs, id);
    /* PBS may print ids with the server name appended ("12.server" for "12") */
    const char *key;
    const json_t *v;
    size_t idlen = strlen(id);
    json_object_foreach((json_t *)jobs, key, v)
    {
        if (!job && strncmp(key, id, idlen) == 0 && (key[idlen] == '.' || key[idlen] == '\0'))
            job = v;
    }
    enum hq_mstate st =
        job ? s_pbs_state(job) : (json_is_object(jobs) ? HQ_MS_GONE : HQ_MS_UNKNOWN);
    json_decref(root);
    return st;
}

void hq_mgr_cancel_argv(enum hq_amgr m, const char *id, hq_argv_t *out)
{
    out->n = 0;
    s_push(out, m == HQ_AMGR_PBS ? "qdel" : "scancel");
    s_push(out, id);
}
