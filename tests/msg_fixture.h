/* The wire-codec test harness shared by test_msg_roundtrip.c, test_msg_validate.c
 * and test_msg_reject.c: a non-trivial sample of every message type (s_sample), a
 * field-by-field comparison (s_eq_msg), encode / round-trip / reject helpers and
 * s_frame to build a frame around raw body bytes. */
#ifndef HQ_TEST_MSG_FIXTURE_H
#define HQ_TEST_MSG_FIXTURE_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_msg.h"
#include "hq_util.h"

/* ---- sample messages (static storage, borrowed by the encoder) ---- */

static char *s_args[] = {"/bin/sh", "-c", "echo \"$HQ_TASK_ID\" \xc3\xa9"};
static char *s_args2[] = {"hostname"};
static hq_kv_t s_env[] = {{"A", "1"}, {"EMPTY", ""}, {"PATH_EXTRA", "/opt/x:/opt/y"}};
static hq_rreq_t s_req0[] = {{"cpus", false, 2 * HQ_AMOUNT_ONE, HQ_POLICY_COMPACT},
                             {"gpus/nvidia", false, 5000, HQ_POLICY_FORCE_TIGHT}};
static hq_rreq_t s_req1[] = {{"cpus", true, 0, HQ_POLICY_SCATTER},
                             {"mem", false, 1024LL * HQ_AMOUNT_ONE, HQ_POLICY_FORCE_COMPACT}};
static hq_rvariant_t s_variants[] = {{0, 60000000000ULL, HQ_AMOUNT_ONE, 2, s_req0},
                                     {2, 0, 5000, 2, s_req1}};
static hq_rvariant_t s_variants2[] = {{0, 0, HQ_AMOUNT_ONE, 0, NULL}};
static uint8_t s_stdin[] = {'l', 'i', 'n', 'e', 0, '\n', 0xff};

static inline hq_task_def_t s_def(void)
{
    hq_task_def_t d = {
        .n_args = 3,
        .args = s_args,
        .n_env = 3,
        .env = s_env,
        .cwd = "%{SUBMIT_DIR}/work",
        .out = {HQ_STDIO_FILE, "%{CWD}/job-%{JOB_ID}/%{TASK_ID}.stdout", true},
        .err = {HQ_STDIO_NONE, NULL, false},
        .stdin_data = {sizeof s_stdin, s_stdin},
        .n_variants = 2,
        .variants = s_variants,
        .time_limit_ns = 3600000000000ULL,
        .priority = -7,
        .crash_kind = HQ_CRASH_NEVER_RESTART,
        .crash_limit = 5,
        .pin = HQ_PIN_OMP,
        .task_dir = true,
    };
    return d;
}

static inline hq_task_def_t s_def2(void)
{
    hq_task_def_t d = {
        .n_args = 1,
        .args = s_args2,
        .cwd = "/tmp",
        .out = {HQ_STDIO_STREAM, NULL, false},
        .err = {HQ_STDIO_FILE, "/tmp/err", false},
        .n_variants = 1,
        .variants = s_variants2,
        .priority = INT32_MAX,
        .crash_kind = HQ_CRASH_UNLIMITED,
        .pin = HQ_PIN_NONE,
    };
    return d;
}

static hq_task_def_t s_defs[2];
static hq_range_t s_ranges[] = {{0, 9, 3}, {12, 12, 1}, {100, 4000000000u, 7}};
static uint8_t s_e0[] = "first line";
static hq_bytes_t s_entries[] = {{10, s_e0}, {0, NULL}, {3, (uint8_t *)"{}\n"}};
static uint32_t s_deps1[] = {1};
static uint32_t s_deps2[] = {1, 2, 4000000000u};
static hq_graph_task_t s_graph[] = {{1, 0, 0, NULL}, {2, 1, 1, s_deps1}, {3, 0, 3, s_deps2}};
static char *s_log[] = {"INFO\tJob submitted successfully, job ID: 1",
                        "WARN\t\xe2\x9a\xa0 careful"};
