/* hq: the command-line client, and through `server start` / `worker start` also the
 * broker and the worker; cli/dispatch.c finds the command. Started under the name
 * hq-broker or hq-worker (links to this one executable) it is `hq server start` /
 * `hq worker start` with the same flags. */
#include <string.h>

#include "broker.h"
#include "cli.h"
#include "hq_util.h"
#include "worker.h"

/* The name the program was started as, without its directory. */
static const char *s_program_name(int argc, char **argv)
{
    if (argc < 1 || !argv[0])
        return "hq";
    const char *slash = strrchr(argv[0], '/');
    return slash ? slash + 1 : argv[0];
}

int main(int argc, char **argv)
{
    const char *program = s_program_name(argc, argv);
    if (argc >= 1)
        hq_set_self_path(argv[0]);
    if (strcmp(program, "hq-broker") == 0)
        return hq_broker_main(argc - 1, argv + 1);
    if (strcmp(program, "hq-worker") == 0)
        return hq_worker_main(argc - 1, argv + 1);
    return hq_cli_main(argc, argv);
}
