/* The worker end to end against a fake broker in the test process: registration,
 * pull with credit, batched STARTED/FINISHED/FAILED events, time limits, cancel and
 * STOP. The worker runs hq_worker_main in a forked child (forked before any ZeroMQ
 * thread exists). */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <czmq.h>

#include "hq_access.h"
#include "hq_msg.h"
#include "hq_util.h"
#include "wk.h"
#include "worker.h"

typedef struct fake {
    char dir[64];    /* server dir */
    pid_t pid;       /* the worker process */
    zsock_t *router; /* the fake broker socket */
    zframe_t *peer;  /* the worker's routing id */
    uint64_t seq;    /* our sequence number */
    uint32_t credit; /* last credit */
    uint32_t finished, failed, canceled, started;
    char *last_error; /* error text of the last FAILED */
} fake_t;

static void s_start(fake_t *f, const char *cpus, const char *extra)
{
    memset(f, 0, sizeof *f);
    strcpy(f->dir, "/tmp/hq-test-loopXXXXXX");
    cr_assert_not_null(mkdtemp(f->dir));
    int go[2];
    cr_assert_eq(pipe(go), 0);
    f->pid = fork();
    cr_assert_geq(f->pid, 0);
    if (f->pid == 0) {
        close(go[1]);
        char c;
        if (read(go[0], &c, 1) != 1)
            _exit(99);
        char *argv[16];
        int n = 0;
        argv[n++] = "--server-dir";
        argv[n++] = f->dir;
        argv[n++] = "--cpus";
        argv[n++] = (char *)cpus;
        argv[n++] = "--hostname";
        argv[n++] = "fakehost";
        argv[n++] = "--manager";
        argv[n++] = "none";
        if (extra) {
            argv[n++] = "--time-limit";
            argv[n++] = (char *)extra;
        }
        argv[n] = NULL;
        _exit(hq_worker_main(n, argv));
    }
    close(go[0]);
    f->router = zsock_new(ZMQ_ROUTER);
    int port = zsock_bind(f->router, "tcp://127.0.0.1:*");
    cr_assert_gt(port, 0);
    hq_access_t a;
    hq_access_generate(&a, "127.0.0.1", (uint16_t)port, "127.0.0.1", (uint16_t)port);
    a.worker.has_secret = false;
    a.client.has_secret = false;
    char path[128];
    snprintf(path, sizeof path, "%s/access.json", f->dir);
    hq_err_t err;
    cr_assert_eq(hq_access_write(path, &a, 3, &err), 0, "%s", err.text);
    cr_assert_eq(write(go[1], "g", 1), 1);
    close(go[1]);
}

static void s_send(fake_t *f, hq_msg_t *m, uint8_t type)
{
    m->hdr.version = HQ_PROTO_VERSION;
    m->hdr.type = type;
    m->hdr.epoch = 7;
    m->hdr.seq = ++f->seq;
    uint8_t *buf;
    size_t len;
    hq_err_t err;
    cr_assert_eq(hq_msg_encode(m, &buf, &len, &err), 0, "%s", err.text);
    zframe_t *id = zframe_dup(f->peer);
    zframe_send(&id, f->router, ZFRAME_MORE);
    zframe_t *body = zframe_new(buf, len);
    zframe_send(&body, f->router, 0);
    free(buf);
}

