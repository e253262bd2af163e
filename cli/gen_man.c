/* Man pages generated from the command table: hq(1) with every command and the
 * global options, and one page per command group and for `hq submit`, each with
 * the commands' synopses, descriptions, arguments, options and examples. */
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "hq_util.h"

/* Whether a top-level entry gets a page of its own. */
static bool s_has_page(const hq_cmd_spec_t *s)
{
    return !*s->path ||
           (!s->hidden && !strchr(s->path, ' ') && (hq_cmd_is_group(s) || s->alias_of != NULL));
}

const hq_cmd_spec_t *hq_gen_man_page_at(size_t idx)
{
    size_t k = 0;
    for (size_t i = 0; hq_cmd_at(i); i++)
        if (s_has_page(hq_cmd_at(i)) && k++ == idx)
            return hq_cmd_at(i);
    return NULL;
}

const hq_cmd_spec_t *hq_gen_man_page_of(const hq_cmd_spec_t *spec)
{
    char first[64];
    size_t n = strcspn(spec->path, " ");
    snprintf(first, sizeof first, "%.*s", (int)(n < 63 ? n : 63), spec->path);
    const hq_cmd_spec_t *top = hq_cmd_find(first);
    return top && s_has_page(top) ? top : hq_cmd_find("");
}

/* Text with roff's special characters escaped: backslashes, '-' (so that options
 * copy and paste as ASCII hyphens) and a leading '.' or '\''. */
static void s_text(FILE *out, const char *text)
{
    bool bol = true;
    for (const char *p = text; *p; p++) {
        if (bol && (*p == '.' || *p == '\''))
            fputs("\\&", out);
        bol = *p == '\n';
        if (*p == '\\')
            fputs("\\e", out);
        else if (*p == '-')
            fputs("\\-", out);
        else
            fputc(*p, out);
    }
}

/* The help line, ending in a period, then one sentence per note. */
static void s_help(FILE *out, const char *help)
{
    size_t n = help ? strlen(help) : 0;
    s_text(out, help ? help : "");
    if (n > 0 && help[n - 1] != '.')
        fputc('.', out);
}

static void s_opts(FILE *out, const hq_opt_t *opts)
{
    for (const hq_opt_t *o = opts; o && o->name; o++) {
        fputs(".TP\n\\fB", out);
        if (o->short_name)
            fprintf(out, "\\-%c\\fR, \\fB", o->short_name);
        fputs("\\-\\-", out);
        s_text(out, o->name);
        fputs("\\fR", out);
        if (o->kind != HQ_OPT_FLAG) {
            fputs(" \\fI", out);
            s_text(out, o->value_name);
            fputs("\\fR", out);
        }
        fputc('\n', out);
        s_help(out, o->help);
        if (o->required)
            fputs(" Required.", out);
        if (o->kind == HQ_OPT_MULTI)
            fputs(" May be given more than once.", out);
        if (o->env) {
            fputs(" Environment variable: \\fB", out);
            s_text(out, o->env);
            fputs("\\fR.", out);
        }
        if (o->default_value) {
            fputs(" Default: ", out);
            s_text(out, o->default_value);
            fputc('.', out);
        }
        if (o->possible) {
            fputs(" Possible values: ", out);
            s_text(out, o->possible);
            fputc('.', out);
        }
        fputc('\n', out);
    }
}

static void s_args(FILE *out, const hq_pos_arg_t *args)
{
    for (const hq_pos_arg_t *a = args; a && a->value_name; a++) {
        fputs(".TP\n\\fI", out);
        s_text(out, a->value_name);
        fputs(a->multiple ? "\\fR...\n" : "\\fR\n", out);
        s_help(out, a->help);
        if (a->possible) {
            fputs(" Possible values: ", out);
            s_text(out, a->possible);
            fputc('.', out);
        }
        fputc('\n', out);
    }
}

static void s_synopsis(FILE *out, const hq_cmd_spec_t *s)
{
    char *usage = hq_cmd_usage(s);
    fputs(".PP\n\\fB", out);
    size_t n = strlen(s->path) + (*s->path ? 3 : 2);
    fprintf(out, "%.*s", (int)n, usage);
    fputs("\\fR", out);
    s_text(out, usage + n);
    fputc('\n', out);
    free(usage);
}

/* Examples are lines "$ command" each followed by what it does. */
static void s_examples(FILE *out, const char *examples)
{
    const char *p = examples;
    while (*p) {
        size_t n = strcspn(p, "\n");
        char *line = hq_asprintf("%.*s", (int)n, p);
        if (line[0] == '$') {
            fputs(".PP\n.nf\n.RS 4\n", out);
            s_text(out, line);
            fputs("\n.RE\n.fi\n", out);
        } else {
            fputs(".PP\n", out);
            s_text(out, line);
            fputc('\n', out);
        }
        free(line);
        p += n;
        if (*p)
            p++;
    }
}

