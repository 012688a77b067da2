"""What a stage reads of the stages it declares as inputs: their verified shards, handed over by the runner.

A stage never opens another stage's folder. It declares `inputs = ("speech", "references")`; the runner checks every
finished shard of those stages against its marker, gives the stage an `Upstream` to plan from, and puts the content
hash of each shard a job reads into that job's key itself. A job names what it reads (`ShardJob.reads`); a job that
names nothing reads every shard of every input. So no stage author can forget an input in a key.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from voxemoset.errors import UserError
from voxemoset.store.folders import stage_dir, verified_shards
from voxemoset.store.keys import Key, hash_json, job_key
from voxemoset.store.stage import ShardJob


@dataclass(frozen=True)
class Shard:
    """One finished, verified shard of an input stage."""

    stage: str
    name: str
    path: Path
    sha256: str

    @property
    def rejects_path(self) -> Path:
        """The shard's rejects table (verified with it)."""
        return self.path.parent / "rejects" / self.path.name


class Upstream:
    """The verified shards of a stage's declared inputs."""

    def __init__(self, out: Path, reader: str, inputs: tuple[str, ...]):
        self.reader, self.inputs = reader, tuple(inputs)
        self._shards: dict[str, dict[str, Shard]] = {}  # input stage -> shard name -> shard, in name order
        for stage in self.inputs:
            found = {p.stem: Shard(stage, p.stem, p, sha) for p, sha in verified_shards(out, stage, reader)}
            if not found:
                raise UserError(
                    f"stage {reader} reads the {stage} stage, which has no shards under {stage_dir(out, stage)}: "
                    f"run it first"
                )
            self._shards[stage] = found

    def shards(self, stage: str) -> list[Shard]:
        """Every finished shard of input `stage`, by name."""
        return list(self._of(stage).values())

    def shard(self, stage: str, name: str) -> Shard:
        """Shard `name` of input `stage`."""
        found = self._of(stage).get(name)
        if found is None:
            raise UserError(f"stage {self.reader} needs {stage} shard {name}, which is not finished: rerun {stage}")
        return found

    def _of(self, stage: str) -> dict[str, Shard]:
        if stage not in self._shards:
            raise ValueError(f"stage {self.reader} did not declare {stage!r} among its inputs {self.inputs}")
        return self._shards[stage]

    def keyed(self, job: ShardJob) -> ShardJob:
        """`job` with the content of every shard it reads in its key (all shards of all inputs if it names none)."""
        reads = job.reads if job.reads is not None else [(s, n) for s in self.inputs for n in self._of(s)]
        content = [[stage, name, self.shard(stage, name).sha256] for stage, name in sorted(set(reads))]
        work_key = hash_json([job.work_key, content]) if job.work_key else None
        parts = {**getattr(job.key, "parts", {}), "upstream": {f"{stage}/{name}": sha for stage, name, sha in content}}
        return replace(job, key=Key(hash_json([job.key, content]), parts), work_key=work_key)


def each_shard(reader: Any, upstream: Upstream, stage: str, stage_config: dict, model_id: Any) -> list[ShardJob]:
    """One job of `reader` per shard of its input `stage`, same name, reading that shard: shard k from shard k."""
    key = job_key(reader, stage_config, model_id, None)
    return [ShardJob(s.name, key, str(s.path), reads=((stage, s.name),)) for s in upstream.shards(stage)]
