/* `hq server debug-dump PATH`: the broker's internal state as one JSON document for
 * bug reports (cli/REFERENCE.md §3.1). The scheduler's part comes from its thread, so
 * a DEBUG_DUMP request is answered when the scheduler's answer arrives. Private to
 * broker/. */
#ifndef HQ_BROKER_DEBUGDUMP_H
#define HQ_BROKER_DEBUGDUMP_H

#include "ctx.h"

/* DEBUG_DUMP: holds the request until the scheduler's state arrives (schedwait.h). */
int hq_h_debug_dump(hq_broker_t *b, hq_creq_t *req);

#endif
