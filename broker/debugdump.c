/* The broker's internal state as JSON (see debugdump.h): server, jobs with their tasks
 * grouped by state (id ranges), workers with their link and load, what waits for the
 * scheduler and the worker sockets, the scheduler's own queues and the journal. */
#include "debugdump.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"
#include "jobs.h"
#include "journal/glue.h"
#include "journal/journal.h"
#include "registry.h"
#include "schedwait.h"

static const char *s_tstate_name(uint8_t st)
{
    static const char *names[HQ_TS_COUNT] = {"waiting", "assigned", "running", "finished",
                                             "failed",  "canceled", "aborted"};
    return st < HQ_TS_COUNT ? names[st] : "unknown";
}

static json_t *s_time(uint64_t ns)
{
    if (!ns)
        return json_null();
    char *t = hq_time_rfc3339(ns, 6);
    json_t *v = json_string(t);
    free(t);
    return v;
}

/* Appends "a" or "a-b" to the range text of one state. */
static void s_range_put(char **text, size_t *len, size_t *cap, uint32_t first, uint32_t last)
{
    char one[32];
    int n = first == last ? snprintf(one, sizeof one, "%s%u", *len ? "," : "", first)
                          : snprintf(one, sizeof one, "%s%u-%u", *len ? "," : "", first, last);
    if (*len + (size_t)n + 1 > *cap) {
        *cap = (*cap + (size_t)n + 1) * 2;
        *text = hq_realloc(*text, *cap);
    }
    memcpy(*text + *len, one, (size_t)n + 1);
    *len += (size_t)n;
}

/* {"waiting": "0-4,9", ...}: the task ids of each state, as id ranges. */
static json_t *s_tasks_by_state(const hq_job_t *j)
{
    json_t *o = json_object();
    for (uint8_t st = 0; st < HQ_TS_COUNT; st++) {
        if (j->counts[st] == 0)
            continue;
        char *text = NULL;
        size_t len = 0, cap = 0;
        bool open = false;
        uint32_t first = 0, last = 0;
        for (uint32_t i = 0; i < j->n_tasks; i++) {
            const hq_task_t *t = &j->tasks[i];
            if (t->state != st)
                continue;
            if (open && t->id == last + 1) {
                last = t->id;
                continue;
            }
            if (open)
                s_range_put(&text, &len, &cap, first, last);
            first = last = t->id;
            open = true;
        }
        if (open)
            s_range_put(&text, &len, &cap, first, last);
        json_object_set_new(o, s_tstate_name(st), json_string(text ? text : ""));
        free(text);
    }
    return o;
}

/* Tasks in flight (assigned or running): where, which instance and variant, crashes. */
static json_t *s_active_tasks(const hq_job_t *j)
{
    json_t *a = json_array();
    for (uint32_t i = 0; i < j->n_tasks; i++) {
        const hq_task_t *t = &j->tasks[i];
        if (t->state != HQ_TS_ASSIGNED && t->state != HQ_TS_RUNNING)
            continue;
        json_array_append_new(
            a, json_pack("{s:I,s:s,s:I,s:I,s:I,s:I,s:I,s:o}", "id", (json_int_t)t->id, "state",
                         s_tstate_name(t->state), "worker", (json_int_t)t->worker, "instance",
                         (json_int_t)t->instance, "variant", (json_int_t)t->variant, "crashes",
                         (json_int_t)t->crashes, "flags", (json_int_t)t->flags, "started",
                         s_time(t->start_ns)));
    }
    return a;
}

static json_t *s_jobs(const hq_broker_t *b)
{
    json_t *arr = json_array();
    for (uint32_t id = 1; id <= b->jobs.max_id; id++) {
        const hq_job_t *j = hq_jobtab_get(&b->jobs, id);
        if (!j)
            continue;
        json_t *counts = json_object();
        for (uint8_t st = 0; st < HQ_TS_COUNT; st++)
            json_object_set_new(counts, s_tstate_name(st), json_integer(j->counts[st]));
        json_array_append_new(
            arr, json_pack(
                     "{s:I,s:s,s:s,s:b,s:o,s:o,s:o,s:o,s:I,s:I,s:I,s:o,s:o,s:o,s:b}", "id",
                     (json_int_t)j->id, "name", j->name ? j->name : "", "state",
                     hq_job_state_word(j), "open", j->open, "max_fails",
                     j->has_max_fails ? json_integer(j->max_fails) : json_null(), "cancel_reason",
                     j->cancel_reason ? json_string(j->cancel_reason) : json_null(), "submitted",
                     s_time(j->submit_ns), "completed", s_time(j->finish_ns), "n_tasks",
                     (json_int_t)j->n_tasks, "n_submits", (json_int_t)j->n_submits, "n_defs",
                     (json_int_t)j->n_defs, "counts", counts, "tasks_by_state", s_tasks_by_state(j),
                     "active_tasks", s_active_tasks(j), "has_deps", j->deps != NULL));
    }
    return arr;
}

