#!/usr/bin/env python3
"""The real run of the scheduling-quality benchmark (README, "Scheduling quality"):
workload a of bench_quality scaled down and run by a real broker and two real
workers. 800 tasks (seeded: lognormal durations, median 0.08 s, sigma 1; 1-4 cpus)
in one job file, on two workers of 8 cpus in 2 groups of 4. Prints the makespan
(first start to last end, on the workers' clocks as the tasks report them), the
lower bound (task cpu-seconds over the 16 cpus, or the longest task), their ratio
and the cpu utilization. Expects `hq` in HQ_BUILD_DIR (default <repo>/build).
Always exits 0; stops every process it started by PID.
"""

import argparse
import datetime
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile

from bench_scale import hq_json, stop_procs, wait_for

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKERS, CPUS = 2, 8


def stamp(text):
    """Seconds of an RFC 3339 time with nanoseconds ("2026-01-02T03:04:05.123456789Z")."""
    main, _, frac = text.rstrip("Z").partition(".")
    t = datetime.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp() + float("0." + (frac or "0"))


def workload(n, seed):
    rng = random.Random(seed)
    return [(round(0.08 * math.exp(rng.gauss(0, 1)), 3), rng.randint(1, 4)) for _ in range(n)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=800, help="tasks (800)")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--build", default=os.environ.get("HQ_BUILD_DIR", os.path.join(REPO, "build")))
    a = ap.parse_args()
    hq = os.path.join(os.path.abspath(a.build), "hq")
    tmp = tempfile.mkdtemp(prefix="hq-quality-")
    env = dict(os.environ, HQ_SERVER_DIR=os.path.join(tmp, "sd"))
    procs = []
    try:
        procs.append(subprocess.Popen([hq, "server", "start", "--host", "127.0.0.1"], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for(lambda: hq_json(hq, env, "server", "info"), "the server")
        tasks = workload(a.n, a.seed)
        lines = []
        for i, (dur, cpus) in enumerate(tasks):
            lines += ["[[task]]", f"id = {i}", f'command = ["sleep", "{dur}"]',
                      'stdout = "none"', 'stderr = "none"', "[[task.request]]",
                      f"resources = {{ cpus = \"{cpus}\" }}", ""]
        path = os.path.join(tmp, "job.toml")
        with open(path, "w") as f:
            f.write("\n".join(lines))
        r = subprocess.run([hq, "--output-mode", "json", "job", "submit-file", path], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            raise SystemExit(f"bench_quality_real: submit failed: {r.stderr}")
        job = str(json.loads(r.stdout)["id"])
        for k in range(WORKERS):
            procs.append(subprocess.Popen(
                [hq, "worker", "start", "--cpus", f"2x{CPUS // 2}", "--work-dir",
                 os.path.join(tmp, f"w{k}"), "--hostname", f"w{k}"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        subprocess.run([hq, "job", "wait", job], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=600)
        listed = hq_json(hq, env, "task", "list", job)[job]
        starts = [stamp(t["started_at"]) for t in listed if t.get("started_at")]
        ends = [stamp(t["finished_at"]) for t in listed if t.get("finished_at")]
        work = sum(d * c for d, c in tasks)
        bound = max(work / (WORKERS * CPUS), max(d for d, _ in tasks))
        makespan = max(ends) - min(starts)
        print(f"real run: tasks {a.n} on {WORKERS}x{CPUS} cpus: makespan {makespan:.2f} s, "
              f"bound {bound:.2f} s, ratio {makespan / bound:.3f}, "
              f"utilization {work / (makespan * WORKERS * CPUS):.3f}")
    finally:
        stop_procs(procs)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
