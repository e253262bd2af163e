/* hq-worker: a thin executable around the worker library. */
#include "worker.h"

int main(int argc, char **argv)
{
    return hq_worker_main(argc - 1, argv + 1);
}
