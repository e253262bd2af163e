"""Resources end to end: worker definitions, task requests, NUMA-aware policies on
fake hwloc topologies, fractional GPUs, variants, multi-node tasks, starvation."""

import json

from hqtest import horizontal, wait_until


def env_of(server, job, task, tmp):
    """The environment a task saw (it ran `env > <tmp>/env-<job>-<task>`)."""
    path = tmp / f"env-{job}-{task}"
    wait_until(lambda: path.exists() and path.stat().st_size > 0, what=f"env of {job}@{task}")
    out = {}
    for line in path.read_text().splitlines():
        k, _, v = line.partition("=")
        out[k] = v
    return out


def submit_env(server, tmp, *args):
    """Submits a task that dumps its environment; returns the job id."""
    cmd = f"env > {tmp}/env-$HQ_JOB_ID-$HQ_TASK_ID"
    return server.submit(*args, "--", "bash", "-c", cmd)


def test_worker_definition_forms_show_in_summary_and_json(server):
    server.start_worker("--resource", "gpus=[a,b]", "--resource", "mem=sum(2048)",
                        "--resource", "x=2x3", "--resource", "y=range(1-3)",
                        "--resource", "z=[[p,q],[r,s,t]]", cpus="[[0,1],[2,3]]")
    _, rows = horizontal(server.hq("worker", "list").stdout)
    assert rows[0]["Resources"] == "cpus 2x2; gpus 2; mem 2.00 GiB; x 2x3; y 3; z 1x2 1x3"
    conf = server.worker_list()[0]["configuration"]["resources"]["resources"]
    by = {r["name"]: r for r in conf}
    assert by["cpus"] == {"name": "cpus", "kind": "groups", "groups": [["0", "1"], ["2", "3"]]}
    assert by["mem"] == {"name": "mem", "kind": "sum", "size": 2048 * 10000}
    assert by["x"]["groups"] == [["0", "1", "2"], ["3", "4", "5"]]
    assert by["y"] == {"name": "y", "kind": "range", "start": 1, "end": 3}


