#!/usr/bin/python3
"""The long variants of the hostile-input and network tests (broker/GUARANTEES.md, cases
lossy-network, msgpack-fuzz-live, handshake-slowloris and authenticated-flood); the CI
runs scaled-down versions in integration/test_hostile.py and
integration/test_network_faults.py. Prints one JSON line per case and never fails a build
(exit 1 only when a case's check failed).

    HQ_BUILD_DIR=build python3 integration/bench/hostile_long.py \\
        [--cases slowloris,flood,fuzz,lossy] [--fuzz-frames 1000000] \\
        [--slowloris 1000] [--flood 200000] [--lossy-tasks 10000] [--keep]
"""

import json
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from hqtest import HQ, HQ_RAWPEER, HqEnv, assert_still_serves, base_env, rss_kib  # noqa: E402
import test_hostile  # noqa: E402  (the scenarios, run here at full size)
import test_network_faults  # noqa: E402


def case_slowloris(env, a):
    env.start_server()
    lat, closed_after, _ = test_hostile.run_slowloris(env, a.slowloris)
    return {"per_port": a.slowloris, "job_list_s": [round(x, 3) for x in lat],
            "all_closed_after_s": round(closed_after, 1), "ok": max(lat) < 1.0}


def case_flood(env, a):
    env.start_server()
    env.start_worker(cpus=1)
    pid = env.server.pid
    base = test_hostile.baseline_latency(env, 9)
    rss0 = rss_kib(pid)
    reps = a.flood // 4
    procs = [subprocess.Popen([str(HQ_RAWPEER), "--access", str(env.access_path()), "--role",
                               "client", "--nowait", "--repeat", str(reps), "valid:server-info",
                               "valid:job-summary"], stdout=subprocess.PIPE, text=True,
                              env=base_env()) for _ in range(2)]
    lat = []
    while any(p.poll() is None for p in procs):
        lat.append(test_hostile.timed_hq(env, "job", "list"))
    outs = [test_hostile.summary(p.communicate()[0].splitlines()) for p in procs]
    rss1 = rss_kib(pid)
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None
    rate = sum(o["sent"] for o in outs) / max(o["seconds"] for o in outs)
    return {"requests": sum(o["sent"] for o in outs), "requests_per_s": round(rate),
            "baseline_s": round(base, 3), "p99_s": p99 and round(p99, 3), "calls": len(lat),
            "rss_kib": [rss0, rss1], "ok": p99 is not None and p99 <= 2 * base + 0.05}


def _p99(lat):
    lat = sorted(lat)
    return lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None


def _created_jobs(env):
    """(jobs, tasks, open jobs, jobs with tasks) the broker holds (finished ones too)."""
    jobs = env.hq_json("job", "list", "--all")
    tasks = sum(sum(j["task_stats"].values()) for j in jobs)
    return (len(jobs), tasks, sum(1 for j in jobs if j.get("is_open")),
            sum(1 for j in jobs if sum(j["task_stats"].values())))


def _valid_frames(path, seed_file, n, first_request_id):
    """n copies of a valid request from the fuzz corpus, each with its own request id
    (so none is answered from the broker's reply cache)."""
    seed = bytearray((test_hostile.CORPUS / seed_file).read_bytes())
    with open(path, "wb") as f:
        for i in range(n):
            seed[4:12] = (first_request_id + i).to_bytes(8, "big")
            f.write(struct.pack("<I", len(seed)))
            f.write(seed)
    return path


def control_jobs(env, n_empty, n_submits):
    """Creates on a fresh broker (env) the jobs a fuzz run created by accident, from
    valid requests: n_empty JOB_OPEN (an open job without tasks, what a mutated
    JOB_OPEN or SUBMIT without tasks makes) and n_submits SUBMIT of the corpus job.
    Returns (RSS before, RSS after) in KiB, measured as in the fuzz run."""
    env.start_server()
    env.w1 = env.start_worker(cpus=1)
    pid = env.server.pid
    test_hostile.baseline_latency(env)
    rss0 = rss_kib(pid)
    for seed_file, n, rid in (("009-JOB_OPEN", n_empty, 0x7700000000000000),
                              ("003-SUBMIT", n_submits, 0x7800000000000000)):
        if n <= 0:
            continue
        f = _valid_frames(env.tmp / f"control-{seed_file}.bin", seed_file, n, rid)
        out = subprocess.run([str(HQ_RAWPEER), "--access", str(env.access_path()), "--role",
                              "client", "--nowait", "--timeout", "500", "--frames-file", str(f)],
                             capture_output=True, text=True, env=base_env(), timeout=900)
        assert out.returncode == 0, out.stderr
    jobs, tasks, _, _ = _created_jobs(env)
    if n_submits:
        env.hq("job", "wait", "all", timeout=900)
    rss1 = rss_kib(pid)
    return rss0, rss1, jobs, tasks


