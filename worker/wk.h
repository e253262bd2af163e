/* Private interfaces of hq-worker: one section per file of worker/. Nothing here is
 * used outside the worker component (tests include it to reach the pure modules). */
#ifndef HQ_WK_H
#define HQ_WK_H

#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <czmq.h>

#include "hq_args.h"
#include "hq_err.h"
#include "hq_msg.h"
#include "hq_outbox.h"
#include "hq_resource.h"
#include "hq_streamfmt.h"
#include "hq_util.h"
#include "overview.h"

/* ---- paths.c: filesystem helpers (placeholders in task paths: hq_placeholder.h) ---- */

/* Creates the missing parent directories of path (mode 0777 & ~umask). 0 / -1 errno. */
int wk_mkdir_parents(const char *path);
/* Removes a directory tree (best effort). */
void wk_rm_tree(const char *path);

/* ---- alloc.c: the local resource allocator ---- */

typedef struct wk_alloc wk_alloc_t;

/* Tracks free indices/amounts of the worker's resources (borrowed list, copied). */
wk_alloc_t *wk_alloc_new(const hq_wres_list_t *res);
void wk_alloc_destroy(wk_alloc_t **a);
/* Coupling weights (indices into the list given to wk_alloc_new): when a request
 * takes several grouped resources, group choices with a higher total weight win. */
void wk_alloc_set_coupling(wk_alloc_t *a, const hq_coupling_t *w, uint32_t n);

/* Tries to allocate every entry of v. Returns 0 and fills *out (array of
 * v->n_entries, caller releases with wk_alloc_release and frees with
 * wk_ralloc_free), 1 when it does not fit now, -1 when it can never fit (unknown
 * resource or more than the capacity). Fractional amounts: the whole part takes
 * free indices, the fraction takes a share of one more index (the last label). */
int wk_alloc_try(wk_alloc_t *a, const hq_rvariant_t *v, hq_ralloc_t **out);
/* Gives back what wk_alloc_try handed out. */
void wk_alloc_release(wk_alloc_t *a, const hq_ralloc_t *allocs, uint32_t n);
void wk_ralloc_free(hq_ralloc_t *allocs, uint32_t n);
/* Whole units of the resource named (cpus: number of cpus), 0 if absent. */
uint32_t wk_alloc_units(const wk_alloc_t *a, const char *name);

/* ---- detect.c: resource detection ---- */

enum wk_detect_bits {
    WK_DETECT_CPUS = 1,
    WK_DETECT_MEM = 2,
    WK_DETECT_NVIDIA = 4,
    WK_DETECT_AMD = 8,
    WK_DETECT_ALL = 15,
};

/* Parses --detect-resources (all|none|comma list). -1 with a message on error. */
int wk_detect_parse(const char *s, unsigned *bits, hq_err_t *err);

/* Detects cpus with hwloc: PUs (first PU per core with no_ht) grouped by NUMA node,
 * limited to mask (NULL = no limit; ignored for a HWLOC_SYNTHETIC topology). One
 * group -> list. Fills out (name "cpus"). */
int wk_detect_cpus(bool no_ht, const cpu_set_t *mask, hq_wres_t *out, hq_err_t *err);

/* Detects the resources in bits (detection order: cpus, gpus, mem) and appends them
 * to l, skipping names already present in l. */
int wk_detect_all(unsigned bits, bool no_ht, hq_wres_list_t *l, hq_err_t *err);

/* Appends r to l (takes ownership of r's contents). */
void wk_wres_list_push(hq_wres_list_t *l, hq_wres_t *r);
/* Index of name in l, or -1. */
int wk_wres_list_find(const hq_wres_list_t *l, const char *name);
/* Sorts by name (byte order). */
void wk_wres_list_sort(hq_wres_list_t *l);

/* ---- manager.c: SLURM/PBS detection ---- */

typedef struct wk_manager_info {
    enum hq_manager manager; /* NONE when not detected */
    char *job_id;            /* allocation id (owned) or NULL */
    uint64_t remaining_ns;   /* remaining wall time, 0 = unknown */
} wk_manager_info_t;

/* which: "detect", "none", "pbs", "slurm". Never fails on a broken environment:
 * a missing wall time just logs a warning. -1 only for an invalid `which`. */
int wk_manager_detect(const char *which, wk_manager_info_t *out, hq_err_t *err);
void wk_manager_info_clear(wk_manager_info_t *m);

