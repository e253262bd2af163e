/* A bounded msgpack reader (no allocation, no reads past the end) and the bump arena
 * that owns everything a decoded message points to. */
#include "hq_mpr.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

static uint64_t s_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int k = 0; k < n; k++)
        v = (v << 8) | p[k];
    return v;
}

const char *hq_mpr_peek_name(const hq_mpr_t *r)
{
    if (r->p >= r->end)
        return "end of data";
    uint8_t b = *r->p;
    if (b <= 0x7f || (b >= 0xcc && b <= 0xcf))
        return "unsigned integer";
    if (b >= 0xe0 || (b >= 0xd0 && b <= 0xd3))
        return "signed integer";
    if ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf)
        return "map";
    if ((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd)
        return "array";
    if ((b & 0xe0) == 0xa0 || (b >= 0xd9 && b <= 0xdb))
        return "str";
    switch (b) {
    case 0xc0:
        return "nil";
    case 0xc1:
        return "reserved byte 0xc1";
    case 0xc2:
    case 0xc3:
        return "bool";
    case 0xc4:
    case 0xc5:
    case 0xc6:
        return "bin";
    case 0xca:
    case 0xcb:
        return "float";
    default:
        return "ext";
    }
}

int hq_mpr_integer(hq_mpr_t *r, hq_mpr_int_t *out)
{
    size_t left = hq_mpr_left(r);
    if (left < 1)
        return HQ_MPR_TRUNCATED;
    uint8_t b = r->p[0];
    if (b <= 0x7f) {
        out->neg = false;
        out->u = b;
        r->p += 1;
        return HQ_MPR_OK;
    }
    if (b >= 0xe0) {
        out->neg = true;
        out->i = (int8_t)b;
        r->p += 1;
        return HQ_MPR_OK;
    }
    int n;
    bool is_signed;
    switch (b) {
    case 0xcc:
        n = 1;
        is_signed = false;
        break;
    case 0xcd:
        n = 2;
        is_signed = false;
        break;
    case 0xce:
        n = 4;
        is_signed = false;
        break;
    case 0xcf:
        n = 8;
        is_signed = false;
        break;
    case 0xd0:
        n = 1;
        is_signed = true;
        break;
    case 0xd1:
        n = 2;
        is_signed = true;
        break;
    case 0xd2:
        n = 4;
        is_signed = true;
        break;
    case 0xd3:
        n = 8;
        is_signed = true;
        break;
    default:
        return HQ_MPR_TYPE;
    }
    if (left < (size_t)1 + (size_t)n)
        return HQ_MPR_TRUNCATED;
    uint64_t raw = s_be(r->p + 1, n);
    if (!is_signed) {
        out->neg = false;
        out->u = raw;
    } else {
        /* sign-extend the n-byte two's complement value */
        int64_t v;
        if (n == 8) {
            memcpy(&v, &raw, sizeof v);
        } else {
            int shift = 64 - 8 * n;
            uint64_t ext = raw << shift;
            int64_t tmp;
            memcpy(&tmp, &ext, sizeof tmp);
            v = tmp >> shift;
        }
        if (v < 0) {
            out->neg = true;
            out->i = v;
        } else {
            out->neg = false;
            out->u = (uint64_t)v;
        }
    }
    r->p += 1 + n;
    return HQ_MPR_OK;
}

int hq_mpr_bool(hq_mpr_t *r, bool *out)
{
    if (hq_mpr_left(r) < 1)
        return HQ_MPR_TRUNCATED;
    if (r->p[0] != 0xc2 && r->p[0] != 0xc3)
        return HQ_MPR_TYPE;
    *out = r->p[0] == 0xc3;
    r->p += 1;
    return HQ_MPR_OK;
}

int hq_mpr_double(hq_mpr_t *r, double *out)
{
    size_t left = hq_mpr_left(r);
    if (left < 1)
        return HQ_MPR_TRUNCATED;
    if (r->p[0] == 0xca) {
        if (left < 5)
            return HQ_MPR_TRUNCATED;
        uint32_t raw = (uint32_t)s_be(r->p + 1, 4);
        float f;
        memcpy(&f, &raw, sizeof f);
        *out = f;
        r->p += 5;
        return HQ_MPR_OK;
    }
    if (r->p[0] == 0xcb) {
        if (left < 9)
            return HQ_MPR_TRUNCATED;
        uint64_t raw = s_be(r->p + 1, 8);
        memcpy(out, &raw, sizeof *out);
        r->p += 9;
        return HQ_MPR_OK;
    }
    return HQ_MPR_TYPE;
}

bool hq_mpr_is_nil(const hq_mpr_t *r)
{
    return r->p < r->end && r->p[0] == 0xc0;
}

int hq_mpr_nil(hq_mpr_t *r)
{
    if (hq_mpr_left(r) < 1)
        return HQ_MPR_TRUNCATED;
    if (r->p[0] != 0xc0)
        return HQ_MPR_TYPE;
    r->p += 1;
    return HQ_MPR_OK;
}

int hq_mpr_array(hq_mpr_t *r, uint32_t *n)
{
    size_t left = hq_mpr_left(r);
    if (left < 1)
        return HQ_MPR_TRUNCATED;
    uint8_t b = r->p[0];
    if ((b & 0xf0) == 0x90) {
        *n = b & 0x0f;
        r->p += 1;
        return HQ_MPR_OK;
    }
    int w = b == 0xdc ? 2 : b == 0xdd ? 4 : 0;
    if (!w)
        return HQ_MPR_TYPE;
    if (left < (size_t)1 + (size_t)w)
        return HQ_MPR_TRUNCATED;
    *n = (uint32_t)s_be(r->p + 1, w);
    r->p += 1 + w;
    return HQ_MPR_OK;
}

