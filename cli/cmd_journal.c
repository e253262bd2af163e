/* `hq journal`: export (offline: the journal directory as NDJSON events on stdout),
 * verify (offline: CRC and schema walk), report (offline: an HTML report, report.c), and through
 * the running server: stream (past and live events, until the server stops), replay (past events),
 * flush, prune. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "client.h"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_render.h"
#include "hq_util.h"
#include "journal/hq_journal.h"
#include "report.h"

typedef struct s_export {
    uint64_t n; /* events printed */
} s_export_t;

static void s_print_line(const char *line, void *arg)
{
    s_export_t *x = arg;
    fputs(line, stdout);
    fputc('\n', stdout);
    x->n++;
}

static int s_export_rec(hq_jrec_t *rec, bool from_snapshot, void *arg, hq_err_t *err)
{
    (void)from_snapshot;
    (void)err;
    hq_jrec_ndjson(rec, s_print_line, arg);
    return 0;
}

static int s_export(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "journal export", argc, argv);
    if (rc >= 0)
        return rc;
    const char *path = hq_args_pos(c.args, 0); /* required: hq_cmd_parse checked it */
    hq_journal_opts_t o = {.read_only = true};
    hq_err_t err;
    hq_journal_t *j = hq_journal_open(path, &o, &err);
    s_export_t x = {0};
    rc = 0;
    if (!j || hq_journal_replay(j, s_export_rec, &x, NULL, &err) != 0) {
        fflush(stdout);
        hq_error("Cannot read the journal %s: %s", path, err.text);
        rc = 1;
    }
    hq_journal_close(&j);
    fflush(stdout);
    if (rc == 0)
        hq_info("Outputted %llu %s", (unsigned long long)x.n, x.n == 1 ? "event" : "events");
    hq_cli_end(&c);
    return rc;
}

/* Pages of events from the server until the past is printed (replay) or the server
 * stops (stream). */
static int s_read(int argc, char **argv, bool live)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, live ? "journal stream" : "journal replay", argc, argv);
    if (rc >= 0)
        return rc;
    hq_err_t err;
    hq_client_t *client = hq_client_new(&c.g, &err);
    if (!client) {
        rc = hq_output_error(&c.g, err.text);
        hq_cli_end(&c);
        return rc;
    }
    uint64_t cursor = 0;
    rc = 0;
    for (;;) {
        hq_msg_t req;
        memset(&req, 0, sizeof req);
        req.hdr.type = HQ_MSG_JOURNAL_READ;
        req.u.query.number = cursor;
        req.u.query.flag = live;
        hq_msg_t *reply = hq_client_call(client, &req, 5000, &err);
        if (!reply) {
            fflush(stdout);
            rc = hq_output_error(&c.g, err.text);
            break;
        }
        json_error_t jerr;
        json_t *root = reply->u.reply.json ? json_loads(reply->u.reply.json, 0, &jerr) : NULL;
        hq_msg_destroy(&reply);
        json_t *res = root ? json_object_get(root, "result") : NULL;
        json_t *lines = res ? json_object_get(res, "lines") : NULL;
        if (!json_is_array(lines)) {
            json_decref(root);
            rc = hq_output_error(&c.g, "The server sent a reply that is not an event page");
            break;
        }
        size_t i;
        json_t *l;
        json_array_foreach(lines, i, l)
        {
            const char *text = json_string_value(l);
            if (text) {
                fputs(text, stdout);
                fputc('\n', stdout);
            }
        }
        fflush(stdout);
        json_int_t next = json_integer_value(json_object_get(res, "next"));
        bool more = json_is_true(json_object_get(res, "more"));
        bool end = json_is_true(json_object_get(res, "end"));
        json_decref(root);
        if (next > 0 && (uint64_t)next > cursor)
            cursor = (uint64_t)next;
        if (end || (!live && !more))
            break;
    }
    hq_client_destroy(&client);
    hq_cli_end(&c);
    return rc;
}

