/* The scheduler actor: a zactor thread that owns the placement state (place.h).
 * Each loop turn it drains every pending command from the core, runs placement
 * once, and sends at most one HQ_SCHED_ASSIGNED batch back, then at most one
 * HQ_SCHED_RETRACT batch (work stealing, steal.h; also checked every
 * STEAL_TICK_MS while a time-limited worker holds prefetched tasks). Commands
 * travel as pointers ("p" frames); the receiver owns them. */
#include "actor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"
#include "mnres.h"
#include "place.h"
#include "steal.h"

/* Commands handled per turn before placement runs (keeps latency bounded when
 * the core floods the pipe). */
#define DRAIN_MAX 10000
/* How often the time limits of prefetched tasks are checked when nothing happens. */
#define STEAL_TICK_MS 200

/* Sent by hq_sched_destroy: the actor answers with DRAINED and then sends no more
 * output, so every pending ASSIGNED can be freed before the actor stops. */
#define MSG_DRAIN "$DRAIN"
#define MSG_DRAINED "$DRAIN-DONE"
/* Control words travel on the same pipe as pointers: never pointer-sized. */
/* Placement stops (commands are still applied) until RESUME: the core cannot record
 * dispatches (its journal is unavailable), so assigning would only bounce. */
#define MSG_PAUSE "$PAUSE"
#define MSG_RESUME "$RESUME"
_Static_assert(sizeof MSG_DRAIN - 1 != sizeof(void *), "control word looks like a pointer");
_Static_assert(sizeof MSG_PAUSE - 1 != sizeof(void *), "control word looks like a pointer");
_Static_assert(sizeof MSG_RESUME - 1 != sizeof(void *), "control word looks like a pointer");
_Static_assert(sizeof MSG_DRAINED - 1 != sizeof(void *), "control word looks like a pointer");

struct hq_sched {
    zactor_t *actor; /* the thread; its pipe carries commands both ways */
};

/* ---- commands ---- */

hq_sched_cmd_t *hq_sched_cmd_new(enum hq_sched_cmd_type type)
{
    hq_sched_cmd_t *c = hq_calloc(1, sizeof *c);
    c->type = type;
    return c;
}

void hq_sched_cmd_destroy(hq_sched_cmd_t **p)
{
    if (!p || !*p)
        return;
    hq_sched_cmd_t *c = *p;
    for (uint32_t v = 0; v < c->rq.n_variants && c->rq.variants; v++)
        hq_rvariant_clear(&c->rq.variants[v]);
    free(c->rq.variants);
    free(c->ready.ids.ranges);
    hq_wres_list_clear(&c->worker.resources);
    free(c->worker.group);
    free(c->slots.slots);
    free(c->text);
    free(c);
    *p = NULL;
}

/* ---- the actor thread ---- */

/* Applies one command to the placement state; takes ownership of cmd. */
static void s_apply(hq_place_t *pl, hq_sched_cmd_t *cmd)
{
    switch (cmd->type) {
    case HQ_SCHED_RQ_ADD:
        hq_place_rq_add(pl, &cmd->rq);
        break;
    case HQ_SCHED_READY:
        hq_place_ready(pl, &cmd->ready);
        break;
    case HQ_SCHED_CANCEL_JOB:
        hq_place_cancel_job(pl, cmd->job_id);
        break;
    case HQ_SCHED_CANCEL_TASKS:
        hq_place_cancel_tasks(pl, &cmd->ready);
        break;
    case HQ_SCHED_WORKER_UP:
        hq_place_worker_up(pl, &cmd->worker);
        break;
    case HQ_SCHED_WORKER_DOWN:
        hq_place_worker_down(pl, cmd->worker_id);
        break;
    case HQ_SCHED_CREDIT:
        hq_place_credit(pl, cmd->worker_id, cmd->credit);
        break;
    case HQ_SCHED_RELEASE:
        hq_place_release(pl, cmd->slots.slots, cmd->slots.n);
        break;
    case HQ_SCHED_JOB_SHORT:
        hq_steal_job_short(pl, cmd->job_id, cmd->credit != 0);
        break;
    case HQ_SCHED_DUMP: /* answered by the actor loop */
    case HQ_SCHED_ASSIGNED:
    case HQ_SCHED_DUMPED:
    case HQ_SCHED_RETRACT:
    case HQ_SCHED_MN_RESERVED:
        break; /* not a request; ignore */
    }
    hq_sched_cmd_destroy(&cmd);
}