/* Receives one message (with a timeout) and accounts for its events. */
static hq_msg_t *s_recv(fake_t *f, int timeout_ms)
{
    zsock_set_rcvtimeo(f->router, timeout_ms);
    zmsg_t *zm = zmsg_recv(f->router);
    cr_assert_not_null(zm, "no message from the worker");
    zframe_t *id = zmsg_pop(zm);
    if (!f->peer)
        f->peer = id;
    else
        zframe_destroy(&id);
    zframe_t *body = zmsg_pop(zm);
    hq_err_t err;
    hq_msg_t *m = hq_msg_decode(zframe_data(body), zframe_size(body), &err);
    cr_assert_not_null(m, "%s", err.text);
    zframe_destroy(&body);
    zmsg_destroy(&zm);
    if (m->hdr.type == HQ_MSG_RESULTS) {
        cr_assert_eq(m->hdr.epoch, 7);
        f->credit = m->u.results.credit;
        for (uint32_t i = 0; i < m->u.results.n_events; i++) {
            const hq_task_event_t *e = &m->u.results.events[i];
            switch (e->kind) {
            case HQ_TEV_STARTED:
                f->started++;
                cr_assert_geq(e->n_allocs, 1);
                break;
            case HQ_TEV_FINISHED:
                f->finished++;
                break;
            case HQ_TEV_FAILED:
                f->failed++;
                free(f->last_error);
                f->last_error = strdup(e->error ? e->error : "");
                break;
            case HQ_TEV_CANCELED:
                f->canceled++;
                break;
            }
        }
    }
    return m;
}

static void s_register(fake_t *f)
{
    hq_msg_t *m = s_recv(f, 10000);
    cr_assert_eq(m->hdr.type, HQ_MSG_REGISTER);
    cr_assert_str_eq(m->u.reg.conf.hostname, "fakehost");
    cr_assert_str_eq(m->u.reg.conf.group, "default");
    cr_assert_eq(m->u.reg.conf.pid, (uint32_t)f->pid);
    cr_assert_str_eq(m->u.reg.conf.resources.res[0].name, "cpus");
    hq_msg_destroy(&m);
    hq_msg_t r = {0};
    r.u.registered.worker_id = 3;
    r.u.registered.server_uid = "srvUID";
    r.u.registered.heartbeat_ns = 8000000000ULL;
    s_send(f, &r, HQ_MSG_REGISTERED);
    m = s_recv(f, 5000);
    cr_assert_eq(m->hdr.type, HQ_MSG_RESULTS);
    cr_assert_gt(f->credit, 0);
    hq_msg_destroy(&m);
}

/* Assigns tasks [first, first+n) running argv with optional time limit. */
static void s_assign(fake_t *f, uint32_t first, uint32_t n, char **args, uint32_t nargs,
                     uint64_t limit_ns)
{
    hq_rreq_t req = {.name = "cpus", .amount = HQ_AMOUNT_ONE, .policy = HQ_POLICY_COMPACT};
    hq_rvariant_t var = {.n_entries = 1, .entries = &req, .weight = HQ_AMOUNT_ONE};
    hq_assign_def_t def = {.job_id = 1, .submit_dir = "/tmp"};
    def.def.n_args = nargs;
    def.def.args = args;
    def.def.cwd = "/tmp";
    def.def.out.kind = HQ_STDIO_NONE;
    def.def.err.kind = HQ_STDIO_NONE;
    def.def.n_variants = 1;
    def.def.variants = &var;
    def.def.time_limit_ns = limit_ns;
    hq_assign_task_t *tasks = calloc(n, sizeof *tasks);
    for (uint32_t i = 0; i < n; i++) {
        tasks[i].job_id = 1;
        tasks[i].task_id = first + i;
    }
    hq_msg_t m = {0};
    m.u.assign.n_defs = 1;
    m.u.assign.defs = &def;
    m.u.assign.n_tasks = n;
    m.u.assign.tasks = tasks;
    s_send(f, &m, HQ_MSG_ASSIGN);
    free(tasks);
}

