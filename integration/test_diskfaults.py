"""Journal disk faults against real processes (broker/GUARANTEES.md, G8 (disk faults),
cases power-loss-sim and disk-full).

power-loss-sim: the fault shim (tools/faultshim.c, HQ_FAULT_SYNCLOG) logs every
write, sync and directory operation on the journal. After kill -9 of the broker,
power_loss() turns the journal into what a power cut would leave: directory operations
after the directory's last sync are undone, bytes written after a file's last sync
become zeros and files shrink back to their size at that sync. The broker then
restarts on it and every submit and cancel a client saw acknowledged must be there.

disk-full: the journal on a real 1 MiB tmpfs (the shim's ENOSPC when not root)."""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hqtest import DEFAULT_TIMEOUT, HQ, job_states, kill9_server, set_faults, wait_until

SEGMENT_BYTES = 65536  # several segment rolls per power-loss run
# Compaction during the power-loss run: 4096 bytes makes one happen at nearly every
# 1 s check, so cuts also land in snapshots taken while submits wait for their sync.
MAX_BYTES = os.environ.get("HQ_TEST_POWERLOSS_MAX_BYTES", "4096")


# ---- the power cut ----

def read_synclog(log):
    if not log.exists():
        return []
    return [line.split("\t") for line in log.read_text().splitlines() if line]


def power_loss(log, root):
    """Rewrites root into the state a power cut right now would leave, from the
    shim's log of what was written and synced since the log was started (everything
    before it counts as durable). Returns counts of what was dropped."""
    events = read_synclog(log)
    root = Path(root)
    last_dir_sync = {}
    last_sync = {}  # ino -> (event index, size)
    for i, ev in enumerate(events):
        if ev[0] == "D":
            last_dir_sync[os.path.normpath(ev[2])] = i
        elif ev[0] == "S":
            last_sync[int(ev[1])] = (i, int(ev[2]))

    def dir_unsynced(path, i):
        return last_dir_sync.get(os.path.dirname(os.path.normpath(path)), -1) < i

    def ino_of(path):
        try:
            return os.lstat(path).st_ino
        except FileNotFoundError:
            return None

    stats = {"removed": 0, "unrenamed": 0, "restored": 0, "unrestorable": 0,
             "zeroed_bytes": 0, "cut_bytes": 0}
    # 1. directory operations the directory's sync did not cover, newest first
    for i in reversed(range(len(events))):
        ev = events[i]
        if ev[0] == "C" and dir_unsynced(ev[2], i):
            if ino_of(ev[2]) == int(ev[1]):
                os.unlink(ev[2])
                stats["removed"] += 1
        elif ev[0] == "R" and dir_unsynced(ev[4], i):
            ino, stash, src, dst = int(ev[1]), ev[2], ev[3], ev[4]
            if ino_of(dst) == ino:
                os.rename(dst, src)
                stats["unrenamed"] += 1
                if stash != "-":
                    os.link(stash, dst)
        elif ev[0] == "U" and dir_unsynced(ev[3], i):
            if ev[2] == "-":
                stats["unrestorable"] += 1
            elif not os.path.lexists(ev[3]):
                os.link(ev[2], ev[3])
                stats["restored"] += 1
    # 2. file data: unsynced ranges become zeros, sizes go back to the last sync
    files = {}
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            files[p.stat().st_ino] = p
    for ino, (_, synced_size) in last_sync.items():
        path = files.get(ino)
        if path is not None and path.stat().st_size > synced_size:
            stats["cut_bytes"] += path.stat().st_size - synced_size
            os.truncate(path, synced_size)
    for i, ev in enumerate(events):
        if ev[0] != "W":
            continue
        ino, off, length = int(ev[1]), int(ev[2]), int(ev[3])
        if ino not in files or last_sync.get(ino, (-1, 0))[0] > i:
            continue
        path = files[ino]
        size = path.stat().st_size
        end = min(off + length, size)
        if end > off:
            with open(path, "r+b") as f:
                f.seek(off)
                f.write(b"\0" * (end - off))
            stats["zeroed_bytes"] += end - off
    return stats


