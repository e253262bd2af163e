"""Job definition files (`hq job submit-file`, cli/REFERENCE.md §8) as a user runs them:
task graphs with dependencies, resource variants, the array form, open jobs, and bad
files that must be refused with an exact message before anything is submitted."""

import json

import pytest

from hqtest import horizontal, vertical


def write(env, name, text):
    p = env.work / name
    p.write_text(text)
    return p


def task_states(env, job):
    return {t["id"]: t["state"] for t in env.hq_json("task", "list", str(job))[str(job)]}


DAG = """
name = "dag"

[[task]]
id = 0
command = ["bash", "-c", "echo root > root.txt"]

[[task]]
id = 1
command = ["bash", "-c", "test -f root.txt && exit 3"]
deps = [0]

[[task]]
id = 2
command = ["bash", "-c", "test -f root.txt && echo sibling"]
deps = [0]

[[task]]
id = 3
command = ["bash", "-c", "echo below-failed"]
deps = [1]

[[task]]
id = 4
command = ["bash", "-c", "echo below-sibling"]
deps = [2]

[[task]]
id = 5
command = ["bash", "-c", "echo below-both"]
deps = [1, 2]

[[task]]
id = 6
command = ["bash", "-c", "echo third-level"]
deps = [3]
"""


def test_three_level_dag_with_a_failing_middle_task(cluster):
    f = write(cluster, "dag.toml", DAG)
    r = cluster.hq("job", "submit-file", f)
    assert r.stdout == "Job submitted successfully, job ID: 1\n"
    cluster.wait_job(1)
    assert task_states(cluster, 1) == {0: "finished", 1: "failed", 2: "finished",
                                       3: "aborted", 4: "finished", 5: "aborted",
                                       6: "aborted"}
    # the root ran before its dependants; aborted tasks never ran
    assert (cluster.work / "job-1" / "2.stdout").read_text() == "sibling\n"
    assert (cluster.work / "job-1" / "4.stdout").read_text() == "below-sibling\n"
    assert not (cluster.work / "job-1" / "3.stdout").exists()
    _, info = vertical(cluster.hq("task", "info", "1", "5").stdout)
    assert info["Dependencies"].strip() == "1,2"
    assert info["State"].strip() == "ABORTED"
    assert info["Workdir"].strip() == ""
    _, rows = horizontal(cluster.hq("job", "list", "--all").stdout)
    assert rows == [{"ID": "1", "Name": "dag", "State": "FAILED", "Tasks": "7"}]
    js = cluster.hq_json("job", "info", "1")[0]
    assert js["info"]["task_stats"] == {"running": 0, "finished": 3, "failed": 1,
                                        "canceled": 0, "aborted": 3, "waiting": 0}
    assert len(js["submits"]) == 1 and len(js["submits"][0]["graph"]) >= 1


def test_dependants_wait_until_their_dependency_finishes(cluster):
    marker = cluster.work / "go"
    f = write(cluster, "wait.toml", f"""
[[task]]
command = ["bash", "-c", "while [ ! -f {marker} ]; do sleep 0.05; done"]
[[task]]
command = ["bash", "-c", "echo after"]
deps = [0]
""")
    cluster.hq("job", "submit-file", f)
    cluster.wait_task_state(1, 0, "running")
    # a free cpu is there, but task 1 must not start before task 0 ends
    assert task_states(cluster, 1)[1] == "waiting"
    marker.write_text("")
    cluster.wait_job(1)
    assert task_states(cluster, 1) == {0: "finished", 1: "finished"}


def test_task_configuration_keys_reach_the_task(cluster):
    f = write(cluster, "cfg.toml", """
[[task]]
id = 7
command = ["bash", "-c", "echo $FOO $HQ_TASK_ID $HQ_PIN; cat"]
env = { FOO = "bar" }
cwd = "sub"
stdout = "out-%{TASK_ID}.txt"
stderr = "none"
stdin = "from-stdin"
priority = 3
crash_limit = "unlimited"
pin = "omp"
time_limit = "1m"
task_dir = true
[[task.request]]
resources = { cpus = "1 compact" }
""")
    cluster.hq("job", "submit-file", f)
    cluster.wait_job(1)
    out = cluster.work / "sub" / "out-7.txt"
    assert out.read_text() == "bar 7 omp\nfrom-stdin"
    _, info = vertical(cluster.hq("task", "info", "1", "7").stdout)
    assert info["Priority"].strip() == "3"
    assert info["Crash limit"].strip() == "unlimited"
    assert info["Pin"].strip() == "omp"
    assert info["Task dir"].strip() == "yes"
    assert info["Time limit"].strip() == "1m"


def test_resource_variants_fall_back_to_what_the_worker_has(cluster):
    f = write(cluster, "var.toml", """
[[task]]
command = ["bash", "-c", "echo $HQ_RESOURCE_VARIANT $HQ_CPUS"]
[[task.request]]
resources = { cpus = 1, gpus = 1 }
[[task.request]]
resources = { cpus = 2 }
""")
    cluster.hq("job", "submit-file", f)
    cluster.wait_job(1)
    assert task_states(cluster, 1) == {0: "finished"}
    assert (cluster.work / "job-1" / "0.stdout").read_text() == "1 0,1\n"


