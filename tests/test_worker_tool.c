/* Tests for running an external tool with a deadline (worker/tool.h): its output, a
 * failing or missing tool, output over the limit, and a tool that hangs, whose whole
 * process group is killed. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hq_duration.h"
#include "hq_util.h"
#include "tool.h"

Test(worker_tool, returns_the_standard_output_of_a_tool)
{
    char *argv[] = {"printf", "BUS1, 10.0 %%", NULL};
    char *out = wk_tool_output(argv, 5000, 1024);
    cr_assert_not_null(out);
    cr_assert_str_eq(out, "BUS1, 10.0 %");
    free(out);
}

Test(worker_tool, a_failing_or_missing_tool_gives_null)
{
    char *fails[] = {"false", NULL};
    cr_assert_null(wk_tool_output(fails, 5000, 1024));
    char *missing[] = {"hq-no-such-tool-here", NULL};
    cr_assert_null(wk_tool_output(missing, 5000, 1024));
}

Test(worker_tool, output_over_the_limit_gives_null)
{
    char *argv[] = {"head", "-c", "5000", "/dev/zero", NULL};
    cr_assert_null(wk_tool_output(argv, 5000, 1000));
}

Test(worker_tool, a_hung_tool_is_killed_with_its_process_group_at_the_deadline)
{
    char pidfile[] = "/tmp/hq-test-tool-XXXXXX";
    int fd = mkstemp(pidfile);
    cr_assert_geq(fd, 0);
    close(fd);
    char *script = hq_asprintf("sleep 30 & echo $! > %s; sleep 30", pidfile);
    char *argv[] = {"sh", "-c", script, NULL};
    uint64_t t0 = hq_mono_ns();
    cr_assert_null(wk_tool_output(argv, 300, 1024), "a hung tool gives no output");
    uint64_t took = hq_mono_ns() - t0;
    cr_assert_lt(took, 20 * HQ_NS_PER_SEC, "it is not waited for: %llu ms",
                 (unsigned long long)(took / HQ_NS_PER_MS));
    FILE *f = fopen(pidfile, "r");
    cr_assert_not_null(f);
    int child = 0;
    cr_assert_eq(fscanf(f, "%d", &child), 1);
    fclose(f);
    unlink(pidfile);
    free(script);
    /* what the tool started went with it (the group was killed); poll: the kernel
     * reaps the orphan through init */
    bool gone = false;
    for (int i = 0; i < 400 && !gone; i++) {
        gone = kill(child, 0) != 0;
        if (!gone) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    cr_assert(gone, "the tool's background child %d was killed too", child);
}
