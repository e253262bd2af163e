"""Resource coupling (`hq worker start --coupling`): parsing and its errors, the
` [coupled]` summaries, the JSON weights (cli/REFERENCE.md §6), and tasks that get
cpus and gpus from coupled groups."""

import pytest

from hqtest import horizontal, vertical, wait_until

GPUS = ("--resource", "gpus=[[0],[1]]", "--detect-resources", "none")


def env_of(tmp, job):
    """The environment task 0 of job saw (it ran `env > <tmp>/env-<job>`)."""
    path = tmp / f"env-{job}"
    wait_until(lambda: path.exists() and path.stat().st_size > 0, what=f"env of job {job}")
    return dict(line.partition("=")[::2] for line in path.read_text().splitlines())


def submit_env(server, tmp, *args):
    """A task that dumps its environment and holds its resources until <tmp>/release."""
    cmd = f"env > {tmp}/env-$HQ_JOB_ID; while [ ! -e {tmp}/release ]; do sleep 0.05; done"
    return server.submit(*args, "--", "bash", "-c", cmd)


def test_coupled_worker_shows_the_suffix_and_the_json_weights(server):
    w = server.start_worker(*GPUS, "--coupling", "cpus[0]:gpus[0],cpus[1]:gpus[1]=1000",
                            cpus="2x2")
    _, rows = horizontal(server.hq("worker", "list").stdout)
    assert rows[0]["Resources"] == "cpus 2x2 [coupled]; gpus 2x1 [coupled]"
    _, info = vertical(server.hq("worker", "info", str(w.id)).stdout)
    assert info["Resources"] == "cpus: 2x2 [coupled]\ngpus: 2x1 [coupled]"
    res = server.hq_json("worker", "info", str(w.id))[0]["configuration"]["resources"]
    assert [r["name"] for r in res["resources"]] == ["cpus", "gpus"]
    assert res["coupling"] == {"weights": [
        {"group1_idx": 0, "group2_idx": 0, "resource1_idx": 0, "resource2_idx": 1,
         "weight": 256},
        {"group1_idx": 1, "group2_idx": 1, "resource1_idx": 0, "resource2_idx": 1,
         "weight": 1000},
    ]}


def test_indices_refer_to_the_name_sorted_resources(server):
    # Given order: gpus, zeta, cpus; sorted: cpus(0), gpus(1), zeta(2).
    w = server.start_worker("--resource", "gpus=[[0],[1]]", "--resource", "zeta=[[a],[b]]",
                            "--detect-resources", "none", "--coupling", "zeta[1]:gpus[0]=7",
                            cpus="2x2")
    res = server.hq_json("worker", "info", str(w.id))[0]["configuration"]["resources"]
    assert [r["name"] for r in res["resources"]] == ["cpus", "gpus", "zeta"]
    assert res["coupling"]["weights"] == [
        {"group1_idx": 1, "group2_idx": 0, "resource1_idx": 2, "resource2_idx": 1,
         "weight": 7}]


def test_uncoupled_worker_has_no_suffix(server):
    server.start_worker(*GPUS, cpus="2x2")
    _, rows = horizontal(server.hq("worker", "list").stdout)
    assert rows[0]["Resources"] == "cpus 2x2; gpus 2x1"
    assert server.worker_list()[0]["configuration"]["resources"]["coupling"] == {"weights": []}


def test_tasks_get_cpus_and_gpus_from_coupled_groups(server, tmp_path):
    server.start_worker(*GPUS, "--coupling", "cpus[0]:gpus[0],cpus[1]:gpus[1]", cpus="2x2")
    first = submit_env(server, tmp_path, "--cpus", "2", "--resource", "gpus=1")
    e1 = env_of(tmp_path, first)
    second = submit_env(server, tmp_path, "--cpus", "2", "--resource", "gpus=1")
    e2 = env_of(tmp_path, second)
    pairs = {(e["HQ_RESOURCE_VALUES_gpus"], e["HQ_CPUS"]) for e in (e1, e2)}
    assert pairs == {("0", "0,1"), ("1", "2,3")}
    (tmp_path / "release").touch()
    server.wait_job(second)


def test_crossed_coupling_is_followed(server, tmp_path):
    server.start_worker(*GPUS, "--coupling", "cpus[0]:gpus[1],cpus[1]:gpus[0]", cpus="2x2")
    first = submit_env(server, tmp_path, "--cpus", "2", "--resource", "gpus=1")
    e1 = env_of(tmp_path, first)
    second = submit_env(server, tmp_path, "--cpus", "2", "--resource", "gpus=1")
    e2 = env_of(tmp_path, second)
    pairs = {(e["HQ_RESOURCE_VALUES_gpus"], e["HQ_CPUS"]) for e in (e1, e2)}
    assert pairs == {("1", "0,1"), ("0", "2,3")}
    (tmp_path / "release").touch()
    server.wait_job(second)


