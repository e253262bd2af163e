/* `hq output-log DIR summary|jobs|show|cat|export` (cli/REFERENCE.md §3.6): what the
 * stream reader (outlog.c) found in a stream directory, as tables, raw output or JSON. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hq_idrange.h"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_table.h"
#include "hq_util.h"
#include "outlog.h"

/* Starts a command: parses it and reads DIR. -1 to go on, else the exit code. */
static int s_begin(hq_cli_t *c, const char *path, int argc, char **argv, hq_olog_t *o)
{
    memset(o, 0, sizeof *o);
    int rc = hq_cli_begin(c, path, argc, argv);
    if (rc >= 0)
        return rc;
    hq_err_t err;
    if (hq_olog_open(o, hq_args_pos(c->args, 0), hq_args_get(c->args, "server-uid"), &err) != 0) {
        rc = hq_cli_error(c, "%s", err.text);
        hq_olog_close(o);
        hq_cli_end(c);
        return rc;
    }
    hq_olog_index(o);
    return -1;
}

/* Exit code at the end: 1 when a file could not be read whole. */
static int s_end(hq_cli_t *c, hq_olog_t *o, int rc)
{
    fflush(stdout);
    if (rc == 0 && o->n_errors > 0)
        rc = 1;
    hq_olog_close(o);
    hq_cli_end(c);
    return rc;
}

/* A job id: digits only, at most UINT32_MAX. */
static int s_parse_id(const char *s, uint32_t *out)
{
    char *end = NULL;
    unsigned long long v = s && *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : ULLONG_MAX;
    bool ok = end && !*end && v <= UINT32_MAX;
    if (ok)
        *out = (uint32_t)v;
    return ok ? 0 : -1;
}

/* "271 B", "2.50 KiB", ... */
static char *s_size(uint64_t n)
{
    if (n < 2048)
        return hq_asprintf("%llu B", (unsigned long long)n);
    if (n < 2ull * 1024 * 1024)
        return hq_asprintf("%.2f KiB", (double)n / 1024);
    if (n < 2ull * 1024 * 1024 * 1024)
        return hq_asprintf("%.2f MiB", (double)n / (1024 * 1024));
    return hq_asprintf("%.2f GiB", (double)n / (1024 * 1024 * 1024));
}

int hq_cmd_output_log_summary(int argc, char **argv)
{
    hq_cli_t c;
    hq_olog_t o;
    int rc = s_begin(&c, "output-log summary", argc, argv, &o);
    if (rc >= 0)
        return rc;
    uint64_t n_files = 0, n_jobs = 0, n_tasks = 0, n_opened = 0, n_sup = 0;
    uint64_t size[2] = {0, 0}, sup_size[2] = {0, 0};
    for (uint32_t i = 0; i < o.n_files; i++)
        n_files += o.files[i].has_head && !o.files[i].skip;
    for (size_t i = 0; i < o.n_streams; i++) {
        const hq_ol_stream_t *s = &o.streams[i];
        if (i == 0 || s->job != o.streams[i - 1].job)
            n_jobs++;
        if (s->superseded) {
            n_sup++;
            sup_size[0] += s->size[0];
            sup_size[1] += s->size[1];
            continue;
        }
        n_tasks++;
        n_opened += !s->finished;
        size[0] += s->size[0];
        size[1] += s->size[1];
    }
    if (c.g.output == HQ_OUTPUT_JSON) {
        json_t *sum =
            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "n_files", (json_int_t)n_files,
                      "n_jobs", (json_int_t)n_jobs, "n_tasks", (json_int_t)n_tasks, "n_streams",
                      (json_int_t)o.n_streams, "n_opened", (json_int_t)n_opened, "stdout_size",
                      (json_int_t)size[0], "stderr_size", (json_int_t)size[1], "n_superseded",
                      (json_int_t)n_sup, "superseded_stdout_size", (json_int_t)sup_size[0],
                      "superseded_stderr_size", (json_int_t)sup_size[1]);
        json_t *out = json_pack("{s:s,s:o}", "filename", o.dir, "summary", sum);
        hq_output_json(out);
        json_decref(out);
        return s_end(&c, &o, 0);
    }
    hq_table_t *t = hq_table_new_vertical();
    char num[32];
    hq_table_add_kv(t, "Path", o.dir);
    const char *keys[] = {"Files", "Jobs", "Tasks", "Opened streams"};
    uint64_t vals[] = {n_files, n_jobs, n_tasks, n_opened};
    for (int k = 0; k < 4; k++) {
        snprintf(num, sizeof num, "%llu", (unsigned long long)vals[k]);
        hq_table_add_kv(t, keys[k], num);
    }
    const char *skeys[] = {"Stdout/stderr size", "Superseded streams",
                           "Superseded stdout/stderr size"};
    const uint64_t *svals[] = {size, NULL, sup_size};
    for (int k = 0; k < 3; k++) {
        char *cell;
        if (svals[k]) {
            char *a = s_size(svals[k][0]), *b = s_size(svals[k][1]);
            cell = hq_asprintf("%s / %s", a, b);
            free(a);
            free(b);
        } else {
            cell = hq_asprintf("%llu", (unsigned long long)n_sup);
        }
        hq_table_add_kv(t, skeys[k], cell);
        free(cell);
    }
    hq_table_print(t, stdout, hq_output_colors(&c.g));
    hq_table_destroy(&t);
    return s_end(&c, &o, 0);
}

