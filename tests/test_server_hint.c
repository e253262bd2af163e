/* The server-dir hint shared by the client and the worker
 * (proto/util/hq_server_hint.c): the --server-dir flag to repeat and the two messages
 * it goes into. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "hq_server_hint.h"

static void s_home(void)
{
    setenv("HOME", "/home/u", 1);
}

Test(server_hint, the_default_dir_needs_no_flag, .init = s_home)
{
    char *f = hq_server_hint_flag("/home/u/.hq-server");
    cr_assert_str_eq(f, "");
    free(f);
    f = hq_server_hint_flag("/scratch/hq");
    cr_assert_str_eq(f, " --server-dir /scratch/hq");
    free(f);
    unsetenv("HOME");
    f = hq_server_hint_flag("/home/u/.hq-server");
    cr_assert_str_eq(f, " --server-dir /home/u/.hq-server");
    free(f);
}

Test(server_hint, not_found_names_the_dir_and_the_cause, .init = s_home)
{
    hq_err_t err;
    hq_server_hint_not_found(&err, "/scratch/hq/hq-current", "/scratch/hq",
                             "No such file or directory (os error 2)");
    cr_assert_str_eq(err.text, "No running instance of HQ found at \"/scratch/hq/hq-current\".\n"
                               "Try to start the server: `hq server start --server-dir "
                               "/scratch/hq` or use a different server directory.\n\n"
                               "Caused by:\n    No such file or directory (os error 2)");
    hq_server_hint_not_found(&err, "/home/u/.hq-server", "/home/u/.hq-server", NULL);
    cr_assert_str_eq(err.text, "No running instance of HQ found at \"/home/u/.hq-server\".\n"
                               "Try to start the server: `hq server start` or use a different "
                               "server directory.");
}

Test(server_hint, unreachable_names_the_server_and_the_cause, .init = s_home)
{
    hq_err_t err;
    hq_server_hint_unreachable(&err, "login1:4242", "/scratch/hq", "timed out");
    cr_assert_str_eq(err.text, "Access token found but HQ server login1:4242 is unreachable.\n"
                               "Try to (re)start the server using `hq server start --server-dir "
                               "/scratch/hq`\n\nCaused by:\n    timed out");
}
