/* `hq server debug-dump PATH`: the broker's internal state as one JSON document for
 * bug reports (cli/REFERENCE.md §3.1). The scheduler's part comes from its thread, so
 * a DEBUG_DUMP request is answered when the scheduler's answer arrives. Private to
 * broker/. */
#ifndef HQ_BROKER_DEBUGDUMP_H
#define HQ_BROKER_DEBUGDUMP_H

#include "ctx.h"
#include "sched/actor.h"

/* DEBUG_DUMP: asks the scheduler for its state and holds the request. */
int hq_h_debug_dump(hq_broker_t *b, hq_creq_t *req);
/* The scheduler's HQ_SCHED_DUMPED: answers every held DEBUG_DUMP. */
void hq_debug_dump_on_sched(hq_broker_t *b, const hq_sched_cmd_t *cmd);
/* Drops held requests (server stopping). */
void hq_debug_dump_close(hq_broker_t *b);

#endif
