/* Unit tests of the broker's pure parts: task arrays, the job state rule, placeholder
 * resolution at submit, the single event point and the ZAP policy. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "events.h"
#include "jobs.h"
#include "zap.h"

static hq_job_t *s_job(uint32_t id)
{
    hq_job_t *j = calloc(1, sizeof *j);
    j->id = id;
    return j;
}

static hq_rangelist_t s_rl(hq_range_t *r, uint32_t n)
{
    return (hq_rangelist_t){.n = n, .ranges = r};
}

Test(job_tasks, stores_an_array_in_at_most_64_bytes_per_task)
{
    cr_assert_leq(sizeof(hq_task_t), 64);
}

/* Its speed is the broker benchmark's to measure (integration/bench), not a test's. */
Test(job_tasks, submits_a_million_task_array)
{
    hq_job_t *j = s_job(1);
    hq_range_t r = {0, 999999, 1};
    hq_rangelist_t rl = s_rl(&r, 1);
    cr_assert_eq(hq_job_add_array(j, &rl, 0, 0, NULL), 0);
    cr_assert_eq(j->n_tasks, 1000000);
    cr_assert_eq(j->counts[HQ_TS_WAITING], 1000000);
    cr_assert_eq(hq_job_task(j, 777777)->id, 777777);
    cr_assert_null(hq_job_task(j, 1000000));
    hq_job_destroy(&j);
}

Test(job_tasks, keeps_ids_sorted_for_stepped_and_unordered_ranges)
{
    hq_job_t *j = s_job(1);
    hq_range_t r[] = {{20, 22, 1}, {0, 9, 3}};
    hq_rangelist_t rl = s_rl(r, 2);
    cr_assert_eq(hq_job_add_array(j, &rl, 0, 0, NULL), 0);
    uint32_t want[] = {0, 3, 6, 9, 20, 21, 22};
    cr_assert_eq(j->n_tasks, 7);
    for (uint32_t i = 0; i < 7; i++)
        cr_assert_eq(j->tasks[i].id, want[i]);
    cr_assert_eq(hq_job_next_task_id(j), 23);
    hq_job_destroy(&j);
}

Test(job_tasks, refuses_existing_and_duplicate_ids_without_changes)
{
    hq_job_t *j = s_job(4);
    hq_range_t r = {0, 4, 1};
    hq_rangelist_t rl = s_rl(&r, 1);
    cr_assert_eq(hq_job_add_array(j, &rl, 0, 0, NULL), 0);
    hq_err_t err;
    hq_range_t r2 = {4, 6, 1};
    rl = s_rl(&r2, 1);
    cr_assert_eq(hq_job_add_array(j, &rl, 1, 0, &err), -1);
    cr_assert_str_eq(err.text, "Task 4 already exists in job 4.");
    hq_range_t r3[] = {{10, 12, 1}, {8, 11, 1}};
    rl = s_rl(r3, 2);
    cr_assert_eq(hq_job_add_array(j, &rl, 1, 0, &err), -1);
    cr_assert_str_eq(err.text, "Task 10 is defined more than once.");
    cr_assert_eq(j->n_tasks, 5);
    cr_assert_eq(j->counts[HQ_TS_WAITING], 5);
    hq_job_destroy(&j);
}

Test(job_tasks, maps_entries_by_position_when_counts_match)
{
    hq_job_t *j = s_job(1);
    hq_range_t r = {5, 7, 1};
    hq_rangelist_t rl = s_rl(&r, 1);
    cr_assert_eq(hq_job_add_array(j, &rl, 0, 3, NULL), 0);
    cr_assert_eq(hq_job_task(j, 5)->entry, 0);
    cr_assert_eq(hq_job_task(j, 7)->entry, 2);
    hq_job_destroy(&j);
}

Test(job_state, follows_the_priority_order_of_the_rule)
{
    hq_job_t j = {0};
    cr_assert_str_eq(hq_job_state_word(&j), "FINISHED");
    j.open = true;
    cr_assert_str_eq(hq_job_state_word(&j), "OPENED");
    j.counts[HQ_TS_CANCELED] = 1;
    cr_assert_str_eq(hq_job_state_word(&j), "CANCELED");
    j.counts[HQ_TS_ABORTED] = 1;
    cr_assert_str_eq(hq_job_state_word(&j), "ABORTED");
    j.counts[HQ_TS_FAILED] = 1;
    cr_assert_str_eq(hq_job_state_word(&j), "FAILED");
    j.counts[HQ_TS_ASSIGNED] = 1;
    cr_assert_str_eq(hq_job_state_word(&j), "WAITING");
    j.counts[HQ_TS_RUNNING] = 1;
    cr_assert_str_eq(hq_job_state_word(&j), "RUNNING");
    cr_assert_eq(hq_job_state_bit(&j), HQ_ST_RUNNING);
}

