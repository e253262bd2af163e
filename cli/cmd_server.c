/* `hq server stop|info|wait|generate-access|debug-dump` (`server start` runs the broker library
 * directly). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"
#include "hq_access.h"
#include "client.h"
#include "hq_duration.h"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_render.h"
#include "hq_util.h"

int hq_cmd_server_stop(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "server stop", argc, argv);
    if (rc >= 0)
        return rc;
    rc = hq_cli_query(&c, HQ_MSG_SERVER_STOP, NULL, 0, NULL, NULL);
    if (rc == 0)
        hq_output_finish(&c.g);
    hq_cli_end(&c);
    return rc;
}

int hq_cmd_server_info(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "server info", argc, argv);
    if (rc >= 0)
        return rc;
    json_t *root = NULL;
    rc = hq_cli_query(&c, HQ_MSG_SERVER_INFO, NULL, 0, &root, NULL);
    if (rc == 0) {
        json_t *info = json_object_get(root, "result");
        if (json_is_object(info))
            hq_render_server_info(&c.g, info, NULL);
        else
            rc = hq_cli_error(&c, "The server sent no server information");
    }
    if (rc == 0)
        hq_output_finish(&c.g);
    json_decref(root);
    hq_cli_end(&c);
    return rc;
}

int hq_cmd_server_wait(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "server wait", argc, argv);
    if (rc >= 0)
        return rc;
    uint64_t timeout = 300 * HQ_NS_PER_SEC;
    const char *v = hq_args_get(c.args, "timeout");
    hq_err_t err;
    if (v && hq_duration_parse(v, &timeout, &err) != 0) {
        rc = hq_cli_invalid(c.spec->opts, "timeout", v, err.text);
        hq_cli_end(&c);
        return rc;
    }
    char *human = hq_duration_format(timeout);
    hq_info("Waiting for server to become available (timeout: %s)...", human);
    uint64_t deadline = hq_mono_ns() + timeout;
    rc = 1;
    for (;;) {
        hq_client_t *client = hq_client_new(&c.g, &err);
        hq_msg_t *reply = NULL;
        if (client) {
            hq_msg_t req;
            memset(&req, 0, sizeof req);
            req.hdr.type = HQ_MSG_SERVER_INFO;
            reply = hq_client_call(client, &req, 0, &err);
            hq_client_destroy(&client);
        }
        if (reply) {
            hq_msg_destroy(&reply);
            hq_info("Successfully connected to server");
            rc = 0;
            break;
        }
        uint64_t now = hq_mono_ns();
        if (now >= deadline) {
            rc = hq_cli_error(&c,
                              "Timeout after %s: Could not connect to server at `%s`. Make sure "
                              "that the server is running.",
                              human, c.g.server_dir);
            break;
        }
        uint64_t left = deadline - now;
        uint64_t pause = left < 5 * HQ_NS_PER_SEC ? left : 5 * HQ_NS_PER_SEC;
        usleep((useconds_t)(pause / 1000));
    }
    free(human);
    if (rc == 0)
        hq_output_finish(&c.g);
    hq_cli_end(&c);
    return rc;
}

static int s_port(const hq_opt_t *opts, const char *flag, const char *v, uint16_t *out)
{
    char *end = NULL;
    unsigned long p = strtoul(v, &end, 10);
    if (*v < '0' || *v > '9' || *end || p > 65535)
        return hq_cli_invalid(opts, flag, v,
                              p > 65535 && !*end ? "65536 is not in 0..=65535"
                                                 : "invalid digit found in string");
    *out = (uint16_t)p;
    return -1;
}

/* `hq server generate-access FILE --client-port P --worker-port P ...`: an access
 * file to start a server with (`server start --access-file`), written before the
 * server exists (e.g. for firewalls or containers). */
