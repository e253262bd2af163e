/* hq_broker_main: `hq server start` flags, the server directory and access file,
 * startup (refusing to start over a live server) and shutdown. */
#define HQ_LOG_MODULE "hq::server"
#include "broker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cost.h"
#include "handshake.h"
#include "loop.h"
#include "query.h"
#include "tasks.h"
#include "workers.h"
#include "alloc/alloc.h"
#include "journal/glue.h"
#include "hq_cmdtable.h"
#include "hq_duration.h"
#include "hq_log.h"
#include "hq_render.h"
#include "hq_placeholder.h"
#include "hq_util.h"

#define HQ_PROBE_TIMEOUT_MS 1000

/* The options of `hq server start` (= hq-broker), from the command table. */
static const hq_opt_t *s_opts(void)
{
    return hq_cmd_find("server start")->opts;
}

static int s_parse_port(const char *flag, const char *v, uint16_t *out, hq_err_t *err)
{
    char *end = NULL;
    long p = v ? strtol(v, &end, 10) : -1;
    if (!v || !*v || *end || p < 0 || p > 65535)
        return hq_args_invalid_value(err, s_opts(), flag, v ? v : "",
                                     "invalid digit found in string");
    *out = (uint16_t)p;
    return 0;
}

static int s_parse_dur(const char *flag, const char *v, uint64_t *out, hq_err_t *err)
{
    hq_err_t e;
    if (hq_duration_parse(v, out, &e) != 0)
        return hq_args_invalid_value(err, s_opts(), flag, v, e.text);
    return 0;
}

/* True when a server answers SERVER_INFO at the access file of server_dir. */
static bool s_server_online(const char *server_dir)
{
    hq_err_t err;
    char *dir = hq_server_dir_resolve(server_dir, &err);
    if (!dir)
        return false;
    char *path = hq_asprintf("%s/access.json", dir);
    free(dir);
    hq_access_t a;
    int rc = hq_access_read(path, &a, false, &err);
    free(path);
    if (rc != 0 || !a.client.present)
        return false;
    zsock_t *s = zsock_new(ZMQ_DEALER);
    if (!s)
        return false;
    bool online = false;
    char *ep = hq_access_endpoint(&a.client);
    if (hq_access_setup_socket(s, &a.client, &err) == 0 && zsock_connect(s, "%s", ep) == 0) {
        hq_msg_t m = {0};
        m.hdr.version = HQ_PROTO_VERSION;
        m.hdr.type = HQ_MSG_SERVER_INFO;
        m.hdr.request_id = 1;
        uint8_t *buf = NULL;
        size_t len = 0;
        if (hq_msg_encode(&m, &buf, &len, &err) == 0) {
            zmq_send(zsock_resolve(s), buf, len, ZMQ_DONTWAIT);
            free(buf);
            zmq_pollitem_t pi = {.socket = zsock_resolve(s), .events = ZMQ_POLLIN};
            online = zmq_poll(&pi, 1, HQ_PROBE_TIMEOUT_MS) == 1;
        }
    }
    free(ep);
    zsock_set_linger(s, 0);
    zsock_destroy(&s);
    return online;
}

/* PATH made absolute against the current directory. Caller frees. */
static char *s_absolute(const char *path)
{
    if (path[0] == '/')
        return hq_strdup(path);
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        return hq_strdup(path);
    return hq_path_abs(path, cwd);
}

static void s_unprotected_warning(const char *side)
{
    const char *bang = "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!";
    hq_warn("%s", bang);
    hq_warn("Server is started with unprotected %s connections", side);
    hq_warn("Anyone can connect as a %s", side);
    hq_warn("%s", bang);
}

static void s_broker_free(hq_broker_t *b)
{
    hq_alloc_destroy(&b->alloc);
    hq_jr_close(b);
    hq_loop_stop(b);
    hq_broker_fini(b);
}

