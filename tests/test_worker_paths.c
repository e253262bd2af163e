/* The worker's filesystem helpers: creating the parent directories of task output
 * files and removing a tree. (Placeholders in task paths: test_placeholder.c.) */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "wk.h"

Test(worker_paths, creates_missing_parent_directories)
{
    char tmpl[] = "/tmp/hq-test-pathsXXXXXX";
    cr_assert_not_null(mkdtemp(tmpl));
    char path[256];
    snprintf(path, sizeof path, "%s/a/b/c/file.txt", tmpl);
    cr_assert_eq(wk_mkdir_parents(path), 0);
    char dir[256];
    snprintf(dir, sizeof dir, "%s/a/b/c", tmpl);
    struct stat st;
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    wk_rm_tree(tmpl);
    cr_assert_neq(stat(tmpl, &st), 0);
}
