/* Error reporting without side effects: functions return 0/-1 (or NULL) and fill an
 * optional hq_err_t with a human-readable message. A failed call changes nothing. */
#ifndef HQ_ERR_H
#define HQ_ERR_H

#include <stddef.h>

typedef struct hq_err {
    char text[2048]; /* the message, NUL-terminated; multi-line allowed */
} hq_err_t;

/* Formats the message into err (err may be NULL). Always returns -1 so callers can
 * write `return hq_err_set(err, "...")`. */
int hq_err_set(hq_err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends "<prefix>" to an existing message, e.g. wrapping a cause. Returns -1. */
int hq_err_prefix(hq_err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
