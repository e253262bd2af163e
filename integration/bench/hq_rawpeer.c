/* hq_rawpeer: an authenticated (CURVE) peer for integration tests. It connects to the
 * broker with the keys of an access file as a client or a worker, reports how the
 * handshake ended, then sends the frames given on the command line one by one and
 * reports whether a reply came for each. Used to throw malformed, truncated and
 * oversized frames at the broker from a peer that got past authentication.
 *
 * usage: hq_rawpeer --access FILE --role client|worker [--timeout MS] [--frames-file F]
 *                   [--repeat N] [--nowait] FRAME...
 * FRAME: hex:<hex bytes> | file:<path> | random:<n> | zeros:<n> | header:<type>[:<hex body>]
 *        | valid:server-info | valid:job-summary | valid:heartbeat
 * Output lines: "handshake: ok|auth-failed|protocol-failed|failed|timeout", then per
 * frame "frame <i> (<n> bytes): reply frames=<k> type=<t> len=<n>" or
 * "frame <i> (<n> bytes): no reply". Request ids count up from 1 over the valid: and
 * header: frames. Exit 0 when every frame was processed, 1 on a
 * usage or setup error.
 *
 * Bulk modes (fuzzing and floods): --frames-file F appends the frames stored in F as
 * <u32 little-endian length><bytes>... after the FRAME arguments; --repeat N sends the
 * whole list N times; --nowait does not wait for a reply after each frame (replies are
 * drained as they come; sends block at the socket's high-water mark, so the broker's
 * pace limits the sender) and prints one summary line instead of one per frame:
 * "sent=<n> replies=<m> error_replies=<e> send_failed=<f> seconds=<s>". */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>
#include <sodium.h>

#include "hq_access.h"
#include "hq_log.h"
#include "hq_msg.h"
#include "hq_util.h"

/* Every frame built here gets its own request id, so a broker that answers a
 * repeated id from a cache cannot mask how it treats the frame itself. */
static uint64_t s_next_request_id = 1;

static void s_usage(void)
{
    fprintf(stderr, "usage: hq_rawpeer --access FILE --role client|worker [--timeout MS]\n"
                    "       [--frames-file F] [--repeat N] [--nowait] FRAME...\n"
                    "FRAME: hex:HEX | file:PATH | random:N | zeros:N | header:TYPE[:HEXBODY] |\n"
                    "       valid:server-info | valid:job-summary | valid:heartbeat\n");
}

static int s_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes hex (spaces ignored) into a fresh buffer. Returns 0 or -1. */
static int s_hex_decode(const char *hex, uint8_t **out, size_t *len)
{
    size_t n = strlen(hex);
    uint8_t *buf = hq_malloc(n / 2 + 1);
    size_t k = 0;
    int hi = -1;
    for (size_t i = 0; i < n; i++) {
        if (hex[i] == ' ')
            continue;
        int v = s_hexval(hex[i]);
        if (v < 0) {
            free(buf);
            return -1;
        }
        if (hi < 0) {
            hi = v;
        } else {
            buf[k++] = (uint8_t)(hi << 4 | v);
            hi = -1;
        }
    }
    if (hi >= 0) {
        free(buf);
        return -1;
    }
    *out = buf;
    *len = k;
    return 0;
}

static int s_parse_size(const char *s, size_t *n)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || v > (1ULL << 32))
        return -1;
    *n = (size_t)v;
    return 0;
}

/* Encodes a well-formed message of a body-less type. */
static int s_valid(uint8_t type, uint8_t **out, size_t *len)
{
    hq_msg_t msg;
    hq_err_t err;
    memset(&msg, 0, sizeof msg);
    msg.hdr.version = HQ_PROTO_VERSION;
    msg.hdr.type = type;
    msg.hdr.request_id = s_next_request_id++;
    if (hq_msg_encode(&msg, out, len, &err) < 0) {
        fprintf(stderr, "hq_rawpeer: cannot encode: %s\n", err.text);
        return -1;
    }
    return 0;
}

