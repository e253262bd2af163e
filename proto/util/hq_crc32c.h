/* CRC32C (Castagnoli), the checksum of the journal's frames and of the output stream
 * files' chunks. */
#ifndef HQ_CRC32C_H
#define HQ_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC32C as in iSCSI/ext4: crc32c("123456789") == 0xE3069283.
 * Chain calls with the previous result (start with 0). Uses SSE4.2 when the CPU has it. */
uint32_t hq_crc32c(uint32_t crc, const void *data, size_t len);
/* The portable table version (tests compare both). */
uint32_t hq_crc32c_sw(uint32_t crc, const void *data, size_t len);

#endif
