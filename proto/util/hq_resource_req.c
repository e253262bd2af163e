/* Task resource requests (cli/REFERENCE.md §1.3): parsing --cpus / --resource
 * amounts with their policy, freeing them, and the display form of a task's
 * variants in tables. */
#include "hq_resource.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_resource_priv.h"
#include "hq_util.h"

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
    if (!hq_res_valid_name(name))
        return hq_err_set(err, "Invalid resource name '%s'", name);
    char *v = hq_res_trimmed(value, value + strlen(value));
    hq_rreq_t r;
    memset(&r, 0, sizeof r);
    int rc = 0;
    if (strcmp(v, "all") == 0) {
        r.all = true;
    } else {
        /* amount: digits, '_' and '.'; the rest (after optional spaces) is the policy. */
        size_t n = strspn(v, "0123456789_.");
        char *amount_txt = hq_strndup(v, n);
        const char *pol = hq_res_skip(v + n);
        rc = hq_res_amount(amount_txt, &r.amount);
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
    char *name = hq_res_trimmed(arg, eq);
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
