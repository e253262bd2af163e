/* hq_worker_main: `hq worker start` flags (CLI.md §3.2), resource and manager
 * detection, registration with the broker, then the event loop: broker messages,
 * child exits and signals (one signalfd), heartbeats, idle timeout, time limit and
 * the policy for a lost server.
 *
 * --on-server-lost finish-running: the worker keeps its running tasks, takes no new
 * ones and registers again with exponential back-off (0.5 s doubling to 32 s) for a
 * reconnect window (60 s; the environment variable HQ_RECONNECT_WINDOW, a duration,
 * changes it, "0s" disables reconnecting). Each attempt re-reads the access file (a
 * restarted server may listen elsewhere) and reports the task instances it still runs
 * or finished meanwhile, so the server re-adopts them instead of running them again;
 * the ends follow in a RESULTS right after REGISTERED. After the window it finishes
 * its tasks and exits 1. */
#include "wk.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#define HQ_LOG_MODULE "hq::worker"
#include "hq_access.h"
#include "hq_duration.h"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_render.h"
#include "hq_util.h"
#include "worker.h"

#define WK_REGISTER_TIMEOUT_MS 15000
#define WK_DEFAULT_HEARTBEAT_NS (8 * HQ_NS_PER_SEC)
#define WK_RECONNECT_WINDOW_NS (60 * HQ_NS_PER_SEC)
#define WK_BACKOFF_START_NS (500 * HQ_NS_PER_MS)
#define WK_BACKOFF_MAX_NS (32 * HQ_NS_PER_SEC)

static const hq_opt_t s_opts[] = {
    {"cpus", 0, HQ_OPT_VALUE, "CPUS", "How many cores should be allocated for the worker"},
    {"resource", 0, HQ_OPT_MULTI, "RESOURCE", "Resources provided by the worker"},
    {"group", 0, HQ_OPT_VALUE, "GROUP", "Worker group (default: allocation id or \"default\")"},
    {"coupling", 0, HQ_OPT_VALUE, "COUPLING", "Resource coupling"},
    {"detect-resources", 0, HQ_OPT_VALUE, "DETECT_RESOURCES",
     "Resources to detect: all, none or a comma list"},
    {"no-hyper-threading", 0, HQ_OPT_FLAG, NULL, "Ignore hyper-threading while detecting CPUs"},
    {"idle-timeout", 0, HQ_OPT_VALUE, "IDLE_TIMEOUT", "Stop after being idle this long"},
    {"overview-interval", 0, HQ_OPT_VALUE, "OVERVIEW_INTERVAL", "Overview interval (0s = off)"},
    {"min-utilization", 0, HQ_OPT_VALUE, "MIN_UTILIZATION", "Minimal utilization (0.0-1.0)"},
    {"heartbeat", 0, HQ_OPT_VALUE, "HEARTBEAT", "Heartbeat interval [default: 8s]"},
    {"time-limit", 0, HQ_OPT_VALUE, "TIME_LIMIT", "Stop after this time"},
    {"manager", 0, HQ_OPT_VALUE, "MANAGER", "detect, none, pbs or slurm [default: detect]"},
    {"hostname", 0, HQ_OPT_VALUE, "HOSTNAME", "Overwrite the worker hostname"},
    {"on-server-lost", 0, HQ_OPT_VALUE, "ON_SERVER_LOST", "stop or finish-running [default: stop]"},
    {"work-dir", 0, HQ_OPT_VALUE, "WORK_DIR", "Working directory of the worker"},
    {"retract-check-interval", 0, HQ_OPT_VALUE, "RETRACT_CHECK_INTERVAL",
     "Retract check interval [default: 30s]"},
    {NULL, 0, 0, NULL, NULL},
};

/* ---- configuration ---- */

/* Exit code 2 for command-line errors, 1 for HQ-level errors. */
typedef struct s_cfg_err {
    int code;
    hq_err_t err;
} s_cfg_err_t;

static int s_cli_error(s_cfg_err_t *e, const char *flag, const char *value, const char *detail)
{
    hq_args_invalid_value(&e->err, s_opts, flag, value, detail);
    e->code = 2;
    return -1;
}

static int s_choice_error(s_cfg_err_t *e, const char *flag, const char *vname, const char *value,
                          const char *choices)
{
    hq_err_set(&e->err, "error: invalid value '%s' for '--%s <%s>'\n  [possible values: %s]", value,
               flag, vname, choices);
    e->code = 2;
    return -1;
}

static int s_hq_error(s_cfg_err_t *e, const char *text)
{
    hq_err_set(&e->err, "%s", text);
    e->code = 1;
    return -1;
}

static int s_duration(const hq_args_t *a, const char *flag, uint64_t *out, s_cfg_err_t *e)
{
    const char *v = hq_args_get(a, flag);
    if (!v)
        return 0;
    hq_err_t err;
    if (hq_duration_parse(v, out, &err) != 0)
        return s_cli_error(e, flag, v, err.text);
    return 0;
}

