/* The worker socket's handler: every message from a worker peer is checked (role,
 * registration, session epoch, seq/ack order) and handed to its handler:
 * registration with re-adoption of the tasks a reconnecting worker still runs, task
 * results, goodbyes. */
#define HQ_LOG_MODULE "hq::server::worker"
#include "wmsg.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "hq_log.h"
#include "hq_util.h"
#include "journal/glue.h"
#include "tasks.h"
#include "workers.h"

#define HQ_DEFAULT_HB_NS (8 * HQ_NS_PER_SEC)
#define HQ_MIN_HB_NS (10 * HQ_NS_PER_MS)

/* ---- registration ---- */

static void s_readopt(hq_broker_t *b, hq_worker_t *w, const hq_register_t *reg, bool proven);

static void s_send_registered(hq_broker_t *b, hq_worker_t *w)
{
    hq_msg_t m = {0};
    m.hdr.type = HQ_MSG_REGISTERED;
    m.u.registered.worker_id = w->id;
    m.u.registered.server_uid = b->conf.access.server_uid;
    m.u.registered.heartbeat_ns = w->hb_ns;
    m.u.registered.idle_timeout_ns = b->conf.idle_timeout_ns;
    m.u.registered.has_secret = true;
    memcpy(m.u.registered.secret, w->secret, sizeof w->secret);
    hq_worker_send(&b->wlink, w, &m);
    sodium_memzero(m.u.registered.secret, sizeof m.u.registered.secret);
}

/* A new session's reconnect secret: the worker gets it in REGISTERED; the broker keeps
 * only its hash, in the registry and in the REGISTER it keeps (and journals) in place
 * of the secret the worker presented, which is never stored. */
static void s_new_secret(hq_broker_t *b, hq_worker_t *w, hq_register_t *reg)
{
    uint8_t hash[HQ_SESSION_SECRET_LEN];
    randombytes_buf(w->secret, sizeof w->secret);
    hq_session_secret_hash(w->secret, hash);
    hq_registry_set_hash(&b->reg, w->id, hash);
    reg->has_secret = true;
    memcpy(reg->secret, hash, sizeof hash);
}

/* A registration over the bounds of registry.h is refused with the reason (the worker
 * prints it and exits). 0 = within them. */
static int s_refuse_oversized(hq_broker_t *b, const uint8_t *rid, size_t rid_len,
                              const hq_msg_t *msg, size_t frame_len)
{
    uint64_t labels = hq_worker_conf_labels(&msg->u.reg.conf);
    char *why = NULL;
    if (frame_len > HQ_MAX_REGISTER_BYTES)
        why = hq_asprintf("The worker's registration is %zu bytes; the server accepts at most "
                          "%u (describe large resources with ranges, e.g. range(0-65535), "
                          "rather than lists of labels)",
                          frame_len, HQ_MAX_REGISTER_BYTES);
    else if (labels > HQ_MAX_WORKER_LABELS)
        why = hq_asprintf("The worker's resources have %llu labels in total; the server "
                          "accepts at most %u per worker (describe large resources with "
                          "ranges, e.g. range(0-65535), rather than lists of labels)",
                          (unsigned long long)labels, HQ_MAX_WORKER_LABELS);
    if (!why)
        return 0;
    hq_warn("Refused the registration of a worker from %s: %s",
            msg->u.reg.conf.hostname ? msg->u.reg.conf.hostname : "?", why);
    hq_worker_socket_error(&b->wlink, rid, rid_len, msg->hdr.request_id, HQ_ERR_INVALID, why);
    free(why);
    return -1;
}

