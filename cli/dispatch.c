/* hq's command dispatch: walks the command words through the command table
 * (hq_cmdtable.h), with clap's messages and typo tips for unknown words, and hands
 * the command the global flags given before them in front of its own arguments. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "cli.h"
#include "hq_util.h"
#include "worker.h"

static int s_broker(int argc, char **argv)
{
    return hq_broker_main(argc, argv);
}

static int s_worker(int argc, char **argv)
{
    return hq_worker_main(argc, argv);
}

static int s_hwdetect(int argc, char **argv)
{
    return hq_worker_hwdetect_main(argc, argv);
}

/* The entry point of every command of the table that runs something. */
static const struct {
    const char *path;
    hq_cmd_fn fn;
} s_handlers[] = {
    {"submit", hq_cmd_submit},
    {"server start", s_broker},
    {"server stop", hq_cmd_server_stop},
    {"server info", hq_cmd_server_info},
    {"server wait", hq_cmd_server_wait},
    {"server generate-access", hq_cmd_server_generate_access},
    {"server debug-dump", hq_cmd_server_debug_dump},
    {"worker start", s_worker},
    {"worker stop", hq_cmd_worker_stop},
    {"worker list", hq_cmd_worker_list},
    {"worker info", hq_cmd_worker_info},
    {"worker hwdetect", s_hwdetect},
    {"worker address", hq_cmd_worker_address},
    {"worker wait", hq_cmd_worker_wait},
    {"worker deploy-ssh", hq_cmd_worker_deploy_ssh},
    {"job list", hq_cmd_job_list},
    {"job summary", hq_cmd_job_summary},
    {"job info", hq_cmd_job_info},
    {"job cancel", hq_cmd_job_cancel},
    {"job forget", hq_cmd_job_forget},
    {"job wait", hq_cmd_job_wait},
    {"job progress", hq_cmd_job_progress},
    {"job cat", hq_cmd_job_cat},
    {"job submit", hq_cmd_submit},
    {"job submit-file", hq_cmd_job_submit_file},
    {"job task-ids", hq_cmd_job_task_ids},
    {"job open", hq_cmd_job_open},
    {"job close", hq_cmd_job_close},
    {"task list", hq_cmd_task_list},
    {"task info", hq_cmd_task_info},
    {"task explain", hq_cmd_task_explain},
    {"task notify", hq_cmd_task_notify},
    {"journal export", hq_cmd_journal_export},
    {"journal stream", hq_cmd_journal_stream},
    {"journal replay", hq_cmd_journal_replay},
    {"journal flush", hq_cmd_journal_flush},
    {"journal prune", hq_cmd_journal_prune},
    {"journal verify", hq_cmd_journal_verify},
    {"journal report", hq_cmd_journal_report},
    {"output-log summary", hq_cmd_output_log_summary},
    {"output-log jobs", hq_cmd_output_log_jobs},
    {"output-log show", hq_cmd_output_log_show},
    {"output-log cat", hq_cmd_output_log_cat},
    {"output-log export", hq_cmd_output_log_export},
    {"alloc add pbs", hq_cmd_alloc_add_pbs},
    {"alloc add slurm", hq_cmd_alloc_add_slurm},
    {"alloc dry-run pbs", hq_cmd_alloc_dry_run_pbs},
    {"alloc dry-run slurm", hq_cmd_alloc_dry_run_slurm},
    {"alloc list", hq_cmd_alloc_list},
    {"alloc info", hq_cmd_alloc_info},
    {"alloc log", hq_cmd_alloc_log},
    {"alloc pause", hq_cmd_alloc_pause},
    {"alloc resume", hq_cmd_alloc_resume},
    {"alloc remove", hq_cmd_alloc_remove},
    {"doc", hq_cmd_doc},
    {"generate-completion", hq_cmd_generate_completion},
    {"generate-man", hq_cmd_generate_man},
};

hq_cmd_fn hq_cli_handler(const char *path)
{
    for (size_t i = 0; i < sizeof s_handlers / sizeof s_handlers[0]; i++)
        if (strcmp(s_handlers[i].path, path) == 0)
            return s_handlers[i].fn;
    return NULL;
}

/* clap's error tail for a group: the usage line and the pointer to --help. */
static int s_group_error(const hq_cmd_spec_t *node, const char *text, const char *tip)
{
    char *usage = hq_cmd_usage(node);
    fprintf(stderr, "%s\n\n", text);
    if (tip)
        fprintf(stderr, "  %s\n\n", tip);
    fprintf(stderr, "Usage: %s\n\nFor more information, try '--help'.\n", usage);
    free(usage);
    return 2;
}

static const hq_opt_t *s_global(const char *word, size_t n)
{
    for (const hq_opt_t *o = hq_global_opts; o->name; o++)
        if (strlen(o->name) == n && strncmp(o->name, word, n) == 0)
            return o;
    return NULL;
}

/* The option of a group that takes words before its command word (--server-uid of
 * output-log), or NULL. */
static const hq_opt_t *s_group_opt(const hq_cmd_spec_t *node, const char *w)
{
    if (!node->args || w[0] != '-' || w[1] != '-')
        return NULL;
    const char *name = w + 2, *eq = strchr(name, '=');
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    for (const hq_opt_t *o = node->opts; o && o->name; o++)
        if (strlen(o->name) == n && strncmp(o->name, name, n) == 0)
            return o;
    return NULL;
}

