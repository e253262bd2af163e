/* Tests for the scheduler actor (broker/sched/actor.h) end to end in-process: commands
 * in by pointer, HQ_SCHED_ASSIGNED batches out, clean shutdown with output still
 * pending. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"
#include "sched/actor.h"

static hq_sched_t *g_s;

static void setup(void)
{
    zsys_handler_set(NULL);
    g_s = hq_sched_new();
    cr_assert_not_null(g_s);
}

static void teardown(void)
{
    hq_sched_destroy(&g_s);
    cr_assert_null(g_s);
}

TestSuite(sched, .init = setup, .fini = teardown);

static void send_cmd(hq_sched_cmd_t *cmd)
{
    cr_assert_eq(hq_sched_send(g_s, &cmd), 0);
    cr_assert_null(cmd);
}

static void send_rq(uint32_t rq_id, const char *res, hq_amount_t amount)
{
    hq_sched_cmd_t *c = hq_sched_cmd_new(HQ_SCHED_RQ_ADD);
    c->rq.rq_id = rq_id;
    c->rq.n_variants = 1;
    c->rq.variants = hq_calloc(1, sizeof *c->rq.variants);
    c->rq.variants[0].weight = HQ_AMOUNT_ONE;
    c->rq.variants[0].n_entries = 1;
    c->rq.variants[0].entries = hq_calloc(1, sizeof(hq_rreq_t));
    c->rq.variants[0].entries[0].name = hq_strdup(res);
    c->rq.variants[0].entries[0].amount = amount;
    send_cmd(c);
}

static void send_worker(uint32_t id, uint32_t cpus, uint32_t credit)
{
    hq_sched_cmd_t *c = hq_sched_cmd_new(HQ_SCHED_WORKER_UP);
    c->worker.worker_id = id;
    c->worker.credit = credit;
    c->worker.group = hq_strdup("default");
    c->worker.resources.n = 2;
    c->worker.resources.res = hq_calloc(2, sizeof(hq_wres_t));
    c->worker.resources.res[0] =
        (hq_wres_t){.name = hq_strdup("cpus"), .kind = HQ_RES_LIST, .n_groups = 1};
    hq_label_group_t *g = hq_calloc(1, sizeof *g);
    g->n = cpus;
    g->labels = hq_calloc(cpus, sizeof *g->labels);
    for (uint32_t i = 0; i < cpus; i++)
        g->labels[i] = hq_asprintf("%u", i);
    c->worker.resources.res[0].groups = g;
    c->worker.resources.res[1] =
        (hq_wres_t){.name = hq_strdup("mem"), .kind = HQ_RES_SUM, .sum_size = 1024 * HQ_AMOUNT_ONE};
    send_cmd(c);
}

static void send_ready(enum hq_sched_cmd_type type, uint32_t job, uint32_t rq, uint32_t start,
                       uint32_t end)
{
    hq_sched_cmd_t *c = hq_sched_cmd_new(type);
    c->ready.job_id = job;
    c->ready.rq_id = rq;
    c->ready.ids.n = 1;
    c->ready.ids.ranges = hq_calloc(1, sizeof(hq_range_t));
    c->ready.ids.ranges[0] = (hq_range_t){.start = start, .end = end, .step = 1};
    send_cmd(c);
}

static void send_release(uint32_t worker, uint32_t job, uint32_t first, uint32_t n, uint32_t rq)
{
    hq_sched_cmd_t *c = hq_sched_cmd_new(HQ_SCHED_RELEASE);
    c->slots.n = n;
    c->slots.slots = hq_calloc(n, sizeof(hq_sched_slot_t));
    for (uint32_t i = 0; i < n; i++)
        c->slots.slots[i] = (hq_sched_slot_t){
            .worker_id = worker, .job_id = job, .task_id = first + i, .rq_id = rq};
    send_cmd(c);
}

/* Waits (bounded) for the next ASSIGNED batch. */
static hq_sched_cmd_t *recv_assigned(void)
{
    zpoller_t *poller = zpoller_new(hq_sched_sock(g_s), NULL);
    void *which = zpoller_wait(poller, 10000);
    zpoller_destroy(&poller);
    cr_assert_not_null(which, "no ASSIGNED within 10 s");
    hq_sched_cmd_t *c = hq_sched_recv(g_s);
    cr_assert_not_null(c);
    cr_assert_eq(c->type, HQ_SCHED_ASSIGNED);
    return c;
}

