/* The pure half of `hq worker deploy-ssh` (cli/REFERENCE.md §3.2): reading the host
 * file (one `host` or `host:port` per line) and building the ssh command line of
 * one host. The processes are started and awaited by cmd_deploy.c. */
#ifndef HQ_HOSTFILE_H
#define HQ_HOSTFILE_H

#include <stddef.h>

#include "hq_err.h"

typedef struct hq_host {
    char *host; /* what ssh connects to: a name, user@name or an IP address */
    int port;   /* 1-65535, or 0 = ssh's default */
    char *line; /* the line as written (trimmed), for messages */
} hq_host_t;

typedef struct hq_hostfile {
    hq_host_t *hosts;
    size_t n;
} hq_hostfile_t;

/* Parses the text of a host file: one `host`, `host:port`, `[ipv6]` or `[ipv6]:port`
 * per line; a line with two or more colons and no brackets is an IPv6 address
 * without a port. Leading/trailing whitespace is trimmed; blank lines and lines whose
 * first character is `#` are skipped. `name` (the file's path) is used in messages.
 * Errors name the line number and the value and say what is accepted; a text without
 * any host is an error too. Returns 0 or -1 (err filled, hf untouched). */
int hq_hostfile_parse(const char *text, size_t len, const char *name, hq_hostfile_t *hf,
                      hq_err_t *err);
/* Reads and parses the file at path (at most 1 MiB). */
int hq_hostfile_read(const char *path, hq_hostfile_t *hf, hq_err_t *err);
void hq_hostfile_clear(hq_hostfile_t *hf);

/* The argv (NULL-terminated, malloc'd strings) of
 * `ssh <host> -t -t [-p <port>] -- <hq> worker start <args...>`. ssh joins the words
 * after `--` into one remote shell command, so each word that the remote shell would
 * change (spaces, quotes, `$`, globs, ...) is single-quoted; plain words are passed
 * as they are. Free with hq_ssh_argv_free. */
char **hq_ssh_argv(const hq_host_t *h, const char *hq_path, int nargs, const char *const *args);
void hq_ssh_argv_free(char **argv);

#endif
