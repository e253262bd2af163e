"""The crash limit (`hq submit --crash-limit`; broker/GUARANTEES.md, case crash-limit):
each loss of a worker while it ran a task counts as a crash of that task; the task
fails once its count reaches the limit (`never-restart`: at the first loss, even a
graceful one; `unlimited`: never), and a graceful `hq worker stop` does not count,
while a worker that exits because of SIGINT/SIGTERM/SIGTSTP is lost (CONNECTION LOST).
Tasks that kill their worker before their start was reported are in
test_crash_race.py."""

import os
import signal

import pytest

from hqtest import horizontal, read_pid_file, wait_until


# Instances below LAST kill their own worker (the task's parent) once the file
# go.<instance> exists, then hang; instance LAST finishes. Every start appends its
# instance id to "instances". The gate lets the test wait until the broker knows the
# task is running, so each loss is one of a running task (test_crash_race.py covers
# tasks that kill their worker before their STARTED report left).
SELF_KILL = ('echo "$HQ_INSTANCE_ID" >> instances; echo $$ > "pid.$HQ_INSTANCE_ID"; '
             'if [ "$HQ_INSTANCE_ID" -lt "$LAST" ]; then '
             'while [ ! -e "go.$HQ_INSTANCE_ID" ]; do sleep 0.02; done; '
             'kill -9 $PPID; exec sleep 100; fi; '
             'echo "survived instance $HQ_INSTANCE_ID"')


def lose_worker_to_its_task(env, instance, job=1):
    """Starts a worker; once the broker shows instance `instance` of the job's task 0
    running there, lets the task kill its worker. Returns the worker."""
    w = env.start_worker(cpus=1, heartbeat="1s")
    pidfile = env.work / f"pid.{instance}"
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 20,
               f"instance {instance}'s pid file")
    env.track_pid(read_pid_file(pidfile))
    t = env.wait_task_state(job, 0, "running")
    assert t["worker"] == w.id, t
    (env.work / f"go.{instance}").touch()
    rc = w.proc.wait_exit(timeout=30)
    assert rc == -9, (rc, w.proc.stderr()[-2000:])
    return w


def instances(env):
    return [int(x) for x in (env.work / "instances").read_text().split()]


def test_crash_limit_unlimited_keeps_retrying_past_five_lost_workers(server):
    """Setup: one task with --crash-limit unlimited whose instances 0-5 kill their own
    worker (kill -9 $PPID). Fault: six workers lost in a row, one more than the default
    limit of 5. Expected: after each loss the task is waiting again (never failed), and
    the seventh worker runs instance 6 to completion; instance ids 0..6 in order."""
    env = server
    env.env["LAST"] = "6"
    env.hq("submit", "--crash-limit", "unlimited", "--", "bash", "-c", SELF_KILL)
    for i in range(6):
        lose_worker_to_its_task(env, i)
        t = env.wait_task_state(1, 0, ("waiting", "running"), timeout=30)
        assert t["state"] != "failed", t
    w = env.start_worker(cpus=1, heartbeat="1s")
    env.wait_job(1)
    t = env.tasks(1)[0]
    assert t["state"] == "finished", t
    assert t["worker"] == w.id
    assert instances(env) == list(range(7))
    assert env.hq("job", "cat", "1", "stdout").stdout == "survived instance 6\n"
    assert "unlimited" in env.hq("job", "info", "1").stdout
    lost = [x for x in env.worker_list(all_=True) if x["id"] != w.id]
    assert len(lost) == 6 and all(x["ended"] is not None for x in lost), lost


def test_never_restart_task_that_kills_its_worker_fails_and_never_reruns(server):
    """Setup: --crash-limit never-restart, a task that kills its own worker. Fault: the
    worker dies with it. Expected: the task is FAILED with an error naming
    never-restart; a new worker does not run it again (one start only)."""
    env = server
    env.env["LAST"] = "1"
    env.hq("submit", "--crash-limit", "never-restart", "--", "bash", "-c", SELF_KILL)
    lose_worker_to_its_task(env, 0)
    t = env.wait_task_state(1, 0, "failed", timeout=30)
    assert "never-restart" in t["error"], t
    env.start_worker(cpus=1)
    # the new worker runs a later job, so it would have picked up the old task too
    jid = env.submit("--", "true")
    env.wait_job(jid)
    assert env.tasks(1)[0]["state"] == "failed"
    assert instances(env) == [0]
    assert env.job_state_counts(1)["failed"] == 1


