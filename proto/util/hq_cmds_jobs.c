/* The command table's entries for submitting and inspecting work: `hq submit`
 * (= `hq job submit`), the `hq job` and `hq task` groups (cli/REFERENCE.md §3.3-§3.5)
 * and `hq output-log` (§3.6). */
#include "hq_cmds.h"

#define S_JOB_SEL "Job selector: an id, ids and ranges like 1-3,5, `last` or `all`"
#define S_JOB_SEL_ONE "Job selector: one job id or `last`"
#define S_STATES "waiting, running, finished, failed, canceled, aborted"

const hq_opt_t hq_submit_opts[] = {
    HQ_VALUE("name", "NAME", NULL, "Name of the job [default: the command's file name]"),
    HQ_VALUE("max-fails", "MAX_FAILS", NULL,
             "Abort the remaining tasks once more than this many tasks failed"),
    HQ_VALUE("nodes", "NODES", "0", "Number of whole workers of one group for a multi-node task"),
    HQ_VALUE("cpus", "CPUS", NULL,
             "Number and placement of CPUs for each task, e.g. 4 or 2 compact"),
    HQ_MULTI("resource", "RESOURCE", "Generic resource request NAME=AMOUNT (repeatable)"),
    HQ_VALUE("time-request", "TIME_REQUEST", "0ms",
             "Run only on workers that live at least this long"),
    HQ_VALUE("weight", "WEIGHT", NULL, "Weight of the resource request (> 0)"),
    HQ_CHOICE("pin", "PIN", NULL, "taskset, omp", "Pin each task to its CPUs"),
    HQ_VALUE("cwd", "CWD", "%{SUBMIT_DIR}", "Working directory of the tasks"),
    HQ_VALUE("stdout", "STDOUT", NULL, "Path of each task's stdout file, or `none`"),
    HQ_VALUE("stderr", "STDERR", NULL, "Path of each task's stderr file, or `none`"),
    HQ_MULTI("env", "ENV", "Environment variable KEY=VALUE of the tasks (repeatable)"),
    HQ_VALUE("each-line", "EACH_LINE", NULL, "One task per line of this file (in HQ_ENTRY)"),
    HQ_VALUE("from-json", "FROM_JSON", NULL, "One task per element of this JSON array file"),
    HQ_VALUE("array", "ARRAY", NULL, "Create a task array with these ids, e.g. 1-100"),
    HQ_VALUE("priority", "PRIORITY", "0", "Priority of the tasks (higher runs first)"),
    HQ_VALUE("time-limit", "TIME_LIMIT", NULL, "Time limit of each task"),
    HQ_VALUE("stream", "STREAM", NULL,
             "Stream the output of the tasks into a few files in this directory"),
    HQ_FLAG("task-dir", 0, "Create a temporary directory for each task"),
    HQ_VALUE("crash-limit", "CRASH_LIMIT", "5",
             "Times a task may run on a lost worker: N, never-restart or unlimited"),
    HQ_VALUE("job", "JOB", NULL, "Attach the tasks to this open job"),
    HQ_FLAG("wait", 0, "Wait for the job to finish"),
    HQ_FLAG("progress", 0, "Show the job's progress until it finishes"),
    HQ_FLAG("follow", 0,
            "With --stream: print the tasks' output here while they run, until the job ends"),
    HQ_VALUE("on-notify", "ON_NOTIFY", NULL,
             "With --wait/--progress: program run for each `hq task notify` of the tasks, "
             "with the message as its last argument"),
    HQ_FLAG("stdin", 0, "Feed the standard input to every task"),
    HQ_CHOICE("directives", "DIRECTIVES", "auto", "auto, file, stdin, off",
              "Where #HQ directives are read from"),
    HQ_OPTS_END,
};

#define S_OLOG_UID                                                                                 \
    HQ_VALUE("server-uid", "SERVER_UID", NULL, "Read only the streams of this server instance")
