/* Durations (cli/REFERENCE.md §1.1): "[[HH:]MM:]SS" or human text ("1h 30m", "4.2s") into
 * nanoseconds, and the human printing used in tables. */
#include "hq_duration.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

#define S_PREFIX                                                                                   \
    "Could not parse PBS walltime. Use either `HH:MM:SS` or humantime format (2hours): "
#define S_YEAR_SECS 31557600ULL
#define S_MONTH_SECS 2630016ULL

typedef struct s_unit {
    const char *name; /* unit spelling */
    uint64_t ns;      /* nanoseconds per unit */
} s_unit_t;

static const s_unit_t s_units[] = {
    {"ns", 1ULL},
    {"nsec", 1ULL},
    {"nanos", 1ULL},
    {"us", 1000ULL},
    {"usec", 1000ULL},
    {"\xc2\xb5s", 1000ULL}, /* µs */
    {"ms", 1000000ULL},
    {"msec", 1000000ULL},
    {"millis", 1000000ULL},
    {"s", HQ_NS_PER_SEC},
    {"sec", HQ_NS_PER_SEC},
    {"secs", HQ_NS_PER_SEC},
    {"second", HQ_NS_PER_SEC},
    {"seconds", HQ_NS_PER_SEC},
    {"m", 60ULL * HQ_NS_PER_SEC},
    {"min", 60ULL * HQ_NS_PER_SEC},
    {"mins", 60ULL * HQ_NS_PER_SEC},
    {"minute", 60ULL * HQ_NS_PER_SEC},
    {"minutes", 60ULL * HQ_NS_PER_SEC},
    {"h", 3600ULL * HQ_NS_PER_SEC},
    {"hr", 3600ULL * HQ_NS_PER_SEC},
    {"hrs", 3600ULL * HQ_NS_PER_SEC},
    {"hour", 3600ULL * HQ_NS_PER_SEC},
    {"hours", 3600ULL * HQ_NS_PER_SEC},
    {"d", 86400ULL * HQ_NS_PER_SEC},
    {"day", 86400ULL * HQ_NS_PER_SEC},
    {"days", 86400ULL * HQ_NS_PER_SEC},
    {"w", 604800ULL * HQ_NS_PER_SEC},
    {"wk", 604800ULL * HQ_NS_PER_SEC},
    {"wks", 604800ULL * HQ_NS_PER_SEC},
    {"week", 604800ULL * HQ_NS_PER_SEC},
    {"weeks", 604800ULL * HQ_NS_PER_SEC},
    {"M", S_MONTH_SECS *HQ_NS_PER_SEC},
    {"month", S_MONTH_SECS *HQ_NS_PER_SEC},
    {"months", S_MONTH_SECS *HQ_NS_PER_SEC},
    {"y", S_YEAR_SECS *HQ_NS_PER_SEC},
    {"yr", S_YEAR_SECS *HQ_NS_PER_SEC},
    {"yrs", S_YEAR_SECS *HQ_NS_PER_SEC},
    {"year", S_YEAR_SECS *HQ_NS_PER_SEC},
    {"years", S_YEAR_SECS *HQ_NS_PER_SEC},
};

static bool s_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* One "[[HH:]MM:]SS" component: a digit, then digits or '_'. */
static int s_hms_part(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || !s_digit(s[0]))
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '_')
            continue;
        if (!s_digit(s[i]))
            return -1;
        if (__builtin_mul_overflow(v, 10, &v) ||
            __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v))
            return -1;
    }
    *out = v;
    return 0;
}

static int s_parse_hms(const char *s, uint64_t *ns_out)
{
    uint64_t parts[3];
    int n = 0;
    const char *p = s;
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        if (n == 3 || s_hms_part(p, len, &parts[n]) != 0)
            return -1;
        n++;
        if (!colon)
            break;
        p = colon + 1;
    }
    uint64_t secs = 0;
    for (int i = 0; i < n; i++) {
        if (__builtin_mul_overflow(secs, 60, &secs) ||
            __builtin_add_overflow(secs, parts[i], &secs))
            return -1;
    }
    if (__builtin_mul_overflow(secs, HQ_NS_PER_SEC, ns_out))
        return -1;
    return 0;
}

