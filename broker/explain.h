/* `hq task explain`: why a task can or cannot run on each worker. Private to
 * broker/. */
#ifndef HQ_BROKER_EXPLAIN_H
#define HQ_BROKER_EXPLAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"

/* Answers at once, or for a waiting task holds the request until the scheduler's
 * state (its reservations) arrives (schedwait.h). */
int hq_h_task_explain(hq_broker_t *b, hq_creq_t *req);

#endif
