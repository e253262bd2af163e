/* Reliable worker-socket messages (proto/wire/PROTOCOL.md "seq / ack"): the sender's bounded
 * outbox of sent but unacknowledged frames, kept by seq, and the receiver's in-order
 * rule. Both sides of the worker link use it: the broker for ASSIGN and CANCEL, the
 * worker for RESULTS.
 *
 * Only reliable messages take a new seq; every other message carries the sender's
 * latest seq unchanged. A receiver processes a reliable message only when its seq is
 * exactly one past the last it processed (the ack it sends back), drops it as a
 * duplicate when it is not above, and drops it as out of order otherwise: the
 * sender retransmits the whole unacknowledged tail, in order. */
#ifndef HQ_OUTBOX_H
#define HQ_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HQ_OUTBOX_MAX_MSGS 65536                 /* frames kept at most */
#define HQ_OUTBOX_MAX_BYTES (256u * 1024 * 1024) /* bytes kept at most */

typedef struct hq_outbox_entry {
    uint64_t seq;     /* the frame's header seq */
    uint64_t sent_ns; /* CLOCK_MONOTONIC of the last transmission (0 = never left) */
    uint8_t *buf;     /* the encoded frame, owned */
    size_t len;       /* its length */
} hq_outbox_entry_t;

typedef struct hq_outbox {
    hq_outbox_entry_t *ring; /* entries in seq order, a ring of cap slots */
    uint32_t head;           /* index of the oldest */
    uint32_t n;              /* entries held */
    uint32_t cap;            /* ring size (0 or a power of two) */
    size_t bytes;            /* sum of their lengths */
    uint64_t last_retx_ns;   /* CLOCK_MONOTONIC of the last retransmission round */
} hq_outbox_t;

/* Verdict of the receiver's in-order rule for a reliable message. */
enum hq_seq_verdict {
    HQ_SEQ_DELIVER = 0, /* seq == delivered + 1: process it, delivered = seq */
    HQ_SEQ_DUP,         /* seq <= delivered: already processed, drop */
    HQ_SEQ_GAP,         /* seq > delivered + 1: an earlier one is missing, drop */
};

/* Whether a message type is reliable (numbered, kept, retransmitted). */
bool hq_msg_is_reliable(uint8_t type);

static inline enum hq_seq_verdict hq_seq_check(uint64_t delivered, uint64_t seq)
{
    if (seq <= delivered)
        return HQ_SEQ_DUP;
    return seq == delivered + 1 ? HQ_SEQ_DELIVER : HQ_SEQ_GAP;
}

/* Frees every entry; the outbox stays usable (empty). NULL-safe. */
void hq_outbox_clear(hq_outbox_t *o);

/* Appends a frame (takes buf) with a seq above every held one. When a bound is
 * exceeded the oldest entries are dropped; returns how many were (0 normally). */
uint32_t hq_outbox_push(hq_outbox_t *o, uint64_t seq, uint8_t *buf, size_t len, uint64_t sent_ns);

/* The peer acknowledged everything up to ack: drops those entries. Returns how many. */
uint32_t hq_outbox_ack(hq_outbox_t *o, uint64_t ack);

/* The i-th oldest entry (i < o->n). */
hq_outbox_entry_t *hq_outbox_at(hq_outbox_t *o, uint32_t i);

/* Whether a retransmission round is due: an entry never left (the peer was
 * unreachable), or the oldest was last sent at least age_ns ago and no round ran
 * in the last age_ns. force: evidence of loss (a reconnect), due whenever any is held. */
bool hq_outbox_due(const hq_outbox_t *o, uint64_t now_ns, uint64_t age_ns, bool force);

#endif