/* A body-less request whose success prints nothing ({} in JSON mode). */
static int s_simple(int argc, char **argv, uint8_t type, const char *path)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, path, argc, argv);
    if (rc >= 0)
        return rc;
    json_t *root = NULL;
    rc = hq_cli_query(&c, type, NULL, type == HQ_MSG_JOURNAL_PRUNE ? 600000 : 60000, &root, NULL);
    json_decref(root);
    if (rc == 0 && c.g.output == HQ_OUTPUT_JSON)
        hq_cli_print_json(NULL);
    hq_cli_end(&c);
    return rc;
}

/* ---- verify ---- */

static int s_verify(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "journal verify", argc, argv);
    if (rc >= 0)
        return rc;
    const char *path = hq_args_pos(c.args, 0); /* required: hq_cmd_parse checked it */
    hq_journal_opts_t o = {.read_only = true};
    hq_err_t err;
    hq_journal_report_t rep;
    memset(&rep, 0, sizeof rep);
    hq_journal_t *j = hq_journal_open(path, &o, &err);
    rc = 0;
    if (!j || hq_journal_replay(j, NULL, NULL, &rep, &err) != 0) {
        fprintf(stderr, "Journal %s is damaged: %s\n", path, err.text);
        rc = 1;
    } else if (rep.torn_bytes > 0) {
        /* Read-only: a torn tail is reported, not repaired (a start would truncate it). */
        printf("Journal %s: torn tail of %llu bytes after lsn %llu (a start drops it)\n", path,
               (unsigned long long)rep.torn_bytes, (unsigned long long)rep.last_lsn);
    } else {
        printf("Journal %s is valid: %llu records in %u segments, last lsn %llu, snapshot at "
               "lsn %llu with %llu records%s%s\n",
               path, (unsigned long long)rep.records, rep.segments,
               (unsigned long long)rep.last_lsn, (unsigned long long)rep.snapshot_lsn,
               (unsigned long long)rep.snap_records, rep.note[0] ? "; " : "", rep.note);
    }
    hq_journal_close(&j);
    hq_cli_end(&c);
    return rc;
}

int hq_cmd_journal_export(int argc, char **argv)
{
    return s_export(argc, argv);
}

int hq_cmd_journal_verify(int argc, char **argv)
{
    return s_verify(argc, argv);
}

int hq_cmd_journal_stream(int argc, char **argv)
{
    return s_read(argc, argv, true);
}

int hq_cmd_journal_replay(int argc, char **argv)
{
    return s_read(argc, argv, false);
}

int hq_cmd_journal_flush(int argc, char **argv)
{
    return s_simple(argc, argv, HQ_MSG_JOURNAL_FLUSH, "journal flush");
}

int hq_cmd_journal_prune(int argc, char **argv)
{
    return s_simple(argc, argv, HQ_MSG_JOURNAL_PRUNE, "journal prune");
}

/* A --start-time/--end-time value: 0 when not given, -1 (printed, exit 2) when bad. */
static int s_time_opt(hq_cli_t *c, const char *flag, uint64_t *ns)
{
    const char *v = hq_args_get(c->args, flag);
    *ns = 0;
    if (!v)
        return 0;
    if (hq_time_parse_rfc3339(v, ns) != 0 || *ns == 0) {
        hq_cli_invalid(c->spec->opts, flag, v,
                       "expected an RFC 3339 time such as 2026-01-02T03:04:05Z");
        return -1;
    }
    return 0;
}

int hq_cmd_journal_report(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "journal report", argc, argv);
    if (rc >= 0)
        return rc;
    uint64_t from, to;
    if (s_time_opt(&c, "start-time", &from) != 0 || s_time_opt(&c, "end-time", &to) != 0) {
        hq_cli_end(&c);
        return 2;
    }
    const char *path = hq_args_pos(c.args, 0), *out = hq_args_pos(c.args, 1);
    hq_err_t err;
    rc = 0;
    if (hq_journal_report(path, out, from, to, &err) != 0) {
        hq_error("Cannot write the report of the journal %s: %s", path, err.text);
        rc = 1;
    } else {
        hq_info("Report written to %s", out);
    }
    hq_cli_end(&c);
    return rc;
}
