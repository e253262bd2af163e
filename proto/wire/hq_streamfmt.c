/* The stream file format (see hq_streamfmt.h): header and chunk codec. */
#include "hq_streamfmt.h"

#include <string.h>

#include "hq_crc32c.h"

static void s_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void s_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t s_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t s_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t s_get64(const uint8_t *p)
{
    return (uint64_t)s_get32(p) | (uint64_t)s_get32(p + 4) << 32;
}

void hq_sf_header_encode(const hq_sf_header_t *h, uint8_t out[HQ_SF_HEADER_SIZE])
{
    memset(out, 0, HQ_SF_HEADER_SIZE);
    memcpy(out, HQ_SF_MAGIC, 8);
    s_put16(out + 8, (uint16_t)h->version);
    s_put32(out + 12, h->worker_id);
    s_put64(out + 16, h->created_ns);
    size_t ul = strnlen(h->server_uid, HQ_SF_UID_MAX);
    memcpy(out + 24, h->server_uid, ul);
    s_put32(out + 44, hq_crc32c(0, out, 44));
}

int hq_sf_header_decode(const uint8_t *p, size_t n, hq_sf_header_t *h, hq_err_t *err)
{
    memset(h, 0, sizeof *h);
    if (n == 0)
        return 1;
    if (memcmp(p, HQ_SF_MAGIC, n < 8 ? n : 8) != 0)
        return hq_err_set(err, "not a stream file (no `" HQ_SF_MAGIC "` header)");
    if (n < HQ_SF_HEADER_SIZE)
        return 1;
    if (s_get32(p + 44) != hq_crc32c(0, p, 44))
        return hq_err_set(err, "the stream file header is damaged (checksum mismatch)");
    h->version = s_get16(p + 8);
    if (h->version != HQ_SF_VERSION)
        return hq_err_set(err,
                          "stream format version %u is not supported: this hq reads version %d",
                          h->version, HQ_SF_VERSION);
    h->worker_id = s_get32(p + 12);
    h->created_ns = s_get64(p + 16);
    memcpy(h->server_uid, p + 24, HQ_SF_UID_MAX);
    h->server_uid[HQ_SF_UID_MAX] = '\0';
    return 0;
}

static void s_chunk_head(const hq_sf_chunk_t *c, uint8_t *out)
{
    memset(out, 0, HQ_SF_CHUNK_SIZE);
    out[0] = c->kind;
    s_put32(out + 4, c->job);
    s_put32(out + 8, c->task);
    s_put32(out + 12, c->instance);
    s_put64(out + 16, c->time_ns);
    s_put32(out + 24, c->len);
}

void hq_sf_chunk_encode(const hq_sf_chunk_t *c, const void *data, uint8_t out[HQ_SF_CHUNK_SIZE])
{
    s_chunk_head(c, out);
    uint32_t crc = hq_crc32c(0, out, 28);
    if (c->len)
        crc = hq_crc32c(crc, data, c->len);
    s_put32(out + 28, crc);
}

int hq_sf_chunk_decode(const uint8_t *p, size_t n, hq_sf_chunk_t *c, const uint8_t **data,
                       hq_err_t *err)
{
    memset(c, 0, sizeof *c);
    *data = NULL;
    if (n < HQ_SF_CHUNK_SIZE)
        return 1;
    c->kind = p[0];
    c->job = s_get32(p + 4);
    c->task = s_get32(p + 8);
    c->instance = s_get32(p + 12);
    c->time_ns = s_get64(p + 16);
    c->len = s_get32(p + 24);
    if (c->kind > HQ_SF_END || p[1] || s_get16(p + 2))
        return hq_err_set(err, "invalid chunk header (kind %u)", (unsigned)p[0]);
    if (c->len > HQ_SF_DATA_MAX || (c->kind >= HQ_SF_START && c->len != 0))
        return hq_err_set(err, "invalid chunk length %u", c->len);
    if (n - HQ_SF_CHUNK_SIZE < c->len)
        return 1;
    uint32_t crc = hq_crc32c(0, p, 28);
    if (c->len)
        crc = hq_crc32c(crc, p + HQ_SF_CHUNK_SIZE, c->len);
    if (crc != s_get32(p + 28))
        return hq_err_set(err, "chunk checksum mismatch");
    *data = p + HQ_SF_CHUNK_SIZE;
    return 0;
}
