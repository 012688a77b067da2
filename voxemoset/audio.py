"""Audio helpers every part shares: read any clip, the named sample rates, resampling, FLAC, levels, signal checks.

Reading: float32 mono at the file's native rate, soundfile for wav/flac, ffmpeg for the rest.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from voxemoset.config import SignalConfig
from voxemoset.errors import UserError

TTS_RATE = 24000  # F5-TTS's mel rate: references are prepared at it, synthesis comes out at it
OUT_RATE = 16000  # what is stored, published and scored (emotion2vec, DNSMOS, Whisper)

_SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif"}
# Placeholder sizes that streaming writers (espeak-ng --stdout, ffmpeg to a pipe) leave in a RIFF
# header when they cannot seek back: not a truncation.
_UNKNOWN_SIZES = {0, 0x7FFFF000, 0x7FFFFFFF, 0xFFFFFFFF}
# Frames per soundfile read: memory follows the audio actually decoded, not the frame count a header claims.
_BLOCK_FRAMES = 1 << 16
# A clip decodes in well under a second; a decoder stuck on corrupt bytes must not hold a shard forever.
FFMPEG_TIMEOUT_S = 120


class AudioReadError(Exception):
    """A clip that cannot be decoded (unreadable, truncated or empty); `reason` is a short phrase."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


def load_audio(path: str | Path) -> tuple[np.ndarray, int]:
    """(samples, sample_rate): float32 mono (channels averaged) at the file's own sample rate."""
    path = Path(path)
    if not path.is_file():
        raise AudioReadError(path, "file not found")
    if path.stat().st_size == 0:
        raise AudioReadError(path, "empty file (0 bytes)")
    if path.suffix.lower() in _SOUNDFILE_SUFFIXES:
        if path.suffix.lower() == ".wav":
            _check_wav_complete(path)
        try:
            data, rate = _read_soundfile(path)
        except Exception as exc:  # noqa: BLE001 - whatever libsndfile makes of the bytes is this clip's problem
            first_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if path.suffix.lower() == ".flac":
                # libsndfile decodes every FLAC (it is libFLAC): an error is the file's, ffmpeg would only agree.
                raise AudioReadError(path, f"unreadable: {first_error}") from None
            # libsndfile lacks some codecs (e.g. wav holding MP3 or A-law variants): let ffmpeg try.
            data, rate = _read_ffmpeg(path, first_error=first_error)
    else:
        data, rate = _read_ffmpeg(path)
    if data.shape[0] == 0:
        raise AudioReadError(path, "no audio samples")
    if rate <= 0:
        raise AudioReadError(path, f"unreadable: sample rate {rate}")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(mono, dtype=np.float32), int(rate)


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    """Decode with libsndfile block by block until it stops (a FLAC header may claim 2**36 frames)."""
    with sf.SoundFile(str(path)) as fh:
        blocks = [np.zeros((0, fh.channels), dtype=np.float32)]
        while (block := fh.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)).shape[0]:
            blocks.append(block)
        return np.concatenate(blocks), fh.samplerate


