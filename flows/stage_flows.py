"""One flow per stage plus `build`: tasks wrap shards (never rows) and return shard paths."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NONE as NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from flows.gpu_workers import WorkerPool, runner_for, threads_per_task, worker_pool
from flows.runners import make_task_runner
from flows.shared_out import check_shared_out
from flows.transient import is_transient
from voxemoset.chain import run_graph
from voxemoset.config import Config, load_config, parse_config
from voxemoset.stages import BUILD_CHAIN, get_stage
from voxemoset.store.keys import hash_json
from voxemoset.store.loads import timed_load
from voxemoset.store.lock import out_lock
from voxemoset.store.runner import ShardJob, StageBase, StageRunner
from voxemoset.summary import SUMMARY, Clock, write_summary
from voxemoset.summary import to_markdown as summary_markdown

# The Ray task runner of the running `build`, shared by its stage flows: one local cluster (and one set
# of warm workers) per build rather than one per stage, which costs seconds each.
_SHARED_RUNNER: dict[str, Any] = {}

# Models live once per worker process (a thread pool shares one; each Ray worker keeps its own): one per stage,
# for the config it was loaded with. Another config (another build in a long-lived worker) replaces it, so a
# process that serves many builds holds one set of models, not one per build.
_MODELS: dict[str, tuple[str, Any]] = {}
_MODELS_LOCK = threading.Lock()
_ONE_GPU = threading.Lock()  # the threads runner's one GPU: one model stage's shards at a time


def _model_for(stage: StageBase, cfg: Config) -> Any:
    key = hash_json([stage.name, cfg.model_dump(mode="json")])
    with _MODELS_LOCK:
        held = _MODELS.get(stage.name)
        if held is None or held[0] != key:
            _MODELS.pop(stage.name, None)  # drop the old model before loading the new one
            # The threads runner loads in this (the driver) process: its load time goes to the build's summary.
            load = timed_load if cfg.orchestration.task_runner == "threads" else lambda st, c, _: st.load(c)
            _MODELS[stage.name] = (key, load(stage, cfg, cfg.out))
        return _MODELS[stage.name][1]


def _retry_transient(task, task_run, state) -> bool:
    """Retry only what may pass on its own (network, timeout, busy file, CUDA OOM): a permission error or
    corrupt weights would fail again, after reloading the model each time."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, BaseException) and is_transient(exc)


@task(cache_policy=NO_CACHE, retry_condition_fn=_retry_transient, retry_delay_seconds=2)
def run_shard(stage_name: str, config_data: dict, job: ShardJob) -> str:
    """Compute one shard (rows, rejects, marker) and return its path."""
    cfg = parse_config(config_data)
    runner = runner_for(stage_name, cfg)
    runner.run_job(job, _model_for(runner.stage, cfg))
    return str(runner.dir / f"{job.name}.parquet")


@task(name="run_shard", cache_policy=NO_CACHE, retry_condition_fn=_retry_transient, retry_delay_seconds=2)
def run_shard_on_worker(stage_name: str, job: ShardJob, pool: WorkerPool, folder: str) -> str:
    """Hand one shard to the stage's next idle Ray worker (its models already loaded) and return its path."""
    pool.run(job)
    return str(Path(folder) / f"{job.name}.parquet")


@contextmanager
def _ray_session(cfg: Config) -> Iterator[Any]:
    """A Ray task runner, entered; on an existing cluster every node first proves it sees `out`."""
    with make_task_runner(cfg.orchestration) as runner:
        if cfg.orchestration.ray_address is not None:
            check_shared_out(cfg.out)
        yield runner


@contextmanager
def _shared_ray_runner(cfg: Config) -> Iterator[None]:
    if cfg.orchestration.task_runner != "ray" or _SHARED_RUNNER:
        yield
        return
    with _ray_session(cfg) as runner:
        _SHARED_RUNNER["runner"] = runner
        try:
            yield
        finally:
            _SHARED_RUNNER.clear()


def _task_runner(cfg: Config):
    if "runner" in _SHARED_RUNNER:
        return nullcontext(_SHARED_RUNNER["runner"])
    if cfg.orchestration.task_runner == "ray":
        return _ray_session(cfg)
    return make_task_runner(cfg.orchestration)


def execute_stage(name: str, cfg: Config, force: bool = False) -> dict:
    """The stage runner's driver, with the pending shards fanned out as tasks on the configured runner."""
    return execute_runner(StageRunner(get_stage(name), cfg, cfg.out), cfg, force)


