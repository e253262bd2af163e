/* Tests for the wire decoder (hq_msg) on hostile frames: truncation at every
 * offset, trailing bytes, wrong magic/version/types, wrong field types,
 * out-of-range values, amplification bodies, deep nesting, and the malformed
 * samples in tests/data/. Every one must fail cleanly with an error text. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_mpr.h"
#include "hq_msg.h"
#include "hq_util.h"
#include "msg_fixture.h"

/* ---- rejection of hostile frames ---- */

Test(msg_reject, every_truncation_of_every_type_fails_cleanly)
{
    for (size_t k = 0; k < N_TYPES; k++) {
        hq_msg_t in;
        s_sample(s_types[k], &in);
        uint8_t *buf;
        size_t len;
        s_encode(&in, &buf, &len);
        for (size_t cut = 0; cut < len; cut++) {
            /* A copy of exactly cut bytes, so ASan sees any over-read. */
            uint8_t *part = hq_malloc(cut ? cut : 1);
            memcpy(part, buf, cut);
            s_reject(part, cut, NULL);
            free(part);
        }
        free(buf);
    }
}

Test(msg_reject, trailing_bytes)
{
    for (size_t k = 0; k < N_TYPES; k++) {
        hq_msg_t in;
        s_sample(s_types[k], &in);
        uint8_t *buf;
        size_t len;
        s_encode(&in, &buf, &len);
        buf = hq_realloc(buf, len + 1);
        buf[len] = 0xc0;
        bool nobody = len == HQ_HEADER_SIZE;
        s_reject(buf, len + 1, nobody ? "has no body but 1 bytes follow" : "1 trailing bytes");
        free(buf);
    }
}

Test(msg_reject, wrong_magic_version_and_unknown_types)
{
    hq_msg_t in;
    s_sample(HQ_MSG_GOODBYE, &in);
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    buf[0] = 'X';
    s_reject(buf, len, "bad magic");
    buf[0] = 'H';
    buf[2] = 0;
    s_reject(buf, len, "unsupported protocol version 0");
    buf[2] = 2;
    s_reject(buf, len, "unsupported protocol version 2");
    buf[2] = HQ_PROTO_VERSION;
    const uint8_t unknown[] = {0, 23, 39, 42, 59, 65, 79, 89, 99, 255};
    for (size_t k = 0; k < sizeof unknown; k++) {
        buf[3] = unknown[k];
        char want[64];
        snprintf(want, sizeof want, "unknown message type %u", unknown[k]);
        s_reject(buf, len, want);
    }
    free(buf);
}

Test(msg_reject, wrong_field_types)
{
    REJECT_BODY(HQ_MSG_GOODBYE, "GOODBYE: field 'reason' expected integer, got str", 0x91, 0xa1,
                'x');
    REJECT_BODY(HQ_MSG_GOODBYE, "field 'reason' expected integer, got nil", 0x91, 0xc0);
    REJECT_BODY(HQ_MSG_GOODBYE, "field 'reason' expected integer, got float", 0x91, 0xca, 0, 0, 0,
                0);
    REJECT_BODY(HQ_MSG_GOODBYE, "expected integer, got ext", 0x91, 0xd4, 1, 0);
    REJECT_BODY(HQ_MSG_GOODBYE, "expected integer, got reserved byte 0xc1", 0x91, 0xc1);
    REJECT_BODY(HQ_MSG_GOODBYE, "field 'body' expected array, got map", 0x81, 0x00, 0x00);
    REJECT_BODY(HQ_MSG_GOODBYE, "field 'body' has 2 fields, expected 1", 0x92, 0x00, 0x00);
    REJECT_BODY(HQ_MSG_ERROR, "field 'message' expected str, got bin", 0x92, 0x01, 0xc4, 0x01, 'x');
    REJECT_BODY(HQ_MSG_ERROR, "field 'message' expected str, got nil", 0x92, 0x01, 0xc0);
    REJECT_BODY(HQ_MSG_REGISTERED, "field 'heartbeat_ns' expected integer, got float", 0x94, 0x01,
                0xa1, 'u', 0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0x00);
    /* bool fields accept only true/false, not 0/1 */
    REJECT_BODY(HQ_MSG_JOB_LIST, "field 'flag' expected bool, got unsigned integer", 0x96, 0x92,
                0x01, 0x90, 0x90, 0x00, 0x01, 0xc0, 0x00);
    /* nullable text accepts nil, but not an integer */
    REJECT_BODY(HQ_MSG_JOB_LIST, "field 'text' expected str or nil, got unsigned integer", 0x96,
                0x92, 0x01, 0x90, 0x90, 0x00, 0xc2, 0x05, 0x00);
}

