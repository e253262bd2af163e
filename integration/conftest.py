"""Fixtures for hq's end-to-end tests: real hq / hq-broker / hq-worker processes on
127.0.0.1, each test in its own temp dirs, OS-chosen ports, polling instead of
sleeping, and every started process stopped by PID at teardown.

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
# table parsing (CLI.md §4)

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


@pytest.fixture(scope="session", autouse=True)
def _binaries():
    if not HQ.exists():
        pytest.exit(f"{HQ} not found; build first or set HQ_BUILD_DIR", returncode=3)


def _sanitizer_log_files():
    """Files written by ASan/UBSan when *SAN_OPTIONS sets log_path=P (P.<pid>)."""
    import glob
    files = set()
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        for opt in re.split(r"[:,]", os.environ.get(var, "")):
            if opt.startswith("log_path="):
                files.update(glob.glob(opt[len("log_path="):] + "*"))
    return files


@pytest.fixture
def hq_env(tmp_path):
    before = _sanitizer_log_files()
    e = HqEnv(tmp_path)
    yield e
    e.teardown()
    reports = e.sanitizer_reports()
    for f in sorted(_sanitizer_log_files() - before):
        try:
            reports.append(f"{f}:\n{Path(f).read_text(errors='replace')[-4000:]}")
        except OSError:
            pass
    if reports:
        pytest.fail("sanitizer report in a started process:\n" + "\n".join(reports))


@pytest.fixture
def server(hq_env):
    """A running server; the test starts workers as it needs."""
    hq_env.start_server()
    return hq_env


@pytest.fixture
def cluster(hq_env):
    """A server and one worker with 2 cpus (hostname w1)."""
    hq_env.start_server()
    hq_env.w1 = hq_env.start_worker(cpus=2)
    return hq_env


RFC3339_LOG = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (INFO|WARN|ERROR|DEBUG|TRACE) ")


# ---------------------------------------------------------------------------------
# a real single-node SLURM (shared/tools/slurm-local.sh beside the repo)

SLURM_LOCAL_SCRIPT = REPO.parent / "shared" / "tools" / "slurm-local.sh"
SLURM_START_TIMEOUT = 900  # the first start apt-installs the slurm packages


class SlurmLocal:
    """The running local cluster: `env` has SLURM_CONF for sbatch/squeue/scancel and for
    everything started under SLURM; `start_seconds` is how long `start` took."""

    def __init__(self, env, start_seconds):
        self.env = env
        self.start_seconds = start_seconds

    def run(self, *args, check=True, timeout=30, env=None):
        cmd = [str(a) for a in args]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                               env=env or self.env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"`{' '.join(cmd)}` hung for {timeout}s")
        if check and r.returncode != 0:
            raise AssertionError(f"`{' '.join(cmd)}` exited {r.returncode}\n"
                                 f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r


def _slurm_script(env, cmd, timeout):
    return subprocess.run(["bash", str(SLURM_LOCAL_SCRIPT), cmd], capture_output=True,
                          text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="session")
def slurm_local():
    """Starts slurm-local.sh for the session (in a temp SLURM_LOCAL_DIR unless the caller
    set one) and stops it at the end unless it was already running. Its ports are fixed,
    so sessions on one machine take turns through a lock file."""
    import fcntl
    import shutil
    import tempfile
    if not SLURM_LOCAL_SCRIPT.is_file():
        pytest.skip(f"real SLURM tests need {SLURM_LOCAL_SCRIPT} (shared/ beside the repo)")
    if os.geteuid() != 0:
        pytest.skip("real SLURM tests need root (slurm-local.sh runs the daemons as root)")
    lock = open(os.path.join(tempfile.gettempdir(), "hq-slurm-local.lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    env = base_env()
    for k, v in os.environ.items():
        if k.startswith("SLURM_LOCAL_"):
            env[k] = v
    env.setdefault("SLURM_LOCAL_SCHED_PARAMS", "fast")
    own_dir = None
    if "SLURM_LOCAL_DIR" not in env:
        own_dir = tempfile.mkdtemp(prefix="hq-slurm-")
        env["SLURM_LOCAL_DIR"] = own_dir
    was_running = _slurm_script(env, "status", 60).returncode == 0
    t0 = time.monotonic()
    try:
        r = _slurm_script(env, "start", SLURM_START_TIMEOUT)
    except subprocess.TimeoutExpired:
        r = None
    seconds = time.monotonic() - t0
    try:
        if r is None or r.returncode != 0:
            detail = "timed out" if r is None else f"exited {r.returncode}:\n{r.stderr[-3000:]}"
            pytest.fail(f"slurm-local.sh start {detail}")
        cluster_env = base_env()
        for line in _slurm_script(env, "env", 60).stdout.splitlines():
            m = re.fullmatch(r"export (\w+)=(.*)", line.strip())
            if m:
                cluster_env[m.group(1)] = m.group(2)
        if "SLURM_CONF" not in cluster_env:
            pytest.fail("slurm-local.sh env printed no SLURM_CONF")
        print(f"\nslurm-local.sh start took {seconds:.1f}s", file=sys.stderr)
        yield SlurmLocal(cluster_env, seconds)
    finally:
        if not was_running:
            r = _slurm_script(env, "stop", 120)
            if r.returncode != 0:
                print(f"slurm-local.sh stop exited {r.returncode}:\n{r.stderr}", file=sys.stderr)
            if own_dir:
                shutil.rmtree(own_dir, ignore_errors=True)
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()
