"""Content keys: what a shard was computed from, so reruns skip finished work and notice changes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def hash_json(obj: object) -> str:
    """sha256 of a canonical JSON rendering."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def hash_file(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class Key(str):
    """A shard key that remembers what it was made of (`parts`): the runner writes them into the shard's marker, so
    `voxemoset status` can name what changed a key (a setting, a model, an input shard) without computing anything."""

    parts: dict

    def __new__(cls, digest: str, parts: dict | None = None) -> Key:
        key = super().__new__(cls, digest)
        key.parts = parts or {}
        return key


# A part bigger than this (a shard's list of source-file fingerprints) is remembered by its hash: markers stay small.
RECIPE_PART_LIMIT = 4096


def recipe(parts: dict) -> dict:
    """What a marker keeps of a key's parts: each part as it is, or `{"sha256": ...}` when large."""
    out = {}
    for name, value in parts.items():
        text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
        out[name] = json.loads(text) if len(text) <= RECIPE_PART_LIMIT else {"sha256": hash_json(value)}
    return out


def job_key(stage: Any, stage_config: dict, model_id: Any, inputs: Any) -> Key:
    """Key of a shard: what it reads besides its upstream shards (the runner adds those), the stage config, the
    model identity and the stage code version."""
    parts = {"stage": stage.name, "version": stage.version, "config": stage_config, "model": model_id, "inputs": inputs}
    return Key(hash_json(parts), parts)


def file_fingerprint(path: Path) -> list:
    """Cheap stand-in for a source file's content: size and mtime, so planning never reads 100k images.

    A copied or touched file is recomputed, which is the safe direction.
    """
    try:
        st = path.stat()
    except OSError:
        return [str(path), None, None]
    return [str(path), st.st_size, st.st_mtime_ns]


def config_dict(cfg: BaseModel | None) -> dict:
    """A stage config as plain JSON data for keying."""
    return {} if cfg is None else cfg.model_dump(mode="json")


def model_identity(path: Path | str | None) -> dict | None:
    """What identifies a checkpoint folder or file: its name plus every file's relative path and sha256.

    By content, so weights replaced in place (a newer revision downloaded into the same folder) re-key what the model
    made, while the same weights copied elsewhere do not; each file is read once per change (store/file_hashes.py).
    """
    from voxemoset.store.file_hashes import file_sha256

    if path is None:
        return None
    path = Path(path)
    if path.is_file():
        return {"name": path.name, "files": [[path.name, file_sha256(path)]]}
    files = []
    for p in sorted(path.rglob("*")) if path.is_dir() else []:
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts):
            files.append([str(p.relative_to(path)), file_sha256(p)])
    return {"name": path.name, "files": files}
