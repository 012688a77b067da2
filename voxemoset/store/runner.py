"""The one runner: plans shards, skips finished ones, writes outputs, rejects and markers atomically."""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from voxemoset.store.atomic import clean_tmp, write_json, write_parquet
from voxemoset.store.folders import list_shards, stage_dir, verified_shards  # noqa: F401 - tests read folders
from voxemoset.store.keys import job_key, recipe  # noqa: F401 - the stages' key maker, with the interface
from voxemoset.store.loads import timed_load
from voxemoset.store.lock import out_lock
from voxemoset.store.manifest import marker_counts, update_manifest
from voxemoset.store.stage import Plan, ShardJob, ShardOutput, StageBase  # noqa: F401 - stages import them from here
from voxemoset.store.threads import pin_cpu_threads
from voxemoset.store.upstream import Upstream
from voxemoset.store.verify import (
    MARKER_DIR,
    NO_MARKER,
    OLD_MARKER,
    describe_file,
    marker_path,
    read_marker,
    shard_damage,
    shard_files,
)
from voxemoset.store.work import WORK_DIR, work_dir

log = logging.getLogger("voxemoset")

REJECT_SCHEMA = pa.schema(
    [("source", pa.string()), ("reason", pa.string()), ("detail", pa.string()), ("stage", pa.string())]
)


def rejects_table(rows: list[dict], stage_name: str, extra: pa.Schema | None = None) -> pa.Table:
    """Rejects as a table: source, reason, detail, stage, plus the stage's declared extra columns.

    One schema per stage, so every rejects shard of a stage reads together.
    """
    schema = pa.schema(list(REJECT_SCHEMA) + list(extra or []))
    full = [{"detail": "", **r, "stage": stage_name} for r in rows]
    return pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in full], schema=schema)


def planned(stage: StageBase, config: Any, out: Path | None = None) -> tuple[Plan, Upstream]:
    """The stage's plan from its inputs' verified shards, each job keyed by the content of the shards it reads; and
    those inputs. Nothing is computed."""
    upstream = Upstream(Path(out if out is not None else config.out), stage.name, stage.inputs)
    plan = stage.plan(config, upstream)
    return replace(plan, jobs=[upstream.keyed(j) for j in plan.jobs]), upstream


def plan_stage(stage: StageBase, config: Any) -> Plan:
    """The stage's keyed plan, as a run would make it (a user mistake, e.g. a missing source, fails here)."""
    return planned(stage, config)[0]


def check_schema(stage: StageBase, table: pa.Table) -> None:
    """A shard's rows have exactly the stage's declared schema, or one error naming the stage and the column."""
    want = stage.schema
    if want is None or table.schema.equals(want):
        return
    got = table.schema
    for field in want:
        if field.name not in got.names:
            raise ValueError(f"stage {stage.name} wrote a shard without its column {field.name!r}")
        if not got.field(field.name).type.equals(field.type):
            raise ValueError(f"stage {stage.name} wrote column {field.name!r} as {got.field(field.name).type}, "
                             f"not its declared {field.type}")  # fmt: skip
    extra = [n for n in got.names if n not in want.names]
    raise ValueError(f"stage {stage.name} wrote columns its schema does not declare: {extra or got.names}")


def timing_path(out: Path, stage: str, shard: str) -> Path:
    """Where a shard's processing time is kept: one small file per shard (workers on other hosts never append)."""
    return Path(out) / "logs" / "timings" / stage / f"{shard}.json"


