/* The stream reader behind `hq output-log` and `hq job cat` of streamed jobs: reads the
 * stream files of a directory (written by any number of workers, see
 * proto/wire/hq_streamfmt.h) into an index of chunks and task-instance streams. A torn
 * tail (a worker killed in the middle of a write) ends a file quietly; a corrupt chunk
 * is reported with its file and byte offset and ends that file, the rest is still read.
 * Files can be read again as they grow (--follow). */
#ifndef HQ_CLI_OUTLOG_H
#define HQ_CLI_OUTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hq_err.h"
#include "hq_streamfmt.h"
#include "hq_util.h"

typedef struct hq_ol_chunk {
    uint32_t job, task, instance;
    uint8_t kind; /* enum hq_sf_kind */
    uint32_t file;
    uint32_t len;
    uint64_t off; /* of the data in the file */
    uint64_t time_ns;
} hq_ol_chunk_t;

typedef struct hq_ol_file {
    char *path;
    hq_sf_header_t head;
    bool has_head; /* the header was read */
    bool skip;     /* another server instance's file, or unreadable */
    bool bad;      /* a corrupt chunk ended it */
    uint8_t *data; /* what was read of it */
    size_t len, cap;
    size_t parsed; /* offset after the last whole chunk */
} hq_ol_file_t;

/* The output of one task instance (a stream). */
typedef struct hq_ol_stream {
    uint32_t job, task, instance;
    bool finished;   /* its end chunk was read */
    bool superseded; /* a later instance of the task exists */
    uint64_t size[2];
    size_t first, n; /* its chunks: index->order[first .. first + n) */
} hq_ol_stream_t;

typedef struct hq_olog {
    char *dir;
    char *server_uid; /* only files of this server (NULL: one server, found) */
    hq_ol_file_t *files;
    uint32_t n_files;
    hq_ol_chunk_t *chunks; /* in the order read */
    size_t n_chunks, cap_chunks;
    uint32_t n_errors; /* corrupt chunks and unreadable files reported */
    /* the index (hq_olog_index) */
    size_t *order; /* chunk indices by job, task, instance, file order */
    hq_ol_stream_t *streams;
    size_t n_streams;
} hq_olog_t;

/* Lists dir's stream files (*.hqs) and reads them. server_uid (or NULL) picks one
 * server's files. -1 with err: the directory cannot be read, no stream file,
 * "Found streams from multiple server instances: ..." when server_uid is NULL. */
int hq_olog_open(hq_olog_t *o, const char *dir, const char *server_uid, hq_err_t *err);
/* An empty reader of dir for hq_olog_poll (following a directory that may not hold
 * any file yet); server_uid as for hq_olog_open but required to be known. */
void hq_olog_init(hq_olog_t *o, const char *dir, const char *server_uid);
/* Reads what was written since (new files too). Returns the number of new chunks. */
size_t hq_olog_poll(hq_olog_t *o);
/* (Re)builds the streams of the chunks read so far. */
void hq_olog_index(hq_olog_t *o);
/* The latest stream of job/task, or NULL. Needs the index. */
const hq_ol_stream_t *hq_olog_find(const hq_olog_t *o, uint32_t job, uint32_t task);
/* The data bytes of a chunk. */
const uint8_t *hq_olog_data(const hq_olog_t *o, const hq_ol_chunk_t *c);
/* Writes the data of channel (0 stdout, 1 stderr) of stream s (NULL: nothing) to out,
 * or appends it to buf when buf is not NULL. */
void hq_olog_write(const hq_olog_t *o, const hq_ol_stream_t *s, int channel, FILE *out,
                   hq_buf_t *buf);
void hq_olog_close(hq_olog_t *o);

#endif
