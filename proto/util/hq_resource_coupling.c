/* Resource coupling (NUMA affinity between groups of different resources): the
 * groups a resource can be coupled by and parsing of --coupling
 * "R1[g]:R2[h][=W],..." against a worker's resource list. */
#include "hq_resource.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

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

/* One side of a coupling item: resource res, group g. */
static int s_validate_side(const hq_wres_list_t *l, uint32_t res, uint32_t g, hq_err_t *err)
{
    if (res >= l->n)
        return hq_err_set(err, "Invalid resource index %u", res);
    const hq_wres_t *r = &l->res[res];
    uint32_t groups = hq_wres_coupling_groups(r);
    if (groups <= 1)
        return hq_err_set(err, "Resource '%s' has only a single group", r->name);
    if (g >= groups)
        return hq_err_set(err, "Invalid group id %u for resource '%s'", g, r->name);
    return 0;
}

int hq_coupling_validate(const hq_coupling_t *c, uint32_t n, const hq_wres_list_t *l, hq_err_t *err)
{
    for (uint32_t i = 0; i < n; i++)
        if (s_validate_side(l, c[i].resource1_idx, c[i].group1_idx, err) != 0 ||
            s_validate_side(l, c[i].resource2_idx, c[i].group2_idx, err) != 0)
            return -1;
    return 0;
}
