/* Resource syntax (CLI.md §1.3, §1.4): worker resource definitions, task resource
 * requests, and their summary, full and display forms. Amounts are fixed-point
 * (HQ_AMOUNT_ONE = 1 unit). */
#include "hq_resource.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

#define S_MAX_LABELS 100000
#define S_CPUS_SUM_ERROR "Resource kind `sum` cannot be used with CPUs. CPUs must have identity"

static bool s_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static const char *s_skip(const char *p)
{
    while (s_space(*p))
        p++;
    return p;
}

/* Copies s without surrounding whitespace. */
static char *s_trimmed(const char *b, const char *e)
{
    while (b < e && s_space(*b))
        b++;
    while (e > b && s_space(e[-1]))
        e--;
    return hq_strndup(b, (size_t)(e - b));
}

/* Resource names: an ASCII letter, then ASCII letters, digits or '/'. */
static bool s_valid_name(const char *n)
{
    if (!isalpha((unsigned char)n[0]) || (unsigned char)n[0] > 127)
        return false;
    for (const char *p = n + 1; *p; p++)
        if (!(isalnum((unsigned char)*p) && (unsigned char)*p < 128) && *p != '/')
            return false;
    return true;
}

/* Unsigned integer with '_' allowed after the first digit; the whole string. */
static int s_u64(const char *s, uint64_t *out)
{
    if (!isdigit((unsigned char)*s))
        return -1;
    uint64_t v = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '_')
            continue;
        if (!isdigit((unsigned char)*p))
            return -1;
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v))
            return -1;
    }
    *out = v;
    return 0;
}

/* Amount: integer or decimal with at most 4 fractional digits, into fixed point.
 * Returns 0, -1 (syntax) or -2 (precision exceeded). */
static int s_amount(const char *s, hq_amount_t *out)
{
    const char *dot = strchr(s, '.');
    char *whole_txt = dot ? hq_strndup(s, (size_t)(dot - s)) : hq_strdup(s);
    uint64_t whole;
    int rc = s_u64(whole_txt, &whole);
    free(whole_txt);
    if (rc != 0 || whole > (uint64_t)(INT64_MAX / HQ_AMOUNT_ONE) - 1)
        return -1;
    int64_t frac = 0;
    if (dot) {
        const char *f = dot + 1;
        size_t n = strlen(f);
        if (n == 0)
            return -1;
        for (size_t i = 0; i < n; i++)
            if (!isdigit((unsigned char)f[i]))
                return -1;
        /* Trailing zeros beyond the fourth digit do not add precision. */
        while (n > 4 && f[n - 1] == '0')
            n--;
        if (n > 4)
            return -2;
        int64_t scale = HQ_AMOUNT_ONE;
        for (size_t i = 0; i < n; i++) {
            scale /= 10;
            frac += (f[i] - '0') * scale;
        }
    }
    *out = (hq_amount_t)whole * HQ_AMOUNT_ONE + frac;
    return 0;
}

char *hq_amount_format(hq_amount_t a)
{
    bool neg = a < 0;
    uint64_t v = neg ? (uint64_t)(-(a + 1)) + 1 : (uint64_t)a;
    uint64_t whole = v / HQ_AMOUNT_ONE, frac = v % HQ_AMOUNT_ONE;
    if (frac == 0)
        return hq_asprintf("%s%llu", neg ? "-" : "", (unsigned long long)whole);
    char digits[8];
    snprintf(digits, sizeof digits, "%04llu", (unsigned long long)frac);
    size_t n = strlen(digits);
    while (n > 0 && digits[n - 1] == '0')
        digits[--n] = '\0';
    return hq_asprintf("%s%llu.%s", neg ? "-" : "", (unsigned long long)whole, digits);
}

const char *hq_policy_name(enum hq_policy p)
{
    switch (p) {
    case HQ_POLICY_FORCE_COMPACT:
        return "compact!";
    case HQ_POLICY_TIGHT:
        return "tight";
    case HQ_POLICY_FORCE_TIGHT:
        return "tight!";
    case HQ_POLICY_SCATTER:
        return "scatter";
    default:
        return "compact";
    }
}

