"""Is a published shard whole? Its marker records each file's size, rows and sha256; the file must match.

A marker alone proves only that a run once finished the shard: a disk error, a copy cut short or an
editor can damage the file afterwards, and a damaged shard must be recomputed, never read downstream.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from voxemoset.store.keys import hash_file

MARKER_DIR = "_done"
OLD_MARKER = "its marker was written by an older voxemoset"
NO_MARKER = "it has no readable marker"


def marker_path(folder: Path, name: str) -> Path:
    """Where the marker of shard `name` in a stage folder lives."""
    return Path(folder) / MARKER_DIR / f"{name}.json"


def read_marker(path: Path) -> dict | None:
    """A marker's content, or None if it is missing or not a JSON object (a garbage marker vouches for nothing)."""
    try:
        marker = json.loads(Path(path).read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    return marker if isinstance(marker, dict) else None


def shard_files(name: str) -> tuple[str, str]:
    """The files one shard job publishes, relative to its stage folder: rows, then rejects."""
    return f"{name}.parquet", f"rejects/{name}.parquet"


def describe_file(path: Path, rows: int) -> dict:
    """What a marker records about a published file, so a later run can tell it is still whole."""
    return {"bytes": path.stat().st_size, "rows": rows, "sha256": hash_file(path)}


def file_damage(path: Path, recorded: dict | None) -> str | None:
    """Why `path` differs from what its marker recorded, or None; cheap checks first, the full hash last.

    With nothing recorded, only that the file is there and its Parquet footer reads.
    """
    try:
        size = path.stat().st_size
    except OSError:
        return "file missing"
    if size == 0:
        return "empty file"
    if recorded is not None and size != recorded["bytes"]:
        return "truncated parquet" if size < recorded["bytes"] else "file grew since it was written"
    try:
        rows = pq.read_metadata(path).num_rows
    except (OSError, pa.ArrowException):
        return "parquet footer unreadable"
    if recorded is None:
        return None
    if rows != recorded["rows"]:
        return f"{rows} rows, marker says {recorded['rows']}"
    if hash_file(path) != recorded["sha256"]:
        return "content changed since it was written (sha256 mismatch)"
    return None


def shard_damage(folder: Path, name: str, marker: dict) -> str | None:
    """Why shard `name` (rows and rejects) is not what `marker` vouches for, or None if both files are whole."""
    files = marker.get("files")
    if not isinstance(files, dict) or not all(isinstance(files.get(f), dict) for f in shard_files(name)):
        return OLD_MARKER
    for rel in shard_files(name):
        try:
            why = file_damage(Path(folder) / rel, files[rel])
        except (KeyError, TypeError):
            return OLD_MARKER
        if why:
            return why if rel == f"{name}.parquet" else f"rejects file: {why}"
    return None
