"""Losing workers mid-run (broker/GUARANTEES.md, G3 (worker loss); cases worker-kill9,
worker-hang, send-to-vanished-peer, duplicate-identity, router-hwm-drop and
clock-jump): a killed, stopped or vanished worker is declared lost and its task runs
again elsewhere under the next instance id; a worker back at once gets a new session;
a worker whose broker is killed exits 1 (cli/REFERENCE.md §0, exit codes); wall-clock
jumps lose nobody."""

import calendar
import os
import signal
import time

import pytest

from hqtest import (GATED_SCRIPT, HQ, RERUN_SCRIPT, Worker, journal_events, lost_lines,
                    read_pid_file,
                    pid_alive, start_debug_server, wait_instance_started, wait_until)


def start_first_instance(env):
    """Submits RERUN_SCRIPT, waits until instance 0 runs on the only worker; returns
    the task process PID."""
    env.hq("submit", "--", "bash", "-c", RERUN_SCRIPT)
    pid = wait_instance_started(env)
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
    # G3 (worker loss): within 2 x heartbeat + 2 s, with some slack for a loaded machine
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
    # kills its task and exits 1 (case worker-hang); the result stays as it was
    assert w1.proc.wait_exit(timeout=20) == 1
    wait_until(lambda: not pid_alive(task_pid), 10, f"stale task process {task_pid} to die")
    assert server.tasks(1)[0]["state"] == "finished"
    assert server.job_state_counts(1)["finished"] == 1
    assert server.hq("job", "cat", "1", "stdout").stdout == "ran instance 1\n"


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


# --- a send to a worker that is gone ---------------------------------------------------

def test_assign_to_a_killed_worker_requeues_long_before_the_heartbeat_timeout(server):
    env = server
    w1 = env.start_worker(cpus=2, heartbeat="30s")
    env.hq("submit", "--", "bash", "-c", GATED_SCRIPT)
    task_pid = wait_instance_started(env)
    env.wait_task_state(1, 0, "running")
    w1.proc.popen.kill()
    w1.proc.popen.wait()
    t0 = time.monotonic()
    # a new job goes to the dead worker's free cpu: the send fails (EHOSTUNREACH with
    # ROUTER_MANDATORY) and both tasks go back to the queue at once
    env.submit("--", "true")
    env.wait_task_state(1, 0, "waiting", timeout=20)
    requeue_s = time.monotonic() - t0
    print(f"send-to-vanished-peer: requeued after {requeue_s:.2f}s (heartbeat timeout 60s)")
    assert requeue_s < 5, requeue_s
    assert "CONNECTION LOST" in env.hq("worker", "list", "--all").stdout
    wait_until(lambda: not pid_alive(task_pid), 10, "the dead worker's task to die")
    w2 = env.start_worker(cpus=1, heartbeat="1s")
    env.wait_job("1-2")
    t = env.tasks(1)[0]
    assert t["state"] == "finished" and t["worker"] == w2.id
    assert env.tasks(2)[0]["worker"] == w2.id
    assert (env.work / "instances").read_text() == "0\n1\n"


# --- a worker restarted at once with the same identity --------------------------------

def test_worker_restarted_at_once_gets_a_new_session_and_no_task_is_shared(hq_env):
    env = hq_env
    jdir = env.tmp / "journal"
    start_debug_server(env, "--journal", jdir)
    w1 = env.start_worker(cpus=1, hostname="node", heartbeat="1s")
    env.hq("submit", "--", "bash", "-c", GATED_SCRIPT)
    wait_instance_started(env)
    env.wait_task_state(1, 0, "running")
    w1.proc.popen.kill()
    w1.proc.popen.wait()
    # the same host comes back at once, before the broker noticed anything
    proc = env.spawn([HQ, "worker", "start", "--server-dir", env.server_dir, "--hostname",
                      "node", "--work-dir", env.tmp / "wd-node-again", "--cpus", "1",
                      "--heartbeat", "1s"], "worker-node-again")
    w1b = Worker(proc, "node", None)

    def new_session():
        ids = [x["id"] for x in env.worker_list() if x["configuration"]["hostname"] == "node"
               and x["id"] != w1.id]
        return ids[0] if ids else None

    w1b.id = wait_until(new_session, 20, "the restarted worker to register")
    assert w1b.id > w1.id
    env.wait_job(1, timeout=20)
    t = env.tasks(1)[0]
    assert t["state"] == "finished" and t["worker"] == w1b.id
    assert (env.work / "instances").read_text() == "0\n1\n"
    workers = {x["id"]: x for x in env.worker_list(all_=True)}
    assert workers[w1.id]["ended"] is not None and workers[w1b.id]["ended"] is None
    env.hq("server", "stop")
    env.server.wait_exit()
    evs = journal_events(env, jdir)
    starts = [(e["instance"], e["worker"]) for e in evs if e["type"] == "task-started"]
    assert starts == [(0, w1.id), (1, w1b.id)], starts
    fins = [(e["instance"], e.get("worker")) for e in evs if e["type"] == "task-finished"]
    assert len(fins) == 1 and fins[0][0] == 1, fins


