/* libFuzzer target for the stream file reader: any byte string is taken as a stream file
 * (proto/wire/hq_streamfmt.h) and read as `hq output-log` reads one (cli/outlog.c:
 * header, chunks, CRC, the torn-tail rule, the index of task instances). It must never
 * crash or read out of bounds, and every chunk it accepts must re-encode to the same
 * bytes. Seed corpus: tests/fuzz/corpus-stream (files written by test_stream_files with
 * HQ_FUZZ_CORPUS_OUT=tests/fuzz/corpus-stream). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hq_log.h"
#include "hq_streamfmt.h"
#include "outlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char s_dir[64];
static char s_path[96];

static void s_die(const char *what)
{
    fprintf(stderr, "fuzz_stream: %s\n", what);
    abort();
}

/* The codec alone: each accepted chunk re-encodes to its own bytes. */
static void s_codec(const uint8_t *data, size_t size)
{
    hq_sf_header_t h;
    hq_err_t err;
    if (hq_sf_header_decode(data, size, &h, &err) != 0)
        return;
    size_t off = HQ_SF_HEADER_SIZE;
    for (;;) {
        hq_sf_chunk_t c;
        const uint8_t *d;
        if (hq_sf_chunk_decode(data + off, size - off, &c, &d, &err) != 0)
            break;
        uint8_t head[HQ_SF_CHUNK_SIZE];
        hq_sf_chunk_encode(&c, d, head);
        if (memcmp(head, data + off, HQ_SF_CHUNK_SIZE) != 0)
            s_die("an accepted chunk does not re-encode to its bytes");
        off += HQ_SF_CHUNK_SIZE + c.len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_dir[0]) {
        snprintf(s_dir, sizeof s_dir, "/tmp/hq-fuzz-stream-XXXXXX");
        if (!mkdtemp(s_dir))
            s_die("cannot make a temporary directory");
        snprintf(s_path, sizeof s_path, "%s/f.hqs", s_dir);
        setenv("RUST_LOG", "off", 1); /* the reader reports bad chunks on stderr */
        hq_log_init(false);
    }
    s_codec(data, size);
    FILE *f = fopen(s_path, "wb");
    if (!f)
        s_die("cannot write the temporary file");
    if (size && fwrite(data, 1, size, f) != size)
        s_die("short write");
    fclose(f);
    hq_olog_t o;
    hq_err_t err;
    if (hq_olog_open(&o, s_dir, NULL, &err) == 0) {
        hq_olog_index(&o);
        uint64_t total = 0;
        for (size_t i = 0; i < o.n_streams; i++) {
            const hq_ol_stream_t *s = hq_olog_find(&o, o.streams[i].job, o.streams[i].task);
            if (!s || s->superseded)
                s_die("a task without its latest stream");
            total += o.streams[i].size[0] + o.streams[i].size[1];
        }
        if (total > size)
            s_die("more data than bytes");
    }
    hq_olog_close(&o);
    return 0;
}