/* Collects the global flags of argv[*i...] into globals until a command word.
 * Returns -1 to continue, or an exit code (help/version/errors). */
static int s_scan_flags(int argc, char **argv, int *i, char **globals, int *nglobals,
                        const hq_cmd_spec_t *node)
{
    while (*i < argc && argv[*i][0] == '-' && !s_group_opt(node, argv[*i])) {
        const char *w = argv[*i];
        if (strcmp(w, "--version") == 0 || strcmp(w, "-V") == 0) {
            printf("hq %s\n", HQ_VERSION);
            return 0;
        }
        if (strcmp(w, "--help") == 0 || strcmp(w, "-h") == 0) {
            hq_cmd_print_help(node, stdout);
            return 0;
        }
        const char *name = w[1] == '-' ? w + 2 : w + 1;
        const char *eq = strchr(name, '=');
        const hq_opt_t *o =
            w[1] == '-' ? s_global(name, eq ? (size_t)(eq - name) : strlen(name)) : NULL;
        if (!o) {
            char *text = hq_asprintf("error: unexpected argument '%s' found", w);
            const char *names[8];
            size_t n = 0;
            for (const hq_opt_t *g = hq_global_opts; g->name && n < 8; g++)
                names[n++] = g->name;
            const char *similar = w[1] == '-' ? hq_args_similar(name, names, n) : NULL;
            char *tip =
                similar ? hq_asprintf("tip: a similar argument exists: '--%s'", similar) : NULL;
            int rc = s_group_error(node, text, tip);
            free(tip);
            free(text);
            return rc;
        }
        globals[(*nglobals)++] = argv[(*i)++];
        if (o->kind != HQ_OPT_FLAG && !eq) {
            if (*i >= argc) {
                fprintf(stderr,
                        "error: a value is required for '--%s <%s>' but none was supplied\n\n"
                        "For more information, try '--help'.\n",
                        o->name, o->value_name);
                return 2;
            }
            globals[(*nglobals)++] = argv[(*i)++];
        }
    }
    return -1;
}

/* error: unrecognized subcommand, with a tip when word looks like a typo. */
static int s_unrecognized(const hq_cmd_spec_t *node, const char *word)
{
    const char *names[64];
    size_t n = 0;
    for (size_t k = 0; hq_cmd_child(node, k) && n < 64; k++)
        names[n++] = hq_cmd_name(hq_cmd_child(node, k));
    const char *similar = hq_args_similar(word, names, n);
    char *text = hq_asprintf("error: unrecognized subcommand '%s'", word);
    char *tip = similar ? hq_asprintf("tip: a similar subcommand exists: '%s'", similar) : NULL;
    int rc = s_group_error(node, text, tip);
    free(tip);
    free(text);
    return rc;
}

int hq_cli_main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_DFL);
    char **globals = hq_calloc((size_t)argc + 1, sizeof *globals);
    int nglobals = 0;
    int i = 1;
    int rc = -1;
    /* Words of a group before its command word (`output-log DIR --server-uid U cat`)
     * go to the command, in front of its own words. */
    char **carried = hq_calloc((size_t)argc + 1, sizeof *carried);
    int ncarried = 0;
    const hq_cmd_spec_t *node = hq_cmd_find("");
    while (hq_cmd_is_group(node)) {
        rc = s_scan_flags(argc, argv, &i, globals, &nglobals, node);
        if (rc >= 0)
            goto done;
        if (node->args && i < argc && !hq_cmd_child_named(node, argv[i])) {
            const hq_opt_t *o = s_group_opt(node, argv[i]);
            carried[ncarried++] = argv[i++];
            if (o && o->kind != HQ_OPT_FLAG && !strchr(carried[ncarried - 1], '=') && i < argc)
                carried[ncarried++] = argv[i++];
            continue;
        }
        if (i >= argc) {
            if (*node->path)
                fprintf(stderr, "error: 'hq %s' requires a subcommand but one was not provided\n\n",
                        node->path);
            hq_cmd_print_help(node, stderr);
            rc = 2;
            goto done;
        }
        const char *word = argv[i++];
        const hq_cmd_spec_t *next = hq_cmd_child_named(node, word);
        if (!next) {
            rc = s_unrecognized(node, word);
            goto done;
        }
        node = next;
    }
    hq_cmd_fn fn = hq_cli_handler(node->path);
    if (!fn) {
        fprintf(stderr, "error: 'hq %s' has no implementation\n", node->path);
        rc = 2;
        goto done;
    }
    /* The command sees the global flags first, then its own words. */
    int nargs = nglobals + ncarried + (argc - i);
    char **args = hq_calloc((size_t)nargs + 1, sizeof *args);
    for (int k = 0; k < nglobals; k++)
        args[k] = globals[k];
    for (int k = 0; k < ncarried; k++)
        args[nglobals + k] = carried[k];
    for (int k = i; k < argc; k++)
        args[nglobals + ncarried + k - i] = argv[k];
    rc = fn(nargs, args);
    free(args);
done:
    free(carried);
    free(globals);
    fflush(stdout);
    return rc;
}
