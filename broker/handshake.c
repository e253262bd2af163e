/* Peers that have not authenticated (see handshake.h): the descriptor limit and the
 * log of refused handshakes. A CURVE handshake with a wrong key fails before the ZAP
 * handler is asked, so only the socket monitor sees it. */
#define HQ_LOG_MODULE "hq::server"
#include "handshake.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "hq_duration.h"
#include "hq_log.h"
#include "hq_ratelog.h"
#include "hq_util.h"

/* Lines about refused handshakes: at most 20 a minute, so a flood cannot fill the
 * disk; the number held back is said in the next line. */
#define S_LOG_BURST 20
#define S_LOG_WINDOW_NS (60 * HQ_NS_PER_SEC)

/* The failure events carry no peer address (their endpoint is the listening one), so
 * the peer's address is looked up when its connection is accepted (that event carries
 * the descriptor) and a failure is logged with the disconnect that follows it at once
 * on the same descriptor. */
#define S_EVENTS                                                                                   \
    (ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |          \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_ACCEPT_FAILED)
#define S_MAX_FD (1u << 22)

typedef struct s_watch {
    zsock_t *watched;    /* the ROUTER (borrowed) */
    zsock_t *pair;       /* receives its monitor events (owned) */
    const char *name;    /* "client" / "worker" */
    uint16_t fail_event; /* a failure waiting for its disconnect (0 = none) */
    uint32_t fail_value; /* its value */
} s_watch_t;

struct hq_hsmon {
    s_watch_t w[2];
    uint32_t n;
    hq_ratelog_t rate;
    char **peer;       /* by descriptor: the address of the connection accepted on it */
    uint32_t cap_peer; /* size of peer */
};

