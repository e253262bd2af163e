/* The job table: jobs by id and what hands out ids. Private to broker/. */
#ifndef HQ_BROKER_JOBTAB_H
#define HQ_BROKER_JOBTAB_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>

#include "hq_msg.h"
#include "jobs.h"

typedef struct hq_jobtab {
    hq_job_t **tab;        /* indexed by id; NULL if forgotten / unused */
    uint32_t cap;          /* size of tab */
    uint32_t max_id;       /* highest id handed out */
    uint32_t n_live;       /* live (not forgotten) jobs */
    uint32_t next_rq_id;   /* next scheduler request class id */
    zhashx_t *submit_keys; /* SUBMIT idempotency key (hex) -> job id (jobops.c); lazy */
    uint32_t *unused;      /* ids given back below max_id, waiting for the ids above */
    uint32_t n_unused;
} hq_jobtab_t;

/* Job id -> job, or NULL (unknown or forgotten). */
hq_job_t *hq_jobtab_get(const hq_jobtab_t *t, uint32_t id);
/* Task task_id of job job_id (its job in *jp, NULL if unknown), or NULL. */
hq_task_t *hq_jobtab_task(const hq_jobtab_t *t, uint32_t job_id, uint32_t task_id, hq_job_t **jp);
/* Resolves a selector to existing job ids (ascending); unknown explicit ids go to
 * missing (if not NULL). Caller frees both arrays. */
uint32_t *hq_jobtab_select(const hq_jobtab_t *t, const hq_selector_t *sel, uint32_t *n,
                           uint32_t **missing, uint32_t *n_missing);

/* Frees every job and the key index. */
void hq_jobtab_fini(hq_jobtab_t *t);
/* Makes room in tab for id. */
void hq_jobtab_reserve(hq_jobtab_t *t, uint32_t id);
/* Reserves the next job id (ids strictly ascending, never reused once a job had it). */
uint32_t hq_jobtab_next_id(hq_jobtab_t *t);
/* Gives back a reserved id no job took (its journal record failed), so ids stay
 * without gaps: max_id goes down over it and every given-back id just below. */
void hq_jobtab_give_back(hq_jobtab_t *t, uint32_t id);

/* The job id a SUBMIT idempotency key belongs to (0: unknown); *pending tells whether
 * that submit still waits for its journal record. */
uint32_t hq_jobtab_key_find(hq_jobtab_t *t, const uint8_t *key, bool *pending);
/* Records key -> job_id (pending: its journal record is not durable yet). */
void hq_jobtab_key_put(hq_jobtab_t *t, const uint8_t *key, uint32_t job_id, bool pending);
/* Drops the key if it still names job_id (pending_only: only a pending entry). */
void hq_jobtab_key_drop(hq_jobtab_t *t, const uint8_t *key, uint32_t job_id, bool pending_only);
/* Forgets the keys of job j (it is being forgotten). */
void hq_jobtab_keys_forget(hq_jobtab_t *t, const hq_job_t *j);
/* Frees the whole key index (at broker teardown). */
void hq_jobtab_keys_destroy(hq_jobtab_t *t);

#endif