def reset_synclog(log):
    """Starts a new log: what is on disk now is the durable baseline. The old log is
    kept as LOG.<n> for a post-mortem."""
    for p in log.parent.glob(log.name + ".stash.*"):
        p.unlink()
    if log.exists():
        n = len(list(log.parent.glob(log.name + ".*")))
        log.rename(log.with_name(f"{log.name}.{n}"))


# ---- the simulation itself (a negative control for the broker tests) ----

WRITER = r"""
import os, sys
root = sys.argv[1]
def p(name): return os.path.join(root, name)
d = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
# a: 100 synced bytes, then 50 never synced
a = os.open(p("a"), os.O_CREAT | os.O_WRONLY, 0o600)
os.write(a, b"A" * 100); os.fsync(a); os.fsync(d)
os.write(a, b"B" * 50)
# e: durable, then unlinked without a directory sync
e = os.open(p("e"), os.O_CREAT | os.O_WRONLY, 0o600)
os.write(e, b"E" * 10); os.fsync(e); os.fsync(d); os.close(e)
# pre: preallocated and durable; one record synced with fdatasync, one not
q = os.open(p("pre"), os.O_CREAT | os.O_RDWR, 0o600)
os.posix_fallocate(q, 0, 4096); os.fsync(q); os.fsync(d)
os.pwrite(q, b"X" * 10, 64); os.fdatasync(q)
os.pwrite(q, b"Y" * 10, 74)
# app: O_APPEND writes, the second unsynced
w = os.open(p("app"), os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
os.write(w, b"1" * 8); os.fsync(w); os.fsync(d); os.write(w, b"2" * 8)
# c.tmp: durable, renamed to c without a directory sync
c = os.open(p("c.tmp"), os.O_CREAT | os.O_WRONLY, 0o600)
os.write(c, b"C" * 10); os.fsync(c); os.fsync(d)
os.rename(p("c.tmp"), p("c"))
os.unlink(p("e"))
# b: data synced but its directory entry never
b = os.open(p("b"), os.O_CREAT | os.O_WRONLY, 0o600)
os.write(b, b"b" * 10); os.fsync(b)
os.kill(os.getpid(), 9)
"""


def run_writer(so, root, log, **extra):
    root.mkdir()
    env = dict(os.environ)
    env.update({"LD_PRELOAD": str(so), "HQ_FAULT_PATH": str(root),
                "HQ_FAULT_SYNCLOG": str(log)})
    env.update(extra)
    r = subprocess.run([sys.executable, "-c", WRITER, str(root)], env=env, timeout=60,
                       capture_output=True, text=True)
    assert r.returncode == -signal.SIGKILL, r.stderr


def test_power_loss_simulation_drops_exactly_what_was_not_synced(faultshim, tmp_path):
    root, log = tmp_path / "d", tmp_path / "synclog"
    run_writer(faultshim, root, log)
    before = {p.name: p.read_bytes() for p in root.iterdir()}
    assert before["a"] == b"A" * 100 + b"B" * 50 and "e" not in before and "c" in before
    stats = power_loss(log, root)
    after = {p.name: p.read_bytes() for p in root.iterdir()}
    assert sorted(after) == ["a", "app", "c.tmp", "e", "pre"]  # b gone, c unrenamed, e back
    assert after["a"] == b"A" * 100  # the unsynced 50 bytes are gone
    assert after["app"] == b"1" * 8
    assert after["e"] == b"E" * 10
    assert after["c.tmp"] == b"C" * 10
    pre = after["pre"]
    assert len(pre) == 4096 and pre[64:74] == b"X" * 10
    assert pre.count(0) == 4086  # the unsynced Y record reads as zeros (end of log)
    assert stats["removed"] == 1 and stats["unrenamed"] == 1 and stats["restored"] == 1
    assert stats["zeroed_bytes"] == 10 and stats["cut_bytes"] == 50 + 8


def test_power_loss_simulation_treats_ignored_syncs_as_never_made(faultshim, tmp_path):
    root, log = tmp_path / "d", tmp_path / "synclog"
    run_writer(faultshim, root, log, HQ_FAULT_SYNCLOG_IGNORE="fdatasync")
    power_loss(log, root)
    pre = (root / "pre").read_bytes()
    assert len(pre) == 4096 and pre.count(0) == 4096  # the fdatasync'd record is lost too
    assert (root / "a").read_bytes() == b"A" * 100  # fsync still counts


