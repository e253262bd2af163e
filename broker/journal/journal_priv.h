/* Private to the journal library's files (open.c, snap_write.c, append.c, writer.c,
 * errors.c, compact.c, segment.c, queue.c, faults.c, journal_read.c, trust.c; not the record
 * codec, not the broker glue beside them): the journal object, the batches that
 * travel between the main loop and the writer thread (a batch is owned by exactly one
 * thread at a time; only the queue heads are shared, under the mutex), and the
 * functions the files share, by file. A file calls only files later in that list
 * (then the record codec), so there is no loop among them. */
#ifndef HQ_BROKER_JOURNAL_PRIV_H
#define HQ_BROKER_JOURNAL_PRIV_H

#include <pthread.h>
#include <sys/types.h>
#include <stdatomic.h>

#include "journal.h"

#define HQ_JDEF_GROUP_BYTES (1024 * 1024) /* opts.group_bytes when 0 */

/* One segment file. */
typedef struct hq_jseg {
    uint64_t seq;      /* from its name and header */
    uint64_t prev_lsn; /* last durable lsn before it (header) */
    uint16_t minor;    /* format minor of its header */
    bool bad_header;   /* its header did not verify (replay reports it) */
} hq_jseg_t;

typedef struct hq_jcb {
    hq_journal_done_fn *fn; /* callback */
    void *arg;              /* its argument */
    uint64_t lsn;           /* record it waits for */
} hq_jcb_t;

enum hq_jbatch_kind { HQ_JB_RECORDS = 0, HQ_JB_FLUSH, HQ_JB_SNAP, HQ_JB_STATE };

typedef struct hq_jbatch {
    enum hq_jbatch_kind kind; /* what it carries */
    uint8_t *buf;             /* framed records */
    size_t len, cap;          /* bytes used / allocated */
    uint32_t n_records;       /* records in buf */
    uint64_t first_lsn;       /* first record's lsn */
    uint64_t last_lsn;        /* last record's lsn */
    hq_jcb_t *cbs;            /* callbacks of records that have one */
    uint32_t n_cbs, cap_cbs;
    uint64_t born_ns;       /* CLOCK_MONOTONIC of the first append */
    int status;             /* writer's verdict: 0 or errno */
    hq_jsnap_t *snap;       /* HQ_JB_SNAP: the snapshot to commit */
    int state;              /* HQ_JB_STATE: enum hq_journal_state */
    struct hq_jbatch *next; /* queue link */
} hq_jbatch_t;

struct hq_jsnap {
    hq_journal_t *j; /* owner */
    uint64_t lsn;    /* L */
    int fd;          /* tmp file */
    char *tmp;       /* tmp path */
    char *final;     /* final path */
    uint8_t *buf;    /* pending chunk */
    size_t len, cap;
    uint64_t count;         /* records added */
    hq_journal_done_fn *cb; /* commit callback */
    void *arg;
};

struct hq_journal {
    char *path;          /* journal directory */
    int dirfd;           /* O_DIRECTORY fd for fsync */
    int lockfd;          /* PATH/LOCK (flock), -1 read-only */
    hq_journal_opts_t o; /* options with defaults filled */
    char uid[17];        /* server uid for headers */
    /* files: main thread before start, writer thread after */
    hq_jseg_t *segs; /* sorted by seq */
    uint32_t n_segs, cap_segs;
    uint64_t *snaps; /* lsns of snap files present, ascending */
    uint32_t n_snaps, cap_snaps;
    uint64_t snap_lsn;  /* last snapshot known valid (0 = none) */
    bool replayed;      /* hq_journal_replay ran */
    uint64_t last_lsn;  /* last lsn found by replay */
    bool tail_ok;       /* replay left the final segment clean and appendable: */
    uint64_t tail_seq;  /*   its seq */
    uint64_t tail_end;  /*   offset after its last record */
    uint64_t tail_last; /*   its last lsn (its prev_lsn when it has no record) */
    /* main thread */
    bool started;      /* writer running */
    uint64_t next_lsn; /* lsn of the next append */
    /* Open run of task_finished appends (opts.coalesce_finished): framed as one
     * record when another record comes, at S_RUN_MAX, or when the batch is handed
     * over. */
    uint32_t run_n;       /* instances collected (0 = no run) */
    uint32_t run_job;     /* their job */
    uint64_t run_lsn;     /* the lsn every one of them got */
    uint64_t run_wall;    /* wall time of the first */
    hq_jinst_t run[256];  /* the instances */
    uint64_t settled_lsn; /* every record <= this has had its completion callback run on
                           * the main thread (so whatever waited for it is applied) */
    hq_jbatch_t *cur;     /* batch being filled */
    hq_jbatch_t *spare;   /* recycled batches */
    uint32_t n_spare;
    zloop_t *loop;  /* attached loop or NULL */
    int kick_timer; /* armed zloop timer id, -1 */
    bool available; /* last state report */
    hq_journal_state_fn *state_fn;
    void *state_arg;
    hq_journal_tap_fn *tap_fn; /* sees every appended record (stream), or NULL */
    void *tap_arg;
    /* shared, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;                /* writer waits here for input */
    hq_jbatch_t *in_head, *in_tail;   /* main -> writer */
    hq_jbatch_t *out_head, *out_tail; /* writer -> main */
    bool stop;                        /* writer must exit once its input is drained */
    int pipe_r, pipe_w;               /* wakes the main loop when out_head is set */
    pthread_t thread;
    /* writer thread */
    int seg_fd;           /* current segment (-1 = none: must roll) */
    uint64_t seg_seq;     /* its seq */
    uint64_t seg_off;     /* next write offset */
    uint64_t seg_zeroed;  /* bytes of the segment overwritten with zeros (and synced with
                           * the next group), so syncs of records there need no metadata */
    uint64_t durable_lsn; /* last lsn known synced */
    bool unavailable;     /* the last attempt failed */
    int fail_errno;       /* why */
    uint64_t retry_ns;    /* next recovery attempt (CLOCK_MONOTONIC) */
    uint64_t backoff_ns;  /* current back-off */
    int lost_errno;       /* why records were lost since the last flush (0 = none were) */
    /* stats (written by either thread) */
    uint64_t st_lat_ns_sum, st_lat_ns_max, st_lat_n; /* main: append -> completion */
    uint64_t st_sync_ns_sum;                         /* writer: time in fdatasync */
    _Atomic uint64_t st_appended, st_durable, st_failed, st_syncs, st_writes, st_bytes, st_segments,
        st_sync_ns_max;
};

