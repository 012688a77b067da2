"""The five VoxEmoset emotions and how each source corpus names them."""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("enjoyment", "anger", "disgust", "fear", "sadness")

# EmoSet's eight labels; awe and contentment have no counterpart in the speech corpora, so they drop.
EMOSET_LABELS: tuple[str, ...] = (
    "amusement", "awe", "contentment", "excitement", "anger", "disgust", "fear", "sadness",
)  # fmt: skip
EMOSET_TO_EMOTION: dict[str, str] = {
    "amusement": "enjoyment",
    "excitement": "enjoyment",
    "anger": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "sadness": "sadness",
}
CREMAD_TO_EMOTION = {"HAP": "enjoyment", "ANG": "anger", "DIS": "disgust", "FEA": "fear", "SAD": "sadness"}
# RAVDESS filename emotion codes (third field).
RAVDESS_TO_EMOTION = {"03": "enjoyment", "05": "anger", "07": "disgust", "06": "fear", "04": "sadness"}
MEAD_TO_EMOTION = {"happy": "enjoyment", "angry": "anger", "disgusted": "disgust", "fear": "fear", "sad": "sadness"}
# emotion2vec's English label halves ("开心/happy" -> "happy").
EMOTION2VEC_TO_EMOTION = {
    "happy": "enjoyment",
    "angry": "anger",
    "disgusted": "disgust",
    "fearful": "fear",
    "sad": "sadness",
}
