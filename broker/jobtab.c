/* The job table: jobs by id, lookup and selection (selectors to existing ids), id
 * reservation, and the SUBMIT idempotency keys (proto/wire/PROTOCOL.md): submit_keys
 * maps the hex of each keyed submit's key to its job id, with a pending bit while the
 * submit waits for its journal record. An entry lives exactly as long as its job
 * (forget drops it), so the index costs one entry per keyed submit of a live job. */
#include "jobtab.h"

#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

hq_job_t *hq_jobtab_get(const hq_jobtab_t *t, uint32_t id)
{
    return id < t->cap ? t->tab[id] : NULL;
}

uint32_t *hq_jobtab_select(const hq_jobtab_t *t, const hq_selector_t *sel, uint32_t *n,
                           uint32_t **missing, uint32_t *n_missing)
{
    uint32_t *out = hq_malloc(((size_t)t->n_live + 1) * sizeof(uint32_t));
    uint32_t cnt = 0;
    uint32_t *miss = NULL, n_miss = 0, cap_miss = 0;
    if (sel->kind == HQ_SEL_LAST) {
        for (uint32_t id = t->max_id; id > 0; id--)
            if (t->tab[id]) {
                out[cnt++] = id;
                break;
            }
    } else if (sel->kind == HQ_SEL_ALL) {
        for (uint32_t id = 1; id <= t->max_id; id++)
            if (t->tab[id])
                out[cnt++] = id;
    } else {
        uint64_t total = hq_rangelist_count(&sel->ids);
        if (total <= 1000000) {
            /* Enumerate the ids in order of appearance; report unknown ones. */
            uint8_t *seen = hq_calloc((size_t)t->max_id + 2, 1);
            for (uint32_t r = 0; r < sel->ids.n; r++) {
                const hq_range_t *rg = &sel->ids.ranges[r];
                uint32_t step = rg->step ? rg->step : 1;
                for (uint64_t id = rg->start; id <= rg->end; id += step) {
                    if (id <= t->max_id && t->tab[id]) {
                        if (!seen[id]) {
                            seen[id] = 1;
                            out[cnt++] = (uint32_t)id;
                        }
                    } else if (missing) {
                        if (n_miss == cap_miss) {
                            cap_miss = cap_miss ? cap_miss * 2 : 8;
                            miss = hq_realloc(miss, cap_miss * sizeof(uint32_t));
                        }
                        miss[n_miss++] = (uint32_t)id;
                    }
                }
            }
            free(seen);
        } else {
            for (uint32_t id = 1; id <= t->max_id; id++)
                if (t->tab[id] && hq_rangelist_contains(&sel->ids, id))
                    out[cnt++] = id;
        }
    }
    *n = cnt;
    if (missing) {
        *missing = miss;
        *n_missing = n_miss;
    } else {
        free(miss);
    }
    return out;
}

/* ---- SUBMIT idempotency keys ---- */

/* An index value: job id << 1 | pending (never NULL: job ids start at 1). */
#define S_KEY_VAL(id, pending) ((void *)(uintptr_t)(((uintptr_t)(id) << 1) | ((pending) ? 1 : 0)))

static void s_key_hex(const uint8_t key[HQ_SUBMIT_KEY_LEN], char out[2 * HQ_SUBMIT_KEY_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < HQ_SUBMIT_KEY_LEN; i++) {
        out[2 * i] = digits[key[i] >> 4];
        out[2 * i + 1] = digits[key[i] & 15];
    }
    out[2 * HQ_SUBMIT_KEY_LEN] = 0;
}

/* The job id the key belongs to (0: unknown); *pending tells whether that submit
 * still waits for its journal record. */
uint32_t hq_jobtab_key_find(hq_jobtab_t *t, const uint8_t *key, bool *pending)
{
    *pending = false;
    if (!t->submit_keys)
        return 0;
    char hex[2 * HQ_SUBMIT_KEY_LEN + 1];
    s_key_hex(key, hex);
    uintptr_t v = (uintptr_t)zhashx_lookup(t->submit_keys, hex);
    *pending = v & 1;
    return (uint32_t)(v >> 1);
}

void hq_jobtab_key_put(hq_jobtab_t *t, const uint8_t *key, uint32_t job_id, bool pending)
{
    if (!t->submit_keys)
        t->submit_keys = zhashx_new(); /* string keys (copied), values are plain ids */
    char hex[2 * HQ_SUBMIT_KEY_LEN + 1];
    s_key_hex(key, hex);
    zhashx_update(t->submit_keys, hex, S_KEY_VAL(job_id, pending));
}

/* Drops the key if it still names job_id (pending_only: only a pending entry). */
void hq_jobtab_key_drop(hq_jobtab_t *t, const uint8_t *key, uint32_t job_id, bool pending_only)
{
    bool pending;
    if (hq_jobtab_key_find(t, key, &pending) != job_id || (pending_only && !pending))
        return;
    char hex[2 * HQ_SUBMIT_KEY_LEN + 1];
    s_key_hex(key, hex);
    zhashx_delete(t->submit_keys, hex);
}

void hq_jobtab_keys_forget(hq_jobtab_t *t, const hq_job_t *j)
{
    for (uint32_t k = 0; k < j->n_submits && t->submit_keys; k++) {
        const hq_submit_t *s = &j->submits[k].msg->u.submit;
        if (s->has_key)
            hq_jobtab_key_drop(t, s->key, j->id, false);
    }
}

void hq_jobtab_keys_destroy(hq_jobtab_t *t)
{
    zhashx_destroy(&t->submit_keys);
}

void hq_jobtab_reserve(hq_jobtab_t *t, uint32_t id)
{
    if (id + 1 < t->cap)
        return;
    uint32_t cap = t->cap ? t->cap : 64;
    while (id + 1 >= cap)
        cap *= 2;
    t->tab = hq_realloc(t->tab, cap * sizeof(hq_job_t *));
    memset(t->tab + t->cap, 0, (cap - t->cap) * sizeof(hq_job_t *));
    t->cap = cap;
}

uint32_t hq_jobtab_next_id(hq_jobtab_t *t)
{
    uint32_t id = ++t->max_id;
    hq_jobtab_reserve(t, id);
    return id;
}

void hq_jobtab_give_back(hq_jobtab_t *t, uint32_t id)
{
    if (id == 0 || id > t->max_id || hq_jobtab_get(t, id))
        return;
    t->unused = hq_realloc(t->unused, (t->n_unused + 1) * sizeof *t->unused);
    t->unused[t->n_unused++] = id;
    for (bool more = true; more;) {
        more = false;
        for (uint32_t k = 0; k < t->n_unused; k++) {
            if (t->unused[k] != t->max_id)
                continue;
            t->max_id--;
            t->unused[k] = t->unused[--t->n_unused];
            more = true;
            break;
        }
    }
}

hq_task_t *hq_jobtab_task(const hq_jobtab_t *t, uint32_t job_id, uint32_t task_id, hq_job_t **jp)
{
    hq_job_t *j = hq_jobtab_get(t, job_id);
    *jp = j;
    return j ? hq_job_task(j, task_id) : NULL;
}

void hq_jobtab_fini(hq_jobtab_t *t)
{
    for (uint32_t id = 1; id <= t->max_id && t->tab; id++)
        hq_job_destroy(&t->tab[id]);
    free(t->tab);
    t->tab = NULL;
    free(t->unused);
    t->unused = NULL;
    t->n_unused = 0;
    hq_jobtab_keys_destroy(t);
}
