"""Automatic allocation on the real local SLURM (tools/slurm-local.sh): the broker runs
the real sbatch, scontrol and scancel; workers start inside the allocations, detect
SLURM and run the tasks; idle workers exit and their allocations end. One local slurmd
is one node, so allocations of several nodes are tested with the fakes
(test_alloc.py)."""

import pytest

from hqtest import SANITIZER_MARKERS, alloc_info, horizontal, wait_until

pytestmark = pytest.mark.slurm

SLURM_TIMEOUT = 90.0  # scheduling, job start and job end on the local cluster

TRIAL = ("A trial allocation was submitted successfully. It was immediately canceled to "
         "avoid wasting resources.")


class Cluster:
    """The test's server, able to run sbatch/scontrol/scancel of the local cluster."""

    def __init__(self, slurm_local, env):
        self.slurm = slurm_local
        self.env = env
        env.env["SLURM_CONF"] = slurm_local.env["SLURM_CONF"]
        env.env["HQ_ALLOC_POLL_INTERVAL"] = "1s"
        env.start_server()

    def squeue_state(self, job_id):
        r = self.slurm.run("squeue", "-h", "-j", job_id, "-o", "%T", check=False)
        return r.stdout.strip() if r.returncode == 0 else ""

    def job_state(self, job_id):
        out = self.slurm.run("scontrol", "show", "job", job_id, check=False).stdout
        for word in out.split():
            if word.startswith("JobState="):
                return word.split("=", 1)[1]
        return ""

    def allocation_ids(self):
        ids = []
        for q in self.env.hq_json("alloc", "list"):
            ids += [a["id"] for a in alloc_info(self.env, q["id"])]
        return ids

    def teardown(self, known):
        live = [j for j in known if self.squeue_state(j)]
        if live:
            self.slurm.run("scancel", *live, check=False)
            for j in live:
                wait_until(lambda: self.squeue_state(j) == "", SLURM_TIMEOUT,
                           f"SLURM job {j} to leave the queue")

    def sanitizer_reports(self, dirs):
        found = []
        for d in dirs:
            for name in ("stdout", "stderr"):
                try:
                    text = (d / name).read_text(errors="replace")
                except OSError:
                    continue
                if any(m in text for m in SANITIZER_MARKERS):
                    found.append(f"{d}/{name}:\n{text[-4000:]}")
        return found


@pytest.fixture
def cluster_alloc(slurm_local, hq_env):
    c = Cluster(slurm_local, hq_env)
    seen = []
    c.seen = seen
    yield c
    try:
        seen += c.allocation_ids()
    except AssertionError:
        pass
    c.teardown(seen)
    root = hq_env.server_dir / "001" / "autoalloc"
    reports = c.sanitizer_reports(sorted(root.glob("*/*")))
    if reports:
        pytest.fail("sanitizer report in a worker of an allocation:\n" + "\n".join(reports))


def test_slurm_allocations_run_200_tasks_and_end_when_their_workers_idle(cluster_alloc):
    c = cluster_alloc
    env = c.env
    r = env.hq("alloc", "add", "slurm", "--time-limit", "10m", "--idle-timeout", "5s",
               "--backlog", "1", "--max-worker-count", "2", timeout=120)
    assert [line.split(" ", 2)[2] for line in r.stderr.splitlines()] == \
        [TRIAL, "Allocation queue 1 successfully created"]
    job = env.submit("--array", "1-200", "--", "bash", "-c",
                     'echo "$SLURM_JOB_ID $HQ_TASK_ID"')
    env.wait_job(job, timeout=240)
    assert env.job_state_counts(job)["finished"] == 200
    info = alloc_info(env)
    ids = [a["id"] for a in info]
    c.seen += ids
    assert 1 <= len(ids) <= 2 and all(i.isdigit() for i in ids)
    # the tasks ran inside the allocations, on workers that detected them
    ran_in = {env.hq("job", "cat", str(job), "stdout", "--tasks", str(t)).stdout.split()[0]
              for t in (1, 100, 200)}
    assert ran_in <= set(ids)
    workers = env.worker_list(all_=True)
    assert {(w["allocation"]["manager"], w["allocation"]["id"]) for w in workers} <= \
        {("Slurm", i) for i in ids}
    _, rows = horizontal(env.hq("worker", "list", "--all").stdout)
    assert {r["Manager"] for r in rows} == {"SLURM"}
    # idle workers exit, so the allocations end: in SLURM and in alloc info (one that
    # was still queued when the work ran out was canceled as no longer needed)
    with_workers = {w["allocation"]["id"] for w in workers}
    for i in ids:
        wait_until(lambda: c.squeue_state(i) == "", SLURM_TIMEOUT, f"allocation {i} to end")
        assert c.job_state(i) == ("COMPLETED" if i in with_workers else "CANCELLED")
    wait_until(lambda: all(a["status"] == "finished" for a in alloc_info(env)),
               SLURM_TIMEOUT, "alloc info to show the allocations finished")
    assert all(a["ended_at"] and bool(a["started_at"]) == (a["id"] in with_workers)
               for a in alloc_info(env))
    d = env.server_dir / "001" / "autoalloc" / "1" / "001"
    assert (d / "jobid").read_text().strip() == min(ids, key=int)
    assert "SLURM environment detected" in env.hq("alloc", "log", min(ids, key=int),
                                                  "stderr").stdout


def test_remove_force_cancels_a_queued_slurm_allocation(cluster_alloc):
    c = cluster_alloc
    env = c.env
    # held back by SLURM for an hour: it stays queued
    env.hq("alloc", "add", "slurm", "--time-limit", "10m", "--no-dry-run", "--",
           "--begin=now+1hour")
    env.submit("--", "true")
    wait_until(lambda: alloc_info(env), SLURM_TIMEOUT, "a queued allocation")
    aid = alloc_info(env)[0]["id"]
    c.seen.append(aid)
    assert c.squeue_state(aid) == "PENDING"
    assert alloc_info(env)[0]["status"] == "queued"
    r = env.hq("alloc", "remove", "1", check=False)
    assert r.returncode == 1
    env.hq("alloc", "remove", "--force", "1")
    wait_until(lambda: c.job_state(aid) == "CANCELLED", SLURM_TIMEOUT,
               "scancel of the queued allocation")
    assert env.hq_json("alloc", "list") == []


def test_slurm_refusing_the_trial_allocation_creates_no_queue(cluster_alloc):
    env = cluster_alloc.env
    r = env.hq("alloc", "add", "slurm", "--time-limit", "10m", "--",
               "--partition=no-such-partition", check=False, timeout=120)
    assert r.returncode == 1
    assert r.stderr.startswith("Could not submit allocation: sbatch exited with code 1: "
                               "sbatch: error: "), r.stderr
    assert "partition" in r.stderr
    assert env.hq_json("alloc", "list") == []
    r = env.hq("alloc", "dry-run", "slurm", "--time-limit", "10m", timeout=120)
    assert TRIAL in r.stderr
