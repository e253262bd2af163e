/* A small clap-compatible command-line parser: long and short options, values
 * attached with '=' or given as the next word, a trailing command kept verbatim,
 * and clap's error wording so that syntax errors read like HyperQueue's. */
#include "hq_args.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hq_serverdir.h"
#include "hq_util.h"

const hq_opt_t hq_global_opts[] = {
    {"server-dir", 0, HQ_OPT_VALUE, "SERVER_DIR",
     "Path to a directory that stores HyperQueue access files", NULL, NULL, "HQ_SERVER_DIR", false},
    {"output-mode", 0, HQ_OPT_VALUE, "OUTPUT_MODE",
     "How should the output of the command be formatted", "cli", "cli, json, quiet",
     "HQ_OUTPUT_MODE", false},
    {"colors", 0, HQ_OPT_VALUE, "COLORS", "Turn terminal colors on or off", "auto",
     "auto, always, never", NULL, false},
    {"debug", 0, HQ_OPT_FLAG, NULL, "Enable more detailed log output", NULL, NULL, "HQ_DEBUG",
     false},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, false},
};

typedef struct s_entry {
    const char *name;  /* long name of the option (borrowed from the opts table) */
    const char *value; /* value, or NULL for flags (borrowed from argv) */
} s_entry_t;

struct hq_args {
    s_entry_t *entries; /* options in command-line order */
    size_t n_entries;   /* number of entries */
    const char **pos;   /* positionals and trailing words (borrowed from argv) */
    size_t n_pos;       /* number of positionals */
    bool help;          /* --help / -h was given */
};

static const hq_opt_t *s_find_long_in(const hq_opt_t *opts, const char *name, size_t n)
{
    for (const hq_opt_t *o = opts; o && o->name; o++)
        if (strlen(o->name) == n && strncmp(o->name, name, n) == 0)
            return o;
    return NULL;
}

static const hq_opt_t *s_find_long(const hq_opt_t *opts, const char *name, size_t n)
{
    const hq_opt_t *o = s_find_long_in(opts, name, n);
    return o ? o : s_find_long_in(hq_global_opts, name, n);
}

static const hq_opt_t *s_find_short(const hq_opt_t *opts, char c)
{
    for (const hq_opt_t *o = opts; o && o->name; o++)
        if (o->short_name == c)
            return o;
    for (const hq_opt_t *o = hq_global_opts; o->name; o++)
        if (o->short_name == c)
            return o;
    return NULL;
}

/* "--time-limit <TIME_LIMIT>": the value name from the table or derived from the
 * flag name (upper case, '-' -> '_'). */
static void s_flag_display(const hq_opt_t *o, const char *name, char *buf, size_t size)
{
    if (o && o->value_name) {
        snprintf(buf, size, "--%s <%s>", name, o->value_name);
        return;
    }
    char vn[128];
    size_t i = 0;
    for (; name[i] && i < sizeof vn - 1; i++)
        vn[i] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
    vn[i] = '\0';
    snprintf(buf, size, "--%s <%s>", name, vn);
}

static void s_add_entry(hq_args_t *a, const char *name, const char *value)
{
    a->entries = hq_realloc(a->entries, (a->n_entries + 1) * sizeof *a->entries);
    a->entries[a->n_entries].name = name;
    a->entries[a->n_entries].value = value;
    a->n_entries++;
}

static void s_add_pos(hq_args_t *a, const char *word)
{
    a->pos = hq_realloc(a->pos, (a->n_pos + 1) * sizeof *a->pos);
    a->pos[a->n_pos++] = word;
}

/* A word that can be an option's value when it follows the option: anything but
 * another option ("-" alone and negative numbers are values). */
static bool s_is_value_word(const char *w)
{
    if (w[0] != '-' || w[1] == '\0')
        return true;
    return (w[1] >= '0' && w[1] <= '9') || w[1] == '.';
}

static int s_missing_value(hq_err_t *err, const hq_opt_t *o)
{
    char disp[256];
    s_flag_display(o, o->name, disp, sizeof disp);
    return hq_err_set(err, "error: a value is required for '%s' but none was supplied", disp);
}

/* Edit distance of two short words: insertions, deletions, substitutions and
 * transpositions of neighbours ("lsit" is one edit from "list"). */
static size_t s_distance(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    if (na > 64 || nb > 64)
        return (size_t)-1;
    unsigned char d[65][65];
    for (size_t i = 0; i <= na; i++)
        d[i][0] = (unsigned char)i;
    for (size_t j = 0; j <= nb; j++)
        d[0][j] = (unsigned char)j;
    for (size_t i = 1; i <= na; i++)
        for (size_t j = 1; j <= nb; j++) {
            unsigned best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1u < best)
                best = d[i - 1][j] + 1u;
            if (d[i][j - 1] + 1u < best)
                best = d[i][j - 1] + 1u;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1u < best)
                best = d[i - 2][j - 2] + 1u;
            d[i][j] = (unsigned char)best;
        }
    return d[na][nb];
}

