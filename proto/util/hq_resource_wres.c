/* Worker resource definitions (cli/REFERENCE.md §1.4): parsing --cpus and
 * --resource values (lists, AxB, range, groups, sum), copying and freeing them, and
 * their summary and full (hwdetect) forms. */
#include "hq_resource.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_resource_priv.h"
#include "hq_util.h"

#define S_MAX_LABELS 100000
#define S_CPUS_SUM_ERROR "Resource kind `sum` cannot be used with CPUs. CPUs must have identity"

static void s_group_free(hq_label_group_t *g)
{
    for (uint32_t i = 0; i < g->n; i++)
        free(g->labels[i]);
    free(g->labels);
    g->labels = NULL;
    g->n = 0;
}

void hq_wres_clear(hq_wres_t *r)
{
    if (!r)
        return;
    free(r->name);
    for (uint32_t i = 0; i < r->n_groups; i++)
        s_group_free(&r->groups[i]);
    free(r->groups);
    memset(r, 0, sizeof *r);
}

void hq_wres_list_clear(hq_wres_list_t *l)
{
    if (!l)
        return;
    for (uint32_t i = 0; i < l->n; i++)
        hq_wres_clear(&l->res[i]);
    free(l->res);
    l->res = NULL;
    l->n = 0;
}

int hq_wres_copy(hq_wres_t *dst, const hq_wres_t *src)
{
    *dst = *src;
    dst->name = src->name ? hq_strdup(src->name) : NULL;
    dst->groups = NULL;
    if (src->n_groups) {
        dst->groups = hq_calloc(src->n_groups, sizeof *dst->groups);
        for (uint32_t g = 0; g < src->n_groups; g++) {
            dst->groups[g].n = src->groups[g].n;
            dst->groups[g].labels = hq_calloc(src->groups[g].n, sizeof(char *));
            for (uint32_t i = 0; i < src->groups[g].n; i++)
                dst->groups[g].labels[i] = hq_strdup(src->groups[g].labels[i]);
        }
    }
    return 0;
}

static void s_group_push(hq_label_group_t *g, char *label)
{
    g->labels = hq_realloc(g->labels, (g->n + 1) * sizeof *g->labels);
    g->labels[g->n++] = label;
}

/* Parses "[a, "b c", d]" at *pp into g; advances *pp past ']'. */
static int s_parse_label_list(const char **pp, hq_label_group_t *g, hq_err_t *err)
{
    const char *p = hq_res_skip(*pp);
    if (*p != '[')
        return hq_err_set(err, "Expected '['");
    p = hq_res_skip(p + 1);
    if (*p == ']')
        return hq_err_set(err, "List has to contain at least one item");
    for (;;) {
        p = hq_res_skip(p);
        const char *b = p;
        if (*p == '"') {
            b = ++p;
            while (*p && *p != '"')
                p++;
            if (*p != '"')
                return hq_err_set(err, "Unterminated quoted label");
            if (p == b)
                return hq_err_set(err, "Labels cannot be empty");
            s_group_push(g, hq_strndup(b, (size_t)(p - b)));
            p++;
        } else {
            while (*p && !hq_res_space(*p) && !strchr("[],\"", *p))
                p++;
            if (p == b)
                return hq_err_set(err, "Expected a label");
            s_group_push(g, hq_strndup(b, (size_t)(p - b)));
        }
        if (g->n > S_MAX_LABELS)
            return hq_err_set(err, "Too many labels");
        p = hq_res_skip(p);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == ']') {
            *pp = p + 1;
            return 0;
        }
        return hq_err_set(err, "Expected ',' or ']'");
    }
}

static bool s_labels_unique(const hq_wres_t *r)
{
    for (uint32_t g = 0; g < r->n_groups; g++)
        for (uint32_t i = 0; i < r->groups[g].n; i++)
            for (uint32_t h = g; h < r->n_groups; h++)
                for (uint32_t j = (h == g ? i + 1 : 0); j < r->groups[h].n; j++)
                    if (strcmp(r->groups[g].labels[i], r->groups[h].labels[j]) == 0)
                        return false;
    return true;
}

