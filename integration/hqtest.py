"""The helpers of hq's end-to-end tests, in one module that every test module and the
scripts of bench/ import from (conftest.py holds only the fixtures built on them):
real hq / hq-broker / hq-worker processes on 127.0.0.1 in one test's temp dirs
(HqEnv), polling with a timeout instead of sleeping (wait_until), parsers for hq's
tables, and the tools shared by the fault and security tests: the journal, the fault
shim (tools/faultshim.c), access files, the authenticated raw peer (hq_rawpeer), the
TCP relay (tools/relay.py), the recording forwarder (tools/capture.py) and the raw
ZMTP frames (tools/rawframes.py).

Binaries come from $HQ_BUILD_DIR (default <repo>/build)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("HQ_BUILD_DIR", str(REPO / "build"))).resolve()
HQ = BUILD / "hq"
HQ_BROKER = BUILD / "hq-broker"
HQ_WORKER = BUILD / "hq-worker"
HQ_RAWPEER = BUILD / "hq_rawpeer"
TOOLS = Path(__file__).resolve().parent / "tools"
BENCH = Path(__file__).resolve().parent / "bench"

DEFAULT_TIMEOUT = 20.0
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def base_env():
    """The inherited environment (ASAN_OPTIONS etc. stay) minus hq's own settings."""
    env = dict(os.environ)
    for k in ("HQ_SERVER_DIR", "HQ_OUTPUT_MODE", "HQ_DEBUG", "RUST_LOG"):
        env.pop(k, None)
    for k in list(env):
        if k.startswith("SLURM_") or k.startswith("PBS_"):
            env.pop(k)
    return env


def wait_until(cond, timeout=DEFAULT_TIMEOUT, what="condition", interval=0.05):
    """Polls cond() until it returns a truthy value; returns that value."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = cond()
            if v:
                return v
        except Exception as e:  # a poll may race with startup; keep the last error
            last_exc = e
        if time.monotonic() > deadline:
            msg = f"timed out after {timeout}s waiting for {what}"
            if last_exc is not None:
                msg += f" (last error: {last_exc!r})"
            raise AssertionError(msg)
        time.sleep(interval)
        interval = min(interval * 1.5, 0.25)


# ---------------------------------------------------------------------------------
# table parsing (cli/REFERENCE.md §4)

def _columns(rule):
    pos = [i for i, c in enumerate(rule) if c == "+"]
    return [(pos[i] + 2, pos[i + 1] - 1) for i in range(len(pos) - 1)]


def parse_tables(text):
    """Returns (tables, other_lines). A table is a list of rows, each a list of cell
    texts (multi-line cells joined by '\\n'); continuation lines (blank first cell)
    are merged into the row above. A rule line followed by another rule line ends a
    table (tables printed back to back); otherwise it separates title and data."""
    lines = text.splitlines()
    tables, other = [], []
    cur, cols, row = None, None, None
    for i, line in enumerate(lines):
        if line.startswith("+"):
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if cur is None:
                cur, row = [], None
                cols = _columns(line)
            elif nxt.startswith("+") or _columns(line) != cols:
                tables.append(cur)
                cur = None
            continue
        if line.startswith("|") and cur is not None:
            cells = [line[a:b].rstrip() for a, b in cols]
            if row is not None and cells[0] == "" and any(cells):
                for j, c in enumerate(cells):
                    row[j] = (row[j] + "\n" + c) if c != "" or row[j] else row[j]
                continue
            row = cells
            cur.append(row)
            continue
        if cur is not None:
            tables.append(cur)
            cur = None
        other.append(line)
    if cur is not None:
        tables.append(cur)
    return tables, other


def strip_cells(rows):
    return [[c.strip() for c in r] for r in rows]


def horizontal(text, index=0):
    """Parses the index-th horizontal table: returns (headers, list of dicts)."""
    tables, _ = parse_tables(text)
    assert len(tables) > index, f"no table #{index} in output:\n{text}"
    t = tables[index]
    headers = [h.strip() for h in t[0]]
    rows = [dict(zip(headers, [c.strip() for c in r])) for r in t[1:]]
    return headers, rows


def vertical(text, index=0):
    """Parses the index-th vertical table: returns (keys in order, dict)."""
    tables, _ = parse_tables(text)
    assert len(tables) > index, f"no table #{index} in output:\n{text}"
    t = tables[index]
    keys = [r[0].strip() for r in t]
    return keys, {r[0].strip(): r[1].rstrip() for r in t}


def json_keys_in_order(text):
    """Parses JSON keeping each object's key order (as lists of pairs)."""
    return json.loads(text, object_pairs_hook=lambda pairs: pairs)


