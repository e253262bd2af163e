/* proto/util/hq_render: the worker JSON object and the server/worker info tables. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hq_output.h"
#include "hq_render.h"
#include "hq_util.h"

static hq_global_t s_global(enum hq_output_mode mode)
{
    hq_global_t g;
    memset(&g, 0, sizeof g);
    g.output = mode;
    g.colors = HQ_COLORS_NEVER;
    return g;
}

static json_t *s_server_info(void)
{
    json_error_t e;
    return json_loads(
        "{\"server_uid\": \"aB3xYz\", \"client_host\": \"login1\", \"client_port\": 1234,"
        " \"worker_host\": \"login1\", \"worker_port\": 5678, \"version\": \"0.26.2\","
        " \"pid\": 42, \"start_date\": \"2026-01-02T03:04:05.400000000Z\","
        " \"journal_path\": null, \"server_dir\": null}",
        0, &e);
}

Test(render, prints_server_info_as_vertical_table, .init = cr_redirect_stdout)
{
    hq_global_t g = s_global(HQ_OUTPUT_CLI);
    json_t *info = s_server_info();
    hq_render_server_info(&g, info, NULL);
    fflush(stdout);
    cr_assert_stdout_eq_str("+--------------+-------------------------+\n"
                            "| Server UID   | aB3xYz                  |\n"
                            "| Client host  | login1                  |\n"
                            "| Client port  | 1234                    |\n"
                            "| Worker host  | login1                  |\n"
                            "| Worker port  | 5678                    |\n"
                            "| Version      | 0.26.2                  |\n"
                            "| Pid          | 42                      |\n"
                            "| Start date   | 2026-01-02 03:04:05 UTC |\n"
                            "| Journal path |                         |\n"
                            "+--------------+-------------------------+\n");
    json_decref(info);
}

Test(render, puts_server_directory_first_when_given, .init = cr_redirect_stdout)
{
    hq_global_t g = s_global(HQ_OUTPUT_CLI);
    json_t *info = s_server_info();
    hq_render_server_info(&g, info, "/srv/hq");
    fflush(stdout);
    cr_assert_stdout_eq_str("+------------------+-------------------------+\n"
                            "| Server directory | /srv/hq                 |\n"
                            "| Server UID       | aB3xYz                  |\n"
                            "| Client host      | login1                  |\n"
                            "| Client port      | 1234                    |\n"
                            "| Worker host      | login1                  |\n"
                            "| Worker port      | 5678                    |\n"
                            "| Version          | 0.26.2                  |\n"
                            "| Pid              | 42                      |\n"
                            "| Start date       | 2026-01-02 03:04:05 UTC |\n"
                            "| Journal path     |                         |\n"
                            "+------------------+-------------------------+\n");
    json_decref(info);
}

Test(render, prints_server_info_json_with_server_dir, .init = cr_redirect_stdout)
{
    hq_global_t g = s_global(HQ_OUTPUT_JSON);
    json_t *info = s_server_info();
    hq_render_server_info(&g, info, "/srv/hq");
    fflush(stdout);
    cr_assert_stdout_eq_str("{\n"
                            "  \"client_host\": \"login1\",\n"
                            "  \"client_port\": 1234,\n"
                            "  \"journal_path\": null,\n"
                            "  \"pid\": 42,\n"
                            "  \"server_dir\": \"/srv/hq\",\n"
                            "  \"server_uid\": \"aB3xYz\",\n"
                            "  \"start_date\": \"2026-01-02T03:04:05.400000000Z\",\n"
                            "  \"version\": \"0.26.2\",\n"
                            "  \"worker_host\": \"login1\",\n"
                            "  \"worker_port\": 5678\n"
                            "}\n");
    json_decref(info);
}

Test(render, quiet_server_info_prints_only_the_start_dir, .init = cr_redirect_stdout)
{
    hq_global_t g = s_global(HQ_OUTPUT_QUIET);
    json_t *info = s_server_info();
    hq_render_server_info(&g, info, NULL);
    hq_render_server_info(&g, info, "/srv/hq");
    fflush(stdout);
    cr_assert_stdout_eq_str("/srv/hq\n");
    json_decref(info);
}

static void s_conf(hq_worker_conf_t *c)
{
    memset(c, 0, sizeof *c);
    c->hostname = "node1";
    c->group = "default";
    c->work_dir = "/tmp/w";
    c->listen_address = "node1:1234";
    c->heartbeat_ns = 8ULL * 1000000000ULL;
    c->idle_timeout_ns = 0;
    c->time_limit_ns = 5400ULL * 1000000000ULL;
    c->min_utilization = 0.5;
    c->manager = HQ_MANAGER_SLURM;
    c->manager_job_id = "777";
    c->pid = 4321;
    c->started_ns = 1767323045123456789ULL; /* 2026-01-02T03:04:05.123456789Z */
    static hq_wres_t res[1];
    memset(res, 0, sizeof res);
    res[0].name = "cpus";
    res[0].kind = HQ_RES_RANGE;
    res[0].range_start = 0;
    res[0].range_end = 3;
    c->resources.n = 1;
    c->resources.res = res;
}