static char *s_lab0[] = {"0", "1", "2", "3"};
static char *s_lab1[] = {"4", "5"};
static hq_label_group_t s_groups[] = {{4, s_lab0}, {2, s_lab1}};
static char *s_gpus[] = {"GPU-a", "GPU-b"};
static hq_label_group_t s_gpu_group[] = {{2, s_gpus}};
static hq_wres_t s_wres[] = {
    {"cpus", HQ_RES_GROUPS, 2, s_groups, 0, 0, 0},
    {"gpus/nvidia", HQ_RES_LIST, 1, s_gpu_group, 0, 0, 0},
    {"mem", HQ_RES_SUM, 0, NULL, 0, 0, 64000LL * HQ_AMOUNT_ONE},
    {"ports", HQ_RES_RANGE, 0, NULL, 8000, 8099, 0},
};
static hq_task_ref_t s_reports[] = {{3, 0, 1}, {7, 8, 3}};
static hq_coupling_t s_coupling[] = {
    {0, 1, 1, 0, 256},   /* cpus[1]:gpus/nvidia[0] */
    {3, 0, 0, 0, 65535}, /* ports[0]:cpus[0]=65535 */
};
static char *s_alabels[] = {"0", "3"};
static hq_ralloc_t s_allocs[] = {{"cpus", 2 * HQ_AMOUNT_ONE, 2, s_alabels},
                                 {"mem", 512LL * HQ_AMOUNT_ONE, 0, NULL}};
static hq_task_event_t s_events[] = {
    {1, 0, 1, HQ_TEV_STARTED, 1767323045123456789ULL, NULL, 2, s_allocs},
    {1, 1, 3, HQ_TEV_FAILED, 1767323046000000000ULL, "Program terminated with exit code 1", 0,
     NULL},
    {2, 7, 1, HQ_TEV_REJECTED, 0, "", 0, NULL},
};
static hq_assign_def_t s_adefs[2];
static char *s_nodes[] = {"node-a", "node-b"};
static uint8_t s_entry[] = "{\"x\": 1}";
static hq_assign_task_t s_atasks[] = {
    {1, 0, 1, 0, true, {8, s_entry}, 1, 0, NULL},
    {1, 1, 1, 0, false, {0, NULL}, 0, 0, NULL},
    {5, 3, 2, 1, false, {0, NULL}, 0, 2, s_nodes},
};
static hq_task_ref_t s_refs[] = {{1, 0, 1}, {1, 4000000000u, 7}, {UINT32_MAX, 2, 3}};
static hq_range_t s_sel_ranges[] = {{1, 3, 1}, {5, 5, 1}};
static hq_range_t s_task_ranges[] = {{0, 100, 2}};

