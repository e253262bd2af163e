"""Event JSON as HyperQueue's (cli/REFERENCE.md §3.8): job-created with closed_job,
job_desc and submit_desc, worker-connected with the whole configuration, worker-lost
reasons, task-started with the resource variant; and events of a broker without a
journal, rebuilt from its state."""

import json
import os
import signal

import pytest

from hqtest import journal_events, start_journaled, wait_until


def events(text):
    return [json.loads(line)["event"] for line in text.splitlines() if line.strip()]


def of_type(evs, t):
    return [e for e in evs if e["type"] == t]


def test_job_created_event_has_closed_job_job_desc_and_submit_desc(hq_env):
    env = hq_env
    start_journaled(env)
    job = env.submit("--name", "calc", "--max-fails", "3", "--array", "1-4", "--cwd",
                     str(env.work), "--", "echo", "hi")
    env.hq("journal", "flush")
    [ev] = of_type(journal_events(env), "job-created")
    assert ev["job"] == job
    assert ev["closed_job"] is True
    assert ev["job_desc"] == {"name": "calc", "max_fails": 3}
    sd = ev["submit_desc"]
    assert sd["submit_dir"] == str(env.work)
    assert sd["stream_path"] is None
    arr = sd["task_desc"]["Array"]
    assert arr["ids"] == "1-4" and arr["entries"] is None
    assert arr["task_desc"]["program"]["args"] == ["echo", "hi"]
    assert arr["task_desc"]["program"]["cwd"] == str(env.work)
    # the live stream serves the same line
    replayed = of_type(events(env.hq("journal", "replay").stdout), "job-created")
    assert replayed == [ev]


def test_job_created_for_an_open_job_is_not_closed(hq_env):
    env = hq_env
    start_journaled(env)
    job = env.hq_json("job", "open")["id"]
    env.submit("--job", str(job), "--", "true")
    env.hq("journal", "flush")
    [ev] = of_type(journal_events(env), "job-created")
    assert ev["closed_job"] is False
    assert ev["job_desc"]["max_fails"] is None


def test_worker_connected_event_carries_the_worker_info_configuration(hq_env):
    env = hq_env
    start_journaled(env)
    w = env.start_worker("--group", "g1", "--idle-timeout", "1h", cpus=2)
    info = env.hq_json("worker", "info", "1")
    info = info[0] if isinstance(info, list) else info
    env.hq("journal", "flush")
    [ev] = of_type(journal_events(env), "worker-connected")
    assert ev["id"] == 1
    assert ev["configuration"] == info["configuration"]
    assert ev["configuration"]["group"] == "g1"
    assert ev["configuration"]["idle_timeout"] == 3600.0
    assert w.hostname == ev["configuration"]["hostname"]


def test_worker_lost_reasons_are_hyperqueue_words(hq_env):
    env = hq_env
    start_journaled(env)
    env.start_worker()
    env.hq("worker", "stop", "1")
    env.start_worker("--idle-timeout", "1s")
    w3 = env.start_worker()
    os.kill(w3.pid, signal.SIGKILL)
    wait_until(lambda: len([x for x in env.worker_list(all_=True) if x["ended"]]) == 3, 30,
               "three workers ended")
    env.hq("journal", "flush")
    reasons = {e["id"]: e["reason"] for e in of_type(journal_events(env), "worker-lost")}
    assert reasons[1] == "Stopped"
    assert reasons[2] == "IdleTimeout"
    assert reasons[3] in ("ConnectionLost", "HeartbeatLost")


def test_task_started_event_carries_the_variant_when_not_the_first(hq_env, tmp_path):
    env = hq_env
    start_journaled(env)
    env.start_worker(cpus=2)
    toml = tmp_path / "job.toml"
    toml.write_text("""
[array]
ids = "0-1"
command = ["true"]
[[array.request]]
resources = { "gpus" = 1, "cpus" = 1 }
[[array.request]]
resources = { "cpus" = 1 }
""")
    job = env.hq_json("job", "submit-file", str(toml))["id"]
    env.wait_job(job)
    plain = env.submit("--", "true")
    env.wait_job(plain)
    env.hq("journal", "flush")
    started = of_type(journal_events(env), "task-started")
    by_job = {}
    for e in started:
        by_job.setdefault(e["job"], []).append(e)
    assert [e.get("variant") for e in by_job[job]] == [1, 1]
    assert all("variant" not in e for e in by_job[plain])
    # the journal with the new record type replays: a restart keeps the job finished
    env.hq("server", "stop")
    env.server.wait_exit()
    start_journaled(env)
    assert env.hq_json("job", "info", str(job))[0]["info"]["task_stats"]["finished"] == 2