#define S_REF_OLOG "cli/REFERENCE.md §3.6"
static const hq_opt_t s_olog_opts[] = {S_OLOG_UID, HQ_OPTS_END};
static const hq_opt_t s_olog_show_opts[] = {
    S_OLOG_UID,
    HQ_VALUE("job", "JOB", NULL, "Only the output of this job"),
    HQ_CHOICE("channel", "CHANNEL", NULL, "stdout, stderr", "Only this channel"),
    HQ_OPTS_END,
};
static const hq_opt_t s_olog_cat_opts[] = {
    S_OLOG_UID,
    HQ_VALUE("task", "TASK", NULL, "Only these tasks, in this order, e.g. 3,0-2"),
    HQ_FLAG("allow-unfinished", 0, "Print the output of tasks that have not ended too"),
    HQ_FLAG("follow", 0, "Print the output as it is written, until the job ends"),
    HQ_OPTS_END,
};
static const hq_opt_t s_olog_export_opts[] = {
    S_OLOG_UID,
    HQ_VALUE("task", "TASK", NULL, "Only these tasks, in this order"),
    HQ_OPTS_END,
};
static const hq_pos_arg_t s_olog_dir_args[] = {
    HQ_ARG("DIR", "The stream directory (--stream DIR of the jobs)"), HQ_ARGS_END};
static const hq_pos_arg_t s_olog_job_args[] = {
    HQ_ARG("DIR", "The stream directory (--stream DIR of the jobs)"),
    HQ_ARG("JOB", "Job id"),
    HQ_ARGS_END,
};
static const hq_pos_arg_t s_olog_cat_args[] = {
    HQ_ARG("DIR", "The stream directory (--stream DIR of the jobs)"),
    HQ_ARG("JOB", "Job id"),
    HQ_ARG_CHOICE("CHANNEL", "Which output to print", "stdout, stderr"),
    HQ_ARGS_END,
};

const hq_pos_arg_t hq_submit_args[] = {
    {"COMMANDS", "The program each task runs and its arguments, passed through verbatim", false,
     true, NULL},
    HQ_ARGS_END,
};

#define S_SUBMIT_DESCRIPTION                                                                       \
    "Submits a job of one task, or a task array (--array, --each-line, --from-json), that runs "   \
    "COMMANDS (a program and its arguments). Everything after the first positional word is "       \
    "passed through. Options "                                                                     \
    "may also come from `#HQ` lines at the start of a `.sh` script (--directives). The job is "    \
    "printed as `Job submitted successfully, job ID: <id>`."
#define S_SUBMIT_EXAMPLES                                                                          \
    "$ hq submit -- ./simulate.sh input.txt\n"                                                     \
    "Submits one task running ./simulate.sh.\n"                                                    \
    "$ hq submit --array 1-100 --cpus 2 -- ./step.sh\n"                                            \
    "Submits 100 tasks with ids 1..100 (in HQ_TASK_ID), each needing 2 CPUs.\n"                    \
    "$ hq submit --each-line inputs.txt --wait -- ./run.sh\n"                                      \
    "One task per line of inputs.txt (in HQ_ENTRY); waits until the job finishes."

