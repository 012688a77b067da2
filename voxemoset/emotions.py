"""The five VoxEmoset emotions (each source's own label map lives with its reader or model adapter)."""

from __future__ import annotations

EMOTIONS: tuple[str, ...] = ("enjoyment", "anger", "disgust", "fear", "sadness")