static char *s_make_work_dir(const char *given, hq_err_t *err)
{
    if (given) {
        char *cwd = getcwd(NULL, 0);
        char *abs = wk_path_abs(given, cwd);
        free(cwd);
        char *probe = hq_asprintf("%s/.", abs);
        int rc = wk_mkdir_parents(probe);
        free(probe);
        if (rc != 0) {
            hq_err_set(err, "Cannot create working directory \"%s\": %s", abs, strerror(errno));
            free(abs);
            return NULL;
        }
        return abs;
    }
    const char *tmp = getenv("TMPDIR");
    char *tmpl = hq_asprintf("%s/hq-workerXXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpl)) {
        hq_err_set(err, "Cannot create a temporary working directory: %s", strerror(errno));
        free(tmpl);
        return NULL;
    }
    char *wd = hq_asprintf("%s/work", tmpl);
    free(tmpl);
    if (mkdir(wd, 0700) != 0) {
        hq_err_set(err, "Cannot create \"%s\": %s", wd, strerror(errno));
        free(wd);
        return NULL;
    }
    return wd;
}

static int s_resources(const hq_args_t *a, hq_worker_conf_t *c, s_cfg_err_t *e)
{
    hq_wres_list_t *l = &c->resources;
    const char *cpus = hq_args_get(a, "cpus");
    size_t nres = hq_args_count(a, "resource");
    for (size_t i = 0; i < nres; i++) {
        const char *v = hq_args_at(a, "resource", i);
        hq_wres_t r;
        hq_err_t err;
        if (hq_wres_parse_named(v, &r, &err) != 0)
            return s_cli_error(e, "resource", v, err.text);
        if (wk_wres_list_find(l, r.name) >= 0) {
            hq_err_set(&e->err, "Resource '%s' defined more than once", r.name);
            e->code = 1;
            hq_wres_clear(&r);
            return -1;
        }
        if (strcmp(r.name, "cpus") == 0) {
            if (cpus) {
                hq_wres_clear(&r);
                return s_hq_error(e,
                                  "Parameters --cpus and --resource cpus=... cannot be combined");
            }
            if (r.kind == HQ_RES_SUM) {
                hq_wres_clear(&r);
                return s_hq_error(
                    e, "Resource kind `sum` cannot be used with CPUs. CPUs must have identity");
            }
        }
        wk_wres_list_push(l, &r);
    }
    if (cpus) {
        hq_wres_t r;
        hq_err_t err;
        if (hq_wres_parse_cpus(cpus, &r, &err) != 0)
            return s_cli_error(e, "cpus", cpus, err.text);
        wk_wres_list_push(l, &r);
    }
    unsigned bits = WK_DETECT_ALL;
    const char *det = hq_args_get(a, "detect-resources");
    if (det) {
        hq_err_t err;
        if (wk_detect_parse(det, &bits, &err) != 0)
            return s_cli_error(e, "detect-resources", det, err.text);
    }
    if (wk_wres_list_find(l, "cpus") < 0 && !(bits & WK_DETECT_CPUS))
        return s_hq_error(e,
                          "You have to specify --cpus explicitly when opting out of CPU automatic "
                          "detection");
    hq_err_t err;
    if (wk_detect_all(bits, hq_args_has(a, "no-hyper-threading"), l, &err) != 0)
        return s_hq_error(e, err.text);
    wk_wres_list_sort(l);
    /* Coupling indices refer to the name-sorted list. */
    const char *cpl = hq_args_get(a, "coupling");
    if (cpl && hq_coupling_parse(cpl, l, &c->coupling, &c->n_coupling, &err) != 0)
        return s_cli_error(e, "coupling", cpl, err.text);
    return 0;
}

static int s_configure(wk_t *w, const hq_args_t *a, s_cfg_err_t *e)
{
    hq_worker_conf_t *c = &w->conf;
    c->heartbeat_ns = WK_DEFAULT_HEARTBEAT_NS;
    if (s_duration(a, "heartbeat", &c->heartbeat_ns, e) != 0 ||
        s_duration(a, "idle-timeout", &c->idle_timeout_ns, e) != 0 ||
        s_duration(a, "time-limit", &c->time_limit_ns, e) != 0)
        return -1;
    uint64_t retract = 30 * HQ_NS_PER_SEC;
    if (s_duration(a, "retract-check-interval", &retract, e) != 0)
        return -1;
    if (c->heartbeat_ns < HQ_NS_PER_MS)
        return s_cli_error(e, "heartbeat", hq_args_get(a, "heartbeat"),
                           "the heartbeat interval must be at least 1ms");
    const char *ov = hq_args_get(a, "overview-interval");
    if (ov) {
        hq_err_t err;
        if (hq_duration_parse_human(ov, &c->overview_ns, &err) != 0)
            return s_cli_error(e, "overview-interval", ov, err.text);
    }
    const char *mu = hq_args_get(a, "min-utilization");
    if (mu) {
        char *end;
        errno = 0;
        double v = strtod(mu, &end);
        if (end == mu || *end || errno || isnan(v))
            return s_cli_error(e, "min-utilization", mu, "invalid float literal");
        if (v < 0.0 || v > 1.0)
            return s_cli_error(e, "min-utilization", mu,
                               "Minimal utilization has to be in the interval [0.0, 1.0].");
        c->min_utilization = v;
    }
    const char *lost = hq_args_get(a, "on-server-lost");
    if (lost && strcmp(lost, "stop") == 0)
        c->on_server_lost = HQ_LOST_STOP;
    else if (lost && strcmp(lost, "finish-running") == 0)
        c->on_server_lost = HQ_LOST_FINISH_RUNNING;
    else if (lost)
        return s_choice_error(e, "on-server-lost", "ON_SERVER_LOST", lost, "stop, finish-running");
    const char *mgr = hq_args_get(a, "manager");
    if (mgr && strcmp(mgr, "detect") != 0 && strcmp(mgr, "none") != 0 && strcmp(mgr, "pbs") != 0 &&
        strcmp(mgr, "slurm") != 0)
        return s_choice_error(e, "manager", "MANAGER", mgr, "detect, none, pbs, slurm");
    if (s_resources(a, c, e) != 0)
        return -1;
    wk_manager_info_t mi;
    if (wk_manager_detect(mgr ? mgr : "detect", &mi, &e->err) != 0) {
        e->code = 2;
        return -1;
    }
    c->manager = mi.manager;
    c->manager_job_id = hq_strdup(mi.job_id ? mi.job_id : "");
    if (!hq_args_has(a, "time-limit") && mi.remaining_ns)
        c->time_limit_ns = mi.remaining_ns;
    const char *group = hq_args_get(a, "group");
    c->group = hq_strdup(group ? group : mi.job_id ? mi.job_id : "default");
    wk_manager_info_clear(&mi);
    const char *host = hq_args_get(a, "hostname");
    c->hostname = host ? hq_strdup(host) : hq_hostname();
    c->work_dir = s_make_work_dir(hq_args_get(a, "work-dir"), &e->err);
    if (!c->work_dir) {
        e->code = 1;
        return -1;
    }
    if (!hq_args_get(a, "work-dir")) { /* ".../hq-workerXXXXXX/work": remove it at exit */
        w->temp_root = hq_strdup(c->work_dir);
        char *slash = strrchr(w->temp_root, '/');
        if (slash)
            *slash = '\0';
    }
    c->listen_address = hq_strdup("");
    c->pid = (uint32_t)getpid();
    c->started_ns = hq_wall_ns();
    c->version = hq_strdup(HQ_VERSION);
    return 0;
}

