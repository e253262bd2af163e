"""Network and worker faults through the TCP relay, plus clock jumps and kill -9 of a
journaled broker (RELIABILITY.md tests 1, 12, 13, 14, 17, 18, 30; 9 and 11 are in
test_faults.py). Every relayed worker connects to the relay's port: its server dir is a
copy of the access file whose worker section points at the relay."""

import calendar
import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import HQ, Worker, pid_alive, read_pid_file, wait_until

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "bench"))
from relay import Relay  # noqa: E402

# Instance 0 records that it started and waits for the file "go" in the submit dir;
# a rerun (instance >= 1) finishes at once. Every start appends its instance id.
GATED = ('echo "$HQ_INSTANCE_ID" >> instances; echo $$ > "pid.$HQ_INSTANCE_ID"; '
         'if [ "$HQ_INSTANCE_ID" = 0 ]; then while [ ! -e go ]; do sleep 0.02; done; fi; '
         'echo "instance $HQ_INSTANCE_ID"')


def start_debug_server(env, *extra):
    """A server that logs at debug level (the stale-result lines are debug lines)."""
    env.env["RUST_LOG"] = "debug"
    try:
        return env.start_server(*extra)
    finally:
        env.env.pop("RUST_LOG", None)


def relayed_server_dir(env, relay, name="via-relay"):
    """A server dir whose access file sends workers to the relay."""
    data = json.loads(env.access_path().read_text())
    data["worker"]["host"] = "127.0.0.1"
    data["worker"]["port"] = relay.port
    d = env.tmp / name
    d.mkdir(mode=0o700)
    p = d / "access.json"
    p.write_text(json.dumps(data, indent=2))
    p.chmod(0o400)
    return d


def start_relay(env):
    relay = Relay(("127.0.0.1", env.server_info()["worker_port"])).start()
    env.relays = getattr(env, "relays", []) + [relay]
    return relay


def start_relayed_worker(env, relay, *extra, cpus=1, heartbeat="1s", hostname=None):
    env.n_workers_started += 1
    hostname = hostname or f"r{env.n_workers_started}"
    wd = env.tmp / f"wd-{hostname}-{env.n_workers_started}"
    d = getattr(relay, "server_dir", None) or relayed_server_dir(env, relay)
    relay.server_dir = d
    proc = env.spawn([HQ, "worker", "start", "--server-dir", d, "--hostname", hostname,
                      "--work-dir", wd, "--cpus", str(cpus), "--heartbeat", heartbeat, *extra],
                     f"worker-{hostname}")
    return env.wait_worker(Worker(proc, hostname, None))


@pytest.fixture
def relays(hq_env):
    yield hq_env
    for r in getattr(hq_env, "relays", []):
        r.stop()


def wait_started(env, instance=0):
    pidfile = env.work / f"pid.{instance}"
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 20,
               f"instance {instance} to start")
    pid = read_pid_file(pidfile)
    env.track_pid(pid)
    return pid


def lost_lines(env):
    return [line for line in env.server.stderr().splitlines()
            if " lost (" in line and "Worker" in line]


def journal_events(env, jdir):
    out = env.hq("journal", "export", jdir).stdout
    return [json.loads(line)["event"] for line in out.splitlines()]


# --- #13 partition-short ---------------------------------------------------------------

def test_partition_shorter_than_the_timeout_requeues_nothing(relays):
    env = relays
    start_debug_server(env)
    relay = start_relay(env)
    w1 = start_relayed_worker(env, relay, heartbeat="1s")
    env.hq("submit", "--", "bash", "-c", GATED)
    wait_started(env)
    env.wait_task_state(1, 0, "running")
    # Timeout = 2 heartbeats = 2 s. The worker sends a heartbeat once per interval, so
    # the broker's last word may already be up to 1 s old when the link stops: a pause
    # of 0.4 x timeout stays inside the budget whatever the heartbeat phase.
    relay.pause()
    (env.work / "go").touch()  # the result is produced during the partition
    time.sleep(0.8)  # the fault itself
    relay.resume()
    env.wait_job(1, timeout=20)
    t = env.tasks(1)[0]
    assert t["state"] == "finished" and t["worker"] == w1.id
    assert (env.work / "instances").read_text() == "0\n"  # instance unchanged, 0 reruns
    assert env.hq("job", "cat", "1", "stdout").stdout == "instance 0\n"
    assert [x["id"] for x in env.worker_list()] == [w1.id]
    assert w1.proc.poll() is None
    assert lost_lines(env) == []
    st = relay.stats()
    assert st["up"]["dropped_bytes"] == 0 and st["connections"] == 1


# --- #12 partition-long ----------------------------------------------------------------

