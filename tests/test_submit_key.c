/* The SUBMIT idempotency key (proto/wire/PROTOCOL.md, "SUBMIT idempotency key and retries"):
 * the optional 11th field on the wire, journals written before it still replay, and
 * a replayed keyed submit lets the restarted broker recognise a retry until the job
 * is forgotten. */
#define JF_NAME "skey"
#include "journal_fixture.h"

#include "hq_msg_priv.h"

static const uint8_t s_key[HQ_SUBMIT_KEY_LEN] = {0xde, 0xad, 0xbe, 0xef, 1, 2,  3,  4,
                                                 5,    6,    7,    8,    9, 10, 11, 0xff};

/* A one-task array submit (task 0) into a new job, keyed when key is not NULL. */
static void s_fill(hq_submit_t *s, hq_task_def_t *def, hq_rvariant_t *var, hq_range_t *r,
                   char **args, const uint8_t *key)
{
    memset(var, 0, sizeof *var);
    *def = (hq_task_def_t){.n_args = 1,
                           .args = args,
                           .cwd = "%{SUBMIT_DIR}",
                           .n_variants = 1,
                           .variants = var,
                           .out.kind = HQ_STDIO_NONE,
                           .err.kind = HQ_STDIO_NONE,
                           .crash_limit = 5};
    *r = (hq_range_t){.start = 0, .end = 0, .step = 1};
    *s = (hq_submit_t){
        .name = "k", .submit_dir = "/tmp", .n_defs = 1, .defs = def, .ids = {.n = 1, .ranges = r}};
    if (key) {
        s->has_key = true;
        memcpy(s->key, key, HQ_SUBMIT_KEY_LEN);
    }
}

static uint8_t *s_encode(const hq_submit_t *s, size_t *len)
{
    hq_msg_t m;
    memset(&m, 0, sizeof m);
    m.hdr.type = HQ_MSG_SUBMIT;
    m.u.submit = *s;
    uint8_t *buf = NULL;
    hq_err_t err;
    cr_assert_eq(hq_msg_encode(&m, &buf, len, &err), 0, "%s", err.text);
    return buf;
}

TestSuite(submit_key_wire);

Test(submit_key_wire, keyless_submit_keeps_the_ten_field_form)
{
    hq_submit_t s;
    hq_task_def_t def;
    hq_rvariant_t var;
    hq_range_t r;
    char *args[] = {"true"};
    s_fill(&s, &def, &var, &r, args, NULL);
    size_t len;
    uint8_t *buf = s_encode(&s, &len);
    cr_assert_eq(buf[HQ_HEADER_SIZE], 0x90 | HQ_NF_SUBMIT_V0, "fixarray of 10 fields");
    hq_err_t err;
    hq_msg_t *m = hq_msg_decode(buf, len, &err);
    cr_assert_not_null(m, "%s", err.text);
    cr_assert_not(m->u.submit.has_key);
    hq_msg_destroy(&m);
    free(buf);
}

Test(submit_key_wire, keyed_submit_round_trips_its_key)
{
    hq_submit_t s;
    hq_task_def_t def;
    hq_rvariant_t var;
    hq_range_t r;
    char *args[] = {"true"};
    s_fill(&s, &def, &var, &r, args, s_key);
    size_t len;
    uint8_t *buf = s_encode(&s, &len);
    cr_assert_eq(buf[HQ_HEADER_SIZE], 0x90 | HQ_NF_SUBMIT, "fixarray of 11 fields");
    /* the key is the last 18 bytes: bin8 marker, length 16, the key */
    cr_assert_eq(buf[len - 18], 0xc4);
    cr_assert_eq(buf[len - 17], HQ_SUBMIT_KEY_LEN);
    cr_assert_eq(memcmp(buf + len - 16, s_key, HQ_SUBMIT_KEY_LEN), 0);
    hq_err_t err;
    hq_msg_t *m = hq_msg_decode(buf, len, &err);
    cr_assert_not_null(m, "%s", err.text);
    cr_assert(m->u.submit.has_key);
    cr_assert_eq(memcmp(m->u.submit.key, s_key, HQ_SUBMIT_KEY_LEN), 0);
    hq_msg_destroy(&m);
    free(buf);
}

