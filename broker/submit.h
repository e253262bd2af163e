/* Client requests that change jobs: submit, open, close, cancel, forget. Each is
 * applied once its journal records are durable (jobops.c). Private to broker/. */
#ifndef HQ_BROKER_SUBMIT_H
#define HQ_BROKER_SUBMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"

int hq_h_submit(hq_broker_t *b, hq_creq_t *req);
int hq_h_job_open(hq_broker_t *b, hq_creq_t *req);
int hq_h_job_close(hq_broker_t *b, hq_creq_t *req);
int hq_h_job_cancel(hq_broker_t *b, hq_creq_t *req);
int hq_h_job_forget(hq_broker_t *b, hq_creq_t *req);

#endif
