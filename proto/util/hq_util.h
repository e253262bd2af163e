/* Small helpers used everywhere: time, strings, dynamic buffers. */
#ifndef HQ_UTIL_H
#define HQ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in ns (for timeouts and liveness). */
uint64_t hq_mono_ns(void);
/* CLOCK_REALTIME in ns since the epoch (for display and journal timestamps). */
uint64_t hq_wall_ns(void);

/* RFC3339 UTC "2026-01-02T03:04:05Z" (frac_digits 0) or with 3/6/9 digits. Caller frees. */
char *hq_time_rfc3339(uint64_t wall_ns, int frac_digits);
/* "YYYY-MM-DD HH:MM:SS UTC" rounded to the nearest second. Caller frees. */
char *hq_time_utc_date(uint64_t wall_ns);
/* Local "DD.MM.YYYY HH:MM:SS". Caller frees. */
char *hq_time_local(uint64_t wall_ns);

/* malloc/strdup that abort on out-of-memory (the only abort allowed). */
void *hq_malloc(size_t n);
void *hq_calloc(size_t n, size_t size);
void *hq_realloc(void *p, size_t n);
char *hq_strdup(const char *s);
char *hq_strndup(const char *s, size_t n);
char *hq_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Growable byte buffer. */
typedef struct hq_buf {
    char *data; /* owned, always NUL-terminated when len < cap */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
} hq_buf_t;
void hq_buf_append(hq_buf_t *b, const void *data, size_t n);
void hq_buf_printf(hq_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void hq_buf_free(hq_buf_t *b);

/* Bytes as text: invalid UTF-8 (e.g. a character cut by a truncation) becomes U+FFFD,
 * as HyperQueue's lossy conversion does; NUL bytes are dropped. Caller frees. */
char *hq_utf8_lossy(const char *data, size_t len);
/* Reads a whole file (bounded by max bytes). Returns 0/-1 with errno set. */
int hq_read_file(const char *path, size_t max, char **data, size_t *len);

/* Local hostname. Caller frees. */
char *hq_hostname(void);

/* The path hq was invoked as (argv[0]), made absolute without resolving links: a
 * relative path with a '/' is joined to the working directory, a bare name is looked
 * up in PATH. Set once by main; hq_self_path() returns "hq" when unset. */
void hq_set_self_path(const char *argv0);
const char *hq_self_path(void);

#endif
