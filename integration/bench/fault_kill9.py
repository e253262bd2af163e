#!/usr/bin/python3
"""broker/GUARANTEES.md, case broker-kill9-random: a journaled broker is killed with SIGKILL
at random times during a run of marker-writing tasks and restarted on the same journal
each time; then every acked job must be there with all its tasks finished, every task
must have at least one finished execution, no (task, instance) may have run twice, job
ids must ascend, and the journal must record each task as finished exactly once.

The CI runs a small version (integration/test_journal.py); this script runs the full
one and prints one JSON line per seed plus a summary:

    HQ_BUILD_DIR=build python3 integration/bench/fault_kill9.py \\
        [--tasks 100000] [--kills 10] [--seeds 20] [--first-seed 1] [--workers 4] \\
        [--max-task-ms 50] [--kill-workers] [--readopt-grace 15s] [--timeout 3600] [--keep]

Each task appends a start line `s` to markers/<job>.<task>.<instance>, sleeps
0..max-task-ms ms and appends `f` (so a reused instance id shows as a file with two
start lines, and a finished execution as a file with an `f`). The tasks are spread
over one job per kill round plus a burst of small jobs submitted (and acked) right
before each kill, so kills land both mid-run and right after submit bursts.

Only the broker is killed: the workers run with `--on-server-lost finish-running`,
keep their tasks while the broker is down and register again, so the restarted broker
re-adopts what they ran, as G5 (broker restart with live workers) requires, and a rerun
means the broker lost track of an execution; G2 (at-least-once execution) allows
<= 0.1 % of the tasks per crash. `--kill-workers` kills the workers with the broker instead (their
running tasks are all rerun)."""

import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from hqtest import HQ, HqEnv  # noqa: E402


def _kill(proc):
    if proc.poll() is None:
        proc.popen.kill()
        proc.popen.wait()