/* Parses "[D-]HH:MM:SS" / "MM:SS" / "SS" (SLURM, PBS walltime). -1 on error. */
int wk_parse_walltime(const char *s, uint64_t *ns);

/* ---- launch.c: task processes ---- */

typedef struct wk_env {
    uint32_t n;   /* entries used */
    uint32_t cap; /* allocated */
    char **vars;  /* "K=V" strings, owned; NULL-terminated when built */
} wk_env_t;

/* Sets K=V (replacing an existing K). */
void wk_env_set(wk_env_t *e, const char *key, const char *value);
const char *wk_env_get(const wk_env_t *e, const char *key);
void wk_env_clear(wk_env_t *e);

/* What a task needs to know about its worker to build its environment. */
typedef struct wk_task_ctx {
    const char *hq_path;    /* path of the hq binary or NULL */
    const char *server_uid; /* for %{SERVER_UID} */
    const char *work_dir;   /* task dirs go here */
    const char *hostname;   /* this worker */
    const char *server_dir; /* the worker's server dir: HQ_SERVER_DIR for `hq task notify` */
} wk_task_ctx_t;

/* Builds the task environment of cli/REFERENCE.md §1.7 on top of the worker's environ. */
void wk_env_build(wk_env_t *e, const wk_task_ctx_t *ctx, const hq_assign_def_t *d,
                  const hq_assign_task_t *t, const hq_ralloc_t *allocs, uint32_t n_allocs,
                  const char *task_dir);

/* Everything needed to spawn one process. */
typedef struct wk_spawn {
    char **argv;               /* NULL-terminated */
    char **envp;               /* NULL-terminated */
    const char *cwd;           /* may be NULL */
    const char *out;           /* stdout path, NULL = /dev/null */
    const char *err;           /* stderr path */
    int out_pipe;              /* > 0: fd + 1 of a pipe's write end for stdout instead of out */
    int err_pipe;              /* ... for stderr */
    const uint8_t *stdin_data; /* NULL/0 = /dev/null */
    uint32_t stdin_len;
} wk_spawn_t;

/* Spawns a process in its own process group with PR_SET_PDEATHSIG(SIGKILL).
 * Returns the pid, or -1 with *error set to the task error text (caller frees). */
pid_t wk_spawn(const wk_spawn_t *s, char **error);

/* Error text for a wait status (cli/REFERENCE.md §0.2). Caller frees; NULL for exit 0. */
char *wk_exit_error(int status);
/* Appends s as Rust's Debug formatting of a string shows it: quoted and escaped. */
void wk_debug_str(hq_buf_t *b, const char *s);
/* The "Cannot execute ..." text for a spawn failure, with HyperQueue's hint lines
 * (cwd: the task's working directory, NULL = the worker's). Caller frees. */
char *wk_spawn_error(char *const *argv, const char *cwd, int errnum);

/* ---- the worker context (worker.c, loop.c, connect.c, link.c, tasks.c) ---- */

typedef struct wk_batch wk_batch_t;
typedef struct wk wk_t;
typedef struct wk_stream wk_stream_t;

enum wk_task_state { WK_TASK_QUEUED = 0, WK_TASK_RUNNING = 1 };

/* One assigned task instance. */
typedef struct wk_task {
    struct wk_task *next;         /* list link (queue or running list) */
    wk_batch_t *batch;            /* the ASSIGN message that owns def/info */
    const hq_assign_def_t *def;   /* borrowed from batch */
    const hq_assign_task_t *info; /* borrowed from batch */
    enum wk_task_state state;
    pid_t pid;           /* running: the process (= its process group) */
    hq_ralloc_t *allocs; /* running: resources held */
    uint32_t n_allocs;
    char *task_dir;         /* HQ_TASK_DIR or NULL */
    char *out_path;         /* resolved stdout file (for rm-if-finished) */
    char *err_path;         /* resolved stderr file */
    int limit_timer;        /* zloop timer id of the time limit, -1 */
    int kill_timer;         /* zloop timer id of the SIGKILL escalation, -1 */
    bool canceled;          /* killed because of CANCEL */
    bool timed_out;         /* killed by its time limit */
    bool silent;            /* killed because the worker stops: no event */
    bool carried;           /* started before the last reconnect (the broker's scheduler
                               does not count it) */
    uint64_t started_ns;    /* CLOCK_MONOTONIC start (task duration estimate) */
    int status;             /* wait status once reaped */
    uint64_t ended_wall_ns; /* wall time of the reap (the end event's time), 0 */
    wk_stream_t *stream;    /* the stream its output goes to (capture.c), or NULL */
    int pipe_fd[2];         /* read ends of its stdout/stderr pipes, -1 */
    uint64_t stream_gen;    /* generation of the stream buffer its last chunk went into */
    char *stream_error;     /* "Streaming: ..." once its stream lost data, or NULL */
    bool capture_due;       /* ran through a capture period start (capture.c) */
    bool polled;            /* its pipes are in the loop's poll set */
    struct wk *w;           /* owning worker (for timer callbacks) */
} wk_task_t;

