/* The life of allocations (life.h): deciding to submit from the queue's demand,
 * writing the script and running sbatch/qsub, learning the state from the workers and
 * from polling scontrol/qstat at a bounded rate, cancelling what is not needed, and
 * the failure counts that back off and pause a queue. */
#define HQ_LOG_MODULE "hq::server::autoalloc"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "life.h"
#include "demand.h"
#include "hq_duration.h"
#include "hq_log.h"
#include "hq_util.h"
#include "mgr.h"
#include "record.h"
#include "registry.h"
#include "script.h"

#define S_ERR_MAX 4000 /* bytes of a manager's output kept in an error */

static void s_start(hq_alloc_t *a, const hq_argv_t *argv, const char *cwd, enum hq_akind kind,
                    uint32_t queue, uint32_t seq, void *held)
{
    hq_pjob_t job = {.kind = (int)kind, .queue = queue, .seq = seq, .held = held};
    hq_procs_start(a->procs, argv->v, cwd, HQ_ALLOC_CMD_TIMEOUT, &job);
}

char *hq_alife_submit_error(const hq_pdone_t *d, const char *prog)
{
    const char *text = d->err && *d->err ? d->err : d->out ? d->out : "";
    size_t len = strlen(text);
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
        len--;
    if (len > S_ERR_MAX)
        len = S_ERR_MAX;
    if (d->exit_code == -1)
        return hq_asprintf("Could not submit allocation: %.*s", (int)len, text);
    if (d->exit_code != 0)
        return hq_asprintf("Could not submit allocation: %s exited with code %d: %.*s", prog,
                           d->exit_code, (int)len, text);
    return hq_asprintf("Could not submit allocation: %s printed no job id: %.*s", prog, (int)len,
                       text);
}

/* Writes the allocation directory (script) for n nodes; the script's text or NULL. */
static char *s_prepare(hq_alloc_t *a, const hq_aparams_t *p, const char *dir, const char *name,
                       uint32_t n, bool dry_run)
{
    if (hq_alloc_mkdirs(dir) != 0) {
        hq_error("Cannot create the allocation directory %s", dir);
        return NULL;
    }
    char *cmd = hq_ascript_worker_cmd(p, hq_self_path(), a->b->conf.run_dir, getenv("RUST_LOG"));
    char *text = hq_ascript_text(p, n, name, dir, cmd, dry_run);
    free(cmd);
    char *path = hq_asprintf("%s/hq-submit.sh", dir);
    int rc = hq_alloc_write(path, text, 0700);
    free(path);
    if (rc != 0) {
        hq_error("Cannot write the submit script in %s", dir);
        free(text);
        return NULL;
    }
    return text;
}

/* ---- trial allocations ---- */

void hq_alife_trial(hq_alloc_t *a, hq_trial_t *t)
{
    char *dir = hq_asprintf("%s/dry-run/%03u", hq_alloc_root(a), ++a->n_trials);
    char *name = hq_ascript_alloc_name(&t->p, a->max_queue_id + 1, 0);
    char *text = s_prepare(a, &t->p, dir, name, 1, true);
    free(name);
    if (!text) {
        free(dir);
        hq_alife_trial_ended(a, t, "Could not submit allocation: cannot write the submit script");
        return;
    }
    free(text);
    hq_argv_t argv;
    hq_mgr_submit_argv(t->p.mgr, true, &argv);
    s_start(a, &argv, dir, HQ_AK_TRIAL_SUBMIT, 0, 0, t);
    hq_argv_clear(&argv);
    free(dir);
}

static void s_trial_done(hq_alloc_t *a, hq_pdone_t *d)
{
    hq_trial_t *t = d->job.held;
    const char *prog = t->p.mgr == HQ_AMGR_PBS ? "qsub" : "sbatch";
    if (d->job.kind == HQ_AK_TRIAL_CANCEL) {
        if (d->exit_code != 0)
            hq_warn("Cancelling the trial allocation %s failed: %s", t->job_id, d->err);
        hq_alife_trial_ended(a, t, NULL);
        return;
    }
    char *id = d->exit_code == 0 ? hq_mgr_parse_submit(t->p.mgr, d->out) : NULL;
    if (!id) {
        char *e = hq_alife_submit_error(d, prog);
        hq_warn("%s", e);
        hq_alife_trial_ended(a, t, e);
        free(e);
        return;
    }
    t->job_id = id;
    hq_argv_t argv;
    hq_mgr_cancel_argv(t->p.mgr, id, &argv);
    s_start(a, &argv, NULL, HQ_AK_TRIAL_CANCEL, 0, 0, t);
    hq_argv_clear(&argv);
}

