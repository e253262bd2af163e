/* The command table's entries for running hq: the `hq server`, `hq worker`,
 * `hq alloc` and `hq journal` groups (cli/REFERENCE.md §3.1, §3.2, §3.7, §3.8) and the commands
 * about hq itself (`hq doc`, `hq generate-completion`, the hidden `hq generate-man`). */
#include "hq_cmds.h"

#define S_VERSION                                                                                  \
    {                                                                                              \
        "version", 'V', HQ_OPT_FLAG, NULL, "Print version", NULL, NULL, NULL, false                \
    }

static const hq_opt_t s_server_start_opts[] = {
    HQ_VALUE("host", "HOST", NULL,
             "Hostname/IP under which the server is visible [default: the hostname]"),
    HQ_VALUE("idle-timeout", "IDLE_TIMEOUT", NULL, "Default idle timeout of workers"),
    HQ_VALUE("client-port", "CLIENT_PORT", NULL,
             "Port for client connections [default: chosen by the OS]"),
    HQ_VALUE("worker-port", "WORKER_PORT", NULL,
             "Port for worker connections [default: chosen by the OS]"),
    HQ_VALUE("journal", "JOURNAL", NULL, "Directory of the journal that makes the state durable"),
    HQ_VALUE("journal-flush-period", "JOURNAL_FLUSH_PERIOD", "100ms",
             "Upper bound on how long a journal record stays unsynced"),
    HQ_FLAG("journal-salvage", 0,
            "Start from a damaged journal: keep its valid prefix and skip records that "
            "cannot be applied, saying what was lost"),
    HQ_VALUE("access-file", "ACCESS_FILE", NULL,
             "Use the keys, hosts and ports of this access file"),
    HQ_FLAG("disable-client-authentication-and-encryption", 0,
            "Clients connect without authentication and encryption"),
    HQ_FLAG("disable-worker-authentication-and-encryption", 0,
            "Workers connect without authentication and encryption"),
    HQ_VALUE("scheduler-time-limit", "SCHEDULER_TIME_LIMIT", NULL,
             "Time limit of one scheduling run (accepted, no effect)"),
    S_VERSION,
    HQ_OPTS_END,
};
static const hq_opt_t s_server_wait_opts[] = {
    HQ_VALUE("timeout", "TIMEOUT", "5m", "How long to wait for the server"),
    HQ_OPTS_END,
};
static const hq_opt_t s_server_gen_opts[] = {
    HQ_REQUIRED("client-port", "CLIENT_PORT", "Port of the client socket"),
    HQ_REQUIRED("worker-port", "WORKER_PORT", "Port of the worker socket"),
    HQ_VALUE("host", "HOST", NULL, "Host of both sockets [default: the hostname]"),
    HQ_VALUE("client-host", "CLIENT_HOST", NULL, "Host of the client socket"),
    HQ_VALUE("worker-host", "WORKER_HOST", NULL, "Host of the worker socket"),
    HQ_VALUE("client-file", "CLIENT_FILE", NULL, "Also write the client part to this file"),
    HQ_VALUE("worker-file", "WORKER_FILE", NULL, "Also write the worker part to this file"),
    HQ_OPTS_END,
};
static const hq_opt_t s_worker_start_opts[] = {
    HQ_VALUE("cpus", "CPUS", NULL, "CPUs the worker provides, e.g. 8 or [[0,1],[2,3]]"),
    HQ_MULTI("resource", "RESOURCE", "Resource the worker provides NAME=DEFINITION (repeatable)"),
    HQ_VALUE("group", "GROUP", NULL, "Worker group [default: the allocation id, else `default`]"),
    HQ_VALUE("coupling", "COUPLING", NULL, "Resources whose groups are coupled, e.g. cpus,gpus"),
    HQ_VALUE("detect-resources", "DETECT_RESOURCES", "all",
             "Resources to detect: all, none or a comma list of cpus,mem,gpus/nvidia,gpus/amd"),
    HQ_FLAG("no-hyper-threading", 0, "Ignore hyper-threading while detecting CPUs"),
    HQ_VALUE("idle-timeout", "IDLE_TIMEOUT", NULL,
             "Stop after being idle this long [default: the server's --idle-timeout]"),
    HQ_VALUE("overview-interval", "OVERVIEW_INTERVAL", NULL,
             "Interval of hardware overviews (accepted and shown) [default: off]"),
    HQ_VALUE("min-utilization", "MIN_UTILIZATION", "0.0",
             "Minimal utilization (0.0-1.0) before tasks are assigned"),
    HQ_VALUE("heartbeat", "HEARTBEAT", "8s", "Heartbeat interval"),
    HQ_VALUE("time-limit", "TIME_LIMIT", NULL,
             "Stop after this time [default: the PBS/SLURM allocation's remaining time]"),
    HQ_CHOICE("manager", "MANAGER", "detect", "detect, none, pbs, slurm",
              "Resource manager of the allocation the worker runs in"),
    HQ_VALUE("hostname", "HOSTNAME", NULL, "Overwrite the worker hostname"),
    HQ_CHOICE("on-server-lost", "ON_SERVER_LOST", "stop", "stop, finish-running",
              "What to do with running tasks when the server is lost"),
    HQ_VALUE("work-dir", "WORK_DIR", NULL,
             "Working directory of the worker [default: a new temporary directory]"),
    HQ_VALUE("retract-check-interval", "RETRACT_CHECK_INTERVAL", "30s",
             "Retract check interval (accepted, no effect yet)"),
    S_VERSION,
    HQ_OPTS_END,
};
static const hq_opt_t s_worker_list_opts[] = {
    HQ_FLAG("all", 0, "Display all workers"),
    HQ_CHOICE("filter", "FILTER", NULL, "running, offline",
              "Display only workers with the given state"),
    HQ_OPTS_END,
};
static const hq_opt_t s_worker_hwdetect_opts[] = {
    HQ_FLAG("no-hyper-threading", 0, "Detect only physical cores"),
    HQ_OPTS_END,
};
static const hq_opt_t s_worker_deploy_ssh_opts[] = {
    HQ_FLAG("show-output", 0, "Print the output of the remote workers"),
    HQ_OPTS_END,
};
static const hq_opt_t s_generate_man_opts[] = {
    HQ_FLAG("completions", 0, "Also write hq.bash, _hq and hq.fish into DIR"),
    HQ_OPTS_END,
};

