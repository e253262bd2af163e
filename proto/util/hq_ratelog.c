/* The rate limit for log lines an outside party can cause (see hq_ratelog.h). */
#include "hq_ratelog.h"

bool hq_ratelog_allow(hq_ratelog_t *r, uint64_t now, uint64_t *held_back)
{
    if (!r->window_start || now - r->window_start >= r->window_ns) {
        r->window_start = now ? now : 1;
        r->in_window = 0;
    }
    if (r->in_window >= r->burst) {
        r->suppressed++;
        return false;
    }
    r->in_window++;
    *held_back = r->suppressed;
    r->suppressed = 0;
    return true;
}

bool hq_ratelog_flush(hq_ratelog_t *r, uint64_t now, uint64_t *held_back)
{
    if (!r->suppressed || !r->window_start || now - r->window_start < r->window_ns)
        return false;
    *held_back = r->suppressed;
    r->suppressed = 0;
    return true;
}
