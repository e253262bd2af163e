/* Fault injection for the journal's tests: the next N segment writes, fdatasyncs or
 * segment creations fail with a chosen errno, and a snapshot commit can stop after
 * any of its steps as if the broker died there. Process-wide; off unless a test sets
 * them. */
#include "journal_priv.h"

static _Atomic int s_fault_errno[HQ_JFAULT_COUNT];
static _Atomic int s_fault_count[HQ_JFAULT_COUNT];
static _Atomic int s_snap_stop;

void hq_journal_test_fault(enum hq_jfault_op op, int errnum, int count)
{
    if ((unsigned)op >= HQ_JFAULT_COUNT)
        return;
    s_fault_errno[op] = errnum;
    s_fault_count[op] = count;
}

void hq_journal_test_snap_stop(int after_step)
{
    s_snap_stop = after_step;
}

int hq_journal_fault_(enum hq_jfault_op op)
{
    int c = s_fault_count[op];
    if (c == 0)
        return 0;
    if (c > 0)
        s_fault_count[op] = c - 1;
    return s_fault_errno[op];
}

int hq_journal_snap_stop_(void)
{
    return s_snap_stop;
}