/* ---- connecting ---- */

static char *s_json_quote(const char *s)
{
    json_t *str = json_string(s);
    char *out = str ? json_dumps(str, JSON_ENCODE_ANY) : NULL;
    json_decref(str);
    char *copy = out ? hq_strdup(out) : hq_asprintf("\"%s\"", s);
    free(out);
    return copy;
}

/* " --server-dir X" when X is not the default $HOME/.hq-server. */
static char *s_dir_hint(const hq_global_t *g)
{
    const char *home = getenv("HOME");
    if (home && *home) {
        char *def = hq_asprintf("%s/.hq-server", home);
        bool same = g->server_dir && strcmp(def, g->server_dir) == 0;
        free(def);
        if (same)
            return hq_strdup("");
    }
    return hq_asprintf(" --server-dir %s", g->server_dir ? g->server_dir : "");
}

static void s_set_caused(hq_err_t *err, const char *top, const char *cause)
{
    const char *causes[1] = {cause};
    char *text = hq_error_with_causes(top, causes, cause ? 1 : 0);
    hq_err_set(err, "%s", text);
    free(text);
}

static int s_read_access(wk_t *w, hq_access_t *acc, hq_err_t *err)
{
    hq_err_t inner;
    char *resolved = hq_server_dir_resolve(w->g.server_dir, &inner);
    if (!resolved) {
        s_set_caused(err, "Invalid server directory", inner.text);
        return -1;
    }
    char *path = hq_asprintf("%s/access.json", resolved);
    char *cause = NULL;
    int rc = -1;
    struct stat st;
    if (stat(path, &st) != 0) {
        cause = hq_asprintf("%s (os error %d)", strerror(errno), errno);
    } else if (hq_access_read(path, acc, true, &inner) != 0) {
        if (strncmp(inner.text, "Hyperqueue version mismatch", 27) == 0) {
            hq_err_set(err, "%s", inner.text);
            goto done;
        }
        cause = hq_strdup(inner.text);
    } else if (!acc->worker.present) {
        cause = hq_strdup("The access file has no worker record");
    } else {
        rc = 0;
    }
    if (rc != 0) {
        char *q = s_json_quote(resolved);
        char *hint = s_dir_hint(&w->g);
        char *top = hq_asprintf("No running instance of HQ found at %s.\nTry to start the server: "
                                "`hq server start%s` or use a different server directory.",
                                q, hint);
        s_set_caused(err, top, cause);
        free(top);
        free(hint);
        free(q);
    }
done:
    free(cause);
    free(path);
    free(resolved);
    return rc;
}

static hq_msg_t *s_recv(wk_t *w)
{
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    if (zmq_msg_recv(&frame, w->handle, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&frame);
        return NULL;
    }
    hq_err_t err;
    hq_msg_t *msg = hq_msg_decode(zmq_msg_data(&frame), zmq_msg_size(&frame), &err);
    bool more = zmq_msg_more(&frame);
    zmq_msg_close(&frame);
    while (more) { /* a DEALER gets single frames; drop anything else */
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, w->handle, ZMQ_DONTWAIT) < 0)
            more = false;
        else
            more = zmq_msg_more(&frame);
        zmq_msg_close(&frame);
    }
    if (!msg) {
        hq_warn("Ignoring an invalid message from the server: %s", err.text);
        return NULL;
    }
    w->last_recv = hq_mono_ns();
    return msg;
}

/* Reads one event of the socket monitor (0 = none). */
static uint16_t s_monitor_read(wk_t *w)
{
    zmsg_t *ev = zmsg_recv(w->mon);
    if (!ev)
        return 0;
    zframe_t *head = zmsg_first(ev);
    uint16_t event = 0;
    if (head && zframe_size(head) >= 6)
        memcpy(&event, zframe_data(head), sizeof event);
    zmsg_destroy(&ev);
    return event;
}

