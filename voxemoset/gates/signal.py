"""Signal checks run before any model scores a clip (digital silence scores DNSMOS 1.84, above noise)."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from voxemoset.speech.prep import dbfs


class SignalConfig(BaseModel):
    """Bounds a synthesised clip must meet."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_dbfs: float = Field(-45.0, description="quieter RMS fails as silent / too quiet")
    clip_level: float = Field(0.999, gt=0, le=1)
    max_clipped_fraction: float = Field(0.001, ge=0)
    min_s: float = Field(0.5, gt=0)
    max_s: float = Field(30.0, gt=0)


def check_signal(x: np.ndarray, sr: int, cfg: SignalConfig) -> str | None:
    """None if the clip is usable, else a reason: not_finite, silent, clipped, too_short, too_long."""
    x = np.asarray(x)
    if x.size == 0 or not np.isfinite(x).all():
        return "not_finite" if x.size else "too_short"
    duration = x.size / sr
    if duration < cfg.min_s:
        return "too_short"
    if duration > cfg.max_s:
        return "too_long"
    if dbfs(x) < cfg.min_dbfs:
        return "silent"
    if float(np.mean(np.abs(x) >= cfg.clip_level)) > cfg.max_clipped_fraction:
        return "clipped"
    return None
