/* Small helpers used everywhere: clocks, time formatting, allocation that aborts on
 * out-of-memory, growable buffers and whole-file reads. */
#include "hq_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void s_oom(void)
{
    static const char msg[] = "hq: out of memory\n";
    ssize_t rc = write(2, msg, sizeof msg - 1);
    (void)rc;
    abort();
}

uint64_t hq_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t hq_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

char *hq_time_rfc3339(uint64_t wall_ns, int frac_digits)
{
    time_t secs = (time_t)(wall_ns / 1000000000ULL);
    uint64_t frac = wall_ns % 1000000000ULL;
    struct tm tm;
    gmtime_r(&secs, &tm);
    char base[64];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    switch (frac_digits) {
    case 3:
        return hq_asprintf("%s.%03lluZ", base, (unsigned long long)(frac / 1000000ULL));
    case 6:
        return hq_asprintf("%s.%06lluZ", base, (unsigned long long)(frac / 1000ULL));
    case 9:
        return hq_asprintf("%s.%09lluZ", base, (unsigned long long)frac);
    default:
        return hq_asprintf("%sZ", base);
    }
}

char *hq_time_utc_date(uint64_t wall_ns)
{
    time_t secs = (time_t)((wall_ns + 500000000ULL) / 1000000000ULL);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char buf[64];
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return hq_strdup(buf);
}

char *hq_time_local(uint64_t wall_ns)
{
    time_t secs = (time_t)(wall_ns / 1000000000ULL);
    struct tm tm;
    localtime_r(&secs, &tm);
    char buf[64];
    strftime(buf, sizeof buf, "%d.%m.%Y %H:%M:%S", &tm);
    return hq_strdup(buf);
}

void *hq_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        s_oom();
    return p;
}

void *hq_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        s_oom();
    return p;
}

void *hq_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        s_oom();
    return q;
}

char *hq_strdup(const char *s)
{
    return hq_strndup(s, strlen(s));
}

char *hq_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = hq_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *hq_asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int rc = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (rc < 0)
        s_oom();
    return s;
}

static void s_buf_reserve(hq_buf_t *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = hq_realloc(b->data, cap);
    b->cap = cap;
}

void hq_buf_append(hq_buf_t *b, const void *data, size_t n)
{
    s_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void hq_buf_printf(hq_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        va_end(ap2);
        return;
    }
    s_buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    b->len += (size_t)n;
}

void hq_buf_free(hq_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int hq_read_file(const char *path, size_t max, char **data, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    hq_buf_t b = {0};
    char chunk[65536];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            close(fd);
            hq_buf_free(&b);
            errno = e;
            return -1;
        }
        if (n == 0)
            break;
        if (b.len + (size_t)n > max) {
            close(fd);
            hq_buf_free(&b);
            errno = EFBIG;
            return -1;
        }
        hq_buf_append(&b, chunk, (size_t)n);
    }
    close(fd);
    if (!b.data)
        hq_buf_append(&b, "", 0);
    *data = b.data;
    if (len)
        *len = b.len;
    return 0;
}

char *hq_hostname(void)
{
    char buf[HOST_NAME_MAX + 1];
    if (gethostname(buf, sizeof buf) != 0)
        return hq_strdup("localhost");
    buf[HOST_NAME_MAX] = '\0';
    return hq_strdup(buf);
}

/* The length of the valid UTF-8 sequence at p (at most n bytes), 0 if invalid. */
static size_t s_utf8_seq(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned int cp;
    if (p[0] < 0x80)
        return 1;
    else if ((p[0] & 0xe0) == 0xc0)
        len = 2, cp = p[0] & 0x1f;
    else if ((p[0] & 0xf0) == 0xe0)
        len = 3, cp = p[0] & 0x0f;
    else if ((p[0] & 0xf8) == 0xf0)
        len = 4, cp = p[0] & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    static const unsigned int min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

char *hq_utf8_lossy(const char *data, size_t len)
{
    hq_buf_t b = {0};
    hq_buf_append(&b, "", 0);
    const unsigned char *p = (const unsigned char *)data;
    for (size_t i = 0; i < len;) {
        size_t n = s_utf8_seq(p + i, len - i);
        if (n > 0) {
            if (p[i] != 0) /* a C string cannot hold NUL: dropped */
                hq_buf_append(&b, data + i, n);
            i += n;
            continue;
        }
        /* One U+FFFD for an invalid lead byte and the continuation bytes after it
         * that belong to the same (broken) sequence. */
        size_t want = p[i] >= 0xf0 ? 4 : p[i] >= 0xe0 ? 3 : p[i] >= 0xc0 ? 2 : 1;
        size_t k = 1;
        while (k < want && i + k < len && (p[i + k] & 0xc0) == 0x80)
            k++;
        hq_buf_append(&b, "\xef\xbf\xbd", 3);
        i += k;
    }
    return b.data;
}

static char *s_self_path;

void hq_set_self_path(const char *argv0)
{
    if (!argv0 || !*argv0 || s_self_path)
        return;
    if (argv0[0] == '/') {
        s_self_path = hq_strdup(argv0);
    } else if (strchr(argv0, '/')) {
        char cwd[4096];
        s_self_path = getcwd(cwd, sizeof cwd) ? hq_asprintf("%s/%s", cwd, argv0) : NULL;
    } else {
        const char *path = getenv("PATH");
        char *copy = hq_strdup(path ? path : "");
        for (char *save = NULL, *dir = strtok_r(copy, ":", &save); dir && !s_self_path;
             dir = strtok_r(NULL, ":", &save)) {
            char *cand = hq_asprintf("%s/%s", dir, argv0);
            if (access(cand, X_OK) == 0 && cand[0] == '/')
                s_self_path = cand;
            else
                free(cand);
        }
        free(copy);
    }
}

const char *hq_self_path(void)
{
    return s_self_path ? s_self_path : "hq";
}
