"""Output streaming (`--stream DIR`, `hq output-log`, cli/REFERENCE.md §3.3, §3.6): the
worker writes every task's stdout and stderr into a few stream files per worker, and
`hq output-log`, `hq job cat` and `--follow` read them back."""

import json
import os
import select
import subprocess
import time

from hqtest import DEFAULT_TIMEOUT, HQ, vertical, wait_until

PRINT_BOTH = ["bash", "-c", "echo out-$HQ_TASK_ID; echo err-$HQ_TASK_ID >&2"]


def olog(env, *args, check=True):
    return env.hq("output-log", *args, check=check)


def stream_files(d):
    return sorted(p for p in d.iterdir() if p.name.endswith(".hqs"))


def test_array_streams_both_channels_into_one_file_per_worker(cluster):
    env = cluster
    job = env.submit("--stream", "logs", "--array", "0-49", "--", *PRINT_BOTH)
    env.wait_job(job)
    logs = env.work / "logs"
    assert len(stream_files(logs)) == 1, list(logs.iterdir())
    assert not (env.work / f"job-{job}").exists()  # no per-task files
    out = olog(env, "logs", "cat", job, "stdout").stdout
    assert out == "".join(f"out-{t}\n" for t in range(50))
    err = olog(env, "logs", "cat", job, "stderr").stdout
    assert err == "".join(f"err-{t}\n" for t in range(50))
    # --task prints in the order given
    assert olog(env, "logs", "cat", job, "stdout", "--task", "7,2-3").stdout == \
        "out-7\nout-2\nout-3\n"
    # a big streamed array creates no per-task files, so no warning about them
    r = env.hq("submit", "--stream", "logs", "--array", "1-1000", "--", "true")
    assert "The job will create" not in r.stderr
    env.hq("job", "cancel", "last")
    # DIR and --server-uid may come after the command word too
    uid = env.server_info()["server_uid"]
    r = env.hq("output-log", "cat", "logs", job, "stdout", "--task", "1", "--server-uid", uid)
    assert r.stdout == "out-1\n"


def test_stream_dir_placeholders_are_resolved_at_submit(cluster):
    env = cluster
    job = env.submit("--stream", "s-%{JOB_ID}-%{SERVER_UID}", "--", *PRINT_BOTH)
    env.wait_job(job)
    uid = env.server_info()["server_uid"]
    d = env.work / f"s-{job}-{uid}"
    assert len(stream_files(d)) == 1
    assert olog(env, d, "cat", job, "stdout").stdout == "out-0\n"
    job2 = env.submit("--stream", "%{SUBMIT_DIR}/abs-%{JOB_ID}", "--", *PRINT_BOTH)
    env.wait_job(job2)
    assert olog(env, env.work / f"abs-{job2}", "cat", job2, "stderr").stdout == "err-0\n"


def test_explicit_stdout_or_stderr_wins_over_the_stream(cluster):
    env = cluster
    job = env.submit("--stream", "logs", "--stdout", "o-%{TASK_ID}.txt", "--array", "0-1",
                     "--", *PRINT_BOTH)
    env.wait_job(job)
    assert (env.work / "o-1.txt").read_text() == "out-1\n"
    assert olog(env, "logs", "cat", job, "stderr").stdout == "err-0\nerr-1\n"
    assert olog(env, "logs", "cat", job, "stdout").stdout == ""
    _, info = vertical(env.hq("job", "info", job).stdout)
    assert info["Stdout"].endswith("o-%{TASK_ID}.txt")
    assert info["Stderr"] == "<Stream>"
    tasks = env.tasks(job)
    assert tasks[0]["stderr"] == "<pipe>" and tasks[0]["stdout"].endswith("o-0.txt")
    # --stderr none: stdout streamed, stderr nowhere
    job2 = env.submit("--stream", "logs2", "--stderr", "none", "--", *PRINT_BOTH)
    env.wait_job(job2)
    assert olog(env, "logs2", "cat", job2, "stdout").stdout == "out-0\n"
    assert olog(env, "logs2", "cat", job2, "stderr").stdout == ""
    _, info = vertical(env.hq("job", "info", job2).stdout)
    assert info["Stdout"] == "<Stream>" and info["Stderr"] == "<None>"