/* ---- submitting ---- */

typedef struct s_counts {
    uint32_t queued_allocs;  /* queued or being submitted */
    uint64_t queued_workers; /* their workers, and those of running ones yet to connect */
    uint64_t all_workers;    /* workers of queued and running allocations */
} s_counts_t;

static void s_counts(const hq_aqueue_t *q, s_counts_t *c)
{
    memset(c, 0, sizeof *c);
    for (uint32_t i = 0; i < q->n_allocs; i++) {
        const hq_allocation_t *al = q->allocs[i];
        if (al->state == HQ_AS_QUEUED) {
            c->queued_allocs++;
            c->queued_workers += al->target;
        }
        if (al->state == HQ_AS_RUNNING && al->n_connected < al->target)
            c->queued_workers += al->target - al->n_connected; /* its workers are coming */
        if (al->state <= HQ_AS_RUNNING)
            c->all_workers += al->target;
    }
}

/* Live workers of q's allocations that have nothing assigned: they take waiting
 * tasks at the scheduler's next round. */
static uint64_t s_idle_workers(hq_alloc_t *a, const hq_aqueue_t *q)
{
    uint64_t n = 0;
    const hq_registry_t *r = &a->b->reg;
    for (uint32_t id = 1; id <= r->max_id && id < r->cap; id++) {
        const hq_worker_t *w = r->tab[id];
        if (w && w->state == HQ_WS_RUNNING && w->n_assigned == 0 &&
            w->conf->manager != HQ_MANAGER_NONE && hq_aqueue_find(q, w->conf->manager_job_id))
            n++;
    }
    return n;
}

static void s_set_why(hq_aqueue_t *q, char *why)
{
    if (why && (!q->why_idle || strcmp(why, q->why_idle) != 0))
        hq_debug("Queue %u: %s", q->id, why);
    free(q->why_idle);
    q->why_idle = why;
}

static void s_submit(hq_alloc_t *a, hq_aqueue_t *q, uint32_t nodes)
{
    if (!q->dir)
        q->dir = q->p.name ? hq_asprintf("%s/%u-%s", hq_alloc_root(a), q->id, q->p.name)
                           : hq_asprintf("%s/%u", hq_alloc_root(a), q->id);
    uint32_t seq = ++q->next_seq;
    char *dir = hq_asprintf("%s/%03u", q->dir, seq);
    char *name = hq_ascript_alloc_name(&q->p, q->id, seq);
    char *text = s_prepare(a, &q->p, dir, name, nodes, false);
    free(name);
    if (text) {
        hq_aqueue_add_alloc(q, seq, dir, nodes);
        q->submitting = true;
        hq_argv_t argv;
        hq_mgr_submit_argv(q->p.mgr, false, &argv);
        s_start(a, &argv, dir, HQ_AK_SUBMIT, q->id, seq, NULL);
        hq_argv_clear(&argv);
        hq_debug("Queue %u: submitting allocation %03u of %u worker(s)", q->id, seq, nodes);
    }
    free(text);
    free(dir);
}

/* Decides whether q needs another allocation now, and submits it. */
static void s_evaluate(hq_alloc_t *a, hq_aqueue_t *q)
{
    s_counts_t c;
    s_counts(q, &c);
    uint64_t idle = s_idle_workers(a, q);
    uint64_t cap = (uint64_t)q->p.backlog * q->p.per_alloc + c.queued_workers + idle + 1;
    hq_ademand_t d;
    hq_ademand_compute(&a->b->jobs, &a->b->reg, q, cap, &d);
    s_set_why(q, d.workers == 0 ? hq_ademand_why(&d) : NULL);
    if (d.workers == 0) {
        /* nothing waits that the queue could run: queued allocations are not needed */
        for (uint32_t i = 0; i < q->n_allocs; i++) {
            hq_allocation_t *al = q->allocs[i];
            if (al->state == HQ_AS_QUEUED && *al->id && al->n_seen == 0) {
                hq_info("Queue %u: cancelling allocation %s, no task needs it", q->id, al->id);
                hq_alife_cancel(a, q, al);
            }
        }
        return;
    }
    if (q->paused) {
        s_set_why(q, hq_asprintf("%llu waiting task%s: the queue is paused",
                                 (unsigned long long)d.n_ready, d.n_ready == 1 ? "" : "s"));
        return;
    }
    if (q->submitting || hq_mono_ns() < q->retry_at || c.queued_allocs >= q->p.backlog)
        return;
    if (d.workers <= c.queued_workers + idle)
        return;
    uint64_t need = d.workers - c.queued_workers - idle;
    uint64_t nodes = need < q->p.per_alloc ? need : q->p.per_alloc;
    if (d.max_nodes > nodes)
        nodes = d.max_nodes;
    if (q->p.max_workers) {
        uint64_t room = c.all_workers >= q->p.max_workers ? 0 : q->p.max_workers - c.all_workers;
        if (nodes > room)
            nodes = room;
        if (nodes == 0 || nodes < d.max_nodes)
            return;
    }
    if (q->p.min_util > 0 && q->has_known && d.max_nodes == 0) {
        hq_amount_t per = 0;
        for (uint32_t i = 0; i < q->known.n; i++)
            if (strcmp(q->known.res[i].name, "cpus") == 0)
                per = hq_wres_capacity(&q->known.res[i]) * HQ_AMOUNT_ONE;
        double used = (double)d.cpu_units - (double)(c.queued_workers + idle) * (double)per;
        if (per > 0 && used / ((double)nodes * (double)per) < q->p.min_util) {
            s_set_why(q, hq_asprintf("an allocation would be used below --min-utilization %g",
                                     q->p.min_util));
            return;
        }
    }
    s_submit(a, q, (uint32_t)nodes);
}

