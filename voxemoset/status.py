"""`voxemoset status` (and `build --dry-run`): what a build would do, computing nothing.

Each stage is planned as a run would plan it (keys from the config, the models' files and the verified input
shards), and each planned shard is compared with its marker: done (same key, files whole), stale (another key: the
marker's recipe names which settings, models or inputs changed it), or pending (never finished, or damaged). A stage
whose inputs will change is stale as a whole, though its own keys cannot show it until they are rebuilt. The
estimate of a rebuild is the mean recorded seconds of the stage's finished shards times the shards to redo.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from voxemoset.errors import UserError, describe

SHOWN_CHANGES = 6  # per stage; the rest are counted


@dataclass
class StageStatus:
    name: str
    done: int = 0
    pending: int = 0
    stale: int = 0
    reuses_work: int = 0  # stale shards whose kept work (the gates' scored attempts) outlives the change
    changes: list[str] = field(default_factory=list)
    waits_on: list[str] = field(default_factory=list)  # input stages that will change first
    seconds_per_shard: float | None = None
    error: str | None = None

    @property
    def todo(self) -> int:
        return self.pending + self.stale

    @property
    def estimate_s(self) -> float | None:
        return None if self.seconds_per_shard is None else round(self.todo * self.seconds_per_shard, 1)

    def as_dict(self) -> dict:
        return {"stage": self.name, "done": self.done, "pending": self.pending, "stale": self.stale,
                "reuses_work": self.reuses_work, "changes": self.changes, "waits_on": self.waits_on, "estimate_s": self.estimate_s,
                "error": self.error}  # fmt: skip


def _flat(value, prefix: str = "") -> dict[str, object]:
    if isinstance(value, dict) and value:
        return {k: v for key, sub in value.items() for k, v in _flat(sub, f"{prefix}.{key}" if prefix else key).items()}
    return {prefix: value}


def _show(value) -> str:
    return json.dumps(value) if not isinstance(value, str) else value


def changes(stage: str, before: dict | None, now: dict) -> list[str]:
    """What differs between a marker's recipe and the planned key's parts, as `section.setting old → new` lines."""
    if not before:
        return ["recorded by an older voxemoset (no recipe in its marker)"]
    old, new = _flat(before), _flat(json.loads(json.dumps(now, default=str)))
    lines = []
    for path in sorted(set(old) | set(new)):
        if old.get(path) == new.get(path):
            continue
        part, _, rest = path.partition(".")
        if part == "config":
            lines.append(f"{stage}.{rest} {_show(old.get(path))} → {_show(new.get(path))}")
        elif part == "upstream":
            lines.append(f"input shard {rest or '(the set of input shards)'} changed")
        elif part == "model":
            lines.append(f"model {rest.split('.')[0] or stage} changed")
        else:
            lines.append(f"{part} changed")
    # One line per model or input, however many of its files changed.
    return list(dict.fromkeys(lines))


def _seconds(path: Path) -> float | None:
    try:
        value = json.loads(path.read_text()).get("seconds")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def stage_status(name: str, config, out: Path, changing: set[str]) -> StageStatus:
    """One stage's shards against its markers; `changing`: stages before it that will change."""
    from voxemoset.stages import get_stage
    from voxemoset.store.keys import recipe
    from voxemoset.store.runner import StageRunner, planned, timing_path
    from voxemoset.store.verify import read_marker

    stage = get_stage(name)
    status = StageStatus(name, waits_on=[s for s in stage.inputs if s in changing])
    try:
        plan, _ = planned(stage, config, out)
    except UserError as e:
        status.error = describe(e)
        return status
    runner, seconds = StageRunner(stage, config, out), []
    for job in plan.jobs:
        path = runner.marker_path(job)
        marker = read_marker(path) if path.is_file() else None
        if marker and (took := _seconds(timing_path(out, name, job.name))) is not None:
            seconds.append(took)
        if marker is None:
            status.pending += 1
        elif marker.get("key") != job.key:
            status.stale += 1
            status.reuses_work += bool(job.work_key) and marker.get("work_key") == job.work_key
            status.changes += changes(name, marker.get("recipe"), recipe(getattr(job.key, "parts", {})))
        elif status.waits_on:
            status.stale += 1
        elif runner.is_done(job):
            status.done += 1
        else:
            status.pending += 1  # damaged: recomputed
    status.changes = list(dict.fromkeys(status.changes))
    status.seconds_per_shard = sum(seconds) / len(seconds) if seconds else None
    return status


def build_status(config, names=None) -> list[StageStatus]:
    """Every stage of the chain, in order, computing nothing."""
    from voxemoset.stages import BUILD_CHAIN

    changing: set[str] = set()
    result = []
    for name in names or BUILD_CHAIN:
        status = stage_status(name, config, Path(config.out), changing)
        if status.todo or status.error:
            changing.add(name)
        result.append(status)
    return result


def print_status(statuses: list[StageStatus], say) -> None:
    """A table per stage, then what changed each stale stage."""
    from rich.table import Table

    table = Table("stage", "done", "pending", "stale", "estimate", title="what a build would do")
    for s in statuses:
        estimate = "-" if not s.todo else (f"{s.estimate_s:.0f} s" if s.estimate_s is not None else "no timings yet")
        if s.reuses_work and s.estimate_s is not None:
            estimate = f"under {estimate}"  # the shards' recorded times include the work they keep
        table.add_row(s.name, str(s.done), str(s.pending), str(s.stale), estimate)
    say(table)
    for s in statuses:
        if s.error:
            say(f"{s.name}: cannot plan yet: {s.error}")
        if s.reuses_work:
            say(f"{s.name}: {s.reuses_work} stale shards reuse their kept work (stored scores are re-judged)")
        if s.waits_on:
            say(f"{s.name}: stale because its inputs change first: {', '.join(s.waits_on)}")
        for line in s.changes[:SHOWN_CHANGES]:
            say(f"{s.name}: {line}")
        if len(s.changes) > SHOWN_CHANGES:
            say(f"{s.name}: and {len(s.changes) - SHOWN_CHANGES} more changes")
    todo = [s.name for s in statuses if s.todo]
    say(f"a build would recompute: {', '.join(todo)}" if todo else "nothing pending: the build is up to date")
