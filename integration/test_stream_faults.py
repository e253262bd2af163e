"""Output streaming under faults (cli/REFERENCE.md §3.6, "Failures"): torn and corrupt
stream files, streams of two server instances in one directory, a rerun after a worker
kill, a journaled broker that restarts, and a full disk (a real 1 MiB tmpfs when the
tests run as root, else the fault shim's ENOSPC on the stream directory)."""

import json
import os
import re
import signal
import subprocess

import pytest

from hqtest import (DEFAULT_TIMEOUT, HQ, kill9_server, set_faults, start_journaled, vertical,
                    wait_until)

from test_stream import PRINT_BOTH, olog, stream_files


def _wait_opened(env, d, n):
    def ok():
        r = olog(env, d, "summary", check=False)
        return r.returncode == 0 and vertical(r.stdout)[1]["Opened streams"] == str(n)
    wait_until(ok, DEFAULT_TIMEOUT, f"{n} open streams in {d}")


def test_a_torn_tail_is_ignored_and_the_rest_is_read(cluster):
    env = cluster
    job = env.submit("--stream", "logs", "--array", "0-2", "--", *PRINT_BOTH)
    env.wait_job(job)
    [f] = stream_files(env.work / "logs")
    data = f.read_bytes()
    # a worker killed in the middle of a chunk: part of a copy of the last chunk
    f.write_bytes(data + data[-40:-20])
    r = olog(env, "logs", "cat", job, "stdout")
    assert r.stdout == "out-0\nout-1\nout-2\n" and r.stderr == ""
    # ... or cut inside the last chunk itself (the end chunk of the task that ended
    # last): that task's stream is not finished
    f.write_bytes(data[:-10])
    r = olog(env, "logs", "cat", job, "stdout", check=False)
    assert r.returncode == 1 and re.fullmatch(r"Stream for task [0-2] is not finished\n",
                                              r.stderr), r.stderr
    assert olog(env, "logs", "cat", job, "stdout", "--allow-unfinished").stdout == \
        "out-0\nout-1\nout-2\n"


