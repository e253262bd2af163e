/* The host file of `hq worker deploy-ssh` and the ssh command line of one host (see
 * hostfile.h). */
#include "hostfile.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hq_util.h"

#define S_MAX_FILE (1024 * 1024)
#define S_ACCEPTED "expected `host` or `host:port` (`[ipv6]:port` for an IPv6 address with a port)"

static bool s_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* The text of line with unprintable bytes shown as '?' (for messages). */
static char *s_shown(const char *s, size_t n)
{
    char *out = hq_strndup(s, n);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return out;
}

/* Why host (n bytes) cannot be given to ssh, or NULL. */
static const char *s_bad_host(const char *host, size_t n)
{
    if (n == 0)
        return "the host name is empty";
    if (host[0] == '-')
        return "a host name cannot start with '-' (ssh would read it as an option)";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c <= 0x20 || c == 0x7f)
            return "a host name cannot contain spaces or control characters";
    }
    return NULL;
}

/* Parses one trimmed, non-empty line into h. */
static int s_parse_line(const char *s, size_t n, size_t lineno, const char *name, hq_host_t *h,
                        hq_err_t *err)
{
    const char *host = s;
    size_t host_len = n;
    const char *port = NULL;
    size_t port_len = 0;
    const char *colon = memchr(s, ':', n);
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close || (close + 1 < s + n && close[1] != ':')) {
            char *shown = s_shown(s, n);
            hq_err_set(err, "Invalid host '%s' in line %zu of host file '%s': %s", shown, lineno,
                       name, S_ACCEPTED);
            free(shown);
            return -1;
        }
        host = s + 1;
        host_len = (size_t)(close - host);
        if (close + 1 < s + n) {
            port = close + 2;
            port_len = (size_t)(s + n - port);
        }
    } else if (colon && !memchr(colon + 1, ':', (size_t)(s + n - colon - 1))) {
        host_len = (size_t)(colon - s);
        port = colon + 1;
        port_len = (size_t)(s + n - port);
    }
    const char *why = s_bad_host(host, host_len);
    if (why) {
        char *shown = s_shown(s, n);
        hq_err_set(err, "Invalid host '%s' in line %zu of host file '%s': %s; %s", shown, lineno,
                   name, why, S_ACCEPTED);
        free(shown);
        return -1;
    }
    long value = 0;
    if (port) {
        bool ok = port_len > 0 && port_len <= 5;
        for (size_t i = 0; ok && i < port_len; i++) {
            ok = port[i] >= '0' && port[i] <= '9';
            value = value * 10 + (port[i] - '0');
        }
        if (!ok || value < 1 || value > 65535) {
            char *shown = s_shown(port, port_len);
            hq_err_set(err,
                       "Invalid port '%s' in line %zu of host file '%s': expected a number from "
                       "1 to 65535",
                       shown, lineno, name);
            free(shown);
            return -1;
        }
    }
    h->host = hq_strndup(host, host_len);
    h->port = (int)value;
    h->line = hq_strndup(s, n);
    return 0;
}

int hq_hostfile_parse(const char *text, size_t len, const char *name, hq_hostfile_t *hf,
                      hq_err_t *err)
{
    hq_hostfile_t out = {0};
    size_t cap = 0;
    size_t lineno = 0;
    for (size_t pos = 0; pos < len;) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        const char *s = text + pos;
        size_t n = end - pos;
        pos = end + 1;
        lineno++;
        while (n > 0 && s_space(*s))
            s++, n--;
        while (n > 0 && s_space(s[n - 1]))
            n--;
        if (n == 0 || s[0] == '#')
            continue;
        if (out.n == cap) {
            cap = cap ? cap * 2 : 8;
            out.hosts = hq_realloc(out.hosts, cap * sizeof *out.hosts);
        }
        if (s_parse_line(s, n, lineno, name, &out.hosts[out.n], err) != 0) {
            hq_hostfile_clear(&out);
            return -1;
        }
        out.n++;
    }
    if (out.n == 0) {
        hq_hostfile_clear(&out);
        return hq_err_set(err,
                          "Host file '%s' lists no hosts: write one `host` or `host:port` per "
                          "line (blank lines and lines starting with `#` are skipped)",
                          name);
    }
    *hf = out;
    return 0;
}

int hq_hostfile_read(const char *path, hq_hostfile_t *hf, hq_err_t *err)
{
    char *data = NULL;
    size_t len = 0;
    if (hq_read_file(path, S_MAX_FILE, &data, &len) != 0) {
        if (errno == EFBIG)
            return hq_err_set(err, "Cannot read host file '%s': it is larger than 1 MiB", path);
        return hq_err_set(err, "Cannot read host file '%s': %s", path, strerror(errno));
    }
    int rc = hq_hostfile_parse(data, len, path, hf, err);
    free(data);
    return rc;
}

void hq_hostfile_clear(hq_hostfile_t *hf)
{
    for (size_t i = 0; i < hf->n; i++) {
        free(hf->hosts[i].host);
        free(hf->hosts[i].line);
    }
    free(hf->hosts);
    hf->hosts = NULL;
    hf->n = 0;
}

/* word as the remote shell must see it: unchanged when it holds only characters
 * no shell treats specially, else in single quotes ('\'' for a quote inside). */
static char *s_shell_word(const char *word)
{
    static const char safe[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "0123456789_@%+=:,./-";
    if (*word && strspn(word, safe) == strlen(word))
        return hq_strdup(word);
    hq_buf_t b = {0};
    hq_buf_append(&b, "'", 1);
    for (const char *p = word; *p; p++) {
        if (*p == '\'')
            hq_buf_append(&b, "'\\''", 4);
        else
            hq_buf_append(&b, p, 1);
    }
    hq_buf_append(&b, "'", 1);
    return b.data;
}

char **hq_ssh_argv(const hq_host_t *h, const char *hq_path, int nargs, const char *const *args)
{
    char **argv = hq_calloc((size_t)nargs + 12, sizeof *argv);
    int k = 0;
    argv[k++] = hq_strdup("ssh");
    argv[k++] = hq_strdup(h->host);
    argv[k++] = hq_strdup("-t");
    argv[k++] = hq_strdup("-t");
    if (h->port > 0) {
        argv[k++] = hq_strdup("-p");
        argv[k++] = hq_asprintf("%d", h->port);
    }
    argv[k++] = hq_strdup("--");
    argv[k++] = s_shell_word(hq_path);
    argv[k++] = hq_strdup("worker");
    argv[k++] = hq_strdup("start");
    for (int i = 0; i < nargs; i++)
        argv[k++] = s_shell_word(args[i]);
    argv[k] = NULL;
    return argv;
}

void hq_ssh_argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **p = argv; *p; p++)
        free(*p);
    free(argv);
}
