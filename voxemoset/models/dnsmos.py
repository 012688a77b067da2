"""DNSMOS P.835 (sig/bak/ovrl) and P.808 scores from the ONNX models inside the `speechmos` wheel.

Gives the same numbers as `speechmos.dnsmos.run(x, sr=16000)` (model_type "dnsmos", not personalized)
but loads the two sessions once, scores windows of many clips in one ONNX run, computes the P.808 mel
features for all windows in one vectorised numpy pass (librosa's filterbank, built once) and scores
each distinct window only once (a short clip tiled to 9.01 s often repeats windows).
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SR = 16000
WINDOW_S = 9.01
WINDOW_LEN = int(WINDOW_S * SR)  # 144160 samples, the P.835 model's fixed input
N_FFT, HOP, N_MELS = 321, 160, 120  # speechmos's audio_melspec: frame_size + 1, hop, mels
MEL_LEN = WINDOW_LEN - HOP  # speechmos drops the last 160 samples before the mel: 900 frames
# speechmos's np.poly1d fits for model_type="dnsmos" (highest power first), applied per window.
POLY_SIG = np.poly1d([-0.08397278, 1.22083953, 0.0052439])
POLY_BAK = np.poly1d([-0.13166888, 1.60915514, -0.39604546])
POLY_OVRL = np.poly1d([-0.06766283, 1.11546468, 0.04602535])
CPU = "CPUExecutionProvider"


def model_dir() -> Path:
    """Folder of the DNSMOS ONNX files in the installed speechmos (found without importing it)."""
    spec = importlib.util.find_spec("speechmos")
    if spec is None or spec.origin is None:
        raise ImportError("speechmos is not installed; it ships the DNSMOS ONNX models")
    return Path(spec.origin).parent / "dnsmos_models"


def window_starts(n_samples: int) -> list[int]:
    """Start samples of the windows speechmos scores in a (tiled) clip of n_samples."""
    # Same float arithmetic as speechmos: int((idx + 9.01) * 16000) falls one sample short for some
    # idx (7..23 among others), and speechmos silently skips those windows; we must skip the same.
    num_hops = int(np.floor(n_samples / SR) - WINDOW_S) + 1
    starts = []
    for idx in range(num_hops):
        start, end = int(idx * SR), min(int((idx + WINDOW_S) * SR), n_samples)
        if end - start >= WINDOW_LEN:
            starts.append(start)
    return starts


def tile(x: np.ndarray) -> np.ndarray:
    """Double the clip until it holds one window, as speechmos does (np.append(x, x) in a loop)."""
    reps = 1
    while len(x) * reps < WINDOW_LEN:
        reps *= 2
    return np.tile(x, reps) if reps > 1 else x


class MelFeatures:
    """librosa's melspectrogram + power_to_db(ref=np.max) of speechmos, batched over windows."""

    def __init__(self) -> None:
        import librosa

        # Periodic Hann (scipy get_window fftbins=True, librosa's default) and the Slaney filterbank.
        n = np.arange(N_FFT)
        self.window = 0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)
        # librosa builds the basis in float32 and multiplies it with the power spectrum.
        self.basis_t = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS).astype(np.float64).T

    def __call__(self, segments: np.ndarray) -> np.ndarray:
        """[B, MEL_LEN] audio -> [B, 900, 120] float32 features, (power_to_db(ref=max) + 40) / 40."""
        pad = N_FFT // 2  # center=True with zero padding (librosa >= 0.10 pad_mode="constant")
        padded = np.pad(segments.astype(np.float64, copy=False), ((0, 0), (pad, pad)))
        frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT, axis=-1)[:, ::HOP]
        spec = np.fft.rfft(frames * self.window, axis=-1)
        mel = (spec.real**2 + spec.imag**2) @ self.basis_t
        db = 10.0 * np.log10(np.maximum(mel, 1e-10))
        db -= 10.0 * np.log10(np.maximum(mel.max(axis=(1, 2), keepdims=True), 1e-10))
        db = np.maximum(db, db.max(axis=(1, 2), keepdims=True) - 80.0)  # top_db=80
        return ((db + 40.0) / 40.0).astype(np.float32)


