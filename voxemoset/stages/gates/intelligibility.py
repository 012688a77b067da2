"""Word error rate of a clip's transcript against its caption, after the same normalisation of both."""

from __future__ import annotations

import re

import jiwer

_NORMALISE = jiwer.Compose(
    [
        jiwer.ToLowerCase(),
        jiwer.SubstituteRegexes({r"[-–—/]": " ", r"'s\b": "s"}),
        jiwer.RemovePunctuation(),
        jiwer.RemoveMultipleSpaces(),
        jiwer.Strip(),
    ]
)


def normalise(text: str) -> str:
    """Lower case, no punctuation, single spaces (F5 and Whisper disagree on punctuation, not words)."""
    return re.sub(r"\s+", " ", _NORMALISE(text or "")).strip()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER of `hypothesis` against `reference` (1.0 when the reference is empty and the hypothesis not)."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.wer(ref, hyp or ""))
