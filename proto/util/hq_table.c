/* Tables exactly as cli/REFERENCE.md §4: rules of '+'/'-', cells padded by one space,
 * multi-line cells aligned to the top, display width that ignores ANSI escapes and
 * counts wide characters twice. */
#include "hq_table.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "hq_util.h"

#define S_BOLD "1"

typedef struct s_cell {
    char **lines; /* owned lines of the cell */
    int n;        /* number of lines (0 for an empty cell) */
} s_cell_t;

struct hq_table {
    bool vertical;     /* key/value table without a title row */
    int ncols;         /* number of columns */
    s_cell_t *titles;  /* ncols title cells (horizontal only) */
    bool *right;       /* per column: right-justified */
    bool *plain_title; /* per column: title not bold */
    s_cell_t *cells;   /* nrows * ncols cells, row-major */
    int nrows;         /* number of data rows */
};

static void s_cell_init(s_cell_t *c, const char *text)
{
    c->lines = NULL;
    c->n = 0;
    if (!text || !*text)
        return;
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        size_t keep = len;
        if (keep && p[keep - 1] == '\r')
            keep--;
        c->lines = hq_realloc(c->lines, (size_t)(c->n + 1) * sizeof *c->lines);
        c->lines[c->n++] = hq_strndup(p, keep);
        if (!nl)
            break;
        p = nl + 1;
    }
}

static void s_cell_free(s_cell_t *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->lines[i]);
    free(c->lines);
}

static hq_table_t *s_new(int ncols, bool vertical)
{
    hq_table_t *t = hq_calloc(1, sizeof *t);
    t->vertical = vertical;
    t->ncols = ncols;
    t->right = hq_calloc((size_t)ncols, sizeof *t->right);
    t->plain_title = hq_calloc((size_t)ncols, sizeof *t->plain_title);
    return t;
}

hq_table_t *hq_table_new_horizontal(int ncols, const char *const *titles)
{
    if (ncols < 1)
        ncols = 1;
    hq_table_t *t = s_new(ncols, false);
    t->titles = hq_calloc((size_t)ncols, sizeof *t->titles);
    for (int i = 0; i < ncols; i++)
        s_cell_init(&t->titles[i], titles ? titles[i] : "");
    return t;
}

hq_table_t *hq_table_new_vertical(void)
{
    return s_new(2, true);
}

void hq_table_destroy(hq_table_t **tp)
{
    if (!tp || !*tp)
        return;
    hq_table_t *t = *tp;
    if (t->titles)
        for (int i = 0; i < t->ncols; i++)
            s_cell_free(&t->titles[i]);
    for (int i = 0; i < t->nrows * t->ncols; i++)
        s_cell_free(&t->cells[i]);
    free(t->titles);
    free(t->cells);
    free(t->right);
    free(t->plain_title);
    free(t);
    *tp = NULL;
}

void hq_table_right_justify(hq_table_t *t, int col)
{
    if (col >= 0 && col < t->ncols)
        t->right[col] = true;
}

void hq_table_plain_title(hq_table_t *t, int col)
{
    if (col >= 0 && col < t->ncols)
        t->plain_title[col] = true;
}

void hq_table_add_row(hq_table_t *t, const char *const *cells)
{
    t->cells = hq_realloc(t->cells, (size_t)(t->nrows + 1) * (size_t)t->ncols * sizeof *t->cells);
    for (int i = 0; i < t->ncols; i++)
        s_cell_init(&t->cells[t->nrows * t->ncols + i], cells ? cells[i] : "");
    t->nrows++;
}

void hq_table_add_kv(hq_table_t *t, const char *key, const char *value)
{
    const char *cells[2] = {key, value};
    hq_table_add_row(t, cells);
}

/* A UTF-8 locale for mbrtowc/wcwidth regardless of the program's setlocale. */
static locale_t s_utf8_locale(void)
{
    static locale_t loc = (locale_t)0;
    static bool tried = false;
    if (!tried) {
        tried = true;
        loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
        if (!loc)
            loc = newlocale(LC_CTYPE_MASK, "en_US.UTF-8", (locale_t)0);
    }
    return loc;
}

/* Length of an ANSI escape sequence starting at s (s[0] == ESC). */
static size_t s_escape_len(const char *s)
{
    if (s[1] != '[')
        return s[1] ? 2 : 1;
    size_t i = 2;
    while (s[i] && !((unsigned char)s[i] >= 0x40 && (unsigned char)s[i] <= 0x7e))
        i++;
    return s[i] ? i + 1 : i;
}

/* Display width: escapes count 0, characters by wcwidth (needs the UTF-8 locale
 * to be in use on this thread; otherwise each byte sequence counts 1). */
static size_t s_width(const char *s)
{
    size_t w = 0;
    mbstate_t st;
    memset(&st, 0, sizeof st);
    const char *p = s;
    size_t left = strlen(s);
    while (left) {
        if (*p == '\x1b') {
            size_t n = s_escape_len(p);
            p += n;
            left -= n;
            continue;
        }
        wchar_t wc;
        size_t n = mbrtowc(&wc, p, left, &st);
        if (n == (size_t)-1 || n == (size_t)-2 || n == 0) {
            memset(&st, 0, sizeof st);
            /* Skip one (possibly invalid) UTF-8 character as width 1. */
            n = 1;
            while (n < left && ((unsigned char)p[n] & 0xc0) == 0x80)
                n++;
            w += 1;
        } else {
            int cw = wcwidth(wc);
            w += cw > 0 ? (size_t)cw : 0;
        }
        p += n;
        left -= n;
    }
    return w;
}

