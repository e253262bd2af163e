"""Losing workers and the broker mid-run (RELIABILITY.md tests 9, 11; CLI.md §0 exit codes)."""

import signal
import time

from conftest import pid_alive, read_pid_file, wait_until

# instance 0 hangs (records its PID), any rerun finishes and says which instance it was
RERUN_SCRIPT = ('echo "$HQ_INSTANCE_ID" >> instances; echo $$ > "pid.$HQ_INSTANCE_ID"; '
                'if [ "$HQ_INSTANCE_ID" = 0 ]; then exec sleep 100; fi; '
                'echo "ran instance $HQ_INSTANCE_ID"')


def start_first_instance(env):
    """Submits RERUN_SCRIPT, waits until instance 0 runs on the only worker; returns
    the task process PID."""
    env.hq("submit", "--", "bash", "-c", RERUN_SCRIPT)
    pidfile = env.work / "pid.0"
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 20,
               "instance 0 to start")
    pid = read_pid_file(pidfile)
    env.track_pid(pid)
    env.wait_task_state(1, 0, "running")
    return pid


def test_kill9_worker_reruns_task_elsewhere_with_instance_1(server):
    w1 = server.start_worker(cpus=1, heartbeat="1s")
    task_pid = start_first_instance(server)
    assert server.tasks(1)[0]["worker"] == w1.id
    w2 = server.start_worker(cpus=1, heartbeat="1s")
    t0 = time.monotonic()
    w1.proc.popen.kill()
    w1.proc.popen.wait()
    wait_until(lambda: (server.work / "pid.1").exists(), 20, "the rerun to start")
    requeue_s = time.monotonic() - t0
    server.wait_job(1)
    t = server.tasks(1)[0]
    assert t["state"] == "finished"
    assert t["worker"] == w2.id
    assert server.hq("job", "cat", "1", "stdout").stdout == "ran instance 1\n"
    assert (server.work / "instances").read_text() == "0\n1\n"
    # within 2 x heartbeat + 2 s (RELIABILITY G3), with some slack for a loaded machine
    assert requeue_s < 8, requeue_s
    # the killed worker's task process does not outlive it
    wait_until(lambda: not pid_alive(task_pid), 10, f"task process {task_pid} to die")
    states = {x["id"]: x for x in server.worker_list(all_=True)}
    assert states[w1.id]["ended"] is not None
    out = server.hq("worker", "list", "--all").stdout
    assert "HEARTBEAT LOST" in out or "CONNECTION LOST" in out


def test_sigstop_worker_is_declared_lost_and_task_reruns(server):
    w1 = server.start_worker(cpus=1, heartbeat="1s")
    task_pid = start_first_instance(server)
    w2 = server.start_worker(cpus=1, heartbeat="1s")
    w1.proc.popen.send_signal(signal.SIGSTOP)
    try:
        server.wait_job(1, timeout=30)
        t = server.tasks(1)[0]
        assert t["state"] == "finished" and t["worker"] == w2.id
        assert server.hq("job", "cat", "1", "stdout").stdout == "ran instance 1\n"
        lost = [x for x in server.worker_list(all_=True) if x["id"] == w1.id][0]
        assert lost["ended"] is not None
        assert "HEARTBEAT LOST" in server.hq("worker", "list", "--all").stdout
    finally:
        w1.proc.popen.send_signal(signal.SIGCONT)
    # resumed, the stale worker learns it was dropped: with on-server-lost=stop it
    # kills its task and exits 1 (RELIABILITY.md test 11); the result stays as it was
    assert w1.proc.wait_exit(timeout=20) == 1
    wait_until(lambda: not pid_alive(task_pid), 10, f"stale task process {task_pid} to die")
    assert server.tasks(1)[0]["state"] == "finished"
    assert server.job_state_counts(1)["finished"] == 1
    assert server.hq("job", "cat", "1", "stdout").stdout == "ran instance 1\n"


def test_crash_counter_never_restart(server):
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


def test_worker_exits_1_when_broker_is_killed(server):
    w = server.start_worker(cpus=1, heartbeat="1s")
    server.server.popen.kill()
    server.server.popen.wait()
    assert w.proc.wait_exit(timeout=30) == 1


def test_broker_survives_worker_killed_while_idle(server):
    w1 = server.start_worker(cpus=1, heartbeat="1s")
    w1.proc.popen.kill()
    w1.proc.popen.wait()
    wait_until(lambda: not server.worker_list(), 20, "the dead worker to leave the list")
    server.start_worker(cpus=1)
    server.hq("submit", "--", "true")
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
