/* Baseline for the worker benchmarks: how fast can this machine start and reap
 * short processes with nothing in between? K spawner threads each run
 * posix_spawn + waitpid in a loop until N tasks in total have run, optionally
 * giving every task its own stdout and stderr file (as an hq worker does with the
 * default `job-<id>/<task>.stdout|stderr` paths). Prints tasks/s.
 *
 * --loop is the shape of a single-threaded event-loop worker instead: one thread
 * keeps K children running, spawning each (blocked in posix_spawn until the child
 * has exec'd) and reaping with waitpid(-1). Comparing the two modes shows how much
 * a single spawning thread costs on its own, without any protocol.
 *
 *   spawn_direct [-n N] [-k K] [--files DIR] [--program PATH] [--pgroup] [--loop]
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef struct s_conf {
    uint64_t n;          /* tasks in total */
    unsigned k;          /* concurrent spawners */
    const char *files;   /* directory for per-task stdout/stderr, or NULL */
    const char *program; /* program to run */
    bool pgroup;         /* put each task in its own process group (like hq) */
    bool loop;           /* one thread keeps k children running */
} s_conf_t;

typedef struct s_spawner {
    const s_conf_t *conf;
    _Atomic uint64_t *next; /* shared task counter */
    uint64_t done;          /* tasks this spawner ran */
    uint64_t failed;        /* spawn errors or non-zero exits */
    uint64_t spawn_ns;      /* time spent inside posix_spawn (blocked until exec) */
    pthread_t thread;
} s_spawner_t;

static uint64_t s_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Starts one task; *pid is set on success. Adds the time spent blocked in
 * posix_spawn to *spawn_ns. */
static int s_spawn_one(const s_conf_t *conf, uint64_t task, pid_t *pid, uint64_t *spawn_ns)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    char out_path[4096], err_path[4096];
    char *argv[] = {(char *)conf->program, NULL};

    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    if (conf->files) {
        snprintf(out_path, sizeof out_path, "%s/%llu.stdout", conf->files,
                 (unsigned long long)task);
        snprintf(err_path, sizeof err_path, "%s/%llu.stderr", conf->files,
                 (unsigned long long)task);
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    } else {
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    }
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (conf->pgroup) {
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
        posix_spawnattr_setpgroup(&attr, 0);
    }
    uint64_t t0 = s_mono_ns();
    int rc = posix_spawn(pid, conf->program, &fa, &attr, argv, environ);
    *spawn_ns += s_mono_ns() - t0;
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    return rc == 0 ? 0 : -1;
}

static bool s_status_ok(int status)
{
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int s_run_one(const s_conf_t *conf, uint64_t task, uint64_t *spawn_ns)
{
    pid_t pid;
    int status = 0;
    if (s_spawn_one(conf, task, &pid, spawn_ns) != 0)
        return -1;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR)
            return -1;
    }
    return s_status_ok(status) ? 0 : -1;
}

/* --loop: one thread, k children in flight, reaped in any order. */
static void s_run_loop(const s_conf_t *conf, s_spawner_t *sp)
{
    uint64_t next = 0;
    unsigned running = 0;
    while (next < conf->n || running > 0) {
        while (running < conf->k && next < conf->n) {
            pid_t pid;
            next++;
            if (s_spawn_one(conf, next, &pid, &sp->spawn_ns) != 0) {
                sp->failed++;
                sp->done++;
                continue;
            }
            running++;
        }
        if (running == 0)
            break;
        int status = 0;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        running--;
        sp->done++;
        if (!s_status_ok(status))
            sp->failed++;
    }
}

static void *s_spawner_run(void *arg)
{
    s_spawner_t *sp = arg;
    for (;;) {
        uint64_t task = atomic_fetch_add(sp->next, 1);
        if (task >= sp->conf->n)
            break;
        if (s_run_one(sp->conf, task + 1, &sp->spawn_ns) != 0)
            sp->failed++;
        sp->done++;
    }
    return NULL;
}