static bool s_handshake_failed(uint16_t event)
{
    return event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ||
           event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
           event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
}

/* The DEALER's connection events. libzmq reconnects a broken connection by itself
 * (same routing id, so the broker keeps the session); what was in flight on the old
 * one may be lost, so after a reconnect the unacknowledged RESULTS go out again and a
 * heartbeat tells the broker at once how far we got. */
static int s_on_monitor(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    (void)sock;
    wk_t *w = arg;
    uint16_t event = s_monitor_read(w);
    if (event == ZMQ_EVENT_DISCONNECTED) {
        hq_debug("The connection to the server broke; reconnecting");
    } else if (s_handshake_failed(event)) {
        hq_debug("The server refused a connection handshake (event %u)", (unsigned)event);
    } else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED && ++w->n_handshakes > 1 && !w->lost &&
               w->epoch) {
        hq_debug("Reconnected to the server; %u unacknowledged message%s sent again", w->outbox.n,
                 w->outbox.n == 1 ? "" : "s");
        wk_link_retransmit(w, true);
        wk_link_send(w, HQ_MSG_HEARTBEAT, NULL);
    }
    return 0;
}

/* Watches w->sock's connection (w->mon). Without a monitor the worker still works;
 * a lost message is then found from the broker's acks alone. */
static void s_monitor_open(wk_t *w)
{
    static unsigned s_mon_seq;
    char endpoint[96];
    snprintf(endpoint, sizeof endpoint, "inproc://hq-worker-monitor-%ld-%u", (long)getpid(),
             ++s_mon_seq);
    w->n_handshakes = 0;
    int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    if (zmq_socket_monitor(w->handle, endpoint, events) != 0) {
        hq_debug("Cannot monitor the server connection: %s", zmq_strerror(zmq_errno()));
        return;
    }
    w->mon = zsock_new_pair(endpoint);
    if (w->mon && w->loop)
        zloop_reader(w->loop, w->mon, s_on_monitor, w);
}

static void s_monitor_close(wk_t *w)
{
    if (!w->mon)
        return;
    if (w->loop)
        zloop_reader_end(w->loop, w->mon);
    zsock_destroy(&w->mon);
}

