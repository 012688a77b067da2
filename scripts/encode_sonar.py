#!/usr/bin/env python
"""Write SONAR speech-encoder frame embeddings for a VoxEmoset split, in the store format `voxemoset train` reads.

The frame outputs (`encoded_seqs`) are kept; the attention pooler's sentence vector is left out (the paper's
"pooling layer removed"). Runs in the SONAR environment, not the main one: sonar-space 0.5 needs fairseq2 0.8.1,
which pins torch 2.9.1 and transformers ~4.57.

    bash scripts/setup_sonar_env.sh
    .venv-sonar/bin/python scripts/encode_sonar.py --dataset runs/x/dataset --split train \
        --model weights/sonar/spenc.eng.pt --out runs/x/embeddings/sonar
    .venv-sonar/bin/python scripts/encode_sonar.py --wav speech.wav --model ... --out speech.safetensors

Standalone on purpose (stdlib + the SONAR env's packages): voxemoset itself cannot be installed next to torch 2.9.
Tested (tests/test_sonar.py) on a tiny random encoder of the same architecture family (scripts/tiny_sonar.py,
loaded with `--arch-overrides`); the real English checkpoint was never loaded here (no weights can be fetched).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

SONAR_ENG_URL = "https://dl.fbaipublicfiles.com/SONAR/spenc.eng.pt"
SAMPLING_RATE = 16000


def fail(message: str) -> None:
    """One clear line on stderr and exit 1, as the voxemoset CLI does."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def _override(config, overrides: dict):
    """`config` (a nested dataclass) with `overrides` applied, nested dicts into nested configs."""
    import dataclasses

    changes = {}
    for key, value in overrides.items():
        if not hasattr(config, key):
            fail(f"architecture overrides: {type(config).__name__} has no field {key!r}")
        current = getattr(config, key)
        changes[key] = _override(current, value) if isinstance(value, dict) else value
    return dataclasses.replace(config, **changes)


def load_encoder(model: Path, arch: str, device: str, overrides: Path | None = None):
    """SONAR's speech encoder from a local checkpoint, never downloading; `overrides` (JSON) reshapes `arch`."""
    from fairseq2 import init_fairseq2
    from sonar.models.sonar_speech import get_sonar_speech_encoder_hub

    init_fairseq2()
    hub = get_sonar_speech_encoder_hub()
    config = hub.get_arch_config(arch)
    if overrides is not None:
        config = _override(config, json.loads(overrides.read_text()))
    encoder = hub.load_custom_model(model, config)
    return encoder.to(device).eval()


def read_audio(data: bytes):
    """FLAC/WAV bytes -> float32 mono 16 kHz torch tensor."""
    import numpy as np
    import soundfile as sf
    import torch

    samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    if rate != SAMPLING_RATE:
        fail(f"expected {SAMPLING_RATE} Hz audio, got {rate} Hz")
    return torch.from_numpy(np.ascontiguousarray(samples.mean(axis=1)))


def encode(encoder, clips: list, device: str) -> list:
    """Frame embeddings (T_i, D) per clip: fbank -> SONAR encoder -> encoded_seqs, cut to each clip's length."""
    import torch
    from fairseq2.data.audio import WaveformToFbankConverter
    from fairseq2.nn import BatchLayout

    # SONAR's own inference pipeline settings (80 mel bins, int16 scale, standardised per utterance).
    to_fbank = WaveformToFbankConverter(num_mel_bins=80, waveform_scale=2**15, channel_last=True, standardize=True)
    fbanks = [to_fbank({"waveform": c.unsqueeze(1), "sample_rate": float(SAMPLING_RATE)})["fbank"] for c in clips]
    lengths = [int(f.shape[0]) for f in fbanks]
    longest = max(lengths) + max(lengths) % 2  # the pipeline pads to a multiple of 2
    seqs = torch.zeros(len(fbanks), longest, fbanks[0].shape[1])
    for i, f in enumerate(fbanks):
        seqs[i, : f.shape[0]] = f
    seqs = seqs.to(device)
    with torch.inference_mode():
        out = encoder(seqs, BatchLayout.of(seqs, lengths))
    frames, out_lens = out.encoded_seqs, out.encoded_seqs_layout.seq_lens
    return [frames[i, : int(n)].to(torch.float16).cpu() for i, n in enumerate(out_lens)]


def write_shard(path: Path, tensors: dict, meta: dict) -> None:
    """Atomic safetensors shard (temp file, fsync, rename)."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata={k: str(v) for k, v in meta.items()})
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> None:
    """Encode a dataset split (or one wav) with SONAR's speech encoder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="SONAR speech encoder checkpoint (.pt)")
    parser.add_argument("--out", type=Path, required=True, help="store folder, or a .safetensors file with --wav")
    parser.add_argument("--dataset", type=Path, help="published dataset folder (data/<split>-*.parquet)")
    parser.add_argument("--split", default="train")
    parser.add_argument("--wav", type=Path, help="encode this one file instead of a dataset split")
    parser.add_argument("--arch", default="english", help="SONAR architecture of the checkpoint")
    parser.add_argument("--arch-overrides", type=Path, help="JSON of fields that reshape --arch (tiny test models)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)

    if not args.model.is_file():
        fail(
            f"SONAR speech encoder: no weights at {args.model}. Download them with: "
            f"mkdir -p {args.model.parent} && curl -L -o {args.model} {SONAR_ENG_URL}"
        )
    if (args.dataset is None) == (args.wav is None):
        fail("give either --dataset (a split) or --wav (one file)")
    if args.dataset is not None:
        shards = sorted((args.dataset / "data").glob(f"{args.split}-*.parquet"))
        if not shards:
            fail(f"{args.dataset}: no {args.split}-*.parquet shards under data/")
    try:
        import fairseq2  # noqa: F401
        import pyarrow.parquet as pq
        import sonar  # noqa: F401
        import torch
    except ImportError as e:
        fail(
            f"the SONAR environment is not set up ({e.name or e} is missing): run `bash scripts/setup_sonar_env.sh`, "
            "then this script with .venv-sonar/bin/python"
        )

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    encoder = load_encoder(args.model, args.arch, device, args.arch_overrides)
    if args.wav is not None:
        (frames,) = encode(encoder, [read_audio(args.wav.read_bytes())], device)
        write_shard(args.out, {"frames": frames}, {"encoder": "sonar", "model": args.model.name})
        print(args.out)
        return
    meta = {"encoder": "sonar", "model": args.model.name}
    for shard in shards:
        target = args.out / f"{shard.stem}.safetensors"
        if target.is_file():
            continue  # finished earlier: a killed run resumes here
        table = pq.read_table(shard, columns=["id", "audio"])
        ids, audio = table.column("id").to_pylist(), table.column("audio")
        tensors = {}
        for start in range(0, len(ids), args.batch_size):
            stop = min(start + args.batch_size, len(ids))
            clips = [read_audio(audio[i]["bytes"].as_py()) for i in range(start, stop)]
            for key, frames in zip(ids[start:stop], encode(encoder, clips, device), strict=True):
                tensors[key] = frames
        meta["dim"] = int(next(iter(tensors.values())).shape[-1])
        write_shard(target, tensors, meta)
        print(f"encoded {shard.name} ({len(ids)} clips)", file=sys.stderr)
    (args.out / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    print(args.out)


if __name__ == "__main__":
    main()
