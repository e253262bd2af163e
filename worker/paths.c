/* The small filesystem helpers the launcher needs: creating the parent directories of
 * a task's output files and removing a directory tree. (Task paths and their
 * placeholders are resolved by proto/util/hq_placeholder.c.) */
#include "wk.h"

#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "hq_util.h"

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
