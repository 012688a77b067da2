"""Batched F5-TTS synthesis against F5's own one-at-a-time path, same captions, references and seeds.

    .venv/bin/python benchmarks/bench_speech.py [--n 4] [--nfe 4] [--batch-size 4] [--rounds 2]

The DiT is the real F5TTS_v1_Base architecture (f5_tts/configs/F5TTS_v1_Base.yaml, 337M parameters)
at random weights (its zero-initialised output layers filled with small noise so they do work), with
the tiny Vocos; both run on this machine's CPU in fp32. References are 2.5-3.5 s of espeak-ng speech
at 24 kHz with their transcripts; captions are sized to ~4 s by F5's duration rule.
Baseline: F5's `infer_batch_process` per caption after `torch.manual_seed(seed)` (what `F5TTS.infer`
runs once it has preprocessed the reference file). Ours: `F5Synthesizer.synthesize` with all captions
in batches. The two alternate (A B, then B A, ...) so that a busy machine slows both alike; wall
and process CPU seconds are both reported. Writes benchmarks/results/speech.json.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import tempfile
import time
from contextlib import redirect_stdout
from importlib.resources import files
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
import torch
import yaml

from voxemoset.models.f5tts import F5Synthesizer, f5_reference
from voxemoset.models.protocols import SynthRequest

REFERENCES = [
    "Don't forget a jacket.",
    "I think I have a doctor's appointment.",
    "The surface is slick.",
    "We'll stop in a couple of minutes.",
    "Kids are talking by the door.",
    "I would like a new alarm clock.",
    "That is exactly what happened.",
    "It's eleven o'clock.",
]
CAPTIONS = [
    "A red bus drives past an old stone church on a sunny street.",
    "Two dogs run along a wide sandy beach under a grey sky.",
    "An old man reads a newspaper on a wooden park bench.",
    "A small boat rests on a calm lake near tall green pine trees.",
    "A child holds a yellow kite in a field of tall grass.",
    "Three people walk across a busy bridge in the evening light.",
    "A cat sleeps beside a window with white lace curtains.",
    "A woman carries a basket of apples through a quiet market.",
]


def make_model(seed: int = 0):
    """CFM with the F5TTS_v1_Base DiT at random weights, built as f5_tts's load_model builds it."""
    from f5_tts.infer.utils_infer import hop_length, n_fft, n_mel_channels, target_sample_rate, win_length
    from f5_tts.model import CFM, DiT
    from f5_tts.model.utils import get_tokenizer

    spec = yaml.safe_load(Path(str(files("f5_tts").joinpath("configs/F5TTS_v1_Base.yaml"))).read_text())
    arch = spec["model"]["arch"]
    vocab_map, vocab_size = get_tokenizer(str(files("f5_tts").joinpath("infer/examples/vocab.txt")), "custom")
    torch.manual_seed(seed)
    mel = dict(n_fft=n_fft, hop_length=hop_length, win_length=win_length, n_mel_channels=n_mel_channels,
               target_sample_rate=target_sample_rate, mel_spec_type="vocos")  # fmt: skip
    model = CFM(DiT(**arch, text_num_embeds=vocab_size, mel_dim=n_mel_channels), mel_spec_kwargs=mel,
                odeint_kwargs={"method": "euler"}, vocab_char_map=vocab_map)  # fmt: skip
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(0, 0.02)
    return model.eval(), arch


def make_vocoder(folder: Path):
    """The tiny Vocos, loaded through f5_tts's own loader."""
    from f5_tts.infer.utils_infer import load_vocoder

    from voxemoset.models.tiny.f5tts import write_vocos

    with redirect_stdout(io.StringIO()):
        return load_vocoder("vocos", is_local=True, local_path=str(write_vocos(folder)), device="cpu")


def make_requests(n: int, folder: Path) -> list[SynthRequest]:
    """espeak-ng references (24 kHz, trimmed to <= 3.5 s) with their transcripts, one caption each."""
    reqs = []
    for i in range(n):
        raw = folder / f"ref-{i}.wav"
        text = REFERENCES[i % len(REFERENCES)]
        subprocess.run(["espeak-ng", "-v", "en-us+m3", "-s", "120", "-w", str(raw), text], check=True)
        x, sr = sf.read(str(raw), dtype="float32")
        x = soxr.resample(x, sr, 24000).astype(np.float32)[: int(3.5 * 24000)]
        x *= 0.1 / max(1e-6, float(np.sqrt(np.mean(x**2))))
        reqs.append(SynthRequest(CAPTIONS[i % len(CAPTIONS)], x, text, seed=1000 + i))
    return reqs