# ---------------------------------------------------------------------------------

class Proc:
    """A started process with its stdout/stderr captured to files."""

    def __init__(self, popen, name, out_path, err_path):
        self.popen = popen
        self.name = name
        self.out_path = out_path
        self.err_path = err_path

    @property
    def pid(self):
        return self.popen.pid

    def stdout(self):
        return self.out_path.read_text(errors="replace")

    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def poll(self):
        return self.popen.poll()

    def wait_exit(self, timeout=DEFAULT_TIMEOUT):
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"{self.name} (pid {self.pid}) did not exit within {timeout}s; "
                f"stderr:\n{self.stderr()[-3000:]}")


class Worker:
    def __init__(self, proc, hostname, worker_id):
        self.proc = proc
        self.hostname = hostname
        self.id = worker_id

    @property
    def pid(self):
        return self.proc.pid


class HqEnv:
    """One test's hq installation: a server dir, a submit dir, started processes."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.server_dir = tmp / "server"
        self.work = tmp / "submit"
        self.work.mkdir()
        self.logs = tmp / "logs"
        self.logs.mkdir()
        self.procs = []
        self.extra_pids = []
        self.server = None
        self.n_workers_started = 0
        self.env = base_env()

    # -- processes ----------------------------------------------------------------

    def spawn(self, args, name, env=None, cwd=None, **kw):
        n = len(self.procs)
        out = self.logs / f"{n:02d}-{name}.out"
        err = self.logs / f"{n:02d}-{name}.err"
        with open(out, "wb") as fo, open(err, "wb") as fe:
            p = subprocess.Popen([str(a) for a in args], stdout=fo, stderr=fe,
                                 stdin=subprocess.DEVNULL, env=env or self.env,
                                 cwd=str(cwd or self.work), **kw)
        proc = Proc(p, name, out, err)
        self.procs.append(proc)
        return proc

    def track_pid(self, pid):
        """A process started indirectly (e.g. a task) to kill at teardown."""
        self.extra_pids.append(int(pid))

    def teardown(self):
        for pid in self.extra_pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for proc in reversed(self.procs):
            p = proc.popen
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.terminate()
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
                except ProcessLookupError:
                    pass

    def sanitizer_reports(self):
        found = []
        for proc in self.procs:
            try:
                text = proc.stderr()
            except OSError:
                continue
            if any(m in text for m in SANITIZER_MARKERS):
                found.append(f"{proc.name}:\n{text[-4000:]}")
        return found

    # -- client -------------------------------------------------------------------

    def hq(self, *args, check=True, mode=None, input=None, env=None, cwd=None,
           timeout=30, server_dir=None, prefix=()):
        """Runs `hq --server-dir D [--output-mode M] ARGS` and returns the result.
        Global flags go first because everything after a submit's command is
        passed through to the task."""
        cmd = list(prefix) + [str(HQ), "--server-dir", str(server_dir or self.server_dir)]
        if mode:
            cmd += ["--output-mode", mode]
        cmd += [str(a) for a in args]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, input=input,
                               env=env or self.env, cwd=str(cwd or self.work),
                               timeout=timeout)
        except subprocess.TimeoutExpired as e:
            raise AssertionError(f"`{' '.join(cmd)}` hung for {timeout}s "
                                 f"(stderr: {e.stderr!r})")
        if check and r.returncode != 0:
            raise AssertionError(
                f"`{' '.join(cmd)}` exited {r.returncode}\nstdout:\n{r.stdout}\n"
                f"stderr:\n{r.stderr}")
        return r

    def hq_concurrently(self, invocations, timeout=90):
        """Runs several `hq` commands at once, each given as (server_dir, args...);
        returns their CompletedProcess results in order. For commands that are
        expected to wait for a timeout (e.g. refused connections)."""
        procs = []
        for server_dir, *args in invocations:
            cmd = [str(HQ), "--server-dir", str(server_dir)] + [str(a) for a in args]
            procs.append((cmd, subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, text=True,
                                                env=self.env, cwd=str(self.work))))
        results = []
        for cmd, p in procs:
            try:
                out, err = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
                raise AssertionError(f"`{' '.join(cmd)}` hung for {timeout}s")
            results.append(subprocess.CompletedProcess(cmd, p.returncode, out, err))
        return results

    def hq_json(self, *args, **kw):
        r = self.hq(*args, mode="json", **kw)
        try:
            return json.loads(r.stdout)
        except ValueError:
            raise AssertionError(f"hq {' '.join(map(str, args))}: not JSON:\n{r.stdout}")

    # -- server -------------------------------------------------------------------

    def start_server(self, *extra, wait=True):
        args = [HQ, "server", "start", "--server-dir", self.server_dir,
                "--host", "127.0.0.1", *extra]
        proc = self.spawn(args, "server")
        self.server = proc
        if wait:
            self.wait_server(proc)
        return proc

    def wait_server(self, proc=None, timeout=DEFAULT_TIMEOUT):
        proc = proc or self.server

        def ready():
            if proc.poll() is not None:
                raise AssertionError(f"server exited with {proc.poll()}:\n{proc.stderr()}")
            r = self.hq("server", "info", mode="json", check=False, timeout=10)
            return r.returncode == 0

        try:
            wait_until(ready, timeout, "the server to answer `hq server info`")
        except AssertionError as e:
            raise AssertionError(f"{e}\nserver stderr:\n{proc.stderr()[-3000:]}")

    def server_info(self):
        return self.hq_json("server", "info")

    def access_path(self):
        return self.server_dir / "hq-current" / "access.json"

    # -- workers ------------------------------------------------------------------

    def worker_list(self, all_=False):
        return self.hq_json("worker", "list", *(["--all"] if all_ else []))

    def start_worker(self, *extra, cpus=1, hostname=None, wait=True, env=None,
                     heartbeat=None):
        self.n_workers_started += 1
        hostname = hostname or f"w{self.n_workers_started}"
        wd = self.tmp / f"wd-{hostname}-{self.n_workers_started}"
        args = [HQ, "worker", "start", "--server-dir", self.server_dir, "--hostname", hostname,
                 "--work-dir", wd]
        if cpus is not None:
            args += ["--cpus", str(cpus)]
        if heartbeat:
            args += ["--heartbeat", heartbeat]
        args += list(extra)
        proc = self.spawn(args, f"worker-{hostname}", env=env)
        w = Worker(proc, hostname, None)
        if wait:
            self.wait_worker(w)
        return w

    def wait_worker(self, w, timeout=DEFAULT_TIMEOUT):
        def registered():
            if w.proc.poll() is not None:
                raise AssertionError(
                    f"worker {w.hostname} exited with {w.proc.poll()}:\n{w.proc.stderr()}")
            for item in self.worker_list():
                if item["configuration"]["hostname"] == w.hostname:
                    return item["id"]
            return None

        w.id = wait_until(registered, timeout, f"worker {w.hostname} to register")
        return w

    # -- jobs ---------------------------------------------------------------------

    def submit(self, *args, **kw):
        """`hq submit ARGS` in json mode; returns the job id."""
        return self.hq_json("submit", *args, **kw)["id"]

    def wait_job(self, job_id, timeout=60):
        self.hq("job", "wait", str(job_id), timeout=timeout)

    def tasks(self, job_id):
        """{task id: task JSON} of `hq task list <job>`."""
        data = self.hq_json("task", "list", str(job_id))
        return {t["id"]: t for t in data[str(job_id)]}

    def wait_task_state(self, job_id, task_id, states, timeout=DEFAULT_TIMEOUT):
        if isinstance(states, str):
            states = (states,)

        def check():
            t = self.tasks(job_id).get(task_id)
            return t if t and t["state"] in states else None

        return wait_until(check, timeout, f"task {job_id}@{task_id} to be {states}")

    def job_state_counts(self, job_id):
        return self.hq_json("job", "info", str(job_id))[0]["info"]["task_stats"]


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def read_pid_file(path):
    text = Path(path).read_text().strip()
    return int(text) if text else None


RFC3339_LOG = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (INFO|WARN|ERROR|DEBUG|TRACE) ")


# ---------------------------------------------------------------------------------
# the tools of tools/ (imported from here so that no test module edits sys.path)

def _tool(name):
    import importlib
    if str(TOOLS) not in sys.path:
        sys.path.insert(0, str(TOOLS))
    return importlib.import_module(name)


rawframes = _tool("rawframes")  # raw ZMTP greetings and garbage frames
Capture = _tool("capture").Capture  # recording TCP forwarder
Relay = _tool("relay").Relay  # TCP relay that pauses, drops, delays and resets


def bench_module(name):
    """Imports the script bench/NAME.py, for a test that runs a benchmark's scenario at
    a small size."""
    import importlib
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return importlib.import_module(name)


# ---------------------------------------------------------------------------------
# tasks whose first run can be held or lost

# Every start appends its instance id to "instances" and writes its PID to
# pid.<instance>; instance 0 hangs, a rerun (instance >= 1) finishes and says which
# instance it was.
RERUN_SCRIPT = ('echo "$HQ_INSTANCE_ID" >> instances; echo $$ > "pid.$HQ_INSTANCE_ID"; '
                'if [ "$HQ_INSTANCE_ID" = 0 ]; then exec sleep 100; fi; '
                'echo "ran instance $HQ_INSTANCE_ID"')

# The same, but instance 0 waits for the file "go" in the submit dir and then finishes
# too: "instance <id>".
GATED_SCRIPT = ('echo "$HQ_INSTANCE_ID" >> instances; echo $$ > "pid.$HQ_INSTANCE_ID"; '
                'if [ "$HQ_INSTANCE_ID" = 0 ]; then while [ ! -e go ]; do sleep 0.02; done; '
                'fi; echo "instance $HQ_INSTANCE_ID"')


def wait_instance_started(env, instance=0, timeout=DEFAULT_TIMEOUT):
    """Waits until instance INSTANCE of one of the scripts above wrote its PID; has the
    process killed at teardown and returns its PID."""
    pidfile = env.work / f"pid.{instance}"
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout,
               f"instance {instance} to start")
    pid = read_pid_file(pidfile)
    env.track_pid(pid)
    return pid


# ---------------------------------------------------------------------------------
# a journaled broker

def journal_dir(env):
    return env.tmp / "journal"


def start_journaled(env, *extra, wait=True):
    """`hq server start --journal <tmp>/journal EXTRA`."""
    return env.start_server("--journal", journal_dir(env), *extra, wait=wait)


def kill9_server(env):
    """SIGKILL to the test's server, and waits until it is gone."""
    env.server.popen.kill()
    env.server.popen.wait(timeout=DEFAULT_TIMEOUT)


