/* Placeholders in task paths (cli/REFERENCE.md §1.6): "%{NAME}" in a task's working
 * directory, stdout or stderr path, expanded with the values known where it is
 * expanded. The broker resolves what it knows at submit (job id, submit dir, server
 * uid), the worker the rest at launch; both go through these functions. */
#ifndef HQ_PLACEHOLDER_H
#define HQ_PLACEHOLDER_H

#include <stdbool.h>

/* Known placeholder values; NULL members are unknown and kept verbatim. */
typedef struct hq_placeholder_vals {
    const char *job_id;      /* %{JOB_ID} */
    const char *task_id;     /* %{TASK_ID} */
    const char *instance_id; /* %{INSTANCE_ID} */
    const char *submit_dir;  /* %{SUBMIT_DIR} */
    const char *server_uid;  /* %{SERVER_UID} */
    const char *cwd;         /* %{CWD} */
} hq_placeholder_vals_t;

/* s with the known placeholders substituted; unknown ones (and a "%{" without its
 * "}") stay as they are. Values are not scanned again. Caller frees. */
char *hq_placeholder_expand(const char *s, const hq_placeholder_vals_t *v);

/* True when s (NULL-safe) still contains a "%{...}" placeholder. */
bool hq_placeholder_present(const char *s);

/* path made absolute against base: "base/path"; path itself when it is absolute or
 * base is NULL or empty. Caller frees. */
char *hq_path_abs(const char *path, const char *base);

/* spec expanded and, when relative, made absolute against base, even if it still
 * holds placeholders (those left are never absolute paths themselves; the next stage
 * expands them). Caller frees. */
char *hq_placeholder_path(const char *spec, const hq_placeholder_vals_t *v, const char *base);

/* Resolves a task's paths: the working directory from cwd (NULL or "" means
 * "%{SUBMIT_DIR}") against v->submit_dir, with %{CWD} unknown; then stdout and
 * stderr from out and err against that directory, with %{CWD} being it (v->cwd is not
 * used). out or err may be NULL (no file): the matching result is then NULL. The
 * results are new strings. */
void hq_placeholder_resolve(const char *cwd, const char *out, const char *err,
                            const hq_placeholder_vals_t *v, char **cwd_out, char **out_path,
                            char **err_path);

#endif
