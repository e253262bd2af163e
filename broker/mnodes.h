/* Multi-node tasks in the core: the workers a placed multi-node task holds (root
 * first) are kept on its job for reporting (task JSON "workers", the hostnames of the
 * task table, `worker info` of every node), and each node knows the task it serves:
 * the secondary nodes, and the workers the scheduler reserves for a waiting multi-node
 * task, are told (NODE_OF) so that they do not idle out meanwhile. Private to
 * broker/. */
#ifndef HQ_BROKER_MNODES_H
#define HQ_BROKER_MNODES_H

#include <stdint.h>

#include "ctx.h"

/* The scheduler placed multi-node task (slots[0].job_id, slots[0].task_id) on the n
 * workers of slots, root first. */
void hq_mn_placed(hq_broker_t *b, const hq_sched_slot_t *slots, uint32_t n);
/* The workers of task_id's last placement, root first (NULL, *n = 0: not multi-node). */
const uint32_t *hq_mn_nodes(const hq_job_t *j, uint32_t task_id, uint32_t *n);
/* Replay: task_id of job j (NULL: ignored) last ran on these n workers, root first. */
void hq_mn_restore(hq_job_t *j, uint32_t task_id, const uint32_t *workers, uint32_t n);
/* The scheduler's workers reserved for a multi-node task (HQ_SCHED_MN_RESERVED). */
void hq_mn_on_reserved(hq_broker_t *b, const hq_sched_cmd_t *cmd);
/* Task t of job j no longer holds its nodes (ended, requeued, lost): they are free. */
void hq_mn_release(hq_broker_t *b, const hq_job_t *j, const hq_task_t *t);

#endif