/* Reads the access file and connects a new DEALER (w->sock). host gets "host:port". */
static int s_open(wk_t *w, char *host, size_t host_len, hq_err_t *err)
{
    hq_access_t acc;
    memset(&acc, 0, sizeof acc);
    if (s_read_access(w, &acc, err) != 0)
        return -1;
    w->sock = zsock_new(ZMQ_DEALER);
    if (!w->sock) {
        hq_err_set(err, "Cannot create a socket: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    w->handle = zsock_resolve(w->sock);
    /* A routing id of our own, kept when libzmq reconnects this socket: the broker
     * then still knows the session. A new socket gets a new one. */
    zuuid_t *uuid = zuuid_new();
    uint8_t rid[16];
    memcpy(rid, zuuid_data(uuid), sizeof rid);
    zuuid_destroy(&uuid);
    rid[0] |= 0x80; /* an id starting with 0 is reserved */
    zmq_setsockopt(w->handle, ZMQ_ROUTING_ID, rid, sizeof rid);
    s_monitor_open(w);
    char *endpoint = hq_access_endpoint(&acc.worker);
    int rc = hq_access_setup_socket_role(w->sock, &acc.worker, HQ_ROLE_WORKER, err);
    if (rc == 0 && zsock_connect(w->sock, "%s", endpoint) != 0)
        rc = hq_err_set(err, "Cannot connect to %s", endpoint);
    free(endpoint);
    snprintf(host, host_len, "%s:%u", acc.worker.host, (unsigned)acc.worker.port);
    memset(&acc, 0, sizeof acc); /* secrets no longer needed */
    return rc;
}

static int s_register(wk_t *w, hq_err_t *err)
{
    char host[300];
    if (s_open(w, host, sizeof host, err) != 0)
        return -1;

    hq_msg_t reg;
    memset(&reg, 0, sizeof reg);
    reg.u.reg.conf = w->conf;
    reg.u.reg.prefetch = w->prefetch;
    if (wk_link_send(w, HQ_MSG_REGISTER, &reg) != 0)
        return hq_err_set(err, "Cannot send the registration to %s", host);
    uint64_t deadline = hq_mono_ns() + WK_REGISTER_TIMEOUT_MS * HQ_NS_PER_MS;
    uint32_t refusals = 0;
    for (;;) {
        uint64_t now = hq_mono_ns();
        if (now >= deadline)
            break;
        zmq_pollitem_t items[2] = {
            {.socket = w->handle, .events = ZMQ_POLLIN},
            {.socket = w->mon ? zsock_resolve(w->mon) : NULL, .events = ZMQ_POLLIN}};
        int prc = zmq_poll(items, w->mon ? 2 : 1, (long)((deadline - now) / HQ_NS_PER_MS) + 1);
        if (prc < 0 && zmq_errno() == EINTR)
            continue;
        if (prc <= 0)
            continue;
        if (w->mon && (items[1].revents & ZMQ_POLLIN)) {
            /* A broker that refuses our keys makes libzmq retry silently forever: two
             * failed handshakes in a row (one could be a network hiccup) end it now. */
            uint16_t event = s_monitor_read(w);
            if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
                w->n_handshakes++;
                refusals = 0;
            } else if (s_handshake_failed(event) && ++refusals >= 2) {
                char *top = hq_asprintf("HQ server %s refused the worker's connection.", host);
                s_set_caused(err, top,
                             "Authentication failed during the encryption handshake: the access "
                             "file's worker key is not accepted by this server (the file may "
                             "belong to another server run, or be a client access file)");
                free(top);
                return -1;
            }
        }
        if (!(items[0].revents & ZMQ_POLLIN))
            continue;
        hq_msg_t *msg = s_recv(w);
        if (!msg)
            continue;
        if (msg->hdr.type == HQ_MSG_ERROR) {
            hq_err_set(err, "%s",
                       msg->u.error.message ? msg->u.error.message : "Registration refused");
            hq_msg_destroy(&msg);
            return -1;
        }
        if (msg->hdr.type != HQ_MSG_REGISTERED) {
            hq_msg_destroy(&msg);
            continue;
        }
        w->worker_id = msg->u.registered.worker_id;
        w->epoch = msg->hdr.epoch;
        wk_link_session_reset(w, msg->hdr.seq);
        w->server_uid = hq_strdup(msg->u.registered.server_uid ? msg->u.registered.server_uid : "");
        w->idle_timeout_ns =
            w->conf.idle_timeout_ns ? w->conf.idle_timeout_ns : msg->u.registered.idle_timeout_ns;
        hq_msg_destroy(&msg);
        return 0;
    }
    char *hint = s_dir_hint(&w->g);
    char *top = hq_asprintf("Access token found but HQ server %s is unreachable.\n"
                            "Try to (re)start the server using `hq server start%s`",
                            host, hint);
    s_set_caused(err, top, "The server did not answer the worker registration");
    free(top);
    free(hint);
    return -1;
}

/* ---- the event loop ---- */

static void s_goodbye(wk_t *w, enum hq_goodbye_reason reason)
{
    if (!w->sock || w->lost)
        return; /* nobody to say it to */
    wk_link_flush(w);
    hq_msg_t bye;
    memset(&bye, 0, sizeof bye);
    bye.u.goodbye.reason = reason;
    wk_link_send(w, HQ_MSG_GOODBYE, &bye);
    /* Give the message a moment to leave before the socket closes (linger 0). */
    zsock_set_linger(w->sock, 1000);
}

static void s_kill_all(wk_t *w, const char *why)
{
    if (w->n_running > 0)
        hq_info("%s; killing %u running task%s", why, w->n_running, w->n_running == 1 ? "" : "s");
    wk_tasks_kill_all(w);
}

static int s_on_idle(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    wk_t *w = arg;
    w->idle_timer = -1;
    if (wk_tasks_held(w) > 0)
        return 0;
    hq_info("Idle timeout reached; stopping the worker");
    s_goodbye(w, HQ_BYE_IDLE_TIMEOUT);
    w->exit_code = 0;
    return -1;
}

/* Arms the idle timer when the worker holds no task, disarms it otherwise. */
static void s_idle_update(wk_t *w)
{
    bool idle = wk_tasks_held(w) == 0;
    if (!idle && w->idle_timer >= 0) {
        zloop_timer_end(w->loop, w->idle_timer);
        w->idle_timer = -1;
    } else if (idle && w->idle_timer < 0 && w->idle_timeout_ns > 0) {
        uint64_t ms = w->idle_timeout_ns / HQ_NS_PER_MS;
        w->idle_timer = zloop_timer(w->loop, ms ? (size_t)ms : 1, 1, s_on_idle, w);
    }
}

static int s_on_time_limit(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    wk_t *w = arg;
    hq_info("Worker time limit reached");
    s_kill_all(w, "Worker time limit reached");
    s_goodbye(w, HQ_BYE_TIME_LIMIT);
    w->exit_code = 0;
    return -1;
}

static int s_on_heartbeat(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    wk_t *w = arg;
    if (!w->lost)
        wk_link_send(w, HQ_MSG_HEARTBEAT, NULL);
    return 0;
}

/* ---- reconnecting (finish-running) ---- */

static int s_on_msg(zloop_t *loop, zsock_t *sock, void *arg);

/* One attempt: a fresh connection to whatever the access file names now, and a
 * REGISTER that reports our tasks. The answer arrives in s_on_msg. */
static void s_reconnect_attempt(wk_t *w)
{
    s_monitor_close(w);
    if (w->sock) {
        zloop_reader_end(w->loop, w->sock);
        zsock_destroy(&w->sock);
        w->handle = NULL;
    }
    char host[300];
    hq_err_t err;
    if (s_open(w, host, sizeof host, &err) != 0) {
        hq_debug("Reconnect attempt failed: %s", err.text);
        s_monitor_close(w);
        if (w->sock) {
            zsock_destroy(&w->sock);
            w->handle = NULL;
        }
        return;
    }
    zloop_reader(w->loop, w->sock, s_on_msg, w);
    zloop_reader_set_tolerant(w->loop, w->sock);
    w->epoch = 0;
    w->seq = 0;
    wk_link_session_reset(w, 0);
    hq_msg_t reg;
    memset(&reg, 0, sizeof reg);
    reg.u.reg.conf = w->conf;
    reg.u.reg.prefetch = w->prefetch;
    reg.u.reg.n_running = w->n_running;
    reg.u.reg.old_worker_id = w->worker_id;
    reg.u.reg.reports = wk_link_reports(w, &reg.u.reg.n_reports);
    hq_debug("Registering again at %s with %u task report%s", host, reg.u.reg.n_reports,
             reg.u.reg.n_reports == 1 ? "" : "s");
    wk_link_send(w, HQ_MSG_REGISTER, &reg);
    free(reg.u.reg.reports);
}

/* The window closed: finish the running tasks (s_on_signal exits after the last). */
static int s_reconnect_give_up(wk_t *w)
{
    w->reconnecting = false;
    wk_link_events_clear(w);
    wk_link_kept_clear(w);
    if (w->n_running == 0) {
        hq_error("Could not reconnect to the server; exiting");
        w->exit_code = 1;
        return -1;
    }
    hq_warn("Could not reconnect to the server; waiting for %u running task%s to finish, "
            "then exiting",
            w->n_running, w->n_running == 1 ? "" : "s");
    return 0;
}

static int s_on_reconnect(zloop_t *loop, int timer_id, void *arg)
{
    (void)timer_id;
    wk_t *w = arg;
    w->reconnect_timer = -1;
    if (!w->reconnecting)
        return 0;
    uint64_t now = hq_mono_ns();
    if (now >= w->reconnect_end)
        return s_reconnect_give_up(w);
    s_reconnect_attempt(w);
    uint64_t delay = w->backoff_ns;
    w->backoff_ns = w->backoff_ns * 2 > WK_BACKOFF_MAX_NS ? WK_BACKOFF_MAX_NS : w->backoff_ns * 2;
    if (now + delay > w->reconnect_end)
        delay = w->reconnect_end - now;
    uint64_t ms = delay / HQ_NS_PER_MS;
    w->reconnect_timer = zloop_timer(loop, ms ? (size_t)ms : 1, 1, s_on_reconnect, w);
    return 0;
}

static void s_reconnect_start(wk_t *w)
{
    w->reconnecting = true;
    w->reconnect_end = hq_mono_ns() + w->reconnect_window_ns;
    w->backoff_ns = WK_BACKOFF_START_NS;
    uint64_t ms = w->backoff_ns / HQ_NS_PER_MS;
    w->reconnect_timer = zloop_timer(w->loop, (size_t)ms, 1, s_on_reconnect, w);
}

static void s_reregistered(wk_t *w, const hq_msg_t *msg)
{
    w->worker_id = msg->u.registered.worker_id;
    w->epoch = msg->hdr.epoch;
    wk_link_session_reset(w, msg->hdr.seq);
    free(w->server_uid);
    w->server_uid = hq_strdup(msg->u.registered.server_uid ? msg->u.registered.server_uid : "");
    w->tctx.server_uid = w->server_uid;
    w->lost = false;
    w->draining = false;
    w->reconnecting = false;
    if (w->reconnect_timer >= 0) {
        zloop_timer_end(w->loop, w->reconnect_timer);
        w->reconnect_timer = -1;
    }
    /* The new session's scheduler does not count what runs already. */
    for (wk_task_t *t = w->running; t; t = t->next)
        if (!t->carried) {
            t->carried = true;
            w->n_carried++;
        }
    w->last_credit = UINT32_MAX;
    hq_info("Reconnected to the server as worker %u; %u running task%s reported", w->worker_id,
            w->n_running, w->n_running == 1 ? "" : "s");
    wk_link_resend_ends(w);
}

static int s_on_lost_check(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    wk_t *w = arg;
    if (w->lost)
        return 0;
    uint64_t now = hq_mono_ns();
    if (now - w->last_recv <= 2 * w->conf.heartbeat_ns)
        return 0;
    w->lost = true;
    w->draining = true;
    /* The session is over: its unacknowledged RESULTS are never sent again (the ends
     * among them are kept for a reconnect, see wk_link_reports). */
    hq_outbox_clear(&w->outbox);
    wk_tasks_drop_queued(w, false);
    if (w->conf.on_server_lost == HQ_LOST_FINISH_RUNNING && w->reconnect_window_ns > 0) {
        hq_warn("Server lost; keeping %u running task%s and trying to reconnect for %.0f s",
                w->n_running, w->n_running == 1 ? "" : "s", (double)w->reconnect_window_ns / 1e9);
        s_reconnect_start(w);
        return 0;
    }
    wk_link_events_clear(w);
    wk_link_kept_clear(w);
    if (w->conf.on_server_lost == HQ_LOST_FINISH_RUNNING && w->n_running > 0) {
        hq_warn("Server lost; waiting for %u running task%s to finish, then exiting", w->n_running,
                w->n_running == 1 ? "" : "s");
        return 0;
    }
    if (w->n_running > 0)
        hq_error("Server lost; killing %u running task%s and exiting", w->n_running,
                 w->n_running == 1 ? "" : "s");
    else
        hq_error("Server lost; exiting");
    wk_tasks_kill_all(w);
    w->exit_code = 1;
    return -1;
}

static int s_on_signal(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void)loop;
    (void)item;
    wk_t *w = arg;
    struct signalfd_siginfo si[16];
    ssize_t n = read(w->sigfd, si, sizeof si);
    bool child = false;
    int term = 0;
    for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof si[0]; i++) {
        if (si[i].ssi_signo == SIGCHLD)
            child = true;
        else
            term = (int)si[i].ssi_signo;
    }
    if (child) {
        wk_tasks_reap(w);
        s_idle_update(w);
        if (w->lost && !w->reconnecting) {
            wk_link_events_clear(w); /* nobody to send them to */
            if (w->n_running == 0) {
                hq_info("All running tasks finished; exiting");
                w->exit_code = 1;
                return -1;
            }
        }
    }
    if (term) {
        hq_info("Received %s; stopping the worker", term == SIGINT    ? "SIGINT"
                                                    : term == SIGTERM ? "SIGTERM"
                                                                      : "signal");
        wk_link_reject_held(w);
        s_kill_all(w, "Worker stopping");
        s_goodbye(w, HQ_BYE_SIGNAL);
        w->exit_code = 0;
        return -1;
    }
    return 0;
}

