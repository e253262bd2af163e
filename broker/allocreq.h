/* Handlers of the `hq alloc` requests (ALLOC_ADD, ALLOC_LIST, ALLOC_INFO, ALLOC_CTL,
 * ALLOC_LOG): they check the request and call the allocator (broker/alloc/).
 * Private to broker/. */
#ifndef HQ_BROKER_ALLOCREQ_H
#define HQ_BROKER_ALLOCREQ_H

#include "ctx.h"

int hq_h_alloc_add(hq_broker_t *b, hq_creq_t *req);
int hq_h_alloc_list(hq_broker_t *b, hq_creq_t *req);
int hq_h_alloc_info(hq_broker_t *b, hq_creq_t *req);
int hq_h_alloc_ctl(hq_broker_t *b, hq_creq_t *req);
int hq_h_alloc_log(hq_broker_t *b, hq_creq_t *req);

#endif
