/* Error messages without side effects: a fixed buffer filled printf-style. */
#include "hq_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int hq_err_set(hq_err_t *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof err->text, fmt, ap);
    va_end(ap);
    return -1;
}

int hq_err_prefix(hq_err_t *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char prefix[sizeof err->text];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    size_t plen = strlen(prefix);
    size_t tlen = strnlen(err->text, sizeof err->text - 1);
    if (plen >= sizeof err->text - 1) {
        memcpy(err->text, prefix, sizeof err->text - 1);
        err->text[sizeof err->text - 1] = '\0';
        return -1;
    }
    if (plen + tlen > sizeof err->text - 1)
        tlen = sizeof err->text - 1 - plen;
    memmove(err->text + plen, err->text, tlen);
    memcpy(err->text, prefix, plen);
    err->text[plen + tlen] = '\0';
    return -1;
}
