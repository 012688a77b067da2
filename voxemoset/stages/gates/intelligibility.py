"""Word error rate of a clip's transcript against its caption, both normalised as Whisper's English evaluation does."""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import jiwer

if TYPE_CHECKING:
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

# Whisper's British -> American spelling map (OpenAI's `whisper/normalizers/english.json`, the same file every
# Whisper checkpoint ships as `normalizer.json`). funasr, a dependency already, carries a byte-identical copy.
# The packaged map is used always, never the configured checkpoint's: a WER is then a function of the two texts
# alone, the same for every ASR model and for a Hub id that is only in the cache.
SPELLINGS = ("funasr", "models/sense_voice/whisper_lib/normalizers/english.json")
# Whisper's normaliser knows contractions only with the ASCII apostrophe its tokenizer writes; a caption may carry
# typographic ones ("don’t"), which it would split into "don t". Only these two characters are mapped, before it.
_APOSTROPHES = str.maketrans("\u2018\u2019", "''")


def spelling_map_path() -> Path:
    """Where the installed funasr keeps Whisper's `english.json` (found without importing funasr)."""
    package, rel = SPELLINGS
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{package} is not installed: it carries Whisper's spelling map ({rel})")
    return Path(next(iter(spec.submodule_search_locations))) / rel


@cache
def _normaliser() -> EnglishTextNormalizer:
    from transformers.models.whisper.english_normalizer import EnglishTextNormalizer

    return EnglishTextNormalizer(json.loads(spelling_map_path().read_text(encoding="utf-8")))


def normalise(text: str | None) -> str:
    """Whisper's English normalisation: numbers as digits, American spelling, contractions expanded, no punctuation."""
    return " ".join(_normaliser()((text or "").translate(_APOSTROPHES)).split())


def word_error_rate(reference: str, hypothesis: str | None) -> float:
    """WER of `hypothesis` against `reference` (1.0 when the reference is empty and the hypothesis not)."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.wer(ref, hyp))
