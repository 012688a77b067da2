"""The card as the dataset stage's last step: every job's figures (from its marker) summed per split, then README.md."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from voxemoset.hub.shards import SplitStats
from voxemoset.stages.dataset.card import card_text
from voxemoset.store.atomic import write_atomic


def split_order(name: str) -> tuple:
    """train, then test, then anything else alphabetically (the card lists splits in this order)."""
    return ({"train": 0, "test": 1}.get(name, 2), name)


def split_figures(markers: dict[str, dict]) -> tuple[dict[str, SplitStats], dict]:
    """Per split: its files, rows and sizes, and the card's counts (images, and rows per emotion)."""
    splits: dict[str, SplitStats] = {}
    images: dict[str, set] = {}
    emotions: dict[str, Counter] = {}
    for name in sorted(markers):
        stats = markers[name]["stats"]
        split = stats["split"]
        s = splits.setdefault(split, SplitStats())
        s.rows += markers[name]["rows"]
        s.num_bytes += stats["num_bytes"]
        s.files += sorted(stats["files"])
        s.file_bytes += sum(stats["files"].values())
        images.setdefault(split, set()).update(stats["images"])
        emotions.setdefault(split, Counter()).update(stats["emotions"])
    ordered = dict(sorted(((n, s) for n, s in splits.items() if s.rows), key=lambda kv: split_order(kv[0])))
    counts = {"images": {n: len(images[n]) for n in ordered}, "emotions": {n: emotions[n] for n in ordered}}
    return ordered, counts


def write_card(config, markers: dict[str, dict], gate_drops: dict[str, int], prompt: str | None, folder: Path,
               departed: list[list[str]] | None = None) -> None:  # fmt: skip
    """`<folder>/README.md` for the files every job published (written whole or not at all); `gate_drops`: the
    utterances the gates dropped, by reason; `departed`: the rows of its "Departures from the paper"."""
    splits, counts = split_figures(markers)
    text = card_text(config, splits, counts, prompt, folder / "data", gate_drops, departed)
    card = folder / "README.md"
    if not card.is_file() or card.read_text() != text:  # a rerun that changed nothing touches nothing
        write_atomic(card, lambda tmp: tmp.write_text(text))