def test_first_worker_after_a_journal_restore_gets_highest_journaled_id_plus_two(hq_env):
    env = hq_env
    start_journaled(env)
    env.start_worker()
    env.start_worker()
    env.hq("server", "stop")
    env.server.wait_exit()
    start_journaled(env)
    env.start_worker()
    ids = sorted(w["id"] for w in env.worker_list())
    assert ids == [4], ids
    env.start_worker()
    assert sorted(w["id"] for w in env.worker_list()) == [4, 5]


@pytest.mark.parametrize("page", [None, "7"], ids=["one-page", "pages-of-7"])
def test_replay_without_a_journal_rebuilds_events_from_state_in_time_order(hq_env, page):
    env = hq_env
    if page:  # the rebuilt history comes in pages that must join up
        env.env["HQ_TEST_EVENT_PAGE_LINES"] = page
    env.start_server()
    env.start_worker(cpus=2)
    ok = env.submit("--array", "1-2", "--", "true")
    env.wait_job(ok)
    bad = env.submit("--", "false")
    env.wait_job(bad)
    env.hq("worker", "stop", "1")
    wait_until(lambda: env.worker_list(all_=True)[0]["ended"], 20, "worker 1 stopped")
    r = env.hq("journal", "replay", timeout=30)
    # a second replay sees the same history
    assert env.hq("journal", "replay").stdout == r.stdout
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    evs = [x["event"] for x in lines]
    times = [x["time"] for x in lines]
    assert times == sorted(times), times
    types = [e["type"] for e in evs]
    assert types[0] == "server-start"
    assert types[1] == "worker-connected"
    assert evs[1]["configuration"]["hostname"] == "w1"
    assert types[-1] == "worker-lost" and evs[-1]["reason"] == "Stopped"
    created = of_type(evs, "job-created")
    assert [e["job"] for e in created] == [ok, bad]
    assert created[0]["submit_desc"]["task_desc"]["Array"]["ids"] == "1-2"
    assert sorted(e["task"] for e in of_type(evs, "task-finished")) == [1, 2]
    [failed] = of_type(evs, "task-failed")
    assert failed["job"] == bad
    assert [e["job"] for e in of_type(evs, "job-completed")] == [ok, bad]
    assert types.index("job-created") < types.index("task-started") < types.index(
        "task-finished")
    started = [(e["job"], e["task"]) for e in of_type(evs, "task-started")]
    assert sorted(started) == [(ok, 1), (ok, 2), (bad, 0)]
    # many tasks (the rebuilt list grows and is sorted): each task once, started first
    many = env.submit("--array", "0-299", "--stdout", "none", "--stderr", "none", "--", "true")
    env.start_worker(cpus=4)
    env.wait_job(many, timeout=120)
    evs = [json.loads(x)["event"] for x in env.hq("journal", "replay").stdout.splitlines()]
    pos = {}
    for i, e in enumerate(evs):
        if e.get("job") == many and e["type"] in ("task-started", "task-finished"):
            assert (e["type"], e["task"]) not in pos, e
            pos[(e["type"], e["task"])] = i
    for t in range(300):
        assert pos[("task-started", t)] < pos[("task-finished", t)], t


