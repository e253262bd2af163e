"""Application seq/ack with retransmission on the worker link (broker/GUARANTEES.md,
G4 (partition), case partition-short with a reset link): the worker's connection to
the broker goes through the TCP relay, which holds traffic for a moment and then
resets both connections, so the ASSIGN and RESULTS messages it held are lost for good.
The worker reconnects under the same routing id, both sides send their
unacknowledged messages again, and nothing is requeued, lost or finished twice."""

import time

from hqtest import (journal_events, lost_lines, start_debug_server, start_relay,
                    start_relayed_worker, wait_until)

# Appends "<job> <task> <instance>" when it starts, then waits for the file go.<job> in
# the submit dir, then marks itself done.
GATED = ('echo "$HQ_JOB_ID $HQ_TASK_ID $HQ_INSTANCE_ID" >> starts; '
         'while [ ! -e "go.$HQ_JOB_ID" ]; do sleep 0.02; done; '
         'touch "done.$HQ_JOB_ID.$HQ_TASK_ID"')


def starts(env):
    p = env.work / "starts"
    return p.read_text().split("\n")[:-1] if p.exists() else []


def started(env, job, n):
    return sum(1 for line in starts(env) if line.split()[0] == str(job)) >= n


def done(env, job, n):
    return all((env.work / f"done.{job}.{t}").exists() for t in range(n))


def reset_while_in_flight(env, relay, finish_job, n, submit_next):
    """Holds the link, lets the running tasks of finish_job end (their RESULTS wait in
    the relay) and submits a new job (its ASSIGN waits in the relay), then resets
    both connections: what the relay held is never delivered."""
    conns = relay.stats()["connections"]
    relay.pause()
    (env.work / f"go.{finish_job}").touch()
    wait_until(lambda: done(env, finish_job, n), 20, f"job {finish_job}'s tasks to end")
    job = env.submit("--array", f"0-{n - 1}", "--", "bash", "-c", GATED) if submit_next else None
    time.sleep(0.3)  # the fault itself: the results and the assignment are in the relay
    relay.reset()
    relay.resume()
    wait_until(lambda: relay.stats()["connections"] > conns, 20, "the worker to reconnect")
    return job


def test_reset_link_loses_no_assignment_or_result_and_requeues_nothing(relays):
    env = relays
    jdir = env.tmp / "journal"
    start_debug_server(env, "--journal", jdir)
    relay = start_relay(env)
    # timeout 2 x 2 s: each outage (hold + reset + reconnect) stays well inside it
    w1 = start_relayed_worker(env, relay, cpus=4, heartbeat="2s")
    n = 3
    job = env.submit("--array", f"0-{n - 1}", "--", "bash", "-c", GATED)
    wait_until(lambda: started(env, job, n), 20, "the first job to start")
    jobs = [job]
    for _ in range(2):
        nxt = reset_while_in_flight(env, relay, jobs[-1], n, submit_next=True)
        jobs.append(nxt)
        # the lost ASSIGN arrives again: the new job's tasks start on the same worker
        wait_until(lambda: started(env, nxt, n), 30, f"job {nxt} to start")
    reset_while_in_flight(env, relay, jobs[-1], n, submit_next=False)
    for j in jobs:
        env.wait_job(j, timeout=30)  # the lost RESULTS arrive again

    st = relay.stats()
    assert st["connections"] == 4, st
    # The relay really discarded traffic both ways at the resets.
    assert st["up"]["reset_bytes"] > 0 and st["down"]["reset_bytes"] > 0, st
    for j in jobs:
        tasks = env.tasks(j)
        assert sorted(tasks) == list(range(n))
        for t in tasks.values():
            assert t["state"] == "finished" and t["worker"] == w1.id, t
    # every task started exactly once, as instance 0: 0 requeues, 0 reruns
    assert sorted(starts(env)) == sorted(f"{j} {t} 0" for j in jobs for t in range(n))
    assert lost_lines(env) == []
    assert [x["id"] for x in env.worker_list()] == [w1.id]
    assert w1.proc.poll() is None
    log = env.server.stderr()
    assert "Retransmitted" in log

    env.hq("server", "stop")
    env.server.wait_exit()
    evs = journal_events(env, jdir)
    fins = [(e["job"], e["task"], e["instance"]) for e in evs if e["type"] == "task-finished"]
    assert sorted(fins) == sorted((j, t, 0) for j in jobs for t in range(n)), fins
    starts_j = [(e["job"], e["task"], e["instance"]) for e in evs if e["type"] == "task-started"]
    assert sorted(starts_j) == sorted((j, t, 0) for j in jobs for t in range(n)), starts_j
