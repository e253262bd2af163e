/* Task processes: environment building, spawning and the error texts of cli/REFERENCE.md §0.2. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hq_util.h"
#include "wk.h"

static int s_wait(pid_t pid)
{
    int st;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return st;
}

static char *s_read(const char *path)
{
    char *data = NULL;
    size_t len = 0;
    cr_assert_eq(hq_read_file(path, 1 << 20, &data, &len), 0, "cannot read %s", path);
    return data;
}

Test(worker_launch, spawning_a_missing_program_names_it)
{
    char *argv[] = {"hq-surely-not-a-program", "a", "b", NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    wk_spawn_t s = {.argv = argv, .envp = envp};
    char *error = NULL;
    cr_assert_eq(wk_spawn(&s, &error), -1);
    cr_assert_not_null(error);
    const char *want = "Cannot execute \"hq-surely-not-a-program a b\": No such file or directory "
                       "(os error 2)";
    cr_assert(strncmp(error, want, strlen(want)) == 0, "got: %s", error);
    cr_assert_not_null(strstr(error, "\n"), "a hint line follows");
    free(error);
}

Test(worker_launch, exec_failure_in_the_child_is_reported)
{
    char *argv[] = {"/nonexistent/dir/prog", NULL};
    char *envp[] = {NULL};
    wk_spawn_t s = {.argv = argv, .envp = envp};
    char *error = NULL;
    cr_assert_eq(wk_spawn(&s, &error), -1);
    cr_assert_str_eq(error, "Cannot execute \"/nonexistent/dir/prog\": No such file or directory "
                            "(os error 2)\nThe program that you have tried to execute "
                            "(`/nonexistent/dir/prog`) was not found.");
    free(error);
}

Test(worker_launch, missing_bare_program_present_in_cwd_suggests_dot_slash)
{
    char dir[] = "/tmp/hq-launch-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char *file = hq_asprintf("%s/foo", dir);
    FILE *fp = fopen(file, "w");
    cr_assert_not_null(fp);
    fclose(fp);
    char *argv[] = {"foo", "--bar", "--baz=5", NULL};
    char *envp[] = {"PATH=/nonexistent-hq-dir", NULL};
    char *error = wk_spawn_error(argv, dir, ENOENT);
    char *want = hq_asprintf("Cannot execute \"foo --bar --baz=5\": No such file or directory (os "
                             "error 2)\nThe program that you have tried to execute (`foo`) was "
                             "not found.\nThe file `%s/foo` exists, maybe you have meant `./foo` "
                             "instead?",
                             dir);
    cr_assert_str_eq(error, want);
    free(error);
    /* Through a real spawn with the task's cwd. */
    wk_spawn_t s = {.argv = argv, .envp = envp, .cwd = dir};
    error = NULL;
    cr_assert_eq(wk_spawn(&s, &error), -1);
    cr_assert_str_eq(error, want);
    free(error);
    free(want);
    unlink(file);
    free(file);
    rmdir(dir);
}

Test(worker_launch, script_without_execute_bit_says_so_on_two_lines)
{
    char *argv[] = {"./job.sh", NULL};
    char *error = wk_spawn_error(argv, "/tmp", EACCES);
    cr_assert_str_eq(error, "Cannot execute \"./job.sh\": Permission denied (os error 13)\nThe "
                            "script that you have tried to execute (`./job.sh`) is not "
                            "executable.\nTry making it executable or add a shebang line to it.");
    free(error);
}

Test(worker_launch, arguments_are_quoted_like_rust_debug_strings)
{
    char *argv[] = {"/nonexistent/p", "a\"b", "c\\d", NULL};
    char *error = wk_spawn_error(argv, NULL, ENOENT);
    const char *want = "Cannot execute \"/nonexistent/p a\\\"b c\\\\d\": No such file";
    cr_assert(strncmp(error, want, strlen(want)) == 0, "got: %s", error);
    free(error);
}

