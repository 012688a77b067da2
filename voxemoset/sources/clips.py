"""One speech clip from CREMA-D, RAVDESS or MEAD, as the speech readers return it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

# `intensity` keeps each corpus's own scale (they do not line up), spelt as lower-case words:
#   CREMA-D  LO/MD/HI/XX          -> "low" / "medium" / "high" / "unspecified" (only IEO has levels)
#   RAVDESS  01/02                -> "normal" / "strong"
#   MEAD     level_1/2/3          -> "level_1" / "level_2" / "level_3" (as MEAD's folders)
CREMAD_INTENSITY = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified"}
RAVDESS_INTENSITY = {"01": "normal", "02": "strong"}
# RAVDESS filename emotion codes -> the names its documentation uses (kept as `source_emotion`).
RAVDESS_EMOTION_NAMES = {
    "01": "neutral", "02": "calm", "03": "happy", "04": "sad",
    "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised",
}  # fmt: skip


@dataclass(frozen=True)
class Clip:
    """A usable clip: EmoBox key, absolute path, speaker, sex, five-class emotion, text and fold-1 split.

    `source_emotion` is the corpus's own label: CREMA-D code (`ANG`), RAVDESS name (`angry`), MEAD
    folder (`angry`). `sentence` is CREMA-D's sentence code (`DFA`), RAVDESS's statement (`01`) or None
    for MEAD; `transcript` is that sentence's text, None for MEAD (transcribed later by ASR).
    """

    key: str
    corpus: str
    path: str
    speaker: str
    sex: str
    emotion: str
    source_emotion: str
    intensity: str
    sentence: str | None
    transcript: str | None
    split: str

    def to_row(self) -> dict:
        """The clip as a plain dict (for tables and JSON)."""
        return asdict(self)
