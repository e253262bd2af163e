/* Tests for hq_access: key derivation, the access file's exact format, its creation
 * and permission rules, and the server directory helpers. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <czmq.h>

#include "hq_access.h"
#include "hq_util.h"

static char dir[256];

static void s_setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/hq-access-test-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void s_teardown(void)
{
    char *cmd = hq_asprintf("rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    free(cmd);
}

static hq_access_t s_sample(void)
{
    hq_access_t a;
    memset(&a, 0, sizeof a);
    snprintf(a.version, sizeof a.version, "%s", HQ_VERSION);
    strcpy(a.server_uid, "aB3xYz");
    a.client.present = true;
    strcpy(a.client.host, "login1");
    a.client.port = 41234;
    a.client.has_secret = true;
    for (int i = 0; i < 32; i++)
        a.client.secret[i] = (uint8_t)i;
    a.worker.present = true;
    strcpy(a.worker.host, "login1");
    a.worker.port = 42345;
    a.worker.has_secret = false;
    return a;
}

static char *s_slurp(const char *path)
{
    char *data = NULL;
    size_t len;
    cr_assert_eq(hq_read_file(path, 1 << 20, &data, &len), 0);
    return data;
}

Test(access, derive_is_deterministic_and_distinct_per_subkey)
{
    uint8_t secret[32];
    memset(secret, 7, sizeof secret);
    hq_curve_pair_t b1, r1, b2, r2;
    hq_access_derive(secret, &b1, &r1);
    hq_access_derive(secret, &b2, &r2);
    cr_assert_str_eq(b1.public_z85, b2.public_z85);
    cr_assert_str_eq(r1.secret_z85, r2.secret_z85);
    cr_assert_str_neq(b1.public_z85, r1.public_z85);
    cr_assert_eq(strlen(b1.public_z85), 40);
    cr_assert_eq(strlen(b1.secret_z85), 40);
    secret[0] = 8;
    hq_access_derive(secret, &b2, &r2);
    cr_assert_str_neq(b1.public_z85, b2.public_z85);
}

Test(access, derived_keys_form_valid_curve_pairs)
{
    uint8_t secret[32] = {1, 2, 3};
    hq_curve_pair_t b, r;
    hq_access_derive(secret, &b, &r);
    char pub[41];
    cr_assert_eq(zmq_curve_public(pub, b.secret_z85), 0);
    cr_assert_str_eq(pub, b.public_z85);
    cr_assert_eq(zmq_curve_public(pub, r.secret_z85), 0);
    cr_assert_str_eq(pub, r.public_z85);
}

Test(access, writes_exact_format, .init = s_setup, .fini = s_teardown)
{
    hq_access_t a = s_sample();
    char *path = hq_asprintf("%s/access.json", dir);
    hq_err_t err;
    cr_assert_eq(hq_access_write(path, &a, 3, &err), 0, "%s", err.text);
    char *text = s_slurp(path);
    char *expected =
        hq_asprintf("{\n"
                    "  \"version\": \"%s\",\n"
                    "  \"server_uid\": \"aB3xYz\",\n"
                    "  \"client\": {\n"
                    "    \"host\": \"login1\",\n"
                    "    \"port\": 41234,\n"
                    "    \"secret_key\": "
                    "\"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"\n"
                    "  },\n"
                    "  \"worker\": {\n"
                    "    \"host\": \"login1\",\n"
                    "    \"port\": 42345,\n"
                    "    \"secret_key\": null\n"
                    "  }\n"
                    "}",
                    HQ_VERSION);
    cr_assert_str_eq(text, expected);
    free(text);
    free(expected);
    free(path);
}

Test(access, writes_partial_files, .init = s_setup, .fini = s_teardown)
{
    hq_access_t a = s_sample();
    char *path = hq_asprintf("%s/worker.json", dir);
    hq_err_t err;
    cr_assert_eq(hq_access_write(path, &a, 2, &err), 0);
    char *text = s_slurp(path);
    cr_assert_null(strstr(text, "client"));
    cr_assert_null(strstr(text, "server_uid"));
    cr_assert_not_null(strstr(text, "\"worker\""));
    hq_access_t back;
    cr_assert_eq(hq_access_read(path, &back, true, &err), 0, "%s", err.text);
    cr_assert(!back.client.present);
    cr_assert(back.worker.present);
    cr_assert_eq(back.worker.port, 42345);
    free(text);
    free(path);
}

static void s_check_mode_under_umask(mode_t mask)
{
    mode_t old = umask(mask);
    hq_access_t a = s_sample();
    char *path = hq_asprintf("%s/access-%o.json", dir, (unsigned)mask);
    hq_err_t err;
    cr_assert_eq(hq_access_write(path, &a, 3, &err), 0);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0400, "mode %o under umask %o", st.st_mode & 07777, mask);
    umask(old);
    free(path);
}

Test(access, file_mode_is_0400_under_umask_0, .init = s_setup, .fini = s_teardown)
{
    s_check_mode_under_umask(0);
}

Test(access, file_mode_is_0400_under_umask_022, .init = s_setup, .fini = s_teardown)
{
    s_check_mode_under_umask(022);
}

Test(access, refuses_to_overwrite_existing_file, .init = s_setup, .fini = s_teardown)
{
    hq_access_t a = s_sample();
    char *path = hq_asprintf("%s/access.json", dir);
    hq_err_t err;
    cr_assert_eq(hq_access_write(path, &a, 3, &err), 0);
    cr_assert_eq(hq_access_write(path, &a, 3, &err), -1);
    cr_assert_not_null(strstr(err.text, "File exists"), "%s", err.text);
    free(path);
}

Test(access, refuses_to_write_through_symlink, .init = s_setup, .fini = s_teardown)
{
    hq_access_t a = s_sample();
    char *target = hq_asprintf("%s/target", dir);
    char *path = hq_asprintf("%s/access.json", dir);
    cr_assert_eq(symlink(target, path), 0);
    hq_err_t err;
    cr_assert_eq(hq_access_write(path, &a, 3, &err), -1);
    cr_assert_eq(access(target, F_OK), -1, "the symlink target must not be created");
    free(target);
    free(path);
}

Test(access, roundtrips_through_read, .init = s_setup, .fini = s_teardown)
{
    hq_access_t a = s_sample();
    char *path = hq_asprintf("%s/access.json", dir);
    hq_err_t err;
    cr_assert_eq(hq_access_write(path, &a, 3, &err), 0);
    hq_access_t b;
    cr_assert_eq(hq_access_read(path, &b, true, &err), 0, "%s", err.text);
    cr_assert_str_eq(b.server_uid, "aB3xYz");
    cr_assert_str_eq(b.client.host, "login1");
    cr_assert_eq(b.client.port, 41234);
    cr_assert(b.client.has_secret);
    cr_assert_eq(memcmp(b.client.secret, a.client.secret, 32), 0);
    cr_assert(!b.worker.has_secret);
    free(path);
}

Test(access, refuses_group_readable_file_that_others_can_reach, .init = s_setup, .fini = s_teardown)
{
    hq_access_t a = s_sample();
    char *path = hq_asprintf("%s/access.json", dir);
    hq_err_t err;
    cr_assert_eq(hq_access_write(path, &a, 3, &err), 0);
    cr_assert_eq(chmod(path, 0644), 0);
    cr_assert_eq(chmod(dir, 0755), 0); /* /tmp and / let everybody through too */
    cr_assert_eq(hq_access_read(path, &a, true, &err), -1);
    cr_assert_not_null(strstr(err.text, path), "%s", err.text);
    cr_assert_not_null(strstr(err.text, "has permissions 0644"), "%s", err.text);
    cr_assert_not_null(strstr(err.text, "chmod 600"), "%s", err.text);
    cr_assert_eq(chmod(path, 0600), 0);
    cr_assert_eq(hq_access_read(path, &a, true, &err), 0);
    free(path);
}

