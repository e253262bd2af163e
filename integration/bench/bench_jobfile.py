#!/usr/bin/env python3
"""Job-file benchmark: writes a TOML job file of N tasks linked by dependencies
(task i depends on task i-1 within chains of length L), then measures how long
`hq job submit-file` takes and how long the job takes to run to completion on one
local worker. Everything runs on 127.0.0.1 in a temp dir and is stopped at the end.

  python3 integration/bench/bench_jobfile.py [--tasks 100000] [--chain 100000]
                                             [--cpus 2] [--build build]

Prints one JSON object with the measurements; exits 1 if the submit took longer
than --max-submit seconds (default 5) or the job did not finish."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def write_jobfile(path, n, chain):
    with open(path, "w") as f:
        f.write('name = "bench"\n')
        for i in range(n):
            f.write(f'[[task]]\nid = {i}\ncommand = ["true"]\nstdout = "none"\n'
                    f'stderr = "none"\n')
            if i % chain != 0:
                f.write(f"deps = [{i - 1}]\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=100000)
    ap.add_argument("--chain", type=int, default=100000,
                    help="length of each dependency chain (tasks = chains x length)")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--build", default=os.environ.get("HQ_BUILD_DIR", str(REPO / "build")))
    ap.add_argument("--max-submit", type=float, default=5.0)
    ap.add_argument("--run-timeout", type=float, default=1800.0)
    a = ap.parse_args()
    hq = str(Path(a.build).resolve() / "hq")
    tmp = Path(tempfile.mkdtemp(prefix="hq-bench-jobfile-"))
    sd = tmp / "server"
    env = dict(os.environ)
    for k in ("HQ_SERVER_DIR", "HQ_OUTPUT_MODE", "HQ_DEBUG", "RUST_LOG"):
        env.pop(k, None)
    procs = []
    result = {"tasks": a.tasks, "chain": a.chain}
    ok = False
    try:
        jf = tmp / "job.toml"
        t0 = time.monotonic()
        write_jobfile(jf, a.tasks, a.chain)
        result["file_bytes"] = jf.stat().st_size
        result["write_s"] = round(time.monotonic() - t0, 3)
        base = [hq, "--server-dir", str(sd)]
        procs.append(subprocess.Popen(base + ["server", "start", "--host", "127.0.0.1"],
                                      stdout=subprocess.DEVNULL, stderr=open(tmp / "server.err", "w"),
                                      env=env, cwd=tmp))
        deadline = time.monotonic() + 20
        while subprocess.run(base + ["server", "info"], capture_output=True, env=env).returncode:
            if time.monotonic() > deadline:
                raise SystemExit("server did not start")
            time.sleep(0.05)
        procs.append(subprocess.Popen(base + ["worker", "start", "--cpus", str(a.cpus),
                                              "--work-dir", str(tmp / "w")],
                                      stdout=subprocess.DEVNULL, stderr=open(tmp / "worker.err", "w"),
                                      env=env, cwd=tmp))
        subprocess.run(base + ["worker", "wait", "1"], check=True, env=env, timeout=30)
        t0 = time.monotonic()
        r = subprocess.run(base + ["--output-mode", "quiet", "job", "submit-file", str(jf)],
                           capture_output=True, text=True, env=env, cwd=tmp)
        result["submit_s"] = round(time.monotonic() - t0, 3)
        if r.returncode != 0:
            raise SystemExit(f"submit failed: {r.stderr}")
        job = r.stdout.strip()
        t0 = time.monotonic()
        subprocess.run(base + ["job", "wait", job], check=True, env=env, timeout=a.run_timeout)
        result["run_s"] = round(time.monotonic() - t0, 3)
        info = json.loads(subprocess.run(base + ["--output-mode", "json", "job", "info", job],
                                         capture_output=True, text=True, env=env).stdout)
        stats = info[0]["info"]["task_stats"]
        result["finished"] = stats["finished"]
        result["tasks_per_s"] = round(a.tasks / result["run_s"], 1) if result["run_s"] else None
        ok = stats["finished"] == a.tasks and result["submit_s"] <= a.max_submit
    finally:
        subprocess.run([hq, "--server-dir", str(sd), "server", "stop"], capture_output=True,
                       env=env)
        for p in reversed(procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    result["ok"] = ok
    print(json.dumps(result))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
