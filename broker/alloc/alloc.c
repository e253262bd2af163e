/* The automatic allocator's entry (alloc.h), the top of broker/alloc/: called by the
 * broker, it starts and stops the allocator, turns the tick and the broker's events
 * into calls of life.c, and answers the `hq alloc` requests. The life of each
 * allocation is in life.c, the journal records in record.c, the state in astate.c. */
#define HQ_LOG_MODULE "hq::server::autoalloc"
#include "alloc.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "astate.h"
#include "hq_duration.h"
#include "hq_log.h"
#include "hq_util.h"
#include "life.h"
#include "record.h"
#include "registry.h"
#include "script.h"

static uint64_t s_env_dur(const char *name, uint64_t def)
{
    const char *v = getenv(name);
    uint64_t ns;
    hq_err_t err;
    if (!v || !*v)
        return def;
    if (hq_duration_parse(v, &ns, &err) != 0 || ns == 0) {
        hq_warn("Ignoring %s=%s: %s", name, v, err.text);
        return def;
    }
    return ns;
}

static void s_on_event(const hq_event_t *ev, void *arg);

/* A manager command still running when the allocator ends: frees its held request. */
static void s_drop_job(const hq_pjob_t *job)
{
    if (job->held)
        hq_alife_trial_free(job->held);
}

hq_alloc_t *hq_alloc_new(hq_broker_t *b)
{
    hq_alloc_t *a = hq_calloc(1, sizeof *a);
    a->b = b;
    a->procs = hq_procs_new();
    a->poll_ns = s_env_dur("HQ_ALLOC_POLL_INTERVAL", 5 * HQ_NS_PER_SEC);
    a->backoff_ns = s_env_dur("HQ_ALLOC_BACKOFF", HQ_NS_PER_SEC);
    hq_events_hook(b->events, s_on_event, a);
    return a;
}

void hq_alloc_destroy(hq_alloc_t **ap)
{
    hq_alloc_t *a = ap ? *ap : NULL;
    if (!a)
        return;
    hq_events_unhook(a->b->events, s_on_event, a);
    hq_procs_destroy(&a->procs, s_drop_job); /* held trial requests die unanswered */
    for (uint32_t i = 0; i < a->n_queues; i++)
        hq_aqueue_destroy(&a->queues[i]);
    free(a->queues);
    free(a->root);
    free(a);
    *ap = NULL;
}

static void s_on_event(const hq_event_t *ev, void *arg)
{
    hq_alloc_t *a = arg;
    if (ev->type != HQ_EV_WORKER_CONNECTED && ev->type != HQ_EV_WORKER_LOST)
        return;
    const hq_worker_t *w = ev->obj;
    if (!w || !w->conf)
        return;
    hq_aqueue_t *q = NULL;
    hq_allocation_t *al = hq_alloc_find(a, w->conf->manager, w->conf->manager_job_id, &q);
    if (!al)
        return;
    if (ev->type == HQ_EV_WORKER_CONNECTED)
        hq_alife_worker_up(a, q, al, w->conf);
    else
        hq_alife_worker_down(a, q, al);
}

void hq_alloc_tick(hq_broker_t *b)
{
    hq_alloc_t *a = b->alloc;
    if (!a)
        return;
    hq_pdone_t d;
    while (hq_procs_next(a->procs, &d)) {
        hq_alife_done(a, &d);
        hq_pdone_clear(&d);
    }
    hq_alife_tick(a);
}

