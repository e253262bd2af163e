/* The automatic allocator's pure parts: queue parameters (what is refused and why),
 * submit scripts and worker command lines as cli/REFERENCE.md §3.7 gives them, and
 * reading what sbatch, scontrol and qstat print. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "alloc/aqueue.h"
#include "alloc/mgr.h"
#include "alloc/script.h"
#include "hq_duration.h"

static const char S_SLURM[] = "{\"manager\":\"slurm\",\"timelimit_ns\":3902000000000}";

static int s_params(const char *text, hq_aparams_t *p, hq_err_t *err)
{
    return hq_aparams_from_json(text, p, err);
}

Test(alloc, parameters_defaults_and_refusals_name_the_value)
{
    hq_aparams_t p;
    hq_err_t err;
    cr_assert_eq(s_params(S_SLURM, &p, &err), 0);
    cr_assert_eq(p.backlog, 1);
    cr_assert_eq(p.per_alloc, 1);
    cr_assert_eq(p.max_workers, 0);
    cr_assert_eq(p.idle_timeout_ns, 300 * HQ_NS_PER_SEC);
    cr_assert_str_eq(p.on_lost, "finish-running");
    hq_aparams_clear(&p);

    static const struct {
        const char *text;
        const char *error;
    } bad[] = {
        {"{\"manager\":\"lsf\",\"timelimit_ns\":1}", "Unknown manager 'lsf': use pbs or slurm"},
        {"{\"manager\":\"pbs\"}", "The time limit of the queue (--time-limit) is missing"},
        {"{\"manager\":\"pbs\",\"timelimit_ns\":10,\"worker_time_limit_ns\":11}",
         "Worker time limit cannot be larger than queue time limit"},
        {"{\"manager\":\"pbs\",\"timelimit_ns\":10,\"backlog\":0}",
         "Queue parameter backlog must be an integer from 1 to 4294967295"},
        {"{\"manager\":\"pbs\",\"timelimit_ns\":10,\"min_utilization\":1.5}",
         "Minimal utilization has to be in the interval [0.0, 1.0]."},
        {"{\"manager\":\"pbs\",\"timelimit_ns\":10,\"additional_args\":[\"-A\\nx\"]}",
         "Additional argument '-A\nx' contains a newline"},
        {"{\"manager\":\"pbs\",\"timelimit_ns\":10,\"on_server_lost\":\"explode\"}",
         "Unknown --on-server-lost policy 'explode'"},
        {"[1]", "Queue parameters are not a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(s_params(bad[i].text, &p, &err), -1, "%s", bad[i].text);
        cr_assert(strncmp(err.text, bad[i].error, strlen(bad[i].error)) == 0, "%s -> %s",
                  bad[i].text, err.text);
    }
}

Test(alloc, walltime_is_hours_minutes_seconds_without_wrapping)
{
    static const struct {
        uint64_t s;
        const char *text;
    } cases[] = {{3902, "01:05:02"}, {259200, "72:00:00"}, {59, "00:00:59"}, {0, "00:00:00"}};
    for (size_t i = 0; i < 4; i++) {
        char *t = hq_ascript_walltime(cases[i].s * HQ_NS_PER_SEC);
        cr_assert_str_eq(t, cases[i].text);
        free(t);
    }
    char *t = hq_ascript_walltime(HQ_NS_PER_SEC / 2); /* part of a second counts whole */
    cr_assert_str_eq(t, "00:00:01");
    free(t);
}

Test(alloc, slurm_script_has_the_header_the_extra_line_and_srun_for_nodes)
{
    hq_aparams_t p;
    hq_err_t err;
    cr_assert_eq(s_params("{\"manager\":\"slurm\",\"timelimit_ns\":3902000000000,"
                          "\"additional_args\":[\"--partition=p\",\"--qos=high\"]}",
                          &p, &err),
                 0);
    char *one = hq_ascript_text(&p, 1, "hq-1-1", "/r/autoalloc/1/001", "W", false);
    cr_assert_str_eq(one, "#!/bin/bash\n#SBATCH --nodes=1\n#SBATCH --job-name=hq-1-1\n"
                          "#SBATCH --output=/r/autoalloc/1/001/stdout\n"
                          "#SBATCH --error=/r/autoalloc/1/001/stderr\n"
                          "#SBATCH --time=01:05:02\n#SBATCH --partition=p --qos=high\n\nW\n");
    char *two = hq_ascript_text(&p, 2, "x-2", "/d", "W", true);
    cr_assert(strstr(two, "\n\nsrun --overlap --ntasks=2 --nodes=2 W\n"), "%s", two);
    cr_assert_null(strstr(two, "#PBS -h"));
    free(one);
    free(two);
    hq_aparams_clear(&p);
}

