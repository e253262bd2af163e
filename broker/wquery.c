/* Client requests about workers: `worker list`, `worker info`, `worker stop`. */
#define HQ_LOG_MODULE "hq::server::worker"
#include "wquery.h"

#include <stdlib.h>
#include <string.h>

#include "hq_log.h"
#include "hq_render.h"
#include "hq_util.h"
#include "workers.h"

/* Selected worker ids; explicit unknown ids go to missing. */
static uint32_t *s_select_workers(hq_broker_t *b, const hq_selector_t *sel, bool live_only,
                                  uint32_t *n, uint32_t **missing, uint32_t *n_missing)
{
    /* Ids of workers from before a broker restart are gaps (NULL) in b->reg.tab. */
    uint32_t *out = hq_malloc(((size_t)b->reg.max_id + 1) * sizeof(uint32_t));
    uint32_t cnt = 0, nm = 0, cap_m = 0;
    uint32_t *miss = NULL;
    if (sel->kind == HQ_SEL_LAST) {
        for (uint32_t id = b->reg.max_id; id > 0; id--)
            if (b->reg.tab[id] && (!live_only || b->reg.tab[id]->state == HQ_WS_RUNNING)) {
                out[cnt++] = id;
                break;
            }
    } else if (sel->kind == HQ_SEL_ALL) {
        for (uint32_t id = 1; id <= b->reg.max_id; id++)
            if (b->reg.tab[id] && (!live_only || b->reg.tab[id]->state == HQ_WS_RUNNING))
                out[cnt++] = id;
    } else if (hq_rangelist_count(&sel->ids) <= 100000) {
        for (uint32_t r = 0; r < sel->ids.n; r++) {
            const hq_range_t *rg = &sel->ids.ranges[r];
            uint32_t step = rg->step ? rg->step : 1;
            for (uint64_t id = rg->start; id <= rg->end; id += step) {
                if (id >= 1 && id <= b->reg.max_id && b->reg.tab[id]) {
                    out[cnt++] = (uint32_t)id;
                } else {
                    if (nm == cap_m) {
                        cap_m = cap_m ? cap_m * 2 : 8;
                        miss = hq_realloc(miss, cap_m * sizeof(uint32_t));
                    }
                    miss[nm++] = (uint32_t)id;
                }
                if (cnt > b->reg.max_id)
                    break;
            }
        }
    } else {
        for (uint32_t id = 1; id <= b->reg.max_id; id++)
            if (b->reg.tab[id] && hq_rangelist_contains(&sel->ids, id))
                out[cnt++] = id;
    }
    *n = cnt;
    *missing = miss;
    *n_missing = nm;
    return out;
}

int hq_h_worker_stop(hq_broker_t *b, hq_creq_t *req)
{
    uint32_t n, nm, *miss;
    uint32_t *ids = s_select_workers(b, &req->msg->u.query.sel, true, &n, &miss, &nm);
    char **lines = hq_calloc((size_t)n + nm + 1, sizeof(char *));
    uint32_t nl = 0;
    for (uint32_t i = 0; i < n; i++) {
        hq_worker_t *w = b->reg.tab[ids[i]];
        if (w->state != HQ_WS_RUNNING) {
            lines[nl++] =
                hq_asprintf("ERROR\tStopping worker %u failed; worker is already stopped", w->id);
            continue;
        }
        hq_worker_send_simple(&b->wlink, w, HQ_MSG_STOP, HQ_BYE_STOPPED);
        hq_worker_lost(b, w, HQ_WS_STOPPED);
        lines[nl++] = hq_asprintf("INFO\tWorker %u stopped", w->id);
    }
    for (uint32_t i = 0; i < nm; i++)
        lines[nl++] = hq_asprintf("ERROR\tStopping worker %u failed; worker not found", miss[i]);
    hq_client_reply_log(&b->replies, req, 0, lines, nl);
    for (uint32_t i = 0; i < nl; i++)
        free(lines[i]);
    free(lines);
    free(ids);
    free(miss);
    return 0;
}

