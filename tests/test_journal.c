/* The journal: CRC32C vectors, record round trips, group commit, torn tails at every
 * offset, corruption refusal and salvage, the directory lock, version refusal, disk
 * errors, and crashes at every step of a snapshot commit. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hq_util.h"
#include "journal/journal.h"

/* ---- helpers ---- */

static char s_dir[256];

static void s_setup(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/hq-test-journal-XXXXXX");
    cr_assert_not_null(mkdtemp(s_dir));
    strcat(s_dir, "/j");
    hq_journal_test_fault(HQ_JFAULT_WRITE, 0, 0);
    hq_journal_test_fault(HQ_JFAULT_SYNC, 0, 0);
    hq_journal_test_fault(HQ_JFAULT_CREATE, 0, 0);
    hq_journal_test_snap_stop(0);
}

static void s_teardown(void)
{
    char cmd[300];
    char *slash = strrchr(s_dir, '/');
    *slash = '\0';
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(journal, .init = s_setup, .fini = s_teardown);

static hq_journal_opts_t s_opts(void)
{
    hq_journal_opts_t o = {.segment_size = 1 << 20, .uid = "abc123"};
    return o;
}

static hq_journal_t *s_open_started(const hq_journal_opts_t *o)
{
    hq_err_t err = {{0}};
    hq_journal_t *j = hq_journal_open(s_dir, o, &err);
    cr_assert_not_null(j, "%s", err.text);
    cr_assert_eq(hq_journal_start(j, &err), 0, "%s", err.text);
    return j;
}

static uint64_t s_finished(hq_journal_t *j, uint32_t job, uint32_t task)
{
    hq_jrec_t r = {.type = HQ_JR_TASK_FINISHED};
    r.u.task.job = job;
    r.u.task.task = task;
    r.u.task.instance = 1;
    hq_err_t err = {{0}};
    uint64_t lsn = hq_journal_append(j, &r, NULL, NULL, &err);
    cr_assert_neq(lsn, 0, "%s", err.text);
    return lsn;
}

/* A replay that keeps what it saw. */
typedef struct s_seen {
    uint64_t n, n_snap;
    uint64_t lsns[4096];
    uint32_t tasks[4096];
    uint8_t types[4096];
} s_seen_t;

static int s_collect(hq_jrec_t *rec, bool from_snapshot, void *arg, hq_err_t *err)
{
    s_seen_t *s = arg;
    if (from_snapshot) {
        s->n_snap++;
        return 0;
    }
    if (s->n < 4096) {
        s->lsns[s->n] = rec->lsn;
        s->types[s->n] = (uint8_t)rec->type;
        s->tasks[s->n] = rec->u.task.task;
    }
    s->n++;
    return 0;
}

static int s_replay(const hq_journal_opts_t *o, s_seen_t *seen, hq_journal_report_t *rep,
                    hq_err_t *err)
{
    hq_journal_t *j = hq_journal_open(s_dir, o, err);
    if (!j)
        return -1;
    memset(seen, 0, sizeof *seen);
    int rc = hq_journal_replay(j, s_collect, seen, rep, err);
    hq_journal_close(&j);
    return rc;
}

static char *s_seg(uint64_t seq)
{
    return hq_asprintf("%s/seg-%016" PRIu64 ".hqj", s_dir, seq);
}

static void s_flip_bit(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, off), 1);
    b ^= 0x10;
    cr_assert_eq(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

/* ---- CRC32C ---- */

Test(journal, crc32c_matches_known_vectors)
{
    uint8_t zeros[32] = {0}, ones[32], inc[32];
    memset(ones, 0xff, sizeof ones);
    for (int k = 0; k < 32; k++)
        inc[k] = (uint8_t)k;
    cr_assert_eq(hq_crc32c(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(hq_crc32c(0, zeros, 32), 0x8A9136AAu);
    cr_assert_eq(hq_crc32c(0, ones, 32), 0x62A8AB43u);
    cr_assert_eq(hq_crc32c(0, inc, 32), 0x46DD794Eu);
    cr_assert_eq(hq_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    cr_assert_eq(hq_crc32c_sw(0, inc, 32), 0x46DD794Eu);
    /* Chaining equals one pass; hardware and table agree on odd lengths. */
    cr_assert_eq(hq_crc32c(hq_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    uint8_t buf[1000];
    for (int k = 0; k < 1000; k++)
        buf[k] = (uint8_t)(k * 131 + 7);
    for (size_t n = 0; n < 1000; n += 37)
        cr_assert_eq(hq_crc32c(0, buf + 3, n - (n ? 3 : 0)),
                     hq_crc32c_sw(0, buf + 3, n - (n ? 3 : 0)));
}

/* ---- round trip ---- */

static char *s_args[] = {"sleep", "1"};
static hq_rvariant_t s_variant = {0, 0, 10000, 0, NULL};
static hq_task_def_t s_def = {
    .n_args = 2,
    .args = s_args,
    .cwd = "/tmp",
    .out = {HQ_STDIO_NONE, NULL, false},
    .err = {HQ_STDIO_NONE, NULL, false},
    .n_variants = 1,
    .variants = &s_variant,
    .crash_limit = 5,
};
static hq_range_t s_ids = {0, 999999, 1};
static hq_jrange_t s_ranges[] = {{1, 5}, {7, 7}, {100, 200000}};
static hq_jinst_t s_insts[] = {{4000000000u, 0}, {1, 7}, {2, 300}};

static void s_sample(enum hq_jrec_type t, hq_jrec_t *r, hq_submit_t *sub, hq_register_t *reg)
{
    memset(r, 0, sizeof *r);
    r->type = t;
    r->wall_ns = 1767323045123456789ull + t;
    switch (t) {
    case HQ_JR_SERVER_START:
        r->u.server_start.epoch = 7;
        r->u.server_start.uid = "abc123";
        break;
    case HQ_JR_SERVER_STOP:
        break;
    case HQ_JR_JOB_SUBMIT:
        memset(sub, 0, sizeof *sub);
        sub->name = "array job";
        sub->submit_dir = "/home/u";
        sub->n_defs = 1;
        sub->defs = &s_def;
        sub->ids = (hq_rangelist_t){1, &s_ids};
        r->u.job_submit.job = 12;
        r->u.job_submit.submit = sub;
        break;
    case HQ_JR_JOB_OPEN:
        r->u.job_open.job = 13;
        r->u.job_open.name = "open one";
        r->u.job_open.has_max_fails = true;
        r->u.job_open.max_fails = 4;
        break;
    case HQ_JR_JOB_CLOSE:
    case HQ_JR_JOB_FORGET:
        r->u.job.job = 14;
        break;
    case HQ_JR_JOB_CANCEL:
        r->u.job_cancel.job = 15;
        r->u.job_cancel.reason = NULL;
        break;
    case HQ_JR_TASK_STARTED:
    case HQ_JR_TASK_FINISHED:
    case HQ_JR_TASK_FAILED:
        r->u.task.job = 16;
        r->u.task.task = 4000000000u;
        r->u.task.instance = 3;
        if (t == HQ_JR_TASK_STARTED) {
            r->u.task.worker = 9;
            r->u.task.epoch = 1ull << 40;
        }
        if (t == HQ_JR_TASK_FAILED)
            r->u.task.error = "Program terminated with exit code 1";
        break;
    case HQ_JR_TASKS_CANCELED:
    case HQ_JR_TASKS_ABORTED:
        r->u.tasks.job = 17;
        r->u.tasks.n = 3;
        r->u.tasks.ranges = s_ranges;
        break;
    case HQ_JR_WORKER_UP:
        memset(reg, 0, sizeof *reg);
        reg->conf.hostname = "cn042";
        reg->conf.group = "default";
        reg->conf.work_dir = "/tmp/w";
        reg->conf.listen_address = "";
        reg->conf.manager_job_id = "";
        reg->conf.version = "x";
        reg->conf.heartbeat_ns = 8000000000ull;
        r->u.worker_up.worker = 3;
        r->u.worker_up.epoch = 21;
        r->u.worker_up.reg = reg;
        break;
    case HQ_JR_WORKER_LOST:
        r->u.worker_lost.worker = 3;
        r->u.worker_lost.reason = 2;
        r->u.worker_lost.text = "heartbeat lost";
        break;
    case HQ_JR_ID_HIGHWATER:
        r->u.highwater.job = 100;
        r->u.highwater.worker = 50;
        break;
    case HQ_JR_TASK_STATE:
        r->u.task_state.job = 18;
        r->u.task_state.task = 2;
        r->u.task_state.state = 4;
        r->u.task_state.instance = 5;
        r->u.task_state.worker = 6;
        r->u.task_state.crashes = 2;
        r->u.task_state.start_ns = 11;
        r->u.task_state.end_ns = 12;
        r->u.task_state.error = "boom";
        break;
    case HQ_JR_SNAP_END:
        r->u.snap_end.count = 3;
        break;
    case HQ_JR_TASKS_STARTED:
    case HQ_JR_TASKS_FINISHED:
        r->u.batch.job = 19;
        if (t == HQ_JR_TASKS_STARTED) {
            r->u.batch.worker = 8;
            r->u.batch.epoch = 1ull << 41;
        }
        r->u.batch.n = 3;
        r->u.batch.insts = s_insts;
        break;
    }
}

static void s_check_same(const hq_jrec_t *a, const hq_jrec_t *b)
{
    cr_assert_eq(a->type, b->type);
    cr_assert_eq(a->wall_ns, b->wall_ns);
    switch (a->type) {
    case HQ_JR_SERVER_START:
        cr_assert_eq(b->u.server_start.epoch, 7);
        cr_assert_str_eq(b->u.server_start.uid, "abc123");
        break;
    case HQ_JR_JOB_SUBMIT: {
        const hq_submit_t *s = &b->u.job_submit.msg->u.submit;
        cr_assert_eq(b->u.job_submit.job, 12);
        cr_assert_str_eq(s->name, "array job");
        cr_assert_eq(s->ids.n, 1);
        cr_assert_eq(s->ids.ranges[0].end, 999999);
        cr_assert_str_eq(s->defs[0].args[1], "1");
        break;
    }
    case HQ_JR_JOB_OPEN:
        cr_assert_eq(b->u.job_open.job, 13);
        cr_assert_str_eq(b->u.job_open.name, "open one");
        cr_assert(b->u.job_open.has_max_fails);
        cr_assert_eq(b->u.job_open.max_fails, 4);
        break;
    case HQ_JR_JOB_CLOSE:
    case HQ_JR_JOB_FORGET:
        cr_assert_eq(b->u.job.job, 14);
        break;
    case HQ_JR_JOB_CANCEL:
        cr_assert_eq(b->u.job_cancel.job, 15);
        cr_assert_null(b->u.job_cancel.reason);
        break;
    case HQ_JR_TASK_STARTED:
    case HQ_JR_TASK_FINISHED:
    case HQ_JR_TASK_FAILED:
        cr_assert_eq(b->u.task.job, 16);
        cr_assert_eq(b->u.task.task, 4000000000u);
        cr_assert_eq(b->u.task.instance, 3);
        cr_assert_eq(b->u.task.worker, a->u.task.worker);
        cr_assert_eq(b->u.task.epoch, a->u.task.epoch);
        if (a->u.task.error)
            cr_assert_str_eq(b->u.task.error, a->u.task.error);
        else
            cr_assert_null(b->u.task.error);
        break;
    case HQ_JR_TASKS_STARTED:
    case HQ_JR_TASKS_FINISHED:
        cr_assert_eq(b->u.batch.job, 19);
        cr_assert_eq(b->u.batch.worker, a->u.batch.worker);
        cr_assert_eq(b->u.batch.epoch, a->u.batch.epoch);
        cr_assert_eq(b->u.batch.n, 3);
        for (int k = 0; k < 3; k++) {
            cr_assert_eq(b->u.batch.insts[k].task, s_insts[k].task);
            cr_assert_eq(b->u.batch.insts[k].instance, s_insts[k].instance);
        }
        break;
    case HQ_JR_TASKS_CANCELED:
    case HQ_JR_TASKS_ABORTED:
        cr_assert_eq(b->u.tasks.job, 17);
        cr_assert_eq(b->u.tasks.n, 3);
        for (int k = 0; k < 3; k++) {
            cr_assert_eq(b->u.tasks.ranges[k].first, s_ranges[k].first);
            cr_assert_eq(b->u.tasks.ranges[k].last, s_ranges[k].last);
        }
        break;
    case HQ_JR_WORKER_UP:
        cr_assert_eq(b->u.worker_up.worker, 3);
        cr_assert_eq(b->u.worker_up.epoch, 21);
        cr_assert_str_eq(b->u.worker_up.msg->u.reg.conf.hostname, "cn042");
        break;
    case HQ_JR_WORKER_LOST:
        cr_assert_eq(b->u.worker_lost.reason, 2);
        cr_assert_str_eq(b->u.worker_lost.text, "heartbeat lost");
        break;
    case HQ_JR_ID_HIGHWATER:
        cr_assert_eq(b->u.highwater.job, 100);
        cr_assert_eq(b->u.highwater.worker, 50);
        break;
    case HQ_JR_TASK_STATE:
        cr_assert_eq(b->u.task_state.state, 4);
        cr_assert_eq(b->u.task_state.crashes, 2);
        cr_assert_eq(b->u.task_state.end_ns, 12);
        cr_assert_str_eq(b->u.task_state.error, "boom");
        break;
    case HQ_JR_SNAP_END:
        cr_assert_eq(b->u.snap_end.count, 3);
        break;
    case HQ_JR_SERVER_STOP:
        break;
    }
}

Test(journal, every_record_type_round_trips_through_frame_and_decoder)
{
    for (int t = 1; t <= HQ_JR_TYPE_MAX; t++) {
        hq_jrec_t r, d;
        hq_submit_t sub;
        hq_register_t reg;
        s_sample((enum hq_jrec_type)t, &r, &sub, &reg);
        r.lsn = 1000 + t;
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0;
        hq_err_t err = {{0}};
        cr_assert_eq(hq_jrec_frame(&r, &buf, &len, &cap, &err), 0, "%s: %s", hq_jrec_name(t),
                     err.text);
        hq_jscratch_t sc = {0};
        cr_assert_eq(hq_jrec_decode(buf + 8, len - 8, &d, &sc, &err), 0, "%s: %s", hq_jrec_name(t),
                     err.text);
        cr_assert_eq(d.lsn, 1000u + t);
        s_check_same(&r, &d);
        /* Every strict prefix of the payload is refused. */
        for (size_t n = 0; n < len - 8; n++) {
            hq_jrec_t x;
            cr_assert_eq(hq_jrec_decode(buf + 8, n, &x, &sc, &err), -1);
        }
        hq_jrec_clear(&d);
        hq_jscratch_free(&sc);
        free(buf);
    }
}

typedef struct s_rt {
    int n;
    int bad;
} s_rt_t;

static int s_rt_fn(hq_jrec_t *rec, bool from_snapshot, void *arg, hq_err_t *err)
{
    s_rt_t *s = arg;
    hq_jrec_t want;
    hq_submit_t sub;
    hq_register_t reg;
    s->n++;
    s_sample(rec->type, &want, &sub, &reg);
    s_check_same(&want, rec);
    if (rec->lsn != (uint64_t)s->n)
        s->bad++;
    return 0;
}

Test(journal, every_record_type_survives_append_close_and_replay)
{
    hq_journal_opts_t o = s_opts();
    hq_journal_t *j = s_open_started(&o);
    for (int t = 1; t < HQ_JR_SNAP_END; t++) {
        hq_jrec_t r;
        hq_submit_t sub;
        hq_register_t reg;
        s_sample((enum hq_jrec_type)t, &r, &sub, &reg);
        hq_err_t err = {{0}};
        cr_assert_eq(hq_journal_append(j, &r, NULL, NULL, &err), (uint64_t)t, "%s", err.text);
    }
    hq_journal_close(&j);
    hq_err_t err = {{0}};
    j = hq_journal_open(s_dir, &o, &err);
    cr_assert_not_null(j, "%s", err.text);
    s_rt_t s = {0};
    hq_journal_report_t rep;
    cr_assert_eq(hq_journal_replay(j, s_rt_fn, &s, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(s.n, HQ_JR_SNAP_END - 1);
    cr_assert_eq(s.bad, 0);
    cr_assert_eq(rep.last_lsn, HQ_JR_SNAP_END - 1);
    cr_assert_str_eq(rep.note, "");
    /* Appends continue the lsn sequence in a fresh segment. */
    cr_assert_eq(hq_journal_start(j, &err), 0);
    cr_assert_eq(s_finished(j, 1, 1), (uint64_t)HQ_JR_SNAP_END);
    hq_journal_close(&j);
}

Test(journal, append_refuses_records_over_the_limits)
{
    hq_journal_opts_t o = s_opts();
    hq_journal_t *j = s_open_started(&o);
    char *big = hq_malloc(HQ_MAX_STR + 2);
    memset(big, 'x', HQ_MAX_STR + 1);
    big[HQ_MAX_STR + 1] = '\0';
    hq_jrec_t r = {.type = HQ_JR_TASK_FAILED};
    r.u.task.error = big;
    hq_err_t err = {{0}};
    cr_assert_eq(hq_journal_append(j, &r, NULL, NULL, &err), 0);
    cr_assert(strstr(err.text, "error"), "%s", err.text);
    hq_jrange_t bad[] = {{5, 3}};
    hq_jrec_t c = {.type = HQ_JR_TASKS_CANCELED};
    c.u.tasks.n = 1;
    c.u.tasks.ranges = bad;
    cr_assert_eq(hq_journal_append(j, &c, NULL, NULL, &err), 0);
    /* A refused record does not use up an lsn. */
    cr_assert_eq(s_finished(j, 1, 1), 1);
    free(big);
    hq_journal_close(&j);
}

Test(journal, decoder_refuses_unknown_types_with_a_precise_message)
{
    uint8_t payload[] = {0x93, 99, 1, 1};
    hq_jrec_t r;
    hq_jscratch_t sc = {0};
    hq_err_t err = {{0}};
    cr_assert_eq(hq_jrec_decode(payload, 4, &r, &sc, &err), -1);
    cr_assert(strstr(err.text, "unknown record type 99"), "%s", err.text);
    hq_jscratch_free(&sc);
}

/* ---- group commit and callbacks ---- */

typedef struct s_done {
    uint64_t n, last, errors;
    int last_err;
} s_done_t;

static void s_done_cb(void *arg, uint64_t lsn, int errnum)
{
    s_done_t *d = arg;
    d->n++;
    if (lsn <= d->last && !errnum)
        d->errors++; /* out of order */
    d->last = lsn;
    if (errnum) {
        d->last_err = errnum;
        d->errors++;
    }
}

Test(journal, group_commit_makes_many_appends_cost_few_fdatasyncs)
{
    hq_journal_opts_t o = s_opts();
    o.segment_size = 64 << 20;
    hq_journal_t *j = s_open_started(&o);
    s_done_t d = {0};
    for (uint32_t k = 0; k < 20000; k++) {
        hq_jrec_t r = {.type = HQ_JR_TASK_FINISHED};
        r.u.task.job = 1;
        r.u.task.task = k;
        cr_assert_neq(hq_journal_append(j, &r, s_done_cb, &d, NULL), 0);
        if (k % 100 == 99)
            hq_journal_kick(j); /* as the loop does at the end of a turn */
    }
    hq_err_t err = {{0}};
    cr_assert_eq(hq_journal_flush(j, &err), 0, "%s", err.text);
    cr_assert_eq(d.n, 20000);
    cr_assert_eq(d.errors, 0);
    cr_assert_eq(d.last, 20000);
    hq_journal_stats_t st;
    hq_journal_stats(j, &st);
    cr_assert_eq(st.durable, 20000);
    /* 4096 records per group at most: at least 5 syncs; at most one per handed-over
     * batch of 100 (records arriving during a sync join the next group). */
    cr_assert_geq(st.syncs, 5);
    cr_assert_leq(st.syncs, 200, "%" PRIu64 " fdatasyncs for 20000 records", st.syncs);
    cr_assert_leq(st.syncs, st.writes);
    hq_journal_close(&j);
}

Test(journal, records_appended_during_a_commit_form_the_next_group)
{
    hq_journal_opts_t o = s_opts();
    o.segment_size = 64 << 20;
    hq_journal_t *j = s_open_started(&o);
    s_done_t d = {0};
    /* A steady stream handed over in small batches (as loop turns under load do):
     * the writer never waits for a quiet moment, yet each fdatasync covers the many
     * batches that arrived while the previous one ran. */
    uint32_t kicks = 0;
    for (uint32_t k = 0; k < 20000; k++) {
        hq_jrec_t r = {.type = HQ_JR_TASK_FINISHED};
        r.u.task.job = 1;
        r.u.task.task = k;
        cr_assert_neq(hq_journal_append(j, &r, s_done_cb, &d, NULL), 0);
        if (k % 10 == 9) {
            hq_journal_kick(j);
            kicks++;
            hq_journal_dispatch(j);
        }
    }
    hq_err_t err = {{0}};
    cr_assert_eq(hq_journal_flush(j, &err), 0, "%s", err.text);
    cr_assert_eq(d.n, 20000);
    cr_assert_eq(d.errors, 0);
    hq_journal_stats_t st;
    hq_journal_stats(j, &st);
    cr_assert_eq(st.durable, 20000);
    cr_assert_leq(st.syncs, kicks / 4, "%" PRIu64 " fdatasyncs for %u hand-overs", st.syncs, kicks);
    hq_journal_close(&j);
}

Test(journal, a_lone_record_is_synced_without_waiting_for_a_quiet_window)
{
    hq_journal_opts_t o = s_opts();
    hq_journal_t *j = s_open_started(&o);
    s_done_t d = {0};
    hq_jrec_t r = {.type = HQ_JR_JOB_CLOSE};
    uint64_t t0 = hq_mono_ns();
    cr_assert_eq(hq_journal_append(j, &r, s_done_cb, &d, NULL), 1);
    hq_journal_kick(j);
    while (!d.n && hq_mono_ns() - t0 < 2000000000ull) {
        usleep(200);
        hq_journal_dispatch(j);
    }
    cr_assert_eq(d.n, 1);
    cr_assert_eq(d.errors, 0);
    /* Committed as soon as the writer has it: one write + one fdatasync, well below the
     * 100 ms hard deadline. */
    cr_assert_lt(hq_mono_ns() - t0, 100000000ull);
    hq_journal_close(&j);
}

Test(journal, segments_roll_when_full_and_replay_in_order)
{
    hq_journal_opts_t o = s_opts();
    o.segment_size = 4096;
    hq_journal_t *j = s_open_started(&o);
    for (uint32_t k = 0; k < 2000; k++) {
        s_finished(j, 1, k);
        if (k % 50 == 49)
            cr_assert_eq(hq_journal_flush(j, NULL), 0);
    }
    hq_journal_stats_t st;
    hq_journal_close(&j);
    s_seen_t *seen = hq_calloc(1, sizeof *seen);
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(seen->n, 2000);
    for (uint32_t k = 0; k < 2000; k++)
        cr_assert_eq(seen->tasks[k], k);
    cr_assert_gt(rep.segments, 10);
    (void)st;
    free(seen);
}

Test(journal, a_restart_continues_the_clean_final_segment_instead_of_a_new_file)
{
    hq_journal_opts_t o = s_opts();
    for (uint32_t run = 0; run < 3; run++) {
        hq_journal_t *j = s_open_started(&o);
        for (uint32_t k = 0; k < 10; k++)
            cr_assert_eq(s_finished(j, 1, 10 * run + k), 10 * run + k + 1);
        hq_journal_close(&j);
    }
    char *seg2 = s_seg(2);
    cr_assert_neq(access(seg2, F_OK), 0, "restarts must not preallocate new segments");
    free(seg2);
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(seen.n, 30);
    cr_assert_eq(seen.tasks[29], 29);
}

/* ---- torn tails ---- */

Test(journal, torn_tail_at_every_offset_of_the_last_record_is_truncated)
{
    hq_journal_opts_t o = s_opts();
    o.segment_size = 4096; /* small: the scan after each cut stays cheap */
    hq_journal_t *j = s_open_started(&o);
    hq_jrec_t r = {.type = HQ_JR_TASK_FAILED};
    r.u.task.job = 3;
    r.u.task.error = "Program terminated with signal 9";
    for (uint32_t k = 0; k < 10; k++) {
        r.u.task.task = k;
        cr_assert_neq(hq_journal_append(j, &r, NULL, NULL, NULL), 0);
    }
    hq_journal_close(&j);
    char *seg = s_seg(1);
    uint8_t *img;
    size_t len;
    cr_assert_eq(hq_read_file(seg, 1 << 20, (char **)&img, &len), 0);
    /* Find where the last record starts and ends. */
    size_t off = HQ_JHEADER_SIZE, last = 0, end = 0;
    for (int k = 0; k < 10; k++) {
        uint32_t n =
            img[off] | img[off + 1] << 8 | img[off + 2] << 16 | (uint32_t)img[off + 3] << 24;
        last = off;
        off += 8 + n;
    }
    end = off;
    for (size_t cut = last; cut < end; cut++) {
        /* Rewrite the segment as the crash left it: bytes before cut, zeros after. */
        int fd = open(seg, O_WRONLY | O_TRUNC);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, img, cut), (ssize_t)cut);
        cr_assert_eq(ftruncate(fd, (off_t)len), 0);
        close(fd);
        /* Remove the segments earlier opens created, so seg 1 is final. */
        for (uint64_t s = 2; s < 4; s++) {
            char *p = s_seg(s);
            unlink(p);
            free(p);
        }
        s_seen_t seen;
        hq_journal_report_t rep;
        hq_err_t err = {{0}};
        cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "cut %zu: %s", cut, err.text);
        cr_assert_eq(seen.n, 9, "cut %zu", cut);
        cr_assert_eq(rep.last_lsn, 9);
        /* Dropped: the partial record up to its last non-zero byte (the rest is the
         * zeroed preallocation). */
        size_t junk = cut;
        while (junk > last && img[junk - 1] == 0)
            junk--;
        bool zeros = junk == last;
        cr_assert_eq(rep.torn_bytes, junk - last, "cut %zu: %" PRIu64, cut, rep.torn_bytes);
        struct stat st;
        cr_assert_eq(stat(seg, &st), 0);
        if (!zeros) {
            cr_assert_eq((size_t)st.st_size, last, "cut %zu: tail not truncated", cut);
            cr_assert(strstr(rep.note, "torn tail"), "%s", rep.note);
        }
    }
    /* The repaired segment is continued by the next start, preallocation restored. */
    j = s_open_started(&o);
    cr_assert_eq(s_finished(j, 3, 99), 10);
    hq_journal_close(&j);
    struct stat st;
    cr_assert_eq(stat(seg, &st), 0);
    cr_assert_eq((size_t)st.st_size, (size_t)o.segment_size);
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(seen.n, 10);
    cr_assert_eq(seen.tasks[9], 99);
    free(img);
    free(seg);
}

/* ---- corruption ---- */

static void s_three_segments(hq_journal_opts_t *o)
{
    *o = s_opts();
    o->segment_size = 4096;
    hq_journal_t *j = s_open_started(o);
    for (uint32_t k = 0; k < 300; k++) {
        s_finished(j, 1, k);
        if (k % 20 == 19)
            hq_journal_flush(j, NULL);
    }
    hq_journal_close(&j);
}

Test(journal, a_bit_flip_in_a_middle_segment_is_refused_with_segment_and_offset)
{
    hq_journal_opts_t o;
    s_three_segments(&o);
    char *seg = s_seg(2);
    s_flip_bit(seg, HQ_JHEADER_SIZE + 100);
    free(seg);
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), -1);
    cr_assert(strstr(err.text, "corrupted"), "%s", err.text);
    cr_assert(strstr(err.text, "seg-0000000000000002.hqj offset"), "%s", err.text);
    /* Refusal changes nothing: a second attempt fails the same way. */
    hq_err_t err2 = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err2), -1);
    cr_assert_str_eq(err.text, err2.text);
}

Test(journal, salvage_keeps_the_prefix_and_says_what_was_lost)
{
    hq_journal_opts_t o;
    s_three_segments(&o);
    char *seg = s_seg(2);
    s_flip_bit(seg, HQ_JHEADER_SIZE + 100);
    free(seg);
    o.salvage = true;
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert(rep.salvaged);
    cr_assert_gt(seen.n, 0);
    cr_assert_lt(seen.n, 300);
    for (uint64_t k = 0; k < seen.n; k++)
        cr_assert_eq(seen.lsns[k], k + 1);
    cr_assert(strstr(rep.note, "salvage"), "%s", rep.note);
    /* The salvaged journal opens cleanly afterwards and continues after the prefix. */
    o.salvage = false;
    uint64_t kept = seen.n;
    hq_journal_t *j = s_open_started(&o);
    cr_assert_eq(s_finished(j, 2, 0), kept + 1);
    hq_journal_close(&j);
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(seen.n, kept + 1);
}

Test(journal, corruption_in_the_final_segment_with_valid_records_after_it_is_refused)
{
    hq_journal_opts_t o = s_opts();
    hq_journal_t *j = s_open_started(&o);
    for (uint32_t k = 0; k < 50; k++)
        s_finished(j, 1, k);
    hq_journal_close(&j);
    char *seg = s_seg(2); /* the empty segment of the last close would be final: drop it */
    unlink(seg);
    free(seg);
    seg = s_seg(1);
    s_flip_bit(seg, HQ_JHEADER_SIZE + 40);
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), -1);
    cr_assert(strstr(err.text, "valid records follow"), "%s", err.text);
    free(seg);
}

