"""The human-read corpora (SpokenCOCO, Flickr8kAudio) in their native layouts, written in the published layout.

`voxemoset corpus NAME -c CONFIG` -> `<out>/corpora/NAME/data/<split>-NNNNN-of-NNNNN.parquet`.
"""

from __future__ import annotations

from pathlib import Path

from voxemoset.config import SourcesConfig, require_dir
from voxemoset.corpora.base import SPLITS, Utterance
from voxemoset.errors import UserError
from voxemoset.sources.base import Scan

CORPORA: tuple[str, ...] = ("spokencoco", "flickr8k")

__all__ = ["CORPORA", "SPLITS", "Utterance", "corpus_roots", "scan_corpus"]


def check_name(name: str) -> str:
    """`name` if it is a corpus this package reads, else one UserError listing those it does."""
    if name not in CORPORA:
        raise UserError(f"unknown corpus {name!r}; expected one of {' | '.join(CORPORA)}")
    return name


def corpus_roots(name: str, sources: SourcesConfig) -> tuple[Path, Path]:
    """(image root, audio root) of corpus `name`: nothing outside them is read. UserError if unset or missing."""
    if check_name(name) == "spokencoco":
        return require_dir(sources.coco, "sources.coco"), require_dir(sources.spokencoco, "sources.spokencoco")
    root = require_dir(sources.flickr8k, "sources.flickr8k")
    return root, root


def scan_corpus(name: str, sources: SourcesConfig) -> Scan[Utterance]:
    """Run the reader of corpus `name` on its configured folders (no decoding)."""
    image_root, audio_root = corpus_roots(name, sources)
    if name == "spokencoco":
        from voxemoset.corpora.spokencoco import scan_spokencoco

        return scan_spokencoco(audio_root, image_root)
    from voxemoset.corpora.flickr8k import scan_flickr8k

    return scan_flickr8k(audio_root)
