/* Task processes: the environment of cli/REFERENCE.md §1.7, the spawn itself (own process
 * group, death signal tied to the worker, stdin/stdout/stderr redirection, exec
 * failures written by the vfork child into the suspended parent's memory) and the
 * error texts of cli/REFERENCE.md §0.2.
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

/* The worker's environ as "K=V" entries with unique keys, rebuilt only when environ
 * changed (checked by comparing the entry pointers, which setenv/putenv replace). */
static wk_env_t s_base;
static char **s_base_src; /* copy of the environ pointers the cache was built from */
static size_t s_base_nsrc;

static const wk_env_t *s_environ_base(void)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    bool same = s_base_src && n == s_base_nsrc;
    for (size_t i = 0; same && i < n; i++)
        same = s_base_src[i] == environ[i];
    if (same)
        return &s_base;
    wk_env_clear(&s_base);
    free(s_base_src);
    s_base_src = hq_malloc((n + 1) * sizeof *s_base_src);
    s_base_nsrc = n;
    for (size_t i = 0; i < n; i++) {
        s_base_src[i] = environ[i];
        const char *eq = strchr(environ[i], '=');
        if (!eq || eq == environ[i])
            continue;
        char *key = hq_strndup(environ[i], (size_t)(eq - environ[i]));
        wk_env_set(&s_base, key, eq + 1);
        free(key);
    }
    return &s_base;
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
    const wk_env_t *base = s_environ_base();
    if (e->n == 0) {
        /* The usual case: copy the deduplicated environ without any lookups. */
        if (e->cap < base->n + 1) {
            e->cap = base->n + 32;
            e->vars = hq_realloc(e->vars, e->cap * sizeof *e->vars);
        }
        for (uint32_t i = 0; i < base->n; i++)
            e->vars[i] = hq_strdup(base->vars[i]);
        e->n = base->n;
        e->vars[e->n] = NULL;
    } else {
        for (uint32_t i = 0; i < base->n; i++) {
            const char *eq = strchr(base->vars[i], '=');
            char *key = hq_strndup(base->vars[i], (size_t)(eq - base->vars[i]));
            wk_env_set(e, key, eq + 1);
            free(key);
        }
    }
    /* `hq task notify` (and any hq command of the task) reaches this worker's broker. */
    if (ctx->server_dir)
        wk_env_set(e, "HQ_SERVER_DIR", ctx->server_dir);
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

/* Appends s as Rust's Debug formatting of a string shows it: in double quotes, with
 * quotes, backslashes and control characters escaped. */
void wk_debug_str(hq_buf_t *b, const char *s)
{
    hq_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            hq_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            hq_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            hq_buf_append(b, "\\n", 2);
            break;
        case '\r':
            hq_buf_append(b, "\\r", 2);
            break;
        case '\t':
            hq_buf_append(b, "\\t", 2);
            break;
        default:
            if (*p < 0x20 || *p == 0x7f)
                hq_buf_printf(b, "\\u{%x}", *p);
            else
                hq_buf_append(b, (const char *)p, 1);
        }
    }
    hq_buf_append(b, "\"", 1);
}

