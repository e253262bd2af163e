/* The access file (cli/REFERENCE.md §2) and the CURVE keys every side derives from a
 * role's secret. The server directory that holds it is hq_serverdir.c (util). */
#include "hq_access.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <zmq.h>

#define HQ_LOG_MODULE "hq::access"
#include "hq_log.h"
#include "hq_msg.h"
#include "hq_util.h"

#define S_ACCESS_MAX_BYTES (64 * 1024)
#define S_KDF_CONTEXT "hqcurve1"
#define S_KDF_BROKER 1
#define S_KDF_ROLE 2
/* ZMTP heartbeats on client/worker connections (ms). */
#define S_ZMTP_HB_IVL 3000
#define S_ZMTP_HB_TIMEOUT 10000
#define S_ZMTP_HB_TTL 10000

#ifndef HQ_VERSION
#define HQ_VERSION "unknown"
#endif

/* ---- keys ---- */

static void s_sodium_init(void)
{
    /* sodium_init is idempotent and thread-safe; it fails only without an entropy
     * source, in which case randombytes aborts on use (an environment fault). */
    if (sodium_init() < 0)
        abort();
}

static void s_derive_pair(const uint8_t secret[HQ_SECRET_BYTES], uint64_t id, hq_curve_pair_t *out)
{
    uint8_t seed[crypto_box_SEEDBYTES];
    uint8_t sk[crypto_box_SECRETKEYBYTES];
    crypto_kdf_derive_from_key(seed, sizeof seed, id, S_KDF_CONTEXT, secret);
    crypto_box_seed_keypair(out->public_bin, sk, seed);
    zmq_z85_encode(out->public_z85, out->public_bin, 32);
    zmq_z85_encode(out->secret_z85, sk, 32);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(sk, sizeof sk);
}

void hq_access_derive(const uint8_t secret[HQ_SECRET_BYTES], hq_curve_pair_t *broker,
                      hq_curve_pair_t *role)
{
    s_sodium_init();
    if (broker)
        s_derive_pair(secret, S_KDF_BROKER, broker);
    if (role)
        s_derive_pair(secret, S_KDF_ROLE, role);
}

static void s_fill_role(hq_access_role_t *r, const char *host, uint16_t port)
{
    memset(r, 0, sizeof *r);
    r->present = true;
    snprintf(r->host, sizeof r->host, "%s", host ? host : "");
    r->port = port;
    r->has_secret = true;
    randombytes_buf(r->secret, sizeof r->secret);
}

void hq_access_generate(hq_access_t *a, const char *client_host, uint16_t client_port,
                        const char *worker_host, uint16_t worker_port)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    s_sodium_init();
    memset(a, 0, sizeof *a);
    snprintf(a->version, sizeof a->version, "%s", HQ_VERSION);
    for (int i = 0; i < 6; i++)
        a->server_uid[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
    a->server_uid[6] = '\0';
    s_fill_role(&a->client, client_host, client_port);
    s_fill_role(&a->worker, worker_host, worker_port);
}

/* ---- access file ---- */

static json_t *s_role_json(const hq_access_role_t *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "host", json_string(r->host));
    json_object_set_new(o, "port", json_integer(r->port));
    if (r->has_secret) {
        char hex[HQ_SECRET_BYTES * 2 + 1];
        sodium_bin2hex(hex, sizeof hex, r->secret, HQ_SECRET_BYTES);
        json_object_set_new(o, "secret_key", json_string(hex));
    } else {
        json_object_set_new(o, "secret_key", json_null());
    }
    return o;
}

/* The file's text: fixed key order, 2-space indent, no trailing newline. */
static char *s_access_text(const hq_access_t *a, int which)
{
    json_t *root = json_object();
    json_object_set_new(root, "version", json_string(a->version));
    if (which == 3)
        json_object_set_new(root, "server_uid", json_string(a->server_uid));
    if (which & 1)
        json_object_set_new(root, "client", s_role_json(&a->client));
    if (which & 2)
        json_object_set_new(root, "worker", s_role_json(&a->worker));
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text)
        abort(); /* jansson fails here only on out-of-memory */
    return text;
}

