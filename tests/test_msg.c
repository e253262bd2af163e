/* Tests for the wire codec (hq_msg): a round trip of every message type compared
 * field by field, the header, encoder refusals, and rejection of hostile frames:
 * truncation at every offset, trailing bytes, wrong types, out-of-range values,
 * amplification bodies, deep nesting and the malformed samples in tests/data/. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hq_mpr.h"
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

static hq_task_def_t s_def(void)
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

static hq_task_def_t s_def2(void)
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
static void s_sample(uint8_t type, hq_msg_t *m)
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
        m->u.registered = (hq_registered_t){17, "aBcD12", 8000000000ULL, 300000000000ULL};
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
        m->u.cancel = (hq_cancel_t){3, s_refs};
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
    HQ_MSG_JOURNAL_READ, HQ_MSG_JOURNAL_FLUSH, HQ_MSG_JOURNAL_PRUNE,
};
#define N_TYPES (sizeof s_types / sizeof s_types[0])

/* ---- field-by-field comparison ---- */

static void s_eq_str(const char *a, const char *b, const char *what)
{
    if (!a || !b) {
        cr_assert(a == b, "%s: one side NULL (%s vs %s)", what, a ? a : "NULL", b ? b : "NULL");
        return;
    }
    cr_assert_str_eq(a, b, "%s", what);
}

static void s_eq_bytes(const hq_bytes_t *a, const hq_bytes_t *b, const char *what)
{
    cr_assert_eq(a->len, b->len, "%s length", what);
    cr_assert_not_null(b->data, "%s: decoded data is never NULL", what);
    cr_assert_eq(b->data[b->len], 0, "%s: decoder NUL-terminates", what);
    if (a->len)
        cr_assert_eq(memcmp(a->data, b->data, a->len), 0, "%s bytes", what);
}

static void s_eq_strv(uint32_t na, char **a, uint32_t nb, char **b, const char *what)
{
    cr_assert_eq(na, nb, "%s count", what);
    for (uint32_t k = 0; k < na; k++)
        s_eq_str(a[k], b[k], what);
}

static void s_eq_rl(const hq_rangelist_t *a, const hq_rangelist_t *b)
{
    cr_assert_eq(a->n, b->n, "range count");
    for (uint32_t k = 0; k < a->n; k++) {
        cr_assert_eq(a->ranges[k].start, b->ranges[k].start);
        cr_assert_eq(a->ranges[k].end, b->ranges[k].end);
        cr_assert_eq(a->ranges[k].step, b->ranges[k].step);
    }
}

static void s_eq_stdio(const hq_stdio_t *a, const hq_stdio_t *b)
{
    cr_assert_eq(a->kind, b->kind);
    s_eq_str(a->path, b->path, "stdio path");
    cr_assert_eq(a->rm_if_finished, b->rm_if_finished);
}

static void s_eq_def(const hq_task_def_t *a, const hq_task_def_t *b)
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

static void s_eq_msg(const hq_msg_t *a, const hq_msg_t *b)
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
        break;
    }
    case HQ_MSG_REGISTERED:
        cr_assert_eq(a->u.registered.worker_id, b->u.registered.worker_id);
        s_eq_str(a->u.registered.server_uid, b->u.registered.server_uid, "server_uid");
        cr_assert_eq(a->u.registered.heartbeat_ns, b->u.registered.heartbeat_ns);
        cr_assert_eq(a->u.registered.idle_timeout_ns, b->u.registered.idle_timeout_ns);
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
    case HQ_MSG_SERVER_INFO:
    case HQ_MSG_SERVER_STOP:
    case HQ_MSG_JOB_SUMMARY:
    case HQ_MSG_HEARTBEAT:
    case HQ_MSG_JOURNAL_FLUSH:
    case HQ_MSG_JOURNAL_PRUNE:
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

static void s_encode(const hq_msg_t *m, uint8_t **buf, size_t *len)
{
    hq_err_t err = {{0}};
    int rc = hq_msg_encode(m, buf, len, &err);
    cr_assert_eq(rc, 0, "encode %s: %s", hq_msg_type_name(m->hdr.type), err.text);
}

static void s_roundtrip(uint8_t type)
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
static void s_reject(const uint8_t *buf, size_t len, const char *want)
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
static size_t s_frame(uint8_t *out, uint8_t type, const uint8_t *body, size_t blen)
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

/* ---- round trips: one test per message type ---- */

#define ROUNDTRIP(name, type)                                                                      \
    Test(msg_roundtrip, name)                                                                      \
    {                                                                                              \
        s_roundtrip(type);                                                                         \
    }