class StageRunner:
    """Runs one stage's shard jobs against an output folder; safe to kill at any point and rerun."""

    def __init__(self, stage: StageBase, config: Any, out: Path):
        self.stage, self.config = stage, config
        self.dir = stage_dir(out, stage.name)
        self.out = Path(out)
        self.feed = None  # the running stage's progress (voxemoset/progress.py), set by `drive`

    def marker_path(self, job: ShardJob) -> Path:
        return marker_path(self.dir, job.name)

    def is_done(self, job: ShardJob) -> bool:
        """Finished means: marker with this key, written last, the whole files it vouches for, and whatever the
        stage wrote outside its folder still there."""
        path = self.marker_path(job)
        if not path.is_file():
            return False
        marker = read_marker(path)
        if marker is not None and marker.get("key") != job.key:
            return False  # computed from other inputs or config: plainly not done, nothing damaged
        why = NO_MARKER if marker is None else shard_damage(self.dir, job.name, marker)
        if why is None and not self.stage.outputs_intact(self.config, job, marker):
            why = "what it wrote outside the stage folder is gone"
        if why == OLD_MARKER:  # expected once after an upgrade, not damage: say so quietly
            log.info("%s: shard %s was finished by an older voxemoset; recomputing", self.stage.name, job.name)
        elif why:
            log.warning("%s: shard %s is damaged (%s); recomputing", self.stage.name, job.name, why)
        return why is None

    def pending(self, plan: Plan, force: bool = False) -> list[ShardJob]:
        """Jobs still to compute."""
        clean_tmp(self.dir)
        return list(plan.jobs) if force else [j for j in plan.jobs if not self.is_done(j)]

    def prepare(self, force: bool = False) -> tuple[Plan, list[ShardJob]]:
        """The stage's plan, each job keyed by the content of the input shards it reads, and the jobs of it still to
        compute (all of them with `force`)."""
        plan, self.upstream = planned(self.stage, self.config, self.out)
        return plan, self.pending(plan, force)

    def drive(self, compute: Callable[[list[ShardJob]], None], force: bool = False) -> dict:
        """The one driver: plan, pick pending jobs, hand them to `compute` (which loads a model only when called,
        so never when nothing is pending), then drop unplanned shards and record counts."""
        from voxemoset.progress import stage_feed

        started = time.perf_counter()
        plan, todo = self.prepare(force)
        self.feed = None
        if todo:
            with stage_feed(self.stage.name, len(todo)) as self.feed:
                compute(todo)
        # This run's work, for the build summary: wall time and the items of the shards it computed.
        run = {"seconds": round(time.perf_counter() - started, 3),
               "items_computed": self.feed.items if self.feed is not None else 0,
               "shard_load_s": round(self.feed.model_load_s, 3) if self.feed is not None else 0.0}  # fmt: skip
        summary = self.finalize(plan, computed=len(todo), run=run)
        self.stage.finish(self.config, self.upstream, {j.name: read_marker(self.marker_path(j)) for j in plan.jobs})
        return summary

    def run_job(self, job: ShardJob, model: Any) -> dict:
        """Process one shard and publish it: rows, then rejects, then the marker (the commit point)."""
        started = time.perf_counter()
        pin_cpu_threads(self.config.orchestration.cpu_threads)
        work = work_dir(self.dir, job.name, job.work_key or job.key)
        result = self.stage.process(replace(job, work=work), model, self.config)
        check_schema(self.stage, result.table)
        # Planning problems follow what `process` rejected: where a stage's sort put them among its inputs,
        # they came after them (EmoSet's `<split>.json#N` sources sort after its image ids).
        found = [*result.rejects, *job.problems]
        rows_file, rejects_file = shard_files(job.name)
        rejects = rejects_table(found, self.stage.name, self.stage.reject_schema)
        write_parquet(self.dir / rows_file, result.table)
        write_parquet(self.dir / rejects_file, rejects)
        marker = {
            "key": job.key,
            # Size, rows and hash of each file, so a later run can tell a damaged shard from a finished one.
            "files": {
                rows_file: describe_file(self.dir / rows_file, result.table.num_rows),
                rejects_file: describe_file(self.dir / rejects_file, rejects.num_rows),
            },
            "rows": result.table.num_rows,
            "rejects": dict(sorted(Counter(r["reason"] for r in found).items())),
            "stats": result.stats,
            # What made the key: `voxemoset status` names what changed a stale shard's key from it.
            "recipe": recipe(getattr(job.key, "parts", {})),
            "work_key": job.work_key,
        }
        write_json(self.marker_path(job), marker)
        # How long it took, apart from the marker (which a rerun rewrites byte for byte): status's estimates.
        write_json(
            timing_path(self.out, self.stage.name, job.name), {"seconds": round(time.perf_counter() - started, 3)}
        )
        return marker

    def run_all(self, jobs: Iterable[ShardJob], model: Any) -> None:
        """Process jobs one after another in this process."""
        for job in jobs:
            self.shard_done(job, self.run_job(job, model))

    def shard_done(self, job: ShardJob, marker: dict | None = None) -> None:
        """Tell the stage's progress feed a shard finished (its marker read back when not given)."""
        if self.feed is not None:
            self.feed.shard(job.name, marker if marker is not None else read_marker(self.marker_path(job)))

    def finalize(self, plan: Plan, computed: int, run: dict | None = None) -> dict:
        """Drop shards (and work folders) no longer planned, then record this stage's counts in the run manifest."""
        names = {j.name for j in plan.jobs}
        for folder, suffix in (
            (self.dir, ".parquet"),
            (self.dir / "rejects", ".parquet"),
            (self.dir / MARKER_DIR, ".json"),
        ):
            if folder.is_dir():
                for p in folder.glob(f"*{suffix}"):
                    if p.name[: -len(suffix)] not in names:
                        p.unlink()
        if (self.dir / WORK_DIR).is_dir():
            for p in (self.dir / WORK_DIR).iterdir():
                if p.name not in names:
                    shutil.rmtree(p, ignore_errors=True)
        # Every planned job is finished by now, so each marker was written (and read back whole) this run.
        counts = marker_counts(json.loads(self.marker_path(job).read_text()) for job in plan.jobs)
        summary = {
            "shards": len(plan.jobs),
            "computed": computed,
            "skipped": len(plan.jobs) - computed,
            **counts,
            "filtered": plan.filtered,
            **(run or {}),
        }
        update_manifest(self.out, self.stage.name, summary)
        return summary


def run_stage(stage: StageBase, config: Any, out: Path, force: bool = False) -> dict:
    """Run a stage in this process, holding the output folder: load the model only if a shard is pending. Progress
    shows where a command turned it on (voxemoset/progress.py)."""

    def compute(todo: list[ShardJob]) -> None:
        runner.run_all(todo, timed_load(stage, config, out))

    with out_lock(out):
        runner = StageRunner(stage, config, out)
        return runner.drive(compute, force)
