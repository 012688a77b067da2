"""`<out>/manifest.json`: each stage's counts from its last run, a summary that can always be rebuilt."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from voxemoset.store.atomic import write_json
from voxemoset.store.verify import MARKER_DIR, read_marker

log = logging.getLogger("voxemoset")
_UPDATE = threading.Lock()


def marker_counts(markers: Iterable[dict]) -> dict:
    """Rows and rejects by reason summed over shard markers (a field a marker lacks counts as nothing)."""
    rows, rejects = 0, Counter()
    for m in markers:
        rows += m["rows"] if isinstance(m.get("rows"), int) else 0
        rejects.update(m.get("rejects") if isinstance(m.get("rejects"), dict) else {})
    return {"rows": rows, "rejects": dict(sorted(rejects.items()))}


def summaries_from_markers(out: Path) -> dict[str, dict]:
    """Each stage's shard, row and reject counts as its markers record them (what a lost manifest can recover)."""
    stages = {}
    for done in sorted((Path(out) / "stages").glob(f"*/{MARKER_DIR}")):
        markers = [m for p in sorted(done.glob("*.json")) if (m := read_marker(p)) is not None]
        stages[done.parent.name] = {"shards": len(markers), **marker_counts(markers)}
    return stages


def read_manifest(out: Path) -> dict:
    """`<out>/manifest.json` as `{"stages": {...}}`; if missing or unreadable, rebuilt from the stages' markers.

    The manifest is a summary, never the source of truth, so a damaged one must not stop a build.
    """
    path = Path(out) / "manifest.json"
    try:
        manifest = json.loads(path.read_bytes())
        if isinstance(manifest, dict) and isinstance(manifest.get("stages"), dict):
            return manifest
        log.warning("%s is not a voxemoset manifest; rebuilding it from the stages' markers", path)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        log.warning("%s is unreadable (%s); rebuilding it from the stages' markers", path, type(e).__name__)
    return {"stages": summaries_from_markers(out)}


def update_manifest(out: Path, stage_name: str, summary: dict) -> None:
    """Merge one stage's counts into `<out>/manifest.json` (stages running side by side take turns)."""
    with _UPDATE:
        manifest = read_manifest(out)
        manifest["stages"][stage_name] = summary
        write_json(Path(out) / "manifest.json", manifest)