ROUNDTRIP(server_info_without_body, HQ_MSG_SERVER_INFO)
ROUNDTRIP(server_stop_without_body, HQ_MSG_SERVER_STOP)
ROUNDTRIP(submit_with_defs_entries_graph_and_variants, HQ_MSG_SUBMIT)
ROUNDTRIP(job_list_query, HQ_MSG_JOB_LIST)
ROUNDTRIP(job_info_query, HQ_MSG_JOB_INFO)
ROUNDTRIP(job_cancel_query_with_reason, HQ_MSG_JOB_CANCEL)
ROUNDTRIP(job_forget_query, HQ_MSG_JOB_FORGET)
ROUNDTRIP(job_wait_query, HQ_MSG_JOB_WAIT)
ROUNDTRIP(job_open_query, HQ_MSG_JOB_OPEN)
ROUNDTRIP(job_close_query, HQ_MSG_JOB_CLOSE)
ROUNDTRIP(task_list_query, HQ_MSG_TASK_LIST)
ROUNDTRIP(task_info_query, HQ_MSG_TASK_INFO)
ROUNDTRIP(worker_list_query, HQ_MSG_WORKER_LIST)
ROUNDTRIP(worker_info_query, HQ_MSG_WORKER_INFO)
ROUNDTRIP(worker_stop_query, HQ_MSG_WORKER_STOP)
ROUNDTRIP(job_summary_without_body, HQ_MSG_JOB_SUMMARY)
ROUNDTRIP(task_ids_query, HQ_MSG_TASK_IDS)
ROUNDTRIP(task_explain_query, HQ_MSG_TASK_EXPLAIN)
ROUNDTRIP(journal_read_query, HQ_MSG_JOURNAL_READ)
ROUNDTRIP(journal_flush_without_body, HQ_MSG_JOURNAL_FLUSH)
ROUNDTRIP(journal_prune_without_body, HQ_MSG_JOURNAL_PRUNE)
ROUNDTRIP(reply_with_json_and_log, HQ_MSG_REPLY)
ROUNDTRIP(error_with_code_and_message, HQ_MSG_ERROR)
ROUNDTRIP(register_with_all_resource_kinds, HQ_MSG_REGISTER)
ROUNDTRIP(results_with_allocs_and_nil_error, HQ_MSG_RESULTS)
ROUNDTRIP(heartbeat_without_body, HQ_MSG_HEARTBEAT)
ROUNDTRIP(goodbye_with_reason, HQ_MSG_GOODBYE)
ROUNDTRIP(registered_with_server_uid, HQ_MSG_REGISTERED)
ROUNDTRIP(assign_with_defs_entries_and_nodes, HQ_MSG_ASSIGN)
ROUNDTRIP(cancel_with_task_refs, HQ_MSG_CANCEL)
ROUNDTRIP(stop_with_reason, HQ_MSG_STOP)

Test(msg_roundtrip, covers_every_named_type)
{
    size_t named = 0;
    for (unsigned t = 0; t < 256; t++)
        named += strcmp(hq_msg_type_name((uint8_t)t), "UNKNOWN") != 0;
    cr_assert_eq(named, N_TYPES);
    for (size_t k = 0; k < N_TYPES; k++)
        s_roundtrip(s_types[k]);
}

Test(msg_roundtrip, keeps_extreme_integers)
{
    hq_msg_t in;
    s_sample(HQ_MSG_SUBMIT, &in);
    hq_task_def_t defs[1] = {s_def()};
    defs[0].priority = INT32_MIN;
    defs[0].time_limit_ns = UINT64_MAX;
    defs[0].crash_limit = UINT32_MAX;
    in.u.submit.defs = defs;
    in.u.submit.n_defs = 1;
    in.u.submit.n_graph = 0;
    in.u.submit.job_id = UINT32_MAX;
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    hq_msg_t *out = hq_msg_decode(buf, len, NULL);
    cr_assert_not_null(out);
    cr_assert_eq(out->u.submit.job_id, UINT32_MAX);
    cr_assert_eq(out->u.submit.defs[0].priority, INT32_MIN);
    cr_assert_eq(out->u.submit.defs[0].time_limit_ns, UINT64_MAX);
    cr_assert_eq(out->u.submit.defs[0].crash_limit, UINT32_MAX);
    hq_msg_destroy(&out);
    free(buf);
}

Test(msg_roundtrip, empty_lists_decode_as_zero_counts)
{
    hq_msg_t in = {.hdr = {.type = HQ_MSG_RESULTS}};
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    cr_assert_eq(len, HQ_HEADER_SIZE + 3); /* [0, []] */
    hq_msg_t *out = hq_msg_decode(buf, len, NULL);
    cr_assert_not_null(out);
    cr_assert_eq(out->u.results.n_events, 0);
    cr_assert_null(out->u.results.events);
    hq_msg_destroy(&out);
    free(buf);
}

Test(msg_roundtrip, accepts_signed_encodings_of_small_unsigned_values)
{
    /* GOODBYE [int8 3] and CANCEL [[[int16 1, int32 2, int64 3]]] */
    uint8_t f[HQ_HEADER_SIZE + 32];
    static const uint8_t bye[] = {0x91, 0xd0, 0x03};
    hq_msg_t *m = hq_msg_decode(f, s_frame(f, HQ_MSG_GOODBYE, bye, sizeof bye), NULL);
    cr_assert_not_null(m);
    cr_assert_eq(m->u.goodbye.reason, 3);
    hq_msg_destroy(&m);
    static const uint8_t cancel[] = {0x91, 0x91, 0x93, 0xd1, 0x00, 0x01, 0xd2, 0, 0, 0,
                                     2,    0xd3, 0,    0,    0,    0,    0,    0, 0, 3};
    m = hq_msg_decode(f, s_frame(f, HQ_MSG_CANCEL, cancel, sizeof cancel), NULL);
    cr_assert_not_null(m);
    cr_assert_eq(m->u.cancel.tasks[0].job_id, 1);
    cr_assert_eq(m->u.cancel.tasks[0].task_id, 2);
    cr_assert_eq(m->u.cancel.tasks[0].instance, 3);
    hq_msg_destroy(&m);
}

Test(msg_roundtrip, accepts_float32_utilization)
{
    hq_msg_t in;
    s_sample(HQ_MSG_REGISTER, &in);
    in.u.reg.conf.min_utilization = 0.5;
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    /* Replace the float64 0.5 (cb 3fe0000000000000) with float32 0.5 (ca 3f000000). */
    static const uint8_t f64[] = {0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0};
    uint8_t *p = memmem(buf, len, f64, sizeof f64);
    cr_assert_not_null(p);
    static const uint8_t f32[] = {0xca, 0x3f, 0x00, 0, 0};
    memcpy(p, f32, sizeof f32);
    memmove(p + sizeof f32, p + sizeof f64, len - (size_t)(p + sizeof f64 - buf));
    len -= sizeof f64 - sizeof f32;
    hq_err_t err = {{0}};
    hq_msg_t *m = hq_msg_decode(buf, len, &err);
    cr_assert_not_null(m, "%s", err.text);
    cr_assert_eq(m->u.reg.conf.min_utilization, 0.5);
    hq_msg_destroy(&m);
    free(buf);
}

