/* Task processes: the environment of CLI.md §1.7, the spawn itself (own process
 * group, death signal tied to the worker, stdin/stdout/stderr redirection, exec
 * failures reported through a close-on-exec pipe) and the error texts of §0.2.
 * Spawning happens on the worker's main thread, which lives as long as the worker,
 * so PR_SET_PDEATHSIG fires exactly when the worker dies. */
#include "wk.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hq_util.h"

extern char **environ;

/* ---- environment ---- */

static int s_env_find(const wk_env_t *e, const char *key, size_t kl)
{
    for (uint32_t i = 0; i < e->n; i++)
        if (strncmp(e->vars[i], key, kl) == 0 && e->vars[i][kl] == '=')
            return (int)i;
    return -1;
}

void wk_env_set(wk_env_t *e, const char *key, const char *value)
{
    size_t kl = strlen(key);
    char *kv = hq_asprintf("%s=%s", key, value);
    int i = s_env_find(e, key, kl);
    if (i >= 0) {
        free(e->vars[i]);
        e->vars[i] = kv;
        return;
    }
    if (e->n + 2 > e->cap) {
        e->cap = e->cap ? e->cap * 2 : 64;
        e->vars = hq_realloc(e->vars, e->cap * sizeof *e->vars);
    }
    e->vars[e->n++] = kv;
    e->vars[e->n] = NULL;
}

const char *wk_env_get(const wk_env_t *e, const char *key)
{
    int i = s_env_find(e, key, strlen(key));
    return i >= 0 ? e->vars[i] + strlen(key) + 1 : NULL;
}

void wk_env_clear(wk_env_t *e)
{
    for (uint32_t i = 0; i < e->n; i++)
        free(e->vars[i]);
    free(e->vars);
    memset(e, 0, sizeof *e);
}

static bool s_user_set(const hq_task_def_t *d, const char *key)
{
    for (uint32_t i = 0; i < d->n_env; i++)
        if (strcmp(d->env[i].key, key) == 0)
            return true;
    return false;
}

static char *s_join_labels(const hq_ralloc_t *a)
{
    hq_buf_t b = {0};
    hq_buf_append(&b, "", 0);
    for (uint32_t i = 0; i < a->n_labels; i++)
        hq_buf_printf(&b, "%s%s", i ? "," : "", a->labels[i]);
    return b.data;
}

void wk_env_build(wk_env_t *e, const wk_task_ctx_t *ctx, const hq_assign_def_t *ad,
                  const hq_assign_task_t *t, const hq_ralloc_t *allocs, uint32_t n_allocs,
                  const char *task_dir)
{
    const hq_task_def_t *d = &ad->def;
    for (char **p = environ; p && *p; p++) {
        const char *eq = strchr(*p, '=');
        if (!eq || eq == *p)
            continue;
        char *key = hq_strndup(*p, (size_t)(eq - *p));
        wk_env_set(e, key, eq + 1);
        free(key);
    }
    for (uint32_t i = 0; i < d->n_env; i++)
        wk_env_set(e, d->env[i].key, d->env[i].value ? d->env[i].value : "");
    char num[32];
    snprintf(num, sizeof num, "%u", t->job_id);
    wk_env_set(e, "HQ_JOB_ID", num);
    snprintf(num, sizeof num, "%u", t->task_id);
    wk_env_set(e, "HQ_TASK_ID", num);
    snprintf(num, sizeof num, "%u", t->instance);
    wk_env_set(e, "HQ_INSTANCE_ID", num);
    wk_env_set(e, "HQ_SUBMIT_DIR", ad->submit_dir ? ad->submit_dir : "");
    if (t->has_entry)
        wk_env_set(e, "HQ_ENTRY", t->entry.data ? (const char *)t->entry.data : "");
    if (ctx->hq_path)
        wk_env_set(e, "HQ", ctx->hq_path);
    if (task_dir) {
        wk_env_set(e, "HQ_TASK_DIR", task_dir);
        char *ef = hq_asprintf("%s/hq-error", task_dir);
        wk_env_set(e, "HQ_ERROR_FILENAME", ef);
        free(ef);
    }
    if (t->n_nodes > 0) {
        snprintf(num, sizeof num, "%u", t->n_nodes);
        wk_env_set(e, "HQ_NUM_NODES", num);
        if (task_dir) {
            char *nf = hq_asprintf("%s/hq-nodefile", task_dir);
            char *hf = hq_asprintf("%s/hq-hostfile", task_dir);
            wk_env_set(e, "HQ_NODE_FILE", nf);
            wk_env_set(e, "HQ_HOST_FILE", hf);
            free(nf);
            free(hf);
        }
        return; /* multi-node tasks get no resource variables */
    }
    if (t->variant >= d->n_variants)
        return;
    const hq_rvariant_t *v = &d->variants[t->variant];
    if (d->n_variants > 1) {
        snprintf(num, sizeof num, "%u", t->variant);
        wk_env_set(e, "HQ_RESOURCE_VARIANT", num);
    }
    for (uint32_t i = 0; i < v->n_entries; i++) {
        char *env_name = hq_resource_env_name(v->entries[i].name);
        char *key = hq_asprintf("HQ_RESOURCE_REQUEST_%s", env_name);
        char *val = hq_rreq_format(&v->entries[i]);
        wk_env_set(e, key, val);
        free(key);
        free(val);
        free(env_name);
    }
    for (uint32_t i = 0; i < n_allocs; i++) {
        const hq_ralloc_t *a = &allocs[i];
        if (a->n_labels == 0)
            continue;
        char *labels = s_join_labels(a);
        char *env_name = hq_resource_env_name(a->name);
        char *key = hq_asprintf("HQ_RESOURCE_VALUES_%s", env_name);
        wk_env_set(e, key, labels);
        if (strcmp(a->name, "cpus") == 0) {
            wk_env_set(e, "HQ_CPUS", labels);
            if (a->amount % HQ_AMOUNT_ONE == 0 && !s_user_set(d, "OMP_NUM_THREADS")) {
                snprintf(num, sizeof num, "%lld", (long long)(a->amount / HQ_AMOUNT_ONE));
                wk_env_set(e, "OMP_NUM_THREADS", num);
            }
            if (d->pin == HQ_PIN_TASKSET) {
                wk_env_set(e, "HQ_PIN", "taskset");
            } else if (d->pin == HQ_PIN_OMP) {
                wk_env_set(e, "HQ_PIN", "omp");
                if (!s_user_set(d, "OMP_PROC_BIND"))
                    wk_env_set(e, "OMP_PROC_BIND", "close");
                if (!s_user_set(d, "OMP_PLACES")) {
                    char *places = hq_asprintf("{%s}", labels);
                    wk_env_set(e, "OMP_PLACES", places);
                    free(places);
                }
            }
        } else if (strcmp(a->name, "gpus/nvidia") == 0) {
            wk_env_set(e, "CUDA_VISIBLE_DEVICES", labels);
            wk_env_set(e, "CUDA_DEVICE_ORDER", "PCI_BUS_ID");
        } else if (strcmp(a->name, "gpus/amd") == 0) {
            wk_env_set(e, "ROCR_VISIBLE_DEVICES", labels);
        }
        free(key);
        free(env_name);
        free(labels);
    }
}

