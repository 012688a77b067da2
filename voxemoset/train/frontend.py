"""The speech front end of training: where the frames the SIB reads come from, one object per run.

Frames are precomputed (Whisper or SONAR, one embedding store per dataset, read with the rows) or Whisper encodes
each batch's audio in the loop; text conditioning reads no speech. The loop only calls `frames(batch)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

from voxemoset.errors import UserError
from voxemoset.train.config import TrainConfig
from voxemoset.train.encoders import TensorStore, WhisperFrames, frame_dim


class SpeechFrontEnd(Protocol):
    """Speech in, frames for the SIB out: their width, what each dataset's rows carry, a batch's frames."""

    width: int | None  # the frames' width, the SIB's input; None: no frames (text conditioning)

    def store(self, dataset: int) -> TensorStore | None:
        """The precomputed frames read with dataset `dataset`'s rows; None: the rows carry audio (or nothing)."""
        ...

    def frames(self, batch: dict) -> dict:
        """A collated batch on the device, with `frames` (float32) and `frame_mask` where speech conditions."""
        ...


class PrecomputedFrames:
    """Frames cached by `voxemoset encode` (or by the run's main process first), one store per dataset: the
    batches arrive with their frames and mask."""

    def __init__(self, stores: Sequence[TensorStore]):
        widths = {frame_dim(s) for s in stores}
        if len(widths) > 1:
            raise UserError(f"the mixture's embedding stores differ in width {sorted(widths)}: one encoder for all")
        self.stores, self.width = list(stores), widths.pop()

    def store(self, dataset: int) -> TensorStore:
        return self.stores[dataset]

    def frames(self, batch: dict) -> dict:
        return batch  # stores hand out float32 (TensorStore.get)


class WhisperInLoop:
    """Whisper, frozen, encodes each batch's audio on the device: no cache to write, an encoder pass per step."""

    def __init__(self, whisper: WhisperFrames):
        self.whisper, self.width = whisper, whisper.dim

    def store(self, dataset: int) -> None:
        return None

    def frames(self, batch: dict) -> dict:
        rest = dict(batch)
        frames, mask = self.whisper(rest.pop("audio"))
        # Half-precision Whisper on a GPU: the SIB's weights train in fp32, so its input is fp32 too.
        return rest | {"frames": frames.float(), "frame_mask": mask}


class NoSpeech:
    """Text conditioning: the rows carry no speech and the model encodes the captions itself."""

    width = None

    def store(self, dataset: int) -> None:
        return None

    def frames(self, batch: dict) -> dict:
        return batch


def load_front_end(cfg: TrainConfig, acc, dtype: torch.dtype) -> SpeechFrontEnd:
    """The run's front end; precomputed frames missing from a dataset are encoded first (main process first)."""
    from voxemoset.train.mixture import encode_sources

    if cfg.conditioning == "text":
        return NoSpeech()
    if cfg.encoder.precomputed:
        folders = encode_sources(cfg, device=str(acc.device), progress=True, guard=acc.main_process_first)
        return PrecomputedFrames([TensorStore(folder) for folder in folders])
    return WhisperInLoop(WhisperFrames(cfg.encoder.model, acc.device, dtype))
