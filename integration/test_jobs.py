"""Submitting, inspecting and managing jobs the way a user does (cli/REFERENCE.md
§3.3-3.5, §5-7)."""

import json
import os
import re
import signal
import subprocess

from hqtest import HQ, horizontal, parse_tables, pid_alive, read_pid_file, vertical, wait_until

ECHO = ["--", "bash", "-c", "echo out-$HQ_TASK_ID"]


def submit_echo_array(env, rng="1-4"):
    r = env.hq("submit", "--array", rng, *ECHO)
    m = re.fullmatch(r"Job submitted successfully, job ID: (\d+)\n", r.stdout)
    assert m, r.stdout
    return int(m.group(1))


def test_submit_array_then_wait_then_job_info(cluster):
    job = submit_echo_array(cluster)
    assert job == 1
    r = cluster.hq("job", "wait", "1")
    assert r.stdout == ""
    keys, info = vertical(cluster.hq("job", "info", "1").stdout)
    assert keys[:7] == ["ID", "Name", "State", "Cancel Reason", "Session", "Tasks", "Workers"]
    for k in ("Resources", "Priority", "Command", "Stdout", "Stderr", "Environment",
              "Working directory", "Task time limit", "Crash limit", "Submission date",
              "Submission directory", "Makespan"):
        assert k in keys, k
    assert info["ID"].strip() == "1"
    assert info["Name"].strip() == "bash"
    assert "FINISHED (4)" in info["State"]
    assert info["State"].startswith("[" + "#" * 40 + "]")
    assert info["Session"].strip() == "closed"
    assert info["Tasks"].strip() == "4; Ids: 1-4"
    assert info["Workers"].strip() == "w1"
    assert info["Command"].split("\n") == ["bash", "-c", "echo out-$HQ_TASK_ID"]
    assert info["Stdout"].strip() == f"{cluster.work}/job-1/%{{TASK_ID}}.stdout"
    assert info["Working directory"].strip() == str(cluster.work)
    assert info["Submission directory"].strip() == str(cluster.work)
    assert info["Resources"].strip() == "cpus: 1 compact"
    assert info["Priority"].strip() == "0"
    assert info["Crash limit"].strip() == "5"
    assert info["Task time limit"].strip() == "None"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", info["Submission date"].strip())


def test_job_info_json(cluster):
    submit_echo_array(cluster, "0-2")
    cluster.wait_job(1)
    data = cluster.hq_json("job", "info", "1")
    assert isinstance(data, list) and len(data) == 1
    j = data[0]
    assert sorted(j) == ["finished_at", "info", "max_fails", "started_at", "submits", "tasks"]
    assert j["info"]["id"] == 1 and j["info"]["name"] == "bash"
    assert j["info"]["task_count"] == 3 and j["info"]["is_open"] is False
    assert j["info"]["task_stats"]["finished"] == 3
    assert j["finished_at"] is not None
    td = j["submits"][0]["array"]
    assert td["program"]["args"] == ["bash", "-c", "echo out-$HQ_TASK_ID"]
    assert td["resources"][0]["resources"][0] == {"resource": "cpus", "request": {"Compact": 10000}}
    assert td["crash_limit"] == 5 and td["time_limit"] is None and td["priority"] == 0
    assert sorted(t["id"] for t in j["tasks"]) == [0, 1, 2]
    for t in j["tasks"]:
        assert t["state"] == "finished"
        assert t["stdout"] == f"{cluster.work}/job-1/{t['id']}.stdout"


def test_job_list_default_all_and_footer(cluster):
    submit_echo_array(cluster)
    cluster.wait_job(1)
    # a finished job is hidden by default, with the footer pointing to --all
    r = cluster.hq("job", "list")
    headers, rows = horizontal(r.stdout)
    assert headers == ["ID", "Name", "State", "Tasks"]
    assert rows == []
    assert "There is 1 job in total. Use `--all` to display all jobs." in r.stdout
    r = cluster.hq("job", "list", "--all")
    headers, rows = horizontal(r.stdout)
    assert rows == [{"ID": "1", "Name": "bash", "State": "FINISHED", "Tasks": "4"}]
    assert "in total" not in r.stdout
    # right-justified id column
    assert "|  1 | bash |" in r.stdout
    # a waiting job (no cpus big enough) is shown by default
    cluster.hq("submit", "--cpus", "64", "--", "true")
    r = cluster.hq("job", "list")
    _, rows = horizontal(r.stdout)
    assert [(x["ID"], x["State"]) for x in rows] == [("2", "WAITING")]
    assert "There are 2 jobs in total. Use `--all` to display all jobs." in r.stdout
    _, rows = horizontal(cluster.hq("job", "list", "--filter", "finished").stdout)
    assert [x["ID"] for x in rows] == ["1"]


