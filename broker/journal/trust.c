/* Whom the journal trusts: its directory and every file in it must belong to the user
 * running the broker and be writable by nobody else, or another user of the machine
 * could plant segments (their jobs would run as this user) or point LOCK at one of
 * this user's files. Files are opened relative to the directory's fd and never
 * through a symbolic link. */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal_priv.h"

/* "uid N (name)" of a uid, for messages. */
static void s_who(uid_t uid, char *out, size_t len)
{
    struct passwd pw, *res = NULL;
    char buf[1024];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) == 0 && res)
        snprintf(out, len, "uid %u (%s)", (unsigned)uid, res->pw_name);
    else
        snprintf(out, len, "uid %u", (unsigned)uid);
}

static int s_owner_error(const char *what, const char *path, uid_t owner, const char *fix,
                         hq_err_t *err)
{
    char them[160], me[160];
    s_who(owner, them, sizeof them);
    s_who(geteuid(), me, sizeof me);
    return hq_err_set(err,
                      "%s %s is owned by %s, not by %s who runs this broker: another user "
                      "could plant journal files there that this broker would replay as "
                      "its own; %s",
                      what, path, them, me, fix);
}

int hq_journal_trust_dir_(const char *path, int dirfd, hq_err_t *err)
{
    struct stat st, lst;
    /* A symbolic link to the directory is fine when this user (or root) made it. */
    if (lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode) && lst.st_uid != geteuid() &&
        lst.st_uid != 0)
        return s_owner_error("journal path (a symbolic link)", path, lst.st_uid,
                             "remove the link or give the journal directory's real path", err);
    if (fstat(dirfd, &st) < 0)
        return hq_err_set(err, "cannot stat journal directory %s: %s", path, strerror(errno));
    if (st.st_uid != geteuid())
        return s_owner_error("journal directory", path, st.st_uid,
                             "use a directory of your own (it is created 0700 if missing)", err);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return hq_err_set(err,
                          "journal directory %s has mode %04o: other users can write into it "
                          "and plant journal files this broker would replay as its own; run "
                          "`chmod go-w '%s'` (or use a directory of your own)",
                          path, (unsigned)(st.st_mode & 07777), path);
    return 0;
}

int hq_journal_trust_file_(const hq_journal_t *j, const char *name, hq_err_t *err)
{
    struct stat st;
    if (fstatat(j->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
        if (errno == ENOENT)
            return 0;
        return hq_err_set(err, "cannot stat %s/%s: %s", j->path, name, strerror(errno));
    }
    if (S_ISLNK(st.st_mode))
        return hq_err_set(err,
                          "journal file %s/%s is a symbolic link: the journal never follows "
                          "links in its directory; remove it",
                          j->path, name);
    if (!S_ISREG(st.st_mode))
        return hq_err_set(err, "journal file %s/%s is not a regular file; remove it", j->path,
                          name);
    if (j->o.read_only)
        return 0; /* reading another user's journal (export, verify) changes nothing */
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", j->path, name);
    if (st.st_uid != geteuid())
        return s_owner_error("journal file", path, st.st_uid,
                             "remove it, or use a journal directory of your own", err);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return hq_err_set(err,
                          "journal file %s has mode %04o: other users can change it; run "
                          "`chmod go-w '%s'`",
                          path, (unsigned)(st.st_mode & 07777), path);
    return 0;
}

const char *hq_journal_name_(const hq_journal_t *j, const char *path)
{
    size_t n = strlen(j->path);
    return strncmp(path, j->path, n) == 0 && path[n] == '/' ? path + n + 1 : path;
}

int hq_journal_openat_(const hq_journal_t *j, const char *path, int flags, mode_t mode)
{
    return openat(j->dirfd, hq_journal_name_(j, path), flags | O_NOFOLLOW | O_CLOEXEC, mode);
}

int hq_journal_renameat_(const hq_journal_t *j, const char *from, const char *to)
{
    return renameat(j->dirfd, hq_journal_name_(j, from), j->dirfd, hq_journal_name_(j, to));
}

int hq_journal_unlinkat_(const hq_journal_t *j, const char *path)
{
    return unlinkat(j->dirfd, hq_journal_name_(j, path), 0);
}

int hq_journal_truncate_(const hq_journal_t *j, const char *path, uint64_t len)
{
    int fd = hq_journal_openat_(j, path, O_WRONLY, 0);
    if (fd < 0)
        return -1;
    int rc = ftruncate(fd, (off_t)len);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}
