/* Live output at the client (`hq output-log DIR cat J stdout --follow`, `hq submit
 * --stream DIR --follow`): reads the stream files of DIR as workers append to them and
 * prints the new chunks of the job, like `tail -f`, until the server says the job has
 * ended; one last read then takes what the tasks wrote before their end was reported
 * (a worker reports an end only after the task's output is in the file). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "hq_access.h"
#include "hq_log.h"
#include "hq_serverdir.h"
#include "hq_util.h"
#include "outlog.h"

#define S_READ_MS 50   /* between reads of the files */
#define S_QUERY_MS 250 /* between questions to the server */

char *hq_cli_server_uid(const hq_cli_t *c)
{
    hq_err_t err;
    char *dir = hq_server_dir_resolve(c->g.server_dir, &err);
    if (!dir)
        return NULL;
    char *path = hq_asprintf("%s/access.json", dir);
    hq_access_t a;
    memset(&a, 0, sizeof a);
    char *uid = NULL;
    if (hq_access_read(path, &a, false, &err) == 0)
        uid = hq_strdup(a.server_uid);
    free(path);
    free(dir);
    return uid;
}

/* Whether the job has ended; -1 when the server cannot be asked. */
static int s_job_done(hq_cli_t *c, uint32_t job)
{
    hq_query_t q;
    memset(&q, 0, sizeof q);
    hq_range_t r = {.start = job, .end = job, .step = 1};
    q.sel.kind = HQ_SEL_IDS;
    q.sel.ids.n = 1;
    q.sel.ids.ranges = &r;
    q.flag = true; /* the tasks' end, whether the job is still open or not */
    json_t *root = NULL;
    if (hq_cli_query(c, HQ_MSG_JOB_WAIT, &q, 0, &root, NULL) != 0)
        return -1;
    int done = json_is_true(json_object_get(json_object_get(root, "result"), "done"));
    json_decref(root);
    return done;
}

static void s_print_new(const hq_olog_t *o, size_t from, uint32_t job, int channel,
                        const hq_rangelist_t *tasks)
{
    bool out = false, err = false;
    for (size_t i = from; i < o->n_chunks; i++) {
        const hq_ol_chunk_t *k = &o->chunks[i];
        if (k->job != job || k->kind > HQ_SF_STDERR || k->len == 0)
            continue;
        if ((channel >= 0 && k->kind != channel) ||
            (tasks && !hq_rangelist_contains(tasks, k->task)))
            continue;
        FILE *f = channel < 0 && k->kind == HQ_SF_STDERR ? stderr : stdout;
        fwrite(hq_olog_data(o, k), 1, k->len, f);
        out |= f == stdout;
        err |= f == stderr;
    }
    if (out)
        fflush(stdout);
    if (err)
        fflush(stderr);
}

int hq_cli_follow(hq_cli_t *c, const char *dir, uint32_t job, int channel,
                  const hq_rangelist_t *tasks, const char *server_uid)
{
    char *uid = server_uid ? hq_strdup(server_uid) : hq_cli_server_uid(c);
    if (!uid) {
        hq_error("Cannot follow the output: no server uid (is the server running? "
                 "--server-uid picks the streams of one)");
        return 1;
    }
    hq_olog_t o;
    hq_olog_init(&o, dir, uid);
    free(uid);
    uint64_t next_query = 0;
    int rc = 0;
    for (bool last = false;;) {
        size_t before = o.n_chunks;
        hq_olog_poll(&o);
        s_print_new(&o, before, job, channel, tasks);
        if (last)
            break;
        uint64_t now = hq_mono_ns();
        if (now >= next_query) {
            int done = s_job_done(c, job);
            if (done < 0) {
                rc = 1;
                break;
            }
            last = done == 1;
            next_query = now + (uint64_t)S_QUERY_MS * 1000000;
            if (last)
                continue;
        }
        struct timespec ts = {0, S_READ_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (rc == 0 && o.n_errors > 0)
        rc = 1;
    hq_olog_close(&o);
    return rc;
}
