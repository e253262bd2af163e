"""Authentication, role separation, access-file permissions and hostile frames
(broker/GUARANTEES.md, G6 (hostile or buggy input) and G7 (authentication and
confidentiality); cases role-separation and access-file-perms). Each test ends by
checking the broker still serves."""

import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from hqtest import (HQ, assert_still_serves, base_env, fake_dir, load_access, rawframes,
                    rawpeer, wait_until)

SETPRIV = shutil.which("setpriv")
AS_NOBODY = [SETPRIV or "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


# --- authentication ------------------------------------------------------------------

def test_wrong_client_key_is_refused(cluster):
    data = load_access(cluster)
    data["client"]["secret_key"] = os.urandom(32).hex()
    bad = fake_dir(cluster, "wrong-key", data)
    results = cluster.hq_concurrently([(bad, "job", "list"),
                                       (bad, "submit", "--", "touch", "pwned")])
    for r in results:
        assert r.returncode == 1, (r.args, r.stdout, r.stderr)
        # the client reads the refusal from the handshake instead of timing out
        assert "refused the connection" in r.stderr, r.stderr
        assert "Authentication failed" in r.stderr, r.stderr
    assert cluster.hq_json("job", "list", "--all") == []
    assert cluster.server.poll() is None
    assert_still_serves(cluster)
    assert not (cluster.work / "pwned").exists()


def test_wrong_client_key_fails_the_curve_handshake(cluster):
    data = load_access(cluster)
    data["client"]["secret_key"] = os.urandom(32).hex()
    bad = fake_dir(cluster, "wrong-key", data)
    hs, frames = rawpeer(bad / "access.json", "client", "valid:server-info")
    assert hs != "ok"
    assert len(frames) == 1 and frames[0].endswith("no reply"), frames
    # the genuine file gets through the same way (positive control)
    hs, frames = rawpeer(cluster.access_path(), "client", "valid:server-info")
    assert hs == "ok"
    assert "reply" in frames[0] and "type=40" in frames[0], frames


def test_worker_secret_cannot_act_as_client(cluster):
    data = load_access(cluster)
    data["client"]["secret_key"] = data["worker"]["secret_key"]
    d1 = fake_dir(cluster, "worker-secret", data)
    # the same, pointed at the worker socket where the worker key is valid
    data2 = load_access(cluster)
    data2["client"] = dict(data2["worker"])
    d2 = fake_dir(cluster, "worker-socket", data2)
    results = cluster.hq_concurrently([(d1, "submit", "--", "touch", "pwned"),
                                       (d2, "submit", "--", "touch", "pwned"),
                                       (d2, "job", "list")])
    for r in results:
        assert r.returncode == 1, (r.args, r.stdout, r.stderr)
    assert cluster.hq_json("job", "list", "--all") == []
    assert not (cluster.work / "pwned").exists()
    assert_still_serves(cluster)


def test_worker_socket_answers_no_client_request(cluster):
    data = load_access(cluster)
    data["client"] = dict(data["worker"])
    d = fake_dir(cluster, "worker-socket", data)
    hs, frames = rawpeer(d / "access.json", "client", "valid:server-info", "valid:job-summary")
    assert hs == "ok"  # the worker key is valid on the worker socket
    for f in frames:
        assert "type=40" not in f, frames  # never a success REPLY
    # case role-separation: rejected with a typed error (ERROR, code ROLE)
    assert "type=41" in frames[0], frames
    assert_still_serves(cluster)


def test_client_secret_cannot_register_a_worker(cluster):
    data = load_access(cluster)
    data["worker"] = dict(data["client"])
    d = fake_dir(cluster, "client-as-worker", data)
    proc = cluster.spawn([HQ, "worker", "start", "--server-dir", d, "--cpus", "1",
                          "--hostname", "intruder", "--heartbeat", "1s"], "worker-intruder")
    # a legitimate worker registers meanwhile, so registrations are being processed
    cluster.start_worker(cpus=1, hostname="legit")
    try:
        rc = proc.wait_exit(timeout=20)
    except AssertionError:
        rc = None  # still retrying is acceptable; being registered is not
    assert rc != 0
    names = [x["configuration"]["hostname"] for x in cluster.worker_list(all_=True)]
    assert "intruder" not in names


def test_worker_with_a_wrong_key_says_so_at_once(cluster):
    """A worker whose access file has another worker secret than the server's fails
    within seconds (not after the 15 s registration timeout) and says the server
    refused its key, rather than calling the server unreachable."""
    data = load_access(cluster)
    secret = data["worker"]["secret_key"]
    data["worker"]["secret_key"] = ("1" if secret[0] != "1" else "2") + secret[1:]
    d = fake_dir(cluster, "wrong-worker-key", data)
    proc = cluster.spawn([HQ, "worker", "start", "--server-dir", d, "--cpus", "1",
                          "--hostname", "wrongkey"], "worker-wrongkey")
    rc = proc.wait_exit(timeout=10)
    err = proc.stderr()
    assert rc == 1, err
    assert "refused the worker's connection" in err, err
    assert "worker key is not accepted by this server" in err, err
    assert "unreachable" not in err, err
    names = [x["configuration"]["hostname"] for x in cluster.worker_list(all_=True)]
    assert "wrongkey" not in names


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


# --- permissions -----------------------------------------------------------------------

@pytest.fixture
def shared_tmp():
    """A dir under /tmp that another uid can traverse (pytest's tmp is 0700)."""
    d = tempfile.mkdtemp(prefix="hq-it-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


needs_root = pytest.mark.skipif(os.geteuid() != 0 or not SETPRIV,
                                reason="needs root and setpriv")


def nobody_ids():
    import pwd
    import grp
    return pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid


def nobody_env(home):
    env = base_env()
    env["HOME"] = str(home)
    return env


def _nobody_access_file(cluster, shared_tmp, *parts, mode=0o644):
    """Copies the cluster's access file to shared_tmp/parts.../access.json, every new
    directory and the file owned by nobody; returns (directory, file)."""
    uid, gid = nobody_ids()
    d = shared_tmp
    for p in parts:
        d = os.path.join(d, p)
        os.mkdir(d, 0o755)
        os.chown(d, uid, gid)
    acc = os.path.join(d, "access.json")
    shutil.copyfile(cluster.access_path(), acc)
    os.chown(acc, uid, gid)
    os.chmod(acc, mode)
    return d, acc


def _nobody_worker(cluster, d, name):
    return cluster.spawn(AS_NOBODY + [HQ, "worker", "start", "--server-dir", d, "--cpus", "1",
                                      "--hostname", name, "--work-dir",
                                      os.path.join(d, "w-" + name)],
                         name, env=nobody_env(d), cwd=d)


@pytest.mark.root
@needs_root
def test_group_readable_access_file_is_refused_when_others_can_reach_it(cluster, shared_tmp):
    """Setup: nobody's access file in shared_tmp/open (0755 like /tmp's parents).
    Expected: 0400 works; 0644 is refused by hq and the worker, naming the path and the
    fix, because another user can walk to it and read it."""
    d, acc = _nobody_access_file(cluster, shared_tmp, "open", mode=0o400)
    env = nobody_env(d)
    # positive control: owned by nobody, 0400 -> nobody's hq connects
    r = cluster.hq("job", "list", server_dir=d, prefix=AS_NOBODY, env=env, cwd=d,
                   check=False)
    assert r.returncode == 0, r.stderr
    assert "WARN" not in r.stderr, r.stderr
    os.chmod(acc, 0o644)
    r = cluster.hq("job", "list", server_dir=d, prefix=AS_NOBODY, env=env, cwd=d,
                   check=False)
    assert r.returncode == 1
    assert f"Access file '{acc}' has permissions 0644 and every directory above it lets " \
           "other users through" in r.stderr, r.stderr
    assert f"chmod 600 '{acc}'" in r.stderr, r.stderr
    proc = _nobody_worker(cluster, d, "nobody-w")
    assert proc.wait_exit(timeout=30) != 0
    assert "0644" in proc.stderr(), proc.stderr()
    names = [x["configuration"]["hostname"] for x in cluster.worker_list(all_=True)]
    assert "nobody-w" not in names
    assert_still_serves(cluster)


@pytest.mark.root
@needs_root
def test_readable_access_file_nobody_else_can_reach_is_used_with_one_warning(cluster,
                                                                             shared_tmp):
    """Setup: nobody's 0644 access file in private/open, private 0700 (as a container's
    or an operator's private directory). Fault: none, the mode only. Expected: hq and the
    worker use it, warning once with the path and the closed directory; another user
    really cannot read it; opening the private directory turns it into a refusal."""
    d, acc = _nobody_access_file(cluster, shared_tmp, "private", "open")
    private = os.path.dirname(d)
    os.chmod(private, 0o700)
    env = nobody_env(d)
    # another unprivileged user cannot read it (root could, but root reads anything)
    r = subprocess.run([SETPRIV, "--reuid=daemon", "--regid=daemon", "--clear-groups",
                        "cat", acc], capture_output=True, text=True, env=env, cwd="/")
    assert r.returncode != 0 and "Permission denied" in r.stderr, (r.stdout, r.stderr)
    r = cluster.hq("job", "list", server_dir=d, prefix=AS_NOBODY, env=env, cwd=d,
                   check=False)
    assert r.returncode == 0, r.stderr
    warning = (f"Access file '{acc}' has permissions 0644, but no other user can reach it "
               f"(directory '{private}' is closed to them); using it")
    assert r.stderr.count(warning) == 1, r.stderr
    assert r.stderr.count("WARN") == 1, r.stderr

    w = _nobody_worker(cluster, d, "nobody-private")
    wait_until(lambda: w.poll() is None and "nobody-private" in
               [x["configuration"]["hostname"] for x in cluster.worker_list()],
               what="the worker with the private access file to register")
    assert w.stderr().count(warning) == 1, w.stderr()
    w.popen.kill()
    w.wait_exit()

    os.chmod(private, 0o755)
    r = cluster.hq("job", "list", server_dir=d, prefix=AS_NOBODY, env=env, cwd=d,
                   check=False)
    assert r.returncode == 1 and "refusing to use it" in r.stderr, r.stderr
    assert_still_serves(cluster)


@pytest.mark.root
@needs_root
def test_access_file_owned_by_another_uid_is_refused(cluster, shared_tmp):
    uid, gid = nobody_ids()
    d = os.path.join(shared_tmp, "foreign")
    os.mkdir(d, 0o700)
    acc = os.path.join(d, "access.json")
    shutil.copyfile(cluster.access_path(), acc)
    os.chmod(acc, 0o400)
    cluster.hq("job", "list", server_dir=d)  # same file owned by us works
    os.chown(acc, uid, gid)
    r = cluster.hq("job", "list", server_dir=d, check=False)
    assert r.returncode == 1, r.stdout


@pytest.mark.root
@needs_root
def test_server_dir_is_not_readable_by_another_uid(hq_env, shared_tmp):
    hq_env.server_dir = Path(shared_tmp) / "srv"
    hq_env.start_server()
    run_dir = os.path.realpath(hq_env.server_dir / "hq-current")
    env = nobody_env(shared_tmp)
    r = subprocess.run(AS_NOBODY + ["cat", os.path.join(run_dir, "access.json")],
                       capture_output=True, text=True, env=env)
    assert r.returncode != 0 and "Permission denied" in r.stderr
    r = subprocess.run(AS_NOBODY + ["ls", str(hq_env.server_dir)],
                       capture_output=True, text=True, env=env)
    assert r.returncode != 0
    r = hq_env.hq("job", "list", prefix=AS_NOBODY, env=env, cwd=shared_tmp, check=False)
    assert r.returncode == 1
    hq_env.hq("job", "list")


def test_access_file_mode_is_0400_even_with_umask_000(hq_env):
    old = os.umask(0)
    try:
        hq_env.start_server()
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(hq_env.access_path()).st_mode) == 0o400
    assert stat.S_IMODE(os.stat(hq_env.server_dir).st_mode) == 0o700


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


# --- hostile frames --------------------------------------------------------------------

@pytest.mark.parametrize("which", ["client_port", "worker_port"])
def test_raw_tcp_garbage_leaves_broker_serving(cluster, which):
    port = cluster.server_info()[which]
    for kind in rawframes.KINDS:
        try:
            rawframes.send_kind("127.0.0.1", port, kind)
        except OSError:
            pass  # the broker may reset the connection; that is fine
    assert cluster.server.poll() is None
    assert_still_serves(cluster)
    assert len(cluster.worker_list()) == 1


def test_stalled_handshakes_do_not_block_clients(cluster):
    port = cluster.server_info()["client_port"]
    socks = []
    try:
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(rawframes.GREETING_SIG[:3])
            socks.append(s)
        t0 = time.monotonic()
        cluster.hq("job", "list")
        assert time.monotonic() - t0 < 5
    finally:
        for s in socks:
            s.close()
    assert_still_serves(cluster)


CLIENT_GARBAGE = [
    "random:1000",
    "hex:ddffffffff",
    "hex:4851",                       # truncated header
    "hex:48510103",                   # header cut after the type
    "header:3:ddffffffff",            # SUBMIT, str32 claiming 4 GiB
    "header:3:dfffffffff",            # SUBMIT, map32 with 4G entries
    "header:3:dd04000000",
    "header:3:db7fffffff",
    "header:3:" + "91" * 1000,        # 1000-deep nesting
    "header:4:c1",                    # JOB_LIST, never-used msgpack byte
    "header:5:90",                    # JOB_INFO with an empty array
    "header:200",                     # unknown type
    "header:40",                      # a REPLY sent by a client
    "header:60:90",                   # REGISTER on the client socket
    "hex:" + "4851" + "07" + "01" + "00" * 36,  # bad protocol version
    "zeros:20000000",                 # 20 MB of zeros
]


def test_authenticated_client_garbage_frames(cluster):
    hs, frames = rawpeer(cluster.access_path(), "client", "valid:server-info",
                         *CLIENT_GARBAGE)
    assert hs == "ok"
    assert "type=40" in frames[0], frames  # the peer is authenticated
    for f in frames[1:]:
        assert "type=40" not in f, frames  # no garbage frame is answered with success
    assert cluster.server.poll() is None
    assert_still_serves(cluster)


WORKER_GARBAGE = [
    "random:1000",
    "hex:ddffffffff",
    "header:60:dfffffffff",           # REGISTER, map32 with 4G entries
    "header:60:" + "91" * 1000,
    "header:61:ddffffffff",           # RESULTS
    "header:61:93000000",             # RESULTS with wrong field types
    "header:62",                      # HEARTBEAT without registration
    "header:63:91ce000000ff",         # GOODBYE from an unregistered peer
    "header:81",                      # ASSIGN sent to the broker
    "header:3:90",                    # SUBMIT on the worker socket
    "zeros:70000000",                 # over the 64 MiB worker limit
]


def test_authenticated_worker_garbage_frames(cluster):
    hs, frames = rawpeer(cluster.access_path(), "worker", *WORKER_GARBAGE, timeout_ms=300)
    assert hs == "ok"
    assert len(frames) == len(WORKER_GARBAGE)
    assert cluster.server.poll() is None
    # the genuine worker is still there and runs tasks; new workers can register
    assert [x["id"] for x in cluster.worker_list()] == [cluster.w1.id]
    assert_still_serves(cluster)
    cluster.start_worker(cpus=1)
    assert len(cluster.worker_list()) == 2


def test_many_garbage_frames_from_one_client(cluster):
    frames = ["random:%d" % (16 + i * 7) for i in range(200)]
    hs, out = rawpeer(cluster.access_path(), "client", *frames, timeout_ms=50)
    assert hs == "ok"
    assert cluster.server.poll() is None
    assert_still_serves(cluster)


def test_hq_refuses_to_connect_to_a_server_with_different_keys(cluster):
    """An access file whose broker key does not match (e.g. left over from another
    run) must not reach the running broker."""
    data = load_access(cluster)
    data["client"]["secret_key"] = os.urandom(32).hex()
    data["worker"]["secret_key"] = os.urandom(32).hex()
    d = fake_dir(cluster, "other-keys", data)
    proc = cluster.spawn([HQ, "worker", "start", "--server-dir", d, "--cpus", "1",
                          "--hostname", "stranger"], "worker-stranger")
    cluster.start_worker(cpus=1, hostname="legit")
    try:
        proc.wait_exit(timeout=20)
    except AssertionError:
        pass
    names = [x["configuration"]["hostname"] for x in cluster.worker_list(all_=True)]
    assert "stranger" not in names


# --- refused handshakes are logged ------------------------------------------------------

def refused_lines(env, socket_name):
    return [line for line in env.server.stderr().splitlines()
            if f"Refused a handshake on the {socket_name} socket from 127.0.0.1:" in line]


def test_a_wrong_key_handshake_is_logged_with_peer_socket_and_reason(cluster):
    """Setup: a server. Fault: a client and a worker whose secrets are wrong (their
    CURVE handshake fails before the ZAP handler is asked). Expected: one log line
    each, naming the socket, the peer's address and the reason."""
    data = load_access(cluster)
    data["client"]["secret_key"] = os.urandom(32).hex()
    data["worker"]["secret_key"] = os.urandom(32).hex()
    bad = fake_dir(cluster, "wrong-keys", data)
    hs, _ = rawpeer(bad / "access.json", "client", "valid:server-info")
    assert hs != "ok"
    hs, _ = rawpeer(bad / "access.json", "worker", "valid:heartbeat")
    assert hs != "ok"
    for name in ("client", "worker"):
        wait_until(lambda: any("wrong key: the CURVE handshake failed" in line
                               for line in refused_lines(cluster, name)), 10,
                   f"the refused {name} handshake to be logged")
    assert_still_serves(cluster)


def test_a_flood_of_refused_handshakes_logs_at_most_twenty_lines_a_minute(cluster):
    """Setup: a server. Fault: 200 connections to the client socket that offer the
    NULL mechanism to a CURVE socket and are refused at once. Expected: the first
    refusals are logged, then no more than 20 lines in the minute, so a flood cannot
    fill the disk; the server keeps serving."""
    port = cluster.server_info()["client_port"]
    # The fixture's server may have logged refusals of earlier tests, and its
    # one-minute window may have begun before this flood: count this flood's lines
    # only, against 20 for each window the flood can touch (a slow machine may
    # stretch it across a window's end), which is still far below one per refusal.
    before = len(refused_lines(cluster, "client"))
    started = time.monotonic()
    socks = []
    try:
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(rawframes.greeting(b"NULL"))
            socks.append(s)

        def all_closed():
            n = 0
            for s in socks:
                s.settimeout(0.01)
                try:
                    if s.recv(4096) == b"":
                        n += 1
                except socket.timeout:
                    pass
                except OSError:
                    n += 1
            return n == len(socks)

        wait_until(all_closed, 30, "the server to refuse every handshake")
    finally:
        for s in socks:
            s.close()
    lines = wait_until(lambda: refused_lines(cluster, "client")[before:], 10,
                       "a refusal to be logged")
    windows = int((time.monotonic() - started) // 60) + 2
    # libzmq names the mismatch, or, when the refusal and the peer's reads cross on a
    # loaded machine, only the reset that ended the connection: both are reasons.
    assert all("security mechanism mismatch" in line or "ended during the handshake" in line
               for line in lines), lines
    assert 1 <= len(lines) <= 20 * windows < 200, (len(lines), windows)
    assert_still_serves(cluster)

