/* The JSON form of a task definition (see hq_taskdef_json.h). */
#include "hq_taskdef_json.h"

#include "hq_duration.h"

static const char *s_policy_key(enum hq_policy p)
{
    switch (p) {
    case HQ_POLICY_FORCE_COMPACT:
        return "ForceCompact";
    case HQ_POLICY_TIGHT:
        return "Tight";
    case HQ_POLICY_FORCE_TIGHT:
        return "ForceTight";
    case HQ_POLICY_SCATTER:
        return "Scatter";
    default:
        return "Compact";
    }
}

json_t *hq_stdio_json(const hq_stdio_t *io, const char *resolved)
{
    if (io->kind == HQ_STDIO_NONE)
        return json_null();
    if (io->kind == HQ_STDIO_STREAM)
        return json_string("<pipe>");
    return json_string(resolved ? resolved : "");
}

json_t *hq_task_def_json(const hq_task_def_t *d, const char *cwd, const char *out, const char *err)
{
    json_t *args = json_array();
    for (uint32_t i = 0; i < d->n_args; i++)
        json_array_append_new(args, json_string(d->args[i]));
    json_t *env = json_object();
    for (uint32_t i = 0; i < d->n_env; i++)
        json_object_set_new(env, d->env[i].key, json_string(d->env[i].value));
    json_t *res = json_array();
    for (uint32_t v = 0; v < d->n_variants; v++) {
        const hq_rvariant_t *rv = &d->variants[v];
        json_t *entries = json_array();
        for (uint32_t e = 0; e < rv->n_entries; e++) {
            const hq_rreq_t *r = &rv->entries[e];
            json_t *request =
                r->all ? json_string("All")
                       : json_pack("{s:I}", s_policy_key(r->policy), (json_int_t)r->amount);
            json_array_append_new(entries,
                                  json_pack("{s:s,s:o}", "resource", r->name, "request", request));
        }
        json_array_append_new(res, json_pack("{s:i,s:o,s:f,s:i}", "n_nodes",
                                             (json_int_t)rv->n_nodes, "resources", entries,
                                             "min_time", hq_duration_seconds(rv->min_time_ns),
                                             "weight", (json_int_t)rv->weight));
    }
    json_t *crash;
    if (d->crash_kind == HQ_CRASH_NEVER_RESTART)
        crash = json_string("never-restart");
    else if (d->crash_kind == HQ_CRASH_UNLIMITED)
        crash = json_string("unlimited");
    else
        crash = json_integer(d->crash_limit);
    json_t *pin = d->pin == HQ_PIN_TASKSET ? json_string("taskset")
                  : d->pin == HQ_PIN_OMP   ? json_string("openmp")
                                           : json_null();
    return json_pack(
        "{s:{s:o,s:o,s:s,s:o,s:o},s:o,s:o,s:i,s:o,s:b,s:o}", "program", "args", args, "env", env,
        "cwd", cwd ? cwd : "", "stdout", hq_stdio_json(&d->out, out ? out : d->out.path), "stderr",
        hq_stdio_json(&d->err, err ? err : d->err.path), "resources", res, "pin_mode", pin,
        "priority", (json_int_t)d->priority, "time_limit",
        d->time_limit_ns ? json_real(hq_duration_seconds(d->time_limit_ns)) : json_null(),
        "task_dir", d->task_dir, "crash_limit", crash);
}