/* "[...]" or "[[...],[...]]". */
static int s_parse_brackets(const char *def, hq_wres_t *out, hq_err_t *err)
{
    const char *p = hq_res_skip(def + 1);
    if (*p == '[') {
        out->kind = HQ_RES_GROUPS;
        p = def + 1;
        for (;;) {
            out->groups = hq_realloc(out->groups, (out->n_groups + 1) * sizeof *out->groups);
            memset(&out->groups[out->n_groups], 0, sizeof *out->groups);
            out->n_groups++;
            if (s_parse_label_list(&p, &out->groups[out->n_groups - 1], err) != 0)
                return -1;
            p = hq_res_skip(p);
            if (*p == ',') {
                p++;
                continue;
            }
            if (*p == ']') {
                p++;
                break;
            }
            return hq_err_set(err, "Expected ',' or ']'");
        }
        if (out->n_groups == 1)
            out->kind = HQ_RES_LIST;
    } else {
        out->kind = HQ_RES_LIST;
        out->groups = hq_calloc(1, sizeof *out->groups);
        out->n_groups = 1;
        p = def;
        if (s_parse_label_list(&p, &out->groups[0], err) != 0)
            return -1;
    }
    if (*hq_res_skip(p))
        return hq_err_set(err, "Unexpected text after the list: '%s'", hq_res_skip(p));
    if (!s_labels_unique(out))
        return hq_err_set(err, "List items have to be unique");
    return 0;
}

/* "range(A-B)". */
static int s_parse_range(const char *def, hq_wres_t *out, hq_err_t *err)
{
    const char *open = def + strlen("range");
    open = hq_res_skip(open);
    size_t len = strlen(open);
    while (len && hq_res_space(open[len - 1]))
        len--;
    if (*open != '(' || len < 2 || open[len - 1] != ')')
        return hq_err_set(err, "Invalid range definition '%s'", def);
    const char *dash = memchr(open, '-', len);
    if (!dash)
        return hq_err_set(err, "Invalid range definition '%s'", def);
    char *a = hq_res_trimmed(open + 1, dash);
    char *b = hq_res_trimmed(dash + 1, open + len - 1);
    uint64_t start, end;
    int rc = (hq_res_u64(a, &start) == 0 && hq_res_u64(b, &end) == 0) ? 0 : -1;
    free(a);
    free(b);
    if (rc != 0)
        return hq_err_set(err, "Invalid range definition '%s'", def);
    if (start > end)
        return hq_err_set(err, "Start must be greater or equal to end");
    out->kind = HQ_RES_RANGE;
    out->range_start = start;
    out->range_end = end;
    return 0;
}

/* "sum(N)". */
static int s_parse_sum(const char *def, hq_wres_t *out, hq_err_t *err)
{
    const char *open = hq_res_skip(def + strlen("sum"));
    size_t len = strlen(open);
    while (len && hq_res_space(open[len - 1]))
        len--;
    if (*open != '(' || len < 2 || open[len - 1] != ')')
        return hq_err_set(err, "Invalid sum definition '%s'", def);
    char *v = hq_res_trimmed(open + 1, open + len - 1);
    hq_amount_t amount;
    int rc = hq_res_amount(v, &amount);
    free(v);
    if (rc == -2)
        return hq_err_set(err, "Resource precision exceeded");
    if (rc != 0)
        return hq_err_set(err, "Invalid sum definition '%s'", def);
    out->kind = HQ_RES_SUM;
    out->sum_size = amount;
    return 0;
}

