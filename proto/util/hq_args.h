/* Command-line parsing with HyperQueue's (clap's) conventions: long flags with
 * `--name value` or `--name=value`, short flags, global flags accepted anywhere
 * before the trailing command, errors worded like clap ("error: unexpected argument
 * '--foo' found") for exit code 2. */
#ifndef HQ_ARGS_H
#define HQ_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "hq_err.h"

enum hq_opt_kind {
    HQ_OPT_FLAG = 0,  /* --flag, no value */
    HQ_OPT_VALUE = 1, /* --flag VALUE, last occurrence wins */
    HQ_OPT_MULTI = 2, /* --flag VALUE, repeatable, all kept in order */
};

typedef struct hq_opt {
    const char *name;          /* long name without "--"; NULL ends the table */
    char short_name;           /* e.g. 'v', or 0 */
    enum hq_opt_kind kind;     /* flag or value */
    const char *value_name;    /* "TIME_LIMIT" for errors/help; NULL for flags */
    const char *help;          /* one line for --help */
    const char *default_value; /* shown as [default: ...]; NULL = none */
    const char *possible;      /* "cli, json, quiet" when only these values are accepted */
    const char *env;           /* environment variable that sets it too, or NULL */
    bool required;             /* the command cannot run without it */
} hq_opt_t;

typedef struct hq_args hq_args_t;

/* The global flags of cli/REFERENCE.md §0.1 (--server-dir, --output-mode, --colors, --debug),
 * which every command accepts. */
extern const hq_opt_t hq_global_opts[];

/* Parses argv[0..argc) (argv[0] is the first argument, not the program name).
 * opts: the command's options; hq_global_opts are always accepted too.
 * max_positional: how many positionals are allowed (-1 = unlimited).
 * trailing: if true, the first positional and everything after it are kept
 * verbatim (submit's COMMAND [ARGS]...), and "--" also starts it.
 * usage: the command path for messages, e.g. "hq job list".
 * On a syntax error fills err with clap-style text ("error: unexpected argument
 * '--foo' found") and returns NULL; the caller prints it and exits 2.
 * "--help"/"-h" sets hq_args_help(). */
hq_args_t *hq_args_parse(const hq_opt_t *opts, int argc, char **argv, int max_positional,
                         bool trailing, const char *usage, hq_err_t *err);
void hq_args_destroy(hq_args_t **args);

/* Last value of a VALUE/MULTI option, or NULL when absent. Borrowed until destroy. */
const char *hq_args_get(const hq_args_t *a, const char *name);
/* Whether a flag or option was given. */
bool hq_args_has(const hq_args_t *a, const char *name);
/* Values of a MULTI option in order. */
size_t hq_args_count(const hq_args_t *a, const char *name);
const char *hq_args_at(const hq_args_t *a, const char *name, size_t i);
/* Positionals (and, with trailing, the trailing command words). */
size_t hq_args_npos(const hq_args_t *a);
const char *hq_args_pos(const hq_args_t *a, size_t i);
/* --help / -h was given (the command's help is printed from hq_cmdtable.h). */
bool hq_args_help(const hq_args_t *a);

/* The most similar of candidates[0..n) to word by edit distance when it is close
 * enough to be a likely typo (or word is a prefix of it); else NULL. Used for clap's
 * "tip: a similar argument exists" and "a similar subcommand exists". */
const char *hq_args_similar(const char *word, const char *const *candidates, size_t n);

/* Formats a value-parser error the clap way:
 * "error: invalid value '<value>' for '--<flag> <VALUE_NAME>': <detail>". */
int hq_args_invalid_value(hq_err_t *err, const hq_opt_t *opts, const char *flag, const char *value,
                          const char *detail);

/* Global settings shared by all commands (cli/REFERENCE.md §0.1). */
enum hq_output_mode { HQ_OUTPUT_CLI = 0, HQ_OUTPUT_JSON = 1, HQ_OUTPUT_QUIET = 2 };
enum hq_colors { HQ_COLORS_AUTO = 0, HQ_COLORS_ALWAYS = 1, HQ_COLORS_NEVER = 2 };

typedef struct hq_global {
    char *server_dir;           /* absolute; owned */
    bool server_dir_given;      /* --server-dir/HQ_SERVER_DIR was set explicitly */
    enum hq_output_mode output; /* --output-mode / HQ_OUTPUT_MODE */
    enum hq_colors colors;      /* --colors */
    bool debug;                 /* --debug / HQ_DEBUG */
} hq_global_t;

/* Fills g from parsed args and the environment. Errors (bad --output-mode value)
 * are command-line errors (exit 2). */
int hq_global_from_args(const hq_args_t *a, hq_global_t *g, hq_err_t *err);
void hq_global_clear(hq_global_t *g);

#endif
