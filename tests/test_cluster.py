"""`voxemoset build` on an existing Ray cluster, as a lab runs it: `ray start` nodes declaring GPUs, `ray_address`.

A head and a second node on 127.0.0.1, one declared GPU each (the tasks run on the CPU). Checked: the dataset equals
the threads build's; shards ran on both nodes; each GPU stage loaded its models at most once per GPU; the cluster is
left as found; a worker SIGKILLed mid-shard costs nothing; a node that does not see `out` stops the build first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from flows.gpu_workers import read_worker_log
from tests.demo_chain import build_direct, markers, small_demo
from tests.prefect_server import prefect_env
from tests.ray_cluster import ray_cluster
from voxemoset.stages import BUILD_CHAIN, get_stage
from voxemoset.store.digest import build_digest
from voxemoset.store.runner import stage_dir

VOXEMOSET = str(Path(sys.executable).with_name("voxemoset"))
GPU_STAGES = tuple(s for s in BUILD_CHAIN if get_stage(s).uses_gpu)
GPUS = 2  # one per node

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo chain at 8 shards per GPU stage (one image a shard), and its threads-runner digest."""
    cfg_path, direct = small_demo(tmp_path_factory.mktemp("cluster-demo"), limit_per_split=4)
    digest = build_direct(cfg_path, direct)
    assert min(markers(direct, GPU_STAGES).values()) >= 8
    return cfg_path, digest


@pytest.fixture(scope="module")
def cluster(server):
    """Two nodes, one declared GPU each; Ray workers report to the module's Prefect server."""
    home, api = server
    with ray_cluster(num_gpus=1, num_cpus=2, env=prefect_env(home, api)) as c:
        c.add_node(num_gpus=1, num_cpus=2)
        yield c


def _config(demo, tmp_path: Path, address: str) -> Path:
    data = yaml.safe_load(demo[0].read_text())
    data["orchestration"] = {"task_runner": "ray", "ray_address": address}
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _build(cfg: Path, out: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([VOXEMOSET, "build", "-c", str(cfg), "--out", str(out)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip


def test_build_on_a_two_node_cluster_loads_each_model_once_per_gpu(demo, cluster, tmp_path):
    assert cluster.state() == {"actors": 0, "jobs": [], "gpus_in_use": 0}
    out = tmp_path / "out"
    proc = _build(_config(demo, tmp_path, cluster.address), out, cluster.env)
    stdout, stderr = proc.communicate(timeout=800)
    assert proc.returncode == 0, (stdout + stderr)[-6000:]
    assert build_digest(out) == demo[1]
    events = read_worker_log(out)
    for stage in GPU_STAGES:
        done = [e for e in events if e["stage"] == stage and e["event"] == "done"]
        assert len({e["shard"] for e in done}) >= 8
        assert {e["node"] for e in done} == {n["NodeID"] for n in cluster.alive_nodes()}, f"{stage} on one node"
        loads = [e for e in done if e["load_s"] is not None]
        assert 1 <= len(loads) <= GPUS, f"{stage}: {len(loads)} model loads on {GPUS} GPUs"
        # Each worker held one GPU of its own: no two workers of a node saw the same device.
        workers = [e for e in events if e["stage"] == stage and e["event"] == "worker"]
        assert all(len(w["gpus"]) == 1 and w["cuda_visible_devices"] == w["gpus"][0] for w in workers)
        assert len({(w["node"], w["gpus"][0]) for w in workers}) == len(workers)
    assert cluster.state() == {"actors": 0, "jobs": [], "gpus_in_use": 0}, "the build left work on the cluster"


def test_a_worker_killed_mid_shard_is_replaced_and_the_dataset_is_unchanged(demo, cluster, tmp_path):
    out = tmp_path / "out"
    proc = _build(_config(demo, tmp_path, cluster.address), out, cluster.env)
    victim = None
    try:
        deadline = time.monotonic() + 600
        while victim is None and proc.poll() is None and time.monotonic() < deadline:
            started = [e for e in read_worker_log(out) if e["stage"] == "speech" and e["event"] == "start"]
            if started:
                victim = started[0]
                time.sleep(0.3)  # well inside the shard (a speech shard takes seconds), not before it
                assert not (stage_dir(out, "speech") / "_done" / f"{victim['shard']}.json").exists()
                os.kill(victim["pid"], signal.SIGKILL)
            time.sleep(0.05)
        stdout, stderr = proc.communicate(timeout=800)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert victim is not None, "no speech shard started"
    assert proc.returncode == 0, (stdout + stderr)[-6000:]
    assert build_digest(out) == demo[1]
    events = [e for e in read_worker_log(out) if e["stage"] == "speech" and e.get("shard") == victim["shard"]]
    (done,) = [e for e in events if e["event"] == "done"]
    # Ray restarted the worker (a new process, which loaded the models again) and ran the shard there once more.
    assert done["pid"] != victim["pid"] and done["load_s"] is not None, done
    assert Counter(e["event"] for e in events)["start"] == 1
    assert cluster.state() == {"actors": 0, "jobs": [], "gpus_in_use": 0}


def test_a_node_that_does_not_see_out_stops_the_build_before_any_work(demo, server, tmp_path):
    home, api = server
    shared = Path(f"/tmp/voxemoset-shared-{os.getpid()}")  # short: the tmpfs hides it on the second node only
    shared.mkdir()
    try:
        with ray_cluster(num_gpus=1, num_cpus=2, env=prefect_env(home, api)) as c:
            c.add_node(num_gpus=1, num_cpus=2, hide=shared)
            out = shared / "out"
            proc = _build(_config(demo, tmp_path, c.address), out, c.env)
            stdout, stderr = proc.communicate(timeout=300)
            (hidden,) = [n for n in c.alive_nodes() if "node:__internal_head__" not in n["Resources"]]
        last = stderr.strip().splitlines()[-1]
        assert proc.returncode == 1, stderr[-3000:]
        assert last.startswith("error: 1 of 2 Ray nodes do not see the output folder"), last
        assert str(out) in last and hidden["NodeID"][:12] in last
        assert not (out / "stages").exists(), "nothing may be computed"
    finally:
        subprocess.run(["rm", "-rf", str(shared)], check=False)
