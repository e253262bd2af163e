/* Resource syntax shared by all three programs (cli/REFERENCE.md §1.3, §1.4): worker resource
 * definitions, task resource requests, their display and summary forms. Amounts
 * are fixed-point: 1 unit = HQ_AMOUNT_ONE. */
#ifndef HQ_RESOURCE_H
#define HQ_RESOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "hq_err.h"

typedef int64_t hq_amount_t;
#define HQ_AMOUNT_ONE 10000

/* ---- worker side: what a worker has ---- */

enum hq_res_kind {
    HQ_RES_LIST = 0,   /* labels, one group */
    HQ_RES_RANGE = 1,  /* range(start-end) of integer labels */
    HQ_RES_GROUPS = 2, /* several groups of labels (NUMA nodes) */
    HQ_RES_SUM = 3,    /* a divisible amount (e.g. mem in MiB) */
};

typedef struct hq_label_group {
    uint32_t n;    /* number of labels */
    char **labels; /* owned strings */
} hq_label_group_t;

typedef struct hq_wres {
    char *name;               /* resource name, owned */
    enum hq_res_kind kind;    /* form of the definition */
    uint32_t n_groups;        /* LIST: 1, GROUPS: >= 1, RANGE/SUM: 0 */
    hq_label_group_t *groups; /* owned array of n_groups */
    uint64_t range_start;     /* RANGE: first label */
    uint64_t range_end;       /* RANGE: last label, inclusive */
    hq_amount_t sum_size;     /* SUM: capacity in fixed-point units */
} hq_wres_t;

typedef struct hq_wres_list {
    uint32_t n;     /* number of resources */
    hq_wres_t *res; /* owned array */
} hq_wres_list_t;

/* Parses a --cpus value (N, AxB, [..], [[..],..], range(a-b)); sum() is rejected
 * with "Resource kind `sum` cannot be used with CPUs. CPUs must have identity". */
int hq_wres_parse_cpus(const char *def, hq_wres_t *out, hq_err_t *err);

/* Parses "NAME=DEF" of --resource (list, AxB, range, groups, sum). */
int hq_wres_parse_named(const char *arg, hq_wres_t *out, hq_err_t *err);

void hq_wres_clear(hq_wres_t *r);
void hq_wres_list_clear(hq_wres_list_t *l);
/* Deep copy. */
int hq_wres_copy(hq_wres_t *dst, const hq_wres_t *src);

/* Number of indices (list/range/groups) or the sum size in units (sum). */
hq_amount_t hq_wres_capacity(const hq_wres_t *r);

/* One-line summary of a list (cli/REFERENCE.md §1.4): "cpus 4; mem 1.50 GiB". Caller frees. */
char *hq_wres_summary(const hq_wres_list_t *l, bool multiline);

/* Same, with the suffix " [coupled]" after every resource i with coupled[i] (coupled
 * may be NULL: none). Caller frees. */
char *hq_wres_summary_ex(const hq_wres_list_t *l, bool multiline, const bool *coupled);

/* Full form for hwdetect: "cpus: [[0,1],[2,3]]" etc. Caller frees. */
char *hq_wres_full(const hq_wres_t *r);

/* ---- coupling: NUMA affinity between groups of different resources ---- */

#define HQ_COUPLING_DEFAULT_WEIGHT 256
#define HQ_COUPLING_MAX_WEIGHT 65535

typedef struct hq_coupling {
    uint32_t resource1_idx; /* index into the name-sorted resource list */
    uint32_t group1_idx;    /* group of resource1 */
    uint32_t resource2_idx; /* another resource */
    uint32_t group2_idx;    /* group of resource2 */
    uint32_t weight;        /* 0..65535, default 256 */
} hq_coupling_t;

/* Groups a resource can be coupled by: LIST/GROUPS n_groups, RANGE 1, SUM 0. */
uint32_t hq_wres_coupling_groups(const hq_wres_t *r);

/* Parses --coupling "R1[g]:R2[h][=W],..." against the (name-sorted) list l into a
 * new array (*out, *n; caller frees *out). Errors (err.text): "Missing ':'",
 * "Missing '['", "Missing ']'", "Resource not found: <name>", "Invalid group
 * index: <x>" (not a number 0..255), "Invalid weight: <w>". Group ids are checked
 * against the resources by hq_coupling_validate. */
int hq_coupling_parse(const char *spec, const hq_wres_list_t *l, hq_coupling_t **out, uint32_t *n,
                      hq_err_t *err);

/* Checks parsed coupling items against the resources they name (the worker refuses
 * to start otherwise): "Resource '<name>' has only a single group" (a range, a list
 * or one group cannot be coupled), "Invalid group id <g> for resource '<name>'". */
int hq_coupling_validate(const hq_coupling_t *c, uint32_t n, const hq_wres_list_t *l,
                         hq_err_t *err);

/* ---- task side: what a task asks for ---- */

enum hq_policy {
    HQ_POLICY_COMPACT = 0,
    HQ_POLICY_FORCE_COMPACT = 1, /* compact! */
    HQ_POLICY_TIGHT = 2,
    HQ_POLICY_FORCE_TIGHT = 3, /* tight! */
    HQ_POLICY_SCATTER = 4,
};

typedef struct hq_rreq {
    char *name;            /* resource name, owned */
    bool all;              /* "all": everything the worker has */
    hq_amount_t amount;    /* fixed-point, > 0 unless all */
    enum hq_policy policy; /* placement policy */
} hq_rreq_t;

typedef struct hq_rvariant {
    uint32_t n_nodes;     /* > 0: multi-node task, entries empty */
    uint64_t min_time_ns; /* --time-request */
    uint32_t weight;      /* fixed-point, default HQ_AMOUNT_ONE */
    uint32_t n_entries;   /* number of requests; cpus first */
    hq_rreq_t *entries;   /* owned array */
} hq_rvariant_t;

/* Parses the value of --cpus (V) or --resource (NAME=V) into req. Errors name the
 * value: "Zero resources cannot be requested", "Resource precision exceeded", ... */
int hq_rreq_parse(const char *name, const char *value, hq_rreq_t *out, hq_err_t *err);
int hq_rreq_parse_named(const char *arg, hq_rreq_t *out, hq_err_t *err);
void hq_rreq_clear(hq_rreq_t *r);
void hq_rvariant_clear(hq_rvariant_t *v);

/* "2 compact", "0.5 scatter", "all". Caller frees. */
char *hq_rreq_format(const hq_rreq_t *r);

/* Prints an amount without trailing zeros: "0.5", "2", "1.25". Caller frees. */
char *hq_amount_format(hq_amount_t a);

/* Display form of a task's variants (cli/REFERENCE.md §1.3) for tables. Caller frees. */
char *hq_rvariants_display(const hq_rvariant_t *v, uint32_t n);

/* Environment-variable form of a resource name: chars outside [A-Za-z0-9] -> '_'. */
char *hq_resource_env_name(const char *name);

const char *hq_policy_name(enum hq_policy p); /* "compact", "compact!", ... */

#endif
