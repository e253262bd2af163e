/* The journal on the main thread: appends frame records into the current batch (a
 * run of task_finished appends of one job becomes one tasks_finished record when
 * opts.coalesce_finished), the batch is handed to the writer at the end of a loop turn
 * or when it grows large, and the writer's verdicts come back through
 * hq_journal_dispatch, which runs the completion callbacks in lsn order. Also the
 * zloop attachment, flushes and the append tap. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hq_util.h"
#include "journal_priv.h"

#define S_KICK_BYTES (256 * 1024) /* main hands a batch over by itself past this */
#define S_KICK_RECORDS 1024

static hq_jbatch_t *s_batch(hq_journal_t *j)
{
    hq_jbatch_t *b = j->spare;
    if (b) {
        j->spare = b->next;
        j->n_spare--;
    } else {
        b = hq_calloc(1, sizeof *b);
    }
    b->kind = HQ_JB_RECORDS;
    b->len = 0;
    b->n_records = 0;
    b->n_cbs = 0;
    b->status = 0;
    b->snap = NULL;
    b->next = NULL;
    b->born_ns = hq_mono_ns();
    return b;
}

static void s_recycle(hq_journal_t *j, hq_jbatch_t *b)
{
    if (b->kind != HQ_JB_RECORDS || j->n_spare >= 8 || b->cap > 4 * HQ_JDEF_GROUP_BYTES) {
        free(b->buf);
        free(b->cbs);
        free(b);
        return;
    }
    b->next = j->spare;
    j->spare = b;
    j->n_spare++;
}

static void s_run_close(hq_journal_t *j);

void hq_journal_kick(hq_journal_t *j)
{
    s_run_close(j);
    if (!j->cur)
        return;
    hq_jbatch_t *b = j->cur;
    j->cur = NULL;
    hq_journal_send_(j, b);
}

static int s_on_kick(zloop_t *loop, int timer_id, void *arg)
{
    hq_journal_t *j = arg;
    j->kick_timer = -1;
    hq_journal_kick(j);
    return 0;
}

static void s_cur(hq_journal_t *j)
{
    if (!j->cur) {
        j->cur = s_batch(j);
        if (j->loop && j->kick_timer < 0)
            j->kick_timer = zloop_timer(j->loop, 0, 1, s_on_kick, j);
    }
}

static void s_add_cb(hq_jbatch_t *b, hq_journal_done_fn *cb, void *arg, uint64_t lsn)
{
    if (!cb)
        return;
    /* the same callback for the same record (a run of finishes) is called once */
    if (b->n_cbs && b->cbs[b->n_cbs - 1].fn == cb && b->cbs[b->n_cbs - 1].arg == arg &&
        b->cbs[b->n_cbs - 1].lsn == lsn)
        return;
    if (b->n_cbs == b->cap_cbs) {
        b->cap_cbs = b->cap_cbs ? 2 * b->cap_cbs : 16;
        b->cbs = hq_realloc(b->cbs, b->cap_cbs * sizeof *b->cbs);
    }
    b->cbs[b->n_cbs++] = (hq_jcb_t){cb, arg, lsn};
}

/* Frames the open run of finishes into the current batch: one task_finished or one
 * tasks_finished record, at the lsn its members were given. */
static void s_run_close(hq_journal_t *j)
{
    if (!j->run_n)
        return;
    hq_jbatch_t *b = j->cur; /* the run's callbacks are in it: it was not handed over */
    hq_jrec_t r = {.lsn = j->run_lsn, .wall_ns = j->run_wall};
    if (j->run_n == 1) {
        r.type = HQ_JR_TASK_FINISHED;
        r.u.task.job = j->run_job;
        r.u.task.task = j->run[0].task;
        r.u.task.instance = j->run[0].instance;
    } else {
        r.type = HQ_JR_TASKS_FINISHED;
        r.u.batch.job = j->run_job;
        r.u.batch.n = j->run_n;
        r.u.batch.insts = j->run;
    }
    /* Cannot fail: 1 to 256 ids, no strings (hq_jrec_frame's limits are far away). */
    j->run_n = 0;
    if (hq_jrec_frame(&r, &b->buf, &b->len, &b->cap, NULL) < 0)
        return;
    if (!b->n_records)
        b->first_lsn = r.lsn;
    b->last_lsn = r.lsn;
    b->n_records++;
}

