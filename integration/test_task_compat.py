"""HyperQueue-compatible task behaviour: spawn error texts, error-file truncation,
paths relative to the submit dir and the task's cwd, job-file details, cancel
semantics and `task explain`'s table."""

import signal
import time

from hqtest import (journal_events, kill9_server, pid_alive, read_pid_file, start_journaled,
                    wait_until)


def _error(env, job, task=0):
    return env.tasks(job)[task]["error"]


def test_missing_program_error_names_it_and_suggests_dot_slash(cluster):
    (cluster.work / "foo").write_text("#!/bin/sh\necho hi\n")
    cluster.hq("submit", "--", "foo", "--bar", "--baz=5")
    cluster.wait_job(1)
    assert _error(cluster, 1) == (
        'Cannot execute "foo --bar --baz=5": No such file or directory (os error 2)\n'
        "The program that you have tried to execute (`foo`) was not found.\n"
        f"The file `{cluster.work}/foo` exists, maybe you have meant `./foo` instead?")
    cluster.hq("submit", "--", "hq-no-such-prog-xyz")
    cluster.wait_job(2)
    assert _error(cluster, 2) == (
        'Cannot execute "hq-no-such-prog-xyz": No such file or directory (os error 2)\n'
        "The program that you have tried to execute (`hq-no-such-prog-xyz`) was not found.")


def test_script_without_execute_bit_error_has_two_lines(cluster):
    script = cluster.work / "job.sh"
    script.write_text("echo hi\n")
    script.chmod(0o644)
    cluster.hq("submit", "--", "./job.sh")
    cluster.wait_job(1)
    assert _error(cluster, 1) == (
        'Cannot execute "./job.sh": Permission denied (os error 13)\n'
        "The script that you have tried to execute (`./job.sh`) is not executable.\n"
        "Try making it executable or add a shebang line to it.")


def _fail_with_error_file(env, job, content):
    (env.work / f"err{job}.bin").write_bytes(content)
    env.hq("submit", "--task-dir", "--", "bash", "-c",
           f'cat {env.work}/err{job}.bin > "$HQ_ERROR_FILENAME"; exit 1')
    env.wait_job(job)
    return _error(env, job)


def test_error_file_of_2048_bytes_or_more_is_truncated(cluster):
    body = "".join(f"line {i:04d} ........\n" for i in range(200)).encode()
    assert len(body) > 3000
    assert _fail_with_error_file(cluster, 1, body) == (
        body[:2048].decode() + "\n[The message was truncated]")
    exact = b"x" * 2048
    assert _fail_with_error_file(cluster, 2, exact) == (
        "x" * 2048 + "\n[The message was truncated]")
    shorter = b"y" * 2047
    assert _fail_with_error_file(cluster, 3, shorter) == "y" * 2047
    # A multi-byte character cut at byte 2048 becomes U+FFFD (HyperQueue's lossy text).
    cut = b"z" * 2047 + "é".encode() + b"tail"
    assert _fail_with_error_file(cluster, 4, cut) == (
        "z" * 2047 + "\ufffd\n[The message was truncated]")


def test_relative_cwd_and_outputs_resolve_against_submit_dir_then_task_cwd(cluster):
    sub = cluster.work / "sub"
    sub.mkdir()
    r = cluster.hq("submit", "--array", "1-2", "--cwd", "dir-%{TASK_ID}",
                   "--stdout", "out.txt", "--stderr", "../e-%{TASK_ID}.txt",
                   "--", "bash", "-c", "pwd; echo err >&2", cwd=sub)
    assert "does not contain the task ID placeholder" not in r.stderr, r.stderr
    cluster.wait_job(1)
    for t in (1, 2):
        d = sub / f"dir-{t}"
        assert (d / "out.txt").read_text() == f"{d}\n"
        assert (sub / f"e-{t}.txt").read_text() == "err\n"
        assert not (d / f"dir-{t}").exists()
        info = cluster.hq_json("task", "info", "1", str(t))[0]
        assert info["cwd"] == str(d)
        assert info["stdout"] == str(d / "out.txt")
        assert info["stderr"] == f"{d}/../e-{t}.txt"
        text = cluster.hq("task", "info", "1", str(t)).stdout
        assert f"| Workdir      | {d} " in text, text
        assert f"| Stdout       | {d}/out.txt " in text, text


def test_array_output_without_task_id_still_warns_when_cwd_lacks_it(cluster):
    r = cluster.hq("submit", "--array", "1-2", "--cwd", "d", "--stdout", "out.txt",
                   "--", "true")
    assert "the `stdout` path does not contain the task ID placeholder" in r.stderr
    r = cluster.hq("submit", "--array", "1-2", "--cwd", "d-%{TASK_ID}",
                   "--stdout", "/tmp/abs-out.txt", "--", "true")
    assert "the `stdout` path does not contain the task ID placeholder" in r.stderr


def _write(env, name, text):
    p = env.work / name
    p.write_text(text)
    return p


