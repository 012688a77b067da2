"""DNSMOS P.835 (sig/bak/ovrl) and P.808 scores from the ONNX models inside the `speechmos` wheel.

The same numbers as `speechmos.dnsmos.run(x, sr=16000)` (model_type "dnsmos", not personalized), faster:
sessions load once, each distinct window is scored once, and since ~97% of P.835's work is convolutions
whose output at a frame depends only on nearby frames, those run once over a clip's span of overlapping
9.01 s windows (see `dnsmos_split`); P.808's mel spectrogram likewise. Clips run in `workers` threads.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from voxemoset.audio import OUT_RATE
from voxemoset.models import dnsmos_split as split
from voxemoset.models.devices import CPU_PROVIDER as CPU

log = logging.getLogger(__name__)

SR = OUT_RATE  # the P.835 model's input rate; the window and hop arithmetic below is in these samples
WINDOW_S = 9.01
WINDOW_LEN = int(WINDOW_S * SR)  # 144160 samples, the P.835 model's fixed input
N_FFT, HOP, N_MELS = 321, 160, 120  # speechmos's audio_melspec: frame_size + 1, hop, mels
MEL_LEN = WINDOW_LEN - HOP  # speechmos drops the last 160 samples before the mel: 900 frames
MEL_FRAMES = 900
# speechmos's np.poly1d fits for model_type="dnsmos" (highest power first), applied per window.
POLY_SIG = np.poly1d([-0.08397278, 1.22083953, 0.0052439])
POLY_BAK = np.poly1d([-0.13166888, 1.60915514, -0.39604546])
POLY_OVRL = np.poly1d([-0.06766283, 1.11546468, 0.04602535])


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
        # librosa builds the basis in float32 and multiplies it with the power spectrum. Each band
        # covers a few bins (~2% of the matrix is non-zero): a sparse product is 2x faster than BLAS,
        # and it stays on this thread, where a threaded BLAS stalls badly on a busy machine.
        import scipy.sparse

        basis = librosa.filters.mel(sr=SR, n_fft=N_FFT, n_mels=N_MELS).astype(np.float64)
        self.basis_t = scipy.sparse.csc_array(basis.T)  # [161, 120]

    def __call__(self, segments: np.ndarray) -> np.ndarray:
        """[B, MEL_LEN] audio -> [B, 900, 120] float32 features, (power_to_db(ref=max) + 40) / 40."""
        return self.features(self.power(segments))

    def power(self, segments: np.ndarray) -> np.ndarray:
        """[..., L] audio -> [..., L // 160 + 1, 120] float64 mel power, centred frames every 160 samples."""
        pad = N_FFT // 2  # center=True with zero padding (librosa >= 0.10 pad_mode="constant")
        widths = [(0, 0)] * (segments.ndim - 1) + [(pad, pad)]
        padded = np.pad(segments.astype(np.float64, copy=False), widths)
        return self.frame_power(np.lib.stride_tricks.sliding_window_view(padded, N_FFT, axis=-1)[..., ::HOP, :])

    def frame_power(self, frames: np.ndarray) -> np.ndarray:
        """[..., 321] frames -> [..., 120] mel power."""
        spec = np.fft.rfft(frames * self.window, axis=-1)
        power = (spec.real**2 + spec.imag**2).reshape(-1, spec.shape[-1])
        return np.asarray(power @ self.basis_t).reshape(*spec.shape[:-1], N_MELS)

    @staticmethod
    def features(mel: np.ndarray) -> np.ndarray:
        """[B, 900, 120] mel power of windows -> float32 (power_to_db(ref=max, top_db=80) + 40) / 40."""
        db = 10.0 * np.log10(np.maximum(mel, 1e-10))
        db -= 10.0 * np.log10(np.maximum(mel.max(axis=(1, 2), keepdims=True), 1e-10))
        db = np.maximum(db, db.max(axis=(1, 2), keepdims=True) - 80.0)  # top_db=80
        return ((db + 40.0) / 40.0).astype(np.float32)

    def span_windows(self, audio: np.ndarray, starts: Sequence[int]) -> np.ndarray:
        """Features of the windows at starts (sample offsets in audio, multiples of 160), from one pass.

        A window's mel frame j is the span's frame (start / 160 + j), except frames 0 and 899, which
        see the window's own zero padding (center=True): those two are recomputed per window.
        """
        lo, hi = starts[0], starts[-1] + MEL_LEN
        mel = self.power(audio[lo:hi])
        out = np.stack([mel[(s - lo) // HOP : (s - lo) // HOP + MEL_FRAMES] for s in starts])
        pad = N_FFT // 2
        edges = np.zeros((len(starts), 2, N_FFT))
        for i, s in enumerate(starts):
            edges[i, 0, pad:] = audio[s : s + N_FFT - pad]
            edges[i, 1, : N_FFT - 1] = audio[s + MEL_LEN - (N_FFT - 1) : s + MEL_LEN]
        edge_power = self.frame_power(edges)
        out[:, 0], out[:, -1] = edge_power[:, 0], edge_power[:, 1]
        return self.features(out)


class DnsmosScorer:
    """DNSMOS for many clips at once: dicts of dnsmos_ovrl, dnsmos_sig, dnsmos_bak, dnsmos_p808."""

    def __init__(
        self,
        providers: Sequence[str] = (CPU,),
        intra_op_num_threads: int | None = None,
        batch_size: int = 1,
        split_model: bool = True,
        span_windows: int = 8,
        workers: int | None = None,
    ) -> None:
        """Load the ONNX sessions once.

        workers: clips scored at once, each in its own thread (None: 2 on a CPU with 2 or more cores,
        else 1). intra_op_num_threads: ONNX Runtime threads per run (None: the cores shared out
        among the workers; 0: ORT's default, one per core).
        split_model: run the P.835 model as trunk + mid once per span of up to span_windows
        overlapping windows, and its head per window (see `dnsmos_split`); needs the `onnx`
        package, else the whole model runs per window.
        batch_size: windows per run of the P.808 model (and of the whole P.835 model if not split).
        """
        # Measured on a shared 2-core VM: one window a run is fastest (a batch of 4 took ~1.8x as
        # long a window: the activations, ~14 MB a window in P.808, ~120 MB in the whole P.835,
        # leave the cache); and two single-threaded workers scored ~1.7x the clips/s of one worker
        # with ORT's default two threads (load average ~1.5 and ~4 alike): ORT's two threads gained
        # speechmos only 1.16x over one. On a GPU, raise batch_size.
        import onnxruntime as ort

        available = set(ort.get_available_providers())
        chosen = [p for p in providers if p in available]
        if missing := [p for p in providers if p not in available]:
            log.warning("DNSMOS: providers %s not available here (have %s)", missing, sorted(available))
        if CPU not in chosen:
            chosen.append(CPU)  # ORT places nodes a GPU provider cannot run on the CPU
        cores = os.cpu_count() or 1
        if workers is None:
            workers = 2 if cores >= 2 and chosen == [CPU] else 1
        self.workers = max(1, workers)
        if intra_op_num_threads is None:
            intra_op_num_threads = max(1, cores // self.workers)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra_op_num_threads
        self.intra_op_num_threads = intra_op_num_threads
        folder = model_dir()
        if split_model:
            try:
                parts = split.split_p835(folder / "sig_bak_ovr.onnx")
            except ImportError:
                log.warning("DNSMOS: the onnx package is missing; running the whole P.835 model per window")
                split_model = False
        self.split_model = split_model
        self.span_windows = max(1, span_windows)
        if split_model:
            self.trunk, self.mid, self.head = (ort.InferenceSession(m, opts, providers=chosen) for m in parts)
            self.p835 = None
            self.providers = self.trunk.get_providers()
        else:
            self.p835 = ort.InferenceSession(str(folder / "sig_bak_ovr.onnx"), opts, providers=chosen)
            self.providers = self.p835.get_providers()
        self.p808 = ort.InferenceSession(str(folder / "model_v8.onnx"), opts, providers=chosen)
        self.batch_size = max(1, batch_size)
        self.mel = MelFeatures()
        self._pool = None

    def score(self, clips: Sequence[np.ndarray], sr: int = SR) -> list[dict[str, float]]:
        """Score mono clips in [-1, 1] at sample rate sr (resampled to 16 kHz with soxr if needed)."""
        prepared = [self._prepare(clip, sr, c) for c, clip in enumerate(clips)]  # check all first
        if self.workers == 1 or len(prepared) < 2:
            return [self._score_clip(x) for x in prepared]
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            # ONNX Runtime and numpy's FFT release the GIL; the sessions are safe to share.
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="dnsmos")
        return list(self._pool.map(self._score_clip, prepared))

    def _score_clip(self, x: np.ndarray) -> dict[str, float]:
        """speechmos's scores of one prepared 16 kHz clip."""
        y = tile(x)
        # A tiled clip is periodic in len(x): windows whose starts differ by a multiple of it are
        # equal, so score the first of each (its start stays a multiple of 16000: one frame grid).
        starts = window_starts(len(y))
        keys = [s % len(x) if len(y) > len(x) else s for s in starts]
        index: dict[int, int] = {}  # key -> position among the distinct windows
        distinct: list[int] = []
        for s, key in zip(starts, keys, strict=True):
            if key not in index:
                index[key] = len(distinct)
                distinct.append(s)
        raw, p808 = [], []
        for group in self._spans(distinct):
            raw.extend(self._p835_span(y, group))
            features = self.mel.span_windows(y, group)
            for lo in range(0, len(features), self.batch_size):
                p808.extend(self.p808.run(None, {"input_1": features[lo : lo + self.batch_size]})[0][:, 0])
        k = [index[key] for key in keys]
        raw_a = np.asarray(raw, dtype=np.float64)[k]
        # speechmos maps every window through the polynomials, then averages over windows.
        return {
            "dnsmos_ovrl": float(np.mean(POLY_OVRL(raw_a[:, 2]))),
            "dnsmos_sig": float(np.mean(POLY_SIG(raw_a[:, 0]))),
            "dnsmos_bak": float(np.mean(POLY_BAK(raw_a[:, 1]))),
            "dnsmos_p808": float(np.mean(np.asarray(p808, dtype=np.float32)[k])),
        }

    def _spans(self, starts: list[int]) -> list[list[int]]:
        """Consecutive starts split into runs of overlapping windows, at most span_windows each."""
        groups: list[list[int]] = []
        for s in starts:
            g = groups[-1] if groups else None
            if g and s > g[-1] and s - g[-1] < WINDOW_LEN and len(g) < self.span_windows:
                g.append(s)
            else:
                groups.append([s])
        return groups

    def _p835_span(self, y: np.ndarray, starts: list[int]) -> list[np.ndarray]:
        """Raw P.835 outputs [sig, bak, ovrl] of the windows of y at starts (increasing, one run)."""
        if self.p835 is not None:
            out = []
            for lo in range(0, len(starts), self.batch_size):
                audio = np.stack([y[s : s + WINDOW_LEN] for s in starts[lo : lo + self.batch_size]])
                out.extend(self.p835.run(None, {"input_1": audio.astype(np.float32)})[0])
            return out
        first, last = starts[0], starts[-1]
        run = lambda sess, x: sess.run(None, {sess.get_inputs()[0].name: x})[0]  # noqa: E731
        full = run(self.trunk, y[first : last + WINDOW_LEN].astype(np.float32)[None])  # [1, 32, F, 161]
        mid = run(self.mid, full)[0]  # [32, F / 4, 40]
        # Per window, the trunk frames next to its own zero padding: the first 4 from its first
        # 1440 samples, the last 4 from its last 1440; then the mid frames those (and the padding)
        # reach, from the window's first and last 24 trunk frames. The span's own ends (its first
        # window's start, its last window's end) already are the window's: a lone window needs none.
        e, n4, chunk, m3 = split.EDGE_SAMPLES, split.EDGE, split.MID_CHUNK, split.MID_EDGE
        inner = [(i, s, side) for i, s in enumerate(starts) for side in (0, 1) if s != (first, last)[side]]
        if not inner:
            return list(run(self.head, mid[None]))
        pieces = [y[s : s + e] if side == 0 else y[s + WINDOW_LEN - e : s + WINDOW_LEN] for _, s, side in inner]
        edges = run(self.trunk, np.stack(pieces).astype(np.float32))  # [k, 32, 8, 161]
        chunks = []
        for k, (_, s, side) in enumerate(inner):
            f0 = (s - first) // HOP + (0 if side == 0 else split.FRAMES - chunk)
            piece = full[0, :, f0 : f0 + chunk].copy()
            if side == 0:
                piece[:, :n4] = edges[k, :, :n4]
            else:
                piece[:, -n4:] = edges[k, :, -n4:]
            chunks.append(piece)
        ends = run(self.mid, np.stack(chunks))  # [k, 32, 6, 40]
        q = split.QUARTERS
        windows = np.stack([mid[:, (s - first) // (4 * HOP) : (s - first) // (4 * HOP) + q] for s in starts])
        for k, (i, _, side) in enumerate(inner):
            if side == 0:
                windows[i, :, :m3] = ends[k, :, :m3]
            else:
                windows[i, :, -m3:] = ends[k, :, -m3:]
        return list(run(self.head, windows))

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