Test(access, accepts_group_readable_file_in_a_private_directory, .init = s_setup,
     .fini = s_teardown)
{
    hq_access_t a = s_sample();
    char *sub = hq_asprintf("%s/open", dir);
    cr_assert_eq(mkdir(sub, 0755), 0);
    char *path = hq_asprintf("%s/access.json", sub);
    hq_err_t err;
    cr_assert_eq(hq_access_write(path, &a, 3, &err), 0);
    cr_assert_eq(chmod(path, 0644), 0);
    cr_assert_eq(chmod(dir, 0700), 0); /* closes the way to sub for everybody else */
    char *closed = NULL;
    cr_assert_eq(hq_access_closed_dir(path, &closed), 0);
    cr_assert_str_eq(closed, dir);
    free(closed);
    cr_assert_eq(hq_access_read(path, &a, true, &err), 0, "%s", err.text);
    cr_assert_eq(chmod(dir, 0711), 0); /* search for others is enough to reach it */
    cr_assert_eq(hq_access_closed_dir(path, &closed), 0);
    cr_assert_null(closed);
    cr_assert_eq(hq_access_read(path, &a, true, &err), -1);
    free(path);
    free(sub);
}

Test(access, refuses_file_of_other_owner, .init = s_setup, .fini = s_teardown)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to chown");
    hq_access_t a = s_sample();
    char *path = hq_asprintf("%s/access.json", dir);
    hq_err_t err;
    cr_assert_eq(hq_access_write(path, &a, 3, &err), 0);
    cr_assert_eq(chown(path, 65534, 65534), 0);
    cr_assert_eq(hq_access_read(path, &a, true, &err), -1);
    cr_assert_not_null(strstr(err.text, "owned by uid 65534"), "%s", err.text);
    free(path);
}

