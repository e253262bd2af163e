/* Tests for hq_resource: worker definitions, task requests and their printed forms. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "hq_resource.h"

static hq_wres_t s_def(const char *arg)
{
    hq_wres_t r;
    hq_err_t err = {{0}};
    cr_assert_eq(hq_wres_parse_named(arg, &r, &err), 0, "'%s': %s", arg, err.text);
    return r;
}

static hq_wres_t s_cpus(const char *def)
{
    hq_wres_t r;
    hq_err_t err = {{0}};
    cr_assert_eq(hq_wres_parse_cpus(def, &r, &err), 0, "'%s': %s", def, err.text);
    return r;
}

static void s_full_is(hq_wres_t r, const char *expected)
{
    char *f = hq_wres_full(&r);
    cr_assert_str_eq(f, expected);
    free(f);
    hq_wres_clear(&r);
}

static void s_def_fails(const char *arg, const char *msg)
{
    hq_wres_t r;
    hq_err_t err;
    cr_assert_eq(hq_wres_parse_named(arg, &r, &err), -1, "'%s' accepted", arg);
    if (msg)
        cr_assert_str_eq(err.text, msg);
}

Test(wres, cpus_count_is_a_range)
{
    hq_wres_t r = s_cpus("4");
    cr_assert_eq(r.kind, HQ_RES_RANGE);
    cr_assert_eq(r.range_start, 0);
    cr_assert_eq(r.range_end, 3);
    cr_assert_eq(hq_wres_capacity(&r), 4);
    s_full_is(r, "cpus: range(0-3)");
    s_full_is(s_cpus("1"), "cpus: [0]");
}

Test(wres, groups_of_consecutive_indices)
{
    hq_wres_t r = s_cpus("2x3");
    cr_assert_eq(r.kind, HQ_RES_GROUPS);
    cr_assert_eq(r.n_groups, 2);
    cr_assert_str_eq(r.groups[1].labels[0], "3");
    s_full_is(r, "cpus: [[0,1,2],[3,4,5]]");
    r = s_cpus("1x4");
    cr_assert_eq(r.kind, HQ_RES_RANGE);
    s_full_is(r, "cpus: range(0-3)");
}

Test(wres, lists_with_quoted_labels)
{
    hq_wres_t r = s_def("gpus=[4, 7]");
    cr_assert_eq(r.kind, HQ_RES_LIST);
    cr_assert_str_eq(r.name, "gpus");
    s_full_is(r, "gpus: [4,7]");
    r = s_def("x=[\"a b\", \"[c]\", d]");
    cr_assert_eq(r.groups[0].n, 3);
    cr_assert_str_eq(r.groups[0].labels[0], "a b");
    cr_assert_str_eq(r.groups[0].labels[1], "[c]");
    cr_assert_str_eq(r.groups[0].labels[2], "d");
    hq_wres_clear(&r);
}

Test(wres, groups_and_single_group_becomes_list)
{
    hq_wres_t r = s_cpus("[[0,1],[2,3]]");
    cr_assert_eq(r.kind, HQ_RES_GROUPS);
    s_full_is(r, "cpus: [[0,1],[2,3]]");
    r = s_cpus("[[a,b]]");
    cr_assert_eq(r.kind, HQ_RES_LIST);
    s_full_is(r, "cpus: [a,b]");
}

Test(wres, ranges_and_sums)
{
    s_full_is(s_def("x=range(1-3)"), "x: range(1-3)");
    s_full_is(s_def("x=range(5-5)"), "x: [5]");
    hq_wres_t r = s_def("mem=sum(1234)");
    cr_assert_eq(r.kind, HQ_RES_SUM);
    cr_assert_eq(r.sum_size, 1234 * HQ_AMOUNT_ONE);
    s_full_is(r, "mem: sum(1234)");
    r = s_def("mem = sum(0.5)");
    cr_assert_eq(r.sum_size, HQ_AMOUNT_ONE / 2);
    hq_wres_clear(&r);
}

Test(wres, rejects_bad_definitions)
{
    s_def_fails("x=[a,a]", "List items have to be unique");
    s_def_fails("x=[[a,b],[b]]", "List items have to be unique");
    s_def_fails("x=range(3-1)", "Start must be greater or equal to end");
    s_def_fails("x=4", NULL);
    s_def_fails("x=[]", NULL);
    s_def_fails("x=[[a],[]]", NULL);
    s_def_fails("x=[a", NULL);
    s_def_fails("x", NULL);
    s_def_fails("1x=[a]", NULL);
    s_def_fails("cpus=sum(4)",
                "Resource kind `sum` cannot be used with CPUs. CPUs must have identity");
    hq_wres_t r;
    hq_err_t err;
    cr_assert_eq(hq_wres_parse_cpus("sum(4)", &r, &err), -1);
    cr_assert_str_eq(err.text,
                     "Resource kind `sum` cannot be used with CPUs. CPUs must have identity");
    cr_assert_eq(hq_wres_parse_cpus("0", &r, &err), -1);
}

Test(wres, summary_one_line_and_multiline)
{
    hq_wres_t res[4] = {s_cpus("4"), s_def("mem=sum(1536)"), s_def("gpus/nvidia=[0,1]"),
                        s_def("small=sum(100)")};
    hq_wres_list_t l = {.n = 4, .res = res};
    char *s = hq_wres_summary(&l, false);
    cr_assert_str_eq(s, "cpus 4; mem 1.50 GiB; gpus/nvidia 2; small 100");
    free(s);
    s = hq_wres_summary(&l, true);
    cr_assert_str_eq(s, "cpus: 4\nmem: 1.50 GiB\ngpus/nvidia: 2\nsmall: 100");
    free(s);
    for (int i = 0; i < 4; i++)
        hq_wres_clear(&res[i]);
}

Test(wres, summary_of_mem_below_512_mib_and_groups)
{
    hq_wres_t res[2] = {s_def("mem=sum(256.5)"),
                        s_cpus("[[0,1],[2,3],[4,5],[6,7],[8,9],[a,b,c,d,e,f]]")};
    hq_wres_list_t l = {.n = 2, .res = res};
    char *s = hq_wres_summary(&l, false);
    cr_assert_str_eq(s, "mem 256.50 MiB; cpus 5x2 1x6");
    free(s);
    for (int i = 0; i < 2; i++)
        hq_wres_clear(&res[i]);
}

Test(wres, copy_is_deep)
{
    hq_wres_t a = s_cpus("2x2"), b;
    hq_wres_copy(&b, &a);
    hq_wres_clear(&a);
    s_full_is(b, "cpus: [[0,1],[2,3]]");
}

static hq_rreq_t s_req(const char *name, const char *value)
{
    hq_rreq_t r;
    hq_err_t err = {{0}};
    cr_assert_eq(hq_rreq_parse(name, value, &r, &err), 0, "'%s': %s", value, err.text);
    return r;
}

static void s_req_is(const char *value, const char *expected)
{
    hq_rreq_t r = s_req("cpus", value);
    char *f = hq_rreq_format(&r);
    cr_assert_str_eq(f, expected, "'%s'", value);
    free(f);
    hq_rreq_clear(&r);
}

static void s_req_fails(const char *value, const char *msg)
{
    hq_rreq_t r;
    hq_err_t err;
    cr_assert_eq(hq_rreq_parse("cpus", value, &r, &err), -1, "'%s' accepted", value);
    if (msg)
        cr_assert_str_eq(err.text, msg);
}

Test(rreq, parses_amounts_and_policies)
{
    s_req_is("2", "2 compact");
    s_req_is("0.5 scatter", "0.5 scatter");
    s_req_is("4compact!", "4 compact!");
    s_req_is("1_000 tight", "1000 tight");
    s_req_is(" 3 tight! ", "3 tight!");
    s_req_is("1.2500", "1.25 compact");
    s_req_is("0.0001", "0.0001 compact");
    s_req_is("all", "all");
    hq_rreq_t r = s_req("gpus", "2");
    cr_assert_eq(r.amount, 2 * HQ_AMOUNT_ONE);
    cr_assert_eq(r.policy, HQ_POLICY_COMPACT);
    cr_assert(!r.all);
    hq_rreq_clear(&r);
}

Test(rreq, rejects_bad_requests)
{
    s_req_fails("0", "Zero resources cannot be requested");
    s_req_fails("0.0", "Zero resources cannot be requested");
    s_req_fails("0.00001", "Resource precision exceeded");
    s_req_fails("1.23456", "Resource precision exceeded");
    s_req_fails("x", NULL);
    s_req_fails("2 loose", NULL);
    s_req_fails("all compact", NULL);
    s_req_fails("-1", NULL);
    s_req_fails("", NULL);
    hq_rreq_t r;
    hq_err_t err;
    cr_assert_eq(hq_rreq_parse("1abc", "1", &r, &err), -1);
    cr_assert_eq(hq_rreq_parse("a_b", "1", &r, &err), -1);
}

Test(rreq, named_form_tolerates_spaces)
{
    hq_rreq_t r;
    hq_err_t err;
    cr_assert_eq(hq_rreq_parse_named("gpus/nvidia = 2 scatter", &r, &err), 0, "%s", err.text);
    cr_assert_str_eq(r.name, "gpus/nvidia");
    cr_assert_eq(r.policy, HQ_POLICY_SCATTER);
    hq_rreq_clear(&r);
    cr_assert_eq(hq_rreq_parse_named("gpus", &r, &err), -1);
}

Test(rreq, amount_format_drops_trailing_zeros)
{
    const struct {
        hq_amount_t a;
        const char *s;
    } cases[] = {{5000, "0.5"}, {20000, "2"}, {12500, "1.25"}, {1, "0.0001"}, {0, "0"}};
    for (size_t i = 0; i < 5; i++) {
        char *s = hq_amount_format(cases[i].a);
        cr_assert_str_eq(s, cases[i].s);
        free(s);
    }
}

static hq_rreq_t s_entry(const char *name, hq_amount_t amount, enum hq_policy p, bool all)
{
    hq_rreq_t r = {.name = strdup(name), .amount = amount, .policy = p, .all = all};
    return r;
}

Test(rreq, display_sorts_by_name_and_shows_weight)
{
    hq_rreq_t e[3] = {s_entry("mem", 5000, HQ_POLICY_COMPACT, false),
                      s_entry("cpus", 20000, HQ_POLICY_SCATTER, false),
                      s_entry("gpus", 0, HQ_POLICY_COMPACT, true)};
    hq_rvariant_t v = {.weight = HQ_AMOUNT_ONE, .n_entries = 3, .entries = e};
    char *s = hq_rvariants_display(&v, 1);
    cr_assert_str_eq(s, "cpus: 2 scatter\ngpus: all\nmem: 0.5 compact");
    free(s);
    v.weight = 2 * HQ_AMOUNT_ONE;
    s = hq_rvariants_display(&v, 1);
    cr_assert_str_eq(s, "cpus: 2 scatter\ngpus: all\nmem: 0.5 compact\n[weight: 2]");
    free(s);
    for (int i = 0; i < 3; i++)
        hq_rreq_clear(&e[i]);
}

Test(rreq, display_of_several_variants_and_multinode)
{
    hq_rreq_t *e1 = malloc(sizeof *e1), *e2 = malloc(sizeof *e2);
    *e1 = s_entry("cpus", 10000, HQ_POLICY_COMPACT, false);
    *e2 = s_entry("gpus", 10000, HQ_POLICY_COMPACT, false);
    hq_rvariant_t v[2] = {{.weight = HQ_AMOUNT_ONE, .n_entries = 1, .entries = e1},
                          {.weight = 5000, .n_entries = 1, .entries = e2}};
    char *s = hq_rvariants_display(v, 2);
    cr_assert_str_eq(s,
                     "# Variant 1\ncpus: 1 compact\n\n# Variant 2\ngpus: 1 compact\n[weight: 0.5]");
    free(s);
    hq_rvariant_clear(&v[0]);
    hq_rvariant_clear(&v[1]);
    hq_rvariant_t m = {.n_nodes = 3, .weight = HQ_AMOUNT_ONE};
    s = hq_rvariants_display(&m, 1);
    cr_assert_str_eq(s, "nodes: 3");
    free(s);
}

Test(rreq, env_names_and_policy_names)
{
    char *s = hq_resource_env_name("gpus/nvidia");
    cr_assert_str_eq(s, "gpus_nvidia");
    free(s);
    cr_assert_str_eq(hq_policy_name(HQ_POLICY_FORCE_TIGHT), "tight!");
    cr_assert_str_eq(hq_policy_name(HQ_POLICY_COMPACT), "compact");
    cr_assert_str_eq(hq_policy_name(HQ_POLICY_FORCE_COMPACT), "compact!");
    cr_assert_str_eq(hq_policy_name(HQ_POLICY_SCATTER), "scatter");
    cr_assert_str_eq(hq_policy_name(HQ_POLICY_TIGHT), "tight");
}

/* ---- coupling ---- */