/* The worker: a list of its parts, created in order by hq_worker_main. */
struct wk {
    hq_global_t g;         /* global flags */
    hq_worker_conf_t conf; /* what REGISTER reports */
    uint32_t prefetch;     /* tasks queued beyond the cpus (registered maximum) */
    bool node_of;          /* a secondary node of a multi-node task (NODE_OF) */
    uint32_t slots;        /* credit: tasks held at once */
    uint32_t ncpus;        /* whole cpus of this worker (>= 1) */
    uint32_t slots_long;   /* credit for long or not yet measured tasks */
    bool short_tasks;      /* tasks are short: deep queue, longer result batches */
    uint64_t avg_run_ns;   /* moving average of recent task run times */
    uint64_t n_timed;      /* tasks in that average */
    zsock_t *sock;         /* DEALER to the broker */
    void *handle;          /* its libzmq handle */
    zloop_t *loop;         /* the event loop */
    int sigfd;             /* signalfd: SIGCHLD, SIGTERM, SIGINT, SIGTSTP */
    int guard_fd;          /* socket to the orphan guard (guard.c), or -1 */
    uint32_t worker_id;    /* from REGISTERED */
    uint64_t epoch;        /* session epoch from REGISTERED */
    bool has_secret;       /* the session's reconnect secret (REGISTERED) is known */
    uint8_t secret[HQ_SESSION_SECRET_LEN]; /* presented when registering again */
    uint64_t seq;                          /* seq of our last reliable message (RESULTS) */
    uint64_t ack;             /* the broker's last reliable seq we processed (in order) */
    hq_outbox_t outbox;       /* our RESULTS the broker has not acknowledged */
    zsock_t *mon;             /* PAIR reading the DEALER's monitor events, or NULL */
    uint32_t n_handshakes;    /* handshakes of the current socket (> 1: it reconnected) */
    bool link_down;           /* the monitor saw the connection break, not yet back */
    uint32_t n_refused;       /* reconnects refused since then (no CONNECTED between) */
    uint64_t last_nack;       /* CLOCK_MONOTONIC of our last out-of-order heartbeat */
    char *server_uid;         /* for %{SERVER_UID} */
    uint64_t last_recv;       /* CLOCK_MONOTONIC ns of the last broker message */
    uint64_t idle_timeout_ns; /* effective idle timeout (0 = none) */
    wk_alloc_t *alloc;        /* local resource allocator */
    wk_task_t *queue;         /* assigned, not started (FIFO) */
    wk_task_t *running;       /* started */
    wk_task_t *reaped;        /* exited, their end not handled yet */
    wk_stream_t *streams;     /* stream writers (stream.c) */
    int stream_timer;         /* zloop timer writing the stream buffers (capture.c), -1 */
    int sync_timer;           /* zloop timer syncing the stream files, -1 */
    int capture_timer;        /* zloop timer reading the pipes of new tasks, -1 */
    uint32_t n_captured;      /* running tasks whose output is captured */
    uint32_t n_queued;
    uint32_t n_running;
    hq_task_event_t *ev; /* events of this loop turn */
    uint32_t n_ev;
    uint32_t cap_ev;
    hq_task_event_t *held; /* FAILED events of tasks killed from outside, held back */
    uint32_t n_held;
    uint32_t cap_held;
    int held_timer;         /* zloop timer releasing them, -1 */
    bool flush_armed;       /* the flush timer is set */
    bool flush_urgent;      /* ... with 0 ms */
    int flush_timer;        /* its zloop timer id */
    uint32_t low_water;     /* fewer queued tasks than this: flush at once */
    bool credit_dirty;      /* the credit changed since the last RESULTS */
    uint32_t last_credit;   /* credit last sent */
    bool draining;          /* take no new tasks (credit 0, assignments rejected) */
    bool lost;              /* the server is lost (finish-running: draining) */
    int exit_code;          /* exit code once the loop ends */
    int idle_timer;         /* zloop timer id of the idle timeout, -1 */
    wk_overview_t overview; /* --overview-interval: the previous CPU sample */
    wk_task_ctx_t tctx;     /* what tasks need to know about us */
    char *hq_path;          /* HQ for tasks */
    char *temp_root;        /* the hq-worker* dir made when --work-dir was not given, or NULL */
    /* finish-running: reconnecting after the server was lost */
    uint64_t peer_ack;     /* highest seq of ours the broker acknowledged */
    hq_task_event_t *kept; /* end events sent recently or not yet acknowledged */
    uint64_t *kept_seq;    /* seq of the RESULTS that carried each */
    uint64_t *kept_at;     /* CLOCK_MONOTONIC ns it was sent */
    uint32_t n_kept, cap_kept;
    uint32_t n_carried;           /* running tasks started before the last reconnect */
    bool reconnecting;            /* trying to register again */
    uint64_t reconnect_window_ns; /* how long (HQ_RECONNECT_WINDOW, default 60 s) */
    uint64_t reconnect_end;       /* CLOCK_MONOTONIC ns the window closes */
    uint64_t backoff_ns;          /* delay before the next attempt */
    int reconnect_timer;          /* zloop timer id of the next attempt, -1 */
};

