/* Logging in the format of cli/REFERENCE.md §0.1, to stderr. Also silences CZMQ's own log
 * lines and signal handlers so they never leak into hq's output. */
#ifndef HQ_LOG_H
#define HQ_LOG_H

#include <stdbool.h>

enum hq_log_level { HQ_LOG_ERROR = 0, HQ_LOG_WARN, HQ_LOG_INFO, HQ_LOG_DEBUG, HQ_LOG_TRACE };

/* Sets the level (INFO, or DEBUG when debug is true or HQ_DEBUG is set; RUST_LOG
 * overrides), chooses the plain or bracketed format, and calls
 * zsys_set_logstream(NULL-equivalent)/zsys_handler_set(NULL) so CZMQ stays quiet.
 * Safe to call more than once. */
void hq_log_init(bool debug);

/* True when messages of this level are printed. */
bool hq_log_enabled(enum hq_log_level level);

/* Prints one log line: "<RFC3339 UTC> <LEVEL> <message>" or, in debug format,
 * "[<ts with ms> <LEVEL padded to 5> <module>] <message>". Thread-safe. */
void hq_log(enum hq_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifndef HQ_LOG_MODULE
#define HQ_LOG_MODULE "hq"
#endif
#define hq_error(...) hq_log(HQ_LOG_ERROR, HQ_LOG_MODULE, __VA_ARGS__)
#define hq_warn(...) hq_log(HQ_LOG_WARN, HQ_LOG_MODULE, __VA_ARGS__)
#define hq_info(...) hq_log(HQ_LOG_INFO, HQ_LOG_MODULE, __VA_ARGS__)
#define hq_debug(...) hq_log(HQ_LOG_DEBUG, HQ_LOG_MODULE, __VA_ARGS__)

#endif
