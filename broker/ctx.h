/* The broker's context: a short list of sub-objects, each owned by one module (the
 * job table, the worker registry, the scheduler queue, the sockets with their send
 * layers, the loop turn, the journal). Handlers get the whole context; the modules
 * below them get the sub-object they own. Private to broker/. */
#ifndef HQ_BROKER_CTX_H
#define HQ_BROKER_CTX_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>

#include "events.h"
#include "hq_access.h"
#include "hq_args.h"
#include "jobtab.h"
#include "notes.h"
#include "peer.h"
#include "readyq.h"
#include "registry.h"
#include "reply.h"
#include "turn.h"
#include "wsend.h"

/* A JOB_WAIT held until its jobs complete or its deadline passes. */
typedef struct hq_waiter {
    uint8_t rid[HQ_RID_MAX]; /* client routing id */
    size_t rid_len;
    uint64_t request_id; /* echoed */
    uint32_t *job_ids;   /* selected jobs, owned */
    uint32_t n_jobs;
    bool without_close; /* don't require closed jobs */
    bool notify;        /* --on-notify: answer when a notification of its jobs arrives */
    uint64_t note_seq;  /* notify: the last notification the client has */
    uint64_t deadline;  /* CLOCK_MONOTONIC */
} hq_waiter_t;

/* Startup configuration (flags, server dir, access file). */
typedef struct hq_bconf {
    hq_global_t g;            /* global flags */
    hq_access_t access;       /* keys, uid, hosts, ports */
    char *server_dir;         /* --server-dir (absolute) */
    char *run_dir;            /* NNN run dir */
    char *access_path;        /* run_dir/access.json */
    const char *access_file;  /* --access-file (its uid must be the journal's), or NULL */
    bool journal_salvage;     /* --journal-salvage */
    uint64_t start_ns;        /* wall time of start */
    uint64_t idle_timeout_ns; /* pushed to workers */
} hq_bconf_t;

/* The broker's context: a list of sub-objects, each owned by one module. */
typedef struct hq_broker {
    hq_bconf_t conf;                  /* startup configuration */
    hq_jobtab_t jobs;                 /* job table */
    hq_registry_t reg;                /* worker registry */
    hq_readyq_t ready;                /* scheduler and the tasks to announce to it */
    hq_cancels_t cancels;             /* instances to kill */
    hq_replies_t replies;             /* client socket and reply cache */
    hq_wlink_t wlink;                 /* worker socket */
    hq_turn_t turn;                   /* the loop and per-turn batching */
    zlistx_t *waiters;                /* hq_waiter_t*: held JOB_WAIT requests */
    hq_notes_t notes;                 /* task notifications for waits with --on-notify */
    hq_events_t *events;              /* the single event point */
    zactor_t *zap;                    /* ZAP handler */
    struct hq_hsmon *hsmon;           /* logs of refused handshakes (handshake.c) */
    struct hq_schedwait *sched_waits; /* requests held for the scheduler's state */
    struct hq_jglue *jr;              /* journal (--journal): NULL when off; see jglue.h */
    struct hq_alloc *alloc;           /* automatic allocation (alloc/alloc.h); NULL in tests */
    bool stopping;                    /* leave the loop */
    int stop_signal;                  /* the signal that ended the loop (SIGINT, SIGTERM), else 0 */
    int exit_code;                    /* hq_broker_main's result */
} hq_broker_t;

/* Makes the in-memory context (no sockets, no loop: the loop adds them). */
void hq_broker_init(hq_broker_t *b);
/* Frees what hq_broker_init and the broker's life made (the loop's part first:
 * hq_loop_stop). */
void hq_broker_fini(hq_broker_t *b);

/* A client request handler (the loop's dispatch table maps message types to these). */
typedef int(hq_client_fn)(hq_broker_t *b, hq_creq_t *req);

#endif
