"""Dispatch while the journal cannot be written (broker/GUARANTEES.md, case
dispatch-pause): a dispatch the journal cannot record could hand an instance id out
twice after a crash, so the scheduler places nothing while the journal is unavailable
(reads go on), and dispatching resumes by itself when the journal is writable again."""

import json

from hqtest import job_states, journal_events, set_faults, start_shim_server, wait_until


def placement(env):
    """The scheduler's placement state (`hq server debug-dump`): the dump request
    follows every command the broker sent before it, and the scheduler places before
    it answers, so this is what it did with them."""
    out = env.tmp / "dump.json"
    env.hq("server", "debug-dump", out)
    return json.loads(out.read_text())["scheduler"]["placement"]


def test_no_task_is_dispatched_while_the_journal_is_unavailable_and_dispatch_resumes(
        hq_env, faultshim):
    env = hq_env
    fault = start_shim_server(env, faultshim)
    jid = env.submit("--array", "1-3", "--", "bash", "-c", "touch ran-$HQ_TASK_ID")
    # the disk fills: the next change is refused and the journal says so
    set_faults(fault, "write:ENOSPC:always,fallocate:ENOSPC:always")
    r = env.hq("submit", "--", "true", check=False)
    assert r.returncode != 0 and "journal unavailable" in r.stderr, r.stderr
    wait_until(lambda: "is unavailable" in env.server.stderr(),
               what="the broker to report the journal unavailable")
    # a worker arrives with room for all three: none is placed
    w = env.start_worker(cpus=3)
    place = placement(env)
    assert [q["ready"] for q in place["queues"] if q["job"] == jid] == [3], place
    assert [x["held"] for x in place["workers"]] == [0], place
    assert not list(env.work.glob("ran-*"))
    assert "no task is dispatched until it can be written again" in env.server.stderr()
    # reads keep working
    assert job_states(env)[jid]["task_stats"]["waiting"] == 3
    # space returns: dispatching resumes by itself
    set_faults(fault, "")
    wait_until(lambda: "dispatching resumes" in env.server.stderr(), 30,
               "the journal to be writable again")
    env.wait_job(jid)
    assert sorted(p.name for p in env.work.glob("ran-*")) == ["ran-1", "ran-2", "ran-3"]
    assert w.proc.poll() is None
    # the registration that failed to be recorded was held and written afterwards
    events = journal_events(env)
    assert [e["id"] for e in events if e["type"] == "worker-connected"] == [w.id], events
