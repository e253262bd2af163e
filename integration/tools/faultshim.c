/* LD_PRELOAD fault shim: makes chosen I/O calls fail with a chosen errno, for disk-full
 * and fsync-EIO tests of the journal. Build and use:
 *
 *   cc -shared -fPIC -O2 -o faultshim.so faultshim.c -ldl
 *   HQ_FAULT="fdatasync:EIO:once" HQ_FAULT_PATH=/tmp/j LD_PRELOAD=./faultshim.so prog
 *
 * HQ_FAULT is a comma-separated list of OP:ERRNO:WHEN rules:
 *   OP    write (write, pwrite, writev, pwritev), fsync, fdatasync, rename (rename,
 *         renameat, renameat2), fallocate
 *   ERRNO ENOSPC, EDQUOT, EIO, EFBIG, EROFS, or a number
 *   WHEN  once | always | after=N (every call after the first N) | nth=N (only the Nth)
 * HQ_FAULT_PATH (optional) limits the faults to files whose path contains it (fd calls
 * look the path up in /proc/self/fd), so a program's stdout and logs keep working;
 * without it, writes to fds 0-2 are never faulted.
 * HQ_FAULT_LOG (optional) gets one line per injected fault: "OP ERRNO PATH".
 * HQ_FAULT_FILE (optional) names a file re-read before each decision (mtime change):
 * its content replaces HQ_FAULT, so a test can switch faults on and off in a running
 * process (an empty file = no faults). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum op { OP_WRITE, OP_FSYNC, OP_FDATASYNC, OP_RENAME, OP_FALLOCATE, OP_COUNT };
static const char *s_op_names[OP_COUNT] = {"write", "fsync", "fdatasync", "rename", "fallocate"};

enum when { W_ONCE, W_ALWAYS, W_AFTER, W_NTH };

typedef struct rule {
    int active;
    int err;
    enum when when;
    long n;
    long calls; /* matching calls seen */
} rule_t;

static rule_t s_rules[OP_COUNT];
static pthread_mutex_t s_mu = PTHREAD_MUTEX_INITIALIZER;
static int s_loaded;
static struct timespec s_file_mtime;

static int s_errno_of(const char *s)
{
    static const struct {
        const char *name;
        int value;
    } names[] = {{"ENOSPC", ENOSPC}, {"EDQUOT", EDQUOT}, {"EIO", EIO},
                 {"EFBIG", EFBIG},   {"EROFS", EROFS},   {"EINTR", EINTR}};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (strcmp(s, names[k].name) == 0)
            return names[k].value;
    int v = atoi(s);
    return v > 0 ? v : EIO;
}

static void s_parse(const char *spec)
{
    memset(s_rules, 0, sizeof s_rules);
    if (!spec)
        return;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", spec);
    char *save = NULL;
    for (char *item = strtok_r(buf, ", \n", &save); item; item = strtok_r(NULL, ", \n", &save)) {
        char *op = item, *er = strchr(op, ':');
        if (!er)
            continue;
        *er++ = '\0';
        char *wh = strchr(er, ':');
        if (wh)
            *wh++ = '\0';
        for (int k = 0; k < OP_COUNT; k++) {
            if (strcmp(op, s_op_names[k]) != 0)
                continue;
            rule_t *r = &s_rules[k];
            r->active = 1;
            r->err = s_errno_of(er);
            r->when = W_ONCE;
            if (wh && strcmp(wh, "always") == 0)
                r->when = W_ALWAYS;
            else if (wh && strncmp(wh, "after=", 6) == 0)
                r->when = W_AFTER, r->n = atol(wh + 6);
            else if (wh && strncmp(wh, "nth=", 4) == 0)
                r->when = W_NTH, r->n = atol(wh + 4);
        }
    }
}

/* Loads the rules (once from HQ_FAULT, or again whenever HQ_FAULT_FILE changes). */
static void s_load(void)
{
    const char *file = getenv("HQ_FAULT_FILE");
    if (file) {
        struct stat st;
        if (stat(file, &st) != 0) {
            if (!s_loaded)
                s_parse(NULL);
            s_loaded = 1;
            return;
        }
        if (s_loaded && st.st_mtim.tv_sec == s_file_mtime.tv_sec &&
            st.st_mtim.tv_nsec == s_file_mtime.tv_nsec)
            return;
        s_file_mtime = st.st_mtim;
        char buf[1024] = "";
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            ssize_t n = read(fd, buf, sizeof buf - 1);
            buf[n > 0 ? n : 0] = '\0';
            close(fd);
        }
        s_parse(buf);
        s_loaded = 1;
        return;
    }
    if (!s_loaded)
        s_parse(getenv("HQ_FAULT"));
    s_loaded = 1;
}

static int s_path_matches(const char *path)
{
    const char *want = getenv("HQ_FAULT_PATH");
    if (!want || !*want)
        return 1;
    return path && strstr(path, want) != NULL;
}

static void s_fd_path(int fd, char *out, size_t len)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, out, len - 1);
    out[n > 0 ? n : 0] = '\0';
}

