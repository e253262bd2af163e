/* What the allocator records and how it comes back (alloc.h, record.h): its
 * events (queue created, paused, resumed, removed; allocation queued, started,
 * finished, failed), which the journal keeps as records 22 to 25; the replay of those
 * records into queues and allocations after a restart; the records a snapshot needs to
 * rebuild them; and the access file given to the run directories of restored
 * allocations, whose workers read it to reconnect. */
#define HQ_LOG_MODULE "hq::server::autoalloc"
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "record.h"
#include "hq_access.h"
#include "hq_log.h"
#include "hq_util.h"

void hq_alloc_emit_queue(hq_alloc_t *a, const hq_aqueue_t *q, enum hq_event_type type,
                         uint32_t state)
{
    hq_event_t ev = {.type = type, .queue_id = q->id, .count = state};
    if (type == HQ_EV_ALLOC_QUEUE)
        ev.text = q->params_text;
    hq_events_emit(a->b->events, &ev);
}

void hq_alloc_emit_alloc(hq_alloc_t *a, const hq_aqueue_t *q, const hq_allocation_t *al,
                         enum hq_event_type type)
{
    hq_event_t ev = {.type = type, .queue_id = q->id, .alloc_id = al->id};
    if (type == HQ_EV_ALLOC_QUEUED) {
        ev.text = al->workdir;
        ev.count = al->target;
    } else {
        ev.count = (uint32_t)al->state;
    }
    hq_events_emit(a->b->events, &ev);
}

/* ---- replay ---- */

static void s_restore_queue(hq_alloc_t *a, const hq_jrec_t *rec)
{
    if (hq_alloc_queue(a, rec->u.alloc.queue))
        return; /* a snapshot and the log after it both hold it */
    hq_aqueue_t *q = hq_calloc(1, sizeof *q);
    hq_err_t err;
    if (hq_aparams_from_json(rec->u.alloc.text, &q->p, &err) != 0) {
        hq_warn("Journal: allocation queue %u cannot be restored", rec->u.alloc.queue);
        free(q);
        return;
    }
    q->id = rec->u.alloc.queue;
    q->params_text = hq_strdup(rec->u.alloc.text);
    q->has_known = hq_aparams_predict(&q->p, &q->known);
    hq_alloc_insert(a, q);
}

static void s_restore_alloc(hq_aqueue_t *q, const hq_jrec_t *rec)
{
    if (hq_aqueue_find(q, rec->u.alloc.id))
        return; /* a snapshot and the log after it both hold it */
    const char *base = strrchr(rec->u.alloc.text, '/');
    uint32_t seq = (uint32_t)strtoul(base ? base + 1 : rec->u.alloc.text, NULL, 10);
    hq_allocation_t *al = hq_aqueue_add_alloc(q, seq, rec->u.alloc.text, rec->u.alloc.count);
    free(al->id);
    al->id = hq_strdup(rec->u.alloc.id);
    al->queued_ns = rec->wall_ns;
    al->restored = true;
    if (seq > q->next_seq)
        q->next_seq = seq;
}

static void s_restore_state(hq_aqueue_t *q, const hq_jrec_t *rec)
{
    hq_allocation_t *al = hq_aqueue_find(q, rec->u.alloc.id);
    if (!al || rec->u.alloc.state > HQ_AS_FAILED)
        return;
    al->state = (enum hq_astate)rec->u.alloc.state;
    if (al->state == HQ_AS_RUNNING) {
        al->started_ns = rec->wall_ns;
        al->n_seen = 1; /* it had workers: if they never come back it did not fail to start */
    } else if (al->state >= HQ_AS_FINISHED) {
        al->ended_ns = rec->wall_ns;
    }
}

