/* `hq task explain`: why a task can or cannot run on each worker. Private to
 * broker/. */
#ifndef HQ_BROKER_EXPLAIN_H
#define HQ_BROKER_EXPLAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"
#include "sched/actor.h"

/* Answers at once, or for a waiting task holds the request and asks the scheduler
 * for its state (reservations), answered by hq_explain_on_sched. */
int hq_h_task_explain(hq_broker_t *b, hq_creq_t *req);
/* The scheduler's state arrived (cmd NULL: it cannot come): answers held requests. */
void hq_explain_on_sched(hq_broker_t *b, const hq_sched_cmd_t *cmd);
/* Forgets held requests (broker shutdown). */
void hq_explain_close(hq_broker_t *b);

#endif