/* ---- lock ---- */

Test(journal, a_second_opener_is_refused_and_told_the_holders_pid)
{
    hq_journal_opts_t o = s_opts();
    hq_err_t err = {{0}};
    hq_journal_t *j = hq_journal_open(s_dir, &o, &err);
    cr_assert_not_null(j, "%s", err.text);
    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        hq_err_t e = {{0}};
        hq_journal_t *j2 = hq_journal_open(s_dir, &o, &e);
        ssize_t w = write(pfd[1], e.text, strlen(e.text) + 1);
        (void)w;
        _exit(j2 ? 1 : 0);
    }
    char msg[2048] = "";
    cr_assert_gt(read(pfd[0], msg, sizeof msg - 1), 0);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "second open succeeded");
    char want[64];
    snprintf(want, sizeof want, "in use by another broker (pid %ld)", (long)getpid());
    cr_assert(strstr(msg, want), "%s", msg);
    hq_journal_close(&j);
    /* Released on close. */
    j = hq_journal_open(s_dir, &o, &err);
    cr_assert_not_null(j, "%s", err.text);
    hq_journal_close(&j);
    close(pfd[0]);
    close(pfd[1]);
}

/* ---- versions ---- */

static void s_rewrite_header_version(const char *path, uint16_t major, uint16_t minor)
{
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    uint8_t h[HQ_JHEADER_SIZE];
    cr_assert_eq(pread(fd, h, sizeof h, 0), (ssize_t)sizeof h);
    h[8] = (uint8_t)major;
    h[9] = (uint8_t)(major >> 8);
    h[10] = (uint8_t)minor;
    h[11] = (uint8_t)(minor >> 8);
    uint32_t c = hq_crc32c(0, h, 60);
    for (int k = 0; k < 4; k++)
        h[60 + k] = (uint8_t)(c >> (8 * k));
    cr_assert_eq(pwrite(fd, h, sizeof h, 0), (ssize_t)sizeof h);
    close(fd);
}