def test_job_list_output_modes(cluster):
    submit_echo_array(cluster)
    cluster.wait_job(1)
    data = cluster.hq_json("job", "list", "--all")
    assert data == [{"cancel_reason": None, "id": 1, "is_open": False, "name": "bash",
                     "task_count": 4,
                     "task_stats": {"aborted": 0, "canceled": 0, "failed": 0, "finished": 4,
                                    "running": 0, "waiting": 0}}]
    r = cluster.hq("job", "list", "--all", mode="quiet")
    assert r.stdout == "1 FINISHED\n"


def test_submit_output_modes(cluster):
    r = cluster.hq("submit", "--", "true", mode="json")
    assert json.loads(r.stdout) == {"id": 1}
    r = cluster.hq("submit", "--", "true", mode="quiet")
    assert r.stdout == "2\n"
    r = cluster.hq("job", "submit", "--", "true")
    assert r.stdout == "Job submitted successfully, job ID: 3\n"


def test_task_list_and_task_info(cluster):
    submit_echo_array(cluster, "1-3")
    cluster.wait_job(1)
    r = cluster.hq("task", "list", "1")
    headers, rows = horizontal(r.stdout)
    assert headers == ["Task ID", "State", "Worker", "Makespan", "Error"]
    assert [(x["Task ID"], x["State"], x["Worker"]) for x in rows] == \
        [("1", "FINISHED", "w1"), ("2", "FINISHED", "w1"), ("3", "FINISHED", "w1")]
    tl = cluster.hq_json("task", "list", "1")
    assert list(tl) == ["1"]
    assert [t["id"] for t in tl["1"]] == [1, 2, 3]
    assert all(t["state"] == "finished" and t["worker"] == cluster.w1.id for t in tl["1"])
    r = cluster.hq("task", "info", "1", "2")
    keys, info = vertical(r.stdout)
    assert keys == ["Task ID", "State", "Command", "Environment", "Worker", "Start", "End",
                    "Makespan", "Workdir", "Stdout", "Stderr", "Time limit", "Resources",
                    "Priority", "Pin", "Task dir", "Crash limit", "Dependencies", "Error"]
    assert info["Task ID"].strip() == "2"
    assert info["State"].strip() == "FINISHED"
    assert info["Worker"].strip() == "w1"
    assert info["Stdout"].strip() == f"{cluster.work}/job-1/2.stdout"
    assert info["Stderr"].strip() == f"{cluster.work}/job-1/2.stderr"
    assert info["Workdir"].strip() == str(cluster.work)
    assert re.fullmatch(r"\d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d", info["End"].strip())
    ti = cluster.hq_json("task", "info", "1", "3")
    assert [t["id"] for t in ti] == [3] and ti[0]["state"] == "finished"


def test_job_cat_with_and_without_header(cluster):
    submit_echo_array(cluster, "1-3")
    cluster.wait_job(1)
    r = cluster.hq("job", "cat", "1", "stdout")
    assert r.stdout == "out-1\nout-2\nout-3\n"
    r = cluster.hq("job", "cat", "1", "stdout", "--print-task-header")
    assert r.stdout == "# Job 1, task 1\nout-1\n# Job 1, task 2\nout-2\n# Job 1, task 3\nout-3\n"
    r = cluster.hq("job", "cat", "1", "--tasks", "2", "stdout")
    assert r.stdout == "out-2\n"
    r = cluster.hq("job", "cat", "1", "stderr")
    assert r.stdout == ""
    r = cluster.hq("job", "cat", "1", "stdout", mode="json", check=False)
    assert r.returncode == 1
    assert json.loads(r.stdout) == {"error": "JSON output mode doesn't support job output"}


