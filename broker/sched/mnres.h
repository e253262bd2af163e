/* Which workers are reserved for a multi-node task, as the core reports them (`worker
 * info`, and such a worker is not idle). A round reserves workers for a blocked
 * multi-node task (place.h); since a round may stop before it reaches that task (no
 * open worker left), the answer stays what the last round that reserved said, until no
 * multi-node task waits any more. Pure, like place.h. */
#ifndef HQ_SCHED_MNRES_H
#define HQ_SCHED_MNRES_H

#include <stdbool.h>
#include <stdint.h>

#include "place.h"

/* After a round: true and the sorted ids of the reserved workers in *ids (n, caller
 * frees; NULL when none) when the answer is known, false when it is unchanged. */
bool hq_mnres_after_round(const hq_place_t *p, uint32_t **ids, uint32_t *n);

#endif
