/* Output capture of streamed tasks: the stdout/stderr of a task whose channel goes to
 * the job's stream come through pipes (never a temporary file) that the worker's loop
 * reads into the stream writer (stream.c) as chunks tagged with the task and channel.
 * A task's pipes join the loop's poll set only once it has run for a capture period
 * (WK_CAPTURE_MS; until then the capture timer reads them): most short tasks print a
 * little and exit, and their pipes are read once, when they have ended.
 * When the process has exited, what is left in the pipes is read, the stream of the
 * instance is closed with an end chunk and the writer's buffer is written, so the
 * task's end is reported only once its output is in the file.
 * Capture decides when the writer's buffers are written (full, a task's end, and a
 * WK_STREAM_FLUSH_MS timer armed by the first chunk buffered) and, when a write fails,
 * which tasks lost output; the writer below it knows nothing of tasks. */
#include "wk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hq_streamfmt.h"
#include "hq_util.h"

#define WK_PIPE_READ (64 * 1024)
#define WK_CAPTURE_MS 20
#define WK_STREAM_FLUSH_MS 50

/* The stream's buffer is written; a failure fails the tasks with data in it. */
static void s_flush(wk_t *w, wk_stream_t *s)
{
    uint64_t gen = wk_stream_gen(s);
    char *error = NULL;
    if (wk_stream_flush(w, s, &error) == 0)
        return;
    for (wk_task_t *t = w->running; t; t = t->next)
        if (t->stream == s && t->stream_gen == gen && !t->stream_error)
            t->stream_error = hq_strdup(error);
    for (wk_task_t *t = w->reaped; t; t = t->next)
        if (t->stream == s && t->stream_gen == gen && !t->stream_error)
            t->stream_error = hq_strdup(error);
    free(error);
}

/* The flush timer: what the buffers hold is written (`--follow` sees it). */
static int s_on_flush(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    wk_t *w = arg;
    w->stream_timer = -1;
    for (wk_stream_t *s = wk_stream_next_pending(w, NULL); s; s = wk_stream_next_pending(w, s))
        s_flush(w, s);
    return 0;
}

static void s_put(wk_t *w, wk_task_t *t, enum hq_sf_kind kind, const void *data, uint32_t len)
{
    if (t->stream_error)
        return; /* its stream already lost data: it fails, nothing more is written */
    if (wk_stream_full(t->stream, len))
        s_flush(w, t->stream);
    if (t->stream_error)
        return;
    wk_stream_append(t->stream, kind, t->info, data, len);
    t->stream_gen = wk_stream_gen(t->stream);
    if (w->loop && w->stream_timer < 0)
        w->stream_timer = zloop_timer(w->loop, WK_STREAM_FLUSH_MS, 1, s_on_flush, w);
}

/* Reads what the pipe of channel ch holds now: 0 at its end (EOF or an error), 1 when it
 * is empty for now, 2 when more may be there (a turn reads at most 16 pipe buffers). */
static int s_read(wk_t *w, wk_task_t *t, int ch)
{
    static uint8_t buf[WK_PIPE_READ];
    for (int rounds = 0; rounds < 16; rounds++) {
        ssize_t n = read(t->pipe_fd[ch], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 1;
        if (n <= 0)
            return 0;
        s_put(w, t, ch == 0 ? HQ_SF_STDOUT : HQ_SF_STDERR, buf, (uint32_t)n);
    }
    return 2;
}

static void s_close_pipe(wk_t *w, wk_task_t *t, int ch)
{
    if (t->pipe_fd[ch] < 0)
        return;
    if (w->loop && t->polled) {
        zmq_pollitem_t item = {.socket = NULL, .fd = t->pipe_fd[ch], .events = ZMQ_POLLIN};
        zloop_poller_end(w->loop, &item);
    }
    close(t->pipe_fd[ch]);
    t->pipe_fd[ch] = -1;
}

static int s_on_pipe(zloop_t *loop, zmq_pollitem_t *item, void *arg)
{
    (void)loop;
    wk_task_t *t = arg;
    int ch = item->fd == t->pipe_fd[0] ? 0 : 1;
    if (s_read(t->w, t, ch) == 0)
        s_close_pipe(t->w, t, ch);
    return 0;
}

int wk_capture_prepare(wk_t *w, wk_task_t *t, int write_fds[2], char **error)
{
    const hq_task_def_t *d = &t->def->def;
    bool want[2] = {d->out.kind == HQ_STDIO_STREAM, d->err.kind == HQ_STDIO_STREAM};
    t->pipe_fd[0] = t->pipe_fd[1] = write_fds[0] = write_fds[1] = -1;
    if (!want[0] && !want[1])
        return 0;
    const char *dir = t->def->stream_dir;
    if (!dir || !*dir) {
        *error = hq_strdup("Cannot create stream directory: the job has no stream directory");
        return -1;
    }
    t->stream = wk_stream_get(w, dir, error);
    if (!t->stream)
        return -1;
    for (int ch = 0; ch < 2; ch++) {
        if (!want[ch])
            continue;
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) {
            int e = errno;
            *error = hq_asprintf("Cannot create a pipe for the %s stream: %s (os error %d)",
                                 ch ? "stderr" : "stdout", strerror(e), e);
            wk_capture_abort(t, write_fds);
            return -1;
        }
        fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
        t->pipe_fd[ch] = p[0];
        write_fds[ch] = p[1];
    }
    return 0;
}