# ---- power-loss-sim against the broker ----

class PowerLossBroker:
    """A journaled broker under the shim's sync log, killed and power-cut on demand."""

    def __init__(self, env, so, **extra_env):
        self.env = env
        self.journal = env.tmp / "journal"
        self.log = env.tmp / "synclog"
        self.e = dict(env.env)
        self.e.update({"LD_PRELOAD": str(so), "HQ_FAULT_PATH": str(self.journal),
                       "HQ_FAULT_SYNCLOG": str(self.log),
                       "HQ_JOURNAL_SEGMENT_BYTES": str(SEGMENT_BYTES)})
        if MAX_BYTES:
            self.e["HQ_JOURNAL_MAX_BYTES"] = MAX_BYTES
        self.e.update(extra_env)
        self.cuts = []

    def start(self):
        reset_synclog(self.log)
        proc = self.env.spawn([HQ, "server", "start", "--server-dir", self.env.server_dir,
                               "--host", "127.0.0.1", "--journal", self.journal], "server",
                              env=self.e)
        self.env.server = proc
        self.env.wait_server(proc)
        return proc

    def kill_and_cut_power(self):
        kill9_server(self.env)
        stats = power_loss(self.log, self.journal)
        self.cuts.append(stats)
        return stats


class Clients:
    """Client loops submitting and cancelling through `hq`, recording what was acked.
    Nothing is recorded for a command that did not exit 0 (or was killed)."""

    def __init__(self, env, rng, tag):
        self.env, self.rng, self.tag = env, rng, tag
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.running = {}  # pid -> Popen
        self.submits = {}  # job id -> (name, n tasks)
        self.cancels = set()  # acked
        self.maybe_canceled = set()  # cancel sent, no ack seen
        self.n = 0
        self.acks_this_round = 0

    def _run(self, args):
        cmd = [str(HQ), "--server-dir", str(self.env.server_dir), "--output-mode", "json"]
        p = subprocess.Popen(cmd + [str(a) for a in args], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                             env=self.env.env, cwd=str(self.env.work), text=True)
        with self.lock:
            if self.stop.is_set():
                p.kill()
            self.running[p.pid] = p
        try:
            out, _ = p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            out = None
        with self.lock:
            self.running.pop(p.pid, None)
        return out if p.returncode == 0 else None

    def _loop(self, seed):
        rng = random.Random(seed)
        while not self.stop.is_set():
            with self.lock:
                cancelable = sorted(set(self.submits) - self.cancels - self.maybe_canceled)
                self.n += 1
                name = f"{self.tag}-{self.n}"
            if cancelable and rng.random() < 0.3:
                jid = rng.choice(cancelable)
                with self.lock:
                    self.maybe_canceled.add(jid)
                if self._run(["job", "cancel", jid]) is not None:
                    with self.lock:
                        self.cancels.add(jid)
                        self.maybe_canceled.discard(jid)
                        self.acks_this_round += 1
            else:
                k = rng.randint(1, 40)
                out = self._run(["submit", "--name", name, "--array", f"1-{k}", "--", "true"])
                if out is not None:
                    jid = json.loads(out)["id"]
                    with self.lock:
                        assert jid not in self.submits, f"job id {jid} acked twice"
                        self.submits[jid] = (name, k)
                        self.acks_this_round += 1

    def run_until_killed(self, kill, n_threads, rng):
        self.stop.clear()
        self.acks_this_round = 0
        threads = [threading.Thread(target=self._loop, args=(rng.random(),), daemon=True)
                   for _ in range(n_threads)]
        for t in threads:
            t.start()
        try:
            wait_until(lambda: self.acks_this_round >= 2, 60, "the clients' first acks")
            time.sleep(rng.uniform(0.0, 1.0))  # the kill point
            kill()
        finally:
            with self.lock:
                self.stop.set()
                for p in list(self.running.values()):
                    p.kill()  # an in-flight command is not acked; it must not retry later
            for t in threads:
                t.join(timeout=90)
        assert not any(t.is_alive() for t in threads)

    def lost(self, states):
        """What the restarted broker lost of the acked operations."""
        problems = []
        for jid, (name, k) in sorted(self.submits.items()):
            j = states.get(jid)
            if j is None:
                problems.append(f"acked job {jid} ({name}, {k} tasks) is missing")
                continue
            total = sum(j["task_stats"].values())
            if j["name"] != name or total != k:
                problems.append(f"job {jid}: {j['name']} with {total} tasks, "
                                f"acked as {name} with {k}")
            canceled = j["task_stats"].get("canceled", 0)
            if jid in self.cancels and canceled != k:
                problems.append(f"acked cancel of job {jid} undone: {j['task_stats']}")
            if jid not in self.cancels and jid not in self.maybe_canceled and canceled:
                problems.append(f"job {jid} canceled without a cancel: {j['task_stats']}")
            if jid in self.maybe_canceled and canceled not in (0, k):
                problems.append(f"job {jid} partly canceled: {j['task_stats']}")
        return problems


