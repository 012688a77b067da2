"""Judge synthesis attempts: signal checks, then emotion, DNSMOS and intelligibility; the first failing gate names why."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from voxemoset.audio import OUT_RATE, check_signal
from voxemoset.config import GatesConfig
from voxemoset.models.emotion2vec import top_emotion
from voxemoset.models.protocols import EmotionScorer, QualityScorer, Transcriber
from voxemoset.models.synthesis import SynthesisFailure
from voxemoset.stages.gates.intelligibility import word_error_rate


@dataclass
class GateModels:
    """What judging needs: emotion scorer, DNSMOS scorer, optional transcriber."""

    emotion: EmotionScorer
    quality: QualityScorer
    asr: Transcriber | None


def _sortable_best(a: dict) -> tuple:
    return (a["signal"] is None, a.get("emo_target_conf") or 0.0, a.get("dnsmos_ovrl") or 0.0, -a["attempt"])


def best_attempt(attempts: list[dict]) -> dict:
    """The passing attempt if any, else the most convincing failure (signal ok, intended emotion, quality)."""
    passed = [a for a in attempts if a["passed"]]
    return passed[0] if passed else max(attempts, key=_sortable_best)


def judge(
    candidates: list[dict], clips: list[np.ndarray | SynthesisFailure], models: GateModels, cfg: GatesConfig
) -> list[dict]:
    """Score candidates (dicts with id, attempt, emotion, caption) and decide pass/fail with the first failing gate.

    A candidate whose synthesis failed is not scored: its `signal` and `fail_reason` are the failure's reason.
    """
    for c, x in zip(candidates, clips, strict=True):
        if isinstance(x, SynthesisFailure):
            # A non-None signal ranks it below every attempt that made a usable clip.
            c["signal"], c["synthesis_error"] = x.reason, x.detail
        else:
            c["signal"] = check_signal(x, OUT_RATE, cfg.signal)
    ok = [i for i, c in enumerate(candidates) if c["signal"] is None]
    heard = [clips[i] for i in ok]
    emo = models.emotion.score(heard) if ok else []
    quality = models.quality.score(heard) if ok else []
    texts = models.asr.transcribe(heard) if models.asr and ok else [None] * len(ok)
    for i, scores, q, text in zip(ok, emo, quality, texts, strict=True):
        c = candidates[i]
        c["emo_pred"], c["emo_conf"] = top_emotion(scores)
        c["emo_target_conf"] = scores.get(c["emotion"], 0.0)
        c["emo_scores"] = json.dumps({k: round(v, 5) for k, v in scores.items()}, sort_keys=True)
        # Four decimals: far finer than DNSMOS's own precision, and coarse enough that ONNX Runtime's
        # thread-order float noise (~1e-7) does not change the stored dataset between runs.
        c.update({k: round(float(v), 4) for k, v in q.items()})
        c["asr_text"] = text
        c["wer"] = word_error_rate(c["caption"], text) if text is not None else None
    for c, x in zip(candidates, clips, strict=True):
        c["fail_reason"] = x.reason if isinstance(x, SynthesisFailure) else _first_failure(c, cfg)
        c["passed"] = c["fail_reason"] is None
    return candidates


def _first_failure(c: dict, cfg: GatesConfig) -> str | None:
    if c["signal"] is not None:
        return f"signal_{c['signal']}"
    if cfg.require_emotion and c["emo_pred"] != c["emotion"]:
        return "emotion_mismatch"
    if cfg.require_emotion and c["emo_conf"] < cfg.min_emotion_conf:
        return "emotion_low_confidence"
    if cfg.min_dnsmos_ovrl is not None and c.get("dnsmos_ovrl", 0.0) < cfg.min_dnsmos_ovrl:
        return "dnsmos_low"
    if cfg.max_wer is not None and c["wer"] is not None and c["wer"] > cfg.max_wer:
        return "wer_high"
    return None