Test(placeholders, resolves_defaults_against_submit_dir_and_cwd)
{
    hq_task_def_t d = {0};
    d.out.kind = HQ_STDIO_FILE;
    d.err.kind = HQ_STDIO_NONE;
    hq_jdef_t jd = {0};
    hq_jdef_resolve_paths(&jd, &d, 7, "/home/u/run", "aB3xYz");
    cr_assert_str_eq(jd.cwd, "/home/u/run");
    cr_assert_str_eq(jd.out, "/home/u/run/job-7/%{TASK_ID}.stdout");
    cr_assert_null(jd.err);
    free(jd.cwd);
    free(jd.out);
}

Test(placeholders, makes_relative_paths_absolute_against_the_resolved_cwd)
{
    hq_task_def_t d = {0};
    d.cwd = "work-%{JOB_ID}";
    d.out.kind = HQ_STDIO_FILE;
    d.out.path = "out-%{SERVER_UID}.txt";
    d.err.kind = HQ_STDIO_FILE;
    d.err.path = "%{X}/e";
    hq_jdef_t jd = {0};
    hq_jdef_resolve_paths(&jd, &d, 3, "/s", "uid123");
    cr_assert_str_eq(jd.cwd, "/s/work-3");
    cr_assert_str_eq(jd.out, "/s/work-3/out-uid123.txt");
    cr_assert_str_eq(jd.err, "/s/work-3/%{X}/e"); /* unknown placeholder kept */
    free(jd.cwd);
    free(jd.out);
    free(jd.err);
}

Test(placeholders, keeps_cwd_with_a_task_placeholder_unresolved)
{
    hq_task_def_t d = {0};
    d.cwd = "%{SUBMIT_DIR}/t%{TASK_ID}";
    d.out.kind = HQ_STDIO_FILE;
    d.err.kind = HQ_STDIO_STREAM;
    hq_jdef_t jd = {0};
    hq_jdef_resolve_paths(&jd, &d, 1, "/s", "u");
    cr_assert_str_eq(jd.cwd, "/s/t%{TASK_ID}");
    cr_assert_str_eq(jd.out, "/s/t%{TASK_ID}/job-1/%{TASK_ID}.stdout");
    cr_assert_null(jd.err);
    free(jd.cwd);
    free(jd.out);
}

static int s_hook_count;
static void s_hook(const hq_event_t *ev, void *arg)
{
    (void)arg;
    if (ev->type == HQ_EV_JOB_COMPLETED)
        s_hook_count += 100;
    else
        s_hook_count++;
}

Test(events, task_state_changes_update_counts_and_report_completion)
{
    hq_events_t *e = hq_events_new();
    hq_events_hook(e, s_hook, NULL);
    s_hook_count = 0;
    hq_job_t *j = s_job(2);
    hq_range_t r = {0, 1, 1};
    hq_rangelist_t rl = s_rl(&r, 1);
    hq_job_add_array(j, &rl, 0, 0, NULL);
    hq_task_t *t0 = hq_job_task(j, 0), *t1 = hq_job_task(j, 1);
    cr_assert_not(hq_events_task_state(e, j, t0, HQ_TS_RUNNING, 1, NULL, 10));
    cr_assert_eq(t0->start_ns, 10);
    cr_assert_not(hq_events_task_state(e, j, t0, HQ_TS_FAILED, 1, "boom", 20));
    cr_assert_str_eq(t0->error, "boom");
    cr_assert(hq_events_task_state(e, j, t1, HQ_TS_CANCELED, 0, NULL, 30));
    cr_assert_eq(j->finish_ns, 30);
    cr_assert_eq(j->counts[HQ_TS_WAITING], 0);
    cr_assert_eq(j->counts[HQ_TS_FAILED], 1);
    cr_assert_eq(s_hook_count, 103);
    cr_assert_str_eq(hq_job_state_word(j), "FAILED");
    hq_job_destroy(&j);
    hq_events_destroy(&e);
}

Test(zap, admits_only_the_role_key_per_domain)
{
    hq_zap_policy_t p = {.client_curve = true, .worker_curve = false};
    memset(p.client_pub, 7, 32);
    uint8_t good[32], bad[32];
    memset(good, 7, 32);
    memset(bad, 8, 32);
    cr_assert_null(hq_zap_decide(&p, "client", "CURVE", good, 32));
    cr_assert_not_null(hq_zap_decide(&p, "client", "CURVE", bad, 32));
    cr_assert_not_null(hq_zap_decide(&p, "client", "NULL", NULL, 0));
    cr_assert_null(hq_zap_decide(&p, "worker", "NULL", NULL, 0));
    cr_assert_not_null(hq_zap_decide(&p, "worker", "CURVE", good, 32));
    cr_assert_not_null(hq_zap_decide(&p, "other", "NULL", NULL, 0));
}