/* One command inside a group page or hq(1): synopsis, text, arguments, options. */
static void s_command(FILE *out, const hq_cmd_spec_t *s)
{
    fputs(".SS \"hq ", out);
    s_text(out, s->path);
    fputs("\"\n", out);
    s_synopsis(out, s);
    fputs(".PP\n", out);
    s_text(out, s->summary);
    fputs(".\n", out);
    if (s->description) {
        fputs(".PP\n", out);
        s_text(out, s->description);
        fputc('\n', out);
    }
    if (s->alias_of) {
        fputs(".PP\nThe same command as \\fBhq ", out);
        s_text(out, s->alias_of);
        fputs("\\fR.\n", out);
    }
    s_args(out, s->args);
    s_opts(out, s->opts);
    if (s->examples && hq_gen_man_page_of(s) != s) {
        fputs(".PP\nExamples:\n", out);
        s_examples(out, s->examples);
    }
}

void hq_gen_man(const hq_cmd_spec_t *page, FILE *out)
{
    bool root = !*page->path;
    char *title = root ? hq_strdup("HQ") : hq_asprintf("HQ-%s", page->path);
    for (char *p = title; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    fprintf(out, ".\\\" Generated by `hq generate-man` from hq's command table; do not edit.\n");
    fprintf(out, ".TH \"");
    s_text(out, title);
    fprintf(out, "\" 1 \"\" \"hq %s\" \"hq manual\"\n", HQ_VERSION);
    free(title);
    fputs(".SH NAME\n", out);
    fputs(root ? "hq" : "hq\\-", out);
    s_text(out, page->path);
    fputs(" \\- ", out);
    s_text(out, page->summary);
    fputs("\n.SH SYNOPSIS\n", out);
    s_synopsis(out, page);
    if (page->description) {
        fputs(".SH DESCRIPTION\n", out);
        s_text(out, page->description);
        fputc('\n', out);
    }
    if (page->alias_of) {
        fputs(".PP\nThe same command as \\fBhq ", out);
        s_text(out, page->alias_of);
        fputs("\\fR.\n", out);
    }
    if (page->args && page->args[0].value_name) {
        fputs(".SH ARGUMENTS\n", out);
        s_args(out, page->args);
    }
    if (page->opts && page->opts[0].name) {
        fputs(".SH OPTIONS\n", out);
        s_opts(out, page->opts);
    }
    if (hq_cmd_is_group(page)) {
        fputs(".SH COMMANDS\n", out);
        for (size_t i = 0; hq_cmd_at(i); i++) {
            const hq_cmd_spec_t *s = hq_cmd_at(i);
            if (s == page || s->hidden)
                continue;
            /* hq(1) describes the commands without a page of their own. */
            if (root ? (s_has_page(s) || strchr(s->path, ' ')) : hq_gen_man_page_of(s) != page)
                continue;
            s_command(out, s);
        }
        if (root) {
            fputs(".PP\nCommand groups, each with its own page:\n", out);
            for (size_t i = 1; hq_gen_man_page_at(i); i++) {
                const hq_cmd_spec_t *s = hq_gen_man_page_at(i);
                fputs(".TP\n\\fBhq ", out);
                s_text(out, s->path);
                fputs("\\fR\n", out);
                s_text(out, s->summary);
                fputs(" (\\fBhq\\-", out);
                s_text(out, s->path);
                fputs("\\fR(1))\n", out);
            }
        }
    }
    fputs(".SH GLOBAL OPTIONS\nEvery command accepts these, before or after its name.\n", out);
    s_opts(out, hq_global_opts);
    if (page->examples) {
        fputs(".SH EXAMPLES\n", out);
        s_examples(out, page->examples);
    }
    fputs(".SH EXIT STATUS\n0 on success, 1 on an error of hq (printed on stderr), 2 on a "
          "command\\-line error.\n",
          out);
    fputs(".SH SEE ALSO\n", out);
    bool first = true;
    for (size_t i = 0; hq_gen_man_page_at(i); i++) {
        const hq_cmd_spec_t *s = hq_gen_man_page_at(i);
        if (s == page)
            continue;
        fprintf(out, "%s\\fBhq%s", first ? "" : ",\n", *s->path ? "\\-" : "");
        s_text(out, s->path);
        fputs("\\fR(1)", out);
        first = false;
    }
    fputs("\n.PP\n\\fBhq doc\\fR \\fITOPIC\\fR names the section of hq's command\\-line reference "
          "that describes a topic.\n",
          out);
}