static void s_usage(void)
{
    fprintf(stderr, "usage: spawn_direct [-n N] [-k K] [--files DIR] [--program PATH] "
                    "[--pgroup] [--loop]\n");
}

static int s_parse_u64(const char *s, uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || !end || *end || end == s || v == 0)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    s_conf_t conf = {.n = 5000, .k = 2, .files = NULL, .program = "/bin/true"};
    uint64_t k = 2;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (strcmp(a, "-n") == 0 && has_val) {
            if (s_parse_u64(argv[++i], &conf.n) != 0)
                return s_usage(), 2;
        } else if (strcmp(a, "-k") == 0 && has_val) {
            if (s_parse_u64(argv[++i], &k) != 0 || k > 1024)
                return s_usage(), 2;
        } else if (strcmp(a, "--files") == 0 && has_val) {
            conf.files = argv[++i];
        } else if (strcmp(a, "--program") == 0 && has_val) {
            conf.program = argv[++i];
        } else if (strcmp(a, "--pgroup") == 0) {
            conf.pgroup = true;
        } else if (strcmp(a, "--loop") == 0) {
            conf.loop = true;
        } else {
            s_usage();
            return 2;
        }
    }
    conf.k = (unsigned)k;
    if (conf.files && mkdir(conf.files, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "spawn_direct: cannot create %s: %s\n", conf.files, strerror(errno));
        return 1;
    }

    _Atomic uint64_t next = 0;
    s_spawner_t *sp = calloc(conf.k, sizeof *sp);
    if (!sp)
        return 1;
    uint64_t t0 = s_mono_ns();
    unsigned started = 0;
    if (conf.loop) {
        sp[0].conf = &conf;
        s_run_loop(&conf, &sp[0]);
    }
    for (unsigned i = 0; i < conf.k && !conf.loop; i++) {
        sp[i].conf = &conf;
        sp[i].next = &next;
        if (pthread_create(&sp[i].thread, NULL, s_spawner_run, &sp[i]) != 0)
            break;
        started++;
    }
    if (started == 0 && !conf.loop) {
        fprintf(stderr, "spawn_direct: cannot start threads\n");
        free(sp);
        return 1;
    }
    uint64_t done = 0, failed = 0, spawn_ns = 0;
    for (unsigned i = 0; i < (conf.loop ? 1 : started); i++) {
        if (!conf.loop)
            pthread_join(sp[i].thread, NULL);
        done += sp[i].done;
        failed += sp[i].failed;
        spawn_ns += sp[i].spawn_ns;
    }
    uint64_t t1 = s_mono_ns();
    free(sp);

    struct rusage self_ru, child_ru;
    getrusage(RUSAGE_SELF, &self_ru);
    getrusage(RUSAGE_CHILDREN, &child_ru);
    double self_cpu = (double)self_ru.ru_utime.tv_sec + (double)self_ru.ru_utime.tv_usec / 1e6 +
                      (double)self_ru.ru_stime.tv_sec + (double)self_ru.ru_stime.tv_usec / 1e6;
    double child_cpu = (double)child_ru.ru_utime.tv_sec + (double)child_ru.ru_utime.tv_usec / 1e6 +
                       (double)child_ru.ru_stime.tv_sec + (double)child_ru.ru_stime.tv_usec / 1e6;

    double secs = (double)(t1 - t0) / 1e9;
    printf("spawn_direct tasks=%llu mode=%s spawners=%u files=%s failed=%llu self_cpu_s=%.3f "
           "children_cpu_s=%.3f spawn_call_us=%.1f seconds=%.3f tasks_per_s=%.1f\n",
           (unsigned long long)done, conf.loop ? "loop" : "threads", conf.loop ? conf.k : started,
           conf.files ? "yes" : "no", (unsigned long long)failed, self_cpu, child_cpu,
           done ? (double)spawn_ns / 1e3 / (double)done : 0.0, secs,
           secs > 0 ? (double)done / secs : 0.0);
    return failed ? 1 : 0;
}
