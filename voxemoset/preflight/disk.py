"""A rough size of a whole build, from the EmoSet image count, against the free space where `out` will be."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from voxemoset.config import Config
from voxemoset.corpora.emoset import SPLIT_FILES
from voxemoset.preflight.items import Item, problem, ready

IMAGE_BYTES = 100_000  # an EmoSet JPEG, on average (a 1000-image shard is ~100 MB)
UTTERANCE_BYTES = 75_000  # ~4.25 s of 16 kHz 16-bit FLAC (~0.55 of the PCM size)
UTTERANCES_PER_IMAGE = 3
# Copies on disk: images stage (1 image); speech and gates shards (1 clip each per utterance); the dataset's
# rows, each holding its image and its clip (3 images, 3 clips per image).
IMAGE_COPIES = 1 + UTTERANCES_PER_IMAGE
CLIP_COPIES = 3 * UTTERANCES_PER_IMAGE


def count_images(config: Config) -> int | None:
    """Images the build will take from EmoSet (split files' row counts, after `images.limit_per_split`)."""
    root = config.sources.emoset
    if root is None:
        return None
    per_split: dict[str, int] = {}
    for name, split in SPLIT_FILES.items():
        path = Path(root) / f"{name}.json"
        try:
            per_split[split] = per_split.get(split, 0) + len(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue  # absent or unreadable: the source check says so
    if not per_split:
        return None
    limit = config.images.limit_per_split
    return sum(min(n, limit) if limit else n for n in per_split.values())


def estimate_bytes(n_images: int) -> int:
    """Bytes a build of n_images leaves under `out` (stage shards and the published dataset)."""
    return n_images * (IMAGE_COPIES * IMAGE_BYTES + CLIP_COPIES * UTTERANCE_BYTES)


def _size_of(folder: Path) -> int:
    """Bytes already under folder (what a resumed build has written)."""
    total = 0
    for top, _, files in os.walk(folder):
        for f in files:
            try:
                total += os.stat(os.path.join(top, f)).st_size
            except OSError:
                continue
    return total


def _existing_parent(path: Path) -> Path:
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def check_disk(config: Config) -> list[Item]:
    """Free space at `out` against the estimated build size, less what is already built there."""
    n = count_images(config)
    if n is None:
        return []  # no EmoSet split files to count: nothing to estimate from
    need = max(0, estimate_bytes(n) - (_size_of(Path(config.out)) if Path(config.out).is_dir() else 0))
    where = _existing_parent(config.out)
    free = shutil.disk_usage(where).free
    detail = f"~{_gb(need)} still to write for {n} images; {_gb(free)} free at {where}"
    if free < need:
        return [problem("disk", "out", f"{detail}: free space or point `out` elsewhere")]
    return [ready("disk", "out", detail)]