static bool s_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int s_parse_human(const char *s, uint64_t *ns_out, hq_err_t *err)
{
    const char *p = s;
    while (s_space(*p))
        p++;
    if (!*p)
        return hq_err_set(err, "value was empty");
    unsigned __int128 total = 0;
    while (*p) {
        if (!s_digit(*p))
            return hq_err_set(err, "expected number at %zu", (size_t)(p - s));
        unsigned __int128 whole = 0;
        while (s_digit(*p)) {
            whole = whole * 10 + (unsigned)(*p - '0');
            if (whole > UINT64_MAX)
                return hq_err_set(err, "number is too large");
            p++;
        }
        uint64_t frac = 0, frac_scale = 1;
        bool decimal = false;
        if (*p == '.') {
            decimal = true;
            p++;
            if (!s_digit(*p))
                return hq_err_set(err, "expected number at %zu", (size_t)(p - s));
            while (s_digit(*p)) {
                if (frac_scale < 1000000000ULL) {
                    frac = frac * 10 + (uint64_t)(*p - '0');
                    frac_scale *= 10;
                }
                p++;
            }
        }
        while (s_space(*p))
            p++;
        const char *u = p;
        while (*p && !s_space(*p) && !s_digit(*p))
            p++;
        size_t ulen = (size_t)(p - u);
        if (ulen == 0)
            return hq_err_set(err, "time unit needed, for example 1sec or 1ms");
        const s_unit_t *unit = NULL;
        for (size_t i = 0; i < sizeof s_units / sizeof s_units[0]; i++)
            if (strlen(s_units[i].name) == ulen && memcmp(s_units[i].name, u, ulen) == 0)
                unit = &s_units[i];
        if (!unit)
            return hq_err_set(err,
                              "unknown time unit \"%.*s\", supported units: ns, us, ms, sec, min, "
                              "hours, days, weeks, months, years (and few variations)",
                              (int)(ulen > 64 ? 64 : ulen), u);
        if (decimal && unit->ns == 1)
            return hq_err_set(err, "decimal numbers are not supported with nanoseconds");
        total += whole * unit->ns + (unsigned __int128)frac * unit->ns / frac_scale;
        if (total > UINT64_MAX)
            return hq_err_set(err, "number is too large");
        while (s_space(*p))
            p++;
    }
    *ns_out = (uint64_t)total;
    return 0;
}

int hq_duration_parse(const char *s, uint64_t *ns_out, hq_err_t *err)
{
    uint64_t ns;
    if (s_parse_hms(s, &ns) == 0) {
        *ns_out = ns;
        return 0;
    }
    hq_err_t detail;
    if (s_parse_human(s, &ns, &detail) != 0)
        return hq_err_set(err, S_PREFIX "%s", detail.text);
    *ns_out = ns;
    return 0;
}

int hq_duration_parse_human(const char *s, uint64_t *ns_out, hq_err_t *err)
{
    uint64_t ns;
    if (s_parse_human(s, &ns, err) != 0)
        return -1;
    *ns_out = ns;
    return 0;
}

static void s_item(hq_buf_t *b, uint64_t n, const char *unit, bool plural)
{
    if (n == 0)
        return;
    hq_buf_printf(b, "%s%llu%s%s", b->len ? " " : "", (unsigned long long)n, unit,
                  plural && n > 1 ? "s" : "");
}

char *hq_duration_format(uint64_t ns)
{
    if (ns == 0)
        return hq_strdup("0s");
    uint64_t secs = ns / HQ_NS_PER_SEC;
    uint64_t nanos = ns % HQ_NS_PER_SEC;
    uint64_t years = secs / S_YEAR_SECS;
    uint64_t ydays = secs % S_YEAR_SECS;
    uint64_t months = ydays / S_MONTH_SECS;
    uint64_t mdays = ydays % S_MONTH_SECS;
    uint64_t days = mdays / 86400;
    uint64_t day_secs = mdays % 86400;
    hq_buf_t b = {0};
    s_item(&b, years, "year", true);
    s_item(&b, months, "month", true);
    s_item(&b, days, "day", true);
    s_item(&b, day_secs / 3600, "h", false);
    s_item(&b, day_secs % 3600 / 60, "m", false);
    s_item(&b, day_secs % 60, "s", false);
    s_item(&b, nanos / 1000000, "ms", false);
    s_item(&b, nanos / 1000 % 1000, "us", false);
    s_item(&b, nanos % 1000, "ns", false);
    return b.data;
}

char *hq_duration_format_makespan(int64_t ns)
{
    if (ns < 0)
        return hq_strdup("Invalid duration");
    uint64_t v = (uint64_t)ns;
    if (v >= 3600ULL * HQ_NS_PER_SEC)
        v -= v % (60ULL * HQ_NS_PER_SEC);
    else if (v >= 60ULL * HQ_NS_PER_SEC)
        v -= v % HQ_NS_PER_SEC;
    else
        v -= v % HQ_NS_PER_MS;
    return hq_duration_format(v);
}

double hq_duration_seconds(uint64_t ns)
{
    return (double)(ns / HQ_NS_PER_SEC) + (double)(ns % HQ_NS_PER_SEC) / 1e9;
}
