/* One turn of the core loop: the dirty flag and the 0 ms timer that flushes work
 * batched outside the loop's readers. */
#include "turn.h"

#include "hq_duration.h"
#include "hq_util.h"

void hq_turn_dirty(hq_turn_t *t)
{
    t->dirty = true;
    if (t->flush_timer < 0 && t->loop && t->flush)
        t->flush_timer = zloop_timer(t->loop, 0, 1, t->flush, t->flush_arg);
}

int hq_turn_retime(hq_turn_t *t, uint64_t tick_ns)
{
    if (!t->loop || !t->tick)
        return -1;
    if (t->tick_timer >= 0)
        zloop_timer_end(t->loop, t->tick_timer);
    size_t ms = (size_t)(tick_ns / HQ_NS_PER_MS);
    t->tick_timer = zloop_timer(t->loop, ms ? ms : 1, 0, t->tick, t->tick_arg);
    t->tick_ns = tick_ns;
    return t->tick_timer >= 0 ? 0 : -1;
}
