/* The wire protocol (proto/wire/PROTOCOL.md): every message as a typed C struct, encoded with
 * msgpack-c and decoded all-or-nothing by a bounded reader that checks every type,
 * range, length and count before allocating. Handlers never touch msgpack.
 *
 * A message is one ZeroMQ frame (after the ROUTER routing id): a fixed 40-byte
 * header followed by a msgpack body (an array of the message's fields in order). */
#ifndef HQ_MSG_H
#define HQ_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hq_err.h"
#include "hq_idrange.h"
#include "hq_resource.h"
#include "hq_worker_conf.h"

#define HQ_PROTO_VERSION 1
#define HQ_HEADER_SIZE 40

/* Size limits. The worker socket carries smaller messages than the client one. */
#define HQ_CLIENT_MAXMSG (256LL * 1024 * 1024)
#define HQ_WORKER_MAXMSG (64LL * 1024 * 1024)
#define HQ_MAX_STR (1024 * 1024)        /* one string / bytes field, except entries */
#define HQ_MAX_ENTRY (16 * 1024 * 1024) /* one task entry / stdin blob */
#define HQ_SUBMIT_KEY_LEN 16            /* bytes of a SUBMIT idempotency key */
#define HQ_SESSION_SECRET_LEN 32        /* bytes of a worker session's reconnect secret */

enum hq_msg_type {
    /* client -> broker */
    HQ_MSG_SERVER_INFO = 1,    /* no body */
    HQ_MSG_SERVER_STOP = 2,    /* no body */
    HQ_MSG_SUBMIT = 3,         /* hq_submit_t */
    HQ_MSG_JOB_LIST = 4,       /* hq_query_t: states filter */
    HQ_MSG_JOB_INFO = 5,       /* hq_query_t: selector (+ with_tasks) */
    HQ_MSG_JOB_CANCEL = 6,     /* hq_query_t: selector + text (reason) */
    HQ_MSG_JOB_FORGET = 7,     /* hq_query_t: selector + states filter */
    HQ_MSG_JOB_WAIT = 8,       /* hq_query_t: selector + flag (without_close); long poll */
    HQ_MSG_JOB_OPEN = 9,       /* hq_query_t: text (name), number (max_fails+1, 0 = none) */
    HQ_MSG_JOB_CLOSE = 10,     /* hq_query_t: selector */
    HQ_MSG_TASK_LIST = 11,     /* hq_query_t: selector, tasks, states */
    HQ_MSG_TASK_INFO = 12,     /* hq_query_t: selector (single job), tasks */
    HQ_MSG_WORKER_LIST = 13,   /* hq_query_t: flag (include offline) */
    HQ_MSG_WORKER_INFO = 14,   /* hq_query_t: selector */
    HQ_MSG_WORKER_STOP = 15,   /* hq_query_t: selector */
    HQ_MSG_JOB_SUMMARY = 16,   /* no body */
    HQ_MSG_TASK_IDS = 17,      /* hq_query_t: selector + states */
    HQ_MSG_TASK_EXPLAIN = 18,  /* hq_query_t: selector (single job), tasks (one id) */
    HQ_MSG_JOURNAL_READ = 19,  /* hq_query_t: number (cursor: next lsn), flag (wait for
                                  new events: stream); long poll */
    HQ_MSG_JOURNAL_FLUSH = 20, /* no body */
    HQ_MSG_JOURNAL_PRUNE = 21, /* no body */
    HQ_MSG_TASK_NOTIFY = 25,   /* hq_query_t: selector (one job), tasks (one id), text
                                * (message), number (instance); from `hq task notify` */
    HQ_MSG_DEBUG_DUMP = 22,    /* no body; the broker's internal state as JSON */
    HQ_MSG_ALLOC_ADD = 26,     /* hq_query_t: text (queue parameters as JSON), flag (dry run
                                * only: submit a trial allocation, create no queue) */
    HQ_MSG_ALLOC_LIST = 27,    /* hq_query_t: nothing used */
    HQ_MSG_ALLOC_INFO = 28,    /* hq_query_t: number (queue id), states (filter) */
    HQ_MSG_ALLOC_CTL = 29,     /* hq_query_t: number (queue id), text ("pause", "resume",
                                * "remove"), flag (--force) */
    HQ_MSG_ALLOC_LOG = 30,     /* hq_query_t: text (allocation id) */
    /* broker -> client */
    HQ_MSG_REPLY = 40, /* hq_reply_t: JSON document and/or an id */
    HQ_MSG_ERROR = 41, /* hq_error_msg_t */
    /* worker -> broker */
    HQ_MSG_REGISTER = 60,  /* hq_register_t */
    HQ_MSG_RESULTS = 61,   /* hq_results_t: batched task events + credit */
    HQ_MSG_HEARTBEAT = 62, /* no body (both directions) */
    HQ_MSG_GOODBYE = 63,   /* hq_goodbye_t: the worker is leaving */
    HQ_MSG_OVERVIEW = 64,  /* hq_overview_t: the worker's hardware state (--overview-interval) */
    /* broker -> worker */
    HQ_MSG_REGISTERED = 80, /* hq_registered_t */
    HQ_MSG_ASSIGN = 81,     /* hq_assign_t: batched tasks */
    HQ_MSG_CANCEL = 82,     /* hq_cancel_t: kill these task instances */
    HQ_MSG_STOP = 83,       /* hq_goodbye_t: the worker must stop (reason) */
    HQ_MSG_RETRACT = 84,    /* hq_cancel_t: give back these instances if not started */
    HQ_MSG_NODE_OF = 85,    /* hq_cancel_t: the multi-node tasks it is a secondary node of */
};

