/* The broker's core actor: its context (a list of sub-objects), the client and worker
 * request handlers and the helpers they share. Private to broker/. */
#ifndef HQ_BROKER_CORE_H
#define HQ_BROKER_CORE_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>
#include <jansson.h>

#include "events.h"
#include "hq_access.h"
#include "hq_args.h"
#include "hq_msg.h"
#include "hq_outbox.h"
#include "jobs.h"
#include "sched/actor.h"

#define HQ_RID_MAX 256

/* Worker states (§1.8). */
enum hq_wstate {
    HQ_WS_RUNNING = 0,
    HQ_WS_CONNECTION_LOST,
    HQ_WS_HEARTBEAT_LOST,
    HQ_WS_IDLE_TIMEOUT,
    HQ_WS_STOPPED,
    HQ_WS_TIME_LIMIT,
};

typedef struct hq_tref {
    uint32_t job_id;  /* job */
    uint32_t task_id; /* task */
} hq_tref_t;

typedef struct hq_worker {
    uint32_t id;                  /* worker id, from 1 */
    uint64_t epoch;               /* session epoch of this registration */
    uint8_t rid[HQ_RID_MAX];      /* ROUTER routing id */
    size_t rid_len;               /* its length */
    char *rid_key;                /* hex of rid (key of worker_by_rid), owned */
    hq_msg_t *reg;                /* owned REGISTER message (keeps conf alive) */
    const hq_worker_conf_t *conf; /* &reg->u.reg.conf */
    enum hq_wstate state;         /* RUNNING until it ends */
    uint64_t ended_ns;            /* wall time it ended (0 = live) */
    uint64_t last_recv;           /* CLOCK_MONOTONIC of its last message */
    uint64_t last_sent_hb;        /* CLOCK_MONOTONIC of our last heartbeat to it */
    uint64_t hb_ns;               /* heartbeat interval */
    uint64_t seq_out;             /* seq of our last reliable message to it */
    uint64_t ack_in;              /* its last reliable seq we processed (in order) */
    hq_outbox_t outbox;           /* our reliable messages it has not acknowledged */
    uint64_t unreach_since;       /* CLOCK_MONOTONIC of the first EHOSTUNREACH (0 = none) */
    uint64_t last_nack;           /* CLOCK_MONOTONIC of our last out-of-order heartbeat */
    uint64_t n_retx;              /* messages retransmitted to it */
    uint64_t n_dups;              /* duplicates from it dropped */
    uint32_t n_assigned;          /* tasks assigned (incl. running) */
    uint32_t n_running;           /* tasks started */
    bool has_last;                /* last_* valid */
    uint32_t last_job, last_task; /* last task started on it */
    uint64_t last_time;           /* wall time of that start */
    hq_tref_t *pending;           /* tasks to send in the next ASSIGN */
    uint32_t n_pending, cap_pending;
} hq_worker_t;

/* Hostnames of the nodes of a multi-node task, root first (for its ASSIGN). */
typedef struct hq_mnodes {
    uint32_t n;   /* nodes */
    char **hosts; /* owned */
} hq_mnodes_t;

/* A JOB_WAIT held until its jobs complete or its deadline passes. */
typedef struct hq_waiter {
    uint8_t rid[HQ_RID_MAX]; /* client routing id */
    size_t rid_len;
    uint64_t request_id; /* echoed */
    uint32_t *job_ids;   /* selected jobs, owned */
    uint32_t n_jobs;
    bool without_close; /* don't require closed jobs */
    uint64_t deadline;  /* CLOCK_MONOTONIC */
} hq_waiter_t;

/* A requeued task waiting to be announced to the scheduler at the next flush. */
typedef struct hq_ready_ref {
    uint32_t job_id;
    uint32_t task_id;
    uint32_t rq_id;
    int32_t priority;
} hq_ready_ref_t;

#define HQ_REPLY_CACHE 1024
/* Replies larger than this are not cached (listings: a repeat is answered anew), so
 * the cache holds at most 1024 x 16 KiB; replies to changes are far smaller. */
#define HQ_REPLY_CACHE_MAX_REPLY (16 * 1024)

