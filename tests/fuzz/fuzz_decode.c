/* libFuzzer target for the wire decoder: any byte string either fails to decode with
 * an error text, or decodes into a message that re-encodes and decodes again to the
 * same bytes. Seed corpus: tests/fuzz/corpus (one sample of every message type,
 * written by test_msg_roundtrip with HQ_FUZZ_CORPUS_OUT=tests/fuzz/corpus). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_die(const char *what, const hq_err_t *err)
{
    fprintf(stderr, "fuzz_decode: %s: %s\n", what, err->text);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hq_err_t err = {{0}};
    hq_msg_t *m = hq_msg_decode(data, size, &err);
    if (!m) {
        if (err.text[0] == '\0')
            s_die("rejected without an error text", &err);
        return 0;
    }
    uint8_t *buf;
    size_t len;
    if (hq_msg_encode(m, &buf, &len, &err) < 0)
        s_die("a decoded message does not re-encode", &err);
    hq_msg_t *again = hq_msg_decode(buf, len, &err);
    if (!again)
        s_die("a re-encoded message does not decode", &err);
    uint8_t *buf2;
    size_t len2;
    if (hq_msg_encode(again, &buf2, &len2, &err) < 0)
        s_die("a second re-encode failed", &err);
    if (len2 != len || memcmp(buf, buf2, len) != 0) {
        fprintf(stderr, "fuzz_decode: encoding is not stable\n");
        abort();
    }
    free(buf2);
    free(buf);
    hq_msg_destroy(&again);
    hq_msg_destroy(&m);
    return 0;
}
