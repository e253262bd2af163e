/* hq's command dispatch: finds the command named by the command words, and hands
 * it the global flags given before them in front of its own arguments. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "cli.h"
#include "hq_util.h"
#include "worker.h"

typedef struct s_cmd {
    const char *group; /* "job", or NULL for a top-level command */
    const char *name;  /* subcommand */
    hq_cmd_fn fn;      /* entry point */
    const char *about; /* one line for help */
} s_cmd_t;

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

static const s_cmd_t s_cmds[] = {
    {NULL, "submit", hq_cmd_submit, "Submit a job to HyperQueue"},
    {"server", "start", s_broker, "Start the server"},
    {"server", "stop", hq_cmd_server_stop, "Stop the server"},
    {"server", "info", hq_cmd_server_info, "Show info of a running server"},
    {"server", "wait", hq_cmd_server_wait, "Wait until the server is available"},
    {"server", "generate-access", hq_cmd_server_generate_access,
     "Generate an access file without starting the server"},
    {"worker", "start", s_worker, "Start a worker"},
    {"worker", "stop", hq_cmd_worker_stop, "Stop workers"},
    {"worker", "list", hq_cmd_worker_list, "Display information about workers"},
    {"worker", "info", hq_cmd_worker_info, "Display information about a specific worker"},
    {"worker", "hwdetect", s_hwdetect, "Hardware detection"},
    {"worker", "address", hq_cmd_worker_address, "Display the hostname of a worker"},
    {"worker", "wait", hq_cmd_worker_wait, "Wait until some workers are connected"},
    {"job", "list", hq_cmd_job_list, "Display information about jobs"},
    {"job", "summary", hq_cmd_job_summary, "Display a summary of jobs by state"},
    {"job", "info", hq_cmd_job_info, "Display detailed information about jobs"},
    {"job", "cancel", hq_cmd_job_cancel, "Cancel jobs"},
    {"job", "forget", hq_cmd_job_forget, "Forget completed jobs"},
    {"job", "wait", hq_cmd_job_wait, "Wait for jobs to finish"},
    {"job", "progress", hq_cmd_job_progress, "Interactively observe the progress of jobs"},
    {"job", "cat", hq_cmd_job_cat, "Print the stdout or stderr of tasks"},
    {"job", "submit", hq_cmd_submit, "Submit a job"},
    {"job", "submit-file", hq_cmd_job_submit_file, "Submit a job through a job definition file"},
    {"job", "task-ids", hq_cmd_job_task_ids, "Show task ids of jobs"},
    {"job", "open", hq_cmd_job_open, "Open a new job"},
    {"job", "close", hq_cmd_job_close, "Close open jobs"},
    {"task", "list", hq_cmd_task_list, "Display tasks of jobs"},
    {"task", "info", hq_cmd_task_info, "Display detailed information about tasks"},
    {"task", "explain", hq_cmd_task_explain, "Explain why a task can or cannot run on each worker"},
    {"journal", "export", hq_cmd_journal_export, "Export events from a journal to NDJSON"},
    {"journal", "stream", hq_cmd_journal_stream, "Stream events of a running server"},
    {"journal", "replay", hq_cmd_journal_replay, "Print past events of a running server"},
    {"journal", "flush", hq_cmd_journal_flush, "Force the journal of a running server to disk"},
    {"journal", "prune", hq_cmd_journal_prune, "Remove completed jobs from the journal"},
    {"journal", "verify", hq_cmd_journal_verify, "Check a journal offline (CRC and schema)"},
};
#define S_NCMDS (sizeof s_cmds / sizeof s_cmds[0])

static const char *const s_groups[][2] = {
    {"server", "Commands for the server"},
    {"job", "Commands for submitting and managing jobs"},
    {"task", "Commands for displaying task information"},
    {"worker", "Commands for managing workers"},
    {"journal", "Commands for the event journal"},
};

static void s_print_help(FILE *out, const char *group)
{
    if (!group) {
        fprintf(out, "HyperQueue: a task meta-scheduler\n\nUsage: hq [OPTIONS] <COMMAND>\n\n"
                     "Commands:\n");
        fprintf(out, "  %-10s %s\n", "submit", "Submit a job to HyperQueue");
        for (size_t i = 0; i < sizeof s_groups / sizeof s_groups[0]; i++)
            fprintf(out, "  %-10s %s\n", s_groups[i][0], s_groups[i][1]);
    } else {
        fprintf(out, "Usage: hq %s [OPTIONS] <COMMAND>\n\nCommands:\n", group);
        for (size_t i = 0; i < S_NCMDS; i++)
            if (s_cmds[i].group && strcmp(s_cmds[i].group, group) == 0)
                fprintf(out, "  %-10s %s\n", s_cmds[i].name, s_cmds[i].about);
    }
    fprintf(out,
            "\nOptions:\n"
            "      --server-dir <SERVER_DIR>    Path to a directory that stores HyperQueue "
            "access files [env: HQ_SERVER_DIR=]\n"
            "      --output-mode <OUTPUT_MODE>  How should the output of the command be "
            "formatted [env: HQ_OUTPUT_MODE=] [default: cli] [possible values: cli, json, "
            "quiet]\n"
            "      --colors <COLORS>            Turn terminal colors on or off [default: auto] "
            "[possible values: auto, always, never]\n"
            "      --debug                      Enable more detailed log output [env: "
            "HQ_DEBUG=]\n"
            "  -h, --help                       Print help\n"
            "  -V, --version                    Print version\n");
}

