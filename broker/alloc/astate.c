/* The automatic allocator's state (astate.h): the set of queues by id, finding the
 * allocation a worker belongs to, the allocator's directory and the file helpers for
 * allocation directories. Below life.c and record.c; calls only aqueue.c. */
#include "astate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hq_util.h"

int hq_alloc_mkdirs(const char *path)
{
    char *p = hq_strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = mkdir(p, 0700) != 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

int hq_alloc_write(const char *path, const char *text, int mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    return close(fd);
}

const char *hq_alloc_root(hq_alloc_t *a)
{
    if (!a->root)
        a->root = hq_asprintf("%s/autoalloc", a->b->conf.run_dir ? a->b->conf.run_dir : ".");
    return a->root;
}

void hq_alloc_insert(hq_alloc_t *a, hq_aqueue_t *q)
{
    if (a->n_queues == a->cap_queues) {
        a->cap_queues = a->cap_queues ? a->cap_queues * 2 : 4;
        a->queues = hq_realloc(a->queues, a->cap_queues * sizeof *a->queues);
    }
    a->queues[a->n_queues++] = q;
    if (q->id > a->max_queue_id)
        a->max_queue_id = q->id;
}

void hq_alloc_remove_queue(hq_alloc_t *a, hq_aqueue_t *q)
{
    for (uint32_t i = 0; i < a->n_queues; i++)
        if (a->queues[i] == q) {
            memmove(&a->queues[i], &a->queues[i + 1], (a->n_queues - i - 1) * sizeof *a->queues);
            a->n_queues--;
            break;
        }
    hq_aqueue_destroy(&q);
}

hq_aqueue_t *hq_alloc_queue(hq_alloc_t *a, uint32_t id)
{
    for (uint32_t i = 0; a && i < a->n_queues; i++)
        if (a->queues[i]->id == id)
            return a->queues[i];
    return NULL;
}

hq_allocation_t *hq_alloc_find(hq_alloc_t *a, enum hq_manager m, const char *job_id,
                               hq_aqueue_t **qp)
{
    if (m == HQ_MANAGER_NONE || !job_id || !*job_id)
        return NULL;
    enum hq_amgr want = m == HQ_MANAGER_PBS ? HQ_AMGR_PBS : HQ_AMGR_SLURM;
    for (uint32_t i = 0; i < a->n_queues; i++) {
        hq_aqueue_t *q = a->queues[i];
        hq_allocation_t *al = q->p.mgr == want ? hq_aqueue_find(q, job_id) : NULL;
        if (al) {
            *qp = q;
            return al;
        }
    }
    return NULL;
}
