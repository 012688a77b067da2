"""Frozen encoders and their caches: Whisper frame embeddings, VAE latent moments, sharded safetensors stores.

A store is a folder of `*.safetensors` shards, each mapping a row key (utterance `id` or `image_id`) to one
tensor, with the producer in the header metadata. The SONAR script writes the same format from its own env.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from voxemoset.audio import OUT_RATE
from voxemoset.errors import UserError
from voxemoset.models.resolve import redownload_command, resolve_checkpoint

META_NAME = "meta.json"


class WhisperFrames:
    """Whisper's encoder, frozen, in-process: 16 kHz clips -> frame embeddings (50 per second) and their mask."""

    def __init__(self, model: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
        from transformers import WhisperFeatureExtractor, WhisperModel

        from voxemoset.models.safe_load import load_pretrained

        role, default = "Whisper encoder", "openai/whisper-large-v3"
        path = resolve_checkpoint(model, role, default)
        whisper = load_pretrained(WhisperModel, path, "whisper", role, redownload_command(path, default), dtype=dtype)
        self.features = WhisperFeatureExtractor.from_pretrained(path, trust_remote_code=False)
        self.encoder = whisper.get_encoder().to(device).eval().requires_grad_(False)
        del whisper  # the decoder is never used
        self.device, self.dtype = torch.device(device), dtype
        self.dim: int = self.encoder.config.d_model
        self.max_frames: int = self.encoder.config.max_source_positions
        self.label = f"whisper:{Path(str(path)).name}"

    def n_frames(self, n_samples: int) -> int:
        """Valid encoder frames of a clip: one per 2 mel hops (20 ms), at least 1, at most the 30 s window."""
        hop = self.features.hop_length
        return min(self.max_frames, max(1, math.ceil(n_samples / (2 * hop))))

    @torch.no_grad()
    def __call__(self, clips: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """(frames (B, N, D), mask (B, N)), N = the longest clip's valid frames; clips over 30 s are cut."""
        # Whisper always sees a 30 s window (it wants exactly 2 x max_source_positions mel frames).
        feats = self.features(list(clips), sampling_rate=OUT_RATE, return_tensors="pt").input_features
        out = self.encoder(feats.to(self.device, self.dtype)).last_hidden_state
        lengths = torch.tensor([self.n_frames(len(c)) for c in clips], device=out.device)
        n = int(lengths.max())
        mask = torch.arange(n, device=out.device)[None, :] < lengths[:, None]
        return out[:, :n] * mask.unsqueeze(-1), mask


def write_shard(path: Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, str]) -> None:
    """Write one store shard atomically (temp file, fsync, rename), so a killed run leaves no partial shard."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=dict(meta))
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_meta(folder: Path, meta: Mapping[str, object]) -> None:
    """Describe a store (producer, width, frame rate) in meta.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / META_NAME).write_text(json.dumps(dict(meta), indent=2, sort_keys=True))


def read_meta(folder: Path) -> dict:
    """A store's meta.json, or {} if it has none yet."""
    path = Path(folder) / META_NAME
    return json.loads(path.read_text()) if path.is_file() else {}


class TensorStore:
    """Read-only key -> tensor lookup over a folder of safetensors shards (memory-mapped, opened lazily)."""

    def __init__(self, folder: Path):
        from safetensors import safe_open

        self.folder = Path(folder)
        shards = sorted(self.folder.glob("*.safetensors"))
        if not shards:
            raise UserError(f"no embedding or latent shards in {self.folder}")
        self.where: dict[str, Path] = {}
        for shard in shards:
            with safe_open(str(shard), framework="pt") as fh:
                self.where.update(dict.fromkeys(fh.keys(), shard))
        self._handles: dict[Path, object] = {}
        self._pid = os.getpid()

    def __contains__(self, key: str) -> bool:
        return key in self.where

    def __len__(self) -> int:
        return len(self.where)

    def get(self, key: str) -> torch.Tensor:
        """The tensor stored under `key` (float32)."""
        from safetensors import safe_open

        if os.getpid() != self._pid:  # DataLoader workers: handles opened before a fork are not shared
            self._handles, self._pid = {}, os.getpid()
        shard = self.where.get(key)
        if shard is None:
            raise UserError(f"{self.folder}: nothing stored for {key!r} (re-run the encode step)")
        if shard not in self._handles:
            self._handles[shard] = safe_open(str(shard), framework="pt")
        return self._handles[shard].get_tensor(key).float()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_handles": {}}


def frame_dim(store: TensorStore) -> int:
    """Frame width of an embedding store (from meta.json, else from one tensor)."""
    meta = read_meta(store.folder)
    return int(meta["dim"]) if "dim" in meta else int(store.get(next(iter(store.where))).shape[-1])
