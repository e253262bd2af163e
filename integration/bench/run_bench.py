#!/usr/bin/env python3
"""hq throughput benchmarks against baselines measured in the same run.

Pair 1: N x /bin/true through one `hq worker start --cpus 2` (no output files)
        versus spawn_direct with 2 spawners (posix_spawn + waitpid, no files).
Pair 2: the same with one stdout and one stderr file per task on both sides.
Broker: N tasks with no real worker, acknowledged at once by synth_worker
        (--cpus 64): the broker's own dispatch/completion throughput.

It builds nothing: it expects `hq`, `spawn_direct` and `synth_worker` in
HQ_BUILD_DIR (default <repo>/build). Standard library only. Always exits 0.
"""

import argparse
import calendar
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PAIR_TARGET = 0.85
BROKER_TARGET = 50000.0


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def parse_rfc3339(s):
    """'2026-01-02T03:04:05.123456789Z' -> float seconds since the epoch."""
    if not isinstance(s, str) or not s.endswith("Z"):
        return None
    body = s[:-1]
    frac = 0.0
    if "." in body:
        body, f = body.split(".", 1)
        try:
            frac = float("0." + f)
        except ValueError:
            return None
    try:
        return calendar.timegm(time.strptime(body, "%Y-%m-%dT%H:%M:%S")) + frac
    except ValueError:
        return None