/* Fixed header, big-endian on the wire:
 *  0: 'H' 'Q'  2: version u8  3: type u8  4: request_id u64  12: epoch u64
 * 20: seq u64  28: ack u64  36: reserved u32 (0) */
typedef struct hq_header {
    uint8_t version;     /* HQ_PROTO_VERSION */
    uint8_t type;        /* enum hq_msg_type */
    uint64_t request_id; /* client: unique per request, echoed in the reply */
    uint64_t epoch;      /* worker traffic: session epoch issued by the broker */
    uint64_t seq;        /* worker traffic: sender's sequence number */
    uint64_t ack;        /* worker traffic: highest seq received from the peer */
} hq_header_t;

typedef struct hq_bytes {
    uint32_t len;  /* length in bytes */
    uint8_t *data; /* not NUL-terminated by the protocol; decoder adds a NUL */
} hq_bytes_t;

typedef struct hq_kv {
    char *key;   /* environment variable name */
    char *value; /* value */
} hq_kv_t;

/* ---- task definition (shared by all tasks of an array submit) ---- */

enum hq_pin { HQ_PIN_NONE = 0, HQ_PIN_TASKSET = 1, HQ_PIN_OMP = 2 };
enum hq_crash_kind { HQ_CRASH_LIMIT = 0, HQ_CRASH_NEVER_RESTART = 1, HQ_CRASH_UNLIMITED = 2 };
enum hq_stdio_kind { HQ_STDIO_FILE = 0, HQ_STDIO_NONE = 1, HQ_STDIO_STREAM = 2 };

typedef struct hq_stdio {
    enum hq_stdio_kind kind; /* file, none, or the job's stream */
    char *path;              /* FILE: path, placeholders partly resolved at submit */
    bool rm_if_finished;     /* delete the file when the task finishes successfully */
} hq_stdio_t;

typedef struct hq_task_def {
    uint32_t n_args;         /* argv length, >= 1 */
    char **args;             /* argv */
    uint32_t n_env;          /* user environment entries */
    hq_kv_t *env;            /* sorted by key */
    char *cwd;               /* working directory (placeholders partly resolved) */
    hq_stdio_t out;          /* stdout */
    hq_stdio_t err;          /* stderr */
    hq_bytes_t stdin_data;   /* --stdin contents (len 0 = /dev/null) */
    uint32_t n_variants;     /* >= 1 resource variants */
    hq_rvariant_t *variants; /* owned */
    uint64_t time_limit_ns;  /* 0 = none */
    int32_t priority;        /* higher first */
    enum hq_crash_kind crash_kind;
    uint32_t crash_limit; /* HQ_CRASH_LIMIT: max crashes (default 5) */
    enum hq_pin pin;      /* pinning mode */
    bool task_dir;        /* create HQ_TASK_DIR */
} hq_task_def_t;

/* One task of a graph submit (job files). */
typedef struct hq_graph_task {
    uint32_t id;      /* task id */
    uint32_t def_idx; /* index into hq_submit_t.defs */
    uint32_t n_deps;  /* dependencies (task ids of the same job) */
    uint32_t *deps;
} hq_graph_task_t;

typedef struct hq_submit {
    uint32_t job_id;    /* 0 = new job; else attach to this open job */
    char *name;         /* job name (may be NULL when attaching) */
    bool has_max_fails; /* --max-fails given */
    uint32_t max_fails;
    char *submit_dir; /* client's cwd */
    char *stream_dir; /* --stream DIR or NULL */
    uint32_t n_defs;  /* task definitions: 1 for arrays */
    hq_task_def_t *defs;
    /* array form (n_graph == 0): one task per id, all using defs[0] */
    hq_rangelist_t ids;  /* task ids as given (or 0..n-1) */
    uint32_t n_entries;  /* 0 or entries for each-line / from-json */
    hq_bytes_t *entries; /* entry for task id i is entries[i] */
    /* graph form (job files) */
    uint32_t n_graph;
    hq_graph_task_t *graph;
    /* idempotency key (proto/wire/PROTOCOL.md, SUBMIT): random per `hq` invocation, the same in
     * every retry; a submit whose key the broker knows is answered, not applied */
    bool has_key;                   /* false: sent without a key (older senders) */
    uint8_t key[HQ_SUBMIT_KEY_LEN]; /* the key when has_key */
} hq_submit_t;