def test_job_summary_all_modes(cluster):
    submit_echo_array(cluster)
    cluster.wait_job(1)
    cluster.hq("submit", "--cpus", "64", "--", "true")
    headers, rows = horizontal(cluster.hq("job", "summary").stdout)
    assert headers == ["Status", "Count"]
    assert [(x["Status"], x["Count"]) for x in rows] == [
        ("RUNNING", "0"), ("WAITING", "1"), ("FINISHED", "1"), ("FAILED", "0"),
        ("ABORTED", "0"), ("CANCELED", "0")]
    assert cluster.hq_json("job", "summary") == {
        "Aborted": 0, "Canceled": 0, "Failed": 0, "Finished": 1, "Running": 0, "Waiting": 1}
    r = cluster.hq("job", "summary", mode="quiet")
    assert r.stdout == ("RUNNING 0\nWAITING 1\nFINISHED 1\nFAILED 0\nABORTED 0\n"
                        "CANCELED 0\n")


def test_job_task_ids(cluster):
    cluster.hq("submit", "--array", "1-3,5,7-9", "--", "true")
    cluster.wait_job(1)
    assert cluster.hq("job", "task-ids", "1").stdout.strip() == "1-3,5,7-9"
    assert cluster.hq_json("job", "task-ids", "1") == {"1": [1, 2, 3, 5, 7, 8, 9]}
    r = cluster.hq("job", "task-ids", "7", check=False)
    assert r.returncode == 1 and "Job Id not found" in r.stderr


def test_job_forget(cluster):
    cluster.hq("submit", "--", "true")
    cluster.wait_job(1)
    cluster.hq("submit", "--cpus", "64", "--", "true")
    r = cluster.hq("job", "forget", "all")
    assert "1 job were forgotten, 1 were ignored due to wrong state or invalid ID" in r.stderr
    _, rows = horizontal(cluster.hq("job", "list", "--all").stdout)
    assert [x["ID"] for x in rows] == ["2"]
    r = cluster.hq("job", "info", "1")
    assert "Job 1 not found" in r.stderr


def test_job_cancel_kills_running_tasks(cluster):
    script = 'echo $$ > "pid.$HQ_TASK_ID"; exec sleep 100'
    cluster.hq("submit", "--array", "0-2", "--", "bash", "-c", script)
    pidfiles = [cluster.work / "pid.0", cluster.work / "pid.1"]
    wait_until(lambda: all(p.exists() and p.read_text().strip() for p in pidfiles),
               what="both tasks to run")
    pids = [read_pid_file(p) for p in pidfiles]
    for p in pids:
        cluster.track_pid(p)
    cluster.wait_task_state(1, 0, "running")
    cluster.wait_task_state(1, 1, "running")
    r = cluster.hq("job", "cancel", "1")
    assert "Job 1 canceled (3 tasks canceled, 0 tasks already finished)" in r.stderr
    tasks = cluster.tasks(1)
    assert all(t["state"] == "canceled" for t in tasks.values())
    for p in pids:
        wait_until(lambda p=p: not pid_alive(p), 10, f"task process {p} to be killed")
    assert not (cluster.work / "pid.2").exists()
    _, rows = horizontal(cluster.hq("job", "list", "--all").stdout)
    assert rows[0]["State"] == "CANCELED"
    r = cluster.hq("job", "cancel", "1")
    assert "Canceling job 1 failed; all tasks are already finished" in r.stderr
    r = cluster.hq("job", "cancel", "9")
    assert "Canceling job 9 failed; job not found" in r.stderr


def test_cancel_reason_is_shown_in_verbose_list(cluster):
    cluster.hq("submit", "--cpus", "64", "--", "true")
    cluster.hq("job", "cancel", "1", "--reason", "no longer needed")
    headers, rows = horizontal(cluster.hq("job", "list", "--all", "--verbose").stdout)
    assert headers == ["ID", "Name", "State", "Tasks", "Cancel Reason"]
    assert rows[0]["Cancel Reason"] == "no longer needed"
    assert cluster.hq_json("job", "list", "--all")[0]["cancel_reason"] == "no longer needed"


def test_placeholders_in_stdout_and_cwd(cluster):
    for t in (0, 1):
        (cluster.work / f"wd-{t}").mkdir()
    cluster.hq("submit", "--array", "0-1",
               "--cwd", "%{SUBMIT_DIR}/wd-%{TASK_ID}",
               "--stdout", "out/%{JOB_ID}-%{TASK_ID}-%{INSTANCE_ID}.txt",
               "--stderr", "none",
               "--", "bash", "-c", "pwd")
    cluster.wait_job(1)
    for t in (0, 1):
        f = cluster.work / f"wd-{t}" / "out" / f"1-{t}-0.txt"
        assert f.read_text() == f"{cluster.work}/wd-{t}\n"
        assert not (cluster.work / f"wd-{t}" / "job-1").exists()
    info = cluster.hq_json("task", "info", "1", "1")[0]
    assert info["cwd"] == f"{cluster.work}/wd-1"
    assert info["stdout"] == f"{cluster.work}/wd-1/out/1-1-0.txt"
    assert info["stderr"] is None