/* Workers that registered before sbatch/qsub's answer was read belong to it too. */
static void s_adopt_workers(hq_alloc_t *a, hq_aqueue_t *q, hq_allocation_t *al)
{
    const hq_registry_t *r = &a->b->reg;
    enum hq_manager m = q->p.mgr == HQ_AMGR_PBS ? HQ_MANAGER_PBS : HQ_MANAGER_SLURM;
    for (uint32_t id = 1; id <= r->max_id && id < r->cap; id++) {
        const hq_worker_t *w = r->tab[id];
        if (w && w->state == HQ_WS_RUNNING && w->conf->manager == m &&
            strcmp(w->conf->manager_job_id, al->id) == 0)
            hq_alife_worker_up(a, q, al, w->conf);
    }
}

static void s_submit_done(hq_alloc_t *a, hq_pdone_t *d)
{
    hq_aqueue_t *q = hq_alloc_queue(a, d->job.queue);
    hq_allocation_t *al = NULL;
    for (uint32_t i = 0; q && i < q->n_allocs; i++)
        if (q->allocs[i]->seq == d->job.seq)
            al = q->allocs[i];
    if (!q || !al)
        return; /* the queue was removed meanwhile */
    q->submitting = false;
    const char *prog = q->p.mgr == HQ_AMGR_PBS ? "qsub" : "sbatch";
    char *id = d->exit_code == 0 ? hq_mgr_parse_submit(q->p.mgr, d->out) : NULL;
    if (id) {
        free(al->id);
        al->id = id;
        al->queued_ns = hq_wall_ns();
        q->submit_failures = 0;
        free(q->last_error);
        q->last_error = NULL;
        char *path = hq_asprintf("%s/jobid", al->workdir);
        char *text = hq_asprintf("%s\n", id);
        hq_alloc_write(path, text, 0600);
        free(text);
        free(path);
        hq_info("Queued allocation %s of queue %u (%u worker%s)", id, q->id, al->target,
                al->target == 1 ? "" : "s");
        hq_alloc_emit_alloc(a, q, al, HQ_EV_ALLOC_QUEUED);
        s_adopt_workers(a, q, al);
        if (q->paused || a->stopping) /* paused with --force or stopped meanwhile */
            hq_alife_cancel(a, q, al);
        return;
    }
    char *e = hq_alife_submit_error(d, prog);
    char *path = hq_asprintf("%s/submit-error", al->workdir);
    hq_alloc_write(path, e, 0600);
    free(path);
    hq_aqueue_drop_alloc(q, al);
    free(q->last_error);
    q->last_error = e;
    q->submit_failures++;
    uint32_t k = q->submit_failures < 7 ? q->submit_failures - 1 : 6;
    uint64_t delay = a->backoff_ns << k;
    q->retry_at = hq_mono_ns() + delay;
    hq_warn("Queue %u: %s (failure %u in a row; next try in %.1f s)", q->id, e, q->submit_failures,
            (double)delay / 1e9);
    if (q->submit_failures >= HQ_ALLOC_SUBMIT_LIMIT && !q->paused) {
        q->paused = true;
        hq_warn("Allocation queue %u paused after %u failed submissions in a row; "
                "`hq alloc resume %u` resumes it",
                q->id, q->submit_failures, q->id);
        hq_alloc_emit_queue(a, q, HQ_EV_ALLOC_QUEUE_STATE, 1);
    }
}