Test(sched, assigns_ready_tasks_in_one_batch)
{
    send_rq(1, "cpus", HQ_AMOUNT_ONE);
    send_worker(5, 4, 100);
    send_ready(HQ_SCHED_READY, 1, 1, 0, 9);
    hq_sched_cmd_t *c = recv_assigned();
    cr_assert_eq(c->slots.n, 4);
    for (uint32_t i = 0; i < 4; i++) {
        cr_assert_eq(c->slots.slots[i].worker_id, 5);
        cr_assert_eq(c->slots.slots[i].job_id, 1);
        cr_assert_eq(c->slots.slots[i].task_id, i);
        cr_assert_eq(c->slots.slots[i].rq_id, 1);
        cr_assert_eq(c->slots.slots[i].variant, 0);
    }
    hq_sched_cmd_destroy(&c);
    cr_assert_null(c);
}

Test(sched, released_capacity_is_reused)
{
    send_rq(1, "cpus", 2 * HQ_AMOUNT_ONE);
    send_worker(1, 4, 100);
    send_ready(HQ_SCHED_READY, 3, 1, 0, 99);
    hq_sched_cmd_t *c = recv_assigned();
    cr_assert_eq(c->slots.n, 2);
    hq_sched_cmd_destroy(&c);
    send_release(1, 3, 0, 2, 1);
    c = recv_assigned();
    cr_assert_eq(c->slots.n, 2);
    cr_assert_eq(c->slots.slots[0].task_id, 2);
    cr_assert_eq(c->slots.slots[1].task_id, 3);
    hq_sched_cmd_destroy(&c);
}

Test(sched, cancelled_tasks_are_not_assigned)
{
    send_rq(1, "cpus", HQ_AMOUNT_ONE);
    send_ready(HQ_SCHED_READY, 1, 1, 0, 99);
    send_ready(HQ_SCHED_READY, 2, 1, 0, 9);
    send_ready(HQ_SCHED_CANCEL_TASKS, 2, 1, 0, 4);
    hq_sched_cmd_t *cancel = hq_sched_cmd_new(HQ_SCHED_CANCEL_JOB);
    cancel->job_id = 1;
    send_cmd(cancel);
    send_worker(1, 2, 100);
    hq_sched_cmd_t *c = recv_assigned();
    cr_assert_eq(c->slots.n, 2);
    cr_assert_eq(c->slots.slots[0].job_id, 2);
    cr_assert_eq(c->slots.slots[0].task_id, 5);
    cr_assert_eq(c->slots.slots[1].task_id, 6);
    hq_sched_cmd_destroy(&c);
}

Test(sched, credit_and_worker_down_are_applied)
{
    send_rq(1, "cpus", HQ_AMOUNT_ONE);
    send_worker(1, 8, 0);
    send_ready(HQ_SCHED_READY, 1, 1, 0, 9);
    hq_sched_cmd_t *cr = hq_sched_cmd_new(HQ_SCHED_CREDIT);
    cr->worker_id = 1;
    cr->credit = 3;
    send_cmd(cr);
    hq_sched_cmd_t *c = recv_assigned();
    cr_assert_eq(c->slots.n, 3);
    hq_sched_cmd_destroy(&c);
    hq_sched_cmd_t *down = hq_sched_cmd_new(HQ_SCHED_WORKER_DOWN);
    down->worker_id = 1;
    send_cmd(down);
    send_worker(2, 1, 10);
    c = recv_assigned();
    cr_assert_eq(c->slots.n, 1);
    cr_assert_eq(c->slots.slots[0].worker_id, 2);
    cr_assert_eq(c->slots.slots[0].task_id, 3);
    hq_sched_cmd_destroy(&c);
}

Test(sched, destroy_frees_output_the_core_never_read)
{
    send_rq(1, "cpus", HQ_AMOUNT_ONE);
    send_worker(1, 4, 100);
    send_ready(HQ_SCHED_READY, 1, 1, 0, 9);
    send_release(1, 1, 0, 1, 1);
    send_ready(HQ_SCHED_READY, 2, 1, 0, 9);
    /* teardown destroys the actor with ASSIGNED batches possibly pending */
}

Test(sched, destroy_and_cmd_destroy_are_null_safe)
{
    hq_sched_t *none = NULL;
    hq_sched_destroy(&none);
    hq_sched_destroy(NULL);
    hq_sched_cmd_t *c = NULL;
    hq_sched_cmd_destroy(&c);
    hq_sched_cmd_destroy(NULL);
    cr_assert_eq(hq_sched_send(g_s, &c), -1);
}