@pytest.mark.slow
def test_power_loss_at_10_kill_points_keeps_every_acked_submit_and_cancel(hq_env, faultshim):
    env = hq_env
    rng = random.Random(5)
    broker = PowerLossBroker(env, faultshim)
    broker.start()
    clients = Clients(env, rng, "pl")
    for point in range(10):
        clients.run_until_killed(broker.kill_and_cut_power, 3, rng)
        verify = env.hq("journal", "verify", broker.journal, check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        broker.start()
        states = job_states(env)
        problems = clients.lost(states)
        assert not problems, f"kill point {point}: {problems}\ncut: {broker.cuts[-1]}"
        # acked job ids are never handed out again
        assert max(states) >= max(clients.submits)
    jid = env.submit("--name", "last", "--", "true")
    assert jid > max(clients.submits)
    n_ops = len(clients.submits) + len(clients.cancels)
    cut = {k: sum(c[k] for c in broker.cuts) for k in broker.cuts[0]}
    print(f"\npower loss: 10 kill points, {len(clients.submits)} acked submits, "
          f"{len(clients.cancels)} acked cancels ({n_ops} ops) checked after each; "
          f"dropped by the cuts: {cut}", file=sys.stderr)
    assert len(clients.submits) >= 20 and clients.cancels


def test_power_loss_negative_control_acks_without_fdatasync_are_lost(hq_env, faultshim):
    """The same harness with the broker's fdatasyncs left out of the sync log (as if it
    acked before syncing): the power cut must lose acked submits, so the test above
    would catch a broker that acks too early."""
    env = hq_env
    broker = PowerLossBroker(env, faultshim, HQ_FAULT_SYNCLOG_IGNORE="fdatasync")
    broker.start()
    clients = Clients(env, random.Random(6), "neg")
    for k in range(1, 4):
        jid = env.submit("--name", f"neg-{k}", "--array", f"1-{k}", "--", "true")
        clients.submits[jid] = (f"neg-{k}", k)
    stats = broker.kill_and_cut_power()
    assert stats["zeroed_bytes"] > 0
    broker.start()
    lost = clients.lost(job_states(env))
    assert len(lost) == 3, lost


# ---- disk-full on a real 1 MiB tmpfs ----

class TmpfsDisk:
    """A real 1 MiB tmpfs; fill() writes a filler file until ENOSPC."""
    real = True

    def __init__(self, mnt):
        self.mnt = mnt
        self.journal = mnt / "journal"
        self.extra_env = {"HQ_JOURNAL_SEGMENT_BYTES": "131072"}
        self.filler = mnt / "filler"

    def fill(self):
        chunk = b"\xff" * 4096
        with open(self.filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
        st = os.statvfs(self.mnt)
        assert st.f_bavail == 0

    def free(self):
        self.filler.unlink()


class ShimDisk:
    """Fallback when tmpfs cannot be mounted (not root): the shim's ENOSPC."""
    real = False

    def __init__(self, tmp, so):
        self.journal = tmp / "journal"
        self.fault = tmp / "faults"
        self.fault.write_text("")
        self.extra_env = {"LD_PRELOAD": str(so), "HQ_FAULT_FILE": str(self.fault),
                          "HQ_FAULT_PATH": str(self.journal)}

    def fill(self):
        set_faults(self.fault, "write:ENOSPC:always,fallocate:ENOSPC:always")

    def free(self):
        set_faults(self.fault, "")


def mounted(path):
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == str(path) for line in f)


@pytest.fixture
def small_disk(hq_env, faultshim):
    if os.geteuid() != 0 or os.environ.get("HQ_TEST_DISKFULL_SHIM"):
        yield ShimDisk(hq_env.tmp, faultshim)
        return
    mnt = hq_env.tmp / "disk"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mnt)],
                   check=True)
    try:
        yield TmpfsDisk(mnt)
    finally:
        hq_env.teardown()  # the broker holds the journal open
        r = subprocess.run(["umount", str(mnt)], capture_output=True, text=True)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=False)
        assert not mounted(mnt), f"{mnt} is still mounted: {r.stderr}"