/* ---- error texts ---- */

char *wk_exit_error(int status)
{
    if (WIFEXITED(status)) {
        if (WEXITSTATUS(status) == 0)
            return NULL;
        return hq_asprintf("Program terminated with exit code %d.", WEXITSTATUS(status));
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        const char *abbrev = sigabbrev_np(sig);
        return hq_asprintf("Program terminated with exit code -1. Received signal %d (SIG%s).", sig,
                           abbrev ? abbrev : "UNKNOWN");
    }
    return hq_asprintf("Program terminated with an unknown status %d.", status);
}

char *wk_spawn_error(char *const *argv, int errnum)
{
    hq_buf_t b = {0};
    hq_buf_append(&b, "Cannot execute \"", 16);
    for (size_t i = 0; argv[i]; i++)
        hq_buf_printf(&b, "%s%s", i ? " " : "", argv[i]);
    hq_buf_printf(&b, "\": %s (os error %d)", strerror(errnum), errnum);
    const char *prog = argv[0] ? argv[0] : "";
    size_t pl = strlen(prog);
    bool is_sh = pl > 3 && strcmp(prog + pl - 3, ".sh") == 0;
    if (errnum == EACCES && is_sh)
        hq_buf_printf(&b,
                      "\nThe script that you have tried to execute (`%s`) is not executable. Try "
                      "making it executable or add a shebang line to it.",
                      prog);
    else if (errnum == ENOENT)
        hq_buf_printf(&b,
                      "\nThe program that you have tried to execute (`%s`) was not found. Check "
                      "that it exists and that it is in PATH.",
                      prog);
    return b.data;
}

/* ---- spawning ---- */

/* Resolves a bare program name against PATH (of the task's environment). Returns
 * the path (caller frees) or NULL with *errnum. Names with '/' are left to exec
 * (they may be relative to the task's cwd). */
static char *s_resolve(const char *prog, char **envp, int *errnum)
{
    if (strchr(prog, '/'))
        return hq_strdup(prog);
    if (!*prog) {
        *errnum = ENOENT;
        return NULL;
    }
    const char *path = NULL;
    for (char **p = envp; p && *p; p++)
        if (strncmp(*p, "PATH=", 5) == 0)
            path = *p + 5;
    if (!path)
        path = "/usr/local/bin:/usr/bin:/bin";
    int err = ENOENT;
    const char *seg = path;
    for (;;) {
        const char *colon = strchr(seg, ':');
        size_t sl = colon ? (size_t)(colon - seg) : strlen(seg);
        char *cand = sl ? hq_asprintf("%.*s/%s", (int)sl, seg, prog) : hq_strdup(prog);
        struct stat st;
        if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
            if (access(cand, X_OK) == 0)
                return cand;
            err = EACCES;
        }
        free(cand);
        if (!colon)
            break;
        seg = colon + 1;
    }
    *errnum = err;
    return NULL;
}

