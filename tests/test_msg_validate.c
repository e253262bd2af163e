/* Tests for the wire codec (hq_msg): what the encoder refuses (over-long strings,
 * NULLs, out-of-range enums, dangling indices, coupling outside the resources) and
 * how the decoder checks cross-field values and accepts messages from older peers
 * that lack the optional trailing fields. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "hq_msg.h"
#include "hq_util.h"
#include "msg_fixture.h"

/* ---- encoder refusals ---- */

static void s_refuse(const hq_msg_t *m, const char *want)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    hq_err_t err = {{0}};
    cr_assert_eq(hq_msg_encode(m, &buf, &len, &err), -1, "encoded what it should refuse (%s)",
                 want);
    cr_assert_null(buf);
    cr_assert(strstr(err.text, want), "error '%s' does not mention '%s'", err.text, want);
}

Test(msg_encode, refuses_strings_longer_than_the_limit)
{
    char *big = hq_malloc(HQ_MAX_STR + 2);
    memset(big, 'x', HQ_MAX_STR + 1);
    big[HQ_MAX_STR + 1] = '\0';
    hq_msg_t m;
    s_sample(HQ_MSG_ERROR, &m);
    m.u.error.message = big;
    s_refuse(&m, "ERROR: field 'message' length 1048577 exceeds limit 1048576");
    big[HQ_MAX_STR] = '\0';
    uint8_t *buf;
    size_t len;
    s_encode(&m, &buf, &len); /* exactly the limit is fine */
    hq_msg_t *out = hq_msg_decode(buf, len, NULL);
    cr_assert_not_null(out);
    cr_assert_eq(strlen(out->u.error.message), HQ_MAX_STR);
    hq_msg_destroy(&out);
    free(buf);
    free(big);
}

Test(msg_encode, refuses_null_where_not_nullable)
{
    hq_msg_t m;
    s_sample(HQ_MSG_SUBMIT, &m);
    m.u.submit.submit_dir = NULL;
    s_refuse(&m, "SUBMIT: field 'submit_dir' is NULL");
    s_sample(HQ_MSG_SUBMIT, &m);
    s_defs[0].cwd = NULL;
    s_refuse(&m, "field 'cwd' is NULL");
    s_sample(HQ_MSG_SUBMIT, &m);
    s_defs[1].err.path = NULL;
    s_refuse(&m, "field 'stderr' has kind FILE but no path");
    s_sample(HQ_MSG_CANCEL, &m);
    m.u.cancel.tasks = NULL;
    s_refuse(&m, "field 'tasks' is NULL with count 3");
}

Test(msg_encode, refuses_out_of_range_enums_and_counts)
{
    hq_msg_t m;
    s_sample(HQ_MSG_GOODBYE, &m);
    m.u.goodbye.reason = 5;
    s_refuse(&m, "GOODBYE: field 'reason' value 5 out of range");
    s_sample(HQ_MSG_ERROR, &m);
    m.u.error.code = 0;
    s_refuse(&m, "field 'code' value 0 out of range");
    s_sample(HQ_MSG_SUBMIT, &m);
    s_defs[1].pin = (enum hq_pin)3;
    s_refuse(&m, "field 'pin' value 3 out of range");
    s_sample(HQ_MSG_SUBMIT, &m);
    s_defs[1].n_args = 0;
    s_refuse(&m, "field 'args' count 0 is below the minimum 1");
    s_sample(HQ_MSG_REPLY, &m);
    m.u.reply.n_log = 70000;
    s_refuse(&m, "field 'log' count 70000 exceeds limit 65536");
    s_sample(HQ_MSG_JOB_LIST, &m);
    m.u.query.states = 0x80;
    s_refuse(&m, "field 'states'");
    s_sample(HQ_MSG_REGISTER, &m);
    m.u.reg.conf.min_utilization = 1.5;
    s_refuse(&m, "min_utilization");
}