def _check_wav_complete(path: Path) -> None:
    """Raise if the RIFF header promises more audio than the file holds (libsndfile reads it silently)."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return  # not plain RIFF/WAVE (e.g. RF64): leave it to the decoders
        fmt = "<I" if head[:4] == b"RIFF" else ">I"
        pos = 12
        while pos + 8 <= size:
            fh.seek(pos)
            chunk = fh.read(8)
            (length,) = struct.unpack(fmt, chunk[4:8])
            if chunk[:4] == b"data":
                if length not in _UNKNOWN_SIZES and pos + 8 + length > size:
                    have = size - pos - 8
                    raise AudioReadError(path, f"truncated: header says {length} bytes of audio, file has {have}")
                return
            pos += 8 + length + (length & 1)  # chunks are padded to even sizes
    raise AudioReadError(path, "truncated: no data chunk")


def _ffmpeg(tool: str) -> str:
    exe = shutil.which(tool)
    if exe is None:
        raise UserError(f"{tool} not found on PATH: install ffmpeg (e.g. apt-get install ffmpeg) to read m4a audio")
    return exe


def _read_ffmpeg(path: Path, first_error: str = "") -> tuple[np.ndarray, int]:
    """Decode with one ffmpeg call to float32 WAV on stdout, whose header carries the native rate and channels."""
    # -xerror: a cut-off file whose index sits at the front decodes partway and would otherwise pass
    cmd = [_ffmpeg("ffmpeg"), "-nostdin", "-v", "error", "-xerror", "-i", str(path), "-map", "0:a:0",
           "-map_metadata", "-1", "-fflags", "+bitexact", "-f", "wav", "-acodec", "pcm_f32le", "-"]  # fmt: skip
    try:
        decode = subprocess.run(cmd, capture_output=True, check=False, timeout=FFMPEG_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise AudioReadError(path, f"unreadable: ffmpeg still decoding after {FFMPEG_TIMEOUT_S} s") from None
    if decode.returncode != 0:
        why = _last_line(decode.stderr.decode(errors="replace")).removeprefix(f"{path}: ")
        raise AudioReadError(path, f"unreadable: {why or first_error or 'no audio stream'}")
    channels, rate, samples = _parse_float_wav(decode.stdout)
    if channels < 1 or samples.size % channels:
        raise AudioReadError(path, f"decoded {samples.size} samples, not a multiple of {channels} channels")
    return samples.reshape(-1, channels), rate


def _parse_float_wav(data: bytes) -> tuple[int, int, np.ndarray]:
    """(channels, rate, interleaved samples) of ffmpeg's float WAV; its data size is unknown on a pipe."""
    channels = rate = 0
    pos = 12 if data[:4] == b"RIFF" and data[8:12] == b"WAVE" else len(data)
    while pos + 8 <= len(data):
        chunk, (length,) = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])
        if chunk == b"fmt " and length >= 16:
            channels, rate = struct.unpack("<HI", data[pos + 10 : pos + 16])
        elif chunk == b"data":
            body = data[pos + 8 :]
            return channels, rate, np.frombuffer(body[: len(body) - len(body) % 4], dtype="<f4")
        pos += 8 + length + (length & 1)
    return channels, rate, np.zeros(0, dtype="<f4")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def resample(x: np.ndarray, sr: int, rate: int) -> np.ndarray:
    """`x` at `rate` as float32 (soxr), or `x` itself when it is already there."""
    return x if sr == rate else soxr.resample(x, sr, rate).astype(np.float32)


def to_out_rate(wave: np.ndarray, rate: int) -> np.ndarray:
    """`wave` resampled from `rate` to OUT_RATE, clipped to [-1, 1], float32."""
    return np.clip(soxr.resample(wave, rate, OUT_RATE), -1.0, 1.0).astype(np.float32)


def encode_flac(x: np.ndarray, sr: int) -> bytes:
    """16-bit FLAC bytes (lossless for what F5 and datasets' Audio read)."""
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def audio_cell(name: str, clip: np.ndarray) -> dict:
    """A stored utterance's `audio` cell: its 16 kHz clip as FLAC bytes, and `<name>.flac` as its path."""
    return {"bytes": encode_flac(clip, OUT_RATE), "path": f"{name}.flac"}


def decode_audio_bytes(data: bytes) -> tuple[np.ndarray, int]:
    """float32 mono samples and rate from encoded bytes (FLAC/WAV)."""
    x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return x.mean(axis=1), sr


def decode_at_rate(data: bytes, rate: int) -> np.ndarray:
    """Encoded audio bytes as float32 mono samples at `rate` (resampled only when stored at another rate)."""
    x, sr = decode_audio_bytes(data)
    return resample(x, sr, rate)


def dbfs(x: np.ndarray) -> float:
    """RMS level in dB relative to full scale (-inf for digital silence)."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return 20 * np.log10(rms) if rms > 0 else float("-inf")


def check_signal(x: np.ndarray, sr: int, cfg: SignalConfig) -> str | None:
    """None if the clip is usable, else a reason: not_finite, silent, clipped, too_short, too_long.

    Run before any model scores a clip: digital silence scores DNSMOS 1.84, above noise.
    """
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
