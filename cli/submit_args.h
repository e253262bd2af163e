/* Pieces of `hq submit` that are pure functions of their input (and therefore unit
 * tested): stdout/stderr specs, environment entries, crash limits, #HQ directives. */
#ifndef HQ_CLI_SUBMIT_ARGS_H
#define HQ_CLI_SUBMIT_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hq_err.h"
#include "hq_msg.h"

/* Parses a cli/REFERENCE.md §1.5 spec ("none", "path", "path:rm-if-finished", ":rm-if-finished")
 * into out (out->path malloc'd). default_path is used for ":rm-if-finished". */
int hq_submit_parse_stdio(const char *spec, const char *default_path, hq_stdio_t *out,
                          hq_err_t *err);

/* Parses "N" | "never-restart" | "unlimited"; 0 is refused with the message of
 * cli/REFERENCE.md §0.2. */
int hq_submit_parse_crash_limit(const char *s, enum hq_crash_kind *kind, uint32_t *limit,
                                hq_err_t *err);

/* Builds the sorted environment from "K=V" / "K" items; later duplicates win and
 * *dups is set. Fails with "Environment variable cannot be empty". */
int hq_submit_build_env(const char *const *items, size_t n, hq_kv_t **env, uint32_t *n_env,
                        bool *dups, hq_err_t *err);
void hq_submit_free_env(hq_kv_t *env, uint32_t n);

/* Splits text like a shell (quotes, backslashes) into *words (NULL-terminated,
 * malloc'd, free with hq_submit_free_words). Fails on an unterminated quote. */
int hq_submit_shell_split(const char *text, char ***words, int *n, hq_err_t *err);
void hq_submit_free_words(char **words);

/* Scans a script for directives (cli/REFERENCE.md §3.3): fills *args with the words of all
 * `#HQ` lines and *shebang with the words of a first-line `#!` (both may be empty).
 * Only the first 32 KiB are looked at. */
int hq_submit_scan_directives(const char *data, size_t len, char ***args, int *nargs,
                              char ***shebang, int *nshebang, hq_err_t *err);

/* Splits each-line data on '\n' (the final empty piece dropped). Entries point into
 * a fresh copy owned by the returned array's first element...: use
 * hq_submit_free_entries. */
int hq_submit_split_lines(const char *data, size_t len, hq_bytes_t **entries, uint32_t *n);
void hq_submit_free_entries(hq_bytes_t *entries, uint32_t n);

/* Re-serializes every element of a JSON array file (root must be an array:
 * "<file>: The top element of the provided JSON file has to be an array"). */
int hq_submit_json_entries(const char *path, hq_bytes_t **entries, uint32_t *n, hq_err_t *err);

/* Keeps only the ids of rl below n (for --array with entries); returns a new list. */
void hq_submit_clip_ids(const hq_rangelist_t *rl, uint64_t n, hq_rangelist_t *out);

#endif