def big_arg(i):
    return f"{i:06d}" + "x" * 24000  # a ~24 KiB job description


def test_disk_full_on_a_1mib_tmpfs_refuses_submits_and_resumes_by_itself(hq_env, small_disk):
    env, disk = hq_env, small_disk
    e = dict(env.env)
    e.update(disk.extra_env)

    def start_broker():
        proc = env.spawn([HQ, "server", "start", "--server-dir", env.server_dir, "--host",
                          "127.0.0.1", "--journal", disk.journal], "server", env=e)
        env.server = proc
        env.wait_server(proc)
        return proc

    start_broker()
    env.start_worker()
    running = env.submit("--", "bash", "-c",
                         "touch started; while [ ! -e release ]; do sleep 0.05; done")
    wait_until(lambda: (env.work / "started").exists(), DEFAULT_TIMEOUT, "the task to start")
    disk.fill()
    # the segment's preallocated space takes records until it is full, then no new
    # segment fits: from then on submits get the typed error
    acked, refused = {}, None
    for i in range(40):
        r = env.hq("submit", "--name", f"big-{i}", "--", "true", big_arg(i), check=False,
                   mode="json")
        if r.returncode != 0:
            refused = (i, r.stdout + r.stderr)
            break
        acked[json.loads(r.stdout)["id"]] = f"big-{i}"
    assert refused is not None, "40 submits of 24 KiB were acked on a full 1 MiB tmpfs"
    assert "journal unavailable" in refused[1], refused[1]
    assert "No space left on device" in refused[1], refused[1]
    if disk.real:
        assert env.server.stderr().count("is unavailable") >= 1
    # reads keep working and show nothing of the refused submit
    states = job_states(env)
    assert sorted(states) == sorted([running, *acked])
    assert f"big-{refused[0]}" not in {j["name"] for j in states.values()}
    again = env.hq("submit", "--", "true", check=False)
    assert again.returncode != 0 and "journal unavailable" in again.stdout + again.stderr
    # the running task finishes while the journal is full
    (env.work / "release").touch()
    env.wait_job(running, timeout=60)
    assert env.tasks(running)[0]["state"] == "finished"
    # space comes back: the broker resumes by itself within 5 s
    n_ok = env.server.stderr().count("writable again")
    t0 = time.monotonic()
    disk.free()
    wait_until(lambda: env.server.stderr().count("writable again") > n_ok, 30,
               "the broker to report the journal writable again")
    resumed_s = time.monotonic() - t0
    assert resumed_s <= 5.0, f"resumed after {resumed_s:.1f}s"
    jid = env.submit("--name", "after", "--", "true")
    acked[jid] = "after"
    # no loss: every acked job survives kill -9 + restart, the refused one never existed
    kill9_server(env)
    export = env.hq("journal", "export", disk.journal).stdout
    finish_kept = any(json.loads(line)["event"].get("type") == "task-finished"
                      and json.loads(line)["event"].get("job") == running
                      for line in export.splitlines())
    start_broker()
    after = job_states(env)
    assert sorted(after) == sorted([running, *acked])
    for j, name in acked.items():
        assert after[j]["name"] == name
    print(f"\ndisk full ({'tmpfs' if disk.real else 'shim'}): {len(acked) - 1} submits "
          f"acked before the refusal, resumed {resumed_s:.2f}s after the filler went; "
          f"the finish of the task that ended meanwhile was "
          f"{'journaled' if finish_kept else 'not journaled (it runs again)'}",
          file=sys.stderr)