int hq_broker_main(int argc, char **argv)
{
    hq_err_t err;
    hq_args_t *args = hq_cmd_parse(hq_cmd_find("server start"), argc, argv, &err);
    if (!args) {
        fprintf(stderr, "%s\n", err.text);
        return 2;
    }
    if (hq_args_help(args) || hq_args_has(args, "version")) {
        if (hq_args_help(args))
            hq_cmd_print_help(hq_cmd_find("server start"), stdout);
        else
            printf("%s %s\n", program_invocation_short_name, HQ_VERSION);
        hq_args_destroy(&args);
        return 0;
    }
    hq_broker_t b;
    hq_broker_init(&b);
    uint16_t client_port = 0, worker_port = 0;
    uint64_t ignored, flush_ns = 100 * HQ_NS_PER_MS;
    int rc = hq_global_from_args(args, &b.conf.g, &err);
    if (rc == 0 && hq_args_get(args, "client-port"))
        rc = s_parse_port("client-port", hq_args_get(args, "client-port"), &client_port, &err);
    if (rc == 0 && hq_args_get(args, "worker-port"))
        rc = s_parse_port("worker-port", hq_args_get(args, "worker-port"), &worker_port, &err);
    if (rc == 0 && hq_args_get(args, "idle-timeout"))
        rc = s_parse_dur("idle-timeout", hq_args_get(args, "idle-timeout"), &b.conf.idle_timeout_ns,
                         &err);
    if (rc == 0 && hq_args_get(args, "journal-flush-period"))
        rc = s_parse_dur("journal-flush-period", hq_args_get(args, "journal-flush-period"),
                         &flush_ns, &err);
    if (rc == 0 && hq_args_get(args, "scheduler-time-limit"))
        rc = s_parse_dur("scheduler-time-limit", hq_args_get(args, "scheduler-time-limit"),
                         &ignored, &err);
    if (rc != 0) {
        fprintf(stderr, "%s\n", err.text);
        hq_args_destroy(&args);
        hq_broker_fini(&b);
        return 2;
    }
    hq_log_init(b.conf.g.debug);
    hq_cost_init();
    hq_info("HyperQueue %s", HQ_VERSION);
    int code = 1;
    const char *host_flag = hq_args_get(args, "host");
    char *host = host_flag ? hq_strdup(host_flag) : hq_hostname();
    b.conf.server_dir = hq_strdup(b.conf.g.server_dir);
    b.conf.start_ns = hq_wall_ns();
    b.reg.next_epoch = b.conf.start_ns;

    if (s_server_online(b.conf.server_dir)) {
        fprintf(stderr,
                "Server at %s is already online, please stop it first using `hq server stop "
                "--server-dir %s`\n",
                b.conf.server_dir, b.conf.server_dir);
        goto done;
    }
    hq_info("No online server found, starting a new server");
    const char *access_file = hq_args_get(args, "access-file");
    if (access_file) {
        if (hq_access_read(access_file, &b.conf.access, false, &err) != 0) {
            fprintf(stderr, "%s\n", err.text);
            goto done;
        }
        b.conf.access_file = access_file;
        /* Hosts and ports from the file unless given; keys and uid always from it. */
        if (host_flag) {
            snprintf(b.conf.access.client.host, sizeof b.conf.access.client.host, "%s", host);
            snprintf(b.conf.access.worker.host, sizeof b.conf.access.worker.host, "%s", host);
        }
        if (hq_args_get(args, "client-port") || !b.conf.access.client.present)
            b.conf.access.client.port = client_port;
        if (hq_args_get(args, "worker-port") || !b.conf.access.worker.present)
            b.conf.access.worker.port = worker_port;
        if (!b.conf.access.client.host[0])
            snprintf(b.conf.access.client.host, sizeof b.conf.access.client.host, "%s", host);
        if (!b.conf.access.worker.host[0])
            snprintf(b.conf.access.worker.host, sizeof b.conf.access.worker.host, "%s", host);
        b.conf.access.client.present = b.conf.access.worker.present = true;
    } else {
        hq_access_generate(&b.conf.access, host, client_port, host, worker_port);
        if (hq_args_has(args, "disable-client-authentication-and-encryption"))
            b.conf.access.client.has_secret = false;
        if (hq_args_has(args, "disable-worker-authentication-and-encryption"))
            b.conf.access.worker.has_secret = false;
    }
    snprintf(b.conf.access.version, sizeof b.conf.access.version, "%s", HQ_VERSION);
    b.conf.journal_salvage = hq_args_has(args, "journal-salvage");
    b.alloc = hq_alloc_new(&b); /* before the journal: replay restores its queues */
    if (hq_args_get(args, "journal")) {
        /* Restore before any socket binds; without --access-file the server uid is the
         * journal's, with one both must agree. */
        char *jpath = s_absolute(hq_args_get(args, "journal"));
        rc = hq_jr_open(&b, jpath, flush_ns ? flush_ns : 1, &err);
        free(jpath);
        if (rc != 0) {
            fprintf(stderr, "%s\n", err.text);
            hq_error("%s", err.text);
            goto done;
        }
    }
    b.conf.run_dir = hq_server_dir_new_run(b.conf.server_dir, &err);
    if (!b.conf.run_dir) {
        fprintf(stderr, "%s\n", err.text);
        goto done;
    }
    hq_handshake_raise_nofile();
    if (hq_loop_start(&b, &err) != 0 || hq_jr_attach(&b, &err) != 0) {
        fprintf(stderr, "%s\n", err.text);
        goto done;
    }
    hq_tasks_resume(&b);
    b.conf.access_path = hq_asprintf("%s/access.json", b.conf.run_dir);
    hq_info("Storing access file as '%s'", b.conf.access_path);
    if (hq_access_write(b.conf.access_path, &b.conf.access, 3, &err) != 0 ||
        hq_server_dir_set_current(b.conf.server_dir, b.conf.run_dir, &err) != 0) {
        fprintf(stderr, "%s\n", err.text);
        goto done;
    }
    hq_alloc_share_access(&b);
    if (!b.conf.access.client.has_secret)
        s_unprotected_warning("client");
    if (!b.conf.access.worker.has_secret)
        s_unprotected_warning("worker");
    {
        json_t *info = hq_server_info_json(&b);
        hq_render_server_info(&b.conf.g, info, b.conf.server_dir);
        json_decref(info);
        fflush(stdout);
    }
    hq_event_t ev = {.type = HQ_EV_SERVER_START, .text = b.conf.access.server_uid};
    hq_events_emit(b.events, &ev);

    hq_loop_run(&b);

    hq_info("Stopping server");
    /* SIGTERM (a batch system or a service manager ending the broker) is, for the
     * workers, a lost server as when it is killed: no STOP, so `--on-server-lost
     * finish-running` workers keep their tasks and wait for a restarted broker. */
    if (b.stop_signal != SIGTERM) {
        hq_workers_stop_all(&b, HQ_BYE_SERVER_STOP);
        hq_alloc_shutdown(&b);
    }
    hq_event_t stop = {.type = HQ_EV_SERVER_STOP};
    hq_events_emit(b.events, &stop);
    hq_server_dir_clear_current(b.conf.server_dir, b.conf.run_dir);
    /* Let the stop reply and the STOP messages leave before the sockets close. */
    if (b.replies.peer.sock)
        zsock_set_linger(b.replies.peer.sock, 1000);
    if (b.wlink.peer.sock)
        zsock_set_linger(b.wlink.peer.sock, 1000);
    code = 0;
done:
    free(host);
    hq_args_destroy(&args);
    s_broker_free(&b);
    return code;
}
