/* `hq task list|info|notify`. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_util.h"
#include "render.h"

#define S_TASK_STATES                                                                              \
    (HQ_ST_WAITING | HQ_ST_RUNNING | HQ_ST_FINISHED | HQ_ST_FAILED | HQ_ST_CANCELED | HQ_ST_ABORTED)

int hq_cmd_task_list(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "task list", argc, argv);
    if (rc >= 0)
        return rc;
    hq_query_t q;
    memset(&q, 0, sizeof q);
    hq_err_t err;
    const char *tasks = hq_args_get(c.args, "tasks");
    const char *status = hq_args_get(c.args, "task-status");
    if (tasks && hq_rangelist_parse(tasks, &q.tasks, &err) != 0) {
        rc = hq_cli_invalid(c.spec->opts, "tasks", tasks, err.text);
        goto out;
    }
    if (status &&
        (rc = hq_cli_states(c.spec->opts, "task-status", status, S_TASK_STATES, &q.states)) >= 0)
        goto out;
    rc = hq_cli_selector("JOB_SELECTOR", hq_args_pos(c.args, 0), false, &q.sel);
    if (rc >= 0)
        goto out;
    json_t *root = NULL;
    rc = hq_cli_query(&c, HQ_MSG_TASK_LIST, &q, 0, &root, NULL);
    if (rc == 0) {
        size_t i;
        const json_t *v;
        json_array_foreach(json_object_get(json_object_get(root, "meta"), "not_found"), i, v)
        {
            hq_warn("Job %lld not found", (long long)json_integer_value(v));
        }
        const json_t *result = json_object_get(root, "result");
        if (json_is_object(result))
            hq_cli_render_task_list(&c.g, result, hq_args_has(c.args, "verbose"));
        hq_output_finish(&c.g);
    }
    json_decref(root);
out:
    hq_selector_clear(&q.sel);
    hq_rangelist_clear(&q.tasks);
    hq_cli_end(&c);
    return rc;
}

int hq_cmd_task_info(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "task info", argc, argv);
    if (rc >= 0)
        return rc;
    hq_query_t q;
    memset(&q, 0, sizeof q);
    hq_err_t err;
    const char *job = hq_args_pos(c.args, 0);
    const char *tasks = hq_args_pos(c.args, 1);
    if (hq_selector_parse(job, false, &q.sel, &err) != 0 ||
        (q.sel.kind == HQ_SEL_IDS && hq_rangelist_count(&q.sel.ids) != 1)) {
        rc = hq_cli_invalid_pos("JOB_SELECTOR", job, "invalid digit found in string");
        goto out;
    }
    if (hq_rangelist_parse(tasks, &q.tasks, &err) != 0) {
        rc = hq_cli_invalid_pos("TASK_SELECTOR", tasks, err.text);
        goto out;
    }
    json_t *root = NULL;
    rc = hq_cli_query(&c, HQ_MSG_TASK_INFO, &q, 0, &root, NULL);
    if (rc == 0) {
        const json_t *meta = json_object_get(root, "meta");
        if (json_is_true(json_object_get(meta, "job_not_found"))) {
            hq_error("Cannot find job %s", job);
        } else {
            size_t i;
            const json_t *v;
            json_array_foreach(json_object_get(meta, "tasks_not_found"), i, v)
            {
                hq_warn("Task %lld not found", (long long)json_integer_value(v));
            }
            const json_t *result = json_object_get(root, "result");
            if (json_is_array(result))
                hq_cli_render_task_info(&c.g, result, hq_args_has(c.args, "verbose"));
        }
        hq_output_finish(&c.g);
    }
    json_decref(root);
out:
    hq_selector_clear(&q.sel);
    hq_rangelist_clear(&q.tasks);
    hq_cli_end(&c);
    return rc;
}

/* A task id variable of the environment: 0 with *v, or -1 when unset or not a number. */
static int s_env_id(const char *name, uint32_t *v)
{
    const char *s = getenv(name);
    char *end;
    if (!s || !*s)
        return -1;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end || x > UINT32_MAX)
        return -1;
    *v = (uint32_t)x;
    return 0;
}

int hq_cmd_task_notify(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "task notify", argc, argv);
    if (rc >= 0)
        return rc;
    const char *msg = hq_args_pos(c.args, 0);
    uint32_t job, task, instance = 0;
    if (s_env_id("HQ_JOB_ID", &job) != 0 || s_env_id("HQ_TASK_ID", &task) != 0) {
        rc = hq_cli_error(&c, "`hq task notify` can only be used inside a task: HQ_JOB_ID and "
                              "HQ_TASK_ID are not set");
        goto out;
    }
    if (strlen(msg) > 1024) {
        rc = hq_cli_error(&c, "Notification message is too long: %zu bytes (at most 1024)",
                          strlen(msg));
        goto out;
    }
    (void)s_env_id("HQ_INSTANCE_ID", &instance);
    hq_query_t q;
    memset(&q, 0, sizeof q);
    hq_range_t jr = {.start = job, .end = job, .step = 1};
    hq_range_t tr = {.start = task, .end = task, .step = 1};
    q.sel.kind = HQ_SEL_IDS;
    q.sel.ids.n = 1;
    q.sel.ids.ranges = &jr;
    q.tasks.n = 1;
    q.tasks.ranges = &tr;
    q.text = (char *)msg;
    q.number = instance;
    json_t *root = NULL;
    rc = hq_cli_query(&c, HQ_MSG_TASK_NOTIFY, &q, 0, &root, NULL);
    json_decref(root);
out:
    hq_cli_end(&c);
    return rc;
}
