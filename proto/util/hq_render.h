/* Renderings shared by the client and the daemons: the server-info table (printed
 * by `hq server info` and by `hq server start`) and the worker JSON object and
 * worker-info table (printed by `hq worker info` and by `hq worker start`). */
#ifndef HQ_RENDER_H
#define HQ_RENDER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "hq_args.h"
#include "hq_resource.h"
#include "hq_worker_conf.h"

/* The cli/REFERENCE.md §6 worker object for a worker configuration: id, configuration,
 * allocation, runtime_info (null), last_task_started (null), started, ended (null).
 * Also the private keys `_pid` and `_overview_interval` (null or float seconds) that
 * the worker-info table shows. The broker adds runtime_info/ended/_state/_runtime_text.
 * New reference. */
json_t *hq_worker_json(uint32_t id, const hq_worker_conf_t *conf);

/* The §6 resource list object {"resources": [R...], "coupling": {"weights": []}}. */
json_t *hq_wres_json(const hq_wres_list_t *l);
/* Same with coupling.weights filled from w[0..n): items {"resource1_idx",
 * "group1_idx", "resource2_idx", "group2_idx", "weight"}. */
json_t *hq_wres_json_coupled(const hq_wres_list_t *l, const hq_coupling_t *w, uint32_t n);
/* Which of the n resources of a §6 resource object its coupling.weights name: an
 * array of n flags (caller frees), NULL when none is coupled. */
bool *hq_wres_json_coupled_mask(const json_t *v, uint32_t n);

/* Prints a server info object in the global output mode: cli -> vertical table
 * (with a first "Server directory" row when server_dir != NULL), json -> the object
 * (server_dir set), quiet -> the server dir (start) or nothing (info). */
void hq_render_server_info(const hq_global_t *g, json_t *info, const char *server_dir);

/* Prints worker objects (array) in the output mode: cli -> one vertical table per
 * worker (cli/REFERENCE.md §5 `hq worker info`), blank line between; runtime adds the
 * "Runtime Info" row (false for the table `worker start` prints). */
void hq_render_worker_info(const hq_global_t *g, json_t *workers, bool runtime);

/* Parses an RFC3339 UTC datetime ("2026-01-02T03:04:05Z", 0..9 fractional digits,
 * "Z" or "+00:00") into ns since the epoch. Returns 0, or -1 if s is not one. */
int hq_time_parse_rfc3339(const char *s, uint64_t *ns_out);

/* Builds a resource list from the §6 {"resources": [R...]} object (or a bare [R...]
 * array). Unknown kinds are skipped. The caller clears *out with
 * hq_wres_list_clear. Returns 0, or -1 when the value has the wrong shape. */
int hq_wres_from_json(const json_t *v, hq_wres_list_t *out);

#endif
