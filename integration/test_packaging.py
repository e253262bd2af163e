"""The packaged hq: packaging/static.sh's self-contained binary needs at most the C
library (ldd: fully static by default, or only libc/libm/ld-linux) and runs a broker,
a worker and an array in a bare root that holds nothing but the C library it is linked
with, if any (with /proc and /sys bind-mounted, which hwloc reads), over loopback;
packaging/release.sh's tarball holds the binary, its two links, the man pages, the
completions and the README, and its Spack and EasyBuild recipes name the tarball's
version, file name and checksum.

packaging/test.sh runs packaging/release.sh (which runs static.sh) and sets
$HQ_STATIC_BUILD and $HQ_RELEASE_DIR; the tests then fail if their files are missing.
Without them, the binary is <repo>/build-static/hq (skipped if not built) and the
release files are made by release.sh in a temp dir. Needs root (chroot, mount
namespaces). Runs once, in the normal stage (marker `packaging`)."""

import hashlib
import os
import re
import shutil
import signal
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from hqtest import REPO, wait_until

pytestmark = [pytest.mark.packaging, pytest.mark.root]

# The parts of the C library ldd may list; anything else is a dependency hq must not need.
C_LIBRARY = ("linux-vdso.so", "libc.so", "libm.so", "ld-linux-x86-64.so")


@pytest.fixture(scope="module")
def static_build():
    build = os.environ.get("HQ_STATIC_BUILD")
    path = Path(build or REPO / "build-static")
    if not (path / "hq").exists():
        if build:
            pytest.fail(f"{path}/hq missing: packaging/static.sh did not build it")
        pytest.skip(f"{path}/hq not built (run packaging/static.sh)")
    if os.geteuid() != 0:
        pytest.skip("needs root (chroot and mount namespaces)")
    return path


@pytest.fixture(scope="module")
def static_hq(static_build):
    return static_build / "hq"