def execute_runner(runner: StageRunner, cfg: Config, force: bool = False) -> dict:
    """`runner.drive` with its pending shards as `run_shard` tasks; counts and progress as artifacts."""
    name = runner.stage.name
    summary = runner.drive(lambda todo: _fan_out(runner, cfg, todo), force)
    if not summary["computed"]:
        create_progress_artifact(100.0, description=f"{name}: shards done")
    get_run_logger().info("%s: %d shards, %d computed", name, summary["shards"], summary["computed"])
    create_table_artifact([_row(name, summary)], key=f"{name.replace('_', '-')}-counts", description=f"{name} counts")
    return summary


def _fan_out(runner: StageRunner, cfg: Config, todo: list[ShardJob]) -> None:
    """One `run_shard` task per pending job; the model loads in the task's worker, once per process."""
    stage, folder = runner.stage, runner.dir
    get_run_logger().info("%s: %d shards to compute", stage.name, len(todo))
    progress = create_progress_artifact(0.0, description=f"{stage.name}: 0/{len(todo)} shards")
    data = cfg.model_dump(mode="json")
    task_ = run_shard.with_options(retries=cfg.orchestration.task_retries)
    ray = cfg.orchestration.task_runner == "ray"
    if stage.uses_gpu and not ray:
        # One GPU stage at a time on one GPU: its shards run one after another in this process, with the model
        # loaded once, and a stage running side by side waits for the GPU. On Ray each GPU has a worker of its own.
        with _ONE_GPU:
            for done, job in enumerate(todo, 1):
                task_(stage.name, data, job)
                _shard_finished(runner, progress, job, done, len(todo))
        return
    with _task_runner(cfg) as task_runner:
        if stage.uses_gpu:  # ray: the shard tasks are driver threads feeding the stage's long-lived workers
            with worker_pool(stage.name, cfg, len(todo)) as pool, ThreadPoolTaskRunner(pool.size) as threads:
                on_worker = run_shard_on_worker.with_options(retries=cfg.orchestration.task_retries)
                params = [{"stage_name": stage.name, "job": j, "pool": pool, "folder": str(folder)} for j in todo]
                _wait(runner, progress, todo, [threads.submit(on_worker, p) for p in params])
            return
        with _cpu_task_options(stage, cfg):
            futures = [task_runner.submit(task_, {"stage_name": stage.name, "config_data": data, "job": j})
                       for j in todo]  # fmt: skip
        _wait(runner, progress, todo, futures)


def _cpu_task_options(stage: StageBase, cfg: Config):
    """On Ray, a stage whose tasks run torch on `cpu_threads` threads asks for as many CPUs per task."""
    if cfg.orchestration.task_runner != "ray" or not stage.uses_cpu_threads:
        return nullcontext()
    from prefect_ray.context import remote_options

    return remote_options(num_cpus=threads_per_task(cfg))


def _wait(runner: StageRunner, progress, jobs: list[ShardJob], futures: list) -> None:
    for done, (job, fut) in enumerate(zip(jobs, futures, strict=True), 1):
        fut.result()
        _shard_finished(runner, progress, job, done, len(futures))


def _shard_finished(runner: StageRunner, progress, job: ShardJob, done: int, total: int) -> None:
    """The terminal's line and the UI's progress artifact: shards, items, rate and ETA."""
    runner.shard_done(job)  # its marker, on the shared output folder, says what it did
    feed = runner.feed
    update_progress_artifact(progress, 100.0 * done / total, description=feed.describe() if feed else None)


def _row(name: str, s: dict) -> dict:
    return {
        "stage": name,
        "rows": s["rows"],
        "rejects": sum(s["rejects"].values()),
        "shards": s["shards"],
        "computed": s["computed"],
        "skipped": s["skipped"],
    }


def _rejects_markdown(summaries: dict[str, dict]) -> str:
    lines = ["| stage | reason | count |", "|---|---|---|"]
    for name, s in summaries.items():
        lines += [f"| {name} | {reason} | {n} |" for reason, n in s["rejects"].items()]
    return "\n".join(lines)


def _run_stage_flow(name: str, config_path: str, overrides: dict[str, Any] | None, force: bool) -> dict:
    cfg = load_config(config_path, overrides)
    with out_lock(cfg.out):  # re-entered when a build holds it; refused when another process does
        return execute_stage(name, cfg, force)