static const hq_opt_t s_job_list_opts[] = {
    HQ_FLAG("all", 0, "Display all jobs"),
    HQ_VALUE("filter", "FILTER", NULL,
             "Display only jobs with these comma-separated states (" S_STATES ", opened)"),
    HQ_FLAG("verbose", 0, "Display additional columns (Cancel Reason)"),
    HQ_OPTS_END,
};
static const hq_opt_t s_job_cancel_opts[] = {
    HQ_VALUE("reason", "REASON", NULL, "Reason for the cancellation (at most 200 bytes)"),
    HQ_OPTS_END,
};
static const hq_opt_t s_job_forget_opts[] = {
    HQ_VALUE("filter", "FILTER", "finished,failed,aborted,canceled",
             "Forget only jobs with these states"),
    HQ_OPTS_END,
};
static const hq_opt_t s_job_wait_opts[] = {
    HQ_FLAG("without-close", 0, "Wait only for the tasks, not for the job to be closed"),
    HQ_VALUE("on-notify", "ON_NOTIFY", NULL,
             "Program run for each `hq task notify` of the tasks, with the message as its last "
             "argument"),
    HQ_OPTS_END,
};
static const hq_opt_t s_job_cat_opts[] = {
    HQ_VALUE("tasks", "TASKS", NULL, "Print only tasks with these ids"),
    HQ_VALUE("task-status", "TASK_STATUS", NULL, "Print only tasks with these states"),
    HQ_FLAG("print-task-header", 0, "Print `# Job <j>, task <t>` before each task's output"),
    HQ_OPTS_END,
};
static const hq_opt_t s_job_submit_file_opts[] = {
    HQ_VALUE("job", "JOB", NULL, "Attach the tasks to this open job"),
    HQ_OPTS_END,
};
static const hq_opt_t s_job_task_ids_opts[] = {
    HQ_VALUE("filter", "FILTER", NULL, "Show only tasks with these states (" S_STATES ")"),
    HQ_OPTS_END,
};
static const hq_opt_t s_job_open_opts[] = {
    HQ_VALUE("name", "NAME", "job", "Name of the job"),
    HQ_VALUE("max-fails", "MAX_FAILS", NULL, "Maximal number of failed tasks"),
    HQ_OPTS_END,
};
static const hq_opt_t s_task_list_opts[] = {
    HQ_VALUE("tasks", "TASKS", NULL, "Select only tasks with these ids"),
    HQ_VALUE("task-status", "TASK_STATUS", NULL, "Select only tasks with these states"),
    {"verbose", 'v', HQ_OPT_FLAG, NULL, "Display full error messages", NULL, NULL, NULL, false},
    HQ_OPTS_END,
};
static const hq_opt_t s_task_info_opts[] = {
    {"verbose", 'v', HQ_OPT_FLAG, NULL, "Display full error messages", NULL, NULL, NULL, false},
    HQ_OPTS_END,
};

static const hq_pos_arg_t s_sel_args[] = {HQ_ARG("SELECTOR", S_JOB_SEL), HQ_ARGS_END};
static const hq_pos_arg_t s_cat_args[] = {
    HQ_ARG("SELECTOR", S_JOB_SEL),
    HQ_ARG_CHOICE("stdout|stderr", "Which output to print", "stdout, stderr"),
    HQ_ARGS_END,
};
static const hq_pos_arg_t s_submit_file_args[] = {
    HQ_ARG("PATH", "Job definition file (TOML, cli/REFERENCE.md §8)"),
    HQ_ARGS_END,
};
static const hq_pos_arg_t s_task_list_args[] = {HQ_ARG("JOB_SELECTOR", S_JOB_SEL_ONE), HQ_ARGS_END};
static const hq_pos_arg_t s_task_info_args[] = {
    HQ_ARG("JOB_SELECTOR", S_JOB_SEL_ONE),
    HQ_ARG("TASK_SELECTOR", "Task ids and ranges, e.g. 0-9"),
    HQ_ARGS_END,
};
static const hq_pos_arg_t s_task_notify_args[] = {
    HQ_ARG("MESSAGE", "The notification's text (at most 1024 bytes)"),
    HQ_ARGS_END,
};
static const hq_pos_arg_t s_task_explain_args[] = {
    HQ_ARG("JOB_SELECTOR", S_JOB_SEL_ONE),
    HQ_ARG("TASK_ID", "One task id"),
    HQ_ARGS_END,
};

#define S_REF_JOB "cli/REFERENCE.md §3.4"
#define S_REF_TASK "cli/REFERENCE.md §3.5"

