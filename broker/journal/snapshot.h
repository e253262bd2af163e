/* Snapshots of the broker's state into the journal, and compaction (broker/JOURNAL.md,
 * "Snapshots"): the live state is written as records (server_start with the epoch,
 * id high-waters, live workers, then per job its open/submit records, the state of
 * every task that left its initial state, its cancel and close) into a snapshot at
 * the current lsn L; the journal module makes it durable and deletes what the previous
 * snapshot no longer needs. Replaying the snapshot and the records after L gives the
 * same state as the full log. Compaction runs by itself when the bytes written since
 * the last snapshot exceed 4x the estimated snapshot size (at least 4 x 8 MiB) or the
 * maximum (HQ_JOURNAL_MAX_BYTES, default 1 GiB), and on `hq journal prune`, which also
 * drops complete jobs and writes two snapshots in a row so the old segments go at once.
 * Private to broker/. */
#ifndef HQ_BROKER_JOURNAL_SNAPSHOT_H
#define HQ_BROKER_JOURNAL_SNAPSHOT_H

#include <stdbool.h>

#include "ctx.h"
#include "journal/journal.h"

/* Writes b's state as a snapshot (prune: without complete, closed jobs); cb (nullable)
 * runs on the loop when it is durable or failed. Returns 0, or -1 with err (nothing
 * was committed; cb is not called). */
int hq_snapshot_write(hq_broker_t *b, bool prune, hq_journal_done_fn *cb, void *arg, hq_err_t *err);

/* Applies a task_state record of a snapshot to the restored tables. Returns the task
 * (and *jp) when it exists, else NULL. */
hq_task_t *hq_snapshot_apply_task(hq_broker_t *b, const hq_jrec_t *rec, hq_job_t **jp);

/* Starts / stops the compaction check on the loop (journal on). NULL-safe. */
void hq_snapshot_attach(hq_broker_t *b);
void hq_snapshot_detach(hq_broker_t *b);

/* JOURNAL_PRUNE. */
int hq_h_journal_prune(hq_broker_t *b, hq_creq_t *req);

#endif
