/* The stream reader (see outlog.h). */
#include "outlog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hq_log.h"
#include "hq_util.h"

static bool s_is_stream_name(const char *name)
{
    size_t n = strlen(name), sl = strlen(HQ_SF_SUFFIX);
    return name[0] != '.' && n > sl && strcmp(name + n - sl, HQ_SF_SUFFIX) == 0;
}

static int s_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The stream files of the directory not known yet, sorted by name. -1 with err. */
static int s_scan_dir(hq_olog_t *o, hq_err_t *err)
{
    DIR *d = opendir(o->dir);
    if (!d) {
        int e = errno;
        return hq_err_set(err, "Cannot read the stream directory %s: %s (os error %d)", o->dir,
                          strerror(e), e);
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!s_is_stream_name(de->d_name))
            continue;
        char *path = hq_asprintf("%s/%s", o->dir, de->d_name);
        bool known = false;
        for (uint32_t i = 0; i < o->n_files && !known; i++)
            known = strcmp(o->files[i].path, path) == 0;
        if (known) {
            free(path);
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            names = hq_realloc(names, cap * sizeof *names);
        }
        names[n++] = path;
    }
    closedir(d);
    if (n > 1)
        qsort(names, n, sizeof *names, s_name_cmp);
    o->files = hq_realloc(o->files, (o->n_files + n + 1) * sizeof *o->files);
    for (size_t i = 0; i < n; i++) {
        hq_ol_file_t *f = &o->files[o->n_files++];
        memset(f, 0, sizeof *f);
        f->path = names[i];
    }
    free(names);
    return 0;
}

/* Appends what was written to the file since the last read. */
static void s_read_more(hq_olog_t *o, hq_ol_file_t *f)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        hq_error("%s: cannot be read: %s", f->path, strerror(errno));
        f->skip = true;
        o->n_errors++;
        return;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && (size_t)st.st_size > f->len) {
        size_t want = (size_t)st.st_size;
        if (want > f->cap) {
            f->cap = want;
            f->data = hq_realloc(f->data, f->cap);
        }
        while (f->len < want) {
            ssize_t r = pread(fd, f->data + f->len, want - f->len, (off_t)f->len);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            f->len += (size_t)r;
        }
    }
    close(fd);
}

static void s_push(hq_olog_t *o, const hq_ol_chunk_t *c)
{
    if (o->n_chunks == o->cap_chunks) {
        o->cap_chunks = o->cap_chunks ? 2 * o->cap_chunks : 1024;
        o->chunks = hq_realloc(o->chunks, o->cap_chunks * sizeof *o->chunks);
    }
    o->chunks[o->n_chunks++] = *c;
}

/* Decodes the whole chunks after f->parsed. */
static void s_parse(hq_olog_t *o, uint32_t fi)
{
    hq_ol_file_t *f = &o->files[fi];
    hq_err_t err;
    if (f->len == 0)
        return; /* a file just created */
    if (!f->has_head) {
        int rc = hq_sf_header_decode(f->data, f->len, &f->head, &err);
        if (rc == 1)
            return; /* a file being created */
        if (rc < 0) {
            hq_error("%s: %s", f->path, err.text);
            f->skip = true;
            o->n_errors++;
            return;
        }
        f->has_head = true;
        f->parsed = HQ_SF_HEADER_SIZE;
        if (o->server_uid && strcmp(o->server_uid, f->head.server_uid) != 0) {
            f->skip = true;
            return;
        }
    }
    while (!f->bad) {
        hq_sf_chunk_t c;
        const uint8_t *data;
        int rc = hq_sf_chunk_decode(f->data + f->parsed, f->len - f->parsed, &c, &data, &err);
        if (rc == 1)
            break; /* the end, or a torn tail that a later read may complete */
        if (rc < 0) {
            hq_error("%s: corrupt chunk at byte offset %zu: %s; the rest of this file is "
                     "skipped",
                     f->path, f->parsed, err.text);
            f->bad = true;
            o->n_errors++;
            break;
        }
        hq_ol_chunk_t k = {.job = c.job,
                           .task = c.task,
                           .instance = c.instance,
                           .kind = c.kind,
                           .file = fi,
                           .len = c.len,
                           .off = (uint64_t)(data - f->data),
                           .time_ns = c.time_ns};
        s_push(o, &k);
        f->parsed += HQ_SF_CHUNK_SIZE + c.len;
    }
}

size_t hq_olog_poll(hq_olog_t *o)
{
    size_t before = o->n_chunks;
    hq_err_t err;
    if (s_scan_dir(o, &err) != 0)
        return 0;
    for (uint32_t i = 0; i < o->n_files; i++) {
        hq_ol_file_t *f = &o->files[i];
        if (f->skip || f->bad)
            continue;
        s_read_more(o, f);
        if (!f->skip)
            s_parse(o, i);
    }
    return o->n_chunks - before;
}

void hq_olog_init(hq_olog_t *o, const char *dir, const char *server_uid)
{
    memset(o, 0, sizeof *o);
    o->dir = hq_strdup(dir);
    o->server_uid = server_uid ? hq_strdup(server_uid) : NULL;
}

