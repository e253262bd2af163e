/* The outbox of reliable worker-socket messages and the receiver's in-order rule
 * (proto/wire/hq_outbox.h). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "hq_msg.h"
#include "hq_outbox.h"

static uint8_t *s_frame(uint64_t seq, size_t len)
{
    uint8_t *b = malloc(len);
    memset(b, (int)(seq & 0xff), len);
    return b;
}

Test(outbox, keeps_frames_in_seq_order_until_acknowledged)
{
    hq_outbox_t o = {0};
    for (uint64_t s = 1; s <= 40; s++) /* grows past the first ring size */
        cr_assert_eq(hq_outbox_push(&o, s, s_frame(s, 10), 10, 1000 + s), 0);
    cr_assert_eq(o.n, 40);
    cr_assert_eq(o.bytes, 400);
    cr_assert_eq(hq_outbox_ack(&o, 0), 0);
    cr_assert_eq(hq_outbox_ack(&o, 25), 25);
    cr_assert_eq(o.n, 15);
    cr_assert_eq(o.bytes, 150);
    for (uint32_t i = 0; i < o.n; i++) {
        hq_outbox_entry_t *e = hq_outbox_at(&o, i);
        cr_assert_eq(e->seq, 26 + i);
        cr_assert_eq(e->buf[0], (uint8_t)(26 + i));
        cr_assert_eq(e->len, 10);
    }
    /* an old (stale) ack changes nothing; a later one empties it */
    cr_assert_eq(hq_outbox_ack(&o, 3), 0);
    /* pushes after wrapping keep the order */
    for (uint64_t s = 41; s <= 50; s++)
        hq_outbox_push(&o, s, s_frame(s, 1), 1, 0);
    cr_assert_eq(hq_outbox_at(&o, 14)->seq, 40);
    cr_assert_eq(hq_outbox_at(&o, 15)->seq, 41);
    cr_assert_eq(hq_outbox_ack(&o, 1000), 25);
    cr_assert_eq(o.n, 0);
    cr_assert_eq(o.bytes, 0);
    hq_outbox_clear(&o);
    hq_outbox_clear(NULL);
}

Test(outbox, is_bounded_by_count_dropping_the_oldest)
{
    hq_outbox_t o = {0};
    uint32_t dropped = 0;
    for (uint64_t s = 1; s <= HQ_OUTBOX_MAX_MSGS + 5; s++)
        dropped += hq_outbox_push(&o, s, s_frame(s, 1), 1, 1);
    cr_assert_eq(dropped, 5);
    cr_assert_eq(o.n, HQ_OUTBOX_MAX_MSGS);
    cr_assert_eq(hq_outbox_at(&o, 0)->seq, 6);
    hq_outbox_clear(&o);
    cr_assert_eq(o.n, 0);
    cr_assert_null(o.ring);
}

Test(outbox, is_bounded_by_bytes)
{
    hq_outbox_t o = {0};
    size_t big = HQ_OUTBOX_MAX_BYTES / 2;
    cr_assert_eq(hq_outbox_push(&o, 1, malloc(big), big, 1), 0);
    cr_assert_eq(hq_outbox_push(&o, 2, malloc(big), big, 1), 0);
    cr_assert_eq(hq_outbox_push(&o, 3, malloc(16), 16, 1), 1);
    cr_assert_eq(o.n, 2);
    cr_assert_eq(hq_outbox_at(&o, 0)->seq, 2);
    hq_outbox_clear(&o);
}

Test(outbox, retransmission_is_due_on_age_on_unsent_frames_or_when_forced)
{
    hq_outbox_t o = {0};
    cr_assert_not(hq_outbox_due(&o, 100, 10, true)); /* nothing held */
    hq_outbox_push(&o, 1, s_frame(1, 4), 4, 100);
    hq_outbox_push(&o, 2, s_frame(2, 4), 4, 105);
    cr_assert_not(hq_outbox_due(&o, 109, 10, false)); /* young: may still be in flight */
    cr_assert(hq_outbox_due(&o, 109, 10, true));      /* a reconnect: resend anyway */
    cr_assert(hq_outbox_due(&o, 110, 10, false));     /* the oldest is old enough */
    /* a round just ran: not again within the age */
    hq_outbox_at(&o, 0)->sent_ns = 110;
    hq_outbox_at(&o, 1)->sent_ns = 110;
    o.last_retx_ns = 110;
    cr_assert_not(hq_outbox_due(&o, 119, 10, false));
    cr_assert(hq_outbox_due(&o, 120, 10, false));
    /* a frame that never left (unreachable peer) is due at once */
    hq_outbox_push(&o, 3, s_frame(3, 4), 4, 0);
    cr_assert(hq_outbox_due(&o, 111, 10, false));
    hq_outbox_clear(&o);
}

Test(outbox, receiver_processes_in_order_and_drops_duplicates_and_gaps)
{
    cr_assert_eq(hq_seq_check(0, 1), HQ_SEQ_DELIVER);
    cr_assert_eq(hq_seq_check(7, 8), HQ_SEQ_DELIVER);
    cr_assert_eq(hq_seq_check(7, 7), HQ_SEQ_DUP);
    cr_assert_eq(hq_seq_check(7, 0), HQ_SEQ_DUP);
    cr_assert_eq(hq_seq_check(7, 9), HQ_SEQ_GAP);
    cr_assert_eq(hq_seq_check(UINT64_MAX - 1, UINT64_MAX), HQ_SEQ_DELIVER);
    cr_assert_eq(hq_seq_check(UINT64_MAX, UINT64_MAX), HQ_SEQ_DUP);
}

Test(outbox, reliable_types)
{
    cr_assert(hq_msg_is_reliable(HQ_MSG_ASSIGN));
    cr_assert(hq_msg_is_reliable(HQ_MSG_CANCEL));
    cr_assert(hq_msg_is_reliable(HQ_MSG_RESULTS));
    cr_assert_not(hq_msg_is_reliable(HQ_MSG_HEARTBEAT));
    cr_assert_not(hq_msg_is_reliable(HQ_MSG_REGISTER));
    cr_assert_not(hq_msg_is_reliable(HQ_MSG_REGISTERED));
    cr_assert_not(hq_msg_is_reliable(HQ_MSG_GOODBYE));
    cr_assert_not(hq_msg_is_reliable(HQ_MSG_STOP));
    cr_assert_not(hq_msg_is_reliable(HQ_MSG_ERROR));
}