static int s_on_msg(zloop_t *loop, zsock_t *sock, void *arg)
{
    (void)loop;
    (void)sock;
    wk_t *w = arg;
    /* Drain what is there, handle it, and let the 0 ms timer send one RESULTS. */
    for (int budget = 0; budget < 256; budget++) {
        hq_msg_t *msg = s_recv(w);
        if (!msg)
            break;
        if (w->lost) {
            if (w->reconnecting && msg->hdr.type == HQ_MSG_REGISTERED)
                s_reregistered(w, msg);
            else if (w->reconnecting && msg->hdr.type == HQ_MSG_ERROR)
                hq_warn("The server refused the registration: %s",
                        msg->u.error.message ? msg->u.error.message : "");
            hq_msg_destroy(&msg);
            continue;
        }
        if (msg->hdr.epoch != w->epoch && msg->hdr.type != HQ_MSG_HEARTBEAT) {
            hq_debug("Ignoring %s from epoch %llu", hq_msg_type_name(msg->hdr.type),
                     (unsigned long long)msg->hdr.epoch);
            hq_msg_destroy(&msg);
            continue;
        }
        if (msg->hdr.epoch == w->epoch && !wk_link_accept(w, msg)) {
            hq_msg_destroy(&msg);
            continue;
        }
        switch (msg->hdr.type) {
        case HQ_MSG_ASSIGN:
            wk_tasks_assign(w, &msg);
            s_idle_update(w);
            break;
        case HQ_MSG_CANCEL:
            wk_tasks_cancel(w, &msg->u.cancel);
            s_idle_update(w);
            break;
        case HQ_MSG_HEARTBEAT:
            break;
        case HQ_MSG_STOP: {
            uint32_t reason = msg->u.goodbye.reason;
            hq_msg_destroy(&msg);
            if (reason == HQ_BYE_SERVER_STOP) {
                hq_info("Server is stopping; stopping the worker");
                w->exit_code = 1;
            } else {
                hq_info("Worker stopped by the server");
                w->exit_code = 0;
            }
            s_kill_all(w, "Worker stopping");
            return -1;
        }
        case HQ_MSG_ERROR:
            hq_warn("Server error: %s", msg->u.error.message ? msg->u.error.message : "");
            break;
        default:
            hq_debug("Ignoring unexpected %s", hq_msg_type_name(msg->hdr.type));
            break;
        }
        hq_msg_destroy(&msg);
    }
    return 0;
}

