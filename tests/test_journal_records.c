/* The journal's record codec: CRC32C vectors, every record type round-tripping through
 * the frame and the decoder and through append, close and replay, the limits appends
 * refuse, precise decoder errors; and, when HQ_FUZZ_CORPUS_OUT is set, the seed corpus
 * of the fuzz_journal target. */
#include <criterion/criterion.h>

#include "journal_helpers.h"

TestSuite(journal, .init = s_setup, .fini = s_teardown);

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
static uint32_t s_nodes[] = {5, 9, 4000000000u};

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
    case HQ_JR_WORKER_OVERVIEW:
        r->u.overview.worker = 9;
        r->u.overview.hw_state = "{\"state\":{\"timestamp\":5}}";
        break;
    case HQ_JR_TASKS_STARTED:
    case HQ_JR_TASKS_STARTED_V:
    case HQ_JR_TASKS_FINISHED:
        r->u.batch.job = 19;
        if (t != HQ_JR_TASKS_FINISHED) {
            r->u.batch.worker = 8;
            r->u.batch.epoch = 1ull << 41;
        }
        if (t == HQ_JR_TASKS_STARTED_V)
            r->u.batch.variant = 2;
        r->u.batch.n = 3;
        r->u.batch.insts = s_insts;
        break;
    case HQ_JR_TASK_STARTED_MN:
        r->u.nodes.job = 23;
        r->u.nodes.task = 4;
        r->u.nodes.instance = 2;
        r->u.nodes.epoch = 1ull << 40;
        r->u.nodes.variant = 1;
        r->u.nodes.n = 3;
        r->u.nodes.workers = s_nodes;
        break;
    case HQ_JR_ALLOC_QUEUE:
    case HQ_JR_ALLOC_QUEUE_STATE:
    case HQ_JR_ALLOC_QUEUED:
    case HQ_JR_ALLOC_STATE:
        r->u.alloc.queue = 4;
        r->u.alloc.state = t == HQ_JR_ALLOC_QUEUE_STATE || t == HQ_JR_ALLOC_STATE ? 2 : 0;
        r->u.alloc.count = t == HQ_JR_ALLOC_QUEUED ? 3 : 0;
        r->u.alloc.id = t >= HQ_JR_ALLOC_QUEUED ? "4711.pbs" : NULL;
        r->u.alloc.text = t == HQ_JR_ALLOC_QUEUE    ? "{\"manager\":\"slurm\"}"
                          : t == HQ_JR_ALLOC_QUEUED ? "/srv/001/autoalloc/4/001"
                                                    : NULL;
        break;
    }
}

/* Record types this build does not write (numbers kept for others). */
static bool s_unused_type(int t)
{
    return strcmp(hq_jrec_name((uint32_t)t), "unknown") == 0;
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
    case HQ_JR_TASKS_STARTED_V:
    case HQ_JR_TASKS_FINISHED:
        cr_assert_eq(b->u.batch.job, 19);
        cr_assert_eq(b->u.batch.variant, a->u.batch.variant);
        cr_assert_eq(b->u.batch.worker, a->u.batch.worker);
        cr_assert_eq(b->u.batch.epoch, a->u.batch.epoch);
        cr_assert_eq(b->u.batch.n, 3);
        for (int k = 0; k < 3; k++) {
            cr_assert_eq(b->u.batch.insts[k].task, s_insts[k].task);
            cr_assert_eq(b->u.batch.insts[k].instance, s_insts[k].instance);
        }
        break;
    case HQ_JR_WORKER_OVERVIEW:
        cr_assert_eq(b->u.overview.worker, 9);
        cr_assert_str_eq(b->u.overview.hw_state, a->u.overview.hw_state);
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
    case HQ_JR_TASK_STARTED_MN:
        cr_assert_eq(b->u.nodes.job, 23);
        cr_assert_eq(b->u.nodes.task, 4);
        cr_assert_eq(b->u.nodes.instance, 2);
        cr_assert_eq(b->u.nodes.epoch, 1ull << 40);
        cr_assert_eq(b->u.nodes.variant, 1);
        cr_assert_eq(b->u.nodes.n, 3);
        for (int k = 0; k < 3; k++)
            cr_assert_eq(b->u.nodes.workers[k], s_nodes[k]);
        break;
    case HQ_JR_SERVER_STOP:
        break;
    case HQ_JR_ALLOC_QUEUE:
    case HQ_JR_ALLOC_QUEUE_STATE:
    case HQ_JR_ALLOC_QUEUED:
    case HQ_JR_ALLOC_STATE:
        cr_assert_eq(b->u.alloc.queue, a->u.alloc.queue);
        cr_assert_eq(b->u.alloc.state, a->u.alloc.state);
        cr_assert_eq(b->u.alloc.count, a->u.alloc.count);
        cr_assert((!a->u.alloc.id && !b->u.alloc.id) || strcmp(a->u.alloc.id, b->u.alloc.id) == 0);
        cr_assert((!a->u.alloc.text && !b->u.alloc.text) ||
                  strcmp(a->u.alloc.text, b->u.alloc.text) == 0);
        break;
    }
}

Test(journal, every_record_type_round_trips_through_frame_and_decoder)
{
    for (int t = 1; t <= HQ_JR_TYPE_MAX; t++) {
        if (s_unused_type(t))
            continue;
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
        if (s_unused_type(t))
            continue;
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