/* --name <VALUE_NAME> with a short form. */
#define S_SHORT(name, short_name, value_name, def, help)                                           \
    {                                                                                              \
        name, short_name, HQ_OPT_VALUE, value_name, help, def, NULL, NULL, false                   \
    }

/* The queue options shared by `alloc add` and `alloc dry-run`. */
#define S_QUEUE_OPTS                                                                               \
    {"time-limit", 't',  HQ_OPT_VALUE, "TIME_LIMIT", "Time limit (walltime) of each allocation",   \
     NULL,         NULL, NULL,         true},                                                      \
        S_SHORT("backlog", 'b', "BACKLOG", "1", "How many allocations may be queued at once"),     \
        S_SHORT("max-workers-per-alloc", 'm', "MAX_WORKERS_PER_ALLOC", "1",                        \
                "Most workers (nodes) in one allocation"),                                         \
        HQ_VALUE("max-worker-count", "MAX_WORKER_COUNT", NULL,                                     \
                 "Most workers of this queue queued or running at once [default: no limit]"),      \
        S_SHORT("name", 'n', "NAME", NULL, "Name of the queue (allocations are <name>-<n>)"),      \
        HQ_VALUE("cpus", "CPUS", NULL, "CPUs of each worker, e.g. 8 or 2x8"),                      \
        HQ_MULTI("resource", "RESOURCE", "Resource of each worker NAME=DEFINITION (repeatable)"),  \
        HQ_VALUE("group", "GROUP", NULL, "Group of the workers"),                                  \
        HQ_VALUE("coupling", "COUPLING", NULL, "Coupled resources of the workers"),                \
        HQ_VALUE("detect-resources", "DETECT_RESOURCES", NULL, "Resources the workers detect"),    \
        HQ_FLAG("no-hyper-threading", 0, "Workers ignore hyper-threading"),                        \
        HQ_VALUE("idle-timeout", "IDLE_TIMEOUT", "5m", "Workers stop after being idle this long"), \
        HQ_VALUE("overview-interval", "OVERVIEW_INTERVAL", NULL,                                   \
                 "Interval of the workers' hardware overviews"),                                   \
        HQ_VALUE("min-utilization", "MIN_UTILIZATION", NULL,                                       \
                 "Submit only allocations whose workers would be used at least this much"),        \
        HQ_CHOICE("on-server-lost", "ON_SERVER_LOST", "finish-running", "stop, finish-running",    \
                  "What the workers do with running tasks when the server is lost"),               \
        HQ_VALUE("worker-start-cmd", "WORKER_START_CMD", NULL,                                     \
                 "Shell command run before each worker starts"),                                   \
        HQ_VALUE("worker-stop-cmd", "WORKER_STOP_CMD", NULL, "Shell command run after a worker"),  \
        HQ_VALUE("worker-wrap-cmd", "WORKER_WRAP_CMD", NULL,                                       \
                 "Command put in front of the worker's command line"),                             \
        HQ_VALUE("worker-time-limit", "WORKER_TIME_LIMIT", NULL,                                   \
                 "Time limit of the workers (at most the allocation's) [default: --time-limit]")