Test(msg_encode, refuses_dangling_indices_and_unknown_types)
{
    hq_msg_t m;
    s_sample(HQ_MSG_SUBMIT, &m);
    s_graph[0].def_idx = 2;
    s_refuse(&m, "field 'def_idx' value 2 is not below n_defs 2");
    s_graph[0].def_idx = 0;
    s_sample(HQ_MSG_ASSIGN, &m);
    s_atasks[1].variant = 2;
    s_refuse(&m, "field 'variant' value 2");
    s_atasks[1].variant = 0;
    s_sample(HQ_MSG_JOB_LIST, &m);
    s_task_ranges[0].step = 0;
    s_refuse(&m, "step 0");
    s_task_ranges[0].step = 2;
    m.hdr.type = 99;
    s_refuse(&m, "unknown message type 99");
    s_sample(HQ_MSG_REGISTER, &m);
    s_wres[1].n_groups = 0;
    s_refuse(&m, "list resource 'gpus/nvidia' has 0 groups");
    s_wres[1].n_groups = 1;
}

Test(msg_encode, refuses_coupling_outside_the_resources)
{
    hq_msg_t m;
    s_sample(HQ_MSG_REGISTER, &m);
    s_coupling[0].resource2_idx = 4;
    s_refuse(&m, "field 'coupling' resource index 0/4 out of range");
    s_coupling[0].resource2_idx = 0;
    s_refuse(&m, "couples resource 0 with itself");
    s_coupling[0].resource2_idx = 1;
    s_coupling[0].group1_idx = 2; /* cpus has 2 groups */
    s_refuse(&m, "field 'coupling' group index 2/0 out of range");
    s_coupling[0].group1_idx = 1;
    s_coupling[1].group1_idx = 1; /* a range has one group */
    s_refuse(&m, "group index 1/0 out of range");
    s_coupling[1].group1_idx = 0;
    s_coupling[1].resource1_idx = 2; /* a sum has none */
    s_refuse(&m, "group index 0/0 out of range");
    s_coupling[1].resource1_idx = 3;
    s_coupling[1].weight = 65536;
    s_refuse(&m, "weight 65536 out of range");
    s_coupling[1].weight = 65535;
}

/* Finds the coupling list (2 weights) in an encoded sample REGISTER. */
static uint8_t *s_coupling_bytes(uint8_t *buf, size_t len)
{
    static const uint8_t pat[] = {0x92, 0x95, 0, 1, 1, 0, 0xcd, 1, 0};
    uint8_t *p = memmem(buf, len, pat, sizeof pat);
    cr_assert_not_null(p);
    return p;
}

Test(msg_decode, rejects_coupling_with_a_bad_group_or_weight)
{
    hq_msg_t in;
    s_sample(HQ_MSG_REGISTER, &in);
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    uint8_t *p = s_coupling_bytes(buf, len);
    hq_err_t err = {{0}};
    p[3] = 2; /* cpus[2] */
    cr_assert_null(hq_msg_decode(buf, len, &err));
    cr_assert(strstr(err.text, "REGISTER: field 'coupling' group index 2/0 out of range"), "%s",
              err.text);
    p[3] = 1;
    p[4] = 0; /* cpus with itself */
    cr_assert_null(hq_msg_decode(buf, len, &err));
    cr_assert(strstr(err.text, "with itself"), "%s", err.text);
    p[4] = 1;
    hq_msg_t *m = hq_msg_decode(buf, len, &err);
    cr_assert_not_null(m, "%s", err.text);
    cr_assert_eq(m->u.reg.conf.coupling[0].weight, 256);
    hq_msg_destroy(&m);
    free(buf);
}

/* Turns an encoded REGISTER without a secret (an empty bin last) into one of the
 * older 5-field shape, which ends with the reports. */
static void s_drop_secret(uint8_t *buf, size_t *len)
{
    cr_assert_eq(buf[HQ_HEADER_SIZE], 0x96);
    cr_assert_eq(buf[*len - 2], 0xc4);
    cr_assert_eq(buf[*len - 1], 0x00);
    buf[HQ_HEADER_SIZE] = 0x95;
    *len -= 2;
}