/* ---- state ---- */

/* Moves an allocation to running or to its end (with its time and event). */
static void s_set(hq_alloc_t *a, hq_aqueue_t *q, hq_allocation_t *al, enum hq_astate st)
{
    if (al->state >= HQ_AS_FINISHED || al->state == st)
        return;
    al->state = st;
    if (st == HQ_AS_RUNNING) {
        al->started_ns = hq_wall_ns();
        hq_info("Allocation %s of queue %u started", al->id, q->id);
    } else {
        al->ended_ns = hq_wall_ns();
        hq_info("Allocation %s of queue %u %s", al->id, q->id,
                st == HQ_AS_FINISHED ? "finished" : "failed");
    }
    hq_alloc_emit_alloc(a, q, al, HQ_EV_ALLOC_STATE);
}

/* An allocation that ended without any worker: a start failure. */
static void s_start_failure(hq_alloc_t *a, hq_aqueue_t *q, hq_allocation_t *al)
{
    s_set(a, q, al, HQ_AS_FAILED);
    q->start_failures++;
    free(q->last_error);
    q->last_error = hq_asprintf("allocation %s ended without any worker connecting (see "
                                "`hq alloc log %s stderr`)",
                                al->id, al->id);
    if (q->start_failures >= HQ_ALLOC_START_LIMIT && !q->paused) {
        q->paused = true;
        hq_warn("Allocation queue %u paused after %u allocations in a row ended without a "
                "worker; `hq alloc resume %u` resumes it",
                q->id, q->start_failures, q->id);
        hq_alloc_emit_queue(a, q, HQ_EV_ALLOC_QUEUE_STATE, 1);
    }
}

void hq_alife_worker_up(hq_alloc_t *a, hq_aqueue_t *q, hq_allocation_t *al,
                        const hq_worker_conf_t *conf)
{
    al->n_connected++;
    al->n_seen++;
    q->start_failures = 0;
    s_set(a, q, al, HQ_AS_RUNNING);
    if (!q->has_known) {
        q->known.res = hq_calloc(conf->resources.n + 1, sizeof *q->known.res);
        for (uint32_t i = 0; i < conf->resources.n; i++)
            if (hq_wres_copy(&q->known.res[q->known.n], &conf->resources.res[i]) == 0)
                q->known.n++;
        q->has_known = true;
    }
}

void hq_alife_worker_down(hq_alloc_t *a, hq_aqueue_t *q, hq_allocation_t *al)
{
    if (al->n_connected > 0)
        al->n_connected--;
    if (al->n_connected == 0)
        s_set(a, q, al, HQ_AS_FINISHED);
}

void hq_alife_cancel(hq_alloc_t *a, hq_aqueue_t *q, hq_allocation_t *al)
{
    hq_argv_t argv;
    hq_mgr_cancel_argv(q->p.mgr, al->id, &argv);
    s_start(a, &argv, NULL, HQ_AK_CANCEL, q->id, al->seq, NULL);
    hq_argv_clear(&argv);
    s_set(a, q, al, HQ_AS_FINISHED); /* ended by hq's decision, not a failure */
}

/* Applies what the manager said about one allocation. */
static void s_apply(hq_alloc_t *a, hq_aqueue_t *q, hq_allocation_t *al, enum hq_mstate st)
{
    if (al->state >= HQ_AS_FINISHED)
        return;
    switch (st) {
    case HQ_MS_RUNNING:
        s_set(a, q, al, HQ_AS_RUNNING);
        break;
    case HQ_MS_FINISHED:
    case HQ_MS_FAILED:
    case HQ_MS_GONE:
        if (al->n_connected > 0)
            break; /* its workers say goodbye themselves */
        if (al->n_seen == 0)
            s_start_failure(a, q, al);
        else
            s_set(a, q, al, st == HQ_MS_FAILED ? HQ_AS_FAILED : HQ_AS_FINISHED);
        break;
    default:
        break;
    }
}

static void s_poll_done(hq_alloc_t *a, hq_pdone_t *d)
{
    hq_aqueue_t *q = hq_alloc_queue(a, d->job.queue);
    for (uint32_t i = 0; q && i < q->n_allocs; i++) {
        hq_allocation_t *al = q->allocs[i];
        if (!al->polling || (d->job.seq && al->seq != d->job.seq))
            continue;
        al->polling = false;
        s_apply(a, q, al, hq_mgr_parse_status(q->p.mgr, al->id, d->exit_code, d->out, d->err));
    }
}