/* Bit mask of task/job states for filters. */
enum hq_state_bit {
    HQ_ST_WAITING = 1 << 0,
    HQ_ST_RUNNING = 1 << 1,
    HQ_ST_FINISHED = 1 << 2,
    HQ_ST_FAILED = 1 << 3,
    HQ_ST_CANCELED = 1 << 4,
    HQ_ST_ABORTED = 1 << 5,
    HQ_ST_OPENED = 1 << 6,
};

/* The generic client query: each message type uses the fields its comment names. */
typedef struct hq_query {
    hq_selector_t sel;    /* jobs or workers */
    hq_rangelist_t tasks; /* task ids (n == 0: all) */
    uint32_t states;      /* enum hq_state_bit mask (0: default) */
    bool flag;            /* per type: with_tasks / without_close / include offline */
    char *text;           /* per type: cancel reason / job name (may be NULL) */
    uint64_t number;      /* per type: max_fails + 1 for JOB_OPEN (0 = none) */
} hq_query_t;

/* Reply to any client request. */
typedef struct hq_reply {
    uint64_t id; /* submit/open: the job id; else 0 */
    char *json;  /* a JSON document (proto/wire/PROTOCOL.md lists the shape per request), or NULL */
    uint32_t n_log; /* log lines the client should print (warnings/info) */
    char **log;     /* each "LEVEL<TAB>text", LEVEL in INFO|WARN|ERROR */
} hq_reply_t;

enum hq_errcode {
    HQ_ERR_BAD_REQUEST = 1, /* malformed or invalid message */
    HQ_ERR_NOT_FOUND = 2,
    HQ_ERR_INVALID = 3,     /* request understood but refused (message says why) */
    HQ_ERR_UNAVAILABLE = 4, /* e.g. journal unavailable */
    HQ_ERR_ROLE = 5,        /* wrong socket for this message */
    HQ_ERR_VERSION = 6,     /* protocol version mismatch */
};

typedef struct hq_error_msg {
    uint32_t code; /* enum hq_errcode */
    char *message; /* full text shown to the user */
} hq_error_msg_t;

/* ---- worker traffic ---- */

typedef struct hq_register {
    hq_worker_conf_t conf;  /* the worker's configuration */
    uint32_t prefetch;      /* how many tasks beyond its capacity it will queue */
    uint32_t n_running;     /* tasks still running (re-adoption after reconnect) */
    uint32_t old_worker_id; /* id held before reconnect, 0 = first registration */
    /* Reconnect: the task instances the worker still runs or finished while it was cut
     * off (last on the wire; a 4-field REGISTER without it still decodes). Finished
     * ones are reported by RESULTS right after REGISTERED. */
    uint32_t n_reports;
    struct hq_task_ref *reports; /* hq_task_ref_t, defined below */
    /* Reconnect: the secret the broker gave the session old_worker_id in REGISTERED,
     * proof that this is that worker (last on the wire; optional). */
    bool has_secret;
    uint8_t secret[HQ_SESSION_SECRET_LEN];
} hq_register_t;

typedef struct hq_registered {
    uint32_t worker_id;       /* assigned id */
    char *server_uid;         /* for %{SERVER_UID} */
    uint64_t heartbeat_ns;    /* interval the broker expects */
    uint64_t idle_timeout_ns; /* server default idle timeout if the worker has none */
    /* The session's reconnect secret, to be presented by a REGISTER of this worker that
     * replaces the session (last on the wire; optional). */
    bool has_secret;
    uint8_t secret[HQ_SESSION_SECRET_LEN];
} hq_registered_t;

/* The concrete amount of one resource given to a task by the worker's allocator. */
typedef struct hq_ralloc {
    char *name;         /* resource name */
    hq_amount_t amount; /* total amount */
    uint32_t n_labels;  /* indexed resources: chosen labels */
    char **labels;
} hq_ralloc_t;

typedef struct hq_assign_def {
    uint32_t job_id;   /* owning job */
    uint32_t def_id;   /* id of the definition within the job */
    char *submit_dir;  /* HQ_SUBMIT_DIR */
    char *stream_dir;  /* --stream dir or NULL */
    hq_task_def_t def; /* the definition */
} hq_assign_def_t;