/* Whether word is a global flag; *takes_value tells if the value is the next word. */
static bool s_global_flag(const char *word, bool *takes_value)
{
    static const char *const with_value[] = {"--server-dir", "--output-mode", "--colors"};
    *takes_value = false;
    if (strcmp(word, "--debug") == 0)
        return true;
    for (size_t i = 0; i < sizeof with_value / sizeof with_value[0]; i++) {
        size_t n = strlen(with_value[i]);
        if (strncmp(word, with_value[i], n) == 0) {
            if (word[n] == '\0') {
                *takes_value = true;
                return true;
            }
            if (word[n] == '=')
                return true;
        }
    }
    return false;
}

/* Collects global flags from argv[*i...] into globals until a non-flag word.
 * Returns -1 to continue, or an exit code (help/version/errors). */
static int s_scan_flags(int argc, char **argv, int *i, char **globals, int *nglobals,
                        const char *group)
{
    while (*i < argc && argv[*i][0] == '-') {
        const char *w = argv[*i];
        bool takes_value;
        if (strcmp(w, "--version") == 0 || strcmp(w, "-V") == 0) {
            printf("hq %s\n", HQ_VERSION);
            return 0;
        }
        if (strcmp(w, "--help") == 0 || strcmp(w, "-h") == 0) {
            s_print_help(stdout, group);
            return 0;
        }
        if (!s_global_flag(w, &takes_value)) {
            fprintf(stderr,
                    "error: unexpected argument '%s' found\n\nUsage: hq %s%s[OPTIONS] <COMMAND>\n\n"
                    "For more information, try '--help'.\n",
                    w, group ? group : "", group ? " " : "");
            return 2;
        }
        globals[(*nglobals)++] = argv[(*i)++];
        if (takes_value) {
            if (*i >= argc) {
                fprintf(stderr,
                        "error: a value is required for '%s <%s>' but none was supplied\n\n"
                        "For more information, try '--help'.\n",
                        w,
                        strcmp(w, "--server-dir") == 0    ? "SERVER_DIR"
                        : strcmp(w, "--output-mode") == 0 ? "OUTPUT_MODE"
                                                          : "COLORS");
                return 2;
            }
            globals[(*nglobals)++] = argv[(*i)++];
        }
    }
    return -1;
}

static int s_unrecognized(const char *word, const char *group)
{
    fprintf(stderr,
            "error: unrecognized subcommand '%s'\n\nUsage: hq %s%s[OPTIONS] <COMMAND>\n\n"
            "For more information, try '--help'.\n",
            word, group ? group : "", group ? " " : "");
    return 2;
}

int hq_cli_main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_DFL);
    char **globals = hq_calloc((size_t)argc + 1, sizeof *globals);
    int nglobals = 0;
    int i = 1;
    int rc = s_scan_flags(argc, argv, &i, globals, &nglobals, NULL);
    if (rc >= 0)
        goto done;
    if (i >= argc) {
        s_print_help(stderr, NULL);
        rc = 2;
        goto done;
    }
    const char *word = argv[i++];
    const s_cmd_t *cmd = NULL;
    for (size_t k = 0; k < S_NCMDS && !cmd; k++)
        if (!s_cmds[k].group && strcmp(s_cmds[k].name, word) == 0)
            cmd = &s_cmds[k];
    if (!cmd) {
        const char *group = NULL;
        for (size_t k = 0; k < sizeof s_groups / sizeof s_groups[0]; k++)
            if (strcmp(s_groups[k][0], word) == 0)
                group = s_groups[k][0];
        if (!group) {
            rc = s_unrecognized(word, NULL);
            goto done;
        }
        rc = s_scan_flags(argc, argv, &i, globals, &nglobals, group);
        if (rc >= 0)
            goto done;
        if (i >= argc) {
            fprintf(stderr, "error: 'hq %s' requires a subcommand but one was not provided\n\n",
                    group);
            s_print_help(stderr, group);
            rc = 2;
            goto done;
        }
        const char *sub = argv[i++];
        for (size_t k = 0; k < S_NCMDS && !cmd; k++)
            if (s_cmds[k].group && strcmp(s_cmds[k].group, group) == 0 &&
                strcmp(s_cmds[k].name, sub) == 0)
                cmd = &s_cmds[k];
        if (!cmd) {
            rc = s_unrecognized(sub, group);
            goto done;
        }
    }
    /* The command sees the global flags first, then its own words. */
    int nargs = nglobals + (argc - i);
    char **args = hq_calloc((size_t)nargs + 1, sizeof *args);
    for (int k = 0; k < nglobals; k++)
        args[k] = globals[k];
    for (int k = i; k < argc; k++)
        args[nglobals + k - i] = argv[k];
    rc = cmd->fn(nargs, args);
    free(args);
done:
    free(globals);
    fflush(stdout);
    return rc;
}