/* Shared by str and bin: w = width of the length field (0: fixstr length in b). */
static int s_blob(hq_mpr_t *r, int w, uint32_t fixlen, const uint8_t **data, uint32_t *len)
{
    size_t left = hq_mpr_left(r);
    if (left < (size_t)1 + (size_t)w)
        return HQ_MPR_TRUNCATED;
    uint32_t n = w ? (uint32_t)s_be(r->p + 1, w) : fixlen;
    if ((size_t)n > left - 1 - (size_t)w)
        return HQ_MPR_TRUNCATED;
    *data = r->p + 1 + w;
    *len = n;
    r->p += 1 + (size_t)w + n;
    return HQ_MPR_OK;
}

int hq_mpr_str(hq_mpr_t *r, const uint8_t **data, uint32_t *len)
{
    if (hq_mpr_left(r) < 1)
        return HQ_MPR_TRUNCATED;
    uint8_t b = r->p[0];
    if ((b & 0xe0) == 0xa0)
        return s_blob(r, 0, b & 0x1f, data, len);
    switch (b) {
    case 0xd9:
        return s_blob(r, 1, 0, data, len);
    case 0xda:
        return s_blob(r, 2, 0, data, len);
    case 0xdb:
        return s_blob(r, 4, 0, data, len);
    default:
        return HQ_MPR_TYPE;
    }
}

int hq_mpr_bin(hq_mpr_t *r, const uint8_t **data, uint32_t *len)
{
    if (hq_mpr_left(r) < 1)
        return HQ_MPR_TRUNCATED;
    switch (r->p[0]) {
    case 0xc4:
        return s_blob(r, 1, 0, data, len);
    case 0xc5:
        return s_blob(r, 2, 0, data, len);
    case 0xc6:
        return s_blob(r, 4, 0, data, len);
    default:
        return HQ_MPR_TYPE;
    }
}

/* ---- arena ---- */

#define S_ARENA_MIN 1024
#define S_ARENA_MAX_BLOCK (4u << 20)

typedef struct s_block {
    struct s_block *next; /* older blocks */
    size_t cap;           /* usable bytes in data */
    size_t used;          /* bytes handed out */
    _Alignas(16) unsigned char data[];
} s_block_t;

struct hq_arena {
    s_block_t *head;  /* block being filled (first in the list) */
    size_t next_cap;  /* size of the next ordinary block */
    size_t footprint; /* bytes malloc'd */
};

static _Atomic size_t s_highwater;

static s_block_t *s_block_new(hq_arena_t *a, size_t cap)
{
    s_block_t *b = hq_malloc(sizeof *b + cap);
    b->next = NULL;
    b->cap = cap;
    b->used = 0;
    a->footprint += sizeof *b + cap;
    size_t hw = atomic_load_explicit(&s_highwater, memory_order_relaxed);
    while (a->footprint > hw &&
           !atomic_compare_exchange_weak_explicit(&s_highwater, &hw, a->footprint,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
    return b;
}

size_t hq_arena_highwater(void)
{
    return atomic_load_explicit(&s_highwater, memory_order_relaxed);
}

void hq_arena_highwater_reset(void)
{
    atomic_store_explicit(&s_highwater, 0, memory_order_relaxed);
}

hq_arena_t *hq_arena_new(size_t first)
{
    if (first < S_ARENA_MIN)
        first = S_ARENA_MIN;
    if (first > S_ARENA_MAX_BLOCK)
        first = S_ARENA_MAX_BLOCK;
    hq_arena_t *a = hq_calloc(1, sizeof *a);
    a->footprint = sizeof *a;
    a->head = s_block_new(a, first);
    a->next_cap = first * 2 > S_ARENA_MAX_BLOCK ? S_ARENA_MAX_BLOCK : first * 2;
    return a;
}

void *hq_arena_alloc(hq_arena_t *a, size_t n, size_t align, bool zero)
{
    s_block_t *b = a->head;
    size_t off = (b->used + (align - 1)) & ~(align - 1);
    if (off > b->cap || n > b->cap - off) {
        if (n > a->next_cap / 2) {
            /* A big allocation gets its own block, kept behind the current one so
             * the current block's free space is not wasted. */
            s_block_t *big = s_block_new(a, n);
            big->used = n;
            big->next = b->next;
            b->next = big;
            if (zero)
                memset(big->data, 0, n);
            return big->data;
        }
        s_block_t *nb = s_block_new(a, a->next_cap);
        nb->next = b;
        a->head = nb;
        if (a->next_cap < S_ARENA_MAX_BLOCK)
            a->next_cap *= 2;
        b = nb;
        off = 0;
    }
    void *p = b->data + off;
    b->used = off + n;
    if (zero)
        memset(p, 0, n);
    return p;
}

size_t hq_arena_footprint(const hq_arena_t *a)
{
    return a->footprint;
}

void hq_arena_destroy(hq_arena_t **pa)
{
    if (!pa || !*pa)
        return;
    s_block_t *b = (*pa)->head;
    while (b) {
        s_block_t *next = b->next;
        free(b);
        b = next;
    }
    free(*pa);
    *pa = NULL;
}