static json_t *s_worker_json(hq_broker_t *b, const hq_worker_t *w)
{
    json_t *o = hq_worker_json(w->id, w->conf);
    bool live = w->state == HQ_WS_RUNNING;
    if (w->overview) {
        json_t *hw = json_loads(w->overview, 0, NULL);
        if (hw)
            json_object_set_new(o, "_overview", hw);
    }
    if (live && w->mn_job) {
        json_object_set_new(o, "runtime_info",
                            json_pack("{s:{s:b}}", "MultiNodeTask", "main_node", w->mn_main));
        json_object_set_new(o, "_runtime_text",
                            json_string(w->mn_main ? "running multinode task; main node"
                                                   : "running multinode task; secondary node"));
    } else if (live) {
        /* Prefetched tasks (queued beyond what it can start) are counted apart. */
        uint32_t pf = w->n_prefetched < w->n_assigned ? w->n_prefetched : w->n_assigned;
        uint32_t assigned = w->n_assigned - pf;
        json_object_set_new(o, "runtime_info",
                            json_pack("{s:{s:i,s:i,s:b,s:i}}", "SingleNodeTasks", "assigned_tasks",
                                      (json_int_t)assigned, "running_tasks",
                                      (json_int_t)w->n_running, "is_reserved", w->mn_reserved,
                                      "prefetched_tasks", (json_int_t)pf));
        char *text = w->n_running > 0 ? hq_asprintf("assigned tasks: %u; running tasks: %u",
                                                    assigned, w->n_running)
                                      : hq_asprintf("assigned tasks: %u", assigned);
        if (w->mn_reserved) {
            char *more = hq_asprintf("%s; reserved for a multi-node task", text);
            free(text);
            text = more;
        }
        if (pf > 0) {
            char *more = hq_asprintf("%s; prefetched tasks: %u", text, pf);
            free(text);
            text = more;
        }
        json_object_set_new(o, "_runtime_text", json_string(text));
        free(text);
    } else {
        char *at = hq_time_rfc3339(w->ended_ns, 9);
        json_object_set_new(o, "ended", json_pack("{s:s}", "at", at));
        free(at);
        json_object_set_new(o, "_runtime_text", json_string(""));
    }
    if (w->has_last) {
        char *t = hq_time_rfc3339(w->last_time, 9);
        json_object_set_new(o, "last_task_started",
                            json_pack("{s:{s:i,s:i},s:s}", "task_id", "job_id",
                                      (json_int_t)w->last_job, "job_task_id",
                                      (json_int_t)w->last_task, "time", t));
        free(t);
    }
    json_object_set_new(o, "_state", json_string(hq_wstate_word(w->state)));
    (void)b;
    return o;
}

int hq_h_worker_list(hq_broker_t *b, hq_creq_t *req)
{
    bool all = req->msg->u.query.flag;
    json_t *arr = json_array();
    for (uint32_t id = 1; id <= b->reg.max_id; id++) {
        hq_worker_t *w = b->reg.tab[id];
        if (w && (all || w->state == HQ_WS_RUNNING))
            json_array_append_new(arr, s_worker_json(b, w));
    }
    hq_client_reply_json(&b->replies, req, arr, json_pack("{s:[]}", "not_found"));
    return 0;
}

int hq_h_worker_info(hq_broker_t *b, hq_creq_t *req)
{
    uint32_t n, nm, *miss;
    uint32_t *ids = s_select_workers(b, &req->msg->u.query.sel, false, &n, &miss, &nm);
    json_t *arr = json_array();
    for (uint32_t i = 0; i < n; i++)
        json_array_append_new(arr, s_worker_json(b, b->reg.tab[ids[i]]));
    json_t *nf = json_array();
    for (uint32_t i = 0; i < nm; i++)
        json_array_append_new(nf, json_integer(miss[i]));
    hq_client_reply_json(&b->replies, req, arr, json_pack("{s:o}", "not_found", nf));
    free(ids);
    free(miss);
    return 0;
}
