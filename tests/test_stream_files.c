/* The stream file format (proto/wire/hq_streamfmt.h) and its reader (cli/outlog.c):
 * chunks round-trip, a short tail is "incomplete" rather than an error, any flipped
 * bit is caught by the CRC, and the reader indexes the latest instance of each task.
 * With HQ_FUZZ_CORPUS_OUT set, the files written here seed tests/fuzz/corpus-stream. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_streamfmt.h"
#include "hq_util.h"
#include "outlog.h"

/* Appends a chunk to buf at *len. */
static void s_chunk(uint8_t *buf, size_t *len, uint8_t kind, uint32_t job, uint32_t task,
                    uint32_t inst, const char *data)
{
    hq_sf_chunk_t c = {.kind = kind,
                       .job = job,
                       .task = task,
                       .instance = inst,
                       .time_ns = 1000 + *len,
                       .len = data ? (uint32_t)strlen(data) : 0};
    hq_sf_chunk_encode(&c, data, buf + *len);
    if (c.len)
        memcpy(buf + *len + HQ_SF_CHUNK_SIZE, data, c.len);
    *len += HQ_SF_CHUNK_SIZE + c.len;
}

static size_t s_file(uint8_t *buf, const char *uid)
{
    hq_sf_header_t h = {.version = HQ_SF_VERSION, .worker_id = 3, .created_ns = 42};
    snprintf(h.server_uid, sizeof h.server_uid, "%s", uid);
    hq_sf_header_encode(&h, buf);
    size_t len = HQ_SF_HEADER_SIZE;
    s_chunk(buf, &len, HQ_SF_START, 1, 0, 0, NULL);
    s_chunk(buf, &len, HQ_SF_STDOUT, 1, 0, 0, "first\n");
    s_chunk(buf, &len, HQ_SF_START, 1, 1, 0, NULL);
    s_chunk(buf, &len, HQ_SF_STDERR, 1, 1, 0, "oops\n");
    s_chunk(buf, &len, HQ_SF_END, 1, 1, 0, NULL);
    s_chunk(buf, &len, HQ_SF_START, 1, 0, 1, NULL); /* a rerun of task 0 */
    s_chunk(buf, &len, HQ_SF_STDOUT, 1, 0, 1, "second\n");
    s_chunk(buf, &len, HQ_SF_END, 1, 0, 1, NULL);
    return len;
}

static void s_write(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(buf, 1, len, f), len);
    fclose(f);
    const char *out = getenv("HQ_FUZZ_CORPUS_OUT");
    if (out) {
        char *p = hq_asprintf("%s/%s", out, strrchr(path, '/') + 1);
        FILE *g = fopen(p, "wb");
        if (g) {
            fwrite(buf, 1, len, g);
            fclose(g);
        }
        free(p);
    }
}

Test(stream_files, header_and_chunks_round_trip)
{
    uint8_t buf[4096];
    size_t len = s_file(buf, "abc123");
    hq_sf_header_t h;
    hq_err_t err;
    cr_assert_eq(hq_sf_header_decode(buf, len, &h, &err), 0, "%s", err.text);
    cr_assert_str_eq(h.server_uid, "abc123");
    cr_assert_eq(h.worker_id, 3);
    cr_assert_eq(h.created_ns, 42);
    size_t off = HQ_SF_HEADER_SIZE;
    int n = 0;
    while (off < len) {
        hq_sf_chunk_t c;
        const uint8_t *data;
        cr_assert_eq(hq_sf_chunk_decode(buf + off, len - off, &c, &data, &err), 0, "%s", err.text);
        if (n == 1)
            cr_assert(c.kind == HQ_SF_STDOUT && c.len == 6 && memcmp(data, "first\n", 6) == 0);
        off += HQ_SF_CHUNK_SIZE + c.len;
        n++;
    }
    cr_assert_eq(n, 8);
}

Test(stream_files, a_short_tail_is_incomplete_and_every_flipped_bit_is_caught)
{
    uint8_t buf[4096];
    size_t len = s_file(buf, "abc123");
    size_t first = HQ_SF_HEADER_SIZE + HQ_SF_CHUNK_SIZE; /* the "first\n" chunk */
    size_t clen = HQ_SF_CHUNK_SIZE + 6;
    hq_sf_chunk_t c;
    const uint8_t *data;
    hq_err_t err;
    for (size_t cut = 0; cut < clen; cut++)
        cr_assert_eq(hq_sf_chunk_decode(buf + first, cut, &c, &data, &err), 1, "cut %zu", cut);
    for (size_t bit = 0; bit < clen * 8; bit++) {
        buf[first + bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int rc = hq_sf_chunk_decode(buf + first, len - first, &c, &data, &err);
        /* a flipped length bit may also make the chunk look longer than the file */
        cr_assert(rc == -1 || (rc == 1 && bit / 8 >= 24 && bit / 8 < 28), "bit %zu: %d", bit, rc);
        buf[first + bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    buf[3] = 'X';
    cr_assert_eq(hq_sf_header_decode(buf, len, &(hq_sf_header_t){0}, &err), -1);
    cr_assert(strstr(err.text, "not a stream file"));
    cr_assert_eq(hq_sf_header_decode((const uint8_t *)"hqst", 4, &(hq_sf_header_t){0}, &err), 1);
}

Test(stream_files, the_reader_indexes_the_latest_instance_of_each_task)
{
    char tmpl[] = "/tmp/hq-test-streamXXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    uint8_t buf[4096];
    size_t len = s_file(buf, "abc123");
    char *path = hq_asprintf("%s/one.hqs", tmpl);
    s_write(path, buf, len);
    hq_olog_t o;
    hq_err_t err;
    cr_assert_eq(hq_olog_open(&o, tmpl, NULL, &err), 0, "%s", err.text);
    hq_olog_index(&o);
    cr_assert_eq(o.n_streams, 3);
    const hq_ol_stream_t *s = hq_olog_find(&o, 1, 0);
    cr_assert(s && s->instance == 1 && s->finished && s->size[0] == 7);
    cr_assert(o.streams[0].superseded && !o.streams[0].finished);
    s = hq_olog_find(&o, 1, 1);
    cr_assert(s && s->size[1] == 5 && s->finished);
    cr_assert_null(hq_olog_find(&o, 2, 0));
    hq_olog_close(&o);
    /* another server's file in the same directory */
    size_t len2 = s_file(buf, "zzz999");
    char *path2 = hq_asprintf("%s/two.hqs", tmpl);
    s_write(path2, buf, len2);
    cr_assert_eq(hq_olog_open(&o, tmpl, NULL, &err), -1);
    cr_assert(strstr(err.text, "Found streams from multiple server instances:\nabc123\nzzz999\n"),
              "%s", err.text);
    hq_olog_close(&o);
    cr_assert_eq(hq_olog_open(&o, tmpl, "zzz999", &err), 0, "%s", err.text);
    hq_olog_close(&o);
    remove(path);
    remove(path2);
    remove(tmpl);
    free(path);
    free(path2);
}
