/* The core actor's loop: the two ROUTER sockets, the scheduler pipe, timers,
 * signals, the client dispatch table and the end-of-turn flush. The top of the
 * broker below hq_broker_main. Private to broker/. */
#ifndef HQ_BROKER_LOOP_H
#define HQ_BROKER_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"

/* Creates the ZAP handler, sockets, loop and scheduler. Returns 0 or -1 with err. */
int hq_loop_start(hq_broker_t *b, hq_err_t *err);
/* Runs the loop until stop (server stop, SIGINT, SIGTERM). */
void hq_loop_run(hq_broker_t *b);
/* Closes what hq_loop_start made. NULL-safe members. */
void hq_loop_stop(hq_broker_t *b);

#endif
