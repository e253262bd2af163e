/* hq_worker_main, the top of hq-worker: reads the `hq worker start` flags
 * (config.c), sets up the local allocator, the signalfd and the task queue depth,
 * registers with the broker (connect.c), runs the event loop (loop.c) and cleans up;
 * and `hq worker hwdetect`, which prints what detection (detect.c) finds. */
#include "wk.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define HQ_LOG_MODULE "hq::worker"
#include "hq_args.h"
#include "hq_cmdtable.h"
#include "hq_duration.h"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_render.h"
#include "hq_util.h"
#include "worker.h"

#define WK_RECONNECT_WINDOW_NS (60 * HQ_NS_PER_SEC)

char *wk_find_hq_binary(void)
{
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return NULL;
    buf[n] = '\0';
    char *slash = strrchr(buf, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    char *path = hq_asprintf("%s/hq", buf);
    if (access(path, X_OK) != 0) {
        free(path);
        return NULL;
    }
    return path;
}

static void s_cleanup(wk_t *w)
{
    if (w->temp_root) {
        /* The default work dir is the worker's own temporary directory: leave
         * nothing behind in /tmp (a --work-dir the user named is kept). */
        wk_rm_tree(w->temp_root); /* best effort: a file a task keeps open elsewhere stays */
        free(w->temp_root);
        w->temp_root = NULL;
    }
    wk_conn_monitor_close(w);
    zloop_destroy(&w->loop);
    hq_outbox_clear(&w->outbox);
    if (w->sock) {
        zsock_destroy(&w->sock);
        /* Terminating the context waits (up to the linger) until a GOODBYE has
         * left, even when the caller then leaves with _exit. */
        zsys_shutdown();
    }
    if (w->sigfd >= 0)
        close(w->sigfd);
    if (w->guard_fd >= 0) /* the guard ends what the tasks left behind, then exits */
        close(w->guard_fd);
    wk_alloc_destroy(&w->alloc);
    free(w->ev);
    for (uint32_t i = 0; i < w->n_held; i++)
        free(w->held[i].error);
    free(w->held);
    wk_link_kept_clear(w);
    free(w->kept);
    free(w->kept_seq);
    free(w->kept_at);
    free(w->server_uid);
    wk_overview_fini(&w->overview);
    free(w->hq_path);
    hq_worker_conf_t *c = &w->conf;
    free(c->hostname);
    free(c->group);
    free(c->work_dir);
    free(c->listen_address);
    free(c->manager_job_id);
    free(c->version);
    hq_wres_list_clear(&c->resources);
    free(c->coupling);
    hq_global_clear(&w->g);
}

int hq_worker_main(int argc, char **argv)
{
    /* Signals arrive through a signalfd; block them before any thread exists so
     * that no ZeroMQ thread takes them. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTSTP);
    sigaddset(&set, SIGHUP); /* its terminal hung up, e.g. a worker of `deploy-ssh` */
    pthread_sigmask(SIG_BLOCK, &set, &old);

    wk_t wk;
    wk_t *w = &wk;
    memset(w, 0, sizeof *w);
    w->sigfd = -1;
    w->guard_fd = -1;
    int rc = 1;
    hq_err_t err;
    hq_args_t *a = hq_cmd_parse(hq_cmd_find("worker start"), argc, argv, &err);
    if (!a) {
        fprintf(stderr, "%s\n", err.text);
        rc = 2;
        goto out;
    }
    if (hq_args_help(a)) {
        hq_cmd_print_help(hq_cmd_find("worker start"), stdout);
        rc = 0;
        goto out;
    }
    if (hq_args_has(a, "version")) {
        printf("%s %s\n", program_invocation_short_name, HQ_VERSION);
        rc = 0;
        goto out;
    }
    if (hq_global_from_args(a, &w->g, &err) != 0) {
        fprintf(stderr, "%s\n", err.text);
        rc = 2;
        goto out;
    }
    hq_log_init(w->g.debug);
    hq_info("HyperQueue %s", HQ_VERSION);
    int code = wk_configure(w, a, &err);
    if (code != 0) {
        if (code == 2) {
            fprintf(stderr, "%s\n", err.text);
            rc = 2;
        } else {
            rc = hq_output_error(&w->g, err.text);
        }
        goto out;
    }
    uint32_t ncpus = 0;
    int ci = wk_wres_list_find(&w->conf.resources, "cpus");
    if (ci >= 0) {
        hq_amount_t cap = hq_wres_capacity(&w->conf.resources.res[ci]);
        ncpus = cap > 0 ? (uint32_t)cap : 1;
    }
    if (ncpus == 0)
        ncpus = 1;
    /* Long (or unknown) tasks: the cpus plus a small queue, so that no worker hoards
     * work others could run. Short tasks: a deep local queue of about
     * WK_QUEUE_WORK_NS of work per cpu, up to the registered prefetch, so the next
     * task starts the moment one ends and results travel in few, large messages
     * (tasks.c picks the credit from measured run times). */
    w->ncpus = ncpus;
    w->slots_long = ncpus + (ncpus < 4 ? 4 : ncpus);
    uint64_t deep = (uint64_t)ncpus * 32;
    w->prefetch = deep < 64 ? 64 : deep > 65536 ? 65536 : (uint32_t)deep;
    w->slots = w->slots_long;
    w->low_water = ncpus;
    w->flush_timer = -1;
    w->held_timer = -1;
    w->alloc = wk_alloc_new(&w->conf.resources);
    wk_alloc_set_coupling(w->alloc, w->conf.coupling, w->conf.n_coupling);
    w->hq_path = wk_find_hq_binary();
    w->reconnect_window_ns = WK_RECONNECT_WINDOW_NS;
    const char *rw = getenv("HQ_RECONNECT_WINDOW");
    if (rw && *rw && hq_duration_parse(rw, &w->reconnect_window_ns, &err) != 0) {
        hq_warn("Ignoring HQ_RECONNECT_WINDOW=%s: %s", rw, err.text);
        w->reconnect_window_ns = WK_RECONNECT_WINDOW_NS;
    }
    w->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (w->sigfd < 0) {
        rc = hq_output_error(&w->g, "Cannot create a signalfd");
        goto out;
    }
    w->guard_fd = wk_guard_start();
    if (w->guard_fd < 0)
        hq_warn("Cannot start the orphan guard: processes a task leaves behind may outlive "
                "a killed worker");
    if (wk_conn_register(w, &err) != 0) {
        rc = hq_output_error(&w->g, err.text);
        goto out;
    }
    w->tctx = (wk_task_ctx_t){.hq_path = w->hq_path,
                              .server_uid = w->server_uid,
                              .work_dir = w->conf.work_dir,
                              .hostname = w->conf.hostname,
                              .server_dir = w->g.server_dir};
    hq_info("Worker %u registered from %s", w->worker_id, w->conf.hostname);
    json_t *arr = json_array();
    json_array_append_new(arr, hq_worker_json(w->worker_id, &w->conf));
    hq_render_worker_info(&w->g, arr, false);
    json_decref(arr);
    fflush(stdout);
    rc = wk_loop_run(w);
    hq_info("Worker %u stopped", w->worker_id);
out:
    hq_args_destroy(&a);
    s_cleanup(w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int hq_worker_hwdetect_main(int argc, char **argv)
{
    hq_err_t err = {{0}};
    hq_args_t *a = hq_cmd_parse(hq_cmd_find("worker hwdetect"), argc, argv, &err);
    if (!a) {
        fprintf(stderr, "%s\n", err.text);
        return 2;
    }
    if (hq_args_help(a)) {
        hq_cmd_print_help(hq_cmd_find("worker hwdetect"), stdout);
        hq_args_destroy(&a);
        return 0;
    }
    hq_global_t g = {0};
    if (hq_global_from_args(a, &g, &err) != 0) {
        fprintf(stderr, "%s\n", err.text);
        hq_args_destroy(&a);
        return 2;
    }
    hq_log_init(g.debug);
    bool no_ht = hq_args_has(a, "no-hyper-threading");
    hq_args_destroy(&a);
    hq_wres_list_t l = {0};
    int rc = 0;
    if (wk_detect_all(WK_DETECT_ALL, no_ht, &l, &err) != 0) {
        rc = hq_output_error(&g, err.text);
    } else if (g.output == HQ_OUTPUT_JSON) {
        json_t *j = hq_wres_json(&l);
        hq_output_json(j);
        json_decref(j);
    } else if (g.output == HQ_OUTPUT_CLI) {
        char *sum = hq_wres_summary(&l, true);
        hq_buf_t full = {0};
        hq_buf_append(&full, "", 0);
        for (uint32_t i = 0; i < l.n; i++) {
            char *f = hq_wres_full(&l.res[i]);
            hq_buf_printf(&full, "%s%s", i ? "\n" : "", f);
            free(f);
        }
        printf("Summary:\n%s\n\nFull Description:\n%s\n", sum, full.data);
        free(sum);
        hq_buf_free(&full);
    }
    hq_output_finish(&g);
    hq_wres_list_clear(&l);
    hq_global_clear(&g);
    return rc;
}
