/* The connection to the broker (see client.h). A request is sent at most a few
 * times with the same request id, so that the broker can answer a retry instead of
 * executing it twice. Before using ZeroMQ, a plain TCP probe tells a stopped server
 * apart at once (libzmq would retry connecting silently).
 *
 * A SUBMIT carrying an idempotency key is retried the Lazy Pirate way (proto/wire/PROTOCOL.md,
 * "SUBMIT idempotency key and retries"): after a broken connection or a reply
 * timeout the access file is read again (a restarted broker has new ports and keys)
 * and the same frame is resent with back-off until HQ_SUBMIT_RETRY has passed. */
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
#include "hq_duration.h"
#define HQ_LOG_MODULE "hq_client"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_server_hint.h"
#include "hq_util.h"

#define HQ_CLIENT_PROBE_MS 3000
#define HQ_CLIENT_REPLY_MS 15000
#define HQ_CLIENT_ATTEMPTS 3
#define HQ_SUBMIT_RETRY_NS (30 * HQ_NS_PER_SEC) /* default HQ_SUBMIT_RETRY */
#define HQ_RETRY_BACKOFF_MIN_MS 100
#define HQ_RETRY_BACKOFF_MAX_MS 2000

/* What the socket monitor saw. */
enum s_mon_event {
    S_MON_NONE = 0, /* nothing that matters */
    S_MON_REFUSED,  /* the broker refused our keys (twice in a row) */
    S_MON_BROKEN,   /* the connection went away or could not be made */
};

struct hq_client {
    char *server_dir;   /* the server dir as given (re-read on a keyed retry) */
    hq_access_t access; /* the access file's contents */
    char *endpoint;     /* tcp://host:port of the client socket */
    zsock_t *sock;      /* DEALER, NULL until the first request */
    zsock_t *mon;       /* PAIR receiving sock's handshake events */
    int refusals;       /* handshakes refused in a row */
    bool probed;        /* the TCP probe succeeded once */
    bool watch_breaks;  /* a keyed submit is in flight: report disconnects */
};

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
    c->server_dir = g->server_dir ? hq_strdup(g->server_dir) : NULL;
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
        hq_server_hint_not_found(err, resolved, g->server_dir, cause);
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
    free(c->server_dir);
    sodium_memzero(&c->access, sizeof c->access);
    free(c);
    *cp = NULL;
}

static void s_unreachable(hq_client_t *c, hq_err_t *err, const char *cause)
{
    char *host_port = hq_asprintf("%s:%u", c->access.client.host, (unsigned)c->access.client.port);
    hq_server_hint_unreachable(err, host_port, c->server_dir, cause);
    free(host_port);
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
                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                 ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECT_RETRIED;
    if (zmq_socket_monitor(zsock_resolve(c->sock), endpoint, events) != 0)
        return hq_err_set(err, "Cannot monitor the server connection: %s",
                          zmq_strerror(zmq_errno()));
    c->mon = zsock_new_pair(endpoint); /* '>' is implied for PAIR: connects */
    if (!c->mon)
        return hq_err_set(err, "Cannot monitor the server connection: %s",
                          zmq_strerror(zmq_errno()));
    return 0;
}

/* Reads one monitor event. S_MON_REFUSED once the broker has refused our
 * handshake twice in a row (libzmq 4.3 reports a ZAP denial as a handshake that
 * failed without detail, so one failure alone could be a network hiccup), with err
 * filled with the message for the user. S_MON_BROKEN when a keyed submit is in
 * flight (watch_breaks) and the connection dropped or could not be made: the
 * request or its reply is lost with it. */