void hq_alloc_restore(hq_broker_t *b, const hq_jrec_t *rec)
{
    hq_alloc_t *a = b->alloc;
    if (!a)
        return;
    if (rec->type == HQ_JR_ALLOC_QUEUE) {
        s_restore_queue(a, rec);
        return;
    }
    hq_aqueue_t *q = hq_alloc_queue(a, rec->u.alloc.queue);
    if (!q)
        return;
    if (rec->type == HQ_JR_ALLOC_QUEUE_STATE && rec->u.alloc.state == 2)
        hq_alloc_remove_queue(a, q);
    else if (rec->type == HQ_JR_ALLOC_QUEUE_STATE)
        q->paused = rec->u.alloc.state == 1;
    else if (rec->type == HQ_JR_ALLOC_QUEUED)
        s_restore_alloc(q, rec);
    else if (rec->type == HQ_JR_ALLOC_STATE)
        s_restore_state(q, rec);
}

/* ---- snapshots ---- */

int hq_alloc_records(const hq_broker_t *b, hq_alloc_rec_fn *fn, void *arg)
{
    const hq_alloc_t *a = b->alloc;
    for (uint32_t i = 0; a && i < a->n_queues; i++) {
        const hq_aqueue_t *q = a->queues[i];
        hq_jrec_t r = {.type = HQ_JR_ALLOC_QUEUE, .wall_ns = hq_wall_ns()};
        r.u.alloc.queue = q->id;
        r.u.alloc.text = q->params_text;
        if (fn(&r, arg) != 0)
            return -1;
        if (q->paused) {
            r = (hq_jrec_t){.type = HQ_JR_ALLOC_QUEUE_STATE, .wall_ns = hq_wall_ns()};
            r.u.alloc.queue = q->id;
            r.u.alloc.state = 1;
            if (fn(&r, arg) != 0)
                return -1;
        }
        for (uint32_t k = 0; k < q->n_allocs; k++) {
            const hq_allocation_t *al = q->allocs[k];
            if (!*al->id)
                continue;
            r = (hq_jrec_t){.type = HQ_JR_ALLOC_QUEUED, .wall_ns = al->queued_ns};
            r.u.alloc.queue = q->id;
            r.u.alloc.id = al->id;
            r.u.alloc.text = al->workdir;
            r.u.alloc.count = al->target;
            if (fn(&r, arg) != 0)
                return -1;
            if (al->state == HQ_AS_QUEUED)
                continue;
            r = (hq_jrec_t){.type = HQ_JR_ALLOC_STATE,
                            .wall_ns = al->ended_ns ? al->ended_ns : al->started_ns};
            r.u.alloc.queue = q->id;
            r.u.alloc.id = al->id;
            r.u.alloc.state = (uint32_t)al->state;
            if (fn(&r, arg) != 0)
                return -1;
        }
    }
    return 0;
}

/* ---- the access file of earlier runs ---- */

void hq_alloc_share_access(hq_broker_t *b)
{
    hq_alloc_t *a = b->alloc;
    if (!a || !b->conf.run_dir)
        return;
    char **done = NULL;
    uint32_t n_done = 0;
    for (uint32_t i = 0; i < a->n_queues; i++) {
        const hq_aqueue_t *q = a->queues[i];
        for (uint32_t k = 0; k < q->n_allocs; k++) {
            const hq_allocation_t *al = q->allocs[k];
            if (!al->restored || al->state > HQ_AS_RUNNING)
                continue;
            /* <run dir>/autoalloc/<queue>/<NNN>: the run dir its workers were given */
            char *run = hq_strdup(al->workdir);
            for (int up = 0; up < 3; up++) {
                char *slash = strrchr(run, '/');
                if (slash)
                    *slash = '\0';
            }
            bool seen = !*run || strcmp(run, b->conf.run_dir) == 0;
            for (uint32_t d = 0; d < n_done && !seen; d++)
                seen = strcmp(done[d], run) == 0;
            if (seen) {
                free(run);
                continue;
            }
            char *path = hq_asprintf("%s/access.json", run);
            hq_err_t err;
            unlink(path);
            if (hq_access_write(path, &b->conf.access, 3, &err) != 0)
                hq_warn("Cannot give the workers of earlier allocations the new access file "
                        "%s: %s",
                        path, err.text);
            else
                hq_info("Workers of allocations of an earlier run find the server through %s",
                        path);
            free(path);
            done = hq_realloc(done, (n_done + 1) * sizeof *done);
            done[n_done++] = run;
        }
    }
    for (uint32_t d = 0; d < n_done; d++)
        free(done[d]);
    free(done);
}
