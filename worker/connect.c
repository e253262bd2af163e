/* The connection to the broker: reading the access file (with the server-dir hint
 * when there is none), the DEALER socket with its own routing id and a monitor of its
 * handshakes, decoding what arrives, and the first registration, which blocks until
 * REGISTERED or a refusal. The event loop (loop.c) takes the socket over from there. */
#include "wk.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HQ_LOG_MODULE "hq::worker"
#include "hq_access.h"
#include "hq_duration.h"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_server_hint.h"
#include "hq_util.h"

#define WK_REGISTER_TIMEOUT_MS 15000

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
    if (rc != 0)
        hq_server_hint_not_found(err, resolved, w->g.server_dir, cause);
done:
    free(cause);
    free(path);
    free(resolved);
    return rc;
}

hq_msg_t *wk_conn_recv(wk_t *w)
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

void wk_conn_keep_secret(wk_t *w, const hq_registered_t *r)
{
    w->has_secret = r->has_secret;
    memcpy(w->secret, r->secret, sizeof w->secret);
}

/* Reads one event of the socket monitor (0 = none). */
uint16_t wk_conn_monitor_read(wk_t *w)
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

bool wk_conn_handshake_failed(uint16_t event)
{
    return event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ||
           event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
           event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
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
    w->link_down = false;
    w->n_refused = 0;
    int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECTED |
                 ZMQ_EVENT_CLOSED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    if (zmq_socket_monitor(w->handle, endpoint, events) != 0) {
        hq_debug("Cannot monitor the server connection: %s", zmq_strerror(zmq_errno()));
        return;
    }
    w->mon = zsock_new_pair(endpoint);
}

void wk_conn_monitor_close(wk_t *w)
{
    if (!w->mon)
        return;
    if (w->loop)
        zloop_reader_end(w->loop, w->mon);
    zsock_destroy(&w->mon);
}

/* Reads the access file and connects a new DEALER (w->sock). host gets "host:port". */
int wk_conn_open(wk_t *w, char *host, size_t host_len, hq_err_t *err)
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

int wk_conn_register(wk_t *w, hq_err_t *err)
{
    char host[300];
    if (wk_conn_open(w, host, sizeof host, err) != 0)
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
            uint16_t event = wk_conn_monitor_read(w);
            if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
                w->n_handshakes++;
                refusals = 0;
            } else if (wk_conn_handshake_failed(event) && ++refusals >= 2) {
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
        hq_msg_t *msg = wk_conn_recv(w);
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
        wk_conn_keep_secret(w, &msg->u.registered);
        wk_link_session_reset(w, msg->hdr.seq);
        w->server_uid = hq_strdup(msg->u.registered.server_uid ? msg->u.registered.server_uid : "");
        w->idle_timeout_ns =
            w->conf.idle_timeout_ns ? w->conf.idle_timeout_ns : msg->u.registered.idle_timeout_ns;
        hq_msg_destroy(&msg);
        return 0;
    }
    hq_server_hint_unreachable(err, host, w->g.server_dir,
                               "The server did not answer the worker registration");
    return -1;
}
