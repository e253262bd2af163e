"""Multi-node tasks as users see them: the task table lists every node's hostname, the
task JSON has "workers" (all ids, root first), the journal records all of them,
`worker info` of every node shows the task, and a secondary node does not exit on its
idle timeout while the task runs."""

import json

from hqtest import horizontal, journal_events, start_journaled, vertical, wait_until


def none_exits_within(workers, seconds):
    """Polls for `seconds` (past an idle timeout): True if no worker process exited."""
    try:
        wait_until(lambda: any(w.proc.poll() is not None for w in workers), timeout=seconds,
                   what="a worker to exit")
    except AssertionError:
        return True
    return False


IDLE = "3s"  # the idle timeout of the workers that must not idle out


def start_workers(env, n, *extra, first=0):
    """n workers of group g (nodeFIRST.cluster, ...) started at once (no idle gap
    between them), by id."""
    ws = [env.start_worker("--group", "g", *extra, cpus=1, hostname=f"node{i}.cluster",
                           wait=False) for i in range(first, first + n)]
    return sorted((env.wait_worker(w) for w in ws), key=lambda w: w.id)


def two_node_task(env, hold, *extra):
    """A running two-node task that waits for the file hold; its workers, root first."""
    job = env.submit("--nodes", "2", "--", "bash", "-c",
                     f"while [ ! -e {hold} ]; do sleep 0.05; done")
    ws = start_workers(env, 2, *extra)
    env.wait_task_state(job, 0, "running")
    return ws, job


def test_a_multi_node_task_reports_all_its_workers(server, tmp_path):
    hold = tmp_path / "hold"
    ws, job = two_node_task(server, hold)
    t = server.tasks(job)[0]
    assert t["workers"] == [ws[0].id, ws[1].id]
    assert "worker" not in t
    _, rows = horizontal(server.hq("task", "list", str(job)).stdout)
    assert rows[0]["Worker"] == f"{ws[0].hostname}\n{ws[1].hostname}"
    _, info = vertical(server.hq("task", "info", str(job), "0").stdout)
    assert info["Worker"].strip() == f"{ws[0].hostname}\n{ws[1].hostname}"
    main = server.hq_json("worker", "info", str(ws[0].id))[0]["runtime_info"]
    second = server.hq_json("worker", "info", str(ws[1].id))[0]["runtime_info"]
    assert main == {"MultiNodeTask": {"main_node": True}}
    assert second == {"MultiNodeTask": {"main_node": False}}
    _, info = vertical(server.hq("worker", "info", str(ws[1].id)).stdout)
    assert info["Runtime Info"].strip() == "running multinode task; secondary node"
    _, info = vertical(server.hq("worker", "info", str(ws[0].id)).stdout)
    assert info["Runtime Info"].strip() == "running multinode task; main node"
    hold.write_text("")
    server.wait_job(job)
    t = server.tasks(job)[0]
    assert t["state"] == "finished" and t["workers"] == [ws[0].id, ws[1].id]
    wait_until(lambda: server.hq_json("worker", "info", str(ws[1].id))[0]["runtime_info"]
               != {"MultiNodeTask": {"main_node": False}}, what="the secondary node to be free")


def test_a_secondary_node_does_not_idle_out_while_the_task_runs(server, tmp_path):
    hold = tmp_path / "hold"
    ws, job = two_node_task(server, hold, "--idle-timeout", IDLE)
    # well past the idle timeout: both nodes still serve the task
    assert none_exits_within(ws, 5), "a node exited on its idle timeout"
    assert [w["id"] for w in server.worker_list()] == [ws[0].id, ws[1].id]
    hold.write_text("")
    server.wait_job(job)
    # once free, the idle timeout applies again
    wait_until(lambda: ws[1].proc.poll() is not None, timeout=20,
               what="the secondary node to idle out after the task")


def test_the_journal_records_every_node_of_a_multi_node_task(hq_env, tmp_path):
    start_journaled(hq_env)
    hold = tmp_path / "hold"
    ws, job = two_node_task(hq_env, hold)
    hold.write_text("")
    hq_env.wait_job(job)
    hq_env.hq("journal", "flush")
    starts = [e for e in journal_events(hq_env) if e.get("type") == "task-started"]
    assert [e["workers"] for e in starts] == [[ws[0].id, ws[1].id]], starts


def test_a_worker_reserved_for_a_waiting_multi_node_task_does_not_idle_out(server, tmp_path):
    hold = tmp_path / "hold"
    busy = server.submit("--", "bash", "-c", f"while [ ! -e {hold} ]; do sleep 0.05; done")
    first = start_workers(server, 1)
    server.wait_task_state(busy, 0, "running")
    job = server.submit("--nodes", "3", "--", "true")
    idle = start_workers(server, 2, "--idle-timeout", IDLE, first=1)
    ws = first + idle

    def reserved(w):
        _, info = vertical(server.hq("worker", "info", str(w.id)).stdout)
        return info["Runtime Info"].strip() == "assigned tasks: 0; reserved for a multi-node task"

    wait_until(lambda: all(reserved(w) for w in idle), what="the idle workers to be reserved")
    rt = server.hq_json("worker", "info", str(idle[0].id))[0]["runtime_info"]
    assert rt["SingleNodeTasks"]["is_reserved"] is True
    # well past the idle timeout, the reserved workers wait for the task
    assert none_exits_within(idle, 5), "a reserved worker exited on its idle timeout"
    hold.write_text("")
    server.wait_job(job)
    assert server.tasks(job)[0]["workers"] == [w.id for w in ws]


def test_events_rebuilt_without_a_journal_list_every_node(server, tmp_path):
    hold = tmp_path / "hold"
    ws, job = two_node_task(server, hold)
    hold.write_text("")
    server.wait_job(job)
    lines = server.hq("journal", "replay").stdout.splitlines()
    starts = [e["event"] for e in map(json.loads, lines) if e["event"]["type"] == "task-started"]
    assert [e["workers"] for e in starts] == [[ws[0].id, ws[1].id]], starts
