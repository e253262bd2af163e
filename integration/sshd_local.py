"""A real OpenSSH server on 127.0.0.1 for the `hq worker deploy-ssh` tests (the `sshd`
fixture in conftest.py): Debian's /usr/sbin/sshd (packaging/install-deps.sh) runs as
root in the foreground with its own sshd_config, host key and authorized key in a temp
dir, on a free port, with no system ssh service. ssh reads ~/.ssh from the password
database, not $HOME, so clients use `bin/ssh`, a wrapper that passes `-F <the test's
ssh_config>` (that port, that identity, a known_hosts with the host key, strict host
key checking, batch mode) and that the tests put first on PATH. The sanitizer
settings of the test run are given to the remote sessions through sshd's SetEnv, so
remote hq processes report the same way as local ones, and so is a TMPDIR of the test's
own (`remote_tmp`: where remote workers make their temporary work dirs) and a marker
HQ_TEST_SSHD=<its dir> that finds the remote processes even after sshd let them go. Every process is stopped by
PID: the listener and the per-connection sshd processes it forked (with the remote
commands under them)."""

import os
import signal
import subprocess
import time
from pathlib import Path

from hqtest import free_tcp_ports, wait_until

SSHD = "/usr/sbin/sshd"
SSH = "/usr/bin/ssh"
START_TIMEOUT = 20.0
FORWARDED_ENV = ("ASAN_OPTIONS", "LSAN_OPTIONS", "UBSAN_OPTIONS", "HQ_SANITIZED")


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _descendants(pid):
    found = []
    todo = _children(pid)
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(_children(p))
    return found


def _marked(tag):
    """Pids of the processes whose environment holds HQ_TEST_SSHD=<tag>."""
    needle = f"HQ_TEST_SSHD={tag}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            pass
    return found


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class SshdLocal:
    """The running sshd: `port`, `bin_dir` (holds the ssh wrapper), `remote_tmp` (TMPDIR
    of the remote sessions), `env(base)` (base with bin_dir first on PATH) and
    `sessions()` (pids under the listener)."""

    def __init__(self, directory):
        if os.geteuid() != 0:
            raise AssertionError("the ssh tests need root: sshd runs as root and logs in "
                                 "as root; deselect them with -m 'not ssh'")
        for prog in (SSHD, SSH):
            if not os.access(prog, os.X_OK):
                raise AssertionError(f"{prog} not found: packaging/install-deps.sh installs "
                                     "openssh-server and openssh-client")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.bin_dir = self.dir / "bin"
        self.bin_dir.mkdir()
        self.remote_tmp = self.dir / "remote-tmp"
        self.remote_tmp.mkdir()
        self.proc = None
        self.log = self.dir / "sshd.log"
        self._keys()
        last = ""
        for _ in range(3):  # the free port may be taken between the probe and the bind
            self.port = free_tcp_ports(1)[0]
            self._configs()
            last = self._start()
            if last is None:
                return
        raise AssertionError(f"sshd did not start:\n{last}")

    def _keys(self):
        for name in ("host_key", "id"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hq-test",
                            "-f", str(self.dir / name)], check=True, capture_output=True)
        (self.dir / "authorized_keys").write_text((self.dir / "id.pub").read_text())

    def _configs(self):
        d = self.dir
        pairs = [f"{k}={os.environ[k]}" for k in FORWARDED_ENV if os.environ.get(k)]
        pairs.append(f"TMPDIR={self.remote_tmp}")
        pairs.append(f"HQ_TEST_SSHD={self.dir}")
        assert not any(c.isspace() for pair in pairs for c in pair), pairs
        setenv = " ".join(pairs)
        (d / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\n"
            f"PidFile none\nAuthorizedKeysFile {d}/authorized_keys\n"
            "PermitRootLogin prohibit-password\nPubkeyAuthentication yes\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "StrictModes no\nPrintMotd no\nPrintLastLog no\nX11Forwarding no\n"
            f"LogLevel VERBOSE\nSetEnv {setenv}\n")
        host_key = " ".join((d / "host_key.pub").read_text().split()[:2])
        (d / "known_hosts").write_text(
            f"[127.0.0.1]:{self.port} {host_key}\n[localhost]:{self.port} {host_key}\n")
        (d / "ssh_config").write_text(
            f"Host *\n  Port {self.port}\n  User root\n  IdentityFile {d}/id\n"
            f"  IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n"
            "  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n"
            "  BatchMode yes\n  ConnectTimeout 15\n  LogLevel ERROR\n")
        wrapper = self.bin_dir / "ssh"
        wrapper.write_text(f"#!/bin/sh\nexec {SSH} -F {d}/ssh_config \"$@\"\n")
        wrapper.chmod(0o755)

    def _start(self):
        """Starts sshd; None once it listens, else what went wrong."""
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation dir
        log = open(self.log, "wb")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.dir / "sshd_config")],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        listening = f"Server listening on 127.0.0.1 port {self.port}."
        try:
            wait_until(lambda: self.proc.poll() is not None or listening in self.log_text(),
                       START_TIMEOUT, "sshd to listen")
        except AssertionError as e:
            self.stop()
            return f"{e}\n{self.log_text()}"
        if self.proc.poll() is not None:
            text = self.log_text()
            self.proc = None
            return text
        return None

    def log_text(self):
        return self.log.read_text(errors="replace")

    def env(self, base):
        env = dict(base)
        env["PATH"] = f"{self.bin_dir}:{env.get('PATH', '/usr/bin:/bin')}"
        return env

    def sessions(self):
        """Pids of the processes the listener started: the connections and, even once
        reparented, the remote commands and their children (their environment is
        marked with HQ_TEST_SSHD)."""
        if not self.proc:
            return []
        return sorted(set(_descendants(self.proc.pid)) | set(_marked(self.dir)))

    def stop(self):
        """Stops the listener and every session under it, by PID."""
        if self.proc is None:
            return
        pids = self.sessions()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = sorted(set(pids) | set(_marked(self.dir)))
            for pid in pids:
                try:
                    if _alive(pid):
                        os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10
            while any(_alive(p) for p in pids) and time.monotonic() < deadline:
                time.sleep(0.05)
        self.proc = None