/* ---- header ---- */

Test(msg_header, is_40_big_endian_bytes)
{
    hq_msg_t in = {.hdr = {.type = HQ_MSG_HEARTBEAT,
                           .request_id = 0x0102030405060708ULL,
                           .epoch = 0x1112131415161718ULL,
                           .seq = 0x2122232425262728ULL,
                           .ack = 0x3132333435363738ULL}};
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    static const uint8_t want[HQ_HEADER_SIZE] = {
        'H',  'Q',  1,    62,   0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x11, 0x12,
        0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
        0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0,    0,    0,    0};
    cr_assert_eq(len, HQ_HEADER_SIZE);
    cr_assert_eq(memcmp(buf, want, HQ_HEADER_SIZE), 0);
    hq_header_t h;
    cr_assert_eq(hq_header_decode(buf, len, &h, NULL), 0);
    cr_assert_eq(h.version, 1);
    cr_assert_eq(h.type, HQ_MSG_HEARTBEAT);
    cr_assert_eq(h.request_id, in.hdr.request_id);
    cr_assert_eq(h.epoch, in.hdr.epoch);
    cr_assert_eq(h.seq, in.hdr.seq);
    cr_assert_eq(h.ack, in.hdr.ack);
    free(buf);
}

Test(msg_header, decode_reads_header_of_any_body_and_version)
{
    hq_msg_t in;
    s_sample(HQ_MSG_SUBMIT, &in);
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    buf[2] = 9; /* a future version: the header still parses so the peer can answer */
    hq_header_t h;
    cr_assert_eq(hq_header_decode(buf, len, &h, NULL), 0);
    cr_assert_eq(h.version, 9);
    cr_assert_eq(h.type, HQ_MSG_SUBMIT);
    cr_assert_eq(h.request_id, in.hdr.request_id);
    s_reject(buf, len, "unsupported protocol version 9");
    free(buf);
}

Test(msg_header, decode_rejects_short_frames_bad_magic_and_reserved_bits)
{
    uint8_t f[HQ_HEADER_SIZE];
    s_frame(f, HQ_MSG_HEARTBEAT, NULL, 0);
    hq_header_t h = {.type = 0xaa};
    hq_err_t err = {{0}};
    cr_assert_eq(hq_header_decode(f, HQ_HEADER_SIZE - 1, &h, &err), -1);
    cr_assert(strstr(err.text, "shorter than the 40-byte header"), "%s", err.text);
    cr_assert_eq(h.type, 0xaa, "a failed decode changes nothing");
    f[1] = 'X';
    cr_assert_eq(hq_header_decode(f, HQ_HEADER_SIZE, &h, &err), -1);
    cr_assert(strstr(err.text, "bad magic"), "%s", err.text);
    f[1] = 'Q';
    f[39] = 1;
    cr_assert_eq(hq_header_decode(f, HQ_HEADER_SIZE, &h, &err), -1);
    cr_assert(strstr(err.text, "reserved"), "%s", err.text);
    cr_assert_eq(hq_header_decode(NULL, 0, &h, &err), -1);
}

Test(msg_header, type_names_and_socket_roles)
{
    cr_assert_str_eq(hq_msg_type_name(HQ_MSG_SUBMIT), "SUBMIT");
    cr_assert_str_eq(hq_msg_type_name(HQ_MSG_TASK_IDS), "TASK_IDS");
    cr_assert_str_eq(hq_msg_type_name(HQ_MSG_STOP), "STOP");
    cr_assert_str_eq(hq_msg_type_name(0), "UNKNOWN");
    cr_assert_str_eq(hq_msg_type_name(200), "UNKNOWN");
    cr_assert(hq_msg_is_client_request(HQ_MSG_SERVER_INFO));
    cr_assert(hq_msg_is_client_request(HQ_MSG_TASK_IDS));
    cr_assert_not(hq_msg_is_client_request(0));
    cr_assert_not(hq_msg_is_client_request(HQ_MSG_REPLY));
    cr_assert_not(hq_msg_is_client_request(HQ_MSG_REGISTER));
    cr_assert(hq_msg_is_worker_message(HQ_MSG_REGISTER));
    cr_assert(hq_msg_is_worker_message(HQ_MSG_GOODBYE));
    cr_assert_not(hq_msg_is_worker_message(HQ_MSG_ASSIGN));
    cr_assert_not(hq_msg_is_worker_message(HQ_MSG_SUBMIT));
}

/* ---- encoder refusals ---- */

static void s_refuse(const hq_msg_t *m, const char *want)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    hq_err_t err = {{0}};
    cr_assert_eq(hq_msg_encode(m, &buf, &len, &err), -1, "encoded what it should refuse (%s)",
                 want);
    cr_assert_null(buf);
    cr_assert(strstr(err.text, want), "error '%s' does not mention '%s'", err.text, want);
}

Test(msg_encode, refuses_strings_longer_than_the_limit)
{
    char *big = hq_malloc(HQ_MAX_STR + 2);
    memset(big, 'x', HQ_MAX_STR + 1);
    big[HQ_MAX_STR + 1] = '\0';
    hq_msg_t m;
    s_sample(HQ_MSG_ERROR, &m);
    m.u.error.message = big;
    s_refuse(&m, "ERROR: field 'message' length 1048577 exceeds limit 1048576");
    big[HQ_MAX_STR] = '\0';
    uint8_t *buf;
    size_t len;
    s_encode(&m, &buf, &len); /* exactly the limit is fine */
    hq_msg_t *out = hq_msg_decode(buf, len, NULL);
    cr_assert_not_null(out);
    cr_assert_eq(strlen(out->u.error.message), HQ_MAX_STR);
    hq_msg_destroy(&out);
    free(buf);
    free(big);
}

