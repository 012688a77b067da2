"""Corpus rows in the published layout: the published features that apply to human speech, plus the speaker."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa

from voxemoset.audio import OUT_RATE, AudioReadError, audio_cell, load_audio, to_out_rate
from voxemoset.corpora.human_read import (
    AUDIO_EMPTY,
    AUDIO_MISSING,
    AUDIO_TRUNCATED,
    AUDIO_UNREADABLE,
    PATH_OUTSIDE_ROOT,
    Utterance,
    image_reason,
)
from voxemoset.corpora.scan import RootCheck
from voxemoset.hub.features import features
from voxemoset.images import ImageReject, read_image_file

# The published columns a read corpus fills (same features, so `train` and `evaluate` read both alike);
# `emotion` stays null. Then what only a read corpus has.
PUBLISHED_COLUMNS = ("id", "split", "image", "image_id", "emotion", "caption", "caption_index", "audio",
                     "duration_s", "n_words")  # fmt: skip
EXTRA_COLUMNS = ("speaker", "source_split")


class CorpusReject(Exception):
    """An utterance that cannot be published; `reason` is the rejects constant."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


@cache
def corpus_features():
    """The corpus rows as `datasets.Features`: published Image, Audio (16 kHz), ClassLabel emotion, and strings."""
    from datasets import Features, Value

    published = features()
    return Features({**{c: published[c] for c in PUBLISHED_COLUMNS}, **{c: Value("string") for c in EXTRA_COLUMNS}})


@cache
def corpus_schema() -> pa.Schema:
    """Arrow schema of the corpus shards, with the `huggingface` metadata that makes `datasets` read them typed."""
    return corpus_features().arrow_schema


def read_image(path: Path, image_id: str, limits, inside: RootCheck) -> dict:
    """The `image` cell of one file: RGB JPEG/PNG bytes as they are, anything else as PNG; CorpusReject if unusable."""
    if not inside(path):  # checked when planning; again in case the tree changed since
        raise CorpusReject(PATH_OUTSIDE_ROOT, f"{path} resolves outside its root")
    try:
        data, stored, meta = read_image_file(path, limits)  # the images stage's own reading and checks
    except ImageReject as e:
        raise CorpusReject(image_reason(e.reason), f"{path}: {e.detail}" if e.detail else str(path)) from None
    ext = ".jpg" if stored is data and meta["source_format"] == "JPEG" else ".png"
    return {"bytes": stored, "path": image_id + ext}


def read_clip(path: Path, inside: RootCheck) -> np.ndarray:
    """The recording as float32 mono at OUT_RATE; CorpusReject naming why it cannot be read."""
    if not inside(path):
        raise CorpusReject(PATH_OUTSIDE_ROOT, f"{path} resolves outside its root")
    try:
        wave, rate = load_audio(path)
    except AudioReadError as e:
        if e.reason == "file not found":
            raise CorpusReject(AUDIO_MISSING, str(e)) from None
        if e.reason.startswith("truncated"):
            raise CorpusReject(AUDIO_TRUNCATED, str(e)) from None
        if e.reason.startswith(("empty file", "no audio samples")):
            raise CorpusReject(AUDIO_EMPTY, str(e)) from None
        raise CorpusReject(AUDIO_UNREADABLE, str(e)) from None
    if not np.isfinite(wave).all():
        raise CorpusReject(AUDIO_UNREADABLE, f"{path}: samples that are not finite")
    return to_out_rate(wave, rate)


def corpus_row(u: Utterance, image: dict, clip: np.ndarray) -> dict:
    """One published row (emotion null) from an utterance, its image cell and its 16 kHz clip."""
    return {
        "id": u.id,
        "split": u.split,
        "image": image,
        "image_id": u.image_id,
        "emotion": None,
        "caption": u.caption,
        "caption_index": u.caption_index,
        "audio": audio_cell(u.id, clip),
        "duration_s": clip.size / OUT_RATE,
        "n_words": len(u.caption.split()),
        "speaker": u.speaker,
        "source_split": u.source_split,
    }


class ShardReader:
    """Rows of one shard's utterances; each image is read and checked once however many captions it has."""

    def __init__(self, image_root: Path, audio_root: Path, limits):
        self.in_images, self.in_audio, self.limits = RootCheck(image_root), RootCheck(audio_root), limits
        self._images: dict[str, dict | CorpusReject] = {}

    def image(self, u: Utterance) -> dict:
        if u.image_path not in self._images:
            try:
                self._images[u.image_path] = read_image(Path(u.image_path), u.image_id, self.limits, self.in_images)
            except CorpusReject as e:
                self._images[u.image_path] = e
        found = self._images[u.image_path]
        if isinstance(found, CorpusReject):
            raise CorpusReject(found.reason, found.detail)
        return found

    def row(self, u: Utterance) -> dict:
        """The utterance's row, or CorpusReject (the image's problem first: it sinks every caption of it)."""
        image = self.image(u)
        return corpus_row(u, image, read_clip(Path(u.wav_path), self.in_audio))

    def rows(self, utterances: list[Utterance]) -> tuple[pa.Table, list[dict]]:
        """Kept rows as a table in the corpus schema, and a reject (source, reason, detail) for each other."""
        rows, rejects = [], []
        for u in utterances:
            try:
                rows.append(self.row(u))
            except CorpusReject as e:
                # One reject per utterance, named by its recording; an image's problem names the image too.
                detail = f"{u.image_path}: {e.detail}" if e.reason.startswith("corpus_image_") else e.detail
                rejects.append({"source": u.wav_path, "reason": e.reason, "detail": detail, "id": u.id,
                                "split": u.split})  # fmt: skip
        return pa.Table.from_pylist(rows, schema=corpus_schema()), rejects