static void s_register(hq_broker_t *b, const uint8_t *rid, size_t rid_len, char *key, hq_msg_t *msg)
{
    hq_worker_t *old = zhashx_lookup(b->reg.by_rid, key);
    if (old) {
        /* A repeated REGISTER on the same connection: answer it again. */
        hq_debug("Worker %u registered again on the same connection", old->id);
        s_send_registered(b, old);
        free(key);
        hq_msg_destroy(&msg);
        return;
    }
    const hq_worker_conf_t *conf = &msg->u.reg.conf;
    hq_register_t *reg = &msg->u.reg;
    /* Only the worker that held old_worker_id (it knows that session's secret) may take
     * its tasks over; anyone else with the worker key registers as a new worker. */
    bool proven = hq_registry_proves(&b->reg, reg->old_worker_id, reg->has_secret, reg->secret);
    if (reg->old_worker_id && !proven)
        hq_warn("A worker registering as the successor of worker %u did not present that "
                "session's secret; it is registered as a new worker and takes over nothing",
                reg->old_worker_id);
    if (b->reg.max_id + 1 >= b->reg.cap) {
        uint32_t cap = b->reg.cap ? b->reg.cap * 2 : 64;
        b->reg.tab = hq_realloc(b->reg.tab, cap * sizeof(hq_worker_t *));
        memset(b->reg.tab + b->reg.cap, 0, (cap - b->reg.cap) * sizeof(hq_worker_t *));
        b->reg.cap = cap;
    }
    hq_worker_t *w = hq_calloc(1, sizeof *w);
    w->id = ++b->reg.max_id;
    w->epoch = b->reg.next_epoch++;
    memcpy(w->rid, rid, rid_len);
    w->rid_len = rid_len;
    w->rid_key = key;
    w->reg = msg;
    w->conf = conf;
    w->state = HQ_WS_RUNNING;
    w->connected_ns = hq_wall_ns();
    w->hb_ns = conf->heartbeat_ns ? conf->heartbeat_ns : HQ_DEFAULT_HB_NS;
    if (w->hb_ns < HQ_MIN_HB_NS)
        w->hb_ns = HQ_MIN_HB_NS;
    w->last_recv = hq_mono_ns();
    w->last_sent_hb = w->last_recv;
    w->ack_in = msg->hdr.seq; /* its reliable messages continue from here */
    b->reg.tab[w->id] = w;
    zhashx_insert(b->reg.by_rid, key, w);
    s_new_secret(b, w, reg);
    s_send_registered(b, w);
    hq_info("Worker %u registered from %s", w->id, conf->hostname ? conf->hostname : "");
    hq_event_t ev = {.type = HQ_EV_WORKER_CONNECTED, .worker_id = w->id, .obj = w};
    hq_events_emit(b->events, &ev);

    hq_sched_cmd_t *cmd = hq_sched_cmd_new(HQ_SCHED_WORKER_UP);
    cmd->worker.worker_id = w->id;
    cmd->worker.resources.n = conf->resources.n;
    cmd->worker.resources.res =
        hq_calloc(conf->resources.n ? conf->resources.n : 1, sizeof(hq_wres_t));
    hq_amount_t cpus = 0;
    for (uint32_t i = 0; i < conf->resources.n; i++) {
        hq_wres_copy(&cmd->worker.resources.res[i], &conf->resources.res[i]);
        if (conf->resources.res[i].name && strcmp(conf->resources.res[i].name, "cpus") == 0)
            cpus = hq_wres_capacity(&conf->resources.res[i]);
    }
    if (cpus > 1000000 * (hq_amount_t)HQ_AMOUNT_ONE)
        cpus = 1000000 * (hq_amount_t)HQ_AMOUNT_ONE;
    /* Until the worker announces its credit (in its first RESULTS), it gets its cpus
     * plus a small queue: a worker that registers a deep prefetch for short tasks
     * must not hoard long ones before it has said what it wants. */
    uint32_t ncpu = (uint32_t)(cpus / HQ_AMOUNT_ONE);
    uint32_t small = ncpu < 4 ? 4 : ncpu;
    cmd->worker.credit = ncpu + (msg->u.reg.prefetch < small ? msg->u.reg.prefetch : small);
    if (cmd->worker.credit == 0)
        cmd->worker.credit = 1;
    cmd->worker.prefetch = msg->u.reg.prefetch;
    cmd->worker.lifetime_end_ns = conf->time_limit_ns ? hq_mono_ns() + conf->time_limit_ns : 0;
    cmd->worker.group = hq_strdup(conf->group ? conf->group : "default");
    cmd->worker.min_utilization = conf->min_utilization;
    hq_readyq_post(&b->ready, cmd);
    hq_workers_tick_for(b, w->hb_ns);
    s_readopt(b, w, reg, proven);
}

