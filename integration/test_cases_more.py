"""The rest of RELIABILITY.md's fault and security cases, end to end: crash-limit
`unlimited` and `never-restart` (#10), oversized frames on both broker sockets and the
client's own size check (#21), a byte capture of legitimate and wrong-key traffic (#22),
the role split on the worker socket (#23), the access file and run dir against a planted
symlink and the umask (#24), and a journal written by another format version (#27).

Each test's docstring says Setup -> Fault -> Expected. Helpers come from the tests that
already cover the neighbouring cases (test_security, test_hostile, test_journal)."""

import hashlib
import os
import re
import secrets
import socket
import stat
import subprocess
import threading

import pytest

from conftest import HQ, read_pid_file, wait_until
from test_hostile import assert_rss_growth, rss_kib, still_serves
from test_journal import journal_dir, segments
from test_journal import start as start_journaled
from test_security import assert_still_serves, fake_dir, load_access, rawpeer

HQ_CLIENT_MAXMSG = 256 * 1024 * 1024  # proto/hq_msg.h
HQ_WORKER_MAXMSG = 64 * 1024 * 1024
MIB = 1024 * 1024


# --- a recording TCP forwarder ---------------------------------------------------------

class Capture:
    """A TCP forwarder on 127.0.0.1 in front of one broker port. Every accepted
    connection gets its own upstream connection; the bytes of both directions are
    counted (and kept when record=True), and the forwarder notes which side closed
    first. A pcap of the link, without needing root or tcpdump."""

    def __init__(self, upstream_port, record=True):
        self.upstream = ("127.0.0.1", upstream_port)
        self.record = record
        self.to_server = bytearray()
        self.to_client = bytearray()
        self.conns = []  # dicts: up, down (byte counts), closed_by ("server"/"client")
        self.lock = threading.Lock()
        self.socks = []
        self.threads = []
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.stopping = False
        self._spawn(self._accept_loop)

    def _spawn(self, fn, *args):
        t = threading.Thread(target=fn, args=args, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept_loop(self):
        self.lsock.settimeout(0.1)  # close() does not wake a blocked accept()
        while not self.stopping:
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            c.settimeout(None)
            try:
                u = socket.create_connection(self.upstream, timeout=10)
                u.settimeout(None)
            except OSError:
                c.close()
                continue
            conn = {"up": 0, "down": 0, "closed_by": None, "socks": (c, u)}
            with self.lock:
                self.conns.append(conn)
                self.socks += [c, u]
            self._spawn(self._pump, c, u, conn, "up")
            self._spawn(self._pump, u, c, conn, "down")

    def _pump(self, src, dst, conn, direction):
        buf = self.to_server if direction == "up" else self.to_client
        # who closed: for "up" the source is the client, a failing send is the server
        src_side, dst_side = ("client", "server") if direction == "up" else ("server", "client")
        while True:
            try:
                data = src.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                self._closed(conn, src_side)
                break
            with self.lock:
                conn[direction] += len(data)
                if self.record:
                    buf += data
            try:
                dst.sendall(data)
            except OSError:
                self._closed(conn, dst_side)
                break
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _closed(self, conn, side):
        with self.lock:
            if conn["closed_by"] is None and not self.stopping:
                conn["closed_by"] = side

    def captured(self):
        with self.lock:
            return bytes(self.to_server), bytes(self.to_client)

    def stop(self):
        self.stopping = True
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self.threads:
            t.join(timeout=5)


@pytest.fixture
def captures():
    started = []

    def make(port, record=True):
        c = Capture(port, record)
        started.append(c)
        return c

    yield make
    for c in started:
        c.stop()


def via(env, cap, name, role="client", data=None):
    """A server dir whose access file sends `role` traffic through the capture."""
    data = data if data is not None else load_access(env)
    data[role]["host"] = "127.0.0.1"
    data[role]["port"] = cap.port
    return fake_dir(env, name, data)


# --- #10 crash-limit remainder ---------------------------------------------------------

# Instances below LAST kill their own worker (the task's parent) once the file
# go.<instance> exists, then hang; instance LAST finishes. Every start appends its
# instance id to "instances". The gate lets the test wait until the broker knows the
# task is running, so each loss is one of a running task (test_crash_race.py covers
# tasks that kill their worker before their STARTED report left).
SELF_KILL = ('echo "$HQ_INSTANCE_ID" >> instances; echo $$ > "pid.$HQ_INSTANCE_ID"; '
             'if [ "$HQ_INSTANCE_ID" -lt "$LAST" ]; then '
             'while [ ! -e "go.$HQ_INSTANCE_ID" ]; do sleep 0.02; done; '
             'kill -9 $PPID; exec sleep 100; fi; '
             'echo "survived instance $HQ_INSTANCE_ID"')


def lose_worker_to_its_task(env, instance, job=1):
    """Starts a worker; once the broker shows instance `instance` of the job's task 0
    running there, lets the task kill its worker. Returns the worker."""
    w = env.start_worker(cpus=1, heartbeat="1s")
    pidfile = env.work / f"pid.{instance}"
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 20,
               f"instance {instance}'s pid file")
    env.track_pid(read_pid_file(pidfile))
    t = env.wait_task_state(job, 0, "running")
    assert t["worker"] == w.id, t
    (env.work / f"go.{instance}").touch()
    rc = w.proc.wait_exit(timeout=30)
    assert rc == -9, (rc, w.proc.stderr()[-2000:])
    return w


