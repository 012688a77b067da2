"""A shard job's resumable work log, kept by the runner: rounds saved atomically as they finish, read on resume."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from voxemoset.store.atomic import TMP_SUFFIX, write_parquet

# Under a stage folder: `_work/<shard>/<key[:16]>/round-NN.parquet`. Not data (the digest skips it); a new key
# (other inputs or config) gets a fresh folder, so an old log never feeds a new computation.
WORK_DIR = "_work"


@dataclass(frozen=True)
class WorkDir:
    """The folder where one shard job keeps what it must not recompute after a kill."""

    path: Path

    def _round_files(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        return sorted(p for p in self.path.glob("round-*.parquet") if not p.name.endswith(TMP_SUFFIX))

    def rounds(self) -> list[pa.Table]:
        """Every round saved so far, in order."""
        return [pq.read_table(p) for p in self._round_files()]

    def save_round(self, table: pa.Table) -> Path:
        """Persist the next round (written whole or not at all) and return its path."""
        path = self.path / f"round-{len(self._round_files()) + 1:02d}.parquet"
        write_parquet(path, table)
        return path


def work_dir(stage_folder: Path, shard: str, key: str) -> WorkDir:
    """The work folder of shard `shard` computed under `key`."""
    return WorkDir(Path(stage_folder) / WORK_DIR / shard / key[:16])
