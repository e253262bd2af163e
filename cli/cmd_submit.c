/* `hq submit` / `hq job submit`: builds one array submit (hq_submit_t) from the
 * command line and the script's #HQ directives, sends it, and optionally waits. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "hq_duration.h"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_resource.h"
#include "hq_placeholder.h"
#include "hq_util.h"
#include "submit_args.h"

#define S_DEFAULT_STDOUT "%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stdout"
#define S_DEFAULT_STDERR "%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stderr"

/* The command line, falling back to the script's directives. */
typedef struct s_view {
    hq_args_t *cli; /* the command line */
    hq_args_t *dir; /* parsed #HQ directives, or NULL */
    bool cli_array; /* the command line names the array source: ignore the directives' */
} s_view_t;

static bool s_is_array_source(const char *name)
{
    return strcmp(name, "array") == 0 || strcmp(name, "each-line") == 0 ||
           strcmp(name, "from-json") == 0;
}

static const char *s_get(const s_view_t *v, const char *name)
{
    const char *x = hq_args_get(v->cli, name);
    if (x || !v->dir || (v->cli_array && s_is_array_source(name)))
        return x;
    return hq_args_get(v->dir, name);
}

static bool s_has(const s_view_t *v, const char *name)
{
    return hq_args_has(v->cli, name) || (v->dir && hq_args_has(v->dir, name));
}

/* Values of a MULTI option: the directives' first, then the command line's. */
static const char **s_multi(const s_view_t *v, const char *name, size_t *n)
{
    size_t a = v->dir ? hq_args_count(v->dir, name) : 0, b = hq_args_count(v->cli, name);
    const char **out = hq_calloc(a + b + 1, sizeof *out);
    for (size_t i = 0; i < a; i++)
        out[i] = hq_args_at(v->dir, name, i);
    for (size_t i = 0; i < b; i++)
        out[a + i] = hq_args_at(v->cli, name, i);
    *n = a + b;
    return out;
}

static int s_parse_u32(const char *s, uint32_t *out)
{
    char *end = NULL;
    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int s_parse_i32(const char *s, int32_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < INT32_MIN || v > INT32_MAX)
        return -1;
    *out = (int32_t)v;
    return 0;
}

static int s_read_stream(FILE *f, size_t max, hq_bytes_t *out)
{
    hq_buf_t b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        hq_buf_append(&b, chunk, n);
        if (b.len > max) {
            hq_buf_free(&b);
            return -1;
        }
    }
    out->len = (uint32_t)b.len;
    out->data = (uint8_t *)(b.data ? b.data : hq_strdup(""));
    return 0;
}

/* Everything the submit owns while it is being built. */
typedef struct s_submit {
    hq_submit_t s;
    hq_task_def_t def;
    hq_rvariant_t var;
    char **args; /* command words (shebang + positionals) */
    int nargs;
    char **dir_words; /* directive words (for the directive parse) */
    char **shebang;
    hq_bytes_t *entries;
    uint32_t n_entries;
} s_submit_t;

static void s_submit_clear(s_submit_t *b)
{
    free(b->s.name);
    free(b->s.submit_dir);
    free(b->s.stream_dir);
    hq_rangelist_clear(&b->s.ids);
    hq_submit_free_entries(b->entries, b->n_entries);
    hq_submit_free_env(b->def.env, b->def.n_env);
    free(b->def.cwd);
    free(b->def.out.path);
    free(b->def.err.path);
    free(b->def.stdin_data.data);
    hq_rvariant_clear(&b->var);
    free(b->args);
    hq_submit_free_words(b->dir_words);
    hq_submit_free_words(b->shebang);
}

