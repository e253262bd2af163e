/* The orphan guard: a small process that outlives the worker and kills what is left
 * of its tasks' process groups once the worker is gone, even when it was killed with
 * SIGKILL. Each task runs in a process group of its own whose leader dies with the
 * worker (PR_SET_PDEATHSIG); the rest of the group (a shell's background jobs, a
 * pipeline) would survive as orphans, running alongside the task's rerun. The worker
 * forks the guard at start and tells it, through a socket pair (a send to a guard that
 * is gone fails with EPIPE instead of raising SIGPIPE), the group of every task it
 * spawns; the guard drops groups that have emptied (checked every second) and, when
 * its end reaches end-of-file (the worker exited or was killed), sends SIGKILL to
 * every group still there. The guard is in a session of its own, so a Ctrl-C or a
 * signal to the worker's process group does not take it along, and it uses only
 * async-signal-safe calls and static memory, so it may be forked at any time. */
#include "wk.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hq_log.h"

#define S_MAX_GROUPS 16384 /* groups tracked at once (running and lingering tasks) */

static pid_t s_groups[S_MAX_GROUPS];
static uint32_t s_n;

/* Forgets the groups without a process left. */
static void s_prune(void)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < s_n; i++)
        if (kill(-s_groups[i], 0) == 0 || errno != ESRCH)
            s_groups[k++] = s_groups[i];
    s_n = k;
}

static void s_add(pid_t pgid)
{
    if (pgid <= 1)
        return;
    if (s_n == S_MAX_GROUPS)
        s_prune();
    if (s_n < S_MAX_GROUPS)
        s_groups[s_n++] = pgid;
}

static void s_run(int rfd)
{
    setsid();
    prctl(PR_SET_NAME, "hq-orphan-guard");
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGTSTP, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        if (null > 2)
            close(null);
    }
    int32_t buf[512];
    size_t have = 0; /* bytes of a partial record at the front of buf */
    for (;;) {
        struct pollfd p = {.fd = rfd, .events = POLLIN};
        int n = poll(&p, 1, 1000);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0) {
            ssize_t r = read(rfd, (char *)buf + have, sizeof buf - have);
            if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
                break; /* the worker is gone */
            if (r > 0) {
                have += (size_t)r;
                size_t whole = have / sizeof(int32_t);
                for (size_t i = 0; i < whole; i++)
                    s_add((pid_t)buf[i]);
                size_t rest = have % sizeof(int32_t);
                memmove(buf, (char *)buf + whole * sizeof(int32_t), rest);
                have = rest;
            }
        }
        s_prune();
    }
    s_prune();
    for (uint32_t i = 0; i < s_n; i++)
        kill(-s_groups[i], SIGKILL);
    _exit(0);
}

int wk_guard_start(void)
{
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        close(fds[1]);
        s_run(fds[0]);
    }
    close(fds[0]);
    return fds[1];
}

void wk_guard_track(int guard_fd, pid_t pgid)
{
    if (guard_fd < 0 || pgid <= 1)
        return;
    int32_t rec = (int32_t)pgid;
    ssize_t r;
    do {
        r = send(guard_fd, &rec, sizeof rec, MSG_NOSIGNAL);
    } while (r < 0 && errno == EINTR);
    if (r != (ssize_t)sizeof rec)
        hq_warn("The orphan guard is gone: the processes task group %d leaves behind may "
                "outlive a killed worker",
                (int)pgid);
}