const hq_cmd_spec_t hq_cmds_jobs[] = {
    {.path = "job",
     .summary = "Commands for submitting and managing jobs",
     .description = "A job is a set of tasks submitted together (one task, or a task array). "
                    "Jobs are selected by an id, ids and ranges (1-3,5), `last` or `all`.",
     .examples = "$ hq job list --all\nLists every job the server knows.\n"
                 "$ hq job cat last stdout\nPrints the stdout of every task of the last job.",
     .reference = S_REF_JOB},
    {.path = "job list",
     .summary = "Display information about jobs",
     .description = "Without flags: jobs that are waiting or running, and every open job. "
                    "`--all` conflicts with `--filter`.",
     .opts = s_job_list_opts,
     .reference = S_REF_JOB},
    {.path = "job summary",
     .summary = "Display a summary of jobs by state",
     .reference = S_REF_JOB},
    {.path = "job info",
     .summary = "Display detailed information about jobs",
     .args = s_sel_args,
     .reference = S_REF_JOB},
    {.path = "job cancel",
     .summary = "Cancel jobs",
     .description = "Cancels every unfinished task of the jobs and kills their running processes.",
     .opts = s_job_cancel_opts,
     .args = s_sel_args,
     .examples = "$ hq job cancel 3 --reason \"wrong input\"\nCancels job 3.",
     .reference = S_REF_JOB},
    {.path = "job forget",
     .summary = "Forget completed jobs",
     .description = "Drops completed jobs from the server's memory (and, with a journal, from "
                    "later restores).",
     .opts = s_job_forget_opts,
     .args = s_sel_args,
     .reference = S_REF_JOB},
    {.path = "job wait",
     .summary = "Wait for jobs to finish",
     .description = "Prints nothing and exits 0 once every selected job is complete and, unless "
                    "--without-close, closed, also when tasks failed.",
     .opts = s_job_wait_opts,
     .args = s_sel_args,
     .reference = S_REF_JOB},
    {.path = "job progress",
     .summary = "Interactively observe the progress of jobs",
     .args = s_sel_args,
     .reference = S_REF_JOB},
    {.path = "job cat",
     .summary = "Print the stdout or stderr of tasks",
     .description = "Prints the output files of the tasks (read on this machine) in task order.",
     .opts = s_job_cat_opts,
     .args = s_cat_args,
     .examples = "$ hq job cat 1 stdout --tasks 0-3\nPrints the stdout of tasks 0 to 3 of job 1.",
     .reference = S_REF_JOB},
    {.path = "job submit",
     .summary = "Submit a job",
     .description = S_SUBMIT_DESCRIPTION,
     .opts = hq_submit_opts,
     .args = hq_submit_args,
     .trailing = true,
     .examples = S_SUBMIT_EXAMPLES,
     .reference = "cli/REFERENCE.md §3.3"},
    {.path = "job submit-file",
     .summary = "Submit a job through a job definition file",
     .opts = s_job_submit_file_opts,
     .args = s_submit_file_args,
     .examples = "$ hq job submit-file job.toml\nSubmits the tasks that job.toml defines.",
     .reference = "cli/REFERENCE.md §8"},
    {.path = "job task-ids",
     .summary = "Show task ids of jobs",
     .description = "One job prints its id ranges; several print `<job>: <ranges>` per line.",
     .opts = s_job_task_ids_opts,
     .args = s_sel_args,
     .examples = "$ hq submit --array $(hq job task-ids 1 --filter failed) -- ./step.sh\n"
                 "Resubmits the failed tasks of job 1.",
     .reference = S_REF_JOB},
    {.path = "job open",
     .summary = "Open a new job",
     .description = "An open job accepts further submits (submit --job) and completes only "
                    "once closed.",
     .opts = s_job_open_opts,
     .reference = S_REF_JOB},
    {.path = "job close", .summary = "Close open jobs", .args = s_sel_args, .reference = S_REF_JOB},
    {.path = "task",
     .summary = "Commands for displaying task information",
     .examples = "$ hq task list last --task-status failed\n"
                 "Lists the failed tasks of the last job.",
     .reference = S_REF_TASK},
    {.path = "task list",
     .summary = "Display tasks of jobs",
     .opts = s_task_list_opts,
     .args = s_task_list_args,
     .reference = S_REF_TASK},
    {.path = "task info",
     .summary = "Display detailed information about tasks",
     .opts = s_task_info_opts,
     .args = s_task_info_args,
     .reference = S_REF_TASK},
    {.path = "task explain",
     .summary = "Explain why a task can or cannot run on each worker",
     .description = "Per worker and resource variant, each check (resources, time request, "
                    "nodes of the group) with what the worker provides and the task requests.",
     .args = s_task_explain_args,
     .reference = S_REF_TASK},
    {.path = "task notify",
     .summary = "Send a notification from inside a running task",
     .description = "Sends MESSAGE to the server on behalf of the task it runs in (HQ_JOB_ID, "
                    "HQ_TASK_ID and HQ_INSTANCE_ID of its environment). `hq submit --wait "
                    "--on-notify PROGRAM` and `hq job wait --on-notify PROGRAM` run PROGRAM for "
                    "it, and `hq journal stream` shows it as a task-notify event.",
     .args = s_task_notify_args,
     .examples = "$ hq task notify \"half done\"\nInside a task: tells the waiting client.",
     .reference = S_REF_TASK},
    {.path = "output-log",
     .summary = "Read the output of streamed jobs (--stream)",
     .description = "Reads the stream files that workers write into DIR for jobs submitted with "
                    "`--stream DIR`. DIR and --server-uid may also follow the command word.",
     .opts = s_olog_opts,
     .args = s_olog_dir_args,
     .examples = "$ hq output-log logs summary\nShows what the stream directory logs holds.\n"
                 "$ hq output-log logs cat 1 stdout\nPrints the stdout of job 1's tasks.",
     .reference = S_REF_OLOG},
    {.path = "output-log summary",
     .summary = "Show a summary of the stream files",
     .opts = s_olog_opts,
     .args = s_olog_dir_args,
     .reference = S_REF_OLOG},
    {.path = "output-log jobs",
     .summary = "List the jobs in the stream files",
     .opts = s_olog_opts,
     .args = s_olog_dir_args,
     .reference = S_REF_OLOG},
    {.path = "output-log show",
     .summary = "Print the chunks of output in the order they were written",
     .description = "Each chunk is printed as `J.T:C> ` and its data (C: 0 stdout, 1 stderr).",
     .opts = s_olog_show_opts,
     .args = s_olog_dir_args,
     .reference = S_REF_OLOG},
    {.path = "output-log cat",
     .summary = "Print the raw output of a job's tasks",
     .description = "Prints the output of the tasks' latest instances in task order (in the "
                    "order of --task when given). With --follow, prints output as it is "
                    "written until the job ends.",
     .opts = s_olog_cat_opts,
     .args = s_olog_cat_args,
     .examples = "$ hq output-log logs cat 1 stdout --follow\n"
                 "Prints the stdout of job 1 while its tasks run.",
     .reference = S_REF_OLOG},
    {.path = "output-log export",
     .summary = "Export the stdout of a job's tasks as JSON",
     .opts = s_olog_export_opts,
     .args = s_olog_job_args,
     .reference = S_REF_OLOG},
};
const size_t hq_cmds_jobs_len = sizeof hq_cmds_jobs / sizeof hq_cmds_jobs[0];

/* The root and the top-level `hq submit`, which is `hq job submit`. */
const hq_cmd_spec_t hq_cmds_top[] = {
    {.path = "",
     .summary = "HyperQueue: a task meta-scheduler",
     .description = "hq runs the server (`hq server start`), the workers (`hq worker start`) "
                    "and the client commands that submit and inspect jobs.",
     .examples = "$ hq server start &\nStarts a server in the background.\n"
                 "$ hq worker start &\nStarts a worker that connects to it.\n"
                 "$ hq submit --array 1-10 -- echo hello\nSubmits ten tasks.\n"
                 "$ hq job list --all\nLists the jobs.",
     .reference = "cli/REFERENCE.md"},
    {.path = "submit",
     .summary = "Submit a job to HyperQueue",
     .description = S_SUBMIT_DESCRIPTION,
     .opts = hq_submit_opts,
     .args = hq_submit_args,
     .trailing = true,
     .alias_of = "job submit",
     .examples = S_SUBMIT_EXAMPLES,
     .reference = "cli/REFERENCE.md §3.3"},
};
const size_t hq_cmds_top_len = sizeof hq_cmds_top / sizeof hq_cmds_top[0];
