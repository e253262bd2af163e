/* The broker's ring of task notifications (broker/notes.c) that job waits with
 * --on-notify read: numbering, selection by job and cursor, and the bound. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "notes.h"

Test(notes, numbers_from_one_and_selects_by_job_and_cursor)
{
    hq_notes_t ns = {0};
    uint32_t job1 = 1, job2 = 2;
    cr_assert_eq(hq_notes_pending(&ns, 0, &job1, 1), 0);
    cr_assert_eq(hq_notes_add(&ns, 1, 0, 7, "a"), 1);
    cr_assert_eq(hq_notes_add(&ns, 2, 5, 8, "b"), 2);
    cr_assert_eq(hq_notes_add(&ns, 1, 3, 7, "c"), 3);
    cr_assert_eq(hq_notes_pending(&ns, 0, &job1, 1), 1);
    cr_assert_eq(hq_notes_pending(&ns, 3, &job1, 1), 0);
    cr_assert_eq(hq_notes_pending(&ns, 2, &job2, 1), 0);
    json_t *a = hq_notes_json(&ns, 1, &job1, 1);
    cr_assert_eq(json_array_size(a), 1);
    json_t *n = json_array_get(a, 0);
    cr_assert_eq(json_integer_value(json_object_get(n, "seq")), 3);
    cr_assert_eq(json_integer_value(json_object_get(n, "task")), 3);
    cr_assert_eq(json_integer_value(json_object_get(n, "worker")), 7);
    cr_assert_str_eq(json_string_value(json_object_get(n, "message")), "c");
    json_decref(a);
    hq_notes_fini(&ns);
}

Test(notes, keeps_only_the_newest_when_full)
{
    hq_notes_t ns = {0};
    uint32_t job = 4;
    char m[16];
    for (int i = 1; i <= HQ_NOTES_MAX + 10; i++) {
        snprintf(m, sizeof m, "m%d", i);
        hq_notes_add(&ns, job, 0, 1, m);
    }
    json_t *a = hq_notes_json(&ns, 0, &job, 1);
    cr_assert_eq(json_array_size(a), HQ_NOTES_MAX);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(a, 0), "seq")), 11);
    cr_assert_str_eq(
        json_string_value(json_object_get(json_array_get(a, HQ_NOTES_MAX - 1), "message")),
        "m4106");
    json_decref(a);
    hq_notes_fini(&ns);
}