/* Reads directives; returns -1 to continue or an exit code. */
static int s_directives(hq_cli_t *c, s_view_t *v, s_submit_t *b, const char *mode)
{
    const char *cmd = hq_args_pos(c->args, 0);
    bool from_file = strcmp(mode, "file") == 0 || (strcmp(mode, "auto") == 0 && strlen(cmd) >= 3 &&
                                                   strcmp(cmd + strlen(cmd) - 3, ".sh") == 0);
    bool from_stdin = strcmp(mode, "stdin") == 0;
    if (!from_file && !from_stdin)
        return -1;
    hq_bytes_t data = {0};
    hq_err_t err;
    if (from_stdin) {
        data.data = b->def.stdin_data.data;
        data.len = b->def.stdin_data.len;
    } else {
        char *buf = NULL;
        size_t len = 0;
        if (hq_read_file(cmd, 32 * 1024 * 1024, &buf, &len) != 0) {
            int e = errno;
            return hq_cli_error(c, "Could not parse directives from %s: %s (os error %d)", cmd,
                                strerror(e), e);
        }
        data.data = (uint8_t *)buf;
        data.len = (uint32_t)len;
    }
    int nwords = 0, nshebang = 0;
    int rc = hq_submit_scan_directives((const char *)data.data, data.len, &b->dir_words, &nwords,
                                       &b->shebang, &nshebang, &err);
    if (!from_stdin)
        free(data.data);
    if (rc != 0)
        return hq_cli_error(c, "Could not parse directives from %s: %s", cmd, err.text);
    if (nwords > 0) {
        v->dir = hq_args_parse(hq_submit_opts, nwords, b->dir_words, 0, false, "hq submit", &err);
        if (!v->dir) {
            const char *causes[1] = {err.text};
            char *top = hq_asprintf("Could not parse directives from %s: You have used invalid "
                                    "parameter(s) after a #HQ directive.",
                                    cmd);
            char *text = hq_error_with_causes(top, causes, 1);
            rc = hq_cli_error(c, "%s", text);
            free(top);
            free(text);
            return rc;
        }
    }
    if (nshebang > 0 && !hq_args_has(c->args, "stdin")) {
        /* Shebang words go in front of the command. */
        char **args = hq_calloc((size_t)(nshebang + b->nargs) + 1, sizeof *args);
        for (int i = 0; i < nshebang; i++)
            args[i] = b->shebang[i];
        for (int i = 0; i < b->nargs; i++)
            args[nshebang + i] = b->args[i];
        free(b->args);
        b->args = args;
        b->nargs += nshebang;
    }
    return -1;
}

static int s_resources(const s_view_t *v, hq_cli_t *c, s_submit_t *b)
{
    hq_err_t err;
    const char *cpus = s_get(v, "cpus");
    const char *nodes = s_get(v, "nodes");
    const char *tr = s_get(v, "time-request");
    const char *weight = s_get(v, "weight");
    uint32_t n_nodes = 0;
    if (nodes && s_parse_u32(nodes, &n_nodes) != 0)
        return hq_cli_invalid(hq_submit_opts, "nodes", nodes, "invalid digit found in string");
    if (n_nodes > 0 && cpus)
        return hq_cli_usage_error(
            "error: the argument '--nodes <NODES>' cannot be used with '--cpus <CPUS>'");
    if (n_nodes > 0 && s_get(v, "pin"))
        return hq_cli_usage_error(
            "error: the argument '--nodes <NODES>' cannot be used with '--pin <PIN>'");
    if (tr && hq_duration_parse(tr, &b->var.min_time_ns, &err) != 0)
        return hq_cli_invalid(hq_submit_opts, "time-request", tr, err.text);
    b->var.weight = HQ_AMOUNT_ONE;
    if (weight) {
        char *end = NULL;
        double w = strtod(weight, &end);
        if (!*weight || *end || !isfinite(w))
            return hq_cli_invalid(hq_submit_opts, "weight", weight, "invalid float literal");
        if (w <= 0 || w * HQ_AMOUNT_ONE > UINT32_MAX)
            return hq_cli_invalid(hq_submit_opts, "weight", weight,
                                  "Resource weight has to be positive number");
        b->var.weight = (uint32_t)(w * HQ_AMOUNT_ONE + 0.5);
        if (b->var.weight == 0)
            return hq_cli_invalid(hq_submit_opts, "weight", weight,
                                  "Resource weight has to be positive number");
    }
    b->var.n_nodes = n_nodes;
    size_t nres;
    const char **res = s_multi(v, "resource", &nres);
    b->var.entries = hq_calloc(nres + 1, sizeof *b->var.entries);
    int rc = -1;
    if (n_nodes == 0) {
        hq_rreq_t cpu;
        memset(&cpu, 0, sizeof cpu);
        if (hq_rreq_parse("cpus", cpus ? cpus : "1", &cpu, &err) != 0) {
            rc = hq_cli_invalid(hq_submit_opts, "cpus", cpus, err.text);
            goto out;
        }
        b->var.entries[b->var.n_entries++] = cpu;
    }
    for (size_t i = 0; i < nres; i++) {
        hq_rreq_t r;
        memset(&r, 0, sizeof r);
        if (hq_rreq_parse_named(res[i], &r, &err) != 0) {
            rc = hq_cli_invalid(hq_submit_opts, "resource", res[i], err.text);
            goto out;
        }
        if (strcmp(r.name, "cpus") == 0) {
            if (cpus) {
                hq_rreq_clear(&r);
                rc = hq_cli_error(c, "--cpus and --resource cpus=... cannot be combined");
                goto out;
            }
            if (n_nodes == 0) { /* replaces the default cpus=1 */
                hq_rreq_clear(&b->var.entries[0]);
                b->var.entries[0] = r;
                continue;
            }
        }
        for (uint32_t j = 0; j < b->var.n_entries; j++) {
            if (strcmp(b->var.entries[j].name, r.name) == 0) {
                rc = hq_cli_error(c, "Resource '%s' defined more than once", r.name);
                hq_rreq_clear(&r);
                goto out;
            }
        }
        b->var.entries[b->var.n_entries++] = r;
    }
out:
    free(res);
    return rc;
}

