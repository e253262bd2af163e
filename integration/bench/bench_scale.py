#!/usr/bin/env python3
"""Scale figures for a 1,000,000-task array (broker/GUARANTEES.md, G9 (scale and
resources), case scale-1M).

Starts a broker, measures its RSS, submits `--array 0-999999` and reports: submit
latency (until the job id is acknowledged), broker RSS growth per waiting task, and
the latency of `hq job list` and `hq job info <id>` (cli mode) while one worker runs
tasks of the array. Targets: submit < 1 s, <= 128 bytes per waiting task, list/info
< 100 ms. Expects `hq` in HQ_BUILD_DIR (default <repo>/build). Always exits 0.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def wait_for(cond, what, timeout=60.0):
    """Polls cond() every 50 ms until it returns a truthy value; returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise SystemExit(f"bench_scale: timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def settled_rss(pid, what):
    """The RSS once it stopped changing (two reads 100 ms apart within 64 KiB)."""
    last = [rss_bytes(pid)]

    def settled():
        time.sleep(0.1)
        now = rss_bytes(pid)
        same = abs(now - last[0]) <= 64 * 1024
        last[0] = now
        return now if same else None

    return wait_for(settled, what, timeout=30)


def hq_json(hq, env, *args):
    r = subprocess.run([hq, "--output-mode", "json", *args], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    return json.loads(r.stdout) if r.returncode == 0 else None


def timed(cmd, env, repeat=5):
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        dt = time.perf_counter() - t0
        if r.returncode != 0:
            print(r.stderr.decode(errors="replace"), file=sys.stderr)
        best = dt if best is None else min(best, dt)
    return best


def stop_procs(procs):
    """Stops the benchmark's processes by PID, newest first: SIGINT, then SIGKILL."""
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=1_000_000)
    ap.add_argument("--build", default=os.environ.get("HQ_BUILD_DIR", os.path.join(REPO, "build")))
    a = ap.parse_args()
    hq = os.path.join(os.path.abspath(a.build), "hq")
    tmp = tempfile.mkdtemp(prefix="hq-scale-")
    env = dict(os.environ, HQ_SERVER_DIR=os.path.join(tmp, "sd"))
    procs = []
    try:
        srv = subprocess.Popen([hq, "server", "start", "--host", "127.0.0.1"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(srv)
        wait_for(lambda: hq_json(hq, env, "server", "info"), "the server to answer", 10)
        # the broker is the child (hq server start execs or forks hq-broker)
        pid = srv.pid
        rss0 = settled_rss(pid, "the idle broker's RSS to settle")
        t0 = time.perf_counter()
        r = subprocess.run([hq, "--output-mode", "quiet", "submit", "--array",
                            f"0-{a.tasks - 1}", "--stdout", "none", "--stderr", "none", "--",
                            "true"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        submit_s = time.perf_counter() - t0
        job = r.stdout.decode().strip()
        rss1 = settled_rss(pid, "the broker's RSS to settle after the submit")
        per_task = (rss1 - rss0) / a.tasks
        wk = subprocess.Popen([hq, "worker", "start", "--cpus", "1", "--work-dir",
                               os.path.join(tmp, "wk")], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        procs.append(wk)

        def running():
            info = hq_json(hq, env, "job", "info", job)
            stats = info[0]["info"]["task_stats"] if info else {}
            return stats.get("running", 0) + stats.get("finished", 0) > 0

        wait_for(running, "the worker to run tasks of the array", 60)
        list_s = timed([hq, "job", "list"], env)
        info_s = timed([hq, "job", "info", job], env)
        rss2 = rss_bytes(pid)
        print(f"tasks: {a.tasks}")
        print(f"submit+ack: {submit_s * 1000:.0f} ms (target < 1000 ms)")
        print(f"broker RSS: {rss0 / 2**20:.1f} MiB -> {rss1 / 2**20:.1f} MiB; "
              f"{per_task:.1f} bytes per waiting task (target <= 128)")
        print(f"broker RSS while running: {rss2 / 2**20:.1f} MiB")
        print(f"job list (cli, best of 5): {list_s * 1000:.1f} ms (target < 100 ms)")
        print(f"job info (cli, best of 5): {info_s * 1000:.1f} ms (target < 100 ms)")
    finally:
        stop_procs(procs)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