/* The pointer carried by a "p" message, or NULL if msg is something else. */
static void *s_msg_pointer(zmsg_t *msg)
{
    zframe_t *f = zmsg_first(msg);
    if (zmsg_size(msg) != 1 || !f || zframe_size(f) != sizeof(void *))
        return NULL;
    void *ptr;
    memcpy(&ptr, zframe_data(f), sizeof ptr);
    return ptr;
}

static bool s_msg_is(zmsg_t *msg, const char *word)
{
    zframe_t *f = zmsg_first(msg);
    return f && zframe_streq(f, word);
}

/* Sends the prefetched tasks to take back now, if any. */
static void s_steal(zsock_t *pipe, hq_place_t *pl)
{
    hq_sched_slots_t slots = {0};
    if (hq_steal_run(pl, hq_mono_ns(), &slots) == 0)
        return;
    hq_sched_cmd_t *out = hq_sched_cmd_new(HQ_SCHED_RETRACT);
    out->slots = slots;
    if (zsock_send(pipe, "p", out) != 0)
        hq_sched_cmd_destroy(&out);
}

/* The workers reserved for a multi-node task as last sent to the core. */
typedef struct s_reserved {
    uint32_t *ids; /* sorted, owned */
    uint32_t n;
} s_reserved_t;

/* Sends the reserved workers after a round when the set changed. */
static void s_mn_reserved(zsock_t *pipe, hq_place_t *pl, s_reserved_t *last)
{
    uint32_t *ids, n;
    if (!hq_mnres_after_round(pl, &ids, &n))
        return;
    if (n == last->n && (n == 0 || memcmp(ids, last->ids, n * sizeof *ids) == 0)) {
        free(ids);
        return;
    }
    hq_sched_cmd_t *out = hq_sched_cmd_new(HQ_SCHED_MN_RESERVED);
    out->slots.n = n;
    out->slots.slots = hq_calloc(n ? n : 1, sizeof *out->slots.slots);
    for (uint32_t i = 0; i < n; i++)
        out->slots.slots[i].worker_id = ids[i];
    free(last->ids);
    last->ids = ids;
    last->n = n;
    if (zsock_send(pipe, "p", out) != 0)
        hq_sched_cmd_destroy(&out);
}

