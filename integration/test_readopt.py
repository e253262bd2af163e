"""Broker restart with live workers, as broker/GUARANTEES.md promises in G5 (broker
restart with live workers) and checks in case broker-restart-readopt: workers started
with --on-server-lost finish-running keep their tasks while the broker is down, register
again and report them; the restarted broker re-adopts the instances its journal knows
instead of running them again. A task whose worker does not come back runs again
under a higher instance id once the grace period (HQ_READOPT_GRACE) is over."""

import json
import signal
import time
from collections import Counter

from hqtest import (HQ, Relay, Worker, journal_dir, journal_events, kill9_server,
                    start_journaled, wait_until, write_access)

# Each run leaves a marker named after its task and instance, then sleeps.
MARKER_SCRIPT = 'touch "marker.$HQ_TASK_ID.$HQ_INSTANCE_ID"; sleep {secs}'


def markers(env):
    """{task id: [instance ids]} of the marker files."""
    out = {}
    for p in env.work.glob("marker.*"):
        _, task, inst = p.name.split(".")
        out.setdefault(int(task), []).append(int(inst))
    return out


def start_workers(env, n, cpus, *extra):
    return [env.start_worker("--on-server-lost", "finish-running", *extra, cpus=cpus,
                             heartbeat="1s")
            for _ in range(n)]


def test_restart_readopts_running_tasks_without_rerunning_them(hq_env):
    env = hq_env
    env.env["HQ_READOPT_GRACE"] = "20s"
    start_journaled(env)
    workers = start_workers(env, 2, 5)
    job = env.submit("--array", "0-9", "--", "bash", "-c", MARKER_SCRIPT.format(secs=8))
    wait_until(lambda: len(markers(env)) == 10, 20, "all 10 tasks to start")
    wait_until(lambda: env.job_state_counts(job)["running"] == 10, 20, "10 running tasks")
    kill9_server(env)
    start_journaled(env)
    env.wait_job(job, timeout=60)
    counts = env.job_state_counts(job)
    assert counts["finished"] == 10, counts
    m = markers(env)
    adopted = sum(1 for insts in m.values() if insts == [0])
    assert adopted >= 10 * 0.95, m
    for t in env.tasks(job).values():
        assert t["state"] == "finished"
    # the workers stay usable in their new sessions
    assert all(w.proc.poll() is None for w in workers)
    live = env.worker_list()
    assert len(live) == 2
    nxt = env.submit("--", "true")
    env.wait_job(nxt)


def test_task_of_a_worker_that_does_not_come_back_reruns_after_the_grace(hq_env):
    env = hq_env
    env.env["HQ_READOPT_GRACE"] = "4s"
    start_journaled(env)
    stays, goes = start_workers(env, 2, 1)
    job = env.submit("--array", "0-1", "--", "bash", "-c", MARKER_SCRIPT.format(secs=6))
    wait_until(lambda: len(markers(env)) == 2, 20, "both tasks to start")
    wait_until(lambda: env.job_state_counts(job)["running"] == 2, 20, "2 running tasks")
    on_goes = [t["id"] for t in env.tasks(job).values() if t["worker"] == goes.id]
    assert len(on_goes) == 1
    lost_task = on_goes[0]
    kill9_server(env)
    goes.proc.popen.send_signal(signal.SIGKILL)
    goes.proc.popen.wait()
    start_journaled(env)
    env.wait_job(job, timeout=60)
    m = markers(env)
    kept = [t for t in m if t != lost_task][0]
    assert m[kept] == [0], m
    assert sorted(m[lost_task]) == [0, 1], m
    tasks = env.tasks(job)
    assert tasks[lost_task]["state"] == "finished"
    assert tasks[kept]["state"] == "finished"
    assert stays.proc.poll() is None


def test_reconnect_window_ends_and_worker_exits_1(hq_env):
    env = hq_env
    env.env["HQ_RECONNECT_WINDOW"] = "2s"
    start_journaled(env)
    (w,) = start_workers(env, 1, 1)
    kill9_server(env)
    assert w.proc.wait_exit(timeout=30) == 1


