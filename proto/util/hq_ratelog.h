/* A rate limit for log lines that an outside party can cause (refused handshakes, ZAP
 * refusals): at most a burst of lines per window; the lines held back are counted and
 * their number is told with the next line that is let through. */
#ifndef HQ_RATELOG_H
#define HQ_RATELOG_H

#include <stdbool.h>
#include <stdint.h>

typedef struct hq_ratelog {
    uint64_t window_ns;    /* length of a window */
    uint32_t burst;        /* lines let through per window */
    uint64_t window_start; /* CLOCK_MONOTONIC start of the current window (0 = none) */
    uint32_t in_window;    /* lines let through in it */
    uint64_t suppressed;   /* lines held back since the last line let through */
} hq_ratelog_t;

/* A limiter letting BURST lines through per WINDOW_NS. */
#define HQ_RATELOG_INIT(burst_, window_ns_)                                                        \
    {                                                                                              \
        .window_ns = (window_ns_), .burst = (burst_)                                               \
    }

/* May a line be logged at NOW (monotonic ns)? When it may, *held_back is the number
 * of lines held back before it (to be said in it), else the line is counted. */
bool hq_ratelog_allow(hq_ratelog_t *r, uint64_t now, uint64_t *held_back);
/* After a window with lines held back has ended (and no line came since to tell it):
 * true once, with their number in *held_back, so that a flood that stopped is still
 * accounted for. */
bool hq_ratelog_flush(hq_ratelog_t *r, uint64_t now, uint64_t *held_back);

#endif
