/* The access file (cli/REFERENCE.md §2) and the CURVE keys derived from each role's
 * secret. The access file is the trust boundary: whoever holds a role's
 * secret can connect as that role. */
#ifndef HQ_ACCESS_H
#define HQ_ACCESS_H

#include <stdbool.h>
#include <stdint.h>

#include <czmq.h>

#include "hq_err.h"
#include "hq_serverdir.h" /* the directory the access file lives in */

#define HQ_SECRET_BYTES 32

typedef struct hq_access_role {
    bool present;                    /* the role's object exists in the file */
    char host[256];                  /* advertised host */
    uint16_t port;                   /* TCP port */
    bool has_secret;                 /* false: secret_key is null (no CURVE) */
    uint8_t secret[HQ_SECRET_BYTES]; /* 32 random bytes */
} hq_access_role_t;

typedef struct hq_access {
    char version[64];        /* hq version that wrote the file */
    char server_uid[8];      /* 6 chars [A-Za-z0-9] */
    hq_access_role_t client; /* client socket */
    hq_access_role_t worker; /* worker socket */
} hq_access_t;

enum hq_role { HQ_ROLE_CLIENT = 0, HQ_ROLE_WORKER = 1 };

/* A CURVE key pair in Z85 (41 chars incl. NUL) as zsock_set_curve_* take them. */
typedef struct hq_curve_pair {
    char public_z85[41];
    char secret_z85[41];
    uint8_t public_bin[32];
} hq_curve_pair_t;

/* Derives the broker's and the role's key pairs from the role secret with
 * crypto_kdf_derive_from_key (context "hqcurve1", subkey 1 = broker, 2 = role) and
 * crypto_box_seed_keypair. Deterministic. */
void hq_access_derive(const uint8_t secret[HQ_SECRET_BYTES], hq_curve_pair_t *broker,
                      hq_curve_pair_t *role);

/* Fills a fresh access record: random secrets (libsodium), random server uid. */
void hq_access_generate(hq_access_t *a, const char *client_host, uint16_t client_port,
                        const char *worker_host, uint16_t worker_port);

/* Writes the file exactly as cli/REFERENCE.md §2 (pretty JSON, fixed key order, no trailing
 * newline) with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0400 regardless of umask.
 * which: bit 1 = client object, bit 2 = worker object (3 = both). */
int hq_access_write(const char *path, const hq_access_t *a, int which, hq_err_t *err);

/* Reads and validates an access file. Refuses a file owned by another uid, a file
 * whose mode lets group or others read or write it when they can also reach it (every
 * directory above lets others through, see hq_access_closed_dir; a file that nobody
 * else can reach is used with one warning per process), a file that is not valid, and
 * reports a version that differs from HQ_VERSION when check_version is true with the
 * two-line message of cli/REFERENCE.md §0.2. */
int hq_access_read(const char *path, hq_access_t *a, bool check_version, hq_err_t *err);

/* The first directory above path (after resolving symlinks) that no user other than
 * the caller and root can search, in *closed (caller frees), or NULL when every
 * directory lets others through. -1 when path cannot be resolved. */
int hq_access_closed_dir(const char *path, char **closed);

/* Configures a DEALER socket to connect as role to the broker described by r:
 * CURVE client keys when r->has_secret, ZMQ_MAXMSGSIZE, linger, heartbeats.
 * Does not connect. */
int hq_access_setup_socket(zsock_t *sock, const hq_access_role_t *r, hq_err_t *err);
/* Same, with the ZMQ_MAXMSGSIZE of the given role (HQ_CLIENT_MAXMSG or
 * HQ_WORKER_MAXMSG). hq_access_setup_socket uses the client limit. */
int hq_access_setup_socket_role(zsock_t *sock, const hq_access_role_t *r, enum hq_role role,
                                hq_err_t *err);

/* "tcp://host:port". Caller frees. */
char *hq_access_endpoint(const hq_access_role_t *r);

#endif
