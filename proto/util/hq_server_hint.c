/* The messages pointing a user at the server directory when the server cannot be
 * found or reached, with the --server-dir flag to repeat (see hq_server_hint.h). */
#include "hq_server_hint.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hq_output.h"
#include "hq_util.h"

char *hq_server_hint_flag(const char *server_dir)
{
    const char *home = getenv("HOME");
    if (home && *home) {
        char *def = hq_asprintf("%s/.hq-server", home);
        bool same = server_dir && strcmp(def, server_dir) == 0;
        free(def);
        if (same)
            return hq_strdup("");
    }
    return hq_asprintf(" --server-dir %s", server_dir ? server_dir : "");
}

/* s as a JSON string literal (quoted, escaped). Caller frees. */
static char *s_json_quote(const char *s)
{
    json_t *str = json_string(s);
    char *out = str ? json_dumps(str, JSON_ENCODE_ANY) : NULL;
    json_decref(str);
    if (!out)
        return hq_asprintf("\"%s\"", s);
    char *copy = hq_strdup(out);
    free(out);
    return copy;
}

static void s_set_caused(hq_err_t *err, const char *top, const char *cause)
{
    const char *causes[1] = {cause};
    char *text = hq_error_with_causes(top, causes, cause ? 1 : 0);
    hq_err_set(err, "%s", text);
    free(text);
}

void hq_server_hint_not_found(hq_err_t *err, const char *resolved, const char *server_dir,
                              const char *cause)
{
    char *q = s_json_quote(resolved);
    char *flag = hq_server_hint_flag(server_dir);
    char *top = hq_asprintf("No running instance of HQ found at %s.\nTry to start the server: "
                            "`hq server start%s` or use a different server directory.",
                            q, flag);
    s_set_caused(err, top, cause);
    free(top);
    free(flag);
    free(q);
}

void hq_server_hint_unreachable(hq_err_t *err, const char *host_port, const char *server_dir,
                                const char *cause)
{
    char *flag = hq_server_hint_flag(server_dir);
    char *top = hq_asprintf("Access token found but HQ server %s is unreachable.\n"
                            "Try to (re)start the server using `hq server start%s`",
                            host_port, flag);
    s_set_caused(err, top, cause);
    free(top);
    free(flag);
}
