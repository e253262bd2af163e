"""The journal as a user runs it (broker/GUARANTEES.md, cases torn-tail-every-offset,
mid-file-corruption, disk-full, fsync-eio, double-broker, journal-version and
broker-kill9-random, and the restore rules): `hq server start --journal`, kill -9 and
restart, torn tails, corruption, a second broker, `hq journal export`, disk full and
fsync EIO through the fault shim, and journals written by another format version."""

import hashlib
import json
import os
import re
import stat

import pytest

from hqtest import (HQ, RERUN_SCRIPT, bench_module, job_states, journal_dir, kill9_server,
                    segments, set_faults, start_journaled, start_shim_server,
                    wait_instance_started, wait_until)


def restart(env, *extra):
    kill9_server(env)
    return start_journaled(env, *extra)


def data_end(path):
    """Offset after the last non-zero byte (segments are preallocated with zeros)."""
    data = path.read_bytes()
    return len(data.rstrip(b"\0"))


def test_restart_restores_jobs_and_a_new_worker_completes_the_unfinished(hq_env):
    env = hq_env
    start_journaled(env)
    w = env.start_worker(cpus=2)
    done = env.submit("--array", "1-3", "--", "echo", "hi")
    env.wait_job(done)
    failing = env.submit("--", "bash", "-c", "exit 3")
    env.wait_job(failing)
    hanging = env.submit("--", "bash", "-c", RERUN_SCRIPT)
    wait_instance_started(env)
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
    start_journaled(env)
    uid = env.server_info()["server_uid"]
    env.hq("server", "stop")
    env.server.wait_exit()
    start_journaled(env)
    assert env.server_info()["server_uid"] == uid
    assert env.server_info()["journal_path"] == str(journal_dir(env))
    out = env.hq("journal", "export", journal_dir(env))
    epochs = [json.loads(line)["event"]["epoch"] for line in out.stdout.splitlines()
              if '"server-start"' in line]
    assert epochs == [1, 2]


@pytest.mark.parametrize("round_", range(3))
def test_kill9_right_after_an_acknowledged_submit_keeps_the_job(hq_env, round_):
    env = hq_env
    start_journaled(env)
    ids = []
    for i in range(round_ + 1):
        ids.append(env.submit("--array", f"1-{10 ** (i + 1)}", "--", "true"))
        kill9_server(env)  # at once after the ack
        start_journaled(env)
    states = job_states(env)
    assert sorted(states) == ids
    for i, jid in enumerate(ids):
        assert states[jid]["task_stats"]["waiting"] == 10 ** (i + 1)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert env.submit("--", "true") == ids[-1] + 1


def test_kill9_right_after_an_acknowledged_cancel_keeps_it_canceled(hq_env):
    env = hq_env
    start_journaled(env)
    jid = env.submit("--array", "1-5", "--", "true")
    env.hq("job", "cancel", str(jid))
    kill9_server(env)
    start_journaled(env)
    assert job_states(env)[jid]["task_stats"]["canceled"] == 5


@pytest.mark.parametrize("cut", [1, 5, 13])
def test_torn_tail_is_truncated_logged_and_the_rest_applied(hq_env, cut):
    env = hq_env
    start_journaled(env)
    for _ in range(3):
        env.submit("--", "true")
    kill9_server(env)
    seg = segments(env)[-1]
    end = data_end(seg)
    with open(seg, "r+b") as f:  # the last record (job 3's submit) loses its end
        f.seek(end - cut)
        f.write(b"\0" * cut)
    start_journaled(env)
    assert sorted(job_states(env)) == [1, 2]
    err = env.server.stderr()
    dropped = re.search(r"\b(\d+) torn bytes dropped", err)
    assert dropped and int(dropped.group(1)) > 0, err


def test_a_bit_flip_mid_file_refuses_to_start_with_segment_and_offset(hq_env):
    env = hq_env
    start_journaled(env)
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
    proc = start_journaled(env, wait=False)
    assert proc.wait_exit() != 0
    err = proc.stderr()
    assert seg.name in err and "offset" in err, err


def test_a_second_broker_on_the_same_journal_is_refused(hq_env):
    env = hq_env
    first = start_journaled(env)
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
    start_journaled(env)
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

def test_disk_full_refuses_submits_with_a_typed_error_and_resumes(hq_env, faultshim):
    env = hq_env
    fault = start_shim_server(env, faultshim)
    env.start_worker()
    running = env.submit("--", "bash", "-c", "touch started; sleep 3")
    wait_until(lambda: (env.work / "started").exists(), 20, "the task to start")
    env.wait_task_state(running, 0, "running")
    set_faults(fault, "write:ENOSPC:always")
    r = env.hq("submit", "--", "true", check=False)
    assert r.returncode != 0
    assert "journal unavailable" in r.stdout + r.stderr
    assert ("No space left on device" in r.stdout + r.stderr
            or "cannot be written" in r.stdout + r.stderr)
    # reads keep working and the running task finishes
    states = job_states(env)
    assert list(states) == [running]
    env.wait_job(running, timeout=20)
    assert env.tasks(running)[0]["state"] == "finished"
    set_faults(fault, "")

    def resumed():
        r = env.hq("submit", "--", "true", check=False, mode="json")
        return json.loads(r.stdout)["id"] if r.returncode == 0 else None

    jid = wait_until(resumed, 10, "submits to work again")
    kill9_server(env)
    start_journaled(env)
    assert jid in job_states(env)


