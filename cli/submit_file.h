/* Job definition files (cli/REFERENCE.md §8): TOML text -> one SUBMIT. Pure (no I/O
 * besides what the caller passes), so it is unit tested. */
#ifndef HQ_CLI_SUBMIT_FILE_H
#define HQ_CLI_SUBMIT_FILE_H

#include <stddef.h>

#include "hq_err.h"
#include "hq_msg.h"

/* Parses and validates a job definition (len bytes of TOML) into *s: the graph form
 * for `[[task]]` tables, the array form for `[array]`. Unknown keys, wrong types,
 * mixing both forms and an empty file are refused with a message naming the key
 * and line. Ids and dependencies are checked by hq_job_check_graph. On success the caller frees *s
 * with hq_jobfile_clear; on failure *s is left empty. submit_dir and job_id are left for the
 * caller. */
int hq_jobfile_build(const char *text, size_t len, hq_submit_t *s, hq_err_t *err);
void hq_jobfile_clear(hq_submit_t *s);

#endif
