/* Unit tests of the TOML bridge (toml.h) and job definition files (submit_file.h). */
#include <criterion/criterion.h>
#include <string.h>

#include "submit_file.h"
#include "toml.h"

static int s_build(const char *text, hq_submit_t *s, hq_err_t *err)
{
    return hq_jobfile_build(text, strlen(text), s, err);
}

Test(toml, converts_values_and_records_table_lines)
{
    const char *doc = "a = 1\nb = 2.5\nc = \"x\"\nd = true\n\n[t]\ne = [1, 2]\n";
    hq_err_t err;
    json_t *root = hq_toml_parse(doc, strlen(doc), &err);
    cr_assert_not_null(root, "%s", err.text);
    cr_assert_eq(json_integer_value(json_object_get(root, "a")), 1);
    cr_assert_float_eq(json_real_value(json_object_get(root, "b")), 2.5, 1e-9);
    cr_assert_str_eq(json_string_value(json_object_get(root, "c")), "x");
    cr_assert(json_is_true(json_object_get(root, "d")));
    json_t *t = json_object_get(root, "t");
    cr_assert_eq(hq_toml_line(t), 6);
    cr_assert_eq(json_array_size(json_object_get(t, "e")), 2);
    json_decref(root);
}

Test(toml, reports_a_syntax_error_with_its_position)
{
    const char *doc = "[[task]]\ncommand = [\"a\"\n";
    hq_err_t err;
    cr_assert_null(hq_toml_parse(doc, strlen(doc), &err));
    cr_assert_not_null(strstr(err.text, "at line 2, column"), "%s", err.text);
}

Test(jobfile, builds_a_graph_with_shared_definitions_and_auto_ids)
{
    const char *doc = "name = \"g\"\nmax_fails = 2\n"
                      "[[task]]\ncommand = [\"echo\", \"a\"]\n"
                      "[[task]]\ncommand = [\"echo\", \"a\"]\ndeps = [11]\n"
                      "[[task]]\nid = 10\ncommand = [\"echo\", \"b\"]\nenv = {X = \"1\"}\n"
                      "priority = -3\ncrash_limit = \"never-restart\"\npin = \"omp\"\n"
                      "task_dir = true\ntime_limit = \"1m\"\nstdout = \"none\"\n"
                      "stderr = {path = \"e.txt\", mode = \"rm-if-finished\"}\nstdin = \"in\"\n"
                      "[[task.request]]\nresources = {cpus = \"2 compact!\", gpus = 1}\n"
                      "time_request = \"10s\"\n"
                      "[[task.request]]\nresources = {cpus = 4}\n"
                      "[[task]]\ncommand = [\"x\"]\n";
    hq_submit_t s;
    hq_err_t err;
    cr_assert_eq(s_build(doc, &s, &err), 0, "%s", err.text);
    cr_assert_str_eq(s.name, "g");
    cr_assert(s.has_max_fails);
    cr_assert_eq(s.max_fails, 2);
    cr_assert_eq(s.n_graph, 4);
    cr_assert_eq(s.graph[0].id, 11, "ids without id come after the largest explicit one");
    cr_assert_eq(s.graph[1].id, 12);
    cr_assert_eq(s.graph[2].id, 10);
    cr_assert_eq(s.graph[3].id, 13);
    cr_assert_eq(s.graph[1].n_deps, 1);
    cr_assert_eq(s.n_defs, 3, "tasks 0 and 1 share a definition");
    cr_assert_eq(s.graph[0].def_idx, s.graph[1].def_idx);
    const hq_task_def_t *d = &s.defs[s.graph[2].def_idx];
    cr_assert_eq(d->n_env, 1);
    cr_assert_str_eq(d->env[0].key, "X");
    cr_assert_eq(d->priority, -3);
    cr_assert_eq(d->crash_kind, HQ_CRASH_NEVER_RESTART);
    cr_assert_eq(d->pin, HQ_PIN_OMP);
    cr_assert(d->task_dir);
    cr_assert_eq(d->time_limit_ns, 60ull * 1000000000ull);
    cr_assert_eq(d->out.kind, HQ_STDIO_NONE);
    cr_assert_eq(d->err.kind, HQ_STDIO_FILE);
    cr_assert_str_eq(d->err.path, "e.txt");
    cr_assert(d->err.rm_if_finished);
    cr_assert_eq(d->stdin_data.len, 2);
    cr_assert_eq(d->n_variants, 2);
    cr_assert_eq(d->variants[0].n_entries, 2);
    cr_assert_str_eq(d->variants[0].entries[0].name, "cpus");
    cr_assert_str_eq(d->variants[0].entries[1].name, "gpus");
    cr_assert_eq(d->variants[0].min_time_ns, 10ull * 1000000000ull);
    cr_assert_eq(d->variants[1].entries[0].amount, 4 * HQ_AMOUNT_ONE);
    hq_jobfile_clear(&s);
}

Test(jobfile, tasks_without_any_id_are_numbered_from_zero)
{
    const char *doc = "[[task]]\ncommand = [\"a\"]\n[[task]]\ncommand = [\"b\"]\n"
                      "[[task]]\ncommand = [\"c\"]\n";
    hq_submit_t s;
    hq_err_t err;
    cr_assert_eq(s_build(doc, &s, &err), 0, "%s", err.text);
    cr_assert_eq(s.n_graph, 3);
    for (uint32_t i = 0; i < 3; i++)
        cr_assert_eq(s.graph[i].id, i);
    hq_jobfile_clear(&s);
}

