#!/usr/bin/env python3
"""Automatic allocation on the real local SLURM (tools/slurm-local.sh; needs root):

  * first task: the time from `hq submit` to the first task running when no worker
    exists yet and a queue (`hq alloc add slurm --no-dry-run`) brings one, against the
    baseline of the same run: `sbatch --wrap "hq worker start"` by hand at the moment of
    the submit (ratio auto / by hand; SLURM's own scheduling dominates both);
  * sbatch calls: how many allocations a queue (--backlog 1 --max-worker-count 2)
    submits for N short tasks (10,000 by default), and how long the job takes;
  * tail: how long the last allocation stays in SLURM's queue after the work ended,
    against the queue's --idle-timeout (the least it can be).

  python3 integration/bench/bench_alloc_slurm.py [--tasks 10000] [--idle 5]
                                                 [--repeat 3] [--build build]

Starts the local SLURM unless one answers already (and stops it again at the end),
stops every process it started by PID, prints one JSON object and always exits 0."""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SLURM_SCRIPT = REPO / "integration" / "tools" / "slurm-local.sh"
sys.path.insert(0, str(REPO / "integration"))
from hqtest import base_env, free_tcp_ports  # noqa: E402


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def wait_for(cond, timeout, what, interval=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise RuntimeError(f"timed out waiting for {what}")


class Slurm:
    def __init__(self):
        self.env = base_env()
        self.env.setdefault("SLURM_LOCAL_SCHED_PARAMS", "fast")
        self.own_dir = None
        self.started = False

    def script(self, cmd, timeout=900):
        return subprocess.run(["bash", str(SLURM_SCRIPT), cmd], capture_output=True, text=True,
                              env=self.env, timeout=timeout, stdin=subprocess.DEVNULL)

    def start(self):
        if "SLURM_LOCAL_DIR" not in os.environ:
            self.own_dir = tempfile.mkdtemp(prefix="hq-bench-slurm-")
            self.env["SLURM_LOCAL_DIR"] = self.own_dir
            ctld, slurmd = free_tcp_ports(2)
            self.env["SLURM_LOCAL_CTLD_PORT"] = str(ctld)
            self.env["SLURM_LOCAL_SLURMD_PORT"] = str(slurmd)
        if self.script("status", 60).returncode != 0:
            r = self.script("start")
            if r.returncode != 0:
                raise RuntimeError(f"slurm-local.sh start failed:\n{r.stderr[-2000:]}")
            self.started = True
        for line in self.script("env", 60).stdout.splitlines():
            m = re.fullmatch(r"export (\w+)=(.*)", line.strip())
            if m:
                self.env[m.group(1)] = m.group(2)
        return self.env["SLURM_CONF"]

    def stop(self):
        if self.started:
            self.script("stop", 120)
        if self.own_dir:
            shutil.rmtree(self.own_dir, ignore_errors=True)


class Run:
    """One broker in a temp server dir, with helpers."""

    def __init__(self, hq, slurm_conf, tmp, name):
        self.hq_bin = hq
        self.dir = tmp / name
        self.dir.mkdir()
        self.sd = self.dir / "server"
        self.env = base_env()
        self.env["SLURM_CONF"] = slurm_conf
        self.env["HQ_ALLOC_POLL_INTERVAL"] = "1s"
        self.err = open(self.dir / "server.err", "wb")
        self.server = subprocess.Popen([hq, "server", "start", "--server-dir", str(self.sd),
                                        "--host", "127.0.0.1"], env=self.env,
                                       stdout=subprocess.DEVNULL, stderr=self.err,
                                       stdin=subprocess.DEVNULL, cwd=str(self.dir))
        wait_for(lambda: self.hq("server", "info", check=False).returncode == 0, 30, "server")
        self.jobs = []

    def hq(self, *args, check=True, mode=None, timeout=600):
        cmd = [self.hq_bin, "--server-dir", str(self.sd)] + (["--output-mode", mode] if mode
                                                               else []) + [str(a) for a in args]
        r = subprocess.run(cmd, capture_output=True, text=True, env=self.env, timeout=timeout,
                           cwd=str(self.dir))
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {r.stderr}")
        return r

    def json(self, *args):
        return json.loads(self.hq(*args, mode="json").stdout)

    def squeue(self, job_id):
        r = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True,
                           text=True, env=self.env)
        return r.stdout.strip() if r.returncode == 0 else ""

    def first_start(self, job):
        tasks = self.json("task", "list", str(job))[str(job)]
        starts = [t["started_at"] for t in tasks if t.get("started_at")]
        return min(starts) if starts else None

    def stop(self):
        ids = []
        try:
            for q in self.json("alloc", "list"):
                ids += [a["id"] for a in self.json("alloc", "info", str(q["id"]))]
        except Exception:  # noqa: BLE001 - best effort before the stop
            pass
        self.hq("server", "stop", check=False)
        try:
            self.server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
        ids += self.jobs
        live = [i for i in ids if self.squeue(i)]
        if live:
            subprocess.run(["scancel", *live], env=self.env)
            for i in live:
                wait_for(lambda: self.squeue(i) == "", 120, f"job {i} to leave", 0.2)
        self.err.close()