static void s_rule(FILE *out, const size_t *widths, int ncols)
{
    fputc('+', out);
    for (int c = 0; c < ncols; c++) {
        for (size_t i = 0; i < widths[c] + 2; i++)
            fputc('-', out);
        fputc('+', out);
    }
    fputc('\n', out);
}

static void s_spaces(FILE *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fputc(' ', out);
}

/* Prints one padded cell line. sgr: wrap in this SGR code (bold) or NULL. A line
 * that ends with a reset sequence (a coloured state word) gets its padding inside
 * the colour span. */
static void s_cell_line(FILE *out, const char *line, size_t width, bool right, const char *sgr)
{
    size_t w = s_width(line);
    size_t pad = width > w ? width - w : 0;
    fputc(' ', out);
    if (sgr)
        fprintf(out, "\x1b[%sm", sgr);
    size_t len = strlen(line);
    static const char reset[] = "\x1b[0m";
    bool colored = line[0] == '\x1b' && len >= 4 && strcmp(line + len - 4, reset) == 0;
    if (right) {
        if (colored) {
            size_t lead = s_escape_len(line);
            fwrite(line, 1, lead, out);
            s_spaces(out, pad);
            fputs(line + lead, out);
        } else {
            s_spaces(out, pad);
            fputs(line, out);
        }
    } else if (colored) {
        fwrite(line, 1, len - 4, out);
        s_spaces(out, pad);
        fputs(reset, out);
    } else {
        fputs(line, out);
        s_spaces(out, pad);
    }
    if (sgr)
        fputs("\x1b[0m", out);
    fputs(" |", out);
}

static void s_row(FILE *out, const hq_table_t *t, const s_cell_t *row, const size_t *widths,
                  bool colors, bool title)
{
    int height = 0;
    for (int c = 0; c < t->ncols; c++)
        if (row[c].n > height)
            height = row[c].n;
    if (height == 0) {
        for (int c = 0; c < t->ncols; c++)
            fputc('|', out);
        fputc('\n', out);
        return;
    }
    for (int l = 0; l < height; l++) {
        fputc('|', out);
        for (int c = 0; c < t->ncols; c++) {
            const char *sgr = NULL;
            if (colors && ((title && !t->plain_title[c]) || (t->vertical && c == 0)))
                sgr = S_BOLD;
            const char *line = l < row[c].n ? row[c].lines[l] : "";
            if (!*line)
                sgr = NULL;
            s_cell_line(out, line, widths[c], t->right[c], sgr);
        }
        fputc('\n', out);
    }
}

void hq_table_print(const hq_table_t *t, FILE *out, bool colors)
{
    if (t->vertical && t->nrows == 0) {
        fputs("+\n", out);
        return;
    }
    locale_t loc = s_utf8_locale();
    locale_t old = loc ? uselocale(loc) : (locale_t)0;
    size_t *widths = hq_calloc((size_t)t->ncols, sizeof *widths);
    for (int c = 0; c < t->ncols; c++) {
        if (t->titles)
            for (int l = 0; l < t->titles[c].n; l++) {
                size_t w = s_width(t->titles[c].lines[l]);
                if (w > widths[c])
                    widths[c] = w;
            }
        for (int r = 0; r < t->nrows; r++) {
            const s_cell_t *cell = &t->cells[r * t->ncols + c];
            for (int l = 0; l < cell->n; l++) {
                size_t w = s_width(cell->lines[l]);
                if (w > widths[c])
                    widths[c] = w;
            }
        }
    }
    s_rule(out, widths, t->ncols);
    if (!t->vertical) {
        s_row(out, t, t->titles, widths, colors, true);
        s_rule(out, widths, t->ncols);
    }
    for (int r = 0; r < t->nrows; r++)
        s_row(out, t, &t->cells[r * t->ncols], widths, colors, false);
    if (t->nrows > 0)
        s_rule(out, widths, t->ncols);
    free(widths);
    if (loc)
        uselocale(old);
}

char *hq_color(const char *text, const char *sgr, bool colors)
{
    if (!colors || !sgr || !*text)
        return hq_strdup(text);
    return hq_asprintf("\x1b[%sm%s\x1b[0m", sgr, text);
}

char *hq_color_state(const char *word, const char *kind, bool colors)
{
    static const struct {
        const char *kind;
        const char *word;
        const char *sgr;
    } map[] = {
        {"task", "WAITING", "36"},
        {"task", "OPENED", "36"},
        {"task", "RUNNING", "33"},
        {"task", "FINISHED", "32"},
        {"task", "FAILED", "31"},
        {"task", "CANCELED", "35"},
        {"task", "ABORTED", "34"},
        {"worker", "RUNNING", "32"},
        {"worker", "CONNECTION LOST", "31"},
        {"worker", "HEARTBEAT LOST", "31"},
        {"worker", "IDLE TIMEOUT", "36"},
        {"worker", "TIME LIMIT REACHED", "36"},
        {"worker", "STOPPED", "35"},
        {"alloc", "QUEUED", "33"},
        {"alloc", "RUNNING", "34"},
        {"alloc", "FINISHED", "32"},
        {"alloc", "FAILED", "31"},
        {"session", "open", "32"},
    };
    if (colors && kind)
        for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
            if (strcmp(map[i].kind, kind) == 0 && strcmp(map[i].word, word) == 0)
                return hq_color(word, map[i].sgr, true);
    return hq_strdup(word);
}
