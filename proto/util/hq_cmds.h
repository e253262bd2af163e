/* The parts of the command table (hq_cmds_jobs.c: submit, job, task;
 * hq_cmds_infra.c: the root, server, worker, journal and the documentation
 * commands) and the shorthands their option lists are written with. */
#ifndef HQ_CMDS_H
#define HQ_CMDS_H

#include "hq_cmdtable.h"

extern const hq_cmd_spec_t hq_cmds_top[];
extern const size_t hq_cmds_top_len;
extern const hq_cmd_spec_t hq_cmds_jobs[];
extern const size_t hq_cmds_jobs_len;
extern const hq_cmd_spec_t hq_cmds_infra[];
extern const size_t hq_cmds_infra_len;

extern const hq_pos_arg_t hq_submit_args[];

/* --name (flag). */
#define HQ_FLAG(name, short_name, help)                                                            \
    {                                                                                              \
        name, short_name, HQ_OPT_FLAG, NULL, help, NULL, NULL, NULL, false                         \
    }
/* --name <VALUE_NAME>, with its default (or NULL). */
#define HQ_VALUE(name, value_name, def, help)                                                      \
    {                                                                                              \
        name, 0, HQ_OPT_VALUE, value_name, help, def, NULL, NULL, false                            \
    }
/* --name <VALUE_NAME> that the command cannot run without. */
#define HQ_REQUIRED(name, value_name, help)                                                        \
    {                                                                                              \
        name, 0, HQ_OPT_VALUE, value_name, help, NULL, NULL, NULL, true                            \
    }
/* --name <VALUE_NAME> with only these values. */
#define HQ_CHOICE(name, value_name, def, possible, help)                                           \
    {                                                                                              \
        name, 0, HQ_OPT_VALUE, value_name, help, def, possible, NULL, false                        \
    }
/* --name <VALUE_NAME>, repeatable. */
#define HQ_MULTI(name, value_name, help)                                                           \
    {                                                                                              \
        name, 0, HQ_OPT_MULTI, value_name, help, NULL, NULL, NULL, false                           \
    }
#define HQ_OPTS_END                                                                                \
    {                                                                                              \
        NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, false                                            \
    }

/* Required <NAME> positionals (optional and repeated ones are written out). */
#define HQ_ARG(name, help)                                                                         \
    {                                                                                              \
        name, help, false, false, NULL                                                             \
    }
#define HQ_ARG_CHOICE(name, help, possible)                                                        \
    {                                                                                              \
        name, help, false, false, possible                                                         \
    }
#define HQ_ARGS_END                                                                                \
    {                                                                                              \
        NULL, NULL, false, false, NULL                                                             \
    }

#endif
