/* Client requests held until the scheduler reports its state (see schedwait.h). */
#include "schedwait.h"

#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

struct hq_schedwait {
    uint8_t rid[HQ_RID_MAX];
    size_t rid_len;
    uint64_t request_id;
    hq_schedwait_answer_fn answer;
    hq_schedwait_drop_fn drop;
    void *data;
    struct hq_schedwait *next;
};

/* Unlinks the held requests, oldest first. */
static struct hq_schedwait *s_take_all(hq_broker_t *b)
{
    struct hq_schedwait *list = NULL, *h = b->sched_waits;
    b->sched_waits = NULL;
    while (h) { /* the list is newest first: reverse it */
        struct hq_schedwait *next = h->next;
        h->next = list;
        list = h;
        h = next;
    }
    return list;
}

void hq_schedwait_hold(hq_broker_t *b, const hq_creq_t *req, hq_schedwait_answer_fn answer,
                       hq_schedwait_drop_fn drop, void *data)
{
    struct hq_schedwait *h = hq_calloc(1, sizeof *h);
    memcpy(h->rid, req->rid, req->rid_len);
    h->rid_len = req->rid_len;
    h->request_id = req->msg->hdr.request_id;
    h->answer = answer;
    h->drop = drop;
    h->data = data;
    bool asked = b->sched_waits != NULL; /* a DUMP is on its way already */
    h->next = b->sched_waits;
    b->sched_waits = h;
    if (asked)
        return;
    hq_sched_cmd_t *cmd = b->ready.sched ? hq_sched_cmd_new(HQ_SCHED_DUMP) : NULL;
    if (!cmd || hq_sched_send(b->ready.sched, &cmd) != 0) {
        hq_sched_cmd_destroy(&cmd);
        hq_schedwait_on_dumped(b, NULL);
    }
}

void hq_schedwait_on_dumped(hq_broker_t *b, const hq_sched_cmd_t *cmd)
{
    const char *text = cmd ? cmd->text : NULL;
    for (struct hq_schedwait *h = s_take_all(b), *next; h; h = next) {
        next = h->next;
        h->answer(b, h->rid, h->rid_len, h->request_id, h->data, text);
        free(h);
    }
}

void hq_schedwait_close(hq_broker_t *b)
{
    for (struct hq_schedwait *h = s_take_all(b), *next; h; h = next) {
        next = h->next;
        if (h->drop)
            h->drop(h->data);
        free(h);
    }
}
