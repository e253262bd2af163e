/* `hq journal report`: a self-contained HTML report of a journal (see report.c). */
#ifndef HQ_CLI_REPORT_H
#define HQ_CLI_REPORT_H

#include <stdint.h>

#include "hq_err.h"

/* Reads the journal directory (read-only) and writes the report to out_path, limited
 * to events between from and to (wall ns; 0 = open). 0, or -1 with err. */
int hq_journal_report(const char *journal, const char *out_path, uint64_t from, uint64_t to,
                      hq_err_t *err);

#endif