def segments(env):
    return sorted(journal_dir(env).glob("seg-*.hqj"))


def job_states(env):
    """{job id: job JSON} of `hq job list --all`."""
    return {j["id"]: j for j in env.hq_json("job", "list", "--all")}


def journal_events(env, jdir=None):
    """The events of `hq journal export` (readable while the broker writes it)."""
    out = env.hq("journal", "export", jdir or journal_dir(env)).stdout
    return [json.loads(line)["event"] for line in out.splitlines()]


# ---------------------------------------------------------------------------------
# the disk fault shim (tools/faultshim.c, LD_PRELOAD)

def build_faultshim(directory):
    """Compiles tools/faultshim.c into DIRECTORY; returns the .so path."""
    so = Path(directory) / "faultshim.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
                    str(so), str(TOOLS / "faultshim.c"), "-ldl"], check=True)
    return so


def set_faults(fault_file, rules):
    """Writes the shim's rules (e.g. "write:ENOSPC:always", "" for none). The shim
    re-reads the file when its mtime changes, so the mtime is made to change even
    when two writes fall into one timestamp tick."""
    fault_file = Path(fault_file)
    old = fault_file.stat().st_mtime_ns if fault_file.exists() else None
    fault_file.write_text(rules)
    if old is not None and fault_file.stat().st_mtime_ns == old:
        os.utime(fault_file, ns=(old + 1000, old + 1000))


