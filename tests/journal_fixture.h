/* The journal-writing harness shared by the broker's restore, snapshot and
 * re-adoption tests: a temporary journal directory per test, helpers that append
 * real records through the journal module, and a replay into a fresh broker.
 * Define JF_NAME (the temp-dir tag) before including. */
#ifndef HQ_TEST_JOURNAL_FIXTURE_H
#define HQ_TEST_JOURNAL_FIXTURE_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctx.h"
#include "jobops.h"
#include "tasks.h"
#include "wmsg.h"
#include "workers.h"
#include "journal/glue.h"
#include "journal/journal.h"

static char s_dir[256];

static inline void s_setup(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/hq-test-" JF_NAME "-XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
}

static inline void s_teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", s_dir);
    cr_assert_eq(system(cmd), 0);
}

static inline hq_journal_t *s_writer(void)
{
    hq_err_t err;
    hq_journal_opts_t o = {.uid = "abcdef"};
    hq_journal_t *j = hq_journal_open(s_dir, &o, &err);
    cr_assert_not_null(j, "%s", err.text);
    cr_assert_eq(hq_journal_replay(j, NULL, NULL, NULL, &err), 0, "%s", err.text);
    cr_assert_eq(hq_journal_start(j, &err), 0, "%s", err.text);
    return j;
}

static inline void s_put(hq_journal_t *j, hq_jrec_t rec)
{
    hq_err_t err;
    cr_assert_neq(hq_journal_append(j, &rec, NULL, NULL, &err), 0, "%s", err.text);
}

/* A submit of `count` tasks 0..count-1 (array), or a graph when deps is given:
 * task i depends on deps[i] (-1 = none). */
static inline void s_submit(hq_journal_t *j, uint32_t job, uint32_t attach, uint32_t first,
                            uint32_t count, const int *deps, enum hq_crash_kind crash,
                            uint32_t limit)
{
    char *args[] = {"true"};
    hq_rvariant_t var = {.n_nodes = 0};
    hq_task_def_t def = {.n_args = 1,
                         .args = args,
                         .cwd = "%{SUBMIT_DIR}",
                         .n_variants = 1,
                         .out.kind = HQ_STDIO_NONE,
                         .err.kind = HQ_STDIO_NONE,
                         .variants = &var,
                         .crash_kind = crash,
                         .crash_limit = limit};
    hq_range_t r = {.start = first, .end = first + count - 1, .step = 1};
    hq_submit_t s = {
        .job_id = attach, .name = "j", .submit_dir = "/tmp", .n_defs = 1, .defs = &def};
    hq_graph_task_t g[8];
    uint32_t dep[8];
    if (deps) {
        for (uint32_t i = 0; i < count; i++) {
            dep[i] = (uint32_t)deps[i];
            g[i] = (hq_graph_task_t){
                .id = first + i, .def_idx = 0, .n_deps = deps[i] >= 0 ? 1 : 0, .deps = &dep[i]};
        }
        s.n_graph = count;
        s.graph = g;
    } else {
        s.ids = (hq_rangelist_t){.n = 1, .ranges = &r};
    }
    hq_jrec_t rec = {.type = HQ_JR_JOB_SUBMIT};
    rec.u.job_submit.job = job;
    rec.u.job_submit.submit = &s;
    s_put(j, rec);
}

static inline void s_task(hq_journal_t *j, enum hq_jrec_type type, uint32_t job, uint32_t task,
                          uint32_t instance, uint32_t worker)
{
    hq_jrec_t rec = {.type = type};
    rec.u.task.job = job;
    rec.u.task.task = task;
    rec.u.task.instance = instance;
    rec.u.task.worker = worker;
    rec.u.task.error = type == HQ_JR_TASK_FAILED ? "exit code 3" : NULL;
    s_put(j, rec);
}

static inline void s_worker(hq_journal_t *j, enum hq_jrec_type type, uint32_t worker,
                            uint32_t reason)
{
    hq_jrec_t rec = {.type = type};
    if (type == HQ_JR_WORKER_UP) {
        rec.u.worker_up.worker = worker;
    } else {
        rec.u.worker_lost.worker = worker;
        rec.u.worker_lost.reason = reason;
    }
    s_put(j, rec);
}

static inline void s_close_writer(hq_journal_t **j)
{
    hq_err_t err;
    cr_assert_eq(hq_journal_flush(*j, &err), 0, "%s", err.text);
    hq_journal_close(j);
}

/* Replays the journal in dir into a fresh broker (running tasks wait for
 * re-adoption when readopt); returns the epoch seen. */
static inline uint64_t jf_restore(hq_broker_t *b, const char *dir, bool readopt)
{
    hq_broker_init(b);
    snprintf(b->conf.access.server_uid, sizeof b->conf.access.server_uid, "zzzzzz");
    hq_err_t err;
    hq_journal_opts_t o = {.read_only = true};
    hq_journal_t *j = hq_journal_open(dir, &o, &err);
    cr_assert_not_null(j, "%s", err.text);
    hq_jr_state_t *st = hq_jr_state_new(b);
    if (readopt)
        hq_jr_state_readopt(st, true);
    cr_assert_eq(hq_journal_replay(j, hq_jr_apply_record, st, NULL, &err), 0, "%s", err.text);
    hq_journal_close(&j);
    return hq_jr_state_finish(&st);
}

static inline void s_free(hq_broker_t *b)
{
    hq_broker_fini(b);
}

#endif
