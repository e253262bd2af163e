/* What a client or a worker tells its user when it cannot reach the server: where it
 * looked and how to start a server there (cli/REFERENCE.md §2), repeating the
 * --server-dir flag when the directory is not the default one. Shared by the client
 * (cli/client.c) and the worker's registration (worker/connect.c). */
#ifndef HQ_SERVER_HINT_H
#define HQ_SERVER_HINT_H

#include "hq_err.h"

/* " --server-dir <server_dir>" to append to a suggested `hq server start`, or "" when
 * server_dir is the default $HOME/.hq-server. Caller frees. */
char *hq_server_hint_flag(const char *server_dir);

/* No usable access file: sets err to "No running instance of HQ found at
 * \"<resolved>\"." with the command to start a server there, then cause (if not
 * NULL) as the "Caused by:" part. resolved is the directory searched. */
void hq_server_hint_not_found(hq_err_t *err, const char *resolved, const char *server_dir,
                              const char *cause);

/* An access file but no answer: sets err to "Access token found but HQ server
 * <host_port> is unreachable." with the command to (re)start the server, then cause
 * (if not NULL). */
void hq_server_hint_unreachable(hq_err_t *err, const char *host_port, const char *server_dir,
                                const char *cause);

#endif