def test_stop_policy_worker_still_exits_1_on_broker_loss(hq_env):
    env = hq_env
    start_journaled(env)
    w = env.start_worker("--on-server-lost", "stop", cpus=1, heartbeat="1s")
    job = env.submit("--", "bash", "-c", MARKER_SCRIPT.format(secs=100))
    wait_until(lambda: len(markers(env)) == 1, 20, "the task to start")
    kill9_server(env)
    assert w.proc.wait_exit(timeout=30) == 1
    start_journaled(env)
    # the stop worker cannot come back: its task waits again at once (no grace)
    env.wait_task_state(job, 0, "waiting", timeout=10)


def sigterm_server(env):
    """SIGTERM to the broker (a batch system or service manager ending it); waits until
    it exited 0."""
    env.server.popen.send_signal(signal.SIGTERM)
    assert env.server.wait_exit(timeout=30) == 0, env.server.stderr()[-2000:]


def test_broker_stopped_by_sigterm_is_a_lost_server_and_readopts(hq_env):
    """Setup: journaled broker, a finish-running worker running one task of 6 s.
    Fault: SIGTERM to the broker, restart on the same journal. Expected: as after a
    kill -9, the worker keeps its task (no STOP), registers again and the restarted
    broker re-adopts it: one execution only, instance 0."""
    env = hq_env
    env.env["HQ_READOPT_GRACE"] = "20s"
    start_journaled(env)
    (w,) = start_workers(env, 1, 1)
    job = env.submit("--", "bash", "-c", MARKER_SCRIPT.format(secs=6))
    wait_until(lambda: len(markers(env)) == 1, 20, "the task to start")
    env.wait_task_state(job, 0, "running")
    sigterm_server(env)
    assert w.proc.poll() is None, w.proc.stderr()[-2000:]
    start_journaled(env)
    env.wait_job(job, timeout=60)
    assert markers(env) == {0: [0]}
    assert env.tasks(job)[0]["state"] == "finished"
    assert w.proc.poll() is None
    assert "Server lost" in w.proc.stderr()


def test_finish_running_worker_finishes_its_task_after_a_sigterm_broker_and_exits_1(hq_env):
    """Setup: a finish-running worker with a 2 s reconnect window running a task of
    3 s. Fault: SIGTERM to the broker, no restart. Expected: the task runs to its end
    (writes its file) and the worker exits 1 when the window is over."""
    env = hq_env
    env.env["HQ_RECONNECT_WINDOW"] = "2s"
    start_journaled(env)
    (w,) = start_workers(env, 1, 1)
    job = env.submit("--", "bash", "-c", 'touch started; sleep 3; touch finished')
    wait_until(lambda: (env.work / "started").exists(), 20, "the task to start")
    env.wait_task_state(job, 0, "running")
    sigterm_server(env)
    assert w.proc.wait_exit(timeout=30) == 1
    assert (env.work / "finished").exists(), w.proc.stderr()[-2000:]


def test_worker_notices_a_killed_broker_at_once_not_after_two_heartbeats(hq_env):
    """Setup: a `stop` worker with the default 8 s heartbeat. Fault: kill -9 of the
    broker. Expected: the worker's socket monitor sees the connection drop and the
    reconnects refused, so it exits 1 within a few seconds, not after two missed
    heartbeats (16 s)."""
    env = hq_env
    env.start_server()
    w = env.start_worker("--on-server-lost", "stop", cpus=1)
    t0 = time.monotonic()
    kill9_server(env)
    assert w.proc.wait_exit(timeout=30) == 1
    took = time.monotonic() - t0
    assert took < 5, f"the worker needed {took:.1f} s to notice the lost server"
    assert "Server lost; exiting" in w.proc.stderr()


