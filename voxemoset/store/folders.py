"""Where stages keep their shards, and reading another stage's shards only once each is checked against its marker.

Store-internal: a stage gets its inputs' shards from the runner (`store/upstream.py`), never from these.
"""

from __future__ import annotations

from pathlib import Path

from voxemoset.errors import UserError
from voxemoset.store.atomic import TMP_SUFFIX
from voxemoset.store.keys import hash_file
from voxemoset.store.verify import OLD_MARKER, file_damage, marker_path, read_marker, shard_damage


def stage_dir(out: Path, stage_name: str) -> Path:
    """Where a stage's shards live."""
    return Path(out) / "stages" / stage_name


def list_shards(folder: Path) -> list[Path]:
    """A stage's finished Parquet shards, sorted, ignoring temp files."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.parquet") if not p.name.endswith(TMP_SUFFIX))


def verified_shards(out: Path, upstream: str, reader: str) -> list[tuple[Path, str]]:
    """Each finished shard of stage `upstream` with its sha256, checked against its marker before `reader` reads it.

    A damaged shard raises UserError naming it: a downstream stage run alone must not crash inside Arrow, and
    rerunning the upstream stage recomputes exactly that shard.
    """
    folder = stage_dir(out, upstream)
    found = []
    for path in list_shards(folder):
        marker = read_marker(marker_path(folder, path.stem)) or {}
        why = shard_damage(folder, path.stem, marker)
        if why == OLD_MARKER:
            # Nothing recorded to compare with (no marker, or one from before sizes and hashes were kept):
            # the footer at least must read, and the key needs the hash.
            why, sha = file_damage(path, None), hash_file(path)
        elif why is None:
            sha = marker["files"][path.name]["sha256"]  # verified just now: no second hash
        if why:
            raise UserError(
                f"stage {reader} cannot read {upstream} shard {path.stem} ({why}): "
                f"rerun `voxemoset stage {upstream} -c <config>` to recompute it"
            )
        found.append((path, sha))
    return found
