/* The server directory (cli/REFERENCE.md §2): resolving it, creating its numbered
 * run dirs and the hq-current link. Shared by the three programs; the access file
 * inside a run dir is hq_access.h (wire). */
#ifndef HQ_SERVERDIR_H
#define HQ_SERVERDIR_H

#include "hq_err.h"

/* Resolves the server directory (cli/REFERENCE.md §0.1): --server-dir value or HQ_SERVER_DIR
 * or $HOME/.hq-server, made absolute. Caller frees. */
char *hq_server_dir_default(const char *flag_value);

/* The directory clients open: <dir>/hq-current if it resolves to a directory, else
 * <dir> itself. Fails with "\"<path>\" is not a directory" when it is not one.
 * Caller frees. */
char *hq_server_dir_resolve(const char *server_dir, hq_err_t *err);

/* Creates <server_dir> (0700) if missing and the next numbered run dir NNN (0700).
 * Returns the run dir path (caller frees) or NULL. */
char *hq_server_dir_new_run(const char *server_dir, hq_err_t *err);

/* Points <server_dir>/hq-current at run_dir (atomically replaced). */
int hq_server_dir_set_current(const char *server_dir, const char *run_dir, hq_err_t *err);

/* Removes hq-current if it still points at run_dir. */
void hq_server_dir_clear_current(const char *server_dir, const char *run_dir);

#endif