/* A 40-byte header of the given type followed by an optional hex body. */
static int s_header(const char *spec, uint8_t **out, size_t *len)
{
    char *end = NULL;
    unsigned long type = strtoul(spec, &end, 10);
    if (end == spec || type > 255)
        return -1;
    uint8_t *body = NULL;
    size_t body_len = 0;
    if (*end == ':') {
        if (s_hex_decode(end + 1, &body, &body_len) < 0)
            return -1;
    } else if (*end) {
        return -1;
    }
    uint8_t *buf = hq_calloc(1, HQ_HEADER_SIZE + body_len);
    buf[0] = 'H';
    buf[1] = 'Q';
    buf[2] = HQ_PROTO_VERSION;
    buf[3] = (uint8_t)type;
    uint64_t rid = s_next_request_id++;
    for (int i = 0; i < 8; i++) /* request id, big-endian */
        buf[4 + i] = (uint8_t)(rid >> (56 - 8 * i));
    if (body_len)
        memcpy(buf + HQ_HEADER_SIZE, body, body_len);
    free(body);
    *out = buf;
    *len = HQ_HEADER_SIZE + body_len;
    return 0;
}

/* Builds the bytes of one FRAME argument. Returns 0 or -1. */
static int s_frame(const char *arg, uint8_t **out, size_t *len)
{
    size_t n;
    if (strncmp(arg, "hex:", 4) == 0)
        return s_hex_decode(arg + 4, out, len);
    if (strncmp(arg, "file:", 5) == 0) {
        char *data = NULL;
        if (hq_read_file(arg + 5, (size_t)1 << 31, &data, len) < 0)
            return -1;
        *out = (uint8_t *)data;
        return 0;
    }
    if (strncmp(arg, "random:", 7) == 0 && s_parse_size(arg + 7, &n) == 0) {
        *out = hq_malloc(n + 1);
        randombytes_buf(*out, n);
        *len = n;
        return 0;
    }
    if (strncmp(arg, "zeros:", 6) == 0 && s_parse_size(arg + 6, &n) == 0) {
        *out = hq_calloc(1, n + 1);
        *len = n;
        return 0;
    }
    if (strncmp(arg, "header:", 7) == 0)
        return s_header(arg + 7, out, len);
    if (strcmp(arg, "valid:server-info") == 0)
        return s_valid(HQ_MSG_SERVER_INFO, out, len);
    if (strcmp(arg, "valid:job-summary") == 0)
        return s_valid(HQ_MSG_JOB_SUMMARY, out, len);
    if (strcmp(arg, "valid:heartbeat") == 0)
        return s_valid(HQ_MSG_HEARTBEAT, out, len);
    return -1;
}

typedef struct s_buf {
    uint8_t *data;
    size_t len;
} s_buf_t;

typedef struct s_stats {
    uint64_t sent, replies, error_replies, send_failed;
} s_stats_t;

/* Appends the records of a frames file (<u32 LE length><bytes>...). Returns 0 or -1. */
static int s_load_frames(const char *path, s_buf_t **frames, size_t *n, size_t *cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "hq_rawpeer: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (;;) {
        uint8_t lb[4];
        size_t got = fread(lb, 1, 4, f);
        if (got == 0)
            break;
        uint32_t len =
            (uint32_t)lb[0] | (uint32_t)lb[1] << 8 | (uint32_t)lb[2] << 16 | (uint32_t)lb[3] << 24;
        if (got != 4 || len > (1u << 30)) {
            fprintf(stderr, "hq_rawpeer: %s: bad record length\n", path);
            rc = -1;
            break;
        }
        uint8_t *data = hq_malloc(len + 1);
        if (fread(data, 1, len, f) != len) {
            fprintf(stderr, "hq_rawpeer: %s: truncated record\n", path);
            free(data);
            rc = -1;
            break;
        }
        if (*n == *cap) {
            *cap *= 2;
            *frames = hq_realloc(*frames, *cap * sizeof **frames);
        }
        (*frames)[*n].data = data;
        (*frames)[*n].len = len;
        (*n)++;
    }
    fclose(f);
    return rc;
}

/* Receives every reply available within wait_ms (0 = only what is there now).
 * Returns the number received. */