static const hq_opt_t s_alloc_add_opts[] = {
    S_QUEUE_OPTS,
    HQ_FLAG("no-dry-run", 0, "Do not submit a trial allocation first"),
    HQ_OPTS_END,
};
static const hq_opt_t s_alloc_dry_run_opts[] = {
    S_QUEUE_OPTS,
    HQ_OPTS_END,
};
static const hq_opt_t s_alloc_info_opts[] = {
    HQ_CHOICE("filter", "FILTER", NULL, "queued, running, finished, failed",
              "Show only allocations in this state"),
    HQ_OPTS_END,
};
static const hq_opt_t s_alloc_remove_opts[] = {
    HQ_FLAG("force", 0, "Remove the queue even with running allocations (they are canceled)"),
    HQ_OPTS_END,
};
static const hq_opt_t s_alloc_pause_opts[] = {
    HQ_FLAG("force", 0, "Also cancel the queue's queued allocations"),
    HQ_OPTS_END,
};
static const hq_pos_arg_t s_alloc_extra_args[] = {
    {"ADDITIONAL_ARGS", "Extra arguments of sbatch/qsub, after --", true, true, NULL},
    HQ_ARGS_END,
};
static const hq_pos_arg_t s_alloc_queue_args[] = {HQ_ARG("QUEUE_ID", "Id of the queue"),
                                                  HQ_ARGS_END};
static const hq_pos_arg_t s_alloc_log_args[] = {
    HQ_ARG("ALLOCATION_ID", "Id of the allocation (the batch system's job id)"),
    HQ_ARG_CHOICE("CHANNEL", "Which output", "stdout, stderr"),
    HQ_ARGS_END,
};

#define S_WORKER_SEL "Worker selector: an id, ids and ranges like 1-3, `last` or `all`"
static const hq_pos_arg_t s_worker_sel_args[] = {HQ_ARG("SELECTOR", S_WORKER_SEL), HQ_ARGS_END};
static const hq_pos_arg_t s_worker_id_args[] = {HQ_ARG("WORKER_ID", "Id of the worker"),
                                                HQ_ARGS_END};
static const hq_pos_arg_t s_worker_count_args[] = {
    HQ_ARG("WORKER_COUNT", "How many workers to wait for"),
    HQ_ARGS_END,
};
static const hq_pos_arg_t s_deploy_ssh_args[] = {
    HQ_ARG("HOSTFILE", "File with one `host` or `host:port` per line"),
    {"WORKER_START_ARGS", "Arguments of `hq worker start` for every worker", true, true, NULL},
    HQ_ARGS_END,
};
static const hq_pos_arg_t s_access_file_args[] = {HQ_ARG("FILE", "Where to write the access file"),
                                                  HQ_ARGS_END};
static const hq_pos_arg_t s_journal_args[] = {HQ_ARG("JOURNAL", "Directory of the journal"),
                                              HQ_ARGS_END};
