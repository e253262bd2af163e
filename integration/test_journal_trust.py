"""Whom the journal trusts (broker/GUARANTEES.md, case journal-dir-trust): a journal
directory or file that another user owns or can write is refused with the path, the
owner or mode and the fix; LOCK is never followed through a symbolic link; one journal
has one server uid, so an access file of another server is refused. The cases about
another user run that user as `nobody` (root tests, as the access-file ones)."""

import json
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from hqtest import HQ, job_states, journal_dir, kill9_server, start_journaled, wait_until

SETPRIV = shutil.which("setpriv")
AS_NOBODY = [SETPRIV or "setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
needs_root = pytest.mark.skipif(os.geteuid() != 0 or not SETPRIV,
                                reason="needs root and setpriv")


@pytest.fixture
def sticky_tmp():
    """A 1777 directory like /tmp, that every user can create entries in."""
    d = tempfile.mkdtemp(prefix="hq-it-trust-")
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def as_nobody(*cmd):
    subprocess.run(AS_NOBODY + list(cmd), check=True, cwd="/", capture_output=True)


def start_on(env, jdir, name="server"):
    return env.spawn([HQ, "server", "start", "--server-dir", env.server_dir, "--host",
                      "127.0.0.1", "--journal", jdir], name)


@pytest.mark.root
@needs_root
def test_journal_dir_planted_by_another_user_is_refused_and_its_lock_link_not_followed(
        hq_env, sticky_tmp):
    """Setup: nobody pre-creates hq-journal in a 1777 directory with LOCK a symbolic link
    to a file of root's. Expected: root's broker refuses the directory, naming it, its
    owner and the fix, and the linked file is untouched."""
    victim = hq_env.tmp / "precious.txt"
    victim.write_text("do not overwrite\n")
    jdir = os.path.join(sticky_tmp, "hq-journal")
    as_nobody("mkdir", "-m", "0755", jdir)
    as_nobody("ln", "-s", str(victim), os.path.join(jdir, "LOCK"))
    proc = start_on(hq_env, jdir)
    assert proc.wait_exit() != 0
    err = proc.stderr()
    assert f"journal directory {jdir} is owned by uid {pwd_uid('nobody')} (nobody), not by " \
           "uid 0 (root) who runs this broker" in err, err
    assert "use a directory of your own" in err, err
    assert victim.read_text() == "do not overwrite\n"


@pytest.mark.root
@needs_root
def test_lock_link_in_an_own_journal_dir_is_not_followed(hq_env):
    """Even in the user's own directory, LOCK as a link is refused (never opened)."""
    victim = hq_env.tmp / "precious.txt"
    victim.write_text("do not overwrite\n")
    jdir = hq_env.tmp / "own-journal"
    jdir.mkdir(mode=0o700)
    os.symlink(victim, jdir / "LOCK")
    proc = start_on(hq_env, jdir)
    assert proc.wait_exit() != 0
    assert f"journal file {jdir}/LOCK is a symbolic link" in proc.stderr(), proc.stderr()
    assert victim.read_text() == "do not overwrite\n"


def pwd_uid(name):
    import pwd
    return pwd.getpwnam(name).pw_uid


@pytest.mark.root
@needs_root
def test_segments_written_by_another_users_broker_are_refused(hq_env, sticky_tmp):
    """Setup: nobody runs a journaled broker and submits a job; its segment is dropped
    into root's own journal directory (as a group-writable project directory would
    allow). Expected: root's broker refuses the foreign segment, naming the file and
    its owner, and never restores nobody's job."""
    theirs = os.path.join(sticky_tmp, "theirs")
    as_nobody("mkdir", "-m", "0700", theirs)
    srv = os.path.join(sticky_tmp, "srv")
    as_nobody("mkdir", "-m", "0700", srv)
    env = dict(hq_env.env, HOME=sticky_tmp)
    broker = hq_env.spawn(AS_NOBODY + [HQ, "server", "start", "--server-dir", srv, "--host",
                                       "127.0.0.1", "--journal", theirs], "nobody-server",
                          env=env, cwd="/")
    wait_until(lambda: hq_env.hq("server", "info", server_dir=srv, prefix=AS_NOBODY,
                                           env=env, cwd="/", check=False).returncode == 0,
                         what="nobody's server")
    hq_env.hq("submit", "--", "touch", "/tmp/pwned-by-nobody", server_dir=srv,
              prefix=AS_NOBODY, env=env, cwd="/")
    broker.popen.kill()
    broker.popen.wait()
    mine = hq_env.tmp / "mine"
    mine.mkdir(mode=0o700)
    for name in os.listdir(theirs):
        if name.startswith("seg-"):
            shutil.copy2(os.path.join(theirs, name), mine / name)
            os.chown(mine / name, pwd_uid("nobody"), -1)
    proc = start_on(hq_env, mine)
    assert proc.wait_exit() != 0
    err = proc.stderr()
    assert f"journal file {mine}/seg-" in err and "is owned by uid" in err and "(nobody)" in err, \
        err


def test_group_or_world_writable_journal_dir_is_refused_with_the_fix(hq_env):
    jdir = hq_env.tmp / "shared-journal"
    jdir.mkdir()
    os.chmod(jdir, 0o770)
    proc = start_on(hq_env, jdir)
    assert proc.wait_exit() != 0
    err = proc.stderr()
    assert f"journal directory {jdir} has mode 0770: other users can write into it" in err, err
    assert f"chmod go-w '{jdir}'" in err, err
    os.chmod(jdir, 0o700)
    start_on(hq_env, jdir, "server-ok")
    wait_until(lambda: hq_env.hq("server", "info", check=False).returncode == 0,
                         what="the server on the fixed directory")


def test_access_file_of_another_server_is_refused_on_a_journal_naming_both_uids(hq_env):
    """One journal has one server uid: restarting a journal with --access-file of another
    server is refused (it used to start with the journal's uid, silently)."""
    env = hq_env
    start_journaled(env)
    jid = env.submit("--", "true")
    uid = env.hq_json("server", "info")["server_uid"]
    kill9_server(env)
    other = env.tmp / "other-srv"
    other.mkdir(mode=0o700)
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(str(s.getsockname()[1]))
    gen = env.hq("server", "generate-access", str(other / "access.json"), "--client-port",
                 ports[0], "--worker-port", ports[1], "--host", "127.0.0.1", check=False)
    assert gen.returncode == 0, gen.stderr
    other_uid = json.loads((other / "access.json").read_text())["server_uid"]
    assert other_uid != uid
    proc = env.start_server("--journal", journal_dir(env), "--access-file",
                            other / "access.json", wait=False)
    assert proc.wait_exit() != 0
    err = proc.stderr()
    assert f"the access file {other / 'access.json'} has server uid {other_uid} but this " \
           f"journal belongs to server uid {uid}" in err, err
    start_journaled(env)
    assert env.hq_json("server", "info")["server_uid"] == uid
    assert jid in job_states(env)