Test(journal, newer_minor_or_other_major_is_refused_and_files_left_untouched)
{
    hq_journal_opts_t o = s_opts();
    hq_journal_t *j = s_open_started(&o);
    s_finished(j, 1, 1);
    hq_journal_close(&j);
    char *seg = s_seg(1);
    s_rewrite_header_version(seg, HQ_JFORMAT_MAJOR, HQ_JFORMAT_MINOR + 1);
    struct stat before, after;
    cr_assert_eq(stat(seg, &before), 0);
    char *tmp = hq_asprintf("%s/seg-0000000000000009.hqj.tmp", s_dir);
    int fd = open(tmp, O_CREAT | O_WRONLY, 0600);
    close(fd);
    hq_err_t err = {{0}};
    cr_assert_null(hq_journal_open(s_dir, &o, &err));
    char want[64];
    snprintf(want, sizeof want, "format 1.%d is not supported", HQ_JFORMAT_MINOR + 1);
    cr_assert(strstr(err.text, want), "%s", err.text);
    cr_assert(strstr(err.text, "newer hq"), "%s", err.text);
    cr_assert(strstr(err.text, "untouched"), "%s", err.text);
    cr_assert_eq(stat(seg, &after), 0);
    cr_assert_eq(before.st_size, after.st_size);
    cr_assert_eq(access(tmp, F_OK), 0, "a refusal must not clean up either");
    s_rewrite_header_version(seg, 2, 0);
    cr_assert_null(hq_journal_open(s_dir, &o, &err));
    cr_assert(strstr(err.text, "format 2.0 is not supported"), "%s", err.text);
    free(tmp);
    free(seg);
}

