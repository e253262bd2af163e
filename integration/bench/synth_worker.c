/* A synthetic worker for measuring the broker alone: it registers like hq-worker
 * (CURVE DEALER, role worker, REGISTER with a cpus range), then acknowledges every
 * assigned task at once without running anything: one RESULTS message per ASSIGN
 * batch carrying a STARTED and a FINISHED event per task and a large credit. It
 * stops after N tasks finished and prints tasks/s plus batch statistics.
 *
 *   synth_worker [--server-dir DIR] [--cpus C] [-n N] [--prefetch P] [--credit X]
 *                [--timeout SECONDS] [--hostname H]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>

#include "hq_access.h"
#include "hq_err.h"
#include "hq_log.h"
#include "hq_msg.h"
#include "hq_resource.h"
#include "hq_util.h"

#define S_NS 1000000000ull

typedef struct s_opts {
    const char *server_dir; /* --server-dir or NULL (default resolution) */
    const char *hostname;   /* --hostname or NULL (system's) */
    uint32_t cpus;          /* size of the cpus range resource */
    uint64_t n;             /* stop after this many finished tasks */
    uint32_t prefetch;      /* REGISTER prefetch */
    uint32_t credit;        /* credit sent with every RESULTS */
    double timeout_s;       /* give up after this long */
} s_opts_t;

typedef struct s_worker {
    s_opts_t opts;
    zsock_t *sock;           /* DEALER to the broker's worker socket */
    void *handle;            /* its libzmq handle */
    uint64_t epoch;          /* session epoch from REGISTERED */
    uint64_t seq;            /* our last sequence number */
    uint64_t ack;            /* highest broker seq received */
    uint64_t heartbeat_ns;   /* interval the broker expects */
    uint64_t last_send_ns;   /* monotonic time of the last send */
    char **labels;           /* "0".."cpus-1" for STARTED allocations */
    hq_task_event_t *events; /* reused per batch */
    hq_ralloc_t *allocs;     /* reused per batch, one per task */
    uint32_t events_cap;     /* capacity of events (tasks: events_cap / 2) */
    /* statistics */
    uint64_t finished;        /* tasks acknowledged */
    uint64_t assigns;         /* ASSIGN messages received */
    uint64_t results;         /* RESULTS messages sent */
    uint32_t max_batch;       /* largest ASSIGN */
    uint32_t min_batch;       /* smallest ASSIGN */
    uint64_t bytes_in;        /* ASSIGN bytes received */
    uint64_t first_assign_ns; /* monotonic time of the first ASSIGN */
    uint64_t last_done_ns;    /* monotonic time the N-th task was acknowledged */
    uint64_t recv_ns;         /* time spent decoding */
    uint64_t send_ns;         /* time spent encoding + sending */
} s_worker_t;

static void s_usage(void)
{
    fprintf(stderr, "usage: synth_worker [--server-dir DIR] [--cpus C] [-n N] [--prefetch P] "
                    "[--credit X] [--timeout SECONDS] [--hostname H]\n");
}

static int s_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || !end || *end || end == s || v > max)
        return -1;
    *out = v;
    return 0;
}

static int s_parse_opts(int argc, char **argv, s_opts_t *o)
{
    *o = (s_opts_t){.cpus = 64, .n = 200000, .prefetch = 0, .credit = 4096, .timeout_s = 600};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x;
        if (!v) {
            return -1;
        } else if (strcmp(a, "--server-dir") == 0) {
            o->server_dir = v;
        } else if (strcmp(a, "--hostname") == 0) {
            o->hostname = v;
        } else if (strcmp(a, "--cpus") == 0) {
            if (s_parse_u64(v, 1 << 20, &x) != 0 || x == 0)
                return -1;
            o->cpus = (uint32_t)x;
        } else if (strcmp(a, "-n") == 0) {
            if (s_parse_u64(v, UINT64_MAX, &x) != 0 || x == 0)
                return -1;
            o->n = x;
        } else if (strcmp(a, "--prefetch") == 0) {
            if (s_parse_u64(v, UINT32_MAX, &x) != 0)
                return -1;
            o->prefetch = (uint32_t)x;
        } else if (strcmp(a, "--credit") == 0) {
            if (s_parse_u64(v, UINT32_MAX, &x) != 0 || x == 0)
                return -1;
            o->credit = (uint32_t)x;
        } else if (strcmp(a, "--timeout") == 0) {
            if (s_parse_u64(v, 86400, &x) != 0 || x == 0)
                return -1;
            o->timeout_s = (double)x;
        } else {
            return -1;
        }
        i++;
    }
    return 0;
}

