/* What an allocation runs (cli/REFERENCE.md §3.7): the worker command line generated
 * from the queue's parameters and the submit script around it (the #SBATCH / #PBS
 * header, the extra arguments as one header line, srun / pbsdsh for several nodes).
 * Pure: text in, text out. Private to broker/alloc/. */
#ifndef HQ_ALLOC_SCRIPT_H
#define HQ_ALLOC_SCRIPT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "aqueue.h"

/* The worker command line as a list of words (hq path first), for `alloc list`'s
 * worker_args. */
json_t *hq_ascript_worker_args(const hq_aparams_t *p, const char *hq, const char *run_dir);
/* The worker command of the script: `[RUST_LOG=v ][wrap ]<hq> worker start ...`,
 * wrapped by the start/stop commands. rust_log may be NULL. Caller frees. */
char *hq_ascript_worker_cmd(const hq_aparams_t *p, const char *hq, const char *run_dir,
                            const char *rust_log);
/* "HH:MM:SS" with hours not wrapped at 24 (rounded up to whole seconds). Caller frees. */
char *hq_ascript_walltime(uint64_t ns);
/* The whole submit script for an allocation of n nodes named name, writing its
 * output to workdir/stdout and workdir/stderr; dry_run adds PBS's hold line. */
char *hq_ascript_text(const hq_aparams_t *p, uint32_t n, const char *name, const char *workdir,
                      const char *worker_cmd, bool dry_run);
/* Allocation name: <queue name or hq-<queue id>>-<n>. Caller frees. */
char *hq_ascript_alloc_name(const hq_aparams_t *p, uint32_t queue_id, uint32_t n);

#endif
