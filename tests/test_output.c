/* Tests for hq_output: error texts, JSON printing rules and the "{}" rule. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hq_output.h"

static hq_global_t s_global(enum hq_output_mode mode)
{
    hq_global_t g = {.server_dir = NULL, .output = mode, .colors = HQ_COLORS_NEVER};
    return g;
}

static void s_redirect(void)
{
    cr_redirect_stdout();
    cr_redirect_stderr();
}

Test(output, single_cause_is_indented_by_four)
{
    const char *causes[] = {"\"/x/y\" is not a directory"};
    char *s = hq_error_with_causes("Invalid server directory", causes, 1);
    cr_assert_str_eq(s, "Invalid server directory\n\nCaused by:\n    \"/x/y\" is not a directory");
    free(s);
}

Test(output, several_causes_are_numbered_in_five_columns)
{
    const char *causes[] = {"first", "second"};
    char *s = hq_error_with_causes("Top", causes, 2);
    cr_assert_str_eq(s, "Top\n\nCaused by:\n    0: first\n    1: second");
    free(s);
    s = hq_error_with_causes("Top", NULL, 0);
    cr_assert_str_eq(s, "Top");
    free(s);
}

Test(output, cli_error_goes_to_stderr, .init = s_redirect)
{
    hq_global_t g = s_global(HQ_OUTPUT_CLI);
    cr_assert_eq(hq_output_error(&g, "Boom\n\nCaused by:\n    x"), 1);
    fflush(stdout);
    fflush(stderr);
    cr_assert_stderr_eq_str("Boom\n\nCaused by:\n    x\n");
    cr_assert_stdout_eq_str("");
}

Test(output, json_error_goes_to_stdout, .init = s_redirect)
{
    hq_global_t g = s_global(HQ_OUTPUT_JSON);
    cr_assert_eq(hq_output_error(&g, "Bad\nthing"), 1);
    cr_assert(hq_output_printed());
    hq_output_finish(&g);
    fflush(stdout);
    cr_assert_stdout_eq_str("{\n  \"error\": \"Bad\\nthing\"\n}\n");
}

Test(output, json_mode_prints_empty_object_when_nothing_printed, .init = s_redirect)
{
    hq_global_t g = s_global(HQ_OUTPUT_JSON);
    cr_assert(!hq_output_printed());
    hq_output_finish(&g);
    fflush(stdout);
    cr_assert_stdout_eq_str("{}\n");
}

Test(output, cli_mode_finish_prints_nothing, .init = s_redirect)
{
    hq_global_t g = s_global(HQ_OUTPUT_CLI);
    hq_output_finish(&g);
    fflush(stdout);
    cr_assert_stdout_eq_str("");
}

Test(output, json_is_sorted_indented_with_exact_floats)
{
    json_t *v = json_pack("{s:f, s:f, s:i, s:[], s:{}, s:{s:n, s:s}}", "b", 8.0, "a", 0.1, "c", 3,
                          "e", "d", "f", "z", "y", "x");
    char *s = hq_json_dump(v, true);
    cr_assert_str_eq(s, "{\n"
                        "  \"a\": 0.1,\n"
                        "  \"b\": 8.0,\n"
                        "  \"c\": 3,\n"
                        "  \"d\": {},\n"
                        "  \"e\": [],\n"
                        "  \"f\": {\n"
                        "    \"y\": \"x\",\n"
                        "    \"z\": null\n"
                        "  }\n"
                        "}");
    free(s);
    s = hq_json_dump(v, false);
    cr_assert_str_eq(
        s, "{\"a\":0.1,\"b\":8.0,\"c\":3,\"d\":{},\"e\":[],\"f\":{\"y\":\"x\",\"z\":null}}");
    free(s);
    json_decref(v);
    v = json_array();
    s = hq_json_dump(v, true);
    cr_assert_str_eq(s, "[]");
    free(s);
    json_decref(v);
}

Test(output, strip_private_removes_underscore_keys_at_any_depth)
{
    json_t *v = json_pack("{s:i, s:i, s:[{s:i, s:i}], s:{s:{s:i}}}", "id", 1, "_pid", 2, "list",
                          "_x", 1, "y", 2, "obj", "_inner", "k", 3);
    hq_json_strip_private(v);
    char *s = hq_json_dump(v, false);
    cr_assert_str_eq(s, "{\"id\":1,\"list\":[{\"y\":2}],\"obj\":{}}");
    free(s);
    json_decref(v);
}

Test(output, colors_policy)
{
    hq_global_t g = s_global(HQ_OUTPUT_CLI);
    g.colors = HQ_COLORS_ALWAYS;
    cr_assert(hq_output_colors(&g));
    g.colors = HQ_COLORS_NEVER;
    cr_assert(!hq_output_colors(&g));
    g.colors = HQ_COLORS_AUTO;
    cr_assert_eq(hq_output_colors(&g), isatty(1) == 1);
}
