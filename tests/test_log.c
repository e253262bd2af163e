/* Tests for hq_log: line formats, level selection from flags and environment, and
 * that CZMQ stays silent. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "hq_log.h"

static char captured[8192];

static const char *s_read_stderr(void)
{
    fflush(stderr);
    FILE *f = cr_get_redirected_stderr();
    size_t n = fread(captured, 1, sizeof captured - 1, f);
    captured[n] = '\0';
    return captured;
}

static void s_assert_matches(const char *text, const char *pattern)
{
    regex_t re;
    cr_assert_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int rc = regexec(&re, text, 0, NULL, 0);
    regfree(&re);
    cr_assert_eq(rc, 0, "'%s' does not match '%s'", text, pattern);
}

static void s_clean_env(void)
{
    unsetenv("RUST_LOG");
    unsetenv("HQ_DEBUG");
}

Test(log, plain_format_has_seconds_timestamp_and_level, .init = cr_redirect_stderr)
{
    s_clean_env();
    hq_log_init(false);
    hq_log(HQ_LOG_INFO, "hq::test", "Job %d canceled", 1);
    hq_log(HQ_LOG_WARN, "hq::test", "careful");
    s_assert_matches(s_read_stderr(),
                     "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z INFO Job 1 canceled\n"
                     "[0-9-]{10}T[0-9:]{8}Z WARN careful\n$");
}

Test(log, debug_is_hidden_by_default, .init = cr_redirect_stderr)
{
    s_clean_env();
    hq_log_init(false);
    cr_assert(!hq_log_enabled(HQ_LOG_DEBUG));
    cr_assert(hq_log_enabled(HQ_LOG_INFO));
    hq_debug("hidden");
    cr_assert_str_eq(s_read_stderr(), "");
}

Test(log, debug_format_is_bracketed_with_milliseconds, .init = cr_redirect_stderr)
{
    s_clean_env();
    hq_log_init(true);
    cr_assert(hq_log_enabled(HQ_LOG_DEBUG));
    hq_log(HQ_LOG_INFO, "hq::broker", "hello");
    hq_log(HQ_LOG_DEBUG, "hq::broker", "details");
    s_assert_matches(s_read_stderr(),
                     "^\\[[0-9-]{10}T[0-9:]{8}\\.[0-9]{3}Z INFO  hq::broker\\] hello\n"
                     "\\[[0-9-]{10}T[0-9:]{8}\\.[0-9]{3}Z DEBUG hq::broker\\] details\n$");
}

Test(log, hq_debug_env_enables_debug)
{
    s_clean_env();
    setenv("HQ_DEBUG", "1", 1);
    hq_log_init(false);
    cr_assert(hq_log_enabled(HQ_LOG_DEBUG));
    s_clean_env();
}

Test(log, rust_log_overrides_level)
{
    s_clean_env();
    setenv("RUST_LOG", "warn", 1);
    hq_log_init(true);
    cr_assert(!hq_log_enabled(HQ_LOG_INFO));
    cr_assert(hq_log_enabled(HQ_LOG_WARN));
    setenv("RUST_LOG", "hyperqueue=trace,tako=info", 1);
    hq_log_init(false);
    cr_assert(hq_log_enabled(HQ_LOG_TRACE));
    setenv("RUST_LOG", "off", 1);
    hq_log_init(false);
    cr_assert(!hq_log_enabled(HQ_LOG_ERROR));
    s_clean_env();
}

Test(log, rust_log_debug_selects_bracketed_format, .init = cr_redirect_stderr)
{
    s_clean_env();
    setenv("RUST_LOG", "hq=debug", 1);
    hq_log_init(false);
    hq_info("x");
    s_assert_matches(s_read_stderr(), "^\\[.* INFO  hq\\] x\n$");
    s_clean_env();
}

Test(log, czmq_log_lines_never_reach_stderr, .init = cr_redirect_stderr)
{
    s_clean_env();
    hq_log_init(false);
    zsys_error("this must not be printed");
    zsys_warning("nor this");
    zsys_info("nor this");
    cr_assert_str_eq(s_read_stderr(), "");
}

Test(log, czmq_installs_no_signal_handlers)
{
    s_clean_env();
    hq_log_init(false);
    zsock_t *s = zsock_new_dealer(NULL);
    cr_assert_not_null(s);
    struct sigaction sa;
    sigaction(SIGINT, NULL, &sa);
    cr_assert_eq((void *)sa.sa_handler, (void *)SIG_DFL);
    sigaction(SIGTERM, NULL, &sa);
    cr_assert_eq((void *)sa.sa_handler, (void *)SIG_DFL);
    zsock_destroy(&s);
}

Test(log, init_can_be_called_twice)
{
    s_clean_env();
    hq_log_init(false);
    hq_log_init(true);
    cr_assert(hq_log_enabled(HQ_LOG_DEBUG));
}