void hq_handshake_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = rl.rlim_max;
    FILE *f = fopen("/proc/sys/fs/nr_open", "r");
    unsigned long long nr_open = 0;
    if (f) {
        if (fscanf(f, "%llu", &nr_open) == 1 && nr_open > 0 && (rlim_t)nr_open < want)
            want = (rlim_t)nr_open;
        fclose(f);
    }
    if (want != RLIM_INFINITY && want > rl.rlim_cur) {
        rlim_t before = rl.rlim_cur;
        rl.rlim_cur = want;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            hq_debug("Open files limit raised from %llu to %llu", (unsigned long long)before,
                     (unsigned long long)want);
        else
            hq_warn("Cannot raise the open files limit from %llu to %llu: %s",
                    (unsigned long long)before, (unsigned long long)want, strerror(errno));
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 4096)
        hq_warn("The open files limit is %llu (hard limit %llu): the server can hold about "
                "that many connections at once, stalled handshakes included",
                (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
}

/* Why a handshake failed, in words. */
static void s_reason(uint16_t event, uint32_t value, char *buf, size_t n)
{
    if (event == ZMQ_EVENT_ACCEPT_FAILED) {
        snprintf(buf, n, "cannot accept a connection: %s", strerror((int)value));
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
        if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
            snprintf(buf, n, "wrong key: the CURVE handshake failed");
        else if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
            snprintf(buf, n,
                     "security mechanism mismatch (a peer with or without "
                     "encryption where the other side differs)");
        else
            snprintf(buf, n, "protocol error 0x%08x in the handshake", value);
    } else if (value == EAGAIN || value == ETIMEDOUT) {
        snprintf(buf, n, "the handshake did not complete in time");
    } else {
        snprintf(buf, n, "the connection ended during the handshake (%s)",
                 value ? strerror((int)value) : "no detail");
    }
}

/* The peer's address of a just-accepted descriptor, kept until its disconnect. */
static void s_accepted(struct hq_hsmon *m, uint32_t fd)
{
    if (fd >= S_MAX_FD)
        return;
    if (fd >= m->cap_peer) {
        uint32_t cap = m->cap_peer ? m->cap_peer : 64;
        while (cap <= fd)
            cap *= 2;
        m->peer = hq_realloc(m->peer, cap * sizeof *m->peer);
        memset(m->peer + m->cap_peer, 0, (cap - m->cap_peer) * sizeof *m->peer);
        m->cap_peer = cap;
    }
    free(m->peer[fd]);
    m->peer[fd] = NULL;
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    char host[INET6_ADDRSTRLEN] = "?";
    if (getpeername((int)fd, (struct sockaddr *)&sa, &len) != 0)
        return;
    if (sa.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        m->peer[fd] = hq_asprintf("%s:%u", host, (unsigned)ntohs(in->sin_port));
    } else if (sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        m->peer[fd] = hq_asprintf("[%s]:%u", host, (unsigned)ntohs(in6->sin6_port));
    }
}

static void s_log(struct hq_hsmon *m, const char *name, uint16_t event, uint32_t value,
                  const char *peer)
{
    uint64_t held = 0;
    if (!hq_ratelog_allow(&m->rate, hq_mono_ns(), &held))
        return;
    char why[160], more[96] = "";
    s_reason(event, value, why, sizeof why);
    if (held)
        snprintf(more, sizeof more, " (%llu more not logged before this one)",
                 (unsigned long long)held);
    if (event == ZMQ_EVENT_ACCEPT_FAILED)
        hq_warn("On the %s socket, %s%s", name, why, more);
    else
        hq_warn("Refused a handshake on the %s socket from %s: %s%s", name,
                peer ? peer : "an unknown address", why, more);
}

static int s_on_event(zloop_t *loop, zsock_t *pair, void *arg)
{
    (void)loop;
    hq_broker_t *b = arg;
    struct hq_hsmon *m = b->hsmon;
    s_watch_t *w = NULL;
    for (uint32_t i = 0; i < m->n; i++)
        if (m->w[i].pair == pair)
            w = &m->w[i];
    zmsg_t *msg = zmsg_recv(pair);
    if (!msg || !w) {
        zmsg_destroy(&msg);
        return 0;
    }
    zframe_t *head = zmsg_first(msg);
    if (!head || zframe_size(head) != 6) {
        zmsg_destroy(&msg);
        return 0;
    }
    uint16_t event;
    uint32_t value;
    memcpy(&event, zframe_data(head), 2);
    memcpy(&value, zframe_data(head) + 2, 4);
    zmsg_destroy(&msg);
    if (event != ZMQ_EVENT_DISCONNECTED && w->fail_event) { /* no disconnect followed */
        s_log(m, w->name, w->fail_event, w->fail_value, NULL);
        w->fail_event = 0;
    }
    switch (event) {
    case ZMQ_EVENT_ACCEPTED:
        s_accepted(m, value);
        break;
    case ZMQ_EVENT_DISCONNECTED: {
        char *peer = value < m->cap_peer ? m->peer[value] : NULL;
        if (w->fail_event)
            s_log(m, w->name, w->fail_event, w->fail_value, peer);
        w->fail_event = 0;
        free(peer);
        if (value < m->cap_peer)
            m->peer[value] = NULL;
        break;
    }
    case ZMQ_EVENT_ACCEPT_FAILED:
        s_log(m, w->name, event, value, NULL);
        break;
    default: /* a failed handshake: its disconnect comes next, on this socket */
        w->fail_event = event;
        w->fail_value = value;
        break;
    }
    return 0;
}

void hq_handshake_tick(hq_broker_t *b)
{
    uint64_t held = 0;
    if (b->hsmon && hq_ratelog_flush(&b->hsmon->rate, hq_mono_ns(), &held))
        hq_warn("%llu more refused handshake%s in the last minute were not logged",
                (unsigned long long)held, held == 1 ? "" : "s");
}

int hq_handshake_watch(hq_broker_t *b, zsock_t *sock, const char *name)
{
    if (!b->hsmon) {
        b->hsmon = hq_calloc(1, sizeof *b->hsmon);
        b->hsmon->rate = (hq_ratelog_t)HQ_RATELOG_INIT(S_LOG_BURST, S_LOG_WINDOW_NS);
    }
    struct hq_hsmon *m = b->hsmon;
    if (m->n >= 2 || !b->turn.loop)
        return -1;
    char ep[96];
    snprintf(ep, sizeof ep, "inproc://hq-handshakes-%s-%p", name, (void *)sock);
    if (zmq_socket_monitor(zsock_resolve(sock), ep, S_EVENTS) != 0)
        return -1;
    zsock_t *pair = zsock_new_pair(NULL);
    if (!pair || zsock_connect(pair, "%s", ep) != 0) {
        zsock_destroy(&pair);
        zmq_socket_monitor(zsock_resolve(sock), NULL, 0);
        return -1;
    }
    m->w[m->n] = (s_watch_t){.watched = sock, .pair = pair, .name = name};
    m->n++;
    return zloop_reader(b->turn.loop, pair, s_on_event, b);
}

void hq_handshake_stop(hq_broker_t *b)
{
    struct hq_hsmon *m = b->hsmon;
    if (!m)
        return;
    for (uint32_t i = 0; i < m->n; i++) {
        if (b->turn.loop)
            zloop_reader_end(b->turn.loop, m->w[i].pair);
        zmq_socket_monitor(zsock_resolve(m->w[i].watched), NULL, 0);
        zsock_destroy(&m->w[i].pair);
    }
    for (uint32_t fd = 0; fd < m->cap_peer; fd++)
        free(m->peer[fd]);
    free(m->peer);
    free(m);
    b->hsmon = NULL;
}
