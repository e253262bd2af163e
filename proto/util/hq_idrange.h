/* ID range lists (cli/REFERENCE.md §1.2): "1,3-5,0-9:3", selectors last|all|<ranges>, and the
 * merged printing of id sets ("1-3,5,7-9"). */
#ifndef HQ_IDRANGE_H
#define HQ_IDRANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hq_err.h"

typedef struct hq_range {
    uint32_t start; /* first id */
    uint32_t end;   /* last id, inclusive, as written (for step printing) */
    uint32_t step;  /* >= 1 */
} hq_range_t;

typedef struct hq_rangelist {
    uint32_t n;         /* number of ranges */
    hq_range_t *ranges; /* owned array of n ranges */
} hq_rangelist_t;

/* Parses a range list. Errors: "Invalid range", "Ranges overlap", bad numbers
 * (message names the item). On success *out owns a malloc'd array. */
int hq_rangelist_parse(const char *s, hq_rangelist_t *out, hq_err_t *err);
void hq_rangelist_clear(hq_rangelist_t *rl);

/* Number of ids covered. */
uint64_t hq_rangelist_count(const hq_rangelist_t *rl);

/* True if id is in the list. */
bool hq_rangelist_contains(const hq_rangelist_t *rl, uint32_t id);

/* Canonical print of the list as written ("0-9:3,12"). Caller frees. */
char *hq_rangelist_format(const hq_rangelist_t *rl);

/* Prints a sorted set of ids merged: "1-3,5,7-9". ids must be sorted ascending and
 * unique. Caller frees. */
char *hq_idset_format(const uint32_t *ids, size_t n);

enum hq_sel_kind { HQ_SEL_IDS = 0, HQ_SEL_LAST = 1, HQ_SEL_ALL = 2 };

typedef struct hq_selector {
    enum hq_sel_kind kind; /* last | all | explicit ids */
    hq_rangelist_t ids;    /* used when kind == HQ_SEL_IDS */
} hq_selector_t;

/* Parses "last" | "all" | ranges. allow_all=false rejects "all" (job cat, task list).
 * Errors as hq_rangelist_parse. */
int hq_selector_parse(const char *s, bool allow_all, hq_selector_t *out, hq_err_t *err);
void hq_selector_clear(hq_selector_t *sel);

#endif
