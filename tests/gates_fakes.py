"""Scripted emotion scores for the gates tests: a fake on purpose, since no real model can be told to fail.

`SCRIPT` maps an utterance's image id to the emotion heard at each attempt; anything else hears the intent.
The fake is an `EmotionScorer` like any other: it gets only clips, and recognises each by its content. A
first attempt's clip is the speech stage's stored audio; a retry's is what the (real, tiny) synthesizer makes
for that retry's seed, which `RecordingSynth` notes as it passes through.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from voxemoset.audio import decode_audio_bytes, to_out_rate
from voxemoset.config import Config
from voxemoset.emotions import EMOTIONS
from voxemoset.models.protocols import Synthesizer, SynthRequest
from voxemoset.stages.gates import GateModels, GatesStage, retry_seed

# image_id -> emotion heard at attempt 1, 2, 3, ... (the last entry repeats). None: hears the intended one.
SCRIPT = {
    "img-a": ["fear", "sadness", None],  # fails twice, then passes
    "img-b": [None],  # passes first time
    "img-c": ["anger"],  # never passes: budget exhausted
}


def clip_key(clip: np.ndarray) -> str:
    """A clip's identity: the hash of its float32 16 kHz samples."""
    return hashlib.sha256(np.ascontiguousarray(clip, dtype=np.float32).tobytes()).hexdigest()


class RecordingSynth:
    """A real synthesizer that notes which (utterance id, attempt) each 16 kHz clip it makes belongs to."""

    def __init__(self, inner: Synthesizer, seeds: dict[int, tuple[str, int]], heard: dict[str, tuple[str, int]]):
        self.inner, self.seeds, self.heard = inner, seeds, heard
        self.sample_rate = inner.sample_rate
        self.batch_size = getattr(inner, "batch_size", 1)

    def synthesize(self, requests: list[SynthRequest]) -> list[np.ndarray]:
        waves = self.inner.synthesize(requests)
        for req, wave in zip(requests, waves, strict=True):
            # The gates resample every synthesis with to_out_rate before scoring it.
            self.heard[clip_key(to_out_rate(wave, self.sample_rate))] = self.seeds[req.seed]
        return waves


class ScriptedEmotion:
    """Scores from SCRIPT; confidence rises with the attempt so the best failure is well defined."""

    def __init__(self, heard: dict[str, tuple[str, int]], intended: dict[str, tuple[str, str]]):
        self.heard = heard  # clip key -> (utterance id, attempt)
        self.intended = intended  # utterance id -> (image_id, intended emotion)

    def score(self, clips: list[np.ndarray]) -> list[dict[str, float]]:
        out = []
        for clip in clips:
            utt, attempt = self.heard[clip_key(clip)]  # a KeyError: a clip that no attempt made
            image_id, intent = self.intended[utt]
            seq = SCRIPT.get(image_id, [None])
            heard = seq[min(attempt, len(seq)) - 1] or intent
            conf = 0.6 + 0.05 * attempt
            out.append({e: (conf if e == heard else (1 - conf) / 4) for e in EMOTIONS})
        return out


def scripted_stage(
    config: Config, speech_rows: list[dict], synth: Callable[[Config], Synthesizer] | None = None
) -> GatesStage:
    """The gates stage with scripted emotion, real DNSMOS, no ASR, and `synth` (default: the configured F5) recorded."""
    from voxemoset.models.dnsmos import DnsmosScorer
    from voxemoset.models.f5tts import make_synthesizer

    make = synth or (lambda c: make_synthesizer(c.speech))

    heard = {clip_key(decode_audio_bytes(r["audio"]["bytes"])[0]): (r["id"], 1) for r in speech_rows}
    attempts = range(2, config.gates.max_attempts + 1)
    seeds = {retry_seed(config.gates.seed, r["id"], a): (r["id"], a) for r in speech_rows for a in attempts}
    intended = {r["id"]: (r["image_id"], r["emotion"]) for r in speech_rows}
    models = GateModels(emotion=ScriptedEmotion(heard, intended), quality=DnsmosScorer(), asr=None)
    return GatesStage(gate_models=lambda c: models,
                      synth=lambda c: RecordingSynth(make(c), seeds, heard))  # fmt: skip


def run_gates(config_path: str | Path) -> None:
    """Run the gates stage with the scripted scorer (used in-process and by the kill test's subprocess)."""
    import pyarrow.parquet as pq

    from voxemoset.config import load_config
    from voxemoset.store.runner import list_shards, run_stage, stage_dir

    cfg = load_config(config_path)
    rows = [r for p in list_shards(stage_dir(cfg.out, "speech")) for r in pq.read_table(p).to_pylist()]
    run_stage(scripted_stage(cfg, rows), cfg, cfg.out)


if __name__ == "__main__":
    import sys

    run_gates(sys.argv[1])