static const hq_pos_arg_t s_journal_report_args[] = {
    HQ_ARG("JOURNAL", "Directory of the journal"),
    HQ_ARG("OUTPUT", "The HTML file to write"),
    HQ_ARGS_END,
};
static const hq_opt_t s_journal_report_opts[] = {
    HQ_VALUE("start-time", "START_TIME", NULL,
             "Report only events from this time on (RFC 3339, e.g. 2026-01-02T03:04:05Z)"),
    HQ_VALUE("end-time", "END_TIME", NULL, "Report only events up to this time (RFC 3339)"),
    HQ_OPTS_END,
};
static const hq_pos_arg_t s_doc_args[] = {
    {"TOPIC", "What to look up: a command (`job cat`), a group or a concept (see `hq doc`)", true,
     true, NULL},
    HQ_ARGS_END,
};
static const hq_pos_arg_t s_shell_args[] = {
    HQ_ARG_CHOICE("SHELL", "The shell to complete for", "bash, elvish, fish, powershell, zsh"),
    HQ_ARGS_END,
};
static const hq_pos_arg_t s_dump_args[] = {
    HQ_ARG("PATH", "File to write the JSON document to (`-`: standard output)"), HQ_ARGS_END};
static const hq_pos_arg_t s_dir_args[] = {HQ_ARG("DIR", "Directory to write into"), HQ_ARGS_END};

#define S_REF_SERVER "cli/REFERENCE.md §3.1"
#define S_REF_WORKER "cli/REFERENCE.md §3.2"
#define S_REF_JOURNAL "cli/REFERENCE.md §3.8"
#define S_REF_ALLOC "cli/REFERENCE.md §3.7"

