/* Resource syntax (cli/REFERENCE.md §1.3, §1.4), the pieces every part shares: the
 * lexical helpers of hq_resource_priv.h (names, integers, fixed-point amounts),
 * amount and policy display, environment names. Worker definitions are in
 * hq_resource_wres.c, task requests in hq_resource_req.c, coupling in
 * hq_resource_coupling.c. */
#include "hq_resource.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_resource_priv.h"
#include "hq_util.h"

bool hq_res_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

const char *hq_res_skip(const char *p)
{
    while (hq_res_space(*p))
        p++;
    return p;
}

/* Copies s without surrounding whitespace. */
char *hq_res_trimmed(const char *b, const char *e)
{
    while (b < e && hq_res_space(*b))
        b++;
    while (e > b && hq_res_space(e[-1]))
        e--;
    return hq_strndup(b, (size_t)(e - b));
}

/* Resource names: an ASCII letter, then ASCII letters, digits or '/'. */
bool hq_res_valid_name(const char *n)
{
    if (!isalpha((unsigned char)n[0]) || (unsigned char)n[0] > 127)
        return false;
    for (const char *p = n + 1; *p; p++)
        if (!(isalnum((unsigned char)*p) && (unsigned char)*p < 128) && *p != '/')
            return false;
    return true;
}

/* Unsigned integer with '_' allowed after the first digit; the whole string. */
int hq_res_u64(const char *s, uint64_t *out)
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
int hq_res_amount(const char *s, hq_amount_t *out)
{
    const char *dot = strchr(s, '.');
    char *whole_txt = dot ? hq_strndup(s, (size_t)(dot - s)) : hq_strdup(s);
    uint64_t whole;
    int rc = hq_res_u64(whole_txt, &whole);
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

char *hq_resource_env_name(const char *name)
{
    char *s = hq_strdup(name);
    for (char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) && (unsigned char)*p < 128))
            *p = '_';
    return s;
}
