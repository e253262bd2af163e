/* The worker registry: registration with session epochs, fencing, heartbeats and
 * loss, task results, batched assignments and cancels, and the worker queries. */
#define HQ_LOG_MODULE "hq::server::worker"
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "jglue.h"
#include "hq_duration.h"
#include "hq_log.h"
#include "hq_render.h"
#include "hq_util.h"

#define HQ_DEFAULT_HB_NS (8 * HQ_NS_PER_SEC)
#define HQ_MIN_HB_NS (10 * HQ_NS_PER_MS)
#define HQ_ASSIGN_CHUNK 4096

hq_worker_t *hq_broker_worker(hq_broker_t *b, uint32_t id)
{
    return id > 0 && id <= b->max_worker_id ? b->workers[id] : NULL;
}

const char *hq_wstate_word(enum hq_wstate s)
{
    switch (s) {
    case HQ_WS_RUNNING:
        return "RUNNING";
    case HQ_WS_CONNECTION_LOST:
        return "CONNECTION LOST";
    case HQ_WS_HEARTBEAT_LOST:
        return "HEARTBEAT LOST";
    case HQ_WS_IDLE_TIMEOUT:
        return "IDLE TIMEOUT";
    case HQ_WS_STOPPED:
        return "STOPPED";
    default:
        return "TIME LIMIT REACHED";
    }
}

static void s_send_simple(hq_broker_t *b, hq_worker_t *w, uint8_t type, uint32_t reason)
{
    hq_msg_t m = {0};
    m.hdr.type = type;
    m.u.goodbye.reason = reason;
    hq_worker_send(b, w, &m);
}

/* ---- registration ---- */

static int s_on_tick_reset(hq_broker_t *b, uint64_t hb_ns);
static void s_readopt(hq_broker_t *b, hq_worker_t *w, const hq_register_t *reg);

static void s_send_registered(hq_broker_t *b, hq_worker_t *w)
{
    hq_msg_t m = {0};
    m.hdr.type = HQ_MSG_REGISTERED;
    m.u.registered.worker_id = w->id;
    m.u.registered.server_uid = b->access.server_uid;
    m.u.registered.heartbeat_ns = w->hb_ns;
    m.u.registered.idle_timeout_ns = b->idle_timeout_ns;
    hq_worker_send(b, w, &m);
}

static void s_register(hq_broker_t *b, const uint8_t *rid, size_t rid_len, char *key, hq_msg_t *msg)
{
    hq_worker_t *old = zhashx_lookup(b->worker_by_rid, key);
    if (old) {
        /* A repeated REGISTER on the same connection: answer it again. */
        hq_debug("Worker %u registered again on the same connection", old->id);
        s_send_registered(b, old);
        free(key);
        hq_msg_destroy(&msg);
        return;
    }
    const hq_worker_conf_t *conf = &msg->u.reg.conf;
    if (b->max_worker_id + 1 >= b->cap_workers) {
        uint32_t cap = b->cap_workers ? b->cap_workers * 2 : 64;
        b->workers = hq_realloc(b->workers, cap * sizeof(hq_worker_t *));
        memset(b->workers + b->cap_workers, 0, (cap - b->cap_workers) * sizeof(hq_worker_t *));
        b->cap_workers = cap;
    }
    hq_worker_t *w = hq_calloc(1, sizeof *w);
    w->id = ++b->max_worker_id;
    w->epoch = b->next_epoch++;
    memcpy(w->rid, rid, rid_len);
    w->rid_len = rid_len;
    w->rid_key = key;
    w->reg = msg;
    w->conf = conf;
    w->state = HQ_WS_RUNNING;
    w->hb_ns = conf->heartbeat_ns ? conf->heartbeat_ns : HQ_DEFAULT_HB_NS;
    if (w->hb_ns < HQ_MIN_HB_NS)
        w->hb_ns = HQ_MIN_HB_NS;
    w->last_recv = hq_mono_ns();
    w->last_sent_hb = w->last_recv;
    w->ack_in = msg->hdr.seq; /* its reliable messages continue from here */
    b->workers[w->id] = w;
    zhashx_insert(b->worker_by_rid, key, w);
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
    hq_sched_post(b, cmd);
    s_on_tick_reset(b, w->hb_ns);
    s_readopt(b, w, &msg->u.reg);
}

/* ---- re-adoption ---- */

/* The worker's report lists every task it still runs or finished while cut off: a
 * task of its previous session that is still ASSIGNED and not in it was never started
 * there (only queued, or the ASSIGN never arrived), so its loss is no crash. */