uint64_t hq_journal_append(hq_journal_t *j, const hq_jrec_t *rec, hq_journal_done_fn *cb, void *arg,
                           hq_err_t *err)
{
    if (!j->started) {
        hq_err_set(err, "journal %s is not started", j->path);
        return 0;
    }
    if (j->o.coalesce_finished && rec->type == HQ_JR_TASK_FINISHED) {
        if (j->run_n &&
            (j->run_job != rec->u.task.job || j->run_n == sizeof j->run / sizeof *j->run))
            s_run_close(j);
        s_cur(j);
        if (!j->run_n) {
            j->run_job = rec->u.task.job;
            j->run_lsn = j->next_lsn++;
            j->run_wall = rec->wall_ns ? rec->wall_ns : hq_wall_ns();
        }
        j->run[j->run_n++] =
            (hq_jinst_t){.task = rec->u.task.task, .instance = rec->u.task.instance};
        j->st_appended++;
        s_add_cb(j->cur, cb, arg, j->run_lsn);
        if (j->tap_fn) {
            hq_jrec_t r = *rec;
            r.lsn = j->run_lsn;
            if (!r.wall_ns)
                r.wall_ns = j->run_wall;
            j->tap_fn(&r, j->tap_arg);
        }
        if (j->run_n == sizeof j->run / sizeof *j->run) {
            s_run_close(j);
            hq_jbatch_t *b = j->cur;
            if (b->len >= S_KICK_BYTES || b->n_records >= S_KICK_RECORDS)
                hq_journal_kick(j);
        }
        return j->run_lsn;
    }
    s_run_close(j);
    s_cur(j);
    hq_jbatch_t *b = j->cur;
    hq_jrec_t r = *rec;
    r.lsn = j->next_lsn;
    if (!r.wall_ns)
        r.wall_ns = hq_wall_ns();
    if (hq_jrec_frame(&r, &b->buf, &b->len, &b->cap, err) < 0)
        return 0;
    j->next_lsn++;
    if (!b->n_records)
        b->first_lsn = r.lsn;
    b->last_lsn = r.lsn;
    b->n_records++;
    j->st_appended++;
    s_add_cb(b, cb, arg, r.lsn);
    if (j->tap_fn)
        j->tap_fn(&r, j->tap_arg);
    if (b->len >= S_KICK_BYTES || b->n_records >= S_KICK_RECORDS)
        hq_journal_kick(j);
    return r.lsn;
}

void hq_journal_on_append(hq_journal_t *j, hq_journal_tap_fn *fn, void *arg)
{
    j->tap_fn = fn;
    j->tap_arg = arg;
}

int hq_journal_fd(const hq_journal_t *j)
{
    return j->pipe_r;
}

