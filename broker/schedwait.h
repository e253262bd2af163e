/* Client requests held until the scheduler thread reports its state (a DUMP answered
 * by HQ_SCHED_DUMPED): `hq server debug-dump` and `hq task explain` of a waiting task
 * both need it. One list in the broker's context; handlers hold a request with their
 * answer function, the loop hands every DUMPED here. Private to broker/. */
#ifndef HQ_BROKER_SCHEDWAIT_H
#define HQ_BROKER_SCHEDWAIT_H
#include <stddef.h>
#include <stdint.h>
#include "ctx.h"
#include "sched/actor.h"

/* Answers one held request: sched_text is the scheduler's state document (JSON), or
 * NULL when it cannot come. data is what the handler held with the request. */
typedef void (*hq_schedwait_answer_fn)(hq_broker_t *b, const uint8_t *rid, size_t rid_len,
                                       uint64_t request_id, void *data, const char *sched_text);
/* Frees data of a request dropped unanswered (server stopping); NULL: nothing to free. */
typedef void (*hq_schedwait_drop_fn)(void *data);

/* Holds req and asks the scheduler for its state; answers at once (with NULL state)
 * when the scheduler cannot be asked. */
void hq_schedwait_hold(hq_broker_t *b, const hq_creq_t *req, hq_schedwait_answer_fn answer,
                       hq_schedwait_drop_fn drop, void *data);
/* The scheduler's state arrived (cmd NULL: it cannot come): answers every held request. */
void hq_schedwait_on_dumped(hq_broker_t *b, const hq_sched_cmd_t *cmd);
/* Drops the held requests unanswered (server stopping). */
void hq_schedwait_close(hq_broker_t *b);
#endif
