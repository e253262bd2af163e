/* hq: the command-line client, and through `server start` / `worker start` also the
 * broker and the worker; cli/dispatch.c finds the command. */
#include "cli.h"

int main(int argc, char **argv)
{
    return hq_cli_main(argc, argv);
}
