"""What a stage is to the runner and the flows: its jobs, its output, and every attribute they read, declared once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from voxemoset.store.work import WorkDir

if TYPE_CHECKING:
    from voxemoset.store.upstream import Upstream


@dataclass(frozen=True)
class ShardJob:
    """One unit of work: output shard `name`, computed from `inputs`, identified by `key`.

    `problems` are rejects found while planning (a malformed source row): the runner writes them into this
    shard's rejects table after what `process` rejects, so `process` never sees them. `reads` names the input
    stages' shards the job reads, as (stage, shard) pairs (None: every shard of every input); the runner puts their
    content into `key`. `work_key` keys the job's resumable work folder when what it keeps there outlives a change
    of `key` (the gates' scored attempts outlive a threshold); by default the folder follows `key`. `work` is set
    by the runner just before `process`: the job's work folder.
    """

    name: str
    key: str
    inputs: Any = None
    problems: tuple[dict, ...] = ()
    reads: tuple[tuple[str, str], ...] | None = None
    work_key: str | None = None
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
    # The stages whose shards this one reads: the runner verifies them, keys each job by the shards it reads and
    # hands them to `plan`. Nothing else of another stage is read.
    inputs: tuple[str, ...] = ()
    # Every shard's rows have exactly this schema (None: the stage's tables vary, e.g. by upstream schema); the
    # runner refuses a table that does not fit, naming the column.
    schema: pa.Schema | None = None
    # Shard tasks want a GPU: on one machine they run one after another, on Ray a worker per GPU takes them.
    uses_gpu: bool = False
    # Shard tasks run a torch model on the CPU with `cpu_threads` threads: on Ray each asks for that many CPUs,
    # so a node runs no more of them (nor loads the model more often) than its cores hold.
    uses_cpu_threads: bool = False
    # Columns the stage adds to its rejects tables beyond source, reason, detail, stage.
    reject_schema: pa.Schema | None = None

    def plan(self, config: Any, upstream: Upstream) -> Plan:
        """The stage's shard jobs, keyed by what they read besides `upstream` (the runner adds that); reads no model."""
        raise NotImplementedError

    def load(self, config: Any) -> Any:
        """The model(s) `process` needs; called only when a shard is pending."""
        return None

    def process(self, job: ShardJob, model: Any, config: Any) -> ShardOutput:
        """One shard's rows and rejects; writes nothing (the runner does)."""
        raise NotImplementedError

    def outputs_intact(self, config: Any, job: ShardJob, marker: dict) -> bool:
        """Whether what a finished job wrote outside its stage folder is still there, as its marker recorded it
        (default: it writes none)."""
        return True

    def finish(self, config: Any, upstream: Upstream, markers: dict[str, dict]) -> None:
        """After every planned job is done (computed now or before): a cheap step over all of them, given the
        inputs and each job's marker by shard name (default: nothing)."""