int hq_olog_open(hq_olog_t *o, const char *dir, const char *server_uid, hq_err_t *err)
{
    hq_olog_init(o, dir, server_uid);
    if (s_scan_dir(o, err) != 0)
        return -1;
    for (uint32_t i = 0; i < o->n_files; i++) {
        s_read_more(o, &o->files[i]);
        if (!o->files[i].skip)
            s_parse(o, i);
    }
    /* One server instance's files, unless one was named. */
    const char *uids[8];
    size_t n_uids = 0;
    bool any = false;
    for (uint32_t i = 0; i < o->n_files; i++) {
        const hq_ol_file_t *f = &o->files[i];
        if (!f->has_head || f->skip)
            continue;
        any = true;
        bool seen = false;
        for (size_t k = 0; k < n_uids && !seen; k++)
            seen = strcmp(uids[k], f->head.server_uid) == 0;
        if (!seen && n_uids < sizeof uids / sizeof uids[0])
            uids[n_uids++] = f->head.server_uid;
    }
    if (!any)
        return hq_err_set(err, "No log files found");
    if (n_uids > 1 && !o->server_uid) {
        hq_buf_t b = {0};
        hq_buf_printf(&b, "Found streams from multiple server instances:");
        for (size_t k = 0; k < n_uids; k++)
            hq_buf_printf(&b, "\n%s", uids[k]);
        hq_buf_printf(&b, "\nUse --server-uid=... to specify server uid");
        hq_err_set(err, "%s", b.data);
        hq_buf_free(&b);
        return -1;
    }
    if (!o->server_uid)
        o->server_uid = hq_strdup(uids[0]);
    return 0;
}

static const hq_olog_t *s_sort_log;

static int s_order_cmp(const void *a, const void *b)
{
    const hq_ol_chunk_t *x = &s_sort_log->chunks[*(const size_t *)a];
    const hq_ol_chunk_t *y = &s_sort_log->chunks[*(const size_t *)b];
    if (x->job != y->job)
        return x->job < y->job ? -1 : 1;
    if (x->task != y->task)
        return x->task < y->task ? -1 : 1;
    if (x->instance != y->instance)
        return x->instance < y->instance ? -1 : 1;
    if (x->file != y->file) {
        /* One instance spans two files when its worker registered again meanwhile:
         * the older file first. */
        uint64_t cx = s_sort_log->files[x->file].head.created_ns;
        uint64_t cy = s_sort_log->files[y->file].head.created_ns;
        if (cx != cy)
            return cx < cy ? -1 : 1;
        return x->file < y->file ? -1 : 1;
    }
    return x->off < y->off ? -1 : x->off > y->off;
}

void hq_olog_index(hq_olog_t *o)
{
    free(o->order);
    free(o->streams);
    o->order = hq_malloc((o->n_chunks + 1) * sizeof *o->order);
    for (size_t i = 0; i < o->n_chunks; i++)
        o->order[i] = i;
    s_sort_log = o;
    qsort(o->order, o->n_chunks, sizeof *o->order, s_order_cmp);
    s_sort_log = NULL;
    o->streams = hq_malloc((o->n_chunks + 1) * sizeof *o->streams);
    o->n_streams = 0;
    for (size_t i = 0; i < o->n_chunks; i++) {
        const hq_ol_chunk_t *c = &o->chunks[o->order[i]];
        hq_ol_stream_t *s = o->n_streams ? &o->streams[o->n_streams - 1] : NULL;
        if (!s || s->job != c->job || s->task != c->task || s->instance != c->instance) {
            if (s && s->job == c->job && s->task == c->task)
                s->superseded = true;
            s = &o->streams[o->n_streams++];
            memset(s, 0, sizeof *s);
            s->job = c->job;
            s->task = c->task;
            s->instance = c->instance;
            s->first = i;
        }
        s->n++;
        if (c->kind == HQ_SF_END)
            s->finished = true;
        else if (c->kind <= HQ_SF_STDERR)
            s->size[c->kind] += c->len;
    }
    o->streams = hq_realloc(o->streams, (o->n_streams + 1) * sizeof *o->streams);
}

const hq_ol_stream_t *hq_olog_find(const hq_olog_t *o, uint32_t job, uint32_t task)
{
    size_t lo = 0, hi = o->n_streams;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const hq_ol_stream_t *s = &o->streams[mid];
        if (s->job < job || (s->job == job && s->task < task) ||
            (s->job == job && s->task == task && s->superseded))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < o->n_streams && o->streams[lo].job == job && o->streams[lo].task == task)
        return &o->streams[lo];
    return NULL;
}

const uint8_t *hq_olog_data(const hq_olog_t *o, const hq_ol_chunk_t *c)
{
    return o->files[c->file].data + c->off;
}

void hq_olog_write(const hq_olog_t *o, const hq_ol_stream_t *s, int channel, FILE *out,
                   hq_buf_t *buf)
{
    for (size_t k = 0; s && k < s->n; k++) {
        const hq_ol_chunk_t *c = &o->chunks[o->order[s->first + k]];
        if (c->kind != channel || c->len == 0)
            continue;
        if (buf)
            hq_buf_append(buf, hq_olog_data(o, c), c->len);
        else
            fwrite(hq_olog_data(o, c), 1, c->len, out);
    }
}

void hq_olog_close(hq_olog_t *o)
{
    for (uint32_t i = 0; i < o->n_files; i++) {
        free(o->files[i].path);
        free(o->files[i].data);
    }
    free(o->files);
    free(o->chunks);
    free(o->order);
    free(o->streams);
    free(o->dir);
    free(o->server_uid);
    memset(o, 0, sizeof *o);
}