/* ---- re-adoption ---- */

/* The worker's report lists every task it still runs or finished while cut off: a
 * task of its previous session that is still ASSIGNED and not in it was never started
 * there (only queued, or the ASSIGN never arrived), so its loss is no crash. */
static void s_unsend_unreported(hq_broker_t *b, hq_worker_t *old)
{
    if (old->n_assigned == old->n_running)
        return;
    for (uint32_t jid = 1; jid <= b->jobs.max_id; jid++) {
        hq_job_t *j = b->jobs.tab[jid];
        for (uint32_t i = 0; j && i < j->n_tasks; i++) {
            hq_task_t *t = &j->tasks[i];
            if (t->worker == old->id && t->state == HQ_TS_ASSIGNED)
                t->flags &= (uint8_t)~HQ_TF_SENT;
        }
    }
}

/* After a restart, the tasks the journal records as running on the worker's previous
 * session and that it did not report never reached it (the broker stopped between
 * recording a dispatch and the ASSIGN arriving) or were only queued there: they need
 * not wait for the grace period. Its report lists every instance it still runs, so a
 * REGISTER claiming more running tasks than reports (an older worker without them) is
 * left to the grace period. Runs after the reports were adopted (those moved to the
 * new session). */
static void s_readopt_unreported(hq_broker_t *b, hq_worker_t *w, const hq_register_t *reg,
                                 bool proven)
{
    if (!proven || !hq_jr_journal(b) || reg->n_running > reg->n_reports)
        return;
    uint32_t n = hq_broker_readopt_unreported(b, reg->old_worker_id);
    if (n)
        hq_info("Worker %u (previously %u) did not report %u task%s the journal recorded "
                "on it: waiting again at once",
                w->id, reg->old_worker_id, n, n == 1 ? "" : "s");
}

/* A reconnecting worker reported the task instances it still runs or finished while
 * cut off: adopt the ones the broker expects (restored as running after a restart, or
 * still held by the worker's previous session), kill the rest. Its end events follow
 * in a RESULTS and are applied to the adopted tasks like any result. */
static void s_readopt(hq_broker_t *b, hq_worker_t *w, const hq_register_t *reg, bool proven)
{
    hq_worker_t *old = proven ? hq_registry_get(&b->reg, reg->old_worker_id) : NULL;
    if (old && (old == w || old->state != HQ_WS_RUNNING))
        old = NULL;
    hq_task_ref_t *kill = NULL;
    uint32_t n_kill = 0, n_adopted = 0, n_ended = 0;
    for (uint32_t i = 0; i < reg->n_reports; i++) {
        const hq_task_ref_t *r = &reg->reports[i];
        hq_job_t *j = hq_jobtab_get(&b->jobs, r->job_id);
        hq_task_t *t = j ? hq_job_task(j, r->task_id) : NULL;
        /* Only tasks of a live previous session can move (not those of others). */
        enum hq_adopt a =
            hq_task_adopt_check(t, r, proven ? reg->old_worker_id : 0, old ? old->id : 0);
        if (a == HQ_ADOPT_YES) {
            hq_broker_adopt(b, j, t, w);
            n_adopted++;
            continue;
        }
        if (a == HQ_ADOPT_ENDED)
            n_ended++;
        else if (proven)
            hq_warn("Worker %u reported task %u@%u instance %u, which the server does not "
                    "expect; it is killed",
                    w->id, r->job_id, r->task_id, r->instance);
        if (!kill)
            kill = hq_malloc(reg->n_reports * sizeof *kill);
        kill[n_kill++] = *r;
    }
    if (reg->n_reports && !proven)
        hq_warn("Worker %u reported %u task%s without proof that it is worker %u; they are "
                "killed",
                w->id, reg->n_reports, reg->n_reports == 1 ? "" : "s", reg->old_worker_id);
    else if (reg->n_reports)
        hq_info("Worker %u (previously %u) reconnected: %u task%s re-adopted, %u already "
                "ended, %u stale",
                w->id, reg->old_worker_id, n_adopted, n_adopted == 1 ? "" : "s", n_ended,
                n_kill - n_ended);
    s_readopt_unreported(b, w, reg, proven);
    if (old) { /* the rest of the previous session's tasks are not coming back */
        s_unsend_unreported(b, old);
        hq_worker_lost(b, old, HQ_WS_CONNECTION_LOST);
    }
    if (n_kill) {
        hq_msg_t m = {0};
        m.hdr.type = HQ_MSG_CANCEL;
        m.u.cancel.n_tasks = n_kill;
        m.u.cancel.tasks = kill;
        hq_worker_send(&b->wlink, w, &m);
    }
    free(kill);
}

