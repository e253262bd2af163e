/* Pure helpers of `hq submit` (see submit_args.h). */
#include "submit_args.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hq_util.h"

#define S_DIRECTIVE_SCAN (32 * 1024)

static char *s_trim(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    return hq_strndup(s, n);
}

int hq_submit_parse_stdio(const char *spec, const char *default_path, hq_stdio_t *out,
                          hq_err_t *err)
{
    memset(out, 0, sizeof *out);
    char *s = s_trim(spec);
    int rc = 0;
    const char *suffix = ":rm-if-finished";
    size_t n = strlen(s), sn = strlen(suffix);
    if (n == 0) {
        rc = hq_err_set(err, "Cannot parse stream: empty input");
    } else if (strcmp(s, "none") == 0) {
        out->kind = HQ_STDIO_NONE;
    } else {
        bool rm = n >= sn && strcmp(s + n - sn, suffix) == 0;
        if (rm)
            s[n - sn] = '\0';
        char *path = s_trim(s);
        if (strchr(path, ':')) {
            rc = hq_err_set(err, "Cannot parse stream: the path cannot contain ':'");
            free(path);
        } else {
            out->kind = HQ_STDIO_FILE;
            out->rm_if_finished = rm;
            if (*path == '\0') {
                if (!rm) {
                    rc = hq_err_set(err, "Cannot parse stream: empty path");
                    free(path);
                    path = NULL;
                } else {
                    free(path);
                    path = hq_strdup(default_path);
                }
            }
            out->path = path;
        }
    }
    free(s);
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

int hq_submit_parse_crash_limit(const char *s, enum hq_crash_kind *kind, uint32_t *limit,
                                hq_err_t *err)
{
    if (strcmp(s, "never-restart") == 0) {
        *kind = HQ_CRASH_NEVER_RESTART;
        *limit = 0;
        return 0;
    }
    if (strcmp(s, "unlimited") == 0) {
        *kind = HQ_CRASH_UNLIMITED;
        *limit = 0;
        return 0;
    }
    char *end = NULL;
    if (!isdigit((unsigned char)*s))
        return hq_err_set(err, "invalid digit found in string");
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v > UINT32_MAX)
        return hq_err_set(err, "invalid digit found in string");
    if (v == 0)
        return hq_err_set(err,
                          "Crash limit cannot be 0. Use `never-restart` or `unlimited` instead.");
    *kind = HQ_CRASH_LIMIT;
    *limit = (uint32_t)v;
    return 0;
}

static int s_kv_cmp(const void *a, const void *b)
{
    return strcmp(((const hq_kv_t *)a)->key, ((const hq_kv_t *)b)->key);
}

int hq_submit_build_env(const char *const *items, size_t n, hq_kv_t **env, uint32_t *n_env,
                        bool *dups, hq_err_t *err)
{
    hq_kv_t *kv = hq_calloc(n ? n : 1, sizeof *kv);
    uint32_t k = 0;
    *dups = false;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(items[i], '=');
        size_t klen = eq ? (size_t)(eq - items[i]) : strlen(items[i]);
        if (klen == 0) {
            hq_submit_free_env(kv, k);
            return hq_err_set(err, "Environment variable cannot be empty");
        }
        char *key = hq_strndup(items[i], klen);
        char *value = hq_strdup(eq ? eq + 1 : "");
        uint32_t j;
        for (j = 0; j < k && strcmp(kv[j].key, key) != 0; j++)
            ;
        if (j < k) {
            *dups = true;
            free(kv[j].value);
            kv[j].value = value;
            free(key);
        } else {
            kv[k].key = key;
            kv[k].value = value;
            k++;
        }
    }
    qsort(kv, k, sizeof *kv, s_kv_cmp);
    *env = kv;
    *n_env = k;
    return 0;
}

void hq_submit_free_env(hq_kv_t *env, uint32_t n)
{
    for (uint32_t i = 0; env && i < n; i++) {
        free(env[i].key);
        free(env[i].value);
    }
    free(env);
}

int hq_submit_shell_split(const char *text, char ***words, int *n, hq_err_t *err)
{
    size_t cap = 8;
    char **out = hq_calloc(cap, sizeof *out);
    int count = 0;
    const char *p = text;
    hq_buf_t cur = {0};
    for (;;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        cur.len = 0;
        hq_buf_append(&cur, "", 0);
        while (*p && !isspace((unsigned char)*p)) {
            if (*p == '\'') {
                const char *end = strchr(p + 1, '\'');
                if (!end)
                    goto unterminated;
                hq_buf_append(&cur, p + 1, (size_t)(end - p - 1));
                p = end + 1;
            } else if (*p == '"') {
                p++;
                while (*p && *p != '"') {
                    if (*p == '\\' && p[1] && strchr("\"\\$`\n", p[1]))
                        p++;
                    hq_buf_append(&cur, p, 1);
                    p++;
                }
                if (*p != '"')
                    goto unterminated;
                p++;
            } else if (*p == '\\' && p[1]) {
                hq_buf_append(&cur, p + 1, 1);
                p += 2;
            } else {
                hq_buf_append(&cur, p, 1);
                p++;
            }
        }
        if ((size_t)count + 2 > cap) {
            cap *= 2;
            out = hq_realloc(out, cap * sizeof *out);
        }
        out[count++] = hq_strndup(cur.data, cur.len);
    }
    out[count] = NULL;
    hq_buf_free(&cur);
    *words = out;
    *n = count;
    return 0;
unterminated:
    hq_buf_free(&cur);
    out[count] = NULL;
    hq_submit_free_words(out);
    return hq_err_set(err, "Unterminated quote in `%s`", text);
}

