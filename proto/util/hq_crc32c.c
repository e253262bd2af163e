/* CRC32C (Castagnoli), the checksum of journal frames and stream chunks: a
 * slicing-by-8 table version and, on x86-64 CPUs with SSE4.2, the crc32 instruction. */
#include <string.h>

#include "hq_crc32c.h"

static uint32_t s_crc_tab[8][256];

__attribute__((constructor)) static void s_crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        s_crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            s_crc_tab[t][i] = (s_crc_tab[t - 1][i] >> 8) ^ s_crc_tab[0][s_crc_tab[t - 1][i] & 0xff];
#if defined(__x86_64__)
    __builtin_cpu_init();
#endif
}

uint32_t hq_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t c = ~crc;
    while (len >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        c = s_crc_tab[7][lo & 0xff] ^ s_crc_tab[6][(lo >> 8) & 0xff] ^
            s_crc_tab[5][(lo >> 16) & 0xff] ^ s_crc_tab[4][lo >> 24] ^ s_crc_tab[3][p[4]] ^
            s_crc_tab[2][p[5]] ^ s_crc_tab[1][p[6]] ^ s_crc_tab[0][p[7]];
        p += 8;
        len -= 8;
    }
    while (len--)
        c = (c >> 8) ^ s_crc_tab[0][(c ^ *p++) & 0xff];
    return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t s_crc_hw(uint32_t crc, const uint8_t *p,
                                                           size_t len)
{
    uint64_t c = ~crc;
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif

uint32_t hq_crc32c(uint32_t crc, const void *data, size_t len)
{
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        return s_crc_hw(crc, data, len);
#endif
    return hq_crc32c_sw(crc, data, len);
}
