"""Hardware overviews (issue 13 item 13; cli/REFERENCE.md §3.2, §3.8): a worker
started with --overview-interval sends its hardware state that often; each one is
journaled as a worker-overview event of HyperQueue's shape, GPU figures come from
nvidia-smi / rocm-smi (fake scripts on PATH here), and `worker info` shows the latest
figures."""

import json
import os

from hqtest import journal_dir, start_journaled, vertical, wait_until

NVIDIA = """#!/bin/sh
[ "$*" = "--format=csv,noheader --query-gpu=pci.bus_id,utilization.gpu,memory.used,memory.total" ] || exit 3
echo "BUS1, 10.0 %, 100 MiB, 200 MiB"
echo "BUS2, 75 %, 30 MiB, 120 MiB"
"""

ROCM = """#!/bin/sh
[ "$*" = "--json --showuse --showbus --showmemuse" ] || exit 3
echo '{"card0": {"PCI Bus": "0000:03:00.0", "GPU use (%)": "5", "GPU memory use (%)": "12"},'
echo ' "system": {"Driver version": "6.0"}}'
"""


def _fake_tools(env, nvidia=True, rocm=True):
    bindir = env.tmp / "fakebin"
    bindir.mkdir()
    for name, text, on in (("nvidia-smi", NVIDIA, nvidia), ("rocm-smi", ROCM, rocm)):
        if on:
            p = bindir / name
            p.write_text(text)
            p.chmod(0o755)
    e = dict(env.env)
    e["PATH"] = f"{bindir}:{e.get('PATH', '/usr/bin:/bin')}"
    return e


def _overviews(env):
    env.hq("journal", "flush")
    out = env.hq("journal", "export", journal_dir(env)).stdout
    return [json.loads(l)["event"] for l in out.splitlines()
            if l.strip() and json.loads(l)["event"]["type"] == "worker-overview"]


def test_overviews_are_journaled_with_hyperqueues_shape_and_gpu_figures(hq_env):
    env = hq_env
    start_journaled(env)
    w = env.start_worker("--overview-interval", "200ms", cpus=1, env=_fake_tools(env))
    wait_until(lambda: len(_overviews(env)) >= 3, timeout=20, what="three overviews")
    evs = _overviews(env)
    ev = evs[-1]
    assert set(ev) == {"type", "id", "hw-state"}
    assert ev["id"] == w.id
    st = ev["hw-state"]["state"]
    assert set(ev["hw-state"]) == {"state"}
    assert set(st) == {"timestamp", "cpu_usage", "memory_usage", "network_usage",
                       "nvidia_gpus", "amd_gpus"}
    cores = st["cpu_usage"]["cpu_per_core_percent_usage"]
    assert set(st["cpu_usage"]) == {"cpu_per_core_percent_usage"}
    assert len(cores) == os.cpu_count() and all(0.0 <= c <= 100.0 for c in cores)
    assert set(st["memory_usage"]) == {"free", "total"}
    assert 0 < st["memory_usage"]["free"] <= st["memory_usage"]["total"]
    assert set(st["network_usage"]) == {"rx_bytes", "rx_errors", "rx_packets", "tx_bytes",
                                        "tx_errors", "tx_packets"}
    assert st["nvidia_gpus"] == {"gpus": [
        {"id": "BUS1", "processor_usage": 10.0, "mem_usage": 50.0},
        {"id": "BUS2", "processor_usage": 75.0, "mem_usage": 25.0}]}
    assert st["amd_gpus"] == {"gpus": [
        {"id": "0000:03:00.0", "processor_usage": 5.0, "mem_usage": 12.0}]}
    # sent about every 200 ms (timestamps in seconds, so only a sanity bound)
    assert evs[-1]["hw-state"]["state"]["timestamp"] - evs[0]["hw-state"]["state"]["timestamp"] < 10
    # worker info shows the latest figures
    _, rows = vertical(env.hq("worker", "info", str(w.id)).stdout)
    assert rows["NVIDIA GPUs"] == "BUS1: 10.0 %, memory 50.0 %\nBUS2: 75.0 %, memory 25.0 %"
    assert rows["AMD GPUs"] == "0000:03:00.0: 5.0 %, memory 12.0 %"
    assert f"({os.cpu_count()} cores: " in rows["CPU usage"]
    assert "GiB free of" in rows["Memory"]
    assert rows["Network"].startswith("received ")


def test_no_overview_without_the_flag_and_no_gpu_keys_without_the_tools(hq_env):
    env = hq_env
    start_journaled(env)
    env.start_worker(cpus=1)
    w2 = env.start_worker("--overview-interval", "200ms", cpus=1,
                          env=_fake_tools(env, nvidia=False, rocm=False))
    wait_until(lambda: len(_overviews(env)) >= 2, timeout=20, what="overviews")
    evs = _overviews(env)
    assert {e["id"] for e in evs} == {w2.id}
    assert "nvidia_gpus" not in evs[-1]["hw-state"]["state"]
    assert "amd_gpus" not in evs[-1]["hw-state"]["state"]
    _, rows = vertical(env.hq("worker", "info", "1").stdout)
    assert "CPU usage" not in rows