void hq_alloc_shutdown(hq_broker_t *b)
{
    hq_alloc_t *a = b->alloc;
    if (!a)
        return;
    a->stopping = true;
    for (uint32_t i = 0; i < a->n_queues; i++) {
        hq_aqueue_t *q = a->queues[i];
        for (uint32_t k = 0; k < q->n_allocs; k++)
            if (q->allocs[k]->state <= HQ_AS_RUNNING && *q->allocs[k]->id)
                hq_alife_cancel(a, q, q->allocs[k]);
    }
    /* Submissions still running end here: what they submitted is canceled too. */
    uint64_t end = hq_mono_ns() + 10 * HQ_NS_PER_SEC;
    while (hq_procs_running(a->procs) > 0 && hq_mono_ns() < end) {
        hq_pdone_t d;
        while (hq_procs_next(a->procs, &d)) {
            hq_alife_done(a, &d);
            hq_pdone_clear(&d);
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void hq_alloc_add(hq_broker_t *b, hq_creq_t *req, const char *params, bool dry_run_only)
{
    hq_alloc_t *a = b->alloc;
    hq_trial_t *t = hq_calloc(1, sizeof *t);
    hq_err_t err;
    if (!a || hq_aparams_from_json(params, &t->p, &err) != 0) {
        hq_client_error(&b->replies, req, HQ_ERR_INVALID, "%s",
                        a ? err.text : "Automatic allocation is not available");
        hq_alife_trial_free(t);
        return;
    }
    memcpy(t->rid, req->rid, req->rid_len);
    t->rid_len = req->rid_len;
    t->request_id = req->msg->hdr.request_id;
    t->params_text = hq_strdup(params);
    t->create = !dry_run_only;
    json_error_t jerr;
    json_t *doc = json_loads(params, 0, &jerr);
    t->trial = dry_run_only || !json_is_false(json_object_get(doc, "dry_run"));
    json_decref(doc);
    if (!t->trial) {
        hq_alife_trial_ended(a, t, NULL);
        return;
    }
    hq_alife_trial(a, t);
}

json_t *hq_alloc_list(hq_broker_t *b)
{
    json_t *arr = json_array();
    hq_alloc_t *a = b->alloc;
    for (uint32_t i = 0; a && i < a->n_queues; i++) {
        const hq_aqueue_t *q = a->queues[i];
        json_array_append_new(
            arr, hq_aqueue_json(q, hq_ascript_worker_args(&q->p, hq_self_path(), b->conf.run_dir)));
    }
    return arr;
}

json_t *hq_alloc_info(hq_broker_t *b, uint32_t queue_id, char **notes)
{
    notes[0] = notes[1] = NULL;
    hq_aqueue_t *q = hq_alloc_queue(b->alloc, queue_id);
    if (!q)
        return NULL;
    json_t *arr = json_array();
    for (uint32_t i = 0; i < q->n_allocs; i++)
        if (*q->allocs[i]->id)
            json_array_append_new(arr, hq_allocation_json(q->allocs[i]));
    uint32_t n = 0;
    if (q->why_idle)
        notes[n++] = hq_asprintf("INFO\tQueue %u submits nothing for %s", q->id, q->why_idle);
    if (q->last_error)
        notes[n++] = hq_asprintf("WARN\tQueue %u: %s", q->id, q->last_error);
    return arr;
}

static bool s_active(const hq_aqueue_t *q)
{
    for (uint32_t i = 0; i < q->n_allocs; i++)
        if (q->allocs[i]->state <= HQ_AS_RUNNING && *q->allocs[i]->id)
            return true;
    return false;
}

int hq_alloc_ctl(hq_broker_t *b, uint32_t queue_id, const char *action, bool force, hq_err_t *err)
{
    hq_alloc_t *a = b->alloc;
    hq_aqueue_t *q = hq_alloc_queue(a, queue_id);
    if (!q)
        return hq_err_set(err, "Allocation queue %u not found", queue_id);
    bool remove = strcmp(action, "remove") == 0;
    if (strcmp(action, "resume") == 0) {
        q->paused = false;
        q->submit_failures = q->start_failures = 0;
        q->retry_at = 0;
    } else if (strcmp(action, "pause") == 0 || remove) {
        if (remove && !force && s_active(q))
            return hq_err_set(err,
                              "Allocation queue %u has queued or running allocations. Use "
                              "`--force` to remove the queue and cancel them",
                              queue_id);
        q->paused = true;
        for (uint32_t i = 0; force && i < q->n_allocs; i++) {
            hq_allocation_t *al = q->allocs[i];
            if (*al->id && (al->state == HQ_AS_QUEUED || (remove && al->state == HQ_AS_RUNNING)))
                hq_alife_cancel(a, q, al);
        }
    } else {
        return hq_err_set(err, "Unknown action '%s': use pause, resume or remove", action);
    }
    hq_alloc_emit_queue(a, q, HQ_EV_ALLOC_QUEUE_STATE, remove ? 2 : q->paused ? 1 : 0);
    if (remove)
        hq_alloc_remove_queue(a, q);
    hq_info("Allocation queue %u successfully %s", queue_id,
            remove                         ? "removed"
            : strcmp(action, "pause") == 0 ? "paused"
                                           : "resumed");
    return 0;
}

const char *hq_alloc_workdir(hq_broker_t *b, const char *alloc_id)
{
    hq_alloc_t *a = b->alloc;
    for (uint32_t i = 0; a && i < a->n_queues; i++) {
        hq_allocation_t *al = hq_aqueue_find(a->queues[i], alloc_id);
        if (al)
            return al->workdir;
    }
    return NULL;
}
