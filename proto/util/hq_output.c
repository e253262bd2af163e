/* Output modes (cli/REFERENCE.md §0.2, §6): error printing, JSON documents with sorted keys,
 * and the "{}" printed in JSON mode by commands that printed nothing else. */
#include "hq_output.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hq_util.h"

#define S_JSON_FLAGS (JSON_SORT_KEYS | JSON_REAL_PRECISION(15) | JSON_ENCODE_ANY)

static atomic_bool s_printed = false;

char *hq_json_dump(const json_t *value, bool pretty)
{
    size_t flags = S_JSON_FLAGS | (pretty ? JSON_INDENT(2) : JSON_COMPACT);
    char *s = json_dumps(value, flags);
    if (!s)
        return hq_strdup("null");
    /* Hand back memory the caller can free() even if jansson's allocator changes. */
    char *copy = hq_strdup(s);
    free(s);
    return copy;
}

void hq_output_json(json_t *value)
{
    char *s = hq_json_dump(value, true);
    fputs(s, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    free(s);
    hq_output_mark_printed();
}

int hq_output_error(const hq_global_t *g, const char *text)
{
    if (g && g->output == HQ_OUTPUT_JSON) {
        json_t *o = json_object();
        json_object_set_new(o, "error", json_string(text));
        hq_output_json(o);
        json_decref(o);
    } else {
        fflush(stdout);
        fprintf(stderr, "%s\n", text);
        fflush(stderr);
    }
    return 1;
}

/* Appends text with every line after the first indented by indent spaces. */
static void s_indented(hq_buf_t *b, const char *text, int indent)
{
    for (const char *p = text; *p; p++) {
        hq_buf_append(b, p, 1);
        if (*p == '\n' && p[1])
            hq_buf_printf(b, "%*s", indent, "");
    }
}

char *hq_error_with_causes(const char *top, const char *const *causes, int n)
{
    hq_buf_t b = {0};
    hq_buf_append(&b, top, strlen(top));
    if (n <= 0)
        return b.data;
    hq_buf_printf(&b, "\n\nCaused by:");
    for (int i = 0; i < n; i++) {
        if (n == 1) {
            hq_buf_printf(&b, "\n    ");
            s_indented(&b, causes[i], 4);
        } else {
            hq_buf_printf(&b, "\n%5d: ", i);
            s_indented(&b, causes[i], 7);
        }
    }
    return b.data;
}

void hq_json_strip_private(json_t *value)
{
    if (json_is_object(value)) {
        const char *key;
        json_t *v;
        void *tmp;
        json_object_foreach_safe(value, tmp, key, v)
        {
            if (key[0] == '_')
                json_object_del(value, key);
            else
                hq_json_strip_private(v);
        }
    } else if (json_is_array(value)) {
        size_t i;
        json_t *v;
        json_array_foreach(value, i, v)
        {
            hq_json_strip_private(v);
        }
    }
}

bool hq_output_printed(void)
{
    return atomic_load(&s_printed);
}

void hq_output_mark_printed(void)
{
    atomic_store(&s_printed, true);
}

void hq_output_finish(const hq_global_t *g)
{
    if (g && g->output == HQ_OUTPUT_JSON && !hq_output_printed()) {
        fputs("{}\n", stdout);
        hq_output_mark_printed();
    }
    fflush(stdout);
}

bool hq_output_colors(const hq_global_t *g)
{
    if (!g)
        return false;
    switch (g->colors) {
    case HQ_COLORS_ALWAYS:
        return true;
    case HQ_COLORS_NEVER:
        return false;
    default:
        return isatty(STDOUT_FILENO) == 1;
    }
}