typedef struct hq_broker {
    hq_global_t g;            /* global flags */
    hq_access_t access;       /* keys, uid, hosts, ports */
    char *server_dir;         /* --server-dir (absolute) */
    char *run_dir;            /* NNN run dir */
    char *access_path;        /* run_dir/access.json */
    uint64_t start_ns;        /* wall time of start */
    uint64_t idle_timeout_ns; /* pushed to workers */
    zactor_t *zap;            /* ZAP handler */
    zsock_t *client;          /* client ROUTER */
    zsock_t *worker;          /* worker ROUTER */
    hq_sched_t *sched;        /* scheduler actor */
    zloop_t *loop;            /* the core loop */
    hq_events_t *events;      /* the single event point */
    /* jobs */
    hq_job_t **jobs;       /* indexed by id; NULL if forgotten / unused */
    uint32_t cap_jobs;     /* size of jobs */
    uint32_t max_job_id;   /* highest id handed out */
    uint32_t n_jobs;       /* live (not forgotten) jobs */
    uint32_t next_rq_id;   /* next scheduler request class id */
    zhashx_t *submit_keys; /* SUBMIT idempotency key (hex) -> job id (submit.c); lazy */
    /* workers */
    hq_worker_t **workers; /* indexed by id (offline ones kept) */
    uint32_t cap_workers;
    uint32_t max_worker_id;
    zhashx_t *worker_by_rid; /* rid hex -> live hq_worker_t (borrowed) */
    uint64_t next_epoch;     /* epoch of the next registration */
    zhashx_t *mn_nodes;      /* "job@task" -> hq_mnodes_t of multi-node tasks to send */
    int hb_timer;            /* zloop timer id of the liveness check */
    bool unreach_armed;      /* the one-shot unreachable-peer check is set */
    uint64_t hb_tick_ns;     /* its period */
    uint64_t trim_ns;        /* monotonic time of the last malloc_trim */
    /* batching */
    bool dirty;              /* something to flush at the end of this turn */
    int flush_timer;         /* 0 ms timer armed while dirty (or -1) */
    hq_ready_ref_t *requeue; /* tasks back to waiting since the last flush */
    uint32_t n_requeue, cap_requeue;
    hq_tref_t *cancels;         /* (job, task) whose running instance must be killed */
    uint32_t *cancel_workers;   /* worker of each cancel */
    uint32_t *cancel_instances; /* instance of each cancel */
    uint32_t n_cancels, cap_cancels;
    /* clients */
    zhashx_t *reply_cache;            /* "<rid hex>:<request id>" -> zchunk_t of the reply frame */
    char *cache_keys[HQ_REPLY_CACHE]; /* insertion ring for eviction */
    uint32_t cache_pos;
    bool cur_req_valid;    /* the request being handled may be cached: */
    uint64_t cur_req_id;   /*   its request id */
    uint64_t cur_req_hash; /*   and the hash of its frame */
    zlistx_t *waiters;     /* hq_waiter_t* */
    /* lifecycle */
    bool stopping; /* leave the loop */
    int exit_code; /* hq_broker_main's result */
    /* journal (--journal): NULL when off; see jglue.h */
    struct hq_jglue *jr;
} hq_broker_t;

/* A client request being handled. */
typedef struct hq_creq {
    const uint8_t *rid; /* routing id (borrowed) */
    size_t rid_len;
    hq_msg_t *msg; /* decoded request (borrowed; a handler may steal it by
                      setting msg to NULL in its own copy via steal_msg) */
    bool stolen;   /* the handler took ownership of msg */
} hq_creq_t;

typedef int(hq_client_fn)(hq_broker_t *b, hq_creq_t *req);

/* ---- core.c ---- */
/* Creates sockets, loop, scheduler. Returns 0 or -1 with err. */
int hq_core_start(hq_broker_t *b, hq_err_t *err);
/* Runs the loop until stop. */
void hq_core_run(hq_broker_t *b);
void hq_core_stop(hq_broker_t *b);
/* Re-arms the liveness tick with a shorter period. */
int hq_core_retime_tick(hq_broker_t *b, uint64_t tick_ns);
/* Marks that outgoing work is pending; flushed once at the end of this loop turn. */
void hq_core_dirty(hq_broker_t *b);
/* Replies to a client (and caches the reply by request id). */
void hq_client_reply(hq_broker_t *b, const uint8_t *rid, size_t rid_len, uint64_t request_id,
                     const hq_reply_t *r);