/* Encodes and sends msg with our epoch/seq/ack in its header. */
static int s_send(s_worker_t *w, hq_msg_t *msg)
{
    uint64_t t0 = hq_mono_ns();
    uint8_t *buf = NULL;
    size_t len = 0;
    hq_err_t err;

    msg->hdr.version = HQ_PROTO_VERSION;
    msg->hdr.request_id = 0;
    msg->hdr.epoch = w->epoch;
    /* Only RESULTS (reliable) take a new seq; the others repeat the last one. */
    msg->hdr.seq = msg->hdr.type == HQ_MSG_RESULTS ? ++w->seq : w->seq;
    msg->hdr.ack = w->ack;
    if (hq_msg_encode(msg, &buf, &len, &err) != 0) {
        fprintf(stderr, "synth_worker: cannot encode %s: %s\n", hq_msg_type_name(msg->hdr.type),
                err.text);
        return -1;
    }
    int rc = zmq_send(w->handle, buf, len, 0);
    free(buf);
    if (rc < 0) {
        fprintf(stderr, "synth_worker: send failed: %s\n", zmq_strerror(zmq_errno()));
        return -1;
    }
    w->last_send_ns = hq_mono_ns();
    w->send_ns += w->last_send_ns - t0;
    return 0;
}

static int s_send_register(s_worker_t *w)
{
    hq_wres_t cpus = {
        .name = "cpus", .kind = HQ_RES_RANGE, .range_start = 0, .range_end = w->opts.cpus - 1};
    char *host = w->opts.hostname ? hq_strdup(w->opts.hostname) : hq_hostname();
    char *cwd = getcwd(NULL, 0);
    hq_msg_t msg = {.hdr.type = HQ_MSG_REGISTER};
    hq_register_t *r = &msg.u.reg;

    r->conf.hostname = host;
    r->conf.group = "default";
    r->conf.work_dir = cwd ? cwd : "/tmp";
    r->conf.listen_address = "";
    r->conf.heartbeat_ns = 8 * S_NS;
    r->conf.min_utilization = 0.0;
    r->conf.on_server_lost = HQ_LOST_STOP;
    r->conf.manager = HQ_MANAGER_NONE;
    r->conf.manager_job_id = "";
    r->conf.pid = (uint32_t)getpid();
    r->conf.started_ns = hq_wall_ns();
    r->conf.resources.n = 1;
    r->conf.resources.res = &cpus;
    r->conf.version = HQ_VERSION;
    r->prefetch = w->opts.prefetch;
    r->n_running = 0;
    r->old_worker_id = 0;
    int rc = s_send(w, &msg);
    free(host);
    free(cwd);
    return rc;
}

/* RESULTS with no events: asks for the first tasks. */
static int s_send_credit(s_worker_t *w)
{
    hq_msg_t msg = {.hdr.type = HQ_MSG_RESULTS};
    msg.u.results.credit = w->opts.credit;
    return s_send(w, &msg);
}

static int s_send_simple(s_worker_t *w, uint8_t type)
{
    hq_msg_t msg = {.hdr.type = type};
    if (type == HQ_MSG_GOODBYE)
        msg.u.goodbye.reason = HQ_BYE_STOPPED;
    return s_send(w, &msg);
}

/* The cpus amount a task asks for in its chosen variant (1 when it names none). */
static hq_amount_t s_task_cpus(const hq_assign_t *a, const hq_assign_task_t *t, uint32_t cpus)
{
    if (t->def_idx >= a->n_defs)
        return HQ_AMOUNT_ONE;
    const hq_task_def_t *d = &a->defs[t->def_idx].def;
    if (t->variant >= d->n_variants)
        return HQ_AMOUNT_ONE;
    const hq_rvariant_t *v = &d->variants[t->variant];
    for (uint32_t i = 0; i < v->n_entries; i++) {
        if (strcmp(v->entries[i].name, "cpus") == 0)
            return v->entries[i].all ? (hq_amount_t)cpus * HQ_AMOUNT_ONE : v->entries[i].amount;
    }
    return HQ_AMOUNT_ONE;
}

