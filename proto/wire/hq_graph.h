/* The task graph of a SUBMIT checked before anything changes (one implementation
 * for the broker and the client). */
#ifndef HQ_GRAPH_H
#define HQ_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "hq_err.h"
#include "hq_msg.h"

/* Whether task id already exists (in the job the graph goes into). */
typedef bool(hq_graph_has_fn)(void *arg, uint32_t id);

/* Checks graph g of n tasks going into job job_id, whose existing tasks has() tells
 * (NULL: a new job): ids unique ("Task <t> is defined more than once.") and new ("Task
 * <t> already exists in job <j>."), every dependency names a task of g or of the job
 * and not the task itself ("Invalid dependency on <t>"), and no cycle ("Dependency
 * cycle detected: task <t> depends on itself through its dependencies", t the smallest
 * id on the cycle). 0, or -1 with err. */
int hq_graph_check(const hq_graph_task_t *g, uint32_t n, hq_graph_has_fn *has, void *arg,
                   uint32_t job_id, hq_err_t *err);

#endif
