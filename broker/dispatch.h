/* Assignments to workers: the scheduler's answers become pending tasks per worker,
 * sent as batched ASSIGNs at the end of the turn, then the queued cancels. Private to
 * broker/. */
#ifndef HQ_BROKER_DISPATCH_H
#define HQ_BROKER_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"

/* The scheduler assigned slots (HQ_SCHED_ASSIGNED): the tasks become ASSIGNED and
 * pending on their workers (journaled first when the journal is on). */
void hq_workers_on_assigned(hq_broker_t *b, hq_sched_cmd_t *cmd);
/* Sends the pending ASSIGNs and then the queued CANCELs (end of turn). */
void hq_workers_flush(hq_broker_t *b);

#endif
