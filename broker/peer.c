/* Sending one frame to a peer of a ROUTER socket, and routing-id helpers: the bottom
 * of the broker's send paths (client replies and worker messages). */
#include "peer.h"

#include <errno.h>
#include <stdlib.h>

#include "hq_util.h"

char *hq_rid_hex(const uint8_t *rid, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char *s = hq_malloc(len * 2 + 1);
    for (size_t i = 0; i < len; i++) {
        s[2 * i] = hex[rid[i] >> 4];
        s[2 * i + 1] = hex[rid[i] & 15];
    }
    s[len * 2] = 0;
    return s;
}

static void s_free_buf(void *data, void *hint)
{
    (void)hint;
    free(data);
}

int hq_peer_send(const hq_peer_t *p, const uint8_t *rid, size_t rid_len, uint8_t *buf, size_t len)
{
    if (p->sink) {
        p->sink(p->sink_arg, rid, rid_len, buf, len);
        free(buf);
        return 0;
    }
    void *h = zsock_resolve(p->sock);
    if (zmq_send(h, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        int e = errno;
        free(buf);
        return e == EAGAIN ? -1 : -2;
    }
    zmq_msg_t m;
    zmq_msg_init_data(&m, buf, len, s_free_buf, NULL);
    if (zmq_msg_send(&m, h, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return errno == EAGAIN ? -1 : -2;
    }
    return 0;
}

int hq_peer_send_copy(const hq_peer_t *p, const uint8_t *rid, size_t rid_len, const uint8_t *buf,
                      size_t len)
{
    if (p->sink) {
        p->sink(p->sink_arg, rid, rid_len, buf, len);
        return 0;
    }
    void *h = zsock_resolve(p->sock);
    if (zmq_send(h, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return errno == EAGAIN ? -1 : -2;
    if (zmq_send(h, buf, len, ZMQ_DONTWAIT) < 0)
        return errno == EAGAIN ? -1 : -2;
    return 0;
}
