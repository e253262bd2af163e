/* Stream writers (`--stream DIR`): one append-only file per worker session and stream
 * directory, in the format of proto/wire/hq_streamfmt.h. Chunks are buffered in memory
 * and written when the caller (capture.c) flushes: when the buffer fills, when a task
 * ends (before its end is reported) and on its short timer (so `--follow` sees output
 * while tasks run). The writer knows nothing of tasks: a failed write is returned to the
 * caller, which decides whom it concerns. Files that tasks ended in are fdatasync'd in
 * batches: at most once per WK_STREAM_SYNC_MS, on a timer that the first task end arms
 * (an fdatasync takes milliseconds; one per task end would stall the loop that starts
 * the tasks), and when the worker stops. No two workers share a file, so no locking is
 * needed. A failed write truncates the file back to its last whole chunk, so a full disk
 * costs the chunks that were in the buffer and nothing after them. */
#include "wk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HQ_LOG_MODULE "hq::worker"
#include "hq_log.h"
#include "hq_streamfmt.h"
#include "hq_util.h"

#define WK_STREAM_BUF (256 * 1024)
#define WK_STREAM_SYNC_MS 200

struct wk_stream {
    struct wk_stream *next;
    char *dir;
    char *path;
    int fd;             /* -1: not open (the last open failed) */
    uint32_t worker_id; /* of the header */
    char *server_uid;
    uint64_t good;   /* file size up to the last whole chunk written */
    uint8_t *buf;    /* chunks not written yet */
    size_t len, cap; /* ... */
    uint64_t gen;    /* generation of the buffer: + 1 at every write of it */
    bool unsynced;   /* written since the last fdatasync */
};

char *wk_stream_error_text(const char *reason)
{
    hq_buf_t b = {0};
    hq_buf_append(&b, "Streaming: ", 11);
    wk_debug_str(&b, reason);
    return b.data;
}

static char *s_os_error(int e)
{
    return hq_asprintf("%s (os error %d)", strerror(e), e);
}

static int s_mkdirs(const char *dir)
{
    char *probe = hq_asprintf("%s/.", dir);
    int rc = wk_mkdir_parents(probe);
    free(probe);
    struct stat st;
    if (rc == 0 && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)))
        rc = -1;
    return rc;
}