Test(msg_reject, out_of_range_values)
{
    REJECT_BODY(HQ_MSG_GOODBYE, "field 'reason' value 5 out of range (0..4)", 0x91, 0x05);
    REJECT_BODY(HQ_MSG_GOODBYE, "field 'reason' value -1 is negative", 0x91, 0xff);
    REJECT_BODY(HQ_MSG_STOP, "value 4294967296 out of range", 0x91, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0);
    REJECT_BODY(HQ_MSG_ERROR, "field 'code' value 7 out of range (1..6)", 0x92, 0x07, 0xa1, 'x');
    REJECT_BODY(HQ_MSG_REGISTERED, "field 'worker_id' value 4294967296 out of range", 0x94, 0xcf, 0,
                0, 0, 1, 0, 0, 0, 0, 0xa1, 'u', 0x00, 0x00);
    REJECT_BODY(HQ_MSG_JOB_LIST, "field 'selector kind' value 3 out of range", 0x96, 0x92, 0x03,
                0x90, 0x90, 0x00, 0xc2, 0xc0, 0x00);
    REJECT_BODY(HQ_MSG_JOB_LIST, "field 'states' value 128 out of range", 0x96, 0x92, 0x00, 0x90,
                0x90, 0xcc, 0x80, 0xc2, 0xc0, 0x00);
    REJECT_BODY(HQ_MSG_JOB_LIST, "step 0 in range 1-2", 0x96, 0x92, 0x00, 0x91, 0x93, 0x01, 0x02,
                0x00, 0x90, 0x00, 0xc2, 0xc0, 0x00);
    REJECT_BODY(HQ_MSG_JOB_LIST, "start 3 is after end 2", 0x96, 0x92, 0x00, 0x91, 0x93, 0x03, 0x02,
                0x01, 0x90, 0x00, 0xc2, 0xc0, 0x00);
    REJECT_BODY(HQ_MSG_ERROR, "field 'message' contains a NUL byte", 0x92, 0x01, 0xa3, 'a', 0, 'b');
    /* ASSIGN: [[], [[1,0,1,0,false,bin"",0,[]]]] -> def_idx 0 with no defs */
    REJECT_BODY(HQ_MSG_ASSIGN, "field 'def_idx' value 0 is not below n_defs 0", 0x92, 0x90, 0x91,
                0x98, 0x01, 0x00, 0x01, 0x00, 0xc2, 0xc4, 0x00, 0x00, 0x90);
}

Test(msg_reject, priority_outside_int32)
{
    hq_msg_t in;
    s_sample(HQ_MSG_SUBMIT, &in);
    hq_task_def_t defs[1] = {s_def2()};
    defs[0].priority = INT32_MIN;
    in.u.submit.defs = defs;
    in.u.submit.n_defs = 1;
    in.u.submit.n_graph = 0;
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    /* int32 -2147483648 is d2 80 00 00 00; make it int64 -2147483649 */
    static const uint8_t i32[] = {0xd2, 0x80, 0, 0, 0};
    uint8_t *p = memmem(buf, len, i32, sizeof i32);
    cr_assert_not_null(p);
    uint8_t *b2 = hq_malloc(len + 4);
    size_t off = (size_t)(p - buf);
    memcpy(b2, buf, off);
    static const uint8_t i64[] = {0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff};
    memcpy(b2 + off, i64, sizeof i64);
    memcpy(b2 + off + sizeof i64, p + sizeof i32, len - off - sizeof i32);
    s_reject(b2, len + 4, "field 'priority' value -2147483649 out of range");
    free(b2);
    free(buf);
}

/* Frames whose counts promise far more than they hold: each must fail before any
 * allocation of that size (the arena high-water mark stays small). */