const char *hq_args_similar(const char *word, const char *const *candidates, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    size_t len = strlen(word);
    for (size_t i = 0; i < n; i++) {
        if (!candidates[i])
            continue;
        size_t d = s_distance(word, candidates[i]);
        if (len >= 2 && strncmp(candidates[i], word, len) == 0 && d > 0)
            d = 1; /* a prefix of the candidate counts as a close miss */
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    /* Close enough: at most a third of the word wrong, and never more than 3 edits. */
    size_t limit = len / 3 < 1 ? 1 : len / 3;
    if (limit > 3)
        limit = 3;
    return best && best_d > 0 && best_d <= limit ? best : NULL;
}

/* The long name among opts and the global flags most similar to name, or NULL. */
static const char *s_similar_opt(const hq_opt_t *opts, const char *name)
{
    const char *names[128];
    size_t n = 0;
    for (const hq_opt_t *o = opts; o && o->name && n < 120; o++)
        names[n++] = o->name;
    for (const hq_opt_t *o = hq_global_opts; o->name; o++)
        names[n++] = o->name;
    names[n++] = "help";
    return hq_args_similar(name, names, n);
}

/* Handles "--name", "--name=value" and "--name value". Returns the number of extra
 * words consumed (0 or 1) or -1. */
static int s_parse_long(hq_args_t *a, const hq_opt_t *opts, int argc, char **argv, int i,
                        hq_err_t *err)
{
    const char *arg = argv[i] + 2;
    const char *eq = strchr(arg, '=');
    size_t n = eq ? (size_t)(eq - arg) : strlen(arg);
    if (n == 4 && strncmp(arg, "help", 4) == 0 && !s_find_long_in(opts, arg, n)) {
        a->help = true;
        return 0;
    }
    const hq_opt_t *o = s_find_long(opts, arg, n);
    if (!o) {
        char name[256];
        snprintf(name, sizeof name, "--%.*s", (int)(n > 200 ? 200 : n), arg);
        const char *tip = s_similar_opt(opts, name + 2);
        if (tip)
            return hq_err_set(err,
                              "error: unexpected argument '%s' found\n\n"
                              "  tip: a similar argument exists: '--%s'",
                              name, tip);
        return hq_err_set(err, "error: unexpected argument '%s' found", name);
    }
    if (o->kind == HQ_OPT_FLAG) {
        if (eq)
            return hq_err_set(
                err, "error: unexpected value '%s' for '--%s' found; no more were expected", eq + 1,
                o->name);
        s_add_entry(a, o->name, NULL);
        return 0;
    }
    if (eq) {
        s_add_entry(a, o->name, eq + 1);
        return 0;
    }
    if (i + 1 >= argc || !s_is_value_word(argv[i + 1]))
        return s_missing_value(err, o);
    s_add_entry(a, o->name, argv[i + 1]);
    return 1;
}

/* Handles "-v", "-vq", "-t 1h", "-t1h", "-t=1h". Returns extra words consumed or -1. */
static int s_parse_short(hq_args_t *a, const hq_opt_t *opts, int argc, char **argv, int i,
                         hq_err_t *err)
{
    const char *arg = argv[i];
    for (size_t k = 1; arg[k]; k++) {
        const hq_opt_t *o = s_find_short(opts, arg[k]);
        if (!o) {
            if (arg[k] == 'h') {
                a->help = true;
                continue;
            }
            return hq_err_set(err, "error: unexpected argument '-%c' found", arg[k]);
        }
        if (o->kind == HQ_OPT_FLAG) {
            s_add_entry(a, o->name, NULL);
            continue;
        }
        const char *rest = arg + k + 1;
        if (*rest == '=')
            rest++;
        if (*rest) {
            s_add_entry(a, o->name, rest);
            return 0;
        }
        if (i + 1 >= argc || !s_is_value_word(argv[i + 1]))
            return s_missing_value(err, o);
        s_add_entry(a, o->name, argv[i + 1]);
        return 1;
    }
    return 0;
}

hq_args_t *hq_args_parse(const hq_opt_t *opts, int argc, char **argv, int max_positional,
                         bool trailing, const char *usage, hq_err_t *err)
{
    hq_args_t *a = hq_calloc(1, sizeof *a);
    bool in_trailing = false; /* every further word is a positional */
    bool after_dashes = false;
    for (int i = 0; i < argc; i++) {
        const char *w = argv[i];
        if (in_trailing || after_dashes) {
            s_add_pos(a, w);
            continue;
        }
        if (strcmp(w, "--") == 0) {
            if (trailing)
                in_trailing = true;
            else
                after_dashes = true;
            continue;
        }
        int used = 0;
        if (w[0] == '-' && w[1] == '-')
            used = s_parse_long(a, opts, argc, argv, i, err);
        else if (w[0] == '-' && w[1] != '\0' && !(w[1] >= '0' && w[1] <= '9'))
            used = s_parse_short(a, opts, argc, argv, i, err);
        else {
            s_add_pos(a, w);
            if (trailing)
                in_trailing = true;
        }
        if (used < 0)
            goto error;
        i += used;
    }
    if (!trailing && max_positional >= 0 && a->n_pos > (size_t)max_positional && !a->help) {
        hq_err_set(err, "error: unexpected argument '%s' found", a->pos[max_positional]);
        goto error;
    }
    (void)usage;
    return a;
error:
    hq_args_destroy(&a);
    return NULL;
}

void hq_args_destroy(hq_args_t **args)
{
    if (!args || !*args)
        return;
    free((*args)->entries);
    free((*args)->pos);
    free(*args);
    *args = NULL;
}

const char *hq_args_get(const hq_args_t *a, const char *name)
{
    for (size_t i = a->n_entries; i > 0; i--)
        if (strcmp(a->entries[i - 1].name, name) == 0 && a->entries[i - 1].value)
            return a->entries[i - 1].value;
    return NULL;
}

bool hq_args_has(const hq_args_t *a, const char *name)
{
    for (size_t i = 0; i < a->n_entries; i++)
        if (strcmp(a->entries[i].name, name) == 0)
            return true;
    return false;
}

size_t hq_args_count(const hq_args_t *a, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < a->n_entries; i++)
        if (strcmp(a->entries[i].name, name) == 0 && a->entries[i].value)
            n++;
    return n;
}

