/* Child processes of the allocator (proc.h). */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hq_util.h"

#define S_MAX_OUT (1024 * 1024)

typedef struct s_proc {
    pid_t pid;          /* 0: did not start */
    int out_fd, err_fd; /* unlinked temporary files */
    uint64_t deadline;  /* CLOCK_MONOTONIC */
    hq_pjob_t job;
    int status; /* set once reaped */
    bool reaped;
    char *start_error; /* why it did not start */
} s_proc_t;

struct hq_procs {
    s_proc_t **items;
    uint32_t n, cap;
};

hq_procs_t *hq_procs_new(void)
{
    return hq_calloc(1, sizeof(hq_procs_t));
}

static void s_free(s_proc_t *p)
{
    if (p->out_fd >= 0)
        close(p->out_fd);
    if (p->err_fd >= 0)
        close(p->err_fd);
    free(p->start_error);
    free(p);
}

void hq_procs_destroy(hq_procs_t **psp, void (*drop)(const hq_pjob_t *job))
{
    hq_procs_t *ps = psp ? *psp : NULL;
    if (!ps)
        return;
    for (uint32_t i = 0; i < ps->n; i++) {
        s_proc_t *p = ps->items[i];
        if (p->pid > 0 && !p->reaped) {
            kill(-p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
        }
        if (drop)
            drop(&p->job);
        s_free(p);
    }
    free(ps->items);
    free(ps);
    *psp = NULL;
}

/* An unlinked temporary file for one stream, or -1. */
static int s_tmpfile(void)
{
    const char *dir = getenv("TMPDIR");
    char *tmpl = hq_asprintf("%s/hq-alloc-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkostemp(tmpl, O_CLOEXEC);
    if (fd >= 0)
        unlink(tmpl);
    free(tmpl);
    return fd;
}

void hq_procs_start(hq_procs_t *ps, char *const argv[], const char *cwd, uint64_t timeout_ns,
                    const hq_pjob_t *job)
{
    s_proc_t *p = hq_calloc(1, sizeof *p);
    p->job = *job;
    p->out_fd = s_tmpfile();
    p->err_fd = s_tmpfile();
    p->deadline = hq_mono_ns() + timeout_ns;
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? ps->cap * 2 : 8;
        ps->items = hq_realloc(ps->items, ps->cap * sizeof *ps->items);
    }
    ps->items[ps->n++] = p;
    if (p->out_fd < 0 || p->err_fd < 0) {
        p->start_error = hq_asprintf("cannot create a temporary file: %s", strerror(errno));
        return;
    }
    int report[2]; /* the child writes errno here when exec fails */
    if (pipe2(report, O_CLOEXEC) != 0) {
        p->start_error = hq_asprintf("cannot create a pipe: %s", strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        p->start_error = hq_asprintf("cannot fork: %s", strerror(errno));
        close(report[0]);
        close(report[1]);
        return;
    }
    if (pid == 0) {
        setpgid(0, 0);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(p->out_fd, 1);
        dup2(p->err_fd, 2);
        int e = 0;
        if (cwd && chdir(cwd) != 0)
            e = errno;
        if (!e) {
            execvp(argv[0], argv);
            e = errno;
        }
        ssize_t w = write(report[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    setpgid(pid, pid);
    close(report[1]);
    int e = 0;
    ssize_t r;
    do
        r = read(report[0], &e, sizeof e);
    while (r < 0 && errno == EINTR);
    close(report[0]);
    if (r == (ssize_t)sizeof e) {
        waitpid(pid, NULL, 0);
        p->start_error = hq_asprintf("cannot run %s: %s", argv[0], strerror(e));
        return;
    }
    p->pid = pid;
}

static char *s_slurp(int fd)
{
    char *buf = hq_malloc(S_MAX_OUT + 1);
    size_t len = 0;
    if (fd >= 0 && lseek(fd, 0, SEEK_SET) == 0) {
        ssize_t r;
        while (len < S_MAX_OUT && (r = read(fd, buf + len, S_MAX_OUT - len)) > 0)
            len += (size_t)r;
    }
    buf[len] = '\0';
    return buf;
}

bool hq_procs_next(hq_procs_t *ps, hq_pdone_t *done)
{
    uint64_t now = hq_mono_ns();
    for (uint32_t i = 0; i < ps->n; i++) {
        s_proc_t *p = ps->items[i];
        if (p->pid > 0 && !p->reaped) {
            int st;
            pid_t r = waitpid(p->pid, &st, WNOHANG);
            if (r == 0 && now >= p->deadline) {
                kill(-p->pid, SIGKILL);
                r = waitpid(p->pid, &st, 0);
            }
            if (r == 0)
                continue;
            p->reaped = true;
            p->status = r < 0 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        done->job = p->job;
        done->exit_code = p->pid > 0 ? p->status : -1;
        done->out = s_slurp(p->out_fd);
        done->err = p->start_error ? hq_strdup(p->start_error) : s_slurp(p->err_fd);
        memmove(&ps->items[i], &ps->items[i + 1], (ps->n - i - 1) * sizeof *ps->items);
        ps->n--;
        s_free(p);
        return true;
    }
    return false;
}

void hq_pdone_clear(hq_pdone_t *d)
{
    free(d->out);
    free(d->err);
    d->out = d->err = NULL;
}

uint32_t hq_procs_running(const hq_procs_t *ps)
{
    return ps ? ps->n : 0;
}
