/* The JSON form of a task definition (the "program"/"resources"/... object that
 * `job info` JSON shows per submit and that `job-created` events carry in
 * submit_desc.task_desc). One implementation for the broker's queries and the
 * journal's NDJSON events. */
#ifndef HQ_TASKDEF_JSON_H
#define HQ_TASKDEF_JSON_H

#include <jansson.h>

#include "hq_msg.h"

/* stdout/stderr: null (none), "<pipe>" (stream) or the path (resolved, or "" when
 * NULL). New reference. */
json_t *hq_stdio_json(const hq_stdio_t *io, const char *resolved);

/* The task definition d with its working directory and stdout/stderr paths as given
 * (cwd NULL = ""; out/err NULL = the definition's own paths). New reference. */
json_t *hq_task_def_json(const hq_task_def_t *d, const char *cwd, const char *out, const char *err);

#endif
