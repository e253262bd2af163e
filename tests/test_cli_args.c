/* hq's command-line handling: exit-2 texts of value errors (raised before any
 * connection is made), and the pure submit helpers. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "submit_args.h"

static void s_setup(void)
{
    cr_redirect_stderr();
    cr_redirect_stdout();
    setenv("HQ_SERVER_DIR", "/nonexistent/hq-test-dir", 1);
}

Test(cli_args, rejects_a_cancel_reason_over_200_bytes, .init = s_setup)
{
    char reason[202];
    memset(reason, 'r', 201);
    reason[201] = '\0';
    char *argv[] = {"1", "--reason", reason};
    cr_assert_eq(hq_cmd_job_cancel(3, argv), 2);
    fflush(stderr);
    char expected[512];
    snprintf(expected, sizeof expected,
             "error: invalid value '%s' for '--reason <REASON>': Cancel reason must be shorter "
             "than 200 you entered 201.\n",
             reason);
    cr_assert_stderr_eq_str(expected);
}

Test(cli_args, rejects_crash_limit_zero, .init = s_setup)
{
    char *argv[] = {"--crash-limit", "0", "--", "echo", "hi"};
    cr_assert_eq(hq_cmd_submit(5, argv), 2);
    fflush(stderr);
    cr_assert_stderr_eq_str("error: invalid value '0' for '--crash-limit <CRASH_LIMIT>': Crash "
                            "limit cannot be 0. Use `never-restart` or `unlimited` instead.\n");
}

Test(cli_args, rejects_a_name_with_a_tab, .init = s_setup)
{
    char *argv[] = {"--name", "a\tb", "echo"};
    cr_assert_eq(hq_cmd_submit(3, argv), 2);
    fflush(stderr);
    cr_assert_stderr_eq_str("error: invalid value 'a\tb' for '--name <NAME>': name cannot have a "
                            "newline or a tab\n");
}

Test(cli_args, rejects_a_bad_time_limit, .init = s_setup)
{
    char *argv[] = {"--time-limit", "abc", "echo"};
    cr_assert_eq(hq_cmd_submit(3, argv), 2);
    fflush(stderr);
    /* The detail is the duration parser's; the frame is clap's. */
    FILE *f = cr_get_redirected_stderr();
    char buf[1024] = {0};
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    cr_assert(strncmp(buf, "error: invalid value 'abc' for '--time-limit <TIME_LIMIT>': ", 60) == 0,
              "got: %s", buf);
}

Test(cli_args, requires_a_command_for_submit, .init = s_setup)
{
    char *argv[] = {"--cpus", "2"};
    cr_assert_eq(hq_cmd_submit(2, argv), 2);
}

Test(cli_args, rejects_an_invalid_job_selector, .init = s_setup)
{
    char *argv[] = {"5-1"};
    cr_assert_eq(hq_cmd_job_info(1, argv), 2);
}

Test(cli_args, rejects_stdin_directives_without_stdin, .init = s_setup)
{
    char *argv[] = {"--directives", "stdin", "echo"};
    cr_assert_eq(hq_cmd_submit(3, argv), 1);
    fflush(stderr);
    cr_assert_stderr_eq_str("You have to use `--stdin` when you specify `--directives=stdin`.\n");
}

Test(cli_args, reports_a_missing_server_with_the_hint, .init = s_setup)
{
    char dir[] = "/tmp/hq-test-dir-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char *argv[] = {"--server-dir", dir};
    cr_assert_eq(hq_cmd_server_info(2, argv), 1);
    fflush(stderr);
    char expected[1024];
    snprintf(expected, sizeof expected,
             "No running instance of HQ found at \"%s\".\n"
             "Try to start the server: `hq server start --server-dir %s` or use a different "
             "server directory.\n\nCaused by:\n    No such file or directory (os error 2)\n",
             dir, dir);
    cr_assert_stderr_eq_str(expected);
    rmdir(dir);
}

Test(cli_args, reports_an_invalid_server_directory, .init = s_setup)
{
    char *argv[] = {"--server-dir", "/nonexistent/hq-test-dir", "--output-mode", "json"};
    cr_assert_eq(hq_cmd_job_list(4, argv), 1);
    fflush(stdout);
    cr_assert_stdout_eq_str("{\n  \"error\": \"Invalid server directory\\n\\nCaused by:\\n    "
                            "\\\"/nonexistent/hq-test-dir\\\" is not a directory\"\n}\n");
}

Test(submit_args, parses_stdio_specs)
{
    hq_stdio_t s;
    hq_err_t err;
    cr_assert_eq(hq_submit_parse_stdio("none", "D", &s, &err), 0);
    cr_assert_eq(s.kind, HQ_STDIO_NONE);
    cr_assert_eq(hq_submit_parse_stdio(" out.txt ", "D", &s, &err), 0);
    cr_assert_eq(s.kind, HQ_STDIO_FILE);
    cr_assert_str_eq(s.path, "out.txt");
    cr_assert_not(s.rm_if_finished);
    free(s.path);
    cr_assert_eq(hq_submit_parse_stdio("o.txt:rm-if-finished", "D", &s, &err), 0);
    cr_assert_str_eq(s.path, "o.txt");
    cr_assert(s.rm_if_finished);
    free(s.path);
    cr_assert_eq(hq_submit_parse_stdio(":rm-if-finished", "D", &s, &err), 0);
    cr_assert_str_eq(s.path, "D");
    cr_assert(s.rm_if_finished);
    free(s.path);
    cr_assert_eq(hq_submit_parse_stdio("  ", "D", &s, &err), -1);
    cr_assert(strncmp(err.text, "Cannot parse stream: ", 21) == 0);
    cr_assert_eq(hq_submit_parse_stdio("a:b", "D", &s, &err), -1);
}