Test(journal, a_segment_of_an_older_minor_is_replayed_but_not_continued)
{
    hq_journal_opts_t o = s_opts();
    hq_journal_t *j = s_open_started(&o);
    s_finished(j, 1, 1);
    hq_journal_close(&j);
    char *seg1 = s_seg(1), *seg2 = s_seg(2);
    s_rewrite_header_version(seg1, HQ_JFORMAT_MAJOR, HQ_JFORMAT_MINOR - 1);
    struct stat before, after;
    cr_assert_eq(stat(seg1, &before), 0);
    j = s_open_started(&o);
    s_finished(j, 1, 2);
    hq_journal_close(&j);
    cr_assert_eq(access(seg2, F_OK), 0, "new records go to a segment of this minor");
    cr_assert_eq(stat(seg1, &after), 0);
    cr_assert_eq(before.st_mtim.tv_sec, after.st_mtim.tv_sec);
    cr_assert_eq(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec, "the old segment is not written");
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(seen.n, 2, "both records replay");
    free(seg1);
    free(seg2);
}

/* ---- disk errors ---- */

typedef struct s_states {
    int unavailable, ok, poisoned, last_err;
} s_states_t;

static void s_state_cb(void *arg, enum hq_journal_state st, int errnum)
{
    s_states_t *s = arg;
    if (st == HQ_JOURNAL_UNAVAILABLE)
        s->unavailable++;
    else if (st == HQ_JOURNAL_OK)
        s->ok++;
    else
        s->poisoned++;
    s->last_err = errnum;
}

