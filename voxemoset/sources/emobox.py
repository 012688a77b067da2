"""EmoBox fold-1 split manifests (shipped in the top-level `manifests/emobox/`) and native-path -> key helpers."""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePath, PurePosixPath

from voxemoset.resources import manifests_dir
from voxemoset.sources.base import Problem, RootCheck, Scan
from voxemoset.sources.clips import Clip

CORPORA: tuple[str, ...] = ("cremad", "ravdess", "mead")
SPLITS: tuple[str, ...] = ("train", "test")

# Manifest file names per corpus and split; the MEAD train file is derived (see manifests/PROVENANCE.md).
_SPLIT_FILES = {
    "cremad": {"train": "cremad_train_fold_1.jsonl.gz", "test": "cremad_test_fold_1.jsonl.gz"},
    "ravdess": {"train": "ravdess_train_fold_1.jsonl.gz", "test": "ravdess_test_fold_1.jsonl.gz"},
    "mead": {"train": "mead_train_fold_1.DERIVED.jsonl.gz", "test": "mead_test_fold_1.jsonl.gz"},
}
# EmoBox's wav paths start with these prefixes; the readers' roots sit below them (RAVDESS's root is
# the unpacked Audio_Speech_Actors_01-24 folder, which holds Actor_XX/ directly).
_WAV_PREFIXES = {
    "cremad": "downloads/cremad/",
    "ravdess": "downloads/ravdess/audio/Audio_Speech_Actors_01-24/",
    "mead": "downloads/mead/",
}

_CREMAD_STEM = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")
_RAVDESS_STEM = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_MEAD_SPEAKER = re.compile(r"^[MW]\d{3}$")
_MEAD_CLIP = re.compile(r"^\d{3}$")
_MEAD_LEVEL = re.compile(r"^level_(\d)$")


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


def _relpath(corpus: str, wav: str) -> str:
    prefix = _WAV_PREFIXES[corpus]
    if not wav.startswith(prefix):
        raise ValueError(f"EmoBox {corpus} wav path {wav!r} does not start with {prefix!r}")
    rel = wav[len(prefix) :]
    if PurePosixPath(rel).is_absolute() or ".." in PurePosixPath(rel).parts:
        raise ValueError(f"EmoBox {corpus} wav path {wav!r} leaves the corpus folder")
    return rel


@cache
def load_split(corpus: str) -> dict[str, SplitEntry]:
    """EmoBox fold-1 rows of `corpus` keyed by clip key (both splits; cached, ~0.3 s for MEAD)."""
    if corpus not in _SPLIT_FILES:
        raise ValueError(f"unknown corpus {corpus!r}; expected one of {', '.join(CORPORA)}")
    entries: dict[str, SplitEntry] = {}
    for split, name in _SPLIT_FILES[corpus].items():
        with manifest_file("emobox", corpus, "fold_1", name).open("rb") as raw, gzip.open(raw, "rt") as fh:
            for line in fh:
                if not line.strip():
                    continue
                row = json.loads(line)
                rate = row.get("sample_rate")
                entries[row["key"]] = SplitEntry(
                    key=row["key"],
                    split=split,
                    relpath=_relpath(corpus, row["wav"]),
                    emo=row["emo"],
                    sample_rate=int(rate) if rate else None,
                )
    return entries


def parse_cremad_name(path: str | PurePath) -> tuple[str, str, str, str]:
    """(actor, sentence, emotion, level) from `1001_DFA_ANG_XX.wav`; ValueError if the name is not so."""
    match = _CREMAD_STEM.match(PurePath(path).stem)
    if match is None or PurePath(path).suffix.lower() != ".wav":
        raise ValueError(f"not a CREMA-D name <actor>_<sentence>_<emotion>_<level>.wav: {PurePath(path).name}")
    actor, sentence, emotion, level = match.groups()
    return actor, sentence, emotion, level


def parse_ravdess_name(path: str | PurePath) -> tuple[str, ...]:
    """The seven two-digit fields (modality, channel, emotion, intensity, statement, repetition, actor)."""
    match = _RAVDESS_STEM.match(PurePath(path).stem)
    if match is None or PurePath(path).suffix.lower() != ".wav":
        raise ValueError(f"not a RAVDESS name MM-VV-EE-II-SS-RR-AA.wav: {PurePath(path).name}")
    return match.groups()


def parse_mead_path(path: str | PurePath) -> tuple[str, str, str, str]:
    """(speaker, emotion, level digit, clip number) from `.../M040/audio/angry/level_2/014.m4a`."""
    p = PurePath(path)
    parts = p.parts[-5:]
    level = _MEAD_LEVEL.match(parts[3]) if len(parts) == 5 else None
    if (
        level is None
        or parts[1] != "audio"
        or not _MEAD_SPEAKER.match(parts[0])
        or not _MEAD_CLIP.match(p.stem)
        or p.suffix.lower() != ".m4a"
    ):
        raise ValueError(f"not a MEAD path <speaker>/audio/<emotion>/level_<n>/<nnn>.m4a: {p}")
    return parts[0], parts[2], level.group(1), p.stem


def cremad_key(path: str | PurePath) -> str:
    """EmoBox key of a CREMA-D file: `1001_DFA_ANG_XX.wav` -> `cremad-1001-DFA-ANG-XX`."""
    return "cremad-" + "-".join(parse_cremad_name(path))


def ravdess_key(path: str | PurePath) -> str:
    """EmoBox key of a RAVDESS file: `03-01-05-01-02-01-18.wav` -> `ravdess-03-01-05-01-02-01-18`."""
    return "ravdess-" + "-".join(parse_ravdess_name(path))


def mead_key(path: str | PurePath) -> str:
    """EmoBox key of a MEAD file: `M040/audio/neutral/level_1/034.m4a` -> `mead-M040-neutral-level-1-034`."""
    speaker, emotion, level, clip = parse_mead_path(path)
    return f"mead-{speaker}-{emotion}-level-{level}-{clip}"


def native_path(root: Path, corpus: str, key: str) -> Path:
    """Where the clip `key` lives under a reader's root, from its manifest row."""
    return Path(root) / load_split(corpus)[key].relpath


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
        scan.problems.append(Problem(str(path), reason, f"{clip['key']} resolves to {os.path.realpath(path)}"))
        return
    entry = split.get(clip["key"])
    if entry is None:
        reason = f"{clip['corpus']}_not_in_split"
        scan.problems.append(Problem(str(path), reason, f"{clip['key']} is in neither EmoBox fold-1 split"))
        return
    scan.items.append(Clip(**clip, path=str(path), split=entry.split))


def report_missing_files(scan: Scan, corpus: str, root: Path, seen: set[str], wanted: Callable[[str], bool]) -> None:
    """Add a `<corpus>_manifest_file_missing` problem for each wanted manifest key not found on disk."""
    reason = f"{corpus}_manifest_file_missing"
    for key, entry in sorted(load_split(corpus).items()):
        if key not in seen and wanted(key):
            scan.problems.append(Problem(str(Path(root) / entry.relpath), reason, f"{key} ({entry.split})"))