/* cli/REFERENCE.md §1.6: warnings about the output files of an array. */
static void s_warn_files(const s_submit_t *b, const s_view_t *v, uint64_t ntasks)
{
    if (ntasks <= 1)
        return;
    const hq_stdio_t *chans[2] = {&b->def.out, &b->def.err};
    const char *names[2] = {"stdout", "stderr"};
    bool files[2];
    /* A path under the working directory gets the task id from a --cwd holding it. */
    bool cwd_per_task = b->def.cwd && strstr(b->def.cwd, "%{TASK_ID}");
    for (int i = 0; i < 2; i++) {
        bool given = s_get(v, names[i]) != NULL;
        files[i] = chans[i]->kind == HQ_STDIO_FILE;
        const char *path = files[i] ? chans[i]->path : NULL;
        bool under_cwd = path && path[0] != '/' && strncmp(path, "%{SUBMIT_DIR}", 13) != 0;
        if (given && files[i] && !strstr(path, "%{TASK_ID}") && !(under_cwd && cwd_per_task))
            hq_warn("You have submitted an array job, but the `%s` path does not contain the task "
                    "ID placeholder.\nIndividual tasks might thus overwrite the file. Consider "
                    "adding `%%{TASK_ID}` to the `--%s` value.",
                    names[i], names[i]);
    }
    uint64_t nfiles = ntasks * (uint64_t)(files[0] + files[1]);
    if (nfiles > 999)
        hq_warn("The job will create %llu files for %s. Consider using the `--stream` option to "
                "stream all outputs into a single file",
                (unsigned long long)nfiles,
                files[0] && files[1] ? "stdout and stderr"
                : files[0]           ? "stdout"
                                     : "stderr");
}

/* cli/REFERENCE.md §1.6: "Found unknown placeholder(s) `A, B` in <context>" for %{X} names hq does
 * not know (they are kept verbatim). */
static void s_warn_placeholders(const char *text, const char *context)
{
    static const char *const known[] = {"JOB_ID",     "TASK_ID", "INSTANCE_ID",
                                        "SUBMIT_DIR", "CWD",     "SERVER_UID"};
    hq_buf_t names = {0};
    int n = 0;
    for (const char *p = text ? strstr(text, "%{") : NULL; p; p = strstr(p, "%{")) {
        const char *close = strchr(p + 2, '}');
        if (!close)
            break;
        size_t len = (size_t)(close - p - 2);
        bool ok = false;
        for (size_t i = 0; i < sizeof known / sizeof known[0] && !ok; i++)
            ok = strlen(known[i]) == len && memcmp(known[i], p + 2, len) == 0;
        if (!ok) {
            if (n++ > 0)
                hq_buf_append(&names, ", ", 2);
            hq_buf_append(&names, p + 2, len);
        }
        p = close + 1;
    }
    if (n > 0)
        hq_warn("Found unknown placeholder%s `%s` in %s", n > 1 ? "s" : "", names.data, context);
    hq_buf_free(&names);
}

static char *s_basename(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    return hq_strdup(*base ? base : "job");
}

