/* The journal's public face, for readers outside the broker (`hq journal export` and
 * `hq journal verify`): the typed journal record, opening a journal directory, replaying
 * it with a per-record callback, what the replay found, and the NDJSON events of a
 * record. The broker's writer API (appends, group commit, snapshots) is journal.h; the
 * file format is described in broker/JOURNAL.md.
 *
 * Reading a journal offline:
 *   hq_journal_opts_t o = {.read_only = true};
 *   j = hq_journal_open(path, &o, &err);           read headers, refuse versions
 *   hq_journal_replay(j, fn, arg, &report, &err);  fn sees every record in lsn order
 *   hq_journal_close(&j);
 */
#ifndef HQ_BROKER_HQ_JOURNAL_H
#define HQ_BROKER_HQ_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hq_err.h"
#include "hq_msg.h"

/* ---- records ---- */

/* Record types (the u8 at the head of every payload). Never renumber. */
enum hq_jrec_type {
    HQ_JR_SERVER_START = 1,       /* server_start{epoch, uid} */
    HQ_JR_SERVER_STOP = 2,        /* server_stop{} */
    HQ_JR_JOB_SUBMIT = 3,         /* job_submit{job, SUBMIT frame} */
    HQ_JR_JOB_OPEN = 4,           /* job_open{job, name, max_fails} */
    HQ_JR_JOB_CLOSE = 5,          /* job_close{job} */
    HQ_JR_JOB_CANCEL = 6,         /* job_cancel{job, reason} */
    HQ_JR_JOB_FORGET = 7,         /* job_forget{job} */
    HQ_JR_TASK_STARTED = 8,       /* task_started{job, task, instance, worker, epoch} */
    HQ_JR_TASK_FINISHED = 9,      /* task_finished{job, task, instance} */
    HQ_JR_TASK_FAILED = 10,       /* task_failed{job, task, instance, error} */
    HQ_JR_TASKS_CANCELED = 11,    /* tasks_canceled{job, ranges} */
    HQ_JR_TASKS_ABORTED = 12,     /* tasks_aborted{job, ranges} */
    HQ_JR_WORKER_UP = 13,         /* worker_up{worker, epoch, REGISTER frame or empty} */
    HQ_JR_WORKER_LOST = 14,       /* worker_lost{worker, reason code, reason text} */
    HQ_JR_ID_HIGHWATER = 15,      /* id_highwater{job, worker} */
    HQ_JR_TASK_STATE = 16,        /* task_state{...}: a task's full state (snapshots) */
    HQ_JR_SNAP_END = 17,          /* internal: last record of a snapshot{count} */
    HQ_JR_TASKS_STARTED = 18,     /* tasks_started{job, worker, epoch, [task, instance]...} */
    HQ_JR_TASKS_FINISHED = 19,    /* tasks_finished{job, [task, instance]...} */
    HQ_JR_WORKER_OVERVIEW = 20,   /* worker_overview{worker, hw-state JSON text} */
    HQ_JR_TASKS_STARTED_V = 21,   /* tasks_started with the resource variant k > 0 */
    HQ_JR_ALLOC_QUEUE = 22,       /* alloc_queue{queue, parameters JSON text} */
    HQ_JR_ALLOC_QUEUE_STATE = 23, /* alloc_queue_state{queue, state: 0 active 1 paused 2 removed} */
    HQ_JR_ALLOC_QUEUED = 24,      /* alloc_queued{queue, allocation id, workdir, worker count} */
    HQ_JR_ALLOC_STATE = 25,       /* alloc_state{queue, allocation id, state: enum hq_astate} */
    HQ_JR_TASK_STARTED_MN = 26,   /* task_started_mn{job, task, instance, epoch, variant,
                                     [worker...]}: a multi-node task on its nodes, root first */
    HQ_JR_TYPE_MAX = 26
};

/* One task instance of tasks_started / tasks_finished. */
typedef struct hq_jinst {
    uint32_t task;     /* task id */
    uint32_t instance; /* its instance id */
} hq_jinst_t;

/* Inclusive id range of tasks_canceled / tasks_aborted. */
typedef struct hq_jrange {
    uint32_t first; /* first id */
    uint32_t last;  /* last id, >= first */
} hq_jrange_t;