def instances(env):
    return [int(x) for x in (env.work / "instances").read_text().split()]


def test_crash_limit_unlimited_keeps_retrying_past_five_lost_workers(server):
    """Setup: one task with --crash-limit unlimited whose instances 0-5 kill their own
    worker (kill -9 $PPID). Fault: six workers lost in a row, one more than the default
    limit of 5. Expected: after each loss the task is waiting again (never failed), and
    the seventh worker runs instance 6 to completion; instance ids 0..6 in order."""
    env = server
    env.env["LAST"] = "6"
    env.hq("submit", "--crash-limit", "unlimited", "--", "bash", "-c", SELF_KILL)
    for i in range(6):
        lose_worker_to_its_task(env, i)
        t = env.wait_task_state(1, 0, ("waiting", "running"), timeout=30)
        assert t["state"] != "failed", t
    w = env.start_worker(cpus=1, heartbeat="1s")
    env.wait_job(1)
    t = env.tasks(1)[0]
    assert t["state"] == "finished", t
    assert t["worker"] == w.id
    assert instances(env) == list(range(7))
    assert env.hq("job", "cat", "1", "stdout").stdout == "survived instance 6\n"
    assert "unlimited" in env.hq("job", "info", "1").stdout
    lost = [x for x in env.worker_list(all_=True) if x["id"] != w.id]
    assert len(lost) == 6 and all(x["ended"] is not None for x in lost), lost


def test_never_restart_task_that_kills_its_worker_fails_and_never_reruns(server):
    """Setup: --crash-limit never-restart, a task that kills its own worker. Fault: the
    worker dies with it. Expected: the task is FAILED with an error naming
    never-restart; a new worker does not run it again (one start only)."""
    env = server
    env.env["LAST"] = "1"
    env.hq("submit", "--crash-limit", "never-restart", "--", "bash", "-c", SELF_KILL)
    lose_worker_to_its_task(env, 0)
    t = env.wait_task_state(1, 0, "failed", timeout=30)
    assert "never-restart" in t["error"], t
    env.start_worker(cpus=1)
    # the new worker runs a later job, so it would have picked up the old task too
    jid = env.submit("--", "true")
    env.wait_job(jid)
    assert env.tasks(1)[0]["state"] == "failed"
    assert instances(env) == [0]
    assert env.job_state_counts(1)["failed"] == 1


def test_never_restart_task_fails_even_when_its_worker_is_stopped_gracefully(server):
    """Setup: --crash-limit never-restart, a long task running on a worker; a second
    job with the default limit runs beside it. Fault: `hq worker stop` (graceful, no
    crash). Expected (as HQ: the task must never run twice): the never-restart task is
    FAILED, the default-limit task goes back to waiting and finishes on a new worker,
    the stopped worker exits 0."""
    env = server
    w1 = env.start_worker(cpus=2)
    env.hq("submit", "--crash-limit", "never-restart", "--", "bash", "-c",
           'echo "$HQ_INSTANCE_ID" >> instances; echo $$ > pid; exec sleep 100')
    env.hq("submit", "--", "bash", "-c",
           'echo $$ >> pids2; [ "$HQ_INSTANCE_ID" = 0 ] && exec sleep 100; echo again')
    for jid, f in ((1, "pid"), (2, "pids2")):
        env.wait_task_state(jid, 0, "running")
        p = env.work / f
        wait_until(lambda: p.exists() and p.read_text().strip(), 10, f"job {jid}'s pid")
        env.track_pid(int(p.read_text().split()[0]))
    env.hq("worker", "stop", str(w1.id))
    assert w1.proc.wait_exit() == 0
    t = env.wait_task_state(1, 0, "failed", timeout=20)
    assert "never-restart" in t["error"], t
    env.wait_task_state(2, 0, "waiting", timeout=20)
    env.start_worker(cpus=2)
    env.wait_job(2)
    assert env.tasks(2)[0]["state"] == "finished"
    assert env.tasks(1)[0]["state"] == "failed"
    assert instances(env) == [0]