/* ---- results ---- */

static void s_on_results(hq_broker_t *b, hq_worker_t *w, hq_msg_t *msg)
{
    const hq_results_t *res = &msg->u.results;
    hq_release_t rel = {0};
    for (uint32_t i = 0; i < res->n_events; i++) {
        const hq_task_event_t *ev = &res->events[i];
        hq_job_t *j = hq_jobtab_get(&b->jobs, ev->job_id);
        hq_task_t *t = j ? hq_job_task(j, ev->task_id) : NULL;
        if (!t || t->instance != ev->instance || t->worker != w->id ||
            !(t->flags & (HQ_TF_HOLDS | HQ_TF_ADOPTED))) {
            hq_debug("Ignoring a stale result for task %u@%u instance %u from worker %u",
                     ev->job_id, ev->task_id, ev->instance, w->id);
            continue;
        }
        const hq_jdef_t *jd = &j->defs[t->def];
        switch (ev->kind) {
        case HQ_TEV_STARTED:
            if (t->state == HQ_TS_ASSIGNED) {
                hq_events_task_state(b->events, j, t, HQ_TS_RUNNING, w->id, NULL,
                                     ev->time_ns ? ev->time_ns : hq_wall_ns());
                w->n_running++;
                w->has_last = true;
                w->last_job = j->id;
                w->last_task = t->id;
                w->last_time = t->start_ns;
            }
            break;
        case HQ_TEV_FINISHED:
        case HQ_TEV_FAILED:
        case HQ_TEV_CANCELED: {
            enum hq_tstate st = ev->kind == HQ_TEV_FINISHED ? HQ_TS_FINISHED
                                : ev->kind == HQ_TEV_FAILED ? HQ_TS_FAILED
                                                            : HQ_TS_CANCELED;
            if (t->flags & HQ_TF_HOLDS) /* an adopted task holds no scheduler capacity */
                hq_release_add(&rel, w->id, j->id, t->id, jd->rq_id, t->variant);
            hq_broker_task_result(b, j, t, st, w->id, ev->error,
                                  ev->time_ns ? ev->time_ns : hq_wall_ns());
            break;
        }
        case HQ_TEV_REJECTED:
            if (t->flags & HQ_TF_HOLDS)
                hq_release_add(&rel, w->id, j->id, t->id, jd->rq_id, t->variant);
            if (hq_tstate_final(t->state)) {
                hq_broker_task_result(b, j, t, t->state, w->id, NULL, hq_wall_ns());
            } else {
                if (t->state == HQ_TS_RUNNING)
                    hq_events_task_state(b->events, j, t, HQ_TS_ASSIGNED, w->id, NULL,
                                         hq_wall_ns());
                t->flags &= (uint8_t)~HQ_TF_SENT; /* the worker did not start it */
                hq_broker_requeue(b, j, t, false);
            }
            break;
        default:
            hq_warn("Unknown task event kind %u from worker %u", ev->kind, w->id);
            break;
        }
    }
    hq_readyq_release(&b->ready, &rel);
    hq_sched_cmd_t *cmd = hq_sched_cmd_new(HQ_SCHED_CREDIT);
    cmd->worker_id = w->id;
    cmd->credit = res->credit;
    hq_readyq_post(&b->ready, cmd);
}

