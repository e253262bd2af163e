/* The ZAP handler actor (see zap.h). */
#define HQ_LOG_MODULE "hq::server::zap"
#include "zap.h"

#include <string.h>

#include "hq_duration.h"
#include "hq_log.h"
#include "hq_ratelog.h"
#include "hq_util.h"

#define HQ_ZAP_ENDPOINT "inproc://zeromq.zap.01"

typedef struct s_zap_args {
    hq_zap_policy_t policy; /* what to admit */
    int bind_rc;            /* result of binding, read by hq_zap_new after the signal */
} s_zap_args_t;

const char *hq_zap_decide(const hq_zap_policy_t *p, const char *domain, const char *mechanism,
                          const uint8_t *cred, size_t cred_len)
{
    bool curve;
    const uint8_t *pub;
    if (strcmp(domain, HQ_ZAP_DOMAIN_CLIENT) == 0) {
        curve = p->client_curve;
        pub = p->client_pub;
    } else if (strcmp(domain, HQ_ZAP_DOMAIN_WORKER) == 0) {
        curve = p->worker_curve;
        pub = p->worker_pub;
    } else {
        return "unknown domain";
    }
    if (curve) {
        if (strcmp(mechanism, "CURVE") != 0)
            return "mechanism not allowed";
        if (cred_len != 32 || memcmp(cred, pub, 32) != 0)
            return "wrong key";
        return NULL;
    }
    if (strcmp(mechanism, "NULL") != 0)
        return "mechanism not allowed";
    return NULL;
}

static char *s_frame_str(zframe_t *f)
{
    return f ? hq_strndup((const char *)zframe_data(f), zframe_size(f)) : hq_strdup("");
}

static void s_handle(zsock_t *rep, const hq_zap_policy_t *p, hq_ratelog_t *rate)
{
    zmsg_t *req = zmsg_recv(rep);
    if (!req)
        return;
    zframe_t *version = zmsg_pop(req);
    zframe_t *request_id = zmsg_pop(req);
    zframe_t *domain = zmsg_pop(req);
    zframe_t *address = zmsg_pop(req);
    zframe_t *identity = zmsg_pop(req);
    zframe_t *mechanism = zmsg_pop(req);
    zframe_t *cred = zmsg_pop(req);
    char *dom = s_frame_str(domain);
    char *mech = s_frame_str(mechanism);
    char *addr = s_frame_str(address);
    const char *reason = "malformed request";
    if (version && zframe_streq(version, "1.0") && request_id && mechanism)
        reason = hq_zap_decide(p, dom, mech, cred ? zframe_data(cred) : NULL,
                               cred ? zframe_size(cred) : 0);
    uint64_t held = 0;
    if (reason && hq_ratelog_allow(rate, hq_mono_ns(), &held)) {
        if (held)
            hq_warn("Refused connection from %s (%s, %s: %s); %llu more refused before this "
                    "one were not logged",
                    addr, dom, mech, reason, (unsigned long long)held);
        else
            hq_warn("Refused connection from %s (%s, %s: %s)", addr, dom, mech, reason);
    } else if (!reason)
        hq_debug("Admitted connection from %s (%s, %s)", addr, dom, mech);
    zmsg_t *rep_msg = zmsg_new();
    zmsg_addstr(rep_msg, "1.0");
    if (request_id)
        zmsg_append(rep_msg, &request_id);
    else
        zmsg_addstr(rep_msg, "");
    zmsg_addstr(rep_msg, reason ? "400" : "200");
    zmsg_addstr(rep_msg, reason ? reason : "OK");
    zmsg_addstr(rep_msg, reason ? "" : dom);
    zmsg_addmem(rep_msg, "", 0);
    zmsg_send(&rep_msg, rep);
    free(dom);
    free(mech);
    free(addr);
    zframe_destroy(&version);
    zframe_destroy(&request_id);
    zframe_destroy(&domain);
    zframe_destroy(&address);
    zframe_destroy(&identity);
    zframe_destroy(&mechanism);
    zframe_destroy(&cred);
    zmsg_destroy(&req);
}

static void s_zap_actor(zsock_t *pipe, void *arg)
{
    s_zap_args_t *a = arg;
    hq_zap_policy_t policy = a->policy;
    /* A flood of refused peers cannot fill the disk: 20 lines a minute at most. */
    hq_ratelog_t rate = HQ_RATELOG_INIT(20, 60 * HQ_NS_PER_SEC);
    zsock_t *rep = zsock_new(ZMQ_REP);
    int rc = rep ? zsock_bind(rep, HQ_ZAP_ENDPOINT) : -1;
    a->bind_rc = rc;
    zsock_signal(pipe, 0); /* after this, *a belongs to the caller again */
    if (rc != 0) {
        zsock_destroy(&rep);
        return;
    }
    zpoller_t *poller = zpoller_new(pipe, rep, NULL);
    while (true) {
        void *which = zpoller_wait(poller, -1);
        if (which == pipe) {
            char *cmd = zstr_recv(pipe);
            bool term = !cmd || strcmp(cmd, "$TERM") == 0;
            zstr_free(&cmd);
            if (term)
                break;
        } else if (which == rep) {
            s_handle(rep, &policy, &rate);
        } else if (zpoller_terminated(poller)) {
            break;
        }
    }
    zpoller_destroy(&poller);
    zsock_destroy(&rep);
}

zactor_t *hq_zap_new(const hq_zap_policy_t *policy)
{
    s_zap_args_t a = {.policy = *policy, .bind_rc = -1};
    zactor_t *actor = zactor_new(s_zap_actor, &a);
    if (!actor)
        return NULL;
    if (a.bind_rc != 0) {
        zactor_destroy(&actor);
        return NULL;
    }
    return actor;
}