# --- a worker that stops reading ------------------------------------------------------

def test_tasks_sent_to_a_stopped_worker_are_not_stuck(server):
    """The broker's send queue toward a worker that stopped reading is bounded by the
    worker's credit (the SNDHWM of 100000 is not reachable from a test); once the
    stopped worker is declared lost its share goes back to the queue and the job
    completes elsewhere (broker/GUARANTEES.md, case router-hwm-drop: 0 tasks stuck)."""
    env = server
    w1 = env.start_worker(cpus=2, heartbeat="1s")
    w1.proc.popen.send_signal(signal.SIGSTOP)
    try:
        jid = env.submit("--array", "1-1000", "--stdout", "none", "--stderr", "none",
                         "--", "true")
        # the broker sent w1 its credit's worth of ASSIGNs, which w1 never reads
        wait_until(lambda: "HEARTBEAT LOST" in env.hq("worker", "list", "--all").stdout, 10,
                   "the stopped worker to be declared lost")
        assert env.job_state_counts(jid)["waiting"] == 1000
        w2 = env.start_worker(cpus=2, heartbeat="1s")
        env.wait_job(jid, timeout=60)
        counts = env.job_state_counts(jid)
        assert counts["finished"] == 1000, counts
        assert all(t["worker"] == w2.id for t in env.tasks(jid).values())
    finally:
        w1.proc.popen.send_signal(signal.SIGCONT)
    assert w1.proc.wait_exit(timeout=20) == 1


# --- wall-clock jumps -----------------------------------------------------------------

FAKETIME_LIBS = ["/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
                 "/usr/lib/faketime/libfaketimeMT.so.1"]


