/* A seeded random property test of placement (broker/sched/place.h) against a
 * model of strict-FIFO workers: random classes, workers (coming and going), ready
 * ranges, rounds, releases, credits and cancels; every assignment is checked
 * against the model's capacity, credit, prefetch and lifetime, and the module's
 * introspection must agree with the model after every step. */
#include "place_fixture.h"

TestSuite(place, .init = setup, .fini = teardown);

static uint64_t g_rng;

static uint32_t rnd(uint32_t n)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return n ? (uint32_t)(g_rng % n) : 0;
}

#define PW 24  /* workers */
#define PC 12  /* classes */
#define PJ 400 /* jobs */
#define PT 64  /* tasks per job (max) */
#define NRES 3 /* cpus, gpus, mem */

typedef struct mtask {
    uint32_t job, task, rq, variant;
} mtask_t;

typedef struct mworker {
    bool alive;
    hq_amount_t cap[NRES], free[NRES];
    uint32_t credit, prefetch;
    uint64_t lifetime_end;
    mtask_t run[256];
    uint32_t n_run;
    mtask_t wait[256];
    uint32_t n_wait;
    bool in_mn; /* held whole by a multi-node task */
} mworker_t;

/* A placed multi-node task of the model: its nodes, root first. */
typedef struct mmn {
    mtask_t t;
    uint32_t nodes[PW];
    uint32_t n;
} mmn_t;

static mmn_t MN[64];
static uint32_t n_mn;

typedef struct mvariant {
    bool all[NRES];
    hq_amount_t amount[NRES]; /* < 0: not requested */
    uint64_t min_time;
    uint32_t nodes;
} mvariant_t;

static mworker_t M[PW];
static mvariant_t MV[PC][3];
static uint32_t MNV[PC];
static const char *RES_NAMES[NRES] = {"cpus", "gpus", "mem"};
static uint8_t assigned_once[PJ][PT];

static hq_amount_t mneed(const mworker_t *w, const mvariant_t *v, int r)
{
    return v->all[r] ? w->cap[r] : v->amount[r];
}

static bool mfits(const mworker_t *w, const mvariant_t *v, bool total)
{
    for (int r = 0; r < NRES; r++) {
        if (v->amount[r] < 0 && !v->all[r])
            continue;
        if (w->cap[r] <= 0)
            return false;
        if ((total ? w->cap[r] : w->free[r]) < mneed(w, v, r))
            return false;
    }
    return true;
}

static void mtake(mworker_t *w, const mvariant_t *v, int sign)
{
    for (int r = 0; r < NRES; r++)
        if (v->amount[r] >= 0 || v->all[r])
            w->free[r] -= sign * mneed(w, v, r);
}

static void mpromote(mworker_t *w)
{
    while (w->n_wait > 0) {
        const mtask_t *t = &w->wait[0];
        const mvariant_t *v = &MV[t->rq][t->variant];
        if (!mfits(w, v, false))
            break;
        mtake(w, v, 1);
        w->run[w->n_run++] = *t;
        memmove(w->wait, w->wait + 1, (w->n_wait - 1) * sizeof *w->wait);
        w->n_wait--;
    }
}

static void random_worker(hq_place_t *p, uint32_t id, uint64_t now)
{
    mworker_t *w = &M[id];
    memset(w, 0, sizeof *w);
    w->alive = true;
    wspec_t s = {.cpus = 1 + rnd(16),
                 .gpus = rnd(2) ? rnd(5) : 0,
                 .mem = rnd(2) ? 1 + rnd(64) : 0,
                 .credit = rnd(10) == 0 ? 0 : rnd(24),
                 .prefetch = rnd(4),
                 .lifetime_end = rnd(3) == 0 ? now + rnd(10) * HOUR : 0};
    w->cap[0] = s.cpus * ONE;
    w->cap[1] = s.gpus * ONE;
    w->cap[2] = s.mem * ONE;
    memcpy(w->free, w->cap, sizeof w->cap);
    w->credit = s.credit;
    w->prefetch = s.prefetch;
    w->lifetime_end = s.lifetime_end;
    add_worker(p, id, s);
}

static void random_class(hq_place_t *p, uint32_t c)
{
    char specs[3][128];
    MNV[c] = 1 + rnd(3);
    for (uint32_t v = 0; v < MNV[c]; v++) {
        mvariant_t *mv = &MV[c][v];
        memset(mv, 0, sizeof *mv);
        int len = 0;
        if (rnd(15) == 0) {
            mv->nodes = 2;
            len += snprintf(specs[v] + len, sizeof specs[v] - len, "nodes=2 ");
        }
        for (int r = 0; r < NRES; r++) {
            mv->amount[r] = -1;
            if (mv->nodes || (r > 0 && rnd(3) != 0))
                continue;
            if (r > 0 && rnd(6) == 0) {
                mv->all[r] = true;
                len += snprintf(specs[v] + len, sizeof specs[v] - len, "%s=all ", RES_NAMES[r]);
            } else {
                mv->amount[r] = (hq_amount_t)(1 + rnd(16)) * ONE / 4;
                len += snprintf(specs[v] + len, sizeof specs[v] - len, "%s=%.4f ", RES_NAMES[r],
                                (double)mv->amount[r] / ONE);
            }
        }
        if (rnd(4) == 0) {
            mv->min_time = (1 + rnd(8)) * HOUR;
            len += snprintf(specs[v] + len, sizeof specs[v] - len, "time=%.4f",
                            (double)mv->min_time / HOUR);
        }
    }
    add_rq(p, c, specs[0], MNV[c] > 1 ? specs[1] : NULL, MNV[c] > 2 ? specs[2] : NULL);
}