/* ---- worker definitions ---- */

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
    const char *p = s_skip(*pp);
    if (*p != '[')
        return hq_err_set(err, "Expected '['");
    p = s_skip(p + 1);
    if (*p == ']')
        return hq_err_set(err, "List has to contain at least one item");
    for (;;) {
        p = s_skip(p);
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
            while (*p && !s_space(*p) && !strchr("[],\"", *p))
                p++;
            if (p == b)
                return hq_err_set(err, "Expected a label");
            s_group_push(g, hq_strndup(b, (size_t)(p - b)));
        }
        if (g->n > S_MAX_LABELS)
            return hq_err_set(err, "Too many labels");
        p = s_skip(p);
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
    const char *p = s_skip(def + 1);
    if (*p == '[') {
        out->kind = HQ_RES_GROUPS;
        p = def + 1;
        for (;;) {
            out->groups = hq_realloc(out->groups, (out->n_groups + 1) * sizeof *out->groups);
            memset(&out->groups[out->n_groups], 0, sizeof *out->groups);
            out->n_groups++;
            if (s_parse_label_list(&p, &out->groups[out->n_groups - 1], err) != 0)
                return -1;
            p = s_skip(p);
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
    if (*s_skip(p))
        return hq_err_set(err, "Unexpected text after the list: '%s'", s_skip(p));
    if (!s_labels_unique(out))
        return hq_err_set(err, "List items have to be unique");
    return 0;
}

/* "range(A-B)". */
static int s_parse_range(const char *def, hq_wres_t *out, hq_err_t *err)
{
    const char *open = def + strlen("range");
    open = s_skip(open);
    size_t len = strlen(open);
    while (len && s_space(open[len - 1]))
        len--;
    if (*open != '(' || len < 2 || open[len - 1] != ')')
        return hq_err_set(err, "Invalid range definition '%s'", def);
    const char *dash = memchr(open, '-', len);
    if (!dash)
        return hq_err_set(err, "Invalid range definition '%s'", def);
    char *a = s_trimmed(open + 1, dash);
    char *b = s_trimmed(dash + 1, open + len - 1);
    uint64_t start, end;
    int rc = (s_u64(a, &start) == 0 && s_u64(b, &end) == 0) ? 0 : -1;
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
    const char *open = s_skip(def + strlen("sum"));
    size_t len = strlen(open);
    while (len && s_space(open[len - 1]))
        len--;
    if (*open != '(' || len < 2 || open[len - 1] != ')')
        return hq_err_set(err, "Invalid sum definition '%s'", def);
    char *v = s_trimmed(open + 1, open + len - 1);
    hq_amount_t amount;
    int rc = s_amount(v, &amount);
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
    char *a_txt = s_trimmed(def, x);
    char *b_txt = s_trimmed(x + 1, x + strlen(x));
    uint64_t a, b;
    int rc = (s_u64(a_txt, &a) == 0 && s_u64(b_txt, &b) == 0) ? 0 : -1;
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
        if (p != x && !isdigit((unsigned char)*p) && *p != '_' && !s_space(*p))
            return false;
    return true;
}

static int s_parse_def(const char *name, const char *def_in, bool cpus, hq_wres_t *out,
                       hq_err_t *err)
{
    hq_wres_t r;
    memset(&r, 0, sizeof r);
    char *def = s_trimmed(def_in, def_in + strlen(def_in));
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
    else if (cpus && s_u64(def, &n) == 0) {
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
    char *name = s_trimmed(arg, eq);
    if (!s_valid_name(name)) {
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
    return hq_wres_summary_ex(l, multiline, false);
}

char *hq_wres_summary_ex(const hq_wres_list_t *l, bool multiline, bool coupled)
{
    hq_buf_t b = {0};
    hq_buf_append(&b, "", 0);
    for (uint32_t i = 0; i < l->n; i++) {
        if (i)
            hq_buf_append(&b, multiline ? "\n" : "; ", multiline ? 1 : 2);
        hq_buf_printf(&b, "%s%s", l->res[i].name ? l->res[i].name : "", multiline ? ": " : " ");
        s_summary_value(&b, &l->res[i]);
    }
    if (coupled)
        hq_buf_append(&b, " [coupled]", 10);
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

/* ---- task requests ---- */

static int s_policy(const char *s, enum hq_policy *out)
{
    static const struct {
        const char *name;
        enum hq_policy p;
    } names[] = {
        {"compact", HQ_POLICY_COMPACT}, {"compact!", HQ_POLICY_FORCE_COMPACT},
        {"tight", HQ_POLICY_TIGHT},     {"tight!", HQ_POLICY_FORCE_TIGHT},
        {"scatter", HQ_POLICY_SCATTER},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) {
            *out = names[i].p;
            return 0;
        }
    return -1;
}

int hq_rreq_parse(const char *name, const char *value, hq_rreq_t *out, hq_err_t *err)
{
    if (!s_valid_name(name))
        return hq_err_set(err, "Invalid resource name '%s'", name);
    char *v = s_trimmed(value, value + strlen(value));
    hq_rreq_t r;
    memset(&r, 0, sizeof r);
    int rc = 0;
    if (strcmp(v, "all") == 0) {
        r.all = true;
    } else {
        /* amount: digits, '_' and '.'; the rest (after optional spaces) is the policy. */
        size_t n = strspn(v, "0123456789_.");
        char *amount_txt = hq_strndup(v, n);
        const char *pol = s_skip(v + n);
        rc = s_amount(amount_txt, &r.amount);
        free(amount_txt);
        if (rc == -2)
            rc = hq_err_set(err, "Resource precision exceeded");
        else if (rc != 0)
            rc = hq_err_set(err, "Invalid resource amount '%s'", v);
        else if (r.amount == 0)
            rc = hq_err_set(err, "Zero resources cannot be requested");
        else if (*pol && s_policy(pol, &r.policy) != 0)
            rc = hq_err_set(
                err,
                "Invalid resource policy '%s' (expected compact, compact!, tight, tight! "
                "or scatter)",
                pol);
    }
    free(v);
    if (rc != 0)
        return -1;
    r.name = hq_strdup(name);
    *out = r;
    return 0;
}

int hq_rreq_parse_named(const char *arg, hq_rreq_t *out, hq_err_t *err)
{
    const char *eq = strchr(arg, '=');
    if (!eq)
        return hq_err_set(err, "Missing '=' in resource request '%s' (expected NAME=VALUE)", arg);
    char *name = s_trimmed(arg, eq);
    int rc = hq_rreq_parse(name, eq + 1, out, err);
    free(name);
    return rc;
}

void hq_rreq_clear(hq_rreq_t *r)
{
    if (!r)
        return;
    free(r->name);
    memset(r, 0, sizeof *r);
}

void hq_rvariant_clear(hq_rvariant_t *v)
{
    if (!v)
        return;
    for (uint32_t i = 0; i < v->n_entries; i++)
        hq_rreq_clear(&v->entries[i]);
    free(v->entries);
    memset(v, 0, sizeof *v);
}

char *hq_rreq_format(const hq_rreq_t *r)
{
    if (r->all)
        return hq_strdup("all");
    char *a = hq_amount_format(r->amount);
    char *s = hq_asprintf("%s %s", a, hq_policy_name(r->policy));
    free(a);
    return s;
}

static int s_cmp_entry(const void *a, const void *b)
{
    const hq_rreq_t *x = *(const hq_rreq_t *const *)a, *y = *(const hq_rreq_t *const *)b;
    return strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

static void s_variant_display(hq_buf_t *b, const hq_rvariant_t *v)
{
    bool first = true;
    if (v->n_nodes > 0) {
        hq_buf_printf(b, "nodes: %u", v->n_nodes);
        first = false;
    } else if (v->n_entries) {
        const hq_rreq_t **sorted = hq_malloc(v->n_entries * sizeof *sorted);
        for (uint32_t i = 0; i < v->n_entries; i++)
            sorted[i] = &v->entries[i];
        qsort(sorted, v->n_entries, sizeof *sorted, s_cmp_entry);
        for (uint32_t i = 0; i < v->n_entries; i++) {
            char *f = hq_rreq_format(sorted[i]);
            hq_buf_printf(b, "%s%s: %s", first ? "" : "\n", sorted[i]->name ? sorted[i]->name : "",
                          f);
            first = false;
            free(f);
        }
        free(sorted);
    }
    if (v->weight != HQ_AMOUNT_ONE) {
        char *w = hq_amount_format((hq_amount_t)v->weight);
        hq_buf_printf(b, "%s[weight: %s]", first ? "" : "\n", w);
        free(w);
    }
}

char *hq_rvariants_display(const hq_rvariant_t *v, uint32_t n)
{
    hq_buf_t b = {0};
    hq_buf_append(&b, "", 0);
    if (n == 1) {
        s_variant_display(&b, &v[0]);
        return b.data;
    }
    for (uint32_t i = 0; i < n; i++) {
        hq_buf_printf(&b, "%s# Variant %u\n", i ? "\n\n" : "", i + 1);
        s_variant_display(&b, &v[i]);
    }
    return b.data;
}

char *hq_resource_env_name(const char *name)
{
    char *s = hq_strdup(name);
    for (char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) && (unsigned char)*p < 128))
            *p = '_';
    return s;
}

/* ---- coupling ---- */

uint32_t hq_wres_coupling_groups(const hq_wres_t *r)
{
    switch (r->kind) {
    case HQ_RES_LIST:
    case HQ_RES_GROUPS:
        return r->n_groups;
    case HQ_RES_RANGE:
        return 1;
    default:
        return 0;
    }
}

/* Trims ASCII whitespace of [*s, *e). */
static void s_trim(const char **s, const char **e)
{
    while (*s < *e && isspace((unsigned char)**s))
        (*s)++;
    while (*e > *s && isspace((unsigned char)(*e)[-1]))
        (*e)--;
}

/* Parses an unsigned decimal [s, e) up to max. */
static int s_parse_bounded(const char *s, const char *e, uint32_t max, uint32_t *out)
{
    if (s == e)
        return -1;
    uint32_t v = 0;
    for (const char *p = s; p < e; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (uint32_t)(*p - '0');
        if (v > max)
            return -1;
    }
    *out = v;
    return 0;
}

/* "name[g]" in [s, e) -> index of name in l and group g. */
static int s_coupling_side(const char *s, const char *e, const hq_wres_list_t *l, uint32_t *res,
                           uint32_t *group, hq_err_t *err)
{
    s_trim(&s, &e);
    const char *open = memchr(s, '[', (size_t)(e - s));
    if (!open)
        return hq_err_set(err, "Missing '['");
    if (e == open + 1 || e[-1] != ']')
        return hq_err_set(err, "Missing ']'");
    const char *ns = s, *ne = open;
    s_trim(&ns, &ne);
    const char *gs = open + 1, *ge = e - 1;
    s_trim(&gs, &ge);
    if (s_parse_bounded(gs, ge, 255, group) != 0)
        return hq_err_set(err, "Invalid group index: %.*s", (int)(ge - gs), gs);
    for (uint32_t i = 0; i < l->n; i++) {
        if (l->res[i].name && strlen(l->res[i].name) == (size_t)(ne - ns) &&
            memcmp(l->res[i].name, ns, (size_t)(ne - ns)) == 0) {
            if (*group >= hq_wres_coupling_groups(&l->res[i]))
                return hq_err_set(err, "Invalid group index: %u", *group);
            *res = i;
            return 0;
        }
    }
    return hq_err_set(err, "Resource not found: %.*s", (int)(ne - ns), ns);
}

int hq_coupling_parse(const char *spec, const hq_wres_list_t *l, hq_coupling_t **out, uint32_t *n,
                      hq_err_t *err)
{
    *out = NULL;
    *n = 0;
    hq_coupling_t *items = NULL;
    uint32_t count = 0;
    const char *p = spec;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *s = p, *e = end;
        s_trim(&s, &e);
        hq_coupling_t c = {.weight = HQ_COUPLING_DEFAULT_WEIGHT};
        const char *eq = memchr(s, '=', (size_t)(e - s));
        if (eq) {
            const char *ws = eq + 1, *we = e;
            s_trim(&ws, &we);
            if (s_parse_bounded(ws, we, HQ_COUPLING_MAX_WEIGHT, &c.weight) != 0) {
                hq_err_set(err, "Invalid weight: %.*s", (int)(we - ws), ws);
                goto fail;
            }
            e = eq;
        }
        const char *colon = memchr(s, ':', (size_t)(e - s));
        if (!colon) {
            hq_err_set(err, "Missing ':'");
            goto fail;
        }
        if (s_coupling_side(s, colon, l, &c.resource1_idx, &c.group1_idx, err) != 0 ||
            s_coupling_side(colon + 1, e, l, &c.resource2_idx, &c.group2_idx, err) != 0)
            goto fail;
        if (c.resource1_idx == c.resource2_idx) {
            hq_err_set(err, "Coupling must be between different resources: %s",
                       l->res[c.resource1_idx].name);
            goto fail;
        }
        items = hq_realloc(items, (count + 1) * sizeof *items);
        items[count++] = c;
        if (!*end)
            break;
        p = end + 1;
    }
    *out = items;
    *n = count;
    return 0;
fail:
    free(items);
    return -1;
}
