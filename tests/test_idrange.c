/* Tests for hq_idrange: range list syntax, errors, printing, selectors. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "hq_idrange.h"

static void s_roundtrip(const char *in, const char *out)
{
    hq_rangelist_t rl;
    hq_err_t err = {{0}};
    cr_assert_eq(hq_rangelist_parse(in, &rl, &err), 0, "'%s': %s", in, err.text);
    char *s = hq_rangelist_format(&rl);
    cr_assert_str_eq(s, out);
    free(s);
    hq_rangelist_clear(&rl);
}

static void s_fails(const char *in, const char *msg)
{
    hq_rangelist_t rl;
    hq_err_t err;
    cr_assert_eq(hq_rangelist_parse(in, &rl, &err), -1, "'%s' accepted", in);
    if (msg)
        cr_assert_str_eq(err.text, msg, "'%s'", in);
}

Test(idrange, parses_and_prints_canonically)
{
    s_roundtrip("1", "1");
    s_roundtrip("1,3-5,0", "1,3-5,0");
    s_roundtrip("0-9:3", "0-9:3");
    s_roundtrip("0-9:3,12", "0-9:3,12");
    s_roundtrip(" 1 , 2-4 ", "1,2-4");
    s_roundtrip("1-1000_000", "1-1000000");
    s_roundtrip("4-4", "4");
    s_roundtrip("4294967295", "4294967295");
}

Test(idrange, rejects_invalid_ranges)
{
    s_fails("5-3", "Invalid range");
    s_fails("0-9:0", "Invalid range");
    s_fails("0-9:10", "Invalid range");
    s_fails("3:2", "Invalid range");
    s_fails("", NULL);
    s_fails("1,,2", NULL);
    s_fails("abc", NULL);
    s_fails("4294967296", NULL);
    s_fails("-3", NULL);
    s_fails("_1", NULL);
}

Test(idrange, rejects_overlapping_ranges)
{
    s_fails("1-5,3", "Ranges overlap");
    s_fails("1,1", "Ranges overlap");
    s_fails("10-20,0-10", "Ranges overlap");
    s_roundtrip("10-20,0-9", "10-20,0-9");
}

Test(idrange, bad_numbers_name_the_item)
{
    hq_rangelist_t rl;
    hq_err_t err;
    cr_assert_eq(hq_rangelist_parse("1,x7", &rl, &err), -1);
    cr_assert_not_null(strstr(err.text, "x7"), "%s", err.text);
}

Test(idrange, counts_and_membership)
{
    hq_rangelist_t rl;
    hq_err_t err;
    cr_assert_eq(hq_rangelist_parse("0-9:3,12,20-21", &rl, &err), 0);
    cr_assert_eq(hq_rangelist_count(&rl), 4 + 1 + 2);
    cr_assert(hq_rangelist_contains(&rl, 6));
    cr_assert(!hq_rangelist_contains(&rl, 7));
    cr_assert(hq_rangelist_contains(&rl, 12));
    cr_assert(hq_rangelist_contains(&rl, 21));
    cr_assert(!hq_rangelist_contains(&rl, 22));
    hq_rangelist_clear(&rl);
    cr_assert_eq(hq_rangelist_parse("0-4294967295", &rl, &err), 0);
    cr_assert_eq(hq_rangelist_count(&rl), 4294967296ULL);
    hq_rangelist_clear(&rl);
}

Test(idrange, merges_id_sets)
{
    uint32_t ids[] = {1, 2, 3, 5, 7, 8, 9};
    char *s = hq_idset_format(ids, 7);
    cr_assert_str_eq(s, "1-3,5,7-9");
    free(s);
    uint32_t two[] = {4, 5};
    s = hq_idset_format(two, 2);
    cr_assert_str_eq(s, "4-5");
    free(s);
    s = hq_idset_format(NULL, 0);
    cr_assert_str_eq(s, "");
    free(s);
}

Test(idrange, selectors)
{
    hq_selector_t sel;
    hq_err_t err;
    cr_assert_eq(hq_selector_parse("last", true, &sel, &err), 0);
    cr_assert_eq(sel.kind, HQ_SEL_LAST);
    hq_selector_clear(&sel);
    cr_assert_eq(hq_selector_parse("all", true, &sel, &err), 0);
    cr_assert_eq(sel.kind, HQ_SEL_ALL);
    hq_selector_clear(&sel);
    cr_assert_eq(hq_selector_parse("all", false, &sel, &err), -1);
    cr_assert_eq(hq_selector_parse("1-3", false, &sel, &err), 0);
    cr_assert_eq(sel.kind, HQ_SEL_IDS);
    cr_assert_eq(hq_rangelist_count(&sel.ids), 3);
    hq_selector_clear(&sel);
}
