/* hq's client commands and the helpers they share: argument handling with the
 * global flags, connecting to the broker, asking it one query, and state words. */
#ifndef HQ_CLI_H
#define HQ_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "hq_args.h"
#include "hq_cmdtable.h"
#include "hq_msg.h"

/* A command entry point: argv holds the words after the command words, preceded by
 * any global flags given before them. Returns the process exit code. */
typedef int (*hq_cmd_fn)(int argc, char **argv);

/* What every command holds while it runs. */
typedef struct hq_cli {
    const hq_cmd_spec_t *spec; /* the command's entry in the command table */
    hq_args_t *args;           /* parsed command line */
    hq_global_t g;             /* global settings */
} hq_cli_t;

/* Parses argv as the command at path in the command table ("job list"; its options,
 * the global flags and its positionals), handles --help, fills c->g and starts the
 * logger. Returns -1 when the command should run, else the exit code to return
 * (0 after --help, 2 after a command-line error, which it printed). */
int hq_cli_begin(hq_cli_t *c, const char *path, int argc, char **argv);
void hq_cli_end(hq_cli_t *c);

/* Prints a clap-style command-line error (text already starts with "error:") and
 * returns 2. */
int hq_cli_usage_error(const char *text);
/* "error: invalid value '<value>' for '--<flag> <VALUE>': <detail>", returns 2. */
int hq_cli_invalid(const hq_opt_t *opts, const char *flag, const char *value, const char *detail);
/* Same for a positional argument: "... for '<NAME>': <detail>", returns 2. */
int hq_cli_invalid_pos(const char *name, const char *value, const char *detail);

/* Parses a selector positional (exit code 2 printed on error, returns -1 on
 * success with *out filled). */
int hq_cli_selector(const char *name, const char *value, bool allow_all, hq_selector_t *out);
/* Parses a state list ("waiting,running") into an enum hq_state_bit mask; allowed
 * is the mask of accepted states. Returns -1 on success, else 2 (printed). */
int hq_cli_states(const hq_opt_t *opts, const char *flag, const char *value, uint32_t allowed,
                  uint32_t *mask);

/* Sends one request of this type (query may be NULL for body-less requests) and
 * waits for the reply; extra_wait_ms extends the reply timeout (long polls). On
 * success returns 0 with *root = the reply's parsed JSON document (may be NULL)
 * and *id = its id; reply log lines are logged. On failure prints the error in the
 * output mode and returns 1. */
int hq_cli_query(hq_cli_t *c, uint8_t type, const hq_query_t *q, uint64_t extra_wait_ms,
                 json_t **root, uint64_t *id);
/* Sends a SUBMIT (same contract as hq_cli_query). */
int hq_cli_submit(hq_cli_t *c, const hq_submit_t *s, uint64_t *id);