/* link.c: messages to the broker. Events are buffered and flushed once per loop
 * turn (a dirty flag and a 0 ms timer). */
int wk_link_send(wk_t *w, uint8_t type, const hq_msg_t *body);
void wk_link_event(wk_t *w, const wk_task_t *t, enum hq_tev_kind kind, char *error,
                   bool with_allocs);
void wk_link_credit_changed(wk_t *w);
void wk_link_flush(wk_t *w);
/* seq / ack (proto/wire/PROTOCOL.md): a broker message of the current session arrived. Its ack
 * drops the RESULTS it covers and retransmits those it should cover by now; returns
 * whether to process the message (false for a duplicate or out-of-order ASSIGN or
 * CANCEL, which the broker sends again). */
bool wk_link_accept(wk_t *w, const hq_msg_t *msg);
/* Sends the unacknowledged RESULTS again, in order (force: the connection was
 * re-established, so whatever was in flight may be gone). */
void wk_link_retransmit(wk_t *w, bool force);
/* A new session (REGISTERED with its seq) or none: forgets the outbox. */
void wk_link_session_reset(wk_t *w, uint64_t peer_seq);
/* Holds back the event just added (a task killed by a signal the worker did not
 * send) for WK_HOLD_MS: when the worker's own SIGTERM follows within that time
 * (scancel and qdel signal the whole allocation), the tasks died with their worker,
 * not of their own fault, and wk_link_drop_held forgets their failures, so the
 * broker counts them as running on the lost worker (requeued, crash counter + 1);
 * otherwise the timer reports them as they are. */
#define WK_HOLD_MS 1000
void wk_link_hold_last(wk_t *w);
void wk_link_drop_held(wk_t *w);
void wk_link_events_clear(wk_t *w);
/* Reconnect: the task instances to report in REGISTER (running ones and the ends not
 * known to be applied). Caller frees. */
hq_task_ref_t *wk_link_reports(wk_t *w, uint32_t *n);
/* After REGISTERED on a reconnect: the ends not known to be applied go out again
 * (the broker ignores those it already has). */
void wk_link_resend_ends(wk_t *w);
void wk_link_kept_clear(wk_t *w);

/* tasks.c */
void wk_tasks_assign(wk_t *w, hq_msg_t **msg);
void wk_tasks_cancel(wk_t *w, const hq_cancel_t *c);
/* RETRACT: gives back (REJECTED events) the listed instances that wait in the queue;
 * those already started run on. */
void wk_tasks_retract(wk_t *w, const hq_cancel_t *c);
void wk_tasks_schedule(wk_t *w);
void wk_tasks_reap(wk_t *w);
void wk_tasks_drop_queued(wk_t *w, bool reject);
void wk_tasks_kill_all(wk_t *w);
uint32_t wk_tasks_held(const wk_t *w);

/* stream.c: the stream writers (one file per worker session and directory) */
/* "Streaming: \"<reason>\"" (caller frees). */
char *wk_stream_error_text(const char *reason);
/* The writer of dir, opening its file (and creating dir) on first use. NULL with *error
 * ("Cannot create stream directory <dir>: <reason>" or a Streaming error). */