@pytest.fixture(scope="module")
def release_dir(static_build, tmp_path_factory):
    given = os.environ.get("HQ_RELEASE_DIR")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("release")
    r = subprocess.run(["bash", str(REPO / "packaging" / "release.sh")], capture_output=True,
                       text=True, env={**os.environ, "HQ_STATIC_BUILD": str(static_build),
                                       "HQ_RELEASE_DIR": str(out)}, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return out


def _version():
    m = re.search(r"^project\(hq VERSION ([0-9.]+)", (REPO / "CMakeLists.txt").read_text(), re.M)
    return m.group(1)


@pytest.fixture(scope="module")
def tarball(release_dir):
    path = release_dir / f"hq-{_version()}-linux-x86_64.tar.gz"
    assert path.exists(), f"packaging/release.sh made no {path.name} in {release_dir}"
    return path


def _ldd(binary):
    r = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    if "not a dynamic executable" in r.stdout + r.stderr:
        return {}
    assert r.returncode == 0, r.stderr
    libs = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if not parts:
            continue
        name = parts[0]
        path = parts[2] if len(parts) > 2 and parts[1] == "=>" else (name if name.startswith("/") else None)
        libs[name] = path
    return libs


def test_ldd_lists_only_the_c_library(static_hq):
    libs = _ldd(static_hq)
    others = [n for n in libs if not any(Path(n).name.startswith(c) for c in C_LIBRARY)]
    assert others == [], f"hq needs more than the C library: {others}"


# A name only the root's /etc/hosts knows: the client and the worker reach the broker
# through it, so name resolution of the (by default fully static) hq is exercised.
HOST_IN_ROOT = "hq-broker-host"


def _bare_root(root, binary):
    """A root holding the C library the binary is linked with, hq and its two links,
    /etc/hosts, /tmp and the device nodes every machine has."""
    for name, path in _ldd(binary).items():
        if path and path.startswith("/"):
            dest = root / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.realpath(path), dest)
    (root / "bin").mkdir()
    shutil.copy2(binary, root / "bin" / "hq")
    for link in ("hq-broker", "hq-worker"):
        os.symlink("hq", root / "bin" / link)
    for d in ("etc", "proc", "sys", "dev", "srv"):
        (root / d).mkdir(exist_ok=True)
    (root / "tmp").mkdir(mode=0o1777)
    os.chmod(root / "tmp", 0o1777)
    (root / "etc" / "hosts").write_text(f"127.0.0.1 localhost {HOST_IN_ROOT}\n")
    for name, minor in (("null", 3), ("zero", 5), ("urandom", 9)):
        os.mknod(root / "dev" / name, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
        os.chmod(root / "dev" / name, 0o666)


class _Chroot:
    """Runs programs inside the root, each in its own mount namespace where /proc and
    /sys are bind-mounted (the mounts go away with the process)."""

    ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp"}
    SCRIPT = 'mount --bind /proc "$0/proc" && mount --bind /sys "$0/sys" && exec chroot "$0" "$@"'

    def __init__(self, root):
        self.root = root
        self.procs = []

    def argv(self, *args):
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", self.SCRIPT,
                str(self.root), *map(str, args)]

    def spawn(self, *args, log):
        p = subprocess.Popen(self.argv(*args), env=self.ENV, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def run(self, *args, timeout=30):
        return subprocess.run(self.argv(*args), env=self.ENV, capture_output=True, text=True,
                              timeout=timeout)

    def stop_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_broker_worker_and_array_in_a_bare_root(tarball, tmp_path):
    """The tarball's hq, installed in a root holding only the C library."""
    with tarfile.open(tarball) as t:
        t.extractall(tmp_path / "unpacked")
    binary = tmp_path / "unpacked" / tarball.name[: -len(".tar.gz")] / "bin" / "hq"
    root = tmp_path / "root"
    root.mkdir()
    _bare_root(root, binary)
    ch = _Chroot(root)
    hq = ["/bin/hq", "--server-dir", "/srv/hq"]
    try:
        with open(tmp_path / "broker.log", "w") as blog, open(tmp_path / "worker.log", "w") as wlog:
            broker = ch.spawn("/bin/hq-broker", "--server-dir", "/srv/hq", "--host", HOST_IN_ROOT,
                              log=blog)
            wait_until(lambda: ch.run(*hq, "server", "info").returncode == 0,
                       what="the broker in the bare root")
            worker = ch.spawn("/bin/hq-worker", "--server-dir", "/srv/hq", "--cpus", "2",
                              "--hostname", "bare-root", log=wlog)
            r = ch.run(*hq, "submit", "--array", "1-4", "--", "/bin/hq", "--version")
            assert r.returncode == 0, r.stdout + r.stderr
            r = ch.run(*hq, "job", "wait", "1", timeout=60)
            assert r.returncode == 0, r.stdout + r.stderr + (tmp_path / "worker.log").read_text()
            r = ch.run(*hq, "job", "cat", "1", "stdout")
            assert r.returncode == 0, r.stderr
            assert r.stdout.count("hq ") == 4, r.stdout
            r = ch.run(*hq, "server", "stop")
            assert r.returncode == 0, r.stderr
            assert broker.wait(timeout=20) == 0, (tmp_path / "broker.log").read_text()
            worker.wait(timeout=20)
        assert "Worker 1 registered from bare-root" in (tmp_path / "broker.log").read_text()
    finally:
        ch.stop_all()


TARBALL_FILES = ("bin/hq", "bin/hq-broker", "bin/hq-worker", "README.md", "LICENSE",
                 "share/man/man1/hq.1",
                 "share/man/man1/hq-submit.1", "share/man/man1/hq-job.1",
                 "share/bash-completion/completions/hq", "share/zsh/site-functions/_hq",
                 "share/fish/vendor_completions.d/hq.fish")


def test_tarball_holds_the_binary_links_man_pages_completions_and_readme(tarball, tmp_path):
    top = tarball.name[: -len(".tar.gz")]
    with tarfile.open(tarball) as t:
        members = {m.name: m for m in t.getmembers()}
        for f in TARBALL_FILES:
            assert f"{top}/{f}" in members, f"{f} missing from {tarball.name}"
        for link in ("hq-broker", "hq-worker"):
            m = members[f"{top}/bin/{link}"]
            assert m.issym() and m.linkname == "hq", f"bin/{link} is not a link to hq"
        assert all(m.uid == 0 and m.gid == 0 for m in members.values())
        t.extractall(tmp_path)
    # A user without root unpacks it anywhere (e.g. ~/bin): the links find hq beside them.
    for prog in ("hq", "hq-broker", "hq-worker"):
        r = subprocess.run([str(tmp_path / top / "bin" / prog), "--version"],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode == 0 and r.stdout.startswith(f"{prog} "), (prog, r.stdout, r.stderr)


def test_spack_and_easybuild_recipes_name_the_tarball(release_dir, tarball):
    version = _version()
    sha256 = hashlib.sha256(tarball.read_bytes()).hexdigest()

    spack = (release_dir / "package.py").read_text()
    m = re.search(r'^\s*url = "([^"]+)"', spack, re.M)
    assert m and m.group(1).rsplit("/", 1)[1] == tarball.name, spack
    versions = re.findall(r'version\("([^"]+)", sha256="([0-9a-f]{64})"', spack)
    assert versions == [(version, sha256)], versions
    compile(spack, "package.py", "exec")

    eb_path = release_dir / f"hq-{version}.eb"
    eb = {"SYSTEM": {"name": "system", "version": "system"}}
    exec(compile(eb_path.read_text(), eb_path.name, "exec"), eb)
    assert eb["name"] == "hq" and eb["version"] == version
    assert eb["sources"] == [tarball.name.replace(version, "%(version)s")] or \
        eb["sources"] == [tarball.name], eb["sources"]
    assert eb["checksums"] == [sha256]
    assert "bin/hq" in eb["sanity_check_paths"]["files"]


def test_deb_installs_and_runs_the_demo_in_a_clean_debian_root(release_dir, tmp_path):
    """dpkg -i of the .deb in a clean minbase root of this Debian release (made once by
    packaging/debootstrap-root.sh and cached; each run works on an overlay of it),
    then packaging/demo.sh against the installed hq."""
    debs = sorted(release_dir.glob(f"hq_{_version()}_*.deb"))
    assert debs, f"packaging/release.sh made no .deb in {release_dir}"
    r = subprocess.run(["bash", str(REPO / "packaging" / "debootstrap-root.sh")],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    lower = r.stdout.strip()
    upper, work, merged = (tmp_path / d for d in ("upper", "work", "merged"))
    for d in (upper, work, merged):
        d.mkdir()
    shutil.copy2(debs[0], upper / "hq.deb")
    shutil.copy2(REPO / "packaging" / "demo.sh", upper / "demo.sh")
    inside = ("dpkg -i /hq.deb >/dev/null && dpkg -L hq && hq-broker --version && "
              "HQ_DEMO_HQ=/usr/bin/hq bash /demo.sh")
    script = ('mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4" && '
              'mount --bind /proc "$4/proc" && mount --bind /sys "$4/sys" && '
              f'exec chroot "$4" /bin/sh -c \'{inside}\'')
    p = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                          "sh", lower, str(upper), str(work), str(merged)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"},
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        pytest.fail("the demo in the debootstrap root timed out:\n" + out[-3000:])
    assert p.returncode == 0, out[-3000:]
    for path in ("/usr/bin/hq", "/usr/bin/hq-broker", "/usr/bin/hq-worker",
                 "/usr/share/man/man1/hq.1", "/usr/share/bash-completion/completions/hq",
                 "/usr/share/zsh/site-functions/_hq", "/usr/share/fish/vendor_completions.d/hq.fish",
                 "/usr/share/doc/hq/copyright"):
        assert path in out.splitlines(), f"the .deb does not install {path}"
    assert "hq-broker " in out
    for task in range(1, 9):
        assert f"task {task} of job 1 ran on" in out, out[-3000:]
