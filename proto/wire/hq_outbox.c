/* The outbox of reliable worker-socket messages: a ring of owned frames in seq
 * order. See hq_outbox.h. */
#include "hq_outbox.h"

#include <stdlib.h>
#include <string.h>

#include "hq_msg.h"
#include "hq_util.h"

bool hq_msg_is_reliable(uint8_t type)
{
    return type == HQ_MSG_ASSIGN || type == HQ_MSG_CANCEL || type == HQ_MSG_RETRACT ||
           type == HQ_MSG_NODE_OF || type == HQ_MSG_RESULTS;
}

static void s_drop_oldest(hq_outbox_t *o)
{
    hq_outbox_entry_t *e = &o->ring[o->head];
    o->bytes -= e->len;
    free(e->buf);
    e->buf = NULL;
    o->head = (o->head + 1) & (o->cap - 1);
    o->n--;
}

void hq_outbox_clear(hq_outbox_t *o)
{
    if (!o)
        return;
    while (o->n > 0)
        s_drop_oldest(o);
    free(o->ring);
    o->ring = NULL;
    o->head = 0;
    o->cap = 0;
    o->bytes = 0;
    o->last_retx_ns = 0;
}

uint32_t hq_outbox_push(hq_outbox_t *o, uint64_t seq, uint8_t *buf, size_t len, uint64_t sent_ns)
{
    uint32_t dropped = 0;
    while (o->n > 0 &&
           (o->n >= HQ_OUTBOX_MAX_MSGS || o->bytes + len > (size_t)HQ_OUTBOX_MAX_BYTES)) {
        s_drop_oldest(o);
        dropped++;
    }
    if (o->n == o->cap) {
        uint32_t cap = o->cap ? o->cap * 2 : 16;
        hq_outbox_entry_t *ring = hq_malloc(cap * sizeof *ring);
        for (uint32_t i = 0; i < o->n; i++)
            ring[i] = o->ring[(o->head + i) & (o->cap - 1)];
        free(o->ring);
        o->ring = ring;
        o->head = 0;
        o->cap = cap;
    }
    o->ring[(o->head + o->n) & (o->cap - 1)] =
        (hq_outbox_entry_t){.seq = seq, .sent_ns = sent_ns, .buf = buf, .len = len};
    o->n++;
    o->bytes += len;
    return dropped;
}

uint32_t hq_outbox_ack(hq_outbox_t *o, uint64_t ack)
{
    uint32_t k = 0;
    while (o->n > 0 && o->ring[o->head].seq <= ack) {
        s_drop_oldest(o);
        k++;
    }
    return k;
}

hq_outbox_entry_t *hq_outbox_at(hq_outbox_t *o, uint32_t i)
{
    return &o->ring[(o->head + i) & (o->cap - 1)];
}

bool hq_outbox_due(const hq_outbox_t *o, uint64_t now_ns, uint64_t age_ns, bool force)
{
    if (o->n == 0)
        return false;
    /* Entries leave in seq order, so the oldest went first; those that never left
     * (the peer was unreachable) are at the end and are due at once. */
    const hq_outbox_entry_t *first = &o->ring[o->head];
    const hq_outbox_entry_t *last = &o->ring[(o->head + o->n - 1) & (o->cap - 1)];
    if (force || first->sent_ns == 0 || last->sent_ns == 0)
        return true;
    if (o->last_retx_ns && now_ns - o->last_retx_ns < age_ns)
        return false;
    return now_ns - first->sent_ns >= age_ns;
}
