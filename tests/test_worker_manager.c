/* SLURM/PBS detection with a fake environment and fake scontrol/qstat on PATH. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hq_duration.h"
#include "hq_util.h"
#include "wk.h"

static char s_dir[] = "/tmp/hq-test-managerXXXXXX";
static char *s_old_path;

static void s_script(const char *name, const char *body)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "#!/bin/sh\n%s", body);
    fclose(f);
    chmod(path, 0755);
}

static void s_setup(void)
{
    cr_assert_not_null(mkdtemp(s_dir));
    const char *p = getenv("PATH");
    s_old_path = strdup(p ? p : "/usr/bin:/bin");
    char *np = hq_asprintf("%s:%s", s_dir, s_old_path);
    setenv("PATH", np, 1);
    free(np);
    unsetenv("SLURM_JOB_ID");
    unsetenv("SLURM_JOBID");
    unsetenv("SLURM_JOB_END_TIME");
    unsetenv("PBS_ENVIRONMENT");
    unsetenv("PBS_JOBID");
}

static void s_teardown(void)
{
    setenv("PATH", s_old_path, 1);
    free(s_old_path);
    wk_rm_tree(s_dir);
}

TestSuite(worker_manager, .init = s_setup, .fini = s_teardown);

Test(worker_manager, parses_walltimes)
{
    uint64_t ns;
    cr_assert_eq(wk_parse_walltime("01:00:00", &ns), 0);
    cr_assert_eq(ns, 3600 * HQ_NS_PER_SEC);
    cr_assert_eq(wk_parse_walltime("1-02:03:04", &ns), 0);
    cr_assert_eq(ns, (86400 + 2 * 3600 + 3 * 60 + 4) * HQ_NS_PER_SEC);
    cr_assert_eq(wk_parse_walltime("05:30", &ns), 0);
    cr_assert_eq(ns, 330 * HQ_NS_PER_SEC);
    cr_assert_eq(wk_parse_walltime("UNLIMITED", &ns), -1);
    cr_assert_eq(wk_parse_walltime("1:2:3:4", &ns), -1);
}

Test(worker_manager, nothing_detected_without_a_batch_environment)
{
    wk_manager_info_t mi;
    cr_assert_eq(wk_manager_detect("detect", &mi, NULL), 0);
    cr_assert_eq(mi.manager, HQ_MANAGER_NONE);
    cr_assert_null(mi.job_id);
}

Test(worker_manager, slurm_remaining_time_from_scontrol)
{
    s_script("scontrol", "echo 'JobId=4242 JobName=hq'\n"
                         "echo '   RunTime=00:00:10 TimeLimit=01:00:00 TimeMin=N/A'\n");
    setenv("SLURM_JOB_ID", "4242", 1);
    wk_manager_info_t mi;
    cr_assert_eq(wk_manager_detect("detect", &mi, NULL), 0);
    cr_assert_eq(mi.manager, HQ_MANAGER_SLURM);
    cr_assert_str_eq(mi.job_id, "4242");
    cr_assert_eq(mi.remaining_ns, 3590 * HQ_NS_PER_SEC);
    wk_manager_info_clear(&mi);
}

Test(worker_manager, slurm_end_time_variable_wins)
{
    s_script("scontrol", "exit 1\n");
    setenv("SLURM_JOBID", "77", 1);
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)time(NULL) + 600);
    setenv("SLURM_JOB_END_TIME", buf, 1);
    wk_manager_info_t mi;
    cr_assert_eq(wk_manager_detect("slurm", &mi, NULL), 0);
    cr_assert_str_eq(mi.job_id, "77");
    cr_assert(mi.remaining_ns > 590 * HQ_NS_PER_SEC && mi.remaining_ns <= 600 * HQ_NS_PER_SEC);
    wk_manager_info_clear(&mi);
}

Test(worker_manager, failing_scontrol_means_no_time_limit)
{
    s_script("scontrol", "exit 3\n");
    setenv("SLURM_JOB_ID", "5", 1);
    wk_manager_info_t mi;
    cr_assert_eq(wk_manager_detect("detect", &mi, NULL), 0);
    cr_assert_eq(mi.manager, HQ_MANAGER_SLURM);
    cr_assert_eq(mi.remaining_ns, 0);
    wk_manager_info_clear(&mi);
}

Test(worker_manager, pbs_walltime_from_qstat_json)
{
    /* Answers only `qstat -f 99.server -F json`, as PBS Pro prints it. */
    s_script("qstat", "[ \"$*\" = '-f 99.server -F json' ] || exit 2\n"
                      "cat <<'EOF'\n"
                      "{\"timestamp\": 1700000000, \"pbs_version\": \"2022.1.1\",\n"
                      " \"Jobs\": {\"99.server\": {\"job_state\": \"R\",\n"
                      "   \"resources_used\": {\"cpupct\": 0, \"walltime\": \"00:10:00\"},\n"
                      "   \"Resource_List\": {\"ncpus\": 1, \"walltime\": \"02:00:00\"}}}}\n"
                      "EOF\n");
    setenv("PBS_ENVIRONMENT", "PBS_BATCH", 1);
    setenv("PBS_JOBID", "99.server", 1);
    wk_manager_info_t mi;
    cr_assert_eq(wk_manager_detect("detect", &mi, NULL), 0);
    cr_assert_eq(mi.manager, HQ_MANAGER_PBS);
    cr_assert_str_eq(mi.job_id, "99.server");
    cr_assert_eq(mi.remaining_ns, 110 * 60 * HQ_NS_PER_SEC);
    wk_manager_info_clear(&mi);
}

Test(worker_manager, pbs_qstat_without_the_job_means_no_time_limit)
{
    s_script("qstat", "echo '{\"Jobs\": {\"1.other\": {}}}'\n");
    setenv("PBS_ENVIRONMENT", "PBS_BATCH", 1);
    setenv("PBS_JOBID", "99.server", 1);
    wk_manager_info_t mi;
    cr_assert_eq(wk_manager_detect("pbs", &mi, NULL), 0);
    cr_assert_eq(mi.manager, HQ_MANAGER_PBS);
    cr_assert_eq(mi.remaining_ns, 0);
    wk_manager_info_clear(&mi);
}

Test(worker_manager, explicit_manager_outside_its_batch_system_is_an_error)
{
    wk_manager_info_t mi;
    hq_err_t err;
    cr_assert_eq(wk_manager_detect("slurm", &mi, &err), -1);
    cr_assert_str_eq(err.text,
                     "SLURM_JOB_ID/SLURM_JOBID not found. The process is not running under SLURM");
    setenv("PBS_JOBID", "1.srv", 1); /* a job id without PBS_ENVIRONMENT is not PBS */
    cr_assert_eq(wk_manager_detect("pbs", &mi, &err), -1);
    cr_assert_str_eq(err.text, "PBS_ENVIRONMENT not found. The process is not running under PBS");
    cr_assert_eq(wk_manager_detect("detect", &mi, &err), 0);
    cr_assert_eq(mi.manager, HQ_MANAGER_NONE);
}

Test(worker_manager, none_ignores_the_environment)
{
    setenv("SLURM_JOB_ID", "4242", 1);
    wk_manager_info_t mi;
    cr_assert_eq(wk_manager_detect("none", &mi, NULL), 0);
    cr_assert_eq(mi.manager, HQ_MANAGER_NONE);
}
