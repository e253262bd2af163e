/* Journal events for clients (see stream.h): NDJSON formatting, JOURNAL_READ over the
 * journal files plus a ring of live events (or, without a journal, over the events
 * rebuilt from the broker's state plus the ring), JOURNAL_FLUSH. The ring also carries
 * transient events (task-notify) that the journal never keeps: they sit after the
 * record that was the last one when they happened, so a read cursor is
 * lsn << S_SUB_BITS | k, k counting the transient lines after that record. */
#define HQ_LOG_MODULE "hq::server::journal"
#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hq_duration.h"
#include "hq_log.h"
#include "hq_util.h"
#include "glue.h"
#include "journal/hq_journal.h"
#include "journal/rebuild.h"

#define S_RING_MAX 262144  /* live event lines kept */
#define S_PAGE_LINES 50000 /* lines per reply (a record's lines are never split) */
#define S_HOLD_MS 1000     /* longest hold of an empty live read */
#define S_BATCH_MS 5       /* held readers are answered this long after new events */
#define S_SUB_BITS 16      /* cursor = lsn << S_SUB_BITS | transient line after it */
#define S_SUB_MAX ((1u << S_SUB_BITS) - 1)
#define S_KEY(lsn, sub) (((uint64_t)(lsn) << S_SUB_BITS) | (sub))
#define S_STATE_PAGE 100000      /* rebuilt lines per reply (no journal) */
#define S_LIVE_BASE (1ull << 40) /* no journal: live events are numbered after this */
#define S_LSN(key) ((key) >> S_SUB_BITS)

/* ---- stream state (one per broker) ---- */

typedef struct s_line {
    uint64_t lsn;
    uint64_t key; /* S_KEY(lsn, 0) for a record's lines, S_KEY(lsn, k) for transient ones */
    char *text;   /* owned */
} s_line_t;

/* A JOURNAL_READ waiting: for live events (held) or for a flush (disk read). */
typedef struct s_reader {
    struct s_jx *x;
    uint8_t rid[HQ_RID_MAX];
    size_t rid_len;
    uint64_t request_id;
    uint64_t cursor;
    uint64_t upto;     /* disk read: last lsn to deliver */
    bool wait;         /* live: held for new events */
    uint64_t deadline; /* held: CLOCK_MONOTONIC */
    struct s_reader *next;
} s_reader_t;

typedef struct s_jx {
    hq_broker_t *b;
    bool tap;            /* the ring is filled */
    uint64_t ring_lo;    /* the ring has every line of records with lsn >= ring_lo */
    s_line_t *ring;      /* circular */
    uint32_t head, n;    /* oldest entry, entries */
    s_reader_t *held;    /* readers waiting for live events */
    uint32_t n_flushing; /* readers waiting for a flush */
    int hold_timer;      /* zloop timer checking held readers (-1 = none) */
    int batch_timer;     /* zloop timer answering held readers soon (-1 = none) */
    bool dead;           /* closed while flushes were pending: freed by the last one */
    uint64_t last_lsn;   /* newest record seen by the tap */
    uint32_t sub;        /* transient lines after it so far */
    bool rebuilt;        /* no journal: state pages, then live events from S_LIVE_BASE + 1 */
    uint64_t seq;        /* rebuilt: the last live event's number (its "lsn") */
    uint64_t page;       /* rebuilt: state lines per reply */
    struct s_jx *next;
} s_jx_t;

static s_jx_t *s_all; /* brokers with stream state (normally one) */

static s_jx_t *s_jx(hq_broker_t *b, bool create)
{
    for (s_jx_t *x = s_all; x; x = x->next)
        if (x->b == b)
            return x;
    if (!create)
        return NULL;
    s_jx_t *x = hq_calloc(1, sizeof *x);
    x->b = b;
    x->hold_timer = x->batch_timer = -1;
    x->next = s_all;
    s_all = x;
    return x;
}

typedef struct s_tapctx {
    s_jx_t *x;
    uint64_t lsn;
    uint64_t key;
} s_tapctx_t;

static void s_tap_line(const char *line, void *arg)
{
    s_tapctx_t *c = arg;
    s_jx_t *x = c->x;
    if (!x->ring)
        x->ring = hq_calloc(S_RING_MAX, sizeof *x->ring);
    if (x->n == S_RING_MAX) {
        /* Full: drop the oldest record's lines; readers behind it go to the files. */
        uint64_t drop = x->ring[x->head].lsn;
        while (x->n > 0 && x->ring[x->head].lsn == drop) {
            free(x->ring[x->head].text);
            x->ring[x->head].text = NULL;
            x->head = (x->head + 1) % S_RING_MAX;
            x->n--;
        }
        x->ring_lo = drop + 1;
    }
    uint32_t at = (x->head + x->n) % S_RING_MAX;
    x->ring[at] = (s_line_t){.lsn = c->lsn, .key = c->key, .text = hq_strdup(line)};
    x->n++;
}

