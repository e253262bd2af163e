/* Tests for the wire codec (hq_msg): a round trip of every message type compared
 * field by field (and re-encoded to the same bytes), edge values that must survive
 * it, the 40-byte header, and the fuzz seed corpus written from the samples. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hq_msg.h"
#include "hq_util.h"
#include "msg_fixture.h"

/* ---- round trips: one test per message type ---- */

#define ROUNDTRIP(name, type)                                                                      \
    Test(msg_roundtrip, name)                                                                      \
    {                                                                                              \
        s_roundtrip(type);                                                                         \
    }

ROUNDTRIP(server_info_without_body, HQ_MSG_SERVER_INFO)
ROUNDTRIP(server_stop_without_body, HQ_MSG_SERVER_STOP)
ROUNDTRIP(submit_with_defs_entries_graph_and_variants, HQ_MSG_SUBMIT)
ROUNDTRIP(job_list_query, HQ_MSG_JOB_LIST)
ROUNDTRIP(job_info_query, HQ_MSG_JOB_INFO)
ROUNDTRIP(job_cancel_query_with_reason, HQ_MSG_JOB_CANCEL)
ROUNDTRIP(job_forget_query, HQ_MSG_JOB_FORGET)
ROUNDTRIP(job_wait_query, HQ_MSG_JOB_WAIT)
ROUNDTRIP(job_open_query, HQ_MSG_JOB_OPEN)
ROUNDTRIP(job_close_query, HQ_MSG_JOB_CLOSE)
ROUNDTRIP(task_list_query, HQ_MSG_TASK_LIST)
ROUNDTRIP(task_info_query, HQ_MSG_TASK_INFO)
ROUNDTRIP(worker_list_query, HQ_MSG_WORKER_LIST)
ROUNDTRIP(worker_info_query, HQ_MSG_WORKER_INFO)
ROUNDTRIP(worker_stop_query, HQ_MSG_WORKER_STOP)
ROUNDTRIP(job_summary_without_body, HQ_MSG_JOB_SUMMARY)
ROUNDTRIP(task_ids_query, HQ_MSG_TASK_IDS)
ROUNDTRIP(task_explain_query, HQ_MSG_TASK_EXPLAIN)
ROUNDTRIP(journal_read_query, HQ_MSG_JOURNAL_READ)
ROUNDTRIP(journal_flush_without_body, HQ_MSG_JOURNAL_FLUSH)
ROUNDTRIP(journal_prune_without_body, HQ_MSG_JOURNAL_PRUNE)
ROUNDTRIP(task_notify_query, HQ_MSG_TASK_NOTIFY)
ROUNDTRIP(debug_dump_without_body, HQ_MSG_DEBUG_DUMP)
ROUNDTRIP(alloc_add_query, HQ_MSG_ALLOC_ADD)
ROUNDTRIP(alloc_list_query, HQ_MSG_ALLOC_LIST)
ROUNDTRIP(alloc_info_query, HQ_MSG_ALLOC_INFO)
ROUNDTRIP(alloc_ctl_query, HQ_MSG_ALLOC_CTL)
ROUNDTRIP(alloc_log_query, HQ_MSG_ALLOC_LOG)
ROUNDTRIP(reply_with_json_and_log, HQ_MSG_REPLY)
ROUNDTRIP(error_with_code_and_message, HQ_MSG_ERROR)
ROUNDTRIP(register_with_all_resource_kinds, HQ_MSG_REGISTER)
ROUNDTRIP(results_with_allocs_and_nil_error, HQ_MSG_RESULTS)
ROUNDTRIP(heartbeat_without_body, HQ_MSG_HEARTBEAT)
ROUNDTRIP(goodbye_with_reason, HQ_MSG_GOODBYE)
ROUNDTRIP(overview_with_hw_state, HQ_MSG_OVERVIEW)
ROUNDTRIP(registered_with_server_uid, HQ_MSG_REGISTERED)
ROUNDTRIP(assign_with_defs_entries_and_nodes, HQ_MSG_ASSIGN)
ROUNDTRIP(cancel_with_task_refs, HQ_MSG_CANCEL)
ROUNDTRIP(stop_with_reason, HQ_MSG_STOP)
ROUNDTRIP(retract_with_task_refs, HQ_MSG_RETRACT)
ROUNDTRIP(node_of_with_task_refs, HQ_MSG_NODE_OF)

Test(msg_roundtrip, covers_every_named_type)
{
    size_t named = 0;
    for (unsigned t = 0; t < 256; t++)
        named += strcmp(hq_msg_type_name((uint8_t)t), "UNKNOWN") != 0;
    cr_assert_eq(named, N_TYPES);
    for (size_t k = 0; k < N_TYPES; k++)
        s_roundtrip(s_types[k]);
}

