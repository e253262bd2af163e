/* Lexical helpers shared by the resource-syntax files (hq_resource*.c) and by
 * nothing else: whitespace, resource names, integers and fixed-point amounts. */
#ifndef HQ_RESOURCE_PRIV_H
#define HQ_RESOURCE_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "hq_resource.h"

/* ' ', '\t', '\n' or '\r'. */
bool hq_res_space(char c);
/* p past leading whitespace. */
const char *hq_res_skip(const char *p);
/* Copies [b, e) without surrounding whitespace. Caller frees. */
char *hq_res_trimmed(const char *b, const char *e);
/* Resource names: an ASCII letter, then ASCII letters, digits or '/'. */
bool hq_res_valid_name(const char *n);
/* Unsigned integer with '_' allowed after the first digit; the whole string.
 * Returns 0 or -1. */
int hq_res_u64(const char *s, uint64_t *out);
/* Amount: integer or decimal with at most 4 fractional digits, into fixed point.
 * Returns 0, -1 (syntax) or -2 (precision exceeded). */
int hq_res_amount(const char *s, hq_amount_t *out);

#endif