/* One poll round: scontrol per allocation (SLURM), one qstat per queue (PBS). */
static void s_poll(hq_alloc_t *a)
{
    for (uint32_t i = 0; i < a->n_queues; i++) {
        hq_aqueue_t *q = a->queues[i];
        char *ids[24];
        uint32_t n = 0;
        for (uint32_t k = 0; k < q->n_allocs; k++) {
            hq_allocation_t *al = q->allocs[k];
            if (al->state > HQ_AS_RUNNING || !*al->id || al->polling)
                continue;
            if (q->p.mgr == HQ_AMGR_SLURM) {
                hq_argv_t argv;
                hq_mgr_status_argv(q->p.mgr, &al->id, 1, &argv);
                s_start(a, &argv, NULL, HQ_AK_POLL, q->id, al->seq, NULL);
                hq_argv_clear(&argv);
                al->polling = true;
            } else if (n < sizeof ids / sizeof ids[0]) {
                ids[n++] = al->id;
                al->polling = true;
            }
        }
        if (n > 0) {
            hq_argv_t argv;
            hq_mgr_status_argv(q->p.mgr, ids, n, &argv);
            s_start(a, &argv, NULL, HQ_AK_POLL, q->id, 0, NULL);
            hq_argv_clear(&argv);
        }
    }
}

void hq_alife_done(hq_alloc_t *a, hq_pdone_t *d)
{
    switch ((enum hq_akind)d->job.kind) {
    case HQ_AK_TRIAL_SUBMIT:
    case HQ_AK_TRIAL_CANCEL:
        s_trial_done(a, d);
        break;
    case HQ_AK_SUBMIT:
        s_submit_done(a, d);
        break;
    case HQ_AK_POLL:
        s_poll_done(a, d);
        break;
    case HQ_AK_CANCEL:
        if (d->exit_code != 0)
            hq_warn("Cancelling an allocation of queue %u failed: %s", d->job.queue, d->err);
        break;
    }
}

void hq_alife_tick(hq_alloc_t *a)
{
    for (uint32_t i = 0; i < a->n_queues; i++)
        s_evaluate(a, a->queues[i]);
    uint64_t now = hq_mono_ns();
    if (now - a->last_poll >= a->poll_ns) {
        a->last_poll = now;
        s_poll(a);
    }
}

/* ---- held `alloc add` / `alloc dry-run` requests ---- */

static const char S_TRIAL_OK[] = "A trial allocation was submitted successfully. It was "
                                 "immediately canceled to avoid wasting resources.";

static hq_aqueue_t *s_create(hq_alloc_t *a, hq_trial_t *t)
{
    hq_aqueue_t *q = hq_calloc(1, sizeof *q);
    q->id = ++a->max_queue_id;
    q->p = t->p;
    memset(&t->p, 0, sizeof t->p);
    q->params_text = hq_strdup(t->params_text);
    q->has_known = hq_aparams_predict(&q->p, &q->known);
    hq_alloc_insert(a, q);
    hq_info("Allocation queue %u successfully created", q->id);
    hq_alloc_emit_queue(a, q, HQ_EV_ALLOC_QUEUE, 0);
    return q;
}

void hq_alife_trial_free(hq_trial_t *t)
{
    hq_aparams_clear(&t->p);
    free(t->params_text);
    free(t->job_id);
    free(t);
}

void hq_alife_trial_ended(hq_alloc_t *a, hq_trial_t *t, const char *error)
{
    if (error) {
        hq_client_send_error(&a->b->replies, t->rid, t->rid_len, t->request_id, HQ_ERR_INVALID,
                             error);
        hq_alife_trial_free(t);
        return;
    }
    char *lines[2];
    uint32_t n = 0;
    if (t->trial)
        lines[n++] = hq_asprintf("INFO\t%s", S_TRIAL_OK);
    if (t->create) {
        hq_aqueue_t *q = s_create(a, t);
        lines[n++] = hq_asprintf("INFO\tAllocation queue %u successfully created", q->id);
    }
    hq_reply_t reply = {.json = "{\"result\":{},\"meta\":{}}", .n_log = n, .log = lines};
    hq_client_reply(&a->b->replies, t->rid, t->rid_len, t->request_id, &reply);
    for (uint32_t i = 0; i < n; i++)
        free(lines[i]);
    hq_alife_trial_free(t);
}
