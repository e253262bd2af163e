"""The job model as a user drives it (cli/REFERENCE.md §1.5-1.8, §3.3-3.5, §5-7):
directives, each-line / from-json sweeps, open jobs, cat / forget / summary /
task-ids, the progress line on a terminal, placeholders and their warnings, task
dirs, max-fails, and the small worker/server commands."""

import json
import os
import pty
import re
import select
import subprocess
import time

from hqtest import HQ, horizontal, vertical


def states(env, job):
    return {t["id"]: t["state"] for t in env.hq_json("task", "list", str(job))[str(job)]}


def out(env, job, task, ext="stdout"):
    return (env.work / f"job-{job}" / f"{task}.{ext}").read_text()


def test_directive_driven_script(cluster):
    script = cluster.work / "run.sh"
    script.write_text("#!/bin/bash\n"
                      "# a comment\n"
                      "\n"
                      "#HQ --name sweep --array 1-3\n"
                      "   #HQ --env GREETING=hi --cpus 1\n"
                      "echo $GREETING $HQ_TASK_ID $0\n"
                      "#HQ --name ignored-after-code\n")
    script.chmod(0o755)
    r = cluster.hq("submit", "./run.sh")
    assert r.stdout == "Job submitted successfully, job ID: 1\n"
    cluster.wait_job(1)
    assert states(cluster, 1) == {1: "finished", 2: "finished", 3: "finished"}
    assert out(cluster, 1, 2) == "hi 2 ./run.sh\n"
    _, info = vertical(cluster.hq("job", "info", "1").stdout)
    assert info["Name"].strip() == "sweep"
    # the shebang is prepended to the command
    assert [l.strip() for l in info["Command"].split("\n")] == ["/bin/bash", "./run.sh"]
    # the command line wins over a directive; --directives off ignores them
    cluster.hq("submit", "--name", "cli", "./run.sh")
    cluster.hq("submit", "--directives", "off", "--", "bash", "./run.sh")
    jobs = {j["id"]: j for j in cluster.hq_json("job", "list", "--all")}
    assert jobs[2]["name"] == "cli" and jobs[2]["task_count"] == 3
    assert jobs[3]["name"] == "bash" and jobs[3]["task_count"] == 1


def test_bad_directive_and_stdin_directives(cluster):
    script = cluster.work / "bad.sh"
    script.write_text("#HQ --no-such-flag\necho x\n")
    r = cluster.hq("submit", "bad.sh", check=False)
    assert r.returncode == 1
    assert r.stderr.startswith("Could not parse directives from bad.sh: You have used invalid "
                               "parameter(s) after a #HQ directive.\n\nCaused by:\n")
    r = cluster.hq("submit", "--directives", "stdin", "--", "bash", check=False)
    assert (r.returncode, r.stderr) == (
        1, "You have to use `--stdin` when you specify `--directives=stdin`.\n")
    r = cluster.hq("submit", "--stdin", "--directives", "stdin", "--", "bash",
                   input="#HQ --name fromstdin\necho via-stdin\n")
    assert "Reading data from stdin. In the interactive mode press Ctrl-D to submit." in r.stderr
    cluster.wait_job(1)
    assert out(cluster, 1, 0) == "via-stdin\n"
    assert cluster.hq_json("job", "list", "--all")[0]["name"] == "fromstdin"


def test_each_line_sweep(cluster):
    (cluster.work / "lines.txt").write_text("alpha\nbeta\n\ngamma\n")
    cluster.hq("submit", "--each-line", "lines.txt", "--", "bash", "-c",
               'echo "[$HQ_ENTRY]"')
    cluster.wait_job(1)
    assert states(cluster, 1) == {0: "finished", 1: "finished", 2: "finished", 3: "finished"}
    assert [out(cluster, 1, i) for i in range(4)] == ["[alpha]\n", "[beta]\n", "[]\n",
                                                      "[gamma]\n"]
    # --array selects entries; out-of-range ids are dropped
    cluster.hq("submit", "--each-line", "lines.txt", "--array", "1,3,10", "--", "bash", "-c",
               'echo "$HQ_ENTRY"')
    cluster.wait_job(2)
    assert states(cluster, 2) == {1: "finished", 3: "finished"}
    assert out(cluster, 2, 3) == "gamma\n"


