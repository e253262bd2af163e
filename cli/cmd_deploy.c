/* `hq worker deploy-ssh [--show-output] HOSTFILE [worker start args...]`: starts one
 * `ssh <host> -t -t [-p <port>] -- <this hq> worker start <args>` per host of the host
 * file (hostfile.c), run directly (no local shell), and waits for all of them. The
 * forced pseudo-terminal ties each remote worker to its ssh connection: when ssh ends
 * (this command is interrupted or terminated, which it passes on to its ssh
 * processes), the remote worker gets a hangup. A worker that ends with a non-zero
 * code is logged as `Worker exited with code N`. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "hostfile.h"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_util.h"

extern char **environ;

/* One ssh process. */
typedef struct s_child {
    const hq_host_t *host;
    pid_t pid;   /* 0 before the start */
    FILE *err;   /* ssh's own messages (without --show-output), or NULL */
    bool done;   /* reaped */
    int code;    /* exit code, or -1 when killed by a signal */
    int signo;   /* the signal that killed it, or 0 */
    char *cause; /* why it failed (for the final error), or NULL */
} s_child_t;

/* The running ssh processes, for the signal handler: it passes SIGINT, SIGTERM and
 * SIGHUP on to them as SIGTERM. A slot is cleared (with those signals blocked) when
 * its process is reaped. */
static pid_t *volatile s_pids;
static volatile size_t s_npids;
static volatile sig_atomic_t s_stop_signal;
static const int s_forwarded[] = {SIGINT, SIGTERM, SIGHUP};
#define S_NFORWARDED (sizeof s_forwarded / sizeof s_forwarded[0])

static void s_terminate_children(void)
{
    for (size_t i = 0; i < s_npids; i++)
        if (s_pids[i] > 0)
            kill(s_pids[i], SIGTERM);
}

static void s_on_signal(int signo)
{
    int saved = errno;
    s_stop_signal = signo;
    s_terminate_children();
    errno = saved;
}

static void s_forwarded_set(sigset_t *set)
{
    sigemptyset(set);
    for (size_t i = 0; i < S_NFORWARDED; i++)
        sigaddset(set, s_forwarded[i]);
}

/* The absolute path of the running hq, or NULL. */
static char *s_self_path(void)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    return hq_strdup(buf);
}

/* Starts ssh for child c. Returns 0, or an errno value. */
static int s_spawn(s_child_t *c, char **argv, bool show_output)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    /* The workers never read: a local terminal stays untouched (not put in raw mode). */
    posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (!show_output) {
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        c->err = tmpfile();
        if (c->err) {
            fcntl(fileno(c->err), F_SETFD, FD_CLOEXEC);
            posix_spawn_file_actions_adddup2(&fa, fileno(c->err), STDERR_FILENO);
        }
    }
    sigset_t def;
    sigset_t none;
    s_forwarded_set(&def);
    sigaddset(&def, SIGPIPE);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    int rc = posix_spawnp(&c->pid, argv[0], &fa, &at, argv, environ);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        c->pid = 0;
    return rc;
}

