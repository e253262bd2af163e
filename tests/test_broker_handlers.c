/* The broker's handlers driven without sockets, loop or scheduler: a submit, a worker
 * registration and a task's completion go through the same handler functions as in
 * the running broker, on an in-memory context (hq_broker_init) whose two sockets are
 * sinks that keep every frame sent, decoded. Microseconds per test. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "dispatch.h"
#include "hq_msg.h"
#include "notify.h"
#include "query.h"
#include "submit.h"
#include "wmsg.h"
#include "workers.h"

#define MAX_FRAMES 16

/* The frames one socket sent, decoded. */
typedef struct sink {
    hq_msg_t *msg[MAX_FRAMES];
    uint32_t n;
} sink_t;

/* The commands the scheduler was sent. */
typedef struct cmds {
    hq_sched_cmd_t *cmd[MAX_FRAMES];
    uint32_t n;
} cmds_t;

static hq_broker_t b;
static sink_t clients, workers;
static cmds_t sched;
static const uint8_t client_rid[] = {0, 1, 2, 3, 4};
static const uint8_t worker_rid[] = {9, 8, 7};

static void keep(void *arg, const uint8_t *rid, size_t rid_len, const uint8_t *buf, size_t len)
{
    (void)rid;
    (void)rid_len;
    sink_t *s = arg;
    hq_err_t err;
    hq_msg_t *m = hq_msg_decode(buf, len, &err);
    cr_assert_not_null(m, "the broker sent a frame it cannot decode: %s", err.text);
    cr_assert_lt(s->n, MAX_FRAMES);
    s->msg[s->n++] = m;
}

static void to_scheduler(void *arg, hq_sched_cmd_t *cmd)
{
    cmds_t *c = arg;
    cr_assert_lt(c->n, MAX_FRAMES);
    c->cmd[c->n++] = cmd;
}

/* The i-th command of type t the scheduler was sent, or NULL. */
static hq_sched_cmd_t *sched_cmd(int type, uint32_t i)
{
    for (uint32_t k = 0; k < sched.n; k++)
        if ((int)sched.cmd[k]->type == type && i-- == 0)
            return sched.cmd[k];
    return NULL;
}

static void setup(void)
{
    hq_broker_init(&b);
    memset(&clients, 0, sizeof clients);
    memset(&workers, 0, sizeof workers);
    memset(&sched, 0, sizeof sched);
    b.ready.sink = to_scheduler;
    b.ready.sink_arg = &sched;
    b.replies.peer = (hq_peer_t){.sink = keep, .sink_arg = &clients};
    b.wlink.peer = (hq_peer_t){.sink = keep, .sink_arg = &workers};
}

static void teardown(void)
{
    hq_broker_fini(&b);
    for (uint32_t i = 0; i < clients.n; i++)
        hq_msg_destroy(&clients.msg[i]);
    for (uint32_t i = 0; i < workers.n; i++)
        hq_msg_destroy(&workers.msg[i]);
    for (uint32_t i = 0; i < sched.n; i++)
        hq_sched_cmd_destroy(&sched.cmd[i]);
}

/* The last frame a sink got; fails when it got none. */
static hq_msg_t *last(const sink_t *s)
{
    cr_assert_gt(s->n, 0, "nothing was sent");
    return s->msg[s->n - 1];
}

/* Encodes m as a peer would send it. Caller frees *buf. */
static void encode(hq_msg_t *m, uint8_t **buf, size_t *len)
{
    m->hdr.version = HQ_PROTO_VERSION;
    hq_err_t err;
    cr_assert_eq(hq_msg_encode(m, buf, len, &err), 0, "%s", err.text);
}

/* Runs a client request through its handler as the loop does: a repeat is answered
 * from the reply cache; otherwise decoded from its frame and destroyed afterwards
 * unless the handler kept it. */