static int s_drain(zsock_t *sock, s_stats_t *st, int wait_ms)
{
    int got = 0;
    for (;;) {
        zmq_pollitem_t item = {zsock_resolve(sock), 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, got == 0 ? wait_ms : 0) <= 0)
            return got;
        zmsg_t *reply = zmsg_recv(sock);
        if (!reply)
            return got;
        zframe_t *last = zmsg_last(reply);
        int type = last && zframe_size(last) >= 4 ? zframe_data(last)[3] : -1;
        st->replies++;
        if (type == HQ_MSG_ERROR)
            st->error_replies++;
        zmsg_destroy(&reply);
        got++;
    }
}

/* Sends one frame and reports whether (and what) the broker answered. */
static void s_send_and_wait(zsock_t *sock, const s_buf_t *b, int index, int timeout_ms)
{
    zframe_t *frame = zframe_new(b->data, b->len);
    if (zframe_send(&frame, sock, 0) < 0) {
        printf("frame %d (%zu bytes): send failed\n", index, b->len);
        zframe_destroy(&frame);
        return;
    }
    zmq_pollitem_t item = {zsock_resolve(sock), 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) > 0) {
        zmsg_t *reply = zmsg_recv(sock);
        zframe_t *last = reply ? zmsg_last(reply) : NULL;
        int type = last && zframe_size(last) >= 4 ? zframe_data(last)[3] : -1;
        printf("frame %d (%zu bytes): reply frames=%zu type=%d len=%zu\n", index, b->len,
               reply ? zmsg_size(reply) : 0, type, last ? zframe_size(last) : 0);
        zmsg_destroy(&reply);
    } else {
        printf("frame %d (%zu bytes): no reply\n", index, b->len);
    }
    fflush(stdout);
}

/* Waits for the first handshake outcome reported by the socket monitor. */
static const char *s_handshake(zsock_t *monitor, int timeout_ms)
{
    int64_t deadline = zclock_mono() + timeout_ms;
    while (zclock_mono() < deadline) {
        zmq_pollitem_t item = {zsock_resolve(monitor), 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, (long)(deadline - zclock_mono()));
        if (rc <= 0)
            continue;
        zmsg_t *ev = zmsg_recv(monitor);
        if (!ev)
            break;
        zframe_t *f = zmsg_first(ev);
        uint16_t event = 0;
        if (f && zframe_size(f) >= 2)
            memcpy(&event, zframe_data(f), sizeof event);
        zmsg_destroy(&ev);
        switch (event) {
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
            return "ok";
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
            return "auth-failed";
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
            return "protocol-failed";
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            return "failed";
        default:
            break;
        }
    }
    return "timeout";
}

