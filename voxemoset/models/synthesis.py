"""The one synthesis path: speak requests, resample to the stored 16 kHz, and say why any item failed.

The speech stage (first attempts) and the gates stage (retries) both go through here, so a retry is made
exactly as the utterance it replaces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from voxemoset.audio import to_out_rate
from voxemoset.models.oom import is_out_of_memory
from voxemoset.models.protocols import Synthesizer, SynthRequest

SYNTHESIS_FAILED = "synthesis_failed"  # the model raised for this request
BAD_AUDIO = "bad_audio"  # the model returned an empty or non-finite waveform


@dataclass(frozen=True)
class SynthesisFailure:
    """Why one request gave no clip: `reason` is SYNTHESIS_FAILED or BAD_AUDIO, `detail` a short text."""

    reason: str
    detail: str


def synthesize_each(synth: Synthesizer, requests: list[SynthRequest]) -> list[np.ndarray | str]:
    """Waveforms, or an error text per request that fails: a failing batch is retried one request at a time.

    Out of memory is no fault of a request: it goes on to the caller (the synthesizer has already halved its
    batch down to 1, models/oom.py), and the shard is retried rather than its items rejected for good.
    """
    try:
        return list(synth.synthesize(requests))
    except Exception as e:  # noqa: BLE001 - any other model error rejects its item, never the shard
        if is_out_of_memory(e):
            raise
        if len(requests) == 1:
            return [f"{type(e).__name__}: {e}"[:500]]
        return [synthesize_each(synth, [r])[0] for r in requests]


def synthesize_16k(synth: Synthesizer, requests: list[SynthRequest]) -> list[np.ndarray | SynthesisFailure]:
    """Per request, in order: the float32 16 kHz clip (clipped to [-1, 1]) or why there is none."""
    out: list[np.ndarray | SynthesisFailure] = []
    for wave in synthesize_each(synth, requests):
        if isinstance(wave, str):
            out.append(SynthesisFailure(SYNTHESIS_FAILED, wave))
            continue
        clip = to_out_rate(wave, synth.sample_rate)
        if clip.size == 0 or not np.isfinite(clip).all():
            out.append(SynthesisFailure(BAD_AUDIO, "empty or not finite"))
            continue
        out.append(clip)
    return out