Test(msg_reject, amplification_bodies_fail_without_big_allocation)
{
    hq_arena_highwater_reset();
    REJECT_BODY(HQ_MSG_CANCEL, "field 'tasks' count 4294967295 exceeds limit", 0x91, 0xdd, 0xff,
                0xff, 0xff, 0xff);
    REJECT_BODY(HQ_MSG_CANCEL, "field 'tasks' count 16777215 exceeds bytes left (0)", 0x91, 0xdd,
                0x00, 0xff, 0xff, 0xff);
    REJECT_BODY(HQ_MSG_CANCEL, "field 'tasks' expected array, got map", 0x91, 0xdf, 0xff, 0xff,
                0xff, 0xff);
    REJECT_BODY(HQ_MSG_CANCEL, "field 'tasks' count 65535 exceeds bytes left", 0x91, 0xdc, 0xff,
                0xff);
    REJECT_BODY(HQ_MSG_ERROR, "field 'message' truncated", 0x92, 0x01, 0xdb, 0x7f, 0xff, 0xff,
                0xff);
    REJECT_BODY(HQ_MSG_SUBMIT, "field 'body' has 4294967295 fields", 0xdd, 0xff, 0xff, 0xff, 0xff);
    REJECT_BODY(HQ_MSG_SUBMIT, "field 'body' expected array, got map", 0xdf, 0xff, 0xff, 0xff,
                0xff);
    REJECT_BODY(HQ_MSG_REPLY, "field 'json' truncated", 0x93, 0x00, 0xdb, 0x7f, 0xff, 0xff, 0xff);
    REJECT_BODY(HQ_MSG_REPLY, "field 'log' count 65535 exceeds bytes left (0)", 0x93, 0x00, 0xc0,
                0xdc, 0xff, 0xff);
    REJECT_BODY(HQ_MSG_ASSIGN, "field 'entry' truncated", 0x92, 0x91, 0x95, 0x01, 0x00, 0xa1, '/',
                0xc0, 0x9d, 0x91, 0xa1, 'x', 0x90, 0xa1, '.', 0x93, 1, 0xc0, 0xc2, 0x93, 1, 0xc0,
                0xc2, 0xc4, 0, 0x91, 0x94, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0xc2, 0x91, 0x98, 0, 0, 0,
                0, 0xc2, 0xc6, 0x7f, 0xff, 0xff, 0xff);
    cr_assert_lt(hq_arena_highwater(), 64 * 1024, "a hostile frame made the arena grow to %zu",
                 hq_arena_highwater());
}

Test(msg_reject, deep_nesting)
{
    size_t depth = 100000;
    uint8_t *f = hq_malloc(HQ_HEADER_SIZE + depth + 1);
    s_frame(f, HQ_MSG_GOODBYE, NULL, 0);
    memset(f + HQ_HEADER_SIZE, 0x91, depth);
    f[HQ_HEADER_SIZE + depth] = 0x00;
    s_reject(f, HQ_HEADER_SIZE + depth + 1, "field 'reason' expected integer, got array");
    s_frame(f, HQ_MSG_SUBMIT, NULL, 0);
    s_reject(f, HQ_HEADER_SIZE + depth + 1, "SUBMIT: field 'body' has 1 fields, expected 11");
    free(f);
}

/* Valid frames built to maximise what decoding allocates per byte stay within the
 * codec's bound of ~32x the frame size. */
static void s_check_amplification(const uint8_t *f, size_t len)
{
    hq_err_t err = {{0}};
    hq_arena_highwater_reset();
    hq_msg_t *m = hq_msg_decode(f, len, &err);
    cr_assert_not_null(m, "%s", err.text);
    hq_msg_destroy(&m);
    size_t hw = hq_arena_highwater();
    cr_assert_leq(hw, 32 * len + 4096, "frame of %zu bytes allocated %zu", len, hw);
}

Test(msg_reject, decoded_size_stays_within_32x_of_the_frame)
{
    enum { N = 60000 };
    uint8_t *f = hq_malloc(HQ_HEADER_SIZE + 16 * (size_t)N + 64);
    size_t n;
    /* REPLY [0, nil, [""...]]: 9 bytes per wire byte */
    n = s_frame(f, HQ_MSG_REPLY, (const uint8_t[]){0x93, 0x00, 0xc0, 0xdc, N >> 8, N & 0xff}, 6);
    memset(f + n, 0xa0, N);
    s_check_amplification(f, n + N);
    /* CANCEL [[[0,0,0]...]] */
    n = s_frame(f, HQ_MSG_CANCEL, (const uint8_t[]){0x91, 0xdc, N >> 8, N & 0xff}, 4);
    for (size_t k = 0; k < N; k++, n += 4)
        memcpy(f + n, (const uint8_t[]){0x93, 0, 0, 0}, 4);
    s_check_amplification(f, n);
    /* RESULTS [0, [[0,0,0,0,0,nil,[]]...]] */
    n = s_frame(f, HQ_MSG_RESULTS, (const uint8_t[]){0x92, 0x00, 0xdc, N >> 8, N & 0xff}, 5);
    for (size_t k = 0; k < N; k++, n += 8)
        memcpy(f + n, (const uint8_t[]){0x97, 0, 0, 0, 0, 0, 0xc0, 0x90}, 8);
    s_check_amplification(f, n);
    /* REGISTER with a GROUPS resource of 60000 empty groups: 16 bytes per wire byte */
    static const uint8_t reg_head[] = {0x94, 0xdc, 0x00, 0x10, 0xa0,   0xa0,    0xa0, 0xa0, 0,
                                       0,    0,    0,    0xcb, 0,      0,       0,    0,    0,
                                       0,    0,    0,    0,    0,      0xa0,    0,    0,    0x91,
                                       0x96, 0xa0, 0x02, 0xdc, N >> 8, N & 0xff};
    n = s_frame(f, HQ_MSG_REGISTER, reg_head, sizeof reg_head);
    memset(f + n, 0x90, N);
    n += N;
    memcpy(f + n, (const uint8_t[]){0, 0, 0, 0xa0, 0, 0, 0}, 7);
    n += 7;
    s_check_amplification(f, n);
    /* SUBMIT with 2000 minimal defs and 60000 empty entries */
    static const uint8_t sub_head[] = {0x9a, 0,    0xc0, 0xc2,      0,
                                       0xa0, 0xc0, 0xdc, 2000 >> 8, 2000 & 0xff};
    n = s_frame(f, HQ_MSG_SUBMIT, sub_head, sizeof sub_head);
    static const uint8_t min_def[] = {0x9d, 0x91, 0xa0, 0x90, 0xa0, 0x93, 1,    0xc0, 0xc2,
                                      0x93, 1,    0xc0, 0xc2, 0xc4, 0,    0x91, 0x94, 0,
                                      0,    0,    0x90, 0,    0,    0,    0,    0,    0xc2};
    for (size_t k = 0; k < 2000; k++, n += sizeof min_def)
        memcpy(f + n, min_def, sizeof min_def);
    memcpy(f + n, (const uint8_t[]){0x90, 0xdc, N >> 8, N & 0xff}, 4);
    n += 4;
    for (size_t k = 0; k < N; k++, n += 2)
        memcpy(f + n, (const uint8_t[]){0xc4, 0}, 2);
    f[n++] = 0x90;
    s_check_amplification(f, n);
    free(f);
}