static void client_request(hq_client_fn *fn, hq_msg_t *m, uint64_t request_id)
{
    m->hdr.request_id = request_id;
    uint8_t *buf;
    size_t len;
    encode(m, &buf, &len);
    if (hq_replies_repeat(&b.replies, client_rid, sizeof client_rid, request_id, buf, len)) {
        free(buf);
        return;
    }
    hq_err_t err;
    hq_msg_t *msg = hq_msg_decode(buf, len, &err);
    free(buf);
    cr_assert_not_null(msg, "%s", err.text);
    hq_creq_t req = {.rid = client_rid, .rid_len = sizeof client_rid, .msg = msg};
    fn(&b, &req);
    if (!req.stolen)
        hq_msg_destroy(&msg);
}

/* Submits an array job of tasks first..first+count-1 running `true`, into job_id
 * (0: a new job). */
static void submit(uint32_t job_id, uint32_t first, uint32_t count, uint64_t request_id)
{
    char *args[] = {"true"};
    hq_rreq_t cpus = {.name = "cpus", .amount = HQ_AMOUNT_ONE};
    hq_rvariant_t var = {.n_nodes = 0, .n_entries = 1, .entries = &cpus};
    hq_task_def_t def = {.n_args = 1,
                         .args = args,
                         .cwd = "%{SUBMIT_DIR}",
                         .n_variants = 1,
                         .variants = &var,
                         .out.kind = HQ_STDIO_NONE,
                         .err.kind = HQ_STDIO_NONE,
                         .crash_kind = HQ_CRASH_LIMIT,
                         .crash_limit = 5};
    hq_range_t r = {.start = first, .end = first + count - 1, .step = 1};
    hq_msg_t m = {.hdr.type = HQ_MSG_SUBMIT};
    m.u.submit = (hq_submit_t){.job_id = job_id,
                               .name = "sweep",
                               .submit_dir = "/tmp",
                               .n_defs = 1,
                               .defs = &def,
                               .ids = {.n = 1, .ranges = &r}};
    client_request(hq_h_submit, &m, request_id);
}

/* A resource the next registrations also declare (NULL: cpus only). */
static hq_wres_t *extra_res;

/* A worker with 2 cpus (and extra_res) sends a REGISTER from rid as the successor of
 * old_id (0: none) with these reports and secret (NULL: none); returns the answer. */
static hq_msg_t *send_register(const uint8_t *rid, size_t rid_len, uint32_t old_id,
                               hq_task_ref_t *reports, uint32_t n_reports, const uint8_t *secret)
{
    hq_wres_t res[2];
    hq_err_t err;
    cr_assert_eq(hq_wres_parse_cpus("2", &res[0], &err), 0, "%s", err.text);
    if (extra_res)
        res[1] = *extra_res;
    hq_msg_t m = {.hdr.type = HQ_MSG_REGISTER};
    m.u.reg.old_worker_id = old_id;
    m.u.reg.n_reports = n_reports;
    m.u.reg.n_running = n_reports;
    m.u.reg.reports = reports;
    m.u.reg.has_secret = secret != NULL;
    if (secret)
        memcpy(m.u.reg.secret, secret, HQ_SESSION_SECRET_LEN);
    m.u.reg.conf = (hq_worker_conf_t){.hostname = "cn001",
                                      .group = "default",
                                      .work_dir = "/tmp",
                                      .listen_address = "",
                                      .heartbeat_ns = 8000000000ULL,
                                      .manager_job_id = "",
                                      .resources = {.n = extra_res ? 2 : 1, .res = res},
                                      .version = HQ_VERSION};
    uint8_t *buf;
    size_t len;
    encode(&m, &buf, &len);
    hq_wres_clear(&res[0]);
    uint32_t before = workers.n;
    hq_workers_on_message(&b, rid, rid_len, buf, len);
    free(buf);
    cr_assert_gt(workers.n, before);
    return workers.msg[before];
}

/* As send_register; the answer must be REGISTERED. */
static const hq_registered_t *register_from(const uint8_t *rid, size_t rid_len, uint32_t old_id,
                                            hq_task_ref_t *reports, uint32_t n_reports,
                                            const uint8_t *secret)
{
    hq_msg_t *r = send_register(rid, rid_len, old_id, reports, n_reports, secret);
    cr_assert_eq(r->hdr.type, HQ_MSG_REGISTERED, "the worker is answered with REGISTERED");
    return &r->u.registered;
}