Test(msg_encode, refuses_null_where_not_nullable)
{
    hq_msg_t m;
    s_sample(HQ_MSG_SUBMIT, &m);
    m.u.submit.submit_dir = NULL;
    s_refuse(&m, "SUBMIT: field 'submit_dir' is NULL");
    s_sample(HQ_MSG_SUBMIT, &m);
    s_defs[0].cwd = NULL;
    s_refuse(&m, "field 'cwd' is NULL");
    s_sample(HQ_MSG_SUBMIT, &m);
    s_defs[1].err.path = NULL;
    s_refuse(&m, "field 'stderr' has kind FILE but no path");
    s_sample(HQ_MSG_CANCEL, &m);
    m.u.cancel.tasks = NULL;
    s_refuse(&m, "field 'tasks' is NULL with count 3");
}

Test(msg_encode, refuses_out_of_range_enums_and_counts)
{
    hq_msg_t m;
    s_sample(HQ_MSG_GOODBYE, &m);
    m.u.goodbye.reason = 5;
    s_refuse(&m, "GOODBYE: field 'reason' value 5 out of range");
    s_sample(HQ_MSG_ERROR, &m);
    m.u.error.code = 0;
    s_refuse(&m, "field 'code' value 0 out of range");
    s_sample(HQ_MSG_SUBMIT, &m);
    s_defs[1].pin = (enum hq_pin)3;
    s_refuse(&m, "field 'pin' value 3 out of range");
    s_sample(HQ_MSG_SUBMIT, &m);
    s_defs[1].n_args = 0;
    s_refuse(&m, "field 'args' count 0 is below the minimum 1");
    s_sample(HQ_MSG_REPLY, &m);
    m.u.reply.n_log = 70000;
    s_refuse(&m, "field 'log' count 70000 exceeds limit 65536");
    s_sample(HQ_MSG_JOB_LIST, &m);
    m.u.query.states = 0x80;
    s_refuse(&m, "field 'states'");
    s_sample(HQ_MSG_REGISTER, &m);
    m.u.reg.conf.min_utilization = 1.5;
    s_refuse(&m, "min_utilization");
}

Test(msg_encode, refuses_dangling_indices_and_unknown_types)
{
    hq_msg_t m;
    s_sample(HQ_MSG_SUBMIT, &m);
    s_graph[0].def_idx = 2;
    s_refuse(&m, "field 'def_idx' value 2 is not below n_defs 2");
    s_graph[0].def_idx = 0;
    s_sample(HQ_MSG_ASSIGN, &m);
    s_atasks[1].variant = 2;
    s_refuse(&m, "field 'variant' value 2");
    s_atasks[1].variant = 0;
    s_sample(HQ_MSG_JOB_LIST, &m);
    s_task_ranges[0].step = 0;
    s_refuse(&m, "step 0");
    s_task_ranges[0].step = 2;
    m.hdr.type = 99;
    s_refuse(&m, "unknown message type 99");
    s_sample(HQ_MSG_REGISTER, &m);
    s_wres[1].n_groups = 0;
    s_refuse(&m, "list resource 'gpus/nvidia' has 0 groups");
    s_wres[1].n_groups = 1;
}

Test(msg_encode, refuses_coupling_outside_the_resources)
{
    hq_msg_t m;
    s_sample(HQ_MSG_REGISTER, &m);
    s_coupling[0].resource2_idx = 4;
    s_refuse(&m, "field 'coupling' resource index 0/4 out of range");
    s_coupling[0].resource2_idx = 0;
    s_refuse(&m, "couples resource 0 with itself");
    s_coupling[0].resource2_idx = 1;
    s_coupling[0].group1_idx = 2; /* cpus has 2 groups */
    s_refuse(&m, "field 'coupling' group index 2/0 out of range");
    s_coupling[0].group1_idx = 1;
    s_coupling[1].group1_idx = 1; /* a range has one group */
    s_refuse(&m, "group index 1/0 out of range");
    s_coupling[1].group1_idx = 0;
    s_coupling[1].resource1_idx = 2; /* a sum has none */
    s_refuse(&m, "group index 0/0 out of range");
    s_coupling[1].resource1_idx = 3;
    s_coupling[1].weight = 65536;
    s_refuse(&m, "weight 65536 out of range");
    s_coupling[1].weight = 65535;
}

/* Finds the coupling list (2 weights) in an encoded sample REGISTER. */
static uint8_t *s_coupling_bytes(uint8_t *buf, size_t len)
{
    static const uint8_t pat[] = {0x92, 0x95, 0, 1, 1, 0, 0xcd, 1, 0};
    uint8_t *p = memmem(buf, len, pat, sizeof pat);
    cr_assert_not_null(p);
    return p;
}

Test(msg_decode, rejects_coupling_with_a_bad_group_or_weight)
{
    hq_msg_t in;
    s_sample(HQ_MSG_REGISTER, &in);
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    uint8_t *p = s_coupling_bytes(buf, len);
    hq_err_t err = {{0}};
    p[3] = 2; /* cpus[2] */
    cr_assert_null(hq_msg_decode(buf, len, &err));
    cr_assert(strstr(err.text, "REGISTER: field 'coupling' group index 2/0 out of range"), "%s",
              err.text);
    p[3] = 1;
    p[4] = 0; /* cpus with itself */
    cr_assert_null(hq_msg_decode(buf, len, &err));
    cr_assert(strstr(err.text, "with itself"), "%s", err.text);
    p[4] = 1;
    hq_msg_t *m = hq_msg_decode(buf, len, &err);
    cr_assert_not_null(m, "%s", err.text);
    cr_assert_eq(m->u.reg.conf.coupling[0].weight, 256);
    hq_msg_destroy(&m);
    free(buf);
}

