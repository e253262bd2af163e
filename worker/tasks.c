/* The worker's task table: assigned tasks wait in a local FIFO until the allocator
 * finds them resources, then run as processes until they exit, are canceled or hit
 * their time limit. Every transition produces a task event for the broker. The
 * ASSIGN message stays alive (reference counted) while any of its tasks exists, so
 * definitions are never copied. */
#include "wk.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define HQ_LOG_MODULE "hq::worker"
#include "hq_duration.h"
#include "hq_log.h"
#include "hq_placeholder.h"
#include "hq_util.h"

#define WK_KILL_GRACE_MS 1000
/* Tasks shorter than this on average get a deep local queue ... */
#define WK_SHORT_TASK_NS (20 * HQ_NS_PER_MS)
/* ... holding about this much work per cpu (at most the registered prefetch). */
#define WK_QUEUE_WORK_NS (40 * HQ_NS_PER_MS)
#define WK_ERROR_FILE_MAX 2048

struct wk_batch {
    hq_msg_t *msg; /* the ASSIGN message */
    uint32_t refs; /* tasks still referring to it */
};

static void s_batch_unref(wk_batch_t *b)
{
    if (b && --b->refs == 0) {
        hq_msg_destroy(&b->msg);
        free(b);
    }
}

static void s_task_free(wk_t *w, wk_task_t *t)
{
    if (t->limit_timer >= 0 && w->loop)
        zloop_timer_end(w->loop, t->limit_timer);
    if (t->kill_timer >= 0 && w->loop)
        zloop_timer_end(w->loop, t->kill_timer);
    if (t->allocs) {
        wk_alloc_release(w->alloc, t->allocs, t->n_allocs);
        wk_ralloc_free(t->allocs, t->n_allocs);
    }
    if (t->stream)
        free(wk_capture_end(w, t, false));
    if (t->task_dir) {
        wk_rm_tree(t->task_dir);
        free(t->task_dir);
    }
    free(t->out_path);
    free(t->err_path);
    s_batch_unref(t->batch);
    free(t);
}

uint32_t wk_tasks_held(const wk_t *w)
{
    return w->n_queued + w->n_running;
}

static void s_fail(wk_t *w, wk_task_t *t, char *error)
{
    wk_link_event(w, t, HQ_TEV_FAILED, error, false);
    s_task_free(w, t);
}

void wk_tasks_assign(wk_t *w, hq_msg_t **msgp)
{
    hq_msg_t *msg = *msgp;
    *msgp = NULL;
    hq_assign_t *a = &msg->u.assign;
    if (a->n_tasks == 0) {
        hq_msg_destroy(&msg);
        return;
    }
    wk_batch_t *b = hq_calloc(1, sizeof *b);
    b->msg = msg;
    b->refs = a->n_tasks + 1; /* + this loop: a failing task must not free it */
    wk_task_t **tail = &w->queue;
    while (*tail)
        tail = &(*tail)->next;
    for (uint32_t i = 0; i < a->n_tasks; i++) {
        wk_task_t *t = hq_calloc(1, sizeof *t);
        t->batch = b;
        t->info = &a->tasks[i];
        t->limit_timer = t->kill_timer = -1;
        t->pipe_fd[0] = t->pipe_fd[1] = -1;
        t->w = w;
        if (t->info->def_idx >= a->n_defs) {
            s_fail(w, t, hq_strdup("Invalid task assignment: unknown definition"));
            continue;
        }
        t->def = &a->defs[t->info->def_idx];
        if (w->draining) {
            wk_link_event(w, t, HQ_TEV_REJECTED, NULL, false);
            s_task_free(w, t);
            continue;
        }
        *tail = t;
        tail = &t->next;
        w->n_queued++;
    }
    uint32_t n_tasks = a->n_tasks;
    s_batch_unref(b);
    wk_tasks_schedule(w);
    hq_debug("assigned %u; running %u, queued %u", n_tasks, w->n_running, w->n_queued);
}

/* The process group of a task gets sig. */
static void s_signal(wk_task_t *t, int sig)
{
    if (t->pid > 0 && kill(-t->pid, sig) != 0 && errno == ESRCH)
        kill(t->pid, sig);
}