def test_finish_running_worker_looks_for_a_restarted_broker_at_once(hq_env):
    """Setup: journaled broker, a finish-running worker with the default 8 s heartbeat
    running one task. Fault: kill -9 of the broker, restarted at once. Expected: the
    worker notices at once and registers with the new broker within a few seconds
    (not after 16 s of missed heartbeats); the task is re-adopted (instance 0)."""
    env = hq_env
    start_journaled(env)
    w = env.start_worker("--on-server-lost", "finish-running", cpus=1)
    job = env.submit("--", "bash", "-c", MARKER_SCRIPT.format(secs=6))
    wait_until(lambda: len(markers(env)) == 1, 20, "the task to start")
    env.wait_task_state(job, 0, "running")
    kill9_server(env)
    t0 = time.monotonic()
    start_journaled(env)
    wait_until(lambda: env.worker_list(), 30, "the worker to register again")
    took = time.monotonic() - t0
    assert took < 8, f"the worker needed {took:.1f} s to register again (16 s before)"
    env.wait_job(job, timeout=60)
    assert markers(env) == {0: [0]}
    assert w.proc.poll() is None


# Each run appends a line to a marker named after its task and instance, so a reused
# instance id shows as a file with two lines.
APPEND_MARKER_SCRIPT = 'echo x >> "marker.$HQ_TASK_ID.$HQ_INSTANCE_ID"; sleep {secs}'


def marker_lines(env):
    """{(task id, instance id): number of executions} of the marker files."""
    return {tuple(int(x) for x in p.name.split(".")[1:]): len(p.read_text().splitlines())
            for p in env.work.glob("marker.*")}


def test_full_size_100_tasks_readopted_across_kill9_and_5s_outage(hq_env):
    """Case broker-restart-readopt at its full size: 100 tasks of `sleep 30` on 2
    finish-running workers, the broker SIGKILLed once all of them run (the case's
    t=10 s) and restarted on the same journal after 5 s of downtime (t=15 s)."""
    env = hq_env
    env.env["HQ_READOPT_GRACE"] = "20s"  # bounds the run if a worker did not come back
    start_journaled(env)
    workers = start_workers(env, 2, 50)
    job = env.submit("--array", "0-99", "--", "bash", "-c",
                     APPEND_MARKER_SCRIPT.format(secs=30))
    wait_until(lambda: len(marker_lines(env)) == 100, 30, "all 100 tasks to start")
    wait_until(lambda: env.job_state_counts(job)["running"] == 100, 30, "100 running tasks")
    placed = {t["id"]: t["worker"] for t in env.tasks(job).values()}
    assert sorted(set(placed.values())) == sorted(w.id for w in workers), placed
    kill9_server(env)
    # 5 s of broker downtime; the workers keep their tasks meanwhile
    down_until = time.monotonic() + 5.0
    while time.monotonic() < down_until:
        assert all(w.proc.poll() is None for w in workers)
        time.sleep(0.1)
    restarted = time.monotonic()
    start_journaled(env)
    wait_until(lambda: len(env.worker_list()) == 2, 70, "both workers to register again")
    reconnect_s = time.monotonic() - restarted
    env.wait_job(job, timeout=120)
    counts = env.job_state_counts(job)
    assert counts["finished"] == 100, counts
    runs = marker_lines(env)
    assert all(n == 1 for n in runs.values()), runs  # no instance id ran twice
    by_task = {}
    for task, inst in runs:
        by_task.setdefault(task, []).append(inst)
    assert sorted(by_task) == list(range(100)), by_task
    adopted = [t for t, insts in by_task.items() if insts == [0]]
    rerun = {t: sorted(insts) for t, insts in by_task.items() if insts != [0]}
    print(f"readopt-100: workers back {reconnect_s:.1f}s after the restart, "
          f"{len(adopted)} re-adopted, {len(rerun)} rerun {rerun}")
    assert len(adopted) >= 95, rerun
    for insts in rerun.values():
        assert insts[0] == 0 and len(insts) >= 2, insts  # rerun under higher instances
    tasks = env.tasks(job)
    assert all(t["state"] == "finished" for t in tasks.values())
    assert all(w.proc.poll() is None for w in workers)
    # the journal records every task as finished exactly once
    env.hq("server", "stop")
    env.server.wait_exit()
    out = env.hq("journal", "export", journal_dir(env)).stdout
    finished = Counter()
    for line in out.splitlines():
        e = json.loads(line)["event"]
        if e["type"] == "task-finished" and e["job"] == job:
            finished[e["task"]] += 1
    assert finished == Counter({t: 1 for t in range(100)}), finished


