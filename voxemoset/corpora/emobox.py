"""EmoBox fold-1 split manifests (shipped in the top-level `manifests/emobox/`) and what every speech reader shares.

What is particular to a corpus (file-name grammar, label map, manifest names) lives in its own module.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath

from voxemoset.corpora.scan import Clip, RootCheck, Scan
from voxemoset.resources import manifests_dir

SPLITS: tuple[str, ...] = ("train", "test")


@dataclass(frozen=True)
class EmoBoxManifest:
    """Where one corpus's EmoBox fold-1 split files are, and the prefix EmoBox's wav paths start with.

    Each corpus module holds its own (`cremad.EMOBOX`, ...): the readers' roots sit below `wav_prefix`.
    """

    corpus: str
    train_file: str
    test_file: str
    wav_prefix: str


@dataclass(frozen=True)
class SplitEntry:
    """One EmoBox row: its split, the clip's path relative to the reader's root, and EmoBox's label."""

    key: str
    split: str
    relpath: str
    emo: str
    sample_rate: int | None = None


def manifest_file(*parts: str) -> Path:
    """A file under the repo's top-level `manifests/`."""
    return manifests_dir().joinpath(*parts)


def relpath(manifest: EmoBoxManifest, wav: str) -> str:
    """An EmoBox wav path relative to the corpus reader's root; ValueError if it lies elsewhere."""
    corpus, prefix = manifest.corpus, manifest.wav_prefix
    if not wav.startswith(prefix):
        raise ValueError(f"EmoBox {corpus} wav path {wav!r} does not start with {prefix!r}")
    rel = wav[len(prefix) :]
    if PurePosixPath(rel).is_absolute() or ".." in PurePosixPath(rel).parts:
        raise ValueError(f"EmoBox {corpus} wav path {wav!r} leaves the corpus folder")
    return rel


@cache
def read_split(manifest: EmoBoxManifest) -> dict[str, SplitEntry]:
    """EmoBox fold-1 rows of one corpus keyed by clip key (train then test; cached, ~0.3 s for MEAD)."""
    corpus = manifest.corpus
    entries: dict[str, SplitEntry] = {}
    for split, name in (("train", manifest.train_file), ("test", manifest.test_file)):
        with manifest_file("emobox", corpus, "fold_1", name).open("rb") as raw, gzip.open(raw, "rt") as fh:
            for line in fh:
                if not line.strip():
                    continue
                row = json.loads(line)
                rate = row.get("sample_rate")
                entries[row["key"]] = SplitEntry(
                    key=row["key"],
                    split=split,
                    relpath=relpath(manifest, row["wav"]),
                    emo=row["emo"],
                    sample_rate=int(rate) if rate else None,
                )
    return entries


@cache
def load_sentences() -> dict[str, dict[str, str]]:
    """Sentence texts by corpus and code: `{"cremad": {"DFA": ...}, "ravdess": {"01": ...}}`."""
    return json.loads(manifest_file("sentences.json").read_text(encoding="utf-8"))


def visible_files(folder: Path, recursive: bool = False) -> list[Path]:
    """Files under `folder`, sorted, without hidden ones (.DS_Store and the like)."""
    found = Path(folder).rglob("*") if recursive else Path(folder).iterdir()
    return sorted(p for p in found if not p.name.startswith(".") and p.is_file())


def add_clip(scan: Scan, split: dict[str, SplitEntry], path: Path, clip: dict, inside: RootCheck) -> None:
    """Add the clip with its EmoBox fold-1 split, or a problem: `<corpus>_not_in_split` when EmoBox lacks it,
    `<corpus>_path_outside_root` when it resolves (through a symlink) outside the corpus root, so it is never read.

    `clip` holds every `Clip` field but `path` and `split`.
    """
    if not inside(path):
        reason = f"{clip['corpus']}_path_outside_root"
        scan.reject(path, reason, f"{clip['key']} resolves to {os.path.realpath(path)}")
        return
    entry = split.get(clip["key"])
    if entry is None:
        reason = f"{clip['corpus']}_not_in_split"
        scan.reject(path, reason, f"{clip['key']} is in neither EmoBox fold-1 split")
        return
    scan.items.append(Clip(**clip, path=str(path), split=entry.split))


def report_missing_files(
    scan: Scan, manifest: EmoBoxManifest, root: Path, seen: set[str], wanted: Callable[[str], bool]
) -> None:
    """Add a `<corpus>_manifest_file_missing` problem for each wanted manifest key not found on disk."""
    reason = f"{manifest.corpus}_manifest_file_missing"
    for key, entry in sorted(read_split(manifest).items()):
        if key not in seen and wanted(key):
            scan.reject(Path(root) / entry.relpath, reason, f"{key} ({entry.split})")