int main(int argc, char **argv)
{
    const char *access_path = NULL;
    const char *role_name = NULL;
    int timeout_ms = 2000;
    const char *frames_file = NULL;
    long repeat = 1;
    bool nowait = false;
    int first_frame = argc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--access") == 0 && i + 1 < argc) {
            access_path = argv[++i];
        } else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc) {
            role_name = argv[++i];
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            timeout_ms = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--frames-file") == 0 && i + 1 < argc) {
            frames_file = argv[++i];
        } else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc) {
            repeat = atol(argv[++i]);
        } else if (strcmp(argv[i], "--nowait") == 0) {
            nowait = true;
        } else {
            first_frame = i;
            break;
        }
    }
    if (!access_path || !role_name || timeout_ms <= 0 || repeat < 1 ||
        (strcmp(role_name, "client") != 0 && strcmp(role_name, "worker") != 0)) {
        s_usage();
        return 1;
    }
    hq_log_init(false);
    if (sodium_init() < 0) {
        fprintf(stderr, "hq_rawpeer: libsodium init failed\n");
        return 1;
    }
    hq_access_t access;
    hq_err_t err;
    if (hq_access_read(access_path, &access, false, &err) < 0) {
        fprintf(stderr, "hq_rawpeer: %s\n", err.text);
        return 1;
    }
    const hq_access_role_t *role =
        strcmp(role_name, "client") == 0 ? &access.client : &access.worker;
    if (!role->present) {
        fprintf(stderr, "hq_rawpeer: the access file has no %s section\n", role_name);
        return 1;
    }

    zsock_t *sock = zsock_new(ZMQ_DEALER);
    if (!sock || hq_access_setup_socket(sock, role, &err) < 0) {
        fprintf(stderr, "hq_rawpeer: socket setup failed: %s\n", sock ? err.text : "zsock_new");
        zsock_destroy(&sock);
        return 1;
    }
    char mon_ep[64];
    snprintf(mon_ep, sizeof mon_ep, "inproc://hq-rawpeer-mon-%d", (int)getpid());
    if (zmq_socket_monitor(zsock_resolve(sock), mon_ep,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0) {
        fprintf(stderr, "hq_rawpeer: zmq_socket_monitor: %s\n", zmq_strerror(errno));
        zsock_destroy(&sock);
        return 1;
    }
    zsock_t *monitor = zsock_new_pair(NULL);
    if (!monitor || zsock_connect(monitor, "%s", mon_ep) < 0) {
        fprintf(stderr, "hq_rawpeer: monitor socket failed\n");
        zsock_destroy(&monitor);
        zsock_destroy(&sock);
        return 1;
    }
    char *endpoint = hq_access_endpoint(role);
    if (zsock_connect(sock, "%s", endpoint) < 0) {
        fprintf(stderr, "hq_rawpeer: cannot connect to %s\n", endpoint);
        free(endpoint);
        zsock_destroy(&monitor);
        zsock_destroy(&sock);
        return 1;
    }
    free(endpoint);
    printf("handshake: %s\n", s_handshake(monitor, timeout_ms));
    fflush(stdout);

    /* The frame list: the FRAME arguments, then the frames file's records. */
    size_t n_frames = 0, cap_frames = 16;
    s_buf_t *frames = hq_calloc(cap_frames, sizeof *frames);
    int rc = 0;
    for (int i = first_frame; i < argc && rc == 0; i++) {
        if (n_frames == cap_frames) {
            cap_frames *= 2;
            frames = hq_realloc(frames, cap_frames * sizeof *frames);
        }
        if (s_frame(argv[i], &frames[n_frames].data, &frames[n_frames].len) < 0) {
            fprintf(stderr, "hq_rawpeer: bad frame argument: %.60s\n", argv[i]);
            rc = 1;
            break;
        }
        n_frames++;
    }
    if (rc == 0 && frames_file && s_load_frames(frames_file, &frames, &n_frames, &cap_frames) < 0)
        rc = 1;

    if (rc == 0 && !nowait) {
        for (long r = 0; r < repeat; r++)
            for (size_t i = 0; i < n_frames; i++)
                s_send_and_wait(sock, &frames[i], (int)i, timeout_ms);
    } else if (rc == 0) {
        s_stats_t st = {0};
        int64_t t0 = zclock_mono();
        for (long r = 0; r < repeat; r++)
            for (size_t i = 0; i < n_frames; i++) {
                zframe_t *frame = zframe_new(frames[i].data, frames[i].len);
                if (zframe_send(&frame, sock, 0) < 0) {
                    zframe_destroy(&frame);
                    st.send_failed++;
                } else {
                    st.sent++;
                }
                s_drain(sock, &st, 0);
            }
        /* Replies still on their way: until the socket stays quiet for the timeout. */
        while (s_drain(sock, &st, timeout_ms) > 0)
            ;
        printf("sent=%llu replies=%llu error_replies=%llu send_failed=%llu seconds=%.3f\n",
               (unsigned long long)st.sent, (unsigned long long)st.replies,
               (unsigned long long)st.error_replies, (unsigned long long)st.send_failed,
               (double)(zclock_mono() - t0) / 1000.0);
    }
    for (size_t i = 0; i < n_frames; i++)
        free(frames[i].data);
    free(frames);
    zmq_socket_monitor(zsock_resolve(sock), NULL, 0);
    zsock_destroy(&monitor);
    zsock_set_linger(sock, 0);
    zsock_destroy(&sock);
    return rc;
}
