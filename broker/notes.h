/* The task notifications (`hq task notify`) the broker still holds for job waits
 * with --on-notify: a bounded ring in arrival order, numbered 1, 2, ... per broker
 * run. They are never journaled. Private to broker/. */
#ifndef HQ_BROKER_NOTES_H
#define HQ_BROKER_NOTES_H

#include <stdint.h>

#include <jansson.h>

#define HQ_NOTES_MAX 4096 /* notifications kept; a wait further behind misses the oldest */
#define HQ_NOTE_MAX 1024  /* bytes of one message */

typedef struct hq_note {
    uint64_t seq; /* 1, 2, ... */
    uint32_t job, task, worker;
    char *message; /* owned */
} hq_note_t;

typedef struct hq_notes {
    hq_note_t *ring; /* HQ_NOTES_MAX entries once the first arrives */
    uint32_t head, n;
    uint64_t last_seq; /* seq of the newest notification (0 = none yet) */
} hq_notes_t;

/* Keeps a copy of message; returns its seq. */
uint64_t hq_notes_add(hq_notes_t *ns, uint32_t job, uint32_t task, uint32_t worker,
                      const char *message);
/* Whether a notification after seq `after` belongs to one of the jobs. */
int hq_notes_pending(const hq_notes_t *ns, uint64_t after, const uint32_t *jobs, uint32_t n_jobs);
/* The notifications after `after` of these jobs as a JSON array of
 * {"seq","job","task","worker","message"} (new reference). */
json_t *hq_notes_json(const hq_notes_t *ns, uint64_t after, const uint32_t *jobs, uint32_t n_jobs);
void hq_notes_fini(hq_notes_t *ns);

#endif
