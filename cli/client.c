/* The connection to the broker (see client.h). A request is sent at most a few
 * times with the same request id, so that the broker can answer a retry instead of
 * executing it twice. Before using ZeroMQ, a plain TCP probe tells a stopped server
 * apart at once (libzmq would retry connecting silently). */
#include "client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <czmq.h>
#include <sodium.h>

#include "hq_access.h"
#define HQ_LOG_MODULE "hq_client"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_util.h"

#define HQ_CLIENT_PROBE_MS 3000
#define HQ_CLIENT_REPLY_MS 15000
#define HQ_CLIENT_ATTEMPTS 3

struct hq_client {
    hq_access_t access; /* the access file's contents */
    char *endpoint;     /* tcp://host:port of the client socket */
    char *hint_dir;     /* " --server-dir X" or "" for the messages */
    zsock_t *sock;      /* DEALER, NULL until the first request */
    zsock_t *mon;       /* PAIR receiving sock's handshake events */
    int refusals;       /* handshakes refused in a row */
    bool probed;        /* the TCP probe succeeded once */
};

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

static char *s_json_quote(const char *s)
{
    json_t *str = json_string(s);
    char *out = str ? json_dumps(str, JSON_ENCODE_ANY) : NULL;
    json_decref(str);
    if (!out)
        return hq_asprintf("\"%s\"", s);
    char *copy = hq_strdup(out);
    free(out);
    return copy;
}

static char *s_os_error(int e)
{
    return hq_asprintf("%s (os error %d)", strerror(e), e);
}

static void s_set_caused(hq_err_t *err, const char *top, const char *cause)
{
    const char *causes[1] = {cause};
    char *text = hq_error_with_causes(top, causes, 1);
    hq_err_set(err, "%s", text);
    free(text);
}

hq_client_t *hq_client_new(const hq_global_t *g, hq_err_t *err)
{
    hq_err_t inner;
    char *resolved = hq_server_dir_resolve(g->server_dir, &inner);
    if (!resolved) {
        s_set_caused(err, "Invalid server directory", inner.text);
        return NULL;
    }
    hq_client_t *c = hq_calloc(1, sizeof *c);
    c->hint_dir = s_dir_hint(g);
    char *path = hq_asprintf("%s/access.json", resolved);
    struct stat st;
    int rc = -1;
    char *cause = NULL;
    if (stat(path, &st) != 0) {
        cause = s_os_error(errno);
    } else if (hq_access_read(path, &c->access, true, &inner) != 0) {
        if (strncmp(inner.text, "Hyperqueue version mismatch", 27) == 0) {
            hq_err_set(err, "%s", inner.text); /* reported alone */
            goto done;
        }
        cause = hq_strdup(inner.text);
    } else if (!c->access.client.present) {
        cause = hq_strdup("The access file has no client record");
    } else {
        rc = 0;
    }
    if (rc != 0) {
        char *q = s_json_quote(resolved);
        char *top = hq_asprintf("No running instance of HQ found at %s.\nTry to start the server: "
                                "`hq server start%s` or use a different server directory.",
                                q, c->hint_dir);
        s_set_caused(err, top, cause);
        free(q);
        free(top);
        goto done;
    }
    c->endpoint = hq_access_endpoint(&c->access.client);
done:
    free(cause);
    free(path);
    free(resolved);
    if (rc != 0)
        hq_client_destroy(&c);
    return c;
}

void hq_client_destroy(hq_client_t **cp)
{
    if (!cp || !*cp)
        return;
    hq_client_t *c = *cp;
    zsock_destroy(&c->mon);
    zsock_destroy(&c->sock);
    free(c->endpoint);
    free(c->hint_dir);
    sodium_memzero(&c->access, sizeof c->access);
    free(c);
    *cp = NULL;
}

static void s_unreachable(hq_client_t *c, hq_err_t *err, const char *cause)
{
    char *top = hq_asprintf("Access token found but HQ server %s:%u is unreachable.\n"
                            "Try to (re)start the server using `hq server start%s`",
                            c->access.client.host, (unsigned)c->access.client.port, c->hint_dir);
    s_set_caused(err, top, cause);
    free(top);
}