static void s_write_raw(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

Test(access, reports_version_mismatch, .init = s_setup, .fini = s_teardown)
{
    char *path = hq_asprintf("%s/access.json", dir);
    s_write_raw(path, "{\"version\": \"0.1.0\", \"server_uid\": \"abcdef\", \"client\": {\"host\": "
                      "\"h\", \"port\": 1, \"secret_key\": null}}");
    hq_access_t a;
    hq_err_t err;
    cr_assert_eq(hq_access_read(path, &a, true, &err), -1);
    char *expected = hq_asprintf("Hyperqueue version mismatch detected.\nAccess record contains "
                                 "version 0.1.0, but the current version is %s.",
                                 HQ_VERSION);
    cr_assert_str_eq(err.text, expected);
    cr_assert_eq(hq_access_read(path, &a, false, &err), 0);
    free(expected);
    free(path);
}

Test(access, rejects_malformed_files, .init = s_setup, .fini = s_teardown)
{
    char *path = hq_asprintf("%s/bad.json", dir);
    const char *bad[] = {
        "not json",
        "[]",
        "{\"server_uid\": \"x\"}",
        "{\"version\": \"" HQ_VERSION "\", \"client\": {\"host\": \"h\", \"port\": 70000}}",
        "{\"version\": \"" HQ_VERSION
        "\", \"client\": {\"host\": \"h\", \"port\": 1, \"secret_key\": \"zz\"}}",
        "{\"version\": \"" HQ_VERSION "\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unlink(path);
        s_write_raw(path, bad[i]);
        hq_access_t a;
        hq_err_t err;
        cr_assert_eq(hq_access_read(path, &a, true, &err), -1, "accepted: %s", bad[i]);
    }
    free(path);
}

Test(access, generate_makes_random_secrets_and_uid)
{
    hq_access_t a, b;
    hq_access_generate(&a, "h1", 1, "h2", 2);
    hq_access_generate(&b, "h1", 1, "h2", 2);
    cr_assert_eq(strlen(a.server_uid), 6);
    for (int i = 0; i < 6; i++)
        cr_assert(isalnum((unsigned char)a.server_uid[i]));
    cr_assert(a.client.has_secret && a.worker.has_secret);
    cr_assert_neq(memcmp(a.client.secret, b.client.secret, 32), 0);
    cr_assert_neq(memcmp(a.client.secret, a.worker.secret, 32), 0);
    cr_assert_str_eq(a.version, HQ_VERSION);
    cr_assert_str_eq(a.worker.host, "h2");
}

Test(access, run_dirs_are_numbered_after_the_highest, .init = s_setup, .fini = s_teardown)
{
    char *sd = hq_asprintf("%s/server", dir);
    hq_err_t err;
    char *run = hq_server_dir_new_run(sd, &err);
    cr_assert_not_null(run, "%s", err.text);
    char *exp = hq_asprintf("%s/001", sd);
    cr_assert_str_eq(run, exp);
    struct stat st;
    cr_assert_eq(stat(sd, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700);
    cr_assert_eq(stat(run, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700);
    free(run);
    free(exp);
    const char *names[] = {"1", "3", "136", "x7", "hq-current"};
    for (size_t i = 0; i < 5; i++) {
        char *p = hq_asprintf("%s/%s", sd, names[i]);
        mkdir(p, 0700);
        free(p);
    }
    run = hq_server_dir_new_run(sd, &err);
    exp = hq_asprintf("%s/137", sd);
    cr_assert_str_eq(run, exp);
    free(run);
    free(exp);
    free(sd);
}

Test(access, current_link_is_set_resolved_and_cleared, .init = s_setup, .fini = s_teardown)
{
    hq_err_t err;
    char *run1 = hq_server_dir_new_run(dir, &err);
    char *run2 = hq_server_dir_new_run(dir, &err);
    char *r = hq_server_dir_resolve(dir, &err);
    cr_assert_str_eq(r, dir);
    free(r);
    cr_assert_eq(hq_server_dir_set_current(dir, run1, &err), 0);
    cr_assert_eq(hq_server_dir_set_current(dir, run2, &err), 0);
    r = hq_server_dir_resolve(dir, &err);
    cr_assert_str_eq(r, run2);
    free(r);
    hq_server_dir_clear_current(dir, run1);
    r = hq_server_dir_resolve(dir, &err);
    cr_assert_str_eq(r, run2, "a link to another run must stay");
    free(r);
    hq_server_dir_clear_current(dir, run2);
    r = hq_server_dir_resolve(dir, &err);
    cr_assert_str_eq(r, dir);
    free(r);
    free(run1);
    free(run2);
}

Test(access, resolve_rejects_non_directory)
{
    hq_err_t err;
    cr_assert_null(hq_server_dir_resolve("/x/y", &err));
    cr_assert_str_eq(err.text, "\"/x/y\" is not a directory");
}

Test(access, default_server_dir)
{
    unsetenv("HQ_SERVER_DIR");
    setenv("HOME", "/home/u", 1);
    char *d = hq_server_dir_default(NULL);
    cr_assert_str_eq(d, "/home/u/.hq-server");
    free(d);
    d = hq_server_dir_default("/abs");
    cr_assert_str_eq(d, "/abs");
    free(d);
    setenv("HQ_SERVER_DIR", "/from/env", 1);
    d = hq_server_dir_default(NULL);
    cr_assert_str_eq(d, "/from/env");
    free(d);
}

Test(access, endpoint_format)
{
    hq_access_role_t r = {.present = true, .port = 1234};
    strcpy(r.host, "login1");
    char *e = hq_access_endpoint(&r);
    cr_assert_str_eq(e, "tcp://login1:1234");
    free(e);
    strcpy(r.host, "::1");
    e = hq_access_endpoint(&r);
    cr_assert_str_eq(e, "tcp://[::1]:1234");
    free(e);
}

Test(access, setup_socket_configures_curve_and_limits)
{
    hq_access_role_t r = {.present = true, .port = 1, .has_secret = true};
    memset(r.secret, 3, sizeof r.secret);
    zsock_t *s = zsock_new(ZMQ_DEALER);
    hq_err_t err;
    cr_assert_eq(hq_access_setup_socket_role(s, &r, HQ_ROLE_WORKER, &err), 0);
    hq_curve_pair_t b, mine;
    hq_access_derive(r.secret, &b, &mine);
    char *key = zsock_curve_serverkey(s);
    cr_assert_str_eq(key, b.public_z85);
    free(key);
    key = zsock_curve_publickey(s);
    cr_assert_str_eq(key, mine.public_z85);
    free(key);
    int64_t max = 0;
    size_t sz = sizeof max;
    zmq_getsockopt(zsock_resolve(s), ZMQ_MAXMSGSIZE, &max, &sz);
    cr_assert_eq(max, 64LL * 1024 * 1024);
    cr_assert_eq(zsock_linger(s), 0);
    cr_assert_gt(zsock_heartbeat_ivl(s), 0);
    cr_assert_eq(hq_access_setup_socket(s, &r, &err), 0);
    zmq_getsockopt(zsock_resolve(s), ZMQ_MAXMSGSIZE, &max, &sz);
    cr_assert_eq(max, 256LL * 1024 * 1024);
    zsock_destroy(&s);
}