void hq_submit_free_words(char **words)
{
    for (size_t i = 0; words && words[i]; i++)
        free(words[i]);
    free(words);
}

int hq_submit_scan_directives(const char *data, size_t len, char ***args, int *nargs,
                              char ***shebang, int *nshebang, hq_err_t *err)
{
    if (len > S_DIRECTIVE_SCAN)
        len = S_DIRECTIVE_SCAN;
    char *text = hq_strndup(data, len);
    hq_buf_t joined = {0};
    hq_buf_append(&joined, "", 0);
    char *shebang_line = NULL;
    char *save = NULL;
    bool first = true;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        size_t l = strlen(line);
        if (l > 0 && line[l - 1] == '\r')
            line[l - 1] = '\0';
        if (first && strncmp(line, "#!", 2) == 0) {
            shebang_line = hq_strdup(line + 2);
            first = false;
            continue;
        }
        first = false;
        const char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0')
            continue;
        if (strncmp(s, "#HQ", 3) == 0 && (s[3] == ' ' || s[3] == '\t')) {
            hq_buf_printf(&joined, " %s", s + 4);
            continue;
        }
        if (*s == '#')
            continue;
        break;
    }
    free(text);
    *shebang = NULL;
    *nshebang = 0;
    int rc = hq_submit_shell_split(joined.data, args, nargs, err);
    if (rc == 0) {
        rc = hq_submit_shell_split(shebang_line ? shebang_line : "", shebang, nshebang, err);
        if (rc != 0)
            hq_submit_free_words(*args);
    }
    free(shebang_line);
    hq_buf_free(&joined);
    return rc;
}

int hq_submit_split_lines(const char *data, size_t len, hq_bytes_t **entries, uint32_t *n)
{
    size_t count = 0;
    for (size_t i = 0; i < len; i++)
        if (data[i] == '\n')
            count++;
    if (len > 0 && data[len - 1] != '\n')
        count++;
    if (count > UINT32_MAX)
        return -1;
    hq_bytes_t *e = hq_calloc(count ? count : 1, sizeof *e);
    size_t start = 0, k = 0;
    for (size_t i = 0; i <= len && k < count; i++) {
        if (i == len || data[i] == '\n') {
            e[k].len = (uint32_t)(i - start);
            e[k].data = (uint8_t *)hq_strndup(data + start, i - start);
            k++;
            start = i + 1;
        }
    }
    *entries = e;
    *n = (uint32_t)count;
    return 0;
}

void hq_submit_free_entries(hq_bytes_t *entries, uint32_t n)
{
    for (uint32_t i = 0; entries && i < n; i++)
        free(entries[i].data);
    free(entries);
}

int hq_submit_json_entries(const char *path, hq_bytes_t **entries, uint32_t *n, hq_err_t *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_DECODE_ANY, &jerr);
    if (!root)
        return hq_err_set(err, "%s: %s", path, jerr.text);
    if (!json_is_array(root)) {
        json_decref(root);
        return hq_err_set(err, "%s: The top element of the provided JSON file has to be an array",
                          path);
    }
    size_t count = json_array_size(root);
    hq_bytes_t *e = hq_calloc(count ? count : 1, sizeof *e);
    for (size_t i = 0; i < count; i++) {
        char *text =
            json_dumps(json_array_get(root, i),
                       JSON_COMPACT | JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
        e[i].data = (uint8_t *)hq_strdup(text ? text : "null");
        e[i].len = (uint32_t)strlen((char *)e[i].data);
        free(text);
    }
    json_decref(root);
    *entries = e;
    *n = (uint32_t)count;
    return 0;
}

void hq_submit_clip_ids(const hq_rangelist_t *rl, uint64_t n, hq_rangelist_t *out)
{
    out->ranges = hq_calloc(rl->n ? rl->n : 1, sizeof *out->ranges);
    out->n = 0;
    for (uint32_t i = 0; i < rl->n; i++) {
        hq_range_t r = rl->ranges[i];
        if (r.start >= n)
            continue;
        uint64_t last = r.end < n ? r.end : n - 1;
        uint64_t k = (last - r.start) / r.step;
        r.end = (uint32_t)(r.start + k * r.step);
        if (r.end == r.start)
            r.step = 1;
        out->ranges[out->n++] = r;
    }
}