void hq_journal_dispatch(hq_journal_t *j)
{
    if (j->pipe_r < 0)
        return;
    char drain[64];
    while (read(j->pipe_r, drain, sizeof drain) > 0)
        ;
    pthread_mutex_lock(&j->mu);
    hq_jbatch_t *b = j->out_head;
    j->out_head = j->out_tail = NULL;
    pthread_mutex_unlock(&j->mu);
    while (b) {
        hq_jbatch_t *n = b->next;
        switch (b->kind) {
        case HQ_JB_RECORDS:
        case HQ_JB_FLUSH:
            if (b->n_records) {
                uint64_t lat = hq_mono_ns() - b->born_ns;
                j->st_lat_ns_sum += lat * b->n_records;
                j->st_lat_n += b->n_records;
                if (lat > j->st_lat_ns_max)
                    j->st_lat_ns_max = lat;
            }
            for (uint32_t k = 0; k < b->n_cbs; k++)
                b->cbs[k].fn(b->cbs[k].arg, b->cbs[k].lsn, b->status);
            if (b->n_records && b->last_lsn > j->settled_lsn)
                j->settled_lsn = b->last_lsn;
            s_recycle(j, b);
            break;
        case HQ_JB_SNAP: {
            hq_jsnap_t *s = b->snap;
            if (s->cb)
                s->cb(s->arg, s->lsn, b->status);
            hq_jsnap_free_(s);
            free(b);
            break;
        }
        case HQ_JB_STATE:
            j->available = b->state != HQ_JOURNAL_UNAVAILABLE;
            if (j->state_fn)
                j->state_fn(j->state_arg, (enum hq_journal_state)b->state, b->status);
            free(b);
            break;
        }
        b = n;
    }
}

static int s_on_done(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    hq_journal_dispatch(arg);
    return 0;
}

int hq_journal_attach(hq_journal_t *j, zloop_t *loop)
{
    if (!j->started || j->loop)
        return -1;
    zmq_pollitem_t it = {NULL, j->pipe_r, ZMQ_POLLIN, 0};
    if (zloop_poller(loop, &it, s_on_done, j) < 0)
        return -1;
    j->loop = loop;
    if (j->cur)
        j->kick_timer = zloop_timer(loop, 0, 1, s_on_kick, j);
    return 0;
}

void hq_journal_detach(hq_journal_t *j)
{
    if (!j->loop)
        return;
    zmq_pollitem_t it = {NULL, j->pipe_r, ZMQ_POLLIN, 0};
    zloop_poller_end(j->loop, &it);
    if (j->kick_timer >= 0)
        zloop_timer_end(j->loop, j->kick_timer);
    j->kick_timer = -1;
    j->loop = NULL;
}

void hq_journal_flush_async(hq_journal_t *j, hq_journal_done_fn *cb, void *arg)
{
    if (!j->started) {
        if (cb)
            cb(arg, 0, EBADF);
        return;
    }
    hq_journal_kick(j);
    hq_jbatch_t *b = s_batch(j);
    b->kind = HQ_JB_FLUSH;
    if (cb) {
        b->cbs = hq_realloc(b->cbs, sizeof *b->cbs * (b->cap_cbs ? b->cap_cbs : 1));
        if (!b->cap_cbs)
            b->cap_cbs = 1;
        b->cbs[b->n_cbs++] = (hq_jcb_t){cb, arg, j->next_lsn - 1};
    }
    hq_journal_send_(j, b);
}

typedef struct s_wait {
    bool done;
    int status;
} s_wait_t;

static void s_wait_cb(void *arg, uint64_t lsn, int errnum)
{
    s_wait_t *w = arg;
    w->done = true;
    w->status = errnum;
}

/* Runs completions until w is done. */
static void s_wait(hq_journal_t *j, s_wait_t *w)
{
    while (!w->done) {
        struct pollfd p = {j->pipe_r, POLLIN, 0};
        if (poll(&p, 1, 1000) < 0 && errno != EINTR)
            break;
        hq_journal_dispatch(j);
    }
}

int hq_journal_flush(hq_journal_t *j, hq_err_t *err)
{
    if (!j->started)
        return hq_err_set(err, "journal %s is not started", j->path);
    s_wait_t w = {0};
    hq_journal_flush_async(j, s_wait_cb, &w);
    s_wait(j, &w);
    if (w.status)
        return hq_err_set(err, "journal %s: %s", j->path, strerror(w.status));
    return 0;
}

void hq_journal_on_state(hq_journal_t *j, hq_journal_state_fn *fn, void *arg)
{
    j->state_fn = fn;
    j->state_arg = arg;
}

bool hq_journal_available(const hq_journal_t *j)
{
    return j->available;
}