def test_a_corrupt_chunk_is_refused_with_file_and_offset_and_the_rest_printed(cluster):
    env = cluster
    job = env.submit("--stream", "logs", "--array", "0-3", "--", "echo", "line-%s")
    env.wait_job(job)
    [f] = stream_files(env.work / "logs")
    data = bytearray(f.read_bytes())
    pos = data.index(b"line-%s", len(data) // 2)  # the data of a later task
    data[pos] ^= 0xFF
    f.write_bytes(bytes(data))
    # a second worker's file is read whole
    env.start_worker(cpus=1)
    env.hq("worker", "stop", env.w1.id if env.w1.id else 1)
    job2 = env.submit("--stream", "logs", "--", "echo", "other")
    env.wait_job(job2)
    r = olog(env, "logs", "cat", job, "stdout", "--allow-unfinished", check=False)
    assert r.returncode == 1
    assert f"{f.name}: corrupt chunk at byte offset {pos - 32}: chunk checksum mismatch" in r.stderr
    assert r.stdout.startswith("line-%s\n") and r.stdout.count("line-%s") < 4
    assert olog(env, "logs", "cat", job2, "stdout", check=False).stdout == "other\n"


def test_streams_of_two_server_instances_are_refused_without_server_uid(hq_env):
    env = hq_env
    uids = []
    for _ in range(2):
        env.start_server()
        env.start_worker()
        uids.append(env.server_info()["server_uid"])
        job = env.submit("--stream", "logs", "--", "echo", f"from-{uids[-1]}")
        env.wait_job(job)
        env.hq("server", "stop")
        env.server.wait_exit()
    r = olog(env, "logs", "summary", check=False)
    assert r.returncode == 1
    assert "Found streams from multiple server instances:" in r.stderr
    assert all(f"\n{u}\n" in r.stderr for u in uids)
    assert "Use --server-uid=... to specify server uid" in r.stderr
    for u in uids:
        assert env.hq("output-log", "logs", "--server-uid", u, "cat", "1", "stdout").stdout == \
            f"from-{u}\n"


def test_a_rerun_after_a_worker_kill_hides_the_superseded_output(server):
    env = server
    w = env.start_worker()
    job = env.submit("--stream", "logs", "--", "bash", "-c",
                     "echo attempt-$HQ_INSTANCE_ID; echo e$HQ_INSTANCE_ID >&2; "
                     "[ $HQ_INSTANCE_ID -gt 0 ] || sleep 600")
    wait_until(lambda: olog(env, "logs", "cat", job, "stderr", "--allow-unfinished",
                            check=False).stdout == "e0\n", DEFAULT_TIMEOUT,
               "the first attempt's output")
    os.kill(w.pid, signal.SIGKILL)
    w.proc.wait_exit()
    env.start_worker()
    env.wait_job(job)
    assert env.tasks(job)[0]["state"] == "finished"
    assert olog(env, "logs", "cat", job, "stdout").stdout == "attempt-1\n"
    _, summary = vertical(olog(env, "logs", "summary").stdout)
    assert summary["Tasks"] == "1" and summary["Files"] == "2"
    assert summary["Superseded streams"] == "1"
    assert summary["Superseded stdout/stderr size"] == "10 B / 3 B"
    assert summary["Stdout/stderr size"] == "10 B / 3 B"
    shown = olog(env, "logs", "show").stdout
    assert "attempt-0" not in shown and f"{job}.0:0> attempt-1" in shown


def test_a_journaled_broker_restart_keeps_streaming_into_the_same_directory(hq_env):
    env = hq_env
    start_journaled(env)
    env.start_worker(cpus=2)
    job = env.submit("--stream", "logs-%{JOB_ID}", "--array", "0-1", "--", "bash", "-c",
                     "echo run-$HQ_TASK_ID-$HQ_INSTANCE_ID; "
                     "while [ ! -e release ]; do sleep 0.05; done")
    d = env.work / f"logs-{job}"
    _wait_opened(env, d, 2)
    uid = env.server_info()["server_uid"]
    kill9_server(env)
    start_journaled(env)
    assert env.server_info()["server_uid"] == uid
    env.start_worker(cpus=2)  # the first worker stops with the lost server
    (env.work / "release").touch()
    env.wait_job(job)
    out = olog(env, d, "cat", job, "stdout").stdout.splitlines()
    assert [line.rsplit("-", 1)[0] for line in out] == ["run-0", "run-1"]
    assert all(int(line.rsplit("-", 1)[1]) >= 1 for line in out), out
    _, summary = vertical(olog(env, d, "summary").stdout)
    assert summary["Superseded streams"] == "2" and summary["Opened streams"] == "0"


# ---- disk full ----

class _Tmpfs:
    def __init__(self, mnt):
        self.dir = mnt / "streams"
        self.filler = mnt / "filler"
        self.mnt = mnt
        self.env = None

    def fill(self):
        with open(self.filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\xff" * 4096)
            except OSError:
                pass
        assert os.statvfs(self.mnt).f_bavail == 0

    def free(self):
        self.filler.unlink()


class _Shim:
    def __init__(self, tmp, so):
        self.dir = tmp / "streams"
        self.fault = tmp / "faults"
        self.fault.write_text("")
        self.env = {"LD_PRELOAD": str(so), "HQ_FAULT_FILE": str(self.fault),
                    "HQ_FAULT_PATH": str(self.dir)}

    def fill(self):
        set_faults(self.fault, "write:ENOSPC:always")

    def free(self):
        set_faults(self.fault, "")


@pytest.fixture
def full_disk(hq_env, faultshim):
    if os.geteuid() != 0 or os.environ.get("HQ_TEST_DISKFULL_SHIM"):
        yield _Shim(hq_env.tmp, faultshim)
        return
    mnt = hq_env.tmp / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        yield _Tmpfs(mnt)
    finally:
        hq_env.teardown()  # the worker holds its stream file open
        if subprocess.run(["umount", str(mnt)]).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_fails_the_streaming_tasks_and_streaming_resumes_with_space(hq_env,
                                                                             full_disk):
    env, disk = hq_env, full_disk
    env.start_server()
    e = dict(env.env)
    e.update(disk.env or {})
    env.start_worker(cpus=2, env=e)
    first = env.submit("--stream", disk.dir, "--", "echo", "before")
    env.wait_job(first)
    disk.fill()
    # 200 KiB of output cannot be written; a task without streaming is not affected
    big = env.submit("--stream", disk.dir, "--", "bash", "-c", "head -c 204800 /dev/zero")
    plain = env.submit("--stdout", "none", "--stderr", "none", "--", "true")
    env.wait_job(big)
    env.wait_job(plain)
    t = env.tasks(big)[0]
    assert t["state"] == "failed"
    assert t["error"] == 'Streaming: "No space left on device (os error 28)"'
    assert env.tasks(plain)[0]["state"] == "finished"
    disk.free()
    after = env.submit("--stream", disk.dir, "--", "echo", "after")
    env.wait_job(after)
    assert env.tasks(after)[0]["state"] == "finished"
    # the file stayed readable: what came before and after the full disk is there
    assert olog(env, disk.dir, "cat", first, "stdout").stdout == "before\n"
    assert olog(env, disk.dir, "cat", after, "stdout").stdout == "after\n"
    # the failed task's stream was lost with the buffer: nothing of it counts as finished
    exported = json.loads(olog(env, disk.dir, "export", big).stdout)
    assert all(not t["finished"] for t in exported), exported