def test_graceful_stop_between_crashes_does_not_bump_the_counter(server):
    """Setup: --crash-limit 2; instance 0 kills its worker (counter 1), instance 1
    hangs. Fault: a graceful `hq worker stop` while instance 1 runs. Expected: the stop
    leaves the counter at 1, so instance 2 runs and finishes instead of the task
    failing at a counter of 2."""
    env = server
    script = ('echo "$HQ_INSTANCE_ID" >> instances; echo $$ > "pid.$HQ_INSTANCE_ID"; '
              'case "$HQ_INSTANCE_ID" in 0) while [ ! -e go.0 ]; do sleep 0.02; done; '
              'kill -9 $PPID; exec sleep 100;; '
              '1) exec sleep 100;; esac; echo "survived instance $HQ_INSTANCE_ID"')
    env.hq("submit", "--crash-limit", "2", "--", "bash", "-c", script)
    lose_worker_to_its_task(env, 0)
    env.wait_task_state(1, 0, "waiting", timeout=30)
    w = env.start_worker(cpus=1)
    env.wait_task_state(1, 0, "running")
    p = env.work / "pid.1"
    wait_until(lambda: p.exists() and p.read_text().strip(), 10, "instance 1's pid")
    env.track_pid(read_pid_file(p))
    env.hq("worker", "stop", str(w.id))
    assert w.proc.wait_exit() == 0
    env.wait_task_state(1, 0, "waiting", timeout=20)
    env.start_worker(cpus=1)
    env.wait_job(1)
    assert env.tasks(1)[0]["state"] == "finished"
    assert instances(env) == [0, 1, 2]


# --- #21 oversize-frame ----------------------------------------------------------------

def oversize_through_capture(env, cap, role, frames, timeout_ms):
    d = via(env, cap, f"oversize-{role}", role=role)
    return rawpeer(d / "access.json", role, *frames, timeout_ms=timeout_ms)


def test_oversize_frame_on_the_client_socket_disconnects_the_peer(cluster, captures):
    """Setup: a server and worker; an authenticated client (hq_rawpeer) through the
    counting forwarder. Fault: one frame of 257 MiB, over the client socket's
    ZMQ_MAXMSGSIZE (256 MiB). Expected: the broker closes that connection after
    reading only a small part of the frame (never buffered), its RSS does not grow by
    the frame size, the peer's next request (on a new connection) and other clients
    are served, the worker stays registered."""
    env = cluster
    pid = env.server.pid
    cap = captures(env.server_info()["client_port"], record=False)
    hs, lines = oversize_through_capture(env, cap, "client", ["valid:server-info"], 1500)
    assert hs == "ok" and "type=40" in lines[0], lines  # warm-up through the forwarder
    rss0 = rss_kib(pid)
    size = HQ_CLIENT_MAXMSG + MIB
    hs, lines = oversize_through_capture(
        env, cap, "client", ["valid:server-info", f"zeros:{size}", "valid:server-info"], 5000)
    rss1 = rss_kib(pid)
    assert hs == "ok"
    assert "type=40" in lines[0], lines
    assert lines[1].endswith("no reply"), lines
    assert "type=40" in lines[2], lines  # the peer reconnected and is served again
    with cap.lock:
        conns = [dict(c) for c in cap.conns]
    big = conns[1]  # conns[0] is the warm-up
    print(f"oversize client frame: {big['up']} bytes reached the broker before it closed; "
          f"RSS {rss0} -> {rss1} KiB; {len(conns)} connections")
    assert big["closed_by"] == "server", conns
    assert big["up"] < 32 * MIB, big  # the body was not read, let alone buffered
    assert len(conns) >= 3, conns  # the reconnect
    assert_rss_growth(rss0, rss1, 32 * 1024)
    assert env.server.poll() is None
    assert [x["id"] for x in env.worker_list()] == [env.w1.id]
    still_serves(env)


