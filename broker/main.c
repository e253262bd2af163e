/* hq-broker: a thin executable around the broker library. */
#include "broker.h"

int main(int argc, char **argv)
{
    return hq_broker_main(argc - 1, argv + 1);
}
