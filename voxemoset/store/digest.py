"""One hash over a build's stage outputs, to compare builds (resumed vs uninterrupted, Ray vs threads)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from voxemoset.store.atomic import TMP_SUFFIX
from voxemoset.store.verify import MARKER_DIR
from voxemoset.store.work import WORK_DIR

# What the runner keeps beside a stage's data: markers (timings in their stats) and resumable work logs.
RUNNER_DIRS = (MARKER_DIR, WORK_DIR)


def build_digest(out: Path, stages: tuple[str, ...] | None = None) -> str:
    """sha256 over the published `<out>/dataset` and every shard and rejects table under `<out>/stages`.

    The runner's own folders in each stage folder (markers, work logs) are bookkeeping, not data: not hashed.
    """
    root = Path(out) / "stages"
    h = hashlib.sha256()
    published = Path(out) / "dataset"
    if published.is_dir() and (not stages or "dataset" in stages):
        for p in sorted(published.rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(out)).encode() + b"\0" + hashlib.sha256(p.read_bytes()).digest())
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if not p.is_file() or p.name.endswith(TMP_SUFFIX) or (stages and rel.parts[0] not in stages):
            continue
        if len(rel.parts) > 1 and rel.parts[1] in RUNNER_DIRS:
            continue
        h.update(str(rel).encode() + b"\0")
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()
