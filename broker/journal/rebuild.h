/* The events of a broker started without --journal (cli/REFERENCE.md §3.8): `hq
 * journal replay` / `stream` still work, with the events rebuilt from the broker's
 * state (server-start, worker-connected, job-created, task events, job-completed,
 * worker-lost, in time order) and, for live readers, made from the broker's events as
 * they happen. The lines are those of ndjson.c. Private to broker/. */
#ifndef HQ_BROKER_JOURNAL_REBUILD_H
#define HQ_BROKER_JOURNAL_REBUILD_H

#include "ctx.h"
#include "events.h"
#include "journal/hq_journal.h"

/* The NDJSON lines of b's present state, sorted by time (one line per event): those
 * from index skip on, at most max of them; *more tells whether lines follow. Returns
 * the number of lines given. */
uint64_t hq_jrebuild_state(const hq_broker_t *b, uint64_t skip, uint64_t max, hq_jline_fn *fn,
                           void *arg, bool *more);

/* The record of an automatic allocation event (false for other events); pointers
 * borrowed from ev. The journal records these as they are, and live readers of a broker
 * without a journal get their lines from them. */
bool hq_jrebuild_alloc_rec(const hq_event_t *ev, hq_jrec_t *rec);

/* The NDJSON lines of one broker event (none for internal ones). */
uint64_t hq_jrebuild_event(const hq_broker_t *b, const hq_event_t *ev, hq_jline_fn *fn, void *arg);

#endif