static int s_on_batch(zloop_t *loop, int timer_id, void *arg);

static void s_tap(const hq_jrec_t *rec, void *arg)
{
    s_jx_t *x = arg;
    s_tapctx_t c = {.x = x, .lsn = rec->lsn, .key = S_KEY(rec->lsn, 0)};
    x->last_lsn = rec->lsn;
    x->sub = 0;
    if (hq_jrec_ndjson(rec, s_tap_line, &c) > 0 && x->held && x->batch_timer < 0 && x->b->turn.loop)
        x->batch_timer = zloop_timer(x->b->turn.loop, S_BATCH_MS, 1, s_on_batch, x);
}

/* Transient events: a task-notify goes to the ring after the newest record. */
static void s_on_event(const hq_event_t *ev, void *arg)
{
    s_jx_t *x = arg;
    if (ev->type != HQ_EV_TASK_NOTIFY || !x->tap || x->sub >= S_SUB_MAX)
        return;
    json_t *e = json_pack("{s:s,s:I,s:I,s:I,s:s}", "type", "task-notify", "job",
                          (json_int_t)ev->job_id, "task", (json_int_t)ev->task_id, "worker",
                          (json_int_t)ev->worker_id, "message", ev->text ? ev->text : "");
    char *t = hq_time_rfc3339(ev->time_ns, 6);
    json_t *line = json_pack("{s:o,s:s}", "event", e, "time", t);
    free(t);
    char *text = json_dumps(line, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(line);
    if (!text)
        return;
    s_tapctx_t c = {.x = x, .lsn = x->last_lsn, .key = S_KEY(x->last_lsn, ++x->sub)};
    s_tap_line(text, &c);
    free(text);
    if (x->held && x->batch_timer < 0 && x->b->turn.loop)
        x->batch_timer = zloop_timer(x->b->turn.loop, S_BATCH_MS, 1, s_on_batch, x);
}

/* ---- replies ---- */

static void s_reply(hq_broker_t *b, const uint8_t *rid, size_t rid_len, uint64_t request_id,
                    json_t *result)
{
    json_t *doc = json_pack("{s:o,s:o}", "result", result, "meta", json_object());
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    hq_reply_t r = {.json = text};
    /* Event pages are not worth keeping in the reply cache. */
    bool saved = b->replies.cur_valid;
    b->replies.cur_valid = false;
    hq_client_reply(&b->replies, rid, rid_len, request_id, &r);
    b->replies.cur_valid = saved;
    free(text);
}

static json_t *s_result(json_t *lines, uint64_t next, bool more, bool end)
{
    return json_pack("{s:o,s:I,s:b,s:b}", "lines", lines ? lines : json_array(), "next",
                     (json_int_t)next, "more", more, "end", end);
}

/* Lines of the ring after cursor, a key (whole records, up to a page). */
static json_t *s_ring_lines(s_jx_t *x, uint64_t cursor, uint64_t *next, bool *more)
{
    json_t *lines = json_array();
    *next = cursor;
    *more = false;
    size_t count = 0;
    for (uint32_t k = 0; k < x->n; k++) {
        const s_line_t *l = &x->ring[(x->head + k) % S_RING_MAX];
        if (l->key <= cursor)
            continue;
        if (count >= S_PAGE_LINES && l->key != *next) {
            *more = true;
            break;
        }
        json_array_append_new(lines, json_string(l->text));
        count++;
        *next = l->key;
    }
    return lines;
}

/* ---- reading the journal files ---- */

typedef struct s_disk {
    uint64_t cursor, upto, next;
    json_t *lines;
    size_t count;
    bool more;
    bool page_done; /* the callback stopped the replay: the page is full */
    uint64_t cur_lsn;
} s_disk_t;

static void s_disk_line(const char *line, void *arg)
{
    s_disk_t *d = arg;
    json_array_append_new(d->lines, json_string(line));
    d->count++;
}

static int s_disk_rec(hq_jrec_t *rec, bool from_snapshot, void *arg, hq_err_t *err)
{
    s_disk_t *d = arg;
    if (from_snapshot) {
        if (d->cursor == 0)
            hq_jrec_ndjson(rec, s_disk_line, d);
        return 0;
    }
    if (rec->lsn <= d->cursor)
        return 0;
    if (rec->lsn > d->upto || (d->count >= S_PAGE_LINES && rec->lsn != d->next)) {
        d->more = rec->lsn <= d->upto;
        d->page_done = true;
        return hq_err_set(err, "page complete"); /* stops the replay */
    }
    hq_jrec_ndjson(rec, s_disk_line, d);
    d->next = rec->lsn;
    return 0;
}

/* Events of the records in (cursor, upto] from the files, one page. */
static json_t *s_disk_lines(const char *path, uint64_t cursor, uint64_t upto, uint64_t *next,
                            bool *more, hq_err_t *err)
{
    for (int attempt = 0;; attempt++) {
        s_disk_t d = {.cursor = cursor, .upto = upto, .next = cursor, .lines = json_array()};
        hq_journal_opts_t o = {.read_only = true};
        hq_journal_t *j = hq_journal_open(path, &o, err);
        int rc = -1;
        bool stopped = false;
        if (j) {
            rc = hq_journal_replay(j, s_disk_rec, &d, NULL, err);
            stopped = rc != 0 && d.page_done;
            hq_journal_close(&j);
        }
        if (rc == 0 || stopped) {
            *more = d.more;
            *next = d.more ? d.next : upto;
            return d.lines;
        }
        json_decref(d.lines);
        /* A compaction may have removed a file while we listed them: once more. */
        if (attempt >= 2)
            return NULL;
    }
}

static void s_disk_answer(s_jx_t *x, s_reader_t *r)
{
    hq_broker_t *b = x->b;
    const char *path = hq_jr_path(b);
    hq_err_t err;
    uint64_t next = S_LSN(r->cursor);
    bool more = false;
    json_t *lines = path ? s_disk_lines(path, S_LSN(r->cursor), r->upto, &next, &more, &err) : NULL;
    if (!lines) {
        hq_creq_t req = {.rid = r->rid, .rid_len = r->rid_len};
        hq_msg_t fake = {.hdr = {.request_id = r->request_id}};
        req.msg = &fake;
        hq_client_error(&b->replies, &req, HQ_ERR_UNAVAILABLE, "Cannot read the journal: %s",
                        path ? err.text : "the journal is closed");
        return;
    }
    /* Live events are on: what follows the files is in the ring, so a replay goes on. */
    if (!more && x->tap && next + 1 >= x->ring_lo && x->n > 0)
        more = true;
    uint64_t key = S_KEY(next, 0);
    s_reply(b, r->rid, r->rid_len, r->request_id,
            s_result(lines, key > r->cursor ? key : r->cursor, more, false));
}

typedef struct s_flushwait {
    s_jx_t *x;
    s_reader_t r;
} s_flushwait_t;

static void s_flushed(void *arg, uint64_t lsn, int errnum)
{
    (void)lsn;
    s_flushwait_t *w = arg;
    s_jx_t *x = w->x;
    x->n_flushing--;
    if (errnum == 0 && x->b->jr)
        s_disk_answer(x, &w->r);
    else if (x->b->jr) {
        hq_creq_t req = {.rid = w->r.rid, .rid_len = w->r.rid_len};
        hq_msg_t fake = {.hdr = {.request_id = w->r.request_id}};
        req.msg = &fake;
        hq_client_error(&x->b->replies, &req, HQ_ERR_UNAVAILABLE, "journal unavailable: %s",
                        strerror(errnum ? errnum : EIO));
    }
    free(w);
    if (x->dead && x->n_flushing == 0)
        free(x);
}

/* ---- held live readers ---- */

static void s_answer_held(s_jx_t *x, bool all, bool end)
{
    uint64_t now = hq_mono_ns();
    s_reader_t **pp = &x->held;
    while (*pp) {
        s_reader_t *r = *pp;
        uint64_t next;
        bool more;
        json_t *lines = NULL;
        if (S_LSN(r->cursor) + 1 >= x->ring_lo)
            lines = s_ring_lines(x, r->cursor, &next, &more);
        else {
            /* Fell behind the ring while held: let it come back for the files. */
            lines = json_array();
            next = r->cursor;
            more = true;
        }
        if (json_array_size(lines) > 0 || more || all || end || now >= r->deadline) {
            s_reply(x->b, r->rid, r->rid_len, r->request_id, s_result(lines, next, more, end));
            *pp = r->next;
            free(r);
            continue;
        }
        json_decref(lines);
        pp = &r->next;
    }
}

static int s_on_batch(zloop_t *loop, int timer_id, void *arg)
{
    (void)loop;
    (void)timer_id;
    s_jx_t *x = arg;
    x->batch_timer = -1;
    s_answer_held(x, false, false);
    return 0;
}

static int s_on_hold(zloop_t *loop, int timer_id, void *arg)
{
    (void)timer_id;
    s_jx_t *x = arg;
    s_answer_held(x, false, false);
    if (!x->held) {
        zloop_timer_end(loop, x->hold_timer);
        x->hold_timer = -1;
    }
    return 0;
}

/* ---- handlers ---- */

static void s_copy_req(s_reader_t *r, const hq_creq_t *req)
{
    memcpy(r->rid, req->rid, req->rid_len);
    r->rid_len = req->rid_len;
    r->request_id = req->msg->hdr.request_id;
}

/* Answers from the ring, or holds the reader for live events (wait). */
static int s_from_ring(hq_broker_t *b, s_jx_t *x, hq_creq_t *req, uint64_t cursor, bool wait)
{
    uint64_t next;
    bool more;
    json_t *lines = s_ring_lines(x, cursor, &next, &more);
    if (json_array_size(lines) > 0 || !wait) {
        s_reply(b, req->rid, req->rid_len, req->msg->hdr.request_id,
                s_result(lines, next, more, false));
        return 0;
    }
    json_decref(lines);
    s_reader_t *r = hq_calloc(1, sizeof *r);
    s_copy_req(r, req);
    r->x = x;
    r->cursor = cursor;
    r->wait = true;
    r->deadline = hq_mono_ns() + S_HOLD_MS * HQ_NS_PER_MS;
    r->next = x->held;
    x->held = r;
    if (x->hold_timer < 0 && b->turn.loop)
        x->hold_timer = zloop_timer(b->turn.loop, 100, 0, s_on_hold, x);
    return 0;
}

/* ---- a broker without a journal ---- */

/* A live event of a broker without a journal: its lines go to the ring, numbered as
 * if they were records (x->seq); transient ones (task-notify) follow them as usual. */
static void s_rebuilt_hook(const hq_event_t *ev, void *arg)
{
    hq_broker_t *b = arg;
    s_jx_t *x = s_jx(b, false);
    if (!x || !x->tap || !x->rebuilt)
        return;
    s_tapctx_t c = {.x = x, .lsn = x->seq + 1, .key = S_KEY(x->seq + 1, 0)};
    if (hq_jrebuild_event(b, ev, s_tap_line, &c) == 0)
        return;
    x->seq++;
    x->last_lsn = x->seq;
    x->sub = 0;
    if (x->held && x->batch_timer < 0 && b->turn.loop)
        x->batch_timer = zloop_timer(b->turn.loop, S_BATCH_MS, 1, s_on_batch, x);
}

static void s_json_line(const char *line, void *arg)
{
    json_array_append_new(arg, json_string(line));
}

/* JOURNAL_READ without a journal. Cursors below S_LIVE_BASE page through the events
 * rebuilt from the state (the cursor is the number of lines delivered; each page is
 * rebuilt, and new events sort at the end, so pages join up); the last page answers
 * "next" = the ring's current position; cursors from S_KEY(S_LIVE_BASE, 0) on are
 * live events of the ring. */
static int s_read_rebuilt(hq_broker_t *b, hq_creq_t *req)
{
    const hq_query_t *q = &req->msg->u.query;
    s_jx_t *x = s_jx(b, true);
    if (!x->tap) {
        if (hq_events_hook(b->events, s_rebuilt_hook, b) != 0 ||
            hq_events_hook(b->events, s_on_event, x) != 0)
            return hq_client_error(&b->replies, req, HQ_ERR_UNAVAILABLE,
                                   "The server cannot follow its events: too many hooks");
        x->tap = true;
        x->rebuilt = true;
        x->seq = S_LIVE_BASE;
        x->last_lsn = S_LIVE_BASE;
        x->sub = 0;
        x->ring_lo = S_LIVE_BASE + 1;
        const char *pv = getenv("HQ_TEST_EVENT_PAGE_LINES"); /* tests: small pages */
        x->page = pv && atoi(pv) > 0 ? (uint64_t)atoi(pv) : S_STATE_PAGE;
    }
    uint64_t cursor = q->number;
    if (cursor >= S_LIVE_BASE && (S_LSN(cursor) < S_LIVE_BASE || S_LSN(cursor) > x->seq))
        cursor = 0; /* a cursor of an earlier run of the server */
    if (cursor < S_LIVE_BASE) {
        json_t *lines = json_array();
        bool more = false;
        uint64_t n = hq_jrebuild_state(b, cursor, x->page, s_json_line, lines, &more);
        s_reply(b, req->rid, req->rid_len, req->msg->hdr.request_id,
                s_result(lines, more ? cursor + n : S_KEY(x->last_lsn, x->sub), more, false));
        return 0;
    }
    if (S_LSN(cursor) + 1 < x->ring_lo)
        cursor = S_KEY(x->ring_lo - 1, 0); /* fell behind the ring: lost events skipped */
    return s_from_ring(b, x, req, cursor, q->flag);
}

int hq_h_journal_read(hq_broker_t *b, hq_creq_t *req)
{
    hq_journal_t *j = hq_jr_journal(b);
    if (!j)
        return s_read_rebuilt(b, req);
    const hq_query_t *q = &req->msg->u.query;
    uint64_t cursor = q->number;
    s_jx_t *x = s_jx(b, true);
    hq_journal_stats_t st;
    hq_journal_stats(j, &st);
    if (q->flag && !x->tap) {
        /* The first live reader: newer records' events go to the ring from now on. */
        x->tap = true;
        x->ring_lo = st.last_lsn + 1;
        x->last_lsn = st.last_lsn;
        x->sub = 0;
        hq_journal_on_append(j, s_tap, x);
        hq_events_hook(b->events, s_on_event, x);
    }
    if (S_LSN(cursor) > st.last_lsn)
        cursor = S_KEY(st.last_lsn, 0); /* a cursor of an earlier run of the server */
    if (x->tap && S_LSN(cursor) + 1 >= x->ring_lo)
        return s_from_ring(b, x, req, cursor, q->flag);
    /* From the files: everything up to what the ring has (or to now), once durable. */
    s_flushwait_t *w = hq_calloc(1, sizeof *w);
    w->x = x;
    s_copy_req(&w->r, req);
    w->r.cursor = cursor;
    w->r.upto = x->tap ? x->ring_lo - 1 : st.last_lsn;
    x->n_flushing++;
    hq_journal_flush_async(j, s_flushed, w);
    return 0;
}

typedef struct s_flushreq {
    hq_broker_t *b;
    s_reader_t r;
} s_flushreq_t;

static void s_flush_done(void *arg, uint64_t lsn, int errnum)
{
    (void)lsn;
    s_flushreq_t *f = arg;
    hq_creq_t req = {.rid = f->r.rid, .rid_len = f->r.rid_len};
    hq_msg_t fake = {.hdr = {.request_id = f->r.request_id}};
    req.msg = &fake;
    if (errnum)
        hq_client_error(&f->b->replies, &req, HQ_ERR_UNAVAILABLE, "journal unavailable: %s",
                        strerror(errnum));
    else
        hq_client_reply_json(&f->b->replies, &req, json_object(), NULL);
    free(f);
}

int hq_h_journal_flush(hq_broker_t *b, hq_creq_t *req)
{
    hq_journal_t *j = hq_jr_journal(b);
    if (!j)
        return hq_client_error(&b->replies, req, HQ_ERR_INVALID,
                               "The server was started without a journal: there is nothing to "
                               "flush (start it with --journal <PATH>)");
    s_flushreq_t *f = hq_calloc(1, sizeof *f);
    f->b = b;
    s_copy_req(&f->r, req);
    hq_journal_flush_async(j, s_flush_done, f);
    return 0;
}

void hq_jstream_close(hq_broker_t *b)
{
    s_jx_t *x = s_jx(b, false);
    if (!x)
        return;
    s_answer_held(x, true, true);
    if (b->turn.loop) {
        if (x->hold_timer >= 0)
            zloop_timer_end(b->turn.loop, x->hold_timer);
        if (x->batch_timer >= 0)
            zloop_timer_end(b->turn.loop, x->batch_timer);
    }
    hq_journal_t *j = hq_jr_journal(b);
    if (j && x->tap)
        hq_journal_on_append(j, NULL, NULL);
    if (x->tap)
        hq_events_unhook(b->events, s_on_event, x);
    if (x->rebuilt)
        hq_events_unhook(b->events, s_rebuilt_hook, b);
    x->tap = false;
    for (uint32_t k = 0; k < x->n; k++)
        free(x->ring[(x->head + k) % S_RING_MAX].text);
    free(x->ring);
    x->ring = NULL;
    x->n = 0;
    for (s_jx_t **pp = &s_all; *pp; pp = &(*pp)->next)
        if (*pp == x) {
            *pp = x->next;
            break;
        }
    if (x->n_flushing > 0)
        x->dead = true; /* its reads still answer (or are dropped) as flushes complete */
    else
        free(x);
}