/* A worker with 2 cpus registers from worker_rid; returns its REGISTERED. */
static const hq_registered_t *register_worker(void)
{
    return register_from(worker_rid, sizeof worker_rid, 0, NULL, 0, NULL);
}

/* What the scheduler answers when it places task (job, task) on worker 1. */
static void scheduler_assigns(uint32_t job_id, uint32_t task_id)
{
    hq_job_t *j = hq_jobtab_get(&b.jobs, job_id);
    cr_assert_not_null(j);
    hq_sched_cmd_t *cmd = hq_sched_cmd_new(HQ_SCHED_ASSIGNED);
    cmd->slots.n = 1;
    cmd->slots.slots = calloc(1, sizeof(hq_sched_slot_t));
    cmd->slots.slots[0] = (hq_sched_slot_t){.worker_id = 1,
                                            .job_id = job_id,
                                            .task_id = task_id,
                                            .rq_id = j->defs[0].rq_id,
                                            .variant = 0};
    hq_workers_on_assigned(&b, cmd);
    hq_sched_cmd_destroy(&cmd);
}

/* The worker's RESULTS (reliable, seq 1 after its REGISTER) with the given events. */
static void worker_results(uint64_t epoch, uint64_t seq, hq_task_event_t *ev, uint32_t n)
{
    hq_msg_t m = {.hdr.type = HQ_MSG_RESULTS, .hdr.epoch = epoch, .hdr.seq = seq};
    m.u.results = (hq_results_t){.credit = 2, .n_events = n, .events = ev};
    uint8_t *buf;
    size_t len;
    encode(&m, &buf, &len);
    hq_workers_on_message(&b, worker_rid, sizeof worker_rid, buf, len);
    free(buf);
}

TestSuite(broker_handlers, .init = setup, .fini = teardown);

Test(broker_handlers, submit_creates_a_job_replies_with_its_id_and_queues_its_tasks)
{
    submit(0, 0, 3, 7);
    hq_msg_t *r = last(&clients);
    cr_assert_eq(r->hdr.type, HQ_MSG_REPLY);
    cr_assert_eq(r->hdr.request_id, 7, "the reply answers the request");
    cr_assert_eq(r->u.reply.id, 1, "the first job gets id 1");
    hq_job_t *j = hq_jobtab_get(&b.jobs, 1);
    cr_assert_not_null(j);
    cr_assert_eq(j->n_tasks, 3);
    cr_assert_eq(j->counts[HQ_TS_WAITING], 3);
    hq_sched_cmd_t *rq = sched_cmd(HQ_SCHED_RQ_ADD, 0);
    cr_assert_not_null(rq, "the scheduler learns the task's request class");
    cr_assert_eq(rq->rq.rq_id, j->defs[0].rq_id);
    hq_sched_cmd_t *ready = sched_cmd(HQ_SCHED_READY, 0);
    cr_assert_not_null(ready, "the scheduler learns the waiting tasks");
    cr_assert_eq(ready->ready.job_id, 1);
    cr_assert_eq(ready->ready.ids.n, 1, "an array goes as one range");
    cr_assert_eq(ready->ready.ids.ranges[0].start, 0);
    cr_assert_eq(ready->ready.ids.ranges[0].end, 2);

    submit(0, 0, 1, 8);
    cr_assert_eq(last(&clients)->u.reply.id, 2, "job ids ascend");
}

Test(broker_handlers, submit_into_an_unknown_job_is_refused_with_a_typed_error)
{
    submit(42, 0, 1, 3);
    hq_msg_t *r = last(&clients);
    cr_assert_eq(r->hdr.type, HQ_MSG_ERROR);
    cr_assert_eq(r->u.error.code, HQ_ERR_NOT_FOUND);
    cr_assert_not_null(strstr(r->u.error.message, "42"), "the error names the job: %s",
                       r->u.error.message);
    cr_assert_null(hq_jobtab_get(&b.jobs, 42), "nothing was created");
    cr_assert_eq(b.jobs.n_live, 0);
}