Test(jobfile, array_ids_are_paired_with_entries_by_position)
{
    const char *doc = "[array]\nids = \"2,10-12\"\nentries = [\"a\", \"b\", \"c\", \"d\"]\n"
                      "command = [\"echo\"]\n";
    hq_submit_t s;
    hq_err_t err;
    cr_assert_eq(s_build(doc, &s, &err), 0, "%s", err.text);
    cr_assert_eq(s.n_graph, 0);
    cr_assert_eq(s.n_entries, 4);
    cr_assert_eq(hq_rangelist_count(&s.ids), 4, "every id kept");
    cr_assert_eq(s.ids.ranges[0].start, 2);
    cr_assert_eq(s.ids.ranges[1].start, 10);
    cr_assert_eq(s.ids.ranges[1].end, 12);
    hq_jobfile_clear(&s);
    doc = "[array]\nids = \"1,3,7\"\nentries = [\"a\", \"b\", \"c\", \"d\"]\ncommand = [\"x\"]\n";
    cr_assert_eq(s_build(doc, &s, &err), -1);
    cr_assert_str_eq(err.text, "`ids` in [array] at line 1 gives 3 ids but `entries` has 4; they "
                               "are paired by position, so the counts must match");
}

Test(jobfile, request_with_resources_but_no_cpus_gets_no_implicit_cpus)
{
    const char *doc = "[[task]]\ncommand = [\"a\"]\n[[task.request]]\nresources = {gpus = 1}\n"
                      "[[task]]\ncommand = [\"b\"]\n";
    hq_submit_t s;
    hq_err_t err;
    cr_assert_eq(s_build(doc, &s, &err), 0, "%s", err.text);
    const hq_rvariant_t *v = &s.defs[s.graph[0].def_idx].variants[0];
    cr_assert_eq(v->n_entries, 1);
    cr_assert_str_eq(v->entries[0].name, "gpus");
    v = &s.defs[s.graph[1].def_idx].variants[0];
    cr_assert_eq(v->n_entries, 1, "no request at all: cpus = 1");
    cr_assert_str_eq(v->entries[0].name, "cpus");
    cr_assert_eq(v->entries[0].amount, HQ_AMOUNT_ONE);
    hq_jobfile_clear(&s);
}

Test(jobfile, stdio_tables_take_on_close_or_mode_and_data_layer_is_ignored)
{
    const char *doc =
        "data_layer = true\n[[task]]\ncommand = [\"a\"]\n"
        "stdout = {path = \"o\", on_close = \"rm-if-finished\"}\n"
        "stderr = {path = \"e\", mode = \"rm-if-finished\"}\n"
        "[[task]]\ncommand = [\"b\"]\nstdout = {path = \"o2\", on_close = \"never\"}\n";
    hq_submit_t s;
    hq_err_t err;
    cr_assert_eq(s_build(doc, &s, &err), 0, "%s", err.text);
    const hq_task_def_t *d = &s.defs[s.graph[0].def_idx];
    cr_assert(d->out.rm_if_finished);
    cr_assert(d->err.rm_if_finished);
    cr_assert_not(s.defs[s.graph[1].def_idx].out.rm_if_finished);
    hq_jobfile_clear(&s);
    doc = "[[task]]\ncommand = [\"a\"]\nstdout = {path = \"o\", on_close = \"later\"}\n";
    cr_assert_eq(s_build(doc, &s, &err), -1);
    cr_assert_not_null(strstr(err.text, "`on_close`"), "%s", err.text);
    cr_assert_not_null(strstr(err.text, "\"never\" or \"rm-if-finished\""), "%s", err.text);
}

Test(jobfile, refuses_unknown_keys_naming_the_key_and_line)
{
    hq_submit_t s;
    hq_err_t err;
    cr_assert_eq(s_build("[[task]]\ncommand = [\"a\"]\nfoo = 1\n", &s, &err), -1);
    cr_assert_eq(strncmp(err.text,
                         "unknown field `foo` in [[task]] at line 1, expected one of "
                         "`id`, `command`",
                         64),
                 0, "%s", err.text);
    cr_assert_eq(s_build("nme = \"x\"\n[[task]]\ncommand = [\"a\"]\n", &s, &err), -1);
    cr_assert_not_null(strstr(err.text, "unknown field `nme`"));
    cr_assert_eq(
        s_build("[[task]]\ncommand = [\"a\"]\n[[task.request]]\nresource = {}\n", &s, &err), -1);
    cr_assert_not_null(strstr(err.text, "unknown field `resource` in [[task.request]]"));
}

Test(jobfile, refuses_mixing_tasks_and_array_and_empty_files)
{
    hq_submit_t s;
    hq_err_t err;
    cr_assert_eq(s_build("[[task]]\ncommand = [\"a\"]\n[array]\ncommand = [\"b\"]\n", &s, &err),
                 -1);
    cr_assert_str_eq(err.text, "Definition of array job and individual task cannot be mixed");
    cr_assert_eq(s_build("name = \"x\"\n", &s, &err), -1);
    cr_assert_eq(s_build("[[task]]\nid = 1\n", &s, &err), -1);
    cr_assert_not_null(strstr(err.text, "missing field `command`"), "%s", err.text);
    cr_assert_eq(s_build("[[task]]\ncommand = [\"a\"]\ncrash_limit = 0\n", &s, &err), -1);
    cr_assert_str_eq(err.text, "Crash limit cannot be 0. Use `never-restart` or `unlimited` "
                               "instead.");
}
