/* The one placeholder implementation (proto/util/hq_placeholder.c): expansion with
 * the values the worker knows at launch and the subset the broker knows at submit,
 * detection of what is left, and the resolution of a task's cwd, stdout and stderr. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "hq_placeholder.h"

/* Everything known: the worker launching task 3 of job 7. */
static const hq_placeholder_vals_t s_worker = {.job_id = "7",
                                               .task_id = "3",
                                               .instance_id = "1",
                                               .submit_dir = "/home/u/run",
                                               .server_uid = "aB3xYz"};

/* What the broker knows at submit: no task id, no instance. */
static const hq_placeholder_vals_t s_submit = {
    .job_id = "7", .submit_dir = "/home/u/run", .server_uid = "aB3xYz"};

Test(placeholder, expands_every_known_placeholder)
{
    char *s = hq_placeholder_expand(
        "%{JOB_ID}-%{TASK_ID}.%{INSTANCE_ID}@%{SERVER_UID}:%{SUBMIT_DIR}", &s_worker);
    cr_assert_str_eq(s, "7-3.1@aB3xYz:/home/u/run");
    free(s);
    hq_placeholder_vals_t v = s_worker;
    v.cwd = "/c";
    s = hq_placeholder_expand("%{CWD}/x", &v);
    cr_assert_str_eq(s, "/c/x");
    free(s);
}

Test(placeholder, keeps_unknown_and_unset_placeholders_verbatim)
{
    char *s = hq_placeholder_expand("a/%{FOO}/%{CWD}/%{TASK_ID}", &s_worker);
    cr_assert_str_eq(s, "a/%{FOO}/%{CWD}/3");
    cr_assert(hq_placeholder_present(s));
    free(s);
    /* at submit the task placeholders wait for the worker */
    s = hq_placeholder_expand("%{JOB_ID}/%{TASK_ID}.%{INSTANCE_ID}", &s_submit);
    cr_assert_str_eq(s, "7/%{TASK_ID}.%{INSTANCE_ID}");
    free(s);
}

Test(placeholder, leaves_text_without_placeholders_alone)
{
    char *s = hq_placeholder_expand("", &s_worker);
    cr_assert_str_eq(s, "");
    free(s);
    s = hq_placeholder_expand("plain/%{unterminated", &s_worker);
    cr_assert_str_eq(s, "plain/%{unterminated");
    free(s);
    s = hq_placeholder_expand("100%/{JOB_ID}%{JOB_ID}", &s_worker);
    cr_assert_str_eq(s, "100%/{JOB_ID}7");
    free(s);
    /* values are inserted as they are, not expanded again */
    hq_placeholder_vals_t v = {.submit_dir = "/d/%{JOB_ID}", .job_id = "7"};
    s = hq_placeholder_expand("%{SUBMIT_DIR}", &v);
    cr_assert_str_eq(s, "/d/%{JOB_ID}");
    free(s);
}

Test(placeholder, present_needs_an_opening_and_a_closing_brace)
{
    cr_assert(hq_placeholder_present("x%{A}y"));
    cr_assert(hq_placeholder_present("%{}"));
    cr_assert_not(hq_placeholder_present("plain/%{unterminated"));
    cr_assert_not(hq_placeholder_present("a}b%{"));
    cr_assert_not(hq_placeholder_present("plain"));
    cr_assert_not(hq_placeholder_present(NULL));
}

Test(placeholder, path_abs_joins_relative_paths_only)
{
    char *s = hq_path_abs("o", "/b");
    cr_assert_str_eq(s, "/b/o");
    free(s);
    s = hq_path_abs("o", "/b/");
    cr_assert_str_eq(s, "/b/o");
    free(s);
    s = hq_path_abs("/abs", "/b");
    cr_assert_str_eq(s, "/abs");
    free(s);
    s = hq_path_abs("rel", "");
    cr_assert_str_eq(s, "rel");
    free(s);
    s = hq_path_abs("rel", NULL);
    cr_assert_str_eq(s, "rel");
    free(s);
}

Test(placeholder, relative_path_is_made_absolute_even_with_placeholders_left)
{
    char *s = hq_placeholder_path("t%{TASK_ID}.out", &s_worker, "/c");
    cr_assert_str_eq(s, "/c/t3.out");
    free(s);
    s = hq_placeholder_path("t%{TASK_ID}.out", &s_submit, "/c");
    cr_assert_str_eq(s, "/c/t%{TASK_ID}.out");
    free(s);
    s = hq_placeholder_path("%{SUBMIT_DIR}/x", &s_submit, "/c");
    cr_assert_str_eq(s, "/home/u/run/x");
    free(s);
}