Test(msg_decode, accepts_a_conf_without_the_coupling_field)
{
    hq_msg_t in;
    s_sample(HQ_MSG_REGISTER, &in);
    in.u.reg.conf.n_coupling = 0;
    in.u.reg.conf.coupling = NULL;
    in.u.reg.n_reports = 0;
    in.u.reg.reports = NULL;
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    /* The conf header is fixarray 17 (0xdc 0x00 0x11); drop the empty coupling list
     * (0x90 just before prefetch 4, n_running 2, old_worker_id 9, reports []) and
     * say 16. */
    uint8_t *h = memmem(buf, len, (const uint8_t[]){0xdc, 0x00, 0x11}, 3);
    cr_assert_not_null(h);
    h[2] = 0x10;
    static const uint8_t tail[] = {0x90, 0x04, 0x02, 0x09, 0x90};
    cr_assert_eq(memcmp(buf + len - 5, tail, 5), 0);
    memmove(buf + len - 5, buf + len - 4, 4);
    len--;
    hq_err_t err = {{0}};
    hq_msg_t *m = hq_msg_decode(buf, len, &err);
    cr_assert_not_null(m, "%s", err.text);
    cr_assert_eq(m->u.reg.conf.n_coupling, 0);
    cr_assert_null(m->u.reg.conf.coupling);
    cr_assert_eq(m->u.reg.old_worker_id, 9);
    hq_msg_destroy(&m);
    free(buf);
}

Test(msg_decode, accepts_a_register_without_the_reports_field)
{
    hq_msg_t in;
    s_sample(HQ_MSG_REGISTER, &in);
    in.u.reg.n_reports = 0;
    in.u.reg.reports = NULL;
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    /* The body is fixarray 5 (0x95) right after the header; the empty reports list
     * (0x90) is the last byte. Make it a 4-field body without it. */
    cr_assert_eq(buf[HQ_HEADER_SIZE], 0x95);
    cr_assert_eq(buf[len - 1], 0x90);
    buf[HQ_HEADER_SIZE] = 0x94;
    len--;
    hq_err_t err = {{0}};
    hq_msg_t *m = hq_msg_decode(buf, len, &err);
    cr_assert_not_null(m, "%s", err.text);
    cr_assert_eq(m->u.reg.n_reports, 0);
    cr_assert_null(m->u.reg.reports);
    cr_assert_eq(m->u.reg.old_worker_id, 9);
    hq_msg_destroy(&m);
    free(buf);
}

Test(msg_decode, refuses_a_register_with_a_malformed_report)
{
    hq_msg_t in;
    s_sample(HQ_MSG_REGISTER, &in);
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    /* The last report [7, 8, 3] ends the frame; make its instance a nil. */
    static const uint8_t last[] = {0x93, 0x07, 0x08, 0x03};
    cr_assert_eq(memcmp(buf + len - 4, last, 4), 0);
    buf[len - 1] = 0xc0;
    hq_err_t err = {{0}};
    cr_assert_null(hq_msg_decode(buf, len, &err));
    cr_assert(strstr(err.text, "REGISTER: field 'instance' expected"), "%s", err.text);
    free(buf);
}

/* ---- rejection of hostile frames ---- */

Test(msg_reject, every_truncation_of_every_type_fails_cleanly)
{
    for (size_t k = 0; k < N_TYPES; k++) {
        hq_msg_t in;
        s_sample(s_types[k], &in);
        uint8_t *buf;
        size_t len;
        s_encode(&in, &buf, &len);
        for (size_t cut = 0; cut < len; cut++) {
            /* A copy of exactly cut bytes, so ASan sees any over-read. */
            uint8_t *part = hq_malloc(cut ? cut : 1);
            memcpy(part, buf, cut);
            s_reject(part, cut, NULL);
            free(part);
        }
        free(buf);
    }
}

Test(msg_reject, trailing_bytes)
{
    for (size_t k = 0; k < N_TYPES; k++) {
        hq_msg_t in;
        s_sample(s_types[k], &in);
        uint8_t *buf;
        size_t len;
        s_encode(&in, &buf, &len);
        buf = hq_realloc(buf, len + 1);
        buf[len] = 0xc0;
        bool nobody = len == HQ_HEADER_SIZE;
        s_reject(buf, len + 1, nobody ? "has no body but 1 bytes follow" : "1 trailing bytes");
        free(buf);
    }
}

Test(msg_reject, wrong_magic_version_and_unknown_types)
{
    hq_msg_t in;
    s_sample(HQ_MSG_GOODBYE, &in);
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    buf[0] = 'X';
    s_reject(buf, len, "bad magic");
    buf[0] = 'H';
    buf[2] = 0;
    s_reject(buf, len, "unsupported protocol version 0");
    buf[2] = 2;
    s_reject(buf, len, "unsupported protocol version 2");
    buf[2] = HQ_PROTO_VERSION;
    const uint8_t unknown[] = {0, 22, 39, 42, 59, 64, 79, 84, 99, 255};
    for (size_t k = 0; k < sizeof unknown; k++) {
        buf[3] = unknown[k];
        char want[64];
        snprintf(want, sizeof want, "unknown message type %u", unknown[k]);
        s_reject(buf, len, want);
    }
    free(buf);
}

