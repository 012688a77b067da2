"""The one runner: plans shards, skips finished ones, writes outputs, rejects and markers atomically."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa

from voxemoset.errors import UserError
from voxemoset.store.atomic import TMP_SUFFIX, clean_tmp, write_json, write_parquet
from voxemoset.store.keys import hash_file, hash_json
from voxemoset.store.threads import pin_cpu_threads

REJECT_SCHEMA = pa.schema(
    [("source", pa.string()), ("reason", pa.string()), ("detail", pa.string()), ("stage", pa.string())]
)


@dataclass(frozen=True)
class ShardJob:
    """One unit of work: output shard `name`, computed from `inputs`, identified by `key`."""

    name: str
    key: str
    inputs: Any = None


@dataclass
class Plan:
    """A stage's shard jobs plus counts of inputs it left out by design."""

    jobs: list[ShardJob]
    filtered: dict[str, int] = field(default_factory=dict)


@dataclass
class ShardOutput:
    """What processing one shard produced: kept rows, dropped inputs with reasons, extra stats."""

    table: pa.Table
    rejects: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)


class Stage(Protocol):
    """A stage: cheap `plan`, heavy `load` (only when work is pending), pure `process` per shard."""

    name: str
    version: str

    def plan(self, config: Any) -> Plan: ...

    def load(self, config: Any) -> Any: ...

    def process(self, job: ShardJob, model: Any, config: Any) -> ShardOutput: ...


def job_key(stage: Stage, stage_config: dict, model_id: Any, inputs: Any) -> str:
    """Key of a shard: input content, stage config, model identity and stage code version."""
    return hash_json(
        {"stage": stage.name, "version": stage.version, "config": stage_config, "model": model_id, "inputs": inputs}
    )


def stage_dir(out: Path, stage_name: str) -> Path:
    """Where a stage's shards live."""
    return Path(out) / "stages" / stage_name


def list_shards(folder: Path) -> list[Path]:
    """A stage's finished Parquet shards, sorted, ignoring temp files."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.parquet") if not p.name.endswith(TMP_SUFFIX))


def upstream_jobs(stage: Stage, out: Path, upstream: str, stage_config: dict, model_id: Any) -> list[ShardJob]:
    """One job per finished upstream shard, same name, keyed by that shard's bytes: shard k from shard k."""
    folder = stage_dir(out, upstream)
    if not list_shards(folder):
        raise UserError(
            f"stage {stage.name} reads the {upstream} stage, which has no shards under {folder}: run it first"
        )
    jobs = []
    for path in list_shards(folder):
        key = job_key(stage, stage_config, model_id, {"upstream": upstream, "sha256": hash_file(path)})
        jobs.append(ShardJob(path.stem, key, str(path)))
    return jobs


def rejects_table(rows: list[dict], stage_name: str, extra: pa.Schema | None = None) -> pa.Table:
    """Rejects as a table: source, reason, detail, stage, plus the stage's declared extra columns.

    One schema per stage, so every rejects shard of a stage reads together.
    """
    schema = pa.schema(list(REJECT_SCHEMA) + list(extra or []))
    full = [{"detail": "", **r, "stage": stage_name} for r in rows]
    return pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in full], schema=schema)


class StageRunner:
    """Runs one stage's shard jobs against an output folder; safe to kill at any point and rerun."""

    def __init__(self, stage: Stage, config: Any, out: Path):
        self.stage, self.config = stage, config
        self.dir = stage_dir(out, stage.name)
        self.out = Path(out)

    def marker_path(self, job: ShardJob) -> Path:
        return self.dir / "_done" / f"{job.name}.json"

    def is_done(self, job: ShardJob) -> bool:
        """Finished means: marker with this key, written last, and the shard it vouches for."""
        marker = self.marker_path(job)
        if not marker.is_file() or not (self.dir / f"{job.name}.parquet").is_file():
            return False
        try:
            return json.loads(marker.read_text()).get("key") == job.key
        except (OSError, json.JSONDecodeError):
            return False

    def pending(self, plan: Plan, force: bool = False) -> list[ShardJob]:
        """Jobs still to compute."""
        clean_tmp(self.dir)
        return list(plan.jobs) if force else [j for j in plan.jobs if not self.is_done(j)]

    def run_job(self, job: ShardJob, model: Any) -> dict:
        """Process one shard and publish it: rows, then rejects, then the marker (the commit point)."""
        pin_cpu_threads(getattr(getattr(self.config, "orchestration", None), "cpu_threads", None))
        result = self.stage.process(job, model, self.config)
        write_parquet(self.dir / f"{job.name}.parquet", result.table)
        write_parquet(
            self.dir / "rejects" / f"{job.name}.parquet",
            rejects_table(result.rejects, self.stage.name, getattr(self.stage, "reject_schema", None)),
        )
        marker = {
            "key": job.key,
            "rows": result.table.num_rows,
            "rejects": dict(sorted(Counter(r["reason"] for r in result.rejects).items())),
            "stats": result.stats,
        }
        write_json(self.marker_path(job), marker)
        return marker

    def finalize(self, plan: Plan, computed: int) -> dict:
        """Drop shards no longer planned, then record this stage's counts in the run manifest."""
        names = {j.name for j in plan.jobs}
        for folder, suffix in (
            (self.dir, ".parquet"),
            (self.dir / "rejects", ".parquet"),
            (self.dir / "_done", ".json"),
        ):
            if folder.is_dir():
                for p in folder.glob(f"*{suffix}"):
                    if p.name[: -len(suffix)] not in names:
                        p.unlink()
        rows, rejects = 0, Counter()
        for job in plan.jobs:
            marker = json.loads(self.marker_path(job).read_text())
            rows += marker["rows"]
            rejects.update(marker["rejects"])
        summary = {
            "shards": len(plan.jobs),
            "computed": computed,
            "skipped": len(plan.jobs) - computed,
            "rows": rows,
            "rejects": dict(sorted(rejects.items())),
            "filtered": plan.filtered,
        }
        update_manifest(self.out, self.stage.name, summary)
        return summary


def update_manifest(out: Path, stage_name: str, summary: dict) -> None:
    """Merge one stage's counts into `<out>/manifest.json`."""
    path = Path(out) / "manifest.json"
    manifest = json.loads(path.read_text()) if path.is_file() else {"stages": {}}
    manifest["stages"][stage_name] = summary
    write_json(path, manifest)


def run_stage(stage: Stage, config: Any, out: Path, force: bool = False, progress: bool = False) -> dict:
    """Run a stage in this process: load the model only if a shard is pending."""
    runner = StageRunner(stage, config, out)
    plan = stage.plan(config)
    todo = runner.pending(plan, force)
    if todo:
        model = stage.load(config)
        if progress:
            from rich.progress import track

            todo_iter = track(todo, description=f"{stage.name}", transient=True)
        else:
            todo_iter = todo
        for job in todo_iter:
            runner.run_job(job, model)
    return runner.finalize(plan, computed=len(todo))