static void s_wait_for(hq_journal_t *j, s_done_t *d, uint64_t n)
{
    uint64_t t0 = hq_mono_ns();
    while (d->n < n && hq_mono_ns() - t0 < 5000000000ull) {
        usleep(500);
        hq_journal_dispatch(j);
    }
    cr_assert_eq(d->n, n);
}

Test(journal, no_space_fails_pending_records_and_resumes_when_space_returns)
{
    hq_journal_opts_t o = s_opts();
    hq_journal_t *j = s_open_started(&o);
    s_states_t states = {0};
    hq_journal_on_state(j, s_state_cb, &states);
    s_done_t ok1 = {0}, bad = {0}, ok2 = {0};
    hq_jrec_t r = {.type = HQ_JR_JOB_CLOSE};
    hq_journal_append(j, &r, s_done_cb, &ok1, NULL);
    cr_assert_eq(hq_journal_flush(j, NULL), 0);
    cr_assert_eq(ok1.errors, 0);
    /* The disk fills: the write fails and so does making a new segment, for a while. */
    hq_journal_test_fault(HQ_JFAULT_WRITE, ENOSPC, 1);
    hq_journal_test_fault(HQ_JFAULT_CREATE, ENOSPC, 3);
    for (int k = 0; k < 5; k++)
        hq_journal_append(j, &r, s_done_cb, &bad, NULL);
    hq_journal_kick(j);
    s_wait_for(j, &bad, 5);
    cr_assert_eq(bad.errors, 5);
    cr_assert_eq(bad.last_err, ENOSPC);
    cr_assert_eq(states.unavailable, 1);
    cr_assert_not(hq_journal_available(j));
    /* Space returns: the writer's back-off retry gets a fresh segment by itself. */
    uint64_t t0 = hq_mono_ns();
    while (!states.ok && hq_mono_ns() - t0 < 5000000000ull) {
        usleep(1000);
        hq_journal_dispatch(j);
    }
    cr_assert_eq(states.ok, 1);
    cr_assert(hq_journal_available(j));
    uint64_t lsn = hq_journal_append(j, &r, s_done_cb, &ok2, NULL);
    cr_assert_eq(hq_journal_flush(j, NULL), 0);
    cr_assert_eq(ok2.n, 1);
    cr_assert_eq(ok2.errors, 0);
    hq_journal_close(&j);
    /* Replay: the first record and the one after recovery, never the failed ones. */
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(seen.n, 2);
    cr_assert_eq(seen.lsns[0], 1);
    cr_assert_eq(seen.lsns[1], lsn);
}

