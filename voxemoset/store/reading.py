"""What readers outside the chain (the report) read of a build, through the store: a stage's finished shards, its
rejects and its markers. Nothing outside `store/` opens a stage's folder itself."""

from __future__ import annotations

from pathlib import Path

from voxemoset.store.folders import list_shards, stage_dir, verified_shards
from voxemoset.store.verify import MARKER_DIR, read_marker


def stage_folder(out: Path, stage: str) -> Path:
    """Where stage `stage` keeps its shards (to show a user; read them with the functions below)."""
    return stage_dir(out, stage)


def stages_built(out: Path) -> list[str]:
    """The stages that have a folder under `<out>/stages`, by name."""
    root = Path(out) / "stages"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def stage_shards(out: Path, stage: str, reader: str = "report") -> list[Path]:
    """Every finished shard of `stage`, each checked against its marker."""
    return [path for path, _ in verified_shards(out, stage, reader)]


def stage_rejects(out: Path, stage: str) -> list[Path]:
    """The rejects tables of `stage`'s shards."""
    return list_shards(stage_dir(out, stage) / "rejects")


def stage_markers(out: Path, stage: str) -> dict[str, dict]:
    """Each finished shard's marker (key, files, counts, stats) by shard name; unreadable ones left out."""
    folder = stage_dir(out, stage) / MARKER_DIR
    found = {p.stem: read_marker(p) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}
    return {name: m for name, m in found.items() if m is not None}