static int s_stop(fake_t *f, uint32_t reason)
{
    hq_msg_t m = {0};
    m.u.goodbye.reason = reason;
    s_send(f, &m, HQ_MSG_STOP);
    int st;
    cr_assert_eq(waitpid(f->pid, &st, 0), f->pid);
    zframe_destroy(&f->peer);
    zsock_destroy(&f->router);
    free(f->last_error);
    wk_rm_tree(f->dir);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(worker_loop, runs_many_tasks_with_credit_and_stops_with_exit_0)
{
    fake_t f;
    s_start(&f, "2", NULL);
    s_register(&f);
    char *args[] = {"/bin/true"};
    const char *nt = getenv("HQ_TEST_LOOP_TASKS");
    const uint32_t total = nt ? (uint32_t)atoi(nt) : 400;
    uint32_t sent = 0;
    uint64_t t0 = hq_mono_ns();
    while (f.finished < total) {
        uint32_t outstanding = sent - f.finished - f.failed;
        if (f.credit > outstanding && sent < total) {
            uint32_t n = f.credit - outstanding;
            if (n > total - sent)
                n = total - sent;
            s_assign(&f, sent, n, args, 1, 0);
            sent += n;
        }
        hq_msg_t *m = s_recv(&f, 10000);
        hq_msg_destroy(&m);
    }
    double secs = (double)(hq_mono_ns() - t0) / 1e9;
    fprintf(stderr, "worker_loop: %u tasks in %.2f s (%.0f tasks/s)\n", total, secs, total / secs);
    cr_assert_eq(f.failed, 0);
    cr_assert_eq(f.started, total);
    cr_assert_eq(s_stop(&f, HQ_BYE_STOPPED), 0);
}

Test(worker_loop, reports_failures_time_limits_and_cancels)
{
    fake_t f;
    s_start(&f, "2", NULL);
    s_register(&f);
    char *missing[] = {"hq-no-such-program", "x"};
    s_assign(&f, 0, 1, missing, 2, 0);
    while (f.failed < 1) {
        hq_msg_t *m = s_recv(&f, 5000);
        hq_msg_destroy(&m);
    }
    cr_assert(strncmp(f.last_error, "Cannot execute \"hq-no-such-program x\": No such file", 50) ==
                  0,
              "%s", f.last_error);
    char *sleeper[] = {"sleep", "30"};
    s_assign(&f, 1, 1, sleeper, 2, 300 * 1000000ULL);
    while (f.failed < 2) {
        hq_msg_t *m = s_recv(&f, 5000);
        hq_msg_destroy(&m);
    }
    cr_assert_str_eq(f.last_error, "Time limit reached");
    char *code[] = {"sh", "-c", "exit 3"};
    s_assign(&f, 2, 1, code, 3, 0);
    while (f.failed < 3) {
        hq_msg_t *m = s_recv(&f, 5000);
        hq_msg_destroy(&m);
    }
    cr_assert_str_eq(f.last_error, "Program terminated with exit code 3.");
    s_assign(&f, 3, 1, sleeper, 2, 0);
    uint32_t started = f.started;
    while (f.started == started) {
        hq_msg_t *m = s_recv(&f, 5000);
        hq_msg_destroy(&m);
    }
    hq_task_ref_t ref = {.job_id = 1, .task_id = 3, .instance = 0};
    hq_msg_t c = {0};
    c.u.cancel.n_tasks = 1;
    c.u.cancel.tasks = &ref;
    s_send(&f, &c, HQ_MSG_CANCEL);
    while (f.canceled < 1) {
        hq_msg_t *m = s_recv(&f, 5000);
        hq_msg_destroy(&m);
    }
    cr_assert_eq(s_stop(&f, HQ_BYE_SERVER_STOP), 1);
}

Test(worker_loop, own_time_limit_sends_goodbye_and_exits_0)
{
    fake_t f;
    s_start(&f, "1", "1s");
    s_register(&f);
    for (;;) {
        hq_msg_t *m = s_recv(&f, 5000);
        bool bye = m->hdr.type == HQ_MSG_GOODBYE;
        uint32_t reason = m->u.goodbye.reason;
        hq_msg_destroy(&m);
        if (bye) {
            cr_assert_eq(reason, HQ_BYE_TIME_LIMIT);
            break;
        }
    }
    int st;
    cr_assert_eq(waitpid(f.pid, &st, 0), f.pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    zframe_destroy(&f.peer);
    zsock_destroy(&f.router);
    wk_rm_tree(f.dir);
}
