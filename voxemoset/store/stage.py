"""What a stage is to the runner and the flows: its jobs, its output, and every attribute they read, declared once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from voxemoset.store.work import WorkDir


@dataclass(frozen=True)
class ShardJob:
    """One unit of work: output shard `name`, computed from `inputs`, identified by `key`.

    `problems` are rejects found while planning (a malformed source row): the runner writes them into this
    shard's rejects table after what `process` rejects, so `process` never sees them. `work` is set by the
    runner just before `process`: the job's resumable work folder.
    """

    name: str
    key: str
    inputs: Any = None
    problems: tuple[dict, ...] = ()
    work: WorkDir | None = None


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


class StageBase:
    """A stage: cheap `plan`, heavy `load` (only when work is pending), pure `process` per shard.

    The runner and the flows read nothing of a stage that is not declared here.
    """

    name: str
    version: str
    # Shard tasks want a GPU: on one machine they run one after another, on Ray a worker per GPU takes them.
    uses_gpu: bool = False
    # Shard tasks run a torch model on the CPU with `cpu_threads` threads: on Ray each asks for that many CPUs,
    # so a node runs no more of them (nor loads the model more often) than its cores hold.
    uses_cpu_threads: bool = False
    # Columns the stage adds to its rejects tables beyond source, reason, detail, stage.
    reject_schema: pa.Schema | None = None

    def plan(self, config: Any) -> Plan:
        """The stage's shard jobs, keyed by their inputs; reads no model."""
        raise NotImplementedError

    def load(self, config: Any) -> Any:
        """The model(s) `process` needs; called only when a shard is pending."""
        return None

    def process(self, job: ShardJob, model: Any, config: Any) -> ShardOutput:
        """One shard's rows and rejects; writes nothing (the runner does)."""
        raise NotImplementedError

    def outputs_intact(self, config: Any, job: ShardJob) -> bool:
        """Whether what a finished job wrote outside its stage folder is still there (default: it writes none)."""
        return True