int hq_cmd_output_log_jobs(int argc, char **argv)
{
    hq_cli_t c;
    hq_olog_t o;
    int rc = s_begin(&c, "output-log jobs", argc, argv, &o);
    if (rc >= 0)
        return rc;
    json_t *arr = json_array();
    for (size_t i = 0; i < o.n_streams; i++)
        if (i == 0 || o.streams[i].job != o.streams[i - 1].job)
            json_array_append_new(arr, json_integer(o.streams[i].job));
    if (c.g.output == HQ_OUTPUT_JSON) {
        hq_output_json(arr);
    } else {
        size_t i;
        json_t *v;
        json_array_foreach(arr, i, v)
        {
            printf("%lld\n", (long long)json_integer_value(v));
        }
    }
    json_decref(arr);
    return s_end(&c, &o, 0);
}

static const hq_olog_t *s_show_log;

static int s_time_cmp(const void *a, const void *b)
{
    const hq_ol_chunk_t *x = &s_show_log->chunks[*(const size_t *)a];
    const hq_ol_chunk_t *y = &s_show_log->chunks[*(const size_t *)b];
    if (x->time_ns != y->time_ns)
        return x->time_ns < y->time_ns ? -1 : 1;
    if (x->file != y->file)
        return x->file < y->file ? -1 : 1;
    return x->off < y->off ? -1 : x->off > y->off;
}

