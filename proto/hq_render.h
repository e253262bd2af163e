/* Renderings shared by the client and the daemons: the server-info table (printed
 * by `hq server info` and by `hq server start`) and the worker JSON object and
 * worker-info table (printed by `hq worker info` and by `hq worker start`). */
#ifndef HQ_RENDER_H
#define HQ_RENDER_H

#include <stdbool.h>

#include <jansson.h>

#include "hq_args.h"
#include "hq_msg.h"

/* The CLI.md §6 worker object for a worker configuration: id, configuration,
 * allocation, runtime_info (null), last_task_started (null), started, ended (null).
 * The broker adds runtime_info/ended/_state/_runtime_text. New reference. */
json_t *hq_worker_json(uint32_t id, const hq_worker_conf_t *conf);

/* The §6 resource list object {"resources": [R...], "coupling": {"weights": []}}. */
json_t *hq_wres_json(const hq_wres_list_t *l);

/* Prints a server info object in the global output mode: cli -> vertical table
 * (with a first "Server directory" row when server_dir != NULL), json -> the object
 * (server_dir set), quiet -> the server dir (start) or nothing (info). */
void hq_render_server_info(const hq_global_t *g, json_t *info, const char *server_dir);

/* Prints worker objects (array) in the output mode: cli -> one vertical table per
 * worker (CLI.md §5 `hq worker info`), blank line between; runtime adds the
 * "Runtime Info" row (false for the table `worker start` prints). */
void hq_render_worker_info(const hq_global_t *g, json_t *workers, bool runtime);

#endif
