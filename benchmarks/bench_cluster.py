"""The demo build on a 2-node Ray cluster that declares 2 GPUs, against the threads runner, in one run.

Both builds are `voxemoset build` in a fresh process, as a user runs it, on the demo at `images.shard_size: 4`
(13 shards per GPU stage), reporting to one Prefect server started first (not counted). The cluster (`ray start`: a
head and a second node on 127.0.0.1, one declared GPU each, 2 CPUs each; its tasks run on this machine's CPU) is
started before its build and not counted either: a lab's cluster is already up. Recorded: wall seconds of each
build and their ratio, seconds per stage flow run, model loads per GPU stage (from the driver's worker log), Ray
worker processes started (one core-worker log each), and whether both builds wrote the same dataset.

Run from the repo root: `.venv/bin/python benchmarks/bench_cluster.py [--shard-size 4]`. Writes results/cluster.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import yaml
from bench_orchestration import REPO, _flow_run_seconds, _private_prefect, save_result

sys.path.insert(0, str(REPO))  # tests/ holds the cluster and server helpers the CI test uses too

from flows.gpu_workers import read_worker_log  # noqa: E402
from tests.prefect_server import prefect_env, prefect_server  # noqa: E402
from tests.ray_cluster import ray_cluster  # noqa: E402
from voxemoset.stages import BUILD_CHAIN, get_stage  # noqa: E402
from voxemoset.store.digest import build_digest  # noqa: E402

VOXEMOSET = str(Path(sys.executable).with_name("voxemoset"))
GPU_STAGES = [s for s in BUILD_CHAIN if get_stage(s).uses_gpu]


def _build(cfg: Path, out: Path, env: dict) -> dict:
    """One `voxemoset build` in a fresh process: its wall seconds and its stage flow runs' seconds."""
    started, t0 = datetime.now(UTC), time.perf_counter()
    proc = subprocess.run([VOXEMOSET, "build", "-c", str(cfg), "--out", str(out)], env=env, capture_output=True,
                          text=True)  # fmt: skip
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"build failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    return {"wall_s": round(wall, 1), "per_stage_s": {k: round(v, 1) for k, v in _flow_run_seconds(started).items()}}


def _loads(out: Path) -> dict:
    """Per GPU stage: shards computed, model loads, workers and the nodes that ran shards."""
    events, found = read_worker_log(out), {}
    for stage in GPU_STAGES:
        done = [e for e in events if e["stage"] == stage and e["event"] == "done"]
        found[stage] = {
            "shards": len(done),
            "model_loads": sum(e["load_s"] is not None for e in done),
            "load_s": [e["load_s"] for e in done if e["load_s"] is not None],
            "workers": sum(e["stage"] == stage and e["event"] == "worker" for e in events),
            "shards_per_node": sorted(Counter(e["node"][:8] for e in done).values()),
        }
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shard-size", type=int, default=4, help="images per shard (4: 13 shards per stage)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "prefect").mkdir()
        _private_prefect(tmp / "prefect")
        from voxemoset.demo import write_demo_inputs

        data = yaml.safe_load(write_demo_inputs(tmp / "demo").read_text())
        data["images"]["shard_size"] = args.shard_size
        threads_cfg = tmp / "threads.yaml"
        threads_cfg.write_text(yaml.safe_dump(data))
        with prefect_server(tmp / "prefect") as api:
            os.environ["PREFECT_API_URL"] = api  # _flow_run_seconds asks this server
            env = prefect_env(tmp / "prefect", api)
            threads = _build(threads_cfg, tmp / "threads", env)
            with ray_cluster(num_gpus=1, num_cpus=2, env=env) as cluster:
                cluster.add_node(num_gpus=1, num_cpus=2)
                data["orchestration"] = {"task_runner": "ray", "ray_address": cluster.address}
                cluster_cfg = tmp / "cluster.yaml"
                cluster_cfg.write_text(yaml.safe_dump(data))
                before = set(cluster.tmp.rglob("python-core-worker-*.log"))
                ray = _build(cluster_cfg, tmp / "cluster", env)
                workers = len(set(cluster.tmp.rglob("python-core-worker-*.log")) - before)
                left = cluster.state()
        result = {
            "demo": {"images_shard_size": args.shard_size, "gpu_stages": GPU_STAGES},
            "machine": {"cpus": os.cpu_count()},
            "cluster": {"nodes": 2, "declared_gpus": 2, "cpus": 4},
            "threads": threads,
            "ray_cluster": {**ray, "worker_processes_started": workers, "left_on_cluster": left},
            "wall_ratio": round(ray["wall_s"] / threads["wall_s"], 2),
            "gpu_stages": _loads(tmp / "cluster"),
            "same_dataset": build_digest(tmp / "threads") == build_digest(tmp / "cluster"),
        }
    save_result("cluster", result)


if __name__ == "__main__":
    main()
