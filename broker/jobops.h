/* State changes of jobs shared by live requests (after their journal records are
 * durable) and journal replay: submit, open, forget. Private to broker/. */
#ifndef HQ_BROKER_JOBOPS_H
#define HQ_BROKER_JOBOPS_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"

/* A SUBMIT into job_id (a new job when msg's job_id is 0; job_id then is the reserved
 * id). Takes msg on success (msg untouched on failure).
 * Returns 0, -1 (refused: HQ_ERR_INVALID) or -2 (no such job: HQ_ERR_NOT_FOUND) with
 * err. job_id 0 (journal off) takes the next id at apply time. */
int hq_submit_apply(hq_broker_t *b, uint32_t job_id, hq_msg_t *msg, uint64_t wall_ns,
                    hq_err_t *err);
/* Creates the open job job_id (0: the next id). */
hq_job_t *hq_open_apply(hq_broker_t *b, uint32_t job_id, const char *name, bool has_max_fails,
                        uint32_t max_fails, uint64_t wall_ns);
/* Forgets a complete job (gives back capacity its canceled tasks still hold). */
void hq_job_forget_one(hq_broker_t *b, hq_job_t *j);

#endif