static int s_on_kill_grace(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    wk_task_t *t = arg;
    t->kill_timer = -1;
    s_signal(t, SIGKILL);
    return 0;
}

/* Cancel and time limit, as HyperQueue does: SIGINT to the task's process group,
 * SIGKILL WK_KILL_GRACE_MS later if it is still there. */
static void s_kill(wk_t *w, wk_task_t *t)
{
    s_signal(t, SIGINT);
    if (t->kill_timer < 0 && w->loop)
        t->kill_timer = zloop_timer(w->loop, WK_KILL_GRACE_MS, 1, s_on_kill_grace, t);
}

static int s_on_time_limit(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    wk_task_t *t = arg;
    t->limit_timer = -1;
    t->timed_out = true;
    s_kill(t->w, t);
    return 0;
}

static char *s_u32(uint32_t v)
{
    return hq_asprintf("%u", v);
}

static int s_write_lines(const char *path, char *const *lines, uint32_t n, bool short_names)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        const char *h = lines[i] ? lines[i] : "";
        size_t len = strlen(h);
        if (short_names) {
            const char *dot = strchr(h, '.');
            if (dot)
                len = (size_t)(dot - h);
        }
        fprintf(f, "%.*s\n", (int)len, h);
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* Prepares and spawns the process. Returns 0, or -1 with *error (caller frees). */
static int s_launch(wk_t *w, wk_task_t *t, char **error)
{
    const hq_task_def_t *d = &t->def->def;
    const hq_rvariant_t *v = &d->variants[t->info->variant];
    bool multi = v->n_nodes > 0;
    char *job = s_u32(t->info->job_id), *task = s_u32(t->info->task_id),
         *inst = s_u32(t->info->instance);
    hq_placeholder_vals_t ph = {.job_id = job,
                                .task_id = task,
                                .instance_id = inst,
                                .submit_dir = t->def->submit_dir ? t->def->submit_dir : "",
                                .server_uid = w->server_uid};
    const char *out = d->out.kind == HQ_STDIO_FILE && d->out.path ? d->out.path : NULL;
    const char *err = d->err.kind == HQ_STDIO_FILE && d->err.path ? d->err.path : NULL;
    char *cwd = NULL;
    hq_placeholder_resolve(d->cwd, out, err, &ph, &cwd, &t->out_path, &t->err_path);
    int rc = -1;
    wk_env_t env = {0};
    char **argv = NULL;
    int pipes[2] = {-1, -1};
    if (wk_capture_prepare(w, t, pipes, error) != 0)
        goto done;
    if (d->task_dir || multi) {
        char *tmpl = hq_asprintf("%s/tXXXXXX", w->conf.work_dir);
        if (!mkdtemp(tmpl)) {
            *error = hq_asprintf("Cannot create task directory in %s: %s", w->conf.work_dir,
                                 strerror(errno));
            free(tmpl);
            goto done;
        }
        t->task_dir = tmpl;
        if (multi) {
            char *nf = hq_asprintf("%s/hq-nodefile", tmpl);
            char *hf = hq_asprintf("%s/hq-hostfile", tmpl);
            s_write_lines(nf, t->info->nodes, t->info->n_nodes, true);
            s_write_lines(hf, t->info->nodes, t->info->n_nodes, false);
            free(nf);
            free(hf);
        }
    }
    wk_env_build(&env, &w->tctx, t->def, t->info, t->allocs, t->n_allocs, t->task_dir);
    uint32_t extra = 0;
    const char *cpus = NULL;
    if (d->pin == HQ_PIN_TASKSET && (cpus = wk_env_get(&env, "HQ_CPUS")) != NULL)
        extra = 3;
    argv = hq_calloc(d->n_args + extra + 1, sizeof *argv);
    if (extra) {
        argv[0] = "taskset";
        argv[1] = "-c";
        argv[2] = (char *)cpus;
    }
    for (uint32_t i = 0; i < d->n_args; i++)
        argv[extra + i] = d->args[i];
    wk_spawn_t sp = {.argv = argv,
                     .envp = env.vars,
                     .cwd = cwd,
                     .out = d->out.kind == HQ_STDIO_FILE ? t->out_path : NULL,
                     .err = d->err.kind == HQ_STDIO_FILE ? t->err_path : NULL,
                     .out_pipe = pipes[0] + 1,
                     .err_pipe = pipes[1] + 1,
                     .stdin_data = d->stdin_data.len ? d->stdin_data.data : NULL,
                     .stdin_len = d->stdin_data.len};
    if (hq_placeholder_present(cwd) || (sp.out && hq_placeholder_present(sp.out)) ||
        (sp.err && hq_placeholder_present(sp.err)))
        hq_debug("Task %u@%u: unresolved placeholder in its paths", t->info->job_id,
                 t->info->task_id);
    t->pid = wk_spawn(&sp, error);
    rc = t->pid > 0 ? 0 : -1;
    if (t->pid > 0)
        wk_guard_track(w->guard_fd, t->pid); /* its own group, led by it */
done:
    if (rc == 0)
        wk_capture_start(w, t, pipes);
    else
        wk_capture_abort(t, pipes);
    free(argv);
    wk_env_clear(&env);
    free(cwd);
    free(job);
    free(task);
    free(inst);
    return rc;
}