int hq_access_write(const char *path, const hq_access_t *a, int which, hq_err_t *err)
{
    if (which < 1 || which > 3)
        return hq_err_set(err, "Invalid access file selection %d", which);
    char *text = s_access_text(a, which);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0400);
    if (fd < 0) {
        int e = errno;
        free(text);
        return hq_err_set(err, "Cannot create access file '%s': %s", path, strerror(e));
    }
    /* The mode given to open is masked by the umask; fchmod is not. */
    if (fchmod(fd, 0400) != 0) {
        int e = errno;
        close(fd);
        unlink(path);
        free(text);
        return hq_err_set(err, "Cannot set permissions of access file '%s': %s", path, strerror(e));
    }
    size_t len = strlen(text), done = 0;
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            close(fd);
            unlink(path);
            free(text);
            return hq_err_set(err, "Cannot write access file '%s': %s", path, strerror(e));
        }
        done += (size_t)n;
    }
    free(text);
    if (fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(path);
        return hq_err_set(err, "Cannot write access file '%s': %s", path, strerror(e));
    }
    return 0;
}

static int s_parse_role(const char *path, json_t *o, const char *key, hq_access_role_t *r,
                        hq_err_t *err)
{
    memset(r, 0, sizeof *r);
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_object(v))
        return hq_err_set(err, "Invalid access file '%s': \"%s\" is not an object", path, key);
    json_t *host = json_object_get(v, "host");
    json_t *port = json_object_get(v, "port");
    json_t *secret = json_object_get(v, "secret_key");
    if (!json_is_string(host) || json_string_length(host) >= sizeof r->host)
        return hq_err_set(err, "Invalid access file '%s': invalid %s host", path, key);
    if (!json_is_integer(port) || json_integer_value(port) < 0 || json_integer_value(port) > 65535)
        return hq_err_set(err, "Invalid access file '%s': invalid %s port", path, key);
    snprintf(r->host, sizeof r->host, "%s", json_string_value(host));
    r->port = (uint16_t)json_integer_value(port);
    if (secret && !json_is_null(secret)) {
        size_t bin_len = 0;
        if (!json_is_string(secret) || json_string_length(secret) != HQ_SECRET_BYTES * 2 ||
            sodium_hex2bin(r->secret, sizeof r->secret, json_string_value(secret),
                           json_string_length(secret), NULL, &bin_len, NULL) != 0 ||
            bin_len != HQ_SECRET_BYTES)
            return hq_err_set(err, "Invalid access file '%s': %s secret_key must be 64 hex digits",
                              path, key);
        r->has_secret = true;
    }
    r->present = true;
    return 0;
}

/* True when a user other than the caller (and root, who reads everything anyway) may
 * search directory st: it is open to group or others, or it belongs to someone else.
 * The groups' members are not looked at, so "group" counts as other users. */
static bool s_dir_lets_others_through(const struct stat *st)
{
    if (st->st_mode & (S_IXGRP | S_IXOTH))
        return true;
    return st->st_uid != geteuid() && st->st_uid != 0 && (st->st_mode & S_IXUSR);
}

int hq_access_closed_dir(const char *path, char **closed)
{
    *closed = NULL;
    char *real = realpath(path, NULL);
    if (!real)
        return -1;
    char *slash;
    while ((slash = strrchr(real, '/')) != NULL) {
        if (slash == real)
            slash[1] = '\0'; /* "/" itself */
        else
            *slash = '\0';
        struct stat st;
        /* An ancestor we cannot stat is taken as open: refusing is the safe side. */
        if (stat(real, &st) == 0 && S_ISDIR(st.st_mode) && !s_dir_lets_others_through(&st)) {
            *closed = real;
            return 0;
        }
        if (strcmp(real, "/") == 0)
            break;
    }
    free(real);
    return 0;
}

/* The access file's mode lets group or others read or write it (st). Refuses it when
 * another user can actually reach it, i.e. every directory above it lets others
 * through; otherwise warns once per process and accepts it. */
static int s_check_exposure(const char *path, const struct stat *st, hq_err_t *err)
{
    static bool warned;
    unsigned mode = (unsigned)(st->st_mode & 07777);
    char *closed = NULL;
    hq_access_closed_dir(path, &closed);
    if (!closed)
        return hq_err_set(err,
                          "Access file '%s' has permissions %04o and every directory above it "
                          "lets other users through, so they can read it; refusing to use it. "
                          "Make it readable only by its owner (chmod 600 '%s') or move it into a "
                          "private directory (chmod 700)",
                          path, mode, path);
    if (!warned) {
        warned = true;
        hq_warn("Access file '%s' has permissions %04o, but no other user can reach it "
                "(directory '%s' is closed to them); using it. chmod 600 '%s' silences this "
                "warning",
                path, mode, closed, path);
    }
    free(closed);
    return 0;
}

