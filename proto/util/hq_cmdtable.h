/* The one declarative table of hq's command line: every command group and command
 * with its summary, description, positional arguments, options (value names,
 * defaults, possible values) and examples. Parsing, --help, shell completion and the
 * man pages are all generated from it, so they cannot drift apart. */
#ifndef HQ_CMDTABLE_H
#define HQ_CMDTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "hq_args.h"
#include "hq_err.h"

/* A positional argument. The table ends with value_name == NULL. */
typedef struct hq_pos_arg {
    const char *value_name; /* shown as <SELECTOR>; "stdout|stderr" for a choice */
    const char *help;       /* one line */
    bool optional;          /* [TOPIC] instead of <TOPIC> */
    bool multiple;          /* takes every further word: [ARGS]... */
    const char *possible;   /* "bash, zsh" when only these words are accepted */
} hq_pos_arg_t;

/* A command group ("job"), a command ("job list") or the root ("" = `hq`). */
typedef struct hq_cmd_spec {
    const char *path;         /* command words after "hq", space-separated */
    const char *summary;      /* one line: --help, the parent's command list */
    const char *description;  /* paragraphs for --help and the man page, or NULL */
    const hq_opt_t *opts;     /* the command's options (NULL = none) */
    const hq_pos_arg_t *args; /* positional arguments (NULL = none) */
    bool trailing;            /* the first positional starts a verbatim command */
    const char *alias_of;     /* "job submit" for "submit": the same command */
    const char *examples;     /* lines "$ hq ..." each followed by what it does */
    const char *reference;    /* where it is described: "cli/REFERENCE.md §3.4" */
    bool hidden;              /* left out of help, completion and man pages */
} hq_cmd_spec_t;

/* The options of `hq submit` (= `hq job submit`), which its #HQ directives use too. */
extern const hq_opt_t hq_submit_opts[];

/* The i-th entry of the table (NULL past the end): the root first, every group
 * before its commands, in the order of the parent's command list. */
const hq_cmd_spec_t *hq_cmd_at(size_t i);

/* The spec of a command path ("job list"; "" is the root), or NULL. */
const hq_cmd_spec_t *hq_cmd_find(const char *path);
/* The last word of the path ("list" for "job list"; "hq" for the root). */
const char *hq_cmd_name(const hq_cmd_spec_t *spec);
/* Whether spec is a group (has subcommands). */
bool hq_cmd_is_group(const hq_cmd_spec_t *spec);
/* The i-th visible direct subcommand of group (NULL past the end). */
const hq_cmd_spec_t *hq_cmd_child(const hq_cmd_spec_t *group, size_t i);
/* The direct subcommand of group called word (hidden ones too), or NULL. */
const hq_cmd_spec_t *hq_cmd_child_named(const hq_cmd_spec_t *group, const char *word);

/* Parses a command's own words (argv[0] is its first argument) with its options,
 * the global flags and its positional arguments. Syntax errors, missing required
 * options and positionals included (unless --help or --version), fill err with
 * clap's text ending in the usage line and "For more information, try '--help'.";
 * the caller prints it and exits 2. */
hq_args_t *hq_cmd_parse(const hq_cmd_spec_t *spec, int argc, char **argv, hq_err_t *err);

/* "hq job cat [OPTIONS] <SELECTOR> <stdout|stderr>" (malloc'd). */
char *hq_cmd_usage(const hq_cmd_spec_t *spec);
/* Prints the --help text of a command or group. */
void hq_cmd_print_help(const hq_cmd_spec_t *spec, FILE *out);
/* "--time-limit <TIME_LIMIT>" or "-v, --verbose" (malloc'd). */
char *hq_cmd_opt_display(const hq_opt_t *o, bool with_short);

#endif