static int s_digits(uint32_t v)
{
    int n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

int hq_cmd_output_log_show(int argc, char **argv)
{
    hq_cli_t c;
    hq_olog_t o;
    int rc = s_begin(&c, "output-log show", argc, argv, &o);
    if (rc >= 0)
        return rc;
    uint32_t job = 0;
    const char *js = hq_args_get(c.args, "job"), *ch = hq_args_get(c.args, "channel");
    if (js && s_parse_id(js, &job) != 0)
        return s_end(&c, &o,
                     hq_cli_invalid(c.spec->opts, "job", js, "invalid digit found in string"));
    if (ch && strcmp(ch, "stdout") != 0 && strcmp(ch, "stderr") != 0)
        return s_end(
            &c, &o,
            hq_cli_invalid(c.spec->opts, "channel", ch, "[possible values: stdout, stderr]"));
    int want = ch ? (strcmp(ch, "stderr") == 0) : -1;
    size_t *sel = hq_malloc((o.n_chunks + 1) * sizeof *sel), n = 0;
    uint32_t max_job = 0, max_task = 0;
    for (size_t i = 0; i < o.n_streams; i++) {
        const hq_ol_stream_t *s = &o.streams[i];
        if (s->superseded || (js && s->job != job))
            continue;
        for (size_t k = s->first; k < s->first + s->n; k++) {
            const hq_ol_chunk_t *k_c = &o.chunks[o.order[k]];
            if (k_c->kind > HQ_SF_STDERR || (want >= 0 && k_c->kind != want))
                continue;
            sel[n++] = o.order[k];
            max_job = s->job > max_job ? s->job : max_job;
            max_task = s->task > max_task ? s->task : max_task;
        }
    }
    s_show_log = &o;
    qsort(sel, n, sizeof *sel, s_time_cmp);
    s_show_log = NULL;
    int jw = s_digits(max_job), tw = s_digits(max_task);
    for (size_t i = 0; i < n; i++) {
        const hq_ol_chunk_t *k = &o.chunks[sel[i]];
        const uint8_t *data = hq_olog_data(&o, k);
        printf("%0*u.%0*u:%u> ", jw, k->job, tw, k->task, (unsigned)k->kind);
        fwrite(data, 1, k->len, stdout);
        if (k->len == 0 || data[k->len - 1] != '\n')
            putchar('\n');
    }
    free(sel);
    return s_end(&c, &o, 0);
}

/* The task ids to print: the --task ranges in their order, else every task of job. */
static uint32_t *s_task_ids(const hq_olog_t *o, uint32_t job, const hq_rangelist_t *rl, size_t *n)
{
    size_t cap = 64;
    uint32_t *ids = hq_malloc(cap * sizeof *ids);
    *n = 0;
    if (rl) {
        for (uint32_t r = 0; r < rl->n; r++)
            for (uint64_t id = rl->ranges[r].start; id <= rl->ranges[r].end;
                 id += rl->ranges[r].step) {
                if (!hq_olog_find(o, job, (uint32_t)id))
                    continue;
                if (*n == cap)
                    ids = hq_realloc(ids, (cap *= 2) * sizeof *ids);
                ids[(*n)++] = (uint32_t)id;
            }
        return ids;
    }
    for (size_t i = 0; i < o->n_streams; i++) {
        const hq_ol_stream_t *s = &o->streams[i];
        if (s->job != job || s->superseded)
            continue;
        if (*n == cap)
            ids = hq_realloc(ids, (cap *= 2) * sizeof *ids);
        ids[(*n)++] = s->task;
    }
    return ids;
}

/* JOB and --task of cat/export. -1 to go on, else the exit code. */
static int s_job_tasks(hq_cli_t *c, uint32_t *job, hq_rangelist_t *rl, bool *has_rl)
{
    const char *js = hq_args_pos(c->args, 1);
    if (s_parse_id(js, job) != 0)
        return hq_cli_invalid_pos("JOB", js, "invalid digit found in string");
    const char *ts = hq_args_get(c->args, "task");
    hq_err_t err;
    *has_rl = ts != NULL;
    if (ts && hq_rangelist_parse(ts, rl, &err) != 0)
        return hq_cli_invalid(c->spec->opts, "task", ts, err.text);
    return -1;
}

static int s_cat(hq_cli_t *c, hq_olog_t *o, uint32_t job, int channel, const hq_rangelist_t *rl)
{
    size_t n;
    uint32_t *ids = s_task_ids(o, job, rl, &n);
    if (!hq_args_has(c->args, "allow-unfinished")) {
        for (size_t i = 0; i < n; i++)
            if (!hq_olog_find(o, job, ids[i])->finished) {
                uint32_t id = ids[i];
                free(ids);
                return hq_cli_error(c, "Stream for task %u is not finished", id);
            }
    }
    for (size_t i = 0; i < n; i++)
        hq_olog_write(o, hq_olog_find(o, job, ids[i]), channel, stdout, NULL);
    free(ids);
    return 0;
}

int hq_cmd_output_log_cat(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "output-log cat", argc, argv);
    if (rc >= 0)
        return rc;
    uint32_t job = 0;
    hq_rangelist_t rl = {0};
    bool has_rl = false;
    const char *ch = hq_args_pos(c.args, 2);
    if (strcmp(ch, "stdout") != 0 && strcmp(ch, "stderr") != 0)
        rc = hq_cli_invalid_pos("CHANNEL", ch, "[possible values: stdout, stderr]");
    else
        rc = s_job_tasks(&c, &job, &rl, &has_rl);
    int channel = strcmp(ch, "stderr") == 0;
    if (rc < 0 && hq_args_has(c.args, "follow")) {
        rc = hq_cli_follow(&c, hq_args_pos(c.args, 0), job, channel, has_rl ? &rl : NULL,
                           hq_args_get(c.args, "server-uid"));
    } else if (rc < 0) {
        hq_olog_t o;
        hq_err_t err;
        if (hq_olog_open(&o, hq_args_pos(c.args, 0), hq_args_get(c.args, "server-uid"), &err) !=
            0) {
            rc = hq_cli_error(&c, "%s", err.text);
        } else {
            hq_olog_index(&o);
            rc = s_cat(&c, &o, job, channel, has_rl ? &rl : NULL);
            fflush(stdout);
            if (rc == 0 && o.n_errors > 0)
                rc = 1;
        }
        hq_olog_close(&o);
    }
    hq_rangelist_clear(&rl);
    hq_cli_end(&c);
    return rc;
}

int hq_cmd_output_log_export(int argc, char **argv)
{
    hq_cli_t c;
    hq_olog_t o;
    int rc = s_begin(&c, "output-log export", argc, argv, &o);
    if (rc >= 0)
        return rc;
    uint32_t job = 0;
    hq_rangelist_t rl = {0};
    bool has_rl = false;
    rc = s_job_tasks(&c, &job, &rl, &has_rl);
    if (rc >= 0)
        return s_end(&c, &o, rc);
    size_t n;
    uint32_t *ids = s_task_ids(&o, job, has_rl ? &rl : NULL, &n);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const hq_ol_stream_t *s = hq_olog_find(&o, job, ids[i]);
        hq_buf_t b = {0};
        hq_buf_append(&b, "", 0);
        hq_olog_write(&o, s, HQ_SF_STDOUT, NULL, &b);
        char *text = hq_utf8_lossy(b.data, b.len);
        json_array_append_new(arr, json_pack("{s:b,s:I,s:s}", "finished", s->finished, "id",
                                             (json_int_t)s->task, "stdout", text));
        free(text);
        hq_buf_free(&b);
    }
    char *dump = hq_json_dump(arr, true);
    printf("%s\n", dump);
    free(dump);
    json_decref(arr);
    free(ids);
    hq_rangelist_clear(&rl);
    return s_end(&c, &o, 0);
}