int hq_access_read(const char *path, hq_access_t *a, bool check_version, hq_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hq_err_set(err, "Cannot read access file '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return hq_err_set(err, "Cannot read access file '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return hq_err_set(err, "Access file '%s' is not a regular file", path);
    }
    if (st.st_uid != geteuid()) {
        close(fd);
        return hq_err_set(err,
                          "Access file '%s' is owned by uid %u, not by the current user (uid %u); "
                          "refusing to use it",
                          path, (unsigned)st.st_uid, (unsigned)geteuid());
    }
    if ((st.st_mode & 0066) && s_check_exposure(path, &st, err) != 0) {
        close(fd);
        return -1;
    }
    char buf[S_ACCESS_MAX_BYTES + 1];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return hq_err_set(err, "Cannot read access file '%s': %s", path, strerror(e));
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > S_ACCESS_MAX_BYTES) {
            close(fd);
            return hq_err_set(err, "Access file '%s' is too large", path);
        }
    }
    close(fd);

    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return hq_err_set(err, "Invalid access file '%s': %s", path, jerr.text);
    hq_access_t tmp;
    memset(&tmp, 0, sizeof tmp);
    int rc = -1;
    if (!json_is_object(root)) {
        hq_err_set(err, "Invalid access file '%s': not a JSON object", path);
        goto out;
    }
    json_t *version = json_object_get(root, "version");
    if (!json_is_string(version) || json_string_length(version) >= sizeof tmp.version) {
        hq_err_set(err, "Invalid access file '%s': missing or invalid \"version\"", path);
        goto out;
    }
    snprintf(tmp.version, sizeof tmp.version, "%s", json_string_value(version));
    if (check_version && strcmp(tmp.version, HQ_VERSION) != 0) {
        hq_err_set(err,
                   "Hyperqueue version mismatch detected.\nAccess record contains version %s, but "
                   "the current version is %s.",
                   tmp.version, HQ_VERSION);
        goto out;
    }
    json_t *uid = json_object_get(root, "server_uid");
    if (uid && !json_is_null(uid)) {
        if (!json_is_string(uid) || json_string_length(uid) >= sizeof tmp.server_uid) {
            hq_err_set(err, "Invalid access file '%s': invalid \"server_uid\"", path);
            goto out;
        }
        snprintf(tmp.server_uid, sizeof tmp.server_uid, "%s", json_string_value(uid));
    }
    if (s_parse_role(path, root, "client", &tmp.client, err) != 0 ||
        s_parse_role(path, root, "worker", &tmp.worker, err) != 0)
        goto out;
    if (!tmp.client.present && !tmp.worker.present) {
        hq_err_set(err, "Invalid access file '%s': it has neither \"client\" nor \"worker\"", path);
        goto out;
    }
    *a = tmp;
    rc = 0;
out:
    sodium_memzero(&tmp, sizeof tmp);
    json_decref(root);
    return rc;
}

/* ---- sockets ---- */

int hq_access_setup_socket_role(zsock_t *sock, const hq_access_role_t *r, enum hq_role role,
                                hq_err_t *err)
{
    if (!sock || !r)
        return hq_err_set(err, "Invalid socket or access record");
    if (r->has_secret) {
        hq_curve_pair_t broker, mine;
        hq_access_derive(r->secret, &broker, &mine);
        zsock_set_curve_serverkey(sock, broker.public_z85);
        zsock_set_curve_publickey(sock, mine.public_z85);
        zsock_set_curve_secretkey(sock, mine.secret_z85);
        sodium_memzero(&mine, sizeof mine);
    }
    int64_t max = role == HQ_ROLE_WORKER ? (int64_t)HQ_WORKER_MAXMSG : (int64_t)HQ_CLIENT_MAXMSG;
    if (zmq_setsockopt(zsock_resolve(sock), ZMQ_MAXMSGSIZE, &max, sizeof max) != 0)
        return hq_err_set(err, "Cannot set ZMQ_MAXMSGSIZE: %s", zmq_strerror(zmq_errno()));
    zsock_set_linger(sock, 0);
    zsock_set_heartbeat_ivl(sock, S_ZMTP_HB_IVL);
    zsock_set_heartbeat_timeout(sock, S_ZMTP_HB_TIMEOUT);
    zsock_set_heartbeat_ttl(sock, S_ZMTP_HB_TTL);
    return 0;
}

int hq_access_setup_socket(zsock_t *sock, const hq_access_role_t *r, hq_err_t *err)
{
    return hq_access_setup_socket_role(sock, r, HQ_ROLE_CLIENT, err);
}

char *hq_access_endpoint(const hq_access_role_t *r)
{
    if (strchr(r->host, ':') && r->host[0] != '[')
        return hq_asprintf("tcp://[%s]:%u", r->host, (unsigned)r->port);
    return hq_asprintf("tcp://%s:%u", r->host, (unsigned)r->port);
}