Test(submit_args, parses_crash_limits)
{
    enum hq_crash_kind k;
    uint32_t n;
    hq_err_t err;
    cr_assert_eq(hq_submit_parse_crash_limit("3", &k, &n, &err), 0);
    cr_assert_eq(k, HQ_CRASH_LIMIT);
    cr_assert_eq(n, 3);
    cr_assert_eq(hq_submit_parse_crash_limit("never-restart", &k, &n, &err), 0);
    cr_assert_eq(k, HQ_CRASH_NEVER_RESTART);
    cr_assert_eq(hq_submit_parse_crash_limit("unlimited", &k, &n, &err), 0);
    cr_assert_eq(k, HQ_CRASH_UNLIMITED);
    cr_assert_eq(hq_submit_parse_crash_limit("0", &k, &n, &err), -1);
    cr_assert_str_eq(err.text,
                     "Crash limit cannot be 0. Use `never-restart` or `unlimited` instead.");
    cr_assert_eq(hq_submit_parse_crash_limit("-1", &k, &n, &err), -1);
}

Test(submit_args, builds_sorted_env_with_last_duplicate_winning)
{
    const char *items[] = {"B=2", "A", "B=3", "C=x=y"};
    hq_kv_t *env;
    uint32_t n;
    bool dups;
    hq_err_t err;
    cr_assert_eq(hq_submit_build_env(items, 4, &env, &n, &dups, &err), 0);
    cr_assert(dups);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(env[0].key, "A");
    cr_assert_str_eq(env[0].value, "");
    cr_assert_str_eq(env[1].key, "B");
    cr_assert_str_eq(env[1].value, "3");
    cr_assert_str_eq(env[2].value, "x=y");
    hq_submit_free_env(env, n);
    const char *bad[] = {"=v"};
    cr_assert_eq(hq_submit_build_env(bad, 1, &env, &n, &dups, &err), -1);
    cr_assert_str_eq(err.text, "Environment variable cannot be empty");
}

Test(submit_args, scans_directives_and_shebang)
{
    const char *script = "#!/bin/bash -l\n"
                         "# a comment\n"
                         "\n"
                         "  #HQ --cpus 2 --name \"my job\"\n"
                         "#HQ --env A=1\n"
                         "echo hi\n"
                         "#HQ --priority 5\n";
    char **args, **shebang;
    int nargs, nshebang;
    hq_err_t err;
    cr_assert_eq(
        hq_submit_scan_directives(script, strlen(script), &args, &nargs, &shebang, &nshebang, &err),
        0);
    cr_assert_eq(nargs, 6);
    cr_assert_str_eq(args[3], "my job");
    cr_assert_str_eq(args[5], "A=1");
    cr_assert_eq(nshebang, 2);
    cr_assert_str_eq(shebang[0], "/bin/bash");
    cr_assert_str_eq(shebang[1], "-l");
    hq_submit_free_words(args);
    hq_submit_free_words(shebang);
}

Test(submit_args, splits_lines_dropping_the_final_empty_piece)
{
    hq_bytes_t *e;
    uint32_t n;
    cr_assert_eq(hq_submit_split_lines("a\n\nb\n", 5, &e, &n), 0);
    cr_assert_eq(n, 3);
    cr_assert_eq(e[1].len, 0);
    cr_assert_str_eq((char *)e[2].data, "b");
    hq_submit_free_entries(e, n);
    cr_assert_eq(hq_submit_split_lines("x", 1, &e, &n), 0);
    cr_assert_eq(n, 1);
    hq_submit_free_entries(e, n);
}

Test(submit_args, reserializes_json_entries_compactly)
{
    char path[] = "/tmp/hq-test-json-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    const char *text = "[{\"b\": 1, \"a\": [1, 2]}, \"s\", 3]";
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    hq_bytes_t *e;
    uint32_t n;
    hq_err_t err;
    cr_assert_eq(hq_submit_json_entries(path, &e, &n, &err), 0);
    cr_assert_eq(n, 3);
    cr_assert_str_eq((char *)e[0].data, "{\"a\":[1,2],\"b\":1}");
    cr_assert_str_eq((char *)e[1].data, "\"s\"");
    hq_submit_free_entries(e, n);
    FILE *f = fopen(path, "w");
    fputs("{\"a\": 1}", f);
    fclose(f);
    cr_assert_eq(hq_submit_json_entries(path, &e, &n, &err), -1);
    char expected[256];
    snprintf(expected, sizeof expected,
             "%s: The top element of the provided JSON file has to be an array", path);
    cr_assert_str_eq(err.text, expected);
    unlink(path);
}

Test(submit_args, clips_array_ids_to_the_entry_count)
{
    hq_rangelist_t rl, out;
    hq_err_t err;
    cr_assert_eq(hq_rangelist_parse("1,3-20:4,50", &rl, &err), 0);
    hq_submit_clip_ids(&rl, 10, &out);
    cr_assert_eq(hq_rangelist_count(&out), 3); /* 1, 3, 7 */
    cr_assert(hq_rangelist_contains(&out, 7));
    cr_assert_not(hq_rangelist_contains(&out, 11));
    cr_assert_not(hq_rangelist_contains(&out, 50));
    hq_rangelist_clear(&rl);
    hq_rangelist_clear(&out);
}