/* Fills m with a non-trivial sample of the given type. */
static inline void s_sample(uint8_t type, hq_msg_t *m)
{
    memset(m, 0, sizeof *m);
    m->hdr.version = HQ_PROTO_VERSION;
    m->hdr.type = type;
    m->hdr.request_id = 0x0102030405060708ULL + type;
    m->hdr.epoch = 0xfedcba9876543210ULL;
    m->hdr.seq = 42 + type;
    m->hdr.ack = UINT64_MAX - type;
    s_defs[0] = s_def();
    s_defs[1] = s_def2();
    switch (type) {
    case HQ_MSG_SUBMIT:
        m->u.submit = (hq_submit_t){
            .job_id = 0,
            .name = "my \xe2\x98\x83 job",
            .has_max_fails = true,
            .max_fails = 3,
            .submit_dir = "/home/u/project",
            .stream_dir = NULL,
            .n_defs = 2,
            .defs = s_defs,
            .ids = {3, s_ranges},
            .n_entries = 3,
            .entries = s_entries,
            .n_graph = 3,
            .graph = s_graph,
        };
        break;
    case HQ_MSG_JOB_LIST:
    case HQ_MSG_JOB_INFO:
    case HQ_MSG_JOB_CANCEL:
    case HQ_MSG_JOB_FORGET:
    case HQ_MSG_JOB_WAIT:
    case HQ_MSG_JOB_OPEN:
    case HQ_MSG_JOB_CLOSE:
    case HQ_MSG_TASK_LIST:
    case HQ_MSG_TASK_INFO:
    case HQ_MSG_WORKER_LIST:
    case HQ_MSG_WORKER_INFO:
    case HQ_MSG_WORKER_STOP:
    case HQ_MSG_TASK_IDS:
    case HQ_MSG_TASK_EXPLAIN:
    case HQ_MSG_JOURNAL_READ:
    case HQ_MSG_TASK_NOTIFY:
    case HQ_MSG_ALLOC_ADD:
    case HQ_MSG_ALLOC_LIST:
    case HQ_MSG_ALLOC_INFO:
    case HQ_MSG_ALLOC_CTL:
    case HQ_MSG_ALLOC_LOG:
        m->u.query = (hq_query_t){
            .sel = {type % 3 == 0   ? HQ_SEL_IDS
                    : type % 3 == 1 ? HQ_SEL_LAST
                                    : HQ_SEL_ALL,
                    {2, s_sel_ranges}},
            .tasks = {1, s_task_ranges},
            .states = HQ_ST_RUNNING | HQ_ST_FAILED | HQ_ST_OPENED,
            .flag = type % 2 == 0,
            .text = type % 2 ? "because I said so" : NULL,
            .number = 1000ULL * type,
        };
        break;
    case HQ_MSG_REPLY:
        m->u.reply = (hq_reply_t){
            .id = 77,
            .json = "{\"result\": [1, 2], \"meta\": {}}",
            .n_log = 2,
            .log = s_log,
        };
        break;
    case HQ_MSG_ERROR:
        m->u.error = (hq_error_msg_t){HQ_ERR_NOT_FOUND, "Job 5 not found"};
        break;
    case HQ_MSG_REGISTER:
        m->u.reg = (hq_register_t){
            .conf =
                {
                    .hostname = "cn042",
                    .group = "default",
                    .work_dir = "/tmp/hq-worker/w1",
                    .listen_address = "",
                    .heartbeat_ns = 8000000000ULL,
                    .idle_timeout_ns = 0,
                    .time_limit_ns = 7200000000000ULL,
                    .overview_ns = 1,
                    .min_utilization = 0.25,
                    .on_server_lost = HQ_LOST_FINISH_RUNNING,
                    .manager = HQ_MANAGER_SLURM,
                    .manager_job_id = "123456",
                    .pid = 4242,
                    .started_ns = 1767323045000000000ULL,
                    .resources = {4, s_wres},
                    .version = "0.26.2-hq0.1.0",
                    .n_coupling = 2,
                    .coupling = s_coupling,
                },
            .prefetch = 4,
            .n_running = 2,
            .old_worker_id = 9,
            .n_reports = 2,
            .reports = s_reports,
        };
        break;
    case HQ_MSG_REGISTERED:
        m->u.registered = (hq_registered_t){
            17, "aBcD12", 8000000000ULL, 300000000000ULL, true, "0123456789abcdef0123456789abcde"};
        break;
    case HQ_MSG_RESULTS:
        m->u.results = (hq_results_t){.credit = 12, .n_events = 3, .events = s_events};
        break;
    case HQ_MSG_ASSIGN:
        s_adefs[0] = (hq_assign_def_t){1, 0, "/home/u", NULL, s_def()};
        s_adefs[1] = (hq_assign_def_t){5, 2, "/scratch", "/scratch/streams", s_def2()};
        m->u.assign = (hq_assign_t){2, s_adefs, 3, s_atasks};
        break;
    case HQ_MSG_CANCEL:
    case HQ_MSG_RETRACT:
    case HQ_MSG_NODE_OF:
        m->u.cancel = (hq_cancel_t){3, s_refs};
        break;
    case HQ_MSG_OVERVIEW:
        m->u.overview.hw_state = "{\"state\":{\"timestamp\":1}}";
        break;
    case HQ_MSG_GOODBYE:
        m->u.goodbye.reason = HQ_BYE_IDLE_TIMEOUT;
        break;
    case HQ_MSG_STOP:
        m->u.goodbye.reason = HQ_BYE_SERVER_STOP;
        break;
    default:
        break;
    }
}

