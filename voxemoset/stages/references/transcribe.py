"""Whisper for the MEAD clips, which ship without transcripts: loaded once, on the first clip that needs it."""

from __future__ import annotations

import threading

import numpy as np

from voxemoset.config import ReferencesConfig


class LazyTranscriber:
    """Loads Whisper on first use, so shards without MEAD clips never load it.

    Shard tasks share one instance across threads: the lock makes the first two MEAD shards load it
    once, not twice at the same time (two concurrent `from_pretrained` calls break each other's
    meta-device initialisation: "Cannot copy out of meta tensor").
    """

    def __init__(self, cfg: ReferencesConfig):
        self.cfg, self._model, self._lock = cfg, None, threading.Lock()

    def transcribe(self, clips: list[np.ndarray]) -> list[str]:
        """Whisper's transcript of each clip (16 kHz mono), loading the model the first time."""
        with self._lock:
            if self._model is None:
                from voxemoset.models.whisper_asr import WhisperTranscriber

                self._model = WhisperTranscriber(**self.cfg.whisper.model_dump())
        return self._model.transcribe(clips)