Test(alloc, pbs_script_holds_the_trial_and_uses_pbsdsh_for_nodes)
{
    hq_aparams_t p;
    hq_err_t err;
    cr_assert_eq(s_params("{\"manager\":\"pbs\",\"timelimit_ns\":259200000000000}", &p, &err), 0);
    char *trial = hq_ascript_text(&p, 1, "hq-3-0", "/d", "W", true);
    cr_assert_str_eq(trial, "#!/bin/bash\n#PBS -l select=1\n#PBS -N hq-3-0\n#PBS -o /d/stdout\n"
                            "#PBS -e /d/stderr\n#PBS -l walltime=72:00:00\n#PBS -h\n\nW\n");
    char *two = hq_ascript_text(&p, 2, "n-1", "/d", "W x", false);
    cr_assert(strstr(two, "\n\npbsdsh -- bash -l -c 'W x'\n"), "%s", two);
    free(trial);
    free(two);
    hq_aparams_clear(&p);
}

Test(alloc, worker_command_line_in_the_documented_order)
{
    hq_aparams_t p;
    hq_err_t err;
    cr_assert_eq(s_params("{\"manager\":\"slurm\",\"timelimit_ns\":3600000000000,"
                          "\"worker_time_limit_ns\":1800000000000,\"idle_timeout_ns\":90000000000,"
                          "\"cpus\":\"2x4\",\"resources\":[\"gpus=[0,1]\",\"mem=sum(100)\"],"
                          "\"coupling\":\"cpus,gpus\",\"group\":\"g1\",\"no_hyper_threading\":true,"
                          "\"detect_resources\":\"cpus\",\"overview_interval\":\"2s\","
                          "\"min_utilization\":0.25,\"on_server_lost\":\"stop\","
                          "\"worker_start_cmd\":\"module load a\",\"worker_stop_cmd\":\"echo bye\","
                          "\"worker_wrap_cmd\":\"podman run img\"}",
                          &p, &err),
                 0, "%s", err.text);
    char *cmd = hq_ascript_worker_cmd(&p, "/opt/hq", "/s/001", "debug");
    cr_assert_str_eq(cmd, "module load a && RUST_LOG=debug podman run img /opt/hq worker start "
                          "--idle-timeout \"1m 30s\" --manager \"slurm\" --server-dir \"/s/001\" "
                          "--cpus \"2x4\" --resource \"gpus=[0,1]\" --resource \"mem=sum(100)\" "
                          "--coupling \"cpus,gpus\" --group g1 --no-hyper-threading "
                          "--detect-resources cpus --overview-interval \"2s\" "
                          "--min-utilization 0.25 --on-server-lost \"stop\" --time-limit "
                          "\"30m\"; echo bye");
    free(cmd);
    json_t *args = hq_ascript_worker_args(&p, "/opt/hq", "/s/001");
    cr_assert_str_eq(json_string_value(json_array_get(args, 0)), "/opt/hq");
    cr_assert_str_eq(json_string_value(json_array_get(args, 3)), "--idle-timeout");
    cr_assert_str_eq(json_string_value(json_array_get(args, 4)), "1m 30s");
    json_decref(args);
    char *name = hq_ascript_alloc_name(&p, 4, 7);
    cr_assert_str_eq(name, "hq-4-7");
    free(name);
    hq_aparams_clear(&p);
    cr_assert_eq(s_params(S_SLURM, &p, &err), 0);
    cmd = hq_ascript_worker_cmd(&p, "hq", "/r", NULL);
    cr_assert_str_eq(cmd, "hq worker start --idle-timeout \"5m\" --manager \"slurm\" "
                          "--server-dir \"/r\" --on-server-lost \"finish-running\" "
                          "--time-limit \"1h 5m 2s\"");
    free(cmd);
    hq_aparams_clear(&p);
}

Test(alloc, submit_output_gives_the_job_id_or_nothing)
{
    char *id = hq_mgr_parse_submit(HQ_AMGR_SLURM, "Submitted batch job 4711\n");
    cr_assert_str_eq(id, "4711");
    free(id);
    id = hq_mgr_parse_submit(HQ_AMGR_SLURM, "sbatch: warning: x\nSubmitted batch job 12 on c\n");
    cr_assert_str_eq(id, "12");
    free(id);
    id = hq_mgr_parse_submit(HQ_AMGR_PBS, "\n  123.pbs-server \n");
    cr_assert_str_eq(id, "123.pbs-server");
    free(id);
    cr_assert_null(hq_mgr_parse_submit(HQ_AMGR_SLURM, "Your job is important to us\n"));
    cr_assert_null(hq_mgr_parse_submit(HQ_AMGR_SLURM, "Submitted batch job\n"));
    cr_assert_null(hq_mgr_parse_submit(HQ_AMGR_PBS, ""));
    cr_assert_null(hq_mgr_parse_submit(HQ_AMGR_PBS, "a b\n"));
}