static int s_build(hq_cli_t *c, s_view_t *v, s_submit_t *b)
{
    hq_err_t err;
    hq_task_def_t *d = &b->def;
    const char *s;
    int rc;

    /* Simple values first: their errors are command-line errors (exit 2). */
    if ((s = s_get(v, "name")) && strpbrk(s, "\n\t"))
        return hq_cli_invalid(hq_submit_opts, "name", s, "name cannot have a newline or a tab");
    if ((s = s_get(v, "max-fails"))) {
        if (s_parse_u32(s, &b->s.max_fails) != 0)
            return hq_cli_invalid(hq_submit_opts, "max-fails", s, "invalid digit found in string");
        b->s.has_max_fails = true;
    }
    if ((s = s_get(v, "job")) && s_parse_u32(s, &b->s.job_id) != 0)
        return hq_cli_invalid(hq_submit_opts, "job", s, "invalid digit found in string");
    if ((s = s_get(v, "priority")) && s_parse_i32(s, &d->priority) != 0)
        return hq_cli_invalid(hq_submit_opts, "priority", s, "invalid digit found in string");
    if ((s = s_get(v, "time-limit")) && hq_duration_parse(s, &d->time_limit_ns, &err) != 0)
        return hq_cli_invalid(hq_submit_opts, "time-limit", s, err.text);
    d->crash_kind = HQ_CRASH_LIMIT;
    d->crash_limit = 5;
    if ((s = s_get(v, "crash-limit")) &&
        hq_submit_parse_crash_limit(s, &d->crash_kind, &d->crash_limit, &err) != 0)
        return hq_cli_invalid(hq_submit_opts, "crash-limit", s, err.text);
    if ((s = s_get(v, "pin"))) {
        if (strcmp(s, "taskset") == 0)
            d->pin = HQ_PIN_TASKSET;
        else if (strcmp(s, "omp") == 0)
            d->pin = HQ_PIN_OMP;
        else
            return hq_cli_invalid(hq_submit_opts, "pin", s, "[possible values: taskset, omp]");
    }
    d->task_dir = s_has(v, "task-dir");
    const char *out = s_get(v, "stdout");
    if (hq_submit_parse_stdio(out ? out : S_DEFAULT_STDOUT, S_DEFAULT_STDOUT, &d->out, &err) != 0)
        return hq_cli_invalid(hq_submit_opts, "stdout", out, err.text);
    const char *errspec = s_get(v, "stderr");
    if (hq_submit_parse_stdio(errspec ? errspec : S_DEFAULT_STDERR, S_DEFAULT_STDERR, &d->err,
                              &err) != 0)
        return hq_cli_invalid(hq_submit_opts, "stderr", errspec, err.text);
    /* --stream: the channels without a spec of their own go to the stream. */
    const char *stream = s_get(v, "stream");
    if (stream && !*stream)
        return hq_cli_invalid(hq_submit_opts, "stream", stream, "the directory cannot be empty");
    if (stream) {
        b->s.stream_dir = hq_strdup(stream);
        hq_stdio_t *chans[2] = {out ? NULL : &d->out, errspec ? NULL : &d->err};
        for (int k = 0; k < 2; k++)
            if (chans[k]) {
                free(chans[k]->path);
                memset(chans[k], 0, sizeof *chans[k]);
                chans[k]->kind = HQ_STDIO_STREAM;
            }
    }
    size_t nenv;
    const char **env = s_multi(v, "env", &nenv);
    bool dups = false;
    rc = hq_submit_build_env(env, nenv, &d->env, &d->n_env, &dups, &err);
    free(env);
    if (rc != 0)
        return hq_cli_usage_error("error: invalid value for '--env <ENV>': Environment variable "
                                  "cannot be empty");
    if ((rc = s_resources(v, c, b)) >= 0)
        return rc;
    const char *array = s_get(v, "array");
    hq_rangelist_t ids = {0};
    if (array && hq_rangelist_parse(array, &ids, &err) != 0)
        return hq_cli_invalid(hq_submit_opts, "array", array, err.text);

    /* Then checks whose errors are HQ errors (exit 1). */
    if (b->s.job_id && s_get(v, "name")) {
        hq_rangelist_clear(&ids);
        return hq_cli_error(c, "Parameter --name is not allowed when submitting to an open job.");
    }
    if (b->s.job_id && b->s.has_max_fails) {
        hq_rangelist_clear(&ids);
        return hq_cli_error(c,
                            "Parameter --max-fails is not allowed when submitting to an open job.");
    }
    if (dups)
        hq_warn(
            "Some environment variables were ignored. Check if you haven't used duplicate keys.");
    const char *cwd = s_get(v, "cwd");
    if (cwd && strstr(cwd, "%{CWD}")) {
        hq_rangelist_clear(&ids);
        return hq_cli_error(c, "Working directory path cannot contain the working directory "
                               "placeholder `%%{CWD}`.");
    }
    d->cwd = hq_strdup(cwd ? cwd : "%{SUBMIT_DIR}");

    const char *each = s_get(v, "each-line");
    const char *fjson = s_get(v, "from-json");
    if (each) {
        char *data = NULL;
        size_t len = 0;
        if (hq_read_file(each, SIZE_MAX / 2, &data, &len) != 0) {
            int e = errno;
            hq_rangelist_clear(&ids);
            return hq_cli_error(c, "Cannot read %s: %s (os error %d)", each, strerror(e), e);
        }
        hq_submit_split_lines(data, len, &b->entries, &b->n_entries);
        free(data);
    } else if (fjson) {
        if (hq_submit_json_entries(fjson, &b->entries, &b->n_entries, &err) != 0) {
            hq_rangelist_clear(&ids);
            return hq_cli_error(c, "%s", err.text);
        }
    }
    uint64_t ntasks;
    if (each || fjson) {
        if (array) {
            hq_submit_clip_ids(&ids, b->n_entries, &b->s.ids);
            hq_rangelist_clear(&ids);
        } else if (b->n_entries > 0) {
            b->s.ids.ranges = hq_calloc(1, sizeof *b->s.ids.ranges);
            b->s.ids.n = 1;
            b->s.ids.ranges[0] = (hq_range_t){.start = 0, .end = b->n_entries - 1, .step = 1};
        }
        ntasks = (array || !b->s.job_id) ? hq_rangelist_count(&b->s.ids) : b->n_entries;
        b->s.n_entries = b->n_entries;
        b->s.entries = b->entries;
    } else if (array) {
        b->s.ids = ids;
        ntasks = hq_rangelist_count(&ids);
    } else {
        /* Attached to an open job without ids: the broker numbers from its maximum + 1. */
        if (!b->s.job_id) {
            b->s.ids.ranges = hq_calloc(1, sizeof *b->s.ids.ranges);
            b->s.ids.n = 1;
            b->s.ids.ranges[0] = (hq_range_t){.start = 0, .end = 0, .step = 1};
        }
        ntasks = 1;
    }
    s_warn_files(b, v, ntasks);
    s_warn_placeholders(d->cwd, "working directory path");
    if (d->out.kind == HQ_STDIO_FILE)
        s_warn_placeholders(d->out.path, "stdout path");
    if (d->err.kind == HQ_STDIO_FILE)
        s_warn_placeholders(d->err.path, "stderr path");

    d->n_args = (uint32_t)b->nargs;
    d->args = b->args;
    d->n_variants = 1;
    d->variants = &b->var;
    const char *name = s_get(v, "name");
    b->s.name = b->s.job_id && !name ? NULL : name ? hq_strdup(name) : s_basename(b->args[0]);
    char cwdbuf[PATH_MAX];
    if (!getcwd(cwdbuf, sizeof cwdbuf)) {
        int e = errno;
        return hq_cli_error(c, "Cannot get the current directory: %s (os error %d)", strerror(e),
                            e);
    }
    b->s.submit_dir = hq_strdup(cwdbuf);
    b->s.n_defs = 1;
    b->s.defs = d;
    return -1;
}

