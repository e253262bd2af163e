"""The fault-injection tools the reliability tests rely on: the TCP relay
(tools/relay.py) forwards, pauses, drops, delays and resets traffic, and the LD_PRELOAD
fault shim (tools/faultshim.c) injects write/fdatasync/rename/fallocate errors."""

import errno
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from hqtest import BUILD, TOOLS, Relay, base_env, set_faults, wait_until


# ---- relay ---------------------------------------------------------------------


class EchoServer:
    """Echoes every byte back, on 127.0.0.1, one thread per connection."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.received = bytearray()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        with c:
            while True:
                try:
                    data = c.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                self.received.extend(data)
                c.sendall(data)

    def close(self):
        self.sock.close()


@pytest.fixture
def echo():
    e = EchoServer()
    yield e
    e.close()


@pytest.fixture
def relay(echo):
    r = Relay(("127.0.0.1", echo.port)).start()
    yield r
    r.stop()


def connect(relay):
    s = socket.create_connection(("127.0.0.1", relay.port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exactly(s, n, timeout=5.0):
    s.settimeout(timeout)
    out = bytearray()
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            break
        out.extend(chunk)
    return bytes(out)


def nothing_arrives(s, within):
    s.settimeout(within)
    try:
        data = s.recv(1)
    except socket.timeout:
        return True
    return data == b""  # EOF counts as nothing delivered


def test_relay_forwards_both_ways(relay):
    with connect(relay) as s:
        payload = os.urandom(200000)
        threading.Thread(target=s.sendall, args=(payload,), daemon=True).start()
        assert recv_exactly(s, len(payload)) == payload
    # the relay counts a chunk after forwarding it: poll until the counters settle
    st = wait_until(lambda: (lambda st: st if st["up"]["bytes"] == len(payload)
                             and st["down"]["bytes"] == len(payload) else None)(relay.stats()),
                    what="relay byte counters to reach the payload size")
    assert st["connections"] == 1


def test_relay_pause_holds_traffic_until_resume(relay):
    with connect(relay) as s:
        s.sendall(b"before")
        assert recv_exactly(s, 6) == b"before"
        relay.pause()
        s.sendall(b"held")
        assert nothing_arrives(s, 0.5)
        relay.resume()
        assert recv_exactly(s, 4) == b"held"


def test_relay_drop_discards_traffic_in_transit(relay, echo):
    with connect(relay) as s:
        relay.drop("up")
        s.sendall(b"lost")
        assert nothing_arrives(s, 0.5)
        relay.drop(None)
        s.sendall(b"kept")
        assert recv_exactly(s, 4) == b"kept"
    assert b"lost" not in echo.received
    assert relay.stats()["up"]["dropped_bytes"] == 4


def test_relay_drop_down_loses_only_replies(relay, echo):
    with connect(relay) as s:
        relay.drop("down")
        s.sendall(b"ping")
        wait_until(lambda: b"ping" in echo.received, timeout=5, what="echo got ping")
        assert nothing_arrives(s, 0.3)
        relay.drop("off")
        s.sendall(b"pong")
        assert recv_exactly(s, 4) == b"pong"


def test_relay_delay_adds_latency_each_way(relay):
    with connect(relay) as s:
        s.sendall(b"x")
        recv_exactly(s, 1)
        relay.delay(0.2)
        t0 = time.monotonic()
        s.sendall(b"y")
        assert recv_exactly(s, 1) == b"y"
        rtt = time.monotonic() - t0
        assert 0.4 <= rtt < 2.0, rtt
        relay.delay(0.0)
        t0 = time.monotonic()
        s.sendall(b"z")
        assert recv_exactly(s, 1) == b"z"
        assert time.monotonic() - t0 < 0.2


def test_relay_delay_keeps_order(relay):
    with connect(relay) as s:
        relay.delay(0.05, "up")
        for k in range(50):
            s.sendall(b"%03d" % k)
        data = recv_exactly(s, 150)
        assert data == b"".join(b"%03d" % k for k in range(50))


def test_relay_reset_kills_connections_and_refuse_blocks_new_ones(relay):
    s = connect(relay)
    s.sendall(b"a")
    assert recv_exactly(s, 1) == b"a"
    relay.reset()
    s.settimeout(5)
    try:
        data = s.recv(1)
    except ConnectionResetError:
        data = b""
    assert data == b""
    s.close()
    relay.refuse(True)
    s = connect(relay)
    s.settimeout(5)
    try:
        data = s.recv(1)
    except ConnectionResetError:
        data = b""
    assert data == b""
    s.close()
    relay.refuse(False)
    with connect(relay) as s2:
        s2.sendall(b"b")
        assert recv_exactly(s2, 1) == b"b"


def test_relay_reset_mode_resets_every_connection_and_accepts_anew():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    accepted = []

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            accepted.append(c)

    threading.Thread(target=serve, daemon=True).start()
    relay = Relay(srv.getsockname(), capture=True).start()
    try:
        c1 = socket.create_connection(("127.0.0.1", relay.port))
        wait_until(lambda: len(accepted) == 1, 10, "the relayed connection")
        relay.pause()
        c1.sendall(b"held")
        # held: read by the relay (captured), not delivered
        wait_until(lambda: relay.captured("up") == b"held", 5, "the relay to read the bytes")
        assert relay.stats()["up"]["bytes"] == 0 and len(relay.conns) == 1
        relay.reset_every(0.05)
        c1.settimeout(10)
        assert c1.recv(10) == b""  # the connection was closed by the relay
        relay.reset_every(None)
        relay.resume()
        c2 = socket.create_connection(("127.0.0.1", relay.port))
        wait_until(lambda: len(accepted) == 2, 10, "the new connection to be relayed")
        c2.sendall(b"ok")
        accepted[1].settimeout(10)
        assert accepted[1].recv(10) == b"ok"
        st = relay.stats()
        assert st["up"]["reset_bytes"] == 4 and st["connections"] == 2, st
        assert accepted[0].recv(10) == b""  # the held bytes never arrived
        c1.close()
        c2.close()
    finally:
        relay.stop()
        srv.close()
        for c in accepted:
            c.close()


def test_relay_command_line_is_controlled_through_its_control_port(echo, tmp_path):
    ready = tmp_path / "ready"
    p = subprocess.Popen(
        [sys.executable, str(TOOLS / "relay.py"), "127.0.0.1", str(echo.port),
         "--ready-file", str(ready)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=base_env())
    try:
        line = wait_until(lambda: ready.exists() and ready.read_text().strip(), timeout=10,
                          what="relay ready")
        _, port, ctl_port = line.split()
        ctl = socket.create_connection(("127.0.0.1", int(ctl_port)), timeout=5)
        f = ctl.makefile("rwb", buffering=0)

        def cmd(text):
            f.write(text.encode() + b"\n")
            return json.loads(f.readline())

        s = socket.create_connection(("127.0.0.1", int(port)), timeout=5)
        s.sendall(b"hi")
        assert recv_exactly(s, 2) == b"hi"
        assert cmd("pause")["ok"]
        s.sendall(b"yo")
        assert nothing_arrives(s, 0.4)
        assert cmd("resume")["ok"]
        assert recv_exactly(s, 2) == b"yo"
        assert cmd("drop both")["ok"]
        s.sendall(b"gone")
        assert nothing_arrives(s, 0.4)
        st = cmd("stats")
        assert st["up"]["dropped_bytes"] == 4 and st["dropping"] == ["down", "up"]
        assert cmd("bogus")["ok"] is False
        assert cmd("quit")["ok"]
        s.close()
        assert p.wait(timeout=10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


# ---- fault shim ----------------------------------------------------------------

PROBE_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

static void say(const char *what, int rc)
{
    printf("%s %s\n", what, rc < 0 ? strerror(errno) : "ok");
}

int main(int argc, char **argv)
{
    char path[4096], moved[4096];
    snprintf(path, sizeof path, "%s/data", argv[1]);
    snprintf(moved, sizeof moved, "%s/moved", argv[1]);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    for (int k = 0; k < 3; k++)
        say("write", (int)write(fd, "abc", 3));
    struct iovec iov = {"xyz", 3};
    say("pwritev", (int)pwritev(fd, &iov, 1, 0));
    for (int k = 0; k < 3; k++)
        say("fdatasync", fdatasync(fd));
    say("fallocate", fallocate(fd, 0, 0, 4096));
    say("rename", rename(path, moved));
    close(fd);
    return 0;
}
"""