def test_stream_without_a_journal_goes_on_with_live_events(hq_env):
    import subprocess
    from hqtest import HQ
    from test_journal_tools import LineReader
    env = hq_env
    env.start_server()
    first = env.submit("--", "true")
    cmd = [str(HQ), "--server-dir", str(env.server_dir), "journal", "stream"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env.env, cwd=str(env.work))
    env.track_pid(p.pid)
    try:
        r = LineReader(p)
        past = r.wait_for(lambda e: e["type"] == "job-created" and e["job"] == first)
        assert past[0]["type"] == "server-start"
        env.start_worker()
        r.wait_for(lambda e: e["type"] == "job-completed" and e["job"] == first)
        second = env.submit("--", "true")
        seen = r.wait_for(lambda e: e["type"] == "job-completed" and e["job"] == second)
        assert [e["type"] for e in seen] == ["job-created", "task-started", "task-finished",
                                             "job-completed"]
        env.hq("server", "stop")
        assert p.wait(timeout=20) == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_server_debug_dump_writes_jobs_tasks_workers_and_scheduler_queues(hq_env, tmp_path):
    env = hq_env
    start_journaled(env)
    env.start_worker(cpus=1)
    hold = tmp_path / "hold"
    job = env.submit("--array", "0-5", "--", "bash", "-c",
                     f"while [ ! -e {hold} ]; do sleep 0.05; done")
    env.wait_task_state(job, 0, "running")
    out = tmp_path / "dump.json"
    r = env.hq("server", "debug-dump", str(out))
    assert f"Debug dump written to '{out}'" in r.stderr
    d = json.loads(out.read_text())
    assert d["server"]["max_worker_id"] == 1
    [j] = d["jobs"]
    assert j["id"] == job and j["n_tasks"] == 6
    by_state = j["tasks_by_state"]
    assert sum(j["counts"].values()) == 6
    assert by_state["running"] == "0", by_state
    active = j["active_tasks"]
    assert active[0]["id"] == 0 and active[0]["state"] == "running"
    assert all(t["worker"] == 1 for t in active)
    assert len(active) == 6 - j["counts"]["waiting"]
    [w] = d["workers"]
    assert w["id"] == 1 and w["state"] == "RUNNING" and w["hostname"] == "w1"
    assert w["n_assigned"] == len(active)
    sched = d["scheduler"]["placement"]
    assert sched["ready"] == j["counts"]["waiting"] > 0
    [q] = sched["queues"]
    assert q["job"] == job and q["ready"] == sched["ready"]
    [sw] = sched["workers"]
    assert sw["id"] == 1 and sw["held"] == len(active)
    assert sw["capacity"]["cpus"] > 0
    assert d["journal"]["last_lsn"] > 0
    # to standard output, and a clear error for a path that cannot be written
    assert json.loads(env.hq("server", "debug-dump", "-").stdout)["jobs"][0]["id"] == job
    bad = env.hq("server", "debug-dump", str(tmp_path / "no" / "such" / "dir.json"),
                 check=False)
    assert bad.returncode == 1
    assert "Cannot write the debug dump to" in bad.stderr
    assert "No such file or directory" in bad.stderr
    hold.write_text("")
    env.wait_job(job)


def test_journal_is_a_directory_that_can_be_copied_and_a_file_is_refused_clearly(hq_env):
    import shutil
    env = hq_env
    jfile = env.tmp / "hq.journal"
    jfile.write_bytes(b"HQJOURNAL")  # e.g. a HyperQueue journal file
    p = env.start_server("--journal", jfile, wait=False)
    assert p.wait_exit() == 1
    want = (f"journal {jfile} is a file, not a directory: hq keeps its journal as a directory "
            "of segments and cannot read HyperQueue's single-file journals")
    assert want in p.stderr(), p.stderr()
    r = env.hq("journal", "export", jfile, check=False)
    assert r.returncode == 1 and want in r.stderr, r.stderr
    assert jfile.read_bytes() == b"HQJOURNAL"  # left alone
    # the journal directory: copied with the broker stopped, a start from the copy restores
    start_journaled(env)
    job = env.submit("--", "true")
    env.hq("server", "stop")
    env.server.wait_exit()
    from hqtest import journal_dir
    assert journal_dir(env).is_dir()
    copy = env.tmp / "journal-copy"
    shutil.copytree(journal_dir(env), copy)
    shutil.rmtree(journal_dir(env))
    env.start_server("--journal", copy)
    assert [j["id"] for j in env.hq_json("job", "list", "--all")] == [job]