/* Replies with a JSON document {"result": result, "meta": meta}; steals both. */
void hq_client_reply_json(hq_broker_t *b, hq_creq_t *req, json_t *result, json_t *meta);
/* Replies with log lines only ("INFO\t..." etc., each owned by the caller). */
void hq_client_reply_log(hq_broker_t *b, hq_creq_t *req, uint64_t id, char **lines, uint32_t n);
/* Sends a typed ERROR reply; always returns 0 (the request was answered). */
int hq_client_error(hq_broker_t *b, hq_creq_t *req, uint32_t code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Sends an ERROR (code, text) to any peer of the worker socket, registered or
 * not: the typed answer to a message that has no business there. */
void hq_worker_socket_error(hq_broker_t *b, const uint8_t *rid, size_t rid_len, uint64_t request_id,
                            uint32_t code, const char *text);
/* Sends a message to a worker with its session epoch, seq and ack. A reliable one
 * (ASSIGN, CANCEL) is numbered and kept in w->outbox until acknowledged, even when the
 * peer is unreachable at the moment. 0 ok (or kept), -1 EAGAIN (not numbered, try
 * later), -2 an unreliable message to an unreachable peer (dropped), -3 not encodable.
 * An unreachable peer (EHOSTUNREACH) is declared lost unless it speaks again within
 * a short grace (hq_workers_unreachable). */
int hq_worker_send(hq_broker_t *b, hq_worker_t *w, hq_msg_t *m);
/* Retransmits w's unacknowledged messages in order. */
void hq_worker_retransmit(hq_broker_t *b, hq_worker_t *w, uint64_t now);
/* Sends a command to the scheduler (takes ownership). */
void hq_sched_post(hq_broker_t *b, hq_sched_cmd_t *cmd);
/* Copies variants for a scheduler request class. */
void hq_rvariants_copy(hq_rvariant_t **dst, const hq_rvariant_t *src, uint32_t n);
/* Lowercase hex of a routing id. Caller frees. */
char *hq_rid_hex(const uint8_t *rid, size_t len);

/* ---- jobs in the broker ---- */
hq_job_t *hq_broker_job(hq_broker_t *b, uint32_t id);
/* SUBMIT idempotency keys (submit.c, PROTOCOL.md): forget the keys of job j (it is
 * being forgotten); free the whole index (at broker teardown). */
void hq_submit_keys_forget(hq_broker_t *b, const hq_job_t *j);
void hq_submit_keys_destroy(hq_broker_t *b);
/* Resolves a selector to existing job ids (ascending); unknown explicit ids go to
 * missing (if not NULL). Caller frees both arrays. */
uint32_t *hq_broker_select_jobs(hq_broker_t *b, const hq_selector_t *sel, uint32_t *n,
                                uint32_t **missing, uint32_t *n_missing);
/* Task to waiting again (new instance); queued for the scheduler at the next flush. */
void hq_broker_requeue(hq_broker_t *b, hq_job_t *j, hq_task_t *t, bool crash);
/* Queues t for the scheduler at the next flush (b->requeue). */
void hq_broker_push_ready(hq_broker_t *b, const hq_job_t *j, const hq_task_t *t);
/* Ends a task that is not final: frees capacity, tells its worker, sets the state. */
void hq_broker_end_task(hq_broker_t *b, hq_job_t *j, hq_task_t *t, enum hq_tstate st,
                        const char *error);
/* A worker's final report (FINISHED/FAILED/CANCELED) for a task it holds. */
void hq_broker_task_result(hq_broker_t *b, hq_job_t *j, hq_task_t *t, enum hq_tstate st,
                           uint32_t worker_id, const char *error, uint64_t wall_ns);
/* Re-checks JOB_WAIT waiters (after state changes and on their deadlines). */
void hq_broker_check_waiters(hq_broker_t *b, bool timeout_only);

/* ---- workers.c ---- */
hq_worker_t *hq_broker_worker(hq_broker_t *b, uint32_t id);
void hq_workers_on_message(hq_broker_t *b, const uint8_t *rid, size_t rid_len, const uint8_t *frame,
                           size_t len);
void hq_workers_on_assigned(hq_broker_t *b, hq_sched_cmd_t *cmd);
void hq_workers_flush(hq_broker_t *b);
void hq_workers_tick(hq_broker_t *b);
/* A send to w failed with EHOSTUNREACH: its connection broke. It is lost unless it
 * speaks again within min(heartbeat, 1 s) (a reconnect after a reset link). */
void hq_workers_unreachable(hq_broker_t *b, hq_worker_t *w);
/* The worker is gone (state says why): requeue its tasks, tell the scheduler. */
void hq_worker_lost(hq_broker_t *b, hq_worker_t *w, enum hq_wstate why);
/* Sends STOP to every live worker. */
void hq_workers_stop_all(hq_broker_t *b, uint32_t reason);
void hq_workers_destroy_all(hq_broker_t *b);
const char *hq_wstate_word(enum hq_wstate s);
int hq_h_worker_stop(hq_broker_t *b, hq_creq_t *req);
int hq_h_worker_list(hq_broker_t *b, hq_creq_t *req);
int hq_h_worker_info(hq_broker_t *b, hq_creq_t *req);

/* ---- submit.c ---- */
int hq_h_submit(hq_broker_t *b, hq_creq_t *req);
int hq_h_job_open(hq_broker_t *b, hq_creq_t *req);
int hq_h_job_close(hq_broker_t *b, hq_creq_t *req);
int hq_h_job_cancel(hq_broker_t *b, hq_creq_t *req);
int hq_h_job_forget(hq_broker_t *b, hq_creq_t *req);

/* ---- query.c ---- */
int hq_h_server_info(hq_broker_t *b, hq_creq_t *req);
int hq_h_server_stop(hq_broker_t *b, hq_creq_t *req);
int hq_h_job_list(hq_broker_t *b, hq_creq_t *req);
int hq_h_job_info(hq_broker_t *b, hq_creq_t *req);
int hq_h_job_summary(hq_broker_t *b, hq_creq_t *req);
int hq_h_job_wait(hq_broker_t *b, hq_creq_t *req);
int hq_h_task_list(hq_broker_t *b, hq_creq_t *req);
int hq_h_task_info(hq_broker_t *b, hq_creq_t *req);
int hq_h_task_ids(hq_broker_t *b, hq_creq_t *req);
json_t *hq_server_info_json(hq_broker_t *b);

/* ---- explain.c ---- */
int hq_h_task_explain(hq_broker_t *b, hq_creq_t *req);

#endif
