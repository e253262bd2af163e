"""Placement rules seen end to end (cli/REFERENCE.md, "How tasks are placed"):
packing onto busy workers, a worker reserved for a waiting higher-priority task,
--min-utilization mixes across jobs, the group policies, and coupled groups."""

import pytest

from hqtest import wait_until


def hold(tmp, name):
    """A task command that records its resources in <tmp>/<name>-<job>-<task> and runs
    until <tmp>/release exists."""
    out = f"{tmp}/{name}-$HQ_JOB_ID-$HQ_TASK_ID"
    return ["bash", "-c",
            f"echo \"$HQ_RESOURCE_VALUES_cpus\" > {out}.tmp && mv {out}.tmp {out}; "
            f"while [ ! -e {tmp}/release ]; do sleep 0.05; done"]


def running(server, job):
    return {i: t for i, t in server.tasks(job).items() if t["state"] == "running"}


def worker_of(server, job, task):
    return server.tasks(job)[task].get("worker")


def test_one_cpu_jobs_are_packed_onto_two_of_eight_workers(server, tmp_path):
    workers = [server.start_worker(cpus=4) for _ in range(8)]
    jobs = []
    for _ in range(8):
        jobs.append(server.submit(*hold(tmp_path, "pack")))
        wait_until(lambda: running(server, jobs[-1]), what=f"job {jobs[-1]} to run")
    used = {worker_of(server, j, 0) for j in jobs}
    assert len(used) == 2, used
    assert used == {workers[0].id, workers[1].id}
    (tmp_path / "release").touch()
    for j in jobs:
        server.wait_job(j)


def test_waiting_higher_priority_task_gets_a_whole_worker_reserved(server, tmp_path):
    server.start_worker(cpus=4)
    small = server.submit("--array", "0-3", *hold(tmp_path, "small"))
    wait_until(lambda: len(running(server, small)) == 4, what="four small tasks running")
    big = server.submit("--priority", "5", "--cpus", "4", "--", "true")
    later = server.submit("--array", "0-19", "--", "true")
    # the small tasks end; the freed cpus wait for the big task, not the later job
    (tmp_path / "release").touch()
    server.wait_job(later)
    server.wait_job(big)
    big_start = server.tasks(big)[0]["started_at"]
    later_start = min(t["started_at"] for t in server.tasks(later).values())
    assert big_start <= later_start


@pytest.mark.parametrize("policy,split", [
    ("compact", [3, 3, 0]),
    ("tight", [4, 2, 0]),
    ("scatter", [2, 2, 2]),
])
def test_six_cpus_over_three_groups_of_four_by_policy(server, tmp_path, policy, split):
    server.start_worker(cpus="3x4")
    job = server.submit("--cpus", f"6 {policy}", "--", "bash", "-c",
                        f"echo $HQ_RESOURCE_VALUES_cpus > {tmp_path}/cpus")
    server.wait_job(job)
    labels = [int(x) for x in (tmp_path / "cpus").read_text().strip().split(",")]
    per_group = [sum(1 for x in labels if x // 4 == g) for g in range(3)]
    assert sorted(per_group, reverse=True) == split, labels


def assigned(server, worker_id):
    info = server.hq_json("worker", "info", str(worker_id))[0]
    return info["runtime_info"]["SingleNodeTasks"]["assigned_tasks"]


@pytest.mark.parametrize("job1_tasks,job2,expect", [
    (3, ("1", "--cpus", "all"), {2: [0]}),
    (4, ("1", "--cpus", "all"), {1: [0, 1, 2, 3]}),
    (3, ("3", "--cpus", "6"), {1: [0, 1], 2: [0]}),
], ids=["all-wins", "four-fill-it", "mix-by-weight"])
def test_min_utilization_finds_a_mix_across_jobs(server, tmp_path, job1_tasks, job2, expect):
    j1 = server.submit("--array", f"0-{job1_tasks - 1}", "--cpus", "3", "--weight", "2",
                       *hold(tmp_path, "mu"))
    j2 = server.submit("--array", f"0-{int(job2[0]) - 1}", *job2[1:], *hold(tmp_path, "mu"))
    w = server.start_worker("--min-utilization", "1.0", cpus=12)
    want = {(j, t) for j, ts in expect.items() for t in ts}
    ids = {1: j1, 2: j2}

    def running_now():
        return {(k, t) for k, j in ids.items() for t in running(server, j)}

    wait_until(lambda: running_now() == want, what=f"{sorted(want)} running")
    assert assigned(server, w.id) == len(want)
    (tmp_path / "release").touch()


def test_explain_names_the_reservation_a_runnable_task_waits_for(server, tmp_path):
    w1 = server.start_worker(cpus=2)
    w2 = server.start_worker(cpus=2)
    small = server.submit(*hold(tmp_path, "ex"))
    wait_until(lambda: running(server, small), what="the small task running")
    # a two-node task of a higher priority waits for both workers: they are reserved
    big = server.submit("--priority", "5", "--nodes", "2", "--", "true")
    later = server.submit("--", "true")

    def explained():
        out = server.hq("task", "explain", str(later), "0").stdout
        return out if f"Worker {w2.id} is reserved for a waiting task of job {big}." in out else None

    out = wait_until(explained, what="the reservation named")
    assert f"Worker {w1.id} is reserved for a waiting task of job {big}." in out
    data = server.hq_json("task", "explain", str(later), "0")
    assert {"worker_id": w1.id, "reason": "reservation", "job": big} in data["explanation"]["waits"]
    assert server.tasks(later)[0]["state"] == "waiting"
    (tmp_path / "release").touch()
    server.wait_job(later)


def test_explain_names_min_utilization_as_why_a_task_waits(server):
    w = server.start_worker("--min-utilization", "0.5", cpus=4)
    job = server.submit("--", "true")
    out = server.hq("task", "explain", str(job), "0").stdout
    assert (f"Worker {w.id} starts tasks only together with others that keep at least 50 % "
            "of its cpus busy (--min-utilization 0.5).") in out
    assert server.tasks(job)[0]["state"] == "waiting"


@pytest.mark.parametrize("big", [("--cpus", "4"), ("--time-request", "1h")],
                         ids=["too-many-cpus", "too-long"])
def test_task_that_can_never_fit_a_worker_reserves_nothing(server, big):
    w = server.start_worker("--time-limit", "10m", cpus=2)
    blocked = server.submit("--priority", "5", *big, "--", "true")
    small = server.submit("--", "true")
    server.wait_job(small)
    assert server.tasks(blocked)[0]["state"] == "waiting"
    out = server.hq("task", "explain", str(blocked), "0").stdout
    assert "There is no worker where the task can run." in out
    assert f"Worker {w.id} is reserved" not in out