Test(coupling, summary_marks_every_coupled_resource_in_both_forms)
{
    hq_wres_t res[2] = {s_cpus("2x2"), s_def("gpus=[[0],[1]]")};
    hq_wres_list_t l = {.n = 2, .res = res};
    bool both[2] = {true, true}, second[2] = {false, true};
    char *s = hq_wres_summary_ex(&l, false, both);
    cr_assert_str_eq(s, "cpus 2x2 [coupled]; gpus 2x1 [coupled]");
    free(s);
    s = hq_wres_summary_ex(&l, true, both);
    cr_assert_str_eq(s, "cpus: 2x2 [coupled]\ngpus: 2x1 [coupled]");
    free(s);
    s = hq_wres_summary_ex(&l, true, second);
    cr_assert_str_eq(s, "cpus: 2x2\ngpus: 2x1 [coupled]");
    free(s);
    s = hq_wres_summary_ex(&l, false, NULL);
    cr_assert_str_eq(s, "cpus 2x2; gpus 2x1");
    free(s);
    for (int i = 0; i < 2; i++)
        hq_wres_clear(&res[i]);
}

/* cpus 2x2, gpus [[0],[1]], mem sum, x range: the name-sorted list. */
static void s_coupling_list(hq_wres_t res[4])
{
    res[0] = s_cpus("2x2");
    res[1] = s_def("gpus=[[0],[1]]");
    res[2] = s_def("mem=sum(100)");
    res[3] = s_def("x=range(1-3)");
}