Test(broker_handlers, a_repeated_request_is_answered_from_the_reply_cache_without_running_again)
{
    submit(0, 0, 2, 11);
    submit(0, 0, 2, 11); /* the same frame again: a client that lost the reply retries */
    cr_assert_eq(clients.n, 2, "both are answered");
    cr_assert_eq(clients.msg[1]->hdr.type, HQ_MSG_REPLY);
    cr_assert_eq(clients.msg[1]->u.reply.id, 1, "with the first reply");
    cr_assert_eq(b.jobs.max_id, 1, "the submit ran once");

    submit(0, 0, 2, 12); /* a new request id is a new request */
    cr_assert_eq(last(&clients)->u.reply.id, 2);
}

Test(broker_handlers, a_registering_worker_gets_an_id_an_epoch_and_is_known_by_its_routing_id)
{
    const hq_registered_t *reg = register_worker();
    cr_assert_eq(reg->worker_id, 1);
    hq_worker_t *w = hq_registry_get(&b.reg, 1);
    cr_assert_not_null(w);
    cr_assert_eq(w->state, HQ_WS_RUNNING);
    cr_assert_str_eq(w->conf->hostname, "cn001");
    cr_assert_eq(last(&workers)->hdr.epoch, w->epoch, "REGISTERED carries the session epoch");
    cr_assert_eq(zhashx_size(b.reg.by_rid), 1);
    hq_sched_cmd_t *up = sched_cmd(HQ_SCHED_WORKER_UP, 0);
    cr_assert_not_null(up, "the scheduler learns the worker");
    cr_assert_eq(up->worker.worker_id, 1);

    register_worker(); /* the same REGISTER on the same connection: answered again */
    cr_assert_eq(b.reg.max_id, 1, "a repeated REGISTER is not a second worker");
    cr_assert_eq(workers.n, 2);
}

Test(broker_handlers, a_task_assigned_started_and_finished_completes_its_job)
{
    submit(0, 0, 1, 1);
    register_worker();
    uint64_t epoch = last(&workers)->hdr.epoch;
    scheduler_assigns(1, 0);
    hq_job_t *j = hq_jobtab_get(&b.jobs, 1);
    cr_assert_eq(j->tasks[0].state, HQ_TS_ASSIGNED);

    hq_workers_flush(&b); /* the end of the turn */
    hq_msg_t *a = last(&workers);
    cr_assert_eq(a->hdr.type, HQ_MSG_ASSIGN, "the worker is sent an ASSIGN");
    cr_assert_eq(a->u.assign.n_tasks, 1);
    cr_assert_eq(a->u.assign.tasks[0].task_id, 0);
    uint32_t instance = a->u.assign.tasks[0].instance;

    hq_task_event_t ev[2] = {
        {.job_id = 1, .task_id = 0, .instance = instance, .kind = HQ_TEV_STARTED},
        {.job_id = 1, .task_id = 0, .instance = instance, .kind = HQ_TEV_FINISHED},
    };
    worker_results(epoch, 1, ev, 2);
    cr_assert_eq(j->tasks[0].state, HQ_TS_FINISHED);
    cr_assert_eq(j->counts[HQ_TS_FINISHED], 1);
    cr_assert(hq_job_is_complete(j), "its only task finished: the job is complete");
    cr_assert_eq(hq_registry_get(&b.reg, 1)->n_assigned, 0, "the worker's slot is free again");
    hq_sched_cmd_t *rel = sched_cmd(HQ_SCHED_RELEASE, 0);
    cr_assert_not_null(rel, "the scheduler gets the capacity back");
    cr_assert_eq(rel->slots.n, 1);
    cr_assert_eq(rel->slots.slots[0].task_id, 0);
    hq_sched_cmd_t *credit = sched_cmd(HQ_SCHED_CREDIT, 0);
    cr_assert_not_null(credit, "and the worker's new credit");
    cr_assert_eq(credit->credit, 2);
}

