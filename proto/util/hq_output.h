/* Output modes (cli/REFERENCE.md §0.2, §6, §7): printing errors, JSON documents, and the "{}"
 * a JSON-mode command prints when it printed nothing else. */
#ifndef HQ_OUTPUT_H
#define HQ_OUTPUT_H

#include <stdbool.h>

#include <jansson.h>

#include "hq_args.h"

/* Prints an error: cli/quiet -> text on stderr (no logger); json -> stdout
 * {"error": "<text>"} pretty-printed. Returns 1 (the exit code). text may contain
 * the "\n\nCaused by:\n    ..." part already. */
int hq_output_error(const hq_global_t *g, const char *text);

/* Builds "<top>\n\nCaused by:\n    <cause>" (one cause) or numbered causes as
 * cli/REFERENCE.md §0.2. Caller frees. */
char *hq_error_with_causes(const char *top, const char *const *causes, int n);

/* Prints a JSON value pretty (2-space indent, keys sorted, reals with 15 digits)
 * to stdout followed by a newline, and marks that something was printed. */
void hq_output_json(json_t *value);

/* Dumps compactly (NDJSON) or pretty with sorted keys. Caller frees. */
char *hq_json_dump(const json_t *value, bool pretty);

/* Deletes every object key starting with '_' at any depth (proto/wire/PROTOCOL.md). */
void hq_json_strip_private(json_t *value);

/* Whether anything was printed to stdout through hq_output_* (for the JSON "{}"
 * rule), and a helper that prints "{}" if not. */
bool hq_output_printed(void);
void hq_output_mark_printed(void);
void hq_output_finish(const hq_global_t *g);

/* Whether colours are on for stdout (auto = isatty). */
bool hq_output_colors(const hq_global_t *g);

#endif
