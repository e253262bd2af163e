/* The server directory (cli/REFERENCE.md §2): where it is (--server-dir,
 * HQ_SERVER_DIR or ~/.hq-server), its numbered run dirs and the hq-current link that
 * points clients and workers at the running broker's. */
#include "hq_serverdir.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "hq_util.h"

static char *s_make_absolute(const char *path)
{
    if (path[0] == '/')
        return hq_strdup(path);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        return hq_strdup(path);
    if (strcmp(path, ".") == 0)
        return hq_strdup(cwd);
    while (path[0] == '.' && path[1] == '/')
        path += 2;
    return hq_asprintf("%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", path);
}

char *hq_server_dir_default(const char *flag_value)
{
    if (flag_value && *flag_value)
        return s_make_absolute(flag_value);
    const char *env = getenv("HQ_SERVER_DIR");
    if (env && *env)
        return s_make_absolute(env);
    const char *home = getenv("HOME");
    if (!home || !*home) {
        struct passwd *pw = getpwuid(getuid());
        home = pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
    }
    if (!home || !*home) {
        const char *tmp = getenv("TMPDIR");
        home = tmp && *tmp ? tmp : "/tmp";
    }
    char *base = s_make_absolute(home);
    size_t n = strlen(base);
    char *out = hq_asprintf("%s%s.hq-server", base, n && base[n - 1] == '/' ? "" : "/");
    free(base);
    return out;
}

/* Quotes a path the way Rust's Debug does for strings ("\"/x/y\""). */
static char *s_quote(const char *s)
{
    json_t *str = json_string(s);
    if (!str)
        return hq_asprintf("\"%s\"", s);
    char *q = json_dumps(str, JSON_ENCODE_ANY);
    json_decref(str);
    if (!q)
        abort();
    return q;
}

char *hq_server_dir_resolve(const char *server_dir, hq_err_t *err)
{
    char *link = hq_asprintf("%s/hq-current", server_dir);
    char real[PATH_MAX];
    struct stat st;
    if (realpath(link, real) && stat(real, &st) == 0 && S_ISDIR(st.st_mode)) {
        free(link);
        return hq_strdup(real);
    }
    free(link);
    if (stat(server_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        char *q = s_quote(server_dir);
        hq_err_set(err, "%s is not a directory", q);
        free(q);
        return NULL;
    }
    return hq_strdup(server_dir);
}

/* mkdir with exactly 0700 whatever the umask. */
static int s_mkdir_0700(const char *path)
{
    if (mkdir(path, 0700) != 0)
        return -1;
    return chmod(path, 0700);
}

char *hq_server_dir_new_run(const char *server_dir, hq_err_t *err)
{
    struct stat st;
    if (stat(server_dir, &st) != 0) {
        /* Create missing parents too (like create_dir_all); the last level is 0700. */
        char *tmp = hq_strdup(server_dir);
        for (char *p = tmp + 1; *p; p++) {
            if (*p != '/')
                continue;
            *p = '\0';
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST) {
                int e = errno;
                hq_err_set(err, "Cannot create directory '%s': %s", tmp, strerror(e));
                free(tmp);
                return NULL;
            }
            *p = '/';
        }
        free(tmp);
        if (s_mkdir_0700(server_dir) != 0 && errno != EEXIST) {
            hq_err_set(err, "Cannot create server directory '%s': %s", server_dir, strerror(errno));
            return NULL;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        char *q = s_quote(server_dir);
        hq_err_set(err, "%s is not a directory", q);
        free(q);
        return NULL;
    }
    for (int attempt = 0; attempt < 100; attempt++) {
        DIR *d = opendir(server_dir);
        if (!d) {
            hq_err_set(err, "Cannot read server directory '%s': %s", server_dir, strerror(errno));
            return NULL;
        }
        unsigned long long max = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
            const char *name = de->d_name;
            if (!*name || strspn(name, "0123456789") != strlen(name) || strlen(name) > 18)
                continue;
            unsigned long long v = strtoull(name, NULL, 10);
            if (v > max)
                max = v;
        }
        closedir(d);
        char *run = hq_asprintf("%s/%03llu", server_dir, max + 1);
        if (s_mkdir_0700(run) == 0)
            return run;
        int e = errno;
        free(run);
        if (e != EEXIST) {
            hq_err_set(err, "Cannot create run directory in '%s': %s", server_dir, strerror(e));
            return NULL;
        }
    }
    hq_err_set(err, "Cannot create run directory in '%s': too many concurrent starts", server_dir);
    return NULL;
}

int hq_server_dir_set_current(const char *server_dir, const char *run_dir, hq_err_t *err)
{
    char *link = hq_asprintf("%s/hq-current", server_dir);
    char *tmp = hq_asprintf("%s/.hq-current.%ld", server_dir, (long)getpid());
    unlink(tmp);
    int rc = 0;
    if (symlink(run_dir, tmp) != 0) {
        rc = hq_err_set(err, "Cannot create symlink '%s': %s", tmp, strerror(errno));
    } else if (rename(tmp, link) != 0) {
        rc = hq_err_set(err, "Cannot replace symlink '%s': %s", link, strerror(errno));
        unlink(tmp);
    }
    free(link);
    free(tmp);
    return rc;
}

void hq_server_dir_clear_current(const char *server_dir, const char *run_dir)
{
    char *link = hq_asprintf("%s/hq-current", server_dir);
    char target[PATH_MAX];
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n > 0) {
        target[n] = '\0';
        if (strcmp(target, run_dir) == 0)
            unlink(link);
    }
    free(link);
}