def test_request_forms_reach_the_task_environment(server, tmp_path):
    server.start_worker("--resource", "gpus/nvidia=[0,1,2]", "--resource", "mem=sum(100)",
                        "--resource", "fpga=range(5-6)", cpus=4)
    job = submit_env(server, tmp_path, "--cpus", "2", "--resource", "gpus/nvidia=2 scatter",
                     "--resource", "mem=12.5", "--resource", "fpga=all")
    e = env_of(server, job, 0, tmp_path)
    assert e["HQ_RESOURCE_REQUEST_cpus"] == "2 compact"
    assert e["HQ_RESOURCE_REQUEST_gpus_nvidia"] == "2 scatter"
    assert e["HQ_RESOURCE_REQUEST_mem"] == "12.5 compact"
    assert e["HQ_RESOURCE_REQUEST_fpga"] == "all"
    assert e["HQ_CPUS"] == "0,1" and e["HQ_RESOURCE_VALUES_cpus"] == "0,1"
    assert e["CUDA_VISIBLE_DEVICES"] == "0,1" and e["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
    assert e["HQ_RESOURCE_VALUES_fpga"] == "5,6"
    assert "HQ_RESOURCE_VALUES_mem" not in e
    assert e["OMP_NUM_THREADS"] == "2"
    assert "HQ_RESOURCE_VARIANT" not in e


def test_policies_on_two_numa_layouts_give_exact_indices(server, tmp_path):
    # worker A: 2 NUMA nodes x 3 cores (no hyper-threading) = [[0,2,4],[6,8,10]]
    a = server.start_worker("--no-hyper-threading", "--resource", "a=[x]", cpus=None,
                            env={"HWLOC_SYNTHETIC": "pack:2 [numa] core:3 pu:2"})
    # worker B: 4 NUMA nodes x 2 = [[0,1],[2,3],[4,5],[6,7]]
    b = server.start_worker("--resource", "b=[y]", cpus=None,
                            env={"HWLOC_SYNTHETIC": "pack:4 [numa] core:2 pu:1"})
    _, rows = horizontal(server.hq("worker", "list").stdout)
    res = {r["ID"]: r["Resources"] for r in rows}
    assert "; cpus 2x3;" in res[str(a.id)]
    assert "; cpus 4x2;" in res[str(b.id)]

    def run(where, cpus):
        job = submit_env(server, tmp_path, "--resource", f"{where}=1", "--cpus", cpus)
        server.wait_job(job)
        return env_of(server, job, 0, tmp_path)["HQ_CPUS"]

    assert run("a", "2") == "0,2"
    assert run("a", "3 compact!") == "0,2,4"
    assert run("a", "4") == "0,2,6,8"  # compact over two groups: balanced, 2 + 2
    assert run("a", "4 tight") == "0,2,4,6"
    assert run("a", "2 scatter") == "0,6"
    assert run("a", "6 scatter") == "0,6,2,8,4,10"
    assert run("b", "3 compact!") == "0,1,2"
    assert run("b", "4 scatter") == "0,2,4,6"
    assert run("b", "2 tight!") == "0,1"
    assert run("b", "all") == "0,1,2,3,4,5,6,7"


def test_fractional_gpus_are_shared(server, tmp_path):
    server.start_worker("--resource", "gpus/nvidia=[7]", cpus=2)
    hold = tmp_path / "hold"
    cmd = f"env > {tmp_path}/env-$HQ_JOB_ID-$HQ_TASK_ID; while [ ! -e {hold} ]; do sleep 0.05; done"
    job = server.submit("--array", "0-1", "--resource", "gpus/nvidia=0.5", "--", "bash", "-c",
                        cmd)
    e0 = env_of(server, job, 0, tmp_path)
    e1 = env_of(server, job, 1, tmp_path)  # both run at once on the one GPU
    assert e0["CUDA_VISIBLE_DEVICES"] == "7" == e1["CUDA_VISIBLE_DEVICES"]
    hold.write_text("")
    server.wait_job(job)


def test_gpu_less_worker_never_gets_a_gpu_task(server, tmp_path):
    plain = server.start_worker(cpus=4)
    gpu = server.start_worker("--resource", "gpus=[0]", cpus=1)
    job = submit_env(server, tmp_path, "--array", "0-3", "--resource", "gpus=1")
    server.wait_job(job)
    tasks = server.tasks(job)
    assert all(t["worker"] == gpu.id for t in tasks.values()), tasks
    assert plain.id != gpu.id


def test_variant_is_chosen_by_availability(server, tmp_path):
    server.start_worker("--resource", "gpus=[0]", cpus=2)
    hold = tmp_path / "hold"
    toml = tmp_path / "job.toml"
    cmd = f"env > {tmp_path}/env-$HQ_JOB_ID-$HQ_TASK_ID; while [ ! -e {hold} ]; do sleep 0.05; done"
    toml.write_text(f"""
[array]
ids = "0-1"
command = ["bash", "-c", {json.dumps(cmd)}]
[[array.request]]
resources = {{ "gpus" = 1, "cpus" = 1 }}
[[array.request]]
resources = {{ "cpus" = 1 }}
""")
    job = server.hq_json("job", "submit-file", str(toml))["id"]
    e = [env_of(server, job, t, tmp_path) for t in (0, 1)]
    assert sorted(x["HQ_RESOURCE_VARIANT"] for x in e) == ["0", "1"]
    with_gpu = [x for x in e if x["HQ_RESOURCE_VARIANT"] == "0"][0]
    assert with_gpu["HQ_RESOURCE_VALUES_gpus"] == "0"
    hold.write_text("")
    server.wait_job(job)


def test_two_node_task_on_a_three_worker_group_gets_its_node_file(server, tmp_path):
    ws = [server.start_worker("--group", "g", cpus=1, hostname=f"node{i}.cluster")
          for i in range(3)]
    cmd = (f"env > {tmp_path}/env-$HQ_JOB_ID-$HQ_TASK_ID; cp $HQ_NODE_FILE {tmp_path}/nodes;"
           f" cp $HQ_HOST_FILE {tmp_path}/hosts")
    job = server.submit("--nodes", "2", "--", "bash", "-c", cmd)
    e = env_of(server, job, 0, tmp_path)
    server.wait_job(job)
    assert e["HQ_NUM_NODES"] == "2"
    assert (tmp_path / "nodes").read_text() == "node0\nnode1\n"
    assert (tmp_path / "hosts").read_text() == "node0.cluster\nnode1.cluster\n"
    assert "HQ_CPUS" not in e
    t = server.tasks(job)[0]
    assert t["state"] == "finished"
    assert ws[0].id is not None


def test_strict_request_is_not_starved_by_a_stream_of_small_tasks(server, tmp_path):
    server.start_worker(cpus="[[0,1],[2,3]]")
    # an older job keeps one cpu of each group busy for a while ...
    small = server.submit("--array", "0-1", "--cpus", "1 scatter", "--", "sleep", "0.5")
    server.wait_task_state(small, 0, "running")
    big = submit_env(server, tmp_path, "--cpus", "2 compact!")
    stream = server.submit("--array", "0-59", "--", "sleep", "0.2")
    # ... the strict task needs a whole group: it runs before the stream ends
    e = env_of(server, big, 0, tmp_path)
    assert e["HQ_CPUS"] in ("0,1", "2,3")
    counts = server.job_state_counts(stream)
    assert counts["finished"] < 60, counts
    server.wait_job(stream, timeout=120)


def test_task_explain_tells_which_workers_can_run_a_task(server):
    w1 = server.start_worker(cpus=2)
    w2 = server.start_worker("--resource", "gpus=[0]", cpus=4)
    job = server.submit("--cpus", "3", "--resource", "gpus=1", "--", "true")
    server.wait_job(job)
    out = server.hq("task", "explain", str(job), "0").stdout
    lines = out.splitlines()
    assert lines[0] == f"Task {job}@0 is ready to run because it has no dependencies."
    assert lines[1] == f"The task can run on 1 worker: {w2.id}"
    headers, rows = horizontal(out)
    assert headers == ["Worker Id", "Runnable", "Variant", "Type", "Provides", "Request"]
    mine = [(r["Worker Id"], r["Runnable"], r["Type"], r["Provides"], r["Request"])
            for r in rows]
    assert mine == [(str(w1.id), "No", "cpus\ngpus", "2\n0", "3\n1"),
                    (str(w2.id), "Yes", "cpus\ngpus", "4\n1", "3\n1")]
    data = server.hq_json("task", "explain", "last", "0")
    assert data["task_id"] == {"job_id": job, "job_task_id": 0}
    ws = {w["worker_id"]: w for w in data["explanation"]["workers"]}
    assert ws[w1.id]["n_enabled_variants"] == 0 and ws[w2.id]["n_enabled_variants"] == 1
