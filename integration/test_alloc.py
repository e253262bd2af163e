"""Automatic allocation (`hq alloc`) against fake batch systems (tools/fakebatch.py):
PBS has no Debian package, and one local slurmd cannot run allocations of several
nodes, fail on demand or keep jobs queued; test_alloc_slurm.py runs the same flow on
the real local SLURM. The fakes record every submit, start, end, cancel and status
query, so the tests check what the broker asked the batch system to do from that
record, not by polling hq alone."""

import json
import re

import pytest

from hqtest import HQ, SANITIZED, FakeBatch, alloc_info, horizontal, wait_until

TRIAL = ("A trial allocation was submitted successfully. It was immediately canceled to "
         "avoid wasting resources.")


@pytest.fixture
def fake(hq_env):
    fb = FakeBatch(hq_env)
    hq_env.env["HQ_ALLOC_POLL_INTERVAL"] = "200ms"
    yield fb
    fb.teardown()


def start(env, *extra, **knobs):
    """Starts the server; knobs are FAKEBATCH_* settings its batch commands inherit."""
    for k, v in knobs.items():
        env.env[f"FAKEBATCH_{k.upper()}"] = str(v)
    env.start_server(*extra)
    return env


def add(env, manager, *args, check=True, mode=None):
    return env.hq("alloc", "add", manager, *args, check=check, mode=mode, timeout=60)


def log_lines(stderr):
    """The messages of log lines (without the timestamp and level)."""
    return [re.sub(r"^\S+ (INFO|WARN|ERROR) ", "", line) for line in stderr.splitlines()]


def run_dir(env):
    return env.server_dir / "001"


# ---- queues and the trial allocation ------------------------------------------------

def test_add_submits_a_held_trial_allocation_cancels_it_and_creates_the_queue(hq_env, fake):
    env = start(hq_env)
    r = add(env, "slurm", "--time-limit", "10m", "--backlog", "2", "--name", "cpu",
            "--", "--partition=short", "-A", "proj")
    assert log_lines(r.stderr) == [TRIAL, "Allocation queue 1 successfully created"]
    subs, cancels = fake.records("submit"), fake.records("cancel")
    assert len(subs) == 1 and subs[0]["held"] and subs[0]["argv"] == ["--hold", "hq-submit.sh"]
    assert [c["id"] for c in cancels] == [subs[0]["id"]]
    headers, rows = horizontal(env.hq("alloc", "list").stdout)
    assert headers == ["ID", "State", "Backlog size", "Max workers per alloc",
                       "Max worker count", "Timelimit", "Manager", "Worker resources", "Name",
                       "Args"]
    assert [list(r.values()) for r in rows] == [
        ["1", "ACTIVE", "2", "1", "0", "10m", "SLURM", "<unknown>", "cpu",
         "--partition=short,-A,proj"]]


def test_add_with_no_dry_run_submits_nothing_until_tasks_wait(hq_env, fake):
    env = start(hq_env)
    r = add(env, "pbs", "--time-limit", "5m", "--no-dry-run")
    assert log_lines(r.stderr) == ["Allocation queue 1 successfully created"]
    assert fake.records() == []
    assert alloc_info(env) == []


def test_dry_run_command_creates_no_queue(hq_env, fake):
    env = start(hq_env)
    r = env.hq("alloc", "dry-run", "pbs", "--time-limit", "5m")
    assert log_lines(r.stderr) == [TRIAL]
    assert [s["held"] for s in fake.records("submit")] == [True]
    assert len(fake.records("cancel")) == 1
    assert env.hq_json("alloc", "list") == []