Test(alloc, status_of_slurm_and_pbs_jobs)
{
    static const struct {
        const char *out;
        enum hq_mstate st;
    } slurm[] = {
        {"JobId=5 JobName=x\n   JobState=PENDING Reason=Priority", HQ_MS_QUEUED},
        {"JobId=5\n   JobState=RUNNING Reason=None", HQ_MS_RUNNING},
        {"JobId=5\n   JobState=COMPLETING", HQ_MS_RUNNING},
        {"JobId=5\n   JobState=COMPLETED", HQ_MS_FINISHED},
        {"JobId=5\n   JobState=TIMEOUT", HQ_MS_FAILED},
        {"JobId=5\n   JobState=CANCELLED by 0", HQ_MS_FAILED},
        {"garbage", HQ_MS_UNKNOWN},
    };
    for (size_t i = 0; i < sizeof slurm / sizeof slurm[0]; i++)
        cr_assert_eq(hq_mgr_parse_status(HQ_AMGR_SLURM, "5", 0, slurm[i].out, ""), slurm[i].st,
                     "%s", slurm[i].out);
    cr_assert_eq(hq_mgr_parse_status(HQ_AMGR_SLURM, "5", 1, "",
                                     "slurm_load_jobs error: Invalid job id specified\n"),
                 HQ_MS_GONE);
    cr_assert_eq(hq_mgr_parse_status(HQ_AMGR_SLURM, "5", 1, "", "connection refused"),
                 HQ_MS_UNKNOWN);
    const char *qstat = "{\"Jobs\":{\"1.srv\":{\"job_state\":\"Q\"},\"2.srv\":{\"job_state\":"
                        "\"R\"},\"3.srv\":{\"job_state\":\"F\",\"Exit_status\":0},\"4.srv\":"
                        "{\"job_state\":\"F\",\"Exit_status\":271}}}";
    cr_assert_eq(hq_mgr_parse_status(HQ_AMGR_PBS, "1.srv", 0, qstat, ""), HQ_MS_QUEUED);
    cr_assert_eq(hq_mgr_parse_status(HQ_AMGR_PBS, "2.srv", 0, qstat, ""), HQ_MS_RUNNING);
    cr_assert_eq(hq_mgr_parse_status(HQ_AMGR_PBS, "3.srv", 0, qstat, ""), HQ_MS_FINISHED);
    cr_assert_eq(hq_mgr_parse_status(HQ_AMGR_PBS, "4.srv", 0, qstat, ""), HQ_MS_FAILED);
    cr_assert_eq(hq_mgr_parse_status(HQ_AMGR_PBS, "3", 0, qstat, ""), HQ_MS_FINISHED);
    cr_assert_eq(hq_mgr_parse_status(HQ_AMGR_PBS, "9.srv", 0, qstat, ""), HQ_MS_GONE);
    cr_assert_eq(hq_mgr_parse_status(HQ_AMGR_PBS, "1.srv", 0, "not json", ""), HQ_MS_UNKNOWN);
}

Test(alloc, manager_command_lines)
{
    hq_argv_t a;
    hq_mgr_submit_argv(HQ_AMGR_SLURM, true, &a);
    cr_assert_eq(a.n, 3);
    cr_assert_str_eq(a.v[1], "--hold");
    hq_argv_clear(&a);
    hq_mgr_submit_argv(HQ_AMGR_PBS, true, &a);
    cr_assert_eq(a.n, 2); /* qsub holds through #PBS -h in the script */
    hq_argv_clear(&a);
    char *ids[] = {"1.s", "2.s"};
    hq_mgr_status_argv(HQ_AMGR_PBS, ids, 2, &a);
    const char *want[] = {"qstat", "-f", "1.s", "-f", "2.s", "-F", "json", "-x"};
    cr_assert_eq(a.n, 8);
    for (int i = 0; i < 8; i++)
        cr_assert_str_eq(a.v[i], want[i]);
    cr_assert_null(a.v[8]);
    hq_argv_clear(&a);
    hq_mgr_cancel_argv(HQ_AMGR_SLURM, "77", &a);
    cr_assert_str_eq(a.v[0], "scancel");
    cr_assert_str_eq(a.v[1], "77");
    hq_argv_clear(&a);
}