Test(broker_handlers, a_result_for_another_instance_or_epoch_is_ignored)
{
    submit(0, 0, 1, 1);
    register_worker();
    uint64_t epoch = last(&workers)->hdr.epoch;
    scheduler_assigns(1, 0);
    hq_workers_flush(&b);
    uint32_t instance = last(&workers)->u.assign.tasks[0].instance;
    hq_job_t *j = hq_jobtab_get(&b.jobs, 1);

    hq_task_event_t stale = {
        .job_id = 1, .task_id = 0, .instance = instance + 1, .kind = HQ_TEV_FINISHED};
    worker_results(epoch, 1, &stale, 1);
    cr_assert_eq(j->tasks[0].state, HQ_TS_ASSIGNED, "another instance's result is stale");

    hq_task_event_t fenced = {
        .job_id = 1, .task_id = 0, .instance = instance, .kind = HQ_TEV_FINISHED};
    worker_results(epoch + 1, 2, &fenced, 1);
    cr_assert_eq(j->tasks[0].state, HQ_TS_ASSIGNED, "another session's message is dropped");
}

Test(broker_handlers, job_list_answers_with_the_jobs_and_their_counts)
{
    submit(0, 0, 4, 1);
    hq_msg_t m = {.hdr.type = HQ_MSG_JOB_LIST};
    m.u.query.sel.kind = HQ_SEL_ALL;
    client_request(hq_h_job_list, &m, 2);
    hq_msg_t *r = last(&clients);
    cr_assert_eq(r->hdr.type, HQ_MSG_REPLY);
    cr_assert_not_null(r->u.reply.json);
    json_error_t jerr;
    json_t *doc = json_loads(r->u.reply.json, 0, &jerr);
    cr_assert_not_null(doc, "%s", jerr.text);
    json_t *jobs = json_object_get(doc, "result");
    cr_assert(json_is_array(jobs), "%s", r->u.reply.json);
    cr_assert_eq(json_array_size(jobs), 1);
    json_decref(doc);
}

/* A TASK_NOTIFY request for task 0 of job 1 with this instance. */
static void notify(uint32_t instance, const char *text, uint64_t request_id)
{
    hq_range_t jr = {.start = 1, .end = 1, .step = 1}, tr = {.start = 0, .end = 0, .step = 1};
    hq_msg_t m = {0};
    m.hdr.type = HQ_MSG_TASK_NOTIFY;
    m.u.query.sel.kind = HQ_SEL_IDS;
    m.u.query.sel.ids = (hq_rangelist_t){1, &jr};
    m.u.query.tasks = (hq_rangelist_t){1, &tr};
    m.u.query.text = (char *)text;
    m.u.query.number = instance;
    client_request(hq_h_task_notify, &m, request_id);
}

Test(broker_handlers, a_notification_of_a_running_task_wakes_a_wait_with_a_cursor)
{
    submit(0, 0, 1, 1);
    register_worker();
    uint64_t epoch = last(&workers)->hdr.epoch;
    notify(0, "too early", 2);
    cr_assert_eq(last(&clients)->hdr.type, HQ_MSG_ERROR, "a waiting task cannot notify");
    scheduler_assigns(1, 0);
    hq_workers_flush(&b);
    uint32_t instance = last(&workers)->u.assign.tasks[0].instance;
    hq_task_event_t ev = {.job_id = 1, .task_id = 0, .instance = instance, .kind = HQ_TEV_STARTED};
    worker_results(epoch, 1, &ev, 1);

    /* a wait with cursor 0 is held: no notification yet */
    hq_range_t jr = {.start = 1, .end = 1, .step = 1};
    hq_msg_t w = {0};
    w.hdr.type = HQ_MSG_JOB_WAIT;
    w.u.query.sel.kind = HQ_SEL_IDS;
    w.u.query.sel.ids = (hq_rangelist_t){1, &jr};
    w.u.query.number = 60000;
    w.u.query.text = "0";
    uint32_t before = clients.n;
    client_request(hq_h_job_wait, &w, 3);
    cr_assert_eq(clients.n, before, "held");

    notify(instance + 1, "wrong instance", 4);
    cr_assert_eq(last(&clients)->hdr.type, HQ_MSG_ERROR);
    notify(instance, "half done", 5);
    cr_assert_eq(last(&clients)->hdr.type, HQ_MSG_REPLY);
    hq_broker_check_waiters(&b, false); /* the end of the turn */
    hq_msg_t *r = last(&clients);
    cr_assert_eq(r->hdr.request_id, 3, "the held wait is answered");
    json_t *doc = json_loads(r->u.reply.json, 0, NULL);
    json_t *res = json_object_get(doc, "result");
    cr_assert(json_is_false(json_object_get(res, "done")));
    json_t *notes = json_object_get(res, "notifications");
    cr_assert_eq(json_array_size(notes), 1);
    json_t *n = json_array_get(notes, 0);
    cr_assert_str_eq(json_string_value(json_object_get(n, "message")), "half done");
    cr_assert_eq(json_integer_value(json_object_get(n, "worker")), 1);
    cr_assert_eq(json_integer_value(json_object_get(res, "notify_next")), 1);
    json_decref(doc);

    /* with the new cursor it is held again */
    w.u.query.text = "1";
    before = clients.n;
    client_request(hq_h_job_wait, &w, 6);
    hq_broker_check_waiters(&b, false);
    cr_assert_eq(clients.n, before, "nothing newer: held");
}

