/* What a submit costs in memory and what the broker can still hold (cost.c). */
#ifndef HQ_BROKER_COST_H
#define HQ_BROKER_COST_H

#include <stddef.h>
#include <stdint.h>

#include "hq_err.h"
#include "hq_msg.h"

/* Server memory one task costs (its slot in the job, the scheduler's and the ready
 * queue's share), measured as address space; broker/GUARANTEES.md documents it. */
#define HQ_TASK_BYTES 96
/* Copies of a submit frame the server keeps (the decoded message, twice its size, and
 * the journal record until written). */
#define HQ_FRAME_COPIES 3
/* Memory kept back for serving after the largest accepted submit. */
#define HQ_COST_RESERVE (64ull * 1024 * 1024)

/* What the server can still allocate: bytes (after the reserve; UINT64_MAX without a
 * limit), and the limit that binds (its size, what is in use, its name). */
typedef struct hq_headroom {
    uint64_t bytes;
    uint64_t limit, used;
    char what[64];
} hq_headroom_t;

/* Bytes a definition / one task with its entry take at most in an ASSIGN frame (an
 * upper bound of their encoding), and what a frame to a worker can carry. */
size_t hq_def_wire_bytes(const hq_task_def_t *d);
size_t hq_task_wire_bytes(size_t entry_len);
#define HQ_ASSIGN_MAX_BYTES ((size_t)HQ_WORKER_MAXMSG - 64 * 1024)
/* 0, or -1 with an error naming the task and the limit when one task of s (its
 * definition, the submit's paths and its entry) cannot fit one frame to a worker. */
int hq_cost_check_frame(const hq_submit_t *s, hq_err_t *err);

/* Notes the memory available and in use at start (the baseline of the third limit). */
void hq_cost_init(void);
void hq_cost_headroom(hq_headroom_t *h);

/* Tasks a submit creates; its cost in bytes given its frame's size. */
uint64_t hq_submit_tasks(const hq_submit_t *s);
uint64_t hq_submit_cost(const hq_submit_t *s, size_t frame_bytes);
/* 0, or -1 with an error naming the tasks, the cost, the headroom and the limit. */
int hq_cost_check_submit(const hq_submit_t *s, size_t frame_bytes, hq_err_t *err);

#endif