Test(render, builds_the_worker_json_object)
{
    hq_worker_conf_t c;
    s_conf(&c);
    json_t *w = hq_worker_json(7, &c);
    hq_json_strip_private(w);
    char *text = hq_json_dump(w, false);
    cr_assert_str_eq(
        text, "{\"allocation\":{\"id\":\"777\",\"manager\":\"Slurm\"},\"configuration\":{"
              "\"group\":\"default\",\"heartbeat_interval\":8.0,\"hostname\":\"node1\","
              "\"idle_timeout\":null,\"listen_address\":\"node1:1234\",\"min_utilization\":"
              "0.5,\"on_server_lost\":\"stop\",\"resources\":{\"coupling\":{\"weights\":[]},"
              "\"resources\":[{\"end\":3,\"kind\":\"range\",\"name\":\"cpus\",\"start\":0}]},"
              "\"time_limit\":5400.0,\"work_dir\":\"/tmp/w\"},\"ended\":null,\"id\":7,"
              "\"last_task_started\":null,\"runtime_info\":null,\"started\":"
              "\"2026-01-02T03:04:05.123456789Z\"}");
    free(text);
    json_decref(w);
}

Test(render, prints_worker_info_table_with_runtime_row, .init = cr_redirect_stdout)
{
    hq_worker_conf_t c;
    s_conf(&c);
    json_t *w = hq_worker_json(7, &c);
    json_object_set_new(w, "_state", json_string("RUNNING"));
    json_object_set_new(w, "_runtime_text", json_string("assigned tasks: 2; running tasks: 1"));
    json_t *arr = json_pack("[o]", w);
    hq_global_t g = s_global(HQ_OUTPUT_CLI);
    hq_render_worker_info(&g, arr, true);
    fflush(stdout);
    cr_assert_stdout_eq_str("+-------------------+-------------------------------------+\n"
                            "| Worker            | 7                                   |\n"
                            "| State             | RUNNING                             |\n"
                            "| Hostname          | node1                               |\n"
                            "| Started           | \"2026-01-02T03:04:05.123456789Z\"    |\n"
                            "| Data provider     | node1:1234                          |\n"
                            "| Working directory | /tmp/w                              |\n"
                            "| Heartbeat         | 8s                                  |\n"
                            "| Idle timeout      | None                                |\n"
                            "| Overview interval | None                                |\n"
                            "| Resources         | cpus: 4                             |\n"
                            "| Time Limit        | 1h 30m                              |\n"
                            "| Process pid       | 4321                                |\n"
                            "| Group             | default                             |\n"
                            "| Manager           | SLURM                               |\n"
                            "| Manager Job ID    | 777                                 |\n"
                            "| Last task started |                                     |\n"
                            "| Runtime Info      | assigned tasks: 2; running tasks: 1 |\n"
                            "+-------------------+-------------------------------------+\n");
    json_decref(arr);
}

Test(render, worker_start_table_has_no_runtime_row, .init = cr_redirect_stdout)
{
    hq_worker_conf_t c;
    s_conf(&c);
    c.manager = HQ_MANAGER_NONE;
    c.pid = 0;
    json_t *arr = json_pack("[o]", hq_worker_json(1, &c));
    hq_global_t g = s_global(HQ_OUTPUT_CLI);
    hq_render_worker_info(&g, arr, false);
    fflush(stdout);
    cr_assert_stdout_eq_str("+-------------------+----------------------------------+\n"
                            "| Worker            | 1                                |\n"
                            "| State             | RUNNING                          |\n"
                            "| Hostname          | node1                            |\n"
                            "| Started           | \"2026-01-02T03:04:05.123456789Z\" |\n"
                            "| Data provider     | node1:1234                       |\n"
                            "| Working directory | /tmp/w                           |\n"
                            "| Heartbeat         | 8s                               |\n"
                            "| Idle timeout      | None                             |\n"
                            "| Overview interval | None                             |\n"
                            "| Resources         | cpus: 4                          |\n"
                            "| Time Limit        | 1h 30m                           |\n"
                            "| Process pid       | N/A                              |\n"
                            "| Group             | default                          |\n"
                            "| Manager           | None                             |\n"
                            "| Manager Job ID    | N/A                              |\n"
                            "| Last task started |                                  |\n"
                            "+-------------------+----------------------------------+\n");
    json_decref(arr);
}

Test(render, parses_rfc3339_with_any_fraction)
{
    uint64_t ns;
    cr_assert_eq(hq_time_parse_rfc3339("2026-01-02T03:04:05Z", &ns), 0);
    cr_assert_eq(ns, 1767323045000000000ULL);
    cr_assert_eq(hq_time_parse_rfc3339("2026-01-02T03:04:05.5Z", &ns), 0);
    cr_assert_eq(ns, 1767323045500000000ULL);
    cr_assert_eq(hq_time_parse_rfc3339("2026-01-02T03:04:05.123456789Z", &ns), 0);
    cr_assert_eq(ns, 1767323045123456789ULL);
    cr_assert_eq(hq_time_parse_rfc3339("2026-01-02 03:04:05", &ns), -1);
    cr_assert_eq(hq_time_parse_rfc3339("garbage", &ns), -1);
}

Test(render, reads_resources_back_from_json)
{
    json_error_t e;
    json_t *v =
        json_loads("{\"resources\": [{\"name\": \"cpus\", \"kind\": \"groups\", \"groups\": "
                   "[[\"0\",\"1\"],[\"2\",\"3\"]]}, {\"name\": \"mem\", \"kind\": \"sum\", "
                   "\"size\": 10240000}]}",
                   0, &e);
    hq_wres_list_t l;
    cr_assert_eq(hq_wres_from_json(v, &l), 0);
    cr_assert_eq(l.n, 2);
    cr_assert_eq(l.res[0].kind, HQ_RES_GROUPS);
    cr_assert_eq(l.res[0].n_groups, 2);
    cr_assert_str_eq(l.res[0].groups[1].labels[1], "3");
    cr_assert_eq(l.res[1].sum_size, 10240000);
    json_t *back = hq_wres_json(&l);
    cr_assert(json_equal(json_object_get(back, "resources"), json_object_get(v, "resources")));
    json_decref(back);
    hq_wres_list_clear(&l);
    json_decref(v);
}