def test_from_json_sweep(cluster):
    (cluster.work / "p.json").write_text('[{"x": 1, "y": [1, 2]}, "s", 3.5, null]')
    cluster.hq("submit", "--from-json", "p.json", "--array", "0,2-3", "--", "bash", "-c",
               "echo $HQ_ENTRY")
    cluster.wait_job(1)
    assert states(cluster, 1) == {0: "finished", 2: "finished", 3: "finished"}
    assert out(cluster, 1, 0) == '{"x":1,"y":[1,2]}\n'
    assert out(cluster, 1, 2) == "3.5\n"
    (cluster.work / "o.json").write_text('{"a": 1}')
    r = cluster.hq("submit", "--from-json", "o.json", "--", "true", check=False)
    assert (r.returncode, r.stderr) == (
        1, "o.json: The top element of the provided JSON file has to be an array\n")
    r = cluster.hq("submit", "--from-json", "o.json", "--each-line", "o.json", "--", "true",
                   check=False)
    assert r.returncode == 2


def test_open_job_fed_by_three_submits_then_closed(cluster):
    assert cluster.hq("job", "open", "--name", "feed").stdout == "Job 1 is open.\n"
    cluster.hq("submit", "--job", "1", "--", "bash", "-c", "echo a")
    cluster.hq("submit", "--job", "1", "--array", "10-11", "--", "bash", "-c", "echo b")
    cluster.hq("submit", "--job", "1", "--", "bash", "-c", "echo c")
    cluster.hq("job", "wait", "1", "--without-close")
    assert states(cluster, 1) == {0: "finished", 10: "finished", 11: "finished",
                                  12: "finished"}
    r = cluster.hq("job", "list")
    headers, rows = horizontal(r.stdout)
    assert rows == [{"ID": "*1", "Name": "feed", "State": "OPENED", "Tasks": "4"}]
    assert r.stdout.endswith("* = Open jobs\n")
    assert cluster.hq("job", "list", mode="quiet").stdout == "1 OPENED\n"
    # exact refusals with --job
    r = cluster.hq("submit", "--job", "1", "--name", "x", "--", "true", check=False)
    assert (r.returncode, r.stderr) == (
        1, "Parameter --name is not allowed when submitting to an open job.\n")
    r = cluster.hq("submit", "--job", "1", "--max-fails", "2", "--", "true", check=False)
    assert (r.returncode, r.stderr) == (
        1, "Parameter --max-fails is not allowed when submitting to an open job.\n")
    r = cluster.hq("submit", "--job", "7", "--", "true", check=False)
    assert (r.returncode, r.stderr) == (1, "Job 7 not found.\n")
    r = cluster.hq("submit", "--job", "1", "--array", "0", "--", "true", check=False)
    assert (r.returncode, r.stderr) == (1, "Task 0 already exists in job 1.\n")
    r = cluster.hq("job", "close", "1")
    assert r.stderr.endswith("INFO Job 1 closed\n")
    r = cluster.hq("job", "close", "1")
    assert r.stderr.endswith("ERROR Closing job 1 failed; job is already closed\n")
    r = cluster.hq("submit", "--job", "1", "--", "true", check=False)
    assert (r.returncode, r.stderr) == (1, "Job 1 is not opened.\n")
    cluster.wait_job(1)
    _, rows = horizontal(cluster.hq("job", "list", "--all").stdout)
    assert rows == [{"ID": "1", "Name": "feed", "State": "FINISHED", "Tasks": "4"}]
    _, info = vertical(cluster.hq("job", "info", "1").stdout)
    assert info["Session"].strip() == "closed"
    assert info["Tasks"].strip() == "4; Ids: 0,10-12"