typedef struct hq_assign_task {
    uint32_t job_id;
    uint32_t task_id;
    uint32_t instance; /* instance id; results must echo it */
    uint32_t def_idx;  /* index into hq_assign_t.defs */
    bool has_entry;    /* HQ_ENTRY is set */
    hq_bytes_t entry;
    uint32_t variant; /* chosen resource variant */
    uint32_t n_nodes; /* multi-node: hostnames of the nodes, first = root */
    char **nodes;
} hq_assign_task_t;

typedef struct hq_assign {
    uint32_t n_defs;
    hq_assign_def_t *defs;
    uint32_t n_tasks;
    hq_assign_task_t *tasks;
} hq_assign_t;

enum hq_tev_kind {
    HQ_TEV_STARTED = 0,  /* process started */
    HQ_TEV_FINISHED = 1, /* exit 0 */
    HQ_TEV_FAILED = 2,   /* non-zero exit, signal, time limit, spawn error */
    HQ_TEV_CANCELED = 3, /* killed because of a CANCEL */
    HQ_TEV_REJECTED = 4, /* the worker could not take it (e.g. stopping); requeue */
};

typedef struct hq_task_event {
    uint32_t job_id;
    uint32_t task_id;
    uint32_t instance;
    uint32_t kind;     /* enum hq_tev_kind */
    uint64_t time_ns;  /* wall time of the event */
    char *error;       /* FAILED: the error text (cli/REFERENCE.md §0.2); else NULL */
    uint32_t n_allocs; /* STARTED: resources the worker chose */
    hq_ralloc_t *allocs;
} hq_task_event_t;

typedef struct hq_results {
    uint32_t credit; /* how many more tasks the worker wants now */
    uint32_t n_events;
    hq_task_event_t *events;
} hq_results_t;

typedef struct hq_task_ref {
    uint32_t job_id;
    uint32_t task_id;
    uint32_t instance;
} hq_task_ref_t;

typedef struct hq_cancel {
    uint32_t n_tasks;
    hq_task_ref_t *tasks;
} hq_cancel_t;

enum hq_goodbye_reason {
    HQ_BYE_STOPPED = 0, /* hq worker stop / server stop */
    HQ_BYE_IDLE_TIMEOUT = 1,
    HQ_BYE_TIME_LIMIT = 2,
    HQ_BYE_SIGNAL = 3,      /* SIGINT/SIGTERM/SIGTSTP to the worker: a lost connection */
    HQ_BYE_SERVER_STOP = 4, /* STOP only: the server is shutting down (worker exits 1) */
};

typedef struct hq_goodbye {
    uint32_t reason; /* enum hq_goodbye_reason */
} hq_goodbye_t;

/* OVERVIEW: the worker's hardware state as the JSON object of a worker-overview
 * event's "hw-state" (cli/REFERENCE.md §3.8), at most HQ_MAX_STR bytes. */
typedef struct hq_overview {
    char *hw_state;
} hq_overview_t;

/* A decoded message. All pointers point into memory owned by the message. */
typedef struct hq_msg {
    hq_header_t hdr;
    union {
        hq_submit_t submit;
        hq_query_t query;
        hq_reply_t reply;
        hq_error_msg_t error;
        hq_register_t reg;
        hq_registered_t registered;
        hq_results_t results;
        hq_assign_t assign;
        hq_cancel_t cancel;
        hq_goodbye_t goodbye;
        hq_overview_t overview;
    } u;
    void *arena_; /* private: owner of decoded memory */
} hq_msg_t;

/* Encodes msg (header + body for msg->hdr.type) into a freshly malloc'd buffer.
 * Pointers in msg are borrowed. Returns 0, or -1 if a field violates the limits a
 * decoder would enforce (so we never send what the peer must refuse). */
int hq_msg_encode(const hq_msg_t *msg, uint8_t **buf, size_t *len, hq_err_t *err);

/* Decodes a frame. All-or-nothing: on any violation (bad magic/version/type, wrong
 * msgpack type, out-of-range value, count larger than the bytes left, trailing
 * bytes) returns NULL and fills err with a distinct message. max_len bounds the
 * frame (the socket's limit). Caller destroys the result. */
hq_msg_t *hq_msg_decode(const uint8_t *buf, size_t len, hq_err_t *err);
void hq_msg_destroy(hq_msg_t **msg);

/* Header only (no body decode): for routing and fencing. */
int hq_header_decode(const uint8_t *buf, size_t len, hq_header_t *hdr, hq_err_t *err);

/* Human name of a type ("SUBMIT") or "UNKNOWN". */
const char *hq_msg_type_name(uint8_t type);

/* An ERROR message (current protocol version) answering request_id; text is
 * borrowed (it must outlive the message's encoding). */
hq_msg_t hq_msg_error(uint64_t request_id, uint32_t code, const char *text);

/* True for types a client may send / a worker may send. */
bool hq_msg_is_client_request(uint8_t type);
bool hq_msg_is_worker_message(uint8_t type);

#endif