Test(msg_reject, wrong_field_types)
{
    REJECT_BODY(HQ_MSG_GOODBYE, "GOODBYE: field 'reason' expected integer, got str", 0x91, 0xa1,
                'x');
    REJECT_BODY(HQ_MSG_GOODBYE, "field 'reason' expected integer, got nil", 0x91, 0xc0);
    REJECT_BODY(HQ_MSG_GOODBYE, "field 'reason' expected integer, got float", 0x91, 0xca, 0, 0, 0,
                0);
    REJECT_BODY(HQ_MSG_GOODBYE, "expected integer, got ext", 0x91, 0xd4, 1, 0);
    REJECT_BODY(HQ_MSG_GOODBYE, "expected integer, got reserved byte 0xc1", 0x91, 0xc1);
    REJECT_BODY(HQ_MSG_GOODBYE, "field 'body' expected array, got map", 0x81, 0x00, 0x00);
    REJECT_BODY(HQ_MSG_GOODBYE, "field 'body' has 2 fields, expected 1", 0x92, 0x00, 0x00);
    REJECT_BODY(HQ_MSG_ERROR, "field 'message' expected str, got bin", 0x92, 0x01, 0xc4, 0x01, 'x');
    REJECT_BODY(HQ_MSG_ERROR, "field 'message' expected str, got nil", 0x92, 0x01, 0xc0);
    REJECT_BODY(HQ_MSG_REGISTERED, "field 'heartbeat_ns' expected integer, got float", 0x94, 0x01,
                0xa1, 'u', 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0x00);
    /* bool fields accept only true/false, not 0/1 */
    REJECT_BODY(HQ_MSG_JOB_LIST, "field 'flag' expected bool, got unsigned integer", 0x96, 0x92,
                0x01, 0x90, 0x90, 0x00, 0x01, 0xc0, 0x00);
    /* nullable text accepts nil, but not an integer */
    REJECT_BODY(HQ_MSG_JOB_LIST, "field 'text' expected str or nil, got unsigned integer", 0x96,
                0x92, 0x01, 0x90, 0x90, 0x00, 0xc2, 0x05, 0x00);
}

Test(msg_reject, out_of_range_values)
{
    REJECT_BODY(HQ_MSG_GOODBYE, "field 'reason' value 5 out of range (0..4)", 0x91, 0x05);
    REJECT_BODY(HQ_MSG_GOODBYE, "field 'reason' value -1 is negative", 0x91, 0xff);
    REJECT_BODY(HQ_MSG_STOP, "value 4294967296 out of range", 0x91, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0);
    REJECT_BODY(HQ_MSG_ERROR, "field 'code' value 7 out of range (1..6)", 0x92, 0x07, 0xa1, 'x');
    REJECT_BODY(HQ_MSG_REGISTERED, "field 'worker_id' value 4294967296 out of range", 0x94, 0xcf, 0,
                0, 0, 1, 0, 0, 0, 0, 0xa1, 'u', 0x00, 0x00);
    REJECT_BODY(HQ_MSG_JOB_LIST, "field 'selector kind' value 3 out of range", 0x96, 0x92, 0x03,
                0x90, 0x90, 0x00, 0xc2, 0xc0, 0x00);
    REJECT_BODY(HQ_MSG_JOB_LIST, "field 'states' value 128 out of range", 0x96, 0x92, 0x00, 0x90,
                0x90, 0xcc, 0x80, 0xc2, 0xc0, 0x00);
    REJECT_BODY(HQ_MSG_JOB_LIST, "step 0 in range 1-2", 0x96, 0x92, 0x00, 0x91, 0x93, 0x01, 0x02,
                0x00, 0x90, 0x00, 0xc2, 0xc0, 0x00);
    REJECT_BODY(HQ_MSG_JOB_LIST, "start 3 is after end 2", 0x96, 0x92, 0x00, 0x91, 0x93, 0x03, 0x02,
                0x01, 0x90, 0x00, 0xc2, 0xc0, 0x00);
    REJECT_BODY(HQ_MSG_ERROR, "field 'message' contains a NUL byte", 0x92, 0x01, 0xa3, 'a', 0, 'b');
    /* ASSIGN: [[], [[1,0,1,0,false,bin"",0,[]]]] -> def_idx 0 with no defs */
    REJECT_BODY(HQ_MSG_ASSIGN, "field 'def_idx' value 0 is not below n_defs 0", 0x92, 0x90, 0x91,
                0x98, 0x01, 0x00, 0x01, 0x00, 0xc2, 0xc4, 0x00, 0x00, 0x90);
}

Test(msg_reject, priority_outside_int32)
{
    hq_msg_t in;
    s_sample(HQ_MSG_SUBMIT, &in);
    hq_task_def_t defs[1] = {s_def2()};
    defs[0].priority = INT32_MIN;
    in.u.submit.defs = defs;
    in.u.submit.n_defs = 1;
    in.u.submit.n_graph = 0;
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    /* int32 -2147483648 is d2 80 00 00 00; make it int64 -2147483649 */
    static const uint8_t i32[] = {0xd2, 0x80, 0, 0, 0};
    uint8_t *p = memmem(buf, len, i32, sizeof i32);
    cr_assert_not_null(p);
    uint8_t *b2 = hq_malloc(len + 4);
    size_t off = (size_t)(p - buf);
    memcpy(b2, buf, off);
    static const uint8_t i64[] = {0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff};
    memcpy(b2 + off, i64, sizeof i64);
    memcpy(b2 + off + sizeof i64, p + sizeof i32, len - off - sizeof i32);
    s_reject(b2, len + 4, "field 'priority' value -2147483649 out of range");
    free(b2);
    free(buf);
}

/* Frames whose counts promise far more than they hold: each must fail before any
 * allocation of that size (the arena high-water mark stays small). */