def test_oversize_frame_on_the_worker_socket_disconnects_the_peer(cluster, captures):
    """Setup: a server and a genuine worker; an authenticated worker-key peer through
    the counting forwarder. Fault: one frame of 65 MiB, over the worker socket's
    ZMQ_MAXMSGSIZE (64 MiB). Expected: the broker closes that connection after a small
    part of the frame, its RSS does not grow by the frame size, the genuine worker is
    not affected and runs new tasks, and new workers still register."""
    env = cluster
    pid = env.server.pid
    cap = captures(env.server_info()["worker_port"], record=False)
    rss0 = rss_kib(pid)
    hs, lines = oversize_through_capture(env, cap, "worker",
                                         [f"zeros:{HQ_WORKER_MAXMSG + MIB}"], 3000)
    rss1 = rss_kib(pid)
    assert hs == "ok"
    assert lines[0].endswith("no reply"), lines
    with cap.lock:
        conns = [dict(c) for c in cap.conns]
    print(f"oversize worker frame: {conns[0]['up']} bytes reached the broker before it "
          f"closed; RSS {rss0} -> {rss1} KiB")
    assert conns[0]["closed_by"] == "server", conns
    assert conns[0]["up"] < 32 * MIB, conns
    assert_rss_growth(rss0, rss1, 32 * 1024)
    assert [x["id"] for x in env.worker_list()] == [env.w1.id]
    still_serves(env)
    env.start_worker(cpus=1)
    assert len(env.worker_list()) == 2


def test_hq_refuses_a_request_over_the_client_limit_before_sending(cluster, captures):
    """Setup: a server; `hq` talks to it through the counting forwarder. Fault: a
    submit whose request encodes to more than 256 MiB (--each-line with 17 entries of
    16 MiB, each under the per-entry cap). Expected: hq exits 1 saying the message
    exceeds the socket's limit, sends (almost) nothing, and no job is created."""
    env = cluster
    cap = captures(env.server_info()["client_port"], record=False)
    d = via(env, cap, "limit")
    big = env.tmp / "entries"
    line = b"x" * (16 * MIB - 1) + b"\n"
    with open(big, "wb") as f:
        for _ in range(17):
            f.write(line)
    try:
        r = env.hq("submit", "--each-line", big, "--", "true", server_dir=d, check=False,
                   timeout=120)
    finally:
        big.unlink()
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert f"exceeds the {HQ_CLIENT_MAXMSG}-byte limit of its socket" in r.stderr, r.stderr
    with cap.lock:
        sent = sum(c["up"] for c in cap.conns)
    assert sent < 64 * 1024, sent
    assert env.hq_json("job", "list", "--all") == []
    assert_still_serves(env)


# --- #22 unauthenticated-access capture ------------------------------------------------

def distinctive():
    tag = secrets.token_hex(8)
    return f"capname-{tag}", f"caparg-{tag}", f"capenv-{tag}"


def assert_absent(blobs, strings):
    for s in strings:
        for enc in (s.encode(), s.encode("utf-16-le")):
            for b in blobs:
                assert enc not in b, f"{s!r} appears in the capture"


def test_capture_of_a_legitimate_client_holds_no_job_strings(cluster, captures):
    """Setup: a server and worker; `hq` talks to the client socket through the
    recording forwarder. Fault: none; the capture is the attacker's view of the link.
    Expected: the submit, job info, task list and a finished job's output all work
    through the forwarder, yet none of the job's name, arguments or environment
    strings appear in the captured bytes in either direction (CURVE encryption); the
    capture does show a CURVE handshake."""
    env = cluster
    cap = captures(env.server_info()["client_port"])
    d = via(env, cap, "captured")
    name, arg, envval = distinctive()
    jid = env.hq_json("submit", "--name", name, "--env", f"CAPENV={envval}", "--", "echo", arg,
                      server_dir=d)["id"]
    env.hq("job", "wait", str(jid), server_dir=d)
    info = env.hq("job", "info", str(jid), server_dir=d).stdout
    assert name in info and arg in info and envval in info, info
    assert name in env.hq("job", "list", "--all", server_dir=d).stdout
    assert env.hq("task", "list", str(jid), server_dir=d).stdout
    up, down = cap.captured()
    assert len(up) > 500 and len(down) > 500, (len(up), len(down))
    assert b"CURVE" in up and b"CURVE" in down  # the ZMTP greetings name the mechanism
    assert_absent([up, down], [name, arg, envval])
    assert env.tasks(jid)[0]["state"] == "finished"