static void s_unsend_unreported(hq_broker_t *b, hq_worker_t *old)
{
    if (old->n_assigned == old->n_running)
        return;
    for (uint32_t jid = 1; jid <= b->max_job_id; jid++) {
        hq_job_t *j = b->jobs[jid];
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
static void s_readopt_unreported(hq_broker_t *b, hq_worker_t *w, const hq_register_t *reg)
{
    if (reg->old_worker_id == 0 || !hq_jr_journal(b) || reg->n_running > reg->n_reports)
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
static void s_readopt(hq_broker_t *b, hq_worker_t *w, const hq_register_t *reg)
{
    hq_worker_t *old = hq_broker_worker(b, reg->old_worker_id);
    if (old && (old == w || old->state != HQ_WS_RUNNING))
        old = NULL;
    hq_task_ref_t *kill = NULL;
    uint32_t n_kill = 0, n_adopted = 0, n_ended = 0;
    for (uint32_t i = 0; i < reg->n_reports; i++) {
        const hq_task_ref_t *r = &reg->reports[i];
        hq_job_t *j = hq_broker_job(b, r->job_id);
        hq_task_t *t = j ? hq_job_task(j, r->task_id) : NULL;
        /* Only tasks of a live previous session can move (not those of others). */
        enum hq_adopt a = hq_task_adopt_check(t, r, old ? old->id : 0);
        if (a == HQ_ADOPT_YES) {
            hq_broker_adopt(b, j, t, w);
            n_adopted++;
            continue;
        }
        if (a == HQ_ADOPT_ENDED)
            n_ended++;
        else
            hq_warn("Worker %u reported task %u@%u instance %u, which the server does not "
                    "expect; it is killed",
                    w->id, r->job_id, r->task_id, r->instance);
        if (!kill)
            kill = hq_malloc(reg->n_reports * sizeof *kill);
        kill[n_kill++] = *r;
    }
    if (reg->n_reports)
        hq_info("Worker %u (previously %u) reconnected: %u task%s re-adopted, %u already "
                "ended, %u stale",
                w->id, reg->old_worker_id, n_adopted, n_adopted == 1 ? "" : "s", n_ended,
                n_kill - n_ended);
    s_readopt_unreported(b, w, reg);
    if (old) { /* the rest of the previous session's tasks are not coming back */
        s_unsend_unreported(b, old);
        hq_worker_lost(b, old, HQ_WS_CONNECTION_LOST);
    }
    if (n_kill) {
        hq_msg_t m = {0};
        m.hdr.type = HQ_MSG_CANCEL;
        m.u.cancel.n_tasks = n_kill;
        m.u.cancel.tasks = kill;
        hq_worker_send(b, w, &m);
    }
    free(kill);
}

/* ---- loss ---- */

void hq_worker_lost(hq_broker_t *b, hq_worker_t *w, enum hq_wstate why)
{
    if (w->state != HQ_WS_RUNNING)
        return;
    w->state = why;
    w->ended_ns = hq_wall_ns();
    zhashx_delete(b->worker_by_rid, w->rid_key);
    /* Nothing of this session is sent again: a later session starts a new outbox. */
    hq_outbox_clear(&w->outbox);
    w->unreach_since = 0;
    const char *reason = hq_wstate_word(why);
    if (why == HQ_WS_HEARTBEAT_LOST || why == HQ_WS_CONNECTION_LOST)
        hq_info("Worker %u lost (%s)", w->id, reason);
    else
        hq_info("Worker %u stopped (%s)", w->id, reason);
    hq_sched_cmd_t *cmd = hq_sched_cmd_new(HQ_SCHED_WORKER_DOWN);
    cmd->worker_id = w->id;
    hq_sched_post(b, cmd);
    bool crash = why == HQ_WS_HEARTBEAT_LOST || why == HQ_WS_CONNECTION_LOST;
    w->n_pending = 0;
    if (w->n_assigned > 0) {
        for (uint32_t jid = 1; jid <= b->max_job_id; jid++) {
            hq_job_t *j = b->jobs[jid];
            if (!j)
                continue;
            for (uint32_t i = 0; i < j->n_tasks; i++) {
                hq_task_t *t = &j->tasks[i];
                if (!(t->flags & (HQ_TF_HOLDS | HQ_TF_ADOPTED)) || t->worker != w->id)
                    continue;
                if (hq_tstate_final(t->state))
                    t->flags &= (uint8_t) ~(HQ_TF_HOLDS | HQ_TF_ADOPTED);
                else
                    hq_broker_requeue(b, j, t, crash);
            }
        }
    }
    w->n_assigned = 0;
    w->n_running = 0;
    hq_event_t ev = {.type = HQ_EV_WORKER_LOST, .worker_id = w->id, .text = reason, .obj = w};
    hq_events_emit(b->events, &ev);
    hq_core_dirty(b);
}

/* ---- results ---- */

typedef struct s_release {
    hq_sched_slot_t *slots; /* capacity to give back */
    uint32_t n, cap;
} s_release_t;

static void s_release_add(s_release_t *r, uint32_t worker_id, uint32_t job_id, uint32_t task_id,
                          uint32_t rq_id, uint32_t variant)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->slots = hq_realloc(r->slots, r->cap * sizeof(hq_sched_slot_t));
    }
    r->slots[r->n++] = (hq_sched_slot_t){.worker_id = worker_id,
                                         .job_id = job_id,
                                         .task_id = task_id,
                                         .rq_id = rq_id,
                                         .variant = variant};
}

static void s_release_post(hq_broker_t *b, s_release_t *r)
{
    if (r->n == 0) {
        free(r->slots);
        return;
    }
    hq_sched_cmd_t *cmd = hq_sched_cmd_new(HQ_SCHED_RELEASE);
    cmd->slots.n = r->n;
    cmd->slots.slots = r->slots;
    hq_sched_post(b, cmd);
}

static void s_on_results(hq_broker_t *b, hq_worker_t *w, hq_msg_t *msg)
{
    const hq_results_t *res = &msg->u.results;
    s_release_t rel = {0};
    for (uint32_t i = 0; i < res->n_events; i++) {
        const hq_task_event_t *ev = &res->events[i];
        hq_job_t *j = hq_broker_job(b, ev->job_id);
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
                s_release_add(&rel, w->id, j->id, t->id, jd->rq_id, t->variant);
            hq_broker_task_result(b, j, t, st, w->id, ev->error,
                                  ev->time_ns ? ev->time_ns : hq_wall_ns());
            break;
        }
        case HQ_TEV_REJECTED:
            if (t->flags & HQ_TF_HOLDS)
                s_release_add(&rel, w->id, j->id, t->id, jd->rq_id, t->variant);
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
    s_release_post(b, &rel);
    hq_sched_cmd_t *cmd = hq_sched_cmd_new(HQ_SCHED_CREDIT);
    cmd->worker_id = w->id;
    cmd->credit = res->credit;
    hq_sched_post(b, cmd);
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
    default:
        st = HQ_WS_STOPPED;
        break;
    }
    hq_worker_lost(b, w, st);
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
        hq_worker_retransmit(b, w, now);
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
    hq_worker_send(b, w, &m);
}

