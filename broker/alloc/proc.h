/* The batch system's commands run as child processes without blocking the broker's
 * loop: each runs directly (no shell) in its own process group with stdout and stderr
 * in unlinked temporary files; a poll collects the ones that ended and kills those
 * past their deadline. Private to broker/alloc/. */
#ifndef HQ_ALLOC_PROC_H
#define HQ_ALLOC_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "hq_err.h"

/* What the allocator needs to know when a command ends. */
typedef struct hq_pjob {
    int kind;       /* the allocator's enum of command kinds */
    uint32_t queue; /* queue id (0 = none) */
    uint32_t seq;   /* allocation directory number (0 = none) */
    void *held;     /* a held client request (dry runs), or NULL */
} hq_pjob_t;

/* A command that ended. */
typedef struct hq_pdone {
    hq_pjob_t job;
    int exit_code; /* exit status; 128+signal when killed; -1 when it could not start */
    char *out;     /* its stdout (owned, NUL-terminated, at most 1 MiB) */
    char *err;     /* its stderr (same) */
} hq_pdone_t;

typedef struct hq_procs hq_procs_t;

hq_procs_t *hq_procs_new(void);
/* Kills (SIGKILL to the group) and reaps every running command; drop (nullable) is
 * called with the job of each one that had not been collected. */
void hq_procs_destroy(hq_procs_t **ps, void (*drop)(const hq_pjob_t *job));
/* Starts argv (argv[0] looked up in PATH) in directory cwd (NULL: the current one),
 * killed after timeout_ns. A program that cannot be started ends with exit code -1
 * and the reason in err. */
void hq_procs_start(hq_procs_t *ps, char *const argv[], const char *cwd, uint64_t timeout_ns,
                    const hq_pjob_t *job);
/* The next command that ended (caller frees out/err with hq_pdone_clear), or false. */
bool hq_procs_next(hq_procs_t *ps, hq_pdone_t *done);
void hq_pdone_clear(hq_pdone_t *d);
/* Commands running now. */
uint32_t hq_procs_running(const hq_procs_t *ps);

#endif