/* ---- taking over a live worker's session ---- */

static const uint8_t other_rid[] = {6, 6, 6};

/* Worker 1 runs task 1@0; returns the task's instance and the session's secret. */
static uint32_t worker_1_runs_a_task(uint8_t *secret)
{
    submit(0, 0, 1, 1);
    memcpy(secret, register_worker()->secret, HQ_SESSION_SECRET_LEN);
    uint64_t epoch = last(&workers)->hdr.epoch;
    scheduler_assigns(1, 0);
    hq_workers_flush(&b);
    uint32_t instance = last(&workers)->u.assign.tasks[0].instance;
    hq_task_event_t ev = {.job_id = 1, .task_id = 0, .instance = instance, .kind = HQ_TEV_STARTED};
    worker_results(epoch, 1, &ev, 1);
    cr_assert_eq(hq_jobtab_get(&b.jobs, 1)->tasks[0].state, HQ_TS_RUNNING);
    return instance;
}

Test(broker_handlers, registered_gives_each_session_a_secret_and_keeps_only_its_hash)
{
    const hq_registered_t *reg = register_worker();
    cr_assert(reg->has_secret, "REGISTERED carries the session's secret");
    hq_worker_t *w = hq_registry_get(&b.reg, 1);
    uint8_t hash[HQ_SESSION_SECRET_LEN];
    hq_session_secret_hash(reg->secret, hash);
    cr_assert(w->reg->u.reg.has_secret);
    cr_assert_eq(memcmp(w->reg->u.reg.secret, hash, sizeof hash), 0,
                 "the kept (journaled) REGISTER holds the hash");
    cr_assert_neq(memcmp(w->reg->u.reg.secret, reg->secret, sizeof hash), 0,
                  "and never the secret itself");
    const hq_registered_t *again = register_from(other_rid, sizeof other_rid, 0, NULL, 0, NULL);
    cr_assert_neq(memcmp(again->secret, reg->secret, sizeof hash), 0, "one secret per session");
}

Test(broker_handlers, a_worker_key_without_the_session_secret_cannot_take_over_a_live_worker)
{
    uint8_t secret[HQ_SESSION_SECRET_LEN], guess[HQ_SESSION_SECRET_LEN] = {0};
    uint32_t instance = worker_1_runs_a_task(secret);
    hq_task_ref_t claim = {1, 0, instance};
    static const uint8_t third_rid[] = {5, 5, 5};
    register_from(other_rid, sizeof other_rid, 1, &claim, 1, NULL);
    cr_assert_eq(last(&workers)->hdr.type, HQ_MSG_CANCEL, "the impostor is told to kill it");
    register_from(third_rid, sizeof third_rid, 1, &claim, 1, guess);
    hq_worker_t *w1 = hq_registry_get(&b.reg, 1);
    cr_assert_eq(w1->state, HQ_WS_RUNNING, "the real worker stays registered");
    hq_task_t *t = &hq_jobtab_get(&b.jobs, 1)->tasks[0];
    cr_assert_eq(t->worker, 1, "its task stays with it");
    cr_assert_eq(t->state, HQ_TS_RUNNING);
    cr_assert_eq(t->instance, instance);
    hq_msg_t *c = last(&workers);
    cr_assert_eq(c->hdr.type, HQ_MSG_CANCEL, "the impostor is told to kill what it claimed");
    cr_assert_eq(c->u.cancel.tasks[0].instance, instance);
}

