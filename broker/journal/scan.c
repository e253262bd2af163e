/* Journal files without I/O: the segment/snapshot file header (magic, version, CRC)
 * and the scanner over one file image in memory (frame checks, payload decode, lsn
 * continuity, and telling a torn tail from corruption). Replay and the fuzz target run
 * exactly this code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal_rec.h"
#include "rec_priv.h"

/* ---- file header ---- */

static const char s_magic_seg[8] = "HQJSEG\r\n";
static const char s_magic_snap[8] = "HQJSNP\r\n";

void hq_jheader_encode(const hq_jheader_t *h, uint8_t out[HQ_JHEADER_SIZE])
{
    memset(out, 0, HQ_JHEADER_SIZE);
    memcpy(out, h->kind == HQ_JFILE_SNAPSHOT ? s_magic_snap : s_magic_seg, 8);
    out[8] = (uint8_t)h->major;
    out[9] = (uint8_t)(h->major >> 8);
    out[10] = (uint8_t)h->minor;
    out[11] = (uint8_t)(h->minor >> 8);
    s_le32(out + 12, HQ_JHEADER_SIZE);
    s_le64(out + 16, h->seq);
    s_le64(out + 24, h->created_ns);
    s_le64(out + 32, h->prev_lsn);
    memcpy(out + 40, h->uid, strnlen(h->uid, 16));
    s_le32(out + 60, hq_crc32c(0, out, 60));
}

int hq_jheader_decode(const uint8_t *buf, size_t len, hq_jheader_t *h, hq_err_t *err)
{
    memset(h, 0, sizeof *h);
    if (len < HQ_JHEADER_SIZE)
        return hq_err_set(err, "file header truncated (%zu of %d bytes)", len, HQ_JHEADER_SIZE);
    if (memcmp(buf, s_magic_seg, 8) == 0)
        h->kind = HQ_JFILE_SEGMENT;
    else if (memcmp(buf, s_magic_snap, 8) == 0)
        h->kind = HQ_JFILE_SNAPSHOT;
    else
        return hq_err_set(err, "not an hq journal file (bad magic)");
    uint32_t crc = s_rd32(buf + 60), want = hq_crc32c(0, buf, 60);
    if (crc != want)
        return hq_err_set(err, "file header CRC mismatch (stored %08x, computed %08x)", crc, want);
    h->major = (uint16_t)(buf[8] | buf[9] << 8);
    h->minor = (uint16_t)(buf[10] | buf[11] << 8);
    if (h->major != HQ_JFORMAT_MAJOR || h->minor > HQ_JFORMAT_MINOR) {
        hq_err_set(err,
                   "journal format %u.%u is not supported: this hq reads format %d.0 to %d.%d%s",
                   h->major, h->minor, HQ_JFORMAT_MAJOR, HQ_JFORMAT_MAJOR, HQ_JFORMAT_MINOR,
                   h->major == HQ_JFORMAT_MAJOR ? " (it was written by a newer hq)" : "");
        return -2;
    }
    if (s_rd32(buf + 12) != HQ_JHEADER_SIZE)
        return hq_err_set(err, "file header size %u, expected %d", s_rd32(buf + 12),
                          HQ_JHEADER_SIZE);
    h->seq = s_rd64(buf + 16);
    h->created_ns = s_rd64(buf + 24);
    h->prev_lsn = s_rd64(buf + 32);
    memcpy(h->uid, buf + 40, 16);
    h->uid[16] = '\0';
    for (int k = 0; h->uid[k]; k++)
        if ((unsigned char)h->uid[k] < 0x20 || (unsigned char)h->uid[k] > 0x7e)
            return hq_err_set(err, "file header: server uid is not printable");
    return 0;
}

/* ---- scanning ---- */

static bool s_all_zero(const uint8_t *p, size_t n)
{
    static const uint8_t zero[4096];
    while (n) {
        size_t k = n < sizeof zero ? n : sizeof zero;
        if (memcmp(p, zero, k) != 0)
            return false;
        p += k;
        n -= k;
    }
    return true;
}