Test(msg_reject, amplification_bodies_fail_without_big_allocation)
{
    hq_arena_highwater_reset();
    REJECT_BODY(HQ_MSG_CANCEL, "field 'tasks' count 4294967295 exceeds limit", 0x91, 0xdd, 0xff,
                0xff, 0xff, 0xff);
    REJECT_BODY(HQ_MSG_CANCEL, "field 'tasks' count 16777215 exceeds bytes left (0)", 0x91, 0xdd,
                0x00, 0xff, 0xff, 0xff);
    REJECT_BODY(HQ_MSG_CANCEL, "field 'tasks' expected array, got map", 0x91, 0xdf, 0xff, 0xff,
                0xff, 0xff);
    REJECT_BODY(HQ_MSG_CANCEL, "field 'tasks' count 65535 exceeds bytes left", 0x91, 0xdc, 0xff,
                0xff);
    REJECT_BODY(HQ_MSG_ERROR, "field 'message' truncated", 0x92, 0x01, 0xdb, 0x7f, 0xff, 0xff,
                0xff);
    REJECT_BODY(HQ_MSG_SUBMIT, "field 'body' has 4294967295 fields", 0xdd, 0xff, 0xff, 0xff, 0xff);
    REJECT_BODY(HQ_MSG_SUBMIT, "field 'body' expected array, got map", 0xdf, 0xff, 0xff, 0xff,
                0xff);
    REJECT_BODY(HQ_MSG_REPLY, "field 'json' truncated", 0x93, 0x00, 0xdb, 0x7f, 0xff, 0xff, 0xff);
    REJECT_BODY(HQ_MSG_REPLY, "field 'log' count 65535 exceeds bytes left (0)", 0x93, 0x00, 0xc0,
                0xdc, 0xff, 0xff);
    REJECT_BODY(HQ_MSG_ASSIGN, "field 'entry' truncated", 0x92, 0x91, 0x95, 0x01, 0x00, 0xa1, '/',
                0xc0, 0x9d, 0x91, 0xa1, 'x', 0x90, 0xa1, '.', 0x93, 1, 0xc0, 0xc2, 0x93, 1, 0xc0,
                0xc2, 0xc4, 0, 0x91, 0x94, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0xc2, 0x91, 0x98, 0, 0, 0,
                0, 0xc2, 0xc6, 0x7f, 0xff, 0xff, 0xff);
    cr_assert_lt(hq_arena_highwater(), 64 * 1024, "a hostile frame made the arena grow to %zu",
                 hq_arena_highwater());
}

Test(msg_reject, deep_nesting)
{
    size_t depth = 100000;
    uint8_t *f = hq_malloc(HQ_HEADER_SIZE + depth + 1);
    s_frame(f, HQ_MSG_GOODBYE, NULL, 0);
    memset(f + HQ_HEADER_SIZE, 0x91, depth);
    f[HQ_HEADER_SIZE + depth] = 0x00;
    s_reject(f, HQ_HEADER_SIZE + depth + 1, "field 'reason' expected integer, got array");
    s_frame(f, HQ_MSG_SUBMIT, NULL, 0);
    s_reject(f, HQ_HEADER_SIZE + depth + 1, "SUBMIT: field 'body' has 1 fields, expected 11");
    free(f);
}

/* Valid frames built to maximise what decoding allocates per byte stay within the
 * codec's bound of ~32x the frame size. */
static void s_check_amplification(const uint8_t *f, size_t len)
{
    hq_err_t err = {{0}};
    hq_arena_highwater_reset();
    hq_msg_t *m = hq_msg_decode(f, len, &err);
    cr_assert_not_null(m, "%s", err.text);
    hq_msg_destroy(&m);
    size_t hw = hq_arena_highwater();
    cr_assert_leq(hw, 32 * len + 4096, "frame of %zu bytes allocated %zu", len, hw);
}

Test(msg_reject, decoded_size_stays_within_32x_of_the_frame)
{
    enum { N = 60000 };
    uint8_t *f = hq_malloc(HQ_HEADER_SIZE + 16 * (size_t)N + 64);
    size_t n;
    /* REPLY [0, nil, [""...]]: 9 bytes per wire byte */
    n = s_frame(f, HQ_MSG_REPLY, (const uint8_t[]){0x93, 0x00, 0xc0, 0xdc, N >> 8, N & 0xff}, 6);
    memset(f + n, 0xa0, N);
    s_check_amplification(f, n + N);
    /* CANCEL [[[0,0,0]...]] */
    n = s_frame(f, HQ_MSG_CANCEL, (const uint8_t[]){0x91, 0xdc, N >> 8, N & 0xff}, 4);
    for (size_t k = 0; k < N; k++, n += 4)
        memcpy(f + n, (const uint8_t[]){0x93, 0, 0, 0}, 4);
    s_check_amplification(f, n);
    /* RESULTS [0, [[0,0,0,0,0,nil,[]]...]] */
    n = s_frame(f, HQ_MSG_RESULTS, (const uint8_t[]){0x92, 0x00, 0xdc, N >> 8, N & 0xff}, 5);
    for (size_t k = 0; k < N; k++, n += 8)
        memcpy(f + n, (const uint8_t[]){0x97, 0, 0, 0, 0, 0, 0xc0, 0x90}, 8);
    s_check_amplification(f, n);
    /* REGISTER with a GROUPS resource of 60000 empty groups: 16 bytes per wire byte */
    static const uint8_t reg_head[] = {0x94, 0xdc, 0x00, 0x10, 0xa0,   0xa0,    0xa0, 0xa0, 0,
                                       0,    0,    0,    0xcb, 0,      0,       0,    0,    0,
                                       0,    0,    0,    0,    0,      0xa0,    0,    0,    0x91,
                                       0x96, 0xa0, 0x02, 0xdc, N >> 8, N & 0xff};
    n = s_frame(f, HQ_MSG_REGISTER, reg_head, sizeof reg_head);
    memset(f + n, 0x90, N);
    n += N;
    memcpy(f + n, (const uint8_t[]){0, 0, 0, 0xa0, 0, 0, 0}, 7);
    n += 7;
    s_check_amplification(f, n);
    /* SUBMIT with 2000 minimal defs and 60000 empty entries */
    static const uint8_t sub_head[] = {0x9a, 0,    0xc0, 0xc2,      0,
                                       0xa0, 0xc0, 0xdc, 2000 >> 8, 2000 & 0xff};
    n = s_frame(f, HQ_MSG_SUBMIT, sub_head, sizeof sub_head);
    static const uint8_t min_def[] = {0x9d, 0x91, 0xa0, 0x90, 0xa0, 0x93, 1,    0xc0, 0xc2,
                                      0x93, 1,    0xc0, 0xc2, 0xc4, 0,    0x91, 0x94, 0,
                                      0,    0,    0x90, 0,    0,    0,    0,    0,    0xc2};
    for (size_t k = 0; k < 2000; k++, n += sizeof min_def)
        memcpy(f + n, min_def, sizeof min_def);
    memcpy(f + n, (const uint8_t[]){0x90, 0xdc, N >> 8, N & 0xff}, 4);
    n += 4;
    for (size_t k = 0; k < N; k++, n += 2)
        memcpy(f + n, (const uint8_t[]){0xc4, 0}, 2);
    f[n++] = 0x90;
    s_check_amplification(f, n);
    free(f);
}

