/* The ring of task notifications held for job waits (see notes.h). */
#include "notes.h"

#include <stdbool.h>
#include <stdlib.h>

#include "hq_util.h"

uint64_t hq_notes_add(hq_notes_t *ns, uint32_t job, uint32_t task, uint32_t worker,
                      const char *message)
{
    if (!ns->ring)
        ns->ring = hq_calloc(HQ_NOTES_MAX, sizeof *ns->ring);
    if (ns->n == HQ_NOTES_MAX) {
        free(ns->ring[ns->head].message);
        ns->head = (ns->head + 1) % HQ_NOTES_MAX;
        ns->n--;
    }
    hq_note_t *e = &ns->ring[(ns->head + ns->n) % HQ_NOTES_MAX];
    *e = (hq_note_t){.seq = ++ns->last_seq,
                     .job = job,
                     .task = task,
                     .worker = worker,
                     .message = hq_strdup(message)};
    ns->n++;
    return e->seq;
}

static bool s_has_job(const uint32_t *jobs, uint32_t n_jobs, uint32_t job)
{
    for (uint32_t i = 0; i < n_jobs; i++)
        if (jobs[i] == job)
            return true;
    return false;
}

int hq_notes_pending(const hq_notes_t *ns, uint64_t after, const uint32_t *jobs, uint32_t n_jobs)
{
    if (ns->last_seq <= after)
        return 0;
    for (uint32_t k = 0; k < ns->n; k++) {
        const hq_note_t *e = &ns->ring[(ns->head + k) % HQ_NOTES_MAX];
        if (e->seq > after && s_has_job(jobs, n_jobs, e->job))
            return 1;
    }
    return 0;
}

json_t *hq_notes_json(const hq_notes_t *ns, uint64_t after, const uint32_t *jobs, uint32_t n_jobs)
{
    json_t *a = json_array();
    for (uint32_t k = 0; k < ns->n; k++) {
        const hq_note_t *e = &ns->ring[(ns->head + k) % HQ_NOTES_MAX];
        if (e->seq <= after || !s_has_job(jobs, n_jobs, e->job))
            continue;
        json_array_append_new(a, json_pack("{s:I,s:I,s:I,s:I,s:s}", "seq", (json_int_t)e->seq,
                                           "job", (json_int_t)e->job, "task", (json_int_t)e->task,
                                           "worker", (json_int_t)e->worker, "message", e->message));
    }
    return a;
}

void hq_notes_fini(hq_notes_t *ns)
{
    for (uint32_t k = 0; k < ns->n; k++)
        free(ns->ring[(ns->head + k) % HQ_NOTES_MAX].message);
    free(ns->ring);
    *ns = (hq_notes_t){0};
}