# One module-level flow per stage: a served deployment imports its flow by entrypoint (module:qualname),
# which a flow made inside a function (`<locals>` in its qualname) cannot be.
@flow(name="stage-images", log_prints=True)
def stage_images(config_path: str, overrides: dict[str, Any] | None = None, force: bool = False) -> dict:
    """Rebuild the `images` stage from its sources."""
    return _run_stage_flow("images", config_path, overrides, force)


@flow(name="stage-captions", log_prints=True)
def stage_captions(config_path: str, overrides: dict[str, Any] | None = None, force: bool = False) -> dict:
    """Rebuild the `captions` stage from its upstream shards."""
    return _run_stage_flow("captions", config_path, overrides, force)


@flow(name="stage-references", log_prints=True)
def stage_references(config_path: str, overrides: dict[str, Any] | None = None, force: bool = False) -> dict:
    """Rebuild the `references` stage from its upstream shards."""
    return _run_stage_flow("references", config_path, overrides, force)


@flow(name="stage-speech", log_prints=True)
def stage_speech(config_path: str, overrides: dict[str, Any] | None = None, force: bool = False) -> dict:
    """Rebuild the `speech` stage from its upstream shards."""
    return _run_stage_flow("speech", config_path, overrides, force)


@flow(name="stage-gates", log_prints=True)
def stage_gates(config_path: str, overrides: dict[str, Any] | None = None, force: bool = False) -> dict:
    """Rebuild the `gates` stage from its upstream shards."""
    return _run_stage_flow("gates", config_path, overrides, force)


@flow(name="stage-dataset", log_prints=True)
def stage_dataset(config_path: str, overrides: dict[str, Any] | None = None, force: bool = False) -> dict:
    """Rebuild the `dataset` stage from its upstream shards."""
    return _run_stage_flow("dataset", config_path, overrides, force)


STAGE_FLOWS = {f.name.removeprefix("stage-"): f for f in (stage_images, stage_captions, stage_references,
                                                          stage_speech, stage_gates, stage_dataset)}  # fmt: skip
assert tuple(STAGE_FLOWS) == BUILD_CHAIN, "one stage flow per stage of the chain, in its order"


@flow(name="build", log_prints=True)
def build(config_path: str, overrides: dict[str, Any] | None = None, force: bool = False) -> dict:
    """The whole chain in the order of its stages' inputs, each reusing finished upstream shards."""
    cfg = load_config(config_path, overrides)  # fail before any stage starts
    clock = Clock()
    with out_lock(cfg.out), _shared_ray_runner(cfg):
        # Each stage once its inputs are done; independent ones (references beside images and captions) at once.
        summaries = run_graph(
            lambda name: STAGE_FLOWS[name](config_path, overrides, force),
            side_by_side=cfg.orchestration.parallel_stages,
        )
    create_table_artifact([_row(n, s) for n, s in summaries.items()], key="build-counts", description="rows per stage")
    create_markdown_artifact(_rejects_markdown(summaries), key="build-rejects", description="rejects by reason")
    summary = write_summary(cfg.out, summaries, clock.started, clock.wall_s)
    report = report_flow(config_path, overrides) if "dataset" in summaries else None
    link = f"\n\nReport: `{Path(report) / 'index.html'}`" if report else ""
    create_markdown_artifact(f"{summary_markdown(summary)}\n\nSummary: `{Path(cfg.out) / SUMMARY}`{link}",
                             key="build-summary", description="the build's account per stage")  # fmt: skip
    return summaries


@flow(name="report", log_prints=True)
def report_flow(config_path: str, overrides: dict[str, Any] | None = None) -> str:
    """Table-1 figures, plots and the HTML browser of the built dataset; its summary as an artifact."""
    from voxemoset.report import clip_error, cremad_inputs, write_report

    cfg = load_config(config_path, overrides)
    folder = write_report(cfg.out, settings=cfg.report, cremad=cremad_inputs(cfg))
    text = (folder / "report.md").read_text()
    create_markdown_artifact(f"{text}\n\nFull report: `{folder / 'index.html'}`", key="build-report",
                             description="report summary")  # fmt: skip
    # CLIP is not needed to build (the preflight says so): a missing one is reported, not a failed build.
    error = clip_error(folder)
    if error:
        print(f"warning: CLIPScore left out of the report: {error}")
    return str(folder)