/* Every file in tests/data/ is a malformed frame that must be rejected. */
static const struct {
    const char *file; /* name in tests/data/ */
    const char *want; /* substring of the error */
} s_data[] = {
    {"short_header.bin", "shorter than the 40-byte header"},
    {"bad_magic.bin", "bad magic"},
    {"bad_version.bin", "unsupported protocol version 2"},
    {"unknown_type.bin", "unknown message type 99"},
    {"reserved_nonzero.bin", "reserved header field"},
    {"heartbeat_with_body.bin", "has no body"},
    {"submit_without_body.bin", "SUBMIT: field 'body' truncated"},
    {"goodbye_reason_out_of_range.bin", "value 5 out of range"},
    {"goodbye_reason_str.bin", "expected integer, got str"},
    {"goodbye_reason_negative.bin", "is negative"},
    {"goodbye_trailing.bin", "trailing bytes"},
    {"goodbye_deep_nesting.bin", "expected integer, got array"},
    {"cancel_array32_huge.bin", "exceeds limit"},
    {"cancel_array32_bytes_left.bin", "exceeds bytes left"},
    {"cancel_map32.bin", "expected array, got map"},
    {"cancel_array16.bin", "count 65535 exceeds bytes left"},
    {"error_str32_huge.bin", "truncated"},
    {"error_code_zero.bin", "value 0 out of range"},
    {"error_message_nul.bin", "contains a NUL byte"},
    {"error_message_bin.bin", "expected str, got bin"},
    {"registered_u32_overflow.bin", "out of range"},
    {"registered_float_for_u64.bin", "expected integer, got float"},
    {"reply_json_truncated.bin", "truncated"},
    {"goodbye_ext.bin", "got ext"},
    {"goodbye_c1.bin", "reserved byte 0xc1"},
    {"assign_def_idx_dangling.bin", "is not below n_defs 0"},
    {"query_range_step_zero.bin", "step 0"},
    {"register_utilization_nan.bin", "min_utilization"},
    {"submit_stdout_file_without_path.bin", "field 'stdout' has kind FILE but no path"},
    {"results_kind_out_of_range.bin", "field 'kind' value 9 out of range"},
};

Test(msg_reject, malformed_samples_in_test_data)
{
    size_t nfiles = 0;
    for (size_t k = 0; k < sizeof s_data / sizeof s_data[0]; k++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", HQ_TEST_DATA, s_data[k].file);
        char *data;
        size_t len;
        cr_assert_eq(hq_read_file(path, 1 << 20, &data, &len), 0, "cannot read %s", path);
        s_reject((const uint8_t *)data, len, s_data[k].want);
        free(data);
    }
    /* And every .bin file there, listed or not, is rejected. */
    DIR *dir = opendir(HQ_TEST_DATA);
    cr_assert_not_null(dir);
    struct dirent *de;
    while ((de = readdir(dir))) {
        size_t nl = strlen(de->d_name);
        if (nl < 4 || strcmp(de->d_name + nl - 4, ".bin") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", HQ_TEST_DATA, de->d_name);
        char *data;
        size_t len;
        cr_assert_eq(hq_read_file(path, 1 << 20, &data, &len), 0, "cannot read %s", path);
        s_reject((const uint8_t *)data, len, NULL);
        free(data);
        nfiles++;
    }
    closedir(dir);
    cr_assert_geq(nfiles, sizeof s_data / sizeof s_data[0]);
}