/* Every known type, in protocol order. */
static const uint8_t s_types[] = {
    HQ_MSG_SERVER_INFO,  HQ_MSG_SERVER_STOP,   HQ_MSG_SUBMIT,        HQ_MSG_JOB_LIST,
    HQ_MSG_JOB_INFO,     HQ_MSG_JOB_CANCEL,    HQ_MSG_JOB_FORGET,    HQ_MSG_JOB_WAIT,
    HQ_MSG_JOB_OPEN,     HQ_MSG_JOB_CLOSE,     HQ_MSG_TASK_LIST,     HQ_MSG_TASK_INFO,
    HQ_MSG_WORKER_LIST,  HQ_MSG_WORKER_INFO,   HQ_MSG_WORKER_STOP,   HQ_MSG_JOB_SUMMARY,
    HQ_MSG_TASK_IDS,     HQ_MSG_REPLY,         HQ_MSG_ERROR,         HQ_MSG_REGISTER,
    HQ_MSG_RESULTS,      HQ_MSG_HEARTBEAT,     HQ_MSG_GOODBYE,       HQ_MSG_REGISTERED,
    HQ_MSG_ASSIGN,       HQ_MSG_CANCEL,        HQ_MSG_STOP,          HQ_MSG_TASK_EXPLAIN,
    HQ_MSG_JOURNAL_READ, HQ_MSG_JOURNAL_FLUSH, HQ_MSG_JOURNAL_PRUNE, HQ_MSG_TASK_NOTIFY,
    HQ_MSG_OVERVIEW,     HQ_MSG_DEBUG_DUMP,    HQ_MSG_RETRACT,       HQ_MSG_NODE_OF,
    HQ_MSG_ALLOC_ADD,    HQ_MSG_ALLOC_LIST,    HQ_MSG_ALLOC_INFO,    HQ_MSG_ALLOC_CTL,
    HQ_MSG_ALLOC_LOG,
};
#define N_TYPES (sizeof s_types / sizeof s_types[0])

/* ---- field-by-field comparison ---- */

static inline void s_eq_str(const char *a, const char *b, const char *what)
{
    if (!a || !b) {
        cr_assert(a == b, "%s: one side NULL (%s vs %s)", what, a ? a : "NULL", b ? b : "NULL");
        return;
    }
    cr_assert_str_eq(a, b, "%s", what);
}

static inline void s_eq_bytes(const hq_bytes_t *a, const hq_bytes_t *b, const char *what)
{
    cr_assert_eq(a->len, b->len, "%s length", what);
    cr_assert_not_null(b->data, "%s: decoded data is never NULL", what);
    cr_assert_eq(b->data[b->len], 0, "%s: decoder NUL-terminates", what);
    if (a->len)
        cr_assert_eq(memcmp(a->data, b->data, a->len), 0, "%s bytes", what);
}

static inline void s_eq_strv(uint32_t na, char **a, uint32_t nb, char **b, const char *what)
{
    cr_assert_eq(na, nb, "%s count", what);
    for (uint32_t k = 0; k < na; k++)
        s_eq_str(a[k], b[k], what);
}

static inline void s_eq_rl(const hq_rangelist_t *a, const hq_rangelist_t *b)
{
    cr_assert_eq(a->n, b->n, "range count");
    for (uint32_t k = 0; k < a->n; k++) {
        cr_assert_eq(a->ranges[k].start, b->ranges[k].start);
        cr_assert_eq(a->ranges[k].end, b->ranges[k].end);
        cr_assert_eq(a->ranges[k].step, b->ranges[k].step);
    }
}

