/* hq's client-side renderings of the broker's JSON documents (proto/wire/PROTOCOL.md "Query
 * replies") in the output modes: tables (cli/REFERENCE.md §5), JSON (§6), quiet (§7). They print
 * to stdout and take no ownership. */
#ifndef HQ_CLI_RENDER_H
#define HQ_CLI_RENDER_H

#include <stdbool.h>

#include <jansson.h>

#include "hq_args.h"

/* `worker list`: workers is an array of worker objects, already filtered/sorted. */
void hq_cli_render_worker_list(const hq_global_t *g, const json_t *workers);

/* `job list`: jobs is an array of JobInfo (filtered, sorted); total is the number
 * of jobs on the server (for the footer); verbose adds Cancel Reason. */
void hq_cli_render_job_list(const hq_global_t *g, const json_t *jobs, long long total,
                            bool verbose);

/* `job info`: an array of job detail objects (with the `_` keys of proto/wire/PROTOCOL.md). */
void hq_cli_render_job_info(const hq_global_t *g, const json_t *jobs);

/* `job summary`: the summary object. */
void hq_cli_render_job_summary(const hq_global_t *g, const json_t *summary);

/* `task list`: the {"<job id>": [T...]} object; verbose shows full errors. */
void hq_cli_render_task_list(const hq_global_t *g, const json_t *result, bool verbose);

/* `task info`: an array of T (with `_def`, `_deps`, `_hosts`). */
void hq_cli_render_task_info(const hq_global_t *g, const json_t *tasks, bool verbose);

/* Cells shared by job info and task info. Each returns a new string. */
char *hq_cli_cell_command(const json_t *program); /* args, one per line, wrapped at 80 */
char *hq_cli_cell_env(const json_t *program);     /* K=V lines, sorted, HQ_* hidden */
char *hq_cli_cell_resources(const json_t *td);    /* display form of TD.resources */
char *hq_cli_cell_stdio(const json_t *v);         /* path, <None>, <Stream> */
char *hq_cli_cell_pin(const json_t *td);          /* none / taskset / omp */
char *hq_cli_cell_crash_limit(const json_t *td);  /* 5 / never-restart / unlimited */
char *hq_cli_cell_duration(const json_t *v);      /* human duration or None */
/* Text wrapped at width columns (greedy on spaces; over-long words are split). */
char *hq_cli_wrap(const char *text, size_t width);

#endif
