"""Network faults on the worker link through the TCP relay (broker/GUARANTEES.md,
G4 (partition); cases partition-short, partition-long and lossy-network): every
relayed worker connects to the relay's port, its server dir is a copy of the access
file whose worker section points at the relay. A reset link is in
test_retransmit.py."""

import random
import threading
import time

from hqtest import (GATED_SCRIPT, journal_events, lost_lines, start_debug_server,
                    start_relay, start_relayed_worker, wait_instance_started, wait_until)


# --- a partition shorter than the timeout ---------------------------------------------

def test_partition_shorter_than_the_timeout_requeues_nothing(relays):
    env = relays
    start_debug_server(env)
    relay = start_relay(env)
    w1 = start_relayed_worker(env, relay, heartbeat="1s")
    env.hq("submit", "--", "bash", "-c", GATED_SCRIPT)
    wait_instance_started(env)
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


# --- a partition longer than the timeout ----------------------------------------------

def test_partition_longer_than_the_timeout_reruns_elsewhere_and_fences_the_stale_result(relays):
    env = relays
    jdir = env.tmp / "journal"
    start_debug_server(env, "--journal", jdir)
    relay = start_relay(env)
    w1 = start_relayed_worker(env, relay, "--on-server-lost", "finish-running", heartbeat="1s")
    env.hq("submit", "--", "bash", "-c", GATED_SCRIPT)
    wait_instance_started(env)
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


# --- a slow link that stalls at random ------------------------------------------------

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
