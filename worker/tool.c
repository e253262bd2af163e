/* Running a small external tool with a deadline and reading its standard output: one
 * implementation for the batch-system queries (manager.c) and the GPU tools
 * (overview.c). */
#define HQ_LOG_MODULE "hq::worker"
#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hq_duration.h"
#include "hq_log.h"
#include "hq_util.h"

extern char **environ;

char *wk_tool_output(char *const argv[], uint64_t timeout_ms, size_t max_output)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t none; /* the worker blocks the signals it reads from a signalfd */
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setpgroup(&at, 0); /* its own group: a timeout kills all it started */
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(pfd[1]);
    if (rc != 0) {
        close(pfd[0]);
        return NULL;
    }
    hq_buf_t b = {0};
    hq_buf_append(&b, "", 0);
    uint64_t deadline = hq_mono_ns() + timeout_ms * HQ_NS_PER_MS;
    bool timed_out = false, too_long = false;
    for (;;) {
        uint64_t now = hq_mono_ns();
        if (now >= deadline) {
            timed_out = true;
            break;
        }
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int pr = poll(&p, 1, (int)((deadline - now) / HQ_NS_PER_MS) + 1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            break;
        if (pr == 0)
            continue; /* the deadline check above ends it */
        char buf[4096];
        ssize_t n = read(pfd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (b.len + (size_t)n > max_output) {
            too_long = true;
            break;
        }
        hq_buf_append(&b, buf, (size_t)n);
    }
    close(pfd[0]);
    if (timed_out || too_long) {
        kill(-pid, SIGKILL);
        if (timed_out)
            hq_warn("%s did not answer within %llu ms; its output is not used", argv[0],
                    (unsigned long long)timeout_ms);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (timed_out || too_long || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        hq_buf_free(&b);
        return NULL;
    }
    return b.data;
}