/* --follow: the job's output from its stream directory, resolved as the server does
 * (cli/REFERENCE.md §1.6), until the job ends. */
static int s_follow(hq_cli_t *c, const hq_submit_t *s, uint64_t id)
{
    char *uid = hq_cli_server_uid(c);
    char job[24];
    snprintf(job, sizeof job, "%llu", (unsigned long long)id);
    hq_placeholder_vals_t v = {.job_id = job, .submit_dir = s->submit_dir, .server_uid = uid};
    char *p = hq_placeholder_expand(s->stream_dir, &v);
    char *dir = hq_path_abs(p, s->submit_dir);
    int rc = hq_cli_follow(c, dir, (uint32_t)id, -1, NULL, uid);
    free(dir);
    free(p);
    free(uid);
    return rc;
}

int hq_cmd_submit(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "submit", argc, argv);
    if (rc >= 0)
        return rc;
    s_submit_t b;
    memset(&b, 0, sizeof b);
    s_view_t v = {.cli = c.args, .dir = NULL};
    const char *mode = hq_args_get(c.args, "directives");
    bool wait = hq_args_has(c.args, "wait"), progress = hq_args_has(c.args, "progress");
    if (wait && progress) {
        rc = hq_cli_usage_error("error: the argument '--wait' cannot be used with '--progress'");
        goto out;
    }
    if (hq_args_get(c.args, "each-line") && hq_args_get(c.args, "from-json")) {
        rc = hq_cli_usage_error(
            "error: the argument '--each-line <EACH_LINE>' cannot be used with '--from-json "
            "<FROM_JSON>'");
        goto out;
    }
    if (mode && strcmp(mode, "auto") != 0 && strcmp(mode, "file") != 0 &&
        strcmp(mode, "stdin") != 0 && strcmp(mode, "off") != 0) {
        rc = hq_cli_invalid(hq_submit_opts, "directives", mode,
                            "[possible values: auto, file, stdin, off]");
        goto out;
    }
    if (mode && strcmp(mode, "stdin") == 0 && !hq_args_has(c.args, "stdin")) {
        rc = hq_cli_error(&c, "You have to use `--stdin` when you specify `--directives=stdin`.");
        goto out;
    }
    bool follow = hq_args_has(c.args, "follow");
    if (follow && progress) {
        rc = hq_cli_usage_error("error: the argument '--follow' cannot be used with '--progress'");
        goto out;
    }
    if (hq_args_get(c.args, "on-notify") && !hq_args_has(c.args, "wait") &&
        !hq_args_has(c.args, "progress")) {
        rc = hq_cli_error(&c, "--on-notify can only be used together with --wait or --progress");
        goto out;
    }
    b.nargs = (int)hq_args_npos(c.args);
    b.args = hq_calloc((size_t)b.nargs + 1, sizeof *b.args);
    for (int i = 0; i < b.nargs; i++)
        b.args[i] = (char *)hq_args_pos(c.args, (size_t)i);
    if (hq_args_has(c.args, "stdin")) {
        hq_info("Reading data from stdin. In the interactive mode press Ctrl-D to submit.");
        if (s_read_stream(stdin, HQ_MAX_ENTRY, &b.def.stdin_data) != 0) {
            rc = hq_cli_error(&c, "The standard input is larger than %d bytes", HQ_MAX_ENTRY);
            goto out;
        }
    }
    if ((rc = s_directives(&c, &v, &b, mode ? mode : "auto")) >= 0)
        goto out;
    /* The array source is taken from the command line if it names any. */
    v.cli_array = hq_args_get(c.args, "array") || hq_args_get(c.args, "each-line") ||
                  hq_args_get(c.args, "from-json");
    if ((rc = s_build(&c, &v, &b)) >= 0)
        goto out;
    if (follow && !b.s.stream_dir) {
        rc = hq_cli_error(&c, "--follow needs --stream: the output is read from the stream "
                              "directory");
        goto out;
    }
    if (hq_client_key_submit(&b.s) != 0) {
        rc = hq_cli_error(&c, "Cannot initialise libsodium");
        goto out;
    }
    uint64_t id = 0;
    rc = hq_cli_submit(&c, &b.s, &id);
    if (rc != 0)
        goto out;
    if (c.g.output == HQ_OUTPUT_JSON) {
        json_t *o = json_pack("{s:I}", "id", (json_int_t)id);
        hq_output_json(o);
        json_decref(o);
    } else if (c.g.output == HQ_OUTPUT_QUIET) {
        printf("%llu\n", (unsigned long long)id);
    } else {
        printf("Job submitted successfully, job ID: %llu\n", (unsigned long long)id);
    }
    fflush(stdout);
    if (follow) {
        rc = s_follow(&c, &b.s, id);
    } else if (wait || progress) {
        hq_selector_t sel;
        memset(&sel, 0, sizeof sel);
        sel.kind = HQ_SEL_IDS;
        hq_range_t r = {.start = (uint32_t)id, .end = (uint32_t)id, .step = 1};
        sel.ids.n = 1;
        sel.ids.ranges = &r;
        rc = hq_cli_wait_jobs(&c, &sel, false, progress, hq_args_get(c.args, "on-notify"));
    }
out:
    hq_args_destroy(&v.dir);
    s_submit_clear(&b);
    hq_cli_end(&c);
    return rc;
}