def test_wall_clock_jumps_do_not_lose_workers(hq_env):
    lib = next((p for p in FAKETIME_LIBS if os.path.exists(p)), None)
    if lib is None:
        pytest.skip("libfaketime is not installed (Debian package faketime)")
    env = hq_env
    offset = env.tmp / "faketime"
    offset.write_text("+0\n")
    fenv = dict(env.env)
    # The wall clock (CLOCK_REALTIME) jumps; CLOCK_MONOTONIC does not, as on a real
    # machine whose time is stepped by an administrator or NTP.
    fenv.update({"LD_PRELOAD": lib, "FAKETIME_TIMESTAMP_FILE": str(offset),
                 "FAKETIME_NO_CACHE": "1", "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
    proc = env.spawn([HQ, "server", "start", "--server-dir", env.server_dir, "--host",
                      "127.0.0.1"], "server", env=fenv)
    env.server = proc
    env.wait_server(proc)
    workers = [env.start_worker(cpus=1, heartbeat="1s") for _ in range(3)]
    ids = sorted(w.id for w in workers)
    long_job = env.submit("--", "bash", "-c", "sleep 4; echo $HQ_INSTANCE_ID")
    env.wait_task_state(long_job, 0, "running")
    for jump in ("+3600", "-3600"):
        offset.write_text(jump + "\n")
        t_jump = time.monotonic()
        jid = env.submit("--", "true")
        env.wait_job(jid)
        # the broker sees the jumped clock (its submission time moved) ...
        stamp = env.hq_json("job", "info", str(jid))[0]["started_at"]
        seen = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
        assert abs(seen - (time.time() + int(jump))) < 120, (jump, stamp)
        # ... and keeps every worker all through more than 2 timeouts (2 x 2 s)
        while True:
            assert sorted(x["id"] for x in env.worker_list()) == ids, jump
            if time.monotonic() - t_jump >= 4.5:
                break
            time.sleep(0.25)
    assert lost_lines(env) == []
    env.wait_job(long_job)
    assert env.hq("job", "cat", str(long_job), "stdout").stdout == "0\n"


# --- a paused server --------------------------------------------------------------------

# Task 0 finishes when the file "go0" appears, task 1 when "go1" does; each start is
# recorded as "task:instance" in "starts".
PAUSE_SCRIPT = ('echo "$HQ_TASK_ID:$HQ_INSTANCE_ID" >> starts; echo $$ > "pid.$HQ_TASK_ID"; '
                'while [ ! -e "go$HQ_TASK_ID" ]; do sleep 0.02; done; echo done')


def test_a_paused_server_loses_no_worker_and_reruns_no_task(server):
    """SIGSTOP of the server for longer than two heartbeats, then SIGCONT: the silence
    was the server's own, so it gives the worker a fresh heartbeat window; the task that
    finished during the pause keeps its result and the one still running is neither
    killed nor counted as a crash (--crash-limit 1 would fail it)."""
    w = server.start_worker("--on-server-lost", "finish-running", cpus=2, heartbeat="1s")
    jid = server.submit("--crash-limit", "1", "--array", "0-1", "--", "bash", "-c",
                        PAUSE_SCRIPT)
    for task in (0, 1):
        server.wait_task_state(jid, task, "running")
    wait_until(lambda: (server.work / "pid.1").exists() and (server.work / "pid.0").exists(),
               10, "both tasks to write their pids")
    pid0 = read_pid_file(server.work / "pid.0")
    pid1 = read_pid_file(server.work / "pid.1")
    server.track_pid(pid1)
    server.server.popen.send_signal(signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        (server.work / "go0").touch()
        wait_until(lambda: not pid_alive(pid0), 10, "task 0 to end during the pause")
        # the fault itself: a pause of more than 2 heartbeats + a tick
        time.sleep(max(0.0, 4.0 - (time.monotonic() - t0)))
    finally:
        server.server.popen.send_signal(signal.SIGCONT)
    server.wait_task_state(jid, 0, "finished")
    assert pid_alive(pid1), "the running task was killed after the pause"
    (server.work / "go1").touch()
    server.wait_job(jid)
    tasks = server.tasks(jid)
    assert [tasks[i]["state"] for i in (0, 1)] == ["finished", "finished"], tasks
    assert sorted((server.work / "starts").read_text().split()) == ["0:0", "1:0"]
    assert "stood still" in server.server.stderr()
    assert w.proc.poll() is None


# --- the orphans of a killed worker ----------------------------------------------------

def group_members(pgid):
    """PIDs of the live processes whose process group is pgid."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(rest[2]) == pgid and rest[0] not in ("Z", "X"):
            found.append(int(entry))
    return found


def test_kill9_of_a_worker_leaves_no_process_of_its_task_groups(server):
    """Setup: a task whose shell starts a background job and waits on a foreground
    one (`sleep 311 & sleep 313`), all in the task's process group. Fault: SIGKILL of
    the worker. Expected: the shell dies with the worker and, within seconds, so does
    every other process of its group (the orphan guard kills them); before, both
    sleeps ran on with parent 1 beside the rerun."""
    w = server.start_worker(cpus=1, heartbeat="1s")
    server.hq("submit", "--", "bash", "-c",
              "echo $$ > pid.0; sleep 311 & echo $! > bg.0; sleep 313")
    wait_until(lambda: (server.work / "bg.0").exists() and
               (server.work / "bg.0").read_text().strip(), 20, "the task to start")
    pgid = read_pid_file(server.work / "pid.0")
    bg = read_pid_file(server.work / "bg.0")
    members = wait_until(lambda: len(group_members(pgid)) >= 2 and group_members(pgid), 10,
                         "the task's group to have its processes")
    assert bg in members
    for pid in members:
        server.track_pid(pid)
    w.proc.popen.kill()
    w.proc.popen.wait()
    wait_until(lambda: group_members(pgid) == [], 10,
               f"every process of the task's group {pgid} to die")