@pytest.mark.parametrize("spec,detail", [
    ("cpus[0]gpus[0]", "Missing ':'"),
    ("cpus0]:gpus[0]", "Missing '['"),
    ("cpus[0:gpus[0]", "Missing ']'"),
    ("foo[0]:gpus[0]", "Resource not found: foo"),
    ("cpus[x]:gpus[0]", "Invalid group index: x"),
    ("cpus[0]:gpus[0]=65536", "Invalid weight: 65536"),
])
def test_bad_coupling_is_a_command_line_error(server, spec, detail):
    r = server.hq("worker", "start", "--cpus", "2x2", *GPUS, "--coupling", spec,
                  "--work-dir", str(server.tmp / "wd-bad"), check=False)
    assert r.returncode == 2
    assert f"error: invalid value '{spec}' for '--coupling <COUPLING>': {detail}" in r.stderr
    assert server.worker_list() == []


def test_every_coupled_resource_is_marked_and_only_those(server):
    w = server.start_worker("--resource", "foo=[[a,b,c],[d,e,f]]", "--resource", "bar=[1,2]",
                            "--detect-resources", "none", "--coupling", "cpus[0]:foo[1]",
                            cpus="2x3")
    _, info = vertical(server.hq("worker", "info", str(w.id)).stdout)
    assert info["Resources"] == "bar: 2\ncpus: 2x3 [coupled]\nfoo: 2x3 [coupled]"


@pytest.mark.parametrize("spec,message", [
    ("cpus[0]:xxx[0]", "Resource 'xxx' has only a single group"),
    ("xxx[0]:yyy[1]", "Resource 'xxx' has only a single group"),
    ("cpus[0]:yyy[3]", "Invalid group id 3 for resource 'yyy'"),
    ("cpus[2]:yyy[0]", "Invalid group id 2 for resource 'cpus'"),
])
def test_coupling_that_cannot_hold_refuses_the_worker(server, spec, message):
    r = server.hq("worker", "start", "--cpus", "2x2", "--resource", "xxx=range(0-3)",
                  "--resource", "yyy=[[a],[b]]", "--detect-resources", "none",
                  "--coupling", spec, "--work-dir", str(server.tmp / "wd-bad"), check=False)
    assert r.returncode == 1
    assert message in r.stderr
    assert server.worker_list() == []


def test_strict_request_waits_for_coupled_groups(server, tmp_path):
    server.start_worker(*GPUS, "--coupling", "cpus[0]:gpus[0],cpus[1]:gpus[1]", cpus="2x4")

    def holder(name):
        return ["bash", "-c", f"env > {tmp_path}/env-{name}.tmp && mv {tmp_path}/env-{name}.tmp "
                f"{tmp_path}/env-{name}; while [ ! -e {tmp_path}/release-{name} ]; "
                "do sleep 0.05; done"]

    def env(name):
        path = tmp_path / f"env-{name}"
        wait_until(path.exists, what=f"task {name} to start")
        return dict(line.partition("=")[::2] for line in path.read_text().splitlines())

    server.submit("--cpus", "4", *holder("a"))                       # one NUMA node
    node_a = env("a")["HQ_CPUS"]
    server.submit("--cpus", "1", "--resource", "gpus=1", *holder("g"))  # the other + its gpu
    gpu_g = env("g")["HQ_RESOURCE_VALUES_gpus"]
    # free now: cpus of g's node and the gpu coupled to a's node: not a coupled pair
    strict = server.submit("--cpus", "2 compact!", "--resource", "gpus=1 compact!",
                           *holder("strict"))
    server.submit("--cpus", "2", "--resource", "gpus=1", *holder("loose"))
    env("loose")  # the non-strict request runs on the uncoupled pair
    assert not (tmp_path / "env-strict").exists()
    assert server.tasks(strict)[0]["state"] != "running"
    for name in ("a", "loose"):
        (tmp_path / f"release-{name}").touch()
    e = env("strict")
    assert e["HQ_CPUS"].split(",")[0] in node_a.split(",")
    assert e["HQ_RESOURCE_VALUES_gpus"] != gpu_g
    for name in ("g", "strict"):
        (tmp_path / f"release-{name}").touch()
    server.wait_job(strict)
