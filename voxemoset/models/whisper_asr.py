"""Whisper through transformers, local weights only: MEAD reference transcripts and intelligibility (WER)."""

from __future__ import annotations

import numpy as np

from voxemoset.audio import OUT_RATE
from voxemoset.models.devices import device_name
from voxemoset.models.oom import run_halving
from voxemoset.models.resolve import redownload_command, resolve_checkpoint
from voxemoset.models.safe_load import load_pretrained

DEFAULT_WHISPER = "openai/whisper-large-v3-turbo"
MODEL_ROLE = "Whisper (transcripts / intelligibility)"


class WhisperTranscriber:
    """Batched greedy Whisper decoding in English (deterministic for the same clips)."""

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        dtype: str = "float32",
        batch_size: int = 8,
        max_new_tokens: int = 128,
        language: str = "en",
    ):
        import torch
        from transformers import WhisperForConditionalGeneration, WhisperProcessor
        from transformers.utils import logging as hf_logging

        # Whisper's generate warns on every call about settings it resolves itself (mask, lengths).
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()

        role = MODEL_ROLE
        path = resolve_checkpoint(model, role, DEFAULT_WHISPER)
        self.dtype = getattr(torch, dtype)
        download = redownload_command(path, DEFAULT_WHISPER)
        self.model = load_pretrained(WhisperForConditionalGeneration, path, "whisper", role, download, dtype=self.dtype)
        # trust_remote_code=False: built-in Whisper code only, whatever the folder's JSON says.
        self.processor = WhisperProcessor.from_pretrained(path, local_files_only=True, trust_remote_code=False)
        device = device_name(device)
        self.model.to(device).eval()
        self.device, self.batch_size = device, batch_size
        self.max_new_tokens, self.language = max_new_tokens, language

    def transcribe(self, clips: list[np.ndarray]) -> list[str]:
        """One transcript per 16 kHz clip.

        Out of memory, the whole call runs again at half the batch size, which the model keeps (models/oom.py).
        """
        return run_halving(self, lambda size: self._transcribe(clips, size), "Whisper")

    def _transcribe(self, clips: list[np.ndarray], batch_size: int) -> list[str]:
        import torch

        texts: list[str] = []
        for i in range(0, len(clips), batch_size):
            batch = [np.asarray(c, dtype=np.float32) for c in clips[i : i + batch_size]]
            feats = self.processor.feature_extractor(batch, sampling_rate=OUT_RATE, return_tensors="pt").input_features
            with torch.inference_mode():
                ids = self.model.generate(
                    feats.to(self.device, self.dtype),
                    language=self.language,
                    task="transcribe",
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                )
            texts += [t.strip() for t in self.processor.batch_decode(ids, skip_special_tokens=True)]
        return texts