/* One record, typed. On append the caller fills type and the body member (pointers
 * borrowed); the journal sets lsn and fills wall_ns when 0. On replay every pointer
 * points into reader memory valid until the callback returns, except job_submit.msg
 * and worker_up.msg, which the callback may take by setting the field to NULL. */
typedef struct hq_jrec {
    enum hq_jrec_type type; /* record type */
    uint64_t lsn;           /* log sequence number (1, 2, ...; index in snapshots) */
    uint64_t wall_ns;       /* wall time of the event */
    union {
        struct {
            uint64_t epoch;  /* broker epoch, previous + 1 */
            const char *uid; /* server uid (nullable) */
        } server_start;
        struct {
            uint32_t job;              /* job id */
            const hq_submit_t *submit; /* append: the SUBMIT body */
            hq_msg_t *msg;             /* replay: decoded SUBMIT (owned, may be stolen) */
        } job_submit;
        struct {
            uint32_t job;       /* job id */
            const char *name;   /* nullable */
            bool has_max_fails; /* --max-fails given */
            uint32_t max_fails;
        } job_open;
        struct {
            uint32_t job; /* job_close, job_forget */
        } job;
        struct {
            uint32_t job;       /* job id */
            const char *reason; /* nullable */
        } job_cancel;
        struct {
            uint32_t job, task, instance; /* the task instance */
            uint32_t worker;              /* task_started: worker id */
            uint64_t epoch;               /* task_started: worker session epoch */
            const char *error;            /* task_failed: error text (nullable) */
        } task;
        struct {
            uint32_t job;              /* job id */
            uint32_t n;                /* ranges */
            const hq_jrange_t *ranges; /* sorted, non-overlapping */
        } tasks;
        struct {
            uint32_t job;            /* job id */
            uint32_t worker;         /* tasks_started: worker id */
            uint64_t epoch;          /* tasks_started: worker session epoch */
            uint32_t variant;        /* tasks_started_v: resource variant (> 0) */
            uint32_t n;              /* instances (1..HQ_JMAX_INSTS of journal_rec.h) */
            const hq_jinst_t *insts; /* in the order they happened */
        } batch;
        struct {
            uint32_t worker;          /* worker id */
            uint64_t epoch;           /* session epoch */
            const hq_register_t *reg; /* append: REGISTER body or NULL */
            hq_msg_t *msg;            /* replay: decoded REGISTER or NULL (owned) */
        } worker_up;
        struct {
            uint32_t worker;  /* worker id */
            uint32_t reason;  /* core's code (e.g. enum hq_wstate) */
            const char *text; /* nullable */
        } worker_lost;
        struct {
            uint32_t worker;      /* worker id */
            const char *hw_state; /* the "hw-state" JSON object as text */
        } overview;
        struct {
            uint32_t job, worker; /* highest ids handed out */
        } highwater;
        struct {
            uint32_t job, task;        /* the task */
            uint8_t state;             /* enum hq_tstate */
            uint32_t instance;         /* current instance id */
            uint32_t worker;           /* last worker (0 = none) */
            uint32_t crashes;          /* crash counter */
            uint64_t start_ns, end_ns; /* 0 = not yet */
            const char *error;         /* nullable */
        } task_state;
        struct {
            uint64_t count; /* records before this one */
        } snap_end;
        struct {
            uint32_t job, task, instance; /* the task instance */
            uint64_t epoch;               /* the root's session epoch */
            uint32_t variant;             /* its resource variant */
            uint32_t n;                   /* nodes (2..HQ_JMAX_NODES of journal_rec.h) */
            const uint32_t *workers;      /* worker ids, root first */
        } nodes;
        struct {
            uint32_t queue;   /* allocation queue id */
            uint32_t state;   /* alloc_queue_state, alloc_state: the new state */
            uint32_t count;   /* alloc_queued: workers asked for */
            const char *id;   /* alloc_queued, alloc_state: the manager's job id */
            const char *text; /* alloc_queue: parameters JSON; alloc_queued: workdir */
        } alloc;
    } u;
} hq_jrec_t;

/* "task-finished"-style name of a type, or "unknown". */
const char *hq_jrec_name(uint32_t type);

/* ---- opening and replaying a journal ---- */

typedef struct hq_journal hq_journal_t;