/* Opens a new file with its header. 0, or -1 with *error. */
static int s_open(wk_t *w, wk_stream_t *s, char **error)
{
    if (s_mkdirs(s->dir) != 0) {
        int e = errno ? errno : ENOTDIR;
        char *os = s_os_error(e);
        *error = hq_asprintf("Cannot create stream directory %s: %s", s->dir, os);
        free(os);
        return -1;
    }
    const char *uid = w->server_uid ? w->server_uid : "";
    int fd = -1;
    for (unsigned attempt = 0; fd < 0 && attempt < 100; attempt++) {
        free(s->path);
        s->path = hq_asprintf("%s/%s-w%u-%d-%llx-%u" HQ_SF_SUFFIX, s->dir, uid, w->worker_id,
                              (int)getpid(), (unsigned long long)hq_wall_ns(), attempt);
        fd = open(s->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        int e = errno;
        char *os = s_os_error(e);
        *error = hq_asprintf("Cannot create stream directory %s: %s", s->dir, os);
        free(os);
        return -1;
    }
    hq_sf_header_t h = {
        .version = HQ_SF_VERSION, .worker_id = w->worker_id, .created_ns = hq_wall_ns()};
    snprintf(h.server_uid, sizeof h.server_uid, "%s", uid);
    uint8_t head[HQ_SF_HEADER_SIZE];
    hq_sf_header_encode(&h, head);
    if (write(fd, head, sizeof head) != (ssize_t)sizeof head) {
        int e = errno ? errno : EIO;
        char *os = s_os_error(e);
        *error = wk_stream_error_text(os);
        free(os);
        close(fd);
        unlink(s->path);
        return -1;
    }
    s->fd = fd;
    s->good = sizeof head;
    s->worker_id = w->worker_id;
    free(s->server_uid);
    s->server_uid = hq_strdup(uid);
    s->unsynced = true;
    hq_debug("Streaming into %s", s->path);
    return 0;
}

static void s_sync(wk_stream_t *s)
{
    if (s->fd >= 0 && s->unsynced) {
        s->unsynced = false;
        if (fdatasync(s->fd) != 0)
            hq_warn("Cannot sync stream file %s: %s", s->path, strerror(errno));
    }
}

static void s_close(wk_stream_t *s)
{
    if (s->fd < 0)
        return;
    s_sync(s);
    close(s->fd);
    s->fd = -1;
    s->unsynced = false;
}

wk_stream_t *wk_stream_get(wk_t *w, const char *dir, char **error)
{
    wk_stream_t *s = w->streams;
    while (s && strcmp(s->dir, dir) != 0)
        s = s->next;
    if (!s) {
        s = hq_calloc(1, sizeof *s);
        s->dir = hq_strdup(dir);
        s->fd = -1;
        s->next = w->streams;
        w->streams = s;
    }
    /* A new session with another id or server: a new file (a file has one header). */
    const char *uid = w->server_uid ? w->server_uid : "";
    if (s->fd >= 0 && (s->worker_id != w->worker_id || strcmp(s->server_uid, uid) != 0)) {
        char *ignored = NULL;
        wk_stream_flush(w, s, &ignored);
        free(ignored);
        s_close(s);
    }
    if (s->fd < 0 && s_open(w, s, error) != 0)
        return NULL;
    return s;
}

uint64_t wk_stream_gen(const wk_stream_t *s)
{
    return s->gen;
}

wk_stream_t *wk_stream_next_pending(wk_t *w, wk_stream_t *after)
{
    wk_stream_t *s = after ? after->next : w->streams;
    while (s && s->len == 0)
        s = s->next;
    return s;
}

void wk_stream_append(wk_stream_t *s, enum hq_sf_kind kind, const hq_assign_task_t *t,
                      const void *data, uint32_t len)
{
    hq_sf_chunk_t c = {.kind = (uint8_t)kind,
                       .job = t->job_id,
                       .task = t->task_id,
                       .instance = t->instance,
                       .time_ns = hq_wall_ns(),
                       .len = len};
    size_t need = s->len + HQ_SF_CHUNK_SIZE + len;
    if (need > s->cap) {
        s->cap = need > 2 * s->cap ? need : 2 * s->cap;
        s->buf = hq_realloc(s->buf, s->cap);
    }
    hq_sf_chunk_encode(&c, data, s->buf + s->len);
    if (len)
        memcpy(s->buf + s->len + HQ_SF_CHUNK_SIZE, data, len);
    s->len += HQ_SF_CHUNK_SIZE + len;
}

bool wk_stream_full(const wk_stream_t *s, uint32_t more)
{
    return s->len + HQ_SF_CHUNK_SIZE + more > WK_STREAM_BUF;
}

int wk_stream_flush(wk_t *w, wk_stream_t *s, char **error)
{
    (void)w;
    if (s->len == 0)
        return 0;
    s->gen++;
    size_t off = 0;
    int e = 0;
    if (s->fd < 0)
        e = EBADF;
    while (!e && off < s->len) {
        ssize_t n = write(s->fd, s->buf + off, s->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            e = n < 0 ? errno : ENOSPC;
        else
            off += (size_t)n;
    }
    if (!e) {
        s->good += s->len;
        s->len = 0;
        s->unsynced = true;
        return 0;
    }
    /* Back to the last whole chunk, so the chunks after the hole stay readable. */
    if (s->fd >= 0 && off > 0 && ftruncate(s->fd, (off_t)s->good) != 0)
        hq_warn("Cannot truncate stream file %s: %s", s->path, strerror(errno));
    hq_warn("Cannot write stream file %s: %s", s->path ? s->path : s->dir, strerror(e));
    s->len = 0;
    char *os = s_os_error(e);
    *error = wk_stream_error_text(os);
    free(os);
    return -1;
}

static int s_on_sync(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    wk_t *w = arg;
    w->sync_timer = -1;
    for (wk_stream_t *s = w->streams; s; s = s->next)
        s_sync(s);
    return 0;
}

void wk_stream_task_ended(wk_t *w)
{
    if (w->loop && w->sync_timer < 0)
        w->sync_timer = zloop_timer(w->loop, WK_STREAM_SYNC_MS, 1, s_on_sync, w);
}

void wk_stream_close_all(wk_t *w)
{
    if (w->sync_timer >= 0 && w->loop)
        zloop_timer_end(w->loop, w->sync_timer);
    w->sync_timer = -1;
    while (w->streams) {
        wk_stream_t *s = w->streams;
        w->streams = s->next;
        char *error = NULL;
        wk_stream_flush(w, s, &error);
        free(error);
        s_close(s);
        free(s->buf);
        free(s->dir);
        free(s->path);
        free(s->server_uid);
        free(s);
    }
}
