"""A submit the server cannot hold (broker/GUARANTEES.md, case submit-cost): it is
refused before it is journaled, with its size and the limit; a journaled submit that a
restarted server cannot hold stops the start with the record's position, and
`--journal-salvage` (the flag the corruption message names) skips it, saying so, once.
The limit is a real one: RLIMIT_AS set with prlimit, which an ASan build cannot run
under (its shadow memory alone exceeds it), so the two tests under a limit run in the
normal build only."""

import shutil

import pytest

from hqtest import (HQ, job_states, journal_dir, kill9_server, segments,
                    start_journaled)

LIMIT = "1500000000"
PRLIMIT = shutil.which("prlimit") or "prlimit"  # util-linux: on every Debian
# An ASan build cannot start under an address-space limit (its shadow memory alone is
# larger), so these run in the normal stage only: packaging/test.sh deselects the
# marker in the sanitizer stage.
needs_rlimit_as = pytest.mark.rlimit_as


def start_limited(env, *extra, wait=True):
    """The journaled server under a 1.5 GB address-space limit."""
    args = [PRLIMIT, f"--as={LIMIT}", HQ, "server", "start", "--server-dir", env.server_dir,
            "--host", "127.0.0.1", "--journal", journal_dir(env), *extra]
    proc = env.spawn(args, "server")
    env.server = proc
    if wait:
        env.wait_server(proc)
    return proc


@needs_rlimit_as
def test_a_submit_beyond_the_servers_memory_is_refused_before_it_is_journaled(hq_env):
    env = hq_env
    start_limited(env)
    r = env.hq("submit", "--array", "1-100000000", "--stdout", "none", "--stderr", "none",
               "--", "true", check=False)
    assert r.returncode == 1, r.stdout
    assert "The submit of 100000000 tasks needs about 9600.0 MB of server memory (96 bytes " \
           "per task" in r.stderr, r.stderr
    assert "the address-space limit (RLIMIT_AS) is 1500.0 MB" in r.stderr, r.stderr
    assert env.server.poll() is None, env.server.stderr()[-2000:]
    # nothing was journaled and no job id was used up
    assert env.submit("--array", "1-1000", "--", "true") == 1
    kill9_server(env)
    start_limited(env)
    assert list(job_states(env)) == [1]


@needs_rlimit_as
def test_a_journaled_submit_the_server_cannot_hold_stops_the_start_and_salvage_skips_it(
        hq_env):
    env = hq_env
    start_journaled(env)  # no limit: the server holds it
    small = env.submit("--array", "1-10", "--", "true")
    big = env.submit("--array", "1-15000000", "--stdout", "none", "--stderr", "none", "--",
                     "true")
    kill9_server(env)
    proc = start_limited(env, wait=False)
    assert proc.wait_exit() != 0
    err = proc.stderr()
    seg = segments(env)[0].name
    assert f"segment {seg} offset " in err and f"the submit of job {big} cannot be applied: " \
           "The submit of 15000000 tasks needs about 1440.0 MB" in err, err
    assert "start the server with --journal-salvage to skip this record" in err, err
    assert "out of memory" not in err, err
    # the operator's choice: start without it, said in the log
    proc = start_limited(env, "--journal-salvage")
    assert f"skipped the record at segment {seg} offset " in proc.stderr(), proc.stderr()
    assert list(job_states(env)) == [small]
    assert env.submit("--", "true") == big + 1, "the skipped job's id is not given again"
    # once only: the next start needs no flag and meets nothing
    kill9_server(env)
    proc = start_limited(env)
    assert "skipped" not in proc.stderr(), proc.stderr()
    assert list(job_states(env)) == [small, big + 1]


def test_journal_salvage_named_by_the_corruption_message_keeps_the_prefix(hq_env):
    env = hq_env
    start_journaled(env)
    first = env.submit("--", "true")
    for _ in range(4):
        env.submit("--", "true")
    kill9_server(env)
    seg = segments(env)[-1]
    data = bytearray(seg.read_bytes())
    end = len(data.rstrip(b"\0"))
    data[end // 2] ^= 0x10  # valid records follow: corruption, not a torn tail
    seg.write_bytes(bytes(data))
    proc = start_journaled(env, wait=False)
    assert proc.wait_exit() != 0
    assert "--journal-salvage keeps them and drops the rest" in proc.stderr(), proc.stderr()
    proc = start_journaled(env, "--journal-salvage")
    assert "salvage: kept records up to lsn" in proc.stderr(), proc.stderr()
    assert first in job_states(env)