typedef struct hq_journal_opts {
    uint64_t segment_size;    /* bytes preallocated per segment (0 = 64 MiB) */
    uint64_t flush_period_ns; /* hard deadline for any record to be synced (0 = 100 ms) */
    uint64_t group_window_ns; /* unused (groups no longer wait for a quiet window) */
    size_t group_bytes;       /* most bytes per group commit (0 = 1 MiB) */
    uint32_t group_records;   /* most records per group commit (0 = 4096) */
    bool salvage;             /* replay keeps the valid prefix of a corrupted journal */
    bool read_only;           /* no lock, no repair, no writer (export, verify) */
    bool coalesce_finished;   /* consecutive task_finished appends of one job are written
                               * as one tasks_finished record (same lsn for all of them) */
    const char *uid;          /* server uid for file headers (nullable, <= 16 chars) */
} hq_journal_opts_t;

/* What replay found. */
typedef struct hq_journal_report {
    uint64_t snapshot_lsn; /* lsn of the snapshot loaded (0 = none) */
    uint64_t snap_records; /* records yielded from it */
    uint64_t records;      /* records yielded from segments */
    uint64_t last_lsn;     /* last lsn of the journal (0 = empty) */
    uint64_t torn_bytes;   /* bytes of a torn tail truncated (0 = none) */
    uint64_t discarded;    /* bytes of never-acked records after a failed write */
    uint32_t segments;     /* segments read */
    bool salvaged;         /* corruption was found and the prefix kept (opts.salvage) */
    uint32_t skipped;      /* records the callback could not apply, skipped (opts.salvage) */
    char note[1024];       /* human summary of anything unusual ("" = clean) */
} hq_journal_report_t;

/* Opens PATH (a directory, created 0700 if missing): takes flock(LOCK_EX) on PATH/LOCK
 * (unless read_only), records our pid there, and checks every file header. Fails with
 * "journal PATH is in use by another broker (pid N)" when locked, with a precise
 * version message for files of another format (changing nothing), or on I/O errors.
 * opts may be NULL (defaults). Returns NULL on failure. */
hq_journal_t *hq_journal_open(const char *path, const hq_journal_opts_t *opts, hq_err_t *err);

/* Called for each record in replay order: first the snapshot's (from_snapshot), then
 * the segments' with lsn > the snapshot's lsn. Return 0 to go on, -1 (with err) to
 * abort the replay, 1 (with err saying why) when this record cannot be applied: the
 * replay then fails naming the record's position, or with opts.salvage skips it and
 * reports it in report->note and report->skipped. The record's pointers are valid until return,
 * except the owned job_submit.msg / worker_up.msg, which fn may take (set the field to NULL). */
typedef int(hq_journal_replay_fn)(hq_jrec_t *rec, bool from_snapshot, void *arg, hq_err_t *err);

/* Replays the journal once (fn may be NULL to only validate). A torn tail of the final
 * segment is truncated (unless read_only) and reported. Corruption anywhere else fails
 * with "segment seg-N.hqj offset O: why" after the records before it were yielded;
 * with opts.salvage it instead keeps that prefix (truncates the damaged segment, sets
 * later ones aside as *.salvaged) and says what was lost in report->note. report may
 * be NULL. Returns 0 or -1. */
int hq_journal_replay(hq_journal_t *j, hq_journal_replay_fn *fn, void *arg,
                      hq_journal_report_t *report, hq_err_t *err);

/* Stops the writer after committing what was appended, closes files, unlocks. NULL-safe. */
void hq_journal_close(hq_journal_t **p);

/* ---- events ---- */

/* Receives one NDJSON line (no newline; valid only during the call). */
typedef void(hq_jline_fn)(const char *line, void *arg);

/* Formats a record (decoded by replay, or as appended) as its events:
 * {"event":{…,"type":"<kebab>"},"time":"<RFC3339>"} with sorted keys. Bookkeeping
 * records give none, ranges give one line per task. Returns the number of lines. The
 * same lines are printed by `hq journal export` and served by the running server
 * (cli/REFERENCE.md §3.8). */
uint64_t hq_jrec_ndjson(const hq_jrec_t *rec, hq_jline_fn *fn, void *arg);
/* The line of a job-completed event (no record holds it: a broker without a journal
 * makes it from its state, journal/rebuild.c). Returns 1. */
uint64_t hq_jline_job_completed(uint32_t job, uint64_t wall_ns, hq_jline_fn *fn, void *arg);

#endif