static inline void s_eq_stdio(const hq_stdio_t *a, const hq_stdio_t *b)
{
    cr_assert_eq(a->kind, b->kind);
    s_eq_str(a->path, b->path, "stdio path");
    cr_assert_eq(a->rm_if_finished, b->rm_if_finished);
}

static inline void s_eq_def(const hq_task_def_t *a, const hq_task_def_t *b)
{
    s_eq_strv(a->n_args, a->args, b->n_args, b->args, "args");
    cr_assert_eq(a->n_env, b->n_env);
    for (uint32_t k = 0; k < a->n_env; k++) {
        s_eq_str(a->env[k].key, b->env[k].key, "env key");
        s_eq_str(a->env[k].value, b->env[k].value, "env value");
    }
    s_eq_str(a->cwd, b->cwd, "cwd");
    s_eq_stdio(&a->out, &b->out);
    s_eq_stdio(&a->err, &b->err);
    s_eq_bytes(&a->stdin_data, &b->stdin_data, "stdin");
    cr_assert_eq(a->n_variants, b->n_variants);
    for (uint32_t k = 0; k < a->n_variants; k++) {
        const hq_rvariant_t *va = &a->variants[k], *vb = &b->variants[k];
        cr_assert_eq(va->n_nodes, vb->n_nodes);
        cr_assert_eq(va->min_time_ns, vb->min_time_ns);
        cr_assert_eq(va->weight, vb->weight);
        cr_assert_eq(va->n_entries, vb->n_entries);
        for (uint32_t j = 0; j < va->n_entries; j++) {
            s_eq_str(va->entries[j].name, vb->entries[j].name, "request name");
            cr_assert_eq(va->entries[j].all, vb->entries[j].all);
            cr_assert_eq(va->entries[j].amount, vb->entries[j].amount);
            cr_assert_eq(va->entries[j].policy, vb->entries[j].policy);
        }
    }
    cr_assert_eq(a->time_limit_ns, b->time_limit_ns);
    cr_assert_eq(a->priority, b->priority);
    cr_assert_eq(a->crash_kind, b->crash_kind);
    cr_assert_eq(a->crash_limit, b->crash_limit);
    cr_assert_eq(a->pin, b->pin);
    cr_assert_eq(a->task_dir, b->task_dir);
}