def test_summary_jobs_show_and_export(cluster):
    env = cluster
    a = env.submit("--stream", "logs", "--array", "0-10", "--", *PRINT_BOTH)
    env.wait_job(a)
    b = env.submit("--stream", "logs", "--", "printf", "no newline")
    env.wait_job(b)
    keys, summary = vertical(olog(env, "logs", "summary").stdout)
    assert keys == ["Path", "Files", "Jobs", "Tasks", "Opened streams", "Stdout/stderr size",
                    "Superseded streams", "Superseded stdout/stderr size"]
    assert summary["Path"] == "logs"
    assert summary["Files"] == "1"
    assert summary["Jobs"] == "2"
    assert summary["Tasks"] == "12"
    assert summary["Opened streams"] == "0"
    out_size = sum(len(f"out-{t}\n") for t in range(11)) + len("no newline")
    err_size = sum(len(f"err-{t}\n") for t in range(11))
    assert summary["Stdout/stderr size"] == f"{out_size} B / {err_size} B"
    assert summary["Superseded streams"] == "0"
    assert summary["Superseded stdout/stderr size"] == "0 B / 0 B"
    js = json.loads(env.hq("--output-mode", "json", "output-log", "logs", "summary").stdout)
    assert js == {"filename": "logs", "summary": {
        "n_files": 1, "n_jobs": 2, "n_tasks": 12, "n_streams": 12, "n_opened": 0,
        "stdout_size": out_size, "stderr_size": err_size, "n_superseded": 0,
        "superseded_stdout_size": 0, "superseded_stderr_size": 0}}
    assert olog(env, "logs", "jobs").stdout == f"{a}\n{b}\n"
    # show: J.T:C> with ids padded to the widest shown, a newline added when missing
    lines = olog(env, "logs", "show").stdout.splitlines()
    assert f"{a}.03:0> out-3" in lines and f"{a}.03:1> err-3" in lines
    assert f"{b}.00:0> no newline" in lines
    assert len(lines) == 23
    only = olog(env, "logs", "show", "--job", b).stdout
    assert only == f"{b}.0:0> no newline\n"
    errs = olog(env, "logs", "show", "--channel", "stderr", "--job", a).stdout.splitlines()
    assert len(errs) == 11 and all(":1> err-" in line for line in errs)
    exported = olog(env, "logs", "export", a, "--task", "2,0").stdout
    assert json.loads(exported) == [{"finished": True, "id": 2, "stdout": "out-2\n"},
                                    {"finished": True, "id": 0, "stdout": "out-0\n"}]
    assert exported.startswith('[\n  {\n    "finished": true,\n    "id": 2,\n')


def test_cat_refuses_an_unfinished_stream_unless_allowed(cluster):
    env = cluster
    job = env.submit("--stream", "logs", "--", "bash", "-c",
                     "echo partial; while [ ! -e release ]; do sleep 0.05; done; echo rest")
    # the worker writes what a running task printed within a moment
    wait_until(lambda: olog(env, "logs", "cat", job, "stdout", "--allow-unfinished",
                            check=False).stdout == "partial\n", DEFAULT_TIMEOUT,
               "the running task's line in the stream")
    r = olog(env, "logs", "cat", job, "stdout", check=False)
    assert r.returncode == 1 and "Stream for task 0 is not finished" in r.stderr
    assert vertical(olog(env, "logs", "summary").stdout)[1]["Opened streams"] == "1"
    (env.work / "release").touch()
    env.wait_job(job)
    assert olog(env, "logs", "cat", job, "stdout").stdout == "partial\nrest\n"


def test_job_cat_prints_streamed_output(cluster):
    env = cluster
    job = env.submit("--stream", "logs", "--array", "0-2", "--", *PRINT_BOTH)
    env.wait_job(job)
    r = env.hq("job", "cat", job, "stdout", "--print-task-header")
    assert r.stdout == "".join(f"# Job {job}, task {t}\nout-{t}\n" for t in range(3))
    assert "no `stdout` stream" not in r.stderr
    assert env.hq("job", "cat", job, "stderr", "--tasks", "1").stdout == "err-1\n"


def test_job_file_stream_key_streams_the_channels_without_a_path(cluster):
    env = cluster
    (env.work / "job.toml").write_text(
        'stream = "jlogs-%{JOB_ID}"\n'
        '[[task]]\nid = 0\ncommand = ["bash", "-c", "echo a; echo b >&2"]\n'
        '[[task]]\nid = 1\ncommand = ["bash", "-c", "echo c; echo d >&2"]\n'
        'stdout = "one.txt"\n')
    job = json.loads(env.hq("--output-mode", "json", "job", "submit-file", "job.toml").stdout)["id"]
    env.wait_job(job)
    d = f"jlogs-{job}"
    assert olog(env, d, "cat", job, "stdout").stdout == "a\n"
    assert olog(env, d, "cat", job, "stderr").stdout == "b\nd\n"
    assert (env.work / "one.txt").read_text() == "c\n"