/* Plain TCP connect with a timeout. Returns 0 or an errno value. */
static int s_probe(const char *host, uint16_t port)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%u", (unsigned)port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, portstr, &hints, &res) != 0 || !res)
        return EHOSTUNREACH;
    int result = ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd =
            socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            result = errno;
            continue;
        }
        int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            rc = poll(&pfd, 1, HQ_CLIENT_PROBE_MS);
            if (rc == 1) {
                int soerr = 0;
                socklen_t len = sizeof soerr;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
                rc = soerr ? -1 : 0;
                errno = soerr;
            } else {
                rc = -1;
                errno = ETIMEDOUT;
            }
        }
        result = rc == 0 ? 0 : errno;
        close(fd);
        if (result == 0)
            break;
    }
    freeaddrinfo(res);
    return result;
}

/* Watches the DEALER's handshakes: a broker that refuses our keys (ZAP) makes
 * libzmq retry silently forever, so the refusal is read from the socket monitor
 * and reported at once instead of after the reply timeout. */
static int s_open_monitor(hq_client_t *c, hq_err_t *err)
{
    char endpoint[64];
    static unsigned s_monitor_seq;
    snprintf(endpoint, sizeof endpoint, "inproc://hq-client-monitor-%p-%u", (void *)c,
             ++s_monitor_seq);
    int events = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_SUCCEEDED;
    if (zmq_socket_monitor(zsock_resolve(c->sock), endpoint, events) != 0)
        return hq_err_set(err, "Cannot monitor the server connection: %s",
                          zmq_strerror(zmq_errno()));
    c->mon = zsock_new_pair(endpoint); /* '>' is implied for PAIR: connects */
    if (!c->mon)
        return hq_err_set(err, "Cannot monitor the server connection: %s",
                          zmq_strerror(zmq_errno()));
    return 0;
}

/* Reads one monitor event; returns true once the broker has refused our
 * handshake twice in a row (libzmq 4.3 reports a ZAP denial as a handshake that
 * failed without detail, so one failure alone could be a network hiccup), and
 * fills err with the message for the user. */
static bool s_monitor_refused(hq_client_t *c, hq_err_t *err)
{
    zmsg_t *ev = zmsg_recv(c->mon);
    if (!ev)
        return false;
    zframe_t *head = zmsg_first(ev);
    uint16_t event = 0;
    if (head && zframe_size(head) >= 6)
        memcpy(&event, zframe_data(head), sizeof event);
    zmsg_destroy(&ev);
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        c->refusals = 0;
        return false;
    }
    if (event != ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && event != ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
        event != ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        return false;
    if (++c->refusals < 2)
        return false;
    char top[512];
    snprintf(top, sizeof top, "HQ server %s:%u refused the connection.", c->access.client.host,
             (unsigned)c->access.client.port);
    s_set_caused(err, top,
                 "Authentication failed during the encryption handshake: the access file's "
                 "client key is not accepted by this server (the file may belong to another "
                 "server run, or be a worker access file)");
    return true;
}

static int s_open_socket(hq_client_t *c, hq_err_t *err)
{
    zsock_destroy(&c->mon);
    zsock_destroy(&c->sock);
    c->sock = zsock_new(ZMQ_DEALER);
    if (!c->sock)
        return hq_err_set(err, "Cannot create a ZeroMQ socket: %s", zmq_strerror(zmq_errno()));
    if (hq_access_setup_socket(c->sock, &c->access.client, err) != 0)
        return -1;
    if (s_open_monitor(c, err) != 0)
        return -1;
    if (zsock_connect(c->sock, "%s", c->endpoint) != 0)
        return hq_err_set(err, "Cannot connect to %s: %s", c->endpoint, zmq_strerror(zmq_errno()));
    return 0;
}

/* Waits for the reply to request_id until deadline (monotonic ns). Returns the
 * decoded reply, NULL on timeout (err untouched) or with err set on a bad reply. */