static json_t *s_workers(const hq_broker_t *b)
{
    json_t *arr = json_array();
    uint64_t now = hq_mono_ns();
    for (uint32_t id = 1; id <= b->reg.max_id && id < b->reg.cap; id++) {
        const hq_worker_t *w = b->reg.tab[id];
        if (!w)
            continue;
        const hq_worker_conf_t *c = w->conf;
        json_array_append_new(
            arr, json_pack("{s:I,s:s,s:s,s:s,s:I,s:o,s:o,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}",
                           "id", (json_int_t)w->id, "hostname", c && c->hostname ? c->hostname : "",
                           "group", c && c->group ? c->group : "default", "state",
                           hq_wstate_word(w->state), "epoch", (json_int_t)w->epoch, "connected",
                           s_time(w->connected_ns), "ended", s_time(w->ended_ns), "heartbeat_ms",
                           (json_int_t)(w->hb_ns / HQ_NS_PER_MS), "last_message_ms_ago",
                           (json_int_t)(w->last_recv && now > w->last_recv
                                            ? (now - w->last_recv) / HQ_NS_PER_MS
                                            : 0),
                           "n_assigned", (json_int_t)w->n_assigned, "n_running",
                           (json_int_t)w->n_running, "n_pending_assign", (json_int_t)w->n_pending,
                           "seq_out", (json_int_t)w->seq_out, "ack_in", (json_int_t)w->ack_in,
                           "retransmitted", (json_int_t)w->n_retx, "duplicates_dropped",
                           (json_int_t)w->n_dups, "unreachable_since_ms_ago",
                           w->unreach_since && now > w->unreach_since
                               ? json_integer((json_int_t)((now - w->unreach_since) / HQ_NS_PER_MS))
                               : json_null()));
    }
    return arr;
}

static json_t *s_journal(const hq_broker_t *b)
{
    hq_journal_t *j = hq_jr_journal(b);
    if (!j)
        return json_null();
    hq_journal_stats_t st;
    hq_journal_stats(j, &st);
    const char *path = hq_jr_path(b);
    return json_pack("{s:s,s:b,s:I,s:I,s:I,s:I,s:I,s:I}", "path", path ? path : "", "available",
                     hq_journal_available(j), "last_lsn", (json_int_t)st.last_lsn, "appended",
                     (json_int_t)st.appended, "durable", (json_int_t)st.durable, "failed",
                     (json_int_t)st.failed, "segments_created", (json_int_t)st.segments,
                     "sync_ns_max", (json_int_t)st.sync_ns_max);
}

/* The whole document; sched_text is the scheduler's JSON (NULL: none). */
static json_t *s_document(const hq_broker_t *b, const char *sched_text)
{
    json_t *sched = NULL;
    if (sched_text) {
        json_error_t e;
        sched = json_loads(sched_text, 0, &e);
    }
    json_t *core_queue = json_pack("{s:I,s:I}", "ready_to_announce", (json_int_t)b->ready.n,
                                   "cancels_to_send", (json_int_t)b->cancels.n);
    return json_pack("{s:{s:s,s:s,s:o,s:o,s:I,s:I,s:I},s:o,s:o,s:{s:o,s:o},s:o}", "server",
                     "version", HQ_VERSION, "server_uid", b->conf.access.server_uid, "started",
                     s_time(b->conf.start_ns), "dumped", s_time(hq_wall_ns()), "n_jobs",
                     (json_int_t)b->jobs.n_live, "max_job_id", (json_int_t)b->jobs.max_id,
                     "max_worker_id", (json_int_t)b->reg.max_id, "jobs", s_jobs(b), "workers",
                     s_workers(b), "scheduler", "core", core_queue, "placement",
                     sched ? sched : json_null(), "journal", s_journal(b));
}

static void s_answer(hq_broker_t *b, const uint8_t *rid, size_t rid_len, uint64_t request_id,
                     void *data, const char *sched_text)
{
    (void)data;
    hq_client_reply_held_json(&b->replies, rid, rid_len, request_id, s_document(b, sched_text));
}

int hq_h_debug_dump(hq_broker_t *b, hq_creq_t *req)
{
    hq_schedwait_hold(b, req, s_answer, NULL, NULL);
    return 0;
}