@pytest.fixture(scope="module")
def shim(faultshim, tmp_path_factory):
    """The fault shim (built with -Werror by the faultshim fixture) and a probe program
    that reports what each of its file operations returned."""
    d = tmp_path_factory.mktemp("probe")
    probe = d / "probe"
    (d / "probe.c").write_text(PROBE_C)
    subprocess.run(["cc", "-O1", "-o", str(probe), str(d / "probe.c")], check=True)
    return faultshim, probe


def run_probe(shim, workdir, fault, extra_env=None):
    so, probe = shim
    env = base_env()
    env.update({"LD_PRELOAD": str(so), "HQ_FAULT": fault, "HQ_FAULT_PATH": str(workdir)})
    env.update(extra_env or {})
    out = subprocess.run([str(probe), str(workdir)], env=env, capture_output=True, text=True,
                         check=True, timeout=30).stdout
    return out.splitlines()


def test_shim_without_rules_changes_nothing(shim, tmp_path):
    lines = run_probe(shim, tmp_path, "")
    assert all(line.endswith(" ok") for line in lines), lines
    assert (tmp_path / "moved").exists()


def test_shim_fails_fdatasync_once_with_eio(shim, tmp_path):
    lines = run_probe(shim, tmp_path, "fdatasync:EIO:once")
    syncs = [line for line in lines if line.startswith("fdatasync")]
    assert syncs == ["fdatasync Input/output error", "fdatasync ok", "fdatasync ok"]
    assert "write ok" in lines


