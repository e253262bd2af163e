/* hq_rawpeer: an authenticated (CURVE) peer for integration tests. It connects to the
 * broker with the keys of an access file as a client or a worker, reports how the
 * handshake ended, then sends the frames given on the command line one by one and
 * reports whether a reply came for each. Used to throw malformed, truncated and
 * oversized frames at the broker from a peer that got past authentication.
 *
 * usage: hq_rawpeer --access FILE --role client|worker [--timeout MS] FRAME...
 * FRAME: hex:<hex bytes> | file:<path> | random:<n> | zeros:<n> | header:<type>[:<hex body>]
 *        | valid:server-info | valid:job-summary | valid:heartbeat
 * Output lines: "handshake: ok|auth-failed|protocol-failed|failed|timeout", then per
 * frame "frame <i> (<n> bytes): reply frames=<k> type=<t> len=<n>" or
 * "frame <i> (<n> bytes): no reply". Request ids count up from 1 over the valid: and
 * header: frames. Exit 0 when every frame was processed, 1 on a
 * usage or setup error. */
#include <errno.h>
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
    fprintf(stderr, "usage: hq_rawpeer --access FILE --role client|worker [--timeout MS] FRAME...\n"
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
    int first_frame = argc;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--access") == 0 && i + 1 < argc) {
            access_path = argv[++i];
        } else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc) {
            role_name = argv[++i];
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            timeout_ms = atoi(argv[++i]);
        } else {
            first_frame = i;
            break;
        }
    }
    if (!access_path || !role_name || timeout_ms <= 0 ||
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

    int rc = 0;
    for (int i = first_frame; i < argc; i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        if (s_frame(argv[i], &data, &len) < 0) {
            fprintf(stderr, "hq_rawpeer: bad frame argument: %.60s\n", argv[i]);
            rc = 1;
            break;
        }
        zframe_t *frame = zframe_new(data, len);
        free(data);
        if (zframe_send(&frame, sock, 0) < 0) {
            printf("frame %d (%zu bytes): send failed\n", i - first_frame, len);
            zframe_destroy(&frame);
            continue;
        }
        zmq_pollitem_t item = {zsock_resolve(sock), 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, timeout_ms) > 0) {
            zmsg_t *reply = zmsg_recv(sock);
            zframe_t *last = reply ? zmsg_last(reply) : NULL;
            int type = last && zframe_size(last) >= 4 ? zframe_data(last)[3] : -1;
            printf("frame %d (%zu bytes): reply frames=%zu type=%d len=%zu\n", i - first_frame, len,
                   reply ? zmsg_size(reply) : 0, type, last ? zframe_size(last) : 0);
            zmsg_destroy(&reply);
        } else {
            printf("frame %d (%zu bytes): no reply\n", i - first_frame, len);
        }
        fflush(stdout);
    }
    zmq_socket_monitor(zsock_resolve(sock), NULL, 0);
    zsock_destroy(&monitor);
    zsock_set_linger(sock, 0);
    zsock_destroy(&sock);
    return rc;
}
