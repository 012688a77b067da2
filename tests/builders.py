"""What many tests build or read: a config from a few sections, a stage folder's rows, and (in conftest.py) the tiny
models written once per test run."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from voxemoset.config import Config, parse_config
from voxemoset.store.folders import list_shards


def make_config(out: Path | None = None, emoset: Path | None = None, **sections: dict) -> Config:
    """A checked Config: `out`, `sources.emoset` when given, then each keyword a config section (`gates={...}`)."""
    data: dict = {"out": str(out)} if out is not None else {}
    if emoset is not None:
        data["sources"] = {"emoset": str(emoset)}
    for name, section in sections.items():
        merged = {**data.get(name, {}), **section} if isinstance(section, dict) else section
        data[name] = merged
    return parse_config(data)


def stage_table(folder: Path) -> pa.Table:
    """Every shard of a stage (or rejects) folder as one table; rejects shards that lack a stage's extra columns
    are promoted to one schema."""
    shards = list_shards(folder)
    if not shards:
        return pa.table({})
    return pa.concat_tables([pq.read_table(p) for p in shards], promote_options="default")


def stage_rows(folder: Path) -> list[dict]:
    """Every row of every shard in a stage (or rejects) folder, in shard order."""
    return [r for p in list_shards(folder) for r in pq.read_table(p).to_pylist()]