/* Starts t if its resources are free. Returns 1 when it must keep waiting, 0 when
 * it left the queue (started, or failed and freed). */
static int s_try_start(wk_t *w, wk_task_t *t)
{
    const hq_task_def_t *d = &t->def->def;
    if (t->info->variant >= d->n_variants || d->n_args == 0) {
        s_fail(w, t, hq_strdup("Invalid task assignment: bad resource variant or empty command"));
        return 0;
    }
    const hq_rvariant_t *v = &d->variants[t->info->variant];
    if (v->n_nodes == 0) {
        int rc = wk_alloc_try(w->alloc, v, &t->allocs);
        if (rc == 1)
            return 1;
        if (rc < 0) {
            t->allocs = NULL;
            s_fail(w, t, hq_strdup("Task requests resources that this worker does not have"));
            return 0;
        }
        t->n_allocs = v->n_entries;
    }
    char *error = NULL;
    if (s_launch(w, t, &error) != 0) {
        hq_debug("Task %u@%u could not start: %s", t->info->job_id, t->info->task_id,
                 error ? error : "");
        s_fail(w, t, error ? error : hq_strdup("Cannot start the task"));
        return 0;
    }
    t->state = WK_TASK_RUNNING;
    t->started_ns = hq_mono_ns();
    t->next = w->running;
    w->running = t;
    w->n_running++;
    wk_link_event(w, t, HQ_TEV_STARTED, NULL, true);
    if (d->time_limit_ns > 0 && w->loop) {
        uint64_t ms = d->time_limit_ns / HQ_NS_PER_MS;
        t->limit_timer = zloop_timer(w->loop, ms ? (size_t)ms : 1, 1, s_on_time_limit, t);
    }
    return 0;
}

void wk_tasks_schedule(wk_t *w)
{
    wk_task_t **pp = &w->queue;
    /* A request that did not fit will not fit again in this pass: skip its twins. */
    const hq_assign_def_t *miss_def = NULL;
    uint32_t miss_variant = 0;
    /* A queued task may start before an earlier one that does not fit yet, but not
     * when the waiting one has a higher priority: a lower-priority task must not take
     * the resources a higher-priority one waits for (the broker reserved them). */
    bool blocked = false;
    int32_t blocked_prio = 0;
    while (*pp) {
        wk_task_t *t = *pp;
        wk_task_t *next = t->next;
        int32_t prio = t->def ? t->def->def.priority : 0;
        if ((t->def && t->def == miss_def && t->info->variant == miss_variant) ||
            (blocked && prio < blocked_prio)) {
            pp = &t->next;
            continue;
        }
        if (s_try_start(w, t) == 1) {
            miss_def = t->def;
            miss_variant = t->info->variant;
            if (!blocked || prio > blocked_prio)
                blocked_prio = prio;
            blocked = true;
            pp = &t->next;
            continue;
        }
        *pp = next;
        w->n_queued--;
    }
    wk_link_credit_changed(w);
}

/* The error text of a failed process: the task's error file wins (cli/REFERENCE.md §0.2);
 * one of WK_ERROR_FILE_MAX bytes or more is cut there and marked as truncated. */