char *wk_spawn_error(char *const *argv, const char *cwd, int errnum)
{
    hq_buf_t b = {0};
    hq_buf_t joined = {0};
    hq_buf_append(&joined, "", 0);
    for (size_t i = 0; argv[i]; i++)
        hq_buf_printf(&joined, "%s%s", i ? " " : "", argv[i]);
    hq_buf_append(&b, "Cannot execute ", 15);
    wk_debug_str(&b, joined.data);
    free(joined.data);
    hq_buf_printf(&b, ": %s (os error %d)", strerror(errnum), errnum);
    const char *prog = argv[0] ? argv[0] : "";
    size_t pl = strlen(prog);
    bool is_sh = pl > 3 && strcmp(prog + pl - 3, ".sh") == 0;
    if (errnum == EACCES && is_sh) {
        hq_buf_printf(&b,
                      "\nThe script that you have tried to execute (`%s`) is not executable."
                      "\nTry making it executable or add a shebang line to it.",
                      prog);
    } else if (errnum == ENOENT) {
        hq_buf_printf(&b, "\nThe program that you have tried to execute (`%s`) was not found.",
                      prog);
        /* A bare name that is a file in the working directory: the user probably
         * meant ./name (PATH is not searched in the working directory). */
        char here[4096];
        if (!cwd || !*cwd)
            cwd = getcwd(here, sizeof here);
        struct stat st;
        if (*prog && !strchr(prog, '/') && cwd) {
            char *cand = hq_asprintf("%s%s%s", cwd, cwd[strlen(cwd) - 1] == '/' ? "" : "/", prog);
            if (stat(cand, &st) == 0 && !S_ISDIR(st.st_mode))
                hq_buf_printf(&b, "\nThe file `%s` exists, maybe you have meant `./%s` instead?",
                              cand, prog);
            free(cand);
        }
    }
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

/* One /dev/null descriptor for every task without a stdio file, opened on first use
 * and kept for the life of the process (close-on-exec; the child dup2s it). */
static int s_devnull_fd = -1;

static int s_devnull(void)
{
    if (s_devnull_fd < 0)
        s_devnull_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    return s_devnull_fd;
}

/* Opens an output file. The parent directory is created only when the open says it
 * is missing, so the common case costs one open and no stat. */
static int s_open_out(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd >= 0 || errno != ENOENT)
        return fd;
    if (wk_mkdir_parents(path) != 0)
        return -1;
    return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
}

static int s_open_stdin(const uint8_t *data, uint32_t len)
{
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

/* The last working directory known to exist: checking (and creating) it once per
 * directory instead of once per task saves a stat per spawn. If it disappears
 * later, the child's chdir fails with ENOENT and the spawn is retried once after
 * creating it again. */
static char *s_cwd_ok;

static int s_ensure_cwd(const char *cwd)
{
    if (s_cwd_ok && strcmp(s_cwd_ok, cwd) == 0)
        return 0;
    char *probe = hq_asprintf("%s/.", cwd);
    int rc = wk_mkdir_parents(probe);
    free(probe);
    if (rc != 0)
        return -1;
    free(s_cwd_ok);
    s_cwd_ok = hq_strdup(cwd);
    return 0;
}

#if defined(__SANITIZE_ADDRESS__)
#define WK_NO_VFORK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WK_NO_VFORK 1
#endif
#endif

/* What the child reports when it cannot exec: with vfork it writes straight into
 * the parent's memory (the parent is suspended until the child execs or exits);
 * with fork (sanitizer builds) the same bytes travel through a close-on-exec pipe. */
typedef struct s_child_err {
    int errnum; /* 0 = exec succeeded */
    int chdir;  /* the failure was the chdir to the task's cwd */
} s_child_err_t;

/* vfork + exec in a function of its own, so that the compiler keeps nothing the
 * child could clobber in the caller's registers. */
__attribute__((noinline)) static pid_t s_fork_exec(const char *path, const wk_spawn_t *s,
                                                   const int fds[3], volatile s_child_err_t *ce,
                                                   int errfd)
{
    pid_t parent = getpid();
    sigset_t none;
    sigemptyset(&none);
#ifdef WK_NO_VFORK
    pid_t pid = fork();
#else
    (void)errfd;
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
    if (s->cwd && *s->cwd && chdir(s->cwd) != 0) {
        ce->chdir = 1;
        goto fail;
    }
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
    ce->errnum = e ? e : EINVAL;
#ifdef WK_NO_VFORK
    {
        s_child_err_t copy = {.errnum = ce->errnum, .chdir = ce->chdir};
        if (write(errfd, &copy, sizeof copy) < 0)
            _exit(127);
    }
#endif
    _exit(127);
}

/* One spawn attempt. Returns the pid, or -1 with *ce filled (child-side failure)
 * or *ce->errnum = 0 and errno set (parent-side failure). */
static pid_t s_spawn_once(const char *path, const wk_spawn_t *s, const int fds[3],
                          s_child_err_t *ce)
{
    volatile s_child_err_t shared = {0, 0};
    int pfd[2] = {-1, -1};
    ce->errnum = 0;
    ce->chdir = 0;
#ifdef WK_NO_VFORK
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return -1;
#endif
    pid_t pid = s_fork_exec(path, s, fds, &shared, pfd[1]);
    int fork_errno = errno;
#ifdef WK_NO_VFORK
    close(pfd[1]);
    if (pid > 0) {
        /* fork: set the group from the parent too, so no kill can miss it. */
        setpgid(pid, pid);
        s_child_err_t got;
        ssize_t n;
        do {
            n = read(pfd[0], &got, sizeof got);
        } while (n < 0 && errno == EINTR);
        if (n == (ssize_t)sizeof got)
            *ce = got;
    }
    close(pfd[0]);
#else
    /* vfork: the child has exec'd (its own setpgid is done) or has exited. */
    if (pid > 0) {
        ce->errnum = shared.errnum;
        ce->chdir = shared.chdir;
    }
#endif
    if (pid < 0) {
        errno = fork_errno;
        return -1;
    }
    if (ce->errnum) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        return -1;
    }
    return pid;
}

