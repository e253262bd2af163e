/* `hq server stop|info|wait` (`server start` runs the broker library directly). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "hq_duration.h"
#include "hq_log.h"
#include "hq_output.h"
#include "hq_render.h"
#include "hq_util.h"

static const hq_opt_t s_no_opts[] = {{0}};

int hq_cmd_server_stop(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, s_no_opts, argc, argv, 0, false, "hq server stop", "Stop the server");
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
    int rc = hq_cli_begin(&c, s_no_opts, argc, argv, 0, false, "hq server info",
                          "Show info of a running server");
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

static const hq_opt_t s_wait_opts[] = {
    {"timeout", 0, HQ_OPT_VALUE, "TIMEOUT", "How long to wait for the server [default: 5m]"},
    {0},
};

int hq_cmd_server_wait(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, s_wait_opts, argc, argv, 0, false, "hq server wait",
                          "Wait until the server is available");
    if (rc >= 0)
        return rc;
    uint64_t timeout = 300 * HQ_NS_PER_SEC;
    const char *v = hq_args_get(c.args, "timeout");
    hq_err_t err;
    if (v && hq_duration_parse(v, &timeout, &err) != 0) {
        rc = hq_cli_invalid(s_wait_opts, "timeout", v, err.text);
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