Test(coupling, parses_weights_into_sorted_indices)
{
    hq_wres_t res[4];
    s_coupling_list(res);
    hq_wres_list_t l = {.n = 4, .res = res};
    hq_coupling_t *c;
    uint32_t n;
    hq_err_t err = {{0}};
    cr_assert_eq(hq_coupling_parse("cpus[0]:gpus[0], gpus[1] : cpus[1]=1000,x[0]:cpus[1]=0", &l, &c,
                                   &n, &err),
                 0, "%s", err.text);
    cr_assert_eq(n, 3);
    cr_assert_eq(c[0].resource1_idx, 0);
    cr_assert_eq(c[0].group1_idx, 0);
    cr_assert_eq(c[0].resource2_idx, 1);
    cr_assert_eq(c[0].group2_idx, 0);
    cr_assert_eq(c[0].weight, HQ_COUPLING_DEFAULT_WEIGHT);
    cr_assert_eq(c[1].resource1_idx, 1);
    cr_assert_eq(c[1].group1_idx, 1);
    cr_assert_eq(c[1].resource2_idx, 0);
    cr_assert_eq(c[1].group2_idx, 1);
    cr_assert_eq(c[1].weight, 1000);
    cr_assert_eq(c[2].resource1_idx, 3);
    cr_assert_eq(c[2].weight, 0);
    free(c);
    cr_assert_eq(hq_coupling_parse("cpus[1]:gpus[1]=65535", &l, &c, &n, &err), 0, "%s", err.text);
    cr_assert_eq(c[0].weight, 65535);
    free(c);
    for (int i = 0; i < 4; i++)
        hq_wres_clear(&res[i]);
}