pid_t wk_spawn(const wk_spawn_t *s, char **error)
{
    int fds[3] = {-1, -1, -1};
    bool own[3] = {false, false, false};
    pid_t pid = -1;
    int errnum = 0;
    char *path = s_resolve(s->argv[0], s->envp, &errnum);
    if (!path) {
        *error = wk_spawn_error(s->argv, s->cwd, errnum);
        return -1;
    }
    if (s->cwd && *s->cwd && s_ensure_cwd(s->cwd) != 0) {
        *error = wk_spawn_error(s->argv, s->cwd, errno);
        free(path);
        return -1;
    }
    if (s->stdin_data && s->stdin_len > 0) {
        fds[0] = s_open_stdin(s->stdin_data, s->stdin_len);
        own[0] = true;
    } else {
        fds[0] = s_devnull();
    }
    if (fds[0] < 0) {
        *error = hq_asprintf("Cannot prepare stdin: %s", strerror(errno));
        goto out;
    }
    if (s->out_pipe > 0) {
        fds[1] = s->out_pipe - 1;
    } else if (s->out) {
        fds[1] = s_open_out(s->out);
        own[1] = true;
    } else {
        fds[1] = s_devnull();
    }
    if (fds[1] < 0) {
        *error = hq_asprintf("Cannot open stdout file \"%s\": %s (os error %d)",
                             s->out ? s->out : "/dev/null", strerror(errno), errno);
        goto out;
    }
    if (s->err_pipe > 0) {
        fds[2] = s->err_pipe - 1;
    } else if (s->err && s->out && strcmp(s->err, s->out) == 0) {
        fds[2] = fds[1];
    } else if (s->err) {
        fds[2] = s_open_out(s->err);
        own[2] = true;
    } else {
        fds[2] = s_devnull();
    }
    if (fds[2] < 0) {
        *error = hq_asprintf("Cannot open stderr file \"%s\": %s (os error %d)",
                             s->err ? s->err : "/dev/null", strerror(errno), errno);
        goto out;
    }
    s_child_err_t ce;
    pid = s_spawn_once(path, s, fds, &ce);
    if (pid < 0 && ce.chdir && ce.errnum == ENOENT && s_cwd_ok) {
        /* The cached cwd was removed since it was checked: create it and retry. */
        free(s_cwd_ok);
        s_cwd_ok = NULL;
        if (s_ensure_cwd(s->cwd) == 0)
            pid = s_spawn_once(path, s, fds, &ce);
    }
    if (pid < 0)
        *error = wk_spawn_error(s->argv, s->cwd, ce.errnum ? ce.errnum : errno);
out:
    for (int i = 0; i < 3; i++)
        if (own[i] && fds[i] >= 0)
            close(fds[i]);
    free(path);
    return pid;
}
