/* cli/render_*.c: job list, job info, job summary and task list tables drawn from
 * the broker's JSON documents. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "render.h"

static hq_global_t s_global(enum hq_output_mode mode)
{
    hq_global_t g;
    memset(&g, 0, sizeof g);
    g.output = mode;
    g.colors = HQ_COLORS_NEVER;
    return g;
}

static json_t *s_load(const char *text)
{
    json_error_t e;
    json_t *v = json_loads(text, 0, &e);
    cr_assert_not_null(v, "bad test JSON: %s", e.text);
    return v;
}

static const char *s_jobs =
    "[{\"id\": 1, \"name\": \"echo\", \"task_count\": 1, \"is_open\": false, \"cancel_reason\": "
    "null,"
    "  \"task_stats\": {\"running\": 1, \"finished\": 0, \"failed\": 0, \"canceled\": 0,"
    "                   \"aborted\": 0, \"waiting\": 0}},"
    " {\"id\": 2, \"name\": \"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\","
    "  \"task_count\": 0, \"is_open\": true, \"cancel_reason\": null, \"_x\": 1,"
    "  \"task_stats\": {\"running\": 0, \"finished\": 0, \"failed\": 0, \"canceled\": 0,"
    "                   \"aborted\": 0, \"waiting\": 0}}]";

Test(cli_render, job_list_marks_open_jobs_and_prints_the_footer, .init = cr_redirect_stdout)
{
    hq_global_t g = s_global(HQ_OUTPUT_CLI);
    json_t *jobs = s_load(s_jobs);
    hq_cli_render_job_list(&g, jobs, 5, false);
    fflush(stdout);
    cr_assert_stdout_eq_str(
        "+----+----------------------------------------------------+---------+-------+\n"
        "| ID | Name                                               | State   | Tasks |\n"
        "+----+----------------------------------------------------+---------+-------+\n"
        "|  1 | echo                                               | RUNNING | 1     |\n"
        "| *2 | abcdefghijklmnopqrstuvwx...DEFGHIJKLMNOPQRSTUVWXYZ | OPENED  | 0     |\n"
        "+----+----------------------------------------------------+---------+-------+\n"
        "* = Open jobs\n"
        "There are 5 jobs in total. Use `--all` to display all jobs.\n");
    json_decref(jobs);
}

Test(cli_render, job_list_has_no_footer_when_all_jobs_are_shown, .init = cr_redirect_stdout)
{
    hq_global_t g = s_global(HQ_OUTPUT_CLI);
    json_t *jobs = s_load("[]");
    hq_cli_render_job_list(&g, jobs, 1, false);
    json_t *none = s_load("[]");
    hq_cli_render_job_list(&g, none, 0, false);
    fflush(stdout);
    cr_assert_stdout_eq_str("+----+------+-------+-------+\n"
                            "| ID | Name | State | Tasks |\n"
                            "+----+------+-------+-------+\n"
                            "There is 1 job in total. Use `--all` to display all jobs.\n"
                            "+----+------+-------+-------+\n"
                            "| ID | Name | State | Tasks |\n"
                            "+----+------+-------+-------+\n");
    json_decref(jobs);
    json_decref(none);
}

Test(cli_render, job_list_quiet_and_json_forms, .init = cr_redirect_stdout)
{
    hq_global_t q = s_global(HQ_OUTPUT_QUIET);
    json_t *jobs = s_load(s_jobs);
    hq_cli_render_job_list(&q, jobs, 2, false);
    hq_global_t j = s_global(HQ_OUTPUT_JSON);
    json_t *one = json_pack("[O]", json_array_get(jobs, 1));
    hq_cli_render_job_list(&j, one, 2, false);
    fflush(stdout);
    cr_assert_stdout_eq_str(
        "1 RUNNING\n2 OPENED\n"
        "[\n"
        "  {\n"
        "    \"cancel_reason\": null,\n"
        "    \"id\": 2,\n"
        "    \"is_open\": true,\n"
        "    \"name\": \"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\",\n"
        "    \"task_count\": 0,\n"
        "    \"task_stats\": {\n"
        "      \"aborted\": 0,\n"
        "      \"canceled\": 0,\n"
        "      \"failed\": 0,\n"
        "      \"finished\": 0,\n"
        "      \"running\": 0,\n"
        "      \"waiting\": 0\n"
        "    }\n"
        "  }\n"
        "]\n");
    json_decref(jobs);
    json_decref(one);
}

static const char *s_job_info =
    "[{\"info\": {\"id\": 3, \"name\": \"sim\", \"task_count\": 16, \"is_open\": false,"
    "   \"cancel_reason\": null, \"task_stats\": {\"running\": 2, \"finished\": 6, \"failed\": 6,"
    "   \"canceled\": 1, \"aborted\": 0, \"waiting\": 1}},"
    "  \"max_fails\": null, \"started_at\": \"2026-01-02T03:04:05.000000000Z\","
    "  \"finished_at\": \"2026-01-02T03:05:06.000000000Z\","
    "  \"submits\": [{\"array\": {\"program\": {\"args\": [\"bash\", \"-c\", \"echo $HQ_TASK_ID\"],"
    "     \"env\": {\"B\": \"\", \"HQ_HIDDEN\": \"x\", \"A\": \"1\"}, \"cwd\": \"/home/u\","
    "     \"stdout\": \"/home/u/job-3/%{TASK_ID}.stdout\", \"stderr\": null},"
    "   \"resources\": [{\"n_nodes\": 0, \"min_time\": 0.0, \"weight\": 10000, \"resources\": ["
    "     {\"resource\": \"cpus\", \"request\": {\"Compact\": 20000}},"
    "     {\"resource\": \"gpus\", \"request\": {\"Scatter\": 5000}}]}],"
    "   \"pin_mode\": null, \"priority\": -3, \"time_limit\": 5400.0, \"task_dir\": false,"
    "   \"crash_limit\": \"never-restart\"}}],"
    "  \"tasks\": ["
    "   {\"id\": 6, \"state\": \"failed\", \"error\": \"late\", \"_hosts\": [\"n1\"]},"
    "   {\"id\": 2, \"state\": \"failed\", \"error\": \"Time limit reached\", \"_hosts\": "
    "[\"n2\"]},"
    "   {\"id\": 1, \"state\": \"failed\", \"error\": \"Program terminated with exit code 1.\","
    "    \"_hosts\": [\"n1\"]},"
    "   {\"id\": 3, \"state\": \"failed\", \"error\": \"boom\", \"worker\": 3},"
    "   {\"id\": 0, \"state\": \"running\", \"_hosts\": [\"n1\"]},"
    "   {\"id\": 4, \"state\": \"failed\", \"error\": \"x\", \"_hosts\": [\"n1\"]},"
    "   {\"id\": 5, \"state\": \"failed\", \"error\": \"y\", \"_hosts\": [\"n1\"]}],"
    "  \"_ids\": \"0-15\", \"_submit_dir\": \"/home/u\", \"_worker_hosts\": [\"n1\", \"n2\", "
    "\"n3\"],"
    "  \"_n_failed\": 6}]";

Test(cli_render, job_info_prints_details_and_failed_task_table, .init = cr_redirect_stdout)
{
    hq_global_t g = s_global(HQ_OUTPUT_CLI);
    json_t *jobs = s_load(s_job_info);
    hq_cli_render_job_info(&g, jobs);
    fflush(stdout);
    cr_assert_stdout_eq_str(
        "+----------------------+--------------------------------------------+\n"
        "| ID                   | 3                                          |\n"
        "| Name                 | sim                                        |\n"
        "| State                | [######################################..] |\n"
        "|                      | RUNNING (2)                                |\n"
        "|                      | FAILED (6)                                 |\n"
        "|                      | FINISHED (6)                               |\n"
        "|                      | CANCELED (1)                               |\n"
        "|                      | WAITING (1)                                |\n"
        "| Cancel Reason        |                                            |\n"
        "| Session              | closed                                     |\n"
        "| Tasks                | 16; Ids: 0-15                              |\n"
        "| Workers              | n1,n2, … (3 total)                         |\n"
        "| Resources            | cpus: 2 compact                            |\n"
        "|                      | gpus: 0.5 scatter                          |\n"
        "| Pin                  | none                                       |\n"
        "| Priority             | -3                                         |\n"
        "| Command              | bash                                       |\n"
        "|                      | -c                                         |\n"
        "|                      | echo $HQ_TASK_ID                           |\n"
        "| Stdout               | /home/u/job-3/%{TASK_ID}.stdout            |\n"
        "| Stderr               | <None>                                     |\n"
        "| Environment          | A=1                                        |\n"
        "|                      | B=                                         |\n"
        "| Working directory    | /home/u                                    |\n"
        "| Task time limit      | 1h 30m                                     |\n"
        "| Crash limit          | never-restart                              |\n"
        "| Submission date      | 2026-01-02 03:04:05 UTC                    |\n"
        "| Submission directory | /home/u                                    |\n"
        "| Makespan             | 1m 1s                                      |\n"
        "+----------------------+--------------------------------------------+\n"
        "+---------+--------+--------------------------------------+\n"
        "| Task ID | Worker | Error                                |\n"
        "+---------+--------+--------------------------------------+\n"
        "| 1       | n1     | Program terminated with exit code 1. |\n"
        "| 2       | n2     | Time limit reached                   |\n"
        "| 3       | 3      | boom                                 |\n"
        "| 4       | n1     | x                                    |\n"
        "| 5       | n1     | y                                    |\n"
        "+---------+--------+--------------------------------------+\n"
        "6 tasks failed. (5 shown)\n");
    json_decref(jobs);
}

Test(cli_render, job_summary_lists_all_six_states, .init = cr_redirect_stdout)
{
    hq_global_t g = s_global(HQ_OUTPUT_CLI);
    json_t *s = s_load("{\"Running\": 1, \"Waiting\": 0, \"Finished\": 12, \"Failed\": 0,"
                       " \"Aborted\": 0, \"Canceled\": 3}");
    hq_cli_render_job_summary(&g, s);
    fflush(stdout);
    cr_assert_stdout_eq_str("+----------+-------+\n"
                            "| Status   | Count |\n"
                            "+----------+-------+\n"
                            "| RUNNING  |     1 |\n"
                            "| WAITING  |     0 |\n"
                            "| FINISHED |    12 |\n"
                            "| FAILED   |     0 |\n"
                            "| ABORTED  |     0 |\n"
                            "| CANCELED |     3 |\n"
                            "+----------+-------+\n");
    json_decref(s);
}

Test(cli_render, task_list_truncates_errors_without_verbose, .init = cr_redirect_stdout)
{
    hq_global_t g = s_global(HQ_OUTPUT_CLI);
    json_t *r = s_load(
        "{\"3\": [{\"id\": 1, \"state\": \"failed\", \"error\": \"Program terminated with exit "
        "code 1.\","
        "          \"started_at\": \"2026-01-02T03:04:05.000000000Z\","
        "          \"finished_at\": \"2026-01-02T03:04:06.500000000Z\", \"_hosts\": [\"n1\", "
        "\"n2\"]},"
        "         {\"id\": 0, \"state\": \"finished\", \"started_at\": \"2026-01-02T03:04:05Z\","
        "          \"finished_at\": \"2026-01-02T03:04:07Z\", \"_hosts\": [\"n1\"]}]}");
    hq_cli_render_task_list(&g, r, false);
    fflush(stdout);
    cr_assert_stdout_eq_str("+---------+----------+--------+----------+---------------------+\n"
                            "| Task ID | State    | Worker | Makespan | Error               |\n"
                            "+---------+----------+--------+----------+---------------------+\n"
                            "|       0 | FINISHED | n1     | 2s       |                     |\n"
                            "|       1 | FAILED   | n1     | 1s 500ms | Program terminat... |\n"
                            "|         |          | n2     |          |                     |\n"
                            "+---------+----------+--------+----------+---------------------+\n");
    json_decref(r);
}

Test(cli_render, task_list_adds_job_column_for_several_jobs, .init = cr_redirect_stdout)
{
    hq_global_t g = s_global(HQ_OUTPUT_CLI);
    json_t *r = s_load("{\"10\": [{\"id\": 0, \"state\": \"waiting\"}],"
                       " \"9\": [{\"id\": 0, \"state\": \"waiting\"}]}");
    hq_cli_render_task_list(&g, r, true);
    fflush(stdout);
    cr_assert_stdout_eq_str("+--------+---------+---------+--------+----------+-------+\n"
                            "| Job ID | Task ID | State   | Worker | Makespan | Error |\n"
                            "+--------+---------+---------+--------+----------+-------+\n"
                            "|      9 |       0 | WAITING |        |          |       |\n"
                            "|     10 |       0 | WAITING |        |          |       |\n"
                            "+--------+---------+---------+--------+----------+-------+\n");
    json_decref(r);
}

Test(cli_render, wraps_long_command_words_at_80_columns)
{
    char word[200];
    memset(word, 'a', 170);
    word[170] = '\0';
    char *w = hq_cli_wrap(word, 80);
    cr_assert_eq(strlen(w), 172);
    cr_assert_eq(w[80], '\n');
    cr_assert_eq(w[161], '\n');
    free(w);
    char *s = hq_cli_wrap("one two three", 8);
    cr_assert_str_eq(s, "one two\nthree");
    free(s);
}

Test(cli_render, computes_job_state_words)
{
    json_t *j = s_load("{\"is_open\": true, \"task_stats\": {\"failed\": 1, \"canceled\": 1}}");
    cr_assert_str_eq(hq_cli_job_state(j), "FAILED");
    json_object_set_new(json_object_get(j, "task_stats"), "waiting", json_integer(1));
    cr_assert_str_eq(hq_cli_job_state(j), "WAITING");
    json_decref(j);
    j = s_load("{\"is_open\": true, \"task_stats\": {\"finished\": 3}}");
    cr_assert_str_eq(hq_cli_job_state(j), "OPENED");
    json_object_set_new(j, "is_open", json_false());
    cr_assert_str_eq(hq_cli_job_state(j), "FINISHED");
    json_decref(j);
}