const hq_cmd_spec_t hq_cmds_infra[] = {
    {.path = "server",
     .summary = "Commands for the server",
     .description = "The server accepts jobs from clients and assigns their tasks to workers. "
                    "Clients and workers find it through the access file in the server "
                    "directory (--server-dir).",
     .examples = "$ hq server start --journal ~/.hq-journal &\n"
                 "Starts a server whose state survives a restart.\n"
                 "$ hq server info\nShows the hosts, ports and version of the running server.",
     .reference = S_REF_SERVER},
    {.path = "server start",
     .summary = "Start the server",
     .description = "Also `hq-broker`. Logs `Storing access file as '<path>'` and prints the "
                    "server information. With --journal the state is restored from the journal "
                    "first and every acknowledged submit is durable.",
     .opts = s_server_start_opts,
     .reference = S_REF_SERVER},
    {.path = "server stop", .summary = "Stop the server", .reference = S_REF_SERVER},
    {.path = "server info", .summary = "Show info of a running server", .reference = S_REF_SERVER},
    {.path = "server wait",
     .summary = "Wait until the server is available",
     .opts = s_server_wait_opts,
     .reference = S_REF_SERVER},
    {.path = "server debug-dump",
     .summary = "Write the internal state of the server to a file",
     .description = "Writes one JSON document with the server's internal state (jobs, tasks "
                    "by state, workers, the scheduler's queues, the journal) for bug reports. "
                    "Its shape is not a stable interface.",
     .args = s_dump_args,
     .examples = "$ hq server debug-dump hq-state.json\n"
                 "Writes the state to hq-state.json, to attach to a bug report.",
     .reference = S_REF_SERVER},
    {.path = "server generate-access",
     .summary = "Generate an access file without starting the server",
     .opts = s_server_gen_opts,
     .args = s_access_file_args,
     .examples = "$ hq server generate-access access.json --client-port 6789 --worker-port 1234\n"
                 "Writes an access file that `hq server start --access-file` can use.",
     .reference = S_REF_SERVER},
    {.path = "worker",
     .summary = "Commands for managing workers",
     .description = "A worker runs tasks on one machine with the resources it provides.",
     .examples = "$ sbatch --wrap \"hq worker start\"\n"
                 "Starts a worker inside a SLURM allocation; it stops when the allocation ends.\n"
                 "$ hq worker list\nLists the running workers.",
     .reference = S_REF_WORKER},
    {.path = "worker start",
     .summary = "Start a worker",
     .description = "Also `hq-worker`. Detects the resources of the machine and of a "
                    "PBS or SLURM allocation, connects to the server and runs tasks until "
                    "stopped.",
     .opts = s_worker_start_opts,
     .examples = "$ hq worker start --cpus 4 --resource \"gpus/nvidia=[0,1]\"\n"
                 "Offers 4 CPUs and two GPUs.",
     .reference = S_REF_WORKER},
    {.path = "worker stop",
     .summary = "Stop workers",
     .args = s_worker_sel_args,
     .reference = S_REF_WORKER},
    {.path = "worker list",
     .summary = "Display information about workers",
     .description = "Default: running workers only. `--all` conflicts with `--filter`.",
     .opts = s_worker_list_opts,
     .reference = S_REF_WORKER},
    {.path = "worker info",
     .summary = "Display information about a specific worker",
     .args = s_worker_sel_args,
     .reference = S_REF_WORKER},
    {.path = "worker hwdetect",
     .summary = "Hardware detection",
     .description = "Prints the resources a worker started here would detect.",
     .opts = s_worker_hwdetect_opts,
     .reference = S_REF_WORKER},
    {.path = "worker address",
     .summary = "Display the hostname of a worker",
     .args = s_worker_id_args,
     .reference = S_REF_WORKER},
    {.path = "worker wait",
     .summary = "Wait until some workers are connected",
     .args = s_worker_count_args,
     .reference = S_REF_WORKER},
    {.path = "worker deploy-ssh",
     .summary = "Start workers on the hosts of a host file over SSH",
     .description = "Runs `ssh <host> -t -t [-p <port>] -- <this hq> worker start "
                    "[WORKER_START_ARGS]...` for each line of HOSTFILE (`host` or `host:port`; "
                    "blank lines and lines starting with `#` are skipped) and waits until all "
                    "of them end. A worker ending with a non-zero code is logged as `Worker "
                    "exited with code N` and the command exits 1. The remote workers do not "
                    "see this environment: give them --server-dir (or --hostname, ...) among "
                    "WORKER_START_ARGS. Interrupting or terminating this command ends the ssh "
                    "connections and with them the workers.",
     .opts = s_worker_deploy_ssh_opts,
     .args = s_deploy_ssh_args,
     .trailing = true,
     .examples = "$ hq worker deploy-ssh nodes.txt --server-dir /shared/hq --cpus 8\n"
                 "Starts a worker with 8 CPUs on every host of nodes.txt.",
     .reference = S_REF_WORKER},
    {.path = "alloc",
     .summary = "Commands for automatic allocation",
     .description = "The server submits SLURM or PBS allocations that start workers when "
                    "tasks wait for them, within the limits of each allocation queue.",
     .examples = "$ hq alloc add slurm --time-limit 1h --backlog 2 -- --partition=cpu\n"
                 "Creates a queue whose allocations last an hour, at most two queued.\n"
                 "$ hq alloc info 1\nLists the allocations of queue 1.",
     .reference = S_REF_ALLOC},
    {.path = "alloc list", .summary = "Display allocation queues", .reference = S_REF_ALLOC},
    {.path = "alloc info",
     .summary = "Display allocations of a queue",
     .opts = s_alloc_info_opts,
     .args = s_alloc_queue_args,
     .reference = S_REF_ALLOC},
    {.path = "alloc log",
     .summary = "Display the stdout or stderr of an allocation",
     .args = s_alloc_log_args,
     .reference = S_REF_ALLOC},
    {.path = "alloc add",
     .summary = "Create a new allocation queue",
     .description = "Submits a trial allocation first (held, canceled at once) unless "
                    "--no-dry-run is given. Arguments after `--` are passed to sbatch/qsub.",
     .examples = "$ hq alloc add slurm --time-limit 30m --idle-timeout 1m -- -A project\n"
                 "Creates a SLURM queue charged to project.",
     .reference = S_REF_ALLOC},
    {.path = "alloc add pbs",
     .summary = "Create a PBS allocation queue",
     .opts = s_alloc_add_opts,
     .args = s_alloc_extra_args,
     .reference = S_REF_ALLOC},
    {.path = "alloc add slurm",
     .summary = "Create a SLURM allocation queue",
     .opts = s_alloc_add_opts,
     .args = s_alloc_extra_args,
     .reference = S_REF_ALLOC},
    {.path = "alloc dry-run",
     .summary = "Try to submit an allocation to test the parameters",
     .reference = S_REF_ALLOC},
    {.path = "alloc dry-run pbs",
     .summary = "Try to submit a PBS allocation",
     .opts = s_alloc_dry_run_opts,
     .args = s_alloc_extra_args,
     .reference = S_REF_ALLOC},
    {.path = "alloc dry-run slurm",
     .summary = "Try to submit a SLURM allocation",
     .opts = s_alloc_dry_run_opts,
     .args = s_alloc_extra_args,
     .reference = S_REF_ALLOC},
    {.path = "alloc pause",
     .summary = "Pause an allocation queue",
     .opts = s_alloc_pause_opts,
     .args = s_alloc_queue_args,
     .reference = S_REF_ALLOC},
    {.path = "alloc resume",
     .summary = "Resume a paused allocation queue",
     .args = s_alloc_queue_args,
     .reference = S_REF_ALLOC},
    {.path = "alloc remove",
     .summary = "Remove an allocation queue",
     .opts = s_alloc_remove_opts,
     .args = s_alloc_queue_args,
     .reference = S_REF_ALLOC},
    {.path = "journal",
     .summary = "Commands for the event journal",
     .description = "The journal of a server started with --journal records its events.",
     .examples = "$ hq journal export ~/.hq-journal > events.ndjson\n"
                 "Exports the events of a journal offline, as NDJSON.",
     .reference = S_REF_JOURNAL},
    {.path = "journal export",
     .summary = "Export events from a journal to NDJSON",
     .description = "Offline: reads the journal directory, never modifies it.",
     .args = s_journal_args,
     .reference = S_REF_JOURNAL},
    {.path = "journal stream",
     .summary = "Stream events of a running server",
     .reference = S_REF_JOURNAL},
    {.path = "journal replay",
     .summary = "Print past events of a running server",
     .reference = S_REF_JOURNAL},
    {.path = "journal flush",
     .summary = "Force the journal of a running server to disk",
     .reference = S_REF_JOURNAL},
    {.path = "journal prune",
     .summary = "Remove completed jobs from the journal",
     .reference = S_REF_JOURNAL},
    {.path = "journal report",
     .summary = "Write an HTML report of a journal",
     .description = "Offline: reads the journal directory and writes one self-contained HTML "
                    "file (no network needed to view it) with worker utilization and task "
                    "counts by state over time, task durations per job and per-worker "
                    "statistics.",
     .opts = s_journal_report_opts,
     .args = s_journal_report_args,
     .examples = "$ hq journal report ~/.hq-journal report.html\n"
                 "Writes the report of the whole run to report.html.",
     .reference = S_REF_JOURNAL},
    {.path = "journal verify",
     .summary = "Check a journal offline (CRC and schema)",
     .args = s_journal_args,
     .reference = S_REF_JOURNAL},
    {.path = "doc",
     .summary = "Show where the documentation of a topic is",
     .description = "Prints the man page and the section of the command-line reference that "
                    "describe the topic; without a topic, lists the topics.",
     .args = s_doc_args,
     .examples = "$ hq doc job\nNames hq-job(1) and cli/REFERENCE.md §3.4.",
     .reference = "cli/REFERENCE.md §3.9"},
    {.path = "generate-completion",
     .summary = "Generate shell completion code",
     .description = "Prints a completion script for the shell, generated from the same "
                    "command table as the parser and --help.",
     .args = s_shell_args,
     .examples = "$ source <(hq generate-completion bash)\n"
                 "Completes hq's commands and options in the current bash.",
     .reference = "cli/REFERENCE.md §3.9"},
    {.path = "generate-man",
     .summary = "Write hq's man pages into a directory",
     .opts = s_generate_man_opts,
     .args = s_dir_args,
     .hidden = true,
     .reference = "cli/REFERENCE.md §3.9"},
};
const size_t hq_cmds_infra_len = sizeof hq_cmds_infra / sizeof hq_cmds_infra[0];
