/* The stream file format of `--stream DIR` (cli/REFERENCE.md §3.6): what a worker
 * writes and `hq output-log` / `hq job cat` read. Pure encoding and decoding, no I/O.
 *
 * A file starts with a header (HQ_SF_HEADER_SIZE bytes, little-endian):
 *   magic "hqstream" | u16 version | u16 0 | u32 worker id | u64 created (wall ns) |
 *   server uid (16 bytes, NUL padded) | u32 0 | u32 CRC32C of the 44 bytes before it
 * followed by chunks, each a HQ_SF_CHUNK_SIZE header and len data bytes:
 *   u8 kind | u8 0 | u16 0 | u32 job | u32 task | u32 instance | u64 time (wall ns) |
 *   u32 len | u32 CRC32C of the 28 header bytes before it and the data
 * Kinds: 0 stdout data, 1 stderr data, 2 the stream of a task instance opens, 3 it
 * closes (the task ended and all its output is in the file). */
#ifndef HQ_STREAMFMT_H
#define HQ_STREAMFMT_H

#include <stddef.h>
#include <stdint.h>

#include "hq_err.h"

#define HQ_SF_MAGIC "hqstream"
#define HQ_SF_VERSION 1
#define HQ_SF_HEADER_SIZE 48
#define HQ_SF_CHUNK_SIZE 32
#define HQ_SF_UID_MAX 16
#define HQ_SF_DATA_MAX (1u << 20) /* data bytes in one chunk (writers cut longer output) */
#define HQ_SF_SUFFIX ".hqs"       /* file name suffix the readers look for */

enum hq_sf_kind { HQ_SF_STDOUT = 0, HQ_SF_STDERR = 1, HQ_SF_START = 2, HQ_SF_END = 3 };

typedef struct hq_sf_header {
    uint32_t version;
    uint32_t worker_id;
    uint64_t created_ns;
    char server_uid[HQ_SF_UID_MAX + 1];
} hq_sf_header_t;

typedef struct hq_sf_chunk {
    uint8_t kind; /* enum hq_sf_kind */
    uint32_t job;
    uint32_t task;
    uint32_t instance;
    uint64_t time_ns;
    uint32_t len; /* data bytes after the chunk header */
} hq_sf_chunk_t;

void hq_sf_header_encode(const hq_sf_header_t *h, uint8_t out[HQ_SF_HEADER_SIZE]);
/* 0 and *h, 1 when fewer than HQ_SF_HEADER_SIZE bytes are there, -1 with err when the
 * bytes are not a stream file header of a version this hq reads. */
int hq_sf_header_decode(const uint8_t *p, size_t n, hq_sf_header_t *h, hq_err_t *err);

/* The chunk header of c over data (c->len bytes). */
void hq_sf_chunk_encode(const hq_sf_chunk_t *c, const void *data, uint8_t out[HQ_SF_CHUNK_SIZE]);
/* Decodes the chunk at p (n bytes available). 0: *c filled and *data points at its
 * c->len data bytes; 1: the chunk is not complete in n bytes (a torn tail at the end of
 * a file); -1 with err: not a valid chunk (bad kind, length over HQ_SF_DATA_MAX, CRC). */
int hq_sf_chunk_decode(const uint8_t *p, size_t n, hq_sf_chunk_t *c, const uint8_t **data,
                       hq_err_t *err);

#endif
