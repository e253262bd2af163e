/* `hq job list|summary|info|cancel|forget|close|open|task-ids`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_util.h"
#include "render.h"

#define S_ALL_STATES                                                                               \
    (HQ_ST_WAITING | HQ_ST_RUNNING | HQ_ST_FINISHED | HQ_ST_FAILED | HQ_ST_CANCELED |              \
     HQ_ST_ABORTED | HQ_ST_OPENED)
#define S_DONE_STATES (HQ_ST_FINISHED | HQ_ST_FAILED | HQ_ST_CANCELED | HQ_ST_ABORTED)

static uint32_t s_state_bit(const char *word)
{
    static const struct {
        const char *w;
        uint32_t bit;
    } map[] = {{"WAITING", HQ_ST_WAITING},   {"RUNNING", HQ_ST_RUNNING},
               {"FINISHED", HQ_ST_FINISHED}, {"FAILED", HQ_ST_FAILED},
               {"CANCELED", HQ_ST_CANCELED}, {"ABORTED", HQ_ST_ABORTED},
               {"OPENED", HQ_ST_OPENED}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(word, map[i].w) == 0)
            return map[i].bit;
    return 0;
}

static int s_id_cmp(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "id"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "id"));
    return x < y ? -1 : x > y;
}

/* ---- list ---- */

int hq_cmd_job_list(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "job list", argc, argv);
    if (rc >= 0)
        return rc;
    hq_query_t q;
    memset(&q, 0, sizeof q);
    q.sel.kind = HQ_SEL_ALL;
    const char *filter = hq_args_get(c.args, "filter");
    if (filter && hq_args_has(c.args, "all")) {
        rc = hq_cli_usage_error(
            "error: the argument '--all' cannot be used with '--filter <FILTER>'");
        goto out;
    }
    if (filter &&
        (rc = hq_cli_states(c.spec->opts, "filter", filter, S_ALL_STATES, &q.states)) >= 0)
        goto out;
    if (hq_args_has(c.args, "all"))
        q.states = S_ALL_STATES;
    json_t *root = NULL;
    rc = hq_cli_query(&c, HQ_MSG_JOB_LIST, &q, 0, &root, NULL);
    if (rc == 0) {
        /* Filter here too, so the output is right whatever the broker did. */
        const json_t *jobs = json_object_get(root, "result");
        size_t n = json_array_size(jobs), k = 0, i;
        json_t **items = hq_calloc(n ? n : 1, sizeof *items);
        json_t *j;
        json_array_foreach(jobs, i, j)
        {
            uint32_t bit = s_state_bit(hq_cli_job_state(j));
            bool open = json_is_true(json_object_get(j, "is_open"));
            bool keep =
                q.states ? (q.states & bit) != 0 : (bit & (HQ_ST_WAITING | HQ_ST_RUNNING)) || open;
            if (keep)
                items[k++] = j;
        }
        qsort(items, k, sizeof *items, s_id_cmp);
        json_t *shown = json_array();
        for (size_t x = 0; x < k; x++)
            json_array_append(shown, items[x]);
        free(items);
        const json_t *total = json_object_get(json_object_get(root, "meta"), "total");
        long long ntotal =
            json_is_integer(total) ? (long long)json_integer_value(total) : (long long)n;
        hq_cli_render_job_list(&c.g, shown, ntotal, hq_args_has(c.args, "verbose"));
        json_decref(shown);
        hq_output_finish(&c.g);
    }
    json_decref(root);
out:
    hq_cli_end(&c);
    return rc;
}

/* ---- summary ---- */

int hq_cmd_job_summary(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "job summary", argc, argv);
    if (rc >= 0)
        return rc;
    json_t *root = NULL;
    rc = hq_cli_query(&c, HQ_MSG_JOB_SUMMARY, NULL, 0, &root, NULL);
    if (rc == 0) {
        hq_cli_render_job_summary(&c.g, json_object_get(root, "result"));
        hq_output_finish(&c.g);
    }
    json_decref(root);
    hq_cli_end(&c);
    return rc;
}

/* ---- info ---- */

int hq_cmd_job_info(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "job info", argc, argv);
    if (rc >= 0)
        return rc;
    hq_query_t q;
    memset(&q, 0, sizeof q);
    rc = hq_cli_selector("SELECTOR", hq_args_pos(c.args, 0), true, &q.sel);
    if (rc < 0) {
        q.flag = c.g.output == HQ_OUTPUT_JSON;
        json_t *root = NULL;
        rc = hq_cli_query(&c, HQ_MSG_JOB_INFO, &q, 0, &root, NULL);
        hq_selector_clear(&q.sel);
        if (rc == 0) {
            size_t i;
            const json_t *v;
            json_array_foreach(json_object_get(json_object_get(root, "meta"), "not_found"), i, v)
            {
                hq_error("Job %lld not found", (long long)json_integer_value(v));
            }
            hq_cli_render_job_info(&c.g, json_object_get(root, "result"));
            hq_output_finish(&c.g);
        }
        json_decref(root);
    }
    hq_cli_end(&c);
    return rc;
}

/* ---- cancel / forget / close: log lines only ---- */

