/* The worker's hardware overview (worker/overview.c): the GPU figures parsed from
 * nvidia-smi's CSV and rocm-smi's JSON, and the JSON shape of a collected state. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "overview.h"

Test(overview, nvidia_csv_gives_usage_and_memory_percent)
{
    json_t *g = wk_overview_parse_nvidia("BUS1, 10.0 %, 100 MiB, 200 MiB\n"
                                         "garbage line\n"
                                         "00000000:3B:00.0, 3 %, 0 MiB, 0 MiB\n");
    json_t *list = json_object_get(g, "gpus");
    cr_assert_eq(json_array_size(list), 2);
    json_t *a = json_array_get(list, 0);
    cr_assert_str_eq(json_string_value(json_object_get(a, "id")), "BUS1");
    cr_assert_float_eq(json_real_value(json_object_get(a, "processor_usage")), 10.0, 1e-9);
    cr_assert_float_eq(json_real_value(json_object_get(a, "mem_usage")), 50.0, 1e-9);
    json_t *b = json_array_get(list, 1);
    cr_assert_str_eq(json_string_value(json_object_get(b, "id")), "00000000:3B:00.0");
    cr_assert_float_eq(json_real_value(json_object_get(b, "mem_usage")), 0.0, 1e-9);
    json_decref(g);
}

Test(overview, rocm_json_takes_bus_use_and_memory_use_of_each_card)
{
    json_t *g = wk_overview_parse_rocm(
        "{\"card0\": {\"PCI Bus\": \"0000:03:00.0\", \"GPU use (%)\": \"5\", "
        "\"GPU memory use (%)\": \"12.5\"}, \"system\": {\"Driver version\": \"6\"}}");
    json_t *list = json_object_get(g, "gpus");
    cr_assert_eq(json_array_size(list), 1);
    json_t *a = json_array_get(list, 0);
    cr_assert_str_eq(json_string_value(json_object_get(a, "id")), "0000:03:00.0");
    cr_assert_float_eq(json_real_value(json_object_get(a, "processor_usage")), 5.0, 1e-9);
    cr_assert_float_eq(json_real_value(json_object_get(a, "mem_usage")), 12.5, 1e-9);
    json_decref(g);
    g = wk_overview_parse_rocm("not json");
    cr_assert_eq(json_array_size(json_object_get(g, "gpus")), 0);
    json_decref(g);
}

Test(overview, collected_state_has_hyperqueues_keys)
{
    wk_overview_t o = {0};
    setenv("PATH", "/nonexistent", 1); /* no GPU tools */
    char *text = wk_overview_collect(&o);
    json_t *hw = json_loads(text, 0, NULL);
    json_t *st = json_object_get(hw, "state");
    cr_assert(json_is_integer(json_object_get(st, "timestamp")));
    cr_assert(json_is_array(
        json_object_get(json_object_get(st, "cpu_usage"), "cpu_per_core_percent_usage")));
    cr_assert(json_is_integer(json_object_get(json_object_get(st, "memory_usage"), "total")));
    cr_assert(json_is_integer(json_object_get(json_object_get(st, "network_usage"), "tx_errors")));
    cr_assert_null(json_object_get(st, "nvidia_gpus"));
    cr_assert_eq(json_object_size(st), 4);
    json_decref(hw);
    free(text);
    wk_overview_fini(&o);
}
