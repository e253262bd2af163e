/* The two queues between the main loop and the writer thread. A batch is owned by one
 * thread at a time; only the queue heads are shared, under the mutex. Main -> writer:
 * batches of framed records, flush markers, snapshots to commit (the writer is woken
 * by the condition variable). Writer -> main: the same batches with their verdict and
 * state changes (the main loop is woken through a pipe and runs hq_journal_dispatch). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "hq_util.h"
#include "journal_priv.h"

void hq_journal_send_(hq_journal_t *j, hq_jbatch_t *b)
{
    b->next = NULL;
    pthread_mutex_lock(&j->mu);
    if (j->in_tail)
        j->in_tail->next = b;
    else
        j->in_head = b;
    j->in_tail = b;
    pthread_cond_signal(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

void hq_journal_post_(hq_journal_t *j, hq_jbatch_t *b)
{
    b->next = NULL;
    pthread_mutex_lock(&j->mu);
    bool wake = !j->out_head;
    if (j->out_tail)
        j->out_tail->next = b;
    else
        j->out_head = b;
    j->out_tail = b;
    pthread_mutex_unlock(&j->mu);
    if (wake) {
        char c = 1;
        while (write(j->pipe_w, &c, 1) < 0 && errno == EINTR)
            ;
    }
}

void hq_journal_post_state_(hq_journal_t *j, int state, int errnum)
{
    hq_jbatch_t *b = hq_calloc(1, sizeof *b);
    b->kind = HQ_JB_STATE;
    b->state = state;
    b->status = errnum;
    hq_journal_post_(j, b);
}

void hq_journal_group_done_(hq_journal_t *j, hq_jgroup_t *g, int status)
{
    for (hq_jbatch_t *b = g->head, *n; b; b = n) {
        n = b->next;
        if (status && b->n_records && !j->lost_errno)
            j->lost_errno = status;
        b->status = status;
        if (b->kind == HQ_JB_FLUSH && status == 0) {
            /* A flush promises everything appended before it: records an earlier group
             * lost make it fail too, whichever group the flush marker landed in. */
            b->status = j->lost_errno ? j->lost_errno : j->unavailable ? j->fail_errno : 0;
            j->lost_errno = 0;
        } else if (b->kind == HQ_JB_FLUSH) {
            j->lost_errno = 0;
        }
        if (status)
            j->st_failed += b->n_records;
        else
            j->st_durable += b->n_records;
        hq_journal_post_(j, b);
    }
    memset(g, 0, sizeof *g);
}