def test_fsync_eio_fails_that_batch_then_rolls_over_and_later_ops_are_durable(hq_env, faultshim):
    env = hq_env
    fault = start_shim_server(env, faultshim)
    n_before = len(segments(env))
    set_faults(fault, "fdatasync:EIO:once")
    r = env.hq("submit", "--", "true", check=False)
    assert r.returncode != 0 and "journal unavailable" in r.stdout + r.stderr
    assert "Input/output error" in r.stdout + r.stderr
    set_faults(fault, "")
    jid = env.submit("--", "true")
    assert len(segments(env)) > n_before  # rolled over to a fresh segment
    kill9_server(env)
    start_journaled(env)
    states = job_states(env)
    assert jid in states
    assert len(states) == 1  # the refused submit was never applied


# ---- kill -9 at random times during a run (case broker-kill9-random, scaled down) ----

def test_kill9_journaled_broker_twice_during_a_2k_task_run(hq_env):
    fault_kill9 = bench_module("fault_kill9")
    rep = fault_kill9.run_seed(hq_env, seed=1, n_tasks=2000, n_kills=2, n_workers=2,
                               max_task_ms=0, timeout=90)
    print("kill9:", json.dumps(rep))
    fault_kill9.assert_report(rep)


# ---- a journal of another format version (case journal-version) ----

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def get_format(path):
    """(major, minor) of a journal file header."""
    with open(path, "rb") as f:
        hdr = f.read(64)
    return int.from_bytes(hdr[8:10], "little"), int.from_bytes(hdr[10:12], "little")


def set_format(path, major, minor):
    """Rewrites a journal file header's format version, with a valid header CRC
    (broker/JOURNAL.md, "File header")."""
    with open(path, "r+b") as f:
        hdr = bytearray(f.read(64))
        assert hdr[:6] in (b"HQJSEG", b"HQJSNP"), hdr[:8]
        assert crc32c(bytes(hdr[:60])) == int.from_bytes(hdr[60:64], "little")
        hdr[8:10] = major.to_bytes(2, "little")
        hdr[10:12] = minor.to_bytes(2, "little")
        hdr[60:64] = crc32c(bytes(hdr[:60])).to_bytes(4, "little")
        f.seek(0)
        f.write(hdr)


def tree_state(d):
    """Every entry of the journal dir: name -> (kind, size, mtime_ns, mode, sha256)."""
    out = {}
    for p in sorted(d.iterdir()):
        st = os.lstat(p)
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else ""
        out[p.name] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns,
                       stat.S_IMODE(st.st_mode), digest)
    return out


@pytest.mark.parametrize("version,which", [((1, 99), "all"), ((2, 0), "all"),
                                           ((1, 7), "last"), ((0, 9), "last")],
                         ids=["newer-minor", "other-major", "newer-minor-last-segment-only",
                              "older-major-last-segment-only"])
def test_journal_of_another_format_is_refused_and_left_untouched(hq_env, version, which):
    """Setup: a journal with a few jobs over several small segments (the server was
    restarted once), stopped. Fault: the file headers claim another format (a newer
    minor, or another major), with valid header CRCs: every segment and snapshot, or
    only the newest segment. Expected: `hq server start --journal` exits non-zero with
    a message naming the file, the format found and the formats this hq reads, and
    saying the journal was left untouched; every segment and snapshot is byte-for-byte
    the same (same names, sizes, mtimes, modes, contents) and no file appears or goes;
    after restoring the header the journal still loads with all jobs."""
    env = hq_env
    env.env["HQ_JOURNAL_SEGMENT_BYTES"] = "4096"  # small segments: several of them
    start_journaled(env)
    pad = "PAD=" + "x" * 600
    ids = [env.submit("--array", "1-3", "--env", pad, "--", "true") for _ in range(4)]
    env.hq("server", "stop")
    env.server.wait_exit()
    start_journaled(env)
    ids += [env.submit("--env", pad, "--", "true") for _ in range(4)]
    env.hq("server", "stop")
    env.server.wait_exit()
    segs = segments(env)
    assert len(segs) >= 2, segs
    files = sorted(journal_dir(env).glob("*.hq[js]"))
    patched = files if which == "all" else segs[-1:]
    original = {s: get_format(s) for s in patched}
    for s in patched:
        set_format(s, *version)
    before = tree_state(journal_dir(env))
    proc = start_journaled(env, wait=False)
    rc = proc.wait_exit(timeout=30)
    err = proc.stderr()
    assert rc != 0, err
    major, minor = version
    assert f"journal format {major}.{minor} is not supported" in err, err
    assert re.search(r"this hq reads format 1\.0 to 1\.\d+[ ;]", err), err
    assert "the journal was left untouched" in err, err
    assert any(s.name in err for s in patched), err
    if major == 1:
        assert "written by a newer hq" in err, err
    after = tree_state(journal_dir(env))
    # LOCK included: the refused broker held the flock but wrote no pid there
    assert after == before
    r = env.hq("job", "list", check=False)
    assert r.returncode == 1  # nothing is serving
    # the refusal was about the version only: with the header back, all jobs load
    for s in patched:
        set_format(s, *original[s])
    start_journaled(env)
    assert sorted(j["id"] for j in env.hq_json("job", "list", "--all")) == ids
