/* Running a small external tool (scontrol, qstat, nvidia-smi, rocm-smi) with a
 * deadline and reading its standard output. Private to worker/. */
#ifndef HQ_WORKER_TOOL_H
#define HQ_WORKER_TOOL_H

#include <stddef.h>
#include <stdint.h>

/* Runs argv (PATH lookup) in its own process group with standard input and error on
 * /dev/null and no blocked signals, and returns its standard output (NUL-terminated;
 * caller frees), or NULL when it cannot run, exits non-zero, prints more than
 * max_output bytes, or is still running after timeout_ms: then the whole group is
 * killed (a hung driver must not stall the worker's loop) and a warning names it. */
char *wk_tool_output(char *const argv[], uint64_t timeout_ms, size_t max_output);

#endif
