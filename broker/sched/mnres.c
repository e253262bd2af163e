/* Workers reserved for a multi-node task after a round (rules in mnres.h). */
#include "mnres.h"

#include <stdlib.h>

#include "hq_util.h"
#include "place_priv.h"

/* Whether a multi-node task waits in some ready queue. */
static bool s_mn_waiting(const hq_place_t *p)
{
    for (uint32_t i = 0; i < p->n_queues; i++) {
        const queue_t *q = p->queues[i];
        for (uint32_t v = 0; q->count > 0 && q->cls && v < q->cls->n_variants; v++)
            if (q->cls->variants[v].n_nodes > 0)
                return true;
    }
    return false;
}

bool hq_mnres_after_round(const hq_place_t *p, uint32_t **ids, uint32_t *n)
{
    *ids = NULL;
    *n = 0;
    uint32_t k = 0;
    for (uint32_t i = 0; i < p->n_workers; i++)
        k += p->workers[i]->mn_round == p->round && p->round > 0;
    if (k == 0)
        return !s_mn_waiting(p);
    *ids = hq_malloc(k * sizeof **ids);
    for (uint32_t i = 0; i < p->n_workers; i++)
        if (p->workers[i]->mn_round == p->round)
            (*ids)[(*n)++] = p->workers[i]->id;
    return true;
}
