/* hq-broker's entry point: `hq-broker ARGS` and `hq server start ARGS` both call
 * hq_broker_main with the arguments after the command words. */
#ifndef HQ_BROKER_H
#define HQ_BROKER_H

/* Runs a broker until `hq server stop`, SIGINT/SIGTERM or the idle timeout.
 * argv[0] is the first argument (not the program name). The global flags
 * (--server-dir, --output-mode, --colors, --debug) are accepted among them.
 * Returns the process exit code (0 normal stop, 1 error, 2 command-line error). */
int hq_broker_main(int argc, char **argv);

#endif