def test_task_whose_assign_never_arrived_runs_again_without_the_grace(hq_env):
    """The broker records a dispatch and dies before the ASSIGN reaches the worker (a
    relay drops broker -> worker traffic). The worker registers again without that
    task in its report: the restarted broker runs it again at once under a new
    instance instead of waiting the grace period, and still re-adopts the task the
    worker does run."""
    env = hq_env
    env.env["HQ_READOPT_GRACE"] = "600s"  # far beyond every timeout below
    env.env["HQ_RECONNECT_WINDOW"] = "120s"
    start_journaled(env)
    relay = Relay(("127.0.0.1", env.server_info()["worker_port"])).start()
    try:
        via = env.tmp / "via-relay"
        via.mkdir(mode=0o700)
        data = json.loads(env.access_path().read_text())
        data["worker"]["host"] = "127.0.0.1"
        data["worker"]["port"] = relay.port
        write_access(via / "access.json", data)
        # heartbeat 4 s: the worker notices the silence after 8 s, the broker is
        # killed well before that
        proc = env.spawn([HQ, "worker", "start", "--server-dir", via, "--hostname", "rw",
                          "--work-dir", env.tmp / "wd-rw", "--cpus", "2", "--heartbeat",
                          "4s", "--on-server-lost", "finish-running"], "worker-rw")
        w = env.wait_worker(Worker(proc, "rw", None))
        kept = env.submit("--", "bash", "-c", 'touch "kept.$HQ_INSTANCE_ID"; '
                          'while [ ! -e go ]; do sleep 0.05; done')
        wait_until(lambda: (env.work / "kept.0").exists(), 20, "the kept task to start")
        relay.drop("down")
        late = env.submit("--", "bash", "-c", 'touch "late.$HQ_INSTANCE_ID"')

        def recorded():
            return any(e["type"] == "task-started" and e["job"] == late
                       and e["worker"] == w.id for e in journal_events(env))
        wait_until(recorded, 6, "the dispatch of the late task to be journaled")
        kill9_server(env)
        assert w.proc.poll() is None
        assert not (env.work / "late.0").exists()
        start_journaled(env)
        restarted = time.monotonic()
        data = json.loads(env.access_path().read_text())
        data["worker"]["host"] = "127.0.0.1"
        write_access(via / "access.json", data)  # straight to the new broker from now on
        wait_until(lambda: len(env.worker_list()) == 1, 60, "the worker to register again")
        back = time.monotonic()
        wait_until(lambda: (env.work / "late.1").exists(), 30,
                   "the late task to run again before the grace period is over")
        rerun = time.monotonic()
        env.wait_job(late, timeout=30)
        t = env.tasks(late)[0]
        assert t["state"] == "finished", t
        assert not (env.work / "late.0").exists(), "instance 0 never reached the worker"
        # the task the worker does run was re-adopted, not run again
        assert env.tasks(kept)[0]["state"] == "running"
        (env.work / "go").touch()
        env.wait_job(kept, timeout=30)
        assert sorted(p.name for p in env.work.glob("kept.*")) == ["kept.0"]
        assert w.proc.poll() is None
        print(f"unreported task: worker back {back - restarted:.1f}s after the restart, "
              f"task rerun {rerun - back:.2f}s later (grace 600 s)")
    finally:
        relay.stop()
