/* ID range lists (cli/REFERENCE.md §1.2): parsing "1,3-5,0-9:3", membership, canonical
 * printing, merged printing of id sets, and the last|all|ranges selectors. */
#include "hq_idrange.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

static bool s_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Trims [*b, *e) in place. */
static void s_trim(const char **b, const char **e)
{
    while (*b < *e && s_space(**b))
        (*b)++;
    while (*e > *b && s_space((*e)[-1]))
        (*e)--;
}

/* A u32 with '_' allowed after the first digit. 0 on success, -1 bad, -2 too big. */
static int s_number(const char *b, const char *e, uint32_t *out)
{
    s_trim(&b, &e);
    if (b == e || *b < '0' || *b > '9')
        return -1;
    uint64_t v = 0;
    for (const char *p = b; p < e; p++) {
        if (*p == '_')
            continue;
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > UINT32_MAX)
            return -2;
    }
    *out = (uint32_t)v;
    return 0;
}

static int s_number_err(int rc, const char *b, const char *e, hq_err_t *err)
{
    s_trim(&b, &e);
    int n = (int)(e - b > 100 ? 100 : e - b);
    if (rc == -2)
        return hq_err_set(err, "Number '%.*s' is out of range (maximum is %u)", n, b, UINT32_MAX);
    return hq_err_set(err, "Invalid number '%.*s'", n, b);
}

static int s_item(const char *b, const char *e, hq_range_t *r, hq_err_t *err)
{
    s_trim(&b, &e);
    if (b == e)
        return hq_err_set(err, "Invalid range");
    const char *dash = memchr(b, '-', (size_t)(e - b));
    const char *colon = memchr(b, ':', (size_t)(e - b));
    int rc;
    if (!dash) {
        if (colon)
            return hq_err_set(err, "Invalid range");
        if ((rc = s_number(b, e, &r->start)) != 0)
            return s_number_err(rc, b, e, err);
        r->end = r->start;
        r->step = 1;
        return 0;
    }
    if (colon && colon < dash)
        return hq_err_set(err, "Invalid range");
    const char *end_stop = colon ? colon : e;
    if ((rc = s_number(b, dash, &r->start)) != 0)
        return s_number_err(rc, b, dash, err);
    if ((rc = s_number(dash + 1, end_stop, &r->end)) != 0)
        return s_number_err(rc, dash + 1, end_stop, err);
    r->step = 1;
    if (colon && (rc = s_number(colon + 1, e, &r->step)) != 0)
        return s_number_err(rc, colon + 1, e, err);
    if (r->end < r->start || r->step == 0)
        return hq_err_set(err, "Invalid range");
    if (colon && r->step > r->end - r->start)
        return hq_err_set(err, "Invalid range");
    return 0;
}

static int s_cmp_start(const void *a, const void *b)
{
    const hq_range_t *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

int hq_rangelist_parse(const char *s, hq_rangelist_t *out, hq_err_t *err)
{
    uint32_t cap = 0, n = 0;
    hq_range_t *ranges = NULL;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *e = comma ? comma : p + strlen(p);
        hq_range_t r;
        if (s_item(p, e, &r, err) != 0) {
            free(ranges);
            return -1;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            ranges = hq_realloc(ranges, cap * sizeof *ranges);
        }
        ranges[n++] = r;
        if (!comma)
            break;
        p = comma + 1;
    }
    hq_range_t *sorted = hq_malloc(n * sizeof *sorted);
    memcpy(sorted, ranges, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, s_cmp_start);
    for (uint32_t i = 1; i < n; i++) {
        if (sorted[i].start <= sorted[i - 1].end) {
            free(sorted);
            free(ranges);
            return hq_err_set(err, "Ranges overlap");
        }
    }
    free(sorted);
    out->n = n;
    out->ranges = ranges;
    return 0;
}

void hq_rangelist_clear(hq_rangelist_t *rl)
{
    if (!rl)
        return;
    free(rl->ranges);
    rl->ranges = NULL;
    rl->n = 0;
}

uint64_t hq_rangelist_count(const hq_rangelist_t *rl)
{
    uint64_t total = 0;
    for (uint32_t i = 0; i < rl->n; i++)
        total += (uint64_t)(rl->ranges[i].end - rl->ranges[i].start) / rl->ranges[i].step + 1;
    return total;
}

bool hq_rangelist_contains(const hq_rangelist_t *rl, uint32_t id)
{
    for (uint32_t i = 0; i < rl->n; i++) {
        const hq_range_t *r = &rl->ranges[i];
        if (id >= r->start && id <= r->end && (id - r->start) % r->step == 0)
            return true;
    }
    return false;
}

char *hq_rangelist_format(const hq_rangelist_t *rl)
{
    hq_buf_t b = {0};
    hq_buf_append(&b, "", 0);
    for (uint32_t i = 0; i < rl->n; i++) {
        const hq_range_t *r = &rl->ranges[i];
        const char *sep = i ? "," : "";
        if (r->start == r->end)
            hq_buf_printf(&b, "%s%u", sep, r->start);
        else if (r->step == 1)
            hq_buf_printf(&b, "%s%u-%u", sep, r->start, r->end);
        else
            hq_buf_printf(&b, "%s%u-%u:%u", sep, r->start, r->end, r->step);
    }
    return b.data;
}

char *hq_idset_format(const uint32_t *ids, size_t n)
{
    hq_buf_t b = {0};
    hq_buf_append(&b, "", 0);
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j + 1 < n && ids[j + 1] == ids[j] + 1)
            j++;
        const char *sep = i ? "," : "";
        if (j == i)
            hq_buf_printf(&b, "%s%u", sep, ids[i]);
        else
            hq_buf_printf(&b, "%s%u-%u", sep, ids[i], ids[j]);
        i = j + 1;
    }
    return b.data;
}

int hq_selector_parse(const char *s, bool allow_all, hq_selector_t *out, hq_err_t *err)
{
    const char *b = s, *e = s + strlen(s);
    s_trim(&b, &e);
    memset(out, 0, sizeof *out);
    if ((size_t)(e - b) == 4 && strncmp(b, "last", 4) == 0) {
        out->kind = HQ_SEL_LAST;
        return 0;
    }
    if (allow_all && (size_t)(e - b) == 3 && strncmp(b, "all", 3) == 0) {
        out->kind = HQ_SEL_ALL;
        return 0;
    }
    out->kind = HQ_SEL_IDS;
    return hq_rangelist_parse(s, &out->ids, err);
}

void hq_selector_clear(hq_selector_t *sel)
{
    if (sel)
        hq_rangelist_clear(&sel->ids);
}
