/* What every program does with the command table (hq_cmdtable.h): finding a
 * command, parsing its words against its spec, and its usage line and --help text
 * in clap's layout. The table's contents are in hq_cmds_*.c. */
#include "hq_cmdtable.h"

#include <stdlib.h>
#include <string.h>

#include "hq_cmds.h"
#include "hq_util.h"

/* The parts of the table, in order. */
static const struct {
    const hq_cmd_spec_t *specs;
    const size_t *len;
} s_parts[] = {
    {hq_cmds_top, &hq_cmds_top_len},
    {hq_cmds_jobs, &hq_cmds_jobs_len},
    {hq_cmds_infra, &hq_cmds_infra_len},
};

const hq_cmd_spec_t *hq_cmd_at(size_t i)
{
    for (size_t p = 0; p < sizeof s_parts / sizeof s_parts[0]; p++) {
        if (i < *s_parts[p].len)
            return &s_parts[p].specs[i];
        i -= *s_parts[p].len;
    }
    return NULL;
}

const hq_cmd_spec_t *hq_cmd_find(const char *path)
{
    for (size_t i = 0; hq_cmd_at(i); i++)
        if (strcmp(hq_cmd_at(i)->path, path) == 0)
            return hq_cmd_at(i);
    return NULL;
}

const char *hq_cmd_name(const hq_cmd_spec_t *spec)
{
    if (!*spec->path)
        return "hq";
    const char *sp = strrchr(spec->path, ' ');
    return sp ? sp + 1 : spec->path;
}

/* Whether spec is a direct subcommand of group. */
static bool s_is_child(const hq_cmd_spec_t *group, const hq_cmd_spec_t *spec)
{
    size_t n = strlen(group->path);
    const char *rest = spec->path;
    if (n > 0) {
        if (strncmp(spec->path, group->path, n) != 0 || spec->path[n] != ' ')
            return false;
        rest = spec->path + n + 1;
    }
    return *rest && !strchr(rest, ' ');
}

bool hq_cmd_is_group(const hq_cmd_spec_t *spec)
{
    for (size_t i = 0; hq_cmd_at(i); i++)
        if (s_is_child(spec, hq_cmd_at(i)))
            return true;
    return false;
}

const hq_cmd_spec_t *hq_cmd_child(const hq_cmd_spec_t *group, size_t idx)
{
    size_t k = 0;
    for (size_t i = 0; hq_cmd_at(i); i++) {
        const hq_cmd_spec_t *s = hq_cmd_at(i);
        if (!s->hidden && s_is_child(group, s) && k++ == idx)
            return s;
    }
    return NULL;
}

const hq_cmd_spec_t *hq_cmd_child_named(const hq_cmd_spec_t *group, const char *word)
{
    for (size_t i = 0; hq_cmd_at(i); i++) {
        const hq_cmd_spec_t *s = hq_cmd_at(i);
        if (s_is_child(group, s) && strcmp(hq_cmd_name(s), word) == 0)
            return s;
    }
    return NULL;
}

/* ---- parsing ---- */

static size_t s_nargs(const hq_cmd_spec_t *spec, size_t *required, bool *unlimited)
{
    size_t n = 0;
    *required = 0;
    *unlimited = false;
    for (const hq_pos_arg_t *p = spec->args; p && p->value_name; p++, n++) {
        if (!p->optional)
            *required = n + 1;
        if (p->multiple)
            *unlimited = true;
    }
    return n;
}

static void s_pos_display(const hq_pos_arg_t *p, hq_buf_t *b)
{
    hq_buf_printf(b, p->optional ? "[%s]" : "<%s>", p->value_name);
    if (p->multiple)
        hq_buf_printf(b, "...");
}

char *hq_cmd_usage(const hq_cmd_spec_t *spec)
{
    hq_buf_t b = {0};
    hq_buf_printf(&b, "hq%s%s", *spec->path ? " " : "", spec->path);
    if (hq_cmd_is_group(spec)) {
        /* A group may take arguments before its command word (output-log <DIR>). */
        hq_buf_printf(&b, " [OPTIONS]");
        for (const hq_pos_arg_t *p = spec->args; p && p->value_name; p++) {
            hq_buf_printf(&b, " ");
            s_pos_display(p, &b);
        }
        hq_buf_printf(&b, " <COMMAND>");
        return b.data;
    }
    hq_buf_printf(&b, " [OPTIONS]");
    for (const hq_opt_t *o = spec->opts; o && o->name; o++)
        if (o->required)
            hq_buf_printf(&b, " --%s <%s>", o->name, o->value_name);
    if (spec->trailing && spec->args && spec->args[0].value_name)
        hq_buf_printf(&b, " [--]");
    for (const hq_pos_arg_t *p = spec->args; p && p->value_name; p++) {
        hq_buf_printf(&b, " ");
        s_pos_display(p, &b);
    }
    return b.data;
}

/* Appends clap's error tail: the usage line and the pointer to --help. */
static void s_error_tail(const hq_cmd_spec_t *spec, hq_err_t *err, bool with_usage)
{
    char *usage = hq_cmd_usage(spec);
    hq_buf_t b = {0};
    hq_buf_printf(&b, "%s\n\n", err->text);
    if (with_usage)
        hq_buf_printf(&b, "Usage: %s\n\n", usage);
    hq_buf_printf(&b, "For more information, try '--help'.");
    hq_err_set(err, "%s", b.data);
    hq_buf_free(&b);
    free(usage);
}