void wk_capture_abort(wk_task_t *t, int write_fds[2])
{
    for (int ch = 0; ch < 2; ch++) {
        if (t->pipe_fd[ch] >= 0)
            close(t->pipe_fd[ch]);
        if (write_fds[ch] >= 0)
            close(write_fds[ch]);
        t->pipe_fd[ch] = write_fds[ch] = -1;
    }
    t->stream = NULL;
}

/* Every capture period while streamed tasks run: the pipes of the tasks that have run
 * that long are read and join the poll set. */
static int s_on_capture(zloop_t *loop, int timer_id, void *arg)
{
    wk_t *w = arg;
    if (w->n_captured == 0) {
        zloop_timer_end(loop, timer_id);
        w->capture_timer = -1;
        return 0;
    }
    for (wk_task_t *t = w->running; t; t = t->next) {
        if (!t->stream || t->polled)
            continue;
        if (!t->capture_due) {
            t->capture_due = true; /* started during this period: the next one */
            continue;
        }
        t->polled = true;
        for (int ch = 0; ch < 2; ch++) {
            if (t->pipe_fd[ch] < 0)
                continue;
            if (s_read(w, t, ch) == 0) {
                s_close_pipe(w, t, ch);
                continue;
            }
            zmq_pollitem_t item = {.socket = NULL, .fd = t->pipe_fd[ch], .events = ZMQ_POLLIN};
            zloop_poller(loop, &item, s_on_pipe, t);
            zloop_poller_set_tolerant(loop, &item);
        }
    }
    return 0;
}

void wk_capture_start(wk_t *w, wk_task_t *t, int write_fds[2])
{
    for (int ch = 0; ch < 2; ch++) {
        if (write_fds[ch] >= 0)
            close(write_fds[ch]);
        write_fds[ch] = -1;
    }
    if (!t->stream)
        return;
    s_put(w, t, HQ_SF_START, NULL, 0);
    w->n_captured++;
    if (w->loop && w->capture_timer < 0)
        w->capture_timer = zloop_timer(w->loop, WK_CAPTURE_MS, 0, s_on_capture, w);
}

/* Reads the pipes to their current end and closes them (the process has exited, so
 * everything it wrote is there; a process it left behind loses the rest). */
static void s_drain(wk_t *w, wk_task_t *t)
{
    for (int ch = 0; ch < 2; ch++) {
        if (t->pipe_fd[ch] < 0)
            continue;
        while (s_read(w, t, ch) == 2)
            ;
        s_close_pipe(w, t, ch);
    }
}

char *wk_capture_end(wk_t *w, wk_task_t *t, bool close_stream)
{
    if (!t->stream)
        return NULL;
    w->n_captured--;
    s_drain(w, t);
    if (close_stream)
        s_put(w, t, HQ_SF_END, NULL, 0);
    /* Written now: the end is reported only after the output is in the file. */
    if (!t->stream_error)
        s_flush(w, t->stream);
    if (close_stream && !t->stream_error)
        wk_stream_task_ended(w);
    t->stream = NULL;
    char *error = t->stream_error;
    t->stream_error = NULL;
    return error;
}

void wk_capture_close_all(wk_t *w)
{
    if (w->stream_timer >= 0 && w->loop)
        zloop_timer_end(w->loop, w->stream_timer);
    if (w->capture_timer >= 0 && w->loop)
        zloop_timer_end(w->loop, w->capture_timer);
    w->stream_timer = w->capture_timer = -1;
    wk_stream_close_all(w);
}