def test_shim_fails_writes_always_with_enospc_and_logs_them(shim, tmp_path):
    log = tmp_path.parent / (tmp_path.name + ".faults")
    lines = run_probe(shim, tmp_path, "write:ENOSPC:always", {"HQ_FAULT_LOG": str(log)})
    writes = [line for line in lines if line.startswith(("write", "pwritev"))]
    assert writes == ["write No space left on device"] * 3 + ["pwritev No space left on device"]
    logged = log.read_text().splitlines()
    assert len(logged) == 4 and all(line.startswith("write 28 ") for line in logged)


def test_shim_after_and_nth_modes(shim, tmp_path):
    lines = run_probe(shim, tmp_path, "write:EDQUOT:after=2,fdatasync:EIO:nth=2")
    writes = [line for line in lines if line.startswith("write")]
    assert writes == ["write ok", "write ok", "write Disk quota exceeded"]
    syncs = [line for line in lines if line.startswith("fdatasync")]
    assert syncs == ["fdatasync ok", "fdatasync Input/output error", "fdatasync ok"]


def test_shim_fails_rename_and_fallocate(shim, tmp_path):
    lines = run_probe(shim, tmp_path, "rename:EIO:always,fallocate:ENOSPC:once")
    assert "rename Input/output error" in lines
    assert "fallocate No space left on device" in lines
    assert not (tmp_path / "moved").exists()


def test_shim_only_touches_files_under_the_chosen_path(shim, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    so, probe = shim
    env = base_env()
    env.update({"LD_PRELOAD": str(so), "HQ_FAULT": "write:ENOSPC:always",
                "HQ_FAULT_PATH": str(tmp_path / "elsewhere")})
    out = subprocess.run([str(probe), str(other)], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert "No space" not in out


def test_shim_rules_can_be_switched_in_a_running_process_via_a_file(shim, tmp_path):
    so, _ = shim
    rules = tmp_path / "rules"
    rules.write_text("")
    target = tmp_path / "out"
    env = base_env()
    env.update({"LD_PRELOAD": str(so), "HQ_FAULT_FILE": str(rules),
                "HQ_FAULT_PATH": str(target)})
    # dd through the shim: fine with no rules, "disk full" once the file says so.
    ok = subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=1k", "count=4"], env=env,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    set_faults(rules, "write:ENOSPC:always\n")
    bad = subprocess.run(["dd", "if=/dev/zero", f"of={target}", "bs=1k", "count=4"], env=env,
                         capture_output=True, text=True)
    assert bad.returncode != 0
    assert "No space left on device" in bad.stderr


def test_shim_reaches_the_journal_writer_thread(shim, tmp_path):
    bench = BUILD / "bench_journal"
    if not bench.exists():
        pytest.skip("bench_journal not built")
    so, _ = shim
    env = base_env()
    log = tmp_path / "faults.log"
    env.update({"LD_PRELOAD": str(so), "HQ_FAULT": "fdatasync:EIO:always",
                "HQ_FAULT_PATH": str(tmp_path / "journal"), "HQ_FAULT_LOG": str(log),
                # an ASan build wants its runtime first; the shim only wraps libc calls
                "ASAN_OPTIONS": env.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"})
    r = subprocess.run([str(bench), str(tmp_path), "2000"], env=env, capture_output=True,
                       text=True, timeout=120)
    # The writer thread's fdatasyncs of the segment were the ones that failed ...
    faulted = log.read_text().splitlines() if log.exists() else []
    assert any(line.startswith("fdatasync %d " % errno.EIO) and "/seg-" in line
               for line in faulted), faulted
    # ... and the final flush reports it, whichever group commit lost the records
    # (a busy machine lets the writer fail them before the flush marker arrives).
    assert r.returncode != 0, r.stdout
    assert "Input/output error" in r.stderr, (r.stdout, r.stderr)
