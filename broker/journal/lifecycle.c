/* The journal's life in the broker: open (replay into the tables, start the writer,
 * a durable server_start), attach to the loop (hook the event point, snapshots),
 * close. What becomes of the restored tasks is tasks.c's (hq_tasks_resume). */
#define HQ_LOG_MODULE "hq::server::journal"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "glue_priv.h"
#include "hq_duration.h"
#include "hq_log.h"
#include "hq_util.h"
#include "snapshot.h"
#include "stream.h"

/* After --journal-salvage skipped records: a snapshot of the restored state, so the
 * next start replays from it and does not meet them (nor need the flag) again. */
static void s_snapshot_past_skipped(hq_broker_t *b, uint32_t skipped)
{
    hq_err_t e;
    if (hq_snapshot_write(b, false, NULL, NULL, &e) != 0 || hq_journal_flush(b->jr->j, &e) != 0)
        hq_warn("Journal: no snapshot after the %u skipped record%s (%s): the next start "
                "meets them again",
                skipped, skipped == 1 ? "" : "s", e.text);
    else
        hq_info("Journal: a snapshot now stands for the %u skipped record%s", skipped,
                skipped == 1 ? "" : "s");
}

int hq_jr_open(hq_broker_t *b, const char *path, uint64_t flush_ns, hq_err_t *err)
{
    hq_journal_opts_t o = {.flush_period_ns = flush_ns,
                           .uid = b->conf.access.server_uid,
                           .coalesce_finished = true,
                           .salvage = b->conf.journal_salvage};
    /* Segment preallocation size; small values let tests put a journal on a tiny
     * filesystem. Accepts a plain byte count of at least 4096. */
    const char *sv = getenv("HQ_JOURNAL_SEGMENT_BYTES");
    if (sv && *sv) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(sv, &end, 10);
        if (errno || !end || *end || v < 4096 || v > (1ULL << 40))
            hq_warn("Ignoring HQ_JOURNAL_SEGMENT_BYTES=%s: expected a byte count between 4096 "
                    "and 1099511627776",
                    sv);
        else
            o.segment_size = v;
    }
    hq_journal_t *j = hq_journal_open(path, &o, err);
    if (!j)
        return -1;
    uint64_t t0 = hq_mono_ns();
    uint64_t grace_ns = HQ_READOPT_GRACE_NS;
    const char *gv = getenv("HQ_READOPT_GRACE");
    if (gv && *gv) {
        hq_err_t e;
        if (hq_duration_parse(gv, &grace_ns, &e) != 0) {
            hq_warn("Ignoring HQ_READOPT_GRACE=%s: %s", gv, e.text);
            grace_ns = HQ_READOPT_GRACE_NS;
        }
    }
    hq_jr_state_t *st = hq_jr_state_new(b);
    hq_jr_state_readopt(st, grace_ns > 0);
    hq_journal_report_t rep;
    if (hq_journal_replay(j, hq_jr_apply_record, st, &rep, err) != 0) {
        hq_jr_state_finish(&st);
        hq_journal_close(&j);
        return -1;
    }
    uint64_t records = hq_jr_state_records(st);
    uint32_t n_readopt = 0;
    uint64_t epoch = hq_jr_state_end(&st, &n_readopt);
    uint64_t dt = hq_mono_ns() - t0;
    if (rep.last_lsn > 0 || rep.torn_bytes > 0)
        hq_info("Journal %s replayed: %llu records (%llu from a snapshot), %u segments, "
                "%llu torn bytes dropped, %u jobs restored, in %.3f s",
                path, (unsigned long long)records, (unsigned long long)rep.snap_records,
                rep.segments, (unsigned long long)rep.torn_bytes, b->jobs.n_live, (double)dt / 1e9);
    else
        hq_info("Journal %s is empty: starting a new one", path);
    if (rep.note[0])
        hq_warn("Journal: %s", rep.note);
    hq_journal_set_uid(j, b->conf.access.server_uid);
    if (hq_journal_start(j, err) != 0) {
        hq_journal_close(&j);
        return -1;
    }
    hq_jglue_t *g = hq_calloc(1, sizeof *g);
    g->b = b;
    g->j = j;
    g->path = hq_strdup(path);
    g->epoch = epoch + 1;
    g->inflight = zhashx_new();
    g->grace_ns = grace_ns;
    g->n_readopt = n_readopt;
    g->retry_timer = -1;
    b->jr = g;
    hq_jrec_t rec = {.type = HQ_JR_SERVER_START};
    rec.u.server_start.epoch = g->epoch;
    rec.u.server_start.uid = b->conf.access.server_uid;
    if (hq_journal_append(j, &rec, NULL, NULL, err) == 0 || hq_journal_flush(j, err) != 0) {
        hq_err_t e2;
        hq_err_set(&e2, "Cannot write to the journal %s: %s", path, err->text);
        *err = e2;
        hq_jr_close(b);
        return -1;
    }
    hq_info("Journal epoch %llu", (unsigned long long)g->epoch);
    if (rep.skipped > 0)
        s_snapshot_past_skipped(b, rep.skipped);
    return 0;
}

int hq_jr_attach(hq_broker_t *b, hq_err_t *err)
{
    hq_jglue_t *g = b->jr;
    if (!g)
        return 0;
    if (hq_journal_attach(g->j, b->turn.loop) != 0)
        return hq_err_set(err, "Cannot attach the journal to the loop");
    hq_journal_on_state(g->j, hq_jr_on_state, g);
    hq_events_hook(b->events, hq_jr_hook, g);
    hq_snapshot_attach(b);
    return 0;
}

void hq_jr_close(hq_broker_t *b)
{
    hq_jglue_t *g = b->jr;
    if (!g) {
        hq_jstream_close(b); /* readers of the events rebuilt without a journal */
        return;
    }
    g->closing = true;
    hq_jstream_close(b);
    hq_snapshot_detach(b);
    if (hq_journal_available(g->j)) {
        hq_jrec_t rec = {.type = HQ_JR_SERVER_STOP};
        hq_err_t err;
        if (hq_journal_append(g->j, &rec, NULL, NULL, &err) != 0)
            hq_journal_flush(g->j, &err);
    }
    if (g->retry_timer >= 0 && b->turn.loop)
        zloop_timer_end(b->turn.loop, g->retry_timer);
    if (g->failed.n > g->failed.head)
        hq_warn("Journal: %u held record%s (task results, worker registrations and losses) could "
                "not be "
                "written before the stop",
                g->failed.n - g->failed.head, g->failed.n - g->failed.head == 1 ? "" : "s");
    hq_journal_detach(g->j);
    hq_journal_close(&g->j);
    zhashx_destroy(&g->inflight);
    free(g->pend.v);
    free(g->failed.v);
    free(g->held);
    free(g->path);
    free(g);
    b->jr = NULL;
}