class DnsmosScorer:
    """DNSMOS for many clips at once: dicts of dnsmos_ovrl, dnsmos_sig, dnsmos_bak, dnsmos_p808."""

    def __init__(
        self,
        providers: Sequence[str] = (CPU,),
        intra_op_num_threads: int = 0,
        batch_size: int = 4,
    ) -> None:
        """Load both ONNX sessions once; batch_size windows go through each run."""
        # On the CPU a bigger batch gains nothing measurable (~90 ms a window at 1, 8 or 32) and costs
        # ~120 MB of activations a window; raise it on a GPU.
        import onnxruntime as ort

        available = set(ort.get_available_providers())
        chosen = [p for p in providers if p in available]
        if missing := [p for p in providers if p not in available]:
            log.warning("DNSMOS: providers %s not available here (have %s)", missing, sorted(available))
        if CPU not in chosen:
            chosen.append(CPU)  # ORT places nodes a GPU provider cannot run on the CPU
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra_op_num_threads  # 0: ORT's default, one per core
        folder = model_dir()
        self.p835 = ort.InferenceSession(str(folder / "sig_bak_ovr.onnx"), opts, providers=chosen)
        self.p808 = ort.InferenceSession(str(folder / "model_v8.onnx"), opts, providers=chosen)
        self.providers = self.p835.get_providers()
        self.batch_size = batch_size
        self.mel = MelFeatures()

    def score(self, clips: Sequence[np.ndarray], sr: int = SR) -> list[dict[str, float]]:
        """Score mono clips in [-1, 1] at sample rate sr (resampled to 16 kHz with soxr if needed)."""
        tiled, keys = [], []  # keys[c]: the distinct-window index of each window speechmos scores
        distinct: dict[tuple[int, int], int] = {}
        for c, clip in enumerate(clips):
            x = self._prepare(clip, sr, c)
            y = tile(x)
            tiled.append(y)
            # A tiled clip is periodic in len(x), so the window at s equals the one at s % len(x).
            starts = [s % len(x) for s in window_starts(len(y))] if len(y) > len(x) else window_starts(len(y))
            keys.append([distinct.setdefault((c, s), len(distinct)) for s in starts])
        windows = list(distinct)
        raw = np.empty((len(windows), 3), dtype=np.float64)
        p808 = np.empty(len(windows), dtype=np.float32)
        for lo in range(0, len(windows), self.batch_size):
            batch = windows[lo : lo + self.batch_size]
            audio = np.stack([tiled[c][s : s + WINDOW_LEN] for c, s in batch])
            raw[lo : lo + len(batch)] = self.p835.run(None, {"input_1": audio.astype(np.float32)})[0]
            mel = self.mel(audio[:, :MEL_LEN])
            p808[lo : lo + len(batch)] = self.p808.run(None, {"input_1": mel})[0][:, 0]
        # speechmos maps every window through the polynomials, then averages over windows.
        sig, bak, ovrl = POLY_SIG(raw[:, 0]), POLY_BAK(raw[:, 1]), POLY_OVRL(raw[:, 2])
        return [
            {
                "dnsmos_ovrl": float(np.mean(ovrl[k])),
                "dnsmos_sig": float(np.mean(sig[k])),
                "dnsmos_bak": float(np.mean(bak[k])),
                "dnsmos_p808": float(np.mean(p808[k])),
            }
            for k in keys
        ]

    @staticmethod
    def _prepare(clip: np.ndarray, sr: int, index: int) -> np.ndarray:
        """Check one clip and bring it to 16 kHz."""
        x = np.asarray(clip)
        if x.ndim != 1 or len(x) == 0:
            raise ValueError(f"clip {index}: need a non-empty mono 1-D array, got shape {x.shape}")
        if sr != SR:
            import soxr

            # Resampling can overshoot a full-scale clip a little: that is ours to fix, not the caller's.
            x = np.clip(soxr.resample(x.astype(np.float32, copy=False), sr, SR), -1.0, 1.0)
        # speechmos refuses samples outside [-1, 1] (NaN included); so do we, rather than clip silently.
        if not ((x >= -1).all() and (x <= 1).all()):
            raise ValueError(f"clip {index}: samples must lie in [-1, 1]")
        return x