const char *hq_args_at(const hq_args_t *a, const char *name, size_t idx)
{
    size_t n = 0;
    for (size_t i = 0; i < a->n_entries; i++) {
        if (strcmp(a->entries[i].name, name) != 0 || !a->entries[i].value)
            continue;
        if (n++ == idx)
            return a->entries[i].value;
    }
    return NULL;
}

size_t hq_args_npos(const hq_args_t *a)
{
    return a->n_pos;
}

const char *hq_args_pos(const hq_args_t *a, size_t i)
{
    return i < a->n_pos ? a->pos[i] : NULL;
}

bool hq_args_help(const hq_args_t *a)
{
    return a->help;
}

int hq_args_invalid_value(hq_err_t *err, const hq_opt_t *opts, const char *flag, const char *value,
                          const char *detail)
{
    const char *name = flag;
    while (*name == '-')
        name++;
    const hq_opt_t *o = s_find_long(opts, name, strlen(name));
    char disp[256];
    s_flag_display(o, name, disp, sizeof disp);
    return hq_err_set(err, "error: invalid value '%s' for '%s': %s", value, disp, detail);
}

/* clap's FalseyValueParser, used for boolean flags read from the environment. */
static bool s_env_true(const char *v)
{
    static const char *const falsey[] = {"", "n", "no", "f", "false", "off", "0"};
    if (!v)
        return false;
    for (size_t i = 0; i < sizeof falsey / sizeof falsey[0]; i++)
        if (strcasecmp(v, falsey[i]) == 0)
            return false;
    return true;
}

static int s_enum_error(hq_err_t *err, const char *flag, const char *value, const char *possible)
{
    char disp[256];
    s_flag_display(s_find_long_in(hq_global_opts, flag, strlen(flag)), flag, disp, sizeof disp);
    return hq_err_set(err, "error: invalid value '%s' for '%s'\n  [possible values: %s]", value,
                      disp, possible);
}

int hq_global_from_args(const hq_args_t *a, hq_global_t *g, hq_err_t *err)
{
    memset(g, 0, sizeof *g);

    const char *mode = hq_args_get(a, "output-mode");
    if (!mode)
        mode = getenv("HQ_OUTPUT_MODE");
    if (!mode || strcmp(mode, "cli") == 0)
        g->output = HQ_OUTPUT_CLI;
    else if (strcmp(mode, "json") == 0)
        g->output = HQ_OUTPUT_JSON;
    else if (strcmp(mode, "quiet") == 0)
        g->output = HQ_OUTPUT_QUIET;
    else
        return s_enum_error(err, "output-mode", mode, "cli, json, quiet");

    const char *colors = hq_args_get(a, "colors");
    if (!colors || strcmp(colors, "auto") == 0)
        g->colors = HQ_COLORS_AUTO;
    else if (strcmp(colors, "always") == 0)
        g->colors = HQ_COLORS_ALWAYS;
    else if (strcmp(colors, "never") == 0)
        g->colors = HQ_COLORS_NEVER;
    else
        return s_enum_error(err, "colors", colors, "auto, always, never");

    g->debug = hq_args_has(a, "debug") || s_env_true(getenv("HQ_DEBUG"));

    const char *dir = hq_args_get(a, "server-dir");
    const char *env_dir = getenv("HQ_SERVER_DIR");
    g->server_dir_given = dir != NULL || (env_dir && *env_dir);
    g->server_dir = hq_server_dir_default(dir);
    return 0;
}

void hq_global_clear(hq_global_t *g)
{
    if (!g)
        return;
    free(g->server_dir);
    g->server_dir = NULL;
}