static int s_simple(int argc, char **argv, const char *path, uint8_t type)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, path, argc, argv);
    if (rc >= 0)
        return rc;
    const hq_opt_t *opts = c.spec->opts;
    hq_query_t q;
    memset(&q, 0, sizeof q);
    const char *reason = type == HQ_MSG_JOB_CANCEL ? hq_args_get(c.args, "reason") : NULL;
    const char *filter = type == HQ_MSG_JOB_FORGET ? hq_args_get(c.args, "filter") : NULL;
    if (reason && strlen(reason) > 200) {
        char *detail =
            hq_asprintf("Cancel reason must be shorter than 200 you entered %zu.", strlen(reason));
        rc = hq_cli_invalid(opts, "reason", reason, detail);
        free(detail);
        goto out;
    }
    if (filter && (rc = hq_cli_states(opts, "filter", filter, S_DONE_STATES, &q.states)) >= 0)
        goto out;
    if (type == HQ_MSG_JOB_FORGET && !filter)
        q.states = S_DONE_STATES;
    rc = hq_cli_selector("SELECTOR", hq_args_pos(c.args, 0), true, &q.sel);
    if (rc >= 0)
        goto out;
    q.text = (char *)reason;
    rc = hq_cli_query(&c, type, &q, 0, NULL, NULL);
    hq_selector_clear(&q.sel);
    if (rc == 0)
        hq_output_finish(&c.g);
out:
    hq_cli_end(&c);
    return rc;
}

int hq_cmd_job_cancel(int argc, char **argv)
{
    return s_simple(argc, argv, "job cancel", HQ_MSG_JOB_CANCEL);
}

int hq_cmd_job_forget(int argc, char **argv)
{
    return s_simple(argc, argv, "job forget", HQ_MSG_JOB_FORGET);
}

int hq_cmd_job_close(int argc, char **argv)
{
    return s_simple(argc, argv, "job close", HQ_MSG_JOB_CLOSE);
}

/* ---- open ---- */

int hq_cmd_job_open(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "job open", argc, argv);
    if (rc >= 0)
        return rc;
    hq_query_t q;
    memset(&q, 0, sizeof q);
    const char *name = hq_args_get(c.args, "name");
    const char *mf = hq_args_get(c.args, "max-fails");
    if (name && strpbrk(name, "\n\t")) {
        rc = hq_cli_invalid(c.spec->opts, "name", name, "name cannot have a newline or a tab");
        goto out;
    }
    if (mf) {
        char *end = NULL;
        unsigned long long v = strtoull(mf, &end, 10);
        if (!*mf || *end || *mf == '-' || v > UINT32_MAX) {
            rc = hq_cli_invalid(c.spec->opts, "max-fails", mf, "invalid digit found in string");
            goto out;
        }
        q.number = v + 1;
    }
    q.text = (char *)(name ? name : "job");
    uint64_t id = 0;
    rc = hq_cli_query(&c, HQ_MSG_JOB_OPEN, &q, 0, NULL, &id);
    if (rc == 0) {
        if (c.g.output == HQ_OUTPUT_JSON) {
            json_t *o = json_pack("{s:I}", "id", (json_int_t)id);
            hq_output_json(o);
            json_decref(o);
        } else if (c.g.output == HQ_OUTPUT_QUIET) {
            printf("%llu\n", (unsigned long long)id);
        } else {
            printf("Job %llu is open.\n", (unsigned long long)id);
        }
    }
out:
    hq_cli_end(&c);
    return rc;
}

/* ---- task-ids ---- */

static int s_u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int s_ll_cmp(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

int hq_cmd_job_task_ids(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "job task-ids", argc, argv);
    if (rc >= 0)
        return rc;
    hq_query_t q;
    memset(&q, 0, sizeof q);
    const char *filter = hq_args_get(c.args, "filter");
    if (filter && (rc = hq_cli_states(c.spec->opts, "filter", filter, S_ALL_STATES & ~HQ_ST_OPENED,
                                      &q.states)) >= 0)
        goto out;
    rc = hq_cli_selector("SELECTOR", hq_args_pos(c.args, 0), true, &q.sel);
    if (rc >= 0)
        goto out;
    json_t *root = NULL;
    rc = hq_cli_query(&c, HQ_MSG_TASK_IDS, &q, 0, &root, NULL);
    hq_selector_clear(&q.sel);
    if (rc == 0 && json_array_size(json_object_get(json_object_get(root, "meta"), "not_found")) > 0)
        rc = hq_cli_error(&c, "Job Id not found");
    if (rc == 0) {
        const json_t *result = json_object_get(root, "result");
        if (c.g.output == HQ_OUTPUT_JSON) {
            hq_cli_print_json(result);
        } else if (c.g.output == HQ_OUTPUT_CLI) {
            size_t njobs = json_object_size(result), k = 0;
            long long *jobs = hq_calloc(njobs ? njobs : 1, sizeof *jobs);
            const char *key;
            const json_t *ids;
            json_object_foreach((json_t *)result, key, ids)
            {
                jobs[k++] = strtoll(key, NULL, 10);
            }
            qsort(jobs, k, sizeof *jobs, s_ll_cmp);
            for (size_t j = 0; j < k; j++) {
                char kbuf[32];
                snprintf(kbuf, sizeof kbuf, "%lld", jobs[j]);
                ids = json_object_get(result, kbuf);
                size_t n = json_array_size(ids), m = 0;
                uint32_t *arr = hq_calloc(n ? n : 1, sizeof *arr);
                for (size_t i = 0; i < n; i++)
                    arr[i] = (uint32_t)json_integer_value(json_array_get(ids, i));
                qsort(arr, n, sizeof *arr, s_u32_cmp);
                for (size_t i = 0; i < n; i++) /* unique */
                    if (m == 0 || arr[m - 1] != arr[i])
                        arr[m++] = arr[i];
                char *text = hq_idset_format(arr, m);
                if (k == 1)
                    printf("%s\n", text);
                else
                    printf("%lld: %s\n", jobs[j], text);
                free(text);
                free(arr);
            }
            free(jobs);
            hq_output_mark_printed();
        }
        hq_output_finish(&c.g);
    }
    json_decref(root);
out:
    hq_cli_end(&c);
    return rc;
}