static inline void s_eq_msg(const hq_msg_t *a, const hq_msg_t *b)
{
    cr_assert_eq(b->hdr.version, HQ_PROTO_VERSION);
    cr_assert_eq(a->hdr.type, b->hdr.type);
    cr_assert_eq(a->hdr.request_id, b->hdr.request_id);
    cr_assert_eq(a->hdr.epoch, b->hdr.epoch);
    cr_assert_eq(a->hdr.seq, b->hdr.seq);
    cr_assert_eq(a->hdr.ack, b->hdr.ack);
    switch (a->hdr.type) {
    case HQ_MSG_SUBMIT: {
        const hq_submit_t *x = &a->u.submit, *y = &b->u.submit;
        cr_assert_eq(x->job_id, y->job_id);
        s_eq_str(x->name, y->name, "name");
        cr_assert_eq(x->has_max_fails, y->has_max_fails);
        cr_assert_eq(x->max_fails, y->max_fails);
        s_eq_str(x->submit_dir, y->submit_dir, "submit_dir");
        s_eq_str(x->stream_dir, y->stream_dir, "stream_dir");
        cr_assert_eq(x->n_defs, y->n_defs);
        for (uint32_t k = 0; k < x->n_defs; k++)
            s_eq_def(&x->defs[k], &y->defs[k]);
        s_eq_rl(&x->ids, &y->ids);
        cr_assert_eq(x->n_entries, y->n_entries);
        for (uint32_t k = 0; k < x->n_entries; k++)
            s_eq_bytes(&x->entries[k], &y->entries[k], "entry");
        cr_assert_eq(x->n_graph, y->n_graph);
        for (uint32_t k = 0; k < x->n_graph; k++) {
            cr_assert_eq(x->graph[k].id, y->graph[k].id);
            cr_assert_eq(x->graph[k].def_idx, y->graph[k].def_idx);
            cr_assert_eq(x->graph[k].n_deps, y->graph[k].n_deps);
            for (uint32_t j = 0; j < x->graph[k].n_deps; j++)
                cr_assert_eq(x->graph[k].deps[j], y->graph[k].deps[j]);
        }
        break;
    }
    case HQ_MSG_REPLY:
        cr_assert_eq(a->u.reply.id, b->u.reply.id);
        s_eq_str(a->u.reply.json, b->u.reply.json, "json");
        s_eq_strv(a->u.reply.n_log, a->u.reply.log, b->u.reply.n_log, b->u.reply.log, "log");
        break;
    case HQ_MSG_ERROR:
        cr_assert_eq(a->u.error.code, b->u.error.code);
        s_eq_str(a->u.error.message, b->u.error.message, "message");
        break;
    case HQ_MSG_REGISTER: {
        const hq_worker_conf_t *x = &a->u.reg.conf, *y = &b->u.reg.conf;
        s_eq_str(x->hostname, y->hostname, "hostname");
        s_eq_str(x->group, y->group, "group");
        s_eq_str(x->work_dir, y->work_dir, "work_dir");
        s_eq_str(x->listen_address, y->listen_address, "listen_address");
        cr_assert_eq(x->heartbeat_ns, y->heartbeat_ns);
        cr_assert_eq(x->idle_timeout_ns, y->idle_timeout_ns);
        cr_assert_eq(x->time_limit_ns, y->time_limit_ns);
        cr_assert_eq(x->overview_ns, y->overview_ns);
        cr_assert_eq(x->min_utilization, y->min_utilization);
        cr_assert_eq(x->on_server_lost, y->on_server_lost);
        cr_assert_eq(x->manager, y->manager);
        s_eq_str(x->manager_job_id, y->manager_job_id, "manager_job_id");
        cr_assert_eq(x->pid, y->pid);
        cr_assert_eq(x->started_ns, y->started_ns);
        cr_assert_eq(x->resources.n, y->resources.n);
        for (uint32_t k = 0; k < x->resources.n; k++) {
            const hq_wres_t *p = &x->resources.res[k], *q = &y->resources.res[k];
            s_eq_str(p->name, q->name, "resource name");
            cr_assert_eq(p->kind, q->kind);
            cr_assert_eq(p->n_groups, q->n_groups);
            for (uint32_t g = 0; g < p->n_groups; g++)
                s_eq_strv(p->groups[g].n, p->groups[g].labels, q->groups[g].n, q->groups[g].labels,
                          "labels");
            cr_assert_eq(p->range_start, q->range_start);
            cr_assert_eq(p->range_end, q->range_end);
            cr_assert_eq(p->sum_size, q->sum_size);
        }
        s_eq_str(x->version, y->version, "version");
        cr_assert_eq(x->n_coupling, y->n_coupling);
        for (uint32_t k = 0; k < x->n_coupling; k++)
            cr_assert_eq(memcmp(&x->coupling[k], &y->coupling[k], sizeof x->coupling[k]), 0,
                         "coupling %u differs", k);
        cr_assert_eq(a->u.reg.prefetch, b->u.reg.prefetch);
        cr_assert_eq(a->u.reg.n_running, b->u.reg.n_running);
        cr_assert_eq(a->u.reg.old_worker_id, b->u.reg.old_worker_id);
        cr_assert_eq(a->u.reg.n_reports, b->u.reg.n_reports);
        for (uint32_t k = 0; k < a->u.reg.n_reports; k++)
            cr_assert_eq(
                memcmp(&a->u.reg.reports[k], &b->u.reg.reports[k], sizeof a->u.reg.reports[k]), 0,
                "report %u differs", k);
        cr_assert_eq(a->u.reg.has_secret, b->u.reg.has_secret);
        cr_assert_eq(memcmp(a->u.reg.secret, b->u.reg.secret, HQ_SESSION_SECRET_LEN), 0);
        break;
    }
    case HQ_MSG_REGISTERED:
        cr_assert_eq(a->u.registered.worker_id, b->u.registered.worker_id);
        s_eq_str(a->u.registered.server_uid, b->u.registered.server_uid, "server_uid");
        cr_assert_eq(a->u.registered.heartbeat_ns, b->u.registered.heartbeat_ns);
        cr_assert_eq(a->u.registered.idle_timeout_ns, b->u.registered.idle_timeout_ns);
        cr_assert_eq(a->u.registered.has_secret, b->u.registered.has_secret);
        cr_assert_eq(memcmp(a->u.registered.secret, b->u.registered.secret, HQ_SESSION_SECRET_LEN),
                     0);
        break;
    case HQ_MSG_RESULTS:
        cr_assert_eq(a->u.results.credit, b->u.results.credit);
        cr_assert_eq(a->u.results.n_events, b->u.results.n_events);
        for (uint32_t k = 0; k < a->u.results.n_events; k++) {
            const hq_task_event_t *x = &a->u.results.events[k], *y = &b->u.results.events[k];
            cr_assert_eq(x->job_id, y->job_id);
            cr_assert_eq(x->task_id, y->task_id);
            cr_assert_eq(x->instance, y->instance);
            cr_assert_eq(x->kind, y->kind);
            cr_assert_eq(x->time_ns, y->time_ns);
            s_eq_str(x->error, y->error, "error");
            cr_assert_eq(x->n_allocs, y->n_allocs);
            for (uint32_t j = 0; j < x->n_allocs; j++) {
                s_eq_str(x->allocs[j].name, y->allocs[j].name, "alloc name");
                cr_assert_eq(x->allocs[j].amount, y->allocs[j].amount);
                s_eq_strv(x->allocs[j].n_labels, x->allocs[j].labels, y->allocs[j].n_labels,
                          y->allocs[j].labels, "alloc labels");
            }
        }
        break;
    case HQ_MSG_ASSIGN:
        cr_assert_eq(a->u.assign.n_defs, b->u.assign.n_defs);
        for (uint32_t k = 0; k < a->u.assign.n_defs; k++) {
            const hq_assign_def_t *x = &a->u.assign.defs[k], *y = &b->u.assign.defs[k];
            cr_assert_eq(x->job_id, y->job_id);
            cr_assert_eq(x->def_id, y->def_id);
            s_eq_str(x->submit_dir, y->submit_dir, "submit_dir");
            s_eq_str(x->stream_dir, y->stream_dir, "stream_dir");
            s_eq_def(&x->def, &y->def);
        }
        cr_assert_eq(a->u.assign.n_tasks, b->u.assign.n_tasks);
        for (uint32_t k = 0; k < a->u.assign.n_tasks; k++) {
            const hq_assign_task_t *x = &a->u.assign.tasks[k], *y = &b->u.assign.tasks[k];
            cr_assert_eq(x->job_id, y->job_id);
            cr_assert_eq(x->task_id, y->task_id);
            cr_assert_eq(x->instance, y->instance);
            cr_assert_eq(x->def_idx, y->def_idx);
            cr_assert_eq(x->has_entry, y->has_entry);
            s_eq_bytes(&x->entry, &y->entry, "entry");
            cr_assert_eq(x->variant, y->variant);
            s_eq_strv(x->n_nodes, x->nodes, y->n_nodes, y->nodes, "nodes");
        }
        break;
    case HQ_MSG_CANCEL:
    case HQ_MSG_RETRACT:
    case HQ_MSG_NODE_OF:
        cr_assert_eq(a->u.cancel.n_tasks, b->u.cancel.n_tasks);
        for (uint32_t k = 0; k < a->u.cancel.n_tasks; k++) {
            cr_assert_eq(a->u.cancel.tasks[k].job_id, b->u.cancel.tasks[k].job_id);
            cr_assert_eq(a->u.cancel.tasks[k].task_id, b->u.cancel.tasks[k].task_id);
            cr_assert_eq(a->u.cancel.tasks[k].instance, b->u.cancel.tasks[k].instance);
        }
        break;
    case HQ_MSG_GOODBYE:
    case HQ_MSG_STOP:
        cr_assert_eq(a->u.goodbye.reason, b->u.goodbye.reason);
        break;
    case HQ_MSG_OVERVIEW:
        cr_assert_str_eq(a->u.overview.hw_state, b->u.overview.hw_state);
        break;
    case HQ_MSG_SERVER_INFO:
    case HQ_MSG_SERVER_STOP:
    case HQ_MSG_JOB_SUMMARY:
    case HQ_MSG_HEARTBEAT:
    case HQ_MSG_JOURNAL_FLUSH:
    case HQ_MSG_JOURNAL_PRUNE:
    case HQ_MSG_DEBUG_DUMP:
        break;
    default: {
        const hq_query_t *x = &a->u.query, *y = &b->u.query;
        cr_assert_eq(x->sel.kind, y->sel.kind);
        s_eq_rl(&x->sel.ids, &y->sel.ids);
        s_eq_rl(&x->tasks, &y->tasks);
        cr_assert_eq(x->states, y->states);
        cr_assert_eq(x->flag, y->flag);
        s_eq_str(x->text, y->text, "text");
        cr_assert_eq(x->number, y->number);
        break;
    }
    }
}

