"""Crash counting when a task kills its worker at once (broker/GUARANTEES.md, G3 (worker
loss), case crash-limit).

The worker reports STARTED in its next RESULTS batch, so a task that kills its worker
right away (kill -9 $PPID with no gate) usually takes the worker down before the
broker hears of the start: the broker still has the task ASSIGNED. The rule
(hq_broker_requeue in broker/tasks.c): an ASSIGN handed to the worker means the worker
may have started the task, so its loss counts as a crash exactly like a reported
start. Each test repeats the race many times and counts executions with marker files
(one line per start in runs.<job>); without the rule a never-restart task runs twice
and a crash-limit task runs past its limit in a good share of the runs.

Tasks are submitted one at a time and each worker has 1 cpu, so no task is ever only
prefetched at a worker that dies (a prefetched task is counted too; see tasks.c)."""

from hqtest import read_pid_file, wait_until

# Every start appends its instance id to runs.<job> and its pid to pid.<job>.<instance>,
# then kills its worker at once (and lingers, so the worker cannot see it end).
SELF_KILL_NOW = ('echo "$HQ_INSTANCE_ID" >> "runs.$HQ_JOB_ID"; '
                 'echo $$ > "pid.$HQ_JOB_ID.$HQ_INSTANCE_ID"; kill -9 $PPID; exec sleep 60')


def runs(env, job):
    p = env.work / f"runs.{job}"
    return [int(x) for x in p.read_text().split()] if p.exists() else []


def lose_a_worker(env, job):
    """Starts a 1-cpu worker that the job's waiting task kills; waits for it to die
    and has the task's lingering process killed at teardown."""
    w = env.start_worker(cpus=1, heartbeat="500ms", wait=False)
    rc = w.proc.wait_exit(timeout=60)
    assert rc == -9, (rc, w.proc.stderr()[-2000:])
    instance = runs(env, job)[-1]
    pidfile = env.work / f"pid.{job}.{instance}"
    wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(), 10, "the task's pid")
    env.track_pid(read_pid_file(pidfile))
    return w


def settled(env, w, job):
    """Waits until the broker has declared worker w lost (so it has dealt with the
    task: an ASSIGNED task also shows as waiting). Returns the task's JSON."""
    def lost():
        for item in env.worker_list(all_=True):
            if item["configuration"]["hostname"] == w.hostname:
                return item if item.get("ended") else None
        return None

    wait_until(lost, 30, f"worker {w.hostname} to be declared lost")
    return env.tasks(job)[0]


def drain(env):
    """A healthy worker and a trivial job: anything still waiting would run now."""
    env.start_worker(cpus=1, heartbeat="1s")
    jid = env.submit("--", "true")
    env.wait_job(jid)
    return jid


def test_never_restart_task_killing_its_worker_at_once_runs_exactly_once(server):
    """Setup: a --crash-limit never-restart task that kills its worker as soon as it
    starts (no gate), 10 times, one job and one worker at a time. Fault: the worker
    dies before its STARTED report can leave. Expected: every time the task is FAILED
    with a never-restart error after exactly one execution, and a healthy worker
    started at the end runs none of them again."""
    env = server
    jobs = []
    for _ in range(10):
        jid = env.submit("--crash-limit", "never-restart", "--", "bash", "-c", SELF_KILL_NOW)
        jobs.append(jid)
        w = lose_a_worker(env, jid)
        t = settled(env, w, jid)
        assert t["state"] == "failed", (jid, t, runs(env, jid))
        assert "never-restart" in t["error"], t
        assert runs(env, jid) == [0], (jid, runs(env, jid))
    drain(env)
    for jid in jobs:
        assert env.tasks(jid)[0]["state"] == "failed"
        assert runs(env, jid) == [0], (jid, runs(env, jid))


def test_crash_limit_is_never_exceeded_by_tasks_killing_their_worker_at_once(server):
    """Setup: --crash-limit 2 tasks that kill their worker as soon as they start, 4
    jobs one after another, a new 1-cpu worker after each loss. Fault: every worker dies
    before its STARTED report leaves. Expected: each task is FAILED after exactly 2
    executions (instances 0 and 1) with the crash count in the error; it waits again
    after the first loss only; a healthy worker at the end runs none of them."""
    env = server
    jobs = []
    for _ in range(4):
        jid = env.submit("--crash-limit", "2", "--", "bash", "-c", SELF_KILL_NOW)
        jobs.append(jid)
        w = lose_a_worker(env, jid)
        t = settled(env, w, jid)
        assert t["state"] == "waiting", (jid, t, runs(env, jid))
        assert runs(env, jid) == [0]
        w = lose_a_worker(env, jid)
        t = settled(env, w, jid)
        assert t["state"] == "failed", (jid, t, runs(env, jid))
        assert "crashed 2 times (crash limit 2)" in t["error"], t
        assert runs(env, jid) == [0, 1], (jid, runs(env, jid))
    drain(env)
    for jid in jobs:
        assert env.tasks(jid)[0]["state"] == "failed"
        assert runs(env, jid) == [0, 1], (jid, runs(env, jid))