Test(journal, fdatasync_eio_poisons_the_segment_and_rolls_over)
{
    hq_journal_opts_t o = s_opts();
    hq_journal_t *j = s_open_started(&o);
    s_states_t states = {0};
    hq_journal_on_state(j, s_state_cb, &states);
    s_done_t ok1 = {0}, bad = {0}, ok2 = {0};
    hq_jrec_t r = {.type = HQ_JR_JOB_CLOSE};
    hq_journal_append(j, &r, s_done_cb, &ok1, NULL);
    cr_assert_eq(hq_journal_flush(j, NULL), 0);
    hq_journal_test_fault(HQ_JFAULT_SYNC, EIO, 1);
    for (int k = 0; k < 3; k++)
        hq_journal_append(j, &r, s_done_cb, &bad, NULL);
    hq_journal_kick(j);
    s_wait_for(j, &bad, 3);
    cr_assert_eq(bad.errors, 3);
    cr_assert_eq(bad.last_err, EIO);
    cr_assert_eq(states.poisoned, 1);
    hq_journal_stats_t st;
    hq_journal_stats(j, &st);
    cr_assert_eq(st.segments, 2, "a fresh segment after the failed sync");
    hq_journal_append(j, &r, s_done_cb, &ok2, NULL);
    cr_assert_eq(hq_journal_flush(j, NULL), 0);
    cr_assert_eq(ok2.errors, 0);
    hq_journal_close(&j);
    /* The failed records are in the poisoned segment (the write worked) but the next
     * header says they were never durable: replay skips them. */
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(seen.n, 2);
    cr_assert_eq(seen.lsns[0], 1);
    cr_assert_eq(seen.lsns[1], 5);
    cr_assert_gt(rep.discarded, 0);
}

