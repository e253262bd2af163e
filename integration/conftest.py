"""The fixtures of hq's end-to-end tests (the helpers they build on are in hqtest.py):
each test gets its own temp dirs with servers and workers on 127.0.0.1 and OS-chosen
ports, every process it started is stopped by PID at teardown, and a sanitizer
report from any of them fails the test."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hqtest import HQ, TOOLS, Capture, HqEnv, base_env, build_faultshim, free_tcp_ports


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


@pytest.fixture(scope="session")
def faultshim(tmp_path_factory):
    """tools/faultshim.c built once per session; the path of the .so."""
    return build_faultshim(tmp_path_factory.mktemp("faultshim"))


@pytest.fixture
def relays(hq_env):
    """hq_env, stopping at teardown every relay started with hqtest.start_relay."""
    yield hq_env
    for r in getattr(hq_env, "relays", []):
        r.stop()


@pytest.fixture
def captures():
    """A factory of recording forwarders (tools/capture.py), stopped at teardown:
    captures(port, record=True)."""
    started = []

    def make(port, record=True):
        c = Capture(port, record)
        started.append(c)
        return c

    yield make
    for c in started:
        c.stop()


@pytest.fixture
def sshd(tmp_path):
    """A real sshd on 127.0.0.1 for this test (sshd_local.py), stopped by PID with every
    session it started. Fails (never skips) when sshd cannot start."""
    from sshd_local import SshdLocal
    try:
        s = SshdLocal(tmp_path / "sshd")
    except AssertionError as e:
        pytest.fail(str(e))
    yield s
    s.stop()


# ---------------------------------------------------------------------------------
# a real single-node SLURM (tools/slurm-local.sh)

SLURM_LOCAL_SCRIPT = TOOLS / "slurm-local.sh"
SLURM_START_TIMEOUT = 900  # the first start apt-installs the SLURM packages


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
    """Starts tools/slurm-local.sh for the session, in a temp SLURM_LOCAL_DIR on two free
    ports unless the caller set SLURM_LOCAL_DIR / SLURM_LOCAL_*_PORT, and stops it at the
    end unless it was already running. Fails (never skips) when SLURM cannot start: the
    script needs root, and installs the SLURM packages on its first start."""
    import shutil
    import tempfile
    if os.geteuid() != 0:
        pytest.fail("the SLURM tests need root (slurm-local.sh runs the SLURM daemons as "
                    "root); deselect them with -m 'not slurm'")
    env = base_env()
    for k, v in os.environ.items():
        if k.startswith("SLURM_LOCAL_"):
            env[k] = v
    env.setdefault("SLURM_LOCAL_SCHED_PARAMS", "fast")
    ctld_port, slurmd_port = free_tcp_ports(2)
    env.setdefault("SLURM_LOCAL_CTLD_PORT", str(ctld_port))
    env.setdefault("SLURM_LOCAL_SLURMD_PORT", str(slurmd_port))
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