Test(msg_decode, accepts_a_register_without_the_secret_and_one_with_it)
{
    hq_msg_t in;
    s_sample(HQ_MSG_REGISTER, &in);
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    s_drop_secret(buf, &len);
    hq_err_t err = {{0}};
    hq_msg_t *m = hq_msg_decode(buf, len, &err);
    cr_assert_not_null(m, "%s", err.text);
    cr_assert_not(m->u.reg.has_secret);
    cr_assert_eq(m->u.reg.n_reports, 2);
    hq_msg_destroy(&m);
    free(buf);
    in.u.reg.has_secret = true;
    memset(in.u.reg.secret, 0xab, sizeof in.u.reg.secret);
    s_encode(&in, &buf, &len);
    m = hq_msg_decode(buf, len, &err);
    cr_assert_not_null(m, "%s", err.text);
    cr_assert(m->u.reg.has_secret);
    cr_assert_eq(m->u.reg.secret[31], 0xab);
    hq_msg_destroy(&m);
    /* a secret of another length is refused */
    cr_assert_eq(buf[len - 34], 0xc4);
    cr_assert_eq(buf[len - 33], 32);
    buf[len - 33] = 31;
    m = hq_msg_decode(buf, len - 1, &err);
    cr_assert_null(m);
    cr_assert_not_null(strstr(err.text, "secret"), "%s", err.text);
    free(buf);
}

Test(msg_decode, accepts_a_conf_without_the_coupling_field)
{
    hq_msg_t in;
    s_sample(HQ_MSG_REGISTER, &in);
    in.u.reg.conf.n_coupling = 0;
    in.u.reg.conf.coupling = NULL;
    in.u.reg.n_reports = 0;
    in.u.reg.reports = NULL;
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    s_drop_secret(buf, &len);
    /* The conf header is fixarray 17 (0xdc 0x00 0x11); drop the empty coupling list
     * (0x90 just before prefetch 4, n_running 2, old_worker_id 9, reports []) and
     * say 16. */
    uint8_t *h = memmem(buf, len, (const uint8_t[]){0xdc, 0x00, 0x11}, 3);
    cr_assert_not_null(h);
    h[2] = 0x10;
    static const uint8_t tail[] = {0x90, 0x04, 0x02, 0x09, 0x90};
    cr_assert_eq(memcmp(buf + len - 5, tail, 5), 0);
    memmove(buf + len - 5, buf + len - 4, 4);
    len--;
    hq_err_t err = {{0}};
    hq_msg_t *m = hq_msg_decode(buf, len, &err);
    cr_assert_not_null(m, "%s", err.text);
    cr_assert_eq(m->u.reg.conf.n_coupling, 0);
    cr_assert_null(m->u.reg.conf.coupling);
    cr_assert_eq(m->u.reg.old_worker_id, 9);
    hq_msg_destroy(&m);
    free(buf);
}

Test(msg_decode, accepts_a_register_without_the_reports_field)
{
    hq_msg_t in;
    s_sample(HQ_MSG_REGISTER, &in);
    in.u.reg.n_reports = 0;
    in.u.reg.reports = NULL;
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    s_drop_secret(buf, &len);
    /* The body is fixarray 5 (0x95) right after the header; the empty reports list
     * (0x90) is the last byte. Make it a 4-field body without it. */
    cr_assert_eq(buf[HQ_HEADER_SIZE], 0x95);
    cr_assert_eq(buf[len - 1], 0x90);
    buf[HQ_HEADER_SIZE] = 0x94;
    len--;
    hq_err_t err = {{0}};
    hq_msg_t *m = hq_msg_decode(buf, len, &err);
    cr_assert_not_null(m, "%s", err.text);
    cr_assert_eq(m->u.reg.n_reports, 0);
    cr_assert_null(m->u.reg.reports);
    cr_assert_eq(m->u.reg.old_worker_id, 9);
    hq_msg_destroy(&m);
    free(buf);
}

Test(msg_decode, refuses_a_register_with_a_malformed_report)
{
    hq_msg_t in;
    s_sample(HQ_MSG_REGISTER, &in);
    uint8_t *buf;
    size_t len;
    s_encode(&in, &buf, &len);
    s_drop_secret(buf, &len);
    /* The last report [7, 8, 3] ends the frame; make its instance a nil. */
    static const uint8_t last[] = {0x93, 0x07, 0x08, 0x03};
    cr_assert_eq(memcmp(buf + len - 4, last, 4), 0);
    buf[len - 1] = 0xc0;
    hq_err_t err = {{0}};
    cr_assert_null(hq_msg_decode(buf, len, &err));
    cr_assert(strstr(err.text, "REGISTER: field 'instance' expected"), "%s", err.text);
    free(buf);
}
