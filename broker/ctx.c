/* The broker's context without its sockets: its in-memory sub-objects created and
 * freed in one place. The loop adds the sockets, timers and the scheduler; tests drive
 * handlers on a context made here alone. */
#include "ctx.h"

#include <stdlib.h>
#include <string.h>

void hq_broker_init(hq_broker_t *b)
{
    memset(b, 0, sizeof *b);
    b->events = hq_events_new();
    b->reg.by_rid = zhashx_new();
    b->waiters = zlistx_new();
    hq_replies_init(&b->replies);
    b->turn.flush_timer = -1;
    b->turn.tick_timer = -1;
    b->wlink.turn = &b->turn;
}

void hq_broker_fini(hq_broker_t *b)
{
    hq_jobtab_fini(&b->jobs);
    hq_registry_fini(&b->reg);
    hq_readyq_fini(&b->ready);
    hq_cancels_fini(&b->cancels);
    if (b->waiters) {
        for (hq_waiter_t *w = zlistx_first(b->waiters); w; w = zlistx_next(b->waiters)) {
            free(w->job_ids);
            free(w);
        }
        zlistx_destroy(&b->waiters);
    }
    hq_notes_fini(&b->notes);
    hq_replies_fini(&b->replies);
    hq_events_destroy(&b->events);
    free(b->conf.server_dir);
    free(b->conf.run_dir);
    free(b->conf.access_path);
    b->conf.server_dir = b->conf.run_dir = b->conf.access_path = NULL;
    hq_global_clear(&b->conf.g);
}
