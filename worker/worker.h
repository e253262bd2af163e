/* hq-worker's entry point: `hq-worker ARGS` and `hq worker start ARGS` both call
 * hq_worker_main with the arguments after the command words. */
#ifndef HQ_WORKER_H
#define HQ_WORKER_H

/* Runs a worker until stopped. argv[0] is the first argument (not the program
 * name); global flags are accepted among them. Returns the exit code of cli/REFERENCE.md §0:
 * 0 after `hq worker stop`, idle timeout, time limit or SIGINT/SIGTERM; 1 when the
 * server is lost or stopped, or on a start-up error; 2 for command-line errors. */
int hq_worker_main(int argc, char **argv);

/* `hq worker hwdetect [--no-hyper-threading]`: prints what a worker would detect. */
int hq_worker_hwdetect_main(int argc, char **argv);

#endif
