/* Tests for hq_util: time formatting, strings, buffers, file reading. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hq_util.h"

/* 2026-01-02T03:04:05.123456789Z */
#define T0 (1767323045ULL * 1000000000ULL + 123456789ULL)

Test(util, rfc3339_prints_seconds_only_by_default)
{
    char *s = hq_time_rfc3339(T0, 0);
    cr_assert_str_eq(s, "2026-01-02T03:04:05Z");
    free(s);
}

Test(util, rfc3339_prints_requested_fraction_digits)
{
    char *s3 = hq_time_rfc3339(T0, 3), *s6 = hq_time_rfc3339(T0, 6), *s9 = hq_time_rfc3339(T0, 9);
    cr_assert_str_eq(s3, "2026-01-02T03:04:05.123Z");
    cr_assert_str_eq(s6, "2026-01-02T03:04:05.123456Z");
    cr_assert_str_eq(s9, "2026-01-02T03:04:05.123456789Z");
    free(s3);
    free(s6);
    free(s9);
}

Test(util, utc_date_rounds_to_nearest_second)
{
    char *a = hq_time_utc_date(T0);
    cr_assert_str_eq(a, "2026-01-02 03:04:05 UTC");
    char *b = hq_time_utc_date(T0 + 400000000ULL);
    cr_assert_str_eq(b, "2026-01-02 03:04:06 UTC");
    free(a);
    free(b);
}

Test(util, local_time_has_day_month_year_layout)
{
    setenv("TZ", "UTC", 1);
    tzset();
    char *s = hq_time_local(T0);
    cr_assert_str_eq(s, "02.01.2026 03:04:05");
    free(s);
}

Test(util, clocks_advance)
{
    uint64_t a = hq_mono_ns();
    uint64_t b = hq_mono_ns();
    cr_assert_geq(b, a);
    cr_assert_gt(hq_wall_ns(), T0 - 1000000000ULL * 86400ULL * 365ULL);
}

Test(util, strndup_and_asprintf)
{
    char *a = hq_strndup("abcdef", 3);
    cr_assert_str_eq(a, "abc");
    char *b = hq_asprintf("%s-%d", a, 7);
    cr_assert_str_eq(b, "abc-7");
    free(a);
    free(b);
}

Test(util, buffer_grows_and_stays_terminated)
{
    hq_buf_t b = {0};
    for (int i = 0; i < 1000; i++)
        hq_buf_printf(&b, "%d,", i % 10);
    cr_assert_eq(b.len, 2000);
    cr_assert_eq(b.data[b.len], '\0');
    hq_buf_append(&b, "xyz", 3);
    cr_assert_str_eq(b.data + 2000, "xyz");
    hq_buf_free(&b);
    cr_assert_null(b.data);
}

Test(util, read_file_reads_whole_file_and_bounds_size)
{
    char path[] = "/tmp/hq-util-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "hello", 5), 5);
    close(fd);
    char *data = NULL;
    size_t len = 0;
    cr_assert_eq(hq_read_file(path, 100, &data, &len), 0);
    cr_assert_eq(len, 5);
    cr_assert_str_eq(data, "hello");
    free(data);
    cr_assert_eq(hq_read_file(path, 4, &data, &len), -1);
    cr_assert_eq(errno, EFBIG);
    unlink(path);
    cr_assert_eq(hq_read_file(path, 100, &data, &len), -1);
    cr_assert_eq(errno, ENOENT);
}

Test(util, hostname_is_not_empty)
{
    char *h = hq_hostname();
    cr_assert_gt(strlen(h), 0);
    free(h);
}
