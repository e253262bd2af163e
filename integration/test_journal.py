"""The journal as a user runs it (RELIABILITY.md tests 3, 4, 6, 7, 28 and the restore
cases): `hq server start --journal`, kill -9 and restart, torn tails, corruption,
a second broker, `hq journal export`, disk full and fsync EIO through the fault shim."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import HQ, read_pid_file, wait_until

TOOLS = Path(__file__).parent / "tools"

# instance 0 hangs (records its PID), a rerun finishes and says which instance it was
RERUN_SCRIPT = ('echo "$HQ_INSTANCE_ID" >> instances; echo $$ > "pid.$HQ_INSTANCE_ID"; '
                'if [ "$HQ_INSTANCE_ID" = 0 ]; then exec sleep 100; fi; '
                'echo "ran instance $HQ_INSTANCE_ID"')


def journal_dir(env):
    return env.tmp / "journal"


def start(env, *extra, wait=True):
    return env.start_server("--journal", journal_dir(env), *extra, wait=wait)


def kill9_server(env):
    env.server.popen.kill()
    env.server.popen.wait()


def restart(env, *extra):
    kill9_server(env)
    return start(env, *extra)


def segments(env):
    return sorted(journal_dir(env).glob("seg-*.hqj"))


def data_end(path):
    """Offset after the last non-zero byte (segments are preallocated with zeros)."""
    data = path.read_bytes()
    return len(data.rstrip(b"\0"))


def job_states(env):
    return {j["id"]: j for j in env.hq_json("job", "list", "--all")}


def test_restart_restores_jobs_and_a_new_worker_completes_the_unfinished(hq_env):
    env = hq_env
    start(env)
    w = env.start_worker(cpus=2)
    done = env.submit("--array", "1-3", "--", "echo", "hi")
    env.wait_job(done)
    failing = env.submit("--", "bash", "-c", "exit 3")
    env.wait_job(failing)
    hanging = env.submit("--", "bash", "-c", RERUN_SCRIPT)
    pidfile = env.work / "pid.0"
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 20,
               "instance 0 to start")
    env.track_pid(read_pid_file(pidfile))
    env.wait_task_state(hanging, 0, "running")
    opened = env.hq_json("job", "open")["id"]
    canceled = env.submit("--array", "0-4", "--", "sleep", "100")
    # both cpus are busy with the hanging task and one sleeper at most
    env.hq("job", "cancel", str(canceled), "--reason", "not needed")
    before = job_states(env)
    w.proc.popen.kill()
    restart(env)
    after = job_states(env)
    assert set(after) == set(before)
    assert after[done]["task_stats"]["finished"] == 3
    assert after[failing]["task_stats"]["failed"] == 1
    assert after[opened]["is_open"] is True
    assert after[canceled]["task_stats"]["canceled"] == 5
    assert after[hanging]["task_stats"]["waiting"] == 1
    info = env.hq_json("job", "info", str(canceled))[0]
    assert "not needed" in json.dumps(info)
    failed_task = env.tasks(failing)[0]
    assert failed_task["state"] == "failed"
    assert "3" in json.dumps(failed_task)
    # the server uid survives (the journal's wins)
    assert "restored" in env.server.stderr() or "replayed" in env.server.stderr()
    w2 = env.start_worker(cpus=1)
    env.wait_job(hanging)
    t = env.tasks(hanging)[0]
    assert t["state"] == "finished"
    assert t["worker"] == w2.id
    assert w2.id > w.id  # worker ids are not reused
    assert (env.work / "instances").read_text() == "0\n1\n"
    # a new job gets the next id
    assert env.submit("--", "true") == max(before) + 1


def test_server_uid_and_epoch_survive_a_restart(hq_env):
    env = hq_env
    start(env)
    uid = env.server_info()["server_uid"]
    env.hq("server", "stop")
    env.server.wait_exit()
    start(env)
    assert env.server_info()["server_uid"] == uid
    assert env.server_info()["journal_path"] == str(journal_dir(env))
    out = env.hq("journal", "export", journal_dir(env))
    epochs = [json.loads(line)["event"]["epoch"] for line in out.stdout.splitlines()
              if '"server-start"' in line]
    assert epochs == [1, 2]


@pytest.mark.parametrize("round_", range(3))
def test_kill9_right_after_an_acknowledged_submit_keeps_the_job(hq_env, round_):
    env = hq_env
    start(env)
    ids = []
    for i in range(round_ + 1):
        ids.append(env.submit("--array", f"1-{10 ** (i + 1)}", "--", "true"))
        kill9_server(env)  # at once after the ack
        start(env)
    states = job_states(env)
    assert sorted(states) == ids
    for i, jid in enumerate(ids):
        assert states[jid]["task_stats"]["waiting"] == 10 ** (i + 1)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert env.submit("--", "true") == ids[-1] + 1


def test_kill9_right_after_an_acknowledged_cancel_keeps_it_canceled(hq_env):
    env = hq_env
    start(env)
    jid = env.submit("--array", "1-5", "--", "true")
    env.hq("job", "cancel", str(jid))
    kill9_server(env)
    start(env)
    assert job_states(env)[jid]["task_stats"]["canceled"] == 5


@pytest.mark.parametrize("cut", [1, 5, 13])
def test_torn_tail_is_truncated_logged_and_the_rest_applied(hq_env, cut):
    env = hq_env
    start(env)
    for _ in range(3):
        env.submit("--", "true")
    kill9_server(env)
    seg = segments(env)[-1]
    end = data_end(seg)
    with open(seg, "r+b") as f:  # the last record (job 3's submit) loses its end
        f.seek(end - cut)
        f.write(b"\0" * cut)
    start(env)
    assert sorted(job_states(env)) == [1, 2]
    err = env.server.stderr()
    assert "torn bytes dropped" in err
    assert "0 torn bytes dropped" not in err


def test_a_bit_flip_mid_file_refuses_to_start_with_segment_and_offset(hq_env):
    env = hq_env
    start(env)
    for _ in range(5):
        env.submit("--", "true")
    kill9_server(env)
    seg = segments(env)[-1]
    end = data_end(seg)
    with open(seg, "r+b") as f:
        f.seek(end // 2)
        b = f.read(1)
        f.seek(end // 2)
        f.write(bytes([b[0] ^ 0x10]))
    proc = start(env, wait=False)
    assert proc.wait_exit() != 0
    err = proc.stderr()
    assert seg.name in err and "offset" in err, err


def test_a_second_broker_on_the_same_journal_is_refused(hq_env):
    env = hq_env
    first = start(env)
    jid = env.submit("--", "true")
    other = env.tmp / "other-server"
    proc = env.spawn([HQ, "server", "start",
                      "--server-dir", other, "--host", "127.0.0.1", "--journal",
                      journal_dir(env)], "server2")
    assert proc.wait_exit() != 0
    assert "in use by another broker" in proc.stderr()
    assert first.poll() is None
    assert jid in job_states(env)


def test_journal_export_prints_sorted_ndjson_events(hq_env):
    env = hq_env
    start(env)
    env.start_worker()
    jid = env.submit("--array", "1-2", "--", "true")
    env.wait_job(jid)
    env.hq("job", "cancel", str(env.submit("--", "sleep", "100")))
    env.hq("server", "stop")
    env.server.wait_exit()
    r = env.hq("journal", "export", journal_dir(env))
    lines = r.stdout.splitlines()
    events = [json.loads(line) for line in lines]
    for line, e in zip(lines, events):
        assert list(e) == ["event", "time"]
        assert list(e["event"]) == sorted(e["event"])
        assert " " not in line.split('"time"')[0] or '"reason"' in line
        assert e["time"].endswith("Z")
    types = [e["event"]["type"] for e in events]
    assert types[0] == "server-start" and types[-1] == "server-stop"
    for t in ("job-created", "worker-connected", "task-started", "task-finished",
              "job-cancel"):
        assert t in types
    fin = [e["event"] for e in events if e["event"]["type"] == "task-finished"]
    assert sorted(x["task"] for x in fin) == [1, 2] and all(x["job"] == jid for x in fin)
    assert f"Outputted {len(events)} events" in r.stderr


def test_journal_stream_without_a_running_server_fails(hq_env):
    # stream/replay/flush/prune talk to the server: integration/test_journal_tools.py
    r = hq_env.hq("journal", "stream", check=False)
    assert r.returncode == 1
    assert "not supported yet" not in r.stdout + r.stderr


# ---- disk faults through the LD_PRELOAD shim ----

@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    d = tmp_path_factory.mktemp("shim")
    so = d / "faultshim.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(so),
                    str(TOOLS / "faultshim.c"), "-ldl"], check=True)
    return so


def shim_server(env, so):
    fault = env.tmp / "faults"
    fault.write_text("")
    e = dict(env.env)
    e.update({"LD_PRELOAD": str(so), "HQ_FAULT_FILE": str(fault),
              "HQ_FAULT_PATH": str(journal_dir(env)), "HQ_FAULT_LOG": str(env.tmp / "fl")})
    proc = env.spawn([HQ, "server", "start", "--server-dir", env.server_dir, "--host",
                      "127.0.0.1", "--journal", journal_dir(env)], "server", env=e)
    env.server = proc
    env.wait_server(proc)
    return fault


def test_disk_full_refuses_submits_with_a_typed_error_and_resumes(hq_env, shim):
    env = hq_env
    fault = shim_server(env, shim)
    env.start_worker()
    running = env.submit("--", "bash", "-c", "touch started; sleep 3")
    wait_until(lambda: (env.work / "started").exists(), 20, "the task to start")
    time.sleep(0.3)
    fault.write_text("write:ENOSPC:always")
    time.sleep(0.05)
    r = env.hq("submit", "--", "true", check=False)
    assert r.returncode != 0
    assert "journal unavailable" in r.stdout + r.stderr
    assert "No space left on device" in r.stdout + r.stderr or "cannot be written" in r.stdout + r.stderr
    # reads keep working and the running task finishes
    states = job_states(env)
    assert list(states) == [running]
    env.wait_job(running, timeout=20)
    assert env.tasks(running)[0]["state"] == "finished"
    fault.write_text("")

    def resumed():
        r = env.hq("submit", "--", "true", check=False, mode="json")
        return json.loads(r.stdout)["id"] if r.returncode == 0 else None

    jid = wait_until(resumed, 10, "submits to work again")
    kill9_server(env)
    start(env)
    assert jid in job_states(env)


def test_fsync_eio_fails_that_batch_then_rolls_over_and_later_ops_are_durable(hq_env, shim):
    env = hq_env
    fault = shim_server(env, shim)
    n_before = len(segments(env))
    fault.write_text("fdatasync:EIO:once")
    time.sleep(0.05)
    r = env.hq("submit", "--", "true", check=False)
    assert r.returncode != 0 and "journal unavailable" in r.stdout + r.stderr
    assert "Input/output error" in r.stdout + r.stderr
    fault.write_text("")
    jid = env.submit("--", "true")
    assert len(segments(env)) > n_before  # rolled over to a fresh segment
    kill9_server(env)
    start(env)
    states = job_states(env)
    assert jid in states
    assert len(states) == 1  # the refused submit was never applied