static uint64_t s_unreach_grace(const hq_worker_t *w)
{
    return w->hb_ns < HQ_NS_PER_SEC ? w->hb_ns : HQ_NS_PER_SEC;
}

static int s_on_unreach_check(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    hq_broker_t *b = arg;
    b->unreach_armed = false;
    uint64_t now = hq_mono_ns(), next = 0;
    for (uint32_t wid = 1; wid <= b->max_worker_id; wid++) {
        hq_worker_t *w = b->workers[wid];
        if (!w || w->state != HQ_WS_RUNNING || !w->unreach_since)
            continue;
        uint64_t end = w->unreach_since + s_unreach_grace(w);
        if (now >= end) {
            hq_worker_lost(b, w, HQ_WS_CONNECTION_LOST);
            continue;
        }
        if (!next || end < next)
            next = end;
    }
    if (next && b->loop) {
        size_t ms = (size_t)((next - now) / HQ_NS_PER_MS) + 1;
        b->unreach_armed = zloop_timer(b->loop, ms, 1, s_on_unreach_check, b) >= 0;
    }
    return 0;
}

void hq_workers_unreachable(hq_broker_t *b, hq_worker_t *w)
{
    if (w->state != HQ_WS_RUNNING || w->unreach_since)
        return;
    if (!b->loop) {
        hq_worker_lost(b, w, HQ_WS_CONNECTION_LOST);
        return;
    }
    w->unreach_since = hq_mono_ns();
    hq_debug("Worker %u is unreachable; lost unless it reconnects within %llu ms", w->id,
             (unsigned long long)(s_unreach_grace(w) / HQ_NS_PER_MS));
    if (!b->unreach_armed) {
        size_t ms = (size_t)(s_unreach_grace(w) / HQ_NS_PER_MS) + 1;
        b->unreach_armed = zloop_timer(b->loop, ms, 1, s_on_unreach_check, b) >= 0;
    }
    if (!b->unreach_armed)
        hq_worker_lost(b, w, HQ_WS_CONNECTION_LOST);
}

/* ---- the worker socket's handler table ---- */

typedef void(s_worker_fn)(hq_broker_t *b, hq_worker_t *w, hq_msg_t *msg);

static s_worker_fn *const s_worker_table[256] = {
    [HQ_MSG_RESULTS] = s_on_results,
    [HQ_MSG_GOODBYE] = s_on_goodbye,
};