def rfc3339(text):
    """Unix time of hq's "2026-01-02T03:04:05.123456789Z" (microseconds kept)."""
    from datetime import datetime, timezone
    base, _, frac = text.rstrip("Z").partition(".")
    t = datetime.fromisoformat(base).replace(tzinfo=timezone.utc).timestamp()
    return t + (float("0." + frac[:6]) if frac else 0.0)


def first_task_by_hand(hq, conf, tmp, k):
    r = Run(hq, conf, tmp, f"hand-{k}")
    try:
        t0 = time.time()
        out = subprocess.run(["sbatch", "--parsable", "--time=10", f"--chdir={r.dir}",
                              f"--output={r.dir}/slurm-%j.out", "--wrap",
                              f"{hq} worker start --server-dir {r.sd} --idle-timeout 5s"],
                             capture_output=True, text=True, env=r.env, check=True).stdout
        r.jobs.append(out.strip().split(";")[0])
        job = r.json("submit", "--", "true")["id"]
        start = wait_for(lambda: r.first_start(job), 120, "the first task")
        return rfc3339(start) - t0
    finally:
        r.stop()


def first_task_auto(hq, conf, tmp, k):
    r = Run(hq, conf, tmp, f"auto-{k}")
    try:
        r.hq("alloc", "add", "slurm", "--time-limit", "10m", "--idle-timeout", "5s",
             "--no-dry-run")
        t0 = time.time()
        job = r.json("submit", "--", "true")["id"]
        start = wait_for(lambda: r.first_start(job), 120, "the first task")
        return rfc3339(start) - t0
    finally:
        r.stop()


def many_tasks(hq, conf, tmp, n, idle):
    r = Run(hq, conf, tmp, "many")
    try:
        r.hq("alloc", "add", "slurm", "--time-limit", "30m", "--idle-timeout", f"{idle}s",
             "--backlog", "1", "--max-worker-count", "2", "--no-dry-run")
        t0 = time.time()
        job = r.json("submit", "--array", f"1-{n}", "--stdout", "none", "--stderr", "none",
                     "--", "true")["id"]
        r.hq("job", "wait", str(job), timeout=3600)
        t_done = time.time()
        allocs = r.json("alloc", "info", "1")
        ids = [a["id"] for a in allocs]
        wait_for(lambda: all(r.squeue(i) == "" for i in ids), 600, "allocations to end", 0.1)
        t_gone = time.time()
        fails = r.hq("alloc", "info", "1").stderr.count("Could not submit")
        return {"tasks": n, "sbatch_calls": len(ids) + fails, "allocations": len(ids),
                "job_seconds": round(t_done - t0, 2), "tail_seconds": round(t_gone - t_done, 2)}
    finally:
        r.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=10000)
    ap.add_argument("--idle", type=int, default=5, help="--idle-timeout of the queue, seconds")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--build", default=os.environ.get("HQ_BUILD_DIR", str(REPO / "build")))
    a = ap.parse_args()
    hq = str(Path(a.build).resolve() / "hq")
    slurm = Slurm()
    tmp = Path(tempfile.mkdtemp(prefix="hq-bench-alloc-"))
    result = {}
    try:
        conf = slurm.start()
        hand, auto = [], []
        for k in range(a.repeat):  # alternate which side goes first
            pair = [(hand, first_task_by_hand), (auto, first_task_auto)]
            for acc, fn in (pair if k % 2 == 0 else pair[::-1]):
                acc.append(fn(hq, conf, tmp, k))
            log(f"run {k}: by hand {hand[-1]:.2f}s, automatic {auto[-1]:.2f}s")
        ratios = [x / y for x, y in zip(auto, hand)]
        result["first_task"] = {
            "by_hand_seconds": round(statistics.median(hand), 2),
            "automatic_seconds": round(statistics.median(auto), 2),
            "ratio_auto_by_hand": round(statistics.median(ratios), 2)}
        many = many_tasks(hq, conf, tmp, a.tasks, a.idle)
        many["idle_timeout_seconds"] = a.idle
        many["tail_over_idle_timeout"] = round(many["tail_seconds"] - a.idle, 2)
        result["many_tasks"] = many
    except Exception as e:  # noqa: BLE001 - a benchmark reports, it does not fail
        result["error"] = str(e)
    finally:
        slurm.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