wk_stream_t *wk_stream_get(wk_t *w, const char *dir, char **error);
/* Appends a chunk to the buffer (written by the caller's wk_stream_flush). */
void wk_stream_append(wk_stream_t *s, enum hq_sf_kind kind, const hq_assign_task_t *t,
                      const void *data, uint32_t len);
/* Whether a chunk of more data bytes would overfill the buffer. */
bool wk_stream_full(const wk_stream_t *s, uint32_t more);
/* Generation of the buffer (+ 1 at every write). */
uint64_t wk_stream_gen(const wk_stream_t *s);
/* The first stream after `after` (NULL: from the first) with chunks not written, or NULL. */
wk_stream_t *wk_stream_next_pending(wk_t *w, wk_stream_t *after);
/* Writes the buffer. 0, or -1 with *error (the buffer's chunks are lost). */
int wk_stream_flush(wk_t *w, wk_stream_t *s, char **error);
/* A task's end chunk is written: its file is fdatasync'd with the next batch. */
void wk_stream_task_ended(wk_t *w);
/* Writes, syncs and closes every stream file (the worker stops). */
void wk_stream_close_all(wk_t *w);

/* capture.c: the pipes of streamed tasks */
/* Opens the stream of a task whose stdout/stderr go to the stream and the pipes for
 * them (write ends in write_fds, -1 for other channels). -1 with *error. */
int wk_capture_prepare(wk_t *w, wk_task_t *t, int write_fds[2], char **error);
/* The spawn failed: closes what wk_capture_prepare opened. */
void wk_capture_abort(wk_task_t *t, int write_fds[2]);
/* The process runs: closes the write ends, opens the stream, reads the pipes. */
void wk_capture_start(wk_t *w, wk_task_t *t, int write_fds[2]);
/* The process ended: reads the rest, closes the instance's stream when close_stream,
 * writes the buffer. Returns the Streaming error if its output was lost (caller frees). */
char *wk_capture_end(wk_t *w, wk_task_t *t, bool close_stream);
/* The worker stops: ends the capture's timers, then writes, syncs and closes every
 * stream file (wk_stream_close_all). */
void wk_capture_close_all(wk_t *w);

/* ---- config.c: `hq worker start` flags ---- */

/* Fills w->conf (and w->temp_root when it makes a temporary working directory) from
 * the parsed flags, detecting resources and the allocation manager. Returns 0, or the
 * exit code with err set: 2 for a command-line error, 1 for any other. */
int wk_configure(wk_t *w, const hq_args_t *a, hq_err_t *err);

/* ---- connect.c: the connection to the broker ---- */

/* Reads the access file and connects a new DEALER (w->sock, w->handle) with a
 * monitor of its handshakes (w->mon, not added to the loop). host gets "host:port".
 * 0, or -1 with err set (the server-dir hint when there is no access file). */
int wk_conn_open(wk_t *w, char *host, size_t host_len, hq_err_t *err);
/* Removes the monitor from the loop (when there is one) and closes it. */
void wk_conn_monitor_close(wk_t *w);
/* The next message on w->sock (not blocking), or NULL; invalid ones are logged and
 * dropped. Updates w->last_recv. */
hq_msg_t *wk_conn_recv(wk_t *w);
/* Reads one event of the socket monitor (0 = none). */
uint16_t wk_conn_monitor_read(wk_t *w);
/* guard.c: forks the orphan guard; returns the socket to tell it task groups (-1 when
 * it cannot be started). */
int wk_guard_start(void);
/* Tells the guard the process group of a task just spawned. */
void wk_guard_track(int guard_fd, pid_t pgid);
/* Keeps the session's reconnect secret of a REGISTERED. */
void wk_conn_keep_secret(wk_t *w, const hq_registered_t *r);
/* True for the monitor events of a failed (refused) handshake. */
bool wk_conn_handshake_failed(uint16_t event);
/* The first registration: connects, sends REGISTER and waits (15 s at most) for
 * REGISTERED, which sets worker_id, epoch, server_uid and idle_timeout_ns. -1 with err
 * set on a refusal, rejected keys or no answer. */
int wk_conn_register(wk_t *w, hq_err_t *err);

/* ---- loop.c: the event loop ---- */

/* Runs the loop on the registered connection until the worker stops. Returns the
 * exit code (0 after a stop by the user, the server, an idle timeout or the time
 * limit; 1 when the server is lost or stops). */
int wk_loop_run(wk_t *w);

/* ---- worker.c ---- */

/* Path of the hq binary next to this executable, or NULL. Caller frees. */
char *wk_find_hq_binary(void);

#endif