def test_env_option(cluster):
    cluster.hq("submit", "--env", "FOO=bar baz", "--env", "EMPTY", "--",
               "bash", "-c", 'echo "$FOO|${EMPTY+set}|$EMPTY|"')
    cluster.wait_job(1)
    assert cluster.hq("job", "cat", "1", "stdout").stdout == "bar baz|set||\n"
    _, info = vertical(cluster.hq("job", "info", "1").stdout)
    assert info["Environment"].split("\n") == ["EMPTY=", "FOO=bar baz"]


def test_each_line_sets_hq_entry(cluster):
    (cluster.work / "lines.txt").write_text("alpha\nbeta gamma\n\ndelta\n")
    cluster.hq("submit", "--each-line", "lines.txt", "--", "bash", "-c", 'echo "[$HQ_ENTRY]"')
    cluster.wait_job(1)
    assert cluster.hq_json("job", "task-ids", "1") == {"1": [0, 1, 2, 3]}
    r = cluster.hq("job", "cat", "1", "stdout")
    assert r.stdout == "[alpha]\n[beta gamma]\n[]\n[delta]\n"


def test_each_line_with_array_keeps_listed_lines(cluster):
    (cluster.work / "lines.txt").write_text("l0\nl1\nl2\nl3\n")
    cluster.hq("submit", "--each-line", "lines.txt", "--array", "1,3-9", "--",
               "bash", "-c", 'echo "$HQ_TASK_ID=$HQ_ENTRY"')
    cluster.wait_job(1)
    assert cluster.hq_json("job", "task-ids", "1") == {"1": [1, 3]}
    assert cluster.hq("job", "cat", "1", "stdout").stdout == "1=l1\n3=l3\n"


def test_array_stdout_without_task_id_warns(cluster):
    r = cluster.hq("submit", "--array", "0-1", "--stdout", "same.out", "--", "true")
    assert ("You have submitted an array job, but the `stdout` path does not contain "
            "the task ID placeholder.") in r.stderr
    assert "Consider adding `%{TASK_ID}` to the `--stdout` value." in r.stderr
    r = cluster.hq("submit", "--array", "0-1", "--", "true")
    assert "task ID placeholder" not in r.stderr


def test_from_json_sets_compact_entries(cluster):
    (cluster.work / "in.json").write_text('[{"x": 1}, [1, 2], "s"]')
    cluster.hq("submit", "--from-json", "in.json", "--", "bash", "-c", 'echo "$HQ_ENTRY"')
    cluster.wait_job(1)
    r = cluster.hq("job", "cat", "1", "stdout")
    assert r.stdout == '{"x":1}\n[1,2]\n"s"\n'
    (cluster.work / "bad.json").write_text('{"x": 1}')
    r = cluster.hq("submit", "--from-json", "bad.json", "--", "true", check=False)
    assert r.returncode == 1
    assert "The top element of the provided JSON file has to be an array" in r.stderr


def test_priority_orders_tasks_on_a_single_cpu(server):
    order = server.work / "order"
    for name, prio in (("low", "0"), ("high", "10"), ("mid", "5")):
        server.hq("submit", "--priority", prio, "--", "bash", "-c", f"echo {name} >> {order}")
    server.start_worker(cpus=1)
    for j in (1, 2, 3):
        server.wait_job(j)
    assert order.read_text() == "high\nmid\nlow\n"


def test_time_limit_fails_the_task(cluster):
    cluster.hq("submit", "--time-limit", "1s", "--", "sleep", "30")
    cluster.wait_job(1, timeout=20)
    t = cluster.tasks(1)[0]
    assert t["state"] == "failed"
    assert t["error"] == "Time limit reached"
    _, rows = horizontal(cluster.hq("task", "list", "1", "-v").stdout)
    assert rows[0]["Error"] == "Time limit reached"
    _, info = vertical(cluster.hq("task", "info", "1", "0").stdout)
    assert info["Time limit"].strip() == "1s"


