"""Task results held while the journal cannot be written (broker/GUARANTEES.md, G8 (disk
faults)).

With the journal unavailable (ENOSPC from the fault shim, tools/faultshim.c, switched
on and off at run time through HQ_FAULT_FILE) running tasks continue; a result that
arrives then cannot be recorded. The broker holds it in memory and appends it again
once the journal is writable, so a kill -9 after the recovery finds the task finished:
it is not rerun. Without that the task_finished record is simply lost and the restarted
broker runs the task again."""

from hqtest import (job_states, kill9_server, set_faults, start_journaled,
                    start_shim_server, wait_until)


def test_a_result_that_arrives_while_the_disk_is_full_is_journaled_after_recovery(
        hq_env, faultshim):
    """Setup: journaled broker under the fault shim, one worker, a task that records
    its start in a marker file and waits for a gate. Fault: journal writes fail with
    ENOSPC (submits are refused with the typed error); the gate opens and the task
    finishes meanwhile; then the faults stop. Expected: the broker says it holds the
    result and, once writable, appends it again; after kill -9 and a restart on the
    journal the task is FINISHED, and a new worker does not run it again (1 marker
    line)."""
    env = hq_env
    fault = start_shim_server(env, faultshim)
    env.start_worker(cpus=1)
    jid = env.submit("--", "bash", "-c",
                     'echo "$HQ_INSTANCE_ID" >> runs; '
                     'while [ ! -e go ]; do sleep 0.02; done; echo done')
    env.wait_task_state(jid, 0, "running")
    wait_until(lambda: (env.work / "runs").exists(), 20, "the task to start")

    set_faults(fault, "write:ENOSPC:always")

    def refused():
        r = env.hq("submit", "--", "true", check=False)
        return r.returncode != 0 and "journal unavailable" in r.stdout + r.stderr

    wait_until(refused, 20, "the journal to refuse writes")
    (env.work / "go").touch()
    env.wait_job(jid, timeout=30)
    assert env.tasks(jid)[0]["state"] == "finished"
    wait_until(lambda: "task results are held in memory" in env.server.stderr(), 20,
               "the broker to hold the result")

    set_faults(fault, "")
    wait_until(lambda: "appended again" in env.server.stderr(), 20,
               "the held result to be appended again")
    # An acked submit after that: everything appended before it is durable too.
    later = env.submit("--", "true")

    kill9_server(env)
    start_journaled(env)
    states = job_states(env)
    assert jid in states and later in states, states
    t = env.tasks(jid)[0]
    assert t["state"] == "finished", t
    env.start_worker(cpus=1)
    env.wait_job(later)
    env.wait_job(jid)
    assert env.tasks(jid)[0]["state"] == "finished"
    assert (env.work / "runs").read_text().split() == ["0"]