def test_wrong_keys_through_the_capture_deliver_nothing(cluster, captures):
    """Setup: a server and worker; a client whose access file has the right address
    but another secret (so both the server key it expects and its own key are wrong),
    through the recording forwarder. Fault: it tries to submit, list and read jobs.
    Expected: every command fails with the handshake refusal, the broker logs the
    refused connection, no job is created, and the capture contains none of the job's
    strings."""
    env = cluster
    env.submit("--name", "visible-to-owner", "--", "true")
    cap = captures(env.server_info()["client_port"])
    data = load_access(env)
    data["client"]["secret_key"] = os.urandom(32).hex()
    d = via(env, cap, "wrong-keys", data=data)
    name, arg, envval = distinctive()
    results = env.hq_concurrently([
        (d, "submit", "--name", name, "--env", f"CAPENV={envval}", "--", "touch", arg),
        (d, "job", "list"),
        (d, "job", "info", "1")])
    for r in results:
        assert r.returncode == 1, (r.args, r.stdout, r.stderr)
        assert "refused the connection" in r.stderr, r.stderr
        assert "visible-to-owner" not in r.stdout
    up, down = cap.captured()
    assert len(up) > 0, "the attempt did not go through the forwarder"
    assert_absent([up, down], [name, arg, envval, "visible-to-owner"])
    assert [j["name"] for j in env.hq_json("job", "list", "--all")] == ["visible-to-owner"]
    assert not (env.work / arg).exists()
    # A wrong secret means a wrong broker key too: the broker cannot open the HELLO,
    # so libzmq drops the connection before ZAP is asked (and nothing is logged; the
    # ZAP refusal itself is the next test).
    assert_still_serves(env)


# A CURVE peer through ctypes (libzmq + libsodium, no Python bindings needed), for the
# one case an access file cannot express: the right broker key with an unknown client
# key, which gets past the HELLO and is refused by ZAP.
ZMQ_DEALER, ZMQ_LINGER, ZMQ_RCVTIMEO = 5, 17, 27
ZMQ_CURVE_PUBLICKEY, ZMQ_CURVE_SECRETKEY, ZMQ_CURVE_SERVERKEY = 48, 49, 50


def curve_libs():
    import ctypes
    import ctypes.util
    zmq = ctypes.CDLL(ctypes.util.find_library("zmq") or "libzmq.so.5")
    sodium = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
    zmq.zmq_ctx_new.restype = ctypes.c_void_p
    zmq.zmq_socket.restype = ctypes.c_void_p
    zmq.zmq_socket.argtypes = [ctypes.c_void_p, ctypes.c_int]
    zmq.zmq_setsockopt.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                                   ctypes.c_size_t]
    zmq.zmq_connect.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    zmq.zmq_send.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
    zmq.zmq_recv.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    zmq.zmq_close.argtypes = [ctypes.c_void_p]
    zmq.zmq_ctx_term.argtypes = [ctypes.c_void_p]
    sodium.crypto_kdf_derive_from_key.argtypes = [ctypes.c_char_p, ctypes.c_size_t,
                                                  ctypes.c_uint64, ctypes.c_char_p,
                                                  ctypes.c_char_p]
    assert sodium.sodium_init() >= 0
    return ctypes, zmq, sodium


def curve_pair(secret_hex, which):
    """The (public, secret) key pair hq derives from an access-file secret
    (proto/hq_access.c: KDF context "hqcurve1", id 1 = broker, 2 = role)."""
    ctypes, _, sodium = curve_libs()
    seed = ctypes.create_string_buffer(32)
    assert sodium.crypto_kdf_derive_from_key(seed, 32, which, b"hqcurve1",
                                             bytes.fromhex(secret_hex)) == 0
    pk, sk = ctypes.create_string_buffer(32), ctypes.create_string_buffer(32)
    assert sodium.crypto_box_seed_keypair(pk, sk, seed) == 0
    return pk.raw, sk.raw


def random_pair():
    ctypes, _, sodium = curve_libs()
    pk, sk = ctypes.create_string_buffer(32), ctypes.create_string_buffer(32)
    assert sodium.crypto_box_keypair(pk, sk) == 0
    return pk.raw, sk.raw


def curve_request(port, server_pk, pair, frame, timeout_ms=1500):
    """Sends one frame from a CURVE DEALER and returns the reply frame or None."""
    ctypes, zmq, _ = curve_libs()
    ctx = zmq.zmq_ctx_new()
    s = zmq.zmq_socket(ctx, ZMQ_DEALER)
    try:
        for opt, val in ((ZMQ_CURVE_SERVERKEY, server_pk), (ZMQ_CURVE_PUBLICKEY, pair[0]),
                         (ZMQ_CURVE_SECRETKEY, pair[1])):
            assert zmq.zmq_setsockopt(s, opt, val, 32) == 0
        for opt, v in ((ZMQ_LINGER, 0), (ZMQ_RCVTIMEO, timeout_ms)):
            iv = ctypes.c_int(v)
            assert zmq.zmq_setsockopt(s, opt, ctypes.byref(iv), ctypes.sizeof(iv)) == 0
        assert zmq.zmq_connect(s, f"tcp://127.0.0.1:{port}".encode()) == 0
        assert zmq.zmq_send(s, frame, len(frame), 0) == len(frame)
        buf = ctypes.create_string_buffer(1 << 16)
        n = zmq.zmq_recv(s, buf, len(buf), 0)
        return buf.raw[:n] if n >= 0 else None
    finally:
        zmq.zmq_close(s)
        zmq.zmq_ctx_term(ctx)


