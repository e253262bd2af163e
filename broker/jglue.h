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

#include "core.h"
#include "journal/journal.h"

typedef struct hq_jglue hq_jglue_t;

/* Task flag bits beyond HQ_TF_HOLDS (jobs.h). */
#define HQ_TF_READOPT 2u /* restored as running: waits for its worker to come back */
#define HQ_TF_ADOPTED 4u /* held by t->worker without scheduler capacity (re-adopted) */
#define HQ_TF_SENT 8u    /* an ASSIGN of this instance went to t->worker: it may have started */

/* Whether t, leaving its worker (lost, stopped or rejecting it), may have started
 * there: RUNNING, or ASSIGNED with HQ_TF_SENT. This is what the crash counter and
 * never-restart go by (the rule and why: hq_broker_requeue in tasks.c). */
bool hq_task_maybe_started(const hq_task_t *t);

/* Default grace period for re-adoption after a restart: 2 x the worker's reconnect
 * back-off cap (32 s). HQ_READOPT_GRACE (a duration, "0s" = off) overrides it. */
#define HQ_READOPT_GRACE_NS (64 * HQ_NS_PER_SEC)

/* Opens PATH, replays it into b's tables (the journal's server uid replaces
 * b->access.server_uid), starts the writer and makes server_start{epoch + 1} durable.
 * Call before hq_core_start (no socket is bound yet). Logs the replay summary. */
int hq_jr_open(hq_broker_t *b, const char *path, uint64_t flush_ns, hq_err_t *err);
/* After hq_core_start: attaches to the loop, hooks the event point and hands the
 * restored tasks to the scheduler. */
int hq_jr_attach(hq_broker_t *b, hq_err_t *err);
/* Writes server_stop, commits and closes. NULL-safe (journal off). */
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

/* ---- apply functions shared by live requests and replay (submit.c) ---- */
/* A SUBMIT into job_id (a new job when msg's job_id is 0; job_id then is the reserved
 * id). Takes msg on success (msg untouched on failure).
 * Returns 0, -1 (refused: HQ_ERR_INVALID) or -2 (no such job: HQ_ERR_NOT_FOUND) with
 * err. job_id 0 (journal off) takes the next id at apply time. */
int hq_submit_apply(hq_broker_t *b, uint32_t job_id, hq_msg_t *msg, uint64_t wall_ns,
                    hq_err_t *err);
/* Creates the open job job_id (0: the next id). */
hq_job_t *hq_open_apply(hq_broker_t *b, uint32_t job_id, const char *name, bool has_max_fails,
                        uint32_t max_fails, uint64_t wall_ns);
/* Forgets a complete job (gives back capacity its canceled tasks still hold). */
void hq_job_forget_one(hq_broker_t *b, hq_job_t *j);
/* Reserves the next job id (ids strictly ascending, never reused). */
uint32_t hq_job_id_reserve(hq_broker_t *b);
/* Makes room in b->jobs for id. */
void hq_jobs_reserve_slot(hq_broker_t *b, uint32_t id);

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
/* With on, hq_jr_state_finish leaves running tasks RUNNING with their instance and
 * HQ_TF_READOPT set (waiting for re-adoption) instead of sending them back to
 * waiting. */
void hq_jr_state_readopt(hq_jr_state_t *s, bool on);
/* The server uid of the last server_start seen ("" = none). */
const char *hq_jr_state_uid(const hq_jr_state_t *s);

/* ---- re-adoption (tasks.c) ---- */
enum hq_adopt {
    HQ_ADOPT_YES = 0,   /* the worker runs the instance the broker expects: adopt it */
    HQ_ADOPT_ENDED = 1, /* the task already ended (or was canceled): kill it */
    HQ_ADOPT_STALE = 2, /* unknown task or another instance: kill it */
};
/* The adoption rule for a reconnecting worker's report r about task t (NULL: unknown):
 * the instance must be the task's current one, and the task either restored as
 * running (HQ_TF_READOPT) or still held by the worker's previous session
 * old_worker_id (a short outage the broker survived). */
enum hq_adopt hq_task_adopt_check(const hq_task_t *t, const hq_task_ref_t *r,
                                  uint32_t old_worker_id);
/* Adopts t (after HQ_ADOPT_YES) for w: RUNNING on w with the same instance, no
 * scheduler capacity (HQ_TF_ADOPTED); records a task_started for it. */
void hq_broker_adopt(hq_broker_t *b, hq_job_t *j, hq_task_t *t, hq_worker_t *w);
/* Grace period over: restored running tasks nobody adopted wait again with a new
 * instance (crash counter unchanged). Returns how many. */
uint32_t hq_broker_readopt_expire(hq_broker_t *b);
/* The worker that held old_worker_id before the restart registered again and its
 * report (adopted at once) did not include these: restored running tasks recorded on
 * it wait again at once, as at the grace expiry. Returns how many. */
uint32_t hq_broker_readopt_unreported(hq_broker_t *b, uint32_t old_worker_id);

#endif
