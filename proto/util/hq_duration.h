/* Durations (cli/REFERENCE.md §1.1): parsing "[[HH:]MM:]SS" and human forms, printing the
 * human form used in tables. Durations are nanoseconds in a uint64_t. */
#ifndef HQ_DURATION_H
#define HQ_DURATION_H

#include <stdbool.h>
#include <stdint.h>

#include "hq_err.h"

#define HQ_NS_PER_SEC 1000000000ULL
#define HQ_NS_PER_MS 1000000ULL

/* Parses s. On error fills err with "Could not parse PBS walltime. Use either
 * `HH:MM:SS` or humantime format (2hours): <detail>" and returns -1. */
int hq_duration_parse(const char *s, uint64_t *ns_out, hq_err_t *err);

/* Parses only the human form (for --overview-interval). */
int hq_duration_parse_human(const char *s, uint64_t *ns_out, hq_err_t *err);

/* Human print: "8s", "1h 30m", "7days 8h 9m", "1s 500ms", "0s". Caller frees. */
char *hq_duration_format(uint64_t ns);

/* Makespan print: truncates (>=1h whole minutes, >=1min whole seconds, else ms) then
 * formats as above; a negative span prints "Invalid duration". Caller frees. */
char *hq_duration_format_makespan(int64_t ns);

/* Float seconds (JSON form): 8.0, 0.5. */
double hq_duration_seconds(uint64_t ns);

#endif
