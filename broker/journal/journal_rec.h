/* Journal records without I/O: CRC32C, the record frame, the records' msgpack payload
 * (encoded by hand, decoded through the bounded hq_mpr reader), the segment/snapshot
 * file header and a scanner over one file image in memory. The record type itself is
 * in hq_journal.h. The file layer (journal_read.c, segment.c, ...) and the fuzz target
 * share this code, so what is fuzzed is exactly what replay runs. Implemented by
 * hq_crc32c.c (proto/util), rec_encode.c (encoder), rec_decode.c and scan.c (header and scanner).
 * Format: broker/JOURNAL.md. */
#ifndef HQ_BROKER_JOURNAL_REC_H
#define HQ_BROKER_JOURNAL_REC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hq_crc32c.h"
#include "hq_err.h"
#include "hq_journal.h"
#include "hq_msg.h"

#define HQ_JFORMAT_MAJOR 1
/* Minor 1: a job-submit's SUBMIT frame may carry the 11th field (idempotency key).
 * Minor 2: tasks-started and tasks-finished records (types 18, 19).
 * Minor 3: worker-overview records (type 20) and tasks-started-v records (type 21:
 * tasks started on resource variant k > 0).
 * Minor 4: a worker-up's REGISTER frame may carry the 6th field, which there holds the
 * hash of the session's reconnect secret; task-started-mn records (type 26: a
 * multi-node task and all its nodes); automatic allocation records (types 22 to 25).
 * This build reads minors 0 to 4; an older one refuses a newer minor instead of
 * misreading its records as a torn tail. */
#define HQ_JFORMAT_MINOR 4
#define HQ_JHEADER_SIZE 64              /* file header bytes */
#define HQ_JFRAME_SIZE 8                /* u32 len | u32 crc */
#define HQ_JREC_MAX (16u * 1024 * 1024) /* payload cap */
#define HQ_JMAX_RANGES (1u << 24)       /* ranges in one tasks_* record */
#define HQ_JMAX_INSTS (1u << 20)        /* instances in one tasks_started/finished record */
#define HQ_JMAX_NODES (1u << 16)        /* nodes of one task_started_mn record */

/* Appends the framed record (frame + payload) to buf at *len, growing *buf and *cap with
 * hq_realloc. Returns 0, or -1 (nothing appended) when the record breaks a limit the
 * decoder enforces (string over HQ_MAX_STR, payload over HQ_JREC_MAX, a bad range, a
 * submit/register the codec refuses). */
int hq_jrec_frame(const hq_jrec_t *rec, uint8_t **buf, size_t *len, size_t *cap, hq_err_t *err);

/* Releases what a decoded record owns (job_submit.msg, worker_up.msg). */
void hq_jrec_clear(hq_jrec_t *rec);

/* Scratch memory for decoded strings and ranges (reused between records). */
typedef struct hq_jscratch {
    uint8_t *data; /* owned */
    size_t cap;    /* allocated */
    size_t used;   /* in use by the current record */
} hq_jscratch_t;
void hq_jscratch_free(hq_jscratch_t *s);

/* Decodes one payload (all-or-nothing; the whole payload must be consumed). Strings
 * and ranges are copied into sc. Returns 0 or -1 with a precise message. An unknown
 * type fails with "unknown record type N". */
int hq_jrec_decode(const uint8_t *payload, size_t len, hq_jrec_t *out, hq_jscratch_t *sc,
                   hq_err_t *err);

/* ---- file header ---- */

enum hq_jfile_kind { HQ_JFILE_SEGMENT = 0, HQ_JFILE_SNAPSHOT = 1 };

typedef struct hq_jheader {
    enum hq_jfile_kind kind; /* from the magic */
    uint16_t major, minor;   /* format version */
    uint64_t seq;            /* segment: its sequence number; snapshot: its lsn */
    uint64_t created_ns;     /* wall time of creation */
    uint64_t prev_lsn;       /* segment: last durable lsn before it; snapshot: 0 */
    char uid[17];            /* server uid, NUL-terminated */
} hq_jheader_t;

void hq_jheader_encode(const hq_jheader_t *h, uint8_t out[HQ_JHEADER_SIZE]);
/* Checks size, magic, CRC and version. Returns 0, -1 (damaged: err says why) or -2
 * (a version this build cannot read: err names both versions). */
int hq_jheader_decode(const uint8_t *buf, size_t len, hq_jheader_t *h, hq_err_t *err);

/* ---- scanning one file image ---- */

/* Called for each valid record in order; return 0 to go on, -1 to stop the scan
 * (the scan then returns -1 with the callback's err). */
typedef int(hq_jscan_fn)(const hq_jrec_t *rec, size_t offset, void *arg, hq_err_t *err);

typedef struct hq_jscan {
    size_t end;            /* offset after the last valid record */
    uint64_t n_records;    /* valid records */
    uint64_t first_lsn;    /* of the first valid record (0 = none) */
    uint64_t last_lsn;     /* of the last valid record (0 = none) */
    bool clean_end;        /* stopped at EOF or at zeros running to EOF */
    bool stopped_by_limit; /* stopped because the next lsn was beyond max_lsn */
    bool valid_after;      /* not clean: a valid frame exists after the bad spot */
    char bad[512];         /* not clean: why the record at `end` is invalid */
} hq_jscan_t;

/* Scans the records of a file image (buf = the bytes after its header): checks each
 * frame (length cap, CRC), decodes the payload through the schema decoder and checks
 * lsn continuity (the first lsn > prev_lsn, then +1 each). Records with lsn > max_lsn
 * (0 = no limit) end the scan (stopped_by_limit). The first invalid record ends it too:
 * st->end is its offset, st->bad says why and st->valid_after whether a valid frame
 * follows somewhere (torn tail vs corruption). Returns 0 (st says how it ended) or -1
 * if fn stopped it. fn may be NULL (validate only). Offsets are relative to buf. */
int hq_jscan_records(const uint8_t *buf, size_t len, uint64_t prev_lsn, uint64_t max_lsn,
                     hq_jscan_fn *fn, void *arg, hq_jscan_t *st, hq_err_t *err);

#endif
