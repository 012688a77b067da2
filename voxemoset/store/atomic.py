"""Crash-safe writes: temp file in the same folder, fsync, rename, fsync the folder."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TMP_SUFFIX = ".tmp"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` then publish tmp as `path`, so readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def write_parquet(path: Path, table: pa.Table) -> None:
    """Write a Parquet file atomically; options are fixed so equal tables give equal bytes.

    An empty table is written with no row group at all: `datasets` sizes its read batches by the first row group
    and fails on a zero-row one (a published corpus shard whose every utterance was rejected).
    """
    options = {"compression": "zstd", "write_statistics": True, "write_page_index": True}

    def write(tmp: Path) -> None:
        if table.num_rows:
            pq.write_table(table, tmp, **options)
        else:
            pq.ParquetWriter(tmp, table.schema, **options).close()

    write_atomic(path, write)


def write_json(path: Path, obj: object) -> None:
    """Write JSON atomically (sorted keys, so equal content gives equal bytes)."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    write_atomic(path, lambda tmp: tmp.write_text(text))


def clean_tmp(folder: Path) -> None:
    """Remove temp files a killed writer left behind."""
    if folder.is_dir():
        for p in folder.rglob(f"*{TMP_SUFFIX}"):
            p.unlink(missing_ok=True)
