/* Waiting for jobs: `hq job wait`, `hq job progress` and `submit --wait/--progress`.
 * Each round is a JOB_WAIT long poll the broker holds for up to a second. With
 * --on-notify the poll also carries a notification cursor and the program runs once per
 * task notification the broker returns. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_table.h"
#include "hq_util.h"
#include "submit_args.h"

#define S_POLL_MS 1000

static long long s_count(const json_t *counts, const char *key)
{
    return (long long)json_integer_value(json_object_get(counts, key));
}

static void s_draw(const json_t *r, bool colors)
{
    static const char *const bar_parts[][2] = {
        {"canceled", "35"}, {"failed", "31"},  {"finished", "32"},
        {"running", "33"},  {"aborted", "34"},
    };
    static const char *const count_parts[][2] = {
        {"running", "RUNNING"},   {"finished", "FINISHED"}, {"failed", "FAILED"},
        {"canceled", "CANCELED"}, {"aborted", "ABORTED"},
    };
    const json_t *counts = json_object_get(r, "counts");
    long long n = s_count(counts, "waiting") + s_count(counts, "running") +
                  s_count(counts, "finished") + s_count(counts, "failed") +
                  s_count(counts, "canceled") + s_count(counts, "aborted");
    long long done = s_count(counts, "finished") + s_count(counts, "failed") +
                     s_count(counts, "canceled") + s_count(counts, "aborted");
    hq_buf_t line = {0};
    hq_buf_append(&line, "\r\x1b[2K[", 6);
    long long used = 0;
    for (size_t i = 0; i < 5; i++) {
        long long c = s_count(counts, bar_parts[i][0]);
        long long chars = n > 0 ? (c * 40 + n - 1) / n : 0;
        if (chars > 40 - used)
            chars = 40 - used;
        if (chars <= 0)
            continue;
        char *hashes = hq_malloc((size_t)chars + 1);
        memset(hashes, '#', (size_t)chars);
        hashes[chars] = '\0';
        char *col = hq_color(hashes, bar_parts[i][1], colors);
        hq_buf_printf(&line, "%s", col);
        free(col);
        free(hashes);
        used += chars;
    }
    for (; used < 40; used++)
        hq_buf_append(&line, ".", 1);
    hq_buf_printf(&line, "] %lld/%lld jobs, %lld/%lld tasks",
                  (long long)json_integer_value(json_object_get(r, "jobs_done")),
                  (long long)json_integer_value(json_object_get(r, "jobs")), done, n);
    for (size_t i = 0; i < 5; i++) {
        long long c = s_count(counts, count_parts[i][0]);
        if (c > 0) {
            char *word = hq_color_state(count_parts[i][1], "task", colors);
            hq_buf_printf(&line, " %lld %s", c, word);
            free(word);
        }
    }
    fwrite(line.data, 1, line.len, stdout);
    fflush(stdout);
    hq_buf_free(&line);
}

/* Runs the --on-notify program (words + message) for one notification and waits for it. */
static void s_run_notify(char **words, int n, const json_t *note)
{
    const char *msg = json_string_value(json_object_get(note, "message"));
    char ids[3][24];
    const char *keys[3] = {"job", "task", "worker"};
    for (int i = 0; i < 3; i++)
        snprintf(ids[i], sizeof ids[i], "%lld",
                 (long long)json_integer_value(json_object_get(note, keys[i])));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        hq_error("Cannot run the --on-notify program %s: %s", words[0], strerror(errno));
        return;
    }
    if (pid == 0) {
        char **argv = hq_calloc((size_t)n + 2, sizeof *argv);
        for (int i = 0; i < n; i++)
            argv[i] = words[i];
        argv[n] = (char *)(msg ? msg : "");
        setenv("HQ_JOB_ID", ids[0], 1);
        setenv("HQ_TASK_ID", ids[1], 1);
        setenv("HQ_WORKER_ID", ids[2], 1);
        execvp(argv[0], argv);
        fprintf(stderr, "Cannot run the --on-notify program %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
}

int hq_cli_wait_jobs(hq_cli_t *c, const hq_selector_t *sel, bool without_close, bool progress,
                     const char *on_notify)
{
    bool first = true;
    bool colors = hq_output_colors(&c->g);
    char **words = NULL;
    int n_words = 0;
    if (on_notify) {
        hq_err_t err;
        if (hq_submit_shell_split(on_notify, &words, &n_words, &err) != 0) {
            hq_error("Invalid --on-notify program '%s': %s", on_notify, err.text);
            return 1;
        }
        if (n_words == 0) {
            hq_submit_free_words(words);
            hq_error("Invalid --on-notify program '%s': it is empty", on_notify);
            return 1;
        }
    }
    uint64_t cursor = 0;
    int rc = 0;
    for (;;) {
        hq_query_t q;
        memset(&q, 0, sizeof q);
        q.sel = *sel;
        q.flag = without_close;
        q.number = first && progress ? 0 : S_POLL_MS;
        char cur[24];
        snprintf(cur, sizeof cur, "%llu", (unsigned long long)cursor);
        if (words)
            q.text = cur;
        json_t *root = NULL;
        rc = hq_cli_query(c, HQ_MSG_JOB_WAIT, &q, q.number, &root, NULL);
        if (rc != 0)
            break;
        const json_t *r = json_object_get(root, "result");
        if (words) {
            size_t i;
            const json_t *note;
            json_array_foreach(json_object_get(r, "notifications"), i, note)
            {
                s_run_notify(words, n_words, note);
            }
            json_int_t next = json_integer_value(json_object_get(r, "notify_next"));
            if (next > 0 && (uint64_t)next > cursor)
                cursor = (uint64_t)next;
        }
        bool done = json_is_true(json_object_get(r, "done"));
        if (progress && first) {
            const json_t *counts = json_object_get(r, "counts");
            long long jobs = (long long)json_integer_value(json_object_get(r, "jobs")) -
                             (long long)json_integer_value(json_object_get(r, "jobs_done"));
            long long tasks = s_count(counts, "waiting") + s_count(counts, "running");
            if (jobs <= 0 || done) {
                hq_warn("There are no jobs to wait for");
                json_decref(root);
                break;
            }
            hq_info("Waiting for %lld %s with %lld %s", jobs, jobs == 1 ? "job" : "jobs", tasks,
                    tasks == 1 ? "task" : "tasks");
        }
        if (progress)
            s_draw(r, colors);
        json_decref(root);
        first = false;
        if (done)
            break;
    }
    if (words)
        hq_submit_free_words(words);
    return rc;
}

static int s_wait_cmd(int argc, char **argv, bool progress)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, progress ? "job progress" : "job wait", argc, argv);
    if (rc >= 0)
        return rc;
    hq_selector_t sel;
    memset(&sel, 0, sizeof sel);
    rc = hq_cli_selector("SELECTOR", hq_args_pos(c.args, 0), true, &sel);
    if (rc < 0) {
        rc = hq_cli_wait_jobs(&c, &sel, !progress && hq_args_has(c.args, "without-close"), progress,
                              progress ? NULL : hq_args_get(c.args, "on-notify"));
        hq_selector_clear(&sel);
        if (rc == 0)
            hq_output_finish(&c.g);
    }
    hq_cli_end(&c);
    return rc;
}

int hq_cmd_job_wait(int argc, char **argv)
{
    return s_wait_cmd(argc, argv, false);
}

int hq_cmd_job_progress(int argc, char **argv)
{
    return s_wait_cmd(argc, argv, true);
}
