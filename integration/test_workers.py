"""hq worker start / list / info / stop, worker lifetime limits and manager detection."""

import json
import re

from hqtest import HQ, Worker, horizontal, vertical, wait_until

WORKER_INFO_KEYS = ["Worker", "State", "Hostname", "Started", "Data provider",
                    "Working directory", "Heartbeat", "Idle timeout", "Overview interval",
                    "Resources", "Time Limit", "Process pid", "Group", "Manager",
                    "Manager Job ID", "Last task started"]


def test_worker_list_table_and_resources_summary(server):
    w = server.start_worker("--resource", "gpus=[0,1]", cpus=2)
    r = server.hq("worker", "list")
    headers, rows = horizontal(r.stdout)
    assert headers == ["ID", "State", "Hostname", "Resources", "Manager", "Manager Job ID"]
    assert len(rows) == 1
    row = rows[0]
    assert row["ID"] == str(w.id)
    assert row["State"] == "RUNNING"
    assert row["Hostname"] == "w1"
    assert row["Resources"].startswith("cpus 2; gpus 2"), row["Resources"]
    assert row["Manager"] == "None"
    assert row["Manager Job ID"] == "N/A"


def test_worker_list_json_and_quiet(server):
    w = server.start_worker("--resource", "gpus=[a,b]", cpus=2, heartbeat="3s")
    data = server.worker_list()
    assert len(data) == 1
    item = data[0]
    assert item["id"] == w.id
    conf = item["configuration"]
    assert conf["hostname"] == "w1"
    assert conf["heartbeat_interval"] == 3.0
    assert conf["idle_timeout"] is None and conf["time_limit"] is None
    assert conf["group"] == "default"
    assert conf["on_server_lost"] == "stop"
    res = {x["name"]: x for x in conf["resources"]["resources"]}
    assert res["cpus"] == {"name": "cpus", "kind": "range", "start": 0, "end": 1}
    assert res["gpus"] == {"name": "gpus", "kind": "list", "values": ["a", "b"]}
    names = [x["name"] for x in conf["resources"]["resources"]]
    assert names == sorted(names)
    assert item["allocation"] is None and item["ended"] is None
    assert item["runtime_info"]["SingleNodeTasks"]["assigned_tasks"] == 0
    r = server.hq("worker", "list", mode="quiet")
    assert r.stdout == f"{w.id} RUNNING\n"