Test(worker_launch, exit_code_and_signal_texts)
{
    cr_assert_null(wk_exit_error(0));
    char *t = wk_exit_error(3 << 8);
    cr_assert_str_eq(t, "Program terminated with exit code 3.");
    free(t);
    t = wk_exit_error(SIGKILL);
    cr_assert_str_eq(t, "Program terminated with exit code -1. Received signal 9 (SIGKILL).");
    free(t);
}

Test(worker_launch, runs_in_own_process_group_with_files_and_stdin)
{
    char tmpl[] = "/tmp/hq-test-launchXXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    char out[256], err[256];
    snprintf(out, sizeof out, "%s/sub/dir/o.txt", tmpl);
    snprintf(err, sizeof err, "%s/e.txt", tmpl);
    char *argv[] = {"sh", "-c",
                    "cat; echo \"pg=$(ps -o pgid= $$ | tr -d ' ') pid=$$ cwd=$(pwd) x=$X\"; "
                    "echo oops >&2; exit 4",
                    NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", "X=42", NULL};
    wk_spawn_t s = {.argv = argv,
                    .envp = envp,
                    .cwd = tmpl,
                    .out = out,
                    .err = err,
                    .stdin_data = (const uint8_t *)"input\n",
                    .stdin_len = 6};
    char *error = NULL;
    pid_t pid = wk_spawn(&s, &error);
    cr_assert_gt(pid, 0, "%s", error ? error : "");
    int st = s_wait(pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 4);
    char *o = s_read(out);
    char want[512];
    snprintf(want, sizeof want, "input\npg=%d pid=%d cwd=%s x=42\n", pid, pid, tmpl);
    cr_assert_str_eq(o, want);
    char *e = s_read(err);
    cr_assert_str_eq(e, "oops\n");
    free(o);
    free(e);
    wk_rm_tree(tmpl);
}

static void s_def(hq_assign_def_t *ad, hq_rreq_t *req, hq_rvariant_t *var, hq_kv_t *env,
                  uint32_t n_env)
{
    memset(ad, 0, sizeof *ad);
    ad->job_id = 5;
    ad->submit_dir = "/sub";
    ad->def.n_env = n_env;
    ad->def.env = env;
    ad->def.n_variants = 1;
    ad->def.variants = var;
    memset(var, 0, sizeof *var);
    var->n_entries = 2;
    var->entries = req;
}

Test(worker_launch, environment_describes_the_task)
{
    hq_rreq_t req[2] = {
        {.name = "cpus", .amount = 2 * HQ_AMOUNT_ONE, .policy = HQ_POLICY_COMPACT},
        {.name = "gpus/nvidia", .amount = HQ_AMOUNT_ONE, .policy = HQ_POLICY_COMPACT}};
    hq_rvariant_t var;
    hq_kv_t env[1] = {{.key = "MY", .value = "val"}};
    hq_assign_def_t ad;
    s_def(&ad, req, &var, env, 1);
    ad.def.pin = HQ_PIN_OMP;
    hq_assign_task_t t = {.job_id = 5,
                          .task_id = 7,
                          .instance = 2,
                          .has_entry = true,
                          .entry = {.len = 3, .data = (uint8_t *)"abc"}};
    char *cl[] = {"1", "3"}, *gl[] = {"0"};
    hq_ralloc_t allocs[2] = {
        {.name = "cpus", .amount = 2 * HQ_AMOUNT_ONE, .n_labels = 2, .labels = cl},
        {.name = "gpus/nvidia", .amount = HQ_AMOUNT_ONE, .n_labels = 1, .labels = gl}};
    wk_task_ctx_t ctx = {.hq_path = "/opt/hq", .server_uid = "uid123"};
    wk_env_t e = {0};
    wk_env_build(&e, &ctx, &ad, &t, allocs, 2, "/w/t1");
    cr_assert_str_eq(wk_env_get(&e, "HQ_JOB_ID"), "5");
    cr_assert_str_eq(wk_env_get(&e, "HQ_TASK_ID"), "7");
    cr_assert_str_eq(wk_env_get(&e, "HQ_INSTANCE_ID"), "2");
    cr_assert_str_eq(wk_env_get(&e, "HQ_SUBMIT_DIR"), "/sub");
    cr_assert_str_eq(wk_env_get(&e, "HQ_ENTRY"), "abc");
    cr_assert_str_eq(wk_env_get(&e, "HQ"), "/opt/hq");
    cr_assert_str_eq(wk_env_get(&e, "MY"), "val");
    cr_assert_str_eq(wk_env_get(&e, "HQ_CPUS"), "1,3");
    cr_assert_str_eq(wk_env_get(&e, "OMP_NUM_THREADS"), "2");
    cr_assert_str_eq(wk_env_get(&e, "HQ_RESOURCE_REQUEST_cpus"), "2 compact");
    cr_assert_str_eq(wk_env_get(&e, "HQ_RESOURCE_VALUES_cpus"), "1,3");
    cr_assert_str_eq(wk_env_get(&e, "HQ_RESOURCE_VALUES_gpus_nvidia"), "0");
    cr_assert_str_eq(wk_env_get(&e, "CUDA_VISIBLE_DEVICES"), "0");
    cr_assert_str_eq(wk_env_get(&e, "CUDA_DEVICE_ORDER"), "PCI_BUS_ID");
    cr_assert_str_eq(wk_env_get(&e, "HQ_PIN"), "omp");
    cr_assert_str_eq(wk_env_get(&e, "OMP_PROC_BIND"), "close");
    cr_assert_str_eq(wk_env_get(&e, "OMP_PLACES"), "{1,3}");
    cr_assert_str_eq(wk_env_get(&e, "HQ_TASK_DIR"), "/w/t1");
    cr_assert_str_eq(wk_env_get(&e, "HQ_ERROR_FILENAME"), "/w/t1/hq-error");
    cr_assert_null(wk_env_get(&e, "HQ_RESOURCE_VARIANT"));
    cr_assert_null(e.vars[e.n]);
    wk_env_clear(&e);
}

Test(worker_launch, user_omp_num_threads_and_fractions_are_respected)
{
    hq_rreq_t req[2] = {{.name = "cpus", .amount = HQ_AMOUNT_ONE / 2, .policy = HQ_POLICY_COMPACT},
                        {.name = "x", .amount = HQ_AMOUNT_ONE}};
    hq_rvariant_t var;
    hq_assign_def_t ad;
    s_def(&ad, req, &var, NULL, 0);
    hq_assign_task_t t = {.job_id = 1, .task_id = 0};
    char *cl[] = {"0"};
    hq_ralloc_t allocs[1] = {
        {.name = "cpus", .amount = HQ_AMOUNT_ONE / 2, .n_labels = 1, .labels = cl}};
    wk_task_ctx_t ctx = {0};
    wk_env_t e = {0};
    unsetenv("OMP_NUM_THREADS");
    wk_env_build(&e, &ctx, &ad, &t, allocs, 1, NULL);
    cr_assert_null(wk_env_get(&e, "OMP_NUM_THREADS"));
    cr_assert_null(wk_env_get(&e, "HQ_ENTRY"));
    cr_assert_str_eq(wk_env_get(&e, "HQ_RESOURCE_REQUEST_cpus"), "0.5 compact");
    wk_env_clear(&e);

    hq_kv_t env[1] = {{.key = "OMP_NUM_THREADS", .value = "9"}};
    s_def(&ad, req, &var, env, 1);
    allocs[0].amount = HQ_AMOUNT_ONE;
    wk_env_build(&e, &ctx, &ad, &t, allocs, 1, NULL);
    cr_assert_str_eq(wk_env_get(&e, "OMP_NUM_THREADS"), "9");
    wk_env_clear(&e);
}