/* Frame check only: 0 = a whole frame with a good CRC of *plen payload bytes. */
static int s_frame(const uint8_t *buf, size_t len, size_t off, uint32_t *plen, char *why,
                   size_t whylen)
{
    size_t left = len - off;
    if (left < HQ_JFRAME_SIZE) {
        snprintf(why, whylen, "frame header truncated (%zu bytes left)", left);
        return -1;
    }
    uint32_t n = s_rd32(buf + off), crc = s_rd32(buf + off + 4);
    if (n > HQ_JREC_MAX) {
        snprintf(why, whylen, "record length %u exceeds the cap (%u)", n, HQ_JREC_MAX);
        return -1;
    }
    if (n > left - HQ_JFRAME_SIZE) {
        snprintf(why, whylen, "record of %u bytes truncated (%zu bytes left)", n,
                 left - HQ_JFRAME_SIZE);
        return -1;
    }
    if (n == 0) {
        snprintf(why, whylen, "empty record");
        return -1;
    }
    uint32_t want = hq_crc32c(hq_crc32c(0, buf + off, 4), buf + off + 8, n);
    if (crc != want) {
        snprintf(why, whylen, "CRC mismatch (stored %08x, computed %08x)", crc, want);
        return -1;
    }
    *plen = n;
    return 0;
}

/* Whether any valid record starts after off (torn tail vs corruption). Cheap filters
 * (payload starts with a record array and a known type) before a CRC is computed. */
static bool s_valid_after(const uint8_t *buf, size_t len, size_t off, hq_jscratch_t *sc)
{
    char why[8];
    for (size_t p = off + 1; p + HQ_JFRAME_SIZE + 3 <= len; p++) {
        uint8_t a = buf[p + 8], t = buf[p + 9];
        if (a < 0x93 || a > 0x9c || t == 0 || t > HQ_JR_TYPE_MAX || buf[p] == 0)
            continue;
        uint32_t n;
        if (s_frame(buf, len, p, &n, why, sizeof why) < 0)
            continue;
        hq_jrec_t r;
        hq_err_t e;
        if (hq_jrec_decode(buf + p + 8, n, &r, sc, &e) == 0) {
            hq_jrec_clear(&r);
            return true;
        }
    }
    return false;
}

int hq_jscan_records(const uint8_t *buf, size_t len, uint64_t prev_lsn, uint64_t max_lsn,
                     hq_jscan_fn *fn, void *arg, hq_jscan_t *st, hq_err_t *err)
{
    memset(st, 0, sizeof *st);
    hq_jscratch_t sc = {0};
    size_t off = 0;
    uint64_t last = prev_lsn;
    int rc = 0;
    for (;;) {
        if (off == len || (buf[off] == 0 && s_all_zero(buf + off, len - off))) {
            st->clean_end = true;
            break;
        }
        uint32_t n;
        if (s_frame(buf, len, off, &n, st->bad, sizeof st->bad) < 0)
            break;
        hq_jrec_t r;
        hq_err_t e;
        if (hq_jrec_decode(buf + off + 8, n, &r, &sc, &e) < 0) {
            snprintf(st->bad, sizeof st->bad, "%.500s", e.text);
            break;
        }
        bool ok = st->n_records ? r.lsn == last + 1 : r.lsn > prev_lsn;
        if (!ok) {
            snprintf(st->bad, sizeof st->bad, "lsn %llu does not follow lsn %llu",
                     (unsigned long long)r.lsn, (unsigned long long)last);
            hq_jrec_clear(&r);
            break;
        }
        if (max_lsn && r.lsn > max_lsn) {
            hq_jrec_clear(&r);
            st->stopped_by_limit = true;
            break;
        }
        if (fn && fn(&r, off, arg, err) < 0) {
            hq_jrec_clear(&r);
            rc = -1;
            break;
        }
        hq_jrec_clear(&r);
        if (!st->n_records)
            st->first_lsn = r.lsn;
        st->n_records++;
        last = st->last_lsn = r.lsn;
        off += HQ_JFRAME_SIZE + n;
    }
    st->end = off;
    if (rc == 0 && !st->clean_end && !st->stopped_by_limit)
        st->valid_after = s_valid_after(buf, len, off, &sc);
    hq_jscratch_free(&sc);
    return rc;
}