static hq_msg_t *s_recv_reply(hq_client_t *c, uint64_t request_id, uint64_t deadline, bool *failed,
                              hq_err_t *err)
{
    void *raw = zsock_resolve(c->sock);
    for (;;) {
        uint64_t now = hq_mono_ns();
        if (now >= deadline)
            return NULL;
        zmq_pollitem_t items[2] = {{.socket = raw, .events = ZMQ_POLLIN},
                                   {.socket = zsock_resolve(c->mon), .events = ZMQ_POLLIN}};
        long ms = (long)((deadline - now) / 1000000ULL) + 1;
        int rc = zmq_poll(items, 2, ms);
        if (rc < 0) {
            if (zmq_errno() == EINTR)
                continue;
            *failed = true;
            hq_err_set(err, "Polling the server connection failed: %s", zmq_strerror(zmq_errno()));
            return NULL;
        }
        if (items[1].revents & ZMQ_POLLIN) {
            if (s_monitor_refused(c, err)) {
                *failed = true;
                return NULL;
            }
        }
        if (!(items[0].revents & ZMQ_POLLIN))
            continue;
        zmq_msg_t frame;
        zmq_msg_init(&frame);
        if (zmq_msg_recv(&frame, raw, 0) < 0) {
            zmq_msg_close(&frame);
            continue;
        }
        bool more = zmq_msg_more(&frame);
        hq_err_t derr;
        hq_msg_t *m =
            more ? NULL : hq_msg_decode(zmq_msg_data(&frame), zmq_msg_size(&frame), &derr);
        zmq_msg_close(&frame);
        while (more) { /* not our format: drain the rest of the message */
            zmq_msg_t part;
            zmq_msg_init(&part);
            if (zmq_msg_recv(&part, raw, 0) < 0) {
                zmq_msg_close(&part);
                break;
            }
            more = zmq_msg_more(&part);
            zmq_msg_close(&part);
        }
        if (!m)
            continue;
        if (m->hdr.request_id != request_id) {
            hq_msg_destroy(&m); /* a late reply to an earlier attempt */
            continue;
        }
        return m;
    }
}

hq_msg_t *hq_client_call(hq_client_t *c, hq_msg_t *req, uint64_t extra_wait_ms, hq_err_t *err)
{
    if (!c->probed) {
        int e = s_probe(c->access.client.host, c->access.client.port);
        if (e != 0) {
            char *cause = s_os_error(e);
            s_unreachable(c, err, cause);
            free(cause);
            return NULL;
        }
        c->probed = true;
    }
    if (sodium_init() < 0) {
        hq_err_set(err, "Cannot initialise libsodium");
        return NULL;
    }
    uint64_t request_id = 0;
    while (request_id == 0)
        randombytes_buf(&request_id, sizeof request_id);
    req->hdr.version = HQ_PROTO_VERSION;
    req->hdr.request_id = request_id;

    uint8_t *buf = NULL;
    size_t len = 0;
    hq_err_t eerr;
    if (hq_msg_encode(req, &buf, &len, &eerr) != 0) {
        hq_err_set(err, "Cannot send the request: %s", eerr.text);
        return NULL;
    }
    if ((long long)len > HQ_CLIENT_MAXMSG) {
        hq_err_set(err,
                   "The request is too large: it encodes to %zu bytes, but the server accepts "
                   "at most %lld bytes per message",
                   len, (long long)HQ_CLIENT_MAXMSG);
        free(buf);
        return NULL;
    }
    hq_msg_t *reply = NULL;
    for (int attempt = 0; attempt < HQ_CLIENT_ATTEMPTS && !reply; attempt++) {
        if (attempt > 0)
            hq_debug("no reply from the server, retrying the request");
        if (s_open_socket(c, err) != 0)
            break;
        if (zmq_send(zsock_resolve(c->sock), buf, len, 0) < 0) {
            hq_err_set(err, "Cannot send the request: %s", zmq_strerror(zmq_errno()));
            break;
        }
        bool failed = false;
        uint64_t deadline = hq_mono_ns() + (HQ_CLIENT_REPLY_MS + extra_wait_ms) * 1000000ULL;
        reply = s_recv_reply(c, request_id, deadline, &failed, err);
        if (failed)
            break;
        if (!reply && attempt == HQ_CLIENT_ATTEMPTS - 1)
            s_unreachable(c, err, "Timed out waiting for a reply from the server");
    }
    free(buf);
    if (!reply)
        return NULL;
    if (reply->hdr.type == HQ_MSG_ERROR) {
        hq_err_set(err, "%s", reply->u.error.message ? reply->u.error.message : "Unknown error");
        hq_msg_destroy(&reply);
        return NULL;
    }
    if (reply->hdr.type != HQ_MSG_REPLY) {
        hq_err_set(err, "Unexpected %s message from the server", hq_msg_type_name(reply->hdr.type));
        hq_msg_destroy(&reply);
        return NULL;
    }
    return reply;
}