static void s_on_goodbye(hq_broker_t *b, hq_worker_t *w, hq_msg_t *msg)
{
    enum hq_wstate st;
    switch (msg->u.goodbye.reason) {
    case HQ_BYE_IDLE_TIMEOUT:
        st = HQ_WS_IDLE_TIMEOUT;
        break;
    case HQ_BYE_TIME_LIMIT:
        st = HQ_WS_TIME_LIMIT;
        break;
    case HQ_BYE_SIGNAL: /* killed by its batch system or the user: not an orderly end */
        st = HQ_WS_CONNECTION_LOST;
        break;
    default:
        st = HQ_WS_STOPPED;
        break;
    }
    hq_worker_lost(b, w, st);
}

/* A worker's hardware state (--overview-interval): the latest is kept for `worker
 * info`, and each one is a worker-overview event (journaled). */
static void s_on_overview(hq_broker_t *b, hq_worker_t *w, hq_msg_t *msg)
{
    json_error_t jerr;
    json_t *hw = json_loads(msg->u.overview.hw_state, 0, &jerr);
    if (!json_is_object(hw) || !json_is_object(json_object_get(hw, "state"))) {
        hq_warn("Worker %u sent a hardware overview that is not an object with a \"state\" "
                "object; ignored",
                w->id);
        json_decref(hw);
        return;
    }
    char *text = json_dumps(hw, JSON_COMPACT);
    json_decref(hw);
    if (!text)
        return;
    free(w->overview);
    w->overview = text;
    hq_event_t ev = {
        .type = HQ_EV_WORKER_OVERVIEW, .worker_id = w->id, .text = w->overview, .obj = w};
    hq_events_emit(b->events, &ev);
}

/* ---- seq / ack ---- */

/* How old an unacknowledged message must be before a stale ack from the peer
 * counts as evidence of its loss: half a heartbeat (acks flow at least once per
 * heartbeat both ways), at least 50 ms. */
static uint64_t s_retx_age(const hq_worker_t *w)
{
    uint64_t age = w->hb_ns / 2;
    return age < 50 * HQ_NS_PER_MS ? 50 * HQ_NS_PER_MS : age;
}

/* The peer's ack (highest of our reliable seqs it processed) drops what it covers;
 * what it does not cover although it left long enough ago was lost on the way
 * (e.g. with a connection that broke) and goes out again, in order. */
static void s_peer_ack(hq_broker_t *b, hq_worker_t *w, uint64_t ack, uint64_t now)
{
    if (ack > w->seq_out)
        ack = w->seq_out; /* acknowledges what we never sent: believe only the rest */
    hq_outbox_ack(&w->outbox, ack);
    if (hq_outbox_due(&w->outbox, now, s_retx_age(w), false))
        hq_worker_retransmit(&b->wlink, w, now);
}

/* A gap in the peer's seqs: answer at once with a heartbeat carrying our ack, so it
 * retransmits without waiting for our next heartbeat. */
static void s_nack(hq_broker_t *b, hq_worker_t *w, uint64_t now)
{
    if (w->last_nack && now - w->last_nack < s_retx_age(w) / 2)
        return;
    w->last_nack = now;
    hq_msg_t m = {0};
    m.hdr.type = HQ_MSG_HEARTBEAT;
    hq_worker_send(&b->wlink, w, &m);
}

/* ---- the worker socket's handler table ---- */

typedef void(s_worker_fn)(hq_broker_t *b, hq_worker_t *w, hq_msg_t *msg);

static s_worker_fn *const s_worker_table[256] = {
    [HQ_MSG_RESULTS] = s_on_results,
    [HQ_MSG_GOODBYE] = s_on_goodbye,
    [HQ_MSG_OVERVIEW] = s_on_overview,
};

