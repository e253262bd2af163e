/* A worker's configuration: what `hq worker start` chose and detected (host, group,
 * timeouts, manager, resources). The worker sends it in REGISTER (hq_msg.h encodes
 * it), the broker keeps it per worker and both render it (hq_render.h). */
#ifndef HQ_WORKER_CONF_H
#define HQ_WORKER_CONF_H

#include <stdint.h>

#include "hq_resource.h"

enum hq_manager { HQ_MANAGER_NONE = 0, HQ_MANAGER_SLURM = 1, HQ_MANAGER_PBS = 2 };
enum hq_server_lost { HQ_LOST_STOP = 0, HQ_LOST_FINISH_RUNNING = 1 };

typedef struct hq_worker_conf {
    char *hostname;           /* --hostname or the system's */
    char *group;              /* --group, allocation id, or "default" */
    char *work_dir;           /* absolute */
    char *listen_address;     /* "host:port" shown as Data provider (may be "") */
    uint64_t heartbeat_ns;    /* --heartbeat */
    uint64_t idle_timeout_ns; /* 0 = none */
    uint64_t time_limit_ns;   /* 0 = none (remaining lifetime at registration) */
    uint64_t overview_ns;     /* 0 = off */
    double min_utilization;   /* 0..1 */
    enum hq_server_lost on_server_lost;
    enum hq_manager manager;
    char *manager_job_id;     /* "" when none */
    uint32_t pid;             /* worker process id */
    uint64_t started_ns;      /* wall time the worker started */
    hq_wres_list_t resources; /* sorted by name; cpus present */
    char *version;            /* HQ_VERSION of the worker */
    uint32_t n_coupling;      /* --coupling weights (last on the wire; may be absent) */
    hq_coupling_t *coupling;  /* indices into resources */
} hq_worker_conf_t;

#endif
