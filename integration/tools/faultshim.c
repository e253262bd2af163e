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
 * process (an empty file = no faults).
 *
 * Power-loss simulation (opt-in): HQ_FAULT_SYNCLOG=FILE appends one tab-separated line
 * per successful call on a file or directory whose path contains HQ_FAULT_PATH, in the
 * order the calls completed (the call and its line are made under one lock):
 *   W ino offset length path   data written (write, pwrite, writev, pwritev)
 *   S ino size path            fsync/fdatasync of a file (size = st_size after it)
 *   D ino path                 fsync/fdatasync of a directory
 *   C ino path                 path created by open/openat with O_CREAT
 *   T ino length path          truncated (ftruncate, truncate, open with O_TRUNC)
 *   R ino stash from to        renamed; stash = hard link to the file `to` replaced, or -
 *   U ino stash path           unlinked; stash = hard link keeping its content, or -
 * Stashes are FILE.stash.<pid>.<n> (so FILE must be on the journal's filesystem).
 * integration/test_diskfaults.py turns the log into the state a power cut would leave:
 * directory operations after the directory's last sync are undone, bytes written after a
 * file's last sync become zeros, and files are cut back to the size of their last sync.
 * HQ_FAULT_SYNCLOG_IGNORE=fsync,fdatasync (any of the two) leaves those calls out of the
 * log: the simulation then treats them as never made (a negative control showing that
 * a program acking before its sync loses acked data). */
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

/* The shim defines open(): its own files are opened with the next one in line. */
static int s_real_open(const char *path, int flags, mode_t mode)
{
    static int (*real_open_)(const char *, int, ...);
    if (!real_open_)
        real_open_ = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
    return real_open_(path, flags, mode);
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
        int fd = s_real_open(file, O_RDONLY | O_CLOEXEC, 0);
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
    int fd = s_real_open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    char line[PATH_MAX + 64];
    int n = snprintf(line, sizeof line, "%s %d %s\n", s_op_names[op], err, path ? path : "");
    ssize_t w = s_real_write(fd, line, (size_t)n);
    (void)w;
    close(fd);
}

/* ---- power-loss simulation log (HQ_FAULT_SYNCLOG) ---- */

static pthread_mutex_t s_trk_mu = PTHREAD_MUTEX_INITIALIZER;
static __thread int s_busy; /* the shim's own calls are not tracked */
static int s_log_fd = -1;
static unsigned long s_stash_n;

typedef struct trk {
    int on;
    int saved_errno;
    ino_t ino;
    char path[PATH_MAX];
} trk_t;

static int s_sync_enabled(void)
{
    const char *f = getenv("HQ_FAULT_SYNCLOG");
    return f && *f && !s_busy;
}

static int s_sync_ignored(const char *op)
{
    const char *ig = getenv("HQ_FAULT_SYNCLOG_IGNORE");
    if (!ig)
        return 0;
    size_t n = strlen(op);
    for (const char *p = strstr(ig, op); p; p = strstr(p + 1, op))
        if ((p == ig || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return 1;
    return 0;
}

/* Appends one line to the log (called with s_trk_mu held). */
static void s_slog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void s_slog(const char *fmt, ...)
{
    if (s_log_fd < 0) {
        const char *f = getenv("HQ_FAULT_SYNCLOG");
        if (!f)
            return;
        s_log_fd = s_real_open(f, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (s_log_fd < 0)
            return;
    }
    char line[3 * PATH_MAX + 128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    if ((size_t)n >= sizeof line)
        n = (int)sizeof line - 1;
    ssize_t w = s_real_write(s_log_fd, line, (size_t)n);
    (void)w;
}

/* Absolute path of name relative to dfd (AT_FDCWD or a directory fd). */
static void s_at_path(int dfd, const char *name, char *out, size_t len)
{
    if (name[0] == '/') {
        snprintf(out, len, "%s", name);
        return;
    }
    char dir[PATH_MAX] = "";
    if (dfd == AT_FDCWD) {
        if (!getcwd(dir, sizeof dir))
            dir[0] = '\0';
    } else {
        s_fd_path(dfd, dir, sizeof dir);
    }
    snprintf(out, len, "%s/%s", dir, name);
}

static int s_tracked_path(const char *path)
{
    const char *log = getenv("HQ_FAULT_SYNCLOG");
    if (log && strncmp(path, log, strlen(log)) == 0)
        return 0;
    return s_path_matches(path);
}

/* Starts tracking a call on fd: 1 (and s_trk_mu held) when fd is a file or directory
 * whose path is tracked. errno is left as it was. */
static int s_trk_begin(trk_t *t, int fd)
{
    t->on = 0;
    if (!s_sync_enabled())
        return 0;
    int e = errno;
    struct stat st;
    if (fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))) {
        s_fd_path(fd, t->path, sizeof t->path);
        if (t->path[0] && s_tracked_path(t->path)) {
            t->on = 1;
            t->ino = st.st_ino;
        }
    }
    errno = e;
    if (t->on) {
        pthread_mutex_lock(&s_trk_mu);
        s_busy = 1;
    }
    return t->on;
}

static void s_trk_saveerr(trk_t *t)
{
    t->saved_errno = errno;
}

static void s_trk_end(trk_t *t)
{
    if (!t->on)
        return;
    s_busy = 0;
    pthread_mutex_unlock(&s_trk_mu);
    errno = t->saved_errno;
}

static void s_trk_write(trk_t *t, int fd, long long off, ssize_t r)
{
    s_trk_saveerr(t);
    if (!t->on || r <= 0)
        return;
    if (off < 0) { /* the file offset: where this write ended, minus its length */
        off_t cur = lseek(fd, 0, SEEK_CUR);
        if (cur < 0)
            return;
        off = (long long)cur - r;
    }
    s_slog("W\t%llu\t%lld\t%lld\t%s\n", (unsigned long long)t->ino, off, (long long)r, t->path);
}

static void s_trk_sync(trk_t *t, int fd, int r, const char *op)
{
    s_trk_saveerr(t);
    if (!t->on || r != 0 || s_sync_ignored(op))
        return;
    struct stat st;
    if (fstat(fd, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode))
        s_slog("D\t%llu\t%s\n", (unsigned long long)t->ino, t->path);
    else
        s_slog("S\t%llu\t%lld\t%s\n", (unsigned long long)t->ino, (long long)st.st_size, t->path);
}

/* A hard link keeping the file at (dfd, name) alive; returns its path in out or "-". */
static void s_stash(int dfd, const char *name, char *out, size_t len)
{
    const char *log = getenv("HQ_FAULT_SYNCLOG");
    snprintf(out, len, "%s.stash.%ld.%lu", log, (long)getpid(), ++s_stash_n);
    if (linkat(dfd, name, AT_FDCWD, out, 0) != 0)
        snprintf(out, len, "-");
}

static void s_unstash(const char *stash)
{
    REAL(unlink, int, const char *);
    if (strcmp(stash, "-") != 0)
        real_unlink(stash);
}

/* Path-based tracking: 1 (and s_trk_mu held) when the path is tracked. */
static int s_trk_path_begin(trk_t *t, int dfd, const char *name)
{
    t->on = 0;
    if (!name || !s_sync_enabled())
        return 0;
    int e = errno;
    s_at_path(dfd, name, t->path, sizeof t->path);
    errno = e;
    if (!s_tracked_path(t->path))
        return 0;
    t->on = 1;
    pthread_mutex_lock(&s_trk_mu);
    s_busy = 1;
    return 1;
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

#define FAULT(op, fd, path)                                                                        \
    do {                                                                                           \
        int e_ = s_decide(op, fd, path);                                                           \
        if (e_) {                                                                                  \
            errno = e_;                                                                            \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

ssize_t write(int fd, const void *buf, size_t n)
{
    REAL(write, ssize_t, int, const void *, size_t);
    if (s_std_ok(fd))
        FAULT(OP_WRITE, fd, NULL);
    trk_t t;
    s_trk_begin(&t, fd);
    ssize_t r = real_write(fd, buf, n);
    s_trk_write(&t, fd, -1, r);
    s_trk_end(&t);
    return r;
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite, ssize_t, int, const void *, size_t, off_t);
    FAULT(OP_WRITE, fd, NULL);
    trk_t t;
    s_trk_begin(&t, fd);
    ssize_t r = real_pwrite(fd, buf, n, off);
    s_trk_write(&t, fd, off, r);
    s_trk_end(&t);
    return r;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    REAL(pwrite64, ssize_t, int, const void *, size_t, off_t);
    FAULT(OP_WRITE, fd, NULL);
    trk_t t;
    s_trk_begin(&t, fd);
    ssize_t r = real_pwrite64(fd, buf, n, off);
    s_trk_write(&t, fd, off, r);
    s_trk_end(&t);
    return r;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    REAL(writev, ssize_t, int, const struct iovec *, int);
    if (s_std_ok(fd))
        FAULT(OP_WRITE, fd, NULL);
    trk_t t;
    s_trk_begin(&t, fd);
    ssize_t r = real_writev(fd, iov, cnt);
    s_trk_write(&t, fd, -1, r);
    s_trk_end(&t);
    return r;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    REAL(pwritev, ssize_t, int, const struct iovec *, int, off_t);
    FAULT(OP_WRITE, fd, NULL);
    trk_t t;
    s_trk_begin(&t, fd);
    ssize_t r = real_pwritev(fd, iov, cnt, off);
    s_trk_write(&t, fd, off, r);
    s_trk_end(&t);
    return r;
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off)
{
    REAL(pwritev64, ssize_t, int, const struct iovec *, int, off_t);
    FAULT(OP_WRITE, fd, NULL);
    trk_t t;
    s_trk_begin(&t, fd);
    ssize_t r = real_pwritev64(fd, iov, cnt, off);
    s_trk_write(&t, fd, off, r);
    s_trk_end(&t);
    return r;
}

int fsync(int fd)
{
    REAL(fsync, int, int);
    FAULT(OP_FSYNC, fd, NULL);
    trk_t t;
    s_trk_begin(&t, fd);
    int r = real_fsync(fd);
    s_trk_sync(&t, fd, r, "fsync");
    s_trk_end(&t);
    return r;
}

int fdatasync(int fd)
{
    REAL(fdatasync, int, int);
    FAULT(OP_FDATASYNC, fd, NULL);
    trk_t t;
    s_trk_begin(&t, fd);
    int r = real_fdatasync(fd);
    s_trk_sync(&t, fd, r, "fdatasync");
    s_trk_end(&t);
    return r;
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
    REAL(fallocate, int, int, int, off_t, off_t);
    FAULT(OP_FALLOCATE, fd, NULL);
    return real_fallocate(fd, mode, off, len);
}

int fallocate64(int fd, int mode, off_t off, off_t len)
{
    REAL(fallocate64, int, int, int, off_t, off_t);
    FAULT(OP_FALLOCATE, fd, NULL);
    return real_fallocate64(fd, mode, off, len);
}

static int s_ftruncate_common(int (*real)(int, off_t), int fd, off_t len)
{
    trk_t t;
    s_trk_begin(&t, fd);
    int r = real(fd, len);
    s_trk_saveerr(&t);
    if (t.on && r == 0)
        s_slog("T\t%llu\t%lld\t%s\n", (unsigned long long)t.ino, (long long)len, t.path);
    s_trk_end(&t);
    return r;
}

int ftruncate(int fd, off_t len)
{
    REAL(ftruncate, int, int, off_t);
    return s_ftruncate_common(real_ftruncate, fd, len);
}

int ftruncate64(int fd, off_t len)
{
    REAL(ftruncate64, int, int, off_t);
    return s_ftruncate_common(real_ftruncate64, fd, len);
}

int truncate(const char *path, off_t len)
{
    REAL(truncate, int, const char *, off_t);
    trk_t t;
    struct stat st;
    if (!s_trk_path_begin(&t, AT_FDCWD, path))
        return real_truncate(path, len);
    int r = real_truncate(path, len);
    s_trk_saveerr(&t);
    if (r == 0 && stat(path, &st) == 0)
        s_slog("T\t%llu\t%lld\t%s\n", (unsigned long long)st.st_ino, (long long)len, t.path);
    s_trk_end(&t);
    return r;
}

/* open/openat: logs files they create (C) or truncate (T). */
typedef struct open_args {
    int dfd;
    const char *name;
    int flags;
    mode_t mode;
} open_args_t;

static int s_open_common(const open_args_t *a, int (*real_at)(int, const char *, int, ...),
                         int (*real)(const char *, int, ...))
{
    trk_t t;
    int want = (a->flags & (O_CREAT | O_TRUNC)) != 0;
    if (!want || !s_trk_path_begin(&t, a->dfd, a->name))
        return real_at ? real_at(a->dfd, a->name, a->flags, a->mode)
                       : real(a->name, a->flags, a->mode);
    struct stat st;
    int existed = fstatat(a->dfd, a->name, &st, AT_SYMLINK_NOFOLLOW) == 0;
    int fd =
        real_at ? real_at(a->dfd, a->name, a->flags, a->mode) : real(a->name, a->flags, a->mode);
    s_trk_saveerr(&t);
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
        if (!existed && (a->flags & O_CREAT))
            s_slog("C\t%llu\t%s\n", (unsigned long long)st.st_ino, t.path);
        else if (existed && (a->flags & O_TRUNC) && (a->flags & O_ACCMODE) != O_RDONLY)
            s_slog("T\t%llu\t0\t%s\n", (unsigned long long)st.st_ino, t.path);
    }
    s_trk_end(&t);
    return fd;
}

#define OPEN_MODE(flags, mode)                                                                     \
    mode_t mode = 0;                                                                               \
    if (((flags)&O_CREAT) || ((flags)&O_TMPFILE) == O_TMPFILE) {                                   \
        va_list ap;                                                                                \
        va_start(ap, flags);                                                                       \
        mode = (mode_t)va_arg(ap, int);                                                            \
        va_end(ap);                                                                                \
    }

int open(const char *path, int flags, ...)
{
    REAL(open, int, const char *, int, ...);
    OPEN_MODE(flags, mode);
    open_args_t a = {AT_FDCWD, path, flags, mode};
    return s_open_common(&a, NULL, real_open);
}

int open64(const char *path, int flags, ...)
{
    REAL(open64, int, const char *, int, ...);
    OPEN_MODE(flags, mode);
    open_args_t a = {AT_FDCWD, path, flags, mode};
    return s_open_common(&a, NULL, real_open64);
}

int openat(int dfd, const char *path, int flags, ...)
{
    REAL(openat, int, int, const char *, int, ...);
    OPEN_MODE(flags, mode);
    open_args_t a = {dfd, path, flags, mode};
    return s_open_common(&a, real_openat, NULL);
}

int openat64(int dfd, const char *path, int flags, ...)
{
    REAL(openat64, int, int, const char *, int, ...);
    OPEN_MODE(flags, mode);
    open_args_t a = {dfd, path, flags, mode};
    return s_open_common(&a, real_openat64, NULL);
}

/* rename*: logs R with a stash of the file the target name replaced. */
static int s_rename_common(int fdf, const char *from, int fdt, const char *to, unsigned flags,
                           int (*real)(int, const char *, int, const char *, unsigned))
{
    trk_t t;
    char to_path[PATH_MAX];
    if (!s_sync_enabled())
        return real(fdf, from, fdt, to, flags);
    int e = errno;
    s_at_path(fdt, to, to_path, sizeof to_path);
    errno = e;
    if (!s_trk_path_begin(&t, fdf, from) && !s_tracked_path(to_path))
        return real(fdf, from, fdt, to, flags);
    if (!t.on) {
        t.on = 1;
        s_at_path(fdf, from, t.path, sizeof t.path);
        pthread_mutex_lock(&s_trk_mu);
        s_busy = 1;
    }
    struct stat st_from, st_to;
    char stash[PATH_MAX + 64] = "-";
    int have_from = fstatat(fdf, from, &st_from, AT_SYMLINK_NOFOLLOW) == 0;
    if (fstatat(fdt, to, &st_to, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st_to.st_mode))
        s_stash(fdt, to, stash, sizeof stash);
    errno = e;
    int r = real(fdf, from, fdt, to, flags);
    s_trk_saveerr(&t);
    if (r == 0 && have_from)
        s_slog("R\t%llu\t%s\t%s\t%s\n", (unsigned long long)st_from.st_ino, stash, t.path, to_path);
    else
        s_unstash(stash);
    s_trk_end(&t);
    return r;
}

static int s_real_renameat2(int fdf, const char *from, int fdt, const char *to, unsigned flags)
{
    REAL(renameat2, int, int, const char *, int, const char *, unsigned);
    return real_renameat2(fdf, from, fdt, to, flags);
}

static int s_real_renameat(int fdf, const char *from, int fdt, const char *to, unsigned flags)
{
    (void)flags;
    REAL(renameat, int, int, const char *, int, const char *);
    return real_renameat(fdf, from, fdt, to);
}

static int s_real_rename(int fdf, const char *from, int fdt, const char *to, unsigned flags)
{
    (void)fdf, (void)fdt, (void)flags;
    REAL(rename, int, const char *, const char *);
    return real_rename(from, to);
}

int rename(const char *from, const char *to)
{
    FAULT(OP_RENAME, -1, from);
    return s_rename_common(AT_FDCWD, from, AT_FDCWD, to, 0, s_real_rename);
}

int renameat(int dfd, const char *from, int tfd, const char *to)
{
    FAULT(OP_RENAME, -1, from);
    return s_rename_common(dfd, from, tfd, to, 0, s_real_renameat);
}

int renameat2(int dfd, const char *from, int tfd, const char *to, unsigned flags)
{
    FAULT(OP_RENAME, -1, from);
    return s_rename_common(dfd, from, tfd, to, flags, s_real_renameat2);
}

/* unlink*: logs U with a stash that keeps the content for the simulation. */
static int s_unlink_common(int dfd, const char *name, int flags)
{
    REAL(unlinkat, int, int, const char *, int);
    trk_t t;
    if ((flags & AT_REMOVEDIR) || !s_trk_path_begin(&t, dfd, name))
        return real_unlinkat(dfd, name, flags);
    struct stat st;
    char stash[PATH_MAX + 64] = "-";
    int e = errno;
    int have = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
    if (have)
        s_stash(dfd, name, stash, sizeof stash);
    errno = e;
    int r = real_unlinkat(dfd, name, flags);
    s_trk_saveerr(&t);
    if (r == 0 && have)
        s_slog("U\t%llu\t%s\t%s\n", (unsigned long long)st.st_ino, stash, t.path);
    else
        s_unstash(stash);
    s_trk_end(&t);
    return r;
}

int unlink(const char *path)
{
    return s_unlink_common(AT_FDCWD, path, 0);
}

int unlinkat(int dfd, const char *path, int flags)
{
    return s_unlink_common(dfd, path, flags);
}