void hq_workers_on_message(hq_broker_t *b, const uint8_t *rid, size_t rid_len, const uint8_t *frame,
                           size_t len)
{
    hq_header_t hdr;
    hq_err_t err;
    if (hq_header_decode(frame, len, &hdr, &err) != 0) {
        hq_warn("Malformed message on the worker socket: %s", err.text);
        hq_worker_socket_error(&b->wlink, rid, rid_len, 0, HQ_ERR_BAD_REQUEST, err.text);
        return;
    }
    if (!hq_msg_is_worker_message(hdr.type)) {
        /* Role separation (broker/GUARANTEES.md, case role-separation): a client
         * request sent with the worker key is refused with a typed error, never
         * executed. */
        hq_warn("A %s message arrived on the worker socket; refused", hq_msg_type_name(hdr.type));
        hq_worker_socket_error(&b->wlink, rid, rid_len, hdr.request_id, HQ_ERR_ROLE,
                               "This is the worker socket: client requests are not accepted "
                               "here (the access file used is a worker access file)");
        return;
    }
    char *key = hq_rid_hex(rid, rid_len);
    if (hdr.type == HQ_MSG_REGISTER) {
        hq_msg_t *msg = hq_msg_decode(frame, len, &err);
        if (!msg) {
            hq_warn("Malformed REGISTER: %s", err.text);
            hq_worker_socket_error(&b->wlink, rid, rid_len, hdr.request_id, HQ_ERR_BAD_REQUEST,
                                   err.text);
            free(key);
            return;
        }
        if (s_refuse_oversized(b, rid, rid_len, msg, len) != 0) {
            free(key);
            hq_msg_destroy(&msg);
            return;
        }
        s_register(b, rid, rid_len, key, msg);
        hq_turn_dirty(&b->turn);
        return;
    }
    hq_worker_t *w = zhashx_lookup(b->reg.by_rid, key);
    free(key);
    if (!w) {
        hq_debug("Dropped %s from an unregistered peer", hq_msg_type_name(hdr.type));
        return;
    }
    if (hdr.epoch != w->epoch) {
        hq_debug("Dropped %s with epoch %llu; worker %u has epoch %llu", hq_msg_type_name(hdr.type),
                 (unsigned long long)hdr.epoch, w->id, (unsigned long long)w->epoch);
        return;
    }
    uint64_t now = hq_mono_ns();
    w->last_recv = now;
    w->unreach_since = 0; /* it speaks: reconnected, if its link had broken */
    s_peer_ack(b, w, hdr.ack, now);
    if (hq_msg_is_reliable(hdr.type)) {
        switch (hq_seq_check(w->ack_in, hdr.seq)) {
        case HQ_SEQ_DUP:
            w->n_dups++;
            hq_debug("Dropped a duplicate %s (seq %llu) from worker %u", hq_msg_type_name(hdr.type),
                     (unsigned long long)hdr.seq, w->id);
            return;
        case HQ_SEQ_GAP:
            hq_debug("Dropped %s seq %llu from worker %u: seq %llu is missing",
                     hq_msg_type_name(hdr.type), (unsigned long long)hdr.seq, w->id,
                     (unsigned long long)w->ack_in + 1);
            s_nack(b, w, now);
            return;
        case HQ_SEQ_DELIVER:
            w->ack_in = hdr.seq;
            break;
        }
    } else if (hdr.seq > w->ack_in) {
        s_nack(b, w, now); /* it sent something we have not received */
    }
    s_worker_fn *fn = s_worker_table[hdr.type];
    if (!fn)
        return; /* HEARTBEAT: liveness is all it carries */
    hq_msg_t *msg = hq_msg_decode(frame, len, &err);
    if (!msg) {
        hq_warn("Malformed %s from worker %u: %s", hq_msg_type_name(hdr.type), w->id, err.text);
        return;
    }
    fn(b, w, msg);
    hq_msg_destroy(&msg);
}
