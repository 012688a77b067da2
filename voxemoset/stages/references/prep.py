"""Prepare a reference clip for F5-TTS: checks, 24 kHz mono, silence trimmed, loudness normalised, bounded."""

from __future__ import annotations

import numpy as np

from voxemoset.audio import dbfs, resample
from voxemoset.config import PrepConfig

# Sanity bounds on a file's claimed sample rate, not a quality gate: a header mangled to 1 Hz would make
# resampling to 24 kHz allocate thousands of times the clip.
RATE_RANGE_HZ = (4000, 384000)


class AudioReject(Exception):
    """A clip that fails a check; `reason` is the rejects constant suffix (e.g. `silent`)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def trim_silence(x: np.ndarray, sr: int, top_db: float, pad_s: float) -> np.ndarray:
    """Cut leading and trailing frames quieter than the loudest frame minus `top_db`."""
    frame = max(1, int(0.02 * sr))
    n = len(x) // frame
    if n == 0:
        return x
    energy = np.sqrt(np.mean(np.square(x[: n * frame].reshape(n, frame), dtype=np.float64), axis=1))
    level = 20 * np.log10(np.maximum(energy, 1e-10))
    loud = np.flatnonzero(level >= level.max() - top_db)
    pad = int(pad_s * sr)
    start, end = max(0, loud[0] * frame - pad), min(len(x), (loud[-1] + 1) * frame + pad)
    return x[start:end]


def prepare_reference(x: np.ndarray, sr: int, cfg: PrepConfig) -> tuple[np.ndarray, dict]:
    """Checked, resampled, trimmed, normalised audio plus what was measured; AudioReject if unusable."""
    x = np.asarray(x, dtype=np.float32)
    if not RATE_RANGE_HZ[0] <= sr <= RATE_RANGE_HZ[1]:
        raise AudioReject("bad_sample_rate", f"{sr} Hz outside {RATE_RANGE_HZ[0]}-{RATE_RANGE_HZ[1]} Hz")
    if x.size == 0:
        raise AudioReject("empty", "no samples")
    if not np.isfinite(x).all():
        raise AudioReject("not_finite", "NaN or inf samples")
    clipped = float(np.mean(np.abs(x) >= cfg.clip_level))
    if clipped > cfg.max_clipped_fraction:
        raise AudioReject("clipped", f"{clipped:.2%} of samples at full scale")
    level = dbfs(x)
    if level < cfg.silence_dbfs:
        raise AudioReject("silent", f"RMS {level:.1f} dBFS")
    y = resample(x, sr, cfg.sample_rate)
    y = trim_silence(y, cfg.sample_rate, cfg.trim_top_db, cfg.trim_pad_s)
    duration = len(y) / cfg.sample_rate
    if duration < cfg.min_s:
        raise AudioReject("too_short", f"{duration:.2f} s after trimming")
    if duration > cfg.max_s:
        raise AudioReject("too_long", f"{duration:.2f} s")
    gain = 10 ** ((cfg.target_rms_dbfs - dbfs(y)) / 20)
    peak = float(np.max(np.abs(y))) * gain
    if peak > cfg.peak_limit:
        gain *= cfg.peak_limit / peak
    y = (y * gain).astype(np.float32)
    meta = {
        "duration_s": round(duration, 4),
        "input_rms_dbfs": round(level, 2),
        "gain_db": round(20 * np.log10(gain), 2),
    }
    return y, meta
