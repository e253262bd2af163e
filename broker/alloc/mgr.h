/* The batch systems' command lines and outputs (cli/REFERENCE.md §3.7): sbatch /
 * qsub to submit, scontrol show job / qstat -f ... -F json -x for the state, scancel /
 * qdel to cancel, and parsing what they print. Pure. Private to broker/alloc/. */
#ifndef HQ_ALLOC_MGR_H
#define HQ_ALLOC_MGR_H

#include <stdbool.h>
#include <stdint.h>

#include "aqueue.h"

/* An argv built here: NULL-terminated, strings owned. */
typedef struct hq_argv {
    char *v[64];
    int n;
} hq_argv_t;
void hq_argv_clear(hq_argv_t *a);

/* What the manager says about a job. */
enum hq_mstate {
    HQ_MS_UNKNOWN = 0, /* output not understood: ask again later */
    HQ_MS_QUEUED,
    HQ_MS_RUNNING,
    HQ_MS_FINISHED, /* ended normally */
    HQ_MS_FAILED,   /* ended abnormally (failed, canceled, time limit, node failure) */
    HQ_MS_GONE,     /* the manager no longer knows it */
};

/* `sbatch [--hold] hq-submit.sh` / `qsub hq-submit.sh` (run in the allocation dir). */
void hq_mgr_submit_argv(enum hq_amgr m, bool dry_run, hq_argv_t *out);
/* The job id from the submit command's stdout, or NULL (garbage). Caller frees. */
char *hq_mgr_parse_submit(enum hq_amgr m, const char *out);
/* `scontrol show job ID` (one id) / `qstat -f ID [-f ID ...] -F json -x`. */
void hq_mgr_status_argv(enum hq_amgr m, char *const *ids, uint32_t n, hq_argv_t *out);
/* The state of job id in the status command's output (exit code and both streams). */
enum hq_mstate hq_mgr_parse_status(enum hq_amgr m, const char *id, int exit_code, const char *out,
                                   const char *err);
/* `scancel ID` / `qdel ID`. */
void hq_mgr_cancel_argv(enum hq_amgr m, const char *id, hq_argv_t *out);

#endif
