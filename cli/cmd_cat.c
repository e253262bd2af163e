/* `hq job cat`: prints the stdout/stderr files of tasks, as named by the task
 * paths the broker resolved (TASK_LIST), verbatim; the output of streamed tasks comes
 * from their stream directory (outlog.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_util.h"
#include "outlog.h"

#define S_TASK_STATES                                                                              \
    (HQ_ST_WAITING | HQ_ST_RUNNING | HQ_ST_FINISHED | HQ_ST_FAILED | HQ_ST_CANCELED | HQ_ST_ABORTED)
#define S_ENUM_LIMIT 1000000

static long long s_id(const json_t *t)
{
    return (long long)json_integer_value(json_object_get(t, "id"));
}

static int s_task_cmp(const void *a, const void *b)
{
    long long x = s_id(*(const json_t *const *)a), y = s_id(*(const json_t *const *)b);
    return x < y ? -1 : x > y;
}

static int s_ll_cmp(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static void s_copy_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        hq_warn("File at `%s` cannot be opened: %s (os error %d)", path, strerror(e), e);
        return;
    }
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, n, stdout);
    fclose(f);
}

/* Warns about requested ids that the job does not have. */
static void s_missing(long long job, const hq_rangelist_t *want, const json_t **tasks, size_t n)
{
    if (hq_rangelist_count(want) > S_ENUM_LIMIT)
        return;
    for (uint32_t r = 0; r < want->n; r++) {
        const hq_range_t *rg = &want->ranges[r];
        for (uint64_t id = rg->start; id <= rg->end; id += rg->step) {
            size_t lo = 0, hi = n;
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (s_id(tasks[mid]) < (long long)id)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo >= n || s_id(tasks[lo]) != (long long)id)
                hq_warn("Task %llu of job %lld not found", (unsigned long long)id, job);
        }
    }
}

/* The stream directories read so far (one job's tasks share one, usually). */
typedef struct s_streams {
    hq_olog_t *logs;
    size_t n;
    char *uid; /* the server's uid: its streams only */
} s_streams_t;

/* Prints a streamed task's output from its stream directory. */
static void s_print_streamed(s_streams_t *ss, long long job, const json_t *task,
                             const char *channel)
{
    const char *dir = json_string_value(json_object_get(task, "_stream"));
    if (!dir)
        return;
    hq_olog_t *o = NULL;
    for (size_t i = 0; i < ss->n && !o; i++)
        if (strcmp(ss->logs[i].dir, dir) == 0)
            o = &ss->logs[i];
    if (!o) {
        ss->logs = hq_realloc(ss->logs, (ss->n + 1) * sizeof *ss->logs);
        o = &ss->logs[ss->n++];
        hq_err_t err;
        if (hq_olog_open(o, dir, ss->uid, &err) != 0) /* warned once per directory */
            hq_warn("Cannot read the stream directory %s: %s", dir, err.text);
        hq_olog_index(o);
    }
    hq_olog_write(o, hq_olog_find(o, (uint32_t)job, (uint32_t)s_id(task)),
                  strcmp(channel, "stderr") == 0, stdout, NULL);
}