hq_args_t *hq_cmd_parse(const hq_cmd_spec_t *spec, int argc, char **argv, hq_err_t *err)
{
    size_t required;
    bool unlimited;
    size_t n = s_nargs(spec, &required, &unlimited);
    int max_pos = unlimited ? -1 : (int)n;
    hq_args_t *a = hq_args_parse(spec->opts, argc, argv, max_pos, spec->trailing, spec->path, err);
    if (!a) {
        s_error_tail(spec, err, strstr(err->text, "unexpected argument") != NULL);
        return NULL;
    }
    bool missing = hq_args_npos(a) < required;
    for (const hq_opt_t *o = spec->opts; o && o->name; o++)
        if (o->required && !hq_args_get(a, o->name))
            missing = true;
    if (hq_args_help(a) || hq_args_has(a, "version") || !missing)
        return a;
    hq_buf_t b = {0};
    hq_buf_printf(&b, "error: the following required arguments were not provided:");
    for (const hq_opt_t *o = spec->opts; o && o->name; o++)
        if (o->required && !hq_args_get(a, o->name))
            hq_buf_printf(&b, "\n  --%s <%s>", o->name, o->value_name);
    size_t k = 0;
    for (const hq_pos_arg_t *p = spec->args; p && p->value_name; p++, k++) {
        if (k < hq_args_npos(a) || p->optional)
            continue;
        hq_buf_printf(&b, "\n  ");
        s_pos_display(p, &b);
    }
    hq_err_set(err, "%s", b.data);
    hq_buf_free(&b);
    s_error_tail(spec, err, true);
    hq_args_destroy(&a);
    return NULL;
}

/* ---- --help ---- */

char *hq_cmd_opt_display(const hq_opt_t *o, bool with_short)
{
    hq_buf_t b = {0};
    if (with_short && o->short_name)
        hq_buf_printf(&b, "-%c, ", o->short_name);
    else if (with_short)
        hq_buf_printf(&b, "    ");
    hq_buf_printf(&b, "--%s", o->name);
    if (o->kind != HQ_OPT_FLAG)
        hq_buf_printf(&b, " <%s>", o->value_name ? o->value_name : "VALUE");
    return b.data;
}

/* The help text with clap's bracketed notes: env, default, possible values. */
static char *s_opt_help(const char *help, const char *env, const char *def, const char *possible)
{
    hq_buf_t b = {0};
    hq_buf_printf(&b, "%s", help ? help : "");
    if (env)
        hq_buf_printf(&b, " [env: %s=]", env);
    if (def)
        hq_buf_printf(&b, " [default: %s]", def);
    if (possible)
        hq_buf_printf(&b, " [possible values: %s]", possible);
    return b.data;
}

static void s_row(FILE *out, const char *left, const char *right, int width)
{
    if (right && *right)
        fprintf(out, "  %-*s  %s\n", width, left, right);
    else
        fprintf(out, "  %s\n", left);
}

static int s_opts_width(const hq_opt_t *opts, int width)
{
    for (const hq_opt_t *o = opts; o && o->name; o++) {
        char *d = hq_cmd_opt_display(o, true);
        if ((int)strlen(d) > width)
            width = (int)strlen(d);
        free(d);
    }
    return width;
}

static void s_print_opts(FILE *out, const hq_opt_t *opts, int width)
{
    for (const hq_opt_t *o = opts; o && o->name; o++) {
        char *d = hq_cmd_opt_display(o, true);
        char *h = s_opt_help(o->help, o->env, o->default_value, o->possible);
        s_row(out, d, h, width);
        free(h);
        free(d);
    }
}

void hq_cmd_print_help(const hq_cmd_spec_t *spec, FILE *out)
{
    fprintf(out, "%s\n\n", spec->summary);
    if (spec->description)
        fprintf(out, "%s\n\n", spec->description);
    char *usage = hq_cmd_usage(spec);
    fprintf(out, "Usage: %s\n", usage);
    free(usage);
    bool group = hq_cmd_is_group(spec);
    int width = (int)strlen("-V, --version");
    if (group) {
        fprintf(out, "\nCommands:\n");
        int cw = 0;
        for (size_t i = 0; hq_cmd_child(spec, i); i++)
            if ((int)strlen(hq_cmd_name(hq_cmd_child(spec, i))) > cw)
                cw = (int)strlen(hq_cmd_name(hq_cmd_child(spec, i)));
        for (size_t i = 0; hq_cmd_child(spec, i); i++) {
            const hq_cmd_spec_t *c = hq_cmd_child(spec, i);
            s_row(out, hq_cmd_name(c), c->summary, cw);
        }
    }
    for (const hq_pos_arg_t *p = spec->args; p && p->value_name; p++) {
        hq_buf_t b = {0};
        s_pos_display(p, &b);
        if ((int)b.len > width)
            width = (int)b.len;
        hq_buf_free(&b);
    }
    width = s_opts_width(hq_global_opts, s_opts_width(spec->opts, width));
    if (spec->args && spec->args[0].value_name) {
        fprintf(out, "\nArguments:\n");
        for (const hq_pos_arg_t *p = spec->args; p && p->value_name; p++) {
            hq_buf_t b = {0};
            s_pos_display(p, &b);
            char *h = s_opt_help(p->help, NULL, NULL, p->possible);
            s_row(out, b.data, h, width);
            free(h);
            hq_buf_free(&b);
        }
    }
    fprintf(out, "\nOptions:\n");
    s_print_opts(out, spec->opts, width);
    s_row(out, "-h, --help", "Print help", width);
    if (!*spec->path)
        s_row(out, "-V, --version", "Print version", width);
    fprintf(out, "\nGlobal options:\n");
    s_print_opts(out, hq_global_opts, width);
}
