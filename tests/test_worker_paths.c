/* Placeholder resolution of task working directories and stdout/stderr paths. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "wk.h"

static const wk_ph_t s_vals = {.job_id = "7",
                               .task_id = "3",
                               .instance_id = "1",
                               .submit_dir = "/home/u/run",
                               .server_uid = "aB3xYz"};

Test(worker_paths, substitutes_known_placeholders)
{
    char *s =
        wk_ph_subst("%{JOB_ID}-%{TASK_ID}.%{INSTANCE_ID}@%{SERVER_UID}:%{SUBMIT_DIR}", &s_vals);
    cr_assert_str_eq(s, "7-3.1@aB3xYz:/home/u/run");
    free(s);
}

Test(worker_paths, keeps_unknown_placeholders_verbatim)
{
    char *s = wk_ph_subst("a/%{FOO}/%{CWD}/%{TASK_ID}", &s_vals);
    cr_assert_str_eq(s, "a/%{FOO}/%{CWD}/3");
    cr_assert(wk_ph_has(s));
    free(s);
    cr_assert_not(wk_ph_has("plain/%{unterminated"));
}

Test(worker_paths, default_cwd_is_the_submit_dir_and_outputs_follow_it)
{
    char *cwd, *out, *err;
    wk_resolve_paths(NULL, "%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stdout", "err.txt", &s_vals, &cwd, &out,
                     &err);
    cr_assert_str_eq(cwd, "/home/u/run");
    cr_assert_str_eq(out, "/home/u/run/job-7/3.stdout");
    cr_assert_str_eq(err, "/home/u/run/err.txt");
    free(cwd);
    free(out);
    free(err);
}

Test(worker_paths, relative_cwd_is_made_absolute_against_submit_dir)
{
    char *cwd, *out, *err;
    wk_resolve_paths("work-%{TASK_ID}", "o", NULL, &s_vals, &cwd, &out, &err);
    cr_assert_str_eq(cwd, "/home/u/run/work-3");
    cr_assert_str_eq(out, "/home/u/run/work-3/o");
    cr_assert_null(err);
    free(cwd);
    free(out);
}

Test(worker_paths, paths_with_unknown_placeholders_stay_relative)
{
    char *cwd, *out, *err;
    wk_resolve_paths("%{X}/d", "%{Y}.out", "/abs/e", &s_vals, &cwd, &out, &err);
    cr_assert_str_eq(cwd, "%{X}/d");
    cr_assert_str_eq(out, "%{Y}.out");
    cr_assert_str_eq(err, "/abs/e");
    free(cwd);
    free(out);
    free(err);
}

Test(worker_paths, creates_missing_parent_directories)
{
    char tmpl[] = "/tmp/hq-test-pathsXXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    char path[256];
    snprintf(path, sizeof path, "%s/a/b/c/file.txt", tmpl);
    cr_assert_eq(wk_mkdir_parents(path), 0);
    char dir[256];
    snprintf(dir, sizeof dir, "%s/a/b/c", tmpl);
    struct stat st;
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    wk_rm_tree(tmpl);
    cr_assert_neq(stat(tmpl, &st), 0);
}