/* The last non-empty line ssh wrote to its stderr file (at most 512 bytes), or NULL. */
static char *s_last_message(FILE *f)
{
    if (!f || fseek(f, 0, SEEK_END) != 0)
        return NULL;
    long size = ftell(f);
    long from = size > 4096 ? size - 4096 : 0;
    if (size <= 0 || fseek(f, from, SEEK_SET) != 0)
        return NULL;
    char buf[4097];
    size_t n = fread(buf, 1, (size_t)(size - from), f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        n--;
    if (n == 0)
        return NULL;
    size_t start = n;
    while (start > 0 && buf[start - 1] != '\n')
        start--;
    if (n - start > 512)
        n = start + 512;
    return hq_strndup(buf + start, n - start);
}

/* Records the status of a reaped child and logs a failure. */
static void s_finished(s_child_t *c, int status, bool report)
{
    c->done = true;
    if (WIFEXITED(status)) {
        c->code = WEXITSTATUS(status);
    } else {
        c->code = -1;
        c->signo = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    if (c->code == 0 || !report)
        return;
    if (c->signo)
        hq_error("Worker exited with code -1 (ssh was killed by signal %d)", c->signo);
    else
        hq_error("Worker exited with code %d", c->code);
    char *msg = s_last_message(c->err);
    c->cause = hq_asprintf("%s: exit code %d%s%s", c->host->line, c->code, msg ? ": " : "",
                           msg ? msg : "");
    free(msg);
}

/* Reaps the started children; returns when all are done. */
static void s_wait_all(s_child_t *kids, size_t n, bool report)
{
    sigset_t forwarded;
    s_forwarded_set(&forwarded);
    size_t left = 0;
    for (size_t i = 0; i < n; i++)
        left += kids[i].pid > 0;
    while (left > 0) {
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break; /* ECHILD: nothing left to wait for */
        }
        for (size_t i = 0; i < n; i++) {
            if (kids[i].pid != pid || kids[i].done)
                continue;
            sigset_t old;
            sigprocmask(SIG_BLOCK, &forwarded, &old);
            s_pids[i] = 0;
            sigprocmask(SIG_SETMASK, &old, NULL);
            s_finished(&kids[i], status, report && !s_stop_signal);
            left--;
        }
    }
}

/* Starts and awaits one ssh per host. Returns the exit code. */
static int s_deploy(hq_cli_t *c, const hq_hostfile_t *hf, const char *hq_path, int nargs,
                    const char *const *args, bool show_output)
{
    s_child_t *kids = hq_calloc(hf->n, sizeof *kids);
    s_pids = hq_calloc(hf->n, sizeof *s_pids);
    s_npids = hf->n;
    s_stop_signal = 0;
    signal(SIGCHLD, SIG_DFL); /* an inherited SIG_IGN would reap the ssh processes for us */
    struct sigaction sa;
    struct sigaction old[S_NFORWARDED];
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < S_NFORWARDED; i++)
        sigaction(s_forwarded[i], &sa, &old[i]);

    char *spawn_error = NULL;
    sigset_t forwarded;
    sigset_t prev;
    s_forwarded_set(&forwarded);
    for (size_t i = 0; i < hf->n; i++) {
        kids[i].host = &hf->hosts[i];
        char **argv = hq_ssh_argv(&hf->hosts[i], hq_path, nargs, args);
        if (hq_log_enabled(HQ_LOG_DEBUG)) {
            hq_buf_t b = {0};
            for (char **p = argv; *p; p++)
                hq_buf_printf(&b, "%s%s", p == argv ? "" : " ", *p);
            hq_debug("Starting worker on %s: %s", hf->hosts[i].line, b.data);
            hq_buf_free(&b);
        }
        /* Checked and started with the signals blocked: a signal either came before
         * (nothing more is started) or finds the pid in s_pids. */
        sigprocmask(SIG_BLOCK, &forwarded, &prev);
        if (s_stop_signal) {
            sigprocmask(SIG_SETMASK, &prev, NULL);
            hq_ssh_argv_free(argv);
            break;
        }
        int rc = s_spawn(&kids[i], argv, show_output);
        s_pids[i] = kids[i].pid;
        sigprocmask(SIG_SETMASK, &prev, NULL);
        hq_ssh_argv_free(argv);
        if (rc != 0) {
            spawn_error =
                hq_asprintf("Cannot run ssh for host '%s': %s", hf->hosts[i].line, strerror(rc));
            s_terminate_children();
            break;
        }
    }
    s_wait_all(kids, hf->n, spawn_error == NULL);

    for (size_t i = 0; i < S_NFORWARDED; i++)
        sigaction(s_forwarded[i], &old[i], NULL);
    const char **causes = hq_calloc(hf->n + 1, sizeof *causes);
    int nfailed = 0;
    for (size_t i = 0; i < hf->n; i++)
        if (kids[i].cause)
            causes[nfailed++] = kids[i].cause;
    int rc = 0;
    if (spawn_error) {
        rc = hq_cli_error(c, "%s", spawn_error);
    } else if (nfailed > 0) {
        char *top = hq_asprintf("Workers on %d of %zu hosts failed", nfailed, hf->n);
        char *text = hq_error_with_causes(top, causes, nfailed);
        rc = hq_cli_error(c, "%s", text);
        free(text);
        free(top);
    } else if (s_stop_signal) {
        hq_info("Workers stopped after signal %d", (int)s_stop_signal);
    }
    free(causes);
    free(spawn_error);
    for (size_t i = 0; i < hf->n; i++) {
        if (kids[i].err)
            fclose(kids[i].err);
        free(kids[i].cause);
    }
    free(kids);
    s_npids = 0;
    free(s_pids);
    s_pids = NULL;
    return rc;
}

int hq_cmd_worker_deploy_ssh(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "worker deploy-ssh", argc, argv);
    if (rc >= 0)
        return rc;
    const char *path = hq_args_pos(c.args, 0);
    /* As with clap, --show-output may also come right after HOSTFILE; the worker's
     * arguments start at the first other word. */
    bool show_output = hq_args_has(c.args, "show-output");
    size_t first = 1;
    while (first < hq_args_npos(c.args) &&
           strcmp(hq_args_pos(c.args, first), "--show-output") == 0) {
        show_output = true;
        first++;
    }
    int nargs = (int)(hq_args_npos(c.args) - first);
    const char **args = hq_calloc((size_t)nargs + 1, sizeof *args);
    for (int i = 0; i < nargs; i++)
        args[i] = hq_args_pos(c.args, first + (size_t)i);

    /* A typo in the worker's flags is reported here once, not by every remote worker. */
    hq_err_t err;
    hq_args_t *wa = hq_cmd_parse(hq_cmd_find("worker start"), nargs, (char **)args, &err);
    hq_hostfile_t hf = {0};
    char *self = NULL;
    if (!wa) {
        rc = hq_cli_usage_error(err.text);
    } else if (hq_hostfile_read(path, &hf, &err) != 0) {
        rc = hq_cli_error(&c, "%s", err.text);
    } else if (!(self = s_self_path())) {
        rc = hq_cli_error(&c, "Cannot find the path of the running hq: %s", strerror(errno));
    } else {
        rc = s_deploy(&c, &hf, self, nargs, args, show_output);
        if (rc == 0)
            hq_output_finish(&c.g);
    }
    free(self);
    hq_hostfile_clear(&hf);
    hq_args_destroy(&wa);
    free(args);
    hq_cli_end(&c);
    return rc;
}
