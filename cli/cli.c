/* Helpers shared by hq's commands (see cli.h). */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_render.h"
#include "hq_util.h"

int hq_cli_begin(hq_cli_t *c, const char *path, int argc, char **argv)
{
    memset(c, 0, sizeof *c);
    hq_err_t err;
    c->spec = hq_cmd_find(path);
    if (!c->spec) {
        fprintf(stderr, "error: '%s' is not in the command table\n", path);
        return 2;
    }
    c->args = hq_cmd_parse(c->spec, argc, argv, &err);
    if (!c->args)
        return hq_cli_usage_error(err.text);
    if (hq_args_help(c->args)) {
        hq_cmd_print_help(c->spec, stdout);
        hq_args_destroy(&c->args);
        return 0;
    }
    if (hq_global_from_args(c->args, &c->g, &err) != 0) {
        hq_args_destroy(&c->args);
        return hq_cli_usage_error(err.text);
    }
    hq_log_init(c->g.debug);
    return -1;
}

void hq_cli_end(hq_cli_t *c)
{
    hq_args_destroy(&c->args);
    hq_global_clear(&c->g);
}

int hq_cli_usage_error(const char *text)
{
    fprintf(stderr, "%s\n", text);
    return 2;
}

int hq_cli_invalid(const hq_opt_t *opts, const char *flag, const char *value, const char *detail)
{
    hq_err_t err;
    hq_args_invalid_value(&err, opts, flag, value, detail);
    return hq_cli_usage_error(err.text);
}

int hq_cli_invalid_pos(const char *name, const char *value, const char *detail)
{
    fprintf(stderr, "error: invalid value '%s' for '<%s>': %s\n", value, name, detail);
    return 2;
}

/* "error: the following required arguments were not provided:\n  <what>", returns 2. */
static int s_missing(const char *what)
{
    fprintf(stderr, "error: the following required arguments were not provided:\n  %s\n", what);
    return 2;
}

int hq_cli_selector(const char *name, const char *value, bool allow_all, hq_selector_t *out)
{
    hq_err_t err;
    if (!value) {
        char *what = hq_asprintf("<%s>", name);
        int rc = s_missing(what);
        free(what);
        return rc;
    }
    if (hq_selector_parse(value, allow_all, out, &err) != 0)
        return hq_cli_invalid_pos(name, value, err.text);
    return -1;
}

static const struct {
    const char *name;
    uint32_t bit;
} s_states[] = {
    {"waiting", HQ_ST_WAITING}, {"running", HQ_ST_RUNNING},   {"finished", HQ_ST_FINISHED},
    {"failed", HQ_ST_FAILED},   {"canceled", HQ_ST_CANCELED}, {"aborted", HQ_ST_ABORTED},
    {"opened", HQ_ST_OPENED},
};

int hq_cli_states(const hq_opt_t *opts, const char *flag, const char *value, uint32_t allowed,
                  uint32_t *mask)
{
    *mask = 0;
    char *copy = hq_strdup(value);
    char *save = NULL;
    int rc = -1;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t n = strlen(tok);
        while (n > 0 && tok[n - 1] == ' ')
            tok[--n] = '\0';
        uint32_t bit = 0;
        for (size_t i = 0; i < sizeof s_states / sizeof s_states[0]; i++)
            if (strcmp(tok, s_states[i].name) == 0 && (allowed & s_states[i].bit))
                bit = s_states[i].bit;
        if (!bit) {
            hq_buf_t possible = {0};
            for (size_t i = 0; i < sizeof s_states / sizeof s_states[0]; i++)
                if (allowed & s_states[i].bit)
                    hq_buf_printf(&possible, "%s%s", possible.len ? ", " : "", s_states[i].name);
            char *detail = hq_asprintf("invalid value '%s' [possible values: %s]", tok,
                                       possible.data ? possible.data : "");
            rc = hq_cli_invalid(opts, flag, value, detail);
            free(detail);
            hq_buf_free(&possible);
            break;
        }
        *mask |= bit;
    }
    free(copy);
    return rc;
}