def hq_request(msg_type, request_id=7):
    """A body-less hq request frame (proto/PROTOCOL.md "Header")."""
    return (b"HQ" + bytes([1, msg_type]) + request_id.to_bytes(8, "big") + bytes(28))


def test_unknown_client_key_with_the_right_broker_key_is_refused_by_zap(cluster, captures):
    """Setup: a server and worker; a CURVE peer that knows the broker's client-socket
    public key (derived from the real secret) but uses a random key pair of its own,
    through the recording forwarder. Fault: it sends requests (server info, and a
    request frame carrying a distinctive string). Expected: ZAP refuses it and the
    broker logs the refusal; no reply comes, no job appears, and the capture holds
    none of the request's strings. Positive control: the same peer with the real
    client key pair gets a reply."""
    env = cluster
    secret = load_access(env)["client"]["secret_key"]
    broker_pk, _ = curve_pair(secret, 1)
    port = env.server_info()["client_port"]
    ok = curve_request(port, broker_pk, curve_pair(secret, 2), hq_request(1))
    assert ok is not None and ok[:2] == b"HQ" and ok[3] == 40, ok  # REPLY
    cap = captures(port)
    name, arg, _ = distinctive()
    payload = hq_request(3) + (name + " " + arg).encode()  # SUBMIT type, raw strings
    assert curve_request(cap.port, broker_pk, random_pair(), hq_request(1)) is None
    assert curve_request(cap.port, broker_pk, random_pair(), payload) is None
    wait_until(lambda: "Refused connection from" in env.server.stderr(), 10,
               "the broker to log the ZAP refusal")
    line = [x for x in env.server.stderr().splitlines() if "Refused connection from" in x][0]
    assert "127.0.0.1" in line and "CURVE" in line, line
    up, down = cap.captured()
    assert len(up) > 0 and b"CURVE" in up
    assert_absent([up, down], [name, arg])
    assert env.hq_json("job", "list", "--all") == []
    assert_still_serves(env)


# --- #23 role separation (what test_security leaves out) -------------------------------

def test_client_key_is_refused_by_the_worker_socket(cluster):
    """Setup: a server; a peer holding the client secret pointed at the worker socket.
    Fault: it handshakes and sends a heartbeat and a REGISTER. Expected: the CURVE
    handshake fails (the worker socket only admits the worker key), nothing is
    answered, and no worker is added."""
    env = cluster
    data = load_access(env)
    data["worker"]["secret_key"] = data["client"]["secret_key"]
    d = fake_dir(env, "client-key-on-worker-socket", data)
    hs, lines = rawpeer(d / "access.json", "worker", "valid:heartbeat", "header:60:90",
                        timeout_ms=1000)
    assert hs in ("auth-failed", "protocol-failed", "failed"), hs
    assert all(line.endswith("no reply") for line in lines), lines
    assert [x["id"] for x in env.worker_list(all_=True)] == [env.w1.id]
    # positive control: the worker key itself gets through the handshake
    hs, _ = rawpeer(env.access_path(), "worker", "valid:heartbeat", timeout_ms=500)
    assert hs == "ok"
    assert_still_serves(env)


def test_register_on_the_client_socket_gets_a_typed_error(cluster):
    """Setup: a server; an authenticated client-key peer. Fault: it sends a worker's
    REGISTER (type 60) and a HEARTBEAT (62) on the client socket. Expected: each gets
    an ERROR reply (type 41), never a REPLY, and no worker is added."""
    env = cluster
    hs, lines = rawpeer(env.access_path(), "client", "header:60:90", "header:62",
                        "valid:server-info")
    assert hs == "ok"
    assert "type=41" in lines[0] and "type=41" in lines[1], lines
    assert "type=40" in lines[2], lines
    assert [x["id"] for x in env.worker_list(all_=True)] == [env.w1.id]


# --- #24 access-file-perms remainder ---------------------------------------------------