static void s_actor(zsock_t *pipe, void *args)
{
    (void)args;
    hq_place_t *pl = hq_place_new();
    hq_steal_gate(pl, true); /* a worker holds only what it can start, but short tasks */
    bool output = true;      /* false after DRAIN: nothing more goes to the core */
    bool paused = false;     /* between PAUSE and RESUME: no placement */
    s_reserved_t reserved = {0};
    zsock_signal(pipe, 0);
    for (;;) {
        bool tick = output && !paused && hq_steal_needs_tick(pl);
        zsock_set_rcvtimeo(pipe, tick ? STEAL_TICK_MS : -1);
        zmsg_t *msg = zmsg_recv(pipe); /* blocks until work, $TERM or the tick */
        if (!msg) {
            if (errno == EAGAIN && tick) {
                s_steal(pipe, pl);
                continue;
            }
            if (errno == EINTR)
                continue;
            break; /* context terminated */
        }
        bool term = false, dirty = false, dump = false;
        for (int n = 1; msg; n++) {
            hq_sched_cmd_t *cmd = s_msg_pointer(msg);
            if (cmd && cmd->type == HQ_SCHED_DUMP) {
                dump = true; /* one answer for every dump of the batch */
                hq_sched_cmd_destroy(&cmd);
            } else if (cmd) {
                s_apply(pl, cmd);
                dirty = true;
            } else if (s_msg_is(msg, "$TERM")) {
                term = true;
            } else if (s_msg_is(msg, MSG_PAUSE)) {
                paused = true;
            } else if (s_msg_is(msg, MSG_RESUME)) {
                paused = false;
                dirty = true; /* what arrived meanwhile is placed now */
            } else if (s_msg_is(msg, MSG_DRAIN)) {
                output = false;
                zstr_send(pipe, MSG_DRAINED);
            }
            zmsg_destroy(&msg);
            if (term)
                break;
            if (n < DRAIN_MAX && (zsock_events(pipe) & ZMQ_POLLIN))
                msg = zmsg_recv(pipe);
        }
        if (term)
            break;
        if (dirty && output && !paused) {
            hq_sched_cmd_t *out = hq_sched_cmd_new(HQ_SCHED_ASSIGNED);
            hq_place_run(pl, hq_mono_ns(), &out->slots);
            if (out->slots.n == 0 || zsock_send(pipe, "p", out) != 0)
                hq_sched_cmd_destroy(&out);
            s_steal(pipe, pl);
            s_mn_reserved(pipe, pl, &reserved);
        }
        if (dump && output) {
            hq_sched_cmd_t *out = hq_sched_cmd_new(HQ_SCHED_DUMPED);
            out->text = hq_place_dump(pl);
            if (zsock_send(pipe, "p", out) != 0)
                hq_sched_cmd_destroy(&out);
        }
    }
    free(reserved.ids);
    hq_place_destroy(&pl);
}

/* ---- the core's side ---- */

hq_sched_t *hq_sched_new(void)
{
    hq_sched_t *s = hq_calloc(1, sizeof *s);
    s->actor = zactor_new(s_actor, NULL);
    if (!s->actor) {
        free(s);
        return NULL;
    }
    return s;
}

void hq_sched_pause(hq_sched_t *s, bool pause)
{
    if (s)
        zstr_send(s->actor, pause ? MSG_PAUSE : MSG_RESUME);
}

void hq_sched_destroy(hq_sched_t **p)
{
    if (!p || !*p)
        return;
    hq_sched_t *s = *p;
    /* Free every ASSIGNED still in the pipe: the actor answers DRAIN after all
     * earlier output and sends nothing more. */
    if (zstr_send(s->actor, MSG_DRAIN) == 0) {
        for (;;) {
            zmsg_t *msg = zmsg_recv(s->actor);
            if (!msg)
                break;
            bool done = s_msg_is(msg, MSG_DRAINED);
            hq_sched_cmd_t *cmd = s_msg_pointer(msg);
            hq_sched_cmd_destroy(&cmd);
            zmsg_destroy(&msg);
            if (done)
                break;
        }
    }
    zactor_destroy(&s->actor);
    free(s);
    *p = NULL;
}

int hq_sched_send(hq_sched_t *s, hq_sched_cmd_t **cmd)
{
    if (!s || !cmd || !*cmd)
        return -1;
    if (zsock_send(s->actor, "p", *cmd) != 0) {
        hq_sched_cmd_destroy(cmd);
        return -1;
    }
    *cmd = NULL;
    return 0;
}

zsock_t *hq_sched_sock(hq_sched_t *s)
{
    return s ? zactor_sock(s->actor) : NULL;
}

hq_sched_cmd_t *hq_sched_recv(hq_sched_t *s)
{
    if (!s)
        return NULL;
    zmsg_t *msg = zmsg_recv(s->actor);
    if (!msg)
        return NULL;
    hq_sched_cmd_t *cmd = s_msg_pointer(msg);
    zmsg_destroy(&msg);
    return cmd;
}
