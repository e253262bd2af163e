/* The journal (--journal PATH): a directory of CRC-framed record segments plus at most
 * two snapshots, locked by one broker at a time. The main loop appends typed records
 * cheaply; a writer thread owns the segment fd and commits them in groups (one
 * pwritev + one fdatasync), then reports each record's durability back on the main
 * loop. Replay yields the newest valid snapshot's records and then every later record
 * in lsn order, repairs a torn tail and refuses corruption. Format: broker/JOURNAL.md.
 * This is the broker's side; the record type and the read-only part (open, replay,
 * close) are in hq_journal.h, which readers outside the broker use alone.
 *
 * Life of a broker's journal:
 *   j = hq_journal_open(path, &opts, &err);        lock, read headers, refuse versions
 *   hq_journal_replay(j, fn, arg, &report, &err);  rebuild state (optional)
 *   hq_journal_start(j, &err);                     fresh segment + writer thread
 *   hq_journal_attach(j, loop);                    completions + batching on a zloop
 *   lsn = hq_journal_append(j, &rec, cb, arg, &err); ...
 *   hq_journal_close(&j);                          flush, stop, unlock
 */
#ifndef HQ_BROKER_JOURNAL_H
#define HQ_BROKER_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

#include "hq_err.h"
#include "hq_journal.h"
#include "journal_rec.h"

typedef struct hq_jsnap hq_jsnap_t;

/* The server uid written into the headers of files created from now on (the journal's
 * own uid once replay found it). */
void hq_journal_set_uid(hq_journal_t *j, const char *uid);

/* Starts writing: creates a fresh segment after the replayed ones (replaying first,
 * without a callback, if that was not done) and the writer thread. */
int hq_journal_start(hq_journal_t *j, hq_err_t *err);

/* Completion of an appended record (or of a flush / snapshot commit), always called on
 * the thread that calls hq_journal_dispatch (the main loop). errnum is 0 when durable,
 * else why not (ENOSPC, EIO, ...): the record must then not be reported durable. */
typedef void(hq_journal_done_fn)(void *arg, uint64_t lsn, int errnum);

/* Serialises rec into the current batch (lsn assigned here; wall_ns filled when 0).
 * cb (nullable) is called once the record is durable or has failed. The batch goes to
 * the writer at the next hq_journal_kick (automatic when attached to a loop, or when
 * it grows large). Returns the lsn, or 0 when rec breaks a record limit (err says
 * which) or the journal is not started; cb is then not called. */
uint64_t hq_journal_append(hq_journal_t *j, const hq_jrec_t *rec, hq_journal_done_fn *cb, void *arg,
                           hq_err_t *err);

/* Hands the records appended so far to the writer (cheap when there are none). */
void hq_journal_kick(hq_journal_t *j);

/* Readable when completions are waiting; then call hq_journal_dispatch, which runs
 * the callbacks of completed records in lsn order. */
int hq_journal_fd(const hq_journal_t *j);
void hq_journal_dispatch(hq_journal_t *j);

/* Registers the completion fd and a before-sleep kick on a zloop, so appends are
 * handed over at the end of each loop turn and callbacks run on the loop. */
int hq_journal_attach(hq_journal_t *j, zloop_t *loop);
void hq_journal_detach(hq_journal_t *j);

/* Forces a group commit of everything appended so far; cb gets 0 once it is durable,
 * else the error (also when records appended since the previous flush were lost in an
 * earlier group: a flush never reports lost records durable). The blocking form waits for it,
 * dispatching other completions meanwhile, and returns 0 or -1 with err. */
void hq_journal_flush_async(hq_journal_t *j, hq_journal_done_fn *cb, void *arg);
int hq_journal_flush(hq_journal_t *j, hq_err_t *err);

/* Sees each record appended from now on (lsn and wall_ns set; pointers valid only
 * during the call), on the appending thread. fn NULL turns it off. */
typedef void(hq_journal_tap_fn)(const hq_jrec_t *rec, void *arg);
void hq_journal_on_append(hq_journal_t *j, hq_journal_tap_fn *fn, void *arg);

enum hq_journal_state {
    HQ_JOURNAL_OK = 0,      /* writing normally (again) */
    HQ_JOURNAL_UNAVAILABLE, /* writes fail (no space...); retried with back-off */
    HQ_JOURNAL_POISONED,    /* fdatasync failed: rolled to a fresh segment; the core
                               should write a snapshot */
};
typedef void(hq_journal_state_fn)(void *arg, enum hq_journal_state st, int errnum);
/* Called on the main loop when the writer's state changes. */
void hq_journal_on_state(hq_journal_t *j, hq_journal_state_fn *fn, void *arg);
/* False from an UNAVAILABLE report until the next OK. */
bool hq_journal_available(const hq_journal_t *j);

typedef struct hq_journal_stats {
    uint64_t appended;    /* records appended */
    uint64_t durable;     /* records synced */
    uint64_t failed;      /* records whose write failed */
    uint64_t syncs;       /* fdatasync calls on segments */
    uint64_t writes;      /* pwritev calls */
    uint64_t bytes;       /* bytes written to segments */
    uint64_t segments;    /* segments created */
    uint64_t last_lsn;    /* last lsn appended */
    uint64_t sync_ns_max; /* slowest fdatasync */
} hq_journal_stats_t;
void hq_journal_stats(const hq_journal_t *j, hq_journal_stats_t *st);

/* ---- snapshots ----
 * The core writes its live state as records into a snapshot taken at the current lsn
 * L (everything appended so far is reflected in the state; later records are replayed
 * over it and must be idempotent). Commit: fdatasync, rename to snap-L.hqs, fsync the
 * directory, then delete what no longer matters (keeping the previous snapshot and the
 * segments it needs as a fallback). */

/* Starts snap-L.hqs.tmp. NULL with err on I/O failure. */
hq_jsnap_t *hq_journal_snapshot_begin(hq_journal_t *j, hq_err_t *err);
/* Lsn the snapshot covers. */
uint64_t hq_jsnap_lsn(const hq_jsnap_t *s);
/* Adds a record (buffered; written in 1 MiB chunks). Returns 0 or -1 with err. */
int hq_jsnap_add(hq_jsnap_t *s, const hq_jrec_t *rec, hq_err_t *err);
/* Finishes the file and hands it to the writer for the durable steps; cb runs on the
 * main loop when done (errnum 0) or failed. Takes ownership of *s. Returns 0, or -1
 * (the snapshot was abandoned) when the last chunk could not be written. */
int hq_jsnap_commit(hq_jsnap_t **s, hq_journal_done_fn *cb, void *arg, hq_err_t *err);
/* Abandons a snapshot (removes the tmp file). NULL-safe. */
void hq_jsnap_abort(hq_jsnap_t **s);

/* ---- test hooks (process-wide) ---- */

enum hq_jfault_op { HQ_JFAULT_WRITE = 0, HQ_JFAULT_SYNC, HQ_JFAULT_CREATE, HQ_JFAULT_COUNT };
/* The next `count` operations of that kind fail with errnum (count < 0: all of them,
 * 0: none). */
void hq_journal_test_fault(enum hq_jfault_op op, int errnum, int count);
/* Snapshot commit steps: 1 tmp written, 2 tmp synced, 3 renamed, 4 dir synced, 5 old
 * files deleted. A value n in 1..4 makes the writer stop after step n as if the broker
 * died there (0 = off). */
void hq_journal_test_snap_stop(int after_step);

#endif