static void s_log_lines(const hq_reply_t *r)
{
    for (uint32_t i = 0; i < r->n_log; i++) {
        const char *line = r->log[i];
        const char *tab = strchr(line, '\t');
        enum hq_log_level level = HQ_LOG_INFO;
        const char *text = line;
        if (tab) {
            size_t n = (size_t)(tab - line);
            if (n == 4 && strncmp(line, "WARN", 4) == 0)
                level = HQ_LOG_WARN;
            else if (n == 5 && strncmp(line, "ERROR", 5) == 0)
                level = HQ_LOG_ERROR;
            text = tab + 1;
        }
        hq_log(level, "hq", "%s", text);
    }
}

static int s_call(hq_cli_t *c, hq_msg_t *req, uint64_t extra_wait_ms, json_t **root, uint64_t *id)
{
    hq_err_t err;
    if (root)
        *root = NULL;
    hq_client_t *client = hq_client_new(&c->g, &err);
    if (!client)
        return hq_output_error(&c->g, err.text);
    hq_msg_t *reply = hq_client_call(client, req, extra_wait_ms, &err);
    hq_client_destroy(&client);
    if (!reply)
        return hq_output_error(&c->g, err.text);
    s_log_lines(&reply->u.reply);
    if (id)
        *id = reply->u.reply.id;
    int rc = 0;
    if (root && reply->u.reply.json) {
        json_error_t jerr;
        *root = json_loads(reply->u.reply.json, JSON_DECODE_ANY, &jerr);
        if (!*root)
            rc = hq_output_error(&c->g, "The server sent a reply that is not valid JSON");
    }
    hq_msg_destroy(&reply);
    return rc;
}

int hq_cli_query(hq_cli_t *c, uint8_t type, const hq_query_t *q, uint64_t extra_wait_ms,
                 json_t **root, uint64_t *id)
{
    hq_msg_t req;
    memset(&req, 0, sizeof req);
    req.hdr.type = type;
    if (q)
        req.u.query = *q;
    return s_call(c, &req, extra_wait_ms, root, id);
}

int hq_cli_submit(hq_cli_t *c, const hq_submit_t *s, uint64_t *id)
{
    hq_msg_t req;
    memset(&req, 0, sizeof req);
    req.hdr.type = HQ_MSG_SUBMIT;
    req.u.submit = *s;
    return s_call(c, &req, 0, NULL, id);
}

void hq_cli_print_json(const json_t *result)
{
    json_t *copy = result ? json_deep_copy(result) : json_object();
    hq_json_strip_private(copy);
    hq_output_json(copy);
    json_decref(copy);
}

int hq_cli_error(hq_cli_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0)
        text = NULL;
    va_end(ap);
    int rc = hq_output_error(&c->g, text ? text : "error");
    free(text);
    return rc;
}

static json_int_t s_count(const json_t *stats, const char *key)
{
    return json_integer_value(json_object_get(stats, key));
}

const char *hq_cli_job_state(const json_t *info)
{
    const json_t *st = json_object_get(info, "task_stats");
    if (s_count(st, "running") > 0)
        return "RUNNING";
    if (s_count(st, "waiting") > 0)
        return "WAITING";
    if (s_count(st, "failed") > 0)
        return "FAILED";
    if (s_count(st, "aborted") > 0)
        return "ABORTED";
    if (s_count(st, "canceled") > 0)
        return "CANCELED";
    if (json_is_true(json_object_get(info, "is_open")))
        return "OPENED";
    return "FINISHED";
}

const char *hq_cli_task_state(const char *s)
{
    static const char *const map[][2] = {
        {"waiting", "WAITING"}, {"running", "RUNNING"},   {"finished", "FINISHED"},
        {"failed", "FAILED"},   {"canceled", "CANCELED"}, {"aborted", "ABORTED"},
    };
    for (size_t i = 0; s && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(s, map[i][0]) == 0)
            return map[i][1];
    return s ? s : "";
}

uint64_t hq_cli_seconds_ns(const json_t *v)
{
    if (!json_is_number(v))
        return 0;
    double secs = json_number_value(v);
    return secs > 0 && secs < 1.8e10 ? (uint64_t)(secs * 1e9 + 0.5) : 0;
}

int64_t hq_cli_span_ns(const char *from, const char *to)
{
    uint64_t a, b;
    if (!from || hq_time_parse_rfc3339(from, &a) != 0)
        return -1;
    if (!to || hq_time_parse_rfc3339(to, &b) != 0)
        b = hq_wall_ns();
    return (int64_t)b - (int64_t)a;
}
