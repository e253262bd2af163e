#!/usr/bin/python3
"""The long variants of the hostile-input and network tests (RELIABILITY.md 14, 19, 25,
26); the CI runs scaled-down versions in integration/test_hostile.py and
integration/test_faults2.py. Prints one JSON line per case and never fails a build
(exit 1 only when a case's check failed).

    HQ_BUILD_DIR=build python3 integration/bench/hostile_long.py \\
        [--cases slowloris,flood,fuzz,lossy] [--fuzz-frames 1000000] \\
        [--slowloris 1000] [--flood 200000] [--lossy-tasks 10000] [--keep]
"""

import json
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from conftest import HQ, HQ_RAWPEER, HqEnv, base_env  # noqa: E402
import test_faults2  # noqa: E402
import test_hostile  # noqa: E402


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
    rss0 = test_hostile.rss_kib(pid)
    reps = a.flood // 4
    procs = [subprocess.Popen([str(HQ_RAWPEER), "--access", str(env.access_path()), "--role",
                               "client", "--nowait", "--repeat", str(reps), "valid:server-info",
                               "valid:job-summary"], stdout=subprocess.PIPE, text=True,
                              env=base_env()) for _ in range(2)]
    lat = []
    while any(p.poll() is None for p in procs):
        lat.append(test_hostile.timed_hq(env, "job", "list"))
    outs = [test_hostile.summary(p.communicate()[0].splitlines()) for p in procs]
    rss1 = test_hostile.rss_kib(pid)
    lat.sort()
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None
    rate = sum(o["sent"] for o in outs) / max(o["seconds"] for o in outs)
    return {"requests": sum(o["sent"] for o in outs), "requests_per_s": round(rate),
            "baseline_s": round(base, 3), "p99_s": p99 and round(p99, 3), "calls": len(lat),
            "rss_kib": [rss0, rss1], "ok": p99 is not None and p99 <= 2 * base + 0.05}


def case_fuzz(env, a):
    env.start_server()
    env.w1 = env.start_worker(cpus=1)
    r = test_hostile.run_fuzz(env, a.fuzz_frames, seed=19)
    lat = r["lat"]
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None
    alive = env.server.poll() is None
    if alive:
        test_hostile.still_serves(env)
    growth = (r["rss1"] - r["rss0"]) / r["rss0"]
    return {"frames_per_socket": a.fuzz_frames, "client": r["client"], "worker": r["worker"],
            "baseline_s": round(r["base_s"], 3), "p99_s": p99 and round(p99, 3),
            "rss_kib": [r["rss0"], r["rss1"]], "rss_growth_pct": round(100 * growth, 1),
            "alive": alive, "ok": alive and growth <= 0.10}


def case_lossy(env, a):
    secs, stalls = test_faults2.run_lossy(env, a.lossy_tasks, seed=14, timeout=3600)
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