/* Checks one assignment against the model and applies it. */
static void mapply(const hq_sched_slot_t *s, uint64_t now)
{
    cr_assert_lt(s->worker_id, PW);
    mworker_t *w = &M[s->worker_id];
    cr_assert(w->alive, "assigned to dead worker %u", s->worker_id);
    cr_assert_lt(s->rq_id, PC);
    cr_assert_lt(s->variant, MNV[s->rq_id]);
    cr_assert_lt(s->job_id, PJ);
    cr_assert_lt(s->task_id, PT);
    cr_assert_eq(assigned_once[s->job_id][s->task_id], 0, "task %u.%u assigned twice", s->job_id,
                 s->task_id);
    assigned_once[s->job_id][s->task_id] = 1;
    const mvariant_t *v = &MV[s->rq_id][s->variant];
    cr_assert_eq(v->nodes, 0, "multi-node variant placed as one slot");
    cr_assert(!w->in_mn, "task on a node of a multi-node task");
    for (int r = 0; r < NRES; r++)
        if (v->amount[r] >= 0 || v->all[r])
            cr_assert_gt(w->cap[r], 0, "worker %u lacks %s", s->worker_id, RES_NAMES[r]);
    if (w->lifetime_end)
        cr_assert_leq(v->min_time, w->lifetime_end > now ? w->lifetime_end - now : 0);
    cr_assert_lt(w->n_run + w->n_wait, w->credit, "credit exceeded on worker %u", s->worker_id);
    mtask_t t = {s->job_id, s->task_id, s->rq_id, s->variant};
    if (w->n_wait == 0 && mfits(w, v, false)) {
        mtake(w, v, 1);
        w->run[w->n_run++] = t;
    } else {
        cr_assert(mfits(w, v, true), "prefetched task does not fit total capacity");
        w->wait[w->n_wait++] = t;
        cr_assert_leq(w->n_wait, w->prefetch, "prefetch exceeded on worker %u", s->worker_id);
    }
}

/* Checks the n_nodes consecutive slots of a multi-node task; returns slots used. */
static uint32_t mapply_mn(const hq_sched_slot_t *s, uint32_t left, uint64_t now)
{
    const mvariant_t *v = &MV[s->rq_id][s->variant];
    cr_assert_leq(v->nodes, left, "multi-node task with too few slots");
    cr_assert_eq(assigned_once[s->job_id][s->task_id], 0, "task assigned twice");
    assigned_once[s->job_id][s->task_id] = 1;
    cr_assert_lt(n_mn, 64);
    mmn_t *m = &MN[n_mn++];
    m->t = (mtask_t){s->job_id, s->task_id, s->rq_id, s->variant};
    m->n = v->nodes;
    for (uint32_t k = 0; k < v->nodes; k++) {
        const hq_sched_slot_t *x = &s[k];
        cr_assert(x->job_id == s->job_id && x->task_id == s->task_id, "nodes of one task");
        cr_assert_lt(x->worker_id, PW);
        mworker_t *w = &M[x->worker_id];
        cr_assert(w->alive && !w->in_mn && w->n_run + w->n_wait == 0 && w->credit > 0,
                  "multi-node task on a busy worker %u", x->worker_id);
        if (w->lifetime_end)
            cr_assert_leq(v->min_time, w->lifetime_end > now ? w->lifetime_end - now : 0);
        w->in_mn = true;
        m->nodes[k] = x->worker_id;
    }
    return v->nodes;
}

static void mapply_all(const hq_sched_slots_t *out, uint64_t now)
{
    for (uint32_t i = 0; i < out->n;) {
        const hq_sched_slot_t *s = &out->slots[i];
        cr_assert_lt(s->rq_id, PC);
        cr_assert_lt(s->variant, MNV[s->rq_id]);
        if (MV[s->rq_id][s->variant].nodes > 0) {
            i += mapply_mn(s, out->n - i, now);
        } else {
            mapply(s, now);
            i++;
        }
    }
}

/* Ends the multi-node task rooted at wid (if any); true when it did. */
static bool mrelease_mn(hq_place_t *p, uint32_t wid)
{
    for (uint32_t i = 0; i < n_mn; i++) {
        if (MN[i].nodes[0] != wid)
            continue;
        for (uint32_t k = 0; k < MN[i].n; k++)
            M[MN[i].nodes[k]].in_mn = false;
        mtask_t t = MN[i].t;
        MN[i] = MN[--n_mn];
        release(p, wid, t.job, t.task, t.rq, t.variant);
        return true;
    }
    return false;
}

