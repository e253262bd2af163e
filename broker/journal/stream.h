/* Journal events for clients (cli/REFERENCE.md §3.8): the JOURNAL_READ long poll
 * behind `hq journal stream` / `replay`, and JOURNAL_FLUSH; the lines are the NDJSON
 * form of journal records (ndjson.c, shared with `hq journal export`). Private to
 * broker/.
 *
 * JOURNAL_READ {number = cursor, flag = wait}: the reply's result is
 * {"lines": [NDJSON text…], "next": cursor, "more": bool, "end": bool}. A cursor is the
 * lsn of the last record whose events were delivered (0 = nothing yet: the snapshot's
 * events come first). Records up to the last one appended when the reader arrived come
 * from the journal files (after a flush); once a reader waits for live events, the
 * broker keeps the events of newer records in a bounded ring, and a reader that falls
 * behind the ring is served from the files again. With flag, an empty answer is held
 * up to a second for new events. "end" is set when the server is stopping.
 *
 * Without a journal (journal/rebuild.c), cursors below 2^40 page through the events
 * rebuilt from the broker's state (the cursor counts the lines delivered); the last
 * page's "next" is the number of the last live event; live events are numbered from
 * 2^40 + 1 as they happen and kept in the same ring. */
#ifndef HQ_BROKER_JOURNAL_STREAM_H
#define HQ_BROKER_JOURNAL_STREAM_H

#include <stdint.h>

#include "ctx.h"
#include "journal/journal_rec.h"

/* Client handlers (HQ_MSG_JOURNAL_READ, HQ_MSG_JOURNAL_FLUSH). */
int hq_h_journal_read(hq_broker_t *b, hq_creq_t *req);
int hq_h_journal_flush(hq_broker_t *b, hq_creq_t *req);
/* Answers held readers with "end" and drops the stream state (server stopping).
 * NULL-safe, no-op without readers. */
void hq_jstream_close(hq_broker_t *b);

#endif
