/* Logging to stderr in HyperQueue's formats (cli/REFERENCE.md §0.1). The level comes from
 * --debug/HQ_DEBUG and RUST_LOG; CZMQ's own log lines and signal handlers are
 * switched off so nothing but hq's lines reaches stderr. */
#include "hq_log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <czmq.h>

#include "hq_util.h"

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
/* Highest level printed; -1 = nothing ("off"). */
static atomic_int s_max_level = HQ_LOG_INFO;
/* Bracketed debug format. */
static atomic_bool s_debug_format = false;
/* CZMQ's log stream, opened on /dev/null once per process. */
static FILE *s_czmq_sink;

/* Maps a RUST_LOG level word to a level; returns -2 when it is not one. */
static int s_level_word(const char *w, size_t n)
{
    static const struct {
        const char *name;
        int level;
    } words[] = {
        {"off", -1},           {"error", HQ_LOG_ERROR}, {"warn", HQ_LOG_WARN},
        {"info", HQ_LOG_INFO}, {"debug", HQ_LOG_DEBUG}, {"trace", HQ_LOG_TRACE},
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strlen(words[i].name) == n && strncasecmp(words[i].name, w, n) == 0)
            return words[i].level;
    return -2;
}

/* The most verbose level named by any RUST_LOG directive ("info",
 * "hyperqueue=debug,tako=trace"); -2 when none is recognised. */
static int s_rust_log_level(const char *spec)
{
    int best = -2;
    const char *p = spec;
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *word = p;
        size_t wn = n;
        const char *eq = memchr(p, '=', n);
        if (eq) {
            word = eq + 1;
            wn = n - (size_t)(word - p);
        }
        while (wn && (*word == ' ' || *word == '\t')) {
            word++;
            wn--;
        }
        while (wn && (word[wn - 1] == ' ' || word[wn - 1] == '\t'))
            wn--;
        int lvl = s_level_word(word, wn);
        if (lvl > best)
            best = lvl;
        p += n;
        if (*p == ',')
            p++;
    }
    return best;
}

void hq_log_init(bool debug)
{
    /* HQ_DEBUG is a clap boolean flag from the environment: falsey words are off. */
    const char *hq_debug = getenv("HQ_DEBUG");
    if (hq_debug && *hq_debug && strcasecmp(hq_debug, "0") != 0 &&
        strcasecmp(hq_debug, "false") != 0 && strcasecmp(hq_debug, "no") != 0 &&
        strcasecmp(hq_debug, "off") != 0 && strcasecmp(hq_debug, "n") != 0 &&
        strcasecmp(hq_debug, "f") != 0)
        debug = true;
    int level = debug ? HQ_LOG_DEBUG : HQ_LOG_INFO;
    bool bracketed = debug;
    const char *rust_log = getenv("RUST_LOG");
    if (rust_log && *rust_log) {
        int lvl = s_rust_log_level(rust_log);
        if (lvl != -2)
            level = lvl;
        if (strstr(rust_log, "debug"))
            bracketed = true;
    }

    pthread_mutex_lock(&s_lock);
    s_max_level = level;
    s_debug_format = bracketed;
    /* zsys_handler_set(NULL) before anything calls zsys_init keeps CZMQ from
     * installing its SIGINT/SIGTERM handlers; its log lines go to /dev/null. */
    zsys_handler_set(NULL);
    if (!s_czmq_sink)
        s_czmq_sink = fopen("/dev/null", "we");
    if (s_czmq_sink)
        zsys_set_logstream(s_czmq_sink);
    zsys_set_logsystem(false);
    zsys_set_logident("hq");
    pthread_mutex_unlock(&s_lock);
}

bool hq_log_enabled(enum hq_log_level level)
{
    return (int)level <= atomic_load(&s_max_level);
}

static const char *s_level_name(enum hq_log_level level)
{
    switch (level) {
    case HQ_LOG_ERROR:
        return "ERROR";
    case HQ_LOG_WARN:
        return "WARN";
    case HQ_LOG_INFO:
        return "INFO";
    case HQ_LOG_DEBUG:
        return "DEBUG";
    default:
        return "TRACE";
    }
}

void hq_log(enum hq_log_level level, const char *module, const char *fmt, ...)
{
    if (!hq_log_enabled(level))
        return;
    hq_buf_t line = {0};
    uint64_t now = hq_wall_ns();
    if (atomic_load(&s_debug_format)) {
        char *ts = hq_time_rfc3339(now, 3);
        hq_buf_printf(&line, "[%s %-5s %s] ", ts, s_level_name(level), module ? module : "hq");
        free(ts);
    } else {
        char *ts = hq_time_rfc3339(now, 0);
        hq_buf_printf(&line, "%s %s ", ts, s_level_name(level));
        free(ts);
    }
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    int rc = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (rc >= 0) {
        hq_buf_append(&line, msg, (size_t)rc);
        free(msg);
    }
    hq_buf_append(&line, "\n", 1);
    pthread_mutex_lock(&s_lock);
    fputs(line.data, stderr);
    fflush(stderr);
    pthread_mutex_unlock(&s_lock);
    hq_buf_free(&line);
}
