/* Tests for hq_args: clap-style parsing, error wording and the global flags. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hq_args.h"

static const hq_opt_t opts[] = {
    {"time-limit", 't', HQ_OPT_VALUE, "TIME_LIMIT", "time limit", NULL, NULL, NULL, false},
    {"env", 0, HQ_OPT_MULTI, "ENV", "env var", NULL, NULL, NULL, false},
    {"verbose", 'v', HQ_OPT_FLAG, NULL, "verbose", NULL, NULL, NULL, false},
    {"all", 'a', HQ_OPT_FLAG, NULL, "all", NULL, NULL, NULL, false},
    {"name", 0, HQ_OPT_VALUE, NULL, "name", NULL, NULL, NULL, false},
    {NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, false},
};

static hq_args_t *s_parse(int max_pos, bool trailing, hq_err_t *err, const char **words)
{
    int argc = 0;
    while (words[argc])
        argc++;
    return hq_args_parse(opts, argc, (char **)words, max_pos, trailing, "hq test", err);
}

#define PARSE(maxp, trail, err, ...) s_parse(maxp, trail, err, (const char *[]){__VA_ARGS__, NULL})

Test(args, parses_long_value_with_space_and_equals)
{
    hq_err_t err;
    hq_args_t *a = PARSE(0, false, &err, "--time-limit", "1h", "--name=x=y");
    cr_assert_not_null(a, "%s", err.text);
    cr_assert_str_eq(hq_args_get(a, "time-limit"), "1h");
    cr_assert_str_eq(hq_args_get(a, "name"), "x=y");
    cr_assert(!hq_args_has(a, "verbose"));
    hq_args_destroy(&a);
    cr_assert_null(a);
}

Test(args, last_value_wins_and_multi_keeps_all)
{
    hq_err_t err;
    hq_args_t *a = PARSE(0, false, &err, "--name", "a", "--env", "A=1", "--name", "b", "--env=B=2");
    cr_assert_not_null(a);
    cr_assert_str_eq(hq_args_get(a, "name"), "b");
    cr_assert_eq(hq_args_count(a, "env"), 2);
    cr_assert_str_eq(hq_args_at(a, "env", 0), "A=1");
    cr_assert_str_eq(hq_args_at(a, "env", 1), "B=2");
    cr_assert_null(hq_args_at(a, "env", 2));
    hq_args_destroy(&a);
}

Test(args, short_flags_and_values)
{
    hq_err_t err;
    hq_args_t *a = PARSE(0, false, &err, "-va", "-t", "5s");
    cr_assert_not_null(a, "%s", err.text);
    cr_assert(hq_args_has(a, "verbose"));
    cr_assert(hq_args_has(a, "all"));
    cr_assert_str_eq(hq_args_get(a, "time-limit"), "5s");
    hq_args_destroy(&a);
    a = PARSE(0, false, &err, "-t10m");
    cr_assert_str_eq(hq_args_get(a, "time-limit"), "10m");
    hq_args_destroy(&a);
}

Test(args, unknown_long_flag_is_unexpected_argument)
{
    hq_err_t err;
    cr_assert_null(PARSE(-1, false, &err, "--foo"));
    cr_assert_str_eq(err.text, "error: unexpected argument '--foo' found");
    cr_assert_null(PARSE(-1, false, &err, "--foo=3"));
    cr_assert_str_eq(err.text, "error: unexpected argument '--foo' found");
    cr_assert_null(PARSE(-1, false, &err, "-x"));
    cr_assert_str_eq(err.text, "error: unexpected argument '-x' found");
}

Test(args, missing_value_names_the_flag_and_value_name)
{
    hq_err_t err;
    cr_assert_null(PARSE(-1, false, &err, "--time-limit"));
    cr_assert_str_eq(
        err.text,
        "error: a value is required for '--time-limit <TIME_LIMIT>' but none was supplied");
    cr_assert_null(PARSE(-1, false, &err, "--name", "--verbose"));
    cr_assert_str_eq(err.text,
                     "error: a value is required for '--name <NAME>' but none was supplied");
}

Test(args, too_many_positionals_are_unexpected)
{
    hq_err_t err;
    cr_assert_null(PARSE(1, false, &err, "a", "x"));
    cr_assert_str_eq(err.text, "error: unexpected argument 'x' found");
    hq_args_t *a = PARSE(1, false, &err, "a");
    cr_assert_eq(hq_args_npos(a), 1);
    cr_assert_str_eq(hq_args_pos(a, 0), "a");
    cr_assert_null(hq_args_pos(a, 1));
    hq_args_destroy(&a);
}

Test(args, flags_may_follow_positionals_without_trailing_mode)
{
    hq_err_t err;
    hq_args_t *a = PARSE(-1, false, &err, "1-3", "--verbose", "last");
    cr_assert_not_null(a);
    cr_assert_eq(hq_args_npos(a), 2);
    cr_assert(hq_args_has(a, "verbose"));
    hq_args_destroy(&a);
}

Test(args, trailing_mode_keeps_command_verbatim)
{
    hq_err_t err;
    hq_args_t *a = PARSE(-1, true, &err, "--name", "x", "sleep", "--verbose", "-t", "1");
    cr_assert_not_null(a, "%s", err.text);
    cr_assert(!hq_args_has(a, "verbose"));
    cr_assert_eq(hq_args_npos(a), 4);
    cr_assert_str_eq(hq_args_pos(a, 0), "sleep");
    cr_assert_str_eq(hq_args_pos(a, 1), "--verbose");
    cr_assert_str_eq(hq_args_pos(a, 3), "1");
    hq_args_destroy(&a);
}

Test(args, double_dash_starts_trailing_command)
{
    hq_err_t err;
    hq_args_t *a = PARSE(-1, true, &err, "-v", "--", "--foo", "bar");
    cr_assert_not_null(a);
    cr_assert(hq_args_has(a, "verbose"));
    cr_assert_eq(hq_args_npos(a), 2);
    cr_assert_str_eq(hq_args_pos(a, 0), "--foo");
    hq_args_destroy(&a);
}

Test(args, global_flags_accepted_anywhere)
{
    hq_err_t err;
    hq_args_t *a = PARSE(-1, false, &err, "--output-mode", "json", "x", "--debug", "--colors=never",
                         "--server-dir", "/tmp/sd");
    cr_assert_not_null(a, "%s", err.text);
    cr_assert_str_eq(hq_args_get(a, "output-mode"), "json");
    cr_assert(hq_args_has(a, "debug"));
    hq_args_destroy(&a);
}

Test(args, help_is_detected)
{
    hq_err_t err;
    hq_args_t *a = PARSE(0, false, &err, "--help");
    cr_assert(hq_args_help(a));
    hq_args_destroy(&a);
    a = PARSE(0, false, &err, "-h");
    cr_assert(hq_args_help(a));
    hq_args_destroy(&a);
}

Test(args, invalid_value_error_format)
{
    hq_err_t err;
    cr_assert_eq(hq_args_invalid_value(&err, opts, "time-limit", "xx", "bad"), -1);
    cr_assert_str_eq(err.text, "error: invalid value 'xx' for '--time-limit <TIME_LIMIT>': bad");
    hq_args_invalid_value(&err, opts, "--name", "q", "d");
    cr_assert_str_eq(err.text, "error: invalid value 'q' for '--name <NAME>': d");
}

Test(args, global_defaults)
{
    unsetenv("HQ_SERVER_DIR");
    unsetenv("HQ_OUTPUT_MODE");
    unsetenv("HQ_DEBUG");
    setenv("HOME", "/home/someone", 1);
    hq_err_t err;
    hq_args_t *a = PARSE(-1, false, &err, "x");
    hq_global_t g;
    cr_assert_eq(hq_global_from_args(a, &g, &err), 0);
    cr_assert_str_eq(g.server_dir, "/home/someone/.hq-server");
    cr_assert(!g.server_dir_given);
    cr_assert_eq(g.output, HQ_OUTPUT_CLI);
    cr_assert_eq(g.colors, HQ_COLORS_AUTO);
    cr_assert(!g.debug);
    hq_global_clear(&g);
    hq_args_destroy(&a);
}

Test(args, global_from_flags_and_env)
{
    setenv("HQ_OUTPUT_MODE", "quiet", 1);
    setenv("HQ_DEBUG", "1", 1);
    setenv("HQ_SERVER_DIR", "/env/dir", 1);
    hq_err_t err;
    hq_args_t *a = PARSE(-1, false, &err, "--colors", "always");
    hq_global_t g;
    cr_assert_eq(hq_global_from_args(a, &g, &err), 0);
    cr_assert_eq(g.output, HQ_OUTPUT_QUIET);
    cr_assert_eq(g.colors, HQ_COLORS_ALWAYS);
    cr_assert(g.debug);
    cr_assert_str_eq(g.server_dir, "/env/dir");
    cr_assert(g.server_dir_given);
    hq_global_clear(&g);
    hq_args_destroy(&a);

    cr_assert_eq(chdir("/tmp"), 0);
    a = PARSE(-1, false, &err, "--server-dir", "rel", "--output-mode", "json");
    cr_assert_eq(hq_global_from_args(a, &g, &err), 0);
    cr_assert_str_eq(g.server_dir, "/tmp/rel");
    cr_assert_eq(g.output, HQ_OUTPUT_JSON);
    hq_global_clear(&g);
    hq_args_destroy(&a);
}

Test(args, bad_output_mode_is_invalid_value)
{
    unsetenv("HQ_OUTPUT_MODE");
    hq_err_t err;
    hq_args_t *a = PARSE(-1, false, &err, "--output-mode", "xml");
    hq_global_t g;
    cr_assert_eq(hq_global_from_args(a, &g, &err), -1);
    cr_assert(
        strncmp(err.text, "error: invalid value 'xml' for '--output-mode <OUTPUT_MODE>'", 60) == 0,
        "%s", err.text);
    cr_assert(strstr(err.text, "[possible values: cli, json, quiet]"));
    hq_args_destroy(&a);
}
