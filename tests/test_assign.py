"""Reference assignment: never crosses splits or emotions, balanced across corpora and speakers."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from voxemoset.stages.speech import assign_references

EMOTIONS = ["enjoyment", "anger", "disgust"]
SPLITS = ["train", "test"]


@st.composite
def pools(draw):
    refs = []
    for corpus in draw(st.lists(st.sampled_from(["cremad", "mead", "ravdess"]), min_size=1, max_size=3, unique=True)):
        for s in range(draw(st.integers(1, 4))):
            for i in range(draw(st.integers(1, 4))):
                refs.append(
                    {
                        "reference_id": f"{corpus}-{s}-{i}",
                        "corpus": corpus,
                        "speaker": f"{corpus}-{s}",
                        "split": draw(st.sampled_from(SPLITS)),
                        "emotion": draw(st.sampled_from(EMOTIONS)),
                        "intensity": draw(st.sampled_from(["low", "high", "unspecified"])),
                    }
                )
    n_images = draw(st.integers(1, 40))
    captions = [
        {"image_id": f"img{i}", "caption_index": k, "split": SPLITS[i % 2], "emotion": EMOTIONS[i % 3]}
        for i in range(n_images)
        for k in range(3)
    ]
    return captions, refs, draw(st.integers(0, 2**16))


@settings(max_examples=150, deadline=None)
@given(pools())
def test_assignment_never_crosses_splits_and_stays_balanced(case):
    captions, refs, seed = case
    by_id = {r["reference_id"]: r for r in refs}
    got = assign_references(captions, refs, seed)
    assert got == assign_references(list(reversed(captions)), refs, seed)  # order-free, deterministic
    for c in captions:
        ref = got[(c["image_id"], c["caption_index"])]
        pool = [r for r in refs if (r["split"], r["emotion"]) == (c["split"], c["emotion"])]
        if not pool:
            assert ref is None
            continue
        assert (by_id[ref]["split"], by_id[ref]["emotion"]) == (c["split"], c["emotion"])
    # Tolerance: within a (split, emotion) group, corpus counts differ by at most 1, and so do the
    # counts of the speakers within one corpus.
    for split in SPLITS:
        for emotion in EMOTIONS:
            assigned = [
                by_id[got[(c["image_id"], c["caption_index"])]]
                for c in captions
                if (c["split"], c["emotion"]) == (split, emotion) and got[(c["image_id"], c["caption_index"])]
            ]
            corpora = {r["corpus"] for r in refs if (r["split"], r["emotion"]) == (split, emotion)}
            per_corpus = Counter(r["corpus"] for r in assigned)
            if assigned:
                counts = [per_corpus.get(c, 0) for c in corpora]
                assert max(counts) - min(counts) <= 1
            for corpus in corpora:
                speakers = {
                    r["speaker"] for r in refs if (r["split"], r["emotion"], r["corpus"]) == (split, emotion, corpus)
                }
                per_spk = Counter(r["speaker"] for r in assigned if r["corpus"] == corpus)
                counts = [per_spk.get(s, 0) for s in speakers]
                assert max(counts) - min(counts) <= 1


def test_prefer_strong_uses_strong_clips_first():
    refs = [
        {
            "reference_id": f"r{i}",
            "corpus": "cremad",
            "speaker": "s",
            "split": "train",
            "emotion": "anger",
            "intensity": it,
        }
        for i, it in enumerate(["low", "high", "medium", "high"])
    ]
    caps = [{"image_id": "a", "caption_index": k, "split": "train", "emotion": "anger"} for k in range(2)]
    got = assign_references(caps, refs, seed=3, prefer="strong")
    assert set(got.values()) == {"r1", "r3"}
    assert set(assign_references(caps, refs, seed=3, exclude_intensities=("high", "medium")).values()) == {"r0"}
