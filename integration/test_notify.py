"""Task notifications (issue 13 item 9; cli/REFERENCE.md §3.5): `hq task notify MSG`
inside a task reaches the broker; `hq submit --wait --on-notify CMD` and
`hq job wait --on-notify CMD` run CMD once per notification with the message as its
last argument and HQ_JOB_ID / HQ_TASK_ID / HQ_WORKER_ID set; live `hq journal stream`
readers see a task-notify event that the journal file does not keep."""

import json
import subprocess

from hqtest import HQ, journal_dir, start_journaled, wait_until
from test_journal_tools import LineReader, events


def _recorder(env):
    """A program that appends its environment ids and arguments as one JSON line."""
    log = env.tmp / "notified.jsonl"
    prog = env.tmp / "record.sh"
    prog.write_text(
        "#!/bin/sh\n"
        "python3 -c 'import json,os,sys; print(json.dumps({\"args\": sys.argv[1:], "
        "\"job\": os.environ.get(\"HQ_JOB_ID\"), \"task\": os.environ.get(\"HQ_TASK_ID\"), "
        "\"worker\": os.environ.get(\"HQ_WORKER_ID\")}))' \"$@\" >> " + str(log) + "\n")
    prog.chmod(0o755)
    return prog, log


def _records(log):
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def test_submit_wait_on_notify_runs_the_program_per_notification(hq_env):
    env = hq_env
    env.start_server()
    w = env.start_worker(cpus=2)
    prog, log = _recorder(env)
    task = ('$HQ task notify "hello $HQ_TASK_ID" && $HQ task notify "second one"')
    r = env.hq("submit", "--array", "1-2", "--wait", "--on-notify", f"{prog} --tag x",
               "--", "bash", "-c", task, timeout=60)
    assert "Job submitted successfully, job ID: 1" in r.stdout
    got = _records(log)
    assert len(got) == 4, got
    for rec in got:
        assert rec["job"] == "1"
        assert rec["worker"] == str(w.id)
        assert rec["args"][:2] == ["--tag", "x"]
    by_task = {}
    for rec in got:
        by_task.setdefault(rec["task"], []).append(rec["args"][2])
    assert by_task == {"1": ["hello 1", "second one"], "2": ["hello 2", "second one"]}


def test_job_wait_on_notify_sees_notifications_sent_while_it_waits(hq_env):
    env = hq_env
    env.start_server()
    env.start_worker(cpus=1)
    prog, log = _recorder(env)
    gate = env.tmp / "gate"
    job = env.submit("--", "bash", "-c",
                     f"while [ ! -e {gate} ]; do sleep 0.05; done; $HQ task notify 'from task 0'")
    waiter = env.spawn([HQ, "--server-dir", env.server_dir, "job", "wait", str(job),
                        "--on-notify", str(prog)], "wait")
    env.wait_task_state(job, 0, ["running"])
    gate.touch()
    assert waiter.wait_exit(timeout=30) == 0, waiter.stderr()
    got = _records(log)
    assert [(g["job"], g["task"], g["args"]) for g in got] == [(str(job), "0", ["from task 0"])]


def test_task_notify_reaches_stream_readers_but_not_the_journal_file(hq_env):
    env = hq_env
    start_journaled(env)
    env.start_worker(cpus=1)
    cmd = [str(HQ), "--server-dir", str(env.server_dir), "journal", "stream"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env.env, cwd=str(env.work))
    try:
        r = LineReader(p)
        r.wait_for(lambda e: e["type"] == "worker-connected")
        job = env.submit("--", "bash", "-c", "$HQ task notify 'progress: 50%'")
        seen = r.wait_for(lambda e: e["type"] == "task-notify")
        note = seen[-1]
        assert note == {"type": "task-notify", "job": job, "task": 0, "worker": 1,
                        "message": "progress: 50%"}
        # it comes after the task started and is followed by the task's end
        assert any(e["type"] == "task-started" and e["job"] == job for e in seen)
        r.wait_for(lambda e: e["type"] == "task-finished" and e["job"] == job)
        env.hq("journal", "flush")
        exported = events(env.hq("journal", "export", journal_dir(env)).stdout)
        assert "task-finished" in [e["type"] for e in exported]
        assert "task-notify" not in [e["type"] for e in exported]
        replayed = events(env.hq("journal", "replay").stdout)
        assert "task-finished" in [e["type"] for e in replayed]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_task_notify_outside_a_task_fails_clearly(hq_env):
    env = hq_env
    env.start_server()
    e = dict(env.env)
    e.pop("HQ_JOB_ID", None)
    e.pop("HQ_TASK_ID", None)
    r = env.hq("task", "notify", "hi", check=False, env=e)
    assert r.returncode == 1
    assert "HQ_JOB_ID and HQ_TASK_ID are not set" in r.stderr
    # a task that is not running cannot notify
    job = env.submit("--", "true")
    e.update(HQ_JOB_ID=str(job), HQ_TASK_ID="0")
    r = env.hq("task", "notify", "hi", check=False, env=e)
    assert r.returncode == 1
    assert f"Task 0 of job {job} is not running" in r.stderr
    r = env.hq("submit", "--on-notify", "echo", "--", "true", check=False)
    assert r.returncode == 1
    assert "--on-notify can only be used together with --wait or --progress" in r.stderr