/* Acknowledges a whole ASSIGN batch with one RESULTS message. */
static int s_handle_assign(s_worker_t *w, const hq_assign_t *a)
{
    uint32_t n = a->n_tasks;
    if (n == 0)
        return 0;
    if (w->assigns == 0)
        w->first_assign_ns = hq_mono_ns();
    w->assigns++;
    if (n > w->max_batch)
        w->max_batch = n;
    if (w->min_batch == 0 || n < w->min_batch)
        w->min_batch = n;
    if ((uint64_t)n * 2 > w->events_cap) {
        w->events_cap = n * 2;
        w->events = hq_realloc(w->events, sizeof *w->events * w->events_cap);
        w->allocs = hq_realloc(w->allocs, sizeof *w->allocs * n);
    }
    uint64_t now = hq_wall_ns();
    for (uint32_t i = 0; i < n; i++) {
        const hq_assign_task_t *t = &a->tasks[i];
        hq_amount_t amount = s_task_cpus(a, t, w->opts.cpus);
        uint64_t n_labels = (uint64_t)((amount + HQ_AMOUNT_ONE - 1) / HQ_AMOUNT_ONE);
        if (n_labels > w->opts.cpus)
            n_labels = w->opts.cpus;
        w->allocs[i] = (hq_ralloc_t){
            .name = "cpus", .amount = amount, .n_labels = (uint32_t)n_labels, .labels = w->labels};
        w->events[2 * i] = (hq_task_event_t){.job_id = t->job_id,
                                             .task_id = t->task_id,
                                             .instance = t->instance,
                                             .kind = HQ_TEV_STARTED,
                                             .time_ns = now,
                                             .n_allocs = 1,
                                             .allocs = &w->allocs[i]};
        w->events[2 * i + 1] = (hq_task_event_t){.job_id = t->job_id,
                                                 .task_id = t->task_id,
                                                 .instance = t->instance,
                                                 .kind = HQ_TEV_FINISHED,
                                                 .time_ns = now};
    }
    hq_msg_t msg = {.hdr.type = HQ_MSG_RESULTS};
    msg.u.results.credit = w->opts.credit;
    msg.u.results.n_events = n * 2;
    msg.u.results.events = w->events;
    if (s_send(w, &msg) != 0)
        return -1;
    w->results++;
    w->finished += n;
    if (w->finished >= w->opts.n && w->last_done_ns == 0)
        w->last_done_ns = hq_mono_ns();
    return 0;
}

/* Receives one message (the last frame of a multipart message). NULL on a decode
 * error (reported) or when nothing is there. */
static hq_msg_t *s_recv(s_worker_t *w, size_t *size)
{
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    for (;;) {
        if (zmq_msg_recv(&frame, w->handle, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frame);
            return NULL;
        }
        if (!zmq_msg_more(&frame))
            break;
    }
    uint64_t t0 = hq_mono_ns();
    hq_err_t err;
    *size = zmq_msg_size(&frame);
    hq_msg_t *msg = hq_msg_decode(zmq_msg_data(&frame), zmq_msg_size(&frame), &err);
    zmq_msg_close(&frame);
    w->recv_ns += hq_mono_ns() - t0;
    if (!msg)
        fprintf(stderr, "synth_worker: undecodable message (%zu bytes): %s\n", *size, err.text);
    return msg;
}

/* Handles one message. Returns 1 to go on, 0 when told to stop, -1 on error. */
static int s_handle(s_worker_t *w, hq_msg_t *msg, size_t size, bool *registered)
{
    if (msg->hdr.seq > w->ack)
        w->ack = msg->hdr.seq;
    switch (msg->hdr.type) {
    case HQ_MSG_REGISTERED:
        w->epoch = msg->hdr.epoch;
        if (msg->u.registered.heartbeat_ns)
            w->heartbeat_ns = msg->u.registered.heartbeat_ns;
        *registered = true;
        fprintf(stderr, "synth_worker: registered as worker %" PRIu32 " (epoch %" PRIu64 ")\n",
                msg->u.registered.worker_id, w->epoch);
        return s_send_credit(w) == 0 ? 1 : -1;
    case HQ_MSG_ASSIGN:
        w->bytes_in += size;
        return s_handle_assign(w, &msg->u.assign) == 0 ? 1 : -1;
    case HQ_MSG_HEARTBEAT:
    case HQ_MSG_CANCEL:
        return 1;
    case HQ_MSG_STOP:
        fprintf(stderr, "synth_worker: broker sent STOP (reason %" PRIu32 ")\n",
                msg->u.goodbye.reason);
        return 0;
    case HQ_MSG_ERROR:
        fprintf(stderr, "synth_worker: broker error %" PRIu32 ": %s\n", msg->u.error.code,
                msg->u.error.message ? msg->u.error.message : "");
        return -1;
    default:
        fprintf(stderr, "synth_worker: unexpected %s\n", hq_msg_type_name(msg->hdr.type));
        return 1;
    }
}

