/* Placeholder expansion and resolution of task paths (cli/REFERENCE.md §1.6), the one
 * implementation the broker (at submit) and the worker (at launch) share. */
#include "hq_placeholder.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

/* The value of the placeholder name[0..len), or NULL when unknown. */
static const char *s_lookup(const hq_placeholder_vals_t *v, const char *name, size_t len)
{
    static const struct {
        const char *name;
        size_t off;
    } table[] = {
        {"JOB_ID", offsetof(hq_placeholder_vals_t, job_id)},
        {"TASK_ID", offsetof(hq_placeholder_vals_t, task_id)},
        {"INSTANCE_ID", offsetof(hq_placeholder_vals_t, instance_id)},
        {"SUBMIT_DIR", offsetof(hq_placeholder_vals_t, submit_dir)},
        {"SERVER_UID", offsetof(hq_placeholder_vals_t, server_uid)},
        {"CWD", offsetof(hq_placeholder_vals_t, cwd)},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strlen(table[i].name) == len && memcmp(table[i].name, name, len) == 0)
            return *(const char *const *)((const char *)v + table[i].off);
    }
    return NULL;
}

char *hq_placeholder_expand(const char *s, const hq_placeholder_vals_t *v)
{
    hq_buf_t b = {0};
    hq_buf_append(&b, "", 0);
    const char *p = s;
    while (*p) {
        const char *open = strstr(p, "%{");
        if (!open) {
            hq_buf_append(&b, p, strlen(p));
            break;
        }
        const char *close = strchr(open + 2, '}');
        if (!close) {
            hq_buf_append(&b, p, strlen(p));
            break;
        }
        hq_buf_append(&b, p, (size_t)(open - p));
        const char *val = s_lookup(v, open + 2, (size_t)(close - open - 2));
        if (val)
            hq_buf_append(&b, val, strlen(val));
        else
            hq_buf_append(&b, open, (size_t)(close - open + 1));
        p = close + 1;
    }
    return b.data;
}

bool hq_placeholder_present(const char *s)
{
    const char *open = s ? strstr(s, "%{") : NULL;
    return open && strchr(open + 2, '}');
}

char *hq_path_abs(const char *path, const char *base)
{
    if (path[0] == '/' || !base || !*base)
        return hq_strdup(path);
    size_t bl = strlen(base);
    if (base[bl - 1] == '/')
        return hq_asprintf("%s%s", base, path);
    return hq_asprintf("%s/%s", base, path);
}

char *hq_placeholder_path(const char *spec, const hq_placeholder_vals_t *v, const char *base)
{
    char *p = hq_placeholder_expand(spec, v);
    /* Placeholders left here (TASK_ID, INSTANCE_ID at submit; unknown names) never
     * expand to an absolute path, so a relative path is made absolute now: a later
     * stage then cannot join it to its base a second time. */
    char *abs = hq_path_abs(p, base);
    free(p);
    return abs;
}

void hq_placeholder_resolve(const char *cwd, const char *out, const char *err,
                            const hq_placeholder_vals_t *v, char **cwd_out, char **out_path,
                            char **err_path)
{
    hq_placeholder_vals_t vals = *v;
    vals.cwd = NULL;
    char *c = hq_placeholder_path(cwd && *cwd ? cwd : "%{SUBMIT_DIR}", &vals, v->submit_dir);
    vals.cwd = c;
    *out_path = out ? hq_placeholder_path(out, &vals, c) : NULL;
    *err_path = err ? hq_placeholder_path(err, &vals, c) : NULL;
    *cwd_out = c;
}
