"""One Protocol per model role: the chain talks to these, each backend adapts to them (and so do test fakes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from PIL import Image


class Captioner(Protocol):
    """Captions images: one raw answer (text that should hold the JSON) per image and seed.

    `ids` are the images' ids: model backends ignore them, the answer-table backend looks answers up by them.
    """

    name: str

    def caption(self, images: list[Image.Image], seeds: list[int], ids: list[str] | None = None) -> list[str]: ...


@dataclass(frozen=True)
class SynthRequest:
    """One utterance to speak: caption text, reference (float32 mono 24 kHz) and its transcript, seed, speed."""

    text: str
    ref_audio: np.ndarray
    ref_text: str
    seed: int
    speed: float = 1.0


class Synthesizer(Protocol):
    """Speaks captions in a reference's voice: one float32 waveform at `sample_rate` per request, in order."""

    sample_rate: int

    def synthesize(self, requests: list[SynthRequest]) -> list[np.ndarray]: ...


class EmotionScorer(Protocol):
    """16 kHz clips -> scores over the five VoxEmoset emotions (each the model's own probability)."""

    def score(self, clips: list[np.ndarray]) -> list[dict[str, float]]: ...


class QualityScorer(Protocol):
    """16 kHz clips -> DNSMOS figures per clip (`dnsmos_ovrl`, `dnsmos_sig`, `dnsmos_bak`, `dnsmos_p808`)."""

    def score(self, clips: Sequence[np.ndarray]) -> list[dict[str, float]]: ...


class Transcriber(Protocol):
    """16 kHz clips -> their transcripts."""

    def transcribe(self, clips: list[np.ndarray]) -> list[str]: ...