/* "AxB": A groups of B consecutive indices; A == 1 is the range 0..B-1. */
static int s_parse_groups_of(const char *def, hq_wres_t *out, hq_err_t *err)
{
    const char *x = strchr(def, 'x');
    char *a_txt = hq_res_trimmed(def, x);
    char *b_txt = hq_res_trimmed(x + 1, x + strlen(x));
    uint64_t a, b;
    int rc = (hq_res_u64(a_txt, &a) == 0 && hq_res_u64(b_txt, &b) == 0) ? 0 : -1;
    free(a_txt);
    free(b_txt);
    if (rc != 0)
        return hq_err_set(err, "Invalid resource definition '%s'", def);
    if (a == 0 || b == 0)
        return hq_err_set(err, "Resource definition '%s' has zero size", def);
    if (a * b > S_MAX_LABELS || a > S_MAX_LABELS || b > S_MAX_LABELS)
        return hq_err_set(err, "Resource definition '%s' is too large", def);
    if (a == 1) {
        out->kind = HQ_RES_RANGE;
        out->range_start = 0;
        out->range_end = b - 1;
        return 0;
    }
    out->kind = HQ_RES_GROUPS;
    out->n_groups = (uint32_t)a;
    out->groups = hq_calloc(a, sizeof *out->groups);
    uint64_t next = 0;
    for (uint64_t g = 0; g < a; g++)
        for (uint64_t i = 0; i < b; i++)
            s_group_push(&out->groups[g], hq_asprintf("%llu", (unsigned long long)next++));
    return 0;
}

static bool s_is_axb(const char *def)
{
    const char *x = strchr(def, 'x');
    if (!x || x == def)
        return false;
    for (const char *p = def; *p; p++)
        if (p != x && !isdigit((unsigned char)*p) && *p != '_' && !hq_res_space(*p))
            return false;
    return true;
}

static int s_parse_def(const char *name, const char *def_in, bool cpus, hq_wres_t *out,
                       hq_err_t *err)
{
    hq_wres_t r;
    memset(&r, 0, sizeof r);
    char *def = hq_res_trimmed(def_in, def_in + strlen(def_in));
    int rc;
    uint64_t n;
    if (def[0] == '[')
        rc = s_parse_brackets(def, &r, err);
    else if (strncmp(def, "range", 5) == 0)
        rc = s_parse_range(def, &r, err);
    else if (strncmp(def, "sum", 3) == 0)
        rc = cpus ? hq_err_set(err, S_CPUS_SUM_ERROR) : s_parse_sum(def, &r, err);
    else if (s_is_axb(def))
        rc = s_parse_groups_of(def, &r, err);
    else if (cpus && hq_res_u64(def, &n) == 0) {
        if (n == 0)
            rc = hq_err_set(err, "Number of CPUs has to be greater than zero");
        else {
            r.kind = HQ_RES_RANGE;
            r.range_start = 0;
            r.range_end = n - 1;
            rc = 0;
        }
    } else
        rc = hq_err_set(err, "Invalid resource definition '%s'", def);
    free(def);
    if (rc != 0) {
        hq_wres_clear(&r);
        return -1;
    }
    r.name = hq_strdup(name);
    *out = r;
    return 0;
}

int hq_wres_parse_cpus(const char *def, hq_wres_t *out, hq_err_t *err)
{
    return s_parse_def("cpus", def, true, out, err);
}

int hq_wres_parse_named(const char *arg, hq_wres_t *out, hq_err_t *err)
{
    const char *eq = strchr(arg, '=');
    if (!eq)
        return hq_err_set(err, "Missing '=' in resource definition '%s' (expected NAME=DEFINITION)",
                          arg);
    char *name = hq_res_trimmed(arg, eq);
    if (!hq_res_valid_name(name)) {
        hq_err_set(err, "Invalid resource name '%s'", name);
        free(name);
        return -1;
    }
    int rc = s_parse_def(name, eq + 1, false, out, err);
    if (rc == 0 && strcmp(name, "cpus") == 0 && out->kind == HQ_RES_SUM) {
        hq_wres_clear(out);
        rc = hq_err_set(err, S_CPUS_SUM_ERROR);
    }
    free(name);
    return rc;
}

hq_amount_t hq_wres_capacity(const hq_wres_t *r)
{
    switch (r->kind) {
    case HQ_RES_RANGE:
        return (hq_amount_t)(r->range_end - r->range_start + 1);
    case HQ_RES_SUM:
        return r->sum_size;
    default: {
        hq_amount_t n = 0;
        for (uint32_t g = 0; g < r->n_groups; g++)
            n += r->groups[g].n;
        return n;
    }
    }
}