def test_max_fails_aborts_the_rest(server):
    """`--max-fails N` (cli/REFERENCE.md §3.3): after more than N failed tasks, the
    remaining tasks are aborted."""
    server.hq("submit", "--array", "0-9", "--max-fails", "1", "--",
              "bash", "-c", "sleep 0.3; exit 1")
    server.start_worker(cpus=1)
    server.wait_job(1)
    stats = server.job_state_counts(1)
    assert stats["failed"] >= 2
    assert stats["aborted"] >= 1
    assert stats["canceled"] == 0
    assert stats["failed"] + stats["aborted"] == 10
    _, rows = horizontal(server.hq("job", "list", "--all").stdout)
    assert rows[0]["State"] == "FAILED"
    assert server.hq_json("job", "info", "1")[0]["max_fails"] == 1


def test_failed_task_shows_exit_code_in_job_info(cluster):
    cluster.hq("submit", "--", "bash", "-c", "exit 3")
    cluster.wait_job(1)
    r = cluster.hq("job", "info", "1")
    _, info = vertical(r.stdout)
    assert info["State"].strip() == "FAILED"
    headers, rows = horizontal(r.stdout, 1)
    assert headers == ["Task ID", "Worker", "Error"]
    assert rows == [{"Task ID": "0", "Worker": "w1",
                     "Error": "Program terminated with exit code 3."}]
    assert "1 tasks failed." in r.stdout
    r = cluster.hq("task", "list", "1")
    _, rows = horizontal(r.stdout)
    assert rows[0]["Error"] == "Program terminat..."
    assert "An error message was truncated. Use -v to display the full error." in r.stderr


def test_task_environment_variables(cluster):
    cluster.hq("submit", "--cpus", "2", "--", "bash", "-c", "env")
    cluster.wait_job(1)
    out = cluster.hq("job", "cat", "1", "stdout").stdout
    env = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert env["HQ_JOB_ID"] == "1"
    assert env["HQ_TASK_ID"] == "0"
    assert env["HQ_INSTANCE_ID"] == "0"
    assert env["HQ_SUBMIT_DIR"] == str(cluster.work)
    assert env["HQ_CPUS"] == "0,1"
    assert env["OMP_NUM_THREADS"] == "2"
    assert env["HQ_RESOURCE_REQUEST_cpus"] == "2 compact"
    assert env["HQ_RESOURCE_VALUES_cpus"] == "0,1"
    assert "HQ_ENTRY" not in env
    assert "HQ_RESOURCE_VARIANT" not in env


def test_two_cpu_tasks_do_not_overlap_on_a_two_cpu_worker(cluster):
    script = ("mkdir lock.d 2>/dev/null || echo overlap >> overlaps; sleep 0.4; "
              "rmdir lock.d")
    cluster.hq("submit", "--array", "0-2", "--cpus", "2", "--", "bash", "-c", script)
    cluster.wait_job(1)
    assert cluster.job_state_counts(1)["finished"] == 3
    assert not (cluster.work / "overlaps").exists()


def test_one_cpu_tasks_run_side_by_side_on_a_two_cpu_worker(cluster):
    # both tasks must be running at once: each waits for the other's marker
    script = ('touch "m.$HQ_TASK_ID"; for i in $(seq 100); do '
              '[ -e "m.$((1 - HQ_TASK_ID))" ] && exit 0; sleep 0.1; done; exit 1')
    cluster.hq("submit", "--array", "0-1", "--", "bash", "-c", script)
    cluster.wait_job(1)
    assert cluster.job_state_counts(1)["finished"] == 2


def test_custom_resource_only_on_the_worker_that_has_it(server):
    plain = server.start_worker(cpus=1, hostname="plain")
    server.hq("submit", "--resource", "gpus=1", "--array", "0-3", "--",
              "bash", "-c", 'echo "$HQ_RESOURCE_VALUES_gpus $HQ_RESOURCE_REQUEST_gpus"')
    # the plain worker is busy with other work and finishes it, but never takes job 1
    server.hq("submit", "--array", "0-2", "--", "true")
    server.wait_job(2)
    assert all(t["worker"] == plain.id for t in server.tasks(2).values())
    assert all(t["state"] == "waiting" for t in server.tasks(1).values())
    gpu = server.start_worker("--resource", "gpus=[0,1]", cpus=1, hostname="gpu")
    server.wait_job(1)
    tasks = server.tasks(1)
    assert all(t["state"] == "finished" and t["worker"] == gpu.id for t in tasks.values())
    lines = server.hq("job", "cat", "1", "stdout").stdout.splitlines()
    assert len(lines) == 4
    for line in lines:
        value, request = line.split(" ", 1)
        assert value in ("0", "1")
        assert request == "1 compact"


