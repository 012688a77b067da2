"""Prepare a reference clip for F5-TTS: checks, 24 kHz mono, silence trimmed, loudness normalised, bounded."""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
import soxr
from pydantic import BaseModel, ConfigDict, Field

# Sanity bounds on a file's claimed sample rate, not a quality gate: a header mangled to 1 Hz would make
# resampling to 24 kHz allocate thousands of times the clip.
RATE_RANGE_HZ = (4000, 384000)


class PrepConfig(BaseModel):
    """Limits and targets of reference preparation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sample_rate: int = Field(24000, description="F5-TTS's mel rate")
    min_s: float = Field(1.0, gt=0, description="shorter (after trimming) is rejected")
    max_s: float = Field(12.0, gt=0, description="longer is rejected: F5 clips references past ~12 s")
    trim_top_db: float = Field(35.0, gt=0, description="edges quieter than peak - this are trimmed")
    trim_pad_s: float = Field(0.05, ge=0, description="silence kept on each side after trimming")
    silence_dbfs: float = Field(-50.0, description="quieter RMS is rejected as silent")
    clip_level: float = Field(0.999, gt=0, le=1, description="|sample| at or above counts as clipped")
    max_clipped_fraction: float = Field(0.001, ge=0, description="more clipped samples is rejected")
    target_rms_dbfs: float = Field(-20.0, description="loudness after normalisation")
    peak_limit: float = Field(0.95, gt=0, le=1, description="peak after normalisation")


class AudioReject(Exception):
    """A clip that fails a check; `reason` is the rejects constant suffix (e.g. `silent`)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


def dbfs(x: np.ndarray) -> float:
    """RMS level in dB relative to full scale (-inf for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


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
    y = soxr.resample(x, sr, cfg.sample_rate).astype(np.float32) if sr != cfg.sample_rate else x
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


def encode_flac(x: np.ndarray, sr: int) -> bytes:
    """16-bit FLAC bytes (lossless for what F5 and datasets' Audio read)."""
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def decode_audio_bytes(data: bytes) -> tuple[np.ndarray, int]:
    """float32 mono samples and rate from encoded bytes (FLAC/WAV)."""
    x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return x.mean(axis=1), sr