def test_a_stream_dir_that_cannot_be_created_fails_the_task_and_the_worker_goes_on(cluster):
    env = cluster
    (env.work / "plain").write_text("a file, not a directory")
    job = env.submit("--stream", "plain/sub", "--", "echo", "x")
    env.wait_job(job)
    t = env.tasks(job)[0]
    assert t["state"] == "failed"
    assert t["error"] == (f"Cannot create stream directory {env.work}/plain/sub: "
                          "Not a directory (os error 20)")
    job2 = env.submit("--stream", "ok", "--", "echo", "fine")
    env.wait_job(job2)
    assert olog(env, "ok", "cat", job2, "stdout").stdout == "fine\n"


def test_output_log_on_bad_directories_says_what_is_wrong(hq_env):
    env = hq_env
    r = olog(env, "missing", "summary", check=False)
    assert r.returncode == 1
    assert f"Cannot read the stream directory missing: No such file or directory" in r.stderr
    (env.work / "empty").mkdir()
    r = olog(env, "empty", "cat", "1", "stdout", check=False)
    assert r.returncode == 1 and "No log files found" in r.stderr
    (env.work / "junk").mkdir()
    (env.work / "junk" / "x.hqs").write_bytes(b"\x00garbage" * 10)
    r = olog(env, "junk", "jobs", check=False)
    assert r.returncode == 1
    assert "junk/x.hqs: not a stream file" in r.stderr and "No log files found" in r.stderr
    r = olog(env, "junk", "cat", "x", "stdout", check=False)
    assert r.returncode == 2 and "invalid value 'x' for '<JOB>'" in r.stderr
    r = olog(env, "junk", "cat", "1", "stdin", check=False)
    assert r.returncode == 2 and "possible values: stdout, stderr" in r.stderr


def _read_line(proc, timeout):
    """One line of proc's stdout, waiting at most timeout seconds."""
    deadline = time.monotonic() + timeout
    buf = b""
    while not buf.endswith(b"\n"):
        left = deadline - time.monotonic()
        assert left > 0, f"no line within {timeout}s (got {buf!r})"
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            c = os.read(proc.stdout.fileno(), 1)
            assert c, f"stdout closed (got {buf!r})"
            buf += c
    return buf.decode()


BLOCK_ON_FIFO = "echo first-line; read x < gate; echo second-line"


def _follow(env, args):
    return subprocess.Popen([str(HQ), "--server-dir", str(env.server_dir), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=env.work,
                            env=env.env)


def test_follow_prints_a_line_before_the_task_ends(cluster):
    env = cluster
    os.mkfifo(env.work / "gate")
    job = env.submit("--stream", "logs", "--", "bash", "-c", BLOCK_ON_FIFO)
    p = _follow(env, ["output-log", "logs", "cat", job, "stdout", "--follow"])
    try:
        # the task cannot end before the gate opens, and the gate opens only now
        assert _read_line(p, DEFAULT_TIMEOUT) == "first-line\n"
        assert p.poll() is None
        with open(env.work / "gate", "w") as gate:
            gate.write("go\n")
        out, err = p.communicate(timeout=DEFAULT_TIMEOUT)
        assert p.returncode == 0, err
        assert out.decode() == "second-line\n"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_submit_with_follow_shows_the_output_here_while_the_job_runs(cluster):
    env = cluster
    os.mkfifo(env.work / "gate")
    p = _follow(env, ["submit", "--stream", "logs", "--follow", "--", "bash", "-c",
                      BLOCK_ON_FIFO + "; echo to-stderr >&2"])
    try:
        assert _read_line(p, DEFAULT_TIMEOUT).startswith("Job submitted successfully")
        assert _read_line(p, DEFAULT_TIMEOUT) == "first-line\n"
        with open(env.work / "gate", "w") as gate:
            gate.write("go\n")
        out, err = p.communicate(timeout=DEFAULT_TIMEOUT)
        assert p.returncode == 0, err
        assert out.decode() == "second-line\n"
        assert "to-stderr\n" in err.decode()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    r = env.hq("submit", "--follow", "--", "true", check=False)
    assert r.returncode == 1 and "--follow needs --stream" in r.stderr


def test_a_task_end_is_reported_only_once_all_its_output_is_in_the_stream(cluster):
    env = cluster
    # more than a pipe buffer and the worker's stream buffer together
    job = env.submit("--stream", "logs", "--", "bash", "-c",
                     "head -c 300000 /dev/zero | tr '\\0' x; echo")
    env.wait_job(job)
    assert olog(env, "logs", "cat", job, "stdout").stdout == "x" * 300000 + "\n"
    # short output, read at once after each job ended: nothing may still be on its way
    for i in range(10):
        job = env.submit("--stream", "logs", "--", "echo", f"line-{i}")
        env.wait_job(job)
        assert olog(env, "logs", "cat", job, "stdout").stdout == f"line-{i}\n"