static enum s_mon_event s_monitor_event(hq_client_t *c, hq_err_t *err)
{
    zmsg_t *ev = zmsg_recv(c->mon);
    if (!ev)
        return S_MON_NONE;
    zframe_t *head = zmsg_first(ev);
    uint16_t event = 0;
    if (head && zframe_size(head) >= 6)
        memcpy(&event, zframe_data(head), sizeof event);
    zmsg_destroy(&ev);
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
        c->refusals = 0;
        return S_MON_NONE;
    }
    if (event == ZMQ_EVENT_DISCONNECTED || event == ZMQ_EVENT_CONNECT_RETRIED)
        /* after a failed handshake, wait for the second one: wrong keys fail fast */
        return c->watch_breaks && c->refusals == 0 ? S_MON_BROKEN : S_MON_NONE;
    if (event != ZMQ_EVENT_HANDSHAKE_FAILED_AUTH && event != ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
        event != ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        return S_MON_NONE;
    if (++c->refusals < 2)
        return S_MON_NONE;
    char top[512];
    snprintf(top, sizeof top, "HQ server %s:%u refused the connection.", c->access.client.host,
             (unsigned)c->access.client.port);
    s_set_caused(err, top,
                 "Authentication failed during the encryption handshake: the access file's "
                 "client key is not accepted by this server (the file may belong to another "
                 "server run, or be a worker access file)");
    return S_MON_REFUSED;
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
 * decoded reply, or NULL: on timeout (err untouched), on a broken connection while
 * watch_breaks (*broken set, err untouched), or with *failed and err set. */
static hq_msg_t *s_recv_reply(hq_client_t *c, uint64_t request_id, uint64_t deadline, bool *failed,
                              bool *broken, hq_err_t *err)
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
            enum s_mon_event mev = s_monitor_event(c, err);
            if (mev == S_MON_REFUSED) {
                *failed = true;
                return NULL;
            }
            if (mev == S_MON_BROKEN) {
                *broken = true;
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

/* Reads a duration from the environment (unset or invalid: dflt, with a warning). */
static uint64_t s_env_duration(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    uint64_t ns = dflt;
    hq_err_t err;
    if (v && *v && hq_duration_parse(v, &ns, &err) != 0) {
        hq_warn("Ignoring %s=%s: %s", name, v, err.text);
        ns = dflt;
    }
    return ns;
}

/* Reads the server dir's current access file again. Returns 1 when it names another
 * endpoint or keys than before (c updated), 0 when unchanged, -1 when unreadable
 * (a restarting broker may not have written it yet). */
static int s_reread_access(hq_client_t *c)
{
    hq_err_t err;
    char *resolved = hq_server_dir_resolve(c->server_dir ? c->server_dir : ".", &err);
    if (!resolved)
        return -1;
    char *path = hq_asprintf("%s/access.json", resolved);
    free(resolved);
    hq_access_t a;
    int rc = hq_access_read(path, &a, true, &err);
    free(path);
    if (rc != 0 || !a.client.present) {
        sodium_memzero(&a, sizeof a);
        return -1;
    }
    bool same = memcmp(&a.client, &c->access.client, sizeof a.client) == 0;
    if (!same) {
        c->access = a;
        free(c->endpoint);
        c->endpoint = hq_access_endpoint(&c->access.client);
        c->refusals = 0;
    }
    sodium_memzero(&a, sizeof a);
    return same ? 0 : 1;
}

/* One attempt: a fresh socket, the frame, the reply. Returns the reply, or NULL with
 * *failed (err set: give up) or not (timeout or, when watching, a broken link). */
static hq_msg_t *s_attempt(hq_client_t *c, const uint8_t *buf, size_t len, uint64_t request_id,
                           uint64_t wait_ns, bool *failed, bool *broken, hq_err_t *err)
{
    *failed = *broken = false;
    if (s_open_socket(c, err) != 0) {
        *failed = true;
        return NULL;
    }
    if (zmq_send(zsock_resolve(c->sock), buf, len, 0) < 0) {
        hq_err_set(err, "Cannot send the request: %s", zmq_strerror(zmq_errno()));
        *failed = true;
        return NULL;
    }
    return s_recv_reply(c, request_id, hq_mono_ns() + wait_ns, failed, broken, err);
}

/* The Lazy Pirate loop of a keyed SUBMIT after its first attempt failed (why: for
 * the log): re-read the access file, probe, resend the same frame, with back-off,
 * until the retry window has passed. */
static hq_msg_t *s_retry_submit(hq_client_t *c, const uint8_t *buf, size_t len, uint64_t request_id,
                                uint64_t wait_ns, const char *why, hq_err_t *err)
{
    uint64_t window = s_env_duration("HQ_SUBMIT_RETRY", HQ_SUBMIT_RETRY_NS);
    uint64_t end = hq_mono_ns() + window;
    uint64_t backoff_ms = HQ_RETRY_BACKOFF_MIN_MS;
    int attempt = 1;
    const char *last = why;
    char *w = hq_duration_format(window);
    hq_warn("The submit was not answered (%s); retrying it with the same idempotency key "
            "for up to %s",
            why, w);
    while (hq_mono_ns() < end) {
        zsock_destroy(&c->mon);
        zsock_destroy(&c->sock);
        s_reread_access(c);
        int e = s_probe(c->access.client.host, c->access.client.port);
        if (e == 0) {
            attempt++;
            hq_warn("Resending the submit to %s:%u (attempt %d, same idempotency key): %s",
                    c->access.client.host, (unsigned)c->access.client.port, attempt, last);
            bool failed, broken;
            hq_msg_t *reply = s_attempt(c, buf, len, request_id, wait_ns, &failed, &broken, err);
            if (reply) {
                free(w);
                return reply;
            }
            if (failed) {
                /* Refused keys. The same file worked for the first attempt, so the
                 * server changed: a restarted one listens before it writes its new
                 * access file. Try again at once if the file changed, else after the
                 * back-off, until the window ends. */
                if (s_reread_access(c) == 1) {
                    last = "the server refused the old keys; the access file changed";
                    continue;
                }
                last = "the server refused the access file's keys (a restarting server "
                       "writes a new access file)";
            } else {
                last = broken ? "the connection to the server broke" : "no reply in time";
            }
        } else {
            last = "the server is not reachable";
        }
        uint64_t now = hq_mono_ns();
        if (now >= end)
            break;
        uint64_t nap = backoff_ms * HQ_NS_PER_MS;
        if (nap > end - now)
            nap = end - now;
        zclock_sleep((int)(nap / HQ_NS_PER_MS) + 1);
        backoff_ms =
            backoff_ms * 2 > HQ_RETRY_BACKOFF_MAX_MS ? HQ_RETRY_BACKOFF_MAX_MS : backoff_ms * 2;
    }
    hq_err_set(err,
               "The submit may or may not have been accepted: the HQ server did not answer it "
               "within the retry window (HQ_SUBMIT_RETRY=%s; last: %s). Check with `hq job "
               "list` whether the job exists before submitting it again.",
               w, last);
    free(w);
    return NULL;
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
    bool keyed = req->hdr.type == HQ_MSG_SUBMIT && req->u.submit.has_key;
    if (keyed) {
        /* Lazy Pirate: the key makes every resend safe, so keep trying for a window */
        c->watch_breaks = true;
        uint64_t wait_ns = s_env_duration("HQ_SUBMIT_TIMEOUT", HQ_CLIENT_REPLY_MS * HQ_NS_PER_MS) +
                           extra_wait_ms * HQ_NS_PER_MS;
        bool failed, broken;
        reply = s_attempt(c, buf, len, request_id, wait_ns, &failed, &broken, err);
        if (!reply && !failed)
            reply = s_retry_submit(
                c, buf, len, request_id, wait_ns,
                broken ? "the connection to the server broke" : "no reply in time", err);
    }
    for (int attempt = 0; !keyed && attempt < HQ_CLIENT_ATTEMPTS && !reply; attempt++) {
        if (attempt > 0)
            hq_debug("no reply from the server, retrying the request");
        bool failed = false, broken = false;
        reply =
            s_attempt(c, buf, len, request_id, (HQ_CLIENT_REPLY_MS + extra_wait_ms) * HQ_NS_PER_MS,
                      &failed, &broken, err);
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

int hq_client_key_submit(hq_submit_t *s)
{
    if (sodium_init() < 0)
        return -1;
    randombytes_buf(s->key, sizeof s->key);
    s->has_key = true;
    return 0;
}
