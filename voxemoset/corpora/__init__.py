"""Every source corpus in its native layout: one module per corpus holding all of its facts, and the one dispatch.

Each corpus module has the same face: `ROOTS` (the `sources.*` folders it reads, in its functions' argument order),
`check_tree(*roots)` (its layout, nothing scanned) and `scan(*roots)` (its reader, nothing decoded). EmoSet's reader
yields image entries, the emotional speech corpora's yield `Clip`s with EmoBox fold-1 splits, and the human-read
corpora's yield `Utterance`s (`voxemoset corpus NAME` writes them in the published layout: see `export/`).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from voxemoset.config import SourcesConfig, require_dir
from voxemoset.corpora.emobox import SplitEntry, read_split, relpath
from voxemoset.corpora.scan import Scan
from voxemoset.errors import UserError

IMAGES, EMOTIONAL_SPEECH, HUMAN_READ = "images", "emotional speech", "human-read speech"
# Every corpus by name, with its kind, in the order the readers report them.
CORPORA: dict[str, str] = {
    "emoset": IMAGES,
    "cremad": EMOTIONAL_SPEECH,
    "ravdess": EMOTIONAL_SPEECH,
    "mead": EMOTIONAL_SPEECH,
    "spokencoco": HUMAN_READ,
    "flickr8k": HUMAN_READ,
}
SPEECH_CORPORA: tuple[str, ...] = tuple(n for n, kind in CORPORA.items() if kind == EMOTIONAL_SPEECH)


def check_name(name: str, kind: str | None = None) -> str:
    """`name` if it is a corpus (of `kind`, when given), else one UserError listing those that are."""
    names = [n for n, k in CORPORA.items() if kind in (None, k)]
    if name not in names:
        raise UserError(f"unknown corpus {name!r}; expected one of {' | '.join(names)}")
    return name


def corpus_module(name: str, kind: str | None = None) -> ModuleType:
    """The module holding everything about corpus `name`: its reader, file-name grammar, label maps, manifest."""
    # Imported on first use: a stage needs only its own corpora (the images stage none of the speech ones).
    return importlib.import_module(f"voxemoset.corpora.{check_name(name, kind)}")


def corpus_roots(name: str, sources: SourcesConfig) -> tuple[Path, ...]:
    """The configured folders of corpus `name`, in `ROOTS` order; one UserError naming a key unset or missing."""
    return tuple(require_dir(getattr(sources, key), f"sources.{key}") for key in corpus_module(name).ROOTS)


def scan_corpus(name: str, sources: SourcesConfig) -> Scan:
    """Run the reader of corpus `name` on its configured folders (no decoding)."""
    return corpus_module(name).scan(*corpus_roots(name, sources))


def load_split(name: str) -> dict[str, SplitEntry]:
    """EmoBox fold-1 rows of speech corpus `name` keyed by clip key (both splits, cached)."""
    return read_split(corpus_module(name, EMOTIONAL_SPEECH).EMOBOX)


def emobox_relpath(name: str, wav: str) -> str:
    """An EmoBox wav path of corpus `name` relative to its reader's root; ValueError if it lies elsewhere."""
    return relpath(corpus_module(name, EMOTIONAL_SPEECH).EMOBOX, wav)