def test_array_form_with_entries(cluster):
    f = write(cluster, "arr.toml", """
name = "arr"
[array]
ids = "0,2,9"
entries = ["a", "b", "c"]
command = ["bash", "-c", "echo $HQ_ENTRY"]
""")
    cluster.hq("job", "submit-file", f)
    cluster.wait_job(1)
    assert task_states(cluster, 1) == {0: "finished", 2: "finished", 9: "finished"}
    assert (cluster.work / "job-1" / "2.stdout").read_text() == "b\n"
    assert (cluster.work / "job-1" / "9.stdout").read_text() == "c\n"
    _, info = vertical(cluster.hq("job", "info", "1").stdout)
    assert info["Name"].strip() == "arr"


def test_open_job_takes_a_file_whose_tasks_depend_on_earlier_submits(cluster):
    assert cluster.hq("job", "open").stdout == "Job 1 is open.\n"
    cluster.hq("submit", "--job", "1", "--", "bash", "-c", "echo first")
    f = write(cluster, "more.toml", """
[[task]]
id = 5
command = ["bash", "-c", "echo second"]
deps = [0]
[[task]]
id = 6
command = ["bash", "-c", "echo third"]
deps = [5, 0]
""")
    assert cluster.hq("job", "submit-file", "--job", "1", f).stdout == \
        "Job submitted successfully, job ID: 1\n"
    cluster.hq("job", "wait", "1", "--without-close")
    assert task_states(cluster, 1) == {0: "finished", 5: "finished", 6: "finished"}
    # an unknown dependency in an open job is refused by the server
    bad = write(cluster, "bad.toml", '[[task]]\nid = 8\ncommand = ["true"]\ndeps = [4]\n')
    r = cluster.hq("job", "submit-file", "--job", "1", bad, check=False)
    assert (r.returncode, r.stderr) == (1, "Invalid dependency on 4\n")
    cluster.hq("job", "close", "1")
    cluster.wait_job(1)
    assert cluster.hq_json("job", "info", "1")[0]["info"]["task_count"] == 3


def test_a_failed_dependency_in_an_open_job_aborts_a_later_submit(cluster):
    cluster.hq("job", "open")
    cluster.hq("submit", "--job", "1", "--", "false")
    cluster.hq("job", "wait", "1", "--without-close")
    f = write(cluster, "late.toml", '[[task]]\nid = 1\ncommand = ["true"]\ndeps = [0]\n')
    cluster.hq("job", "submit-file", "--job", "1", f)
    cluster.hq("job", "wait", "1", "--without-close")
    assert task_states(cluster, 1) == {0: "failed", 1: "aborted"}


def test_output_modes_of_submit_file(cluster):
    f = write(cluster, "one.toml", '[[task]]\ncommand = ["true"]\n')
    assert cluster.hq("job", "submit-file", f, mode="quiet").stdout == "1\n"
    assert json.loads(cluster.hq("job", "submit-file", f, mode="json").stdout) == {"id": 2}


BAD_FILES = [
    ("syntax.toml", '[[task]]\ncommand = ["a"\n',
     "Invalid job definition file syntax.toml: Error while parsing array: encountered "
     "end-of-file at line 2, column 16"),
    ("unknown.toml", '[[task]]\ncommand = ["a"]\ncomand = ["b"]\n',
     "Invalid job definition file unknown.toml: unknown field `comand` in [[task]] at line 1, "
     "expected one of `id`, `command`, `env`, `cwd`, `stdout`, `stderr`, `stdin`, "
     "`task_dir`, `time_limit`, `priority`, `crash_limit`, `pin`, `deps`, `request`"),
    ("cycle.toml", '[[task]]\nid = 1\ncommand = ["a"]\ndeps = [3]\n'
                   '[[task]]\nid = 2\ncommand = ["a"]\ndeps = [1]\n'
                   '[[task]]\nid = 3\ncommand = ["a"]\ndeps = [2]\n',
     "Dependency cycle detected: task 1 depends on itself through its dependencies"),
    ("missing.toml", '[[task]]\nid = 1\ncommand = ["a"]\ndeps = [42]\n',
     "Invalid dependency on 42"),
    ("self.toml", '[[task]]\nid = 1\ncommand = ["a"]\ndeps = [1]\n',
     "Invalid dependency on 1"),
    ("dup.toml", '[[task]]\nid = 4\ncommand = ["a"]\n[[task]]\nid = 4\ncommand = ["b"]\n',
     "Task 4 is defined more than once."),
    ("mixed.toml", '[[task]]\ncommand = ["a"]\n[array]\ncommand = ["b"]\n',
     "Definition of array job and individual task cannot be mixed"),
]


@pytest.mark.parametrize("name,text,message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_job_files_are_refused_and_submit_nothing(server, name, text, message):
    f = write(server, name, text)
    r = server.hq("job", "submit-file", name, check=False)
    assert (r.returncode, r.stdout, r.stderr) == (1, "", message + "\n")
    r = server.hq("job", "submit-file", name, check=False, mode="json")
    assert r.returncode == 1 and json.loads(r.stdout) == {"error": message}
    assert server.hq_json("job", "list", "--all") == []
    assert f.exists()


def test_unreadable_job_file(server):
    r = server.hq("job", "submit-file", "nope.toml", check=False)
    assert r.returncode == 1
    assert r.stderr == "Cannot read nope.toml: No such file or directory (os error 2)\n"
