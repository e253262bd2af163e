/* A small C interface to toml++ (C++17): parses a TOML document into a jansson
 * tree so that C code can validate it. Tables become JSON objects that also carry
 * the line where they start under the key HQ_TOML_LINE_KEY (never a valid TOML
 * key of a user document: the parser refuses documents that use it). */
#ifndef HQ_CLI_TOML_H
#define HQ_CLI_TOML_H

#include <stddef.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "hq_err.h"

/* Key of the hidden line number in every table object. */
#define HQ_TOML_LINE_KEY "\x01line"

/* Parses text (len bytes, need not be NUL-terminated). Integers become JSON
 * integers, floats reals, booleans booleans, dates/times their TOML text, arrays
 * arrays and tables objects. Returns a new reference, or NULL with err set to
 * "<what went wrong> at line L, column C". */
json_t *hq_toml_parse(const char *text, size_t len, hq_err_t *err);

/* Line of a table object parsed by hq_toml_parse (0 if unknown). */
int hq_toml_line(const json_t *table);

#ifdef __cplusplus
}
#endif

#endif