Test(msg_roundtrip, keeps_extreme_integers)
{
    hq_msg_t in;
    s_sample(HQ_MSG_SUBMIT, &in);
    hq_task_def_t defs[1] = {s_def()};
    defs[0].priority = INT32_MIN;
    defs[0].time_limit_ns = UINT64_MAX;
    defs[0].crash_limit = UINT32_MAX;
    in.u.submit.defs = defs;
    in.u.submit.n_defs = 1;
    in.u.submit.n_graph = 0;
    in.u.submit.job_id = UINT32_MAX;
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    hq_msg_t *out = hq_msg_decode(buf, len, NULL);
    cr_assert_not_null(out);
    cr_assert_eq(out->u.submit.job_id, UINT32_MAX);
    cr_assert_eq(out->u.submit.defs[0].priority, INT32_MIN);
    cr_assert_eq(out->u.submit.defs[0].time_limit_ns, UINT64_MAX);
    cr_assert_eq(out->u.submit.defs[0].crash_limit, UINT32_MAX);
    hq_msg_destroy(&out);
    free(buf);
}

Test(msg_roundtrip, empty_lists_decode_as_zero_counts)
{
    hq_msg_t in = {.hdr = {.type = HQ_MSG_RESULTS}};
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    cr_assert_eq(len, HQ_HEADER_SIZE + 3); /* [0, []] */
    hq_msg_t *out = hq_msg_decode(buf, len, NULL);
    cr_assert_not_null(out);
    cr_assert_eq(out->u.results.n_events, 0);
    cr_assert_null(out->u.results.events);
    hq_msg_destroy(&out);
    free(buf);
}

Test(msg_roundtrip, accepts_signed_encodings_of_small_unsigned_values)
{
    /* GOODBYE [int8 3] and CANCEL [[[int16 1, int32 2, int64 3]]] */
    uint8_t f[HQ_HEADER_SIZE + 32];
    static const uint8_t bye[] = {0x91, 0xd0, 0x03};
    hq_msg_t *m = hq_msg_decode(f, s_frame(f, HQ_MSG_GOODBYE, bye, sizeof bye), NULL);
    cr_assert_not_null(m);
    cr_assert_eq(m->u.goodbye.reason, 3);
    hq_msg_destroy(&m);
    static const uint8_t cancel[] = {0x91, 0x91, 0x93, 0xd1, 0x00, 0x01, 0xd2, 0, 0, 0,
                                     2,    0xd3, 0,    0,    0,    0,    0,    0, 0, 3};
    m = hq_msg_decode(f, s_frame(f, HQ_MSG_CANCEL, cancel, sizeof cancel), NULL);
    cr_assert_not_null(m);
    cr_assert_eq(m->u.cancel.tasks[0].job_id, 1);
    cr_assert_eq(m->u.cancel.tasks[0].task_id, 2);
    cr_assert_eq(m->u.cancel.tasks[0].instance, 3);
    hq_msg_destroy(&m);
}

Test(msg_roundtrip, accepts_float32_utilization)
{
    hq_msg_t in;
    s_sample(HQ_MSG_REGISTER, &in);
    in.u.reg.conf.min_utilization = 0.5;
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    /* Replace the float64 0.5 (cb 3fe0000000000000) with float32 0.5 (ca 3f000000). */
    static const uint8_t f64[] = {0xcb, 0x3f, 0xe0, 0, 0, 0, 0, 0, 0};
    uint8_t *p = memmem(buf, len, f64, sizeof f64);
    cr_assert_not_null(p);
    static const uint8_t f32[] = {0xca, 0x3f, 0x00, 0, 0};
    memcpy(p, f32, sizeof f32);
    memmove(p + sizeof f32, p + sizeof f64, len - (size_t)(p + sizeof f64 - buf));
    len -= sizeof f64 - sizeof f32;
    hq_err_t err = {{0}};
    hq_msg_t *m = hq_msg_decode(buf, len, &err);
    cr_assert_not_null(m, "%s", err.text);
    cr_assert_eq(m->u.reg.conf.min_utilization, 0.5);
    hq_msg_destroy(&m);
    free(buf);
}

/* ---- header ---- */

Test(msg_header, is_40_big_endian_bytes)
{
    hq_msg_t in = {.hdr = {.type = HQ_MSG_HEARTBEAT,
                           .request_id = 0x0102030405060708ULL,
                           .epoch = 0x1112131415161718ULL,
                           .seq = 0x2122232425262728ULL,
                           .ack = 0x3132333435363738ULL}};
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    static const uint8_t want[HQ_HEADER_SIZE] = {
        'H',  'Q',  1,    62,   0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x11, 0x12,
        0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28,
        0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0,    0,    0,    0};
    cr_assert_eq(len, HQ_HEADER_SIZE);
    cr_assert_eq(memcmp(buf, want, HQ_HEADER_SIZE), 0);
    hq_header_t h;
    cr_assert_eq(hq_header_decode(buf, len, &h, NULL), 0);
    cr_assert_eq(h.version, 1);
    cr_assert_eq(h.type, HQ_MSG_HEARTBEAT);
    cr_assert_eq(h.request_id, in.hdr.request_id);
    cr_assert_eq(h.epoch, in.hdr.epoch);
    cr_assert_eq(h.seq, in.hdr.seq);
    cr_assert_eq(h.ack, in.hdr.ack);
    free(buf);
}