static int s_run_loop(wk_t *w)
{
    w->loop = zloop_new();
    zloop_reader(w->loop, w->sock, s_on_msg, w);
    if (w->mon)
        zloop_reader(w->loop, w->mon, s_on_monitor, w);
    zloop_reader_set_tolerant(w->loop, w->sock);
    zmq_pollitem_t sig = {.socket = NULL, .fd = w->sigfd, .events = ZMQ_POLLIN};
    zloop_poller(w->loop, &sig, s_on_signal, w);
    uint64_t hb_ms = w->conf.heartbeat_ns / HQ_NS_PER_MS;
    zloop_timer(w->loop, hb_ms ? (size_t)hb_ms : 1, 0, s_on_heartbeat, w);
    uint64_t check_ms = hb_ms / 4 > 100 ? hb_ms / 4 : 100;
    zloop_timer(w->loop, (size_t)check_ms, 0, s_on_lost_check, w);
    if (w->conf.time_limit_ns > 0) {
        uint64_t ms = w->conf.time_limit_ns / HQ_NS_PER_MS;
        zloop_timer(w->loop, ms ? (size_t)ms : 1, 1, s_on_time_limit, w);
    }
    w->idle_timer = -1;
    w->reconnect_timer = -1;
    w->last_recv = hq_mono_ns();
    w->last_credit = UINT32_MAX;
    wk_link_credit_changed(w);
    s_idle_update(w);
    w->exit_code = -1;
    /* zloop_start returns when a handler ends the loop (exit_code set) or when
     * interrupted; only the first ends the worker. */
    for (int spins = 0; w->exit_code < 0 && !zsys_interrupted && spins < 1000000; spins++)
        zloop_start(w->loop);
    if (w->exit_code < 0)
        w->exit_code = 1;
    wk_tasks_kill_all(w);
    wk_link_events_clear(w);
    return w->exit_code;
}

char *wk_find_hq_binary(void)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    char *path = hq_asprintf("%s/hq", buf);
    if (access(path, X_OK) != 0) {
        free(path);
        return NULL;
    }
    return path;
}

static int s_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path); /* best effort: a file a task keeps open elsewhere stays */
    return 0;
}

