/* Placeholder resolution for task working directories and stdout/stderr paths
 * (CLI.md §1.6), and the small filesystem helpers the launcher needs. */
#include "wk.h"

#include <errno.h>
#include <ftw.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "hq_util.h"

static const char *s_lookup(const wk_ph_t *v, const char *name, size_t len)
{
    static const struct {
        const char *name;
        size_t off;
    } table[] = {
        {"JOB_ID", offsetof(wk_ph_t, job_id)},
        {"TASK_ID", offsetof(wk_ph_t, task_id)},
        {"INSTANCE_ID", offsetof(wk_ph_t, instance_id)},
        {"SUBMIT_DIR", offsetof(wk_ph_t, submit_dir)},
        {"SERVER_UID", offsetof(wk_ph_t, server_uid)},
        {"CWD", offsetof(wk_ph_t, cwd)},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strlen(table[i].name) == len && memcmp(table[i].name, name, len) == 0)
            return *(const char *const *)((const char *)v + table[i].off);
    }
    return NULL;
}

char *wk_ph_subst(const char *s, const wk_ph_t *v)
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

bool wk_ph_has(const char *s)
{
    const char *open = strstr(s, "%{");
    return open && strchr(open + 2, '}');
}

char *wk_path_abs(const char *p, const char *base)
{
    if (p[0] == '/' || !base || !*base)
        return hq_strdup(p);
    size_t bl = strlen(base);
    if (base[bl - 1] == '/')
        return hq_asprintf("%s%s", base, p);
    return hq_asprintf("%s/%s", base, p);
}

void wk_resolve_paths(const char *cwd, const char *out, const char *err, const wk_ph_t *v,
                      char **cwd_out, char **out_path, char **err_path)
{
    wk_ph_t vals = *v;
    vals.cwd = NULL;
    char *c = wk_ph_subst(cwd && *cwd ? cwd : "%{SUBMIT_DIR}", &vals);
    if (!wk_ph_has(c)) {
        char *abs = wk_path_abs(c, v->submit_dir);
        free(c);
        c = abs;
    }
    vals.cwd = c;
    const char *in[2] = {out, err};
    char **res[2] = {out_path, err_path};
    for (int i = 0; i < 2; i++) {
        *res[i] = NULL;
        if (!in[i])
            continue;
        char *p = wk_ph_subst(in[i], &vals);
        if (!wk_ph_has(p)) {
            char *abs = wk_path_abs(p, c);
            free(p);
            p = abs;
        }
        *res[i] = p;
    }
    *cwd_out = c;
}

int wk_mkdir_parents(const char *path)
{
    char *copy = hq_strdup(path);
    char *slash = strrchr(copy, '/');
    if (!slash || slash == copy) {
        free(copy);
        return 0;
    }
    *slash = '\0';
    struct stat st;
    if (stat(copy, &st) == 0) {
        free(copy);
        return S_ISDIR(st.st_mode) ? 0 : (errno = ENOTDIR, -1);
    }
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0777) != 0 && errno != EEXIST) {
            free(copy);
            return -1;
        }
        *p = '/';
    }
    int rc = (mkdir(copy, 0777) != 0 && errno != EEXIST) ? -1 : 0;
    free(copy);
    return rc;
}

static int s_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void wk_rm_tree(const char *path)
{
    nftw(path, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
