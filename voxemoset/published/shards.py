"""Byte-budgeted Parquet shards named `data/<split>-NNNNN-of-NNNNN.parquet`, as the Hub's viewer reads them.

A shard's final name carries the split's shard count, known only once the split is written: shards are
written under temp names and renamed together at the end.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from voxemoset.published.features import arrow_schema, parquet_column_options
from voxemoset.store.atomic import TMP_SUFFIX

# datasets' own content-defined-chunking options, so the Hub's Xet storage dedups unchanged pages on re-upload.
CDC_OPTIONS = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024, "norm_level": 0}
SHARD_NAME = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet$")
# Rough Arrow overhead of one row's non-media columns (ids, texts, floats), added to the media bytes.
ROW_OVERHEAD = 1024


def shard_name(split: str, index: int, count: int) -> str:
    """`<split>-NNNNN-of-NNNNN.parquet` (zero-padded, 0-based index)."""
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def row_nbytes(row: dict) -> int:
    """In-memory size estimate of a published row: its image and audio bytes dominate."""
    media = sum(len((row.get(c) or {}).get("bytes") or b"") for c in ("image", "audio"))
    text = sum(len(v) for v in row.values() if isinstance(v, str))
    return media + text + ROW_OVERHEAD


@dataclass
class SplitStats:
    """What one split's writer produced."""

    rows: int = 0
    num_bytes: int = 0
    files: list[str] = field(default_factory=list)
    file_bytes: int = 0


class SplitWriter:
    """Writes one split's rows into shards of about `shard_bytes`, row groups of at most `row_group_bytes`."""

    def __init__(self, folder: Path, split: str, shard_bytes: int, row_group_bytes: int):
        if not re.fullmatch(r"[A-Za-z0-9_]+", split):
            raise ValueError(f"split name {split!r} is not a valid shard prefix")
        self.folder, self.split = Path(folder), split
        self.shard_bytes, self.row_group_bytes = shard_bytes, row_group_bytes
        self.schema = arrow_schema()
        self.options = parquet_column_options(self.schema)
        self._rows: list[dict] = []
        self._pending_bytes = 0
        self._writer: pq.ParquetWriter | None = None
        self._sink: pa.NativeFile | None = None
        self._groups_in_file = 0
        self._temps: list[Path] = []
        self.stats = SplitStats()
        # Shard index of every row, in the order rows were added (an index of what went where).
        self.placements: list[int] = []

    def add(self, row: dict) -> None:
        """Buffer one row (columns as in `features.COLUMNS`); full row groups go to disk."""
        size = row_nbytes(row)
        if self._rows and self._pending_bytes + size > self.row_group_bytes:
            self._flush()
        self._rows.append(row)
        self._pending_bytes += size

    def _flush(self) -> None:
        if not self._rows:
            return
        table = pa.Table.from_pylist(self._rows, schema=self.schema)
        # Parquet output is about the media bytes (stored uncompressed), so the buffered size predicts the
        # file's growth: start a new shard when this group would push the current one past the budget.
        if self._writer is not None and self._sink.tell() + self._pending_bytes > self.shard_bytes:
            self._close_file()
        if self._writer is None:
            self._open_file()
        self._writer.write_table(table, row_group_size=len(self._rows))
        self.placements.extend([len(self._temps) - 1] * len(self._rows))
        self._groups_in_file += 1
        self.stats.rows += len(self._rows)
        self.stats.num_bytes += table.nbytes
        self._rows, self._pending_bytes = [], 0

    def _open_file(self) -> None:
        path = self.folder / f"{self.split}-{len(self._temps):05d}.parquet{TMP_SUFFIX}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._sink = pa.OSFile(str(path), "wb")
        self._writer = pq.ParquetWriter(
            self._sink,
            self.schema,
            write_page_index=True,
            use_content_defined_chunking=CDC_OPTIONS,
            write_statistics=True,
            **self.options,
        )
        self._writer.add_key_value_metadata({"content_defined_chunking": json.dumps(CDC_OPTIONS)})
        self._temps.append(path)
        self._groups_in_file = 0

    def _close_file(self) -> None:
        self._writer.close()
        self._sink.close()
        self._writer, self._sink = None, None

    def close(self) -> SplitStats:
        """Write the last row group, then give every shard its final `-of-NNNNN` name."""
        self._flush()
        if self._writer is not None:
            self._close_file()
        count = len(self._temps)
        for i, tmp in enumerate(self._temps):
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            final = self.folder / shard_name(self.split, i, count)
            os.replace(tmp, final)
            self.stats.files.append(final.name)
            self.stats.file_bytes += final.stat().st_size
        return self.stats


def list_dataset_shards(data_dir: Path) -> dict[str, list[Path]]:
    """Finished shards of a dataset's `data/` folder by split, in order."""
    splits: dict[str, list[Path]] = {}
    for p in sorted(Path(data_dir).glob("*.parquet")) if Path(data_dir).is_dir() else []:
        m = SHARD_NAME.match(p.name)
        if m:
            splits.setdefault(m["split"], []).append(p)
    return splits