/* A worker of the model goes down: a root ends its task, a secondary leaves it. */
static void mdown_mn(uint32_t wid)
{
    for (uint32_t i = 0; i < n_mn; i++) {
        for (uint32_t k = 0; k < MN[i].n; k++) {
            if (MN[i].nodes[k] != wid)
                continue;
            if (k == 0) {
                for (uint32_t j = 0; j < MN[i].n; j++)
                    M[MN[i].nodes[j]].in_mn = false;
                MN[i] = MN[--n_mn];
            } else {
                memmove(MN[i].nodes + k, MN[i].nodes + k + 1, (MN[i].n - k - 1) * sizeof(uint32_t));
                MN[i].n--;
                M[wid].in_mn = false;
            }
            return;
        }
    }
}

static void mcheck(hq_place_t *p)
{
    for (uint32_t i = 0; i < PW; i++) {
        const mworker_t *w = &M[i];
        if (!w->alive)
            continue;
        for (int r = 0; r < NRES; r++) {
            cr_assert_geq(w->free[r], 0, "worker %u over capacity on %s", i, RES_NAMES[r]);
            if (w->cap[r] > 0)
                cr_assert_eq(hq_place_worker_free(p, i, RES_NAMES[r]), w->free[r]);
        }
        hq_place_winfo_t info;
        cr_assert_eq(hq_place_worker_info(p, i, &info), 0);
        cr_assert_eq(info.held, w->n_run + w->n_wait + (w->in_mn ? 1 : 0),
                     "worker %u held %u run %u wait %u mn %d", i, info.held, w->n_run, w->n_wait,
                     w->in_mn);
        cr_assert_eq(info.prefetched, w->n_wait);
    }
}

static void mrelease(hq_place_t *p, uint32_t wid, bool waiting, uint32_t k)
{
    mworker_t *w = &M[wid];
    mtask_t t;
    if (waiting) {
        t = w->wait[k];
        memmove(w->wait + k, w->wait + k + 1, (w->n_wait - k - 1) * sizeof *w->wait);
        w->n_wait--;
    } else {
        t = w->run[k];
        w->run[k] = w->run[--w->n_run];
        mtake(w, &MV[t.rq][t.variant], -1);
    }
    mpromote(w);
    release(p, wid, t.job, t.task, t.rq, t.variant);
}

Test(place, random_workloads_never_exceed_capacity_prefetch_or_credit)
{
    for (uint64_t seed = 1; seed <= 6; seed++) {
        hq_place_t *p = hq_place_new();
        g_rng = 0x9E3779B97F4A7C15ULL * seed;
        memset(assigned_once, 0, sizeof assigned_once);
        n_mn = 0;
        uint64_t now = NOW;
        for (uint32_t c = 0; c < PC; c++)
            random_class(p, c);
        for (uint32_t i = 0; i < PW; i++)
            random_worker(p, i, now);
        uint32_t next_job = 0;
        uint64_t placed = 0;
        for (int step = 0; step < 3000; step++) {
            uint32_t action = rnd(100);
            if (action < 20 && next_job < PJ) {
                uint32_t job = next_job++;
                uint32_t a = rnd(PT), b = rnd(PT);
                ready_step(p, job, rnd(PC), (int32_t)rnd(4) - 1, a < b ? a : b, a < b ? b : a,
                           1 + rnd(2));
            } else if (action < 55) {
                now += rnd(600) * 1000000000ULL;
                hq_sched_slots_t out = {0};
                hq_place_run(p, now, &out);
                mapply_all(&out, now);
                placed += out.n;
                free(out.slots);
            } else if (action < 90) {
                uint32_t wid = rnd(PW);
                mworker_t *w = &M[wid];
                if (w->alive && w->in_mn) {
                    mrelease_mn(p, wid);
                } else if (w->alive && w->n_run + w->n_wait > 0) {
                    bool waiting = w->n_wait > 0 && (w->n_run == 0 || rnd(4) == 0);
                    mrelease(p, wid, waiting, rnd(waiting ? w->n_wait : w->n_run));
                }
            } else if (action < 94) {
                uint32_t wid = rnd(PW);
                if (M[wid].alive) {
                    M[wid].credit = rnd(24);
                    hq_place_credit(p, wid, M[wid].credit);
                }
            } else if (action < 97) {
                uint32_t wid = rnd(PW);
                if (M[wid].alive) {
                    hq_place_worker_down(p, wid);
                    mdown_mn(wid);
                    M[wid].alive = false;
                } else {
                    random_worker(p, wid, now);
                }
            } else if (next_job > 0) {
                uint32_t job = rnd(next_job);
                if (rnd(2)) {
                    hq_place_cancel_job(p, job);
                } else {
                    hq_range_t r = {.start = rnd(PT), .end = PT, .step = 1 + rnd(3)};
                    hq_sched_ready_t rd = {.job_id = job, .ids = {.n = 1, .ranges = &r}};
                    hq_place_cancel_tasks(p, &rd);
                }
            }
            mcheck(p);
        }
        cr_assert_gt(placed, 500, "seed %llu placed only %llu", (unsigned long long)seed,
                     (unsigned long long)placed);
        hq_place_destroy(&p);
    }
}
