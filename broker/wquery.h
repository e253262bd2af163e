/* Client requests about workers: `worker list`, `worker info`, `worker stop`.
 * Private to broker/. */
#ifndef HQ_BROKER_WQUERY_H
#define HQ_BROKER_WQUERY_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"

int hq_h_worker_stop(hq_broker_t *b, hq_creq_t *req);
int hq_h_worker_list(hq_broker_t *b, hq_creq_t *req);
int hq_h_worker_info(hq_broker_t *b, hq_creq_t *req);

#endif