static int s_open_out(const char *path)
{
    if (!path)
        return open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (wk_mkdir_parents(path) != 0)
        return -1;
    return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
}

static int s_open_stdin(const uint8_t *data, uint32_t len)
{
    if (!data || len == 0)
        return open("/dev/null", O_RDONLY | O_CLOEXEC);
    int fd = memfd_create("hq-stdin", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    uint32_t off = 0;
    while (off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        off += (uint32_t)n;
    }
    if (lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

#if defined(__SANITIZE_ADDRESS__)
#define WK_NO_VFORK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WK_NO_VFORK 1
#endif
#endif

/* vfork + exec in a function of its own, so that the compiler keeps nothing the
 * child could clobber in the caller's registers. */
__attribute__((noinline)) static pid_t s_fork_exec(const char *path, const wk_spawn_t *s,
                                                   const int fds[3], int errfd)
{
    pid_t parent = getpid();
    sigset_t none;
    sigemptyset(&none);
#ifdef WK_NO_VFORK
    pid_t pid = fork();
#else
    pid_t pid = vfork();
#endif
    if (pid != 0)
        return pid;
    /* Child: only async-signal-safe system calls from here on. */
    int e;
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(127);
    setpgid(0, 0);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    if (dup2(fds[0], 0) < 0 || dup2(fds[1], 1) < 0 || dup2(fds[2], 2) < 0)
        goto fail;
    if (s->cwd && *s->cwd && chdir(s->cwd) != 0)
        goto fail;
    execve(path, s->argv, s->envp);
    if (errno == ENOEXEC) {
        /* Like execvp: run a script without a shebang line with /bin/sh. */
        size_t n = 0;
        while (s->argv[n])
            n++;
        if (n < 256) {
            char *shargv[256 + 2];
            shargv[0] = "/bin/sh";
            shargv[1] = (char *)path;
            for (size_t i = 1; i <= n; i++)
                shargv[i + 1] = s->argv[i];
            execve("/bin/sh", shargv, s->envp);
        }
    }
fail:
    e = errno;
    if (write(errfd, &e, sizeof e) < 0)
        _exit(127);
    _exit(127);
}

pid_t wk_spawn(const wk_spawn_t *s, char **error)
{
    int fds[3] = {-1, -1, -1};
    int pfd[2] = {-1, -1};
    pid_t pid = -1;
    int errnum = 0;
    char *path = s_resolve(s->argv[0], s->envp, &errnum);
    if (!path) {
        *error = wk_spawn_error(s->argv, errnum);
        return -1;
    }
    if (s->cwd && *s->cwd) {
        char *probe = hq_asprintf("%s/.", s->cwd);
        int rc = wk_mkdir_parents(probe);
        free(probe);
        if (rc != 0) {
            *error = wk_spawn_error(s->argv, errno);
            free(path);
            return -1;
        }
    }
    fds[0] = s_open_stdin(s->stdin_data, s->stdin_len);
    if (fds[0] < 0) {
        *error = hq_asprintf("Cannot prepare stdin: %s", strerror(errno));
        goto out;
    }
    fds[1] = s_open_out(s->out);
    if (fds[1] < 0) {
        *error = hq_asprintf("Cannot open stdout file \"%s\": %s (os error %d)",
                             s->out ? s->out : "/dev/null", strerror(errno), errno);
        goto out;
    }
    fds[2] = s->err && s->out && strcmp(s->err, s->out) == 0 ? dup(fds[1]) : s_open_out(s->err);
    if (fds[2] < 0) {
        *error = hq_asprintf("Cannot open stderr file \"%s\": %s (os error %d)",
                             s->err ? s->err : "/dev/null", strerror(errno), errno);
        goto out;
    }
    if (pipe2(pfd, O_CLOEXEC) != 0) {
        *error = wk_spawn_error(s->argv, errno);
        goto out;
    }
    pid = s_fork_exec(path, s, fds, pfd[1]);
    if (pid < 0) {
        *error = wk_spawn_error(s->argv, errno);
        goto out;
    }
    close(pfd[1]);
    pfd[1] = -1;
    /* Also set the group from the parent: no window where a kill misses it. */
    setpgid(pid, pid);
    int child_err = 0;
    ssize_t n;
    do {
        n = read(pfd[0], &child_err, sizeof child_err);
    } while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof child_err) {
        *error = wk_spawn_error(s->argv, child_err);
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        pid = -1;
    }
out:
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (pfd[0] >= 0)
        close(pfd[0]);
    if (pfd[1] >= 0)
        close(pfd[1]);
    free(path);
    return pid;
}
