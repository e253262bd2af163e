"""Journal tooling against a running server (cli/REFERENCE.md §3.8; broker/JOURNAL.md,
"Snapshots"; broker/GUARANTEES.md, case compaction-crash): `hq journal stream | replay |
flush | prune`, export after a compaction, `hq journal verify`, and kill -9 at every
snapshot commit step."""

import json
import queue
import subprocess
import threading
import time

import pytest

from hqtest import HQ, journal_dir, kill9_server, start_journaled


def events(text):
    return [json.loads(line)["event"] for line in text.splitlines() if line.strip()]


def record_bytes(env):
    """Bytes of records in the journal: segments up to their zero padding, snapshots."""
    total = 0
    for p in journal_dir(env).iterdir():
        if p.name.startswith("seg-") and p.suffix == ".hqj":
            total += len(p.read_bytes().rstrip(b"\0"))
        elif p.name.startswith("snap-") and p.suffix == ".hqs":
            total += p.stat().st_size
    return total


class LineReader:
    """Reads a subprocess's stdout lines in a thread so tests can wait with a timeout."""

    def __init__(self, popen):
        self.q = queue.Queue()
        self.popen = popen
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        for line in self.popen.stdout:
            self.q.put(line)
        self.q.put(None)

    def wait_for(self, pred, timeout=20):
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.q.get(timeout=max(0.05, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            ev = json.loads(line)
            assert set(ev) == {"event", "time"}, line
            seen.append(ev["event"])
            if pred(ev["event"]):
                return seen
        raise AssertionError(f"no matching event within {timeout}s; saw {seen}")


def created(job):
    return lambda e: e["type"] == "job-created" and e["job"] == job


def test_stream_shows_past_then_live_events_and_ends_with_the_server(hq_env):
    env = hq_env
    start_journaled(env)
    first = env.submit("--", "true")
    cmd = [str(HQ), "--server-dir", str(env.server_dir), "journal", "stream"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env.env, cwd=str(env.work))
    try:
        r = LineReader(p)
        past = r.wait_for(created(first))
        assert past[0]["type"] == "server-start"
        second = env.submit("--", "true")  # while the stream runs
        r.wait_for(created(second))
        # a replay while the stream keeps live events in memory still sees everything
        replayed = events(env.hq("journal", "replay").stdout)
        assert {e["job"] for e in replayed if e["type"] == "job-created"} == {first, second}
        env.hq("server", "stop")
        assert p.wait(timeout=20) == 0, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_replay_prints_past_events_in_order_and_exits(hq_env):
    env = hq_env
    start_journaled(env)
    env.start_worker(cpus=2)
    job = env.submit("--array", "1-3", "--", "true")
    env.wait_job(job)
    r = env.hq("journal", "replay", timeout=30)
    evs = events(r.stdout)
    types = [e["type"] for e in evs]
    assert types[0] == "server-start"
    assert "worker-connected" in types
    assert sorted(e["task"] for e in evs if e["type"] == "task-finished") == [1, 2, 3]
    assert types.index("job-created") < types.index("task-started") < types.index("task-finished")
    for line in r.stdout.splitlines():  # compact, keys sorted
        assert line == json.dumps(json.loads(line), separators=(",", ":"), sort_keys=True)
    # the same as an offline export of the same journal
    env.hq("journal", "flush")
    exported = env.hq("journal", "export", journal_dir(env))
    assert [e["type"] for e in events(exported.stdout)][:len(types)] == types


def test_flush_returns_once_durable(hq_env):
    env = hq_env
    start_journaled(env)
    job = env.submit("--", "true")
    r = env.hq("journal", "flush")
    assert r.stdout == ""
    assert env.hq("journal", "flush", mode="json").stdout.strip() == "{}"
    # what was acked and flushed is readable offline
    exported = env.hq("journal", "export", journal_dir(env))
    assert any(created(job)(e) for e in events(exported.stdout))


def test_without_a_journal_flush_and_prune_say_so(hq_env):
    env = hq_env
    env.start_server()
    for sub in ("flush", "prune"):
        r = env.hq("journal", sub, check=False, timeout=30)
        assert r.returncode == 1, (sub, r)
        assert "started without a journal" in r.stderr, (sub, r.stderr)


def test_prune_shrinks_the_journal_and_keeps_unfinished_jobs_after_a_restart(hq_env):
    env = hq_env
    start_journaled(env)
    env.start_worker(cpus=1)
    done = [env.submit("--array", "1-40", "--", "true") for _ in range(10)]
    for j in done:
        env.wait_job(j)
    running = env.submit("--", "sleep", "100")
    env.wait_task_state(running, 0, "running")
    waiting = env.submit("--array", "0-4", "--", "sleep", "100")
    opened = env.hq_json("job", "open")["id"]
    env.hq("journal", "flush")
    before = record_bytes(env)
    env.hq("journal", "prune", timeout=60)
    after = record_bytes(env)
    assert after < before / 4, (before, after)
    assert len(list(journal_dir(env).glob("seg-*.hqj"))) == 1
    # export after the compaction lists the live jobs
    exported = events(env.hq("journal", "export", journal_dir(env)).stdout)
    created_ids = {e["job"] for e in exported if e["type"] == "job-created"}
    assert {running, waiting} <= created_ids
    assert not created_ids & set(done)
    assert any(e["type"] == "job-open" and e["job"] == opened for e in exported)
    r = subprocess.run([str(HQ), "journal", "verify", str(journal_dir(env))],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # restart: the unfinished jobs are back, the complete ones are gone, ids go on
    kill9_server(env)
    start_journaled(env)
    jobs = {j["id"]: j for j in env.hq_json("job", "list", "--all")}
    assert set(jobs) == {running, waiting, opened}
    assert jobs[waiting]["task_count"] == 5
    assert jobs[opened]["is_open"]
    assert env.submit("--", "true") == opened + 1


def test_verify_accepts_a_good_journal_and_reports_a_bit_flip(hq_env):
    env = hq_env
    start_journaled(env)
    for _ in range(5):
        env.submit("--array", "1-10", "--", "true")
    env.hq("server", "stop")
    env.server.popen.wait(timeout=20)
    jd = journal_dir(env)
    r = subprocess.run([str(HQ), "journal", "verify", str(jd)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "is valid" in r.stdout
    seg = sorted(jd.glob("seg-*.hqj"))[0]
    data = bytearray(seg.read_bytes())
    end = len(bytes(data).rstrip(b"\0"))
    data[64 + (end - 64) // 3] ^= 0x10  # inside an early record, valid ones follow
    seg.write_bytes(bytes(data))
    r = subprocess.run([str(HQ), "journal", "verify", str(jd)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "offset" in r.stderr and seg.name in r.stderr, r.stderr


@pytest.mark.parametrize("step", [1, 2, 3, 4])
def test_kill9_after_each_compaction_step_restarts_to_the_same_state(hq_env, step):
    env = hq_env
    env.env["HQ_JOURNAL_TEST_SNAP_STOP"] = str(step)
    start_journaled(env)
    del env.env["HQ_JOURNAL_TEST_SNAP_STOP"]
    env.start_worker(cpus=1)
    done = env.submit("--array", "1-20", "--", "true")
    env.wait_job(done)
    waiting = env.submit("--array", "0-2", "--", "sleep", "100")
    opened = env.hq_json("job", "open")["id"]
    env.submit("--job", str(opened), "--array", "0-1", "--", "sleep", "100")
    env.hq("job", "close", str(opened))
    before = {j["id"]: j["task_count"] for j in env.hq_json("job", "list", "--all")}
    env.hq("journal", "prune", timeout=60)
    # acked after the interrupted compaction: must survive too
    late = env.submit("--", "true")
    kill9_server(env)
    start_journaled(env)
    jobs = {j["id"]: j for j in env.hq_json("job", "list", "--all")}
    assert {waiting, opened, late} <= set(jobs)
    if done in jobs:  # old set: the complete job is still there, whole
        assert jobs[done]["task_stats"]["finished"] == 20
    for jid in (waiting, opened):
        assert jobs[jid]["task_count"] == before[jid]
    assert not jobs[opened]["is_open"]
    assert env.submit("--", "true") == late + 1
