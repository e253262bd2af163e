/* The journal inside the broker (--journal PATH): restore before the sockets bind,
 * durability points of client mutations, the event hook that records task and worker
 * changes, dependants released only once their parent's end is durable. Private to
 * broker/. Without --journal b->jr is NULL and every function here is a no-op or
 * applies at once, so behaviour is unchanged.
 *
 * Client mutations (submit, open, close, cancel, forget) are applied only after their
 * records are durable: the handler checks what it can, reserves new job ids, appends
 * the records, and the completion callback applies the change and replies. Replay runs
 * the same apply functions in lsn order, so a change that the live apply refuses (a
 * submit into a job closed meanwhile) is refused on replay too. If the journal cannot
 * write, nothing is applied and the client gets ERROR HQ_ERR_UNAVAILABLE
 * "journal unavailable: <reason>". */
#ifndef HQ_BROKER_JGLUE_H
#define HQ_BROKER_JGLUE_H

#include <stdbool.h>
#include <stdint.h>

#include "ctx.h"
#include "journal/journal.h"

typedef struct hq_jglue hq_jglue_t;

/* Default grace period for re-adoption after a restart: 2 x the worker's reconnect
 * back-off cap (32 s). HQ_READOPT_GRACE (a duration, "0s" = off) overrides it. */
#define HQ_READOPT_GRACE_NS (64 * HQ_NS_PER_SEC)

/* Opens PATH, replays it into b's tables (the journal's server uid replaces
 * b->access.server_uid), starts the writer and makes server_start{epoch + 1} durable.
 * Call before hq_loop_start (no socket is bound yet). Logs the replay summary. */
int hq_jr_open(hq_broker_t *b, const char *path, uint64_t flush_ns, hq_err_t *err);
/* After hq_loop_start: attaches the writer to the loop, hooks the event point and
 * starts automatic snapshots (the restored tasks: hq_tasks_resume). */
int hq_jr_attach(hq_broker_t *b, hq_err_t *err);
/* How many restored tasks wait for their workers to come back, and for how long
 * (*grace_ns); 0 without a journal or re-adoption. */
uint32_t hq_jr_readopt_waiting(const hq_broker_t *b, uint64_t *grace_ns);
/* Writes server_stop, commits and closes; ends the event readers (with or without a
 * journal). NULL-safe (journal off). */
void hq_jr_close(hq_broker_t *b);
/* The journal, or NULL when off. */
hq_journal_t *hq_jr_journal(const hq_broker_t *b);
/* Journal path (NULL when off). */
const char *hq_jr_path(const hq_broker_t *b);
/* This run's server_start epoch (0 when off). */
uint64_t hq_jr_epoch(const hq_broker_t *b);

/* Applies a client mutation and replies (called when durable, or at once without a
 * journal). */
typedef void(hq_jr_apply_fn)(hq_broker_t *b, hq_creq_t *req, void *ctx);
typedef void(hq_jr_free_fn)(void *ctx);
/* Makes recs durable and then calls apply(b, req, ctx); without a journal calls it
 * now. On a journal failure the client gets ERROR HQ_ERR_UNAVAILABLE and apply is not
 * called. Takes req->msg (req->stolen is set) and ctx (freed with free_fn, nullable).
 * Returns 0. */
int hq_jr_commit(hq_broker_t *b, hq_creq_t *req, const hq_jrec_t *recs, uint32_t n,
                 hq_jr_apply_fn *apply, void *ctx, hq_jr_free_fn *free_fn);
/* True (and the request should be dropped unanswered) when the same request (routing
 * id and request id) is still waiting for durability: its reply will come. */
bool hq_jr_inflight(hq_broker_t *b, const hq_creq_t *req);
/* While on, task events are not recorded (a job_cancel record covers them). */
void hq_jr_quiet(hq_broker_t *b, bool on);
/* A dependant became ready because a dependency finished: it goes to the scheduler
 * once that finish is durable (at once without a journal). */
void hq_jr_ready_after_parent(hq_broker_t *b, uint32_t job_id, uint32_t task_id);
/* Appends one record (journal on); cb may be NULL. Returns the lsn or 0. */
uint64_t hq_jr_append(hq_broker_t *b, const hq_jrec_t *rec, hq_journal_done_fn *cb, void *arg);
/* Records t's whole state (a task_state record, as in snapshots) when the live broker
 * decided something replay would not derive from the records alone: a task requeued
 * from a lost worker without counting a crash (its ASSIGN never left), or rejected by
 * its worker. Held and appended again if the write fails, like task results. */
void hq_jr_task_state(hq_broker_t *b, const hq_job_t *j, const hq_task_t *t);

/* ---- replay into tables (restore.c; tests use it directly) ---- */
typedef struct hq_jr_state hq_jr_state_t;
/* Replay context over b's tables. */
hq_jr_state_t *hq_jr_state_new(hq_broker_t *b);
/* Applies one record (the hq_journal_replay_fn shape). */
int hq_jr_apply_record(hq_jrec_t *rec, bool from_snapshot, void *arg, hq_err_t *err);
/* Ends a replay: running tasks back to waiting with a new instance (crash counter
 * unchanged), dependency counts, job finish times, worker table size. Returns the
 * journal epoch seen last; frees the state. */
uint64_t hq_jr_state_finish(hq_jr_state_t **p);
/* Records applied so far. */
uint64_t hq_jr_state_records(const hq_jr_state_t *s);
/* The same as hq_jr_state_finish, also telling how many tasks wait for re-adoption. */
uint64_t hq_jr_state_end(hq_jr_state_t **p, uint32_t *n_readopt);
/* With on, hq_jr_state_finish leaves running tasks RUNNING with their instance and
 * HQ_TF_READOPT set (waiting for re-adoption) instead of sending them back to
 * waiting. */
void hq_jr_state_readopt(hq_jr_state_t *s, bool on);
/* The server uid of the last server_start seen ("" = none). */
const char *hq_jr_state_uid(const hq_jr_state_t *s);

#endif