static void s_print_job(s_streams_t *ss, long long job, const json_t *arr, const char *channel,
                        bool header, const hq_rangelist_t *want, bool check_missing)
{
    size_t n = json_array_size(arr);
    const json_t **tasks = hq_calloc(n ? n : 1, sizeof *tasks);
    for (size_t i = 0; i < n; i++)
        tasks[i] = json_array_get(arr, i);
    qsort(tasks, n, sizeof *tasks, s_task_cmp);
    if (check_missing)
        s_missing(job, want, tasks, n);
    if (n == 0)
        hq_warn("No tasks were selected for job %lld, there is nothing to print", job);
    for (size_t i = 0; i < n; i++) {
        if (header) {
            printf("# Job %lld, task %lld\n", job, s_id(tasks[i]));
            hq_output_mark_printed();
        }
        const json_t *path = json_object_get(tasks[i], channel);
        if (!path)
            continue; /* not started: no file yet */
        const char *p = json_string_value(path);
        if (p && strcmp(p, "<pipe>") == 0 && json_object_get(tasks[i], "_stream")) {
            s_print_streamed(ss, job, tasks[i], channel);
            hq_output_mark_printed();
            continue;
        }
        if (!p || strcmp(p, "<pipe>") == 0) {
            hq_warn("Task %lld has no `%s` stream associated with it", s_id(tasks[i]), channel);
            continue;
        }
        fflush(stdout);
        s_copy_file(p);
        hq_output_mark_printed();
    }
    fflush(stdout);
    free(tasks);
}

int hq_cmd_job_cat(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "job cat", argc, argv);
    if (rc >= 0)
        return rc;
    hq_query_t q;
    memset(&q, 0, sizeof q);
    hq_err_t err;
    const char *sel = hq_args_pos(c.args, 0);
    const char *channel = hq_args_pos(c.args, 1);
    const char *tasks = hq_args_get(c.args, "tasks");
    const char *status = hq_args_get(c.args, "task-status");
    if (strcmp(channel, "stdout") != 0 && strcmp(channel, "stderr") != 0) {
        rc = hq_cli_invalid_pos("STREAM", channel, "[possible values: stdout, stderr]");
        goto out;
    }
    if (tasks && hq_rangelist_parse(tasks, &q.tasks, &err) != 0) {
        rc = hq_cli_invalid(c.spec->opts, "tasks", tasks, err.text);
        goto out;
    }
    if (status &&
        (rc = hq_cli_states(c.spec->opts, "task-status", status, S_TASK_STATES, &q.states)) >= 0)
        goto out;
    rc = hq_cli_selector("SELECTOR", sel, false, &q.sel);
    if (rc >= 0)
        goto out;
    if (c.g.output == HQ_OUTPUT_JSON) {
        rc = hq_cli_error(&c, "JSON output mode doesn't support job output");
        goto out;
    }
    json_t *root = NULL;
    rc = hq_cli_query(&c, HQ_MSG_TASK_LIST, &q, 0, &root, NULL);
    if (rc == 0) {
        size_t i;
        const json_t *v;
        const json_t *nf = json_object_get(json_object_get(root, "meta"), "not_found");
        json_array_foreach(nf, i, v)
        {
            hq_error("Job %lld was not found", (long long)json_integer_value(v));
        }
        const json_t *result = json_object_get(root, "result");
        size_t njobs = json_object_size(result), k = 0;
        if (njobs == 0 && json_array_size(nf) == 0)
            hq_error("No jobs were found");
        long long *jobs = hq_calloc(njobs ? njobs : 1, sizeof *jobs);
        const char *key;
        json_object_foreach((json_t *)result, key, v)
        {
            jobs[k++] = strtoll(key, NULL, 10);
        }
        qsort(jobs, k, sizeof *jobs, s_ll_cmp);
        s_streams_t ss = {.logs = NULL, .n = 0, .uid = hq_cli_server_uid(&c)};
        for (size_t j = 0; j < k; j++) {
            char kbuf[32];
            snprintf(kbuf, sizeof kbuf, "%lld", jobs[j]);
            s_print_job(&ss, jobs[j], json_object_get(result, kbuf), channel,
                        hq_args_has(c.args, "print-task-header"), &q.tasks,
                        tasks != NULL && status == NULL);
        }
        for (size_t l = 0; l < ss.n; l++)
            hq_olog_close(&ss.logs[l]);
        free(ss.logs);
        free(ss.uid);
        free(jobs);
    }
    json_decref(root);
out:
    hq_selector_clear(&q.sel);
    hq_rangelist_clear(&q.tasks);
    hq_cli_end(&c);
    return rc;
}