def case_fuzz(env, a):
    """Case msgpack-fuzz-live at full size. The RSS bound of G6 (hostile or buggy input)
    is for malformed input, but a mutated frame is now and then a valid request that
    creates a job (mostly a JOB_OPEN with a flipped bit in its name): that memory is
    the job's, not a leak. So the same run also
    creates exactly as many jobs from valid requests on a second, fresh broker
    (control_jobs) and the verdict is on the growth beyond that: fuzz growth minus
    control growth <= 10 % of the starting RSS. Both figures are reported."""
    env.start_server()
    env.w1 = env.start_worker(cpus=1)
    r = test_hostile.run_fuzz(env, a.fuzz_frames, seed=19)
    p99 = _p99(r["lat"])
    alive = env.server.poll() is None
    jobs, tasks, open_jobs, with_tasks = _created_jobs(env) if alive else (0, 0, 0, 0)
    if alive:
        assert_still_serves(env)
    rss0, rss1 = r["rss0"], r["rss1"]
    rep = {"frames_per_socket": a.fuzz_frames, "client": r["client"], "worker": r["worker"],
           "baseline_s": round(r["base_s"], 4), "p99_s": p99 and round(p99, 4),
           "p99_ratio": p99 and round(p99 / r["base_s"], 2), "calls": len(r["lat"]),
           "rss_kib": [rss0, rss1], "rss_growth_pct": round(100 * (rss1 - rss0) / rss0, 1),
           "jobs_created": jobs, "jobs_with_tasks": with_tasks, "tasks_created": tasks,
           "open_jobs": open_jobs,
           "alive": alive}
    # the control: the same number of jobs from valid requests, on a fresh broker
    cenv = HqEnv(Path(tempfile.mkdtemp(prefix="hq-fuzz-control-")))
    try:
        c0, c1, cjobs, ctasks = control_jobs(cenv, jobs - with_tasks, with_tasks)
    finally:
        cenv.teardown()
        if not a.keep:
            shutil.rmtree(cenv.tmp, ignore_errors=True)
    beyond = (rss1 - rss0) - (c1 - c0)
    rep.update({"control_rss_kib": [c0, c1], "control_jobs": cjobs, "control_tasks": ctasks,
                "rss_beyond_jobs_kib": beyond,
                "rss_beyond_jobs_pct": round(100 * beyond / rss0, 1)})
    latency_ok = p99 is not None and p99 <= 2 * r["base_s"]
    rep["ok"] = alive and latency_ok and beyond <= 0.10 * rss0
    return rep


def case_lossy(env, a):
    secs, stalls = test_network_faults.run_lossy(env, a.lossy_tasks, seed=14, timeout=3600)
    return {"tasks": a.lossy_tasks, "seconds": round(secs, 1), "stalls": stalls, "ok": True}


CASES = {"slowloris": case_slowloris, "flood": case_flood, "fuzz": case_fuzz,
         "lossy": case_lossy}


def main(argv):
    import argparse
    p = argparse.ArgumentParser(description="long hostile-input and network runs")
    p.add_argument("--cases", default="slowloris,flood,fuzz,lossy")
    p.add_argument("--fuzz-frames", type=int, default=1000000)
    p.add_argument("--slowloris", type=int, default=1000)
    p.add_argument("--flood", type=int, default=200000)
    p.add_argument("--lossy-tasks", type=int, default=10000)
    p.add_argument("--keep", action="store_true")
    a = p.parse_args(argv)
    if not HQ.exists():
        print(f"{HQ} not found; set HQ_BUILD_DIR", file=sys.stderr)
        return 2
    failed = 0
    for name in a.cases.split(","):
        tmp = Path(tempfile.mkdtemp(prefix=f"hq-{name}-"))
        env = HqEnv(tmp)
        t0 = time.monotonic()
        try:
            rep = CASES[name](env, a)
        except Exception as e:  # report and go on with the next case
            rep = {"ok": False, "error": repr(e)[:2000], "trace": traceback.format_exc()[-2000:]}
        finally:
            env.teardown()
        rep = {"case": name, "wall_s": round(time.monotonic() - t0, 1), **rep}
        failed += not rep.get("ok")
        print(json.dumps(rep), flush=True)
        if not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