# LD_PRELOAD hook: right after the server creates a numeric run dir inside
# $HQ_PLANT_DIR, it places a symlink access.json -> $HQ_PLANT_TARGET there, i.e. what
# another process racing the server would do. Deterministic, unlike a real race.
PLANT_SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mkdir(const char *path, mode_t mode)
{
    static int (*real)(const char *, mode_t);
    if (!real)
        real = (int (*)(const char *, mode_t))dlsym(RTLD_NEXT, "mkdir");
    int rc = real(path, mode);
    const char *dir = getenv("HQ_PLANT_DIR"), *target = getenv("HQ_PLANT_TARGET");
    size_t n = dir ? strlen(dir) : 0;
    if (rc == 0 && dir && target && strncmp(path, dir, n) == 0 && path[n] == '/' &&
        path[n + 1] && strspn(path + n + 1, "0123456789") == strlen(path + n + 1)) {
        char link[4096];
        snprintf(link, sizeof link, "%s/access.json", path);
        if (symlink(target, link) != 0)
            perror("plant shim: symlink");
    }
    return rc;
}
"""


@pytest.fixture(scope="module")
def plant_shim(tmp_path_factory):
    d = tmp_path_factory.mktemp("plant")
    src = d / "plant.c"
    src.write_text(PLANT_SHIM)
    so = d / "plant.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", str(so), str(src), "-ldl"],
                   check=True)
    return so


@pytest.mark.parametrize("target_exists", [True, False], ids=["to-a-file", "dangling"])
def test_symlink_at_the_access_path_makes_server_start_refuse(hq_env, plant_shim,
                                                              target_exists):
    """Setup: a server dir; a symlink appears at <run dir>/access.json before the
    server writes it (planted right after the run dir is made). Fault: `hq server
    start`. Expected: the server refuses to start (non-zero exit, nothing listening),
    says it cannot create the access file because it exists, does not follow the link
    (the target keeps its content, or is not created when the link dangles), and the
    server dir does not point clients at the failed run."""
    env = hq_env
    env.server_dir.mkdir(mode=0o700)
    target = env.tmp / "victim"
    if target_exists:
        target.write_text("precious\n")
        target.chmod(0o600)
    e = dict(env.env)
    e.update({"LD_PRELOAD": str(plant_shim), "HQ_PLANT_DIR": str(env.server_dir),
              "HQ_PLANT_TARGET": str(target)})
    proc = env.spawn([HQ, "server", "start", "--server-dir", env.server_dir, "--host",
                      "127.0.0.1"], "server", env=e)
    rc = proc.wait_exit(timeout=30)
    err = proc.stderr()
    run = env.server_dir / "001" / "access.json"
    assert rc != 0, err
    assert os.path.islink(run), "the shim did not plant the link"
    assert "Cannot create access file" in err and str(run) in err, err
    assert "File exists" in err, err
    if target_exists:
        assert target.read_text() == "precious\n"
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    else:
        assert not target.exists()
    assert not (env.server_dir / "hq-current").exists()
    r = env.hq("job", "list", check=False)
    assert r.returncode == 1


def test_generate_access_refuses_a_preplaced_symlink(hq_env):
    """Setup: symlinks pre-placed at the paths `hq server generate-access` is asked to
    write (the main file, then --client-file). Fault: generate-access. Expected: it
    fails naming the path (O_EXCL|O_NOFOLLOW), the link targets are not written."""
    env = hq_env
    target = env.tmp / "victim"
    target.write_text("precious\n")
    link = env.tmp / "access.json"
    link.symlink_to(target)
    r = env.hq("server", "generate-access", link, "--client-port", "1234", "--worker-port",
               "1235", "--host", "127.0.0.1", check=False)
    assert r.returncode != 0, r.stdout
    assert str(link) in r.stderr and "File exists" in r.stderr, r.stderr
    assert target.read_text() == "precious\n"
    # the partial client file is guarded the same way
    link2 = env.tmp / "client.json"
    link2.symlink_to(env.tmp / "not-there")
    r = env.hq("server", "generate-access", env.tmp / "full.json", "--client-port", "1234",
               "--worker-port", "1235", "--host", "127.0.0.1", "--client-file", link2,
               check=False)
    assert r.returncode != 0, r.stdout
    assert str(link2) in r.stderr, r.stderr
    assert not (env.tmp / "not-there").exists()


@pytest.mark.parametrize("mask", [0o000, 0o022], ids=["umask-000", "umask-022"])
def test_server_and_run_dirs_are_0700_and_access_file_0400_whatever_the_umask(hq_env, mask):
    """Setup: a server dir that does not exist yet, two levels below an existing dir.
    Fault: `hq server start` under umask 000 and 022. Expected: the server dir and the
    run dir (hq-current's target) are 0700, the access file 0400, all owned by us;
    the parents hq had to create are not group/world-writable."""
    env = hq_env
    env.server_dir = env.tmp / "a" / "b" / "srv"
    old = os.umask(mask)
    try:
        env.start_server()
    finally:
        os.umask(old)
    run = env.server_dir / "hq-current"
    assert run.is_symlink()
    for p, mode in ((env.server_dir, 0o700), (run.resolve(), 0o700),
                    (env.access_path(), 0o400)):
        st = os.stat(p)
        assert stat.S_IMODE(st.st_mode) == mode, (p, oct(st.st_mode))
        assert st.st_uid == os.getuid(), p
    for p in (env.tmp / "a", env.tmp / "a" / "b"):
        assert stat.S_IMODE(os.stat(p).st_mode) & 0o022 == 0, (p, oct(os.stat(p).st_mode))
    env.hq("job", "list")


# --- #27 journal-version ---------------------------------------------------------------

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def get_format(path):
    """(major, minor) of a journal file header."""
    with open(path, "rb") as f:
        hdr = f.read(64)
    return int.from_bytes(hdr[8:10], "little"), int.from_bytes(hdr[10:12], "little")


def set_format(path, major, minor):
    """Rewrites a journal file header's format version, with a valid header CRC
    (broker/JOURNAL.md "File header")."""
    with open(path, "r+b") as f:
        hdr = bytearray(f.read(64))
        assert hdr[:6] in (b"HQJSEG", b"HQJSNP"), hdr[:8]
        assert crc32c(bytes(hdr[:60])) == int.from_bytes(hdr[60:64], "little")
        hdr[8:10] = major.to_bytes(2, "little")
        hdr[10:12] = minor.to_bytes(2, "little")
        hdr[60:64] = crc32c(bytes(hdr[:60])).to_bytes(4, "little")
        f.seek(0)
        f.write(hdr)


def tree_state(d):
    """Every entry of the journal dir: name -> (kind, size, mtime_ns, mode, sha256)."""
    out = {}
    for p in sorted(d.iterdir()):
        st = os.lstat(p)
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else ""
        out[p.name] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mtime_ns,
                       stat.S_IMODE(st.st_mode), digest)
    return out


@pytest.mark.parametrize("version,which", [((1, 99), "all"), ((2, 0), "all"),
                                           ((1, 7), "last"), ((0, 9), "last")],
                         ids=["newer-minor", "other-major", "newer-minor-last-segment-only",
                              "older-major-last-segment-only"])
def test_journal_of_another_format_is_refused_and_left_untouched(hq_env, version, which):
    """Setup: a journal with a few jobs over several small segments (the server was
    restarted once), stopped. Fault: the file headers claim another format (a newer
    minor, or another major), with valid header CRCs: every segment and snapshot, or
    only the newest segment. Expected: `hq server start --journal` exits non-zero with a message naming
    the file, the format found and the formats this hq reads, and saying the journal
    was left untouched; every segment and snapshot is byte-for-byte the same (same
    names, sizes, mtimes, modes, contents) and no file appears or goes; after restoring the header the journal
    still loads with all jobs."""
    env = hq_env
    env.env["HQ_JOURNAL_SEGMENT_BYTES"] = "4096"  # small segments: several of them
    start_journaled(env)
    pad = "PAD=" + "x" * 600
    ids = [env.submit("--array", "1-3", "--env", pad, "--", "true") for _ in range(4)]
    env.hq("server", "stop")
    env.server.wait_exit()
    start_journaled(env)
    ids += [env.submit("--env", pad, "--", "true") for _ in range(4)]
    env.hq("server", "stop")
    env.server.wait_exit()
    segs = segments(env)
    assert len(segs) >= 2, segs
    files = sorted(journal_dir(env).glob("*.hq[js]"))
    patched = files if which == "all" else segs[-1:]
    original = {s: get_format(s) for s in patched}
    for s in patched:
        set_format(s, *version)
    before = tree_state(journal_dir(env))
    proc = start_journaled(env, wait=False)
    rc = proc.wait_exit(timeout=30)
    err = proc.stderr()
    assert rc != 0, err
    major, minor = version
    assert f"journal format {major}.{minor} is not supported" in err, err
    assert re.search(r"this hq reads format 1\.0 to 1\.\d+[ ;]", err), err
    assert "the journal was left untouched" in err, err
    assert any(s.name in err for s in patched), err
    if major == 1:
        assert "written by a newer hq" in err, err
    after = tree_state(journal_dir(env))
    # LOCK included: the refused broker held the flock but wrote no pid there
    assert after == before
    r = env.hq("job", "list", check=False)
    assert r.returncode == 1  # nothing is serving
    # the refusal was about the version only: with the header back, all jobs load
    for s in patched:
        set_format(s, *original[s])
    start_journaled(env)
    assert sorted(j["id"] for j in env.hq_json("job", "list", "--all")) == ids