Test(msg_header, decode_reads_header_of_any_body_and_version)
{
    hq_msg_t in;
    s_sample(HQ_MSG_SUBMIT, &in);
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    buf[2] = 9; /* a future version: the header still parses so the peer can answer */
    hq_header_t h;
    cr_assert_eq(hq_header_decode(buf, len, &h, NULL), 0);
    cr_assert_eq(h.version, 9);
    cr_assert_eq(h.type, HQ_MSG_SUBMIT);
    cr_assert_eq(h.request_id, in.hdr.request_id);
    s_reject(buf, len, "unsupported protocol version 9");
    free(buf);
}

Test(msg_header, decode_rejects_short_frames_bad_magic_and_reserved_bits)
{
    uint8_t f[HQ_HEADER_SIZE];
    s_frame(f, HQ_MSG_HEARTBEAT, NULL, 0);
    hq_header_t h = {.type = 0xaa};
    hq_err_t err = {{0}};
    cr_assert_eq(hq_header_decode(f, HQ_HEADER_SIZE - 1, &h, &err), -1);
    cr_assert(strstr(err.text, "shorter than the 40-byte header"), "%s", err.text);
    cr_assert_eq(h.type, 0xaa, "a failed decode changes nothing");
    f[1] = 'X';
    cr_assert_eq(hq_header_decode(f, HQ_HEADER_SIZE, &h, &err), -1);
    cr_assert(strstr(err.text, "bad magic"), "%s", err.text);
    f[1] = 'Q';
    f[39] = 1;
    cr_assert_eq(hq_header_decode(f, HQ_HEADER_SIZE, &h, &err), -1);
    cr_assert(strstr(err.text, "reserved"), "%s", err.text);
    cr_assert_eq(hq_header_decode(NULL, 0, &h, &err), -1);
}

Test(msg_header, type_names_and_socket_roles)
{
    cr_assert_str_eq(hq_msg_type_name(HQ_MSG_SUBMIT), "SUBMIT");
    cr_assert_str_eq(hq_msg_type_name(HQ_MSG_TASK_IDS), "TASK_IDS");
    cr_assert_str_eq(hq_msg_type_name(HQ_MSG_STOP), "STOP");
    cr_assert_str_eq(hq_msg_type_name(0), "UNKNOWN");
    cr_assert_str_eq(hq_msg_type_name(200), "UNKNOWN");
    cr_assert(hq_msg_is_client_request(HQ_MSG_SERVER_INFO));
    cr_assert(hq_msg_is_client_request(HQ_MSG_TASK_IDS));
    cr_assert_not(hq_msg_is_client_request(0));
    cr_assert_not(hq_msg_is_client_request(HQ_MSG_REPLY));
    cr_assert_not(hq_msg_is_client_request(HQ_MSG_REGISTER));
    cr_assert(hq_msg_is_worker_message(HQ_MSG_REGISTER));
    cr_assert(hq_msg_is_worker_message(HQ_MSG_GOODBYE));
    cr_assert_not(hq_msg_is_worker_message(HQ_MSG_ASSIGN));
    cr_assert_not(hq_msg_is_worker_message(HQ_MSG_SUBMIT));
}

/* ---- fuzz seed corpus ---- */

/* Writes one encoded sample of every type into $HQ_FUZZ_CORPUS_OUT (when set, e.g.
 * tests/fuzz/corpus) or a temporary directory, and checks each file decodes. */
Test(msg_corpus, writes_one_decodable_sample_per_type)
{
    const char *dir = getenv("HQ_FUZZ_CORPUS_OUT");
    char tmp[] = "/tmp/hq-corpus-XXXXXX";
    if (!dir || !*dir) {
        cr_assert_not_null(mkdtemp(tmp));
        dir = tmp;
    }
    for (size_t k = 0; k < N_TYPES; k++) {
        hq_msg_t in;
        s_sample(s_types[k], &in);
        uint8_t *buf;
        size_t len;
        s_encode(&in, &buf, &len);
        char path[4096];
        snprintf(path, sizeof path, "%s/%03u-%s", dir, s_types[k], hq_msg_type_name(s_types[k]));
        FILE *fp = fopen(path, "wb");
        cr_assert_not_null(fp, "cannot write %s: %s", path, strerror(errno));
        cr_assert_eq(fwrite(buf, 1, len, fp), len);
        cr_assert_eq(fclose(fp), 0);
        free(buf);
        char *data;
        cr_assert_eq(hq_read_file(path, 1 << 20, &data, &len), 0);
        hq_msg_t *m = hq_msg_decode((const uint8_t *)data, len, NULL);
        cr_assert_not_null(m, "%s does not decode", path);
        cr_assert_eq(m->hdr.type, s_types[k]);
        hq_msg_destroy(&m);
        free(data);
        if (dir == tmp)
            unlink(path);
    }
    if (dir == tmp)
        rmdir(tmp);
}