def test_job_file_array_ids_map_entries_by_position(cluster):
    f = _write(cluster, "arr.toml", """
[array]
ids = "2,10-12"
entries = ["a", "b", "c", "d"]
command = ["bash", "-c", "echo $HQ_ENTRY"]
""")
    cluster.hq("job", "submit-file", f)
    cluster.wait_job(1)
    out = {t: (cluster.work / "job-1" / f"{t}.stdout").read_text() for t in (2, 10, 11, 12)}
    assert out == {2: "a\n", 10: "b\n", 11: "c\n", 12: "d\n"}


def test_job_file_tasks_without_id_follow_the_largest_explicit_id(cluster):
    f = _write(cluster, "g.toml", """
[[task]]
command = ["bash", "-c", "echo x"]
[[task]]
id = 7
command = ["bash", "-c", "echo y"]
[[task]]
command = ["bash", "-c", "echo z"]
[[task]]
id = 3
command = ["bash", "-c", "echo w"]
""")
    cluster.hq("job", "submit-file", f)
    cluster.wait_job(1)
    assert sorted(cluster.tasks(1)) == [3, 7, 8, 9]
    assert (cluster.work / "job-1" / "8.stdout").read_text() == "x\n"
    assert (cluster.work / "job-1" / "9.stdout").read_text() == "z\n"


def test_job_file_request_without_cpus_gets_no_implicit_cpus(server):
    server.start_worker("--resource", "fpga=[f0]", cpus=1)
    f = _write(server, "r.toml", """
[[task]]
id = 0
command = ["bash", "-c", "echo \\"cpus=${HQ_RESOURCE_REQUEST_cpus-none} fpga=$HQ_RESOURCE_REQUEST_fpga\\""]
[[task.request]]
resources = { fpga = 1 }
[[task]]
id = 1
command = ["bash", "-c", "echo \\"cpus=${HQ_RESOURCE_REQUEST_cpus-none}\\""]
""")
    server.hq("job", "submit-file", f)
    server.wait_job(1)
    assert (server.work / "job-1" / "0.stdout").read_text() == "cpus=none fpga=1 compact\n"
    assert (server.work / "job-1" / "1.stdout").read_text() == "cpus=1 compact\n"


def test_job_file_stdio_on_close_and_data_layer_are_accepted(cluster):
    f = _write(cluster, "s.toml", """
data_layer = true
[[task]]
id = 0
command = ["bash", "-c", "echo out; echo err >&2"]
stdout = { path = "o-%{TASK_ID}.txt", on_close = "rm-if-finished" }
stderr = { path = "e-%{TASK_ID}.txt", mode = "rm-if-finished" }
[[task]]
id = 1
command = ["bash", "-c", "echo kept"]
stdout = { path = "o-%{TASK_ID}.txt", on_close = "never" }
""")
    cluster.hq("job", "submit-file", f)
    cluster.wait_job(1)
    assert cluster.job_state_counts(1)["finished"] == 2
    assert not (cluster.work / "o-0.txt").exists()
    assert not (cluster.work / "e-0.txt").exists()
    assert (cluster.work / "o-1.txt").read_text() == "kept\n"


def _started_pid(env, name):
    pidfile = env.work / name
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(),
               what=f"{name} to be written")
    pid = read_pid_file(pidfile)
    env.track_pid(pid)
    return pid


def _assert_cancel_sends_sigint_to_the_group(env):
    # The child of the task's shell (same process group) gets SIGINT too.
    script = ('(trap "echo INT > child-sig; exit 0" INT; echo $BASHPID > child.pid; '
              'while true; do sleep 0.05; done) & '
              'trap "echo INT > parent-sig; wait; exit 0" INT; echo $$ > parent.pid; wait')
    job = env.submit("--", "bash", "-c", script)
    parent = _started_pid(env, "parent.pid")
    child = _started_pid(env, "child.pid")
    env.wait_task_state(job, 0, "running")
    env.hq("job", "cancel", str(job))
    wait_until(lambda: not pid_alive(parent) and not pid_alive(child), 10,
               "the task's processes to end")
    assert (env.work / "child-sig").read_text() == "INT\n"
    assert (env.work / "parent-sig").read_text() == "INT\n"


def test_cancel_sends_sigint_to_the_task_process_group(cluster):
    _assert_cancel_sends_sigint_to_the_group(cluster)


def test_tasks_get_sigint_even_from_a_worker_started_with_sigint_ignored(server):
    """A worker started in the background of a script (`hq worker start &`, as batch
    scripts do) inherits SIGINT ignored; its tasks still get the cancel's SIGINT, and
    the worker itself still stops on SIGINT."""
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        w = server.start_worker(cpus=2)
    finally:
        signal.signal(signal.SIGINT, old)
    _assert_cancel_sends_sigint_to_the_group(server)
    w.proc.popen.send_signal(signal.SIGINT)
    wait_until(lambda: w.proc.poll() is not None, 10, "the worker to stop on SIGINT")