static int s_connect(s_worker_t *w)
{
    hq_err_t err;
    hq_access_t access;
    char *dir = hq_server_dir_default(w->opts.server_dir);
    char *rdir = hq_server_dir_resolve(dir, &err);
    free(dir);
    if (!rdir) {
        fprintf(stderr, "synth_worker: %s\n", err.text);
        return -1;
    }
    char *path = hq_asprintf("%s/access.json", rdir);
    free(rdir);
    int rc = hq_access_read(path, &access, false, &err);
    if (rc != 0) {
        fprintf(stderr, "synth_worker: %s: %s\n", path, err.text);
        free(path);
        return -1;
    }
    free(path);
    if (!access.worker.present) {
        fprintf(stderr, "synth_worker: the access file has no worker section\n");
        return -1;
    }
    w->sock = zsock_new(ZMQ_DEALER);
    if (!w->sock || hq_access_setup_socket(w->sock, &access.worker, &err) != 0) {
        fprintf(stderr, "synth_worker: socket setup failed: %s\n", w->sock ? err.text : "");
        return -1;
    }
    w->handle = zsock_resolve(w->sock);
    char *ep = hq_access_endpoint(&access.worker);
    rc = zsock_connect(w->sock, "%s", ep);
    if (rc != 0)
        fprintf(stderr, "synth_worker: cannot connect to %s\n", ep);
    free(ep);
    return rc;
}

static void s_report(const s_worker_t *w, uint64_t start_ns, bool complete)
{
    uint64_t end = w->last_done_ns ? w->last_done_ns : hq_mono_ns();
    double secs = w->first_assign_ns ? (double)(end - w->first_assign_ns) / 1e9 : 0.0;
    double total = (double)(end - start_ns) / 1e9;
    double rate = secs > 0 ? (double)w->finished / secs : 0.0;
    printf("synth_worker tasks=%" PRIu64 " complete=%s cpus=%" PRIu32 " prefetch=%" PRIu32
           " assigns=%" PRIu64 " results=%" PRIu64 " avg_batch=%.1f min_batch=%" PRIu32
           " max_batch=%" PRIu32 " assign_bytes_per_task=%.1f decode_s=%.3f send_s=%.3f"
           " total_s=%.3f seconds=%.3f tasks_per_s=%.1f\n",
           w->finished, complete ? "yes" : "no", w->opts.cpus, w->opts.prefetch, w->assigns,
           w->results, w->assigns ? (double)w->finished / (double)w->assigns : 0.0, w->min_batch,
           w->max_batch, w->finished ? (double)w->bytes_in / (double)w->finished : 0.0,
           (double)w->recv_ns / 1e9, (double)w->send_ns / 1e9, total, secs, rate);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    s_worker_t w = {0};
    if (s_parse_opts(argc, argv, &w.opts) != 0) {
        s_usage();
        return 2;
    }
    hq_log_init(false);
    w.heartbeat_ns = 8 * S_NS;
    w.labels = hq_calloc(w.opts.cpus, sizeof *w.labels);
    for (uint32_t i = 0; i < w.opts.cpus; i++)
        w.labels[i] = hq_asprintf("%" PRIu32, i);

    int exit_code = 1;
    uint64_t start_ns = hq_mono_ns();
    uint64_t deadline = start_ns + (uint64_t)(w.opts.timeout_s * 1e9);
    bool registered = false, stopped = false;
    if (s_connect(&w) != 0 || s_send_register(&w) != 0)
        goto done;

    while (w.finished < w.opts.n && !stopped) {
        uint64_t now = hq_mono_ns();
        if (now >= deadline) {
            fprintf(stderr, "synth_worker: timed out after %.0f s\n", w.opts.timeout_s);
            break;
        }
        if (registered && now - w.last_send_ns >= w.heartbeat_ns / 2 &&
            s_send_simple(&w, HQ_MSG_HEARTBEAT) != 0)
            break;
        zmq_pollitem_t item = {.socket = w.handle, .events = ZMQ_POLLIN};
        int rc = zmq_poll(&item, 1, 500);
        if (rc < 0) {
            if (zmq_errno() == EINTR)
                continue;
            fprintf(stderr, "synth_worker: poll failed: %s\n", zmq_strerror(zmq_errno()));
            break;
        }
        if (rc == 0)
            continue;
        /* Drain everything queued before polling again. */
        for (;;) {
            size_t size = 0;
            hq_msg_t *msg = s_recv(&w, &size);
            if (!msg)
                break;
            int h = s_handle(&w, msg, size, &registered);
            hq_msg_destroy(&msg);
            if (h <= 0) {
                stopped = true;
                break;
            }
            if (w.finished >= w.opts.n)
                break;
        }
    }
    if (w.finished >= w.opts.n) {
        exit_code = 0;
        s_send_simple(&w, HQ_MSG_GOODBYE);
    }
    s_report(&w, start_ns, exit_code == 0);

done:
    /* The last RESULTS and the GOODBYE may still be queued: closing with linger 0
     * would drop them and leave the broker with tasks it never hears back about. */
    if (w.sock)
        zsock_set_linger(w.sock, 5000);
    zsock_destroy(&w.sock);
    for (uint32_t i = 0; i < w.opts.cpus; i++)
        free(w.labels[i]);
    free(w.labels);
    free(w.events);
    free(w.allocs);
    return exit_code;
}