def test_cat_forget_summary_and_task_ids(cluster):
    cluster.hq("submit", "--array", "1-4", "--", "bash", "-c",
               'echo out-$HQ_TASK_ID; echo err-$HQ_TASK_ID >&2; [ $HQ_TASK_ID != 3 ]')
    cluster.wait_job(1)
    r = cluster.hq("job", "cat", "1", "stdout")
    assert r.stdout == "out-1\nout-2\nout-3\nout-4\n"
    r = cluster.hq("job", "cat", "1", "stderr", "--tasks", "2-3", "--print-task-header")
    assert r.stdout == "# Job 1, task 2\nerr-2\n# Job 1, task 3\nerr-3\n"
    r = cluster.hq("job", "cat", "1", "stdout", "--task-status", "failed")
    assert r.stdout == "out-3\n"
    assert cluster.hq("job", "cat", "1", "stdout", mode="quiet").stdout.count("out-") == 4
    r = cluster.hq("job", "cat", "1", "stdout", mode="json", check=False)
    assert (r.returncode, json.loads(r.stdout)) == (
        1, {"error": "JSON output mode doesn't support job output"})
    r = cluster.hq("job", "cat", "1", "stdout", "--tasks", "9")
    assert "Task 9 of job 1 not found" in r.stderr
    # task-ids
    assert cluster.hq("job", "task-ids", "1").stdout == "1-4\n"
    assert cluster.hq("job", "task-ids", "1", "--filter", "finished").stdout == "1-2,4\n"
    assert cluster.hq_json("job", "task-ids", "1", "--filter", "failed") == {"1": [3]}
    r = cluster.hq("job", "task-ids", "5", check=False)
    assert (r.returncode, r.stderr) == (1, "Job Id not found\n")
    # summary: all six states, in order
    _, rows = horizontal(cluster.hq("job", "summary").stdout)
    assert [(r["Status"], r["Count"]) for r in rows] == [
        ("RUNNING", "0"), ("WAITING", "0"), ("FINISHED", "0"), ("FAILED", "1"),
        ("ABORTED", "0"), ("CANCELED", "0")]
    assert cluster.hq("job", "summary", mode="quiet").stdout == (
        "RUNNING 0\nWAITING 0\nFINISHED 0\nFAILED 1\nABORTED 0\nCANCELED 0\n")
    assert cluster.hq_json("job", "summary") == {
        "Running": 0, "Waiting": 0, "Finished": 0, "Failed": 1, "Aborted": 0, "Canceled": 0}
    # forget: --filter restricts the states
    r = cluster.hq("job", "forget", "1", "--filter", "finished")
    assert r.stderr.endswith("INFO 0 jobs were forgotten, 1 were ignored due to wrong state "
                             "or invalid ID\n")
    r = cluster.hq("job", "forget", "all")
    assert r.stderr.endswith("INFO 1 job were forgotten\n")
    assert cluster.hq_json("job", "list", "--all") == []


def test_max_fails_aborts_the_rest_and_job_info_lists_failures(server):
    server.hq("submit", "--array", "0-9", "--max-fails", "1", "--", "bash", "-c",
              "exit 7")
    w = server.start_worker(cpus=1)
    server.wait_job(1)
    st = states(server, 1)
    assert list(st.values()).count("failed") == 2
    assert list(st.values()).count("aborted") == 8
    r = server.hq("job", "info", "1")
    _, rows = horizontal(r.stdout, 1)
    assert [x["Error"] for x in rows] == ["Program terminated with exit code 7."] * 2
    assert "2 tasks failed." in r.stdout
    assert w.hostname in rows[0]["Worker"]
    assert server.hq_json("job", "list", "--all")[0]["task_stats"]["aborted"] == 8


def test_task_dir_error_file_becomes_the_error(cluster):
    cluster.hq("submit", "--task-dir", "--", "bash", "-c",
               'test -d "$HQ_TASK_DIR" && echo "bad input on line 3" > "$HQ_ERROR_FILENAME"; '
               "exit 1")
    cluster.hq("submit", "--task-dir", "--", "bash", "-c", ': > "$HQ_ERROR_FILENAME"; exit 1')
    cluster.wait_job("1,2")
    t1 = cluster.hq_json("task", "info", "1", "0")[0]
    assert t1["error"] == "bad input on line 3\n" or t1["error"] == "bad input on line 3"
    t2 = cluster.hq_json("task", "info", "2", "0")[0]
    assert t2["error"] == "Task created an error file, but it is empty"