def test_never_restart_task_fails_even_when_its_worker_is_stopped_gracefully(server):
    """Setup: --crash-limit never-restart, a long task running on a worker; a second
    job with the default limit runs beside it. Fault: `hq worker stop` (graceful, no
    crash). Expected (as HQ: the task must never run twice): the never-restart task is
    FAILED, the default-limit task goes back to waiting and finishes on a new worker,
    the stopped worker exits 0."""
    env = server
    w1 = env.start_worker(cpus=2)
    env.hq("submit", "--crash-limit", "never-restart", "--", "bash", "-c",
           'echo "$HQ_INSTANCE_ID" >> instances; echo $$ > pid; exec sleep 100')
    env.hq("submit", "--", "bash", "-c",
           'echo $$ >> pids2; [ "$HQ_INSTANCE_ID" = 0 ] && exec sleep 100; echo again')
    for jid, f in ((1, "pid"), (2, "pids2")):
        env.wait_task_state(jid, 0, "running")
        p = env.work / f
        wait_until(lambda: p.exists() and p.read_text().strip(), 10, f"job {jid}'s pid")
        env.track_pid(int(p.read_text().split()[0]))
    env.hq("worker", "stop", str(w1.id))
    assert w1.proc.wait_exit() == 0
    t = env.wait_task_state(1, 0, "failed", timeout=20)
    assert "never-restart" in t["error"], t
    env.wait_task_state(2, 0, "waiting", timeout=20)
    env.start_worker(cpus=2)
    env.wait_job(2)
    assert env.tasks(2)[0]["state"] == "finished"
    assert env.tasks(1)[0]["state"] == "failed"
    assert instances(env) == [0]


def test_graceful_stop_between_crashes_does_not_bump_the_counter(server):
    """Setup: --crash-limit 2; instance 0 kills its worker (counter 1), instance 1
    hangs. Fault: a graceful `hq worker stop` while instance 1 runs. Expected: the stop
    leaves the counter at 1, so instance 2 runs and finishes instead of the task
    failing at a counter of 2."""
    env = server
    script = ('echo "$HQ_INSTANCE_ID" >> instances; echo $$ > "pid.$HQ_INSTANCE_ID"; '
              'case "$HQ_INSTANCE_ID" in 0) while [ ! -e go.0 ]; do sleep 0.02; done; '
              'kill -9 $PPID; exec sleep 100;; '
              '1) exec sleep 100;; esac; echo "survived instance $HQ_INSTANCE_ID"')
    env.hq("submit", "--crash-limit", "2", "--", "bash", "-c", script)
    lose_worker_to_its_task(env, 0)
    env.wait_task_state(1, 0, "waiting", timeout=30)
    w = env.start_worker(cpus=1)
    env.wait_task_state(1, 0, "running")
    p = env.work / "pid.1"
    wait_until(lambda: p.exists() and p.read_text().strip(), 10, "instance 1's pid")
    env.track_pid(read_pid_file(p))
    env.hq("worker", "stop", str(w.id))
    assert w.proc.wait_exit() == 0
    env.wait_task_state(1, 0, "waiting", timeout=20)
    env.start_worker(cpus=1)
    env.wait_job(1)
    assert env.tasks(1)[0]["state"] == "finished"
    assert instances(env) == [0, 1, 2]


def test_never_restart_task_fails_when_its_worker_is_killed(server):
    w1 = server.start_worker(cpus=1, heartbeat="1s")
    server.hq("submit", "--crash-limit", "never-restart", "--", "bash", "-c",
              'echo $$ > pid; exec sleep 100')
    wait_until(lambda: (server.work / "pid").exists() and (server.work / "pid").read_text())
    server.track_pid(read_pid_file(server.work / "pid"))
    server.wait_task_state(1, 0, "running")
    w1.proc.popen.kill()
    w1.proc.popen.wait()
    server.wait_task_state(1, 0, "failed", timeout=30)


def test_graceful_stop_does_not_count_as_crash(server):
    """With --crash-limit 1 a `worker stop` must requeue, not fail, the task."""
    w1 = server.start_worker(cpus=1)
    start_first_instance_crash1 = ('echo $$ >> pids; [ "$HQ_INSTANCE_ID" = 0 ] && exec sleep 100; '
                                   'echo "instance $HQ_INSTANCE_ID"')
    server.hq("submit", "--crash-limit", "1", "--", "bash", "-c", start_first_instance_crash1)
    server.wait_task_state(1, 0, "running")
    wait_until(lambda: (server.work / "pids").exists() and (server.work / "pids").read_text())
    server.track_pid(int((server.work / "pids").read_text().split()[0]))
    server.hq("worker", "stop", str(w1.id))
    assert w1.proc.wait_exit() == 0
    server.wait_task_state(1, 0, "waiting", timeout=10)
    server.start_worker(cpus=1)
    server.wait_job(1)
    assert server.tasks(1)[0]["state"] == "finished"


