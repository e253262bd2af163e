/* Handlers of the `hq alloc` requests (allocreq.h). */
#define HQ_LOG_MODULE "hq::server::autoalloc"
#include "allocreq.h"

#include <stdlib.h>
#include <string.h>

#include "alloc/alloc.h"
#include "hq_log.h"
#include "hq_util.h"

#define S_MAX_PARAMS (64 * 1024) /* bytes of a queue's parameters document */

int hq_h_alloc_add(hq_broker_t *b, hq_creq_t *req)
{
    const hq_query_t *q = &req->msg->u.query;
    if (!q->text || strlen(q->text) > S_MAX_PARAMS)
        return hq_client_error(&b->replies, req, HQ_ERR_BAD_REQUEST,
                               "ALLOC_ADD needs the queue parameters (at most %d bytes)",
                               S_MAX_PARAMS);
    hq_alloc_add(b, req, q->text, q->flag);
    return 0;
}

int hq_h_alloc_list(hq_broker_t *b, hq_creq_t *req)
{
    hq_client_reply_json(&b->replies, req, hq_alloc_list(b), json_object());
    return 0;
}

static int s_no_queue(hq_broker_t *b, hq_creq_t *req, uint64_t id)
{
    return hq_client_error(&b->replies, req, HQ_ERR_NOT_FOUND, "Allocation queue %llu not found",
                           (unsigned long long)id);
}

int hq_h_alloc_info(hq_broker_t *b, hq_creq_t *req)
{
    const hq_query_t *q = &req->msg->u.query;
    char *notes[2] = {NULL, NULL};
    json_t *arr = q->number <= UINT32_MAX ? hq_alloc_info(b, (uint32_t)q->number, notes) : NULL;
    if (!arr)
        return s_no_queue(b, req, q->number);
    json_t *doc = json_pack("{s:o,s:o}", "result", arr, "meta", json_object());
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    hq_reply_t reply = {.json = text, .n_log = notes[1] ? 2 : notes[0] ? 1 : 0, .log = notes};
    hq_client_reply(&b->replies, req->rid, req->rid_len, req->msg->hdr.request_id, &reply);
    free(text);
    free(notes[0]);
    free(notes[1]);
    return 0;
}

int hq_h_alloc_ctl(hq_broker_t *b, hq_creq_t *req)
{
    const hq_query_t *q = &req->msg->u.query;
    if (!q->text)
        return hq_client_error(&b->replies, req, HQ_ERR_BAD_REQUEST,
                               "ALLOC_CTL needs an action (pause, resume or remove)");
    if (q->number > UINT32_MAX || q->number == 0)
        return s_no_queue(b, req, q->number);
    hq_err_t err;
    if (hq_alloc_ctl(b, (uint32_t)q->number, q->text, q->flag, &err) != 0)
        return hq_client_error(&b->replies, req, HQ_ERR_INVALID, "%s", err.text);
    const char *done = strcmp(q->text, "remove") == 0  ? "removed"
                       : strcmp(q->text, "pause") == 0 ? "paused"
                                                       : "resumed";
    char *line = hq_asprintf("INFO\tAllocation queue %llu successfully %s",
                             (unsigned long long)q->number, done);
    hq_client_reply_log(&b->replies, req, 0, &line, 1);
    free(line);
    return 0;
}

int hq_h_alloc_log(hq_broker_t *b, hq_creq_t *req)
{
    const hq_query_t *q = &req->msg->u.query;
    const char *dir = q->text ? hq_alloc_workdir(b, q->text) : NULL;
    if (!dir)
        return hq_client_error(&b->replies, req, HQ_ERR_NOT_FOUND, "Allocation %s not found",
                               q->text ? q->text : "");
    hq_client_reply_json(&b->replies, req, json_pack("{s:s}", "workdir", dir), json_object());
    return 0;
}
