/* Private to the codec: a bounded msgpack reader over a byte buffer and the bump
 * arena that owns decoded messages. The reader never allocates and never reads past
 * the end; a failed read leaves the position unchanged so the caller can name what
 * it found instead. */
#ifndef HQ_MPR_H
#define HQ_MPR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hq_mpr {
    const uint8_t *p;   /* next byte to read */
    const uint8_t *end; /* one past the last byte */
} hq_mpr_t;

enum hq_mpr_status {
    HQ_MPR_OK = 0,
    HQ_MPR_TRUNCATED = -1, /* the value does not fit in the bytes left */
    HQ_MPR_TYPE = -2,      /* the next value has another msgpack type */
    HQ_MPR_RANGE = -3,     /* an integer does not fit the requested C type */
};

/* An integer as it came: non-negative values in u, negative ones in i. */
typedef struct hq_mpr_int {
    bool neg;   /* true: the value is i (< 0); false: the value is u */
    uint64_t u; /* value when !neg */
    int64_t i;  /* value when neg */
} hq_mpr_int_t;

static inline size_t hq_mpr_left(const hq_mpr_t *r)
{
    return (size_t)(r->end - r->p);
}

/* Name of the next value's msgpack type ("str", "array", ...) or "end of data". */
const char *hq_mpr_peek_name(const hq_mpr_t *r);

/* Each reader returns HQ_MPR_OK and advances, or a negative status without moving. */
int hq_mpr_integer(hq_mpr_t *r, hq_mpr_int_t *out);
int hq_mpr_bool(hq_mpr_t *r, bool *out);
int hq_mpr_double(hq_mpr_t *r, double *out); /* float32 or float64 */
bool hq_mpr_is_nil(const hq_mpr_t *r);
int hq_mpr_nil(hq_mpr_t *r);
/* Array header only: *n is the element count, not checked against anything. */
int hq_mpr_array(hq_mpr_t *r, uint32_t *n);
/* str / bin: *data points into the buffer; the length is checked against the bytes
 * left (HQ_MPR_TRUNCATED). */
int hq_mpr_str(hq_mpr_t *r, const uint8_t **data, uint32_t *len);
int hq_mpr_bin(hq_mpr_t *r, const uint8_t **data, uint32_t *len);

/* ---- arena: many small allocations, one free ---- */

typedef struct hq_arena hq_arena_t;

/* first: size of the first block (clamped to a sane range). Aborts on OOM. */
hq_arena_t *hq_arena_new(size_t first);
/* Returns n bytes aligned to align (a power of two <= 16); zeroed when zero is set. */
void *hq_arena_alloc(hq_arena_t *a, size_t n, size_t align, bool zero);
/* Total bytes obtained from malloc (for the amplification bound). */
size_t hq_arena_footprint(const hq_arena_t *a);
void hq_arena_destroy(hq_arena_t **a);

/* Largest footprint any arena reached since the last reset, destroyed ones included
 * (lets tests bound what a hostile frame makes the decoder allocate). */
size_t hq_arena_highwater(void);
void hq_arena_highwater_reset(void);

#endif