static void s_coupling_fails(const char *spec, const char *msg)
{
    hq_wres_t res[4];
    s_coupling_list(res);
    hq_wres_list_t l = {.n = 4, .res = res};
    hq_coupling_t *c = (hq_coupling_t *)&l; /* must be reset */
    uint32_t n = 7;
    hq_err_t err = {{0}};
    cr_assert_eq(hq_coupling_parse(spec, &l, &c, &n, &err), -1, "'%s' parsed", spec);
    cr_assert_str_eq(err.text, msg, "'%s'", spec);
    cr_assert_null(c);
    cr_assert_eq(n, 0);
    for (int i = 0; i < 4; i++)
        hq_wres_clear(&res[i]);
}

Test(coupling, reports_each_syntax_and_name_error)
{
    s_coupling_fails("cpus[0]gpus[0]", "Missing ':'");
    s_coupling_fails("cpus[0]:gpus[0],", "Missing ':'");
    s_coupling_fails("cpus0]:gpus[0]", "Missing '['");
    s_coupling_fails("cpus[0]:gpus0", "Missing '['");
    s_coupling_fails("cpus[0:gpus[0]", "Missing ']'");
    s_coupling_fails("cpus[0]:gpus[0", "Missing ']'");
    s_coupling_fails("foo[0]:gpus[0]", "Resource not found: foo");
    s_coupling_fails("cpus[0]:gpus[0],cpus[1]:bar[1]", "Resource not found: bar");
    s_coupling_fails("cpus[x]:gpus[0]", "Invalid group index: x");
    s_coupling_fails("cpus[256]:gpus[0]", "Invalid group index: 256");
    s_coupling_fails("cpus[]:gpus[0]", "Invalid group index: ");
    s_coupling_fails("cpus[0]:gpus[0]=65536", "Invalid weight: 65536");
    s_coupling_fails("cpus[0]:gpus[0]=-1", "Invalid weight: -1");
    s_coupling_fails("cpus[0]:gpus[0]=", "Invalid weight: ");
    s_coupling_fails("cpus[0]:cpus[1]", "Coupling must be between different resources: cpus");
}