void hq_workers_on_message(hq_broker_t *b, const uint8_t *rid, size_t rid_len, const uint8_t *frame,
                           size_t len)
{
    hq_header_t hdr;
    hq_err_t err;
    if (hq_header_decode(frame, len, &hdr, &err) != 0) {
        hq_warn("Malformed message on the worker socket: %s", err.text);
        hq_worker_socket_error(b, rid, rid_len, 0, HQ_ERR_BAD_REQUEST, err.text);
        return;
    }
    if (!hq_msg_is_worker_message(hdr.type)) {
        /* RELIABILITY.md #23: a client request sent with the worker key is refused
         * with a typed error, never executed. */
        hq_warn("A %s message arrived on the worker socket; refused", hq_msg_type_name(hdr.type));
        hq_worker_socket_error(b, rid, rid_len, hdr.request_id, HQ_ERR_ROLE,
                               "This is the worker socket: client requests are not accepted "
                               "here (the access file used is a worker access file)");
        return;
    }
    char *key = hq_rid_hex(rid, rid_len);
    if (hdr.type == HQ_MSG_REGISTER) {
        hq_msg_t *msg = hq_msg_decode(frame, len, &err);
        if (!msg) {
            hq_warn("Malformed REGISTER: %s", err.text);
            hq_worker_socket_error(b, rid, rid_len, hdr.request_id, HQ_ERR_BAD_REQUEST, err.text);
            free(key);
            return;
        }
        s_register(b, rid, rid_len, key, msg);
        hq_core_dirty(b);
        return;
    }
    hq_worker_t *w = zhashx_lookup(b->worker_by_rid, key);
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

/* ---- assignments ---- */

static void s_mnodes_free(void **item)
{
    hq_mnodes_t *m = *item;
    if (!m)
        return;
    for (uint32_t i = 0; i < m->n; i++)
        free(m->hosts[i]);
    free(m->hosts);
    free(m);
    *item = NULL;
}

static char *s_mn_key(uint32_t job, uint32_t task)
{
    return hq_asprintf("%u@%u", job, task);
}

/* A multi-node task comes as consecutive slots of one task, root first: remembers
 * the nodes' hostnames for the root's ASSIGN. Returns how many slots follow. */
static uint32_t s_mn_collect(hq_broker_t *b, const hq_sched_slots_t *slots, uint32_t i)
{
    const hq_sched_slot_t *s = &slots->slots[i];
    uint32_t n = 1;
    while (i + n < slots->n && slots->slots[i + n].job_id == s->job_id &&
           slots->slots[i + n].task_id == s->task_id)
        n++;
    if (n == 1)
        return 0;
    if (!b->mn_nodes) {
        b->mn_nodes = zhashx_new();
        zhashx_set_destructor(b->mn_nodes, s_mnodes_free);
    }
    hq_mnodes_t *m = hq_calloc(1, sizeof *m);
    m->n = n;
    m->hosts = hq_calloc(n, sizeof *m->hosts);
    for (uint32_t k = 0; k < n; k++) {
        hq_worker_t *w = hq_broker_worker(b, slots->slots[i + k].worker_id);
        m->hosts[k] = hq_strdup(w && w->conf->hostname ? w->conf->hostname : "");
    }
    char *key = s_mn_key(s->job_id, s->task_id);
    zhashx_update(b->mn_nodes, key, m);
    free(key);
    return n - 1;
}

/* Queues an assigned task for the next ASSIGN to w. */
static void s_pend(hq_worker_t *w, uint32_t job_id, uint32_t task_id)
{
    if (w->n_pending == w->cap_pending) {
        w->cap_pending = w->cap_pending ? w->cap_pending * 2 : 64;
        w->pending = hq_realloc(w->pending, w->cap_pending * sizeof(hq_tref_t));
    }
    w->pending[w->n_pending++] = (hq_tref_t){.job_id = job_id, .task_id = task_id};
}

/* With the journal on, a batch of dispatches waits for its task_started records to be
 * durable before the workers are told: an instance id a worker has seen is never
 * handed out again after a broker crash. */
typedef struct s_dispatch {
    hq_broker_t *b;
    uint32_t pending; /* records not settled yet (+1 while appending) */
    int errnum;       /* first failure */
    uint32_t n;
    hq_sched_slot_t *slots;
    uint32_t *instances;
} s_dispatch_t;

static void s_dispatch_done(void *arg, uint64_t lsn, int errnum)
{
    (void)lsn;
    s_dispatch_t *d = arg;
    if (errnum && !d->errnum)
        d->errnum = errnum;
    if (--d->pending > 0)
        return;
    hq_broker_t *b = d->b;
    if (d->errnum)
        hq_warn("Dispatch of %u tasks could not be recorded (%s); sending them anyway", d->n,
                strerror(d->errnum));
    for (uint32_t i = 0; i < d->n; i++) {
        const hq_sched_slot_t *s = &d->slots[i];
        hq_job_t *j = hq_broker_job(b, s->job_id);
        hq_task_t *t = j ? hq_job_task(j, s->task_id) : NULL;
        hq_worker_t *w = hq_broker_worker(b, s->worker_id);
        /* Changed meanwhile (canceled, worker lost): whoever changed it took care. */
        if (!t || !w || w->state != HQ_WS_RUNNING || t->state != HQ_TS_ASSIGNED ||
            t->worker != w->id || t->instance != d->instances[i])
            continue;
        s_pend(w, j->id, t->id);
    }
    free(d->slots);
    free(d->instances);
    free(d);
    hq_core_dirty(b);
}

/* Dispatches are recorded in chunks of at most S_DISPATCH_CHUNK tasks, one
 * tasks_started record per run of the same job and worker: a chunk's ASSIGNs go out
 * as soon as its records are durable while later chunks are still being written, and
 * a task costs the journal a few bytes instead of a record of its own. */
#define S_DISPATCH_CHUNK 256

typedef struct s_started_acc {
    uint32_t job, worker; /* the run being collected */
    uint64_t epoch;       /* the worker's session epoch */
    uint32_t n;           /* collected */
    hq_jinst_t insts[S_DISPATCH_CHUNK];
} s_started_acc_t;

static s_dispatch_t *s_dispatch_new(hq_broker_t *b, uint32_t left)
{
    uint32_t n = left < S_DISPATCH_CHUNK ? left : S_DISPATCH_CHUNK;
    s_dispatch_t *d = hq_calloc(1, sizeof *d);
    d->b = b;
    d->pending = 1;
    d->slots = hq_malloc((n ? n : 1) * sizeof *d->slots);
    d->instances = hq_malloc((n ? n : 1) * sizeof(uint32_t));
    return d;
}

/* Appends the collected run as one tasks_started record that d waits for. */
static void s_started_flush(hq_broker_t *b, s_started_acc_t *a, s_dispatch_t *d)
{
    if (a->n == 0)
        return;
    hq_jrec_t rec = {.type = HQ_JR_TASKS_STARTED};
    rec.u.batch.job = a->job;
    rec.u.batch.worker = a->worker;
    rec.u.batch.epoch = a->epoch;
    rec.u.batch.n = a->n;
    rec.u.batch.insts = a->insts;
    d->pending++;
    if (hq_jr_append(b, &rec, s_dispatch_done, d) == 0)
        s_dispatch_done(d, 0, EIO);
    a->n = 0;
}

void hq_workers_on_assigned(hq_broker_t *b, hq_sched_cmd_t *cmd)
{
    s_release_t rel = {0};
    hq_journal_t *jn = hq_jr_journal(b);
    s_dispatch_t *d = jn ? s_dispatch_new(b, cmd->slots.n) : NULL;
    s_started_acc_t *acc = jn ? hq_malloc(sizeof *acc) : NULL;
    if (acc)
        acc->n = 0;
    for (uint32_t i = 0; i < cmd->slots.n; i++) {
        const hq_sched_slot_t *s = &cmd->slots.slots[i];
        i += s_mn_collect(b, &cmd->slots, i); /* secondary nodes: held by the scheduler */
        hq_job_t *j = hq_broker_job(b, s->job_id);
        hq_task_t *t = j ? hq_job_task(j, s->task_id) : NULL;
        hq_worker_t *w = hq_broker_worker(b, s->worker_id);
        if (!t || t->state != HQ_TS_WAITING || !w || w->state != HQ_WS_RUNNING) {
            s_release_add(&rel, s->worker_id, s->job_id, s->task_id, s->rq_id, s->variant);
            continue;
        }
        hq_events_task_state(b->events, j, t, HQ_TS_ASSIGNED, w->id, NULL, 0);
        t->worker = w->id;
        t->variant = (uint8_t)s->variant;
        t->flags = (uint8_t)((t->flags & ~HQ_TF_SENT) | HQ_TF_HOLDS);
        w->n_assigned++;
        if (!d) {
            s_pend(w, j->id, t->id);
            continue;
        }
        if (d->n == S_DISPATCH_CHUNK) {
            s_started_flush(b, acc, d);
            s_dispatch_done(d, 0, 0); /* drops the chunk's own hold */
            hq_journal_kick(jn);      /* its sync starts while later chunks are made */
            d = s_dispatch_new(b, cmd->slots.n - i);
        }
        if (acc->n && (acc->job != j->id || acc->worker != w->id || acc->epoch != w->epoch))
            s_started_flush(b, acc, d);
        if (acc->n == 0) {
            acc->job = j->id;
            acc->worker = w->id;
            acc->epoch = w->epoch;
        }
        acc->insts[acc->n++] = (hq_jinst_t){.task = t->id, .instance = t->instance};
        d->slots[d->n] = *s;
        d->instances[d->n] = t->instance;
        d->n++;
    }
    s_release_post(b, &rel);
    if (d) {
        s_started_flush(b, acc, d);
        s_dispatch_done(d, 0, 0);
    }
    free(acc);
    hq_core_dirty(b);
}

/* Builds and sends one ASSIGN with up to HQ_ASSIGN_CHUNK pending tasks of w.
 * Returns how many pending entries were consumed, or -1 (EAGAIN) / -2 (gone). */
static int s_send_assign(hq_broker_t *b, hq_worker_t *w, uint32_t from)
{
    uint32_t n = w->n_pending - from;
    if (n > HQ_ASSIGN_CHUNK)
        n = HQ_ASSIGN_CHUNK;
    hq_assign_task_t *tasks = hq_calloc(n, sizeof *tasks);
    hq_task_t **sent = hq_calloc(n, sizeof *sent);
    hq_assign_def_t *defs = NULL;
    uint32_t *def_job = NULL, *def_idx = NULL;
    uint32_t n_defs = 0, n_tasks = 0;
    for (uint32_t k = 0; k < n; k++) {
        hq_tref_t ref = w->pending[from + k];
        hq_job_t *j = hq_broker_job(b, ref.job_id);
        hq_task_t *t = j ? hq_job_task(j, ref.task_id) : NULL;
        if (!t || t->state != HQ_TS_ASSIGNED || t->worker != w->id)
            continue; /* canceled before it was sent; its CANCEL is skipped too */
        uint32_t d = n_defs;
        for (uint32_t q = n_defs; q > 0; q--)
            if (def_job[q - 1] == j->id && def_idx[q - 1] == t->def) {
                d = q - 1;
                break;
            }
        if (d == n_defs) {
            defs = hq_realloc(defs, (n_defs + 1) * sizeof *defs);
            def_job = hq_realloc(def_job, (n_defs + 1) * sizeof *def_job);
            def_idx = hq_realloc(def_idx, (n_defs + 1) * sizeof *def_idx);
            const hq_jdef_t *jd = &j->defs[t->def];
            const hq_jsubmit_t *sub = &j->submits[jd->submit];
            hq_assign_def_t *ad = &defs[n_defs];
            memset(ad, 0, sizeof *ad);
            ad->job_id = j->id;
            ad->def_id = t->def;
            ad->submit_dir = sub->submit_dir;
            ad->stream_dir = sub->stream_dir;
            ad->def = *jd->def;
            ad->def.cwd = jd->cwd;
            if (ad->def.out.kind == HQ_STDIO_FILE)
                ad->def.out.path = jd->out;
            if (ad->def.err.kind == HQ_STDIO_FILE)
                ad->def.err.path = jd->err;
            def_job[n_defs] = j->id;
            def_idx[n_defs] = t->def;
            n_defs++;
        }
        sent[n_tasks] = t;
        hq_assign_task_t *at = &tasks[n_tasks++];
        at->job_id = j->id;
        at->task_id = t->id;
        at->instance = t->instance;
        at->def_idx = d;
        at->variant = t->variant;
        hq_mnodes_t *mn = NULL;
        if (b->mn_nodes) {
            char *key = s_mn_key(j->id, t->id);
            mn = zhashx_lookup(b->mn_nodes, key);
            free(key);
        }
        if (mn) {
            at->n_nodes = mn->n;
            at->nodes = mn->hosts;
        }
        const hq_jsubmit_t *sub = &j->submits[j->defs[t->def].submit];
        if (t->entry != UINT32_MAX && t->entry < sub->msg->u.submit.n_entries) {
            at->has_entry = true;
            at->entry = sub->msg->u.submit.entries[t->entry];
        }
    }
    int rc = (int)n;
    if (n_tasks > 0) {
        hq_msg_t m = {0};
        m.hdr.type = HQ_MSG_ASSIGN;
        m.u.assign.n_defs = n_defs;
        m.u.assign.defs = defs;
        m.u.assign.n_tasks = n_tasks;
        m.u.assign.tasks = tasks;
        int s = hq_worker_send(b, w, &m);
        if (s == -1 || s == -2)
            rc = s;
        else if (s == -3)
            hq_error("Could not send %u tasks to worker %u", n_tasks, w->id);
        /* In the outbox (delivered now or retransmitted): the worker may start them, so
         * from here their loss with the worker counts as a crash (tasks.c). */
        for (uint32_t k = 0; k < n_tasks && s == 0; k++)
            sent[k]->flags |= HQ_TF_SENT;
        for (uint32_t k = 0; k < n_tasks && rc >= 0; k++) {
            if (tasks[k].n_nodes == 0)
                continue;
            char *key = s_mn_key(tasks[k].job_id, tasks[k].task_id);
            zhashx_delete(b->mn_nodes, key); /* sent: the hostnames are no longer needed */
            free(key);
        }
    }
    free(tasks);
    free(sent);
    free(defs);
    free(def_job);
    free(def_idx);
    return rc;
}

static void s_flush_cancels(hq_broker_t *b)
{
    if (b->n_cancels == 0)
        return;
    for (uint32_t wid = 1; wid <= b->max_worker_id; wid++) {
        hq_worker_t *w = b->workers[wid];
        if (!w || w->state != HQ_WS_RUNNING)
            continue;
        uint32_t n = 0;
        for (uint32_t i = 0; i < b->n_cancels; i++)
            n += b->cancel_workers[i] == wid;
        if (n == 0)
            continue;
        hq_task_ref_t *refs = hq_malloc(n * sizeof *refs);
        uint32_t k = 0;
        for (uint32_t i = 0; i < b->n_cancels; i++)
            if (b->cancel_workers[i] == wid)
                refs[k++] = (hq_task_ref_t){.job_id = b->cancels[i].job_id,
                                            .task_id = b->cancels[i].task_id,
                                            .instance = b->cancel_instances[i]};
        hq_msg_t m = {0};
        m.hdr.type = HQ_MSG_CANCEL;
        m.u.cancel.n_tasks = n;
        m.u.cancel.tasks = refs;
        hq_worker_send(b, w, &m); /* kept until acknowledged, even when unreachable */
        free(refs);
    }
    b->n_cancels = 0;
}

void hq_workers_flush(hq_broker_t *b)
{
    for (uint32_t wid = 1; wid <= b->max_worker_id; wid++) {
        hq_worker_t *w = b->workers[wid];
        if (!w || w->state != HQ_WS_RUNNING || w->n_pending == 0)
            continue;
        uint32_t from = 0;
        int rc = 0;
        while (from < w->n_pending) {
            rc = s_send_assign(b, w, from);
            if (rc < 0)
                break;
            from += (uint32_t)rc;
        }
        if (rc == -2) {
            hq_worker_lost(b, w, HQ_WS_CONNECTION_LOST);
            continue;
        }
        /* EAGAIN: keep the unsent rest for the next flush. */
        memmove(w->pending, w->pending + from, (w->n_pending - from) * sizeof(hq_tref_t));
        w->n_pending -= from;
        if (w->n_pending > 0)
            b->dirty = true;
    }
    /* Cancels after assigns, so a worker never sees a CANCEL before the ASSIGN. */
    s_flush_cancels(b);
}

/* ---- heartbeats ---- */

static int s_on_tick_reset(hq_broker_t *b, uint64_t hb_ns)
{
    uint64_t want = hb_ns / 4;
    if (want < 5 * HQ_NS_PER_MS)
        want = 5 * HQ_NS_PER_MS;
    if (want >= b->hb_tick_ns || !b->loop)
        return 0;
    b->hb_tick_ns = want;
    return hq_core_retime_tick(b, want);
}

void hq_workers_tick(hq_broker_t *b)
{
    uint64_t now = hq_mono_ns();
    for (uint32_t wid = 1; wid <= b->max_worker_id; wid++) {
        hq_worker_t *w = b->workers[wid];
        if (!w || w->state != HQ_WS_RUNNING)
            continue;
        if (now - w->last_recv > 2 * w->hb_ns) {
            hq_worker_lost(b, w, HQ_WS_HEARTBEAT_LOST);
            continue;
        }
        if (now - w->last_sent_hb >= w->hb_ns) {
            w->last_sent_hb = now;
            hq_msg_t m = {0};
            m.hdr.type = HQ_MSG_HEARTBEAT;
            hq_worker_send(b, w, &m); /* unreachable: lost after a grace */
        }
    }
}

void hq_workers_stop_all(hq_broker_t *b, uint32_t reason)
{
    for (uint32_t wid = 1; wid <= b->max_worker_id; wid++) {
        hq_worker_t *w = b->workers[wid];
        if (w && w->state == HQ_WS_RUNNING)
            s_send_simple(b, w, HQ_MSG_STOP, reason);
    }
}

void hq_workers_destroy_all(hq_broker_t *b)
{
    for (uint32_t wid = 1; wid <= b->max_worker_id; wid++) {
        hq_worker_t *w = b->workers[wid];
        if (!w)
            continue;
        free(w->rid_key);
        free(w->pending);
        hq_outbox_clear(&w->outbox);
        hq_msg_destroy(&w->reg);
        free(w);
    }
    free(b->workers);
    b->workers = NULL;
    zhashx_destroy(&b->mn_nodes);
}

/* ---- client requests about workers ---- */

/* Selected worker ids; explicit unknown ids go to missing. */
static uint32_t *s_select_workers(hq_broker_t *b, const hq_selector_t *sel, bool live_only,
                                  uint32_t *n, uint32_t **missing, uint32_t *n_missing)
{
    /* Ids of workers from before a broker restart are gaps (NULL) in b->workers. */
    uint32_t *out = hq_malloc(((size_t)b->max_worker_id + 1) * sizeof(uint32_t));
    uint32_t cnt = 0, nm = 0, cap_m = 0;
    uint32_t *miss = NULL;
    if (sel->kind == HQ_SEL_LAST) {
        for (uint32_t id = b->max_worker_id; id > 0; id--)
            if (b->workers[id] && (!live_only || b->workers[id]->state == HQ_WS_RUNNING)) {
                out[cnt++] = id;
                break;
            }
    } else if (sel->kind == HQ_SEL_ALL) {
        for (uint32_t id = 1; id <= b->max_worker_id; id++)
            if (b->workers[id] && (!live_only || b->workers[id]->state == HQ_WS_RUNNING))
                out[cnt++] = id;
    } else if (hq_rangelist_count(&sel->ids) <= 100000) {
        for (uint32_t r = 0; r < sel->ids.n; r++) {
            const hq_range_t *rg = &sel->ids.ranges[r];
            uint32_t step = rg->step ? rg->step : 1;
            for (uint64_t id = rg->start; id <= rg->end; id += step) {
                if (id >= 1 && id <= b->max_worker_id && b->workers[id]) {
                    out[cnt++] = (uint32_t)id;
                } else {
                    if (nm == cap_m) {
                        cap_m = cap_m ? cap_m * 2 : 8;
                        miss = hq_realloc(miss, cap_m * sizeof(uint32_t));
                    }
                    miss[nm++] = (uint32_t)id;
                }
                if (cnt > b->max_worker_id)
                    break;
            }
        }
    } else {
        for (uint32_t id = 1; id <= b->max_worker_id; id++)
            if (b->workers[id] && hq_rangelist_contains(&sel->ids, id))
                out[cnt++] = id;
    }
    *n = cnt;
    *missing = miss;
    *n_missing = nm;
    return out;
}

int hq_h_worker_stop(hq_broker_t *b, hq_creq_t *req)
{
    uint32_t n, nm, *miss;
    uint32_t *ids = s_select_workers(b, &req->msg->u.query.sel, true, &n, &miss, &nm);
    char **lines = hq_calloc((size_t)n + nm + 1, sizeof(char *));
    uint32_t nl = 0;
    for (uint32_t i = 0; i < n; i++) {
        hq_worker_t *w = b->workers[ids[i]];
        if (w->state != HQ_WS_RUNNING) {
            lines[nl++] =
                hq_asprintf("ERROR\tStopping worker %u failed; worker is already stopped", w->id);
            continue;
        }
        s_send_simple(b, w, HQ_MSG_STOP, HQ_BYE_STOPPED);
        hq_worker_lost(b, w, HQ_WS_STOPPED);
        lines[nl++] = hq_asprintf("INFO\tWorker %u stopped", w->id);
    }
    for (uint32_t i = 0; i < nm; i++)
        lines[nl++] = hq_asprintf("ERROR\tStopping worker %u failed; worker not found", miss[i]);
    hq_client_reply_log(b, req, 0, lines, nl);
    for (uint32_t i = 0; i < nl; i++)
        free(lines[i]);
    free(lines);
    free(ids);
    free(miss);
    return 0;
}

static json_t *s_worker_json(hq_broker_t *b, const hq_worker_t *w)
{
    json_t *o = hq_worker_json(w->id, w->conf);
    bool live = w->state == HQ_WS_RUNNING;
    if (live) {
        json_object_set_new(o, "runtime_info",
                            json_pack("{s:{s:i,s:i,s:b}}", "SingleNodeTasks", "assigned_tasks",
                                      (json_int_t)w->n_assigned, "running_tasks",
                                      (json_int_t)w->n_running, "is_reserved", 0));
        char *text = w->n_running > 0 ? hq_asprintf("assigned tasks: %u; running tasks: %u",
                                                    w->n_assigned, w->n_running)
                                      : hq_asprintf("assigned tasks: %u", w->n_assigned);
        json_object_set_new(o, "_runtime_text", json_string(text));
        free(text);
    } else {
        char *at = hq_time_rfc3339(w->ended_ns, 9);
        json_object_set_new(o, "ended", json_pack("{s:s}", "at", at));
        free(at);
        json_object_set_new(o, "_runtime_text", json_string(""));
    }
    if (w->has_last) {
        char *t = hq_time_rfc3339(w->last_time, 9);
        json_object_set_new(o, "last_task_started",
                            json_pack("{s:{s:i,s:i},s:s}", "task_id", "job_id",
                                      (json_int_t)w->last_job, "job_task_id",
                                      (json_int_t)w->last_task, "time", t));
        free(t);
    }
    json_object_set_new(o, "_state", json_string(hq_wstate_word(w->state)));
    (void)b;
    return o;
}

int hq_h_worker_list(hq_broker_t *b, hq_creq_t *req)
{
    bool all = req->msg->u.query.flag;
    json_t *arr = json_array();
    for (uint32_t id = 1; id <= b->max_worker_id; id++) {
        hq_worker_t *w = b->workers[id];
        if (w && (all || w->state == HQ_WS_RUNNING))
            json_array_append_new(arr, s_worker_json(b, w));
    }
    hq_client_reply_json(b, req, arr, json_pack("{s:[]}", "not_found"));
    return 0;
}

int hq_h_worker_info(hq_broker_t *b, hq_creq_t *req)
{
    uint32_t n, nm, *miss;
    uint32_t *ids = s_select_workers(b, &req->msg->u.query.sel, false, &n, &miss, &nm);
    json_t *arr = json_array();
    for (uint32_t i = 0; i < n; i++)
        json_array_append_new(arr, s_worker_json(b, b->workers[ids[i]]));
    json_t *nf = json_array();
    for (uint32_t i = 0; i < nm; i++)
        json_array_append_new(nf, json_integer(miss[i]));
    hq_client_reply_json(b, req, arr, json_pack("{s:o}", "not_found", nf));
    free(ids);
    free(miss);
    return 0;
}
