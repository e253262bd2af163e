/* The worker registry: every registration by id (ended ones kept for listings), live
 * ones by routing id, and what is to be sent to them at the end of a turn (pending
 * assignments, cancels). Private to broker/. */
#ifndef HQ_BROKER_REGISTRY_H
#define HQ_BROKER_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>

#include "hq_msg.h"
#include "hq_outbox.h"
#include "hq_duration.h"
#include "hq_util.h"
#include "peer.h"

/* Worker states (cli/REFERENCE.md §1.8). */
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
    uint64_t connected_ns;        /* wall time it registered */
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
    char *overview;               /* its latest hw-state JSON (OVERVIEW), owned, or NULL */
    hq_tref_t *pending;           /* tasks to send in the next ASSIGN */
    uint32_t n_pending, cap_pending;
    uint8_t secret[HQ_SESSION_SECRET_LEN]; /* this session's reconnect secret (live only) */
} hq_worker_t;

/* What the broker keeps of a session's reconnect secret: its hash (journaled in the
 * worker_up record, so a restarted broker can check a returning worker). */
typedef struct hq_whash {
    bool set;                            /* a hash is known for this worker id */
    uint8_t hash[HQ_SESSION_SECRET_LEN]; /* BLAKE2b-256 of the secret */
} hq_whash_t;

/* The highest worker id whose secret hash is kept (ids count up from 1 per server). */
#define HQ_MAX_WORKER_ID 100000000u

/* Hostnames of the nodes of a multi-node task, root first (for its ASSIGN). */
typedef struct hq_mnodes {
    uint32_t n;   /* nodes */
    char **hosts; /* owned */
} hq_mnodes_t;

/* The worker registry. */
typedef struct hq_registry {
    hq_worker_t **tab;     /* indexed by id (offline ones kept) */
    uint32_t cap;          /* size of tab */
    uint32_t max_id;       /* highest id handed out */
    zhashx_t *by_rid;      /* rid hex -> live hq_worker_t (borrowed) */
    uint64_t next_epoch;   /* epoch of the next registration */
    zhashx_t *mn_nodes;    /* "job@task" -> hq_mnodes_t of multi-node tasks to send */
    bool unreach_armed;    /* the one-shot unreachable-peer check is set */
    hq_whash_t *hashes;    /* by worker id: the hash of its session's reconnect secret */
    uint32_t cap_hashes;   /* size of hashes */
    uint64_t last_tick_ns; /* CLOCK_MONOTONIC of the last liveness check (0 = none yet) */
    uint64_t n_stalls;     /* ticks that found the loop had stood still */
} hq_registry_t;

/* Running instances to kill, sent as CANCEL at the next flush. */
typedef struct hq_cancels {
    hq_tref_t *refs;     /* (job, task) */
    uint32_t *workers;   /* worker of each */
    uint32_t *instances; /* instance of each */
    uint32_t n, cap;
} hq_cancels_t;

/* Worker id -> its record (live or ended), or NULL. */
hq_worker_t *hq_registry_get(const hq_registry_t *r, uint32_t id);
/* The state's word in listings ("RUNNING", "LOST", ...). */
const char *hq_wstate_word(enum hq_wstate s);
/* How long a worker whose link broke (EHOSTUNREACH) may take to speak again before
 * it is lost: min(its heartbeat, 1 s), long enough for a reconnect after a reset. */
static inline uint64_t hq_worker_unreach_grace(const hq_worker_t *w)
{
    return w->hb_ns < HQ_NS_PER_SEC ? w->hb_ns : HQ_NS_PER_SEC;
}
/* The hash of a session's reconnect secret, as journaled. */
void hq_session_secret_hash(const uint8_t *secret, uint8_t *hash);
/* Worker id's session had a secret with this hash (registration or journal). */
void hq_registry_set_hash(hq_registry_t *r, uint32_t id, const uint8_t *hash);
/* Does a REGISTER with old_worker_id and (has_secret, secret) prove that it is that
 * worker? Yes when the secret hashes to the one recorded for that id; when no hash is
 * recorded (a worker of a journal written before hashes were), the claim is taken on
 * trust as before; never for id 0. */
bool hq_registry_proves(const hq_registry_t *r, uint32_t old_worker_id, bool has_secret,
                        const uint8_t *secret);
/* What one registration may hold: its frame's bytes and the labels of its indexed
 * resources in total. Each label costs about 14 bytes in memory, kept for as long as
 * the server runs (also after the worker is gone, for `worker info`). */
#define HQ_MAX_REGISTER_BYTES (1024u * 1024)
#define HQ_MAX_WORKER_LABELS 16384u
/* The labels of a registration's indexed resources, in total. */
uint64_t hq_worker_conf_labels(const hq_worker_conf_t *conf);
/* A worker that ended keeps only what listings show: its configuration is copied
 * into a registration of its own (without the task reports of a reconnect and the
 * decoder's slack), its routing key, pending buffer and secret are freed. */
void hq_worker_compact(hq_worker_t *w);
/* Frees every worker record, the indexes and the multi-node hostnames. */
void hq_registry_fini(hq_registry_t *r);
/* Frees the queued cancels. */
void hq_cancels_fini(hq_cancels_t *c);
/* Queues a CANCEL of (job, task, instance) for worker_id at the next flush. */
void hq_cancels_add(hq_cancels_t *c, uint32_t worker_id, uint32_t job_id, uint32_t task_id,
                    uint32_t instance);

#endif
