"""Read any source clip as float32 mono at its native rate: soundfile for wav/flac, ffmpeg for the rest."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from voxemoset.errors import UserError

_SOUNDFILE_SUFFIXES = {".wav", ".flac", ".ogg", ".aiff", ".aif"}
# Placeholder sizes that streaming writers (espeak-ng --stdout, ffmpeg to a pipe) leave in a RIFF
# header when they cannot seek back: not a truncation.
_UNKNOWN_SIZES = {0, 0x7FFFF000, 0x7FFFFFFF, 0xFFFFFFFF}


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
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            # libsndfile lacks some codecs (e.g. wav holding MP3 or A-law variants): let ffmpeg try.
            data, rate = _read_ffmpeg(path, first_error=str(exc).splitlines()[0] if str(exc) else "")
    else:
        data, rate = _read_ffmpeg(path)
    if data.shape[0] == 0:
        raise AudioReadError(path, "no audio samples")
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(mono, dtype=np.float32), int(rate)


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
    """Decode with ffprobe (rate, channels) + ffmpeg (interleaved float32 PCM), at the native rate."""
    probe = subprocess.run(
        [_ffmpeg("ffprobe"), "-v", "error", "-select_streams", "a:0", "-show_entries",
         "stream=sample_rate,channels", "-of", "json", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    streams = json.loads(probe.stdout or "{}").get("streams") if probe.returncode == 0 else None
    if not streams:
        why = _last_line(probe.stderr).removeprefix(f"{path}: ") or first_error or "no audio stream"
        raise AudioReadError(path, f"unreadable: {why}")
    rate, channels = int(streams[0]["sample_rate"]), int(streams[0]["channels"])
    # -xerror: a cut-off file whose index sits at the front decodes partway and would otherwise pass
    decode = subprocess.run(
        [_ffmpeg("ffmpeg"), "-nostdin", "-v", "error", "-xerror", "-i", str(path), "-map", "0:a:0",
         "-f", "f32le", "-acodec", "pcm_f32le", "-"],
        capture_output=True, check=False,
    )  # fmt: skip
    if decode.returncode != 0:
        why = _last_line(decode.stderr.decode(errors="replace")).removeprefix(f"{path}: ")
        raise AudioReadError(path, f"unreadable: {why}")
    samples = np.frombuffer(decode.stdout, dtype="<f4")
    if channels < 1 or samples.size % channels:
        raise AudioReadError(path, f"decoded {samples.size} samples, not a multiple of {channels} channels")
    return samples.reshape(-1, channels), rate


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""