def run_seed(env, seed, n_tasks, n_kills, n_workers=4, max_task_ms=50, timeout=600,
             kill_workers=True, readopt_grace=None):
    """Runs one seed in env (an hqtest.HqEnv) and returns a report dict. With
    kill_workers=False the workers (finish-running) survive the broker's kills;
    readopt_grace (a duration) sets the broker's HQ_READOPT_GRACE."""
    rnd = random.Random(seed)
    if readopt_grace:
        env.env["HQ_READOPT_GRACE"] = readopt_grace
    jdir = env.tmp / f"journal-{seed}"
    mdir = env.tmp / f"markers-{seed}"
    mdir.mkdir()
    sleep = ""
    if max_task_ms > 0:
        sleep = f'sleep "$(printf "0.%03d" $((RANDOM % {max_task_ms + 1})))"; '
    m = f'"{mdir}/$HQ_JOB_ID.$HQ_TASK_ID.$HQ_INSTANCE_ID"'
    script = f'echo s >> {m}; {sleep}echo f >> {m}'
    lost = [] if kill_workers else ["--on-server-lost", "finish-running"]

    def start_workers():
        return [env.start_worker(*lost, cpus=2, heartbeat="1s") for _ in range(n_workers)]

    def start_all():
        env.start_server("--journal", jdir)
        return start_workers()

    def submit(n):
        r = env.hq("submit", "--array", f"1-{n}", "--stdout", "none", "--stderr", "none",
                   "--", "bash", "-c", script, mode="json", check=False, timeout=60)
        if r.returncode != 0:
            return None
        return json.loads(r.stdout)["id"]

    def n_done(jid):
        r = env.hq("job", "info", str(jid), mode="json", check=False, timeout=60)
        if r.returncode != 0:
            return 0
        st = json.loads(r.stdout)[0]["info"]["task_stats"]
        return st.get("finished", 0) + st.get("failed", 0)

    def restart():
        """Starts the broker again; now and then kills it once more while it is still
        replaying or has just bound its sockets, before it answers."""
        if rnd.random() < 0.2:
            env.start_server("--journal", jdir, wait=False)
            time.sleep(rnd.uniform(0, 0.2))
            replay_kills.append(round(time.monotonic() - t_start, 2))
            _kill(env.server)
        env.start_server("--journal", jdir)

    acked = {}  # job id -> task count
    replay_kills = []
    workers = start_all()
    t_start = time.monotonic()
    rounds = n_kills + 1
    per_round = max(1, n_tasks // rounds)
    kill_times = []
    for rnd_i in range(rounds):
        n = per_round if rnd_i < rounds - 1 else n_tasks - per_round * (rounds - 1)
        jid = submit(n)
        assert jid is not None, "a submit to a healthy broker failed"
        acked[jid] = n
        if rnd_i == rounds - 1:
            break
        # let the run go on for a random while (the fault's timing): until a random
        # share of this round's tasks has finished, uniform in the round's progress
        # (and so roughly in time), polled every 50 ms ...
        goal = rnd.uniform(0.02, 0.98) * n
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and n_done(jid) < goal:
            time.sleep(0.05)
        # ... then a burst of small acked submits, killed right after or a bit later
        for _ in range(rnd.randint(0, 3)):
            k = rnd.randint(1, 20)
            j = submit(k)
            if j is not None:
                acked[j] = k
        if rnd.random() < 0.5:
            time.sleep(rnd.uniform(0, 0.3))
        kill_times.append(round(time.monotonic() - t_start, 2))
        _kill(env.server)
        if kill_workers:
            for w in workers:
                _kill(w.proc)
            restart()
            workers = start_workers()
        else:
            restart()
            dead = [w for w in workers if w.proc.poll() is not None]
            assert not dead, f"finish-running worker exited: {dead[0].proc.stderr()[-2000:]}"
    env.hq("job", "wait", "all", timeout=timeout)
    run_s = time.monotonic() - t_start

    jobs = {j["id"]: j for j in env.hq_json("job", "list", "--all")}
    env.hq("server", "stop")
    env.server.wait_exit()
    for w in workers:
        try:
            w.proc.wait_exit(timeout=20)
        except AssertionError:
            _kill(w.proc)

    missing_jobs = sorted(set(acked) - set(jobs))
    bad_counts = []
    for jid, n in acked.items():
        st = jobs.get(jid, {}).get("task_stats", {})
        if st.get("finished", 0) != n or sum(st.values()) != n:
            bad_counts.append((jid, st))
    ids = sorted(jobs)
    # markers: (job, task) -> {instance: (starts, finishes)}
    runs = {}
    for f in mdir.iterdir():
        job, task, inst = (int(x) for x in f.name.split("."))
        lines = f.read_text().split()
        runs.setdefault((job, task), {})[inst] = (lines.count("s"), lines.count("f"))
    no_marker = [(j, t) for j, n in acked.items() for t in range(1, n + 1)
                 if not any(fi for _, fi in runs.get((j, t), {}).values())]
    reused = [(k, i) for k, d in runs.items() for i, (st, _) in d.items() if st > 1]
    rerun_tasks = sum(1 for d in runs.values() if len(d) > 1)
    out = env.hq("journal", "export", jdir, timeout=600).stdout
    fin = Counter()
    for line in out.splitlines():
        e = json.loads(line)["event"]
        if e["type"] == "task-finished":
            fin[(e["job"], e["task"])] += 1
    double_finish = [k for k, c in fin.items() if c > 1]
    total = sum(acked.values())
    return {
        "seed": seed, "tasks": total, "jobs": len(acked), "kills": len(kill_times),
        "kill_times_s": kill_times, "replay_kills_s": replay_kills, "run_s": round(run_s, 1),
        "missing_jobs": missing_jobs, "bad_counts": bad_counts[:10],
        "ids_ascending": ids == sorted(set(ids)) and ids == list(range(1, len(ids) + 1)),
        "tasks_without_marker": len(no_marker), "no_marker_sample": no_marker[:10],
        "instance_reused": len(reused), "reused_sample": reused[:10],
        "rerun_tasks": rerun_tasks,
        "rerun_pct_per_kill": round(100.0 * rerun_tasks / total / max(1, len(kill_times)), 4),
        "double_finish": len(double_finish),
        "workers_killed": kill_workers,
    }


def assert_report(rep, max_rerun_pct_per_kill=None):
    assert rep["missing_jobs"] == [], rep
    assert rep["bad_counts"] == [], rep
    assert rep["ids_ascending"], rep
    assert rep["tasks_without_marker"] == 0, rep
    assert rep["instance_reused"] == 0, rep
    assert rep["double_finish"] == 0, rep
    if max_rerun_pct_per_kill is not None:
        assert rep["rerun_pct_per_kill"] <= max_rerun_pct_per_kill, rep


def main(argv):
    import argparse
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=100000)
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--max-task-ms", type=int, default=50)
    p.add_argument("--kill-workers", action="store_true",
                   help="kill the workers with the broker (default: they survive)")
    p.add_argument("--readopt-grace", default="15s",
                   help="HQ_READOPT_GRACE of the broker (the workers here reconnect within "
                        "2 s; a shorter grace can only add reruns)")
    p.add_argument("--timeout", type=float, default=3600)
    p.add_argument("--keep", action="store_true")
    a = p.parse_args(argv)
    if not HQ.exists():
        print(f"{HQ} not found; set HQ_BUILD_DIR", file=sys.stderr)
        return 2
    reports, failures = [], 0
    for seed in range(a.first_seed, a.first_seed + a.seeds):
        tmp = Path(tempfile.mkdtemp(prefix=f"hq-kill9-{seed}-"))
        env = HqEnv(tmp)
        try:
            t0 = time.monotonic()
            rep = run_seed(env, seed, a.tasks, a.kills, a.workers, a.max_task_ms, a.timeout,
                           kill_workers=a.kill_workers, readopt_grace=a.readopt_grace)
            rep["wall_s"] = round(time.monotonic() - t0, 1)
            try:
                # G2 (at-least-once execution): <= 0.1 % of the tasks rerun per crash
                # (by design every running task reruns when the workers die with the broker)
                assert_report(rep, None if a.kill_workers else 0.1)
                rep["ok"] = True
            except AssertionError:
                rep["ok"] = False
                rep["dir"] = str(tmp)
                failures += 1
        except Exception as e:  # keep going with the next seed, but say what broke
            rep = {"seed": seed, "ok": False, "error": repr(e)[:2000], "dir": str(tmp)}
            failures += 1
        finally:
            env.teardown()
        print(json.dumps(rep), flush=True)
        reports.append(rep)
        if not a.keep and rep.get("ok"):
            shutil.rmtree(tmp, ignore_errors=True)
    ok = [r for r in reports if r.get("ok")]
    full = [r for r in reports if "tasks" in r]
    total = {k: sum(r[k] for r in full) for k in ("tasks", "jobs", "kills", "rerun_tasks",
                                                  "tasks_without_marker", "instance_reused",
                                                  "double_finish")}
    total["missing_jobs"] = sum(len(r["missing_jobs"]) for r in full)
    total["bad_counts"] = sum(len(r["bad_counts"]) for r in full)
    print(json.dumps({"summary": True, "seeds": len(reports), "failed": failures, **total,
                      "rerun_pct_per_kill_total": round(100.0 * total["rerun_tasks"] / max(
                          1, sum(r["tasks"] * max(1, r["kills"]) for r in full)), 4),
                      "max_rerun_pct_per_kill": max((r["rerun_pct_per_kill"] for r in ok),
                                                    default=None)}), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
