/* The host file of `hq worker deploy-ssh` (cli/hostfile.c): the accepted line forms,
 * skipped lines, every refused value with its message, and the ssh command line
 * built for a host (with the remote shell's quoting). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "hostfile.h"

static hq_hostfile_t s_parse_ok(const char *text)
{
    hq_hostfile_t hf = {0};
    hq_err_t err = {{0}};
    int rc = hq_hostfile_parse(text, strlen(text), "hosts", &hf, &err);
    cr_assert_eq(rc, 0, "%s: %s", text, err.text);
    return hf;
}

static void s_parse_fails(const char *text, const char *message)
{
    hq_hostfile_t hf = {0};
    hq_err_t err = {{0}};
    cr_assert_eq(hq_hostfile_parse(text, strlen(text), "hosts", &hf, &err), -1, "%s", text);
    cr_assert_eq(hf.n, 0);
    cr_assert_null(hf.hosts);
    cr_assert(strstr(err.text, message) != NULL, "%s: got '%s'", text, err.text);
}

Test(hostfile, accepts_hosts_ports_and_ipv6_forms)
{
    hq_hostfile_t hf =
        s_parse_ok("node1\nnode2:2222\nuser@node3:22\n[::1]:2200\n[fe80::1]\n::1\n10.0.0.1:65535");
    cr_assert_eq(hf.n, 7);
    const struct {
        const char *host;
        int port;
    } want[] = {{"node1", 0},   {"node2", 2222}, {"user@node3", 22}, {"::1", 2200},
                {"fe80::1", 0}, {"::1", 0},      {"10.0.0.1", 65535}};
    for (size_t i = 0; i < 7; i++) {
        cr_assert_str_eq(hf.hosts[i].host, want[i].host);
        cr_assert_eq(hf.hosts[i].port, want[i].port, "%s", want[i].host);
    }
    cr_assert_str_eq(hf.hosts[3].line, "[::1]:2200");
    hq_hostfile_clear(&hf);
}

Test(hostfile, skips_blank_and_comment_lines_and_trims_whitespace)
{
    hq_hostfile_t hf = s_parse_ok("# nodes\n\n   \n\tnode1 \r\n  # off: node9\nnode2:22\r\n");
    cr_assert_eq(hf.n, 2);
    cr_assert_str_eq(hf.hosts[0].host, "node1");
    cr_assert_str_eq(hf.hosts[0].line, "node1");
    cr_assert_str_eq(hf.hosts[1].host, "node2");
    cr_assert_eq(hf.hosts[1].port, 22);
    hq_hostfile_clear(&hf);
}

Test(hostfile, refuses_ports_outside_1_to_65535)
{
    s_parse_fails("a:0", "Invalid port '0' in line 1 of host file 'hosts': expected a number from "
                         "1 to 65535");
    s_parse_fails("a\nb:65536", "Invalid port '65536' in line 2");
    s_parse_fails("a:100000", "Invalid port '100000' in line 1");
    s_parse_fails("a:-1", "Invalid port '-1' in line 1");
    s_parse_fails("a:+22", "Invalid port '+22' in line 1");
    s_parse_fails("a:22x", "Invalid port '22x' in line 1");
    s_parse_fails("a:", "Invalid port '' in line 1");
    s_parse_fails("[::1]:", "Invalid port '' in line 1");
}

Test(hostfile, refuses_hosts_ssh_would_misread)
{
    s_parse_fails("-oProxyCommand=x", "Invalid host '-oProxyCommand=x' in line 1 of host file "
                                      "'hosts': a host name cannot start with '-'");
    s_parse_fails("a b", "Invalid host 'a b' in line 1 of host file 'hosts': a host name cannot "
                         "contain spaces or control characters");
    s_parse_fails("a\tb:22", "Invalid host 'a?b:22' in line 1");
    s_parse_fails(":22", "the host name is empty");
    s_parse_fails("[]:22", "the host name is empty");
    s_parse_fails("[::1", "Invalid host '[::1' in line 1 of host file 'hosts': expected `host` or "
                          "`host:port`");
    s_parse_fails("[::1]x", "Invalid host '[::1]x' in line 1");
}

Test(hostfile, refuses_a_file_without_hosts)
{
    s_parse_fails("", "Host file 'hosts' lists no hosts: write one `host` or `host:port` per line");
    s_parse_fails("\n  \n# all commented\n", "Host file 'hosts' lists no hosts");
}

Test(hostfile, reading_a_missing_file_names_it)
{
    hq_hostfile_t hf = {0};
    hq_err_t err = {{0}};
    cr_assert_eq(hq_hostfile_read("/nonexistent/hosts", &hf, &err), -1);
    cr_assert_str_eq(err.text, "Cannot read host file '/nonexistent/hosts': No such file or "
                               "directory");
}

static char *s_join(char **argv)
{
    size_t n = 1;
    for (char **p = argv; *p; p++)
        n += strlen(*p) + 1;
    char *out = calloc(1, n);
    for (char **p = argv; *p; p++) {
        if (p != argv)
            strcat(out, " ");
        strcat(out, *p);
    }
    return out;
}

Test(hostfile, ssh_argv_is_host_tt_port_and_the_worker_command)
{
    hq_host_t with_port = {.host = "node1", .port = 2222, .line = "node1:2222"};
    const char *args[] = {"--cpus", "4", "--server-dir", "/shared/hq dir"};
    char **argv = hq_ssh_argv(&with_port, "/opt/hq/bin/hq", 4, args);
    char *joined = s_join(argv);
    cr_assert_str_eq(joined, "ssh node1 -t -t -p 2222 -- /opt/hq/bin/hq worker start --cpus 4 "
                             "--server-dir '/shared/hq dir'");
    free(joined);
    hq_ssh_argv_free(argv);

    hq_host_t no_port = {.host = "node2", .port = 0, .line = "node2"};
    const char *quoted[] = {"--resource", "gpus/nvidia=[0,1]", "--hostname", "it's", ""};
    argv = hq_ssh_argv(&no_port, "/usr/bin/hq", 5, quoted);
    joined = s_join(argv);
    cr_assert_str_eq(joined, "ssh node2 -t -t -- /usr/bin/hq worker start --resource "
                             "'gpus/nvidia=[0,1]' --hostname 'it'\\''s' ''");
    free(joined);
    hq_ssh_argv_free(argv);
}
