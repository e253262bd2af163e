/* Tests for hq_ratelog: the burst per window, the count of lines held back and its
 * report with the next line let through. */
#include <criterion/criterion.h>

#include "hq_duration.h"
#include "hq_ratelog.h"

#define SEC HQ_NS_PER_SEC

Test(ratelog, lets_a_burst_through_then_holds_back_until_the_window_ends)
{
    hq_ratelog_t r = HQ_RATELOG_INIT(3, 60 * SEC);
    uint64_t held = 99, t = 1000 * SEC;
    for (int i = 0; i < 3; i++) {
        cr_assert(hq_ratelog_allow(&r, t + (uint64_t)i, &held));
        cr_assert_eq(held, 0);
    }
    for (int i = 0; i < 1000; i++)
        cr_assert_not(hq_ratelog_allow(&r, t + 10 * SEC, &held));
    cr_assert_not(hq_ratelog_allow(&r, t + 59 * SEC, &held));
    cr_assert(hq_ratelog_allow(&r, t + 60 * SEC, &held));
    cr_assert_eq(held, 1001, "the first line of the next window tells how many were held");
    cr_assert(hq_ratelog_allow(&r, t + 61 * SEC, &held));
    cr_assert_eq(held, 0);
}

Test(ratelog, a_flood_that_stopped_is_accounted_for_once_its_window_ended)
{
    hq_ratelog_t r = HQ_RATELOG_INIT(1, 60 * SEC);
    uint64_t held = 0, t = 5 * SEC;
    cr_assert(hq_ratelog_allow(&r, t, &held));
    for (int i = 0; i < 7; i++)
        cr_assert_not(hq_ratelog_allow(&r, t + 1, &held));
    cr_assert_not(hq_ratelog_flush(&r, t + 59 * SEC, &held), "not before the window ends");
    cr_assert(hq_ratelog_flush(&r, t + 60 * SEC, &held));
    cr_assert_eq(held, 7);
    cr_assert_not(hq_ratelog_flush(&r, t + 61 * SEC, &held), "told once");
}
