/* Private to the record codec files (rec_encode.c, rec_decode.c, scan.c): the
 * little-endian helpers of frames and file headers and the shape of each payload. */
#ifndef HQ_BROKER_JOURNAL_REC_PRIV_H
#define HQ_BROKER_JOURNAL_REC_PRIV_H

#include <stdint.h>

#include "journal_rec.h"

/* Elements of each payload array (type, lsn, wall_ns + the body fields), by type. */
extern const uint8_t hq_jrec_nfields_[HQ_JR_TYPE_MAX + 1];

static inline void s_le32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static inline void s_le64(uint8_t *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

static inline uint32_t s_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t s_rd64(const uint8_t *p)
{
    return (uint64_t)s_rd32(p) | (uint64_t)s_rd32(p + 4) << 32;
}

#endif
