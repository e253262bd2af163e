/* The command table (hq_cmdtable.h) and what is generated from it: the table is
 * consistent (every command has an entry point, every option a value name), usage
 * lines show positionals, parsing reports missing arguments with the usage line,
 * typos get tips, and --help, completion scripts and man pages come from it. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gen.h"
#include "hq_cmdtable.h"

/* What fn printed into a memory stream. */
static char *s_capture(void (*fn)(const void *arg, FILE *out), const void *arg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    fn(arg, f);
    fclose(f);
    return text;
}

Test(cmdtable, every_command_has_an_entry_point_and_every_group_a_parent)
{
    for (size_t i = 0; hq_cmd_at(i); i++) {
        const hq_cmd_spec_t *s = hq_cmd_at(i);
        cr_assert(s->summary && *s->summary, "'%s' has no summary", s->path);
        if (!hq_cmd_is_group(s))
            cr_assert_not_null(hq_cli_handler(s->path), "'%s' has no entry point", s->path);
        if (*s->path) {
            char parent[128];
            snprintf(parent, sizeof parent, "%s", s->path);
            char *sp = strrchr(parent, ' ');
            *(sp ? sp : parent) = '\0';
            cr_assert_not_null(hq_cmd_find(parent), "'%s' has no parent", s->path);
        }
        if (s->alias_of)
            cr_assert_eq(hq_cmd_find(s->alias_of)->opts, s->opts, "alias '%s' drifts", s->path);
    }
}

Test(cmdtable, options_have_value_names_and_no_duplicates)
{
    for (size_t i = 0; hq_cmd_at(i); i++) {
        const hq_cmd_spec_t *s = hq_cmd_at(i);
        for (const hq_opt_t *o = s->opts; o && o->name; o++) {
            cr_assert(o->kind == HQ_OPT_FLAG || o->value_name, "--%s of '%s'", o->name, s->path);
            cr_assert(o->help && *o->help, "--%s of '%s' has no help", o->name, s->path);
            for (const hq_opt_t *p = o + 1; p->name; p++)
                cr_assert_str_neq(o->name, p->name, "'%s' has --%s twice", s->path, o->name);
            for (const hq_opt_t *g = hq_global_opts; g->name; g++)
                cr_assert_str_neq(o->name, g->name, "'%s' shadows --%s", s->path, g->name);
        }
    }
}

Test(cmdtable, usage_lines_show_positional_arguments)
{
    char *u = hq_cmd_usage(hq_cmd_find("job cat"));
    cr_assert_str_eq(u, "hq job cat [OPTIONS] <SELECTOR> <stdout|stderr>");
    free(u);
    u = hq_cmd_usage(hq_cmd_find("submit"));
    cr_assert_str_eq(u, "hq submit [OPTIONS] [--] <COMMANDS>...");
    free(u);
    u = hq_cmd_usage(hq_cmd_find("job"));
    cr_assert_str_eq(u, "hq job [OPTIONS] <COMMAND>");
    free(u);
    u = hq_cmd_usage(hq_cmd_find("server generate-access"));
    cr_assert_str_eq(u, "hq server generate-access [OPTIONS] --client-port <CLIENT_PORT> "
                        "--worker-port <WORKER_PORT> <FILE>");
    free(u);
    u = hq_cmd_usage(hq_cmd_find("doc"));
    cr_assert_str_eq(u, "hq doc [OPTIONS] [TOPIC]...");
    free(u);
}

Test(cmdtable, a_missing_argument_prints_the_usage_line)
{
    hq_err_t err;
    char *argv[] = {"1"};
    cr_assert_null(hq_cmd_parse(hq_cmd_find("job cat"), 1, argv, &err));
    cr_assert_str_eq(err.text, "error: the following required arguments were not provided:\n"
                               "  <stdout|stderr>\n\n"
                               "Usage: hq job cat [OPTIONS] <SELECTOR> <stdout|stderr>\n\n"
                               "For more information, try '--help'.");
    char *access[] = {"a.json", "--client-port", "1"};
    cr_assert_null(hq_cmd_parse(hq_cmd_find("server generate-access"), 3, access, &err));
    cr_assert(strstr(err.text, "not provided:\n  --worker-port <WORKER_PORT>\n\nUsage: hq "
                               "server generate-access [OPTIONS] --client-port"),
              "%s", err.text);
    /* --help needs no positionals. */
    char *help[] = {"--help"};
    hq_args_t *a = hq_cmd_parse(hq_cmd_find("job cat"), 1, help, &err);
    cr_assert_not_null(a);
    cr_assert(hq_args_help(a));
    hq_args_destroy(&a);
}