def proc_cpu_seconds(pid, children=False):
    """utime + stime of a live process (its own threads), or with children=True
    of its reaped children (cutime + cstime); None if unreadable."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tick = os.sysconf("SC_CLK_TCK")
        # fields[0] is state (field 3); utime/stime/cutime/cstime are fields 14-17.
        if children:
            return (int(fields[13]) + int(fields[14])) / tick
        return (int(fields[11]) + int(fields[12])) / tick
    except (OSError, ValueError, IndexError):
        return None


def proc_peak_rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def rate(n, secs):
    return n / secs if secs and secs > 0 else 0.0


class Bench:
    def __init__(self, args):
        self.args = args
        self.build = os.path.abspath(args.build_dir)
        self.hq_bin = os.path.join(self.build, "hq")
        self.spawn_bin = os.path.join(self.build, "spawn_direct")
        self.synth_bin = os.path.join(self.build, "synth_worker")
        self.tmp = tempfile.mkdtemp(prefix="hq-bench-")
        self.server_dir = os.path.join(self.tmp, "server")
        self.procs = []  # (name, Popen, log file)
        self.server = None
        self.worker = None
        self.results = []  # rows for the summary

    # ---- processes ------------------------------------------------------

    def spawn(self, name, argv, cwd=None, stdout_to_log=True):
        logpath = os.path.join(self.tmp, f"{name}.log")
        logf = open(logpath, "ab")
        p = subprocess.Popen(argv, cwd=cwd or self.tmp, stdin=subprocess.DEVNULL,
                             stdout=logf if stdout_to_log else subprocess.PIPE,
                             stderr=logf)
        self.procs.append((name, p, logf, logpath))
        return p

    def log_tail(self, name, lines=15):
        for pname, _, _, path in self.procs:
            if pname == name:
                try:
                    with open(path, errors="replace") as f:
                        return "".join(f.readlines()[-lines:])
                except OSError:
                    return ""
        return ""

    def stop_proc(self, p, timeout=10.0):
        """Stops one process we started, by its pid: SIGTERM, then SIGKILL."""
        if p.poll() is not None:
            return
        try:
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()

    def hq(self, *args, cwd=None, timeout=120, check=True):
        argv = [self.hq_bin, "--server-dir", self.server_dir, *args]
        r = subprocess.run(argv, cwd=cwd or self.tmp, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"`hq {' '.join(args)}` exited {r.returncode}: "
                               f"{r.stderr.strip()[-2000:]}")
        return r

    def start_server(self):
        self.server = self.spawn("server", [self.hq_bin, "server", "start", "--server-dir",
                                            self.server_dir, "--host", "127.0.0.1"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError("the server exited at start:\n" + self.log_tail("server"))
            try:
                if self.hq("server", "info", timeout=10, check=False).returncode == 0:
                    log(f"server up (pid {self.server.pid})")
                    return
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not come up within 30 s:\n" + self.log_tail("server"))

    def online_workers(self):
        r = self.hq("--output-mode", "json", "worker", "list", timeout=10, check=False)
        if r.returncode != 0:
            return None
        try:
            return len(json.loads(r.stdout))
        except (ValueError, TypeError):
            return None

    def start_worker(self, cpus):
        wdir = os.path.join(self.tmp, "worker-work")
        os.makedirs(wdir, exist_ok=True)
        self.worker = self.spawn("worker", [self.hq_bin, "worker", "start", "--server-dir",
                                            self.server_dir, "--cpus", str(cpus),
                                            "--work-dir", wdir])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.worker.poll() is not None:
                raise RuntimeError("the worker exited at start:\n" + self.log_tail("worker"))
            n = self.online_workers()
            if n and n >= 1:
                log(f"worker up (pid {self.worker.pid})")
                return
            time.sleep(0.1)
        raise RuntimeError("the worker did not register within 30 s:\n" + self.log_tail("worker"))

    def stop_worker(self):
        if not self.worker:
            return
        if self.worker.poll() is None:
            try:
                self.hq("worker", "stop", "all", timeout=10, check=False)
                self.worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.stop_proc(self.worker)
        self.worker = None

    def cleanup(self):
        if self.server and self.server.poll() is None:
            try:
                self.hq("server", "stop", timeout=10, check=False)
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        for _, p, logf, _ in reversed(self.procs):
            self.stop_proc(p)
            logf.close()
        if self.args.keep:
            log(f"kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- measurements ---------------------------------------------------

    def run_spawn_direct(self, n, files_dir):
        argv = [self.spawn_bin, "-n", str(n), "-k", "2"]
        if files_dir:
            argv += ["--files", files_dir]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=max(120, n / 50))
        kv = dict(tok.split("=", 1) for tok in r.stdout.split() if "=" in tok)
        if r.returncode != 0 or "tasks_per_s" not in kv:
            raise RuntimeError(f"spawn_direct failed: {r.stdout} {r.stderr}")
        return {k: float(kv[k]) for k in ("tasks_per_s", "self_cpu_s", "children_cpu_s", "spawn_call_us")
                if k in kv}

    def run_hq_array(self, n, files, cwd):
        """Submits N x /bin/true, waits; returns a dict of rates."""
        stdio = [] if files else ["--stdout", "none", "--stderr", "none"]
        cpu0 = {w: proc_cpu_seconds(p.pid) for w, p in
                (("broker", self.server), ("worker", self.worker))}
        cpu0["tasks"] = proc_cpu_seconds(self.worker.pid, children=True)
        t0 = time.monotonic()
        r = self.hq("--output-mode", "quiet", "submit", "--array", f"1-{n}", *stdio, "--",
                    "/bin/true", cwd=cwd)
        t_sub = time.monotonic()
        job = r.stdout.strip().splitlines()[-1].strip()
        self.hq("job", "wait", job, timeout=max(300, n / 20))
        t1 = time.monotonic()
        cpu1 = {w: proc_cpu_seconds(p.pid) for w, p in
                (("broker", self.server), ("worker", self.worker))}
        cpu1["tasks"] = proc_cpu_seconds(self.worker.pid, children=True)
        out = {"wall": rate(n, t1 - t0), "submit_s": t_sub - t0, "wall_s": t1 - t0}
        for w in cpu0:
            if cpu0[w] is not None and cpu1[w] is not None:
                out[f"{w}_cpu_s"] = cpu1[w] - cpu0[w]
        # Server-side times: job submitted -> finished, and first start -> last finish.
        info = self.hq("--output-mode", "json", "job", "info", job, check=False,
                       timeout=120)
        try:
            doc = json.loads(info.stdout)[0]
            stats = doc["info"]["task_stats"]
            out["finished"] = stats.get("finished")
            out["failed"] = stats.get("failed")
            js, jf = parse_rfc3339(doc.get("started_at")), parse_rfc3339(doc.get("finished_at"))
            if js and jf and jf > js:
                out["job"] = rate(n, jf - js)
            starts = [parse_rfc3339(t.get("started_at")) for t in doc.get("tasks", [])]
            ends = [parse_rfc3339(t.get("finished_at")) for t in doc.get("tasks", [])]
            starts = [s for s in starts if s]
            ends = [e for e in ends if e]
            if len(ends) == n and starts and max(ends) > min(starts):
                out["tasks"] = rate(n, max(ends) - min(starts))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            pass
        out["best"] = out.get("job") or out["wall"]
        if out.get("failed"):
            log(f"warning: job {job} has {out['failed']} failed tasks")
        return out

    def pair(self, label, files):
        """Runs spawn_direct and hq back to back `repeat` times (alternating which
        goes first, so a drift in machine load hits both sides alike). The ratio is
        the median of the per-run ratios: each compares two runs a few seconds apart,
        and the median ignores the odd run disturbed by other load."""
        n, reps = self.args.n, self.args.repeat
        base_rates, hq_runs = [], []
        for i in range(reps):
            sd_dir = os.path.join(self.tmp, f"sd-{label}-{i}")
            os.makedirs(sd_dir)
            files_dir = os.path.join(sd_dir, "job-1") if files else None
            cwd = os.path.join(self.tmp, f"hq-{label}-{i}")
            os.makedirs(cwd)
            # The output files stay until cleanup: on ext4 without a journal, inodes
            # deleted in the last minutes are skipped one by one when new files are
            # created, so deleting a run's files would slow every later run.
            if i % 2 == 0:
                sd = self.run_spawn_direct(n, files_dir)
                h = self.run_hq_array(n, files, cwd)
            else:
                h = self.run_hq_array(n, files, cwd)
                sd = self.run_spawn_direct(n, files_dir)
            base = sd["tasks_per_s"]
            base_rates.append(base)
            hq_runs.append(h)
            extra = " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in sorted(h.items()) if k not in ("best",))
            sd_extra = " ".join(f"{k}={v:.2f}" for k, v in sorted(sd.items())
                                if k != "tasks_per_s")
            log(f"{label} run {i + 1}/{reps}: spawn_direct {base:.0f}/s ({sd_extra}), "
                f"hq {h['best']:.0f}/s ({extra}), ratio {h['best'] / base if base else 0.0:.2f}")
        run_ratios = [h["best"] / b if b else 0.0 for h, b in zip(hq_runs, base_rates)]
        ratio = statistics.median(run_ratios)
        med_base = statistics.median(base_rates)
        med_hq = statistics.median(h["best"] for h in hq_runs)
        best = max(hq_runs, key=lambda h: h["best"])
        log(f"{label}: ratio (median of per-run ratios) {ratio:.2f}, range "
            f"{min(run_ratios):.2f}-{max(run_ratios):.2f}; best/best "
            f"{best['best'] / max(base_rates):.2f}")
        self.results.append({"name": label, "hq": med_hq, "baseline": med_base,
                             "ratio": ratio, "target": f"ratio >= {PAIR_TARGET}",
                             "pass": ratio >= PAIR_TARGET, "detail": best})

    def broker_only(self):
        n = self.args.broker_n
        t0 = time.monotonic()
        r = self.hq("--output-mode", "quiet", "submit", "--array", f"1-{n}", "--stdout", "none",
                    "--stderr", "none", "--", "/bin/true", timeout=120)
        submit_s = time.monotonic() - t0
        job = r.stdout.strip().splitlines()[-1].strip()
        log(f"submitted {n} tasks as job {job} in {submit_s:.3f} s")
        cpu0 = proc_cpu_seconds(self.server.pid)
        t1 = time.monotonic()
        synth = self.spawn("synth_worker", [self.synth_bin, "--server-dir", self.server_dir,
                                            "--cpus", "64", "-n", str(n), "--prefetch",
                                            str(self.args.prefetch), "--timeout",
                                            str(self.args.broker_timeout)],
                           stdout_to_log=False)
        try:
            self.hq("job", "wait", job, timeout=self.args.broker_timeout + 30)
        except (RuntimeError, subprocess.TimeoutExpired) as e:
            log(f"job wait failed: {e}")
        t2 = time.monotonic()
        cpu1 = proc_cpu_seconds(self.server.pid)
        try:
            stdout, _ = synth.communicate(timeout=self.args.broker_timeout + 30)
        except subprocess.TimeoutExpired:
            self.stop_proc(synth)
            stdout = ""
        line = next((ln for ln in (stdout or b"").decode(errors="replace").splitlines()
                     if ln.startswith("synth_worker ")), "")
        kv = dict(tok.split("=", 1) for tok in line.split() if "=" in tok)
        synth_rate = float(kv.get("tasks_per_s", 0.0))
        e2e = rate(n, t2 - t1) if kv.get("complete") == "yes" else 0.0
        log(f"synth_worker: {line or 'no report'}")
        if not line:
            log("synth_worker log:\n" + self.log_tail("synth_worker"))
        detail = {"end_to_end": e2e, "submit_s": submit_s}
        if cpu0 is not None and cpu1 is not None:
            detail["broker_cpu_s"] = cpu1 - cpu0
        rss = proc_peak_rss_kib(self.server.pid)
        if rss:
            detail["broker_peak_rss_mib"] = rss / 1024
        for k in ("avg_batch", "max_batch", "assigns", "assign_bytes_per_task"):
            if k in kv:
                detail[k] = kv[k]
        log("broker: " + " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                  for k, v in detail.items()))
        self.results.append({"name": "broker (synth worker)", "hq": synth_rate,
                             "baseline": None, "ratio": None,
                             "target": f">= {BROKER_TARGET:.0f}/s",
                             "pass": synth_rate >= BROKER_TARGET, "detail": detail})

    def summary(self):
        print()
        print(f"{'benchmark':<24} {'hq tasks/s':>12} {'baseline/s':>12} {'ratio':>7}  "
              f"{'target':<16} result")
        print("-" * 82)
        for r in self.results:
            base = f"{r['baseline']:.0f}" if r["baseline"] else "-"
            ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
            print(f"{r['name']:<24} {r['hq']:>12.0f} {base:>12} {ratio:>7}  {r['target']:<16} "
                  f"{'PASS' if r['pass'] else 'MISS'}")
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=5000, help="tasks per pair run (5000)")
    ap.add_argument("--broker-n", type=int, default=200000,
                    help="tasks for the broker-only benchmark (200000)")
    ap.add_argument("--repeat", type=int, default=5,
                    help="paired runs per benchmark; the median per-run ratio counts (5)")
    ap.add_argument("--prefetch", type=int, default=0,
                    help="prefetch the synthetic worker registers with (0)")
    ap.add_argument("--broker-timeout", type=int, default=300,
                    help="seconds the broker benchmark may take (300)")
    ap.add_argument("--skip-pairs", action="store_true", help="only the broker benchmark")
    ap.add_argument("--skip-broker", action="store_true", help="only the two pairs")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    ap.add_argument("--build-dir", default=os.environ.get("HQ_BUILD_DIR",
                                                          os.path.join(REPO, "build")))
    args = ap.parse_args()

    b = Bench(args)
    missing = [p for p in (b.hq_bin, b.spawn_bin, b.synth_bin) if not os.access(p, os.X_OK)]
    if missing:
        log(f"missing executables (build first): {', '.join(missing)}")
        shutil.rmtree(b.tmp, ignore_errors=True)
        return 0

    # SIGTERM/SIGINT: still stop what we started.
    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)

    try:
        b.start_server()
        if not args.skip_pairs:
            b.start_worker(2)
            for label, files in (("pair1 no files", False), ("pair2 stdout+stderr", True)):
                try:
                    b.pair(label, files)
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    log(f"{label} failed: {e}")
                    b.results.append({"name": label, "hq": 0.0, "baseline": None,
                                      "ratio": None, "target": f"ratio >= {PAIR_TARGET}",
                                      "pass": False, "detail": {}})
            b.stop_worker()
        if not args.skip_broker:
            try:
                b.broker_only()
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                log(f"broker benchmark failed: {e}")
                b.results.append({"name": "broker (synth worker)", "hq": 0.0,
                                  "baseline": None, "ratio": None,
                                  "target": f">= {BROKER_TARGET:.0f}/s", "pass": False,
                                  "detail": {}})
    except (RuntimeError, subprocess.TimeoutExpired, OSError) as e:
        log(f"benchmark aborted: {e}")
    except KeyboardInterrupt:
        log("interrupted")
    finally:
        b.cleanup()
    b.summary()
    return 0


if __name__ == "__main__":
    sys.exit(main())
