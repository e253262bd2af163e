#!/usr/bin/env python3
"""The journal's cost in the broker, measured in one run.

1. Broker-only throughput: N tasks acknowledged at once by synth_worker (--cpus 64,
   --prefetch 2048: the queue depth a real 64-cpu hq-worker asks for with short
   tasks), with the journal off and on, alternating, R runs each; the rate is
   synth_worker's (first ASSIGN to the N-th acknowledgement). Reports the median
   rates, the cost (1 - on/off; target < 25 %) and the journal bytes per task
   lifecycle (task_started + task_finished; target <= 64 B).
2. Restart-to-serving: a 1M-task array queued with the journal on, broker killed
   with SIGKILL, restarted on the same journal: time from the restart until
   `hq server info` answers (target <= 10 s), and until `hq job list` shows the job.

Expects `hq` and `synth_worker` in HQ_BUILD_DIR (default <repo>/build). Standard
library only. Usage: bench_journal_broker.py [-n 1000000] [-r 3] [--prefetch 2048] [--queued 1000000]
(--queued 0 skips the restart part)
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("HQ_BUILD_DIR", os.path.join(REPO, "build")))
HQ = os.path.join(BUILD, "hq")
SYNTH = os.path.join(BUILD, "synth_worker")


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


class Run:
    def __init__(self, tmp, journal):
        self.tmp = tmp
        self.sd = os.path.join(tmp, "server")
        self.journal = journal
        self.server = None

    def hq(self, *args, timeout=300, check=True):
        r = subprocess.run([HQ, "--server-dir", self.sd, *args], capture_output=True,
                           text=True, timeout=timeout, cwd=self.tmp)
        if check and r.returncode != 0:
            raise RuntimeError(f"hq {' '.join(args)}: {r.stderr[-500:]}")
        return r

    def start(self):
        argv = [HQ, "server", "start", "--server-dir", self.sd, "--host", "127.0.0.1"]
        if self.journal:
            argv += ["--journal", self.journal]
        log_f = open(os.path.join(self.tmp, "server.log"), "ab")
        self.server = subprocess.Popen(argv, stdout=log_f, stderr=log_f,
                                       stdin=subprocess.DEVNULL, cwd=self.tmp)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 120:
            if self.server.poll() is not None:
                raise RuntimeError("server exited")
            if self.hq("server", "info", check=False, timeout=10).returncode == 0:
                return time.monotonic() - t0
            time.sleep(0.02)
        raise RuntimeError("server did not answer")

    def kill9(self):
        self.server.kill()
        self.server.wait()

    def stop(self):
        if self.server and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()


def journal_bytes(path):
    """Bytes of records in the journal's segments (frames up to the zero end marker)."""
    total = 0
    for name in sorted(os.listdir(path)):
        if not name.endswith(".hqj"):
            continue
        with open(os.path.join(path, name), "rb") as f:
            data = f.read()
        off = 64  # file header
        while off + 8 <= len(data):
            length = int.from_bytes(data[off:off + 4], "little")
            if length == 0:
                break
            off += 8 + length
        total += off - 64
    return total


def throughput(n, journal_on, prefetch):
    tmp = tempfile.mkdtemp(prefix="hq-bjb-")
    run = Run(tmp, os.path.join(tmp, "journal") if journal_on else None)
    try:
        run.start()
        r = run.hq("--output-mode", "quiet", "submit", "--array", f"1-{n}", "--stdout", "none",
                   "--stderr", "none", "--", "/bin/true")
        job = r.stdout.strip().splitlines()[-1].strip()
        t0 = time.monotonic()
        synth = subprocess.Popen([SYNTH, "--server-dir", run.sd, "--cpus", "64", "-n", str(n),
                                  "--prefetch", str(prefetch), "--timeout", "300"],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        run.hq("job", "wait", job, timeout=330)
        dt = time.monotonic() - t0
        out, _ = synth.communicate(timeout=60)
        # synth_worker's own clock: first ASSIGN to the N-th acknowledgement (as
        # run_bench.py's broker run); the wall time around it also counts its start.
        kv = dict(f.split("=", 1) for f in out.split() if "=" in f)
        rate = float(kv.get("tasks_per_s", n / dt))
        per_task = journal_bytes(run.journal) / n if journal_on else 0.0
        return rate, per_task
    finally:
        run.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def restart(queued):
    tmp = tempfile.mkdtemp(prefix="hq-bjb-")
    run = Run(tmp, os.path.join(tmp, "journal"))
    try:
        run.start()
        t0 = time.monotonic()
        run.hq("--output-mode", "quiet", "submit", "--array", f"1-{queued}", "--stdout", "none",
               "--stderr", "none", "--", "/bin/true")
        ack = time.monotonic() - t0
        run.kill9()
        t1 = time.monotonic()
        serve = run.start()
        jl = run.hq("--output-mode", "json", "job", "list")
        listed = time.monotonic() - t1
        ok = f'"waiting": {queued}' in jl.stdout or f'"waiting":{queued}' in jl.stdout
        with open(os.path.join(tmp, "server.log"), errors="replace") as f:
            replay = [ln.strip() for ln in f if "replayed" in ln]
        return ack, serve, listed, ok, replay[-1] if replay else ""
    finally:
        run.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1000000)
    ap.add_argument("-r", "--runs", type=int, default=3)
    # what a real 64-cpu hq-worker registers (32 per cpu, worker/worker.c) and then asks
    # for with short tasks (tasks.c: the cpus plus about 40 ms of work per cpu)
    ap.add_argument("--prefetch", type=int, default=2048)
    ap.add_argument("--queued", type=int, default=1000000)
    a = ap.parse_args()
    off, on, per_task = [], [], []
    for i in range(a.runs):
        for flag in ((False, True) if i % 2 == 0 else (True, False)):
            rate, bpt = throughput(a.n, flag, a.prefetch)
            (on if flag else off).append(rate)
            if flag:
                per_task.append(bpt)
            log(f"run {i + 1}: journal {'on ' if flag else 'off'} {rate:.0f} tasks/s")
    m_off, m_on = statistics.median(off), statistics.median(on)
    cost = 1 - m_on / m_off if m_off else 0.0
    print(f"broker-only N={a.n}: journal off {m_off:.0f}/s "
          f"[{min(off):.0f}..{max(off):.0f}], on {m_on:.0f}/s [{min(on):.0f}..{max(on):.0f}], cost "
          f"{cost * 100:.1f} % (target < 25 %) {'PASS' if cost < 0.25 else 'FAIL'}")
    bpt = statistics.median(per_task)
    print(f"journal growth: {bpt:.1f} B per task lifecycle (target <= 64 B) "
          f"{'PASS' if bpt <= 64 else 'FAIL'}")
    if a.queued <= 0:
        return 0
    ack, serve, listed, ok, replay = restart(a.queued)
    print(f"restart with {a.queued} queued tasks: submit acked in {ack:.2f} s, serving "
          f"{serve:.2f} s after the restart, job listed after {listed:.2f} s "
          f"(target <= 10 s) {'PASS' if serve <= 10 and ok else 'FAIL'}; {replay}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