def test_partition_longer_than_the_timeout_reruns_elsewhere_and_fences_the_stale_result(relays):
    env = relays
    jdir = env.tmp / "journal"
    start_debug_server(env, "--journal", jdir)
    relay = start_relay(env)
    w1 = start_relayed_worker(env, relay, "--on-server-lost", "finish-running", heartbeat="1s")
    env.hq("submit", "--", "bash", "-c", GATED)
    wait_started(env)
    env.wait_task_state(1, 0, "running")
    w2 = env.start_worker(cpus=1, heartbeat="1s")
    t0 = time.monotonic()
    relay.pause()
    # Instance 0 finishes right away; its RESULTS sit in the relay until the heal.
    (env.work / "go").touch()
    env.wait_job(1, timeout=20)
    rerun_s = time.monotonic() - t0
    t = env.tasks(1)[0]
    assert t["state"] == "finished" and t["worker"] == w2.id
    assert env.hq("job", "cat", "1", "stdout").stdout == "instance 1\n"
    # declared lost after 2 heartbeats (+ a quarter-interval tick), rerun at once
    assert 1.5 < rerun_s < 6, rerun_s
    remaining = 6.0 - (time.monotonic() - t0)  # 3 x timeout in total
    if remaining > 0:
        time.sleep(remaining)
    relay.resume()
    # the old session's result arrives after the heal and is refused
    wait_until(lambda: any(("stale result" in line or "unregistered peer" in line or
                            "Dropped RESULTS" in line) for line in
                           env.server.stderr().splitlines()),
               10, "the broker to log the refused stale result")
    # the lost worker exits, or (finish-running) comes back as a new session
    def exited_or_new_session():
        if w1.proc.poll() is not None:
            return ("exited", w1.proc.poll())
        ids = [x["id"] for x in env.worker_list()
               if x["configuration"]["hostname"] == w1.hostname and x["id"] != w1.id]
        return ("new session", ids[0]) if ids else None

    how, value = wait_until(exited_or_new_session, 70, "the lost worker to exit or re-register")
    if how == "exited":
        assert value == 1
    else:
        assert value > w2.id
    assert (env.work / "instances").read_text() == "0\n1\n"
    t = env.tasks(1)[0]
    assert t["state"] == "finished" and t["worker"] == w2.id
    assert env.job_state_counts(1)["finished"] == 1
    lost = {x["id"]: x for x in env.worker_list(all_=True)}[w1.id]
    assert lost["ended"] is not None
    assert "HEARTBEAT LOST" in env.hq("worker", "list", "--all").stdout
    env.hq("server", "stop")
    env.server.wait_exit()
    evs = journal_events(env, jdir)
    fins = [e for e in evs if e["type"] == "task-finished"]
    assert [(e["job"], e["task"], e["instance"]) for e in fins] == [(1, 0, 1)], fins
    starts = [(e["instance"], e["worker"]) for e in evs if e["type"] == "task-started"]
    assert starts == [(0, w1.id), (1, w2.id)], starts


# --- #14 lossy-network -----------------------------------------------------------------

def run_lossy(env, n_tasks, seed, timeout):
    """n_tasks short tasks through a relay adding 200 ms each way plus random stalls
    of up to 0.4 s; returns (seconds, worker)."""
    env.start_server()
    relay = start_relay(env)
    relay.delay(0.2)
    w1 = start_relayed_worker(env, relay, cpus=4, heartbeat="1s")
    stop = threading.Event()
    rnd = random.Random(seed)
    stalls = []

    def staller():
        while not stop.wait(rnd.uniform(0.3, 1.0)):
            d = rnd.uniform(0.05, 0.4)
            relay.pause()
            stop.wait(d)
            relay.resume()
            stalls.append(d)

    th = threading.Thread(target=staller, daemon=True)
    t0 = time.monotonic()
    jid = env.submit("--array", f"1-{n_tasks}", "--stdout", "none", "--stderr", "none",
                     "--", "true")
    th.start()
    try:
        env.wait_job(jid, timeout=timeout)
    finally:
        stop.set()
        th.join()
        relay.resume()
    secs = time.monotonic() - t0
    assert env.job_state_counts(jid)["finished"] == n_tasks
    assert [x["id"] for x in env.worker_list()] == [w1.id]
    assert lost_lines(env) == []
    assert w1.proc.poll() is None
    return secs, len(stalls)


def test_lossy_network_200_tasks_finish_without_a_spurious_worker_loss(relays):
    secs, stalls = run_lossy(relays, 200, seed=14, timeout=60)
    print(f"lossy: 200 tasks in {secs:.1f}s with {stalls} stalls")


# --- #17 send-to-vanished-peer ---------------------------------------------------------

def test_assign_to_a_killed_worker_requeues_long_before_the_heartbeat_timeout(server):
    env = server
    w1 = env.start_worker(cpus=2, heartbeat="30s")
    env.hq("submit", "--", "bash", "-c", GATED)
    task_pid = wait_started(env)
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


# --- #18 duplicate identity (worker restarted fast) ------------------------------------

def test_worker_restarted_at_once_gets_a_new_session_and_no_task_is_shared(hq_env):
    env = hq_env
    jdir = env.tmp / "journal"
    start_debug_server(env, "--journal", jdir)
    w1 = env.start_worker(cpus=1, hostname="node", heartbeat="1s")
    env.hq("submit", "--", "bash", "-c", GATED)
    wait_started(env)
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


# --- #30 clock-jump --------------------------------------------------------------------

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
        # ... and keeps every worker through more than 2 timeouts (2 x 2 s)
        while time.monotonic() - t_jump < 4.5:
            time.sleep(0.25)
        assert sorted(x["id"] for x in env.worker_list()) == ids, jump
    assert lost_lines(env) == []
    env.wait_job(long_job)
    assert env.hq("job", "cat", str(long_job), "stdout").stdout == "0\n"


# --- #1 broker-kill9-random (scaled down) -----------------------------------------------

def test_kill9_journaled_broker_twice_during_a_2k_task_run(hq_env):
    import fault_kill9
    rep = fault_kill9.run_seed(hq_env, seed=1, n_tasks=2000, n_kills=2, n_workers=2,
                               max_task_ms=0, timeout=90)
    print("kill9:", json.dumps(rep))
    fault_kill9.assert_report(rep)


# --- #16 router-hwm-drop (credit-bounded variant) ---------------------------------------

def test_tasks_sent_to_a_stopped_worker_are_not_stuck(server):
    """The broker's send queue toward a worker that stopped reading is bounded by the
    worker's credit (the SNDHWM of 100000 is not reachable from a test); once the
    stopped worker is declared lost its share goes back to the queue and the job
    completes elsewhere (RELIABILITY.md test 16: 0 tasks stuck)."""
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