def test_two_gpus_requested_get_both_labels(server):
    server.start_worker("--resource", "gpus=[a,b]", cpus=1)
    server.hq("submit", "--resource", "gpus=2", "--", "bash", "-c",
              'echo "$HQ_RESOURCE_VALUES_gpus"')
    server.wait_job(1)
    assert server.hq("job", "cat", "1", "stdout").stdout == "a,b\n"


def test_missing_program_fails_with_cannot_execute(cluster):
    cluster.hq("submit", "--", "/nonexistent/prog", "arg1")
    cluster.wait_job(1)
    t = cluster.tasks(1)[0]
    assert t["state"] == "failed"
    assert t["error"].startswith('Cannot execute "/nonexistent/prog arg1": '), t["error"]
    r = cluster.hq("task", "list", "1", "-v")
    assert 'Cannot execute "/nonexistent/prog arg1"' in r.stdout


def test_crash_limit_one_fails_the_task_after_a_worker_crash(server):
    w = server.start_worker(cpus=1, heartbeat="1s")
    server.hq("submit", "--crash-limit", "1", "--", "bash", "-c",
              'echo $$ > pid; exec sleep 100')
    server.wait_task_state(1, 0, "running")
    wait_until(lambda: (server.work / "pid").exists() and read_pid_file(server.work / "pid"))
    server.track_pid(read_pid_file(server.work / "pid"))
    w.proc.popen.kill()
    w.proc.popen.wait()
    t = server.wait_task_state(1, 0, ("failed",), timeout=30)
    assert t["error"]
    # a second worker would have run it again without the limit
    server.start_worker(cpus=1)
    assert server.tasks(1)[0]["state"] == "failed"


def test_pipe_to_head_terminates_quietly(cluster):
    for _ in range(3):
        cluster.hq("submit", "--", "true")
    cluster.wait_job("all")
    r = subprocess.run(f"'{HQ}' --server-dir '{cluster.server_dir}' job list --all | head -1",
                       shell=True, capture_output=True, text=True, env=cluster.env,
                       cwd=str(cluster.work), timeout=30)
    assert r.returncode == 0
    assert r.stdout.startswith("+")
    assert r.stderr == ""


def test_closed_stdout_with_sigpipe_ignored_by_parent(cluster):
    """hq restores the default SIGPIPE even when its parent ignored it."""
    cluster.hq("submit", "--", "true")
    cluster.wait_job(1)
    rd, wr = os.pipe()
    os.close(rd)
    try:
        r = subprocess.run([str(HQ), "--server-dir", str(cluster.server_dir),
                            "job", "list", "--all"],
                           stdout=wr, stderr=subprocess.PIPE, text=True, env=cluster.env,
                           cwd=str(cluster.work), timeout=30, restore_signals=False,
                           preexec_fn=lambda: signal.signal(signal.SIGPIPE, signal.SIG_IGN))
    finally:
        os.close(wr)
    # with the default disposition restored, the first write to the closed pipe
    # ends hq by SIGPIPE (instead of an error or a silent EPIPE loop)
    assert r.returncode == -signal.SIGPIPE, (r.returncode, r.stderr)
    assert r.stderr == "", r.stderr


def test_job_open_submit_close(cluster):
    r = cluster.hq("job", "open")
    assert r.stdout == "Job 1 is open.\n"
    cluster.hq("submit", "--job", "1", "--", "true")
    cluster.hq("submit", "--job", "1", "--", "true")
    r = cluster.hq("job", "list")
    assert "* = Open jobs" in r.stdout
    _, rows = horizontal(r.stdout)
    assert rows[0]["ID"] == "*1"
    cluster.hq("job", "wait", "1", "--without-close")
    assert cluster.hq_json("job", "task-ids", "1") == {"1": [0, 1]}
    r = cluster.hq("job", "close", "1")
    assert "Job 1 closed" in r.stderr
    cluster.wait_job(1)
    r = cluster.hq("submit", "--job", "1", "--", "true", check=False)
    assert r.returncode == 1 and "Job 1 is not opened." in r.stderr


def test_multiple_tables_parse_helper_sanity():
    text = "+---+\n| a |\n+---+\nfooter\n"
    tables, other = parse_tables(text)
    assert tables == [[["a"]]] and other == ["footer"]
