"""Submits near the size limits (broker/GUARANTEES.md, cases assign-split and
submit-limits): tasks whose inputs together exceed one message to a worker are sent in
several ASSIGNs; one task larger than such a message, or a submit larger than a journal
record, is refused with the real reason and uses up no job id; a worker advertising
more indices than can be counted is refused with a clear error."""

from hqtest import HQ, start_journaled, wait_until

MB = 1000 * 1000


def big_task_file(env, env_mb):
    """A job file of one task with 15 MB of stdin and env_mb environment values of 1 MB
    (each field within its own limit, the task as a whole large)."""
    path = env.tmp / f"big-{env_mb}.toml"
    with open(path, "w") as f:
        f.write('[[task]]\nid = 0\ncommand = ["true"]\nstdin = "%s"\n' % ("s" * (15 * MB)))
        f.write("[task.env]\n")
        for k in range(env_mb):
            f.write('V%d = "%s"\n' % (k, "e" * MB))
    return path


def test_tasks_whose_inputs_exceed_one_assign_are_sent_in_several(hq_env):
    """Five tasks with a 15 MB entry each (75 MB, above the 64 MiB worker frame) for a
    worker that takes all five at once: they all run (they stayed waiting forever)."""
    env = hq_env
    env.start_server()
    env.start_worker(cpus=5)
    lines = env.tmp / "lines.txt"
    lines.write_text(("l" * (15 * MB) + "\n") * 5)
    jid = env.submit("--each-line", lines, "--", "true")
    env.wait_job(jid, timeout=60)
    # Each reached the worker, which tried to run it (an environment variable of 15 MB is
    # more than exec takes: that is the task's own failure, reported as such).
    tasks = env.tasks(jid).values()
    assert all(t["state"] == "failed" and "Argument list too long" in t["error"]
               for t in tasks) and len(tasks) == 5, tasks
    assert "Could not send" not in env.server.stderr()


def test_a_task_larger_than_a_worker_message_is_refused_at_submit_with_the_limit(hq_env):
    env = hq_env
    env.start_server()
    r = env.hq("job", "submit-file", big_task_file(env, 55), check=False, timeout=120)
    assert r.returncode == 1, r.stdout
    assert "more than one message to a worker can carry (67043328 bytes); pass large " \
           "inputs as files" in r.stderr, r.stderr
    assert env.submit("--", "true") == 1, "the refused submit used no job id"


def test_a_submit_larger_than_a_journal_record_gets_the_real_reason_and_no_id(hq_env):
    env = hq_env
    start_journaled(env)
    # 21 MB: fits a message to a worker, not a journal record
    r = env.hq("job", "submit-file", big_task_file(env, 6), check=False, timeout=120)
    assert r.returncode == 1, r.stdout
    assert "journal unavailable" not in r.stderr, r.stderr
    assert "cannot be recorded in the journal: the SUBMIT is " in r.stderr, r.stderr
    assert "more than a record holds (16777152)" in r.stderr, r.stderr
    assert env.submit("--", "true") == 1, "ids have no gaps"
    assert env.submit("--", "true") == 2


def test_a_worker_with_more_cpus_than_can_be_counted_is_refused_with_the_limit(hq_env):
    env = hq_env
    env.start_server()
    proc = env.spawn([HQ, "worker", "start", "--server-dir", env.server_dir, "--cpus",
                      "18446744073709551615", "--work-dir", env.tmp / "w"], "worker")
    assert proc.wait_exit() != 0
    err = proc.stderr()
    assert "Resource 'cpus' has range(0-18446744073709551614): more indices than can be " \
           "counted; a resource has at most 922337203685477 indices" in err, err
    wait_until(lambda: env.hq_json("worker", "list", "--all") == [], what="no worker")