/* Prints result as the JSON output (with `_` keys removed; result is not modified). */
void hq_cli_print_json(const json_t *result);
/* Prints an error in the output mode and returns 1. */
int hq_cli_error(hq_cli_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Job state word (cli/REFERENCE.md §1.8) from a JobInfo object's task_stats and is_open. */
const char *hq_cli_job_state(const json_t *info);
/* JSON task state ("waiting") -> CLI word ("WAITING"). */
const char *hq_cli_task_state(const char *json_state);

/* Float seconds (or null) -> ns. */
uint64_t hq_cli_seconds_ns(const json_t *v);
/* Span between two RFC3339 datetimes (to = NULL: now); -1 when from is absent. */
int64_t hq_cli_span_ns(const char *from, const char *to);

/* hq's whole command line (argv[0] is the program name): finds the command and runs
 * it. Returns the process exit code. */
int hq_cli_main(int argc, char **argv);
/* The entry point of the command at path ("job list"), or NULL (groups). */
hq_cmd_fn hq_cli_handler(const char *path);

/* Commands. */
int hq_cmd_server_start(int argc, char **argv);
int hq_cmd_server_stop(int argc, char **argv);
int hq_cmd_server_info(int argc, char **argv);
int hq_cmd_server_wait(int argc, char **argv);
int hq_cmd_server_generate_access(int argc, char **argv);
int hq_cmd_server_debug_dump(int argc, char **argv);
int hq_cmd_worker_start(int argc, char **argv);
int hq_cmd_worker_stop(int argc, char **argv);
int hq_cmd_worker_list(int argc, char **argv);
int hq_cmd_worker_info(int argc, char **argv);
int hq_cmd_worker_hwdetect(int argc, char **argv);
int hq_cmd_worker_address(int argc, char **argv);
int hq_cmd_worker_wait(int argc, char **argv);
int hq_cmd_worker_deploy_ssh(int argc, char **argv);
int hq_cmd_submit(int argc, char **argv);
int hq_cmd_job_list(int argc, char **argv);
int hq_cmd_job_summary(int argc, char **argv);
int hq_cmd_job_info(int argc, char **argv);
int hq_cmd_job_cancel(int argc, char **argv);
int hq_cmd_job_forget(int argc, char **argv);
int hq_cmd_job_close(int argc, char **argv);
int hq_cmd_job_open(int argc, char **argv);
int hq_cmd_job_task_ids(int argc, char **argv);
int hq_cmd_job_wait(int argc, char **argv);
int hq_cmd_job_progress(int argc, char **argv);
int hq_cmd_job_cat(int argc, char **argv);
int hq_cmd_job_submit_file(int argc, char **argv);
int hq_cmd_task_list(int argc, char **argv);
int hq_cmd_task_info(int argc, char **argv);
int hq_cmd_task_explain(int argc, char **argv);
int hq_cmd_task_notify(int argc, char **argv);
int hq_cmd_journal_export(int argc, char **argv);
int hq_cmd_journal_stream(int argc, char **argv);
int hq_cmd_journal_replay(int argc, char **argv);
int hq_cmd_journal_flush(int argc, char **argv);
int hq_cmd_journal_prune(int argc, char **argv);
int hq_cmd_journal_verify(int argc, char **argv);
int hq_cmd_journal_report(int argc, char **argv);
int hq_cmd_output_log_summary(int argc, char **argv);
int hq_cmd_output_log_jobs(int argc, char **argv);
int hq_cmd_output_log_show(int argc, char **argv);
int hq_cmd_output_log_cat(int argc, char **argv);
int hq_cmd_output_log_export(int argc, char **argv);
int hq_cmd_alloc_add_pbs(int argc, char **argv);
int hq_cmd_alloc_add_slurm(int argc, char **argv);
int hq_cmd_alloc_dry_run_pbs(int argc, char **argv);
int hq_cmd_alloc_dry_run_slurm(int argc, char **argv);
int hq_cmd_alloc_list(int argc, char **argv);
int hq_cmd_alloc_info(int argc, char **argv);
int hq_cmd_alloc_log(int argc, char **argv);
int hq_cmd_alloc_pause(int argc, char **argv);
int hq_cmd_alloc_resume(int argc, char **argv);
int hq_cmd_alloc_remove(int argc, char **argv);
int hq_cmd_doc(int argc, char **argv);
int hq_cmd_generate_completion(int argc, char **argv);
int hq_cmd_generate_man(int argc, char **argv);

/* Waits for the selected jobs (shared by `job wait`, `job progress`, `submit
 * --wait/--progress`). progress draws the progress line. Returns the exit code. */
/* on_notify: the --on-notify program (shell words), run per task notification, or NULL. */
int hq_cli_wait_jobs(hq_cli_t *c, const hq_selector_t *sel, bool without_close, bool progress,
                     const char *on_notify);

/* The server uid in the access file the client uses (the streams it writes), or NULL.
 * Caller frees. */
char *hq_cli_server_uid(const hq_cli_t *c);
/* Prints the output that tasks of job write into the stream directory dir while they
 * run, until the job ends (`output-log cat --follow`, `submit --follow`). channel: 0
 * stdout, 1 stderr, -1 both (stderr chunks to stderr). tasks: only these, or NULL.
 * server_uid: the streams of this server, or NULL for the connected server's. */
int hq_cli_follow(hq_cli_t *c, const char *dir, uint32_t job, int channel,
                  const hq_rangelist_t *tasks, const char *server_uid);

#endif
