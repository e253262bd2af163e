/* Tests for hq_table: layouts compared to literal text (cli/REFERENCE.md §4). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_table.h"

static char *s_render(const hq_table_t *t, bool colors)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    hq_table_print(t, f, colors);
    fclose(f);
    return buf;
}

static void s_expect(hq_table_t *t, bool colors, const char *expected)
{
    char *s = s_render(t, colors);
    cr_assert_str_eq(s, expected, "got:\n%s\nexpected:\n%s", s, expected);
    free(s);
    hq_table_destroy(&t);
    cr_assert_null(t);
}

Test(table, vertical_key_value)
{
    hq_table_t *t = hq_table_new_vertical();
    hq_table_add_kv(t, "Server UID", "aB3xYz");
    hq_table_add_kv(t, "Client host", "login1");
    s_expect(t, false,
             "+-------------+--------+\n"
             "| Server UID  | aB3xYz |\n"
             "| Client host | login1 |\n"
             "+-------------+--------+\n");
}

Test(table, horizontal_with_right_justified_id)
{
    const char *titles[] = {"ID", "Name", "State", "Tasks"};
    hq_table_t *t = hq_table_new_horizontal(4, titles);
    hq_table_right_justify(t, 0);
    hq_table_add_row(t, (const char *[]){"1", "echo", "FINISHED", "1"});
    hq_table_add_row(t, (const char *[]){"*2", "job", "OPENED", "0"});
    s_expect(t, false,
             "+----+------+----------+-------+\n"
             "| ID | Name | State    | Tasks |\n"
             "+----+------+----------+-------+\n"
             "|  1 | echo | FINISHED | 1     |\n"
             "| *2 | job  | OPENED   | 0     |\n"
             "+----+------+----------+-------+\n");
}

Test(table, multiline_cells_are_top_aligned)
{
    hq_table_t *t = hq_table_new_vertical();
    hq_table_add_kv(t, "Resources", "cpus: 4\nmem: 1.50 GiB\n");
    hq_table_add_kv(t, "Group", "default\r\n");
    s_expect(t, false,
             "+-----------+---------------+\n"
             "| Resources | cpus: 4       |\n"
             "|           | mem: 1.50 GiB |\n"
             "| Group     | default       |\n"
             "+-----------+---------------+\n");
}

Test(table, empty_cell_has_zero_lines)
{
    hq_table_t *t = hq_table_new_vertical();
    hq_table_add_kv(t, "Journal path", "");
    hq_table_add_kv(t, "Pid", "7");
    s_expect(t, false,
             "+--------------+---+\n"
             "| Journal path |   |\n"
             "| Pid          | 7 |\n"
             "+--------------+---+\n");
}

Test(table, zero_row_horizontal_prints_three_lines)
{
    const char *titles[] = {"ID", "State"};
    s_expect(hq_table_new_horizontal(2, titles), false,
             "+----+-------+\n"
             "| ID | State |\n"
             "+----+-------+\n");
}

Test(table, zero_row_vertical_prints_plus)
{
    s_expect(hq_table_new_vertical(), false, "+\n");
}

Test(table, all_empty_row_prints_bars)
{
    const char *titles[] = {"A", "B"};
    hq_table_t *t = hq_table_new_horizontal(2, titles);
    hq_table_add_row(t, (const char *[]){"x", "y"});
    hq_table_add_row(t, (const char *[]){"", ""});
    s_expect(t, false,
             "+---+---+\n"
             "| A | B |\n"
             "+---+---+\n"
             "| x | y |\n"
             "||\n"
             "+---+---+\n");
}

Test(table, ansi_escapes_have_zero_width_and_padding_inside_colour)
{
    const char *titles[] = {"State", "N"};
    hq_table_t *t = hq_table_new_horizontal(2, titles);
    char *running = hq_color_state("RUNNING", "task", true);
    hq_table_add_row(t, (const char *[]){running, "1"});
    hq_table_add_row(t, (const char *[]){"FINISHED", "2"});
    free(running);
    s_expect(t, false,
             "+----------+---+\n"
             "| State    | N |\n"
             "+----------+---+\n"
             "| \x1b[33mRUNNING \x1b[0m | 1 |\n"
             "| FINISHED | 2 |\n"
             "+----------+---+\n");
}

Test(table, wide_characters_count_double)
{
    const char *titles[] = {"Name"};
    hq_table_t *t = hq_table_new_horizontal(1, titles);
    hq_table_add_row(t, (const char *[]){"\xe6\x97\xa5\xe6\x9c\xac"}); /* two CJK chars */
    hq_table_add_row(t, (const char *[]){"\xc3\xa9"});                 /* e-acute */
    s_expect(t, false,
             "+------+\n"
             "| Name |\n"
             "+------+\n"
             "| \xe6\x97\xa5\xe6\x9c\xac |\n"
             "| \xc3\xa9    |\n"
             "+------+\n");
}

Test(table, bold_titles_and_keys_only_with_colours)
{
    const char *titles[] = {"ID", "Name"};
    hq_table_t *t = hq_table_new_horizontal(2, titles);
    hq_table_plain_title(t, 0);
    hq_table_add_row(t, (const char *[]){"1", "a"});
    s_expect(t, true,
             "+----+------+\n"
             "| ID | \x1b[1mName\x1b[0m |\n"
             "+----+------+\n"
             "| 1  | a    |\n"
             "+----+------+\n");
    t = hq_table_new_vertical();
    hq_table_add_kv(t, "Key", "v");
    s_expect(t, true,
             "+-----+---+\n"
             "| \x1b[1mKey\x1b[0m | v |\n"
             "+-----+---+\n");
}

Test(table, no_trailing_spaces)
{
    hq_table_t *t = hq_table_new_vertical();
    hq_table_add_kv(t, "a", "b\nlonger");
    char *s = s_render(t, false);
    cr_assert_null(strstr(s, " \n"));
    free(s);
    hq_table_destroy(&t);
}

Test(table, state_colours)
{
    char *s = hq_color_state("RUNNING", "worker", true);
    cr_assert_str_eq(s, "\x1b[32mRUNNING\x1b[0m");
    free(s);
    s = hq_color_state("FAILED", "task", true);
    cr_assert_str_eq(s, "\x1b[31mFAILED\x1b[0m");
    free(s);
    s = hq_color_state("CANCELED", "task", false);
    cr_assert_str_eq(s, "CANCELED");
    free(s);
    s = hq_color_state("WHATEVER", "task", true);
    cr_assert_str_eq(s, "WHATEVER");
    free(s);
    s = hq_color("x", "31", false);
    cr_assert_str_eq(s, "x");
    free(s);
}
