"""Byte-budgeted Parquet files in a `data/` folder, named `<split>-...` as the Hub's viewer and `datasets` read them.

The dataset's files are named after the gates shard they come from (`data/<split>-NNNNN-PPP.parquet`), so a
change to one gates shard rewrites its own files only; a corpus's are `data/<split>-NNNNN-of-NNNNN.parquet`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from voxemoset.hub.features import arrow_schema, parquet_column_options
from voxemoset.store.atomic import TMP_SUFFIX

# datasets' own content-defined-chunking options, so the Hub's Xet storage dedups unchanged pages on re-upload.
CDC_OPTIONS = {"min_chunk_size": 256 * 1024, "max_chunk_size": 1024 * 1024, "norm_level": 0}
SHARD_NAME = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.parquet$")  # corpora
# The dataset's files: `<split>-NNNNN-PPP.parquet`, part PPP of the rows of gates shard `<split>-NNNNN`.
PART_STEM = re.compile(r"(?P<split>[A-Za-z0-9_]+)-(?P<index>\d{5})")
PART_NAME = re.compile(r"^(?P<split>[A-Za-z0-9_]+)-(?P<index>\d{5})-(?P<part>\d{3})\.parquet$")
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


class PartsWriter:
    """Writes the published rows of one input shard `<stem>` as `<stem>-000.parquet`, `<stem>-001.parquet`, ...: files
    of about `shard_bytes`, row groups of at most `row_group_bytes`.

    Named after their input, so one changed input rewrites its own files and no other's. Each file is written under a
    temp name and renamed when whole; `close` removes parts an earlier, longer version of this input left.
    """

    def __init__(self, folder: Path, stem: str, shard_bytes: int, row_group_bytes: int):
        if not PART_STEM.fullmatch(stem):
            raise ValueError(f"shard name {stem!r} is not <split>-NNNNN")
        self.folder, self.stem = Path(folder), stem
        self.shard_bytes, self.row_group_bytes = shard_bytes, row_group_bytes
        self.schema = arrow_schema()
        self.options = parquet_column_options(self.schema)
        self._rows: list[dict] = []
        self._pending_bytes = 0
        self._writer: pq.ParquetWriter | None = None
        self._sink: pa.NativeFile | None = None
        self._path: Path | None = None
        self.stats = SplitStats()
        self.placements: list[int] = []  # the part each row went to, in the order rows were added

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
        # file's growth: start a new file when this group would push the current one past the budget.
        if self._writer is not None and self._sink.tell() + self._pending_bytes > self.shard_bytes:
            self._close_file()
        if self._writer is None:
            self._open_file()
        self._writer.write_table(table, row_group_size=len(self._rows))
        self.placements.extend([len(self.stats.files)] * len(self._rows))  # the open part's index
        self.stats.rows += len(self._rows)
        self.stats.num_bytes += table.nbytes
        self._rows, self._pending_bytes = [], 0

    def _open_file(self) -> None:
        self._path = self.folder / f"{self.stem}-{len(self.stats.files):03d}.parquet"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._sink = pa.OSFile(str(self._path) + TMP_SUFFIX, "wb")
        self._writer = pq.ParquetWriter(
            self._sink,
            self.schema,
            write_page_index=True,
            use_content_defined_chunking=CDC_OPTIONS,
            write_statistics=True,
            **self.options,
        )
        self._writer.add_key_value_metadata({"content_defined_chunking": json.dumps(CDC_OPTIONS)})

    def _close_file(self) -> None:
        self._writer.close()
        self._sink.close()
        tmp = str(self._path) + TMP_SUFFIX
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self._path)
        self.stats.files.append(self._path.name)
        self.stats.file_bytes += self._path.stat().st_size
        self._writer, self._sink = None, None

    def close(self) -> SplitStats:
        """Write the last row group and drop this input's parts that were not written now."""
        self._flush()
        if self._writer is not None:
            self._close_file()
        for old in self.folder.glob(f"{self.stem}-*.parquet") if self.folder.is_dir() else []:
            if old.name not in self.stats.files and PART_NAME.match(old.name):
                old.unlink()
        return self.stats


def list_dataset_shards(data_dir: Path) -> dict[str, list[Path]]:
    """Finished shards of a dataset's `data/` folder by split, in order."""
    splits: dict[str, list[Path]] = {}
    for p in sorted(Path(data_dir).glob("*.parquet")) if Path(data_dir).is_dir() else []:
        m = SHARD_NAME.match(p.name) or PART_NAME.match(p.name)
        if m:
            splits.setdefault(m["split"], []).append(p)
    return splits