static char *s_failure_text(const wk_task_t *t, int status)
{
    if (t->task_dir) {
        char *path = hq_asprintf("%s/hq-error", t->task_dir);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        free(path);
        if (fd >= 0) {
            char data[WK_ERROR_FILE_MAX];
            size_t len = 0;
            while (len < sizeof data) {
                ssize_t n = read(fd, data + len, sizeof data - len);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n <= 0)
                    break;
                len += (size_t)n;
            }
            close(fd);
            if (len == 0)
                return hq_strdup("Task created an error file, but it is empty");
            char *text = hq_utf8_lossy(data, len);
            if (len < sizeof data)
                return text;
            char *cut = hq_asprintf("%s\n[The message was truncated]", text);
            free(text);
            return cut;
        }
    }
    return wk_exit_error(status);
}

/* Reports the end of a reaped task (stream_error: its output was lost, owned). */
static void s_finish(wk_t *w, wk_task_t *t, int status, char *stream_error)
{
    if (t->silent || t->canceled || t->timed_out)
        free(stream_error);
    if (t->silent) {
        s_task_free(w, t);
        return;
    }
    if (t->canceled) {
        wk_link_event(w, t, HQ_TEV_CANCELED, NULL, false);
    } else if (t->timed_out) {
        wk_link_event(w, t, HQ_TEV_FAILED, hq_strdup("Time limit reached"), false);
    } else if (stream_error) {
        wk_link_event(w, t, HQ_TEV_FAILED, stream_error, false);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        const hq_task_def_t *d = &t->def->def;
        if (d->out.rm_if_finished && t->out_path)
            unlink(t->out_path);
        if (d->err.rm_if_finished && t->err_path)
            unlink(t->err_path);
        wk_link_event(w, t, HQ_TEV_FINISHED, NULL, false);
    } else {
        wk_link_event(w, t, HQ_TEV_FAILED, s_failure_text(t, status), false);
        if (WIFSIGNALED(status) && (WTERMSIG(status) == SIGTERM || WTERMSIG(status) == SIGKILL ||
                                    WTERMSIG(status) == SIGINT || WTERMSIG(status) == SIGHUP))
            wk_link_hold_last(w); /* maybe killed with the whole allocation */
    }
    s_task_free(w, t);
}

/* Feeds a task's run time into the moving average that picks the credit. */
static void s_note_run_time(wk_t *w, const wk_task_t *t, uint64_t now)
{
    if (t->canceled || t->timed_out || t->silent || now < t->started_ns)
        return;
    uint64_t d = now - t->started_ns;
    /* Rises fast (a long task halves the distance), falls slowly (1/8 per task). */
    if (w->n_timed++ == 0)
        w->avg_run_ns = d;
    else if (d > w->avg_run_ns)
        w->avg_run_ns += (d - w->avg_run_ns) / 2;
    else
        w->avg_run_ns -= (w->avg_run_ns - d) / 8;
    uint32_t slots = w->slots_long;
    w->short_tasks = w->avg_run_ns < WK_SHORT_TASK_NS;
    if (w->short_tasks) {
        /* Queue depth per cpu: a power of two near WK_QUEUE_WORK_NS / run time (the
         * rounding keeps the credit from changing with every task). */
        uint64_t per_cpu = WK_QUEUE_WORK_NS / (w->avg_run_ns ? w->avg_run_ns : 1);
        uint64_t p2 = 1;
        while (p2 * 2 <= per_cpu && p2 < 65536)
            p2 *= 2;
        uint64_t depth = p2 * w->ncpus;
        if (depth > w->prefetch)
            depth = w->prefetch;
        if (w->ncpus + depth > slots)
            slots = w->ncpus + (uint32_t)depth;
    }
    if (slots != w->slots) {
        hq_debug("tasks take %llu us on average; credit %u -> %u",
                 (unsigned long long)(w->avg_run_ns / 1000), w->slots, slots);
        w->slots = slots;
        wk_link_credit_changed(w);
    }
}

