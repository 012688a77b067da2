"""Judge synthesis attempts and plan retries: new seed first, then another reference, up to a budget."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from voxemoset.audio import OUT_RATE, check_signal
from voxemoset.config import GatesConfig
from voxemoset.gates.intelligibility import word_error_rate
from voxemoset.models.emotion2vec import top_emotion


class Scorer(Protocol):
    """Emotion scores per clip; `ids` name (utterance, attempt) so tests can script sequences."""

    def score(self, clips: list[np.ndarray], ids: list[str] | None = None) -> list[dict[str, float]]: ...


@dataclass
class GateModels:
    """What judging needs: emotion scorer, DNSMOS scorer, optional transcriber."""

    emotion: Scorer
    quality: Any
    asr: Any | None


def retry_seed(base: int, utt_id: str, attempt: int) -> int:
    """The TTS seed of a retry, fixed by the utterance and attempt number."""
    return int(hashlib.sha256(f"{base}|{utt_id}|{attempt}".encode()).hexdigest()[:8], 16)


def retry_reference(utt: dict, attempt: int, pool: list[dict], cfg: GatesConfig) -> dict | None:
    """The reference for `attempt` (>= 2): the original while reseeding, then others of its emotion and split."""
    if attempt <= 1 + cfg.reseed_attempts:
        return None  # keep the original reference
    others = [r for r in pool if r["reference_id"] != utt["reference_id"]]
    if not others:
        return None
    others.sort(key=lambda r: hashlib.sha256(f"{cfg.seed}|{utt['id']}|{r['reference_id']}".encode()).hexdigest())
    return others[(attempt - 2 - cfg.reseed_attempts) % len(others)]


def _sortable_best(a: dict) -> tuple:
    return (a["signal"] is None, a.get("emo_target_conf") or 0.0, a.get("dnsmos_ovrl") or 0.0, -a["attempt"])


def best_attempt(attempts: list[dict]) -> dict:
    """The passing attempt if any, else the most convincing failure (signal ok, intended emotion, quality)."""
    passed = [a for a in attempts if a["passed"]]
    return passed[0] if passed else max(attempts, key=_sortable_best)


def judge(candidates: list[dict], clips: list[np.ndarray], models: GateModels, cfg: GatesConfig) -> list[dict]:
    """Score candidates (dicts with id, attempt, emotion, caption) and decide pass/fail with the first failing gate."""
    for c, x in zip(candidates, clips, strict=True):
        c["signal"] = check_signal(x, OUT_RATE, cfg.signal)
    ok = [i for i, c in enumerate(candidates) if c["signal"] is None]
    ids = [f"{candidates[i]['id']}#{candidates[i]['attempt']}" for i in ok]
    emo = models.emotion.score([clips[i] for i in ok], ids=ids)
    quality = models.quality.score([clips[i] for i in ok]) if ok else []
    texts = models.asr.transcribe([clips[i] for i in ok]) if models.asr and ok else [None] * len(ok)
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
    for c in candidates:
        c["fail_reason"] = _first_failure(c, cfg)
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
