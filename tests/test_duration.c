/* Tests for hq_duration: both input forms, errors, and the table printing. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "hq_duration.h"

#define SEC HQ_NS_PER_SEC

static uint64_t s_ok(const char *s)
{
    uint64_t ns = 0;
    hq_err_t err = {{0}};
    cr_assert_eq(hq_duration_parse(s, &ns, &err), 0, "'%s' rejected: %s", s, err.text);
    return ns;
}

static void s_fails(const char *s)
{
    uint64_t ns = 0;
    hq_err_t err;
    cr_assert_eq(hq_duration_parse(s, &ns, &err), -1, "'%s' accepted", s);
    const char *prefix =
        "Could not parse PBS walltime. Use either `HH:MM:SS` or humantime format (2hours): ";
    cr_assert(strncmp(err.text, prefix, strlen(prefix)) == 0, "%s", err.text);
    cr_assert_gt(strlen(err.text), strlen(prefix));
}

static void s_fmt(uint64_t ns, const char *expected)
{
    char *s = hq_duration_format(ns);
    cr_assert_str_eq(s, expected);
    free(s);
}

static void s_span(int64_t ns, const char *expected)
{
    char *s = hq_duration_format_makespan(ns);
    cr_assert_str_eq(s, expected);
    free(s);
}

Test(duration, parses_hours_minutes_seconds)
{
    cr_assert_eq(s_ok("30"), 30 * SEC);
    cr_assert_eq(s_ok("1:1"), 61 * SEC);
    cr_assert_eq(s_ok("80:02"), (80 * 60 + 2) * SEC);
    cr_assert_eq(s_ok("02:03:04"), (2 * 3600 + 3 * 60 + 4) * SEC);
    cr_assert_eq(s_ok("0"), 0);
    cr_assert_eq(s_ok("1_000"), 1000 * SEC);
}

Test(duration, parses_human_forms)
{
    cr_assert_eq(s_ok("1h"), 3600 * SEC);
    cr_assert_eq(s_ok("2h5m10s"), (2 * 3600 + 5 * 60 + 10) * SEC);
    cr_assert_eq(s_ok("3h 10m 5s"), (3 * 3600 + 10 * 60 + 5) * SEC);
    cr_assert_eq(s_ok("2 hours 5 minutes"), (2 * 3600 + 5 * 60) * SEC);
    cr_assert_eq(s_ok("15days 2min 2s"), (15 * 86400 + 122) * SEC);
    cr_assert_eq(s_ok("500ms"), 500 * HQ_NS_PER_MS);
    cr_assert_eq(s_ok("4.2s"), 4200 * HQ_NS_PER_MS);
    cr_assert_eq(s_ok("1.5h"), 5400 * SEC);
    cr_assert_eq(s_ok("10ns"), 10);
    cr_assert_eq(s_ok("3\xc2\xb5s"), 3000);
    cr_assert_eq(s_ok("2us"), 2000);
}

Test(duration, parses_every_unit_spelling)
{
    const struct {
        const char *text;
        uint64_t ns;
    } cases[] = {
        {"1nsec", 1},
        {"1nanos", 1},
        {"1usec", 1000},
        {"1msec", 1000000},
        {"1millis", 1000000},
        {"1sec", SEC},
        {"1secs", SEC},
        {"1second", SEC},
        {"2seconds", 2 * SEC},
        {"1m", 60 * SEC},
        {"1min", 60 * SEC},
        {"1mins", 60 * SEC},
        {"1minute", 60 * SEC},
        {"1minutes", 60 * SEC},
        {"1hr", 3600 * SEC},
        {"1hrs", 3600 * SEC},
        {"1hour", 3600 * SEC},
        {"1d", 86400 * SEC},
        {"1day", 86400 * SEC},
        {"1days", 86400 * SEC},
        {"1w", 604800 * SEC},
        {"1wk", 604800 * SEC},
        {"1wks", 604800 * SEC},
        {"1week", 604800 * SEC},
        {"1weeks", 604800 * SEC},
        {"1M", 2630016 * SEC},
        {"1month", 2630016 * SEC},
        {"1months", 2630016 * SEC},
        {"1y", 31557600 * SEC},
        {"1yr", 31557600 * SEC},
        {"1yrs", 31557600 * SEC},
        {"1year", 31557600 * SEC},
        {"1years", 31557600 * SEC},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        cr_assert_eq(s_ok(cases[i].text), cases[i].ns, "%s", cases[i].text);
}

Test(duration, units_are_case_sensitive)
{
    cr_assert_neq(s_ok("1M"), s_ok("1m"));
    s_fails("1H");
    s_fails("1S");
}

Test(duration, rejects_bad_input_with_walltime_message)
{
    s_fails("");
    s_fails("abc");
    s_fails("1 2");
    s_fails("1h 30");
    s_fails("1:2:3:4");
    s_fails("1.5ns");
    s_fails("_1");
    s_fails("1 : 2");
    s_fails("5x");
    s_fails("99999999999999999999h");
    s_fails("-5s");
}

Test(duration, human_only_parser_rejects_colon_form)
{
    uint64_t ns;
    hq_err_t err;
    cr_assert_eq(hq_duration_parse_human("1:00", &ns, &err), -1);
    cr_assert_eq(hq_duration_parse_human("30", &ns, &err), -1);
    cr_assert_eq(hq_duration_parse_human("0s", &ns, &err), 0);
    cr_assert_eq(ns, 0);
    cr_assert_eq(hq_duration_parse_human("2min", &ns, &err), 0);
    cr_assert_eq(ns, 120 * SEC);
}

Test(duration, formats_human_style)
{
    s_fmt(0, "0s");
    s_fmt(8 * SEC, "8s");
    s_fmt(300 * SEC, "5m");
    s_fmt(5400 * SEC, "1h 30m");
    s_fmt((7 * 86400 + 8 * 3600 + 9 * 60) * SEC, "7days 8h 9m");
    s_fmt(86400 * SEC, "1day");
    s_fmt(1500 * HQ_NS_PER_MS, "1s 500ms");
    s_fmt(31557600 * SEC, "1year");
    s_fmt(2 * 31557600 * SEC + 2630016 * SEC, "2years 1month");
    s_fmt(2 * 2630016 * SEC, "2months");
    s_fmt(1001001, "1ms 1us 1ns");
}

Test(duration, formats_makespan_with_truncation)
{
    s_span(0, "0s");
    s_span((int64_t)(123 * SEC + 456 * HQ_NS_PER_MS), "2m 3s");
    s_span((int64_t)(1500 * HQ_NS_PER_MS + 123456), "1s 500ms");
    s_span((int64_t)((3 * 3600 + 5 * 60 + 59) * SEC), "3h 5m");
    s_span(999999, "0s");
    s_span(-1, "Invalid duration");
}

Test(duration, seconds_as_float)
{
    cr_assert_float_eq(hq_duration_seconds(8 * SEC), 8.0, 1e-12);
    cr_assert_float_eq(hq_duration_seconds(500 * HQ_NS_PER_MS), 0.5, 1e-12);
}