Test(broker_handlers, the_session_secret_lets_a_reconnecting_worker_replace_its_live_session)
{
    uint8_t secret[HQ_SESSION_SECRET_LEN];
    uint32_t instance = worker_1_runs_a_task(secret);
    hq_task_ref_t claim = {1, 0, instance};
    const hq_registered_t *r2 = register_from(other_rid, sizeof other_rid, 1, &claim, 1, secret);
    cr_assert_eq(r2->worker_id, 2);
    cr_assert_neq(hq_registry_get(&b.reg, 1)->state, HQ_WS_RUNNING, "the old session ended");
    hq_task_t *t = &hq_jobtab_get(&b.jobs, 1)->tasks[0];
    cr_assert_eq(t->worker, 2, "the task moved to the new session");
    cr_assert_eq(t->state, HQ_TS_RUNNING);
    cr_assert_eq(t->instance, instance, "under the same instance: not rerun");
}

/* ---- what a registration may hold, and what an ended worker keeps ---- */

/* A list resource "x" of n labels (freed with hq_wres_clear). */
static hq_wres_t labels_resource(uint32_t n)
{
    hq_wres_t r = {.name = strdup("x"), .kind = HQ_RES_LIST, .n_groups = 1};
    r.groups = calloc(1, sizeof *r.groups);
    r.groups[0].n = n;
    r.groups[0].labels = calloc(n, sizeof(char *));
    for (uint32_t i = 0; i < n; i++) {
        char label[16];
        snprintf(label, sizeof label, "l%u", i);
        r.groups[0].labels[i] = strdup(label);
    }
    return r;
}

Test(broker_handlers, a_registration_with_more_labels_than_the_bound_is_refused_with_the_numbers)
{
    hq_wres_t big = labels_resource(HQ_MAX_WORKER_LABELS + 1);
    extra_res = &big;
    hq_msg_t *r = send_register(worker_rid, sizeof worker_rid, 0, NULL, 0, NULL);
    extra_res = NULL;
    hq_wres_clear(&big);
    cr_assert_eq(r->hdr.type, HQ_MSG_ERROR);
    cr_assert_eq(r->u.error.code, HQ_ERR_INVALID);
    cr_assert_not_null(strstr(r->u.error.message, "16385 labels"), "%s", r->u.error.message);
    cr_assert_not_null(strstr(r->u.error.message, "at most 16384"), "%s", r->u.error.message);
    cr_assert_eq(b.reg.max_id, 0, "no worker was registered");

    hq_wres_t fits = labels_resource(HQ_MAX_WORKER_LABELS);
    extra_res = &fits;
    register_worker();
    extra_res = NULL;
    hq_wres_clear(&fits);
    cr_assert_eq(b.reg.max_id, 1, "the bound itself is accepted");
}

Test(broker_handlers, an_ended_worker_keeps_its_configuration_but_not_its_session_data)
{
    uint8_t secret[HQ_SESSION_SECRET_LEN];
    uint32_t instance = worker_1_runs_a_task(secret);
    hq_task_ref_t claims[3] = {{1, 0, instance}, {1, 5, 0}, {2, 7, 1}};
    register_from(other_rid, sizeof other_rid, 1, claims, 3, secret);
    hq_worker_t *w2 = hq_registry_get(&b.reg, 2);
    cr_assert_eq(w2->reg->u.reg.n_reports, 3, "a live session keeps what it registered with");
    hq_worker_lost(&b, w2, HQ_WS_STOPPED);
    cr_assert_eq(w2->reg->u.reg.n_reports, 0, "the reports of its reconnect are dropped");
    cr_assert_null(w2->reg->u.reg.reports);
    cr_assert_null(w2->rid_key);
    cr_assert_null(w2->pending);
    cr_assert_eq(w2->conf, &w2->reg->u.reg.conf);
    cr_assert_str_eq(w2->conf->hostname, "cn001", "what listings show is kept");
    cr_assert_eq(w2->conf->resources.n, 1);
}
