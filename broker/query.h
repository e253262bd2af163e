/* Read-only client requests: server info, job and task listings, and JOB_WAIT with
 * its held waiters. Private to broker/. */
#ifndef HQ_BROKER_QUERY_H
#define HQ_BROKER_QUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"

int hq_h_server_info(hq_broker_t *b, hq_creq_t *req);
int hq_h_server_stop(hq_broker_t *b, hq_creq_t *req);
int hq_h_job_list(hq_broker_t *b, hq_creq_t *req);
int hq_h_job_info(hq_broker_t *b, hq_creq_t *req);
int hq_h_job_summary(hq_broker_t *b, hq_creq_t *req);
int hq_h_job_wait(hq_broker_t *b, hq_creq_t *req);
int hq_h_task_list(hq_broker_t *b, hq_creq_t *req);
int hq_h_task_info(hq_broker_t *b, hq_creq_t *req);
int hq_h_task_ids(hq_broker_t *b, hq_creq_t *req);
/* The server's description (`server info`). Caller owns it. */
json_t *hq_server_info_json(hq_broker_t *b);
/* Re-checks JOB_WAIT waiters (after state changes; timeout_only: only deadlines). */
void hq_broker_check_waiters(hq_broker_t *b, bool timeout_only);

#endif