def test_crash_limit_3_fails_after_the_third_lost_worker(server):
    server.hq("submit", "--crash-limit", "3", "--", "bash", "-c",
              'echo $$ > "pid.$HQ_INSTANCE_ID"; exec sleep 100')
    for instance in range(3):
        w = server.start_worker(cpus=1, heartbeat="1s")
        pidfile = server.work / f"pid.{instance}"
        wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 20,
                   f"instance {instance} to start")
        server.track_pid(read_pid_file(pidfile))
        w.proc.popen.kill()
        w.proc.popen.wait()
        expected = "failed" if instance == 2 else "waiting"
        server.wait_task_state(1, 0, expected, timeout=30)
    t = server.tasks(1)[0]
    assert t["state"] == "failed" and t["error"]
    assert not (server.work / "pid.3").exists()


# --- a worker ended by a signal (SLURM's scancel / end of allocation, ^C, ^Z) ---------

SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGTSTP]


def _signal_worker_running(env, job, instance, sig, also_task=False):
    """Starts a worker, waits until instance `instance` of the job's task 0 runs there,
    sends `sig` to the worker (and to the task's process too when also_task, as scancel
    does to every process of the allocation) and waits for the worker to exit."""
    w = env.start_worker(cpus=1)
    pidfile = env.work / f"pid.{instance}"
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 20,
               f"instance {instance}'s pid file")
    pid = read_pid_file(pidfile)
    env.track_pid(pid)
    t = env.wait_task_state(job, 0, "running")
    assert t["worker"] == w.id, t
    if also_task:
        os.kill(pid, sig)
    w.proc.popen.send_signal(sig)
    w.proc.wait_exit(timeout=30)
    return w


def _lost_state(env, wid):
    def ended():
        rows = [r for r in horizontal(env.hq("worker", "list", "--all").stdout)[1]
                if r["ID"] == str(wid)]
        return rows and rows[0]["State"] != "RUNNING" and rows[0]["State"]

    return wait_until(ended, what=f"worker {wid} to end")


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_worker_ended_by_a_signal_is_connection_lost_and_counts_a_crash(server, sig):
    """Setup: one task of `sleep 100` with --crash-limit 2. Fault: the worker running it
    gets SIGINT/SIGTERM/SIGTSTP (twice, on two workers). Expected: `worker list --all`
    shows CONNECTION LOST, not STOPPED; after the first loss the task waits again
    (crash 1 of 2), after the second it is FAILED with the crash-limit error."""
    env = server
    env.hq("submit", "--crash-limit", "2", "--", "bash", "-c",
           'echo $$ > "pid.$HQ_INSTANCE_ID"; exec sleep 100')
    w = _signal_worker_running(env, 1, 0, sig)
    assert _lost_state(env, w.id) == "CONNECTION LOST"
    t = env.wait_task_state(1, 0, "waiting")
    w2 = _signal_worker_running(env, 1, 1, sig)
    assert _lost_state(env, w2.id) == "CONNECTION LOST"
    t = env.wait_task_state(1, 0, "failed")
    assert "crashed 2 times (crash limit 2)" in t["error"], t


def test_crash_limit_1_fails_on_the_first_signal_to_the_worker(server):
    """Setup: --crash-limit 1. Fault: SIGTERM to the worker and to its task at once, as
    scancel sends it to the whole allocation (the task dies first, of a signal the worker
    did not send). Expected: the task is FAILED at this first loss, not requeued."""
    env = server
    env.hq("submit", "--crash-limit", "1", "--", "bash", "-c",
           'echo $$ > "pid.$HQ_INSTANCE_ID"; exec sleep 100')
    w = _signal_worker_running(env, 1, 0, signal.SIGTERM, also_task=True)
    assert _lost_state(env, w.id) == "CONNECTION LOST"
    t = env.wait_task_state(1, 0, ("failed", "waiting"))
    assert t["state"] == "failed", t
    assert "crashed 1 times (crash limit 1)" in t["error"], t


def test_worker_stop_is_graceful_and_counts_no_crash(server):
    """Setup: --crash-limit 1, a running task. Fault: `hq worker stop`. Expected: the
    worker is STOPPED and the task waits again (a graceful end is not a crash)."""
    env = server
    env.hq("submit", "--crash-limit", "1", "--", "bash", "-c",
           'echo $$ > "pid.$HQ_INSTANCE_ID"; exec sleep 100')
    w = env.start_worker(cpus=1)
    env.wait_task_state(1, 0, "running")
    env.hq("worker", "stop", str(w.id))
    assert _lost_state(env, w.id) == "STOPPED"
    assert env.wait_task_state(1, 0, ("waiting", "failed"))["state"] == "waiting"
