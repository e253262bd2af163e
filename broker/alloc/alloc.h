/* The automatic allocator (cli/REFERENCE.md §3.7): the broker's allocation queues and
 * what drives them. Fed by the broker's events (workers connecting and leaving, with
 * the manager job id they detected) and by the loop's tick, it computes each queue's
 * demand from the waiting tasks, submits allocations through sbatch/qsub run as child
 * processes (never blocking the loop), follows their state from their workers and a
 * bounded-rate poll of scontrol/qstat, cancels them when no longer needed, and pauses
 * a queue after repeated failures with a growing back-off. The handlers of the
 * `hq alloc` requests (broker/allocreq.c) call the functions below. */
#ifndef HQ_ALLOC_ALLOC_H
#define HQ_ALLOC_ALLOC_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "ctx.h"
#include "hq_err.h"
#include "journal/hq_journal.h"

typedef struct hq_alloc hq_alloc_t;

/* Starts the allocator of broker b (its allocation files go under run_dir/autoalloc)
 * and hooks it to b's events. */
hq_alloc_t *hq_alloc_new(hq_broker_t *b);
/* Unhooks and frees it; running manager commands are killed. */
void hq_alloc_destroy(hq_alloc_t **a);
/* The loop's tick: collects ended manager commands, polls, submits, cancels. */
void hq_alloc_tick(hq_broker_t *b);
/* `hq server stop`: cancels the queued and running allocations of every queue and
 * waits (bounded) for the cancel commands. */
void hq_alloc_shutdown(hq_broker_t *b);

/* ALLOC_ADD: checks the parameters, runs the trial allocation unless the document
 * says dry_run false, creates the queue (unless dry_run_only) and answers req, now on
 * a bad request or later when the trial allocation's commands have ended. */
void hq_alloc_add(hq_broker_t *b, hq_creq_t *req, const char *params, bool dry_run_only);
/* ALLOC_LIST: the queues' objects, sorted by id. */
json_t *hq_alloc_list(hq_broker_t *b);
/* ALLOC_INFO: the allocations of a queue (NULL when unknown); notes[0..2) get the
 * reply's log lines ("LEVEL\ttext", or NULL): why the queue submits nothing now and
 * its last failure (caller frees). */
json_t *hq_alloc_info(hq_broker_t *b, uint32_t queue_id, char **notes);
/* ALLOC_CTL: "pause", "resume" or "remove" (force: cancel its allocations). 0, or -1
 * with the message in err (unknown queue, running allocations without force). */
int hq_alloc_ctl(hq_broker_t *b, uint32_t queue_id, const char *action, bool force, hq_err_t *err);
/* ALLOC_LOG: the working directory of an allocation (NULL when unknown). */
const char *hq_alloc_workdir(hq_broker_t *b, const char *alloc_id);

/* Journal replay: applies an automatic allocation record (types 22 to 25). */
void hq_alloc_restore(hq_broker_t *b, const hq_jrec_t *rec);
/* Snapshots: calls fn with each record that rebuilds the queues and their
 * allocations; stops at fn's first non-zero result and returns -1. */
typedef int(hq_alloc_rec_fn)(const hq_jrec_t *rec, void *arg);
int hq_alloc_records(const hq_broker_t *b, hq_alloc_rec_fn *fn, void *arg);
/* After a restart, once this run's access file exists: writes it into the run
 * directories that restored allocations gave their workers (--server-dir), so that
 * those workers reconnect. */
void hq_alloc_share_access(hq_broker_t *b);

#endif