def baseline(model, vocoder, reqs: list[SynthRequest], nfe: int) -> list[np.ndarray]:
    """F5's own path, one caption at a time, seeded as F5TTS.infer seeds."""
    from f5_tts.infer.utils_infer import infer_batch_process

    waves = []
    for r in reqs:
        audio, ref_text = f5_reference(r.ref_audio, r.ref_text)
        torch.manual_seed(r.seed)
        wave, _, _ = next(infer_batch_process((torch.from_numpy(audio)[None], 24000), ref_text, [r.text], model,
                                              vocoder, nfe_step=nfe, device="cpu", progress=None))  # fmt: skip
        waves.append(wave)
    return waves


def timed_rounds(paths: dict, rounds: int) -> tuple[dict, dict, dict]:
    """Run each path `rounds` times in alternating order: wall seconds, CPU seconds, outputs (checked stable)."""
    wall: dict[str, list[float]] = {k: [] for k in paths}
    cpu: dict[str, list[float]] = {k: [] for k in paths}
    waves: dict[str, list[np.ndarray]] = {}
    for r in range(rounds):
        for name in sorted(paths, reverse=r % 2 == 1):
            t0, c0 = time.perf_counter(), time.process_time()
            got = paths[name]()
            wall[name].append(round(time.perf_counter() - t0, 2))
            cpu[name].append(round(time.process_time() - c0, 2))
            if name in waves:  # fixed seeds: every round gives the same audio
                assert all(np.array_equal(a, b) for a, b in zip(got, waves[name], strict=True))
            waves[name] = got
    return wall, cpu, waves


def main() -> None:
    """Time both paths, compare their audio, print and write the result."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4, help="captions")
    ap.add_argument("--nfe", type=int, default=4, help="flow steps")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2, help="timed runs of each path, alternating order")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "speech.json")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-speech-"))
    t0 = time.perf_counter()
    model, arch = make_model()
    vocoder = make_vocoder(tmp / "vocos")
    load_s = time.perf_counter() - t0
    synth = F5Synthesizer(model, vocoder, batch_size=args.batch_size, nfe_step=args.nfe)
    reqs = make_requests(args.n, tmp)
    items = sorted((synth.prepare(r) for r in reqs), key=lambda it: it.duration)
    # Warm-up (jieba/pinyin tables, first allocations) on a short item, outside both timings.
    synth.synthesize([SynthRequest("A dog.", reqs[0].ref_audio[:24000], reqs[0].ref_text, 1)])

    load_before = os.getloadavg()[0]
    paths = {"baseline": lambda: baseline(model, vocoder, reqs, args.nfe), "ours": lambda: synth.synthesize(reqs)}
    wall, cpu, waves = timed_rounds(paths, args.rounds)
    theirs, ours = waves["baseline"], waves["ours"]
    base_s, ours_s = min(wall["baseline"]), min(wall["ours"])
    batches = [items[k : k + args.batch_size] for k in range(0, args.n, args.batch_size)]
    result = {
        "n_captions": args.n,
        "nfe_step": args.nfe,
        "cfg_strength": synth.cfg_strength,
        "sway_sampling_coef": synth.sway_sampling_coef,
        "batch_size": args.batch_size,
        "dit": {
            "arch": arch,
            "params_m": round(sum(p.numel() for p in model.transformer.parameters()) / 1e6, 1),
            "weights": "random",
            "dtype": "float32",
        },  # fmt: skip
        "vocoder": "tiny Vocos (voxemoset.models.tiny.f5tts.write_vocos)",
        "reference_s": [round(len(r.ref_audio) / 24000, 2) for r in reqs],
        "generated_s": [round(len(w) / 24000, 2) for w in ours],
        "frames_total": [it.duration for it in items],
        "padding_frames": sum(max(i.duration for i in b) - it.duration for b in batches for it in b),
        "baseline": {
            "what": "f5_tts infer_batch_process per caption after torch.manual_seed(seed)",
            "wall_s": wall["baseline"],
            "cpu_s": cpu["baseline"],
        },  # fmt: skip
        "ours": {
            "what": "F5Synthesizer.synthesize(all captions), length-bucketed batches",
            "wall_s": wall["ours"],
            "cpu_s": cpu["ours"],
        },  # fmt: skip
        "timing": "rounds alternate the order; figures below use the best round",
        "baseline_utt_per_s": round(args.n / base_s, 4),
        "ours_utt_per_s": round(args.n / ours_s, 4),
        "speedup": round(base_s / ours_s, 3),
        "speedup_cpu_time": round(min(cpu["baseline"]) / min(cpu["ours"]), 3),
        "max_abs_diff": [float(np.abs(a - b).max()) for a, b in zip(ours, theirs, strict=True)],
        "peak_abs": [round(float(np.abs(w).max()), 4) for w in theirs],
        "model_build_s": round(load_s, 1),
        "loadavg_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "device": "cpu",
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.machine(),
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
