/* Private to the codec (hq_msg.c encodes, hq_msg_dec.c decodes): the limits both
 * sides enforce and the cross-field checks they share, so that the encoder refuses
 * exactly what the decoder would reject. proto/wire/PROTOCOL.md lists the same numbers. */
#ifndef HQ_MSG_PRIV_H
#define HQ_MSG_PRIV_H

#include <stdbool.h>
#include <stdint.h>

#include "hq_msg.h"

/* Element counts. Small lists: argv, env, variants, requests per variant, resources,
 * label groups, labels per group, log lines, nodes, allocations per event. */
#define HQ_MSG_MAX_LIST 65536u
/* Task-scale lists: ranges, defs, entries, graph tasks, deps, assigned defs and
 * tasks, events, cancel refs (the frame size bounds them first in practice). */
#define HQ_MSG_MAX_ITEMS (16u * 1024 * 1024)
/* The JSON document of a REPLY may be as large as a client frame. */
#define HQ_MSG_MAX_JSON ((uint32_t)HQ_CLIENT_MAXMSG)

/* Fields (array length) of each struct on the wire. */
enum {
    HQ_NF_RANGE = 3,
    HQ_NF_SELECTOR = 2,
    HQ_NF_STDIO = 3,
    HQ_NF_KV = 2,
    HQ_NF_RREQ = 4,
    HQ_NF_RVARIANT = 4,
    HQ_NF_TASK_DEF = 13,
    HQ_NF_GRAPH_TASK = 3,
    HQ_NF_SUBMIT = 11,    /* the last field (key) was added later: */
    HQ_NF_SUBMIT_V0 = 10, /* a SUBMIT without it is still accepted (and sent when keyless) */
    HQ_NF_QUERY = 6,
    HQ_NF_REPLY = 3,
    HQ_NF_ERROR = 2,
    HQ_NF_WRES = 6,
    HQ_NF_CONF = 17,    /* the last field (coupling) was added later: */
    HQ_NF_CONF_V0 = 16, /* the decoder also accepts a conf without it */
    HQ_NF_COUPLING = 5,
    HQ_NF_REGISTER = 6,      /* the last fields (reports, then secret) were added later: */
    HQ_NF_REGISTER_V1 = 5,   /* the decoder also accepts a REGISTER without the secret */
    HQ_NF_REGISTER_V0 = 4,   /* or without both */
    HQ_NF_REGISTERED = 5,    /* the last field (secret) was added later: */
    HQ_NF_REGISTERED_V0 = 4, /* the decoder also accepts a REGISTERED without it */
    HQ_NF_RALLOC = 3,
    HQ_NF_ASSIGN_DEF = 5,
    HQ_NF_ASSIGN_TASK = 8,
    HQ_NF_ASSIGN = 2,
    HQ_NF_EVENT = 7,
    HQ_NF_RESULTS = 2,
    HQ_NF_TASK_REF = 3,
    HQ_NF_CANCEL = 1,
    HQ_NF_GOODBYE = 1,
    HQ_NF_OVERVIEW = 1,
};

/* Which union member (body) a type carries. */
enum hq_msg_body {
    HQ_BODY_INVALID = -1, /* unknown type */
    HQ_BODY_NONE = 0,     /* empty body (zero bytes) */
    HQ_BODY_SUBMIT,
    HQ_BODY_QUERY,
    HQ_BODY_REPLY,
    HQ_BODY_ERROR,
    HQ_BODY_REGISTER,
    HQ_BODY_REGISTERED,
    HQ_BODY_RESULTS,
    HQ_BODY_ASSIGN,
    HQ_BODY_CANCEL,
    HQ_BODY_GOODBYE,
    HQ_BODY_OVERVIEW,
};
enum hq_msg_body hq_msgp_body(uint8_t type);

/* Largest frame for a type: worker-socket types use HQ_WORKER_MAXMSG. */
uint64_t hq_msgp_max_frame(uint8_t type);

/* Cross-field checks; each returns 0 or fills err ("<TYPE>: field '<f>' ...") and
 * returns -1. */
int hq_msgp_check_range(const hq_range_t *r, const char *tname, hq_err_t *err);
int hq_msgp_check_wres(const hq_wres_t *w, const char *tname, hq_err_t *err);
/* One coupling weight of conf: resource indices < resources.n and distinct, group
 * indices within the resources' groups, weight <= 65535. */
int hq_msgp_check_coupling(const hq_worker_conf_t *c, const hq_coupling_t *w, const char *tname,
                           hq_err_t *err);
int hq_msgp_check_utilization(double u, const char *tname, hq_err_t *err);

#endif