/* ---- helpers ---- */

static inline void s_encode(const hq_msg_t *m, uint8_t **buf, size_t *len)
{
    hq_err_t err = {{0}};
    int rc = hq_msg_encode(m, buf, len, &err);
    cr_assert_eq(rc, 0, "encode %s: %s", hq_msg_type_name(m->hdr.type), err.text);
}

static inline void s_roundtrip(uint8_t type)
{
    hq_msg_t in;
    s_sample(type, &in);
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    hq_err_t err = {{0}};
    hq_msg_t *out = hq_msg_decode(buf, len, &err);
    cr_assert_not_null(out, "decode %s: %s", hq_msg_type_name(type), err.text);
    s_eq_msg(&in, out);
    /* Re-encoding the decoded message gives the same bytes. */
    uint8_t *buf2;
    size_t len2;
    s_encode(out, &buf2, &len2);
    cr_assert_eq(len, len2);
    cr_assert_eq(memcmp(buf, buf2, len), 0);
    hq_msg_destroy(&out);
    cr_assert_null(out);
    free(buf);
    free(buf2);
}

/* Decoding must fail and the error text must contain want (when not NULL). */
static inline void s_reject(const uint8_t *buf, size_t len, const char *want)
{
    hq_err_t err = {{0}};
    hq_msg_t *m = hq_msg_decode(buf, len, &err);
    if (m)
        hq_msg_destroy(&m);
    cr_assert_null(m, "decoded a frame that should be rejected (want '%s')", want ? want : "");
    cr_assert(err.text[0] != '\0', "rejection without an error text");
    if (want)
        cr_assert(strstr(err.text, want), "error '%s' does not mention '%s'", err.text, want);
}

/* A frame: header of the given type followed by body bytes. */
static inline size_t s_frame(uint8_t *out, uint8_t type, const uint8_t *body, size_t blen)
{
    memset(out, 0, HQ_HEADER_SIZE);
    out[0] = 'H';
    out[1] = 'Q';
    out[2] = HQ_PROTO_VERSION;
    out[3] = type;
    if (blen)
        memcpy(out + HQ_HEADER_SIZE, body, blen);
    return HQ_HEADER_SIZE + blen;
}

#define REJECT_BODY(type, want, ...)                                                               \
    do {                                                                                           \
        static const uint8_t body_[] = {__VA_ARGS__};                                              \
        uint8_t f_[HQ_HEADER_SIZE + sizeof body_];                                                 \
        size_t n_ = s_frame(f_, type, body_, sizeof body_);                                        \
        s_reject(f_, n_, want);                                                                    \
    } while (0)

#endif