void wk_tasks_reap(wk_t *w)
{
    wk_task_t **tail = &w->reaped;
    while (*tail)
        tail = &(*tail)->next;
    uint64_t now = 0, wall = 0;
    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            break;
        wk_task_t **pp = &w->running;
        while (*pp && (*pp)->pid != pid)
            pp = &(*pp)->next;
        wk_task_t *t = *pp;
        if (!t)
            continue;
        *pp = t->next;
        w->n_running--;
        if (t->carried) {
            t->carried = false;
            if (w->n_carried > 0)
                w->n_carried--;
            wk_link_credit_changed(w);
        }
        t->status = status;
        t->next = NULL;
        *tail = t;
        tail = &t->next;
        if (!now) {
            now = hq_mono_ns();
            wall = hq_wall_ns();
        }
        t->ended_wall_ns = wall;
        s_note_run_time(w, t, now);
        /* Free its resources now, so the next task can take them at once. */
        if (t->allocs) {
            wk_alloc_release(w->alloc, t->allocs, t->n_allocs);
            wk_ralloc_free(t->allocs, t->n_allocs);
            t->allocs = NULL;
        }
    }
    if (!w->reaped)
        return;
    /* Start the next tasks first; the bookkeeping of the ended ones can wait. */
    wk_tasks_schedule(w);
    while (w->reaped) {
        /* Still on the reaped list while its output is written (see capture.c). */
        wk_task_t *t = w->reaped;
        char *stream_error = t->stream ? wk_capture_end(w, t, !t->silent) : NULL;
        w->reaped = t->next;
        s_finish(w, t, t->status, stream_error);
    }
    hq_debug("reaped; running %u, queued %u", w->n_running, w->n_queued);
}

static bool s_ref_match(const wk_task_t *t, const hq_task_ref_t *r)
{
    return t->info->job_id == r->job_id && t->info->task_id == r->task_id &&
           t->info->instance == r->instance;
}

void wk_tasks_cancel(wk_t *w, const hq_cancel_t *c)
{
    for (uint32_t i = 0; i < c->n_tasks; i++) {
        const hq_task_ref_t *r = &c->tasks[i];
        wk_task_t **pp = &w->queue;
        while (*pp && !s_ref_match(*pp, r))
            pp = &(*pp)->next;
        if (*pp) {
            wk_task_t *t = *pp;
            *pp = t->next;
            w->n_queued--;
            wk_link_event(w, t, HQ_TEV_CANCELED, NULL, false);
            s_task_free(w, t);
            continue;
        }
        for (wk_task_t *t = w->running; t; t = t->next) {
            if (s_ref_match(t, r)) {
                t->canceled = true;
                s_kill(w, t);
                break;
            }
        }
    }
    wk_tasks_schedule(w);
}

void wk_tasks_retract(wk_t *w, const hq_cancel_t *c)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < c->n_tasks; i++) {
        wk_task_t **pp = &w->queue;
        while (*pp && !s_ref_match(*pp, &c->tasks[i]))
            pp = &(*pp)->next;
        if (!*pp)
            continue; /* started (or ended): it stays here */
        wk_task_t *t = *pp;
        *pp = t->next;
        w->n_queued--;
        wk_link_event(w, t, HQ_TEV_REJECTED, NULL, false);
        s_task_free(w, t);
        n++;
    }
    hq_debug("retracted %u of %u tasks; running %u, queued %u", n, c->n_tasks, w->n_running,
             w->n_queued);
}

void wk_tasks_drop_queued(wk_t *w, bool reject)
{
    while (w->queue) {
        wk_task_t *t = w->queue;
        w->queue = t->next;
        w->n_queued--;
        if (reject)
            wk_link_event(w, t, HQ_TEV_REJECTED, NULL, false);
        s_task_free(w, t);
    }
}

void wk_tasks_kill_all(wk_t *w)
{
    wk_tasks_drop_queued(w, false);
    for (wk_task_t *t = w->running; t; t = t->next)
        s_signal(t, SIGKILL);
    while (w->running) {
        wk_task_t *t = w->running;
        w->running = t->next;
        w->n_running--;
        int status;
        while (waitpid(t->pid, &status, 0) < 0 && errno == EINTR)
            ;
        t->silent = true;
        s_task_free(w, t);
    }
    w->n_carried = 0;
}