def test_cancel_kills_a_task_ignoring_sigint_after_one_second(cluster):
    cluster.hq("submit", "--", "bash", "-c", 'trap "" INT; echo $$ > pid; exec sleep 100')
    pid = _started_pid(cluster, "pid")
    cluster.wait_task_state(1, 0, "running")
    t0 = time.monotonic()
    cluster.hq("job", "cancel", "1")
    before = cluster.hq_json("task", "info", "1", "0")[0]
    text_before = cluster.hq("task", "info", "1", "0").stdout
    wait_until(lambda: not pid_alive(pid), 10, "the task to be killed")
    elapsed = time.monotonic() - t0
    assert 0.9 <= elapsed < 5, elapsed
    # Its makespan ended at the cancel and does not grow afterwards.
    after = cluster.hq_json("task", "info", "1", "0")[0]
    assert before["state"] == "canceled"
    assert before["finished_at"] == after["finished_at"]
    assert before["started_at"] <= before["finished_at"]
    span = [ln for ln in text_before.splitlines() if "| Makespan" in ln]
    assert span and span == [ln for ln in cluster.hq("task", "info", "1", "0").stdout.splitlines()
                             if "| Makespan" in ln]


def test_job_cancel_all_selects_only_waiting_and_running_jobs(cluster):
    cluster.hq("submit", "--", "true")
    cluster.wait_job(1)
    cluster.hq("submit", "--", "bash", "-c", "echo $$ > pid; exec sleep 100")
    _started_pid(cluster, "pid")
    cluster.hq("submit", "--cpus", "64", "--", "true")
    r = cluster.hq("job", "cancel", "all")
    lines = [ln.split(" ", 2)[1:] for ln in r.stderr.splitlines()]
    assert lines == [["INFO", "Job 2 canceled (1 tasks canceled, 0 tasks already finished)"],
                     ["INFO", "Job 3 canceled (1 tasks canceled, 0 tasks already finished)"]], \
        r.stderr
    r = cluster.hq("job", "cancel", "all")
    assert [ln.split(" ", 2)[1:] for ln in r.stderr.splitlines()] == \
        [["INFO", "There is nothing to cancel"]], r.stderr


def test_task_canceled_records_are_durable_before_job_cancel_returns(hq_env):
    env = hq_env
    start_journaled(env)
    env.start_worker(cpus=1)
    env.hq("submit", "--array", "1-4", "--", "bash", "-c",
           'echo $$ > "pid.$HQ_TASK_ID"; exec sleep 100')
    _started_pid(env, "pid.1")
    env.wait_task_state(1, 1, "running")
    env.hq("job", "cancel", "1")
    kill9_server(env)
    events = journal_events(env)
    canceled = sorted(e["task"] for e in events if e["type"] == "task-canceled")
    assert canceled == [1, 2, 3, 4], events
    start_journaled(env)
    info = env.hq_json("task", "info", "1", "1")[0]
    assert info["state"] == "canceled" and "finished_at" in info


def test_task_explain_shows_one_block_per_variant_with_bare_amounts(server):
    w1 = server.start_worker("--time-limit", "5m", cpus=5)
    w2 = server.start_worker(cpus=10)
    f = _write(server, "v.toml", """
[[task]]
id = 0
command = ["sleep", "0"]
[[task.request]]
resources = { cpus = 10 }
time_request = "1h"
[[task.request]]
resources = { cpus = "4 compact", gpus = 1 }
[[task]]
id = 1
command = ["sleep", "0"]
[[task.request]]
resources = { cpus = 4 }
""")
    server.hq("job", "submit-file", f)
    out = server.hq("task", "explain", "1", "0").stdout
    lines = out.splitlines()
    assert lines[0] == "Task 1@0 is ready to run because it has no dependencies."
    assert lines[1] == f"The task can run on 1 worker: {w2.id}"
    rows = [[c.strip() for c in ln.split("|")[1:-1]] for ln in lines if ln.startswith("|")]
    assert rows[0] == ["Worker Id", "Runnable", "Variant", "Type", "Provides", "Request"]
    body = rows[1:]
    assert body[0][:3] == [str(w1.id), "No", "0"]
    assert body[0][3] == "time" and body[0][5] == "1h"
    assert body[0][4].startswith("4m ") and body[0][4].endswith("s"), body[0]
    assert body[1] == ["", "", "", "cpus", "5", "10"]
    assert body[2] == ["", "", "1", "cpus", "5", "4"]
    assert body[3] == ["", "", "", "gpus", "0", "1"]
    assert body[4] == [str(w2.id), "Yes (1/2)", "0", "time", "unlimited", "1h"]
    assert body[5] == ["", "", "", "cpus", "10", "10"]
    assert body[6] == ["", "", "1", "cpus", "10", "4"]
    assert body[7] == ["", "", "", "gpus", "0", "1"]
    assert len(body) == 8
    rows = [[c.strip() for c in ln.split("|")[1:-1]]
            for ln in server.hq("task", "explain", "1", "1").stdout.splitlines()
            if ln.startswith("|")]
    assert rows[1:] == [[str(w1.id), "Yes", "0", "cpus", "5", "4"],
                        [str(w2.id), "Yes", "0", "cpus", "10", "4"]]