def test_stdout_none_rm_if_finished_and_pin(cluster):
    cluster.hq("submit", "--stdout", "none", "--stderr", ":rm-if-finished", "--pin", "taskset",
               "--", "bash", "-c", "echo $HQ_PIN >&2")
    cluster.wait_job(1)
    assert not (cluster.work / "job-1" / "0.stdout").exists()
    assert not (cluster.work / "job-1" / "0.stderr").exists()
    _, info = vertical(cluster.hq("task", "info", "1", "0").stdout)
    assert info["Stdout"].strip() == "<None>"
    assert info["Pin"].strip() == "taskset"
    cluster.hq("submit", "--stdout", "o.txt:rm-if-finished", "--pin", "omp", "--", "bash",
               "-c", "echo $HQ_PIN $OMP_PROC_BIND; exit 1")
    cluster.wait_job(2)
    assert (cluster.work / "o.txt").read_text() == "omp close\n"


def test_placeholder_warnings(cluster):
    r = cluster.hq("submit", "--stdout", "x-%{FOO}-%{TASK_ID}", "--", "true")
    assert re.search(r"WARN Found unknown placeholder `FOO` in stdout path\n", r.stderr)
    r = cluster.hq("submit", "--stderr", "%{A}%{B}", "--cwd", "%{C}/x", "--", "true")
    assert "WARN Found unknown placeholders `A, B` in stderr path" in r.stderr
    assert "WARN Found unknown placeholder `C` in working directory path" in r.stderr
    r = cluster.hq("submit", "--array", "1-2", "--stdout", "same.txt", "--", "true")
    assert ("WARN You have submitted an array job, but the `stdout` path does not contain "
            "the task ID placeholder.\nIndividual tasks might thus overwrite the file. "
            "Consider adding `%{TASK_ID}` to the `--stdout` value.\n") in r.stderr
    r = cluster.hq("submit", "--array", "1-1000", "--", "true")
    assert ("The job will create 2000 files for stdout and stderr. Consider using the "
            "`--stream` option to stream all outputs into a single file") in r.stderr
    r = cluster.hq("submit", "--cwd", "%{CWD}", "--", "true", check=False)
    assert (r.returncode, r.stderr) == (
        1, "Working directory path cannot contain the working directory placeholder "
           "`%{CWD}`.\n")


def test_crash_limit_values(cluster):
    r = cluster.hq("submit", "--crash-limit", "0", "--", "true", check=False)
    assert r.returncode == 2
    assert "Crash limit cannot be 0. Use `never-restart` or `unlimited` instead." in r.stderr
    cluster.hq("submit", "--crash-limit", "never-restart", "--", "true")
    cluster.hq("submit", "--crash-limit", "unlimited", "--time-request", "1s", "--", "true")
    cluster.wait_job("1-2")
    assert [t["state"] for t in cluster.hq_json("task", "info", "1", "0")] == ["finished"]
    _, info = vertical(cluster.hq("task", "info", "2", "0").stdout)
    assert info["Crash limit"].strip() == "unlimited"


def test_job_wait_on_several_jobs(cluster):
    cluster.hq("submit", "--", "sleep", "0.3")
    cluster.hq("submit", "--", "false")
    r = cluster.hq("job", "wait", "1-2,9")
    assert (r.returncode, r.stdout) == (0, "")
    assert cluster.hq("job", "wait", "all", mode="json").stdout.strip() == "{}"
    assert [j["task_stats"]["waiting"] + j["task_stats"]["running"]
            for j in cluster.hq_json("job", "list", "--all")] == [0, 0]


def read_pty(fd, until, timeout=30):
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
            if until(data):
                break
    return data


def test_progress_redraws_one_line_on_a_terminal(cluster):
    gate = cluster.work / "gate"
    cluster.hq("submit", "--array", "1-4", "--", "bash", "-c",
               f'[ $HQ_TASK_ID -le 2 ] || while [ ! -f {gate} ]; do sleep 0.05; done; '
               f'[ $HQ_TASK_ID != 1 ]')
    cluster.wait_task_state(1, 1, "failed")
    cluster.wait_task_state(1, 2, "finished")
    cluster.wait_task_state(1, 3, "running")
    cluster.wait_task_state(1, 4, "running")
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(str(cluster.work))
        os.execve(str(HQ), [str(HQ), "--server-dir", str(cluster.server_dir), "job",
                            "progress", "1"], cluster.env)
    try:
        first = read_pty(fd, lambda d: b"tasks" in d)
        gate.write_text("")
        rest = read_pty(fd, lambda d: b"3 FINISHED 1 FAILED" in d)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    text = (first + rest).decode()
    assert os.waitstatus_to_exitcode(status) == 0
    assert "Waiting for 1 job with 2 tasks" in text
    frames = text.split("\r\x1b[2K")[1:]
    assert frames, text
    final = re.sub(r"\x1b\[[0-9;]*m", "", frames[-1])
    assert re.fullmatch(r"\[[#.]{40}\] 1/1 jobs, 4/4 tasks 3 FINISHED 1 FAILED", final), final
    assert not frames[-1].endswith("\n")
    first_frame = re.sub(r"\x1b\[[0-9;]*m", "", frames[0])
    assert re.match(r"\[[#.]{40}\] 0/1 jobs, 2/4 tasks 2 RUNNING 1 FINISHED 1 FAILED",
                    first_frame), first_frame
    r = cluster.hq("job", "progress", "1")
    assert "There are no jobs to wait for" in r.stderr and r.returncode == 0


