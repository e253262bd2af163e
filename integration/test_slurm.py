"""Workers inside real SLURM allocations (a local cluster started by
integration/tools/slurm-local.sh, see the slurm_local fixture): a worker started
by sbatch detects the allocation (manager, job id, group, time limit from the
allocation), runs tasks, and ends its allocation when stopped; cancelling the
allocation with scancel loses the worker and requeues its running task."""

import re

import pytest

from hqtest import HQ, SANITIZER_MARKERS, horizontal, pid_alive, vertical, wait_until

pytestmark = pytest.mark.slurm

SLURM_TIMEOUT = 60.0  # scheduling, job start and job end on the local cluster

_UNITS = {"days": 86400, "day": 86400, "d": 86400, "h": 3600, "m": 60, "s": 1,
          "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def human_seconds(text):
    """Seconds of a human duration as hq prints it ("4m 59s", "1h 30m", "1s 500ms")."""
    parts = text.split()
    assert parts, f"empty duration {text!r}"
    total = 0.0
    for p in parts:
        m = re.fullmatch(r"(\d+)([a-z]+)", p)
        assert m and m.group(2) in _UNITS, f"not a duration: {text!r}"
        total += int(m.group(1)) * _UNITS[m.group(2)]
    return total


class Slurm:
    """One test's SLURM side: submits hq workers with sbatch into the test's server,
    and cancels whatever it submitted at teardown."""

    def __init__(self, cluster, hq_env):
        self.cluster = cluster
        self.hq = hq_env
        self.jobs = []

    def run(self, *args, **kw):
        return self.cluster.run(*args, **kw)

    def output_path(self, job_id):
        return self.hq.logs / f"slurm-{job_id}.out"

    def sbatch_worker(self, minutes=5, cpus=1):
        """`sbatch --time=M --wrap "<hq> worker start --server-dir D --cpus N --work-dir W"`
        (W in the test's temp dir: the default one under /tmp outlives the worker);
        returns the job id."""
        wd = self.hq.tmp / f"wd-slurm-{len(self.jobs) + 1}"
        wrap = (f"{HQ} worker start --server-dir {self.hq.server_dir} --cpus {cpus} "
                f"--work-dir {wd}")
        r = self.run("sbatch", "--parsable", f"--time={minutes}", "--job-name=hq-worker",
                     f"--chdir={self.hq.tmp}", f"--output={self.hq.logs}/slurm-%j.out",
                     "--wrap", wrap)
        job_id = r.stdout.strip().split(";")[0]
        assert job_id.isdigit(), f"sbatch printed {r.stdout!r}"
        self.jobs.append(job_id)
        return job_id

    def queue_state(self, job_id):
        """The job's state in squeue ("PENDING", "RUNNING", ...) or "" once it left."""
        r = self.run("squeue", "-h", "-j", job_id, "-o", "%T", check=False)
        if r.returncode != 0:  # the job was purged: "Invalid job id specified"
            return ""
        return r.stdout.strip()

    def wait_gone(self, job_id, timeout=SLURM_TIMEOUT):
        wait_until(lambda: self.queue_state(job_id) == "", timeout,
                   f"SLURM job {job_id} to leave the queue")

    def job_fields(self, job_id):
        """`scontrol show job ID` as {key: value} (the controller keeps ended jobs for
        MinJobAge seconds)."""
        out = self.run("scontrol", "show", "job", job_id).stdout
        return dict(re.findall(r"(?:^|\s)([A-Za-z:/]+)=(\S*)", out))

    def describe(self, job_id):
        try:
            out = self.output_path(job_id).read_text(errors="replace")[-3000:]
        except OSError:
            out = "(no output file)"
        return f"SLURM job {job_id} state {self.queue_state(job_id)!r}; its output:\n{out}"

    def wait_worker(self, job_id, timeout=SLURM_TIMEOUT):
        """Waits until the (only) worker of the test's server is registered; fails early
        with the job's output if the job ended without one."""
        def registered():
            items = self.hq.worker_list()
            if items:
                assert len(items) == 1, f"more than one worker: {items}"
                return items[0]
            if self.queue_state(job_id) == "" and not self.hq.worker_list():
                raise AssertionError(f"the job ended before a worker registered; "
                                     f"{self.describe(job_id)}")
            return None

        try:
            return wait_until(registered, timeout, f"the worker of SLURM job {job_id}")
        except AssertionError as e:
            raise AssertionError(f"{e}\n{self.describe(job_id)}")

    def teardown(self):
        live = [j for j in self.jobs if self.queue_state(j) != ""]
        if live:
            self.run("scancel", *live, check=False)
            for j in live:
                self.wait_gone(j)

    def sanitizer_reports(self):
        """Sanitizer reports in the batch jobs' output (the workers' stderr)."""
        found = []
        for j in self.jobs:
            try:
                text = self.output_path(j).read_text(errors="replace")
            except OSError:
                continue
            if any(m in text for m in SANITIZER_MARKERS):
                found.append(f"SLURM job {j}:\n{text[-4000:]}")
        return found


@pytest.fixture
def slurm(slurm_local, server):
    s = Slurm(slurm_local, server)
    yield s
    s.teardown()
    reports = s.sanitizer_reports()
    if reports:
        pytest.fail("sanitizer report in a worker started by sbatch:\n" + "\n".join(reports))


def test_worker_in_a_slurm_allocation_takes_its_id_and_time_limit_and_ends_it(slurm):
    server = slurm.hq
    job = slurm.sbatch_worker(minutes=5)
    item = slurm.wait_worker(job)
    wid = item["id"]

    _, rows = horizontal(server.hq("worker", "list").stdout)
    assert [(r["ID"], r["Manager"], r["Manager Job ID"]) for r in rows] == \
        [(str(wid), "SLURM", job)]
    assert item["allocation"] == {"manager": "Slurm", "id": job}
    assert item["configuration"]["group"] == job
    json_limit = item["configuration"]["time_limit"]
    assert json_limit is not None and 240 <= json_limit <= 300, json_limit

    _, info = vertical(server.hq("worker", "info", str(wid)).stdout)
    assert info["Manager"].strip() == "SLURM"
    assert info["Manager Job ID"].strip() == job
    assert info["Group"].strip() == job
    assert info["Time Limit"].strip() != "None", "no time limit from the allocation"
    limit = human_seconds(info["Time Limit"].strip())
    assert 240 <= limit <= 300, info["Time Limit"]

    # a task runs on it, inside the allocation
    job_fields = slurm.job_fields(job)
    assert job_fields["JobState"] == "RUNNING", job_fields
    server.submit("--", "bash", "-c", 'echo "job=$SLURM_JOB_ID task=$HQ_TASK_ID"')
    server.wait_job(1)
    task = server.tasks(1)[0]
    assert task["state"] == "finished", task
    assert server.hq("job", "cat", "1", "stdout").stdout == f"job={job} task=0\n"

    # stopping the worker ends the batch script, so the allocation ends (exit 0)
    r = server.hq("worker", "stop", str(wid))
    assert f"Worker {wid} stopped" in r.stderr
    slurm.wait_gone(job)
    fields = slurm.job_fields(job)
    assert (fields["JobState"], fields["ExitCode"]) == ("COMPLETED", "0:0"), \
        slurm.describe(job)
    _, rows = horizontal(server.hq("worker", "list", "--all").stdout)
    assert [(r["ID"], r["State"]) for r in rows] == [(str(wid), "STOPPED")]


def _scancel_mid_task(slurm, job_no, task_script, n_tasks=1):
    """Starts a worker by sbatch, runs job `job_no` (tasks 0..n_tasks-1 of
    `task_script`, which writes its pid to pid.<job_no>.<task>.<instance>) on it, scancels
    the allocation mid-task and waits until the broker has lost the worker, the
    allocation has left the queue and the tasks' processes are gone. Returns the SLURM
    job id."""
    server = slurm.hq
    job = slurm.sbatch_worker(minutes=5, cpus=n_tasks)
    wid = slurm.wait_worker(job)["id"]
    array = ["--array", f"0-{n_tasks - 1}"] if n_tasks > 1 else []
    assert server.submit(*array, "--", "bash", "-c", task_script) == job_no
    pids = []
    for task in range(n_tasks):
        server.wait_task_state(job_no, task, "running", timeout=SLURM_TIMEOUT)
        pid_file = server.work / f"pid.{job_no}.{task}.0"
        wait_until(pid_file.exists, what=f"task {task} to write its pid")
        pids.append(int(pid_file.read_text().split()[0]))
        server.track_pid(pids[-1])
        assert pid_alive(pids[-1])

    slurm.run("scancel", job)

    def worker_gone():
        items = [x for x in server.worker_list(all_=True) if x["id"] == wid]
        return items and items[0]["ended"] is not None

    wait_until(worker_gone, SLURM_TIMEOUT, f"worker {wid} to be lost after scancel")
    _, rows = horizontal(server.hq("worker", "list", "--all").stdout)
    assert [r["State"] for r in rows if r["ID"] == str(wid)] != ["RUNNING"]
    assert server.hq_json("worker", "list") == []
    slurm.wait_gone(job)
    assert slurm.job_fields(job)["JobState"] == "CANCELLED"
    wait_until(lambda: not any(pid_alive(p) for p in pids), SLURM_TIMEOUT,
               "the tasks' processes to end with the allocation")
    return job


def _settled_tasks(server, job_no):
    """{task id: task} once none of the job's tasks is running on the lost worker."""
    def settled():
        tasks = server.tasks(job_no)
        return tasks if all(t["state"] != "running" for t in tasks.values()) else None

    return wait_until(settled, what=f"the tasks of job {job_no} to leave the running state")


def test_scancel_of_the_allocation_loses_the_worker_and_requeues_its_task(slurm):
    server = slurm.hq
    # The task ignores SIGTERM (slurmstepd sends it to every process of the job), so
    # it is the worker, stopping on its own SIGTERM, that ends it.
    _scancel_mid_task(slurm, 1,
                      'echo $$ > "pid.1.0.$HQ_INSTANCE_ID"; '
                      'if [ "$HQ_INSTANCE_ID" = 0 ]; then trap "" TERM; exec sleep 300; fi; '
                      'echo "instance $HQ_INSTANCE_ID"')
    t = _settled_tasks(server, 1)[0]
    assert t["state"] == "waiting", t

    # the requeued task runs again (as instance 1) on another worker
    server.start_worker(cpus=1)
    server.wait_job(1)
    assert server.tasks(1)[0]["state"] == "finished"
    assert server.hq("job", "cat", "1", "stdout").stdout == "instance 1\n"


def test_tasks_killed_by_the_allocations_sigterm_are_requeued_not_failed(slurm):
    """scancel signals every process of the job at once; a task that dies of that
    SIGTERM is a casualty of the worker's end, so it must be requeued like the tasks
    the worker kills itself. Three rounds of four tasks, since the order in which the
    worker sees the signals varies."""
    server = slurm.hq
    for job_no in (1, 2, 3):
        _scancel_mid_task(slurm, job_no, f'echo $$ > "pid.{job_no}.$HQ_TASK_ID.$HQ_INSTANCE_ID"; '
                                         'exec sleep 300', n_tasks=4)
        tasks = _settled_tasks(server, job_no)
        assert [t["state"] for t in tasks.values()] == ["waiting"] * 4, \
            f"round {job_no}: {tasks}"
        server.hq("job", "cancel", str(job_no))