Test(journal, real_file_size_limit_surfaces_as_an_error_not_a_crash)
{
    hq_journal_opts_t o = s_opts(); /* 1 MiB segments: preallocated beyond the limit */
    hq_journal_t *j = s_open_started(&o);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 8192;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    s_done_t d = {0};
    hq_jrec_t r = {.type = HQ_JR_TASK_FAILED};
    r.u.task.error =
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
    for (int k = 0; k < 200; k++)
        hq_journal_append(j, &r, s_done_cb, &d, NULL);
    hq_journal_flush(j, NULL);
    s_wait_for(j, &d, 200);
    cr_assert_gt(d.errors, 0, "writes past the limit must fail");
    cr_assert_eq(d.last_err, EFBIG);
    cr_assert_not(hq_journal_available(j));
    setrlimit(RLIMIT_FSIZE, &old);
    hq_journal_close(&j);
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(seen.n, 200 - d.errors, "exactly the acked records are replayed");
}

/* ---- snapshots ---- */

/* A snapshot covers the records settled so far: flush first so it covers all. */
static void s_write_snapshot(hq_journal_t *j, uint32_t n_tasks, s_done_t *d)
{
    hq_err_t err = {{0}};
    cr_assert_eq(hq_journal_flush(j, &err), 0, "%s", err.text);
    hq_jsnap_t *s = hq_journal_snapshot_begin(j, &err);
    cr_assert_not_null(s, "%s", err.text);
    for (uint32_t k = 0; k < n_tasks; k++) {
        hq_jrec_t r = {.type = HQ_JR_TASK_STATE};
        r.u.task_state.job = 1;
        r.u.task_state.task = k;
        r.u.task_state.state = 3;
        cr_assert_eq(hq_jsnap_add(s, &r, &err), 0, "%s", err.text);
    }
    cr_assert_eq(hq_jsnap_commit(&s, s_done_cb, d, &err), 0, "%s", err.text);
}

Test(journal, snapshot_then_tail_replays_only_later_records)
{
    hq_journal_opts_t o = s_opts();
    o.segment_size = 4096;
    hq_journal_t *j = s_open_started(&o);
    for (uint32_t k = 0; k < 100; k++)
        s_finished(j, 1, k);
    s_done_t d = {0};
    s_write_snapshot(j, 100, &d);
    s_wait_for(j, &d, 1);
    cr_assert_eq(d.errors, 0);
    for (uint32_t k = 100; k < 110; k++)
        s_finished(j, 1, k);
    hq_journal_close(&j);
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(rep.snapshot_lsn, 100);
    cr_assert_eq(seen.n_snap, 100);
    cr_assert_eq(seen.n, 10);
    cr_assert_eq(seen.lsns[0], 101);
}

/* A client mutation is applied when its record is durable, so a snapshot taken while
 * one waits may lack it: the snapshot must not claim that record's lsn, and replay
 * must give it back from the tail. */
Test(journal, a_snapshot_never_covers_a_record_whose_completion_has_not_run)
{
    hq_journal_opts_t o = s_opts();
    o.segment_size = 4096;
    hq_journal_t *j = s_open_started(&o);
    for (uint32_t k = 0; k < 20; k++)
        s_finished(j, 1, k);
    hq_err_t err = {{0}};
    cr_assert_eq(hq_journal_flush(j, &err), 0, "%s", err.text);
    s_done_t pending = {0};
    hq_jrec_t r = {.type = HQ_JR_TASK_FINISHED};
    r.u.task.job = 2;
    r.u.task.task = 7;
    uint64_t lsn = hq_journal_append(j, &r, s_done_cb, &pending, &err);
    cr_assert_eq(lsn, 21, "%s", err.text);
    /* the main loop has not run the callback yet: the state lacks job 2 */
    hq_jsnap_t *s = hq_journal_snapshot_begin(j, &err);
    cr_assert_not_null(s, "%s", err.text);
    cr_assert_eq(hq_jsnap_lsn(s), 20, "the snapshot covers only settled records");
    s_done_t d = {0};
    cr_assert_eq(hq_jsnap_commit(&s, s_done_cb, &d, &err), 0, "%s", err.text);
    s_wait_for(j, &d, 1);
    cr_assert_eq(d.errors, 0);
    cr_assert_eq(pending.n, 1);
    hq_journal_close(&j);
    s_seen_t seen;
    hq_journal_report_t rep;
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(rep.snapshot_lsn, 20);
    cr_assert_eq(seen.n, 1, "the unsettled record is replayed from the tail");
    cr_assert_eq(seen.lsns[0], 21);
}