def start_shim_server(env, so):
    """A journaled server under the fault shim, with no fault yet; returns the fault
    file (see set_faults) whose rules apply to the journal dir."""
    fault = env.tmp / "faults"
    fault.write_text("")
    e = dict(env.env)
    e.update({"LD_PRELOAD": str(so), "HQ_FAULT_FILE": str(fault),
              "HQ_FAULT_PATH": str(journal_dir(env)), "HQ_FAULT_LOG": str(env.tmp / "fl")})
    proc = env.spawn([HQ, "server", "start", "--server-dir", env.server_dir, "--host",
                      "127.0.0.1", "--journal", journal_dir(env)], "server", env=e)
    env.server = proc
    env.wait_server(proc)
    return fault


# ---------------------------------------------------------------------------------
# access files and authenticated raw peers

def load_access(env):
    return json.loads(env.access_path().read_text())


def write_access(path, data, mode=0o400):
    """Writes an access file (replacing an existing one) with the given mode."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():
        path.chmod(0o600)
        path.unlink()
    path.write_text(json.dumps(data, indent=2))
    path.chmod(mode)
    return path


def fake_dir(env, name, data):
    """A server dir <tmp>/NAME holding only an access file with DATA."""
    d = env.tmp / name
    write_access(d / "access.json", data)
    return d


def redirected_server_dir(env, port, name, role="client", data=None):
    """A server dir <tmp>/NAME whose access file (the server's, or DATA) sends ROLE's
    traffic to 127.0.0.1:PORT, e.g. a relay or a capture in front of the broker."""
    data = data if data is not None else load_access(env)
    data[role]["host"] = "127.0.0.1"
    data[role]["port"] = port
    return fake_dir(env, name, data)


def rawpeer(access_file, role, *frames, timeout_ms=1500, repeat=None, nowait=False,
            run_timeout=300):
    """Runs hq_rawpeer (bench/hq_rawpeer.c) with the keys of ACCESS_FILE as ROLE
    ("client" or "worker") and FRAMES; returns (handshake result, output lines after
    the handshake line)."""
    if not HQ_RAWPEER.exists():
        pytest.fail(f"{HQ_RAWPEER} not built")
    args = [str(HQ_RAWPEER), "--access", str(access_file), "--role", role,
            "--timeout", str(timeout_ms)]
    if repeat is not None:
        args += ["--repeat", str(repeat)]
    if nowait:
        args.append("--nowait")
    r = subprocess.run(args + [str(f) for f in frames], capture_output=True, text=True,
                       env=base_env(), timeout=run_timeout)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    return lines[0].split(": ", 1)[1], lines[1:]


# ---------------------------------------------------------------------------------
# the broker under attack: memory and service

# ASan keeps freed memory in quarantine, so RSS bounds only mean something in the
# normal build; the sanitizer run checks the rest.
SANITIZED = os.environ.get("HQ_SANITIZED") == "1"


def free_tcp_ports(n=1):
    """n distinct TCP ports of the loopback address free at the time of the call."""
    import socket
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def assert_rss_growth(rss0, rss1, limit_kib, detail=None):
    if not SANITIZED:
        assert rss1 - rss0 < limit_kib, detail if detail is not None else (rss0, rss1)


def assert_still_serves(env, with_worker=True):
    """The broker is up, answers a normal client and accepts a new job, which (given a
    worker) finishes."""
    assert env.server.poll() is None, env.server.stderr()[-3000:]
    before = len(env.hq_json("job", "list", "--all"))
    jid = env.submit("--", "true")
    if with_worker:
        env.wait_job(jid)
        assert env.tasks(jid)[0]["state"] == "finished"
    assert len(env.hq_json("job", "list", "--all")) == before + 1


# ---------------------------------------------------------------------------------
# workers behind the TCP relay (tools/relay.py)

def start_debug_server(env, *extra):
    """A server that logs at debug level (the stale-result lines are debug lines)."""
    env.env["RUST_LOG"] = "debug"
    try:
        return env.start_server(*extra)
    finally:
        env.env.pop("RUST_LOG", None)


def relayed_server_dir(env, relay, name="via-relay"):
    """A server dir whose access file sends workers to the relay."""
    return redirected_server_dir(env, relay.port, name, role="worker")


def start_relay(env):
    """A relay in front of the worker port, stopped by the `relays` fixture."""
    relay = Relay(("127.0.0.1", env.server_info()["worker_port"])).start()
    env.relays = getattr(env, "relays", []) + [relay]
    return relay


def start_relayed_worker(env, relay, *extra, cpus=1, heartbeat="1s", hostname=None):
    env.n_workers_started += 1
    hostname = hostname or f"r{env.n_workers_started}"
    wd = env.tmp / f"wd-{hostname}-{env.n_workers_started}"
    d = getattr(relay, "server_dir", None) or relayed_server_dir(env, relay)
    relay.server_dir = d
    proc = env.spawn([HQ, "worker", "start", "--server-dir", d, "--hostname", hostname,
                      "--work-dir", wd, "--cpus", str(cpus), "--heartbeat", heartbeat, *extra],
                     f"worker-{hostname}")
    return env.wait_worker(Worker(proc, hostname, None))


def lost_lines(env):
    """The server's log lines about lost workers."""
    return [line for line in env.server.stderr().splitlines()
            if " lost (" in line and "Worker" in line]


# ---------------------------------------------------------------------------------
# fake batch systems (tools/fakebatch.py): PBS, and SLURM where one slurmd cannot do it

class FakeBatch:
    """sbatch/scontrol/scancel/qsub/qstat/qdel stand-ins first on the PATH of env's
    processes (the broker runs them), with their record in <tmp>/fakebatch/log.
    knobs: FAKEBATCH_* settings (see tools/fakebatch.py) for the broker's commands."""

    NAMES = ("sbatch", "scontrol", "scancel", "qsub", "qstat", "qdel")

    def __init__(self, env, **knobs):
        self.env = env
        self.bin = env.tmp / "fakebin"
        self.dir = env.tmp / "fakebatch"
        self.bin.mkdir(exist_ok=True)
        self.dir.mkdir(exist_ok=True)
        for n in self.NAMES:
            link = self.bin / n
            if not link.exists():
                link.symlink_to(TOOLS / "fakebatch.py")
        env.env["PATH"] = f"{self.bin}:{env.env.get('PATH', '/usr/bin:/bin')}"
        env.env["FAKEBATCH_DIR"] = str(self.dir)
        for k, v in knobs.items():
            env.env[f"FAKEBATCH_{k.upper()}"] = str(v)

    def records(self, op=None):
        """The log's records (of one op), in order."""
        try:
            lines = (self.dir / "log").read_text().splitlines()
        except FileNotFoundError:
            return []
        recs = [json.loads(line) for line in lines if line.strip()]
        return [r for r in recs if op is None or r["op"] == op]

    def job(self, job_id):
        return json.loads((self.dir / "jobs" / job_id.replace("/", "_")).read_text())

    def teardown(self):
        """Kills the process groups of the fake jobs' runners (by PID)."""
        for f in (self.dir / "jobs").glob("*"):
            try:
                pid = json.loads(f.read_text()).get("runner")
            except (OSError, ValueError):
                continue
            if pid:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


def alloc_info(env, queue=1):
    return env.hq_json("alloc", "info", str(queue))