#define REAL(name, ret, ...)                                                                       \
    static ret (*real_##name)(__VA_ARGS__);                                                        \
    if (!real_##name)                                                                              \
        real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name);

static ssize_t s_real_write(int fd, const void *buf, size_t n)
{
    REAL(write, ssize_t, int, const void *, size_t);
    return real_write(fd, buf, n);
}

static void s_log(enum op op, int err, const char *path)
{
    const char *log = getenv("HQ_FAULT_LOG");
    if (!log)
        return;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    char line[PATH_MAX + 64];
    int n = snprintf(line, sizeof line, "%s %d %s\n", s_op_names[op], err, path ? path : "");
    ssize_t w = s_real_write(fd, line, (size_t)n);
    (void)w;
    close(fd);
}

/* stdin/out/err are only faulted when HQ_FAULT_PATH selects them explicitly (dd
 * writes its output file through fd 1), so error messages still get out. */
static int s_std_ok(int fd)
{
    const char *want = getenv("HQ_FAULT_PATH");
    return fd > 2 || (want && *want);
}

/* Returns the errno to inject for this call, or 0. */
static int s_decide(enum op op, int fd, const char *path)
{
    pthread_mutex_lock(&s_mu);
    s_load();
    rule_t *r = &s_rules[op];
    if (!r->active) {
        pthread_mutex_unlock(&s_mu);
        return 0;
    }
    pthread_mutex_unlock(&s_mu);
    char buf[PATH_MAX];
    if (!path) {
        s_fd_path(fd, buf, sizeof buf);
        path = buf;
    }
    if (!s_path_matches(path))
        return 0;
    pthread_mutex_lock(&s_mu);
    long c = ++r->calls;
    int fail = 0;
    switch (r->when) {
    case W_ONCE:
        fail = c == 1;
        break;
    case W_ALWAYS:
        fail = 1;
        break;
    case W_AFTER:
        fail = c > r->n;
        break;
    case W_NTH:
        fail = c == r->n;
        break;
    }
    int err = fail ? r->err : 0;
    pthread_mutex_unlock(&s_mu);
    if (err)
        s_log(op, err, path);
    return err;
}

ssize_t write(int fd, const void *buf, size_t n)
{
    REAL(write, ssize_t, int, const void *, size_t);
    int e = s_std_ok(fd) ? s_decide(OP_WRITE, fd, NULL) : 0;
    if (e) {
        errno = e;
        return -1;
    }
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite, ssize_t, int, const void *, size_t, off_t);
    int e = s_decide(OP_WRITE, fd, NULL);
    if (e) {
        errno = e;
        return -1;
    }
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite64, ssize_t, int, const void *, size_t, off_t);
    int e = s_decide(OP_WRITE, fd, NULL);
    if (e) {
        errno = e;
        return -1;
    }
    return real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    REAL(writev, ssize_t, int, const struct iovec *, int);
    int e = s_std_ok(fd) ? s_decide(OP_WRITE, fd, NULL) : 0;
    if (e) {
        errno = e;
        return -1;
    }
    return real_writev(fd, iov, cnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    REAL(pwritev, ssize_t, int, const struct iovec *, int, off_t);
    int e = s_decide(OP_WRITE, fd, NULL);
    if (e) {
        errno = e;
        return -1;
    }
    return real_pwritev(fd, iov, cnt, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
    REAL(pwritev64, ssize_t, int, const struct iovec *, int, off_t);
    int e = s_decide(OP_WRITE, fd, NULL);
    if (e) {
        errno = e;
        return -1;
    }
    return real_pwritev64(fd, iov, cnt, off);
}

int fsync(int fd)
{
    REAL(fsync, int, int);
    int e = s_decide(OP_FSYNC, fd, NULL);
    if (e) {
        errno = e;
        return -1;
    }
    return real_fsync(fd);
}

int fdatasync(int fd)
{
    REAL(fdatasync, int, int);
    int e = s_decide(OP_FDATASYNC, fd, NULL);
    if (e) {
        errno = e;
        return -1;
    }
    return real_fdatasync(fd);
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
    REAL(fallocate, int, int, int, off_t, off_t);
    int e = s_decide(OP_FALLOCATE, fd, NULL);
    if (e) {
        errno = e;
        return -1;
    }
    return real_fallocate(fd, mode, off, len);
}

int fallocate64(int fd, int mode, off_t off, off_t len)
{
    REAL(fallocate64, int, int, int, off_t, off_t);
    int e = s_decide(OP_FALLOCATE, fd, NULL);
    if (e) {
        errno = e;
        return -1;
    }
    return real_fallocate64(fd, mode, off, len);
}

int rename(const char *from, const char *to)
{
    REAL(rename, int, const char *, const char *);
    int e = s_decide(OP_RENAME, -1, from);
    if (e) {
        errno = e;
        return -1;
    }
    return real_rename(from, to);
}

int renameat(int dfd, const char *from, int tfd, const char *to)
{
    REAL(renameat, int, int, const char *, int, const char *);
    int e = s_decide(OP_RENAME, -1, from);
    if (e) {
        errno = e;
        return -1;
    }
    return real_renameat(dfd, from, tfd, to);
}

int renameat2(int dfd, const char *from, int tfd, const char *to, unsigned flags)
{
    REAL(renameat2, int, int, const char *, int, const char *, unsigned);
    int e = s_decide(OP_RENAME, -1, from);
    if (e) {
        errno = e;
        return -1;
    }
    return real_renameat2(dfd, from, tfd, to, flags);
}