/* Every file in tests/data/ is a malformed frame that must be rejected. */
static const struct {
    const char *file; /* name in tests/data/ */
    const char *want; /* substring of the error */
} s_data[] = {
    {"short_header.bin", "shorter than the 40-byte header"},
    {"bad_magic.bin", "bad magic"},
    {"bad_version.bin", "unsupported protocol version 2"},
    {"unknown_type.bin", "unknown message type 99"},
    {"reserved_nonzero.bin", "reserved header field"},
    {"heartbeat_with_body.bin", "has no body"},
    {"submit_without_body.bin", "SUBMIT: field 'body' truncated"},
    {"goodbye_reason_out_of_range.bin", "value 5 out of range"},
    {"goodbye_reason_str.bin", "expected integer, got str"},
    {"goodbye_reason_negative.bin", "is negative"},
    {"goodbye_trailing.bin", "trailing bytes"},
    {"goodbye_deep_nesting.bin", "expected integer, got array"},
    {"cancel_array32_huge.bin", "exceeds limit"},
    {"cancel_array32_bytes_left.bin", "exceeds bytes left"},
    {"cancel_map32.bin", "expected array, got map"},
    {"cancel_array16.bin", "count 65535 exceeds bytes left"},
    {"error_str32_huge.bin", "truncated"},
    {"error_code_zero.bin", "value 0 out of range"},
    {"error_message_nul.bin", "contains a NUL byte"},
    {"error_message_bin.bin", "expected str, got bin"},
    {"registered_u32_overflow.bin", "out of range"},
    {"registered_float_for_u64.bin", "expected integer, got float"},
    {"reply_json_truncated.bin", "truncated"},
    {"goodbye_ext.bin", "got ext"},
    {"goodbye_c1.bin", "reserved byte 0xc1"},
    {"assign_def_idx_dangling.bin", "is not below n_defs 0"},
    {"query_range_step_zero.bin", "step 0"},
    {"register_utilization_nan.bin", "min_utilization"},
    {"submit_stdout_file_without_path.bin", "field 'stdout' has kind FILE but no path"},
    {"results_kind_out_of_range.bin", "field 'kind' value 9 out of range"},
};

Test(msg_reject, malformed_samples_in_test_data)
{
    size_t nfiles = 0;
    for (size_t k = 0; k < sizeof s_data / sizeof s_data[0]; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", HQ_TEST_DATA, s_data[k].file);
        char *data;
        size_t len;
        cr_assert_eq(hq_read_file(path, 1 << 20, &data, &len), 0, "cannot read %s", path);
        s_reject((const uint8_t *)data, len, s_data[k].want);
        free(data);
    }
    /* And every .bin file there, listed or not, is rejected. */
    DIR *dir = opendir(HQ_TEST_DATA);
    cr_assert_not_null(dir);
    struct dirent *de;
    while ((de = readdir(dir))) {
        size_t nl = strlen(de->d_name);
        if (nl < 4 || strcmp(de->d_name + nl - 4, ".bin") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", HQ_TEST_DATA, de->d_name);
        char *data;
        size_t len;
        cr_assert_eq(hq_read_file(path, 1 << 20, &data, &len), 0, "cannot read %s", path);
        s_reject((const uint8_t *)data, len, NULL);
        free(data);
        nfiles++;
    }
    closedir(dir);
    cr_assert_geq(nfiles, sizeof s_data / sizeof s_data[0]);
}

/* ---- fuzz seed corpus ---- */

/* Writes one encoded sample of every type into $HQ_FUZZ_CORPUS_OUT (when set, e.g.
 * tests/fuzz/corpus) or a temporary directory, and checks each file decodes. */
Test(msg_corpus, writes_one_decodable_sample_per_type)
{
    const char *dir = getenv("HQ_FUZZ_CORPUS_OUT");
    char tmp[] = "/tmp/hq-corpus-XXXXXX";
    if (!dir || !*dir) {
        cr_assert_not_null(mkdtemp(tmp));
        dir = tmp;
    }
    for (size_t k = 0; k < N_TYPES; k++) {
        hq_msg_t in;
        s_sample(s_types[k], &in);
        uint8_t *buf;
        size_t len;
        s_encode(&in, &buf, &len);
        char path[4096];
        snprintf(path, sizeof path, "%s/%03u-%s", dir, s_types[k], hq_msg_type_name(s_types[k]));
        FILE *fp = fopen(path, "wb");
        cr_assert_not_null(fp, "cannot write %s: %s", path, strerror(errno));
        cr_assert_eq(fwrite(buf, 1, len, fp), len);
        cr_assert_eq(fclose(fp), 0);
        free(buf);
        char *data;
        cr_assert_eq(hq_read_file(path, 1 << 20, &data, &len), 0);
        hq_msg_t *m = hq_msg_decode((const uint8_t *)data, len, NULL);
        cr_assert_not_null(m, "%s does not decode", path);
        cr_assert_eq(m->hdr.type, s_types[k]);
        hq_msg_destroy(&m);
        free(data);
        if (dir == tmp)
            unlink(path);
    }
    if (dir == tmp)
        rmdir(tmp);
}
