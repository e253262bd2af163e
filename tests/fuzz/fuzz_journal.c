/* libFuzzer target for the journal reader: any byte string is taken as a segment or
 * snapshot file image and scanned exactly as replay scans one (header check, frames,
 * CRC, schema decode, lsn continuity, the torn-tail search). It must never crash or
 * allocate out of bounds, and every record it accepts must re-encode and decode to
 * the same bytes. Seed corpus: tests/fuzz/corpus-journal (real files, written by
 * test_journal_records with HQ_FUZZ_CORPUS_OUT=tests/fuzz/corpus-journal). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/journal_rec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_journal: %s: %s\n", what, detail);
    abort();
}

/* Re-frames an accepted record; the result must decode to a record that frames to the
 * same bytes again (the first re-encoding may canonicalise integer widths). */
static int s_check(const hq_jrec_t *rec, size_t off, void *arg, hq_err_t *err)
{
    hq_jrec_t r = *rec;
    hq_jrec_t d;
    if (r.type == HQ_JR_JOB_SUBMIT)
        r.u.job_submit.submit = &rec->u.job_submit.msg->u.submit;
    if (r.type == HQ_JR_WORKER_UP)
        r.u.worker_up.reg = rec->u.worker_up.msg ? &rec->u.worker_up.msg->u.reg : NULL;
    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, acap = 0, blen = 0, bcap = 0;
    hq_err_t e = {{0}};
    if (hq_jrec_frame(&r, &a, &alen, &acap, &e) < 0)
        s_die("an accepted record does not re-encode", e.text);
    hq_jscratch_t sc = {0};
    if (hq_jrec_decode(a + HQ_JFRAME_SIZE, alen - HQ_JFRAME_SIZE, &d, &sc, &e) < 0)
        s_die("a re-encoded record does not decode", e.text);
    hq_jrec_t d2 = d;
    if (d2.type == HQ_JR_JOB_SUBMIT)
        d2.u.job_submit.submit = &d.u.job_submit.msg->u.submit;
    if (d2.type == HQ_JR_WORKER_UP)
        d2.u.worker_up.reg = d.u.worker_up.msg ? &d.u.worker_up.msg->u.reg : NULL;
    if (hq_jrec_frame(&d2, &b, &blen, &bcap, &e) < 0)
        s_die("a second re-encode failed", e.text);
    if (alen != blen || memcmp(a, b, alen) != 0)
        s_die("record encoding is not stable", hq_jrec_name(d.type));
    hq_jrec_clear(&d);
    hq_jscratch_free(&sc);
    free(a);
    free(b);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hq_jheader_t h;
    hq_err_t err = {{0}};
    hq_jscan_t st;
    int rc = hq_jheader_decode(data, size, &h, &err);
    if (rc == 0) {
        uint8_t again[HQ_JHEADER_SIZE];
        hq_jheader_t h2;
        hq_jheader_encode(&h, again);
        if (hq_jheader_decode(again, sizeof again, &h2, &err) < 0)
            s_die("a re-encoded header does not decode", err.text);
        if (h2.seq != h.seq || h2.prev_lsn != h.prev_lsn || strcmp(h2.uid, h.uid) != 0)
            s_die("header fields change on re-encode", "");
        hq_jscan_records(data + HQ_JHEADER_SIZE, size - HQ_JHEADER_SIZE, h.prev_lsn, 0, s_check,
                         NULL, &st, &err);
    } else if (err.text[0] == '\0') {
        s_die("header refused without an error text", "");
    } else {
        /* Not a file image: scan it as bare records, and as one payload. */
        hq_jscan_records(data, size, 0, 0, s_check, NULL, &st, &err);
        hq_jrec_t r;
        hq_jscratch_t sc = {0};
        if (hq_jrec_decode(data, size, &r, &sc, &err) == 0)
            hq_jrec_clear(&r);
        else if (err.text[0] == '\0')
            s_die("payload refused without an error text", "");
        hq_jscratch_free(&sc);
    }
    if (!st.clean_end && !st.stopped_by_limit && st.bad[0] == '\0')
        s_die("scan stopped without saying why", "");
    return 0;
}