Test(submit_key_wire, refuses_a_key_of_another_length_or_type)
{
    hq_submit_t s;
    hq_task_def_t def;
    hq_rvariant_t var;
    hq_range_t r;
    char *args[] = {"true"};
    s_fill(&s, &def, &var, &r, args, s_key);
    size_t len;
    uint8_t *buf = s_encode(&s, &len);
    /* a 15-byte key: shorten the bin by one byte */
    buf[len - 17] = HQ_SUBMIT_KEY_LEN - 1;
    hq_err_t err;
    hq_msg_t *m = hq_msg_decode(buf, len - 1, &err);
    cr_assert_null(m);
    cr_assert(strstr(err.text, "SUBMIT: field 'key'"), "%s", err.text);
    /* nil instead of the bin */
    buf[len - 18] = 0xc0;
    m = hq_msg_decode(buf, len - 17, &err);
    cr_assert_null(m);
    cr_assert(strstr(err.text, "'key'"), "%s", err.text);
    /* 12 fields */
    buf[HQ_HEADER_SIZE] = 0x90 | 12;
    m = hq_msg_decode(buf, len, &err);
    cr_assert_null(m);
    cr_assert(strstr(err.text, "has 12 fields"), "%s", err.text);
    free(buf);
}

/* ---- journal ---- */

TestSuite(submit_key_journal, .init = s_setup, .fini = s_teardown);

static void s_put_submit(hq_journal_t *j, uint32_t job, const uint8_t *key)
{
    hq_submit_t s;
    hq_task_def_t def;
    hq_rvariant_t var;
    hq_range_t r;
    char *args[] = {"true"};
    s_fill(&s, &def, &var, &r, args, key);
    hq_jrec_t rec = {.type = HQ_JR_JOB_SUBMIT};
    rec.u.job_submit.job = job;
    rec.u.job_submit.submit = &s;
    s_put(j, rec);
}

static uintptr_t s_index(hq_broker_t *b, const uint8_t *key)
{
    if (!b->jobs.submit_keys)
        return 0;
    char hex[2 * HQ_SUBMIT_KEY_LEN + 1];
    for (int i = 0; i < HQ_SUBMIT_KEY_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", key[i]);
    return (uintptr_t)zhashx_lookup(b->jobs.submit_keys, hex);
}

Test(submit_key_journal, a_journal_without_keys_still_replays)
{
    /* exactly what a broker before the key wrote: keyless (10-field) submit frames */
    hq_journal_t *j = s_writer();
    s_put_submit(j, 1, NULL);
    s_put_submit(j, 2, NULL);
    s_task(j, HQ_JR_TASK_STARTED, 1, 0, 0, 1);
    s_task(j, HQ_JR_TASK_FINISHED, 1, 0, 0, 1);
    s_close_writer(&j);
    hq_broker_t b;
    jf_restore(&b, s_dir, false);
    cr_assert_eq(b.jobs.n_live, 2);
    cr_assert_str_eq(hq_job_state_word(b.jobs.tab[1]), "FINISHED");
    cr_assert_str_eq(hq_job_state_word(b.jobs.tab[2]), "WAITING");
    cr_assert_not(b.jobs.tab[2]->submits[0].msg->u.submit.has_key);
    cr_assert_null(b.jobs.submit_keys, "no keyed submit, no index");
    s_free(&b);
}

Test(submit_key_journal, a_replayed_keyed_submit_is_known_until_its_job_is_forgotten)
{
    uint8_t other[HQ_SUBMIT_KEY_LEN];
    memcpy(other, s_key, sizeof other);
    other[0] ^= 1;
    hq_journal_t *j = s_writer();
    s_put_submit(j, 1, s_key);
    s_put_submit(j, 2, other);
    s_put_submit(j, 3, NULL);
    s_close_writer(&j);
    hq_broker_t b;
    jf_restore(&b, s_dir, false);
    cr_assert_eq(b.jobs.n_live, 3);
    cr_assert_eq(zhashx_size(b.jobs.submit_keys), 2, "one entry per keyed submit");
    cr_assert_eq(s_index(&b, s_key), 1u << 1, "job 1, not pending");
    cr_assert_eq(s_index(&b, other), 2u << 1);
    cr_assert(b.jobs.tab[1]->submits[0].msg->u.submit.has_key);
    hq_jobtab_keys_destroy(&b.jobs);
    s_free(&b);

    /* job 1 ends and is forgotten: its key goes with it */
    j = s_writer();
    s_task(j, HQ_JR_TASK_STARTED, 1, 0, 0, 1);
    s_task(j, HQ_JR_TASK_FINISHED, 1, 0, 0, 1);
    hq_jrec_t forget = {.type = HQ_JR_JOB_FORGET};
    forget.u.job.job = 1;
    s_put(j, forget);
    s_close_writer(&j);
    jf_restore(&b, s_dir, false);
    cr_assert_null(b.jobs.tab[1]);
    cr_assert_eq(s_index(&b, s_key), 0, "forgotten with its job");
    cr_assert_eq(s_index(&b, other), 2u << 1);
    cr_assert_eq(zhashx_size(b.jobs.submit_keys), 1);
    hq_jobtab_keys_destroy(&b.jobs);
    cr_assert_null(b.jobs.submit_keys);
    s_free(&b);
}