def test_worker_info_table(server):
    w = server.start_worker(cpus=2, heartbeat="2s")
    r = server.hq("worker", "info", str(w.id))
    keys, info = vertical(r.stdout)
    assert keys == WORKER_INFO_KEYS + ["Runtime Info"]
    assert info["Worker"].strip() == str(w.id)
    assert info["State"].strip() == "RUNNING"
    assert info["Hostname"].strip() == "w1"
    assert re.fullmatch(r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"', info["Started"].strip())
    assert info["Heartbeat"].strip() == "2s"
    assert info["Idle timeout"].strip() == "None"
    assert info["Overview interval"].strip() == "None"
    assert info["Time Limit"].strip() == "None"
    assert info["Resources"].split("\n")[0] == "cpus: 2"
    assert int(info["Process pid"]) == w.pid
    assert info["Group"].strip() == "default"
    assert info["Working directory"].strip().startswith(str(server.tmp))
    assert info["Runtime Info"].strip() == "assigned tasks: 0"
    r = server.hq("worker", "info", "77")
    assert "Worker 77 not found" in r.stderr


def test_worker_start_logs_version_and_prints_its_table(server):
    w = server.start_worker(cpus=1)
    server.hq("worker", "stop", str(w.id))
    assert w.proc.wait_exit() == 0
    first = [ln for ln in w.proc.stderr().splitlines() if ln.strip()][0]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ INFO HyperQueue \S+", first), first
    keys, info = vertical(w.proc.stdout())
    assert keys == WORKER_INFO_KEYS
    assert info["Hostname"].strip() == "w1"


def test_worker_stop_exits_0_and_is_listed_as_stopped(server):
    w1 = server.start_worker(cpus=1)
    w2 = server.start_worker(cpus=1)
    r = server.hq("worker", "stop", str(w1.id))
    assert f"Worker {w1.id} stopped" in r.stderr
    assert w1.proc.wait_exit() == 0
    _, rows = horizontal(server.hq("worker", "list").stdout)
    assert [x["ID"] for x in rows] == [str(w2.id)]
    _, rows = horizontal(server.hq("worker", "list", "--all").stdout)
    assert [(x["ID"], x["State"]) for x in rows] == [(str(w1.id), "STOPPED"),
                                                    (str(w2.id), "RUNNING")]
    _, rows = horizontal(server.hq("worker", "list", "--filter", "offline").stdout)
    assert [x["ID"] for x in rows] == [str(w1.id)]
    ended = [x for x in server.worker_list(all_=True) if x["id"] == w1.id][0]
    assert ended["ended"] is not None and ended["runtime_info"] is None
    r = server.hq("worker", "stop", str(w1.id))
    assert f"Stopping worker {w1.id} failed; worker is already stopped" in r.stderr
    r = server.hq("worker", "stop", "99")
    assert "Stopping worker 99 failed; worker not found" in r.stderr
    assert w2.proc.poll() is None


def test_worker_stop_requeues_its_running_task(server):
    w1 = server.start_worker(cpus=1)
    server.hq("submit", "--", "bash", "-c",
              'echo $$ >> "pid.$HQ_INSTANCE_ID"; [ "$HQ_INSTANCE_ID" = 0 ] && exec sleep 100; '
              'echo "instance $HQ_INSTANCE_ID"')
    server.wait_task_state(1, 0, "running")
    wait_until(lambda: (server.work / "pid.0").exists())
    server.track_pid(int((server.work / "pid.0").read_text().split()[0]))
    server.hq("worker", "stop", str(w1.id))
    assert w1.proc.wait_exit() == 0
    server.start_worker(cpus=1)
    server.wait_job(1)
    assert server.tasks(1)[0]["state"] == "finished"
    assert server.hq("job", "cat", "1", "stdout").stdout == "instance 1\n"


def test_idle_timeout_stops_worker_with_exit_0(server):
    w = server.start_worker("--idle-timeout", "1s", cpus=1)
    assert w.proc.wait_exit(timeout=20) == 0
    _, rows = horizontal(server.hq("worker", "list", "--all").stdout)
    assert rows[0]["State"] == "IDLE TIMEOUT"


def test_idle_timeout_waits_for_running_tasks(server):
    server.hq("submit", "--", "sleep", "2")
    w = server.start_worker("--idle-timeout", "1s", cpus=1)
    server.wait_job(1)
    assert server.tasks(1)[0]["state"] == "finished"
    assert w.proc.wait_exit(timeout=20) == 0


def test_worker_time_limit_exits_0(server):
    w = server.start_worker("--time-limit", "2s", cpus=1)
    _, info = vertical(server.hq("worker", "info", str(w.id)).stdout)
    assert re.fullmatch(r"[12]s( \d+ms)?", info["Time Limit"].strip()), info["Time Limit"]
    assert w.proc.wait_exit(timeout=20) == 0
    _, rows = horizontal(server.hq("worker", "list", "--all").stdout)
    assert rows[0]["State"] == "TIME LIMIT REACHED"


def fake_slurm(hq_env, job_id="4242"):
    bindir = hq_env.tmp / "fakebin"
    bindir.mkdir()
    scontrol = bindir / "scontrol"
    scontrol.write_text(
        "#!/bin/sh\n"
        f"echo \"$@\" >> '{hq_env.tmp}/scontrol.calls'\n"
        f"echo 'JobId={job_id} JobName=hq'\n"
        "echo '   UserId=root(0) GroupId=root(0) MCS_label=N/A'\n"
        "echo '   JobState=RUNNING Reason=None Dependency=(null)'\n"
        "echo '   RunTime=00:00:10 TimeLimit=01:00:00 TimeMin=N/A'\n"
        "echo '   NodeList=localhost'\n")
    scontrol.chmod(0o755)
    env = dict(hq_env.env)
    env["PATH"] = f"{bindir}:{env.get('PATH', '')}"
    env["SLURM_JOB_ID"] = job_id
    env["SLURM_JOBID"] = job_id
    env["SLURM_JOB_NODELIST"] = "localhost"
    return env


def test_slurm_manager_is_detected_from_environment(server):
    env = fake_slurm(server)
    w = server.start_worker("--manager", "slurm", cpus=1, env=env)
    _, rows = horizontal(server.hq("worker", "list").stdout)
    assert rows[0]["Manager"] == "SLURM"
    assert rows[0]["Manager Job ID"] == "4242"
    item = server.worker_list()[0]
    assert item["allocation"] == {"id": "4242", "manager": "Slurm"}
    assert item["configuration"]["group"] == "4242"
    _, info = vertical(server.hq("worker", "info", str(w.id)).stdout)
    assert info["Manager"].strip() == "SLURM"
    assert info["Manager Job ID"].strip() == "4242"


def test_slurm_detect_is_the_default(server):
    env = fake_slurm(server, "777")
    server.start_worker(cpus=1, env=env)
    _, rows = horizontal(server.hq("worker", "list").stdout)
    assert (rows[0]["Manager"], rows[0]["Manager Job ID"]) == ("SLURM", "777")


def test_slurm_time_limit_comes_from_scontrol(server):
    env = fake_slurm(server)
    server.start_worker("--manager", "slurm", cpus=1, env=env)
    conf = server.worker_list()[0]["configuration"]
    assert conf["time_limit"] is not None
    assert 3500 <= conf["time_limit"] <= 3590


def test_manager_none_ignores_slurm_environment(server):
    env = fake_slurm(server)
    server.start_worker("--manager", "none", cpus=1, env=env)
    _, rows = horizontal(server.hq("worker", "list").stdout)
    assert (rows[0]["Manager"], rows[0]["Manager Job ID"]) == ("None", "N/A")


def _worker_start_exit(hq_env, name, *extra, env=None):
    """Runs `hq worker start` against the test's server; returns (exit code, stderr)."""
    proc = hq_env.spawn([HQ, "worker", "start", "--server-dir", hq_env.server_dir,
                         "--cpus", "1", *extra], name, env=env)
    return proc.wait_exit(timeout=30), proc.stderr()


def test_manager_slurm_outside_slurm_exits_1_with_hyperqueues_text(server):
    code, err = _worker_start_exit(server, "worker-noslurm", "--manager", "slurm")
    assert code == 1, err
    assert err.strip().splitlines()[-1] == \
        "SLURM_JOB_ID/SLURM_JOBID not found. The process is not running under SLURM"
    assert server.worker_list() == []


def test_manager_pbs_outside_pbs_exits_1_with_hyperqueues_text(server):
    env = dict(server.env, PBS_JOBID="17.pbs")  # a job id alone is not a PBS environment
    code, err = _worker_start_exit(server, "worker-nopbs", "--manager", "pbs", env=env)
    assert code == 1, err
    assert err.strip().splitlines()[-1] == \
        "PBS_ENVIRONMENT not found. The process is not running under PBS"
    assert server.worker_list() == []


def fake_pbs(hq_env, job_id="123.pbs-server", limit="01:00:00", used="00:01:11"):
    """A fake `qstat` that answers `qstat -f ID -F json` as PBS Pro does, and logs its
    arguments to qstat.calls; plus the environment of a PBS job."""
    bindir = hq_env.tmp / "fakebin-pbs"
    bindir.mkdir()
    doc = {"timestamp": 1700000000, "pbs_version": "2022.1.1", "pbs_server": "pbs-server",
           "Jobs": {job_id: {"Job_Name": "hq", "job_state": "R",
                             "resources_used": {"cpupct": 0, "walltime": used},
                             "Resource_List": {"ncpus": 1, "nodect": 1, "walltime": limit}}}}
    qstat = bindir / "qstat"
    qstat.write_text(
        "#!/bin/sh\n"
        f"echo \"$@\" >> '{hq_env.tmp}/qstat.calls'\n"
        f"cat <<'EOF'\n{json.dumps(doc, indent=4)}\nEOF\n")
    qstat.chmod(0o755)
    env = dict(hq_env.env)
    env["PATH"] = f"{bindir}:{env.get('PATH', '')}"
    env["PBS_ENVIRONMENT"] = "PBS_BATCH"
    env["PBS_JOBID"] = job_id
    return env


def test_pbs_time_limit_comes_from_qstat_json(server):
    env = fake_pbs(server)
    w = server.start_worker("--manager", "pbs", cpus=1, env=env)
    assert (server.tmp / "qstat.calls").read_text() == "-f 123.pbs-server -F json\n"
    _, info = vertical(server.hq("worker", "info", str(w.id)).stdout)
    assert info["Time Limit"].strip() == "58m 49s"
    assert info["Manager"].strip() == "PBS"
    assert info["Manager Job ID"].strip() == "123.pbs-server"
    item = server.worker_list()[0]
    assert item["allocation"] == {"id": "123.pbs-server", "manager": "PBS"}
    assert item["configuration"]["time_limit"] == 3529


def test_pbs_is_detected_by_default(server):
    env = fake_pbs(server, job_id="9.srv", limit="10:00", used="00:00:00")
    w = server.start_worker(cpus=1, env=env)
    _, info = vertical(server.hq("worker", "info", str(w.id)).stdout)
    assert (info["Manager"].strip(), info["Time Limit"].strip()) == ("PBS", "10m")


def test_worker_without_server_fails_clearly(hq_env):
    empty = hq_env.tmp / "nothing"
    empty.mkdir()
    proc = hq_env.spawn([HQ, "worker", "start", "--server-dir", empty, "--cpus", "1"],
                        "worker-noserver")
    assert proc.wait_exit(timeout=30) == 1
    assert f'No running instance of HQ found at "{empty}".' in proc.stderr()


def test_worker_removes_its_default_work_dir_at_exit(server):
    """Without --work-dir the worker makes its own temporary directory (with the
    task dirs in it); it must not be left behind in $TMPDIR after the worker ends."""
    tmpdir = server.tmp / "tmpdir"
    tmpdir.mkdir()
    env = dict(server.env, TMPDIR=str(tmpdir))
    proc = server.spawn([HQ, "worker", "start", "--server-dir", server.server_dir,
                         "--hostname", "tw", "--cpus", "1"], "worker-tw", env=env)
    w = Worker(proc, "tw", None)
    server.wait_worker(w)
    work_dir = [x for x in server.worker_list() if x["id"] == w.id][0]["configuration"]["work_dir"]
    assert work_dir.startswith(str(tmpdir) + "/hq-worker") and work_dir.endswith("/work")
    server.hq("submit", "--task-dir", "--wait", "--", "bash", "-c", "touch $HQ_TASK_DIR/x")
    assert list(tmpdir.iterdir()), "the worker's directory exists while it runs"
    server.hq("worker", "stop", str(w.id))
    assert proc.wait_exit() == 0
    assert list(tmpdir.iterdir()) == []