static void s_cleanup(wk_t *w)
{
    if (w->temp_root) {
        /* The default work dir is the worker's own temporary directory: leave
         * nothing behind in /tmp (a --work-dir the user named is kept). */
        nftw(w->temp_root, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(w->temp_root);
        w->temp_root = NULL;
    }
    s_monitor_close(w);
    zloop_destroy(&w->loop);
    hq_outbox_clear(&w->outbox);
    if (w->sock) {
        zsock_destroy(&w->sock);
        /* Terminating the context waits (up to the linger) until a GOODBYE has
         * left, even when the caller then leaves with _exit. */
        zsys_shutdown();
    }
    if (w->sigfd >= 0)
        close(w->sigfd);
    wk_alloc_destroy(&w->alloc);
    free(w->ev);
    for (uint32_t i = 0; i < w->n_held; i++)
        free(w->held[i].error);
    free(w->held);
    wk_link_kept_clear(w);
    free(w->kept);
    free(w->kept_seq);
    free(w->kept_at);
    free(w->server_uid);
    free(w->hq_path);
    hq_worker_conf_t *c = &w->conf;
    free(c->hostname);
    free(c->group);
    free(c->work_dir);
    free(c->listen_address);
    free(c->manager_job_id);
    free(c->version);
    hq_wres_list_clear(&c->resources);
    free(c->coupling);
    hq_global_clear(&w->g);
}

int hq_worker_main(int argc, char **argv)
{
    /* Signals arrive through a signalfd; block them before any thread exists so
     * that no ZeroMQ thread takes them. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTSTP);
    pthread_sigmask(SIG_BLOCK, &set, &old);

    wk_t wk;
    wk_t *w = &wk;
    memset(w, 0, sizeof *w);
    w->sigfd = -1;
    int rc = 1;
    hq_err_t err;
    hq_args_t *a = hq_args_parse(s_opts, argc, argv, 0, false, "hq worker start", &err);
    if (!a) {
        fprintf(stderr, "%s\n", err.text);
        rc = 2;
        goto out;
    }
    if (hq_args_help(a)) {
        hq_args_print_help(s_opts, "hq worker start", "Start a worker");
        rc = 0;
        goto out;
    }
    if (hq_global_from_args(a, &w->g, &err) != 0) {
        fprintf(stderr, "%s\n", err.text);
        rc = 2;
        goto out;
    }
    hq_log_init(w->g.debug);
    hq_info("HyperQueue %s", HQ_VERSION);
    s_cfg_err_t ce = {0};
    if (s_configure(w, a, &ce) != 0) {
        if (ce.code == 2) {
            fprintf(stderr, "%s\n", ce.err.text);
            rc = 2;
        } else {
            rc = hq_output_error(&w->g, ce.err.text);
        }
        goto out;
    }
    uint32_t ncpus = 0;
    int ci = wk_wres_list_find(&w->conf.resources, "cpus");
    if (ci >= 0) {
        hq_amount_t cap = hq_wres_capacity(&w->conf.resources.res[ci]);
        ncpus = cap > 0 ? (uint32_t)cap : 1;
    }
    if (ncpus == 0)
        ncpus = 1;
    /* Long (or unknown) tasks: the cpus plus a small queue, so that no worker hoards
     * work others could run. Short tasks: a deep local queue of about
     * WK_QUEUE_WORK_NS of work per cpu, up to the registered prefetch, so the next
     * task starts the moment one ends and results travel in few, large messages
     * (tasks.c picks the credit from measured run times). */
    w->ncpus = ncpus;
    w->slots_long = ncpus + (ncpus < 4 ? 4 : ncpus);
    uint64_t deep = (uint64_t)ncpus * 32;
    w->prefetch = deep < 64 ? 64 : deep > 65536 ? 65536 : (uint32_t)deep;
    w->slots = w->slots_long;
    w->low_water = ncpus;
    w->flush_timer = -1;
    w->held_timer = -1;
    w->alloc = wk_alloc_new(&w->conf.resources);
    wk_alloc_set_coupling(w->alloc, w->conf.coupling, w->conf.n_coupling);
    w->hq_path = wk_find_hq_binary();
    w->reconnect_window_ns = WK_RECONNECT_WINDOW_NS;
    const char *rw = getenv("HQ_RECONNECT_WINDOW");
    if (rw && *rw && hq_duration_parse(rw, &w->reconnect_window_ns, &err) != 0) {
        hq_warn("Ignoring HQ_RECONNECT_WINDOW=%s: %s", rw, err.text);
        w->reconnect_window_ns = WK_RECONNECT_WINDOW_NS;
    }
    w->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (w->sigfd < 0) {
        rc = hq_output_error(&w->g, "Cannot create a signalfd");
        goto out;
    }
    if (s_register(w, &err) != 0) {
        rc = hq_output_error(&w->g, err.text);
        goto out;
    }
    w->tctx = (wk_task_ctx_t){.hq_path = w->hq_path,
                              .server_uid = w->server_uid,
                              .work_dir = w->conf.work_dir,
                              .hostname = w->conf.hostname};
    hq_info("Worker %u registered from %s", w->worker_id, w->conf.hostname);
    json_t *arr = json_array();
    json_array_append_new(arr, hq_worker_json(w->worker_id, &w->conf));
    hq_render_worker_info(&w->g, arr, false);
    json_decref(arr);
    fflush(stdout);
    rc = s_run_loop(w);
    hq_info("Worker %u stopped", w->worker_id);
out:
    hq_args_destroy(&a);
    s_cleanup(w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