Test(cmdtable, an_unknown_option_gets_a_tip_and_the_usage)
{
    hq_err_t err;
    char *argv[] = {"--fliter", "running"};
    cr_assert_null(hq_cmd_parse(hq_cmd_find("worker list"), 2, argv, &err));
    cr_assert_str_eq(err.text, "error: unexpected argument '--fliter' found\n\n"
                               "  tip: a similar argument exists: '--filter'\n\n"
                               "Usage: hq worker list [OPTIONS]\n\n"
                               "For more information, try '--help'.");
}

Test(cmdtable, similar_words_by_edit_distance)
{
    const char *subs[] = {"list", "summary", "info", "cancel", "cat"};
    cr_assert_str_eq(hq_args_similar("lsit", subs, 5), "list");
    cr_assert_str_eq(hq_args_similar("lis", subs, 5), "list");
    cr_assert_str_eq(hq_args_similar("cancle", subs, 5), "cancel");
    cr_assert_null(hq_args_similar("frobnicate", subs, 5));
    cr_assert_null(hq_args_similar("list", subs, 5)); /* an exact match is no typo */
}

static void s_help(const void *path, FILE *out)
{
    hq_cmd_print_help(hq_cmd_find(path), out);
}

Test(cmdtable, help_has_arguments_value_names_and_defaults)
{
    char *h = s_capture(s_help, "job cat");
    cr_assert(strstr(h, "Usage: hq job cat [OPTIONS] <SELECTOR> <stdout|stderr>\n"), "%s", h);
    cr_assert(strstr(h, "\nArguments:\n  <SELECTOR>"), "%s", h);
    cr_assert(strstr(h, "[possible values: stdout, stderr]"), "%s", h);
    cr_assert(strstr(h, "      --tasks <TASKS>"), "%s", h);
    free(h);
    h = s_capture(s_help, "submit");
    cr_assert(strstr(h, "--crash-limit <CRASH_LIMIT>"), "%s", h);
    cr_assert(strstr(h, "[default: 5]"), "%s", h);
    cr_assert(strstr(h, "[env: HQ_OUTPUT_MODE=] [default: cli] [possible values: cli, json, "
                        "quiet]"),
              "%s", h);
    free(h);
    h = s_capture(s_help, "job");
    cr_assert(strstr(h, "\nCommands:\n  list "), "%s", h);
    free(h);
}

static void s_bash(const void *shell, FILE *out)
{
    hq_gen_completion(shell, out);
}

Test(cmdtable, completion_scripts_come_from_the_table)
{
    char *b = s_capture(s_bash, "bash");
    cr_assert(strstr(b, "\"job cat|1\") echo \"stdout stderr\""), "%s", b);
    cr_assert(strstr(b, "complete -F _hq"));
    free(b);
    char *f = s_capture(s_bash, "fish");
    cr_assert(strstr(f, "complete -c hq -n '__hq_at \"job\"' -f -a list"), "%s", f);
    free(f);
    static const char *const shells[] = {"zsh", "elvish", "powershell"};
    for (size_t i = 0; i < 3; i++) {
        char *s = s_capture(s_bash, shells[i]);
        cr_assert(strstr(s, "submit-file"), "%s has no submit-file", shells[i]);
        free(s);
    }
    FILE *null = fopen("/dev/null", "w");
    cr_assert_eq(hq_gen_completion("tcsh", null), -1);
    fclose(null);
}

static void s_man(const void *path, FILE *out)
{
    hq_gen_man(hq_cmd_find(path), out);
}

Test(cmdtable, man_pages_one_per_group_with_examples)
{
    size_t n = 0;
    while (hq_gen_man_page_at(n))
        n++;
    cr_assert_eq(n, 9); /* hq, submit, job, task, output-log, server, worker, alloc, journal */
    cr_assert_eq(hq_gen_man_page_of(hq_cmd_find("job cat")), hq_cmd_find("job"));
    cr_assert_eq(hq_gen_man_page_of(hq_cmd_find("doc")), hq_cmd_find(""));
    char *m = s_capture(s_man, "job");
    cr_assert(strstr(m, ".TH \"HQ\\-JOB\" 1"), "%s", m);
    cr_assert(strstr(m, ".SH NAME\nhq\\-job \\- "), "%s", m);
    cr_assert(strstr(m, ".SS \"hq job cat\""), "%s", m);
    cr_assert(strstr(m, ".SH EXAMPLES"), "%s", m);
    free(m);
}