static int s_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The count part of a summary: "4", "5x2 1x6", "1.50 GiB". */
static void s_summary_value(hq_buf_t *b, const hq_wres_t *r)
{
    if (r->kind == HQ_RES_SUM) {
        if (strcmp(r->name, "mem") == 0) {
            double mib = (double)r->sum_size / HQ_AMOUNT_ONE;
            if (mib < 512.0)
                hq_buf_printf(b, "%.2f MiB", mib);
            else
                hq_buf_printf(b, "%.2f GiB", mib / 1024.0);
        } else {
            char *a = hq_amount_format(r->sum_size);
            hq_buf_printf(b, "%s", a);
            free(a);
        }
        return;
    }
    if (r->kind == HQ_RES_GROUPS && r->n_groups > 1) {
        uint32_t *sizes = hq_malloc(r->n_groups * sizeof *sizes);
        for (uint32_t g = 0; g < r->n_groups; g++)
            sizes[g] = r->groups[g].n;
        qsort(sizes, r->n_groups, sizeof *sizes, s_cmp_u32);
        uint32_t i = 0;
        bool first = true;
        while (i < r->n_groups) {
            uint32_t j = i;
            while (j < r->n_groups && sizes[j] == sizes[i])
                j++;
            hq_buf_printf(b, "%s%ux%u", first ? "" : " ", j - i, sizes[i]);
            first = false;
            i = j;
        }
        free(sizes);
        return;
    }
    hq_buf_printf(b, "%lld", (long long)hq_wres_capacity(r));
}

char *hq_wres_summary(const hq_wres_list_t *l, bool multiline)
{
    return hq_wres_summary_ex(l, multiline, NULL);
}

char *hq_wres_summary_ex(const hq_wres_list_t *l, bool multiline, const bool *coupled)
{
    hq_buf_t b = {0};
    hq_buf_append(&b, "", 0);
    for (uint32_t i = 0; i < l->n; i++) {
        if (i)
            hq_buf_append(&b, multiline ? "\n" : "; ", multiline ? 1 : 2);
        hq_buf_printf(&b, "%s%s", l->res[i].name ? l->res[i].name : "", multiline ? ": " : " ");
        s_summary_value(&b, &l->res[i]);
        if (coupled && coupled[i])
            hq_buf_append(&b, " [coupled]", 10);
    }
    return b.data;
}

static void s_full_group(hq_buf_t *b, const hq_label_group_t *g)
{
    hq_buf_append(b, "[", 1);
    for (uint32_t i = 0; i < g->n; i++)
        hq_buf_printf(b, "%s%s", i ? "," : "", g->labels[i]);
    hq_buf_append(b, "]", 1);
}

char *hq_wres_full(const hq_wres_t *r)
{
    hq_buf_t b = {0};
    hq_buf_printf(&b, "%s: ", r->name ? r->name : "");
    switch (r->kind) {
    case HQ_RES_RANGE:
        if (r->range_start == r->range_end)
            hq_buf_printf(&b, "[%llu]", (unsigned long long)r->range_start);
        else
            hq_buf_printf(&b, "range(%llu-%llu)", (unsigned long long)r->range_start,
                          (unsigned long long)r->range_end);
        break;
    case HQ_RES_SUM: {
        char *a = hq_amount_format(r->sum_size);
        hq_buf_printf(&b, "sum(%s)", a);
        free(a);
        break;
    }
    case HQ_RES_GROUPS:
        hq_buf_append(&b, "[", 1);
        for (uint32_t g = 0; g < r->n_groups; g++) {
            if (g)
                hq_buf_append(&b, ",", 1);
            s_full_group(&b, &r->groups[g]);
        }
        hq_buf_append(&b, "]", 1);
        break;
    default:
        if (r->n_groups)
            s_full_group(&b, &r->groups[0]);
        else
            hq_buf_append(&b, "[]", 2);
        break;
    }
    return b.data;
}