def test_worker_wait_address_info_and_hwdetect(server):
    p = subprocess.Popen([str(HQ), "--server-dir", str(server.server_dir), "worker", "wait",
                          "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=server.env)
    time.sleep(0.3)
    assert p.poll() is None  # no worker yet
    w = server.start_worker(cpus=1, hostname="nodeA")
    o, e = p.communicate(timeout=20)
    assert (p.returncode, o) == (0, "")
    assert server.hq("worker", "address", str(w.id)).stdout == "nodeA\n"
    r = server.hq("worker", "address", "77", check=False)
    assert (r.returncode, r.stderr) == (1, "Worker 77 not found\n")
    keys, info = vertical(server.hq("worker", "info", str(w.id)).stdout)
    assert keys == ["Worker", "State", "Hostname", "Started", "Data provider",
                    "Working directory", "Heartbeat", "Idle timeout", "Overview interval",
                    "Resources", "Time Limit", "Process pid", "Group", "Manager",
                    "Manager Job ID", "Last task started", "Runtime Info"]
    assert info["Runtime Info"].strip() == "assigned tasks: 0"
    r = server.hq("worker", "hwdetect")
    assert r.stdout.startswith("Summary:\ncpus: ")
    assert "\n\nFull Description:\n" in r.stdout
    hw = server.hq_json("worker", "hwdetect")
    assert hw["coupling"] == {"weights": []} and hw["resources"][0]["name"] == "cpus"


def test_server_wait_generate_access_and_start_from_it(hq_env):
    r = hq_env.hq("server", "wait", "--timeout", "1s", check=False)
    assert r.returncode == 1
    assert "Waiting for server to become available (timeout: 1s)..." in r.stderr
    assert r.stderr.endswith(f"Timeout after 1s: Could not connect to server at "
                             f"`{hq_env.server_dir}`. Make sure that the server is "
                             f"running.\n")
    acc = hq_env.tmp / "acc.json"
    import socket
    ports = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        ports.append(s.getsockname()[1])
        s.close()
    r = hq_env.hq("server", "generate-access", acc, "--client-port", ports[0],
                  "--worker-port", ports[1], "--host", "127.0.0.1",
                  "--client-file", hq_env.tmp / "c.json", "--worker-file", hq_env.tmp / "w.json")
    assert f"Storing access file as '{acc}'" in r.stderr
    doc = json.loads(acc.read_text())
    assert list(doc) == ["version", "server_uid", "client", "worker"]
    assert doc["client"]["port"] == ports[0] and doc["worker"]["host"] == "127.0.0.1"
    assert len(doc["client"]["secret_key"]) == 64
    assert list(json.loads((hq_env.tmp / "c.json").read_text())) == ["version", "client"]
    assert list(json.loads((hq_env.tmp / "w.json").read_text())) == ["version", "worker"]
    assert oct(acc.stat().st_mode & 0o777) == "0o400"
    r = hq_env.hq("server", "generate-access", acc, "--worker-port", "1", check=False)
    assert r.returncode == 2 and "--client-port <CLIENT_PORT>" in r.stderr
    hq_env.start_server("--access-file", acc)
    assert hq_env.hq("server", "wait").returncode == 0
    assert hq_env.access_path().read_text() == acc.read_text()
    info = hq_env.server_info()
    assert info["server_uid"] == doc["server_uid"] and info["client_port"] == ports[0]