Test(journal, a_damaged_newest_snapshot_falls_back_to_the_previous_one)
{
    hq_journal_opts_t o = s_opts();
    o.segment_size = 4096;
    hq_journal_t *j = s_open_started(&o);
    s_done_t d = {0};
    for (uint32_t k = 0; k < 50; k++)
        s_finished(j, 1, k);
    s_write_snapshot(j, 50, &d);
    s_wait_for(j, &d, 1);
    for (uint32_t k = 50; k < 100; k++)
        s_finished(j, 1, k);
    s_write_snapshot(j, 100, &d);
    s_wait_for(j, &d, 2);
    cr_assert_eq(d.errors, 0);
    for (uint32_t k = 100; k < 105; k++)
        s_finished(j, 1, k);
    hq_journal_close(&j);
    char *snap = hq_asprintf("%s/snap-%016d.hqs", s_dir, 100);
    s_flip_bit(snap, HQ_JHEADER_SIZE + 30);
    free(snap);
    s_seen_t seen;
    hq_journal_report_t rep;
    hq_err_t err = {{0}};
    cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "%s", err.text);
    cr_assert_eq(rep.snapshot_lsn, 50);
    cr_assert_eq(seen.n_snap, 50);
    cr_assert_eq(seen.n, 55, "everything after the older snapshot, from kept segments");
    cr_assert(strstr(rep.note, "damaged"), "%s", rep.note);
}

/* Crash after each commit step: the old set or the new snapshot + tail, same state. */
Test(journal, a_crash_at_any_snapshot_step_leaves_a_replayable_journal)
{
    for (int step = 1; step <= 5; step++) {
        s_teardown();
        s_setup();
        hq_journal_opts_t o = s_opts();
        o.segment_size = 4096;
        hq_journal_t *j = s_open_started(&o);
        s_done_t d = {0};
        for (uint32_t k = 0; k < 40; k++)
            s_finished(j, 1, k);
        s_write_snapshot(j, 40, &d); /* an earlier, complete snapshot */
        s_wait_for(j, &d, 1);
        for (uint32_t k = 40; k < 80; k++)
            s_finished(j, 1, k);
        hq_journal_test_snap_stop(step < 5 ? step : 0);
        s_write_snapshot(j, 80, &d);
        s_wait_for(j, &d, 2);
        cr_assert_eq(d.errors, 0);
        hq_journal_test_snap_stop(0);
        for (uint32_t k = 80; k < 85; k++)
            s_finished(j, 1, k);
        hq_journal_close(&j); /* the "crash": nothing more of the commit happens */
        s_seen_t seen;
        hq_journal_report_t rep;
        hq_err_t err = {{0}};
        cr_assert_eq(s_replay(&o, &seen, &rep, &err), 0, "step %d: %s", step, err.text);
        /* Total state = snapshot records + later records = 85 task results either way. */
        cr_assert_eq(seen.n_snap + seen.n, rep.snapshot_lsn == 80 ? 85 : 40 + 45, "step %d", step);
        cr_assert(rep.snapshot_lsn == 40 || rep.snapshot_lsn == 80, "step %d", step);
        cr_assert_eq(rep.snapshot_lsn, step >= 3 ? 80 : 40, "step %d", step);
        cr_assert_eq(rep.last_lsn, 85);
    }
}

/* ---- fuzz seed corpus ---- */

static void s_corpus_file(const char *dir, const char *name, enum hq_jfile_kind kind,
                          const uint8_t *recs, size_t len)
{
    hq_jheader_t h = {.kind = kind,
                      .major = HQ_JFORMAT_MAJOR,
                      .minor = HQ_JFORMAT_MINOR,
                      .seq = kind == HQ_JFILE_SNAPSHOT ? 3 : 1,
                      .created_ns = 1767323045000000000ull,
                      .uid = "abc123"};
    uint8_t hb[HQ_JHEADER_SIZE];
    hq_jheader_encode(&h, hb);
    char *p = hq_asprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f, "%s", p);
    fwrite(hb, 1, sizeof hb, f);
    if (len)
        fwrite(recs, 1, len, f);
    fclose(f);
    free(p);
}

/* Writes real file images as the fuzz target's seeds when HQ_FUZZ_CORPUS_OUT is set. */
Test(journal, writes_the_fuzz_seed_corpus_when_asked)
{
    const char *dir = getenv("HQ_FUZZ_CORPUS_OUT");
    if (!dir)
        return;
    uint8_t *all = NULL;
    size_t all_len = 0, all_cap = 0;
    for (int t = 1; t <= HQ_JR_TYPE_MAX; t++) {
        hq_jrec_t r;
        hq_submit_t sub;
        hq_register_t reg;
        s_sample((enum hq_jrec_type)t, &r, &sub, &reg);
        r.lsn = 1;
        uint8_t *buf = NULL;
        size_t len = 0, cap = 0;
        cr_assert_eq(hq_jrec_frame(&r, &buf, &len, &cap, NULL), 0);
        char name[64];
        snprintf(name, sizeof name, "seg-%02d-%s", t, hq_jrec_name(t));
        s_corpus_file(dir, name, HQ_JFILE_SEGMENT, buf, len);
        free(buf);
        if (t != HQ_JR_SNAP_END && t != HQ_JR_JOB_SUBMIT && t != HQ_JR_WORKER_UP) {
            r.lsn = (uint64_t)t;
            cr_assert_eq(hq_jrec_frame(&r, &all, &all_len, &all_cap, NULL), 0);
        }
    }
    s_corpus_file(dir, "seg-mixed", HQ_JFILE_SEGMENT, all, all_len);
    s_corpus_file(dir, "seg-torn", HQ_JFILE_SEGMENT, all, all_len - 5);
    free(all);
    all = NULL;
    all_len = all_cap = 0;
    for (uint64_t k = 1; k <= 3; k++) {
        hq_jrec_t r;
        s_sample(HQ_JR_TASK_STATE, &r, NULL, NULL);
        r.lsn = k;
        cr_assert_eq(hq_jrec_frame(&r, &all, &all_len, &all_cap, NULL), 0);
    }
    hq_jrec_t end = {.type = HQ_JR_SNAP_END, .lsn = 4};
    end.u.snap_end.count = 3;
    cr_assert_eq(hq_jrec_frame(&end, &all, &all_len, &all_cap, NULL), 0);
    s_corpus_file(dir, "snap-3", HQ_JFILE_SNAPSHOT, all, all_len);
    free(all);
}
