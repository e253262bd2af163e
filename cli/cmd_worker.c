/* `hq worker stop|list|info|address|wait` (`worker start` and `worker hwdetect` run
 * the worker library directly). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_render.h"
#include "hq_table.h"
#include "hq_util.h"
#include "render.h"

/* Logs `Worker <id> not found` for each id of meta.not_found. Returns the count. */
static size_t s_not_found(const json_t *root)
{
    const json_t *nf = json_object_get(json_object_get(root, "meta"), "not_found");
    size_t i;
    const json_t *v;
    json_array_foreach(nf, i, v)
    {
        hq_error("Worker %lld not found", (long long)json_integer_value(v));
    }
    return json_array_size(nf);
}

int hq_cmd_worker_stop(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "worker stop", argc, argv);
    if (rc >= 0)
        return rc;
    hq_query_t q;
    memset(&q, 0, sizeof q);
    rc = hq_cli_selector("SELECTOR", hq_args_pos(c.args, 0), true, &q.sel);
    if (rc < 0) {
        rc = hq_cli_query(&c, HQ_MSG_WORKER_STOP, &q, 0, NULL, NULL);
        hq_selector_clear(&q.sel);
        if (rc == 0)
            hq_output_finish(&c.g);
    }
    hq_cli_end(&c);
    return rc;
}

static char *s_manager(const json_t *alloc)
{
    const char *mgr = json_string_value(json_object_get(alloc, "manager"));
    if (!mgr)
        return hq_strdup("None");
    return hq_strdup(strcmp(mgr, "Slurm") == 0 ? "SLURM" : mgr);
}

void hq_cli_render_worker_list(const hq_global_t *g, const json_t *workers)
{
    if (g->output == HQ_OUTPUT_JSON) {
        hq_cli_print_json(workers);
        return;
    }
    size_t i;
    const json_t *w;
    if (g->output == HQ_OUTPUT_QUIET) {
        json_array_foreach(workers, i, w)
        {
            const char *st = json_string_value(json_object_get(w, "_state"));
            printf("%lld %s\n", (long long)json_integer_value(json_object_get(w, "id")),
                   st ? st : "RUNNING");
        }
        return;
    }
    bool colors = hq_output_colors(g);
    static const char *const titles[] = {"ID",        "State",   "Hostname",
                                         "Resources", "Manager", "Manager Job ID"};
    hq_table_t *t = hq_table_new_horizontal(6, titles);
    hq_table_right_justify(t, 0);
    hq_table_plain_title(t, 0);
    json_array_foreach(workers, i, w)
    {
        const json_t *cfg = json_object_get(w, "configuration");
        const json_t *alloc = json_object_get(w, "allocation");
        char *id = hq_asprintf("%lld", (long long)json_integer_value(json_object_get(w, "id")));
        const char *st = json_string_value(json_object_get(w, "_state"));
        char *state = hq_color_state(st ? st : "RUNNING", "worker", colors);
        const char *host = json_string_value(json_object_get(cfg, "hostname"));
        hq_wres_list_t res;
        char *summary = NULL;
        if (hq_wres_from_json(json_object_get(cfg, "resources"), &res) == 0) {
            bool *coupled = hq_wres_json_coupled_mask(json_object_get(cfg, "resources"), res.n);
            summary = hq_wres_summary_ex(&res, false, coupled);
            free(coupled);
            hq_wres_list_clear(&res);
        }
        char *mgr = s_manager(alloc);
        const char *mjid = json_string_value(json_object_get(alloc, "id"));
        const char *cells[6] = {
            id, state, host ? host : "", summary ? summary : "", mgr, mjid && *mjid ? mjid : "N/A"};
        hq_table_add_row(t, cells);
        free(id);
        free(state);
        free(summary);
        free(mgr);
    }
    hq_table_print(t, stdout, colors);
    hq_output_mark_printed();
    hq_table_destroy(&t);
}

static int s_id_cmp(const void *a, const void *b)
{
    json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a, "id"));
    json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b, "id"));
    return x < y ? -1 : x > y;
}

/* New array of the workers sorted by id, keeping those whose state matches. */
static json_t *s_filter_sorted(const json_t *workers, int which /* 0 running, 1 offline, 2 all */)
{
    size_t n = json_array_size(workers);
    json_t **items = hq_calloc(n ? n : 1, sizeof *items);
    size_t k = 0, i;
    json_t *w;
    json_array_foreach(workers, i, w)
    {
        const char *st = json_string_value(json_object_get(w, "_state"));
        bool running = !st || strcmp(st, "RUNNING") == 0;
        if (which == 2 || (which == 0 && running) || (which == 1 && !running))
            items[k++] = w;
    }
    qsort(items, k, sizeof *items, s_id_cmp);
    json_t *out = json_array();
    for (size_t j = 0; j < k; j++)
        json_array_append(out, items[j]);
    free(items);
    return out;
}

