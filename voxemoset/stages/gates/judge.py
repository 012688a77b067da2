"""Judge synthesis attempts: signal checks, then emotion, DNSMOS and intelligibility; the first failing gate names why.

Scoring (the models: costly, fixed by model and clip) and the verdict (the thresholds: cheap) are apart: an attempt's
`Scores` are stored once, and a verdict is a function of them and the thresholds, so a threshold change re-judges
stored scores instead of running a model again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

import numpy as np

from voxemoset.audio import OUT_RATE, check_signal
from voxemoset.config import GatesConfig
from voxemoset.models.emotion2vec import top_emotion
from voxemoset.models.protocols import EmotionScorer, QualityScorer, Transcriber
from voxemoset.models.synthesis import SynthesisFailure
from voxemoset.rows import SCORE_FIELDS
from voxemoset.stages.gates.intelligibility import word_error_rate


@dataclass
class GateModels:
    """What judging needs: emotion scorer, DNSMOS scorer, optional transcriber."""

    emotion: EmotionScorer
    quality: QualityScorer
    asr: Transcriber | None


@dataclass(frozen=True)
class Scores:
    """What the signal checks and the models said of one attempt's clip; the model fields stay None for a clip that
    failed a signal check or was never made (then `signal` says why, and `synthesis_error` how synthesis failed)."""

    signal: str | None = None
    synthesis_error: str | None = None
    emo_pred: str | None = None
    emo_conf: float | None = None
    emo_target_conf: float | None = None
    emo_scores: str | None = None  # every class's probability, JSON
    dnsmos_ovrl: float | None = None
    dnsmos_sig: float | None = None
    dnsmos_bak: float | None = None
    dnsmos_p808: float | None = None
    asr_text: str | None = None
    wer: float | None = None


SCORE_ATTRS = tuple(f.name for f in fields(Scores))
assert SCORE_ATTRS[2:] == tuple(name for name, _ in SCORE_FIELDS), "Scores holds the gates' stored score columns"


def score(
    heard: list[tuple[str, str]], clips: list[np.ndarray | SynthesisFailure], models: GateModels, cfg: GatesConfig
) -> tuple[list[Scores], int]:
    """The scores of each clip, spoken as `(intended emotion, caption)`, and how many clips the models scored (those
    made and past the signal checks)."""
    signals = [
        (x.reason, x.detail) if isinstance(x, SynthesisFailure) else (check_signal(x, OUT_RATE, cfg.signal), None)
        for x in clips
    ]
    out = [Scores(signal=s, synthesis_error=e) for s, e in signals]
    ok = [i for i, (s, _) in enumerate(signals) if s is None]
    usable = [clips[i] for i in ok]
    emo = models.emotion.score(usable) if ok else []
    quality = models.quality.score(usable) if ok else []
    texts = models.asr.transcribe(usable) if models.asr and ok else [None] * len(ok)
    for i, probs, q, text in zip(ok, emo, quality, texts, strict=True):
        emotion, caption = heard[i]
        pred, conf = top_emotion(probs)
        out[i] = Scores(
            emo_pred=pred,
            emo_conf=conf,
            emo_target_conf=probs.get(emotion, 0.0),
            emo_scores=json.dumps({k: round(v, 5) for k, v in probs.items()}, sort_keys=True),
            # Four decimals: far finer than DNSMOS's own precision, and coarse enough that ONNX Runtime's
            # thread-order float noise (~1e-7) does not change the stored dataset between runs.
            **{k: round(float(v), 4) for k, v in q.items()},
            asr_text=text,
            wer=word_error_rate(caption, text) if text is not None else None,
        )
    return out, len(ok)


def verdict(s: Scores, emotion: str, cfg: GatesConfig) -> str | None:
    """Why an attempt with scores `s`, meant to carry `emotion`, fails under `cfg`'s thresholds: the first failing
    gate, or None when it passes."""
    if s.synthesis_error is not None:
        return s.signal
    if s.signal is not None:
        return f"signal_{s.signal}"
    if cfg.require_emotion and s.emo_pred != emotion:
        return "emotion_mismatch"
    if cfg.require_emotion and s.emo_conf < cfg.min_emotion_conf:
        return "emotion_low_confidence"
    if cfg.min_dnsmos_ovrl is not None and (s.dnsmos_ovrl or 0.0) < cfg.min_dnsmos_ovrl:
        return "dnsmos_low"
    if cfg.max_wer is not None and s.wer is not None and s.wer > cfg.max_wer:
        return "wer_high"
    return None
