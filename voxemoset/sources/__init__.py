"""Readers for the source corpora in their native layouts: one module per corpus, and the one name -> reader map."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from voxemoset.sources.base import Clip, Scan
from voxemoset.sources.emobox import SplitEntry, read_split, relpath

# The speech corpora, in the order the readers report them.
SPEECH_CORPORA: tuple[str, ...] = ("cremad", "ravdess", "mead")


def speech_corpus(name: str) -> ModuleType:
    """The module holding everything about speech corpus `name`: its reader, file-name grammar, label map, manifest."""
    # Imported on first use: the corpus modules import this package's emobox, and the images stage needs none of them.
    from voxemoset.sources import cremad, mead, ravdess

    modules = {"cremad": cremad, "ravdess": ravdess, "mead": mead}
    if name not in modules:
        raise ValueError(f"unknown corpus {name!r}; expected one of {', '.join(SPEECH_CORPORA)}")
    return modules[name]


def scan_speech_corpus(name: str, root: Path) -> Scan[Clip]:
    """Run the reader of speech corpus `name` on its folder `root`."""
    return speech_corpus(name).scan(root)


def load_split(name: str) -> dict[str, SplitEntry]:
    """EmoBox fold-1 rows of speech corpus `name` keyed by clip key (both splits, cached)."""
    return read_split(speech_corpus(name).EMOBOX)


def emobox_relpath(name: str, wav: str) -> str:
    """An EmoBox wav path of corpus `name` relative to its reader's root; ValueError if it lies elsewhere."""
    return relpath(speech_corpus(name).EMOBOX, wav)
