"""Scripted gate models for the gates tests: fakes on purpose, since no real model can be told to fail.

A script maps an utterance's image id to what the models hear at each attempt (the last entry repeats): the
emotion and its confidence, the DNSMOS OVRL, the transcript. Anything a script leaves out is heard as intended:
the intended emotion (confidence rising with the attempt), the real DNSMOS, the caption itself. The fakes are an
`EmotionScorer`, a `QualityScorer` and a `Transcriber` like any other: they get only clips, and recognise each by
its content. A first attempt's clip is the speech stage's stored audio; a retry's is what the (real, tiny)
synthesizer makes for that retry's seed, which `RecordingSynth` notes as it passes through.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.builders import stage_rows
from voxemoset.audio import decode_audio_bytes, to_out_rate
from voxemoset.config import Config
from voxemoset.emotions import EMOTIONS
from voxemoset.models.protocols import QualityScorer, Synthesizer, SynthRequest
from voxemoset.stages.gates import GateModels, GatesStage, retry_seed


@dataclass(frozen=True)
class Heard:
    """What the scripted models hear in one attempt; None: as intended (see the module docstring)."""

    emotion: str | None = None
    conf: float | None = None
    dnsmos: float | None = None
    transcript: str | None = None


Script = dict[str, list[Heard]]

# The emotion script of tests/test_gates.py: image_id -> emotion heard at attempt 1, 2, 3, ...
SCRIPT: Script = {
    "img-a": [Heard("fear"), Heard("sadness"), Heard()],  # fails twice, then passes
    "img-b": [Heard()],  # passes first time
    "img-c": [Heard("anger")],  # never passes: budget exhausted
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


@dataclass
class Listener:
    """Recognises a clip as (utterance, attempt) and looks up what the script says is heard in it."""

    heard: dict[str, tuple[str, int]]  # clip key -> (utterance id, attempt)
    rows: dict[str, dict]  # utterance id -> its speech row (image_id, emotion, caption)
    script: Script

    def __call__(self, clip: np.ndarray) -> tuple[Heard, dict, int]:
        utt, attempt = self.heard[clip_key(clip)]  # a KeyError: a clip that no attempt made
        row = self.rows[utt]
        seq = self.script.get(row["image_id"], [Heard()])
        return seq[min(attempt, len(seq)) - 1], row, attempt


class ScriptedEmotion:
    """Scores from the script; unscripted confidence rises with the attempt so the best failure is well defined."""

    def __init__(self, listen: Listener):
        self.listen = listen

    def score(self, clips: list[np.ndarray]) -> list[dict[str, float]]:
        out = []
        for clip in clips:
            h, row, attempt = self.listen(clip)
            heard = h.emotion or row["emotion"]
            conf = h.conf if h.conf is not None else 0.6 + 0.05 * attempt
            out.append({e: (conf if e == heard else (1 - conf) / 4) for e in EMOTIONS})
        return out


class ScriptedQuality:
    """The script's DNSMOS OVRL (all four figures alike) where it gives one, else the real scorer's figures."""

    def __init__(self, listen: Listener, real: QualityScorer | None):
        self.listen, self.real = listen, real

    def score(self, clips) -> list[dict[str, float]]:
        scripted = [self.listen(clip)[0].dnsmos for clip in clips]
        unscripted = [c for c, mos in zip(clips, scripted, strict=True) if mos is None]
        real = iter(self.real.score(unscripted) if unscripted else [])
        names = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808")
        return [next(real) if mos is None else dict.fromkeys(names, mos) for mos in scripted]


class ScriptedTranscriber:
    """The script's transcript, else the caption word for word."""

    def __init__(self, listen: Listener):
        self.listen = listen

    def transcribe(self, clips: list[np.ndarray]) -> list[str]:
        return [h.transcript if h.transcript is not None else row["caption"] for h, row, _ in map(self.listen, clips)]


def scripted_stage(
    config: Config,
    speech_rows: list[dict],
    synth: Callable[[Config], Synthesizer] | None = None,
    script: Script = SCRIPT,
) -> GatesStage:
    """The gates stage with scripted models (a transcriber only when `gates.asr`) and `synth` (default: the F5)."""
    from voxemoset.models.dnsmos import DnsmosScorer
    from voxemoset.models.f5tts import make_synthesizer

    make = synth or (lambda c: make_synthesizer(c.speech))

    heard = {clip_key(decode_audio_bytes(r["audio"]["bytes"])[0]): (r["id"], 1) for r in speech_rows}
    attempts = range(2, config.gates.max_attempts + 1)
    seeds = {retry_seed(config.gates.seed, r["id"], a): (r["id"], a) for r in speech_rows for a in attempts}
    listen = Listener(heard, {r["id"]: r for r in speech_rows}, script)
    asr = ScriptedTranscriber(listen) if config.gates.asr else None
    models = GateModels(emotion=ScriptedEmotion(listen), quality=ScriptedQuality(listen, DnsmosScorer()), asr=asr)
    return GatesStage(gate_models=lambda c: models,
                      synth=lambda c: RecordingSynth(make(c), seeds, heard))  # fmt: skip


def run_gates(config_path: str | Path) -> None:
    """Run the gates stage with the scripted scorer (used in-process and by the kill test's subprocess)."""

    from voxemoset.config import load_config
    from voxemoset.store.runner import run_stage, stage_dir

    cfg = load_config(config_path)
    rows = stage_rows(stage_dir(cfg.out, "speech"))
    run_stage(scripted_stage(cfg, rows), cfg, cfg.out)


if __name__ == "__main__":
    import sys

    run_gates(sys.argv[1])
