/* Tests for hq_err: formatting and prefixing error messages. */
#include <criterion/criterion.h>
#include <string.h>

#include "hq_err.h"

Test(err, set_formats_message_and_returns_minus_one)
{
    hq_err_t e;
    cr_assert_eq(hq_err_set(&e, "bad %s %d", "x", 3), -1);
    cr_assert_str_eq(e.text, "bad x 3");
}

Test(err, set_accepts_null_error)
{
    cr_assert_eq(hq_err_set(NULL, "ignored %d", 1), -1);
}

Test(err, prefix_prepends_to_existing_message)
{
    hq_err_t e;
    hq_err_set(&e, "cause");
    cr_assert_eq(hq_err_prefix(&e, "%s: ", "top"), -1);
    cr_assert_str_eq(e.text, "top: cause");
}

Test(err, long_messages_are_truncated_not_overflowed)
{
    hq_err_t e;
    char big[4000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    hq_err_set(&e, "%s", big);
    cr_assert_eq(strlen(e.text), sizeof e.text - 1);
    hq_err_prefix(&e, "pre");
    cr_assert_eq(strlen(e.text), sizeof e.text - 1);
    cr_assert(strncmp(e.text, "preaaa", 6) == 0);
}
