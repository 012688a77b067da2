"""DnsmosScorer against speechmos.dnsmos.run one clip at a time: same clips, same process.

    .venv/bin/python benchmarks/bench_dnsmos.py [--n 200]

Clips are 2-6 s of espeak-ng speech (varied sentences, voices, rates), cached as 16 kHz wavs in a
temp folder. Timing alternates between the two in chunks so that a busy machine slows both alike.
Writes benchmarks/results/dnsmos.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import onnxruntime
import soundfile as sf
import soxr

from voxemoset.models.dnsmos import SR, DnsmosScorer, tile, window_starts

FIELDS = {"dnsmos_ovrl": "ovrl_mos", "dnsmos_sig": "sig_mos", "dnsmos_bak": "bak_mos", "dnsmos_p808": "p808_mos"}
SUBJECTS = ["The old captain", "A quiet child", "My neighbour", "The tired doctor", "Our teacher", "A stranger"]
VERBS = ["painted", "forgot", "carried", "described", "found", "watched"]
OBJECTS = ["a red umbrella", "the broken clock", "seven yellow boats", "the last train home", "a letter"]
ENDINGS = ["before sunrise.", "near the harbour.", "without a word.", "in the pouring rain.", "again today."]
VOICES = ["en-us", "en-us+m3", "en-us+f2", "en", "en+m7", "en+f4"]


def _version(package: str) -> str | None:
    """Installed version of package, or None."""
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def make_clips(n: int, seed: int, cache: Path) -> list[np.ndarray]:
    """n clips of 2-6 s espeak-ng speech at 16 kHz, generated once into cache."""
    cache.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    clips = []
    for i in range(n):
        target = rng.uniform(2.0, 6.0)
        path = cache / f"clip-{seed:03d}-{i:05d}.wav"
        if not path.exists():
            pieces, total = [], 0
            while total < target * SR:  # short sentences get a second one
                text = " ".join(rng.choice(part) for part in (SUBJECTS, VERBS, OBJECTS, ENDINGS))
                voice, speed = rng.choice(VOICES), int(rng.integers(140, 200))
                raw = cache / "raw.wav"
                subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(raw), text], check=True)
                x, rate = sf.read(str(raw), dtype="float32")
                pieces.append(soxr.resample(x, rate, SR).astype(np.float32))
                total += len(pieces[-1])
            sf.write(str(path), np.concatenate(pieces)[: int(target * SR)], SR, subtype="FLOAT")
        # Resampled espeak output can overshoot full scale, which speechmos refuses.
        clips.append(np.clip(sf.read(str(path), dtype="float32")[0], -1.0, 1.0))
    return clips


def main() -> None:
    """Time both, compare the scores, print and write the result."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="number of clips")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk", type=int, default=20, help="clips per alternation between the two")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "voxemoset-bench-dnsmos")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "dnsmos.json")
    args = ap.parse_args()

    from speechmos import dnsmos

    clips = make_clips(args.n, args.seed, args.cache)
    t0 = time.perf_counter()
    scorer = DnsmosScorer()  # defaults: split P.835 model, 2 single-threaded workers on this 2-core CPU
    load_s = time.perf_counter() - t0
    scorer.score(clips[:1]), dnsmos.run(clips[0], sr=SR)  # warm up: sessions, librosa, arenas

    load_before = os.getloadavg()
    base_s = ours_s = 0.0
    base, ours = [], []
    for lo in range(0, len(clips), args.chunk):
        chunk = clips[lo : lo + args.chunk]
        t0 = time.perf_counter()
        base += [dnsmos.run(x, sr=SR) for x in chunk]
        t1 = time.perf_counter()
        ours += scorer.score(chunk)
        t2 = time.perf_counter()
        base_s, ours_s = base_s + t1 - t0, ours_s + t2 - t1
        print(f"{lo + len(chunk)}/{len(clips)}  baseline {base_s:.1f} s  ours {ours_s:.1f} s", flush=True)

    diff = {k: max(abs(o[k] - float(b[r])) for o, b in zip(ours, base, strict=True)) for k, r in FIELDS.items()}
    windows = [window_starts(len(tile(x))) for x in clips]
    distinct = sum(len({s % len(x) for s in w}) for x, w in zip(clips, windows, strict=True))
    # P.835 trunk work: speechmos runs 900 frames a window; the split model once over each span.
    span_frames = sum((w[-1] - w[0]) // 160 + 900 for w in windows)
    result = {
        "n_clips": len(clips),
        "audio_s": round(sum(len(x) for x in clips) / SR, 1),
        "windows": sum(len(w) for w in windows),
        "distinct_windows": distinct,
        "p835_trunk_frames": {"baseline": 900 * sum(len(w) for w in windows), "ours": span_frames},
        "baseline": {"what": "speechmos.dnsmos.run(x, sr=16000) per clip", "seconds": round(base_s, 2)},
        "ours": {"what": "DnsmosScorer().score(chunk)", "seconds": round(ours_s, 2)},
        "baseline_clips_per_s": round(len(clips) / base_s, 3),
        "ours_clips_per_s": round(len(clips) / ours_s, 3),
        "speedup": round(base_s / ours_s, 2),
        "max_abs_diff": diff,
        "scorer_load_s": round(load_s, 2),
        "chunk": args.chunk,
        "batch_size": scorer.batch_size,
        "workers": scorer.workers,
        "intra_op_num_threads": scorer.intra_op_num_threads,
        "split_model": scorer.split_model,
        "providers": scorer.providers,
        "onnxruntime": onnxruntime.__version__,
        "onnx": _version("onnx"),
        "cpu_count": os.cpu_count(),
        "loadavg_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "machine": platform.machine(),
        "python": platform.python_version(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"baseline {result['baseline_clips_per_s']} clips/s, ours {result['ours_clips_per_s']} clips/s, "
        f"speedup {result['speedup']}x, max |diff| {max(diff.values()):.2e}  -> {args.out}"
    )


if __name__ == "__main__":
    main()
