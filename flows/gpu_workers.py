"""On Ray, a model stage's shards go to long-lived workers: one Ray actor per GPU, holding the stage's models.

Ray ends a worker process after one task that asked for a GPU (its `max_calls=1` default for such tasks), so shard
tasks loaded the models once per shard. An actor keeps its process, and Ray gives it a GPU of its own
(CUDA_VISIBLE_DEVICES) for its whole life: the models load once per GPU and no two workers share one. Prefect still
shows one task run per shard: each is a thread of the driver that hands its shard to an idle worker and waits.

A worker killed mid-shard is restarted by Ray (`max_restarts`), which runs the shard again on it (`max_task_retries`):
shards are written atomically and marked last, so the rerun gives the same bytes.
"""

from __future__ import annotations

import json
import os
import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from voxemoset.config import Config, parse_config
from voxemoset.corpora.export.writer import CORPUS_PREFIX, corpus_runner
from voxemoset.stages import get_stage
from voxemoset.store.loads import WORKER_LOG, log_event
from voxemoset.store.runner import ShardJob, StageRunner
from voxemoset.store.threads import cpu_threads


def runner_for(stage_name: str, cfg: Config) -> StageRunner:
    """The runner of a chain stage, or of a corpus (`corpus_<name>`, written under <out>/corpora/<name>/)."""
    if stage_name.startswith(CORPUS_PREFIX):
        return corpus_runner(stage_name.removeprefix(CORPUS_PREFIX), cfg)
    return StageRunner(get_stage(stage_name), cfg, cfg.out)


class ShardWorker:
    """One stage's models on one GPU (a Ray actor): loaded with the first shard, kept for the next ones."""

    def __init__(self, stage_name: str, config_data: dict):
        self.stage_name, self.config_data = stage_name, config_data
        self.runner: StageRunner | None = None
        self.model: Any = None

    def where(self) -> dict:
        """This worker's process, node and devices (Ray sets CUDA_VISIBLE_DEVICES to the GPUs it holds)."""
        import ray

        ctx = ray.get_runtime_context()
        return {"pid": os.getpid(), "node": ctx.get_node_id(), "node_ip": ray.util.get_node_ip_address(),
                "gpus": [str(g) for g in ray.get_gpu_ids()],
                "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}  # fmt: skip

    def run(self, job: ShardJob) -> dict:
        """Compute one shard; the models load on the first call of this process only."""
        load_s = None
        if self.runner is None:
            cfg = parse_config(self.config_data)
            runner = runner_for(self.stage_name, cfg)
            start = time.perf_counter()
            self.model = runner.stage.load(cfg)
            load_s, self.runner = round(time.perf_counter() - start, 3), runner
        self.runner.run_job(job, self.model)
        return {"pid": os.getpid(), "load_s": load_s}


class WorkerLog:
    """`<out>/logs/workers.jsonl`, written by the driver only (one writer, so no shared-file appends across nodes)."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.path = self.out / WORKER_LOG

    def write(self, event: str, **fields: Any) -> None:
        log_event(self.out, event, **fields)


def read_worker_log(out: Path) -> list[dict]:
    """Every event of `<out>/logs/workers.jsonl` (empty when no Ray worker ran)."""
    path = Path(out) / WORKER_LOG
    return [json.loads(line) for line in path.read_text().splitlines() if line] if path.is_file() else []


def _node_cpus() -> list[int]:
    import ray

    return [int(n["Resources"].get("CPU", 0)) for n in ray.nodes() if n["Alive"]]


def threads_per_task(cfg: Config) -> int:
    """CPUs a task that runs torch on `cpu_threads` threads asks Ray for: that many, at most one node's."""
    return max(1, min(cpu_threads(cfg.orchestration.cpu_threads), max(_node_cpus(), default=1)))


def worker_resources(cfg: Config, n_jobs: int) -> tuple[int, dict]:
    """How many workers and what each asks Ray for: a GPU each (`gpus_per_task`) on a cluster with GPUs, else
    `cpu_threads` CPUs each, as many as the nodes hold; never more workers than shards."""
    import ray

    gpus, per = ray.cluster_resources().get("GPU", 0.0), cfg.orchestration.gpus_per_task
    if per > 0 and gpus >= per:
        return max(1, min(n_jobs, int(gpus // per))), {"num_gpus": per}
    threads = threads_per_task(cfg)
    return max(1, min(n_jobs, sum(c // threads for c in _node_cpus()))), {"num_cpus": threads}


class WorkerPool:
    """A stage's workers, each taking one shard at a time from the driver's shard tasks."""

    def __init__(self, stage_name: str, cfg: Config, n_jobs: int):
        import ray

        self.stage_name, self.log = stage_name, WorkerLog(cfg.out)
        size, resources = worker_resources(cfg, n_jobs)
        retries = cfg.orchestration.task_retries
        actor = ray.remote(ShardWorker).options(
            **resources, max_restarts=retries, max_task_retries=retries, scheduling_strategy="SPREAD"
        )
        data = cfg.model_dump(mode="json")
        self.workers = [actor.remote(stage_name, data) for _ in range(size)]
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        try:
            for k, info in enumerate(ray.get([w.where.remote() for w in self.workers])):
                self.log.write("worker", stage=stage_name, worker=k, **resources, **info)
                self._idle.put(k)
        except BaseException:
            self.close()
            raise

    @property
    def size(self) -> int:
        return len(self.workers)

    def run(self, job: ShardJob) -> None:
        """Compute `job` on the next idle worker; the original exception if the shard failed."""
        import ray
        from ray.exceptions import RayTaskError

        k = self._idle.get()
        try:
            worker = self.workers[k]
            # An actor runs its calls in order: `where` answers just as `run` starts, from the process that runs
            # it (a restarted worker has a new pid).
            here, done = worker.where.remote(), worker.run.remote(job)
            info = ray.get(here)
            self.log.write("start", stage=self.stage_name, shard=job.name, worker=k, pid=info["pid"],
                           node=info["node"])  # fmt: skip
            try:
                result = ray.get(done)
            except RayTaskError as e:  # the shard's own error, as the threads runner would raise it
                raise e.cause from None
            self.log.write("done", stage=self.stage_name, shard=job.name, worker=k, node=info["node"], **result)
        finally:
            self._idle.put(k)

    def close(self) -> None:
        """End every worker (no restart): the GPUs are free for the next stage, and no actor outlives the build."""
        import ray

        for w in self.workers:
            ray.kill(w, no_restart=True)


@contextmanager
def worker_pool(stage_name: str, cfg: Config, n_jobs: int) -> Iterator[WorkerPool]:
    """The stage's workers for as long as its shards run."""
    pool = WorkerPool(stage_name, cfg, n_jobs)
    try:
        yield pool
    finally:
        pool.close()