/* Batches of records the writer commits together (one pwritev + one fdatasync). */
typedef struct hq_jgroup {
    hq_jbatch_t *head, *tail; /* batches waiting for the commit */
    size_t bytes;
    uint32_t records;
} hq_jgroup_t;

/* journal_read.c: lists the directory into j->segs / j->snaps and checks every
 * header (version refusal). Removes *.tmp files unless read_only. */
int hq_journal_load_dir_(hq_journal_t *j, hq_err_t *err);
/* Paths of segment seq / snapshot lsn (caller frees). */
char *hq_journal_seg_path_(const hq_journal_t *j, uint64_t seq);
char *hq_journal_snap_path_(const hq_journal_t *j, uint64_t lsn);

/* faults.c: the injected errno for op (consuming one), or 0; the snapshot step after
 * which the writer stops (0 = off). */
int hq_journal_fault_(enum hq_jfault_op op);
int hq_journal_snap_stop_(void);

/* queue.c: main -> writer (wakes the writer). */
void hq_journal_send_(hq_journal_t *j, hq_jbatch_t *b);
/* queue.c: writer -> main (wakes the main loop through the pipe). */
void hq_journal_post_(hq_journal_t *j, hq_jbatch_t *b);
void hq_journal_post_state_(hq_journal_t *j, int state, int errnum);
/* queue.c: posts every batch of g back with status (a flush gets the error of records
 * lost since the previous flush, or the unavailability error, when status is 0) and
 * empties g. */
void hq_journal_group_done_(hq_journal_t *j, hq_jgroup_t *g, int status);

/* segment.c (writer thread): creates the next segment and makes it current (0 or an
 * errno); continues the final segment replay found clean (0, or -1: roll instead). */
int hq_journal_roll_(hq_journal_t *j);
int hq_journal_reopen_tail_(hq_journal_t *j);

/* errors.c (writer thread): enters or stays in UNAVAILABLE (back-off doubles);
 * tries to get a writable segment back; the handling of a group whose write (start =
 * the group's offset) or fdatasync failed with e. */
void hq_journal_set_unavailable_(hq_journal_t *j, int e, uint64_t now);
void hq_journal_recover_(hq_journal_t *j, uint64_t now);
void hq_journal_write_failed_(hq_journal_t *j, hq_jgroup_t *g, int e, uint64_t start, uint64_t now);
void hq_journal_sync_failed_(hq_journal_t *j, hq_jgroup_t *g, int e, uint64_t now);

/* compact.c: the writer's snapshot commit steps (0 or an errno); frees a snapshot. */
int hq_journal_snap_durable_(hq_journal_t *j, hq_jsnap_t *s);
void hq_jsnap_free_(hq_jsnap_t *s);

/* trust.c: refuses a journal directory (0 or -1 with err) not owned by this user or
 * writable by others, and a file in it (by name) that is a link, not a regular file,
 * or (unless read_only) not owned by this user or writable by others. */
int hq_journal_trust_dir_(const char *path, int dirfd, hq_err_t *err);
int hq_journal_trust_file_(const hq_journal_t *j, const char *name, hq_err_t *err);
/* trust.c: file operations on a path of the path functions above, done relative to
 * the directory's fd, never following a link (O_NOFOLLOW, O_CLOEXEC added). */
const char *hq_journal_name_(const hq_journal_t *j, const char *path);
int hq_journal_openat_(const hq_journal_t *j, const char *path, int flags, mode_t mode);
int hq_journal_renameat_(const hq_journal_t *j, const char *from, const char *to);
int hq_journal_unlinkat_(const hq_journal_t *j, const char *path);
int hq_journal_truncate_(const hq_journal_t *j, const char *path, uint64_t len);

/* writer.c: the writer thread (arg = the journal). */
void *hq_journal_writer_(void *arg);

#endif
