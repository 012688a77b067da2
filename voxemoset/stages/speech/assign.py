"""Reference assignment: each caption gets a reference of its image's emotion from the same split,
balanced across corpora and then speakers, deterministic for a seed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from itertools import cycle, islice

from voxemoset.seeds import derive_seed

# Higher is stronger; each corpus keeps its own scale (see the *_INTENSITY maps of the corpus modules in corpora/).
INTENSITY_RANK = {
    "high": 3, "strong": 3, "level_3": 3,
    "medium": 2, "level_2": 2,
    "low": 1, "normal": 1, "level_1": 1,
    "unspecified": 0,
}  # fmt: skip


# Seeded orders; ties between 31-bit keys are broken by id, so the result never depends on input order.
def _ref_key(seed: int, ref: dict) -> tuple[int, str]:
    return derive_seed(seed, "ref", ref["reference_id"]), ref["reference_id"]


def _caption_key(seed: int, c: dict) -> tuple[int, str, int]:
    return derive_seed(seed, "caption", c["image_id"], c["caption_index"]), c["image_id"], c["caption_index"]


def _round_robin(streams: Sequence[Iterator]) -> Iterator:
    """One item from each stream in turn, forever (every stream is infinite)."""
    while True:
        for s in streams:
            yield next(s)


def _reference_stream(refs: list[dict], seed: int, prefer: str) -> Iterator[str]:
    """Cycle corpora, within a corpus cycle speakers, within a speaker cycle clips (strongest first if asked)."""
    by_corpus: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in refs:
        by_corpus[r["corpus"]][r["speaker"]].append(r)
    corpus_streams = []
    for corpus in sorted(by_corpus):
        speakers = sorted(by_corpus[corpus], key=lambda s: (derive_seed(seed, "speaker", s), s))
        speaker_streams = []
        for spk in speakers:
            clips = by_corpus[corpus][spk]
            if prefer == "strong":
                clips.sort(key=lambda r: (-INTENSITY_RANK.get(r["intensity"], 0), *_ref_key(seed, r)))
            else:
                clips.sort(key=lambda r: _ref_key(seed, r))
            speaker_streams.append(cycle([c["reference_id"] for c in clips]))
        corpus_streams.append(_round_robin(speaker_streams))
    return _round_robin(corpus_streams)


def assign_references(
    captions: list[dict],
    references: list[dict],
    seed: int = 0,
    prefer: str = "any",
    exclude_intensities: Sequence[str] = (),
) -> dict[tuple[str, int], str | None]:
    """(image_id, caption_index) -> reference_id, or None where no reference of that split and emotion exists.

    `captions` need image_id, caption_index, split, emotion; `references` need reference_id, corpus,
    speaker, split, emotion, intensity. Captions are ranked by a seeded hash, so the result does not
    depend on input order.
    """
    pools: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in references:
        if r["intensity"] not in exclude_intensities:
            pools[(r["split"], r["emotion"])].append(r)
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for c in captions:
        groups[(c["split"], c["emotion"])].append(c)
    result: dict[tuple[str, int], str | None] = {}
    for group, items in groups.items():
        items = sorted(items, key=lambda c: _caption_key(seed, c))
        keys = [(c["image_id"], c["caption_index"]) for c in items]
        if not pools.get(group):
            result.update(dict.fromkeys(keys))
            continue
        stream = _reference_stream(pools[group], seed, prefer)
        result.update(zip(keys, islice(stream, len(keys)), strict=True))
    return result