int hq_cmd_worker_list(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "worker list", argc, argv);
    if (rc >= 0)
        return rc;
    int which = 0;
    const char *filter = hq_args_get(c.args, "filter");
    if (hq_args_has(c.args, "all") && filter) {
        rc = hq_cli_usage_error(
            "error: the argument '--all' cannot be used with '--filter <FILTER>'");
        goto out;
    }
    if (hq_args_has(c.args, "all"))
        which = 2;
    if (filter) {
        if (strcmp(filter, "running") == 0)
            which = 0;
        else if (strcmp(filter, "offline") == 0)
            which = 1;
        else {
            rc = hq_cli_invalid(c.spec->opts, "filter", filter,
                                "[possible values: running, offline]");
            goto out;
        }
    }
    hq_query_t q;
    memset(&q, 0, sizeof q);
    q.sel.kind = HQ_SEL_ALL;
    q.flag = which != 0;
    json_t *root = NULL;
    rc = hq_cli_query(&c, HQ_MSG_WORKER_LIST, &q, 0, &root, NULL);
    if (rc == 0) {
        json_t *list = s_filter_sorted(json_object_get(root, "result"), which);
        hq_cli_render_worker_list(&c.g, list);
        json_decref(list);
        hq_output_finish(&c.g);
    }
    json_decref(root);
out:
    hq_cli_end(&c);
    return rc;
}

int hq_cmd_worker_info(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "worker info", argc, argv);
    if (rc >= 0)
        return rc;
    hq_query_t q;
    memset(&q, 0, sizeof q);
    rc = hq_cli_selector("SELECTOR", hq_args_pos(c.args, 0), true, &q.sel);
    if (rc < 0) {
        json_t *root = NULL;
        rc = hq_cli_query(&c, HQ_MSG_WORKER_INFO, &q, 0, &root, NULL);
        hq_selector_clear(&q.sel);
        if (rc == 0) {
            s_not_found(root);
            json_t *list = s_filter_sorted(json_object_get(root, "result"), 2);
            hq_render_worker_info(&c.g, list, true);
            json_decref(list);
            hq_output_finish(&c.g);
        }
        json_decref(root);
    }
    hq_cli_end(&c);
    return rc;
}

int hq_cmd_worker_address(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "worker address", argc, argv);
    if (rc >= 0)
        return rc;
    const char *id = hq_args_pos(c.args, 0);
    hq_query_t q;
    memset(&q, 0, sizeof q);
    hq_err_t err;
    if (hq_selector_parse(id, false, &q.sel, &err) != 0 || q.sel.kind != HQ_SEL_IDS ||
        hq_rangelist_count(&q.sel.ids) != 1) {
        rc = hq_cli_invalid_pos("WORKER_ID", id, "invalid digit found in string");
        hq_selector_clear(&q.sel);
    } else {
        json_t *root = NULL;
        rc = hq_cli_query(&c, HQ_MSG_WORKER_INFO, &q, 0, &root, NULL);
        hq_selector_clear(&q.sel);
        if (rc == 0) {
            const json_t *w = json_array_get(json_object_get(root, "result"), 0);
            if (!w) {
                rc = hq_cli_error(&c, "Worker %s not found", id);
            } else {
                const char *host = json_string_value(
                    json_object_get(json_object_get(w, "configuration"), "hostname"));
                printf("%s\n", host ? host : "");
                hq_output_mark_printed();
            }
        }
        json_decref(root);
    }
    hq_cli_end(&c);
    return rc;
}

int hq_cmd_worker_wait(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "worker wait", argc, argv);
    if (rc >= 0)
        return rc;
    const char *v = hq_args_pos(c.args, 0);
    char *end = NULL;
    unsigned long long want = v ? strtoull(v, &end, 10) : 0;
    if (!*v || *end || *v == '-') {
        rc = hq_cli_invalid_pos("WORKER_COUNT", v, "invalid digit found in string");
    } else {
        for (;;) {
            hq_query_t q;
            memset(&q, 0, sizeof q);
            q.sel.kind = HQ_SEL_ALL;
            json_t *root = NULL;
            rc = hq_cli_query(&c, HQ_MSG_WORKER_LIST, &q, 0, &root, NULL);
            if (rc != 0)
                break;
            json_t *running = s_filter_sorted(json_object_get(root, "result"), 0);
            size_t n = json_array_size(running);
            json_decref(running);
            json_decref(root);
            if (n >= want)
                break;
            sleep(1);
        }
        if (rc == 0)
            hq_output_finish(&c.g);
    }
    hq_cli_end(&c);
    return rc;
}
