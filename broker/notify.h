/* TASK_NOTIFY: `hq task notify MSG` from inside a running task. Private to broker/. */
#ifndef HQ_BROKER_NOTIFY_H
#define HQ_BROKER_NOTIFY_H

#include "ctx.h"

int hq_h_task_notify(hq_broker_t *b, hq_creq_t *req);

#endif
