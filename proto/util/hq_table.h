/* Tables exactly as cli/REFERENCE.md §4: horizontal (title row + data rows) and vertical
 * (key/value rows), multi-line cells, right-justified columns, optional colours. */
#ifndef HQ_TABLE_H
#define HQ_TABLE_H

#include <stdbool.h>
#include <stdio.h>

typedef struct hq_table hq_table_t;

/* A horizontal table with ncols columns and these titles (copied). bold_titles
 * controls whether titles are bold when colours are on. */
hq_table_t *hq_table_new_horizontal(int ncols, const char *const *titles);
/* A vertical table: rows of [key, value]; keys are bold when colours are on. */
hq_table_t *hq_table_new_vertical(void);
void hq_table_destroy(hq_table_t **t);

/* Right-justify column col (job-list ID etc.). */
void hq_table_right_justify(hq_table_t *t, int col);
/* Do not bold column col's title (worker-list ID). */
void hq_table_plain_title(hq_table_t *t, int col);

/* Adds a row; cells are copied. A cell may contain '\n' and ANSI colour escapes.
 * For vertical tables ncells is 2 (key, value). */
void hq_table_add_row(hq_table_t *t, const char *const *cells);
/* Convenience for vertical tables. */
void hq_table_add_kv(hq_table_t *t, const char *key, const char *value);

/* Prints the table to out; colours (bold titles/keys) when colors is true. */
void hq_table_print(const hq_table_t *t, FILE *out, bool colors);

/* Wraps text in the ANSI colour used for a state word (cli/REFERENCE.md §4 item 5) when
 * colors is true; returns a copy otherwise. kind: "task" (WAITING, RUNNING, ...),
 * "worker" (RUNNING, CONNECTION LOST, ...). Caller frees. */
char *hq_color_state(const char *word, const char *kind, bool colors);
/* Wraps text in an ANSI SGR code (e.g. "31" red, "1" bold) when colors. Caller frees. */
char *hq_color(const char *text, const char *sgr, bool colors);

#endif