int hq_cmd_server_generate_access(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "server generate-access", argc, argv);
    if (rc >= 0)
        return rc;
    const char *path = hq_args_pos(c.args, 0);
    const char *cp = hq_args_get(c.args, "client-port");
    const char *wp = hq_args_get(c.args, "worker-port");
    uint16_t client_port = 0, worker_port = 0;
    /* The file and both ports are required: hq_cmd_parse checked them. */
    if ((rc = s_port(c.spec->opts, "client-port", cp, &client_port)) < 0)
        rc = s_port(c.spec->opts, "worker-port", wp, &worker_port);
    if (rc >= 0) {
        hq_cli_end(&c);
        return rc;
    }
    char hostname[256] = "localhost";
    if (gethostname(hostname, sizeof hostname - 1) != 0)
        snprintf(hostname, sizeof hostname, "localhost");
    const char *host = hq_args_get(c.args, "host");
    const char *ch = hq_args_get(c.args, "client-host");
    const char *wh = hq_args_get(c.args, "worker-host");
    ch = ch ? ch : host ? host : hostname;
    wh = wh ? wh : host ? host : hostname;
    if (strlen(ch) >= sizeof(((hq_access_role_t *)0)->host) ||
        strlen(wh) >= sizeof(((hq_access_role_t *)0)->host)) {
        rc = hq_cli_error(&c, "Host name is too long");
        hq_cli_end(&c);
        return rc;
    }
    if (sodium_init() < 0) {
        rc = hq_cli_error(&c, "Cannot initialize libsodium");
        hq_cli_end(&c);
        return rc;
    }
    hq_access_t a;
    memset(&a, 0, sizeof a);
    hq_access_generate(&a, ch, client_port, wh, worker_port);
    hq_err_t err;
    const struct {
        const char *path;
        int which;
    } files[3] = {{path, 3},
                  {hq_args_get(c.args, "client-file"), 1},
                  {hq_args_get(c.args, "worker-file"), 2}};
    rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        if (!files[i].path)
            continue;
        if (hq_access_write(files[i].path, &a, files[i].which, &err) != 0) {
            rc = hq_cli_error(&c, "%s", err.text);
            break;
        }
        hq_info("Storing access file as '%s'", files[i].path);
    }
    sodium_memzero(&a, sizeof a);
    if (rc == 0)
        hq_output_finish(&c.g);
    hq_cli_end(&c);
    return rc;
}

/* `hq server debug-dump PATH`: the server's internal state (DEBUG_DUMP) written by the
 * client, so PATH is a path where the user runs hq, with the user's permissions. */
int hq_cmd_server_debug_dump(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "server debug-dump", argc, argv);
    if (rc >= 0)
        return rc;
    const char *path = hq_args_pos(c.args, 0);
    if (!path || !path[0]) {
        rc = hq_cli_invalid_pos("PATH", path ? path : "", "a file path (or `-`) is expected");
        hq_cli_end(&c);
        return rc;
    }
    json_t *root = NULL;
    rc = hq_cli_query(&c, HQ_MSG_DEBUG_DUMP, NULL, 0, &root, NULL);
    json_t *doc = rc == 0 ? json_object_get(root, "result") : NULL;
    if (rc == 0 && !json_is_object(doc))
        rc = hq_cli_error(&c, "The server sent no debug dump");
    if (rc == 0) {
        bool out = strcmp(path, "-") == 0;
        FILE *f = out ? stdout : fopen(path, "w");
        int e = 0;
        if (!f)
            e = errno;
        else if (json_dumpf(doc, f, JSON_INDENT(2) | JSON_SORT_KEYS) != 0 || fputc('\n', f) == EOF)
            e = errno ? errno : EIO;
        if (f && !out && fclose(f) != 0 && !e)
            e = errno;
        if (e)
            rc = hq_cli_error(&c, "Cannot write the debug dump to '%s': %s", path, strerror(e));
        else if (!out)
            hq_info("Debug dump written to '%s'", path);
    }
    if (rc == 0 && strcmp(path, "-") != 0)
        hq_output_finish(&c.g);
    json_decref(root);
    hq_cli_end(&c);
    return rc;
}
