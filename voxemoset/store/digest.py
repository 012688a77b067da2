"""One hash over a build's stage outputs, to compare builds (resumed vs uninterrupted, Ray vs threads)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from voxemoset.store.atomic import TMP_SUFFIX


def build_digest(out: Path, stages: tuple[str, ...] | None = None) -> str:
    """sha256 over every shard, rejects table and marker under `<out>/stages`, by relative path."""
    root = Path(out) / "stages"
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if not p.is_file() or p.name.endswith(TMP_SUFFIX) or (stages and rel.parts[0] not in stages):
            continue
        h.update(str(rel).encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()