def test_failed_trial_allocation_reports_the_managers_stderr_and_creates_nothing(hq_env,
                                                                                  fake):
    env = start(hq_env, fail=1)
    r = add(env, "slurm", "--time-limit", "10m", check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == ("Could not submit allocation: sbatch exited with code 1: "
                                "sbatch: error: Batch job submission failed: Invalid account")
    assert env.hq_json("alloc", "list") == []
    j = env.hq_json("alloc", "dry-run", "slurm", "--time-limit", "10m", check=False)
    assert j["error"].startswith("Could not submit allocation: sbatch exited with code 1")
    env.hq("server", "info")  # the broker keeps serving


def test_missing_manager_program_is_reported(hq_env, fake):
    env = start(hq_env)
    r = add(env, "slurm", "--time-limit", "10m", check=False)  # sbatch exists (fake)...
    assert r.returncode == 0
    (fake.bin / "qsub").unlink()  # ...qsub does not (the broker resolves it at each run)
    r = add(env, "pbs", "--time-limit", "10m", check=False)
    assert r.returncode == 1
    assert r.stderr.strip().startswith("Could not submit allocation: cannot run qsub: ")


@pytest.mark.parametrize("args, code, message", [
    ([], 2, "error: the following required arguments were not provided:\n"
            "  --time-limit <TIME_LIMIT>"),
    (["--time-limit", "soon"], 2, "error: invalid value 'soon' for '--time-limit <TIME_LIMIT>'"),
    (["-t", "1h", "--backlog", "0"], 2,
     "error: invalid value '0' for '--backlog <BACKLOG>': Backlog has to be at least 1"),
    (["-t", "1h", "--worker-time-limit", "2h"], 1,
     "Worker time limit cannot be larger than queue time limit"),
    (["-t", "1h", "--min-utilization", "1.5"], 2,
     "error: invalid value '1.5' for '--min-utilization <MIN_UTILIZATION>': "
     "Minimal utilization has to be in the interval [0.0, 1.0]."),
    (["-t", "1h", "--workers-per-alloc", "2"], 2,
     "error: unexpected argument '--workers-per-alloc' found"),
    (["-t", "1h", "--cpus", "zero"], 2, "error: invalid value 'zero' for '--cpus <CPUS>'"),
    (["-t", "1h", "--", "--comment=a\nb"], 1, "Additional argument '--comment=a\nb' contains "
     "a newline"),
])
def test_bad_queue_values_are_refused_with_the_value_named_and_create_nothing(
        hq_env, fake, args, code, message):
    env = start(hq_env)
    r = add(env, "slurm", *args, check=False)
    assert r.returncode == code, r.stderr
    assert r.stderr.startswith(message), r.stderr
    assert r.stdout == ""
    assert env.hq_json("alloc", "list") == []
    assert fake.records("submit") == []


def test_unknown_manager_is_an_unrecognized_subcommand(hq_env, fake):
    env = start(hq_env)
    r = add(env, "lsf", "--time-limit", "1h", check=False)
    assert r.returncode == 2
    assert r.stderr.startswith("error: unrecognized subcommand 'lsf'")


def test_queue_commands_on_an_unknown_queue_fail(hq_env, fake):
    env = start(hq_env)
    for cmd in (["info", "7"], ["pause", "7"], ["resume", "7"], ["remove", "7"]):
        r = env.hq("alloc", *cmd, check=False)
        assert (r.returncode, r.stderr.strip()) == (1, "Allocation queue 7 not found")
    r = env.hq("alloc", "log", "123", "stdout", check=False)
    assert (r.returncode, r.stderr.strip()) == (1, "Allocation 123 not found")


# ---- the submit script ----------------------------------------------------------------

def test_slurm_script_and_worker_command_are_as_documented(hq_env, fake):
    env = start(hq_env, norun=1)
    add(env, "slurm", "--time-limit", "1h 5m 2s", "--no-dry-run", "--cpus", "2",
        "--resource", "gpus=[0,1]", "--idle-timeout", "90s", "--worker-time-limit", "1h",
        "--min-utilization", "0.5", "--worker-start-cmd", "module load x",
        "--worker-stop-cmd", "echo done", "--", "--partition=p", "--qos=high")
    env.submit("--cpus", "2", "--", "true")
    wait_until(lambda: alloc_info(env), what="an allocation")
    d = run_dir(env) / "autoalloc" / "1" / "001"
    script = (d / "hq-submit.sh").read_text()
    rd = run_dir(env)
    assert script == (
        "#!/bin/bash\n"
        "#SBATCH --nodes=1\n"
        "#SBATCH --job-name=hq-1-1\n"
        f"#SBATCH --output={d}/stdout\n"
        f"#SBATCH --error={d}/stderr\n"
        "#SBATCH --time=01:05:02\n"
        "#SBATCH --partition=p --qos=high\n"
        "\n"
        f"module load x && {HQ} worker start --idle-timeout \"1m 30s\" --manager \"slurm\" "
        f"--server-dir \"{rd}\" --cpus \"2\" --resource \"gpus=[0,1]\" "
        "--min-utilization 0.5 --on-server-lost \"finish-running\" --time-limit \"1h\"; "
        "echo done\n")
    job_id = fake.records("submit")[0]["id"]
    assert (d / "jobid").read_text().strip() == job_id
    assert fake.records("submit")[0]["argv"] == ["hq-submit.sh"]
    info = alloc_info(env)
    assert [(a["id"], a["status"], a["target_worker_count"], a["workdir"]) for a in info] == \
        [(job_id, "queued", 1, str(d))]


def test_several_nodes_use_srun_and_pbsdsh(hq_env, fake):
    """One slurmd is one node: allocations of several nodes are checked with the fakes."""
    env = start(hq_env, norun=1)
    add(env, "slurm", "--time-limit", "10m", "--no-dry-run", "-m", "2", "--name", "wide")
    add(env, "pbs", "--time-limit", "72h", "--no-dry-run", "-m", "2", "--group", "g")
    env.submit("--nodes", "2", "--", "true")
    wait_until(lambda: alloc_info(env, 1) and alloc_info(env, 2), what="two allocations")
    slurm = (run_dir(env) / "autoalloc" / "1-wide" / "001" / "hq-submit.sh").read_text()
    pbs_dir = run_dir(env) / "autoalloc" / "2" / "001"
    pbs = (pbs_dir / "hq-submit.sh").read_text()
    assert "#SBATCH --nodes=2\n#SBATCH --job-name=wide-1\n" in slurm
    cmd = slurm.split("\n\n", 1)[1]
    assert cmd.startswith(f"srun --overlap --ntasks=2 --nodes=2 {HQ} worker start ")
    assert pbs.startswith("#!/bin/bash\n#PBS -l select=2\n#PBS -N hq-2-1\n"
                          f"#PBS -o {pbs_dir}/stdout\n#PBS -e {pbs_dir}/stderr\n"
                          "#PBS -l walltime=72:00:00\n\n")
    pcmd = pbs.split("\n\n", 1)[1]
    assert pcmd.startswith(f"pbsdsh -- bash -l -c '{HQ} worker start ")
    assert '--manager "pbs"' in pcmd and "--group g " in pcmd
    assert [a["target_worker_count"] for a in alloc_info(env, 1)] == [2]
    assert [a["target_worker_count"] for a in alloc_info(env, 2)] == [2]


# ---- the flow: tasks bring workers, idle workers end their allocations ---------------

@pytest.mark.parametrize("manager", ["slurm", "pbs"])
def test_waiting_tasks_bring_allocations_whose_idle_workers_end_them(hq_env, fake, manager):
    env = start(hq_env)
    add(env, manager, "--time-limit", "10m", "--idle-timeout", "1s", "--backlog", "1",
        "--max-worker-count", "2", "--cpus", "1")
    job = env.submit("--array", "1-40", "--", "sleep", "0.05")
    env.wait_job(job, timeout=60)
    counts = env.job_state_counts(job)
    assert counts["finished"] == 40
    workers = env.worker_list(all_=True)
    ids = {a["id"] for a in alloc_info(env)}
    assert workers and all(w["allocation"]["manager"] == ("PBS" if manager == "pbs" else "Slurm")
                           for w in workers)
    assert {w["allocation"]["id"] for w in workers} <= ids
    wait_until(lambda: all(a["status"] == "finished" for a in alloc_info(env)), 30,
               "the allocations to finish after their workers idled out")
    info = alloc_info(env)
    assert 1 <= len(info) <= 2
    assert all(a["started_at"] and a["ended_at"] for a in info)
    ends = {r["id"] for r in fake.records("end")}
    assert ids <= ends  # the batch jobs themselves ended (their workers exited)
    if manager == "pbs":
        # the broker's queries (the workers ask qstat for their walltime without -x)
        q = [r["argv"][1:] for r in fake.records("status") if r["argv"][-1] == "-x"]
        assert q and all(a[-3:] == ["-F", "json", "-x"] and a[0] == "-f" for a in q)
    headers, rows = horizontal(env.hq("alloc", "info", "1").stdout)
    assert headers == ["ID", "State", "Working directory", "Worker count", "Queue time",
                       "Start time", "Finish time"]
    assert {r["State"] for r in rows} == {"FINISHED"}


def test_alloc_log_prints_the_allocation_output(hq_env, fake):
    env = start(hq_env)
    add(env, "slurm", "--time-limit", "10m", "--idle-timeout", "1s", "--no-dry-run")
    env.wait_job(env.submit("--", "true"))
    wait_until(lambda: alloc_info(env) and alloc_info(env)[0]["status"] == "finished", 30,
               "the allocation to finish")
    aid = alloc_info(env)[0]["id"]
    err = env.hq("alloc", "log", aid, "stderr").stdout
    assert "SLURM environment detected" in err
    r = env.hq("alloc", "log", aid, "stdout", mode="json", check=False)
    assert r.returncode == 1 and "error" in json.loads(r.stdout)


# ---- pause, resume, remove, stop ---------------------------------------------------------

def test_pause_holds_submissions_and_resume_releases_them(hq_env, fake):
    env = start(hq_env, norun=1)
    add(env, "slurm", "--time-limit", "10m", "--no-dry-run")
    r = env.hq("alloc", "pause", "1")
    assert log_lines(r.stderr) == ["Allocation queue 1 successfully paused"]
    assert env.hq_json("alloc", "list")[0]["state"] == "Paused"
    env.submit("--", "true")

    def says_paused():
        r = env.hq("alloc", "info", "1")
        return "the queue is paused" in r.stderr

    wait_until(says_paused, what="the allocator to see the waiting task")
    assert fake.records("submit") == []
    r = env.hq("alloc", "resume", "1")
    assert log_lines(r.stderr) == ["Allocation queue 1 successfully resumed"]
    wait_until(lambda: fake.records("submit"), what="a submission after resume")
    wait_until(lambda: alloc_info(env), what="the allocation")
    env.hq("alloc", "pause", "--force", "1")
    aid = alloc_info(env)[0]["id"]
    wait_until(lambda: [c["id"] for c in fake.records("cancel")] == [aid],
               what="pause --force to cancel the queued allocation")


def test_remove_refuses_active_allocations_unless_forced_and_then_cancels_them(hq_env, fake):
    env = start(hq_env, norun=1)
    add(env, "slurm", "--time-limit", "10m", "--no-dry-run", "--backlog", "2", "-m", "1")
    env.submit("--array", "1-2", "--", "true")
    wait_until(lambda: len(alloc_info(env)) == 2, what="two queued allocations")
    r = env.hq("alloc", "remove", "1", check=False)
    assert r.returncode == 1 and "--force" in r.stderr
    r = env.hq("alloc", "remove", "--force", "1")
    assert log_lines(r.stderr) == ["Allocation queue 1 successfully removed"]
    ids = sorted(s["id"] for s in fake.records("submit"))
    wait_until(lambda: sorted(c["id"] for c in fake.records("cancel")) == ids,
               what="both allocations to be canceled")
    assert env.hq_json("alloc", "list") == []


def test_server_stop_cancels_queued_and_running_allocations(hq_env, fake):
    env = start(hq_env)
    add(env, "slurm", "--time-limit", "10m", "--no-dry-run", "--backlog", "1",
        "--max-worker-count", "2", "--cpus", "1")
    job = env.submit("--array", "1-2", "--", "sleep", "100")
    wait_until(lambda: len(fake.records("start")) == 2, 30, "two running allocations")
    wait_until(lambda: len(env.worker_list()) == 2, 30, "the workers of both")
    assert env.job_state_counts(job)["running"] >= 1
    env.hq("server", "stop")
    env.server.popen.wait(timeout=30)
    started = sorted(r["id"] for r in fake.records("start"))
    assert sorted(c["id"] for c in fake.records("cancel")) == started


# ---- failures -------------------------------------------------------------------------------

def test_repeated_submit_failures_back_off_then_pause_the_queue(hq_env, fake):
    env = hq_env
    env.env["HQ_ALLOC_BACKOFF"] = "50ms"
    env.start_server()
    add(env, "slurm", "--time-limit", "10m", "--no-dry-run")
    (fake.bin / "sbatch").unlink()
    (fake.bin / "sbatch").write_text("#!/bin/sh\necho \"$(date +%s.%N)\" >> "
                                     f"{fake.dir}/failed\necho 'sbatch: error: down' >&2\n"
                                     "exit 1\n")
    (fake.bin / "sbatch").chmod(0o755)
    env.submit("--", "true")
    wait_until(lambda: env.hq_json("alloc", "list")[0]["state"] == "Paused", 60,
               "the queue to pause itself")
    times = [float(t) for t in (fake.dir / "failed").read_text().split()]
    assert len(times) == 10
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[-1] > gaps[0] * 4, gaps  # the delay grows (50 ms doubling, capped at 64x)
    r = env.hq("alloc", "info", "1")
    assert "Could not submit allocation: sbatch exited with code 1: sbatch: error: down" \
        in r.stderr
    assert "paused after 10 failed submissions in a row" in env.server.stderr()
    env.hq("server", "info")


def test_garbage_from_sbatch_is_a_failed_submission(hq_env, fake):
    hq_env.env["HQ_ALLOC_BACKOFF"] = "10s"
    env = start(hq_env, garbage=1)
    add(env, "slurm", "--time-limit", "10m", "--no-dry-run")
    env.submit("--", "true")
    wait_until(lambda: "printed no job id" in env.hq("alloc", "info", "1").stderr,
               what="the failure in alloc info")
    assert "Your job is very important to us" in env.hq("alloc", "info", "1").stderr
    assert len(fake.records("submit-garbage")) == 1  # backs off instead of a loop


def test_allocations_whose_workers_never_connect_pause_the_queue(hq_env, fake):
    env = start(hq_env)
    add(env, "slurm", "--time-limit", "10m", "--no-dry-run", "--worker-wrap-cmd", "true ||")
    env.submit("--", "true")
    wait_until(lambda: env.hq_json("alloc", "list")[0]["state"] == "Paused", 60,
               "the queue to pause after start failures")
    info = alloc_info(env)
    assert [a["status"] for a in info] == ["failed"] * 3
    assert len(fake.records("submit")) == 3
    assert "ended without any worker connecting" in env.hq("alloc", "info", "1").stderr


# ---- output modes -------------------------------------------------------------------------

def test_json_and_quiet_output_of_the_alloc_commands(hq_env, fake):
    env = start(hq_env)
    assert env.hq_json("alloc", "add", "slurm", "-t", "30m", "--no-dry-run",
                       "--max-worker-count", "3") == {}
    lst = env.hq_json("alloc", "list")
    assert sorted(lst[0]) == sorted(["id", "name", "state", "manager", "additional_args",
                                     "backlog", "max_workers_per_alloc", "timelimit",
                                     "max_worker_count", "worker_args",
                                     "known_worker_resources"])
    assert (lst[0]["manager"], lst[0]["timelimit"], lst[0]["max_worker_count"],
            lst[0]["known_worker_resources"]) == ("Slurm", 1800.0, 3, None)
    assert lst[0]["worker_args"][:3] == [str(HQ), "worker", "start"]
    assert env.hq_json("alloc", "info", "1") == []
    for cmd in (["pause", "1"], ["resume", "1"]):
        assert env.hq_json("alloc", *cmd) == {}
    for cmd in (["list"], ["info", "1"], ["pause", "1"], ["remove", "1"]):
        assert env.hq("alloc", *cmd, mode="quiet").stdout == ""


# ---- no over-submission ---------------------------------------------------------------

UNRUNNABLE_GRAPH = """
[[task]]
id = 0
command = ["true"]
[[task.request]]
resources = { cpus = 1 }
time_request = "2h"

[[task]]
id = 1
command = ["true"]
deps = [0]
"""


def max_concurrent(events):
    """From (time, +1/-1) steps, the highest running total."""
    cur = peak = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        cur += step
        peak = max(peak, cur)
    return peak


# 10,000 tasks; 2,000 in the sanitizer build, whose workers start tasks ~10x slower
N_MANY = 2000 if SANITIZED else 10000


def test_ten_thousand_tasks_never_exceed_backlog_and_worker_limit(hq_env, fake):
    """The proof comes from the batch system's own record (the fake's log of submits,
    starts, ends and cancels) and from the journal's autoalloc-* and worker events, not
    from polling hq: at no time were more than 2 allocations queued or more than 4
    workers queued or running, and tasks that wait for dependencies, ask for more time
    than the queue's limit or for a resource its workers lack brought no allocation."""
    from hqtest import journal_dir, journal_events
    env = start(hq_env, "--journal", journal_dir(hq_env), delay="0.5")
    add(env, "slurm", "--time-limit", "1h", "--backlog", "2", "--max-worker-count", "4",
        "--cpus", "2", "--idle-timeout", "1s", "--no-dry-run")
    (env.work / "graph.toml").write_text(UNRUNNABLE_GRAPH)
    env.hq("job", "submit-file", "graph.toml")
    env.submit("--time-request", "2h", "--array", "1-5", "--", "true")
    env.submit("--resource", "fpga=1", "--", "true")
    why = ("Queue 1 submits nothing for 1 task waits for dependencies; 6 tasks request more "
           "time (--time-request) than the queue's workers have; 1 task requests resources "
           "the queue's workers do not have")

    wait_until(lambda: why in env.hq("alloc", "info", "1").stderr, 20,
               "the allocator to judge the unrunnable tasks")
    assert fake.records("submit") == []

    job = env.submit("--array", f"1-{N_MANY}", "--", "true")
    env.wait_job(job, timeout=600)
    assert env.job_state_counts(job)["finished"] == N_MANY
    wait_until(lambda: all(a["status"] in ("finished", "failed") for a in alloc_info(env)), 60,
               "every allocation to end")
    wait_until(lambda: why in env.hq("alloc", "info", "1").stderr, 20,
               "the allocator to judge the unrunnable tasks again")
    n_submits = len(fake.records("submit"))

    # the batch system's record
    steps_queued, steps_live = [], []
    state = {}
    for r in fake.records():
        t, op, jid = r["t"], r["op"], r.get("id")
        if op == "submit":
            state[jid] = "Q"
            steps_queued.append((t, 1))
            steps_live.append((t, 1))
        elif op == "start":
            state[jid] = "R"
            steps_queued.append((t, -1))
        elif op == "cancel" and state.get(jid) == "Q":
            state[jid] = "F"
            steps_queued.append((t, -1))
            steps_live.append((t, -1))
        elif op == "end" and state.get(jid) == "R":
            state[jid] = "F"
            steps_live.append((t, -1))
    assert 1 <= n_submits and all(s == "F" for s in state.values()), state
    assert max_concurrent(steps_queued) <= 2
    assert max_concurrent(steps_live) <= 4

    # the journal's record
    events = journal_events(env)
    queued, live, workers = [], [], []
    seen = {}
    for i, e in enumerate(events):
        if e["type"] == "autoalloc-allocation-queued":
            seen[e["allocation_id"]] = "Q"
            queued.append((i, 1))
            live.append((i, 1))
        elif e["type"] == "autoalloc-allocation-started":
            seen[e["allocation_id"]] = "R"
            queued.append((i, -1))
        elif e["type"] == "autoalloc-allocation-finished":
            if seen.get(e["allocation_id"]) == "Q":
                queued.append((i, -1))
            live.append((i, -1))
            seen[e["allocation_id"]] = "F"
        elif e["type"] == "worker-connected":
            workers.append((i, 1))
        elif e["type"] == "worker-lost":
            workers.append((i, -1))
    assert len([e for e in events if e["type"] == "autoalloc-allocation-queued"]) == n_submits
    assert max_concurrent(queued) <= 2
    assert max_concurrent(live) <= 4
    assert 1 <= max_concurrent(workers) <= 4
    # the unrunnable tasks still wait, and nothing was submitted for them afterwards
    assert len(fake.records("submit")) == n_submits


# ---- a restarted broker keeps its queues ---------------------------------------------

def test_restarted_broker_keeps_queues_and_does_not_submit_twice(hq_env, fake):
    from hqtest import journal_dir, journal_events, kill9_server
    env = start(hq_env, "--journal", journal_dir(hq_env), norun=1)
    add(env, "slurm", "--time-limit", "10m", "--no-dry-run", "--name", "kept")
    add(env, "pbs", "--time-limit", "10m", "--no-dry-run")
    env.hq("alloc", "pause", "2")
    env.submit("--", "true")
    wait_until(lambda: alloc_info(env), what="a queued allocation")
    before = alloc_info(env)
    env.hq("journal", "flush")
    kill9_server(env)
    env.start_server("--journal", journal_dir(env))
    lst = env.hq_json("alloc", "list")
    assert [(q["id"], q["name"], q["state"]) for q in lst] == [(1, "kept", "Active"),
                                                             (2, None, "Paused")]
    assert [(a["id"], a["status"]) for a in alloc_info(env)] == \
        [(a["id"], "queued") for a in before]
    job_id = before[0]["id"]
    n_polls = len([r for r in fake.records("status") if r.get("id") == job_id])
    # the restarted broker asks the batch system about the allocation it had submitted
    # (each tick weighs the demand before it polls)
    wait_until(lambda: len([r for r in fake.records("status") if r.get("id") == job_id])
               > n_polls, 20, "a status query after the restart")
    assert len(fake.records("submit")) == 1  # the waiting task is covered by the first
    types = [e["type"] for e in journal_events(env) if e["type"].startswith("autoalloc")]
    assert types == ["autoalloc-queue-created", "autoalloc-queue-created",
                     "autoalloc-allocation-queued"]
    env.hq("alloc", "remove", "--force", "1")
    wait_until(lambda: [c["id"] for c in fake.records("cancel")] == [job_id],
               what="the restored allocation to be canceled")
    assert "autoalloc-queue-removed" in [e["type"] for e in journal_events(env)]


def test_workers_of_allocations_reconnect_to_a_restarted_broker(hq_env, fake):
    from hqtest import journal_dir, kill9_server
    env = start(hq_env, "--journal", journal_dir(hq_env))
    add(env, "slurm", "--time-limit", "10m", "--no-dry-run", "--cpus", "1",
        "--idle-timeout", "2s")
    gate = env.work / "go"
    job = env.submit("--", "bash", "-c", f"while [ ! -e {gate} ]; do sleep 0.05; done")
    wait_until(lambda: env.job_state_counts(job)["running"] == 1, 30, "the task to run")
    aid = wait_until(lambda: alloc_info(env), what="the allocation's id")[0]["id"]
    env.hq("journal", "flush")
    kill9_server(env)
    env.start_server("--journal", journal_dir(env))
    # the worker re-reads the access file of the run dir it was given, which the
    # restarted broker rewrote
    wait_until(lambda: [w["allocation"]["id"] for w in env.worker_list()] == [aid], 40,
               "the allocation's worker to reconnect")
    gate.write_text("")
    env.wait_job(job)
    assert env.job_state_counts(job)["finished"] == 1
    wait_until(lambda: alloc_info(env)[0]["status"] == "finished", 30,
               "the allocation to finish after its worker idled out")
    assert len(fake.records("submit")) == 1


def test_min_utilization_holds_back_an_allocation_that_would_be_underused(hq_env, fake):
    env = start(hq_env, norun=1)
    add(env, "slurm", "--time-limit", "10m", "--no-dry-run", "--cpus", "4",
        "--min-utilization", "0.7")
    env.submit("--array", "1-2", "--", "true")  # 2 of 4 cpus: 0.5
    wait_until(lambda: "below --min-utilization 0.7" in env.hq("alloc", "info", "1").stderr,
               what="the allocator to hold back the allocation")
    assert fake.records("submit") == []
    env.submit("--", "true")  # 3 of 4 cpus: 0.75
    wait_until(lambda: alloc_info(env), what="an allocation once it would be used enough")
    assert [a["target_worker_count"] for a in alloc_info(env)] == [1]


def test_server_stop_cancels_an_allocation_submitted_while_it_stops(hq_env, fake):
    env = start(hq_env, norun=1, submit_delay=1)
    add(env, "slurm", "--time-limit", "10m", "--no-dry-run")
    env.submit("--", "true")
    wait_until(lambda: fake.records("submitting"), what="a submission to start")
    env.hq("server", "stop")
    env.server.popen.wait(timeout=30)
    subs = [s["id"] for s in fake.records("submit")]
    assert len(subs) == 1
    assert [c["id"] for c in fake.records("cancel")] == subs