Test(placeholder, default_cwd_is_the_submit_dir_and_outputs_follow_it)
{
    char *cwd, *out, *err;
    hq_placeholder_resolve(NULL, "%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stdout", "err.txt", &s_worker,
                           &cwd, &out, &err);
    cr_assert_str_eq(cwd, "/home/u/run");
    cr_assert_str_eq(out, "/home/u/run/job-7/3.stdout");
    cr_assert_str_eq(err, "/home/u/run/err.txt");
    free(cwd);
    free(out);
    free(err);
    hq_placeholder_resolve("", "o", NULL, &s_worker, &cwd, &out, &err);
    cr_assert_str_eq(cwd, "/home/u/run");
    cr_assert_str_eq(out, "/home/u/run/o");
    cr_assert_null(err);
    free(cwd);
    free(out);
}

Test(placeholder, relative_cwd_is_made_absolute_against_the_submit_dir)
{
    char *cwd, *out, *err;
    hq_placeholder_resolve("work-%{TASK_ID}", "o", NULL, &s_worker, &cwd, &out, &err);
    cr_assert_str_eq(cwd, "/home/u/run/work-3");
    cr_assert_str_eq(out, "/home/u/run/work-3/o");
    cr_assert_null(err);
    free(cwd);
    free(out);
    hq_placeholder_resolve("/abs/%{JOB_ID}", "/o", NULL, &s_worker, &cwd, &out, &err);
    cr_assert_str_eq(cwd, "/abs/7");
    cr_assert_str_eq(out, "/o");
    free(cwd);
    free(out);
}

Test(placeholder, cwd_is_not_a_value_of_the_cwd_itself)
{
    char *cwd, *out, *err;
    hq_placeholder_vals_t v = s_worker;
    v.cwd = "/ignored";
    hq_placeholder_resolve("%{CWD}/d", "%{CWD}/o", NULL, &v, &cwd, &out, &err);
    cr_assert_str_eq(cwd, "/home/u/run/%{CWD}/d");
    cr_assert_str_eq(out, "/home/u/run/%{CWD}/d/o");
    free(cwd);
    free(out);
}

Test(placeholder, paths_with_unknown_placeholders_are_kept_and_made_absolute)
{
    char *cwd, *out, *err;
    hq_placeholder_resolve("%{X}/d", "%{Y}.out", "/abs/e", &s_worker, &cwd, &out, &err);
    cr_assert_str_eq(cwd, "/home/u/run/%{X}/d");
    cr_assert_str_eq(out, "/home/u/run/%{X}/d/%{Y}.out");
    cr_assert_str_eq(err, "/abs/e");
    free(cwd);
    free(out);
    free(err);
}

/* The broker at submit: what it can resolve it does, the task placeholders stay for
 * the worker, and an output under such a cwd stays unresolved too. */
Test(placeholder, submit_resolves_what_it_knows_and_leaves_the_task_part)
{
    char *cwd, *out, *err;
    hq_placeholder_resolve(NULL, "%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stdout", NULL, &s_submit, &cwd,
                           &out, &err);
    cr_assert_str_eq(cwd, "/home/u/run");
    cr_assert_str_eq(out, "/home/u/run/job-7/%{TASK_ID}.stdout");
    cr_assert_null(err);
    free(cwd);
    free(out);
    hq_placeholder_resolve("work-%{JOB_ID}", "out-%{SERVER_UID}.txt", "%{X}/e", &s_submit, &cwd,
                           &out, &err);
    cr_assert_str_eq(cwd, "/home/u/run/work-7");
    cr_assert_str_eq(out, "/home/u/run/work-7/out-aB3xYz.txt");
    cr_assert_str_eq(err, "/home/u/run/work-7/%{X}/e");
    free(cwd);
    free(out);
    free(err);
    hq_placeholder_resolve("%{SUBMIT_DIR}/t%{TASK_ID}", "%{CWD}/o", NULL, &s_submit, &cwd, &out,
                           &err);
    cr_assert_str_eq(cwd, "/home/u/run/t%{TASK_ID}");
    cr_assert_str_eq(out, "/home/u/run/t%{TASK_ID}/o");
    free(cwd);
    free(out);
}

/* A relative cwd holding a task placeholder: resolved at submit, then at launch, the
 * output lands once under the task's cwd (not joined to it a second time). */
Test(placeholder, output_under_a_task_templated_cwd_is_joined_once_over_both_stages)
{
    char *cwd, *out, *err;
    hq_placeholder_resolve("dir-%{TASK_ID}", "out.txt", "../e-%{TASK_ID}", &s_submit, &cwd, &out,
                           &err);
    cr_assert_str_eq(cwd, "/home/u/run/dir-%{TASK_ID}");
    cr_assert_str_eq(out, "/home/u/run/dir-%{TASK_ID}/out.txt");
    char *cwd2, *out2, *err2;
    hq_placeholder_resolve(cwd, out, err, &s_worker, &cwd2, &out2, &err2);
    cr_assert_str_eq(cwd2, "/home/u/run/dir-3");
    cr_assert_str_eq(out2, "/home/u/run/dir-3/out.txt");
    cr_assert_str_eq(err2, "/home/u/run/dir-3/../e-3");
    free(cwd);
    free(out);
    free(err);
    free(cwd2);
    free(out2);
    free(err2);
}