/* Parses spec (which must parse) and returns what validation says ("" = valid). */
static char *s_coupling_check(const char *spec)
{
    hq_wres_t res[4];
    s_coupling_list(res);
    hq_wres_list_t l = {.n = 4, .res = res};
    hq_coupling_t *c;
    uint32_t n;
    hq_err_t err = {{0}};
    cr_assert_eq(hq_coupling_parse(spec, &l, &c, &n, &err), 0, "%s", err.text);
    int rc = hq_coupling_validate(c, n, &l, &err);
    free(c);
    for (int i = 0; i < 4; i++)
        hq_wres_clear(&res[i]);
    return strdup(rc == 0 ? "" : err.text);
}

Test(coupling, group_ids_are_checked_against_the_resources)
{
    const char *cases[][2] = {
        {"cpus[1]:gpus[1]", ""},
        {"cpus[2]:gpus[0]", "Invalid group id 2 for resource 'cpus'"},
        {"cpus[0]:gpus[3]", "Invalid group id 3 for resource 'gpus'"},
        {"x[0]:gpus[0]", "Resource 'x' has only a single group"},
        {"cpus[0]:x[1]", "Resource 'x' has only a single group"},
        {"mem[0]:gpus[0]", "Resource 'mem' has only a single group"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = s_coupling_check(cases[i][0]);
        cr_assert_str_eq(got, cases[i][1], "'%s'", cases[i][0]);
        free(got);
    }
}
