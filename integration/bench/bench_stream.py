#!/usr/bin/env python3
"""Output streaming benchmark: N tasks that each print one line, run through one local
worker in three ways in the same run — `--stream DIR`, the default per-task stdout/stderr
files, and `--stdout none --stderr none` — and for each: tasks/s (the job's span on the
server's clock), the files created, and for the streamed job the time `hq output-log
DIR cat J stdout` takes to print every task's output; also the worker's own CPU time
per task (less sensitive to other load on the machine than the rates). The modes run in turn --repeat
times (the order rotates each round) and the medians are reported.

  HQ_BUILD_DIR=build python3 integration/bench/bench_stream.py [-n 100000] [--repeat 1]
                                                               [--cpus 2]

Prints progress to stderr and one JSON object to stdout. Always exits 0 (a benchmark,
not a test); the targets are in integration/bench/README.md."""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_bench import parse_rfc3339, proc_cpu_seconds  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MODES = ("stream", "files", "none")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def count_files(d):
    return sum(len(files) for _, _, files in os.walk(d)) if d.exists() else 0


class Bench:
    def __init__(self, hq, tmp, cpus):
        self.hq_bin, self.tmp = hq, tmp
        self.sd = tmp / "server"
        self.env = dict(os.environ)
        for k in ("HQ_SERVER_DIR", "HQ_OUTPUT_MODE", "HQ_DEBUG", "RUST_LOG"):
            self.env.pop(k, None)
        self.procs = []
        self.spawn(["server", "start", "--host", "127.0.0.1"], "server")
        deadline = time.monotonic() + 30
        while self.hq("server", "info", check=False).returncode:
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.05)
        self.spawn(["worker", "start", "--cpus", str(cpus), "--work-dir", str(tmp / "w")],
                   "worker")
        self.hq("worker", "wait", "1", timeout=30)

    def spawn(self, args, name):
        self.procs.append(subprocess.Popen(
            [self.hq_bin, "--server-dir", str(self.sd), *args], stdout=subprocess.DEVNULL,
            stderr=open(self.tmp / f"{name}.err", "w"), env=self.env, cwd=self.tmp))

    def hq(self, *args, check=True, timeout=600, cwd=None, stdout=subprocess.PIPE):
        r = subprocess.run([self.hq_bin, "--server-dir", str(self.sd), *map(str, args)],
                           stdout=stdout, stderr=subprocess.PIPE, text=True, env=self.env,
                           cwd=cwd or self.tmp, timeout=timeout)
        if check and r.returncode:
            raise SystemExit(f"hq {' '.join(map(str, args))} failed: {r.stderr}")
        return r

    def run(self, mode, n, round_):
        cwd = self.tmp / f"{mode}-{round_}"
        cwd.mkdir()
        stdio = {"stream": ["--stream", "streams"], "files": [],
                 "none": ["--stdout", "none", "--stderr", "none"]}[mode]
        worker = self.procs[1].pid
        cpu0 = proc_cpu_seconds(worker)
        t0 = time.monotonic()
        job = self.hq("--output-mode", "quiet", "submit", "--array", f"1-{n}", *stdio, "--",
                      "/bin/echo", "one line of output", cwd=cwd).stdout.split()[-1]
        self.hq("job", "wait", job, timeout=max(600, n / 20))
        wall = time.monotonic() - t0
        cpu1 = proc_cpu_seconds(worker)
        info = json.loads(self.hq("--output-mode", "json", "job", "info", job).stdout)[0]
        js, jf = parse_rfc3339(info.get("started_at")), parse_rfc3339(info.get("finished_at"))
        span = jf - js if js and jf and jf > js else wall
        out = {"tasks_per_s": round(n / span, 1), "wall_s": round(wall, 2),
               "failed": info["info"]["task_stats"].get("failed", 0),
               "files": count_files(cwd),
               "worker_cpu_us_per_task": round((cpu1 - cpu0) * 1e6 / n, 1)}
        if mode == "stream":
            t1 = time.monotonic()
            with open(os.devnull, "w") as null:
                r = subprocess.run([self.hq_bin, "output-log", "streams", "cat", job, "stdout"],
                                   stdout=null, stderr=subprocess.PIPE, cwd=cwd, env=self.env)
            out["cat_s"] = round(time.monotonic() - t1, 3)
            if r.returncode:
                log(f"output-log cat failed: {r.stderr}")
            size = sum(p.stat().st_size for p in (cwd / "streams").iterdir())
            out["stream_bytes"] = size
        log(f"{mode:6s} round {round_}: {out}")
        return out

    def stop(self):
        self.hq("server", "stop", check=False)
        for p in reversed(self.procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=100000)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--build", default=os.environ.get("HQ_BUILD_DIR", str(REPO / "build")))
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hq-bench-stream-"))
    bench = None
    res = {m: [] for m in MODES}
    try:
        bench = Bench(str(Path(a.build).resolve() / "hq"), tmp, a.cpus)
        for r in range(a.repeat):
            order = MODES[r % 3:] + MODES[:r % 3]
            for mode in order:
                res[mode].append(bench.run(mode, a.n, r))
    finally:
        if bench:
            bench.stop()
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    summary = {"tasks": a.n, "repeat": a.repeat}
    for mode in MODES:
        runs = res[mode]
        if not runs:
            continue
        s = {"tasks_per_s": statistics.median(x["tasks_per_s"] for x in runs),
             "files": statistics.median(x["files"] for x in runs),
             "worker_cpu_us_per_task": statistics.median(x["worker_cpu_us_per_task"]
                                                         for x in runs),
             "failed": sum(x["failed"] for x in runs)}
        if mode == "stream":
            s["cat_s"] = statistics.median(x["cat_s"] for x in runs)
            s["stream_bytes"] = statistics.median(x["stream_bytes"] for x in runs)
        summary[mode] = s
    if all(m in summary for m in MODES):
        summary["stream_vs_files"] = round(summary["stream"]["tasks_per_s"] /
                                           summary["files"]["tasks_per_s"], 3)
        summary["stream_vs_none"] = round(summary["stream"]["tasks_per_s"] /
                                          summary["none"]["tasks_per_s"], 3)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
