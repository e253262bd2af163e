/* record.c's events of the allocator (the journal records them as records 22 to 25);
 * its journal replay, snapshot records and access sharing are in alloc.h. Uses
 * astate.h only. Private to broker/alloc/. */
#ifndef HQ_ALLOC_RECORD_H
#define HQ_ALLOC_RECORD_H

#include "astate.h"

/* state: 0 active, 1 paused, 2 removed for HQ_EV_ALLOC_QUEUE_STATE. */
void hq_alloc_emit_queue(hq_alloc_t *a, const hq_aqueue_t *q, enum hq_event_type type,
                         uint32_t state);
/* HQ_EV_ALLOC_QUEUED or HQ_EV_ALLOC_STATE (its present state) of an allocation. */
void hq_alloc_emit_alloc(hq_alloc_t *a, const hq_aqueue_t *q, const hq_allocation_t *al,
                         enum hq_event_type type);

#endif
